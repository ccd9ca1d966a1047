//! `mask_field`: replaces fields of the record key or value with an empty
//! value of their type or with a replacement, like Kafka Connect's
//! `MaskField$Key` / `MaskField$Value` in schemaless mode.
//!
//! Without `replacement`, a field is masked as Kafka Connect masks the values
//! its JSON converter reads: an integer becomes `0`, a number with a fraction
//! or an exponent (a `Double` in Kafka Connect) `0.0`, a string `""`, a
//! boolean `false`, an array `[]` and an object `{}`. With `replacement`, an
//! integer field gets the replacement read as an integer, another number
//! field the replacement read as a number (written like Kafka Connect writes
//! a `Double`: `7` becomes `7.0`), and a string field the replacement as is;
//! a replacement that does not read as the field's number type, or a
//! replacement for a boolean, array or object field, is an error, as in Kafka
//! Connect. A null field stays null.
//!
//! As in Kafka Connect, a field that is missing from the record is added with
//! a null value (Kafka Connect puts `masked(value.get(field))`, which is null,
//! for every configured field). A key or value that is not an object is an
//! error, as Kafka Connect's "Only Map objects supported in absence of schema
//! for [mask fields]".
//!
//! Deliberate differences from Kafka Connect:
//! - `fields` are dotted paths into nested objects (`owner.ssn`; quote names
//!   with dots or spaces: `"Adj Close"`); Kafka Connect only masks top-level
//!   fields. When the parent object of a nested field is missing (or is not
//!   an object), the field is left alone rather than created.
//! - Kafka Connect reads a replacement for an integer field with its
//!   `Values` parser, which truncates a fractional replacement (`1.5` masks an
//!   integer field as `1`); Sluice requires an integer replacement for
//!   integer fields and fails otherwise.
//! - Fields keep their order (Kafka Connect builds a `HashMap`).
//! - A null key or a tombstone value passes through unchanged: there is
//!   nothing to mask. Kafka Connect (checked with 4.4.0) fails on it with
//!   "Only Map objects supported in absence of schema for [mask fields],
//!   found: null".

use crate::kind;
use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::{FieldPath, Target};
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::Deserialize;
use serde_json::Number;

/// Masks fields of the key or value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskFieldConfig {
    /// Which part of the record holds the fields: `value` (default) or `key`.
    #[serde(default)]
    pub target: Target,
    /// The fields to mask, as dotted paths (at least one).
    pub fields: Vec<FieldPath>,
    /// The value that replaces number and string fields, instead of `0` or
    /// `""` (not empty; numbers read it as their type).
    #[serde(default)]
    pub replacement: Option<String>,
}

impl TransformConfig for MaskFieldConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.fields.is_empty() {
            issues.push(FieldIssue::new("fields", "list at least one field to mask"));
        }
        if self.replacement.as_deref() == Some("") {
            issues.push(FieldIssue::new(
                "replacement",
                "must not be empty; leave it out to mask with empty values (`0`, `\"\"`, `false`)",
            ));
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        let replacement = self.replacement.as_ref().map(|text| Replacement {
            text: text.clone(),
            integer: text.trim().parse::<i64>().ok().map(Number::from),
            float: text.trim().parse::<f64>().ok().and_then(Number::from_f64),
        });
        Ok(Box::new(MaskField {
            target: self.target,
            fields: self.fields.clone(),
            replacement,
        }))
    }
}

/// `replacement`, read once for each kind of field.
struct Replacement {
    /// As given, for string fields and messages.
    text: String,
    /// For integer fields, if it reads as one.
    integer: Option<Number>,
    /// For other number fields, if it reads as a finite number.
    float: Option<Number>,
}

/// The running transform.
struct MaskField {
    target: Target,
    fields: Vec<FieldPath>,
    replacement: Option<Replacement>,
}

impl MaskField {
    /// The masked form of `value`, the field at `path`.
    fn masked(&self, path: &FieldPath, value: &Value) -> ConnectorResult<Value> {
        let Some(replacement) = &self.replacement else {
            return Ok(match value {
                Value::Null => Value::Null,
                Value::Bool(_) => Value::Bool(false),
                Value::Number(n) if is_integer(n) => Value::from(0),
                Value::Number(_) => Value::from(0.0),
                Value::String(_) => Value::String(String::new()),
                Value::Array(_) => Value::Array(Vec::new()),
                Value::Object(_) => Value::Object(serde_json::Map::new()),
            });
        };
        let text = &replacement.text;
        let (number, expected) = match value {
            Value::Null => return Ok(Value::Null),
            Value::String(_) => return Ok(Value::String(text.clone())),
            Value::Number(n) if is_integer(n) => (&replacement.integer, "an integer"),
            Value::Number(_) => (&replacement.float, "a number"),
            other => {
                return Err(ConnectorError::fatal(format!(
                    "mask_field: `{path}` is {}, which only masks without `replacement` (Kafka Connect: \"Cannot mask value of type ... with custom replacement\")",
                    kind(other)
                )))
            }
        };
        number.clone().map(Value::Number).ok_or_else(|| {
            ConnectorError::fatal(format!(
                "mask_field: `{path}` is {expected}, and the replacement `{text}` does not read as {expected}"
            ))
        })
    }
}

impl Transform for MaskField {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let value = match self.target.get_mut(record) {
            None | Some(Value::Null) => return Ok(Outcome::Keep),
            Some(value @ Value::Object(_)) => value,
            Some(other) => {
                return Err(ConnectorError::fatal(format!(
                    "mask_field works on objects only, and the record {} is {} (Kafka Connect: \"Only Map objects supported in absence of schema for [mask fields]\")",
                    self.target.name(),
                    kind(other)
                )))
            }
        };
        for path in &self.fields {
            let Some(parent) = path.parent_mut(value) else {
                continue;
            };
            match parent.get_mut(path.leaf()) {
                Some(field) => *field = self.masked(path, field)?,
                None => {
                    parent.insert(path.leaf().to_owned(), Value::Null);
                }
            }
        }
        Ok(Outcome::Keep)
    }
}

/// Whether a number is written as an integer (a `Long` in Kafka Connect)
/// rather than with a fraction or an exponent (a `Double`).
fn is_integer(number: &Number) -> bool {
    !number.as_str().contains(['.', 'e', 'E'])
}

connect_core::register_plugin!(transform "mask_field", MaskFieldConfig,
    summary: "Masks fields of the key or value with an empty value of their type or a replacement",
    example: "type: mask_field\nfields: [Volume, owner.ssn]\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> ConnectorResult<Outcome> {
        apply_config::<MaskFieldConfig>(yaml, record)
    }

    fn masked(yaml: &str, value: &str) -> ConnectorResult<String> {
        let mut record = record(None, Some(serde_json::from_str(value).unwrap()));
        run(yaml, &mut record)?;
        Ok(serde_json::to_string(record.value.as_ref().unwrap()).unwrap())
    }

    #[test]
    fn masks_each_type_with_its_empty_value() {
        assert_eq!(
            masked(
                "fields: [i, f, e, s, b, a, o, n]\n",
                r#"{"i":42,"f":2568.300049,"e":1.23E9,"s":"secret","b":true,"a":[1],"o":{"x":1},"n":null,"keep":1}"#
            )
            .unwrap(),
            r#"{"i":0,"f":0.0,"e":0.0,"s":"","b":false,"a":[],"o":{},"n":null,"keep":1}"#
        );
    }

    #[test]
    fn replaces_numbers_and_strings_with_the_replacement() {
        assert_eq!(
            masked(
                "fields: [i, f, s]\nreplacement: '7'\n",
                r#"{"i":42,"f":0.0,"s":"secret"}"#
            )
            .unwrap(),
            r#"{"i":7,"f":7.0,"s":"7"}"#
        );
        assert_eq!(
            masked("fields: [f, s]\nreplacement: 1.5\n", r#"{"f":0.0,"s":"x"}"#).unwrap(),
            r#"{"f":1.5,"s":"1.5"}"#
        );
    }

    #[test]
    fn a_replacement_that_does_not_fit_the_field_is_an_error() {
        assert_eq!(
            masked("fields: [i]\nreplacement: '1.5'\n", r#"{"i":42}"#)
                .unwrap_err()
                .to_string(),
            "mask_field: `i` is an integer, and the replacement `1.5` does not read as an integer"
        );
        assert_eq!(
            masked("fields: [f]\nreplacement: xxx\n", r#"{"f":4.2}"#)
                .unwrap_err()
                .to_string(),
            "mask_field: `f` is a number, and the replacement `xxx` does not read as a number"
        );
        assert_eq!(
            masked("fields: [b]\nreplacement: xxx\n", r#"{"b":true}"#)
                .unwrap_err()
                .to_string(),
            "mask_field: `b` is a boolean, which only masks without `replacement` (Kafka Connect: \"Cannot mask value of type ... with custom replacement\")"
        );
    }

    #[test]
    fn masks_nested_fields_and_adds_missing_ones_as_null() {
        assert_eq!(
            masked(
                "fields: [owner.ssn, missing, absent.x, owner.none]\n",
                r#"{"owner":{"name":"a","ssn":"123"},"id":1}"#
            )
            .unwrap(),
            r#"{"owner":{"name":"a","ssn":"","none":null},"id":1,"missing":null}"#
        );
    }

    #[test]
    fn targets_the_key_and_passes_nulls_through() {
        let mut record = record(Some(json!({"id": 9, "n": "x"})), Some(json!(1)));
        run("target: key\nfields: [id]\n", &mut record).unwrap();
        assert_eq!(record.key, Some(json!({"id": 0, "n": "x"})));
        assert_eq!(record.value, Some(json!(1)));
        let mut tombstone = crate::testing::record(Some(json!("k")), None);
        run("fields: [id]\n", &mut tombstone).unwrap();
        assert_eq!(tombstone, crate::testing::record(Some(json!("k")), None));
    }

    #[test]
    fn rejects_values_that_are_not_objects() {
        assert_eq!(
            masked("fields: [a]\n", "12").unwrap_err().to_string(),
            "mask_field works on objects only, and the record value is a number (Kafka Connect: \"Only Map objects supported in absence of schema for [mask fields]\")"
        );
    }

    #[test]
    fn reports_config_problems() {
        let bad: MaskFieldConfig = config("fields: []\nreplacement: ''\n");
        assert_eq!(
            bad.validate(),
            vec![
                FieldIssue::new("fields", "list at least one field to mask"),
                FieldIssue::new(
                    "replacement",
                    "must not be empty; leave it out to mask with empty values (`0`, `\"\"`, `false`)"
                ),
            ]
        );
        assert_eq!(
            try_config::<MaskFieldConfig>("replacement: x\n").unwrap_err(),
            vec!["1:1: : missing field `fields`".to_owned()]
        );
        assert_eq!(
            try_config::<MaskFieldConfig>("fields: [a, '\"b']\n").unwrap_err(),
            vec!["1:13: fields[1]: field path `\"b` has an unclosed quote".to_owned()]
        );
    }

    #[test]
    fn locates_validation_problems_in_the_pipeline_file() {
        let yaml = "transforms:\n  - type: mask_field\n    fields: [a]\n    replacement: \"\"\n";
        assert_eq!(
            crate::testing::chain_errors("t.yaml", yaml),
            "t.yaml:4:18: transforms[0].replacement: transform 1 `mask_field`: must not be empty; leave it out to mask with empty values (`0`, `\"\"`, `false`)"
        );
    }
}
