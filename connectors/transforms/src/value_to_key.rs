//! `value_to_key`: replaces the record key with an object of fields copied
//! from the record value, like Kafka Connect's `ValueToKey` in schemaless
//! mode.
//!
//! The new key holds the listed fields in the listed order; a field missing
//! from the value is null in the key, as in Kafka Connect (which puts
//! `value.get(field)`). The value is not changed. A value that is not an
//! object is an error, as Kafka Connect's "Only Map objects supported in
//! absence of schema for [copying fields from value to key]" — and so is a
//! tombstone, whose fields cannot be read: Kafka Connect fails on it too.
//! Guard the step with a negated `record_is_tombstone` predicate to let
//! tombstones pass with their key.
//!
//! Deliberate differences from Kafka Connect:
//! - `fields` are dotted paths into nested objects: `meta.id` copies the
//!   field `id` of the object `meta` and the key gets the same nesting
//!   (`{"meta": {"id": ...}}`). Quote names with dots or spaces
//!   (`"Adj Close"`). Kafka Connect reads top-level fields, or, with
//!   `field.syntax.version=V2`, nested ones under a key field named after the
//!   whole path (`{"meta.id": 9}` where Sluice gives `{"meta": {"id": 9}}`). A path whose
//!   parent in the value is not an object is null in the key.
//! - Kafka Connect builds the key as a `HashMap` (no order); Sluice keeps the
//!   listed order.

use crate::kind;
use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::FieldPath;
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::Deserialize;

/// Replaces the key with fields copied from the value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueToKeyConfig {
    /// The value's fields that make the new key, in order, as dotted paths
    /// (at least one).
    pub fields: Vec<FieldPath>,
}

impl TransformConfig for ValueToKeyConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.fields.is_empty() {
            issues.push(FieldIssue::new(
                "fields",
                "list at least one field of the value to make the key from",
            ));
        }
        for (i, path) in self.fields.iter().enumerate() {
            if self.fields[..i].contains(path) {
                issues.push(FieldIssue::new(
                    "fields",
                    format!("lists `{path}` twice; list each field once"),
                ));
            } else if let Some(parent) = self.fields.iter().find(|other| {
                other.segments().len() < path.segments().len()
                    && path.segments().starts_with(other.segments())
            }) {
                issues.push(FieldIssue::new(
                    "fields",
                    format!("lists `{path}` and `{parent}`, which already holds it; keep one"),
                ));
            }
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(ValueToKey {
            fields: self.fields.clone(),
        }))
    }
}

/// The running transform.
struct ValueToKey {
    fields: Vec<FieldPath>,
}

impl Transform for ValueToKey {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let value = match &record.value {
            Some(value @ Value::Object(_)) => value,
            None | Some(Value::Null) => {
                return Err(ConnectorError::fatal(
                    "value_to_key cannot make a key from a tombstone (a null value), as in Kafka Connect; guard the step with `predicate: <name of a record_is_tombstone predicate>` and `negate: true` to keep tombstones as they are",
                ))
            }
            Some(other) => {
                return Err(ConnectorError::fatal(format!(
                    "value_to_key works on objects only, and the record value is {} (Kafka Connect: \"Only Map objects supported in absence of schema for [copying fields from value to key]\")",
                    kind(other)
                )))
            }
        };
        let mut key = Value::Object(serde_json::Map::with_capacity(self.fields.len()));
        for path in &self.fields {
            let field = path.get(value).cloned().unwrap_or(Value::Null);
            path.insert(&mut key, field)
                .map_err(|e| ConnectorError::fatal(format!("value_to_key: {e}")))?;
        }
        record.key = Some(key);
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "value_to_key", ValueToKeyConfig,
    summary: "Replaces the record key with an object of fields copied from the value",
    example: "type: value_to_key\nfields: [Index, Date]\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> ConnectorResult<Outcome> {
        apply_config::<ValueToKeyConfig>(yaml, record)
    }

    #[test]
    fn makes_the_key_from_fields_in_the_listed_order() {
        let mut record = record(Some(json!("old")), Some(stock_value()));
        run("fields: [Date, Index, \"Adj Close\"]\n", &mut record).unwrap();
        assert_eq!(
            serde_json::to_string(record.key.as_ref().unwrap()).unwrap(),
            r#"{"Date":"1986-12-31","Index":"HSI","Adj Close":2568.300049}"#
        );
        assert_eq!(record.value, Some(stock_value()));
    }

    #[test]
    fn missing_fields_are_null_in_the_key() {
        let mut record = record(None, Some(json!({"a": 1, "s": "x"})));
        run("fields: [a, missing, s.sub]\n", &mut record).unwrap();
        assert_eq!(
            serde_json::to_string(record.key.as_ref().unwrap()).unwrap(),
            r#"{"a":1,"missing":null,"s":{"sub":null}}"#
        );
    }

    #[test]
    fn nested_fields_keep_their_nesting() {
        let mut record = record(None, Some(json!({"meta": {"id": 5, "x": 1}, "n": 2})));
        run("fields: [meta.id, n]\n", &mut record).unwrap();
        assert_eq!(
            serde_json::to_string(record.key.as_ref().unwrap()).unwrap(),
            r#"{"meta":{"id":5},"n":2}"#
        );
    }

    #[test]
    fn tombstones_and_values_that_are_not_objects_are_errors() {
        let mut tombstone = record(Some(json!("k")), None);
        let error = run("fields: [a]\n", &mut tombstone).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("value_to_key cannot make a key from a tombstone"),
            "{error}"
        );
        assert_eq!(tombstone.key, Some(json!("k")));
        let mut record = record(Some(json!("k")), Some(json!([1])));
        assert_eq!(
            run("fields: [a]\n", &mut record).unwrap_err().to_string(),
            "value_to_key works on objects only, and the record value is an array (Kafka Connect: \"Only Map objects supported in absence of schema for [copying fields from value to key]\")"
        );
        assert_eq!(record.key, Some(json!("k")));
    }

    #[test]
    fn reports_config_problems() {
        let bad: ValueToKeyConfig = config("fields: [a, b, a, b.c]\n");
        assert_eq!(
            bad.validate(),
            vec![
                FieldIssue::new("fields", "lists `a` twice; list each field once"),
                FieldIssue::new(
                    "fields",
                    "lists `b.c` and `b`, which already holds it; keep one"
                ),
            ]
        );
        let empty: ValueToKeyConfig = config("fields: []\n");
        assert_eq!(
            empty.validate(),
            vec![FieldIssue::new(
                "fields",
                "list at least one field of the value to make the key from"
            )]
        );
        assert_eq!(
            try_config::<ValueToKeyConfig>("fields: a\ntarget: key\n").unwrap_err(),
            vec![
                "1:9: fields: expected a list, found a scalar".to_owned(),
                "2:1: target: unknown key `target`; expected one of `fields`".to_owned(),
            ]
        );
    }

    #[test]
    fn locates_validation_problems_in_the_pipeline_file() {
        let yaml = "transforms:\n  - type: value_to_key\n    fields: [a, a]\n";
        assert_eq!(
            crate::testing::chain_errors("t.yaml", yaml),
            "t.yaml:3:13: transforms[0].fields: transform 1 `value_to_key`: lists `a` twice; list each field once"
        );
    }
}
