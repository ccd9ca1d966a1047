//! Helpers for tests that talk to the Glue API server (moto's, started by
//! `scripts/services.sh up` as GLUE_ENDPOINT) and look at partition folders.

use std::collections::{BTreeMap, BTreeSet};

use super::Services;

/// GLUE_ENDPOINT from the environment or `.services/env`.
pub fn glue_endpoint() -> String {
    if let Some(endpoint) = std::env::var("GLUE_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return endpoint;
    }
    let env = super::repo_root().join(".services/env");
    let text = std::fs::read_to_string(&env).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().trim_start_matches("export ").split_once('='))
        .find(|(k, _)| k.trim() == "GLUE_ENDPOINT")
        .map(|(_, v)| v.trim().trim_matches('"').trim_matches('\'').to_owned())
        .unwrap_or_else(|| {
            panic!(
                "GLUE_ENDPOINT is not set and {} has no value for it: run `scripts/services.sh up` (or `up glue`) first",
                env.display()
            )
        })
}

/// A Glue client for `endpoint` with the services' credentials and region.
pub fn glue_client(services: &Services, endpoint: &str) -> aws_sdk_glue::Client {
    let credentials = aws_sdk_glue::config::Credentials::new(
        &services.access_key,
        &services.secret_key,
        None,
        None,
        "tests",
    );
    let config = aws_sdk_glue::config::Builder::new()
        .behavior_version(aws_sdk_glue::config::BehaviorVersion::latest())
        .region(aws_sdk_glue::config::Region::new(services.region.clone()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .build();
    aws_sdk_glue::Client::from_conf(config)
}

/// The partition folders (`index=NYA/`) of the keys under `root`.
pub async fn folders(services: &Services, bucket: &str, root: &str) -> BTreeSet<String> {
    let client = services.s3().await;
    let mut folders = BTreeSet::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(root)
            .set_continuation_token(token.take())
            .send()
            .await
            .expect("list objects");
        for object in page.contents() {
            let key = object.key().expect("key");
            if let Some((folder, _)) = key.strip_prefix(root).and_then(|r| r.rsplit_once('/')) {
                folders.insert(format!("{folder}/"));
            }
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return folders;
        }
    }
}

/// (Name, Type) of Glue columns.
pub fn columns(list: &[aws_sdk_glue::types::Column]) -> Vec<(String, String)> {
    list.iter()
        .map(|c| {
            (
                c.name().to_owned(),
                c.r#type().expect("column type").to_owned(),
            )
        })
        .collect()
}

pub fn map(
    parameters: Option<&std::collections::HashMap<String, String>>,
) -> BTreeMap<String, String> {
    parameters
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every partition of the table (all pages): values → storage descriptor.
pub async fn partitions(
    glue: &aws_sdk_glue::Client,
    database: &str,
    table: &str,
) -> BTreeMap<Vec<String>, aws_sdk_glue::types::StorageDescriptor> {
    let mut partitions = BTreeMap::new();
    let mut token = None;
    loop {
        let page = glue
            .get_partitions()
            .database_name(database)
            .table_name(table)
            .set_next_token(token.take())
            .send()
            .await
            .expect("GetPartitions");
        for partition in page.partitions() {
            let sd = partition
                .storage_descriptor()
                .expect("a partition storage descriptor")
                .clone();
            assert!(
                partitions.insert(partition.values().to_vec(), sd).is_none(),
                "partition {:?} listed twice",
                partition.values()
            );
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return partitions;
        }
    }
}
