//! `insert_field`: inserts record metadata (topic, partition, offset,
//! timestamp) and a static string into the record key or value, like Kafka
//! Connect's `InsertField$Key` / `InsertField$Value` in schemaless mode.
//!
//! Each configured field is set in the targeted object: a field that already
//! exists keeps its position and gets the new value (Kafka Connect overwrites
//! it too); new fields are appended in the order topic, partition, offset,
//! timestamp, static. The values are those Kafka Connect puts in a schemaless
//! map:
//! - `topic_field`: the topic name, a string;
//! - `partition_field`: the Kafka partition, a number; not inserted when the
//!   record has no partition yet (a source record), as in Kafka Connect;
//! - `offset_field`: the Kafka offset, a number; only records read from Kafka
//!   (sink side) have one, and a record without one is an error, as Kafka
//!   Connect's "Only SinkRecord supported for [field insertion]";
//! - `timestamp_field`: the record timestamp as epoch milliseconds, a number
//!   (schemaless Kafka Connect inserts `record.timestamp()`, a `Long`; only its
//!   Struct mode inserts a `Timestamp`); not inserted when the record has no
//!   timestamp. Use `timestamp_converter` afterwards to format it;
//! - `static_field`: `static_value`, always a string.
//!
//! A null key or a tombstone value passes through unchanged, as in Kafka
//! Connect. A key or value that is not an object (a string, a number, an
//! array) is an error, as Kafka Connect's "Only Map objects supported in
//! absence of schema for [field insertion]". (All of this checked against
//! Kafka Connect 4.4.0.)
//!
//! Deliberate differences from Kafka Connect:
//! - Field names are dotted paths: `kafka.topic` sets `topic` in the object
//!   `kafka`, created when missing. Quote a name that holds dots or spaces
//!   (`"kafka.topic"`). Kafka Connect only sets top-level fields.
//! - Kafka Connect's `!`/`?` suffix (required/optional field) is not
//!   supported: it only changes the schema of Struct records, which Sluice
//!   does not have.
//! - `static_value` without `static_field`, and two keys naming the same
//!   field, are config errors; Kafka Connect ignores the value, or lets the
//!   later field win. (`static_field` without `static_value` is a config
//!   error in Kafka Connect too.)

use crate::kind;
use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::{FieldPath, Target};
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::Deserialize;

/// Inserts record metadata and a static string into the key or value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsertFieldConfig {
    /// Which part of the record gets the fields: `value` (default) or `key`.
    #[serde(default)]
    pub target: Target,
    /// The field that gets the topic name (Kafka Connect's `topic.field`).
    #[serde(default)]
    pub topic_field: Option<FieldPath>,
    /// The field that gets the Kafka partition (Kafka Connect's `partition.field`).
    #[serde(default)]
    pub partition_field: Option<FieldPath>,
    /// The field that gets the Kafka offset, sink side only (Kafka Connect's `offset.field`).
    #[serde(default)]
    pub offset_field: Option<FieldPath>,
    /// The field that gets the record timestamp in epoch milliseconds
    /// (Kafka Connect's `timestamp.field`).
    #[serde(default)]
    pub timestamp_field: Option<FieldPath>,
    /// The field that gets `static_value` (Kafka Connect's `static.field`).
    #[serde(default)]
    pub static_field: Option<FieldPath>,
    /// The string inserted in `static_field` (Kafka Connect's `static.value`).
    #[serde(default)]
    pub static_value: Option<String>,
}

impl InsertFieldConfig {
    /// The configured fields with their YAML keys, in insertion order.
    fn fields(&self) -> impl Iterator<Item = (&'static str, &FieldPath)> {
        [
            ("topic_field", &self.topic_field),
            ("partition_field", &self.partition_field),
            ("offset_field", &self.offset_field),
            ("timestamp_field", &self.timestamp_field),
            ("static_field", &self.static_field),
        ]
        .into_iter()
        .filter_map(|(key, path)| path.as_ref().map(|p| (key, p)))
    }
}

impl TransformConfig for InsertFieldConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.fields().next().is_none() {
            issues.push(FieldIssue::new(
                "",
                "set at least one of `topic_field`, `partition_field`, `offset_field`, `timestamp_field`, `static_field`",
            ));
        }
        match (&self.static_field, &self.static_value) {
            (Some(_), None) => issues.push(FieldIssue::new(
                "static_field",
                "needs `static_value`, the string to insert",
            )),
            (None, Some(_)) => issues.push(FieldIssue::new(
                "static_value",
                "needs `static_field`, the field to insert it in",
            )),
            _ => {}
        }
        let fields: Vec<_> = self.fields().collect();
        for (i, (key, path)) in fields.iter().enumerate() {
            if let Some((first, _)) = fields[..i].iter().find(|(_, p)| p == path) {
                issues.push(FieldIssue::new(
                    *key,
                    format!("names the field `{path}` that `{first}` already sets; give each a different field"),
                ));
            }
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(InsertField {
            config: self.clone(),
        }))
    }
}

/// The running transform.
struct InsertField {
    config: InsertFieldConfig,
}

impl Transform for InsertField {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let config = &self.config;
        let target = config.target;
        let topic = record.topic.clone();
        let partition = record.partition;
        let offset = record.offset;
        let timestamp = record.timestamp;
        let object = match target.get_mut(record) {
            None | Some(Value::Null) => return Ok(Outcome::Keep),
            Some(object @ Value::Object(_)) => object,
            Some(other) => {
                return Err(ConnectorError::fatal(format!(
                    "insert_field works on objects only, and the record {} is {} (Kafka Connect: \"Only Map objects supported in absence of schema for [field insertion]\")",
                    target.name(),
                    kind(other)
                )))
            }
        };
        // Check before changing anything, so a failing record is left as it was.
        if let (Some(path), None) = (&config.offset_field, offset) {
            return Err(ConnectorError::fatal(format!(
                "offset_field `{path}`: the record has no Kafka offset yet; offsets exist only on records read from Kafka, so use offset_field in a sink's transforms"
            )));
        }
        let mut inserts: Vec<(&FieldPath, Value)> = Vec::with_capacity(5);
        if let Some(path) = &config.topic_field {
            inserts.push((path, Value::String(topic.to_string())));
        }
        if let (Some(path), Some(partition)) = (&config.partition_field, partition) {
            inserts.push((path, Value::from(partition)));
        }
        if let (Some(path), Some(offset)) = (&config.offset_field, offset) {
            inserts.push((path, Value::from(offset)));
        }
        if let (Some(path), Some(timestamp)) = (&config.timestamp_field, timestamp) {
            inserts.push((path, Value::from(timestamp)));
        }
        if let (Some(path), Some(text)) = (&config.static_field, &config.static_value) {
            inserts.push((path, Value::String(text.clone())));
        }
        for (path, value) in inserts {
            path.insert(object, value)
                .map_err(|e| ConnectorError::fatal(format!("insert_field: {e}")))?;
        }
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "insert_field", InsertFieldConfig,
    summary: "Inserts the topic, partition, offset, timestamp or a static string as fields of the key or value",
    example: "type: insert_field\ntopic_field: kafka_topic\ntimestamp_field: kafka_timestamp\nstatic_field: source\nstatic_value: stock-exchange\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> ConnectorResult<Outcome> {
        apply_config::<InsertFieldConfig>(yaml, record)
    }

    #[test]
    fn inserts_metadata_after_the_existing_fields() {
        let mut record = record(None, Some(json!({"Index": "HSI", "Close": 2568.300049})));
        let outcome = run(
            "topic_field: t\npartition_field: p\noffset_field: o\ntimestamp_field: ts\nstatic_field: s\nstatic_value: 5\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(outcome, Outcome::Keep);
        assert_eq!(
            serde_json::to_string(record.value.as_ref().unwrap()).unwrap(),
            r#"{"Index":"HSI","Close":2568.300049,"t":"t","p":0,"o":42,"ts":1622160000000,"s":"5"}"#
        );
        assert_eq!(record.key, None);
    }

    #[test]
    fn overwrites_an_existing_field_in_place_and_inserts_nested_paths() {
        let mut record = record(None, Some(json!({"a": 1, "topic": "old", "b": 2})));
        run(
            "topic_field: topic\nstatic_field: meta.\"x.y\"\nstatic_value: v\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(record.value.as_ref().unwrap()).unwrap(),
            r#"{"a":1,"topic":"t","b":2,"meta":{"x.y":"v"}}"#
        );
    }

    #[test]
    fn targets_the_key_and_skips_missing_partition_and_timestamp() {
        let mut record = source_record(Some(json!({"id": 7})), Some(json!("untouched")));
        record.timestamp = None;
        run(
            "target: key\npartition_field: p\ntimestamp_field: ts\ntopic_field: t\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(record.key, Some(json!({"id": 7, "t": "t"})));
        assert_eq!(record.value, Some(json!("untouched")));
    }

    #[test]
    fn passes_tombstones_and_null_keys_through() {
        let mut tombstone = record(Some(json!("k")), None);
        run("topic_field: t\n", &mut tombstone).unwrap();
        assert_eq!(tombstone, record(Some(json!("k")), None));
        let mut null_key = record(None, Some(json!({"a": 1})));
        run("target: key\ntopic_field: t\n", &mut null_key).unwrap();
        assert_eq!(null_key, record(None, Some(json!({"a": 1}))));
    }

    #[test]
    fn rejects_values_that_are_not_objects() {
        let mut record = record(None, Some(json!([1, 2])));
        let error = run("topic_field: t\n", &mut record).unwrap_err();
        assert_eq!(
            error.to_string(),
            "insert_field works on objects only, and the record value is an array (Kafka Connect: \"Only Map objects supported in absence of schema for [field insertion]\")"
        );
        assert_eq!(record.value, Some(json!([1, 2])));
    }

    #[test]
    fn offset_needs_a_record_read_from_kafka() {
        let mut record = source_record(None, Some(json!({"a": 1})));
        let error = run("topic_field: t\noffset_field: o\n", &mut record).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("offset_field `o`: the record has no Kafka offset yet"),
            "{error}"
        );
        assert_eq!(
            record.value,
            Some(json!({"a": 1})),
            "changed before failing"
        );
    }

    #[test]
    fn a_parent_that_is_not_an_object_is_an_error() {
        let mut record = record(None, Some(json!({"meta": 3})));
        let error = run("topic_field: meta.topic\n", &mut record).unwrap_err();
        assert_eq!(
            error.to_string(),
            "insert_field: cannot set `meta.topic`: its parent is not an object"
        );
    }

    #[test]
    fn reports_config_problems() {
        let empty: InsertFieldConfig = config("target: value\n");
        assert_eq!(
            empty.validate(),
            vec![FieldIssue::new(
                "",
                "set at least one of `topic_field`, `partition_field`, `offset_field`, `timestamp_field`, `static_field`"
            )]
        );
        let bad: InsertFieldConfig = config("static_field: s\ntopic_field: s\n");
        assert_eq!(
            bad.validate(),
            vec![
                FieldIssue::new("static_field", "needs `static_value`, the string to insert"),
                FieldIssue::new(
                    "static_field",
                    "names the field `s` that `topic_field` already sets; give each a different field"
                ),
            ]
        );
        let lone: InsertFieldConfig = config("static_value: x\ntimestamp_field: ts\n");
        assert_eq!(
            lone.validate(),
            vec![FieldIssue::new(
                "static_value",
                "needs `static_field`, the field to insert it in"
            )]
        );
        assert_eq!(
            try_config::<InsertFieldConfig>("topic.field: t\ntopic_field: a..b\n").unwrap_err(),
            vec![
                "1:1: \"topic.field\": unknown key `topic.field` (did you mean `topic_field`?); expected one of `target`, `topic_field`, `partition_field`, `offset_field`, `timestamp_field`, `static_field`, `static_value`".to_owned(),
                "2:14: topic_field: field path `a..b` has an empty segment; quote names with dots or spaces, e.g. `\"Adj Close\"`".to_owned(),
            ]
        );
    }

    #[test]
    fn locates_validation_problems_in_the_pipeline_file() {
        let yaml = "transforms:\n  - type: insert_field\n    static_field: s\n";
        assert_eq!(
            crate::testing::chain_errors("t.yaml", yaml),
            "t.yaml:3:19: transforms[0].static_field: transform 1 `insert_field`: needs `static_value`, the string to insert"
        );
    }
}
