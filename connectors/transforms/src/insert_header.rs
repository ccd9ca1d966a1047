//! `insert_header`: adds a header with a fixed value to every record, like
//! Kafka Connect's `InsertHeader`.
//!
//! The header is appended: headers already on the record, including ones of
//! the same name, stay (Kafka Connect adds, it does not replace). Tombstones
//! get the header too.
//!
//! Kafka Connect's `value.literal` is a string that `Values.parseString`
//! reads as a number, boolean, list or map when it looks like one; here
//! `value` is any YAML value, written by the same rules as
//! [`header_from`](crate::header_from): a string as its UTF-8 bytes, a number,
//! boolean, list or mapping as its JSON text, and `null` as a header without a
//! value. A plain YAML number is read as a number, so `1.50` is written as
//! `1.5`; quote it (`"1.50"`) to keep its exact text. A number is written as
//! its JSON text (`0.0001`), where Kafka Connect writes Java's
//! `Double.toString` (`1.0E-4`) and reads large literals as 32-bit floats
//! (`123456789.5` becomes `1.23456792E8`).

use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::{ConnectorResult, Record, Value};
use serde::Deserialize;

use crate::header_from::header_bytes;

/// Adds a header with a fixed value to every record.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsertHeaderConfig {
    /// The name of the header.
    pub header: String,
    /// The header's value (Kafka Connect's `value.literal`): a string, a
    /// number, a boolean, a list or a mapping (written as JSON), or `null`
    /// for a header without a value. Required.
    pub value: Value,
}

impl TransformConfig for InsertHeaderConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.header.is_empty() {
            issues.push(FieldIssue::new("header", "must name the header to add"));
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(InsertHeader {
            header: self.header.clone(),
            value: header_bytes(&self.value),
        }))
    }
}

/// The running `insert_header` transform.
#[derive(Debug)]
pub struct InsertHeader {
    header: String,
    value: Option<Vec<u8>>,
}

impl Transform for InsertHeader {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        record
            .headers
            .push((self.header.clone(), self.value.clone()));
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "insert_header", InsertHeaderConfig,
    summary: "Adds a header with a fixed value to every record",
    example: "type: insert_header\nheader: origin\nvalue: csv-replay\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> Outcome {
        apply_config::<InsertHeaderConfig>(yaml, record).unwrap()
    }

    fn added(yaml: &str) -> Option<Vec<u8>> {
        let mut rec = record(None, Some(json!({"a": 1})));
        run(yaml, &mut rec);
        assert_eq!(rec.headers.len(), 1);
        assert_eq!(rec.headers[0].0, "h");
        rec.headers[0].1.clone()
    }

    #[test]
    fn appends_a_string_header_and_keeps_existing_ones() {
        let mut rec = record(Some(json!("k")), Some(stock_value()));
        rec.headers
            .push(("origin".to_owned(), Some(b"old".to_vec())));
        rec.headers.push(("other".to_owned(), None));
        let outcome = run("header: origin\nvalue: csv-replay\n", &mut rec);
        assert_eq!(outcome, Outcome::Keep);
        assert_eq!(
            rec.headers,
            vec![
                ("origin".to_owned(), Some(b"old".to_vec())),
                ("other".to_owned(), None),
                ("origin".to_owned(), Some(b"csv-replay".to_vec())),
            ]
        );
        assert_eq!(rec.key, Some(json!("k")));
        assert_eq!(rec.value, Some(stock_value()));
    }

    #[test]
    fn scalars_are_written_as_their_text() {
        assert_eq!(added("header: h\nvalue: 42\n"), Some(b"42".to_vec()));
        assert_eq!(added("header: h\nvalue: -7.25\n"), Some(b"-7.25".to_vec()));
        assert_eq!(added("header: h\nvalue: true\n"), Some(b"true".to_vec()));
        assert_eq!(added("header: h\nvalue: 1.50\n"), Some(b"1.5".to_vec()));
        assert_eq!(added("header: h\nvalue: '1.50'\n"), Some(b"1.50".to_vec()));
        assert_eq!(added("header: h\nvalue: \"007\"\n"), Some(b"007".to_vec()));
        assert_eq!(added("header: h\nvalue: ''\n"), Some(Vec::new()));
    }

    #[test]
    fn structures_are_written_as_json() {
        assert_eq!(
            added("header: h\nvalue: {b: 1, a: [x, 2, true]}\n"),
            Some(br#"{"b":1,"a":["x",2,true]}"#.to_vec())
        );
        assert_eq!(
            added("header: h\nvalue:\n  - one\n  - 2\n"),
            Some(br#"["one",2]"#.to_vec())
        );
    }

    #[test]
    fn null_gives_a_header_without_a_value() {
        assert_eq!(added("header: h\nvalue: null\n"), None);
        assert_eq!(added("header: h\nvalue: ~\n"), None);
    }

    #[test]
    fn tombstones_get_the_header_too() {
        let mut rec = record(Some(json!({"id": 1})), None);
        run("header: deleted\nvalue: yes\n", &mut rec);
        assert_eq!(rec.value, None);
        assert_eq!(rec.key, Some(json!({"id": 1})));
        assert_eq!(
            rec.headers,
            vec![("deleted".to_owned(), Some(b"yes".to_vec()))]
        );
    }

    #[test]
    fn config_errors() {
        let errors = try_config::<InsertHeaderConfig>("header: h\n").unwrap_err();
        assert_eq!(errors, vec!["1:1: : missing field `value`"]);
        let errors =
            try_config::<InsertHeaderConfig>("header: h\nvalue: 1\nliteral: 2\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("3:1: literal: unknown key `literal`"),
            "{errors:?}"
        );
        let errors = try_config::<InsertHeaderConfig>("header: [a]\nvalue: 1\n").unwrap_err();
        assert_eq!(errors, vec!["1:9: header: expected a string, found a list"]);
        let cfg: InsertHeaderConfig = config("header: ''\nvalue: 1\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new("header", "must name the header to add")]
        );
    }

    #[test]
    fn validation_issues_are_located_in_a_pipeline() {
        let errors = crate::testing::chain_errors(
            "p.yaml",
            "transforms:\n  - type: insert_header\n    header: ''\n    value: 1\n",
        );
        assert_eq!(
            errors,
            "p.yaml:3:13: transforms[0].header: transform 1 `insert_header`: must name the header to add"
        );
    }
}
