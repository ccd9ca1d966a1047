//! `hoist_field`: Kafka Connect's `HoistField`, wrapping the whole key or
//! value in an object with a single field: `field: line` turns `"abc"` into
//! `{"line": "abc"}`.
//!
//! As in Kafka Connect's schemaless mode, any value is hoisted, objects and
//! arrays included, and so is a null: a null key becomes `{"line": null}`
//! and a **tombstone becomes a record with the value `{"line": null}`**
//! (Kafka Connect wraps the null as `Collections.singletonMap(field, null)`).
//! To keep tombstones, guard the step with the `record_is_tombstone`
//! predicate and `negate: true`.
//!
//! Difference from Kafka Connect: `field` is a dotted path, and each segment
//! nests one object: `field: payload.line` gives `{"payload": {"line": ...}}`
//! (quote a name that has a dot: `"a.b"`).

use connect_core::plugin::{Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::{FieldPath, Target};
use connect_core::{ConnectorResult, Record, Value};
use serde::Deserialize;

/// Wraps the key or value in an object under one field.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoistFieldConfig {
    /// `value` (default) or `key`: the part of the record to wrap (Kafka
    /// Connect's `$Value` / `$Key`).
    #[serde(default)]
    pub target: Target,
    /// The field the key/value goes into; a dotted path nests objects.
    pub field: FieldPath,
}

impl TransformConfig for HoistFieldConfig {
    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(HoistField {
            target: self.target,
            field: self.field.clone(),
        }))
    }
}

/// The running `hoist_field`.
#[derive(Debug)]
pub struct HoistField {
    target: Target,
    field: FieldPath,
}

impl Transform for HoistField {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let slot = self.target.get_mut(record);
        let mut hoisted = slot.take().unwrap_or(Value::Null);
        for segment in self.field.segments().iter().rev() {
            let mut object = serde_json::Map::with_capacity(1);
            object.insert(segment.clone(), hoisted);
            hoisted = Value::Object(object);
        }
        *slot = Some(hoisted);
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "hoist_field", HoistFieldConfig,
    summary: "Wraps the whole key or value in an object under one field",
    example: "type: hoist_field\ntarget: key\nfield: id\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn hoist(yaml: &str, key: Option<Value>, value: Option<Value>) -> Record {
        let config: HoistFieldConfig = config(yaml);
        assert!(config.validate().is_empty());
        let mut record = record(key, value);
        assert_eq!(
            config.build().unwrap().apply(&mut record).unwrap(),
            Outcome::Keep
        );
        record
    }

    #[test]
    fn wraps_the_value() {
        let record = hoist("field: line\n", Some(json!("k")), Some(json!("abc")));
        assert_eq!(
            serde_json::to_string(&record.value).unwrap(),
            r#"{"line":"abc"}"#
        );
        assert_eq!(record.key, Some(json!("k")));
        let record = hoist("field: stock\n", None, Some(stock_value()));
        assert_eq!(record.value, Some(json!({"stock": stock_value()})));
    }

    #[test]
    fn wraps_the_key() {
        let record = hoist(
            "target: key\nfield: id\n",
            Some(json!(42)),
            Some(json!([1, 2])),
        );
        assert_eq!(serde_json::to_string(&record.key).unwrap(), r#"{"id":42}"#);
        assert_eq!(record.value, Some(json!([1, 2])));
    }

    #[test]
    fn a_dotted_path_nests_objects() {
        let record = hoist("field: payload.\"a.b\"\n", None, Some(json!({"x": 1})));
        assert_eq!(
            serde_json::to_string(&record.value).unwrap(),
            r#"{"payload":{"a.b":{"x":1}}}"#
        );
    }

    #[test]
    fn nulls_are_hoisted_like_kafka_connect() {
        let record = hoist("field: line\n", Some(json!("k")), None);
        assert_eq!(
            serde_json::to_string(&record.value).unwrap(),
            r#"{"line":null}"#
        );
        let record = hoist("target: key\nfield: id\n", None, Some(json!(1)));
        assert_eq!(
            serde_json::to_string(&record.key).unwrap(),
            r#"{"id":null}"#
        );
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            try_config::<HoistFieldConfig>("target: key\n").unwrap_err(),
            vec!["1:1: : missing field `field`".to_owned()]
        );
        assert_eq!(
            try_config::<HoistFieldConfig>("field: a..b\n").unwrap_err(),
            vec!["1:8: field: field path `a..b` has an empty segment; quote names with dots or spaces, e.g. `\"Adj Close\"`".to_owned()]
        );
        assert_eq!(
            try_config::<HoistFieldConfig>("field: a\ntarget: both\n").unwrap_err(),
            vec!["2:9: target: unknown value `both`; expected one of `value`, `key`".to_owned()]
        );
    }
}
