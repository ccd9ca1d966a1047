//! Configuration of the `file` source and the `file` sink.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connect_core::config::units::{ByteSize, HumanDuration};
use connect_core::plugin::{
    split_files, BuildContext, FieldIssue, Sink, SinkConfig, SinkStats, Source, SourceConfig,
    SourceStream,
};
use connect_core::schemars::{self, JsonSchema};
use connect_core::ConnectorResult;
use serde::{Deserialize, Serialize};

use crate::sink::FileSink;
use crate::source::FileSource;

/// Reads the lines of a local file into Kafka, one record per line.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The file, relative to the pipeline file's directory. A folder (each
    /// file in it, hidden ones left out) or a glob (`logs/*.log`) makes one
    /// stream per file, in name order: each keeps its own position, and the
    /// pipeline's `source.max_tasks` spreads them over tasks (and workers).
    pub path: PathBuf,
    /// `text` (default): each line is a record whose value is the line as a
    /// string, as Kafka Connect's FileStreamSource reads it. `json`: each
    /// line is one JSON value (JSON Lines); a line that is not is a bad
    /// record for the pipeline's `errors:` policy.
    #[serde(default)]
    pub format: Format,
    /// With `format: json`: the top-level field whose value becomes the
    /// record key (records of one key stay in one partition, in order). A
    /// line without it has no key; a line that is not an object is a bad
    /// record. Without `key_field` records have no key.
    #[serde(default)]
    pub key_field: Option<String>,
    /// At the end of the file, wait for more lines instead of ending the
    /// source, as FileStreamSource does (default false: the source ends at
    /// the end of the file). A line is read once it ends with a newline.
    #[serde(default)]
    pub follow: bool,
    /// With `follow: true`, how long to wait at the end of the file before
    /// looking for new lines again (default 1s).
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// Longest line read as a record, newline excluded (default 1MiB). A
    /// longer line is a bad record (the file is streamed, never loaded
    /// whole). Kafka's own limits (the producer's `message.max.bytes`, the
    /// topic's `max.message.bytes`) apply to the encoded record as well.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: ByteSize,
}

/// How the source turns a line into a record value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The line as a string (UTF-8; a trailing `\r` is dropped).
    #[default]
    Text,
    /// The line parsed as one JSON value (numbers keep their exact text).
    Json,
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

fn default_max_line_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

#[async_trait]
impl SourceConfig for FileSourceConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.path.as_os_str().is_empty() {
            issues.push(FieldIssue::new(
                "path",
                "must name a file, a folder or a glob",
            ));
        }
        match &self.key_field {
            Some(_) if self.format != Format::Json => issues.push(FieldIssue::new(
                "key_field",
                "only applies with `format: json` (a text line has no fields); remove it or set `format: json`",
            )),
            Some(field) if field.is_empty() => issues.push(FieldIssue::new(
                "key_field",
                "must name a top-level field of the JSON lines",
            )),
            _ => {}
        }
        if self.poll_interval.0.is_zero() {
            issues.push(FieldIssue::new(
                "poll_interval",
                "must be longer than zero, e.g. `500ms`",
            ));
        }
        if self.max_line_bytes.0 == 0 {
            issues.push(FieldIssue::new("max_line_bytes", "must be at least 1 byte"));
        }
        issues
    }

    async fn build(&self, ctx: &BuildContext) -> ConnectorResult<Box<dyn Source>> {
        Ok(Box::new(FileSource::new(self.clone(), ctx)))
    }

    fn split(&self, ctx: &BuildContext) -> ConnectorResult<Option<Vec<SourceStream>>> {
        let visible = |p: &Path| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        };
        // Each stream's partition is what its records carry (`FileSource::open`).
        split_files(&ctx.resolve_path(&self.path), "files", visible, |file| {
            Box::new(FileSourceConfig {
                path: file,
                ..self.clone()
            })
        })
    }
}

/// Writes each record as one line of a local file, exactly once.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The output file, relative to the pipeline file's directory; its
    /// folder is created. Next to it, `<path>.offsets.json` records how far
    /// the file is written (the Kafka offsets it holds and its length), so
    /// that a restart after a crash neither loses nor repeats a line. One
    /// file takes every partition of the topic: run the sink on one worker.
    pub path: PathBuf,
    /// Lines buffered before they are written to the file, synced and
    /// recorded (default 10000); the pipeline's end and `flush_interval`
    /// write fewer.
    #[serde(default = "default_flush_size")]
    pub flush_size: u64,
    /// Age at which buffered lines are written even when fewer than
    /// `flush_size`, including when no new record arrives (default 1s).
    #[serde(default = "default_flush_interval")]
    pub flush_interval: HumanDuration,
    /// Size at which buffered lines are written even when fewer than
    /// `flush_size`, e.g. `16MiB` (the default); it bounds the sink's memory.
    #[serde(default = "default_max_buffer_bytes")]
    pub max_buffer_bytes: ByteSize,
    /// Sync the file and its offsets to disk at each write (default true).
    /// `false` still survives a crash of Sluice (kill -9), but not one of
    /// the machine (power loss, kernel panic), which may then lose or
    /// repeat lines: for benchmarks and scratch files.
    #[serde(default = "default_fsync")]
    pub fsync: bool,
}

fn default_flush_size() -> u64 {
    10_000
}

fn default_flush_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

fn default_max_buffer_bytes() -> ByteSize {
    ByteSize(16 << 20)
}

fn default_fsync() -> bool {
    true
}

#[async_trait]
impl SinkConfig for FileSinkConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.path.as_os_str().is_empty() {
            issues.push(FieldIssue::new("path", "must name the output file"));
        } else if self.path.file_name().is_none() {
            issues.push(FieldIssue::new(
                "path",
                format!(
                    "`{}` names a folder; give the output file's name",
                    self.path.display()
                ),
            ));
        }
        if self.flush_size == 0 {
            issues.push(FieldIssue::new("flush_size", "must be at least 1"));
        }
        if self.flush_interval.0.is_zero() {
            issues.push(FieldIssue::new(
                "flush_interval",
                "must be longer than zero, e.g. `1s`",
            ));
        }
        if self.max_buffer_bytes.0 == 0 {
            issues.push(FieldIssue::new(
                "max_buffer_bytes",
                "must be at least 1 byte",
            ));
        }
        issues
    }

    async fn build(
        &self,
        ctx: &BuildContext,
        stats: Arc<SinkStats>,
    ) -> ConnectorResult<Box<dyn Sink>> {
        Ok(Box::new(FileSink::open(self.clone(), ctx, stats)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(value: serde_json::Value) -> Result<FileSourceConfig, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    fn sink(value: serde_json::Value) -> Result<FileSinkConfig, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    fn fields(issues: Vec<FieldIssue>) -> Vec<String> {
        issues.into_iter().map(|i| i.field).collect()
    }

    #[test]
    fn source_defaults() {
        let config = source(serde_json::json!({"path": "in.txt"})).expect("valid");
        assert_eq!(config.format, Format::Text);
        assert_eq!(config.key_field, None);
        assert!(!config.follow);
        assert_eq!(config.poll_interval.0, Duration::from_secs(1));
        assert_eq!(config.max_line_bytes, ByteSize(1 << 20));
        assert!(config.validate().is_empty());

        let config = source(serde_json::json!({
            "path": "in.jsonl", "format": "json", "key_field": "id",
            "follow": true, "poll_interval": "500ms", "max_line_bytes": "64KiB",
        }))
        .expect("valid");
        assert_eq!(config.format, Format::Json);
        assert_eq!(config.poll_interval.0, Duration::from_millis(500));
        assert_eq!(config.max_line_bytes, ByteSize(64 << 10));
        assert!(config.validate().is_empty());
    }

    #[test]
    fn source_validation_reports_every_problem() {
        let config = source(serde_json::json!({
            "path": "", "key_field": "id", "poll_interval": "0s", "max_line_bytes": 0,
        }))
        .expect("parses");
        assert_eq!(
            fields(config.validate()),
            ["path", "key_field", "poll_interval", "max_line_bytes"]
        );
        let config = source(serde_json::json!({"path": "x", "format": "json", "key_field": ""}))
            .expect("parses");
        let issues = config.validate();
        assert_eq!(issues.len(), 1);
        assert!(issues[0].message.contains("top-level field"), "{issues:?}");

        let error = source(serde_json::json!({"path": "x", "formt": "json"})).unwrap_err();
        assert!(error.contains("unknown field `formt`"), "{error}");
        let error = source(serde_json::json!({"path": "x", "format": "csv"})).unwrap_err();
        assert!(error.contains("unknown variant `csv`"), "{error}");
        let error = source(serde_json::json!({"format": "json"})).unwrap_err();
        assert!(error.contains("missing field `path`"), "{error}");
    }

    #[test]
    fn sink_defaults_and_validation() {
        let config = sink(serde_json::json!({"path": "out/lines.txt"})).expect("valid");
        assert_eq!(config.flush_size, 10_000);
        assert_eq!(config.flush_interval.0, Duration::from_secs(1));
        assert_eq!(config.max_buffer_bytes, ByteSize(16 << 20));
        assert!(config.fsync);
        assert!(config.validate().is_empty());

        let config = sink(serde_json::json!({
            "path": "", "flush_size": 0, "flush_interval": "0ms", "max_buffer_bytes": "0KiB",
        }))
        .expect("parses");
        assert_eq!(
            fields(config.validate()),
            ["path", "flush_size", "flush_interval", "max_buffer_bytes"]
        );
        let config = sink(serde_json::json!({"path": "out/.."})).expect("parses");
        assert_eq!(fields(config.validate()), ["path"]);
        let error = sink(serde_json::json!({"path": "x", "flush_size": -1})).unwrap_err();
        assert!(error.contains("invalid"), "{error}");
        let error = sink(serde_json::json!({"path": "x", "fsink": false})).unwrap_err();
        assert!(error.contains("unknown field `fsink`"), "{error}");
    }
}
