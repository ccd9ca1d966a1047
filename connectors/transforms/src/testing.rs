//! Helpers for the unit tests of transforms and predicates.

use connect_core::config::de::from_node;
use connect_core::config::node::parse_document_with;
use connect_core::config::Diagnostics;
use connect_core::{Record, SourcePosition, Value};
use serde::de::DeserializeOwned;

/// Parses a transform or predicate config from YAML (without `type`), as the
/// pipeline loader does; panics with every diagnostic if it is invalid.
pub fn config<T: DeserializeOwned>(yaml: &str) -> T {
    try_config(yaml).unwrap_or_else(|errors| panic!("invalid config:\n{}", errors.join("\n")))
}

/// Parses a config, returning every diagnostic as `line:column: path: message`.
pub fn try_config<T: DeserializeOwned>(yaml: &str) -> Result<T, Vec<String>> {
    let diags = Diagnostics::new("test.yaml");
    let parsed =
        parse_document_with(yaml, &diags, &|_| None).and_then(|node| from_node::<T>(&node, &diags));
    let errors: Vec<String> = diags
        .into_sorted()
        .into_iter()
        .map(|d| {
            format!(
                "{}:{}: {}: {}",
                d.mark.line, d.mark.column, d.path, d.message
            )
        })
        .collect();
    match parsed {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(errors),
    }
}

/// A sink-side record of topic `t`, partition 0, offset 42, timestamp 1622160000000 (2021-05-28T00:00:00Z).
pub fn record(key: Option<Value>, value: Option<Value>) -> Record {
    Record {
        topic: "t".into(),
        partition: Some(0),
        offset: Some(42),
        key,
        value,
        encoded_value: None,
        headers: Vec::new(),
        timestamp: Some(1_622_160_000_000),
        position: None,
    }
}

/// A source-side record (no partition or offset yet) with a position.
pub fn source_record(key: Option<Value>, value: Option<Value>) -> Record {
    Record {
        position: Some(SourcePosition {
            partition: std::sync::Arc::new(serde_json::json!({"file": "x.csv"})),
            offset: serde_json::json!({"line": 7}),
        }),
        partition: None,
        offset: None,
        ..record(key, value)
    }
}

/// The stock-market record of the flagship pipeline.
pub fn stock_value() -> Value {
    serde_json::from_str(
        r#"{"Index":"HSI","Date":"1986-12-31","Open":2568.300049,"High":2568.300049,"Low":2568.300049,"Close":2568.300049,"Adj Close":2568.300049,"Volume":0.0,"CloseUSD":333.87900637}"#,
    )
    .expect("stock value")
}

/// The problems of a `transforms:` document (with its `predicates:`), as
/// `sluice validate` prints them for a file named `file`; panics if valid.
pub fn chain_errors(file: &str, yaml: &str) -> String {
    connect_core::config::pipeline::transform_chain_from_yaml(yaml, std::path::Path::new(file))
        .err()
        .expect("invalid config accepted")
        .to_string()
}

/// Parses a transform config, checks that it validates, builds it and applies it to `record`.
pub fn apply_config<T: DeserializeOwned + connect_core::plugin::TransformConfig>(
    yaml: &str,
    record: &mut Record,
) -> connect_core::ConnectorResult<connect_core::plugin::Outcome> {
    let config: T = config(yaml);
    assert_eq!(config.validate(), Vec::new());
    config.build().expect("the transform builds").apply(record)
}
