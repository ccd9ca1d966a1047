//! `__TYPE__` against Sluice's conformance kit: the checks every sink
//! passes (config, open/close, durable offsets, retried writes, a rerun
//! after a crash, revocation, error classes).

use std::sync::Arc;

use connect_core::testkit::{ErrorClass, ReadBack, SinkKit};
use __CRATE_IDENT__ as _;

#[tokio::test]
async fn __TYPE___passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    // What the files hold: the `value` of every line.
    let read_back: ReadBack = Arc::new(move || {
        let mut values = Vec::new();
        for entry in std::fs::read_dir(&out).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines() {
                if let Ok(line) = serde_json::from_str::<serde_json::Value>(line) {
                    values.push(line["value"].clone());
                }
            }
        }
        Box::pin(async move { values })
    });
    // A file where the fault's folder would go: the folder cannot be made.
    std::fs::write(dir.path().join("blocked"), "").expect("write");
    SinkKit::new(
        "__TYPE__",
        "type: __TYPE__\ndir: out\nflush_size: 30\n",
        read_back,
    )
    .base_dir(dir.path())
    .invalid(
        "type: __TYPE__\ndir: \"\"\nflush_size: 0\n",
        &["dir", "flush_size"],
    )
    .fault("type: __TYPE__\ndir: blocked/out\n", ErrorClass::Fatal)
    .run()
    .await
    .assert_passed();
}
