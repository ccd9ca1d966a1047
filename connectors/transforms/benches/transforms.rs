//! Cost per record of each transform on the stock-market record, and of the
//! stock pipeline's chain, against an empty chain measured in the same run.
//!
//! `cargo bench -p connect-transforms` prints ns/record for each.

use std::path::Path;

use connect_core::config::pipeline::transform_chain_from_yaml;
use connect_core::transform::TransformChain;
use connect_core::Record;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use connect_transforms as _;

fn stock_record() -> Record {
    let value = serde_json::from_str(
        r#"{"Index":"HSI","Date":"1986-12-31","Open":2568.300049,"High":2568.300049,"Low":2568.300049,"Close":2568.300049,"Adj Close":2568.300049,"Volume":1234500.0,"CloseUSD":333.87900637,"meta":{"source":"csv","line":2}}"#,
    )
    .expect("stock value");
    Record {
        topic: "stock-market".into(),
        partition: Some(3),
        offset: Some(1000),
        key: Some(serde_json::Value::String("HSI".into())),
        value: Some(value),
        encoded_value: None,
        headers: vec![("origin".into(), Some(b"csv".to_vec()))],
        timestamp: Some(1_622_160_000_000),
        position: None,
    }
}

/// (name, YAML of the `transforms:` document)
const CASES: &[(&str, &str)] = &[
    ("empty chain (baseline)", "transforms: []"),
    ("insert_field", "transforms:\n  - type: insert_field\n    timestamp_field: ingested_at\n    topic_field: topic"),
    ("replace_field", "transforms:\n  - type: replace_field\n    renames: { \"Adj Close\": adj_close, CloseUSD: close_usd }\n    exclude: [meta]"),
    ("mask_field", "transforms:\n  - type: mask_field\n    fields: [Open, Index]"),
    ("cast", "transforms:\n  - type: cast\n    spec: { Volume: int64 }"),
    ("timestamp_converter", "transforms:\n  - type: timestamp_converter\n    field: Date\n    target_type: unix\n    format: yyyy-MM-dd"),
    ("value_to_key", "transforms:\n  - type: value_to_key\n    fields: [Index, Date]"),
    ("extract_field", "transforms:\n  - type: extract_field\n    field: meta.line"),
    ("hoist_field", "transforms:\n  - type: hoist_field\n    field: row"),
    ("flatten", "transforms:\n  - type: flatten\n    delimiter: _"),
    ("regex_router", "transforms:\n  - type: regex_router\n    regex: \"(.*)-market\"\n    replacement: \"$1-archive\""),
    ("timestamp_router", "transforms:\n  - type: timestamp_router\n    timestamp_format: yyyy-MM"),
    ("filter (predicate false)", "predicates:\n  tomb:\n    type: record_is_tombstone\ntransforms:\n  - type: filter\n    predicate: tomb"),
    ("insert_header", "transforms:\n  - type: insert_header\n    header: pipeline\n    value: stock-market"),
    ("drop_headers", "transforms:\n  - type: drop_headers\n    headers: [origin]"),
    ("header_from", "transforms:\n  - type: header_from\n    fields: [Index]\n    headers: [symbol]\n    operation: copy"),
    ("set_schema_metadata", "transforms:\n  - type: set_schema_metadata\n    name: stock\n    version: 1"),
    (
        "stock chain of 5",
        "transforms:\n  - type: replace_field\n    renames: { Index: index, \"Adj Close\": adj_close, Volume: volume, CloseUSD: close_usd }\n  - type: cast\n    spec: { volume: int64 }\n  - type: insert_field\n    timestamp_field: ingested_at\n  - type: timestamp_converter\n    field: ingested_at\n    target_type: string\n    format: yyyy-MM-dd HH:mm:ss.SSS\n  - type: drop_headers\n    headers: [origin]",
    ),
];

fn chain(yaml: &str) -> TransformChain {
    transform_chain_from_yaml(yaml, Path::new("bench.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn transforms(c: &mut Criterion) {
    let record = stock_record();
    let mut group = c.benchmark_group("transform per record");
    for (name, yaml) in CASES {
        let mut chain = chain(yaml);
        group.bench_function(*name, |b| {
            b.iter_batched_ref(
                || record.clone(),
                |record| chain.apply(record).expect("transform"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, transforms);
criterion_main!(benches);
