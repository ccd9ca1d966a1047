//! `flatten`: Kafka Connect's `Flatten`, turning nested objects into
//! top-level fields named by joining the names with `delimiter`:
//! `{"a": {"b": 1}, "c": 2}` becomes `{"a.b": 1, "c": 2}`.
//!
//! Schemaless semantics, as in Kafka Connect:
//! - Only objects are recursed into; arrays, strings, numbers and booleans
//!   are kept as they are (arrays since KAFKA-12305, and objects inside
//!   arrays are not flattened).
//! - A null field stays, as null, under its flattened name.
//! - An empty nested object has no fields to contribute: it disappears
//!   (`{"a": {}, "b": 1}` becomes `{"b": 1}`).
//! - Fields keep their order; if two paths flatten to the same name (`a.b`
//!   next to `a: {b: ...}`), the later value wins at the earlier position.
//! - A null key or a tombstone passes through unchanged (KAFKA-9706); any
//!   other key/value that is not an object is an error (Kafka Connect:
//!   "Only Map objects supported in absence of schema for [flattening]").

use connect_core::plugin::{Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::Target;
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::Deserialize;
use serde_json::Map;

/// Flattens nested objects into top-level fields.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlattenConfig {
    /// `value` (default) or `key`: the part of the record to flatten (Kafka
    /// Connect's `$Value` / `$Key`).
    #[serde(default)]
    pub target: Target,
    /// Put between the names of the levels (default `.`); may be empty.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
}

fn default_delimiter() -> String {
    ".".to_owned()
}

impl TransformConfig for FlattenConfig {
    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(Flatten {
            target: self.target,
            delimiter: self.delimiter.clone(),
        }))
    }
}

/// The running `flatten`.
#[derive(Debug)]
pub struct Flatten {
    target: Target,
    delimiter: String,
}

impl Flatten {
    /// Moves the fields of `object` into `flat`, under `prefix`.
    fn flatten_into(
        &self,
        object: Map<String, Value>,
        prefix: &str,
        flat: &mut Map<String, Value>,
    ) {
        for (name, value) in object {
            let name = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}{}{name}", self.delimiter)
            };
            match value {
                Value::Object(nested) => self.flatten_into(nested, &name, flat),
                other => {
                    flat.insert(name, other);
                }
            }
        }
    }
}

impl Transform for Flatten {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        match self.target.get_mut(record) {
            None | Some(Value::Null) => Ok(Outcome::Keep),
            Some(Value::Object(object)) => {
                if object.values().any(Value::is_object) {
                    let nested = std::mem::take(object);
                    let mut flat = Map::with_capacity(nested.len());
                    self.flatten_into(nested, "", &mut flat);
                    *object = flat;
                }
                Ok(Outcome::Keep)
            }
            Some(other) => Err(ConnectorError::fatal(format!(
                "the record {} is {}, not an object; flatten needs an object (Kafka Connect: \"Only Map objects supported in absence of schema for [flattening]\")",
                self.target.name(),
                match other {
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    _ => "an array",
                }
            ))),
        }
    }
}

connect_core::register_plugin!(transform "flatten", FlattenConfig,
    summary: "Flattens nested objects into top-level fields joined by a delimiter (`a.b`)",
    example: "type: flatten\ndelimiter: _\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn flatten(yaml: &str, key: Option<Value>, value: Option<Value>) -> ConnectorResult<Record> {
        let config: FlattenConfig = config(yaml);
        assert!(config.validate().is_empty());
        let mut record = record(key, value);
        config.build().unwrap().apply(&mut record)?;
        Ok(record)
    }

    fn flat_value(yaml: &str, value: &str) -> String {
        let value = serde_json::from_str(value).unwrap();
        let record = flatten(yaml, None, Some(value)).unwrap();
        serde_json::to_string(&record.value).unwrap()
    }

    #[test]
    fn flattens_nested_objects_in_order() {
        assert_eq!(
            flat_value(
                "{}",
                r#"{"id":1,"price":{"open":2568.300049,"close":{"usd":333.87900637,"hkd":2568.300049}},"tags":["a",{"b":{"c":1}}],"Volume":0.0}"#
            ),
            r#"{"id":1,"price.open":2568.300049,"price.close.usd":333.87900637,"price.close.hkd":2568.300049,"tags":["a",{"b":{"c":1}}],"Volume":0.0}"#
        );
        // Already flat: unchanged.
        let record = flatten("{}", None, Some(stock_value())).unwrap();
        assert_eq!(record.value, Some(stock_value()));
    }

    #[test]
    fn nulls_empty_objects_and_collisions() {
        assert_eq!(
            flat_value(
                "delimiter: _\n",
                r#"{"a":{"x":null,"y":2},"e":{},"n":null,"a_y":0,"z":{"e":{}}}"#
            ),
            r#"{"a_x":null,"a_y":0,"n":null}"#
        );
        assert_eq!(
            flat_value("delimiter: \"\"\n", r#"{"a":{"b":1}}"#),
            r#"{"ab":1}"#
        );
    }

    #[test]
    fn key_target() {
        let record = flatten(
            "target: key\ndelimiter: \"::\"\n",
            Some(json!({"k": {"id": 7}})),
            Some(json!({"v": {"id": 8}})),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&record.key).unwrap(),
            r#"{"k::id":7}"#
        );
        assert_eq!(record.value, Some(json!({"v": {"id": 8}})));
    }

    #[test]
    fn tombstones_and_null_keys_pass_through() {
        let record = flatten("{}", Some(json!({"a": {"b": 1}})), None).unwrap();
        assert_eq!(record.value, None);
        assert_eq!(record.key, Some(json!({"a": {"b": 1}})));
        let record = flatten("target: key\n", None, Some(json!({"a": {"b": 1}}))).unwrap();
        assert_eq!(record.key, None);
        assert_eq!(flat_value("{}", "null"), "null");
    }

    #[test]
    fn a_non_object_is_an_error() {
        assert_eq!(
            flatten("{}", None, Some(json!([{"a": {"b": 1}}])))
                .unwrap_err()
                .to_string(),
            "the record value is an array, not an object; flatten needs an object (Kafka Connect: \"Only Map objects supported in absence of schema for [flattening]\")"
        );
        assert_eq!(
            flatten("target: key\n", Some(json!("k")), None)
                .unwrap_err()
                .to_string(),
            "the record key is a string, not an object; flatten needs an object (Kafka Connect: \"Only Map objects supported in absence of schema for [flattening]\")"
        );
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            try_config::<FlattenConfig>("delimiter: [a]\n").unwrap_err(),
            vec!["1:12: delimiter: expected a string, found a list".to_owned()]
        );
        assert_eq!(
            try_config::<FlattenConfig>("separator: _\n").unwrap_err(),
            vec![
                "1:1: separator: unknown key `separator`; expected one of `target`, `delimiter`"
                    .to_owned()
            ]
        );
    }
}
