//! `replace_field`: keeps, drops and renames top-level fields of the record
//! key or value, like Kafka Connect's `ReplaceField$Key` /
//! `ReplaceField$Value` in schemaless mode.
//!
//! A field is kept when it is not in `exclude` and, if `include` is not
//! empty, is in `include` (`exclude` wins, as in Kafka Connect). A kept field
//! named in `renames` gets its new name. Names are top-level field names
//! taken literally, as in Kafka Connect: `Adj Close` or `a.b` name the field
//! with exactly that name, not a nested one. Names that are not in the record
//! are ignored.
//!
//! A null key or a tombstone value passes through unchanged, as in Kafka
//! Connect. A key or value that is not an object is an error, as Kafka
//! Connect's "Only Map objects supported in absence of schema for [field
//! replacement]".
//!
//! Deliberate differences from Kafka Connect:
//! - Fields keep their order, a renamed field its position (Kafka Connect
//!   builds a `HashMap`, in no particular order).
//! - When a field is renamed to the name of another kept field, the renamed
//!   field wins and the other one is dropped; in Kafka Connect which one
//!   survives depends on hash order. Swaps (`{a: b, b: a}`) work in both.
//! - `renames` is a YAML mapping `old: new` instead of `old:new,...` text;
//!   the deprecated `whitelist`/`blacklist` names are not accepted.
//! - Conflicting options are config errors: a name both included and
//!   excluded, a rename of a field that is excluded or not included, two
//!   fields renamed to one name, an empty name, or no option at all.

use crate::kind;
use std::collections::{BTreeMap, HashMap, HashSet};

use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::Target;
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::Deserialize;

/// Keeps, drops and renames top-level fields of the key or value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceFieldConfig {
    /// Which part of the record to change: `value` (default) or `key`.
    #[serde(default)]
    pub target: Target,
    /// Fields to keep; when not empty, every other field is dropped
    /// (Kafka Connect's `include`, formerly `whitelist`).
    #[serde(default)]
    pub include: Vec<String>,
    /// Fields to drop; wins over `include` (Kafka Connect's `exclude`,
    /// formerly `blacklist`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Fields to rename, as `old name: new name` (Kafka Connect's `renames`).
    #[serde(default)]
    pub renames: BTreeMap<String, String>,
}

impl TransformConfig for ReplaceFieldConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.include.is_empty() && self.exclude.is_empty() && self.renames.is_empty() {
            issues.push(FieldIssue::new(
                "",
                "set at least one of `include`, `exclude`, `renames`; as it is, nothing changes",
            ));
        }
        for key in ["include", "exclude"] {
            let names = if key == "include" {
                &self.include
            } else {
                &self.exclude
            };
            if names.iter().any(String::is_empty) {
                issues.push(FieldIssue::new(key, "holds an empty field name"));
            }
        }
        for name in self.include.iter().filter(|n| self.exclude.contains(n)) {
            issues.push(FieldIssue::new(
                "exclude",
                format!("`{name}` is both included and excluded; keep it in one list"),
            ));
        }
        let mut targets: HashMap<&str, &str> = HashMap::new();
        for (old, new) in &self.renames {
            let key = format!("renames.{old}");
            if old.is_empty() {
                issues.push(FieldIssue::new(
                    "renames",
                    "renames a field with an empty name",
                ));
            }
            if new.is_empty() {
                issues.push(FieldIssue::new(
                    key.clone(),
                    format!("renames `{old}` to an empty name; give the new name"),
                ));
            }
            if self.exclude.contains(old) {
                issues.push(FieldIssue::new(
                    key.clone(),
                    format!("`{old}` is excluded, so it is never renamed; remove it from `exclude` or from `renames`"),
                ));
            } else if !self.include.is_empty() && !self.include.contains(old) {
                issues.push(FieldIssue::new(
                    key.clone(),
                    format!("`{old}` is not in `include`, so it is dropped and never renamed; add it to `include`"),
                ));
            }
            if let Some(first) = targets.insert(new, old) {
                issues.push(FieldIssue::new(
                    key,
                    format!("`{first}` and `{old}` are both renamed to `{new}`; a record can have only one"),
                ));
            }
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(ReplaceField {
            target: self.target,
            include: self.include.iter().cloned().collect(),
            exclude: self.exclude.iter().cloned().collect(),
            renames: self.renames.clone().into_iter().collect(),
        }))
    }
}

/// The running transform.
struct ReplaceField {
    target: Target,
    include: HashSet<String>,
    exclude: HashSet<String>,
    renames: HashMap<String, String>,
}

impl ReplaceField {
    /// Whether the field `name` stays (Kafka Connect's `filter`).
    fn keeps(&self, name: &str) -> bool {
        !self.exclude.contains(name) && (self.include.is_empty() || self.include.contains(name))
    }
}

impl Transform for ReplaceField {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let object = match self.target.get_mut(record) {
            None | Some(Value::Null) => return Ok(Outcome::Keep),
            Some(Value::Object(object)) => object,
            Some(other) => {
                return Err(ConnectorError::fatal(format!(
                    "replace_field works on objects only, and the record {} is {} (Kafka Connect: \"Only Map objects supported in absence of schema for [field replacement]\")",
                    self.target.name(),
                    kind(other)
                )))
            }
        };
        // The names that renamed fields of this record take: a kept field
        // already called so gives way to the renamed one.
        let taken: HashSet<&str> = object
            .keys()
            .filter(|name| self.keeps(name))
            .filter_map(|name| self.renames.get(name.as_str()).map(String::as_str))
            .collect();
        let unchanged = taken.is_empty() && object.keys().all(|name| self.keeps(name));
        if unchanged {
            return Ok(Outcome::Keep);
        }
        let fields = std::mem::take(object);
        for (name, field) in fields {
            if !self.keeps(&name) {
                continue;
            }
            match self.renames.get(&name) {
                Some(new_name) => {
                    object.insert(new_name.clone(), field);
                }
                None if taken.contains(name.as_str()) => {}
                None => {
                    object.insert(name, field);
                }
            }
        }
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "replace_field", ReplaceFieldConfig,
    summary: "Keeps, drops and renames top-level fields of the key or value",
    example: "type: replace_field\nexclude: [CloseUSD]\nrenames:\n  Adj Close: adj_close\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> ConnectorResult<Outcome> {
        apply_config::<ReplaceFieldConfig>(yaml, record)
    }

    fn value_text(record: &Record) -> String {
        serde_json::to_string(record.value.as_ref().unwrap()).unwrap()
    }

    #[test]
    fn excludes_and_renames_keeping_the_order() {
        let mut record = record(None, Some(stock_value()));
        run(
            "exclude: [Open, High, Low]\nrenames:\n  Adj Close: adj_close\n  Index: index\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(
            value_text(&record),
            r#"{"index":"HSI","Date":"1986-12-31","Close":2568.300049,"adj_close":2568.300049,"Volume":0.0,"CloseUSD":333.87900637}"#
        );
    }

    #[test]
    fn include_keeps_only_the_listed_fields_and_exclude_wins() {
        let mut record = record(None, Some(stock_value()));
        run(
            "include: [Date, Close, Missing]\nexclude: [Open]\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(
            value_text(&record),
            r#"{"Date":"1986-12-31","Close":2568.300049}"#
        );
    }

    #[test]
    fn names_are_top_level_and_literal() {
        let mut record = record(None, Some(json!({"a": {"b": 1}, "a.b": 2, "c": 3})));
        run("exclude: [a.b]\nrenames:\n  a: x\n", &mut record).unwrap();
        assert_eq!(value_text(&record), r#"{"x":{"b":1},"c":3}"#);
    }

    #[test]
    fn swaps_and_collisions_are_deterministic() {
        let mut swap = record(None, Some(json!({"a": 1, "b": 2, "c": 3})));
        run("renames: {a: b, b: a}\n", &mut swap).unwrap();
        assert_eq!(value_text(&swap), r#"{"b":1,"a":2,"c":3}"#);
        let mut collision = record(None, Some(json!({"x": 1, "y": 2, "z": 3})));
        run("renames: {z: x}\n", &mut collision).unwrap();
        assert_eq!(value_text(&collision), r#"{"y":2,"x":3}"#);
    }

    #[test]
    fn targets_the_key_and_passes_nulls_through() {
        let mut record = record(Some(json!({"id": 1, "tmp": 2})), None);
        run("target: key\nexclude: [tmp]\n", &mut record).unwrap();
        assert_eq!(record.key, Some(json!({"id": 1})));
        assert_eq!(record.value, None);
        let mut tombstone = crate::testing::record(Some(json!("k")), None);
        run("exclude: [tmp]\n", &mut tombstone).unwrap();
        assert_eq!(tombstone, crate::testing::record(Some(json!("k")), None));
    }

    #[test]
    fn rejects_values_that_are_not_objects() {
        let mut record = record(None, Some(json!("text")));
        let error = run("exclude: [a]\n", &mut record).unwrap_err();
        assert_eq!(
            error.to_string(),
            "replace_field works on objects only, and the record value is a string (Kafka Connect: \"Only Map objects supported in absence of schema for [field replacement]\")"
        );
    }

    #[test]
    fn reports_config_problems() {
        let bad: ReplaceFieldConfig = config(
            "include: [a, b, '']\nexclude: [b, c]\nrenames:\n  a: ''\n  c: d\n  e: x\n  f: x\n",
        );
        assert_eq!(
            bad.validate(),
            vec![
                FieldIssue::new("include", "holds an empty field name"),
                FieldIssue::new("exclude", "`b` is both included and excluded; keep it in one list"),
                FieldIssue::new("renames.a", "renames `a` to an empty name; give the new name"),
                FieldIssue::new(
                    "renames.c",
                    "`c` is excluded, so it is never renamed; remove it from `exclude` or from `renames`"
                ),
                FieldIssue::new(
                    "renames.e",
                    "`e` is not in `include`, so it is dropped and never renamed; add it to `include`"
                ),
                FieldIssue::new(
                    "renames.f",
                    "`f` is not in `include`, so it is dropped and never renamed; add it to `include`"
                ),
                FieldIssue::new(
                    "renames.f",
                    "`e` and `f` are both renamed to `x`; a record can have only one"
                ),
            ]
        );
        let empty: ReplaceFieldConfig = config("target: key\n");
        assert_eq!(
            empty.validate(),
            vec![FieldIssue::new(
                "",
                "set at least one of `include`, `exclude`, `renames`; as it is, nothing changes"
            )]
        );
        assert_eq!(
            try_config::<ReplaceFieldConfig>("blacklist: [a]\nrenames: a:b\n").unwrap_err(),
            vec![
                "1:1: blacklist: unknown key `blacklist`; expected one of `target`, `include`, `exclude`, `renames`".to_owned(),
                "2:10: renames: expected a mapping, found a scalar".to_owned(),
            ]
        );
    }

    #[test]
    fn locates_validation_problems_in_the_pipeline_file() {
        let yaml =
            "transforms:\n  - type: replace_field\n    exclude: [a]\n    renames:\n      a: b\n";
        assert_eq!(
            crate::testing::chain_errors("t.yaml", yaml),
            "t.yaml:5:10: transforms[0].renames.a: transform 1 `replace_field`: `a` is excluded, so it is never renamed; remove it from `exclude` or from `renames`"
        );
    }
}
