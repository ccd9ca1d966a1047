//! Behaviour parity with Apache Kafka Connect's own single-message transforms.
//!
//! Every case of `tests/kafka_connect_compat/cases.yaml` runs twice: through
//! Sluice's transform chain, and through Kafka Connect's transform classes
//! (Maven Central `org.apache.kafka:connect-transforms`, schemaless records as
//! a sink with `JsonConverter`, `schemas.enable=false`, hands them over) by
//! `tests/kafka_connect_compat/Driver.java`. The two must agree on the key,
//! the value (numbers compared by value, objects regardless of field order),
//! the topic, the headers, whether the record was dropped and whether the
//! transform failed (not on the error text). A case with `differs` documents a
//! deliberate difference: Sluice must give `sluice_expected` and Kafka Connect
//! something else.
//!
//! Needs `mvn` and a JDK (17+) on the PATH. The jars are fetched once into
//! `target/kafka-connect-compat/jars`; `Driver.java` is compiled into
//! `target/kafka-connect-compat/classes` when it changed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use connect_core::config::pipeline::transform_chain_from_yaml;
use connect_core::plugin::Outcome;
use connect_core::Record;
use serde_json::{json, Value};

// Links Sluice's transforms and predicates (they register themselves).
use connect_transforms as _;

const KAFKA_VERSION: &str = "4.4.0";
/// The record timestamp when a case gives none: 2021-05-28T00:00:00Z.
const DEFAULT_TIMESTAMP: i64 = 1_622_160_000_000;

fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_connect_compat")
}

/// `target/kafka-connect-compat`, wherever the target directory is.
fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .join("kafka-connect-compat")
}

/// One row of the case table.
struct Case {
    name: String,
    /// The `sluice` mapping, as pipeline YAML text.
    sluice_yaml: String,
    /// Kafka Connect's steps: `{class, config, predicate?, negate?}`.
    kafka_connect: Vec<Value>,
    /// The input record, defaults filled in.
    record: Value,
    /// Why Sluice deliberately differs, if it does.
    differs: Option<String>,
    /// What Sluice gives instead, for a case with `differs`.
    sluice_expected: Option<Value>,
}

/// What a chain made of a record, on either side.
#[derive(Debug, Clone)]
struct Output {
    key: Value,
    value: Value,
    topic: Option<String>,
    headers: Vec<(String, Option<String>)>,
    dropped: bool,
    error: Option<String>,
}

fn yaml_to_json(value: &serde_yaml::Value) -> Result<Value> {
    serde_json::to_value(value).context("YAML value with no JSON equivalent")
}

fn load_cases() -> Result<Vec<Case>> {
    let path = compat_dir().join("cases.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let rows = doc
        .as_sequence()
        .context("cases.yaml must be a list of cases")?;
    let mut cases = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let name = row
            .get("name")
            .and_then(serde_yaml::Value::as_str)
            .with_context(|| format!("case {} has no `name`", i + 1))?
            .to_owned();
        ensure!(names.insert(name.clone()), "two cases are named `{name}`");
        let sluice = row
            .get("sluice")
            .with_context(|| format!("case `{name}` has no `sluice`"))?;
        let sluice_yaml = serde_yaml::to_string(sluice)?;
        let kafka_connect = match yaml_to_json(
            row.get("kafka_connect")
                .with_context(|| format!("case `{name}` has no `kafka_connect`"))?,
        )? {
            Value::Array(steps) => steps,
            step @ Value::Object(_) => vec![step],
            other => bail!(
                "case `{name}`: `kafka_connect` must be a step or a list of steps, found {other}"
            ),
        };
        let kafka_connect = kafka_connect
            .into_iter()
            .map(|step| normalize_step(&name, step))
            .collect::<Result<_>>()?;
        let record = normalize_record(
            &name,
            row.get("record")
                .map(yaml_to_json)
                .transpose()?
                .unwrap_or_else(|| json!({})),
        )?;
        let differs = row
            .get("differs")
            .and_then(serde_yaml::Value::as_str)
            .map(str::to_owned);
        let sluice_expected = row.get("sluice_expected").map(yaml_to_json).transpose()?;
        ensure!(
            differs.is_some() == sluice_expected.is_some(),
            "case `{name}`: `differs` and `sluice_expected` go together"
        );
        cases.push(Case {
            name,
            sluice_yaml,
            kafka_connect,
            record,
            differs,
            sluice_expected,
        });
    }
    Ok(cases)
}

/// Config values become strings, as Kafka Connect's connector configs are.
fn normalize_step(name: &str, mut step: Value) -> Result<Value> {
    let object = step
        .as_object_mut()
        .with_context(|| format!("case `{name}`: a Kafka Connect step must be a mapping"))?;
    ensure!(
        object.get("class").is_some_and(Value::is_string),
        "case `{name}`: a Kafka Connect step needs `class`"
    );
    stringify_config(object.entry("config").or_insert_with(|| json!({})));
    if let Some(predicate) = object.get_mut("predicate").and_then(Value::as_object_mut) {
        stringify_config(predicate.entry("config").or_insert_with(|| json!({})));
    }
    Ok(step)
}

fn stringify_config(config: &mut Value) {
    if let Some(map) = config.as_object_mut() {
        for value in map.values_mut() {
            let text = match &*value {
                Value::String(_) | Value::Null => continue,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            *value = Value::String(text);
        }
    }
}

fn normalize_record(name: &str, record: Value) -> Result<Value> {
    let Value::Object(mut map) = record else {
        bail!("case `{name}`: `record` must be a mapping");
    };
    // `key_json` / `value_json`: JSON text, for numbers whose exact text
    // matters (YAML numbers go through an f64 and lose it).
    for part in ["key", "value"] {
        if let Some(text) = map.remove(&format!("{part}_json")) {
            ensure!(
                !map.contains_key(part),
                "case `{name}`: give `{part}` or `{part}_json`, not both"
            );
            let text = text
                .as_str()
                .with_context(|| format!("case `{name}`: `{part}_json` must be a string"))?;
            let parsed: Value = serde_json::from_str(text)
                .with_context(|| format!("case `{name}`: `{part}_json` is not JSON"))?;
            map.insert(part.to_owned(), parsed);
        }
    }
    for key in map.keys() {
        ensure!(
            ["topic", "partition", "key", "value", "headers", "timestamp"].contains(&key.as_str()),
            "case `{name}`: unknown record field `{key}`"
        );
    }
    map.entry("topic").or_insert_with(|| json!("t"));
    map.entry("partition").or_insert_with(|| json!(0));
    map.entry("key").or_insert(Value::Null);
    map.entry("value").or_insert(Value::Null);
    map.entry("headers").or_insert_with(|| json!([]));
    map.entry("timestamp")
        .or_insert_with(|| json!(DEFAULT_TIMESTAMP));
    Ok(Value::Object(map))
}

// ---------------------------------------------------------------------------
// Sluice's side.

fn sluice_record(record: &Value) -> Result<Record> {
    let part = |field: &str| match &record[field] {
        Value::Null => None,
        v => Some(v.clone()),
    };
    let headers = record["headers"]
        .as_array()
        .context("`headers` must be a list of [name, value] pairs")?
        .iter()
        .map(|pair| {
            let name = pair[0]
                .as_str()
                .context("a header name must be a string")?
                .to_owned();
            let value = match &pair[1] {
                Value::Null => None,
                Value::String(s) => Some(s.clone().into_bytes()),
                other => Some(other.to_string().into_bytes()),
            };
            Ok((name, value))
        })
        .collect::<Result<_>>()?;
    Ok(Record {
        topic: record["topic"]
            .as_str()
            .context("`topic` must be a string")?
            .into(),
        partition: Some(
            record["partition"]
                .as_i64()
                .context("`partition` must be a number")? as i32,
        ),
        offset: Some(0),
        key: part("key"),
        value: part("value"),
        encoded_value: None,
        headers,
        timestamp: record["timestamp"].as_i64(),
        position: None,
    })
}

fn run_sluice(case: &Case) -> Result<Output> {
    let mut record = sluice_record(&case.record)?;
    let failed = |error: String| Output {
        key: Value::Null,
        value: Value::Null,
        topic: None,
        headers: Vec::new(),
        dropped: false,
        error: Some(error),
    };
    let mut chain = match transform_chain_from_yaml(&case.sluice_yaml, Path::new("cases.yaml")) {
        Ok(chain) => chain,
        Err(errors) => return Ok(failed(format!("config: {errors}"))),
    };
    match chain.apply(&mut record) {
        Err(failure) => Ok(failed(failure.to_string())),
        Ok(Outcome::Drop) => Ok(Output {
            key: Value::Null,
            value: Value::Null,
            topic: None,
            headers: Vec::new(),
            dropped: true,
            error: None,
        }),
        Ok(Outcome::Keep) => Ok(Output {
            key: record.key.unwrap_or(Value::Null),
            value: record.value.unwrap_or(Value::Null),
            topic: Some(record.topic.to_string()),
            headers: record
                .headers
                .into_iter()
                .map(|(name, value)| {
                    (
                        name,
                        value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
                    )
                })
                .collect(),
            dropped: false,
            error: None,
        }),
    }
}

// ---------------------------------------------------------------------------
// Kafka Connect's side.

fn run(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}; is it installed?"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Fetches the Kafka Connect jars (`mvn dependency:copy-dependencies`) once,
/// and again when `pom.xml` changed. `KAFKA_VERSION` must match the pom's.
fn fetch_jars(work: &Path) -> Result<PathBuf> {
    let jars = work.join("jars");
    let marker = jars.join(format!("connect-transforms-{KAFKA_VERSION}.jar"));
    let pom = compat_dir().join("pom.xml");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if marker.exists() && modified(&jars) >= modified(&pom) {
        return Ok(jars);
    }
    let staging = work.join(format!("jars.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    run(Command::new("mvn")
        .args(["-B", "-q", "-f"])
        .arg(&pom)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", staging.display())))?;
    let _ = std::fs::remove_dir_all(&jars);
    // A concurrent run may have won the race: its jars are as good.
    if std::fs::rename(&staging, &jars).is_err() && !marker.exists() {
        bail!("cannot move {} to {}", staging.display(), jars.display());
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(jars)
}

/// Compiles `Driver.java` unless its class is newer than the source.
fn compile_driver(work: &Path, jars: &Path) -> Result<PathBuf> {
    let classes = work.join("classes");
    let source = compat_dir().join("Driver.java");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let class_time = modified(&classes.join("Driver.class"));
    if class_time.is_some() && class_time >= modified(&source) {
        return Ok(classes);
    }
    let staging = work.join(format!("classes.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    run(Command::new("javac")
        .args(["-encoding", "UTF-8", "-d"])
        .arg(&staging)
        .arg("-cp")
        .arg(jars.join("*"))
        .arg(&source))?;
    let _ = std::fs::remove_dir_all(&classes);
    std::fs::rename(&staging, &classes)
        .with_context(|| format!("cannot move {} to {}", staging.display(), classes.display()))?;
    Ok(classes)
}

fn run_kafka_connect(cases: &[Case]) -> Result<Vec<Output>> {
    let work = work_dir();
    std::fs::create_dir_all(&work)?;
    let started = Instant::now();
    let jars = fetch_jars(&work)?;
    let fetched = started.elapsed();
    let classes = compile_driver(&work, &jars)?;
    let compiled = started.elapsed();

    let input: Vec<Value> = cases
        .iter()
        .map(|case| {
            json!({
                "name": case.name,
                "transforms": case.kafka_connect,
                "record": case.record,
            })
        })
        .collect();
    let classpath = std::env::join_paths([classes, jars.join("*")])?;
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg("Driver")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run `java`; is a JDK installed?")?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let body = serde_json::to_vec(&input)?;
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let output = child.wait_with_output()?;
    writer.join().expect("stdin writer")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "the Kafka Connect driver failed with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "Kafka Connect side: jars {:.1?}, javac {:.1?}, driver {:.1?}",
        fetched,
        compiled - fetched,
        started.elapsed() - compiled
    );

    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    ensure!(
        lines.len() == cases.len(),
        "the driver printed {} results for {} cases:\n{stdout}",
        lines.len(),
        cases.len()
    );
    cases
        .iter()
        .zip(lines)
        .map(|(case, line)| {
            let result: Value = serde_json::from_str(line)
                .with_context(|| format!("driver output for `{}`: {line}", case.name))?;
            ensure!(
                result["name"] == case.name,
                "driver output out of order: expected `{}`, got {line}",
                case.name
            );
            let headers = result["headers"]
                .as_array()
                .context("headers")?
                .iter()
                .map(|pair| {
                    (
                        pair[0].as_str().unwrap_or_default().to_owned(),
                        pair[1].as_str().map(str::to_owned),
                    )
                })
                .collect();
            Ok(Output {
                key: result["key"].clone(),
                value: result["value"].clone(),
                topic: result["topic"].as_str().map(str::to_owned),
                headers,
                dropped: result["dropped"].as_bool().unwrap_or(false),
                error: result["error"].as_str().map(str::to_owned),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Comparison.

/// JSON equality with numbers compared by value and objects regardless of
/// field order.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn headers_json(headers: &[(String, Option<String>)]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(name, value)| json!([name, value]))
            .collect(),
    )
}

/// The fields in which two outputs differ: (field, left, right).
fn differences(kc: &Output, sluice: &Output) -> Vec<(&'static str, String, String)> {
    let mut diffs = Vec::new();
    match (&kc.error, &sluice.error) {
        (Some(_), Some(_)) => return diffs,
        (None, None) => {}
        (k, s) => {
            diffs.push((
                "error",
                k.clone().unwrap_or_else(|| "(no error)".into()),
                s.clone().unwrap_or_else(|| "(no error)".into()),
            ));
            return diffs;
        }
    }
    if kc.dropped || sluice.dropped {
        if kc.dropped != sluice.dropped {
            diffs.push((
                "dropped",
                kc.dropped.to_string(),
                sluice.dropped.to_string(),
            ));
        }
        return diffs;
    }
    if !same_json(&kc.key, &sluice.key) {
        diffs.push(("key", kc.key.to_string(), sluice.key.to_string()));
    }
    if !same_json(&kc.value, &sluice.value) {
        diffs.push(("value", kc.value.to_string(), sluice.value.to_string()));
    }
    if kc.topic != sluice.topic {
        diffs.push((
            "topic",
            format!("{:?}", kc.topic),
            format!("{:?}", sluice.topic),
        ));
    }
    if kc.headers != sluice.headers {
        diffs.push((
            "headers",
            headers_json(&kc.headers).to_string(),
            headers_json(&sluice.headers).to_string(),
        ));
    }
    diffs
}

/// Where Sluice's output misses `expected` (only the fields it names).
fn expectation_misses(expected: &Value, sluice: &Output) -> Result<Vec<(String, String, String)>> {
    let mut misses = Vec::new();
    let map = expected
        .as_object()
        .context("`sluice_expected` must be a mapping")?;
    for (field, want) in map {
        let got = match field.as_str() {
            "key" => sluice.key.clone(),
            "value" => sluice.value.clone(),
            "topic" => json!(sluice.topic),
            "headers" => headers_json(&sluice.headers),
            "dropped" => json!(sluice.dropped),
            "error" => {
                let want = want
                    .as_bool()
                    .context("`sluice_expected.error` is a boolean")?;
                if want != sluice.error.is_some() {
                    misses.push((
                        "error".to_owned(),
                        want.to_string(),
                        sluice.error.clone().unwrap_or_else(|| "(no error)".into()),
                    ));
                }
                continue;
            }
            other => bail!("unknown field `{other}` in `sluice_expected`"),
        };
        let matches = if field == "headers" {
            *want == got
        } else {
            same_json(want, &got)
        };
        if !matches {
            misses.push((field.clone(), want.to_string(), got.to_string()));
        }
    }
    if sluice.error.is_some() && map.get("error") != Some(&json!(true)) {
        misses.push((
            "error".to_owned(),
            "(no error)".to_owned(),
            sluice.error.clone().unwrap_or_default(),
        ));
    }
    Ok(misses)
}

#[test]
fn sluice_transforms_behave_like_kafka_connects_in_schemaless_mode() -> Result<()> {
    let started = Instant::now();
    let cases = load_cases()?;
    let kafka_connect = run_kafka_connect(&cases)?;
    let verbose = std::env::var_os("SLUICE_COMPAT_VERBOSE").is_some();

    let mut table = String::new();
    let mut failed = 0;
    let mut per_transform: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (case, kc) in cases.iter().zip(&kafka_connect) {
        if let Some(error) = kc.error.as_deref().filter(|e| e.starts_with("harness:")) {
            bail!(
                "case `{}`: the Kafka Connect driver failed: {error}",
                case.name
            );
        }
        let sluice = run_sluice(case)?;
        if verbose {
            eprintln!(
                "{}\n    Kafka Connect: {}\n    Sluice:        {}",
                case.name,
                describe(kc),
                describe(&sluice)
            );
        }
        let rows = compare(case, kc, &sluice)?;
        let group = case.name.split('/').next().unwrap_or(&case.name).to_owned();
        let entry = per_transform.entry(group).or_default();
        entry.0 += 1;
        if !rows.is_empty() {
            entry.1 += 1;
            failed += 1;
            for (field, k, s) in rows {
                let _ = writeln!(
                    table,
                    "{}\n    field:         {field}\n    Kafka Connect: {k}\n    Sluice:        {s}",
                    case.name
                );
            }
            if let Some(error) = &sluice.error {
                let _ = writeln!(table, "    (Sluice error: {})", error.replace('\n', " | "));
            }
        }
    }
    // Not "N passed, N failed": CI reads such lines as a test runner's summary.
    let mut summary = String::new();
    for (group, (total, bad)) in &per_transform {
        let _ = writeln!(summary, "  {group:<22} {bad:>2} of {total:>2} differ");
    }
    eprintln!(
        "{} cases in {:.1?}:\n{summary}",
        cases.len(),
        started.elapsed()
    );
    assert!(
        failed == 0,
        "{failed} of {} cases differ from Kafka Connect {KAFKA_VERSION} \
         (SLUICE_COMPAT_VERBOSE=1 prints every case):\n\n{table}\nper transform:\n{summary}",
        cases.len()
    );
    Ok(())
}

/// The problems with one case: (field, Kafka Connect's side, Sluice's side).
fn compare(case: &Case, kc: &Output, sluice: &Output) -> Result<Vec<(String, String, String)>> {
    let mut rows = Vec::new();
    if let (Some(why), Some(expected)) = (&case.differs, &case.sluice_expected) {
        for (field, want, got) in expectation_misses(expected, sluice)? {
            rows.push((
                format!("{field} (sluice_expected)"),
                format!("expected {want}"),
                got,
            ));
        }
        if differences(kc, sluice).is_empty() {
            rows.push((
                "differs".to_owned(),
                format!("same as Sluice: {}", describe(kc)),
                format!("documented difference no longer holds: {why}"),
            ));
        }
        return Ok(rows);
    }
    for (field, k, s) in differences(kc, sluice) {
        rows.push((field.to_owned(), k, s));
    }
    // Both sides failing agrees, but only a case meant to fail may do so:
    // otherwise a mistyped config on both sides would pass unnoticed.
    let meant_to_fail = case.name.ends_with("_fails");
    let both_failed = kc.error.is_some() && sluice.error.is_some();
    if rows.is_empty() && both_failed != meant_to_fail {
        rows.push((
            "error".to_owned(),
            describe(kc),
            format!(
                "{} (the case name {} `_fails`)",
                describe(sluice),
                if meant_to_fail {
                    "ends in"
                } else {
                    "does not end in"
                }
            ),
        ));
    }
    Ok(rows)
}

fn describe(output: &Output) -> String {
    if let Some(error) = &output.error {
        return format!("error: {error}");
    }
    if output.dropped {
        return "dropped".to_owned();
    }
    json!({
        "key": output.key,
        "value": output.value,
        "topic": output.topic,
        "headers": headers_json(&output.headers),
    })
    .to_string()
}
