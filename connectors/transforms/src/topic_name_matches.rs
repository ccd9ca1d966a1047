//! `topic_name_matches`: a predicate that holds when the record's topic
//! matches a regular expression, like Kafka Connect's `TopicNameMatches`.
//!
//! The whole topic name must match (Java's `Matcher.matches()`), not just a
//! part of it: `stock` does not match `stocks`, `stock.*` does.
//!
//! Difference from Kafka Connect: the pattern is a Rust `regex` expression,
//! not a Java one. Common syntax is the same; look-around and back-references
//! are not supported (matching is always linear-time).

use connect_core::plugin::{FieldIssue, Predicate, PredicateConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::{ConnectorError, ConnectorResult, Record};
use regex::Regex;
use serde::Deserialize;

/// Holds when the record's topic matches `pattern` as a whole.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicNameMatchesConfig {
    /// A regular expression the whole topic name must match, e.g. `stocks-.*`.
    pub pattern: String,
}

/// Why `pattern` is unusable, if it is.
fn pattern_problem(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        return Some("must not be empty; give a regular expression for the topic names".to_owned());
    }
    let error = Regex::new(pattern).err()?;
    Some(crate::invalid_regex(pattern, &error))
}

impl PredicateConfig for TopicNameMatchesConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        pattern_problem(&self.pattern)
            .map(|message| FieldIssue::new("pattern", message))
            .into_iter()
            .collect()
    }

    fn build(&self) -> ConnectorResult<Box<dyn Predicate>> {
        if let Some(problem) = pattern_problem(&self.pattern) {
            return Err(ConnectorError::fatal(format!("pattern: {problem}")));
        }
        // Anchored at both ends so that the whole name must match. The pattern
        // compiled on its own above, so the group cannot change its meaning.
        let anchored = Regex::new(&format!(r"\A(?:{})\z", self.pattern)).map_err(|error| {
            ConnectorError::fatal_caused_by(
                format!("pattern: cannot compile `{}`", self.pattern),
                error,
            )
        })?;
        Ok(Box::new(TopicNameMatches { pattern: anchored }))
    }
}

/// The running `topic_name_matches` predicate.
#[derive(Debug)]
pub struct TopicNameMatches {
    pattern: Regex,
}

impl Predicate for TopicNameMatches {
    fn test(&self, record: &Record) -> bool {
        self.pattern.is_match(&record.topic)
    }
}

connect_core::register_plugin!(predicate "topic_name_matches", TopicNameMatchesConfig,
    summary: "Holds when the whole topic name matches a regular expression",
    example: "type: topic_name_matches\npattern: \"stocks-.*\"\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn matches(pattern_yaml: &str, topic: &str) -> bool {
        let cfg: TopicNameMatchesConfig = config(&format!("pattern: {pattern_yaml}\n"));
        assert_eq!(cfg.validate(), Vec::new());
        let mut rec = record(None, Some(json!({"a": 1})));
        rec.topic = topic.into();
        cfg.build().unwrap().test(&rec)
    }

    #[test]
    fn the_whole_topic_must_match() {
        assert!(matches("'stocks-.*'", "stocks-hsi"));
        assert!(matches("'stocks-.*'", "stocks-"));
        assert!(!matches("'stocks-.*'", "old-stocks-hsi"));
        assert!(!matches("stock", "stocks"));
        assert!(!matches("stock", "my-stock"));
        assert!(matches("stock", "stock"));
    }

    #[test]
    fn alternatives_are_tried_against_the_whole_name() {
        // Java's matches() succeeds when any alternative spans the whole name.
        assert!(matches("'a|ab'", "ab"));
        assert!(matches("'a|ab'", "a"));
        assert!(!matches("'a|ab'", "abc"));
        assert!(matches("'(?i)STOCKS'", "stocks"));
    }

    #[test]
    fn tombstones_and_headers_do_not_matter() {
        let cfg: TopicNameMatchesConfig = config("pattern: t\n");
        let predicate = cfg.build().unwrap();
        let tombstone = record(Some(json!("k")), None);
        assert!(predicate.test(&tombstone));
        let mut other = record(None, None);
        other.topic = "u".into();
        other.headers.push(("t".to_owned(), None));
        assert!(!predicate.test(&other));
    }

    #[test]
    fn invalid_patterns_are_validation_errors() {
        let cfg: TopicNameMatchesConfig = config("pattern: 'stocks-(.*'\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new(
                "pattern",
                "`stocks-(.*` is not a valid regular expression: unclosed group"
            )]
        );
        assert_eq!(
            cfg.build().err().unwrap().to_string(),
            "pattern: `stocks-(.*` is not a valid regular expression: unclosed group"
        );
        // Anchoring must not make an invalid pattern valid.
        let cfg: TopicNameMatchesConfig = config("pattern: 'a)(b'\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new(
                "pattern",
                "`a)(b` is not a valid regular expression: unopened group"
            )]
        );
        let cfg: TopicNameMatchesConfig = config("pattern: ''\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new(
                "pattern",
                "must not be empty; give a regular expression for the topic names"
            )]
        );
    }

    #[test]
    fn config_errors_are_located() {
        let errors = try_config::<TopicNameMatchesConfig>("{}\n").unwrap_err();
        assert_eq!(errors, vec!["1:1: : missing field `pattern`"]);
        let errors = try_config::<TopicNameMatchesConfig>("pattern: [a]\n").unwrap_err();
        assert_eq!(
            errors,
            vec!["1:10: pattern: expected a string, found a list"]
        );
    }

    #[test]
    fn validation_issues_are_located_in_a_pipeline() {
        let errors = crate::testing::chain_errors(
            "p.yaml",
            "predicates:\n  p:\n    type: topic_name_matches\n    pattern: 'a('\ntransforms: []\n",
        );
        assert_eq!(
            errors,
            "p.yaml:4:14: predicates.p.pattern: `a(` is not a valid regular expression: unclosed group"
        );
    }
}
