//! `header_from`: copies or moves fields of the record key or value into
//! headers, like Kafka Connect's `HeaderFrom$Key` / `HeaderFrom$Value`.
//!
//! For each field of `fields`, a header named by the same position of
//! `headers` is appended (existing headers of that name stay, as in Kafka
//! Connect). Its value is written by [`header_bytes`]: a string as its UTF-8
//! bytes, any other value (number, boolean, object, array) as its JSON text,
//! null as a header without a value. A missing field gives a header without
//! a value, as in Kafka Connect. With `operation: move` the fields are also
//! removed (the other fields keep their order). Every header takes the field
//! as it was before the transform, so one field may feed several headers even
//! when it is moved.
//!
//! Deliberate differences from Kafka Connect:
//! - `fields` are dotted paths into nested objects (`meta.source`, quoted
//!   segments for names with dots or spaces: `"Adj Close"`); Kafka Connect
//!   only reads top-level fields.
//! - A number is written as its JSON text, exactly as it is in the record
//!   (`0.0001`, `1.0e+21`); Kafka Connect writes Java's `Double.toString`
//!   (`1.0E-4`, `1.0E21`). An object or array is valid JSON text; Kafka
//!   Connect leaves control characters in strings unescaped.
//! - A record whose targeted part is null (a tombstone value, a null key)
//!   passes through unchanged; Kafka Connect's schemaless mode throws
//!   `DataException: Only Map objects supported in absence of schema for
//!   [header copy], found: null`.
//!
//! A targeted part that is not an object (a string, a number, an array) is an
//! error, as in Kafka Connect.

use crate::kind;
use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::{FieldPath, Target};
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::Deserialize;

/// Copies or moves fields of the key or value into headers.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderFromConfig {
    /// The fields to read, as dotted paths (at least one).
    pub fields: Vec<FieldPath>,
    /// The header names, one per field in the same order (Kafka Connect's `headers`).
    pub headers: Vec<String>,
    /// `copy` keeps the fields in the record; `move` removes them.
    pub operation: Operation,
    /// Which part of the record holds the fields: `value` (default) or `key`.
    #[serde(default)]
    pub target: Target,
}

/// What happens to a field once its header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// The field stays in the record.
    Copy,
    /// The field is removed from the record.
    Move,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Copy => "copy",
            Operation::Move => "move",
        }
    }
}

/// The bytes of a header holding `value`: a string as its UTF-8 bytes, any
/// other value (number, boolean, object, array) as its JSON text, null as no
/// value at all.
pub(crate) fn header_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.as_bytes().to_vec()),
        other => Some(other.to_string().into_bytes()),
    }
}

impl TransformConfig for HeaderFromConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.fields.is_empty() {
            issues.push(FieldIssue::new(
                "fields",
                "must list at least one field to copy or move into a header",
            ));
        }
        if self.headers.is_empty() {
            issues.push(FieldIssue::new(
                "headers",
                "must list at least one header name, one per field",
            ));
        } else if self.headers.len() != self.fields.len() {
            issues.push(FieldIssue::new(
                "headers",
                format!(
                    "{} header name(s) for {} field(s); give one header name per field, in the same order",
                    self.headers.len(),
                    self.fields.len()
                ),
            ));
        }
        if self.headers.iter().any(String::is_empty) {
            issues.push(FieldIssue::new(
                "headers",
                "a header name is empty; name every header",
            ));
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(HeaderFrom {
            pairs: self
                .fields
                .iter()
                .cloned()
                .zip(self.headers.iter().cloned())
                .collect(),
            operation: self.operation,
            target: self.target,
        }))
    }
}

/// The running `header_from` transform.
#[derive(Debug)]
pub struct HeaderFrom {
    pairs: Vec<(FieldPath, String)>,
    operation: Operation,
    target: Target,
}

impl Transform for HeaderFrom {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let part = match self.target.get_mut(record) {
            None | Some(Value::Null) => return Ok(Outcome::Keep),
            Some(part) => part,
        };
        if !part.is_object() {
            return Err(ConnectorError::fatal(format!(
                "header_from ({}) needs the record {} to be an object, found {}",
                self.operation.name(),
                self.target.name(),
                kind(part)
            )));
        }
        let added: Vec<(String, Option<Vec<u8>>)> = self
            .pairs
            .iter()
            .map(|(field, header)| (header.clone(), field.get(part).and_then(header_bytes)))
            .collect();
        if self.operation == Operation::Move {
            for (field, _) in &self.pairs {
                field.remove(part);
            }
        }
        record.headers.extend(added);
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "header_from", HeaderFromConfig,
    summary: "Copies or moves fields of the key or value into headers",
    example: "type: header_from\nfields: [Index, Date]\nheaders: [index, date]\noperation: copy\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> ConnectorResult<Outcome> {
        let config: HeaderFromConfig = config(yaml);
        assert_eq!(config.validate(), Vec::new());
        config.build()?.apply(record)
    }

    fn text_headers(record: &Record) -> Vec<(String, Option<String>)> {
        record
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.clone(),
                    value
                        .as_ref()
                        .map(|v| String::from_utf8(v.clone()).unwrap()),
                )
            })
            .collect()
    }

    fn header(name: &str, value: Option<&str>) -> (String, Option<String>) {
        (name.to_owned(), value.map(str::to_owned))
    }

    #[test]
    fn header_bytes_writes_strings_raw_and_other_values_as_json() {
        assert_eq!(header_bytes(&json!("HSI")), Some(b"HSI".to_vec()));
        assert_eq!(header_bytes(&json!("")), Some(Vec::new()));
        assert_eq!(header_bytes(&json!(true)), Some(b"true".to_vec()));
        let number: Value = serde_json::from_str("2568.300049").unwrap();
        assert_eq!(header_bytes(&number), Some(b"2568.300049".to_vec()));
        let zero: Value = serde_json::from_str("0.0").unwrap();
        assert_eq!(header_bytes(&zero), Some(b"0.0".to_vec()));
        assert_eq!(
            header_bytes(&json!({"b": 1, "a": [1, "x", null]})),
            Some(br#"{"b":1,"a":[1,"x",null]}"#.to_vec())
        );
        assert_eq!(header_bytes(&Value::Null), None);
    }

    #[test]
    fn copy_adds_headers_and_keeps_the_fields() {
        let mut record = record(None, Some(stock_value()));
        record
            .headers
            .push(("index".to_owned(), Some(b"old".to_vec())));
        let outcome = run(
            "fields: [Index, Volume, \"Adj Close\"]\nheaders: [index, volume, adj]\noperation: copy\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(outcome, Outcome::Keep);
        assert_eq!(
            text_headers(&record),
            vec![
                header("index", Some("old")),
                header("index", Some("HSI")),
                header("volume", Some("0.0")),
                header("adj", Some("2568.300049")),
            ]
        );
        assert_eq!(record.value, Some(stock_value()));
    }

    #[test]
    fn move_removes_the_fields_and_keeps_the_order_of_the_others() {
        let mut record = record(
            None,
            Some(json!({"a": 1, "b": "two", "c": true, "d": {"e": [1, 2]}})),
        );
        run(
            "fields: [b, d]\nheaders: [hb, hd]\noperation: move\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&record.value).unwrap(),
            r#"{"a":1,"c":true}"#
        );
        assert_eq!(
            text_headers(&record),
            vec![
                header("hb", Some("two")),
                header("hd", Some(r#"{"e":[1,2]}"#))
            ]
        );
    }

    #[test]
    fn nested_fields_are_read_and_moved() {
        let mut record = record(
            None,
            Some(json!({"meta": {"source": "csv", "x.y": 3, "keep": 1}, "v": 2})),
        );
        run(
            "fields: [meta.source, 'meta.\"x.y\"']\nheaders: [src, xy]\noperation: move\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&record.value).unwrap(),
            r#"{"meta":{"keep":1},"v":2}"#
        );
        assert_eq!(
            text_headers(&record),
            vec![header("src", Some("csv")), header("xy", Some("3"))]
        );
    }

    #[test]
    fn a_moved_field_feeds_every_header_that_names_it() {
        let mut record = record(None, Some(json!({"a": "x", "b": 1})));
        run(
            "fields: [a, a]\nheaders: [h1, h2]\noperation: move\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(serde_json::to_string(&record.value).unwrap(), r#"{"b":1}"#);
        assert_eq!(
            text_headers(&record),
            vec![header("h1", Some("x")), header("h2", Some("x"))]
        );
    }

    #[test]
    fn missing_and_null_fields_give_headers_without_a_value() {
        let mut record = record(None, Some(json!({"a": null, "b": {"c": 1}})));
        run(
            "fields: [a, missing, b.c.d]\nheaders: [ha, hm, hd]\noperation: move\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&record.value).unwrap(),
            r#"{"b":{"c":1}}"#
        );
        assert_eq!(
            text_headers(&record),
            vec![header("ha", None), header("hm", None), header("hd", None)]
        );
    }

    #[test]
    fn key_target_reads_the_key_only() {
        let mut record = record(Some(json!({"id": 7, "v": "k"})), Some(json!({"id": 9})));
        run(
            "fields: [id]\nheaders: [key_id]\noperation: move\ntarget: key\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(serde_json::to_string(&record.key).unwrap(), r#"{"v":"k"}"#);
        assert_eq!(serde_json::to_string(&record.value).unwrap(), r#"{"id":9}"#);
        assert_eq!(text_headers(&record), vec![header("key_id", Some("7"))]);
    }

    #[test]
    fn tombstones_and_null_keys_pass_through() {
        let yaml = "fields: [id]\nheaders: [h]\noperation: copy\n";
        let mut tombstone = record(Some(json!({"id": 1})), None);
        let before = tombstone.clone();
        assert_eq!(run(yaml, &mut tombstone).unwrap(), Outcome::Keep);
        assert_eq!(tombstone, before);

        let mut null_key = record(None, Some(json!({"id": 1})));
        let before = null_key.clone();
        run(&format!("{yaml}target: key\n"), &mut null_key).unwrap();
        assert_eq!(null_key, before);
    }

    #[test]
    fn a_value_that_is_not_an_object_is_an_error() {
        let mut text = record(None, Some(json!("plain text")));
        let error = run("fields: [a]\nheaders: [h]\noperation: move\n", &mut text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "header_from (move) needs the record value to be an object, found a string"
        );
        assert!(text.headers.is_empty());

        let mut array_key = record(Some(json!([1])), None);
        let error = run(
            "fields: [a]\nheaders: [h]\noperation: copy\ntarget: key\n",
            &mut array_key,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "header_from (copy) needs the record key to be an object, found an array"
        );
    }

    #[test]
    fn validation_reports_every_problem() {
        let cfg: HeaderFromConfig = config("fields: [a, b]\nheaders: [x, '']\noperation: copy\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new(
                "headers",
                "a header name is empty; name every header"
            )]
        );
        let cfg: HeaderFromConfig = config("fields: [a, b]\nheaders: [x]\noperation: copy\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new(
                "headers",
                "1 header name(s) for 2 field(s); give one header name per field, in the same order"
            )]
        );
        let cfg: HeaderFromConfig = config("fields: []\nheaders: []\noperation: move\n");
        assert_eq!(
            cfg.validate(),
            vec![
                FieldIssue::new(
                    "fields",
                    "must list at least one field to copy or move into a header"
                ),
                FieldIssue::new(
                    "headers",
                    "must list at least one header name, one per field"
                ),
            ]
        );
    }

    #[test]
    fn config_errors_are_located() {
        let errors =
            try_config::<HeaderFromConfig>("fields: [a]\nheaders: [h]\noperation: copie\n")
                .unwrap_err();
        assert_eq!(
            errors,
            vec!["3:12: operation: unknown value `copie` (did you mean `copy`?); expected one of `copy`, `move`"]
        );
        let errors =
            try_config::<HeaderFromConfig>("fields: [a..b]\nheaders: [h]\noperation: copy\n")
                .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("1:10: fields[0]: field path `a..b` has an empty segment"),
            "{errors:?}"
        );
        let errors = try_config::<HeaderFromConfig>("fields: [a]\nheaders: [h]\n").unwrap_err();
        assert_eq!(errors, vec!["1:1: : missing field `operation`"]);
    }

    #[test]
    fn validation_issues_are_located_in_a_pipeline() {
        let errors = crate::testing::chain_errors("p.yaml", "transforms:\n  - type: header_from\n    fields: [a, b]\n    headers: [x]\n    operation: copy\n");
        assert_eq!(
            errors,
            "p.yaml:4:14: transforms[0].headers: transform 1 `header_from`: 1 header name(s) for 2 field(s); give one header name per field, in the same order"
        );
    }
}
