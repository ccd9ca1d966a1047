//! `has_header_key`: a predicate that holds when the record has at least one
//! header with a given name, like Kafka Connect's `HasHeaderKey`.
//!
//! The name matches exactly (case matters); a header without a value counts.

use connect_core::plugin::{FieldIssue, Predicate, PredicateConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::{ConnectorResult, Record};
use serde::Deserialize;

/// Holds when the record has a header named `name`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HasHeaderKeyConfig {
    /// The header name to look for.
    pub name: String,
}

impl PredicateConfig for HasHeaderKeyConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.name.is_empty() {
            issues.push(FieldIssue::new(
                "name",
                "must not be empty; give the header name to look for",
            ));
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Predicate>> {
        Ok(Box::new(HasHeaderKey {
            name: self.name.clone(),
        }))
    }
}

/// The running `has_header_key` predicate.
#[derive(Debug)]
pub struct HasHeaderKey {
    name: String,
}

impl Predicate for HasHeaderKey {
    fn test(&self, record: &Record) -> bool {
        record.headers.iter().any(|(name, _)| *name == self.name)
    }
}

connect_core::register_plugin!(predicate "has_header_key", HasHeaderKeyConfig,
    summary: "Holds when the record has a header with the given name",
    example: "type: has_header_key\nname: trace_id\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn test_headers(name: &str, headers: &[(&str, Option<&str>)]) -> bool {
        let cfg: HasHeaderKeyConfig = config(&format!("name: {name}\n"));
        assert_eq!(cfg.validate(), Vec::new());
        let mut rec = record(None, Some(json!({"trace_id": 1})));
        rec.headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.map(|v| v.as_bytes().to_vec())))
            .collect();
        cfg.build().unwrap().test(&rec)
    }

    #[test]
    fn holds_when_a_header_has_the_name() {
        assert!(test_headers(
            "trace_id",
            &[("a", None), ("trace_id", Some("x"))]
        ));
        assert!(test_headers(
            "trace_id",
            &[("trace_id", Some("1")), ("trace_id", Some("2"))]
        ));
    }

    #[test]
    fn a_header_without_a_value_counts() {
        assert!(test_headers("trace_id", &[("trace_id", None)]));
    }

    #[test]
    fn other_names_and_fields_do_not_count() {
        assert!(!test_headers("trace_id", &[]));
        assert!(!test_headers(
            "trace_id",
            &[("Trace_Id", Some("x")), ("trace", None)]
        ));
        assert!(!test_headers("trace_id", &[("trace_id2", Some("x"))]));
    }

    #[test]
    fn tombstones_are_tested_on_their_headers() {
        let cfg: HasHeaderKeyConfig = config("name: h\n");
        let predicate = cfg.build().unwrap();
        let mut tombstone = record(Some(json!("k")), None);
        assert!(!predicate.test(&tombstone));
        tombstone.headers.push(("h".to_owned(), None));
        assert!(predicate.test(&tombstone));
    }

    #[test]
    fn config_errors() {
        let cfg: HasHeaderKeyConfig = config("name: ''\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new(
                "name",
                "must not be empty; give the header name to look for"
            )]
        );
        let errors = try_config::<HasHeaderKeyConfig>("header: h\n").unwrap_err();
        assert_eq!(
            errors,
            vec![
                "1:1: header: unknown key `header`; expected one of `name`",
                "1:1: : missing field `name`",
            ]
        );
    }

    #[test]
    fn validation_issues_are_located_in_a_pipeline() {
        let errors = crate::testing::chain_errors(
            "p.yaml",
            "predicates:\n  p:\n    type: has_header_key\n    name: ''\ntransforms: []\n",
        );
        assert_eq!(
            errors,
            "p.yaml:4:11: predicates.p.name: must not be empty; give the header name to look for"
        );
    }
}
