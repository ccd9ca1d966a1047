//! `sluice plugins describe <type>`: every key of a plugin's config with its
//! type, default and description, read from the config type's JSON Schema.
//! Needs no services.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use connect_core::config::units::HumanDuration;
use connect_core::registry::{PluginKind, Registry};

// Linking the connector crates registers their plugins in this test binary.
use connect_csv_replay as _;
use connect_file as _;
use connect_s3_json as _;
use connect_transforms as _;

fn describe(name: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["plugins", "describe", name])
        .output()
        .expect("run sluice plugins describe")
}

/// One key of the printed table.
#[derive(Debug, Default)]
struct Row {
    type_name: String,
    default: String,
    /// The description column's words, lines joined, values included.
    description: String,
}

/// Reads the aligned table by the header's column positions: a line whose
/// key column is blank continues the row above.
fn table(output: &Output) -> BTreeMap<String, Row> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("KEY "));
    let header = lines.next().expect("a header line");
    let column = |name: &str| header.find(name).expect(name);
    let (type_at, default_at, description_at) =
        (column("TYPE"), column("DEFAULT"), column("DESCRIPTION"));
    let cell = |line: &str, from: usize, to: usize| {
        line.get(from..to.min(line.len()))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut current = String::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let key = cell(line, 0, type_at);
        if !key.is_empty() {
            current = key.clone();
            rows.insert(
                key,
                Row {
                    type_name: cell(line, type_at, default_at),
                    default: cell(line, default_at, description_at),
                    description: String::new(),
                },
            );
        }
        let row = rows.get_mut(&current).expect("a continuation after a row");
        for word in cell(line, description_at, line.len()).split_whitespace() {
            if !row.description.is_empty() {
                row.description.push(' ');
            }
            row.description.push_str(word);
        }
    }
    rows
}

fn row<'a>(rows: &'a BTreeMap<String, Row>, key: &str) -> &'a Row {
    rows.get(key)
        .unwrap_or_else(|| panic!("no row `{key}` in {:?}", rows.keys()))
}

#[test]
fn describe_s3_json_lists_required_keys_defaults_and_the_partitioners() {
    let rows = table(&describe("s3_json"));

    let bucket = row(&rows, "bucket");
    assert_eq!(
        (bucket.type_name.as_str(), bucket.default.as_str()),
        ("string", "required")
    );
    assert_eq!(bucket.description, "Bucket name.");

    let flush_size = row(&rows, "flush_size");
    assert_eq!(
        (flush_size.type_name.as_str(), flush_size.default.as_str()),
        ("integer", "10000")
    );

    let rotate = row(&rows, "rotate_interval");
    assert_eq!(rotate.type_name, "duration");
    let default: HumanDuration =
        serde_json::from_value(serde_json::Value::String(rotate.default.clone()))
            .expect("the default is a duration");
    assert_eq!(default.0, Duration::from_secs(60), "{}", rotate.default);

    let partitioner = row(&rows, "partitioner");
    assert_eq!(partitioner.type_name, "object");
    assert_eq!(partitioner.default, r#"{"type":"kafka"}"#);
    let kind = row(&rows, "partitioner.type");
    assert_eq!(kind.default, "kafka");
    for variant in [
        "kafka `partition=<kafka partition>`.",
        "field `<name>=<field value>`.",
        "time A time format of the record's timestamp.",
    ] {
        assert!(
            kind.description.contains("one of:") && kind.description.contains(variant),
            "`{variant}` missing from {:?}",
            kind.description
        );
    }
    for nested in [
        "field",
        "name",
        "path_format",
        "timestamp",
        "timestamp_field",
    ] {
        row(&rows, &format!("partitioner.{nested}"));
    }

    let size = row(&rows, "max_object_bytes");
    assert_eq!(
        (size.type_name.as_str(), size.default.as_str()),
        ("size", "none")
    );
    let compression = row(&rows, "compression");
    assert!(compression.description.contains("gzip gzip, `.json.gz`"));
}

#[test]
fn describe_csv_replay_lists_its_keys_with_their_docs() {
    let rows = table(&describe("csv_replay"));

    let path = row(&rows, "path");
    assert_eq!(path.default, "required");
    assert!(
        path.description
            .starts_with("The CSV file, relative to the pipeline file's directory."),
        "{}",
        path.description
    );

    let rate = row(&rows, "rate");
    assert_eq!(
        (rate.type_name.as_str(), rate.default.as_str()),
        ("rate", "max")
    );
    assert!(rate
        .description
        .starts_with("Records per unit of time: `max` (default)"));

    let key_column = row(&rows, "key_column");
    assert_eq!(
        (key_column.type_name.as_str(), key_column.default.as_str()),
        ("string", "none")
    );
    assert_eq!(
        key_column.description,
        "The column whose value becomes the record key (e.g. `Index`). \
         Without it records have no key and spread over partitions."
    );

    // `#[serde(rename = "loop")]` names the key, and a char is one character.
    assert_eq!(row(&rows, "loop").default, "false");
    assert_eq!(row(&rows, "delimiter").type_name, "character");
    assert!(row(&rows, "columns")
        .description
        .contains("integer A 64-bit integer"));
}

#[test]
fn describe_of_an_unknown_type_exits_2_with_a_suggestion() {
    let output = describe("s3_jsn");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no plugin named `s3_jsn` (did you mean `s3_json`?)"),
        "{stderr}"
    );

    let output = describe("nothing_like_it");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`sluice plugins` lists them"));
}

#[test]
fn describe_prints_every_registered_plugin() {
    let registry = Registry::global().expect("registry");
    for plugin in registry.all() {
        let kind = plugin.kind().to_string();
        let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["plugins", "describe", plugin.name, "--kind", &kind])
            .output()
            .expect("run sluice plugins describe");
        assert!(output.status.success(), "{}", plugin.name);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.starts_with(&format!("{} `{}`", plugin.kind(), plugin.name)),
            "{text}"
        );
        let fields = plugin.fields();
        if fields.is_empty() {
            assert!(text.contains("No keys besides `type`."), "{text}");
        } else {
            let rows = table(&output);
            let keys: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
            let mut printed: Vec<&str> = rows.keys().map(String::as_str).collect();
            let mut expected = keys.clone();
            printed.sort_unstable();
            expected.sort_unstable();
            assert_eq!(printed, expected, "{}", plugin.name);
        }
        if plugin.kind() == PluginKind::Transform {
            assert!(text.contains("`predicate`"), "{text}");
        }
    }
}

/// A key without a doc comment, or an enum value without one, fails here;
/// so does an optional key whose default the schema cannot state (its type
/// is not `Serialize`).
#[test]
fn every_key_of_every_plugin_is_documented_with_its_default() {
    let registry = Registry::global().expect("registry");
    let mut problems = Vec::new();
    let mut keys = 0;
    for plugin in registry.all() {
        for field in plugin.fields() {
            keys += 1;
            let key = format!("{} `{}`: `{}`", plugin.kind(), plugin.name, field.path);
            if field.doc.trim().is_empty() {
                problems.push(format!("{key} has no doc comment"));
            }
            if field.default_text() == "optional" {
                problems.push(format!("{key} has a default its schema does not state"));
            }
            if field.type_name.is_empty() {
                problems.push(format!("{key} has no type"));
            }
            for value in &field.values {
                if value.doc.trim().is_empty() {
                    problems.push(format!("{key}: value `{}` has no doc comment", value.value));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every plugin's keys were read (csv_replay and s3_json alone have 28).
    assert!(keys > 60, "only {keys} keys");
}
