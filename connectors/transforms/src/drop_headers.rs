//! `drop_headers`: removes headers by name, like Kafka Connect's
//! `DropHeaders`.
//!
//! Every header whose name is listed is removed, however many times it
//! repeats; the other headers keep their order. Key, value (tombstones
//! included) and everything else stay as they are. Names match exactly (case
//! matters), as in Kafka Connect.

use std::collections::HashSet;

use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::{ConnectorResult, Record};
use serde::Deserialize;

/// Removes every header with one of the given names.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropHeadersConfig {
    /// The names of the headers to remove (at least one).
    pub headers: Vec<String>,
}

impl TransformConfig for DropHeadersConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.headers.is_empty() {
            issues.push(FieldIssue::new(
                "headers",
                "must list at least one header name to remove",
            ));
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(DropHeaders {
            names: self.headers.iter().cloned().collect(),
        }))
    }
}

/// The running `drop_headers` transform.
#[derive(Debug)]
pub struct DropHeaders {
    names: HashSet<String>,
}

impl Transform for DropHeaders {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        record
            .headers
            .retain(|(name, _)| !self.names.contains(name));
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "drop_headers", DropHeadersConfig,
    summary: "Removes every header with one of the given names",
    example: "type: drop_headers\nheaders: [trace_id, debug]\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> Outcome {
        apply_config::<DropHeadersConfig>(yaml, record).unwrap()
    }

    fn with_headers(value: Option<serde_json::Value>, names: &[(&str, Option<&str>)]) -> Record {
        let mut rec = record(Some(json!("k")), value);
        rec.headers = names
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.map(|v| v.as_bytes().to_vec())))
            .collect();
        rec
    }

    fn names(record: &Record) -> Vec<&str> {
        record.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn removes_every_header_with_a_listed_name_and_keeps_the_order() {
        let mut rec = with_headers(
            Some(stock_value()),
            &[
                ("a", Some("1")),
                ("drop", Some("x")),
                ("b", None),
                ("drop", None),
                ("gone", Some("y")),
                ("c", Some("3")),
            ],
        );
        let outcome = run("headers: [drop, gone]\n", &mut rec);
        assert_eq!(outcome, Outcome::Keep);
        assert_eq!(
            rec.headers,
            vec![
                ("a".to_owned(), Some(b"1".to_vec())),
                ("b".to_owned(), None),
                ("c".to_owned(), Some(b"3".to_vec())),
            ]
        );
        assert_eq!(rec.value, Some(stock_value()));
        assert_eq!(rec.key, Some(json!("k")));
    }

    #[test]
    fn names_match_exactly() {
        let mut rec = with_headers(
            Some(json!({})),
            &[
                ("Trace", None),
                ("trace", None),
                ("trace.id", None),
                ("tra", None),
            ],
        );
        run("headers: [trace]\n", &mut rec);
        assert_eq!(names(&rec), vec!["Trace", "trace.id", "tra"]);
    }

    #[test]
    fn absent_names_change_nothing() {
        let mut rec = with_headers(Some(json!({"a": 1})), &[("a", Some("1")), ("b", None)]);
        let before = rec.clone();
        run("headers: [zzz]\n", &mut rec);
        assert_eq!(rec, before);

        let mut bare = record(None, Some(json!({"a": 1})));
        let before = bare.clone();
        run("headers: [a]\n", &mut bare);
        assert_eq!(bare, before);
    }

    #[test]
    fn tombstones_lose_the_headers_too() {
        let mut rec = with_headers(None, &[("a", Some("1")), ("b", Some("2"))]);
        run("headers: [a]\n", &mut rec);
        assert_eq!(rec.value, None);
        assert_eq!(names(&rec), vec!["b"]);
    }

    #[test]
    fn config_errors() {
        let cfg: DropHeadersConfig = config("headers: []\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new(
                "headers",
                "must list at least one header name to remove"
            )]
        );
        let errors = try_config::<DropHeadersConfig>("headers: a\n").unwrap_err();
        assert_eq!(
            errors,
            vec!["1:10: headers: expected a list, found a scalar"]
        );
        let errors = try_config::<DropHeadersConfig>("names: [a]\n").unwrap_err();
        assert_eq!(
            errors,
            vec![
                "1:1: names: unknown key `names`; expected one of `headers`",
                "1:1: : missing field `headers`",
            ]
        );
    }

    #[test]
    fn validation_issues_are_located_in_a_pipeline() {
        let errors = crate::testing::chain_errors(
            "p.yaml",
            "transforms:\n  - type: drop_headers\n    headers: []\n",
        );
        assert_eq!(
            errors,
            "p.yaml:3:14: transforms[0].headers: transform 1 `drop_headers`: must list at least one header name to remove"
        );
    }
}
