//! `timestamp_router`: Kafka Connect's `TimestampRouter`, renaming the
//! record's topic from its old name and its timestamp, e.g. `prices` →
//! `prices-20210528`. Mainly for sinks, where the topic often names the
//! destination table, index or prefix.
//!
//! `${topic}` in `topic_format` is replaced by the topic, then `${timestamp}`
//! by the record timestamp formatted in UTC with `timestamp_format` (a
//! `java.text.SimpleDateFormat` pattern, translated as for
//! `timestamp_converter`). A record without a timestamp is an error, as in
//! Kafka Connect ("Timestamp missing on record"): on the source side a
//! record has a timestamp only if its source sets one.
//!
//! The placeholders `${topic}` and `${timestamp}` are written as is in the
//! pipeline YAML: the loader only reads `${provider:...}` (such as
//! `${env:NAME}`) as a reference.
//!
//! Differences from Kafka Connect: `timestamp_format` supports the common
//! pattern letters only (`y M d H h m s S a E Z X`); any other letter is a
//! config error rather than silently supported.

use std::sync::Arc;

use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::{ConnectorError, ConnectorResult, Record};
use serde::Deserialize;

use crate::timestamp_converter::SimpleDateFormat;

/// Renames the topic from the old name and the record timestamp.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimestampRouterConfig {
    /// The new topic name: `${topic}` stands for the old name and
    /// `${timestamp}` for the formatted timestamp (default `${topic}-${timestamp}`);
    /// written as is in YAML.
    #[serde(default = "default_topic_format")]
    pub topic_format: String,
    /// A `java.text.SimpleDateFormat` pattern for the timestamp, in UTC
    /// (default `yyyyMMdd`).
    #[serde(default = "default_timestamp_format")]
    pub timestamp_format: String,
}

fn default_topic_format() -> String {
    "${topic}-${timestamp}".to_owned()
}

fn default_timestamp_format() -> String {
    "yyyyMMdd".to_owned()
}

impl TransformConfig for TimestampRouterConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.topic_format.is_empty() {
            issues.push(FieldIssue::new(
                "topic_format",
                "is empty: give the new topic name, e.g. `$${topic}-$${timestamp}`",
            ));
        }
        if let Err(message) = SimpleDateFormat::new(&self.timestamp_format) {
            issues.push(FieldIssue::new("timestamp_format", message));
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        let format = SimpleDateFormat::new(&self.timestamp_format).map_err(|message| {
            ConnectorError::fatal(format!("timestamp_router `timestamp_format`: {message}"))
        })?;
        Ok(Box::new(TimestampRouter {
            topic_format: self.topic_format.clone(),
            format,
        }))
    }
}

/// The running `timestamp_router`.
#[derive(Debug)]
pub struct TimestampRouter {
    topic_format: String,
    format: SimpleDateFormat,
}

impl Transform for TimestampRouter {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let timestamp = record.timestamp.ok_or_else(|| {
            ConnectorError::fatal(format!(
                "the record has no timestamp (Kafka Connect: \"Timestamp missing on record\"); timestamp_router needs one to name the topic after `{}`",
                record.topic
            ))
        })?;
        let formatted = self
            .format
            .format_millis(timestamp)
            .map_err(|message| ConnectorError::fatal(format!("the record timestamp: {message}")))?;
        // Same order as Kafka Connect: the topic first, then the timestamp.
        let topic = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace("${timestamp}", &formatted);
        record.topic = Arc::from(topic);
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "timestamp_router", TimestampRouterConfig,
    summary: "Renames the topic from its old name and the record timestamp, e.g. `prices-20210528`",
    example: "type: timestamp_router\ntopic_format: archive-${topic}-${timestamp}\ntimestamp_format: yyyy-MM\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn route(yaml: &str, record: &mut Record) -> ConnectorResult<Outcome> {
        let config: TimestampRouterConfig = config(yaml);
        assert_eq!(config.validate(), Vec::new());
        config.build().unwrap().apply(record)
    }

    #[test]
    fn defaults_append_the_day() {
        let mut record = record(Some(json!("k")), Some(stock_value()));
        assert_eq!(route("{}", &mut record).unwrap(), Outcome::Keep);
        assert_eq!(&*record.topic, "t-20210528");
        // Only the topic changes.
        assert_eq!(record.value, Some(stock_value()));
        assert_eq!(record.key, Some(json!("k")));
        assert_eq!(record.timestamp, Some(1_622_160_000_000));
    }

    #[test]
    fn custom_formats_and_placeholders() {
        let mut record = record(None, None);
        record.timestamp = Some(1_622_207_655_678);
        route(
            "topic_format: \"archive.$${timestamp}.$${topic}.$${topic}\"\ntimestamp_format: \"yyyy-MM-dd'T'HH\"\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(&*record.topic, "archive.2021-05-28T13.t.t");
        let mut fixed = crate::testing::record(None, None);
        route("topic_format: fixed\n", &mut fixed).unwrap();
        assert_eq!(&*fixed.topic, "fixed");
    }

    #[test]
    fn tombstones_are_routed_too() {
        let mut tombstone = record(Some(json!("k")), None);
        route("timestamp_format: yyyy\n", &mut tombstone).unwrap();
        assert_eq!(&*tombstone.topic, "t-2021");
        assert_eq!(tombstone.value, None);
    }

    #[test]
    fn a_record_without_timestamp_is_an_error() {
        let mut record = source_record(None, Some(json!({"a": 1})));
        record.timestamp = None;
        assert_eq!(
            route("{}", &mut record).unwrap_err().to_string(),
            "the record has no timestamp (Kafka Connect: \"Timestamp missing on record\"); timestamp_router needs one to name the topic after `t`"
        );
        assert_eq!(&*record.topic, "t");
    }

    #[test]
    fn config_errors() {
        let config: TimestampRouterConfig =
            crate::testing::config("topic_format: \"\"\ntimestamp_format: YYYYww\n");
        assert_eq!(
            config.validate(),
            vec![
                FieldIssue::new(
                    "topic_format",
                    "is empty: give the new topic name, e.g. `$${topic}-$${timestamp}`"
                ),
                FieldIssue::new(
                    "timestamp_format",
                    "pattern letter `Y` in `YYYYww` is not supported (supported: y M d H h m s S a E Z X); quote literal text, e.g. `'T'`"
                ),
            ]
        );
        assert!(config.build().is_err());
        assert_eq!(
            try_config::<TimestampRouterConfig>("topic.format: x\n").unwrap_err(),
            vec!["1:1: \"topic.format\": unknown key `topic.format` (did you mean `topic_format`?); expected one of `topic_format`, `timestamp_format`".to_owned()]
        );
    }
}
