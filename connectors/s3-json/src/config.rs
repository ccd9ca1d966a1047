//! Configuration of the `s3_json` sink.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use connect_core::config::units::ByteSize;
use connect_core::config::units::HumanDuration;
use connect_core::plugin::{BuildContext, FieldIssue, Sink, SinkConfig, SinkStats};
use connect_core::schemars::{self, JsonSchema};
use connect_core::ConnectorResult;
use serde::{Deserialize, Serialize};

use crate::glue::CatalogConfig;
use crate::partitioner::PartitionerConfig;
use crate::sink::S3JsonSink;

/// Writes records as JSON Lines objects to S3 (or any S3-compatible store).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3JsonConfig {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix before `<topic>/<partition path>/` (default `topics`, as Confluent's S3 sink).
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
    /// Which folder an object goes to: `kafka` (default), `field` or `time`.
    #[serde(default)]
    pub partitioner: PartitionerConfig,
    /// Uncompressed size at which an object is closed, e.g. `64MiB` (default: no limit).
    /// An object never grows past it, except one holding a single larger record.
    /// With `format: parquet` it bounds the records' JSON size (the file is smaller).
    /// At most 5TiB (the largest S3 object).
    #[serde(default)]
    pub max_object_bytes: Option<ByteSize>,
    /// Size at which an open object moves from memory to a local file and
    /// goes on growing there (default `16MiB`, at least `1MiB`, at most
    /// `5GiB`). Such an object is uploaded as an S3 multipart upload, one
    /// `part_size` part at a time, so memory stays the same whatever the
    /// object's size; smaller objects are one PUT from memory.
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold: ByteSize,
    /// Size of a multipart upload's parts (default `8MiB`; S3 allows `5MiB` to `5GiB`).
    /// Each multipart upload in flight holds one part in memory.
    #[serde(default = "default_part_size")]
    pub part_size: ByteSize,
    /// Directory of the files of objects larger than `multipart_threshold`
    /// (default: the system's temporary directory, `$TMPDIR` or `/tmp`).
    /// The files have no name: nothing is left behind, even after a crash.
    #[serde(default)]
    pub spool_dir: Option<std::path::PathBuf>,
    /// Memory for buffered records across all of the sink's open and
    /// queued objects, e.g. `64MiB` (the default). When it is reached, the
    /// largest open objects are closed early and everything closed is
    /// uploaded before the sink takes more records (Kafka waits meanwhile),
    /// so a sink over many partitions and folders never outgrows it. Early
    /// closes cut objects between records, as `flush_size` does; the
    /// exactly-once landing does not depend on where objects are cut.
    #[serde(default = "default_memory_budget")]
    pub memory_budget: ByteSize,
    /// `none` (default) or `gzip`: gzip objects are named `.json.gz`.
    /// JSON only; Parquet compresses inside the file (`parquet.compression`).
    #[serde(default)]
    pub compression: Compression,
    /// `json` (default): JSON Lines objects; `parquet`: one Apache Parquet
    /// file per object (`.parquet`), same keys and the same exactly-once landing.
    #[serde(default)]
    pub format: Format,
    /// Parquet file settings, used with `format: parquet`.
    #[serde(default)]
    pub parquet: ParquetConfig,
    /// Keep a catalog table current: add each new partition folder to the
    /// topic's AWS Glue table as objects land in it (creating the table
    /// when missing), so Athena sees new data without a crawler.
    #[serde(default)]
    pub catalog: Option<CatalogConfig>,
    /// How an upload makes sure it never overwrites an object of an earlier
    /// run: `auto` (default: find out from the first upload), `always`
    /// (`If-None-Match: *`), `never` (a HEAD before each PUT).
    #[serde(default)]
    pub conditional_writes: ConditionalWrites,
}

/// Compression of the object bodies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Plain JSON Lines, `.json`.
    #[default]
    None,
    /// gzip, `.json.gz` (no `Content-Encoding`: Athena and Glue go by the extension).
    Gzip,
}

impl Compression {
    /// The object key's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "json",
            Compression::Gzip => "json.gz",
        }
    }
}

/// What an object holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// JSON Lines: one record value per line (`.json`, `.json.gz`).
    #[default]
    Json,
    /// Apache Parquet (`.parquet`): columns inferred from the object's
    /// records, as the crawler infers them; every record must be a JSON object.
    Parquet,
}

/// Settings of the Parquet files (`format: parquet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParquetConfig {
    /// Rows per row group (default 100000). An object of `flush_size`
    /// records has `ceil(flush_size / row_group_rows)` row groups.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
    /// Column compression: `snappy` (default, what Athena writes), `zstd`, `gzip` or `none`.
    #[serde(default)]
    pub compression: ParquetCompression,
}

impl Default for ParquetConfig {
    fn default() -> Self {
        ParquetConfig {
            row_group_rows: default_row_group_rows(),
            compression: ParquetCompression::default(),
        }
    }
}

fn default_row_group_rows() -> usize {
    100_000
}

/// Compression of the column chunks inside a Parquet file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParquetCompression {
    /// Snappy: fast, what Athena and Spark write by default.
    #[default]
    Snappy,
    /// Zstandard (level 3): smaller files, a little more CPU.
    Zstd,
    /// gzip: the smallest of the three, the most CPU.
    Gzip,
    /// No compression.
    None,
}

/// Whether uploads use `If-None-Match: *`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConditionalWrites {
    /// Find out: until known, a HEAD before each PUT *and* `If-None-Match: *`;
    /// the first object written is put again, byte for byte, with the header:
    /// a 412 shows the store honours it (conditional from then on), a success
    /// that it ignores it (HEAD before each PUT from then on).
    #[default]
    Auto,
    /// Always `If-None-Match: *` (AWS S3 and stores that honour it).
    Always,
    /// Never: a HEAD before each PUT (stores that ignore the header).
    Never,
}

/// The largest object one S3 PUT accepts.
pub const MAX_PUT_BYTES: u64 = 5 << 30;

/// The largest S3 object.
pub const MAX_OBJECT_BYTES: u64 = 5 << 40;

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

fn default_memory_budget() -> ByteSize {
    ByteSize(64 << 20)
}

fn default_multipart_threshold() -> ByteSize {
    ByteSize(16 << 20)
}

fn default_part_size() -> ByteSize {
    ByteSize(8 << 20)
}

impl S3JsonConfig {
    /// `spool_dir`, or the system's temporary directory.
    pub fn spool_dir(&self) -> std::path::PathBuf {
        self.spool_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

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
        if self.memory_budget.0 < 1 << 20 {
            issues.push(FieldIssue::new(
                "memory_budget",
                format!(
                    "must be at least 1MiB, not {}; it bounds the records buffered across all objects",
                    self.memory_budget
                ),
            ));
        }
        if let Some(max) = self.max_object_bytes {
            if max.0 == 0 || max.0 > MAX_OBJECT_BYTES {
                issues.push(FieldIssue::new(
                    "max_object_bytes",
                    format!("must be between 1 byte and 5TiB (the largest S3 object), not {max}"),
                ));
            }
        }
        if !(1 << 20..=MAX_PUT_BYTES).contains(&self.multipart_threshold.0) {
            issues.push(FieldIssue::new(
                "multipart_threshold",
                format!(
                    "must be between 1MiB and 5GiB (the largest single S3 PUT), not {}",
                    self.multipart_threshold
                ),
            ));
        }
        if !(5 << 20..=MAX_PUT_BYTES).contains(&self.part_size.0) {
            issues.push(FieldIssue::new(
                "part_size",
                format!(
                    "must be between 5MiB and 5GiB (S3's limits for a multipart upload's parts), not {}",
                    self.part_size
                ),
            ));
        }

        if self.format == Format::Parquet {
            if self.compression != Compression::None {
                issues.push(FieldIssue::new(
                    "compression",
                    "applies to `format: json` only; Parquet compresses inside the file: set `parquet.compression` (snappy, zstd, gzip or none) instead",
                ));
            }
            if self.parquet.row_group_rows == 0 {
                issues.push(FieldIssue::new(
                    "parquet.row_group_rows",
                    "must be at least 1",
                ));
            }
        }
        if let Some(catalog) = &self.catalog {
            for (field, message) in catalog.validate() {
                issues.push(FieldIssue::new(format!("catalog.{field}"), message));
            }
        }
        issues.extend(self.partitioner.validate());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitioner::PartitionerType;

    #[test]
    fn the_memory_budget_defaults_to_64_mib_and_must_be_at_least_1_mib() {
        let config = from_json(serde_json::json!({"bucket": "bkt"})).unwrap();
        assert_eq!(config.memory_budget, ByteSize(64 << 20));
        assert!(config.validate().is_empty());
        let small =
            from_json(serde_json::json!({"bucket": "bkt", "memory_budget": "512KiB"})).unwrap();
        let issues = small.validate();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].field, "memory_budget");
        assert!(
            issues[0].message.contains("at least 1MiB"),
            "{}",
            issues[0].message
        );
    }

    fn from_json(value: serde_json::Value) -> Result<S3JsonConfig, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_new_keys_deserialize() {
        let config = from_json(serde_json::json!({"bucket": "bkt"})).unwrap();
        assert_eq!(config.partitioner.kind, PartitionerType::Kafka);
        assert_eq!(config.max_object_bytes, None);
        assert_eq!(config.compression, Compression::None);
        assert_eq!(config.conditional_writes, ConditionalWrites::Auto);
        assert!(config.validate().is_empty());

        let config = from_json(serde_json::json!({
            "bucket": "bkt",
            "partitioner": {"type": "field", "field": "Index", "name": "index"},
            "max_object_bytes": "64MiB",
            "compression": "gzip",
            "conditional_writes": "never",
        }))
        .unwrap();
        assert_eq!(config.partitioner.kind, PartitionerType::Field);
        assert_eq!(config.max_object_bytes, Some(ByteSize(64 << 20)));
        assert_eq!(config.compression.extension(), "json.gz");
        assert_eq!(config.conditional_writes, ConditionalWrites::Never);
        assert!(config.validate().is_empty());

        let config =
            from_json(serde_json::json!({"bucket": "bkt", "max_object_bytes": 1000})).unwrap();
        assert_eq!(config.max_object_bytes, Some(ByteSize(1000)));
        let error = from_json(serde_json::json!({"bucket": "bkt", "max_object_bytes": "lots"}))
            .unwrap_err();
        assert!(error.contains("`lots` is not a size"), "{error}");
        let error = from_json(
            serde_json::json!({"bucket": "bkt", "partitioner": {"type": "time", "feild": "x"}}),
        )
        .unwrap_err();
        assert!(error.contains("unknown field `feild`"), "{error}");
    }

    #[test]
    fn validation_covers_the_new_keys() {
        let config = from_json(serde_json::json!({
            "bucket": "bkt",
            "max_object_bytes": "6TiB",
            "multipart_threshold": "512KiB",
            "part_size": "4MiB",
            "partitioner": {"type": "time", "path_format": "a//b"},
        }))
        .unwrap();
        let fields: Vec<String> = config.validate().into_iter().map(|i| i.field).collect();
        assert_eq!(
            fields,
            [
                "max_object_bytes",
                "multipart_threshold",
                "part_size",
                "partitioner.path_format"
            ]
        );
        // Objects past 5GiB (one PUT's limit) are fine: they go in parts.
        let config =
            from_json(serde_json::json!({"bucket": "bkt", "max_object_bytes": "6GiB"})).unwrap();
        assert!(config.validate().is_empty());
        assert_eq!(config.multipart_threshold, ByteSize(16 << 20));
        assert_eq!(config.part_size, ByteSize(8 << 20));
        assert_eq!(config.spool_dir(), std::env::temp_dir());
    }

    #[test]
    fn parquet_settings_deserialize_and_validate() {
        let config = from_json(serde_json::json!({"bucket": "bkt", "format": "parquet"})).unwrap();
        assert_eq!(config.format, Format::Parquet);
        assert_eq!(config.parquet, ParquetConfig::default());
        assert_eq!(config.parquet.compression, ParquetCompression::Snappy);
        assert!(config.validate().is_empty());

        let config = from_json(serde_json::json!({
            "bucket": "bkt",
            "format": "parquet",
            "compression": "gzip",
            "parquet": {"row_group_rows": 0, "compression": "zstd"},
        }))
        .unwrap();
        assert_eq!(config.parquet.compression, ParquetCompression::Zstd);
        let fields: Vec<String> = config.validate().into_iter().map(|i| i.field).collect();
        assert_eq!(fields, ["compression", "parquet.row_group_rows"]);

        let error =
            from_json(serde_json::json!({"bucket": "bkt", "parquet": {"rows": 5}})).unwrap_err();
        assert!(error.contains("unknown field `rows`"), "{error}");
        let error = from_json(serde_json::json!({"bucket": "bkt", "format": "avro"})).unwrap_err();
        assert!(error.contains("unknown variant `avro`"), "{error}");
    }
}
