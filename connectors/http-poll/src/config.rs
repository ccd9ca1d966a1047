//! Configuration of the `http_poll` source.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use connect_core::config::units::{ByteSize, HumanDuration};
use connect_core::plugin::{BuildContext, FieldIssue, Source, SourceConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::ConnectorResult;
use serde::Deserialize;

use crate::source::HttpPollSource;

/// Polls an HTTP endpoint that answers JSON and sends its records to Kafka.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpPollConfig {
    /// The endpoint (`http://` or `https://`), polled with GET.
    pub url: String,
    /// Time from the start of one poll to the start of the next (default
    /// 1s). A poll that takes longer is followed by the next at once.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// JSON pointer (RFC 6901) to the records in the response, e.g.
    /// `/data/quotes` (default: the whole response). An array there gives
    /// one record per element; any other value is one record.
    #[serde(default)]
    pub records: String,
    /// Top-level field of each record whose value becomes the record key
    /// (records of one key stay in one partition, in order). Deduplication
    /// is per key. Without it records have no key and share one.
    #[serde(default)]
    pub key_field: Option<String>,
    /// Top-level fields that say whether a record changed (e.g. `[Date,
    /// Close]`): a record whose fields equal those last sent for its key
    /// is not sent again. Default: the whole record.
    #[serde(default)]
    pub dedup_fields: Vec<String>,
    /// Request headers, e.g. `Authorization: "Bearer ${file:/etc/sluice/quotes-token}"`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Longest wait for a response (default 10s); a poll that times out is
    /// retried with back-off.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Largest response body read (default 16MiB); a larger one is a bad
    /// record for the pipeline's `errors:` policy.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: ByteSize,
}

fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_max_body_bytes() -> ByteSize {
    ByteSize(16 << 20)
}

#[async_trait]
impl SourceConfig for HttpPollConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            issues.push(FieldIssue::new(
                "url",
                format!("`{}` must start with http:// or https://", self.url),
            ));
        }
        if self.interval.0.is_zero() {
            issues.push(FieldIssue::new(
                "interval",
                "must be longer than zero, e.g. `1s`",
            ));
        }
        if !self.records.is_empty() && !self.records.starts_with('/') {
            issues.push(FieldIssue::new(
                "records",
                format!(
                    "`{}` is not a JSON pointer; it starts with `/` (e.g. `/data/quotes`), or is empty for the whole response",
                    self.records
                ),
            ));
        }
        if self.key_field.as_deref() == Some("") {
            issues.push(FieldIssue::new(
                "key_field",
                "must name a top-level field of the records",
            ));
        }
        if self.dedup_fields.iter().any(String::is_empty) {
            issues.push(FieldIssue::new(
                "dedup_fields",
                "must name top-level fields of the records",
            ));
        }
        if self.timeout.0.is_zero() {
            issues.push(FieldIssue::new(
                "timeout",
                "must be longer than zero, e.g. `10s`",
            ));
        }
        if self.max_body_bytes.0 == 0 {
            issues.push(FieldIssue::new("max_body_bytes", "must be at least 1 byte"));
        }
        issues
    }

    async fn build(&self, ctx: &BuildContext) -> ConnectorResult<Box<dyn Source>> {
        Ok(Box::new(HttpPollSource::new(self.clone(), ctx)?))
    }
}
