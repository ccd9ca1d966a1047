//! The `sluice` binary's commands that need no services.

mod common;

use common::OutputWithinLimit as _;

use std::process::Command;

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

#[test]
fn the_binary_registers_every_bundled_plugin() {
    let output = sluice()
        .arg("plugins")
        .output_within_limit()
        .expect("run sluice plugins");
    assert!(output.status.success());
    let listing = String::from_utf8_lossy(&output.stdout);
    let names: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .collect();
    let expected: Vec<(&str, &str)> = [
        ("source", "csv_replay"),
        ("source", "file"),
        ("source", "http_poll"),
        ("sink", "file"),
        ("sink", "s3_json"),
    ]
    .into_iter()
    .chain(
        [
            "insert_field",
            "replace_field",
            "mask_field",
            "cast",
            "timestamp_converter",
            "value_to_key",
            "extract_field",
            "hoist_field",
            "flatten",
            "regex_router",
            "timestamp_router",
            "filter",
            "insert_header",
            "drop_headers",
            "header_from",
            "set_schema_metadata",
        ]
        .map(|name| ("transform", name)),
    )
    .chain(
        [
            "topic_name_matches",
            "has_header_key",
            "record_is_tombstone",
        ]
        .map(|name| ("predicate", name)),
    )
    .collect();
    let mut sorted_names = names.clone();
    sorted_names.sort();
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    assert_eq!(sorted_names, sorted_expected);

    let example = sluice()
        .args(["plugins", "--example", "s3_json"])
        .output_within_limit()
        .expect("run");
    assert!(String::from_utf8_lossy(&example.stdout).contains("type: s3_json"));

    // `file` is a source and a sink: both examples, or the one asked for.
    let both = sluice()
        .args(["plugins", "--example", "file"])
        .output_within_limit()
        .expect("run");
    let both = String::from_utf8_lossy(&both.stdout);
    let source = include_str!("../connectors/file/example-source.yaml");
    let sink = include_str!("../connectors/file/example-sink.yaml");
    assert!(
        both.contains("# source `file`") && both.contains(source),
        "{both}"
    );
    assert!(
        both.contains("# sink `file`") && both.contains(sink),
        "{both}"
    );
    let one = sluice()
        .args(["plugins", "--example", "file", "--kind", "sink"])
        .output_within_limit()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&one.stdout), sink);
    let wrong = sluice()
        .args(["plugins", "--example", "s3_json", "--kind", "source"])
        .output_within_limit()
        .expect("run");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("`s3_json` is not a source plugin"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

#[test]
fn docs_plugins_md_is_generated_from_the_registry() {
    let output = sluice()
        .args(["plugins", "--markdown"])
        .output_within_limit()
        .expect("run");
    assert!(output.status.success());
    let generated = String::from_utf8_lossy(&output.stdout);
    let committed =
        std::fs::read_to_string(common::repo_root().join("docs/plugins.md")).unwrap_or_default();
    assert!(
        generated == committed,
        "docs/plugins.md is out of date: run `cargo run -- plugins --markdown > docs/plugins.md`"
    );
}

#[test]
fn the_shipped_pipeline_and_examples_validate() {
    let root = common::repo_root();
    let output = sluice()
        .arg("validate")
        .arg(root.join("pipelines/stock-market.yaml"))
        .output_within_limit()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("source: csv_replay, sinks: s3 (s3_json)")
    );
}

#[test]
fn validate_names_the_transform_step_of_each_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("steps.yaml");
    std::fs::write(
        &path,
        "name: steps\ntopic: { name: t }\n\
         predicates:\n  tomb:\n    type: record_is_tombstone\n\
         source:\n  type: csv_replay\n  path: x.csv\n  transforms:\n\
         \x20   - type: cast\n      spec: { volume: int46 }\n\
         \x20   - type: filter\n      predicate: nope\n\
         \x20   - type: regex_router\n      regex: \"(unclosed\"\n      replacement: x\n\
         \x20   - type: replace_field\n      renames: { a: \"\" }\n\
         \x20   - type: insert_field\n      negate: true\n      static_field: f\n      static_value: v\n",
    )
    .expect("write");
    let output = sluice()
        .arg("validate")
        .arg(&path)
        .output_within_limit()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display();
    let expected = [
        format!("{file}:11:23: source.transforms[0].spec.volume: transform 1 `cast`: unknown value `int46`"),
        format!("{file}:13:18: source.transforms[1].predicate: transform 2 `filter`: predicate `nope` is not defined; defined predicates: `tomb`"),
        format!("{file}:15:14: source.transforms[2].regex: transform 3 `regex_router`: `(unclosed` is not a valid regular expression: unclosed group"),
        format!("{file}:20:7: source.transforms[4].negate: transform 5 `insert_field`: `negate` needs a `predicate` on the same step"),
    ];
    for line in &expected {
        assert!(
            stderr.contains(line.as_str()),
            "missing `{line}` in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("source.transforms[3].renames"),
        "the empty rename is reported:\n{stderr}"
    );
}

#[test]
fn validate_reports_every_error_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "name: broken\n\
         topic:\n  name: t\n  partitions: six\n\
         source:\n  type: csv_replay\n  path: x.csv\n  rate: 200/s\n  key_colum: Index\n\
         sinks:\n  s3:\n    type: s3_jsn\n    bucket: b\n  other:\n    type: s3_json\n    bucket: ${env:SLUICE_TEST_SURELY_UNSET}\n",
    )
    .expect("write");
    let output = sluice()
        .arg("validate")
        .arg(&path)
        .output_within_limit()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display();
    let expected = [
        format!("{file}:4:15: topic.partitions: expected an integer, found `six`"),
        format!("{file}:9:3: source.key_colum: unknown key `key_colum` (did you mean `key_column`?)"),
        format!("{file}:12:11: sinks.s3.type: unknown sink type `s3_jsn` (did you mean `s3_json`?); registered sinks: `file`, `s3_json`"),
        format!("{file}:16:13: sinks.other.bucket: environment variable `SLUICE_TEST_SURELY_UNSET` is not set"),
        "4 problems found".to_owned(),
    ];
    for line in &expected {
        assert!(
            stderr.contains(line.as_str()),
            "missing `{line}` in:\n{stderr}"
        );
    }
}
