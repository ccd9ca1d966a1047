//! `record_is_tombstone`: a predicate that holds when the record value is
//! null (a tombstone), like Kafka Connect's `RecordIsTombstone`.
//!
//! Only the value counts: the key and headers do not. A value that is the
//! JSON `null` itself (`Some(Value::Null)`) is not a tombstone; converters
//! read a null Kafka value as no value at all.

use connect_core::plugin::{Predicate, PredicateConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::{ConnectorResult, Record};
use serde::Deserialize;

/// Holds when the record is a tombstone. Takes no keys.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordIsTombstoneConfig {}

impl PredicateConfig for RecordIsTombstoneConfig {
    fn build(&self) -> ConnectorResult<Box<dyn Predicate>> {
        Ok(Box::new(RecordIsTombstone))
    }
}

/// The running `record_is_tombstone` predicate.
#[derive(Debug)]
pub struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &Record) -> bool {
        record.value.is_none()
    }
}

connect_core::register_plugin!(predicate "record_is_tombstone", RecordIsTombstoneConfig,
    summary: "Holds when the record value is null (a tombstone)",
    example: "type: record_is_tombstone\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use connect_core::plugin::FieldIssue;
    use serde_json::json;

    fn predicate() -> Box<dyn Predicate> {
        let cfg: RecordIsTombstoneConfig = config("{}\n");
        assert_eq!(cfg.validate(), Vec::<FieldIssue>::new());
        cfg.build().unwrap()
    }

    #[test]
    fn holds_for_a_missing_value() {
        assert!(predicate().test(&record(Some(json!({"id": 1})), None)));
        assert!(predicate().test(&record(None, None)));
    }

    #[test]
    fn does_not_hold_for_values() {
        assert!(!predicate().test(&record(None, Some(stock_value()))));
        assert!(!predicate().test(&record(None, Some(json!("")))));
        assert!(!predicate().test(&record(None, Some(json!({})))));
    }

    #[test]
    fn a_json_null_value_is_not_a_tombstone() {
        assert!(!predicate().test(&record(None, Some(serde_json::Value::Null))));
    }

    #[test]
    fn key_and_headers_do_not_matter() {
        let mut rec = record(None, None);
        rec.headers.push(("h".to_owned(), Some(b"x".to_vec())));
        assert!(predicate().test(&rec));
        let rec = record(Some(json!("k")), Some(json!(0)));
        assert!(!predicate().test(&rec));
    }

    #[test]
    fn config_takes_no_keys() {
        assert!(try_config::<RecordIsTombstoneConfig>("{}\n").is_ok());
        let errors = try_config::<RecordIsTombstoneConfig>("field: value\n").unwrap_err();
        // connect-core words this "expected one of " with an empty list.
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("1:1: field: unknown key `field`"),
            "{errors:?}"
        );
    }
}
