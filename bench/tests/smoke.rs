//! The benchmark harness end to end on a tiny data set, so that it cannot
//! rot: every scenario runs against the real services and the report has
//! every row with positive numbers. Timings are not asserted.
//!
//! Needs the services of `scripts/services.sh up` (which also fetches the
//! Kafka Connect jars P3 runs) and the `sluice` binary next to
//! `sluice-bench` (`cargo test --workspace` builds both), or `SLUICE_BIN`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn sluice_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SLUICE_BIN") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_BIN_EXE_sluice-bench")).with_file_name("sluice");
    assert!(
        path.is_file(),
        "no sluice binary at {}: build it first (`cargo build`, or run `cargo test --workspace`), or set SLUICE_BIN",
        path.display()
    );
    path
}

/// Every number of a JSON tree, with its path.
fn numbers(value: &Value, path: String, out: &mut Vec<(String, f64)>) {
    match value {
        Value::Number(n) => out.push((path, n.as_f64().unwrap_or(f64::NAN))),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                numbers(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                numbers(item, format!("{path}.{key}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_harness_runs_every_scenario_on_a_tiny_data_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("BENCHMARKS.md");
    let json = dir.path().join("results.json");
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice-bench"))
        .arg("--sluice")
        .arg(sluice_binary())
        .args(["--rows", "2000", "--scale", "2", "--flush-size", "200"])
        .args(["--p5-rate", "500", "--p5-seconds", "3"])
        .arg("--report")
        .arg(&report)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run sluice-bench");
    assert!(
        output.status.success(),
        "sluice-bench failed after {:?}:\n{}",
        started.elapsed(),
        String::from_utf8_lossy(&output.stderr)
    );

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid JSON");
    for (scenario, runs) in [("replay", 2), ("sink", 2), ("peer", 1)] {
        assert_eq!(
            results[scenario].as_array().map(Vec::len),
            Some(runs),
            "{scenario}: {results:#}"
        );
    }
    assert_eq!(results["replay"][0]["records"], 2000);
    assert_eq!(results["replay"][1]["records"], 4000);
    assert_eq!(results["sink"][1]["records"], 4000);
    assert_eq!(results["peer"][0]["lines"], 4000);
    assert!(
        results["freshness"]["rows"].as_u64() > Some(500),
        "{results:#}"
    );
    let mut measured = Vec::new();
    for scenario in ["replay", "sink", "peer", "freshness"] {
        numbers(&results[scenario], scenario.to_owned(), &mut measured);
    }
    assert!(measured.len() > 40, "{measured:?}");
    // Every count, size, rate, ratio and latency is positive, but for
    // counts of what went wrong.
    let may_be_zero = |path: &str| path.ends_with(".rows_not_listed");
    let not_positive: Vec<_> = measured
        .iter()
        .filter(|(path, n)| !(*n > 0.0 || (may_be_zero(path) && *n == 0.0)))
        .collect();
    assert!(not_positive.is_empty(), "not positive: {not_positive:?}");

    let markdown = std::fs::read_to_string(&report).expect("report");
    for heading in [
        "## Against the targets",
        "## P1 replay",
        "## P2 sink",
        "## P3 peer",
        "## P4 footprint",
        "## P5 freshness",
        "## How each scenario is measured",
    ] {
        assert!(markdown.contains(heading), "{heading} missing:\n{markdown}");
    }
    for row in [
        "| 1× | 2,000 |",
        "| 2× | 4,000 |",
        "| P1 replay 2× |",
        "| P2 sink 2× |",
    ] {
        assert!(markdown.contains(row), "{row} missing:\n{markdown}");
    }
    assert!(markdown.contains(" cores, "), "{markdown}");
}
