//! Configuration of the `s3_json` sink.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connect_core::config::units::HumanDuration;
use connect_core::plugin::{BuildContext, FieldIssue, Sink, SinkConfig, SinkStats};
use connect_core::ConnectorResult;
use serde::Deserialize;

use crate::sink::S3JsonSink;

/// Writes records as JSON Lines objects to S3 (or any S3-compatible store).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3JsonConfig {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix before `<topic>/partition=<p>/` (default `topics`, as Confluent's S3 sink).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// AWS region; from the standard AWS chain (`AWS_REGION`, profile) when absent, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible server (e.g. `http://127.0.0.1:9000`); AWS when absent or empty.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`); default: on when `endpoint` is set, off for AWS.
    #[serde(default)]
    pub force_path_style: Option<bool>,
    /// Create the bucket at start when it does not exist (default false).
    #[serde(default)]
    pub create_bucket: bool,
    /// Records per object: an object is closed and uploaded when it has this many (default 10000).
    #[serde(default = "default_flush_size")]
    pub flush_size: u64,
    /// Wall-clock age at which an open object is closed and uploaded even if
    /// not full, including when no new record arrives (default 60s).
    #[serde(default = "default_rotate_interval")]
    pub rotate_interval: HumanDuration,
    /// Uploads in flight at once (default 8).
    #[serde(default = "default_upload_concurrency")]
    pub upload_concurrency: usize,
}

fn default_prefix() -> String {
    "topics".to_owned()
}

fn default_flush_size() -> u64 {
    10_000
}

fn default_rotate_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

fn default_upload_concurrency() -> usize {
    8
}

impl S3JsonConfig {
    /// The endpoint, if a non-empty one is configured.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }
}

#[async_trait]
impl SinkConfig for S3JsonConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        let valid_bucket = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && self.bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && self.bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            issues.push(FieldIssue::new(
                "bucket",
                format!("`{}` is not an S3 bucket name (3 to 63 lowercase letters, digits, `-` or `.`, starting and ending with a letter or digit)", self.bucket),
            ));
        }
        if self.flush_size == 0 {
            issues.push(FieldIssue::new("flush_size", "must be at least 1"));
        }
        if self.rotate_interval.0.is_zero() {
            issues.push(FieldIssue::new(
                "rotate_interval",
                "must be longer than zero",
            ));
        }
        if self.upload_concurrency == 0 {
            issues.push(FieldIssue::new("upload_concurrency", "must be at least 1"));
        }
        if let Some(endpoint) = self.endpoint() {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                issues.push(FieldIssue::new(
                    "endpoint",
                    format!("`{endpoint}` must start with http:// or https://"),
                ));
            }
        }
        issues
    }

    async fn build(
        &self,
        ctx: &BuildContext,
        stats: Arc<SinkStats>,
    ) -> ConnectorResult<Box<dyn Sink>> {
        Ok(Box::new(
            S3JsonSink::connect(self.clone(), ctx, stats).await?,
        ))
    }
}
