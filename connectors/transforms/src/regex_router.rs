//! `regex_router`: Kafka Connect's `RegexRouter`, renaming the record's
//! topic with a regular expression and a replacement.
//!
//! As in Kafka Connect, the regex must match the **whole** topic (Java's
//! `Matcher.matches()`); then the first match is replaced (Java's
//! `replaceFirst`), so `regex: "(.*)-raw"` with `replacement: "$1"` turns
//! `prices-raw` into `prices`. A topic the regex does not match is left
//! unchanged. Key, value, headers and timestamp are never touched.
//!
//! `replacement` uses Java's syntax, translated at build time: `$1` (group
//! numbers take as many digits as name an existing group, like Java),
//! `${name}` for a named group, `\$` and `\\` for a literal `$` and `\`.
//! In the pipeline YAML `${name}` is written as is: the loader only reads
//! `${provider:...}` (such as `${env:NAME}`) as a reference.
//!
//! Differences from Kafka Connect: the regex is Rust `regex` syntax, which
//! has no look-around or backreferences (a pattern that uses them is a
//! config error); and a rename to an empty topic is an error here rather
//! than when Kafka rejects the topic.

use std::sync::Arc;

use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::{ConnectorError, ConnectorResult, Record};
use regex::Regex;
use serde::Deserialize;

/// Renames the topic when a regex matches all of it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegexRouterConfig {
    /// The regular expression; it must match the whole topic name for the
    /// record to be renamed.
    pub regex: String,
    /// The new topic name, with Java's group references: `$1`, `${name}`
    /// `\$` is a literal dollar.
    pub replacement: String,
}

impl RegexRouterConfig {
    /// The regex as written (for `replaceFirst`), the same anchored at both
    /// ends (for `matches`), and the replacement in Rust's syntax.
    fn compile(&self) -> (Result<(Regex, Regex), String>, Result<String, String>) {
        let regexes = Regex::new(&self.regex)
            .and_then(|plain| Ok((plain, Regex::new(&format!("^(?:{})$", self.regex))?)))
            .map_err(|error| crate::invalid_regex(&self.regex, &error));
        let replacement = translate_replacement(
            &self.replacement,
            regexes.as_ref().ok().map(|(plain, _)| plain),
        );
        (regexes, replacement)
    }
}

impl TransformConfig for RegexRouterConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let (regexes, replacement) = self.compile();
        let mut issues = Vec::new();
        if let Err(message) = regexes {
            issues.push(FieldIssue::new("regex", message));
        }
        if let Err(message) = replacement {
            issues.push(FieldIssue::new("replacement", message));
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        let (regexes, replacement) = self.compile();
        let (regex, whole) = regexes
            .map_err(|message| ConnectorError::fatal(format!("regex_router `regex` {message}")))?;
        let replacement = replacement.map_err(|message| {
            ConnectorError::fatal(format!("regex_router `replacement`: {message}"))
        })?;
        Ok(Box::new(RegexRouter {
            regex,
            whole,
            replacement,
        }))
    }
}

/// Translates a Java `Matcher.appendReplacement` string to Rust `regex`
/// syntax: `$1` → `${1}`, `${name}` → `${name}`, `\x` → `x` (`$$` for a
/// dollar). `regex` (when it compiled) bounds the group numbers and names,
/// as Java checks them against the pattern.
fn translate_replacement(java: &str, regex: Option<&Regex>) -> Result<String, String> {
    let groups = regex.map(|r| r.captures_len() - 1);
    let mut rust = String::with_capacity(java.len() + 8);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => rust.push_str("$$"),
                Some(escaped) => rust.push(escaped),
                None => {
                    return Err(
                        "ends with `\\`: the character to escape is missing (write `\\\\` for a backslash)"
                            .to_owned(),
                    )
                }
            },
            '$' => match chars.next() {
                Some('{') => {
                    let mut name = String::new();
                    while let Some(&n) = chars.peek() {
                        if !(n.is_ascii_alphanumeric() || n == '_') {
                            break;
                        }
                        name.push(n);
                        chars.next();
                    }
                    if chars.next() != Some('}') || name.is_empty() {
                        return Err(format!(
                            "`${{{name}` is not a group reference: write `${{name}}` with a group name of letters, digits and `_`"
                        ));
                    }
                    if name.starts_with(|n: char| n.is_ascii_digit()) {
                        return Err(format!(
                            "`${{{name}}}`: a group name starts with a letter; write `${name}` for a group number"
                        ));
                    }
                    if let Some(regex) = regex {
                        if !regex.capture_names().any(|n| n == Some(name.as_str())) {
                            return Err(format!(
                                "`${{{name}}}` names no group of `regex`; name a group with `(?<{name}>...)`"
                            ));
                        }
                    }
                    rust.push_str(&format!("${{{name}}}"));
                }
                Some(digit @ '0'..='9') => {
                    let mut number = usize::from(digit as u8 - b'0');
                    if let Some(groups) = groups {
                        if number > groups {
                            return Err(format!(
                                "`${number}` refers to group {number}, but `regex` has {groups} group{}",
                                if groups == 1 { "" } else { "s" }
                            ));
                        }
                    }
                    // Like Java, take more digits while they name an existing group.
                    while let Some(&next) = chars.peek() {
                        let Some(d) = next.to_digit(10) else { break };
                        let longer = number * 10 + d as usize;
                        if groups.is_some_and(|groups| longer <= groups) {
                            number = longer;
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    rust.push_str(&format!("${{{number}}}"));
                }
                _ => {
                    return Err(
                        "has a `$` that is not a group reference: write `$1` or `${name}`, or `\\$` for a dollar sign"
                            .to_owned(),
                    )
                }
            },
            other => rust.push(other),
        }
    }
    Ok(rust)
}

/// The running `regex_router`.
#[derive(Debug)]
pub struct RegexRouter {
    regex: Regex,
    whole: Regex,
    replacement: String,
}

impl Transform for RegexRouter {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        if !self.whole.is_match(&record.topic) {
            return Ok(Outcome::Keep);
        }
        let topic = self
            .regex
            .replacen(&record.topic, 1, self.replacement.as_str());
        if topic.is_empty() {
            return Err(ConnectorError::fatal(format!(
                "renaming topic `{}` gave an empty topic name; check `replacement`",
                record.topic
            )));
        }
        if topic != *record.topic {
            record.topic = Arc::from(topic.as_ref());
        }
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "regex_router", RegexRouterConfig,
    summary: "Renames the topic with a regex that matches the whole name and a replacement (`$1` groups)",
    example: "type: regex_router\nregex: \"(.*)-raw\"\nreplacement: \"$1-clean\"\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn router(yaml: &str) -> Box<dyn Transform> {
        let config: RegexRouterConfig = config(yaml);
        assert_eq!(config.validate(), Vec::new());
        config.build().unwrap()
    }

    fn route(yaml: &str, topic: &str) -> String {
        let mut record = record(Some(json!("k")), Some(stock_value()));
        record.topic = topic.into();
        assert_eq!(router(yaml).apply(&mut record).unwrap(), Outcome::Keep);
        assert_eq!(record.value, Some(stock_value()));
        assert_eq!(record.key, Some(json!("k")));
        record.topic.to_string()
    }

    #[test]
    fn renames_with_groups() {
        let yaml = "regex: \"(.*)-(raw)\"\nreplacement: \"$1-clean-$2\"\n";
        assert_eq!(route(yaml, "prices-raw"), "prices-clean-raw");
        // Java's `$1` followed by a letter or digit stays group 1.
        assert_eq!(
            route("regex: \"(a)(b)\"\nreplacement: \"$1x$10$2\"\n", "ab"),
            "axa0b"
        );
        assert_eq!(
            route(
                "regex: \"(?<name>[a-z]+)\\\\.v(?<version_no>\\\\d+)\"\nreplacement: \"$${name}_$${version_no}\"\n",
                "orders.v2"
            ),
            "orders_2"
        );
        assert_eq!(
            route("regex: \".*\"\nreplacement: \"costs \\\\$1\"\n", "t"),
            "costs $1"
        );
    }

    #[test]
    fn the_regex_must_match_the_whole_topic() {
        let yaml = "regex: raw\nreplacement: clean\n";
        assert_eq!(route(yaml, "prices-raw"), "prices-raw");
        assert_eq!(route(yaml, "raw"), "clean");
        // Alternation: a whole match exists, then the first match is replaced.
        assert_eq!(route("regex: \"a|ab\"\nreplacement: X\n", "ab"), "Xb");
    }

    #[test]
    fn tombstones_are_renamed_too() {
        let mut record = record(None, None);
        record.topic = "orders-raw".into();
        router("regex: \"(.*)-raw\"\nreplacement: $1\n")
            .apply(&mut record)
            .unwrap();
        assert_eq!(&*record.topic, "orders");
        assert_eq!(record.value, None);
    }

    #[test]
    fn an_empty_result_is_an_error() {
        let mut record = record(None, None);
        assert_eq!(
            router("regex: \".*\"\nreplacement: \"\"\n")
                .apply(&mut record)
                .unwrap_err()
                .to_string(),
            "renaming topic `t` gave an empty topic name; check `replacement`"
        );
    }

    #[test]
    fn translates_java_replacements() {
        let regex = Regex::new("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)").unwrap();
        assert_eq!(
            translate_replacement("$11-$1a-$111\\\\\\$", Some(&regex)).unwrap(),
            "${11}-${1}a-${11}1\\$$"
        );
        assert_eq!(
            translate_replacement("$", None).unwrap_err(),
            "has a `$` that is not a group reference: write `$1` or `${name}`, or `\\$` for a dollar sign"
        );
        assert_eq!(
            translate_replacement("x\\", None).unwrap_err(),
            "ends with `\\`: the character to escape is missing (write `\\\\` for a backslash)"
        );
        assert_eq!(
            translate_replacement("${a", None).unwrap_err(),
            "`${a` is not a group reference: write `${name}` with a group name of letters, digits and `_`"
        );
    }

    #[test]
    fn config_errors() {
        let config: RegexRouterConfig = config("regex: \"(.*\"\nreplacement: \"$1-$2\"\n");
        let issues = config.validate();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].field, "regex");
        assert!(
            issues[0]
                .message
                .contains("is not a valid regular expression: unclosed group"),
            "{}",
            issues[0].message
        );
        assert!(
            issues[0].message.contains("unclosed group"),
            "{}",
            issues[0].message
        );
        assert!(config.build().is_err());

        let config: RegexRouterConfig =
            crate::testing::config("regex: \"(.*)-raw\"\nreplacement: \"$1-$2 $${x}\"\n");
        assert_eq!(
            config.validate(),
            vec![FieldIssue::new(
                "replacement",
                "`$2` refers to group 2, but `regex` has 1 group"
            )]
        );
        let config: RegexRouterConfig =
            crate::testing::config("regex: \"(.*)-raw\"\nreplacement: \"$${x}\"\n");
        assert_eq!(
            config.validate(),
            vec![FieldIssue::new(
                "replacement",
                "`${x}` names no group of `regex`; name a group with `(?<x>...)`"
            )]
        );
        assert_eq!(
            try_config::<RegexRouterConfig>("regex: x\n").unwrap_err(),
            vec!["1:1: : missing field `replacement`".to_owned()]
        );
    }
}
