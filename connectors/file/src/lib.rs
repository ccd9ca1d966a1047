//! `file`: a source that reads the lines of a local file into Kafka, and a
//! sink that writes records as the lines of a local file — the jobs of
//! Kafka Connect's FileStreamSource and FileStreamSink, with the delivery
//! guarantees of the other connectors.
//!
//! The source streams the file (never loading it whole), one record per
//! line — the line as a string (`format: text`) or parsed as JSON
//! (`format: json`, optionally keyed by a field) — each with its position
//! `{byte_offset, line}`, so that a restart resumes after the last line
//! stored; at the end of the file it ends, or with `follow` waits for more.
//!
//! The sink appends one line per record and records, in a sidecar file
//! next to it, the file's length and the Kafka offsets it holds, so that
//! after a crash it cuts what was not recorded and skips what was: each
//! record lands in the file exactly once ([`sink`] explains how).

pub mod config;
pub mod lines;
pub mod sidecar;
pub mod sink;
pub mod source;

pub use config::{FileSinkConfig, FileSourceConfig};
pub use sink::FileSink;
pub use source::FileSource;

connect_core::register_plugin!(source "file", FileSourceConfig,
    summary: "Reads the lines of a local file (or the files of a folder or glob) into Kafka, as text or JSON, to the end or following it as it grows",
    example: include_str!("../example-source.yaml"));

connect_core::register_plugin!(sink "file", FileSinkConfig,
    summary: "Writes each record as one line of a local file (strings as text, other values as JSON), each record exactly once across crashes",
    example: include_str!("../example-sink.yaml"));

#[cfg(test)]
mod tests {
    use std::path::Path;

    use connect_core::config::pipeline::parse_pipeline;
    use connect_core::registry::{PluginKind, Registry};

    fn indent(text: &str, by: &str) -> String {
        text.lines().map(|l| format!("{by}{l}\n")).collect()
    }

    #[test]
    fn both_plugins_are_registered_with_documented_keys_and_valid_examples() {
        let registry = Registry::global().expect("registry");
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("example.yaml");
        for kind in [PluginKind::Source, PluginKind::Sink] {
            let plugin = registry.lookup(kind, "file").expect("registered");
            for field in plugin.fields() {
                assert!(
                    !field.doc.trim().is_empty(),
                    "{kind} `{}` has no doc",
                    field.path
                );
                assert_ne!(
                    field.default_text(),
                    "optional",
                    "{kind} `{}` has a default its schema does not state",
                    field.path
                );
            }
            let pipeline = match kind {
                PluginKind::Source => format!(
                    "name: example\ntopic: {{ name: example }}\nsource:\n{}",
                    indent(plugin.example, "  ")
                ),
                _ => format!(
                    "name: example\ntopic: {{ name: example }}\nsinks:\n  out:\n{}",
                    indent(plugin.example, "    ")
                ),
            };
            if let Err(errors) = parse_pipeline(&pipeline, &file) {
                panic!("the {kind} example does not validate:\n{errors}");
            }
        }
        let source = registry.lookup(PluginKind::Source, "file").expect("source");
        let keys: Vec<String> = source.fields().into_iter().map(|f| f.path).collect();
        assert_eq!(
            keys,
            [
                "path",
                "format",
                "key_field",
                "follow",
                "poll_interval",
                "max_line_bytes"
            ]
        );
        let sink = registry.lookup(PluginKind::Sink, "file").expect("sink");
        let keys: Vec<String> = sink.fields().into_iter().map(|f| f.path).collect();
        assert_eq!(
            keys,
            [
                "path",
                "flush_size",
                "flush_interval",
                "max_buffer_bytes",
                "fsync"
            ]
        );
    }

    #[test]
    fn a_pipeline_with_invalid_keys_reports_every_problem_with_its_place() {
        let text = "name: x\ntopic: { name: x }\nsource:\n  type: file\n  path: in.txt\n  key_field: id\n  poll_interval: 0s\n\
                    sinks:\n  out:\n    type: file\n    path: out.txt\n    flush_size: 0\n";
        let errors = parse_pipeline(text, Path::new("pipeline.yaml"))
            .expect_err("invalid")
            .to_string();
        for expected in [
            "source.key_field: only applies with `format: json`",
            "source.poll_interval: must be longer than zero",
            "sinks.out.flush_size: must be at least 1",
        ] {
            assert!(errors.contains(expected), "{expected} in:\n{errors}");
        }
    }
}
