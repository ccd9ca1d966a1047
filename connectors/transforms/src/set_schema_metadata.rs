//! `set_schema_metadata`: sets the schema name and/or version of the record
//! key or value, like Kafka Connect's `SetSchemaMetadata$Key` /
//! `SetSchemaMetadata$Value`.
//!
//! Deliberate difference from Kafka Connect: Sluice records carry no schema
//! yet (the JSON schema-envelope converter is future work), so this transform
//! records the schema metadata in headers that the envelope converter will
//! read: `sluice.schema.<target>.name` (the name as UTF-8 text) and
//! `sluice.schema.<target>.version` (the version as decimal text), with
//! `<target>` `value` or `key`. Each configured one replaces every header of
//! that name already on the record; one that is not configured is left as it
//! is (Kafka Connect likewise keeps the schema's current name or version when
//! only the other is set). Kafka Connect, in contrast, fails on every
//! schemaless record with `DataException: Schema required for [updating
//! schema metadata]`.
//!
//! As in Kafka Connect, a record whose targeted part is null (a tombstone
//! value, a null key) passes through unchanged. Any other key or value
//! (object, string, number...) gets the headers; the value itself is never
//! changed.

use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::Target;
use connect_core::{ConnectorResult, Record};
use serde::Deserialize;

/// Sets the schema name and/or version of the key or value, as headers.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSchemaMetadataConfig {
    /// Whose schema: `value` (default) or `key`.
    #[serde(default)]
    pub target: Target,
    /// The schema name to set (Kafka Connect's `schema.name`), e.g.
    /// `com.example.Stock`.
    #[serde(default)]
    pub name: Option<String>,
    /// The schema version to set (Kafka Connect's `schema.version`).
    #[serde(default)]
    pub version: Option<i32>,
}

/// The header holding the schema name of `target`.
pub fn name_header(target: Target) -> String {
    format!("sluice.schema.{}.name", target.name())
}

/// The header holding the schema version of `target`.
pub fn version_header(target: Target) -> String {
    format!("sluice.schema.{}.version", target.name())
}

impl TransformConfig for SetSchemaMetadataConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        match &self.name {
            None if self.version.is_none() => issues.push(FieldIssue::new(
                "name",
                "set `name`, `version` or both; neither is configured",
            )),
            Some(name) if name.trim().is_empty() => issues.push(FieldIssue::new(
                "name",
                "must not be empty; give a schema name or remove the key",
            )),
            _ => {}
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        let mut headers = Vec::new();
        if let Some(name) = &self.name {
            headers.push((name_header(self.target), name.as_bytes().to_vec()));
        }
        if let Some(version) = self.version {
            headers.push((
                version_header(self.target),
                version.to_string().into_bytes(),
            ));
        }
        Ok(Box::new(SetSchemaMetadata {
            target: self.target,
            headers,
        }))
    }
}

/// The running `set_schema_metadata` transform.
#[derive(Debug)]
pub struct SetSchemaMetadata {
    target: Target,
    /// The headers to set, replacing existing ones of the same names.
    headers: Vec<(String, Vec<u8>)>,
}

impl Transform for SetSchemaMetadata {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        if matches!(
            self.target.get(record),
            None | Some(serde_json::Value::Null)
        ) {
            return Ok(Outcome::Keep);
        }
        let headers = &self.headers;
        record
            .headers
            .retain(|(name, _)| !headers.iter().any(|(set, _)| set == name));
        record.headers.extend(
            headers
                .iter()
                .map(|(name, value)| (name.clone(), Some(value.clone()))),
        );
        Ok(Outcome::Keep)
    }
}

connect_core::register_plugin!(transform "set_schema_metadata", SetSchemaMetadataConfig,
    summary: "Sets the schema name and/or version of the key or value (as sluice.schema.* headers)",
    example: "type: set_schema_metadata\nname: com.example.Stock\nversion: 2\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> Outcome {
        apply_config::<SetSchemaMetadataConfig>(yaml, record).unwrap()
    }

    fn h(name: &str, value: Option<&str>) -> (String, Option<Vec<u8>>) {
        (name.to_owned(), value.map(|v| v.as_bytes().to_vec()))
    }

    #[test]
    fn sets_name_and_version_headers_for_the_value() {
        let mut rec = record(Some(json!("HSI")), Some(stock_value()));
        rec.headers.push(h("trace", Some("1")));
        let outcome = run("name: com.example.Stock\nversion: 3\n", &mut rec);
        assert_eq!(outcome, Outcome::Keep);
        assert_eq!(
            rec.headers,
            vec![
                h("trace", Some("1")),
                h("sluice.schema.value.name", Some("com.example.Stock")),
                h("sluice.schema.value.version", Some("3")),
            ]
        );
        assert_eq!(rec.value, Some(stock_value()));
        assert_eq!(rec.key, Some(json!("HSI")));
    }

    #[test]
    fn replaces_existing_headers_and_keeps_the_unset_one() {
        let mut rec = record(None, Some(json!({"a": 1})));
        rec.headers = vec![
            h("sluice.schema.value.name", Some("old")),
            h("sluice.schema.value.version", Some("1")),
            h("other", None),
            h("sluice.schema.value.name", Some("older")),
            h("sluice.schema.key.name", Some("k")),
        ];
        run("name: new\n", &mut rec);
        assert_eq!(
            rec.headers,
            vec![
                h("sluice.schema.value.version", Some("1")),
                h("other", None),
                h("sluice.schema.key.name", Some("k")),
                h("sluice.schema.value.name", Some("new")),
            ]
        );
        run("version: -2\n", &mut rec);
        assert_eq!(
            rec.headers,
            vec![
                h("other", None),
                h("sluice.schema.key.name", Some("k")),
                h("sluice.schema.value.name", Some("new")),
                h("sluice.schema.value.version", Some("-2")),
            ]
        );
    }

    #[test]
    fn key_target_names_the_key_schema() {
        let mut rec = record(Some(json!({"id": 1})), None);
        run("target: key\nname: Key\nversion: 1\n", &mut rec);
        assert_eq!(
            rec.headers,
            vec![
                h("sluice.schema.key.name", Some("Key")),
                h("sluice.schema.key.version", Some("1")),
            ]
        );
        assert_eq!(rec.key, Some(json!({"id": 1})));
    }

    #[test]
    fn null_parts_pass_through_and_other_values_get_the_headers() {
        let mut tombstone = record(Some(json!({"id": 1})), None);
        tombstone
            .headers
            .push(h("sluice.schema.value.name", Some("old")));
        let before = tombstone.clone();
        run("name: S\n", &mut tombstone);
        assert_eq!(tombstone, before);

        let mut null_key = record(None, Some(json!({"a": 1})));
        let before = null_key.clone();
        run("target: key\nversion: 4\n", &mut null_key);
        assert_eq!(null_key, before);

        let mut text = record(None, Some(json!("plain")));
        run("version: 4\n", &mut text);
        assert_eq!(
            text.headers,
            vec![h("sluice.schema.value.version", Some("4"))]
        );
        assert_eq!(text.value, Some(json!("plain")));
    }

    #[test]
    fn config_errors() {
        let cfg: SetSchemaMetadataConfig = config("target: key\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new(
                "name",
                "set `name`, `version` or both; neither is configured"
            )]
        );
        let cfg: SetSchemaMetadataConfig = config("name: ' '\nversion: 1\n");
        assert_eq!(
            cfg.validate(),
            vec![FieldIssue::new(
                "name",
                "must not be empty; give a schema name or remove the key"
            )]
        );
        let errors = try_config::<SetSchemaMetadataConfig>("name: S\nversion: v2\n").unwrap_err();
        assert_eq!(
            errors,
            vec!["2:10: version: expected an integer, found `v2`"]
        );
        let errors = try_config::<SetSchemaMetadataConfig>("target: both\nname: S\n").unwrap_err();
        assert_eq!(
            errors,
            vec!["1:9: target: unknown value `both`; expected one of `value`, `key`"]
        );
        let errors = try_config::<SetSchemaMetadataConfig>("schema_name: S\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("1:1: schema_name: unknown key `schema_name`"),
            "{errors:?}"
        );
    }

    #[test]
    fn validation_issues_are_located_in_a_pipeline() {
        let errors = crate::testing::chain_errors(
            "p.yaml",
            "transforms:\n  - type: set_schema_metadata\n    target: key\n",
        );
        assert_eq!(
            errors,
            "p.yaml:2:5: transforms[0].name: transform 1 `set_schema_metadata`: set `name`, `version` or both; neither is configured"
        );
    }
}
