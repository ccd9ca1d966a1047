//! The `sluice` binary's commands that need no services.

mod common;

use std::process::Command;

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

#[test]
fn the_binary_registers_every_bundled_plugin() {
    let output = sluice()
        .arg("plugins")
        .output()
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
    assert_eq!(names, [("source", "csv_replay"), ("sink", "s3_json")]);

    let example = sluice()
        .args(["plugins", "--example", "s3_json"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&example.stdout).contains("type: s3_json"));
}

#[test]
fn the_shipped_pipeline_and_examples_validate() {
    let root = common::repo_root();
    let output = sluice()
        .arg("validate")
        .arg(root.join("pipelines/stock-market.yaml"))
        .output()
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
    let output = sluice().arg("validate").arg(&path).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display();
    let expected = [
        format!("{file}:4:15: topic.partitions: expected an integer, found `six`"),
        format!("{file}:9:3: source.key_colum: unknown key `key_colum` (did you mean `key_column`?)"),
        format!("{file}:12:11: sinks.s3.type: unknown sink type `s3_jsn` (did you mean `s3_json`?); registered sinks: `s3_json`"),
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
