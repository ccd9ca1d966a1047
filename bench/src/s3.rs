//! S3 helpers of the harness: listing, creating a bucket.

use anyhow::Context;

/// An object of a listing.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// Every object of `bucket` (following continuation tokens); `None` while
/// the bucket does not exist.
pub async fn list(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<Option<Vec<Listed>>> {
    let mut objects = Vec::new();
    let mut token = None;
    loop {
        let page = match s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_bucket()) =>
            {
                return Ok(None)
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot list bucket {bucket}"))
            }
        };
        for object in page.contents() {
            if let Some(key) = object.key() {
                objects.push(Listed {
                    key: key.to_owned(),
                    size: object
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                });
            }
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(Some(objects));
        }
    }
}

/// Creates `bucket` unless it exists.
pub async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(error)
            if error.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) =>
        {
            Ok(())
        }
        Err(error) => Err(error).with_context(|| format!("cannot create bucket {bucket}")),
    }
}

/// The body of an object.
pub async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("cannot get s3://{bucket}/{key}"))?;
    let body = object
        .body
        .collect()
        .await
        .with_context(|| format!("cannot read s3://{bucket}/{key}"))?;
    Ok(body.into_bytes().to_vec())
}
