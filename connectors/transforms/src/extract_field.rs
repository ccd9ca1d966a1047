//! `extract_field`: replaces the record key or value with one of its fields,
//! like Kafka Connect's `ExtractField$Key` / `ExtractField$Value` in
//! schemaless mode.
//!
//! `field` is a dotted path, as Kafka Connect's with
//! `field.syntax.version=V2`: `meta.id` takes the field `id` of the object
//! `meta`. A missing field (or a missing or null parent on the way) gives a
//! null key or value, as in Kafka Connect, where the field's `null` becomes
//! the record's; for the value that is a tombstone. A null key or a tombstone
//! value passes through unchanged. A key or value that is not an object is an
//! error ("Only Map objects supported in absence of schema for [field
//! extraction]"), and so is a parent on the path that is neither an object nor
//! null ("... for [nested field access]").
//!
//! Deliberate differences from Kafka Connect:
//! - Paths are always dotted (Kafka Connect's default `V1` syntax takes the
//!   name literally); quote a name with dots or spaces in double quotes
//!   (`"Adj Close"`, `meta."x.y"`) where Kafka Connect's `V2` uses backticks.
//!   There is no `field_syntax_version` key.

use crate::kind;
use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::{FieldPath, Target};
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::Deserialize;

/// Replaces the key or value with one of its fields.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractFieldConfig {
    /// Which part of the record to replace: `value` (default) or `key`.
    #[serde(default)]
    pub target: Target,
    /// The field to extract, as a dotted path (`id`, `meta.id`, `"Adj Close"`).
    pub field: FieldPath,
}

impl TransformConfig for ExtractFieldConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        // A field path always names a field: the parser rejects empty ones.
        Vec::new()
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(ExtractField {
            target: self.target,
            field: self.field.clone(),
        }))
    }
}

/// The running transform.
struct ExtractField {
    target: Target,
    field: FieldPath,
}

impl Transform for ExtractField {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let target = self.target;
        let slot = target.get_mut(record);
        let value = match slot {
            None | Some(Value::Null) => return Ok(Outcome::Keep),
            Some(value @ Value::Object(_)) => value,
            Some(other) => {
                return Err(ConnectorError::fatal(format!(
                    "extract_field works on objects only, and the record {} is {} (Kafka Connect: \"Only Map objects supported in absence of schema for [field extraction]\")",
                    target.name(),
                    kind(other)
                )))
            }
        };
        // Check the parents first, as Kafka Connect's `SingleFieldPath`.
        let segments = self.field.segments();
        let parents = &segments[..segments.len().saturating_sub(1)];
        let mut current: &Value = value;
        for (depth, segment) in parents.iter().enumerate() {
            match current.get(segment) {
                None | Some(Value::Null) => {
                    *slot = None;
                    return Ok(Outcome::Keep);
                }
                Some(object @ Value::Object(_)) => current = object,
                Some(other) => {
                    let parent = parents[..=depth]
                        .iter()
                        .map(|s| FieldPath::single(s.clone()).to_string())
                        .collect::<Vec<_>>()
                        .join(".");
                    return Err(ConnectorError::fatal(format!(
                        "extract_field: `{parent}` (on the way to `{}`) is {}, not an object (Kafka Connect: \"Only Map objects supported in absence of schema for [nested field access]\")",
                        self.field,
                        kind(other)
                    )));
                }
            }
        }
        let extracted = self
            .field
            .get_mut(value)
            .map(std::mem::take)
            .unwrap_or(Value::Null);
        *slot = match extracted {
            Value::Null => None,
            other => Some(other),
        };
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "extract_field", ExtractFieldConfig,
    summary: "Replaces the key or value with one of its fields",
    example: "type: extract_field\ntarget: key\nfield: Index\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> ConnectorResult<Outcome> {
        apply_config::<ExtractFieldConfig>(yaml, record)
    }

    #[test]
    fn extracts_a_field_of_the_value() {
        let mut record = record(Some(json!("k")), Some(stock_value()));
        run("field: \"Adj Close\"\n", &mut record).unwrap();
        assert_eq!(
            serde_json::to_string(record.value.as_ref().unwrap()).unwrap(),
            "2568.300049"
        );
        assert_eq!(record.key, Some(json!("k")));
    }

    #[test]
    fn extracts_nested_fields_from_the_key() {
        let mut record = record(
            Some(json!({"meta": {"x.y": {"id": [1, 2]}, "z": 1}})),
            Some(json!(3)),
        );
        run("target: key\nfield: meta.\"x.y\"\n", &mut record).unwrap();
        assert_eq!(
            serde_json::to_string(record.key.as_ref().unwrap()).unwrap(),
            r#"{"id":[1,2]}"#
        );
        assert_eq!(record.value, Some(json!(3)));
    }

    #[test]
    fn missing_and_null_fields_give_a_null_value() {
        for value in [
            json!({"a": 1}),
            json!({"id": null}),
            json!({"meta": null}),
            json!({"other": {"id": 1}}),
        ] {
            let mut record = record(None, Some(value.clone()));
            let path = if value.get("meta").is_some() {
                "meta.id"
            } else {
                "id"
            };
            run(&format!("field: {path}\n"), &mut record).unwrap();
            assert_eq!(record.value, None, "{value}");
        }
    }

    #[test]
    fn passes_tombstones_and_null_keys_through() {
        let mut tombstone = record(Some(json!({"id": 1})), None);
        run("field: id\n", &mut tombstone).unwrap();
        assert_eq!(tombstone, record(Some(json!({"id": 1})), None));
        let mut null_key = record(None, Some(json!({"id": 1})));
        run("target: key\nfield: id\n", &mut null_key).unwrap();
        assert_eq!(null_key, record(None, Some(json!({"id": 1}))));
    }

    #[test]
    fn values_and_parents_that_are_not_objects_are_errors() {
        let mut record = record(None, Some(json!("text")));
        assert_eq!(
            run("field: id\n", &mut record).unwrap_err().to_string(),
            "extract_field works on objects only, and the record value is a string (Kafka Connect: \"Only Map objects supported in absence of schema for [field extraction]\")"
        );
        let mut record = crate::testing::record(None, Some(json!({"a": {"b c": 5}})));
        assert_eq!(
            run("field: a.\"b c\".d\n", &mut record).unwrap_err().to_string(),
            "extract_field: `a.\"b c\"` (on the way to `a.\"b c\".d`) is a number, not an object (Kafka Connect: \"Only Map objects supported in absence of schema for [nested field access]\")"
        );
        assert_eq!(record.value, Some(json!({"a": {"b c": 5}})));
    }

    #[test]
    fn reports_config_problems() {
        assert_eq!(
            try_config::<ExtractFieldConfig>("target: both\n").unwrap_err(),
            vec!["1:9: target: unknown value `both`; expected one of `value`, `key`".to_owned()]
        );
        assert_eq!(
            try_config::<ExtractFieldConfig>("field: a.\n").unwrap_err(),
            vec!["1:8: field: field path `a.` has an empty segment; quote names with dots or spaces, e.g. `\"Adj Close\"`".to_owned()]
        );
        assert_eq!(
            try_config::<ExtractFieldConfig>("target: key\n").unwrap_err(),
            vec!["1:1: : missing field `field`".to_owned()]
        );
    }
}
