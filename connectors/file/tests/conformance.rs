//! The `file` source and sink pass the connector conformance kit
//! (`connect_core::testkit`).

use std::sync::Arc;

use connect_core::testkit::{ErrorClass, ReadBack, SinkKit, SourceKit};
use connect_file as _;

#[tokio::test]
async fn the_file_source_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("lines.txt"),
        "first line\nsecond, with a comma\n\nfourth: after an empty one\nlast, no newline",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("rows.jsonl"),
        "{\"id\":1,\"v\":1.50}\n{\"id\":2,\"v\":\"two\"}\r\n{\"id\":3}\n{\"id\":4,\"v\":[4]}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("broken.jsonl"), "{\"id\":1}\n{\"id\":\n").expect("write");
    std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
    for name in ["a.log", "b.log"] {
        std::fs::write(dir.path().join("logs").join(name), "x\ny\nz\n").expect("write");
    }
    let kit = |section: &str| {
        SourceKit::new("file", section)
            .base_dir(dir.path())
            .batch(2)
            .invalid(
                "type: file\npath: lines.txt\nkey_field: id\npoll_interval: 0s\nmax_line_bytes: 0\n",
                &["key_field", "poll_interval", "max_line_bytes"],
            )
            .fault("type: file\npath: missing.txt\n", ErrorClass::Fatal)
            .fault("type: file\npath: broken.jsonl\nformat: json\n", ErrorClass::BadRecord)
    };
    kit("type: file\npath: lines.txt\n")
        .run()
        .await
        .assert_passed();
    kit("type: file\npath: rows.jsonl\nformat: json\nkey_field: id\n")
        .run()
        .await
        .assert_passed();
    kit("type: file\npath: logs\n").run().await.assert_passed();
}

#[tokio::test]
async fn the_file_sink_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out/records.jsonl");
    // A file where the fault's folder would go: the folder cannot be made.
    std::fs::write(dir.path().join("blocked"), "").expect("write");
    let read_back: ReadBack = {
        let out = out.clone();
        Arc::new(move || {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let values = text
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect();
            Box::pin(async move { values })
        })
    };
    SinkKit::new(
        "file",
        "type: file\npath: out/records.jsonl\nflush_size: 30\n",
        read_back,
    )
    .base_dir(dir.path())
    .invalid(
        "type: file\npath: \"\"\nflush_size: 0\nflush_interval: 0s\n",
        &["path", "flush_size", "flush_interval"],
    )
    .fault(
        "type: file\npath: blocked/records.jsonl\n",
        ErrorClass::Fatal,
    )
    .run()
    .await
    .assert_passed();
}
