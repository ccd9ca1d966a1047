//! The `s3_json` sink: buffers records per partition into JSON Lines objects,
//! uploads them on count or age, and reports which offsets are durable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use connect_core::plugin::{BuildContext, DurableOffsets, FlushMode, Sink, SinkStats};
use connect_core::{ConnectorError, ConnectorResult, Record, TopicPartition};
use futures::stream::{self, StreamExt};

use crate::config::S3JsonConfig;

/// The object key for records of `topic`/`partition` starting at `first_offset`.
pub fn object_key(prefix: &str, topic: &str, partition: i32, first_offset: i64) -> String {
    let prefix = prefix.trim_matches('/');
    let leaf = format!("{topic}/partition={partition}/{topic}+{partition}+{first_offset:020}.json");
    if prefix.is_empty() {
        leaf
    } else {
        format!("{prefix}/{leaf}")
    }
}

/// Records of one partition being gathered into one object.
#[derive(Debug)]
struct OpenObject {
    first_offset: i64,
    count: u64,
    body: Vec<u8>,
    opened: Instant,
}

/// A complete object waiting for (or retrying) its upload.
#[derive(Debug, Clone)]
struct ClosedObject {
    partition: TopicPartition,
    key: String,
    first_offset: i64,
    count: u64,
    body: bytes::Bytes,
}

/// Gathers records into objects per partition, closes them on count or age,
/// and knows which offsets are durable. No I/O: the sink uploads what it closes.
#[derive(Debug)]
pub struct ObjectBatcher {
    prefix: String,
    flush_size: u64,
    rotate_interval: std::time::Duration,
    open: BTreeMap<TopicPartition, OpenObject>,
    pending: Vec<ClosedObject>,
    /// Per partition, the offset after the last record accepted.
    written_to: BTreeMap<TopicPartition, i64>,
}

impl ObjectBatcher {
    /// A batcher for the sink's layout and rotation settings.
    pub fn new(config: &S3JsonConfig) -> Self {
        Self {
            prefix: config.prefix.clone(),
            flush_size: config.flush_size,
            rotate_interval: config.rotate_interval.0,
            open: BTreeMap::new(),
            pending: Vec::new(),
            written_to: BTreeMap::new(),
        }
    }

    /// Appends a record as one JSON line; closes its object when full.
    pub fn append(&mut self, record: &Record, now: Instant) -> ConnectorResult<()> {
        let (Some(partition), Some(offset)) = (record.partition, record.offset) else {
            return Err(ConnectorError::fatal(
                "s3_json was given a record without a Kafka partition and offset",
            ));
        };
        let tp = TopicPartition {
            topic: record.topic.clone(),
            partition,
        };
        let Some(value) = &record.value else {
            return Err(ConnectorError::fatal(format!(
                "record at {tp} offset {offset} is a tombstone (null value); s3_json writes one JSON value per line and has no line for it"
            )));
        };
        let object = self.open.entry(tp.clone()).or_insert_with(|| OpenObject {
            first_offset: offset,
            count: 0,
            body: Vec::with_capacity(64 * 1024),
            opened: now,
        });
        serde_json::to_writer(&mut object.body, value).map_err(|e| {
            ConnectorError::fatal_caused_by(
                format!("cannot write record at {tp} offset {offset} as JSON"),
                e,
            )
        })?;
        object.body.push(b'\n');
        object.count += 1;
        let full = object.count >= self.flush_size;
        self.written_to.insert(tp.clone(), offset + 1);
        if full {
            self.close(&tp);
        }
        Ok(())
    }

    /// Closes every open object (`All`) or those at least `rotate_interval` old (`Due`).
    pub fn close_due(&mut self, mode: FlushMode, now: Instant) {
        let due: Vec<TopicPartition> = self
            .open
            .iter()
            .filter(|(_, o)| {
                mode == FlushMode::All
                    || now.saturating_duration_since(o.opened) >= self.rotate_interval
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in &due {
            self.close(tp);
        }
    }

    fn close(&mut self, partition: &TopicPartition) {
        if let Some(object) = self.open.remove(partition) {
            self.pending.push(ClosedObject {
                key: object_key(
                    &self.prefix,
                    &partition.topic,
                    partition.partition,
                    object.first_offset,
                ),
                partition: partition.clone(),
                first_offset: object.first_offset,
                count: object.count,
                body: object.body.into(),
            });
        }
    }

    /// Per partition: everything before the first record not yet uploaded.
    pub fn durable_offsets(&self) -> DurableOffsets {
        let mut durable: DurableOffsets = self.written_to.clone();
        let unsent = self
            .open
            .iter()
            .map(|(tp, o)| (tp, o.first_offset))
            .chain(self.pending.iter().map(|o| (&o.partition, o.first_offset)));
        for (tp, first) in unsent {
            if let Some(offset) = durable.get_mut(tp) {
                *offset = (*offset).min(first);
            }
        }
        durable
    }

    /// Forgets everything about `partitions`.
    pub fn revoke(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.open.remove(tp);
            self.written_to.remove(tp);
        }
        self.pending.retain(|o| !partitions.contains(&o.partition));
    }
}

/// A running `s3_json` sink.
pub struct S3JsonSink {
    client: Client,
    config: S3JsonConfig,
    stats: Arc<SinkStats>,
    batcher: ObjectBatcher,
}

impl S3JsonSink {
    /// Makes the S3 client, checks the bucket (creating it when configured).
    pub async fn connect(
        config: S3JsonConfig,
        ctx: &BuildContext,
        stats: Arc<SinkStats>,
    ) -> ConnectorResult<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared);
        if shared.region().is_none() {
            builder = builder.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(endpoint) = config.endpoint() {
            builder = builder.endpoint_url(endpoint);
        }
        builder = builder.force_path_style(
            config
                .force_path_style
                .unwrap_or(config.endpoint().is_some()),
        );
        let client = Client::from_conf(builder.build());
        let sink = Self {
            client,
            batcher: ObjectBatcher::new(&config),
            config,
            stats,
        };
        sink.check_bucket().await?;
        tracing::info!(pipeline = %ctx.pipeline, sink = %ctx.name, bucket = %sink.config.bucket, endpoint = ?sink.config.endpoint(), "s3_json ready");
        Ok(sink)
    }

    async fn check_bucket(&self) -> ConnectorResult<()> {
        let bucket = &self.config.bucket;
        let head = self.client.head_bucket().bucket(bucket).send().await;
        let Err(error) = head else { return Ok(()) };
        let missing = error
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 404);
        if !missing {
            return Err(classify(format!("cannot reach bucket `{bucket}`"), error));
        }
        if !self.config.create_bucket {
            return Err(ConnectorError::fatal(format!(
                "bucket `{bucket}` does not exist; create it or set `create_bucket: true`"
            )));
        }
        let mut create = self.client.create_bucket().bucket(bucket);
        let region = self.client.config().region().map(|r| r.as_ref().to_owned());
        if let Some(region) = region.filter(|r| r != "us-east-1") {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        region.as_str(),
                    ))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => {
                tracing::info!(bucket = %bucket, "created bucket");
                Ok(())
            }
            Err(error) if matches!(error.code(), Some("BucketAlreadyOwnedByYou")) => Ok(()),
            Err(error) => Err(classify(format!("cannot create bucket `{bucket}`"), error)),
        }
    }

    async fn upload_pending(&mut self) -> ConnectorResult<()> {
        if self.batcher.pending.is_empty() {
            return Ok(());
        }
        // Owned copies (the body is reference-counted) keep the upload futures 'static.
        let jobs: Vec<(usize, ClosedObject)> =
            self.batcher.pending.iter().cloned().enumerate().collect();
        let client = self.client.clone();
        let bucket: Arc<str> = self.config.bucket.as_str().into();
        let results: Vec<(usize, ConnectorResult<()>)> = stream::iter(jobs)
            .map(move |(i, object)| {
                let client = client.clone();
                let bucket = bucket.clone();
                async move {
                    let started = Instant::now();
                    let result = client
                        .put_object()
                        .bucket(bucket.as_ref())
                        .key(&object.key)
                        .content_type("application/x-ndjson")
                        .body(ByteStream::from(object.body.clone()))
                        .send()
                        .await
                        .map(|_| {
                            tracing::debug!(bucket = %bucket, key = %object.key, records = object.count, bytes = object.body.len(), ms = started.elapsed().as_millis() as u64, "uploaded");
                        })
                        .map_err(|e| classify(format!("cannot upload s3://{bucket}/{}", object.key), e));
                    (i, result)
                }
            })
            .buffer_unordered(self.config.upload_concurrency)
            .collect()
            .await;
        let mut uploaded = vec![false; self.batcher.pending.len()];
        let mut first_error = None;
        for (i, result) in results {
            match result {
                Ok(()) => uploaded[i] = true,
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let mut index = 0;
        let stats = &self.stats;
        self.batcher.pending.retain(|object| {
            let done = uploaded[index];
            index += 1;
            if done {
                stats.add_object(object.count, object.body.len() as u64);
            }
            !done
        });
        first_error.map_or(Ok(()), Err)
    }
}

#[async_trait]
impl Sink for S3JsonSink {
    async fn assigned(&mut self, _partitions: &[TopicPartition]) -> ConnectorResult<()> {
        Ok(())
    }

    async fn write(&mut self, records: &[Record]) -> ConnectorResult<()> {
        let now = Instant::now();
        for record in records {
            self.batcher.append(record, now)?;
        }
        Ok(())
    }

    async fn flush(&mut self, mode: FlushMode) -> ConnectorResult<DurableOffsets> {
        self.batcher.close_due(mode, Instant::now());
        self.upload_pending().await?;
        Ok(self.batcher.durable_offsets())
    }

    async fn revoked(&mut self, partitions: &[TopicPartition]) -> ConnectorResult<()> {
        self.batcher.revoke(partitions);
        Ok(())
    }

    async fn close(&mut self) -> ConnectorResult<()> {
        self.batcher = ObjectBatcher::new(&self.config);
        Ok(())
    }
}

/// Retriable: timeouts, connection failures, throttling and 5xx; fatal: the rest.
fn classify<E>(context: String, error: SdkError<E>) -> ConnectorError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let retriable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => status.is_some_and(|s| s >= 500 || s == 429 || s == 408),
        _ => false,
    };
    let detail = DisplayErrorContext(&error).to_string();
    let message = match (error.code(), status) {
        (Some(code), Some(status)) => format!("{context}: {code} (HTTP {status}): {detail}"),
        _ => format!("{context}: {detail}"),
    };
    if retriable {
        ConnectorError::retriable(message)
    } else {
        ConnectorError::fatal(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_are_deterministic_and_sort_by_offset() {
        assert_eq!(
            object_key("topics", "stock-market", 3, 42),
            "topics/stock-market/partition=3/stock-market+3+00000000000000000042.json"
        );
        assert_eq!(
            object_key("/a/b/", "t", 0, 0),
            "a/b/t/partition=0/t+0+00000000000000000000.json"
        );
        assert_eq!(
            object_key("", "t", 1, 7),
            "t/partition=1/t+1+00000000000000000007.json"
        );
        assert!(object_key("p", "t", 0, 9) < object_key("p", "t", 0, 10));
    }

    fn config(flush_size: u64, rotate_secs: u64) -> S3JsonConfig {
        S3JsonConfig {
            bucket: "b".into(),
            prefix: "topics".into(),
            region: None,
            endpoint: None,
            force_path_style: None,
            create_bucket: false,
            flush_size,
            rotate_interval: connect_core::config::units::HumanDuration(
                std::time::Duration::from_secs(rotate_secs),
            ),
            upload_concurrency: 1,
        }
    }

    fn record(partition: i32, offset: i64) -> Record {
        Record {
            topic: "t".into(),
            partition: Some(partition),
            offset: Some(offset),
            key: None,
            value: Some(serde_json::json!({ "n": offset, "x": 0.0 })),
            headers: Vec::new(),
            timestamp: None,
            position: None,
        }
    }

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition,
        }
    }

    #[test]
    fn rotates_on_count_and_reports_only_uploaded_offsets_durable() {
        let mut batcher = ObjectBatcher::new(&config(3, 600));
        let now = Instant::now();
        for offset in 10..17 {
            batcher.append(&record(0, offset), now).unwrap();
        }
        batcher.append(&record(1, 0), now).unwrap();
        let keys: Vec<&str> = batcher.pending.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "topics/t/partition=0/t+0+00000000000000000010.json",
                "topics/t/partition=0/t+0+00000000000000000013.json"
            ]
        );
        assert_eq!(
            batcher.pending[0].body.as_ref(),
            b"{\"n\":10,\"x\":0.0}\n{\"n\":11,\"x\":0.0}\n{\"n\":12,\"x\":0.0}\n"
        );
        // Nothing is uploaded yet: nothing is durable beyond the first record of each partition.
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 10), (tp(1), 0)].into_iter().collect()
        );
        // Once the closed objects are uploaded, offsets up to the open object are durable.
        batcher.pending.clear();
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 16), (tp(1), 0)].into_iter().collect()
        );
        batcher.close_due(FlushMode::All, now);
        batcher.pending.clear();
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 17), (tp(1), 1)].into_iter().collect()
        );
    }

    #[test]
    fn rotates_on_age_even_without_new_records() {
        let mut batcher = ObjectBatcher::new(&config(1000, 5));
        let start = Instant::now();
        batcher.append(&record(0, 0), start).unwrap();
        batcher
            .append(&record(1, 0), start + std::time::Duration::from_secs(3))
            .unwrap();
        batcher.close_due(FlushMode::Due, start + std::time::Duration::from_secs(4));
        assert!(batcher.pending.is_empty(), "closed before its interval");
        batcher.close_due(FlushMode::Due, start + std::time::Duration::from_secs(5));
        assert_eq!(batcher.pending.len(), 1);
        assert_eq!(batcher.pending[0].partition, tp(0));
        batcher.close_due(FlushMode::Due, start + std::time::Duration::from_secs(8));
        assert_eq!(batcher.pending.len(), 2);
        assert!(batcher.open.is_empty());
    }

    #[test]
    fn tombstones_and_revoked_partitions() {
        let mut batcher = ObjectBatcher::new(&config(10, 60));
        let mut tombstone = record(2, 5);
        tombstone.value = None;
        let error = batcher.append(&tombstone, Instant::now()).unwrap_err();
        assert!(
            error.to_string().contains("t/2 offset 5 is a tombstone"),
            "{error}"
        );
        batcher.append(&record(0, 1), Instant::now()).unwrap();
        batcher.revoke(&[tp(0)]);
        assert!(batcher.durable_offsets().is_empty());
        assert!(batcher.open.is_empty());
    }
}
