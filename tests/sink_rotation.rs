//! Objects rotate on age while records trickle in, and every row still lands
//! once. Rotation happens when an object is due, not on the runtime's
//! `flush_interval` tick (5 s here, longer than the whole replay).

mod common;

use std::collections::BTreeMap;

use common::{cell_text, read_bucket, run_ok, try_read_bucket, unique, write_pipeline, Services};

#[tokio::test(flavor = "multi_thread")]
async fn slow_streams_rotate_objects_on_age() {
    let services = Services::get();
    let name = unique("rotate");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: 1 }}\n\
             source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  rate: 40/s\n  limit: 160\n\
             runtime:\n  flush_interval: 5s\n\
             sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n    flush_size: 100000\n    rotate_interval: 1s\n",
            common::dataset().display()
        ),
    );
    run_ok(services.sluice().arg("run").arg(&path));
    let objects = read_bucket(&services.s3().await, &name).await;
    // 160 rows over 4 s, with objects closed after 1 s: never one big object
    // (closing on the 5 s tick would make one or two).
    assert!(
        objects.len() >= 3,
        "only {} objects: {:?}",
        objects.len(),
        objects.keys()
    );
    let mut counts: BTreeMap<(String, String), u32> = BTreeMap::new();
    for body in objects.values() {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            *counts
                .entry((cell_text(&value["Index"]), cell_text(&value["Date"])))
                .or_default() += 1;
        }
    }
    assert_eq!(counts.len(), 160);
    assert!(counts.values().all(|&n| n == 1));
    // Each object starts where the previous one ended: its key names its first offset.
    let mut next = 0usize;
    for (key, body) in &objects {
        let first: usize = key
            .rsplit('+')
            .next()
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|o| o.parse().ok())
            .expect("offset");
        assert_eq!(first, next, "{key}");
        next += body.lines().count();
    }
}

/// A full object (`flush_size` records) lands as soon as the write that
/// filled it, not when `batch_size` records have been read or the
/// `flush_interval` tick comes: here both are out of reach (100 records,
/// a one-hour tick and rotation), so only that can land them.
#[tokio::test(flavor = "multi_thread")]
async fn full_objects_land_without_waiting_for_a_tick() {
    let services = Services::get();
    let name = unique("full-objects");
    let dir = tempfile::tempdir().expect("tempdir");
    let fill = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}-fill\ntopic: {{ name: {name}, partitions: 1 }}\n\
             source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  limit: 100\n",
            common::dataset().display()
        ),
    );
    run_ok(services.sluice().arg("run").arg(&fill));
    let sink_only = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}-land\ntopic: {{ name: {name} }}\nruntime: {{ flush_interval: 1h }}\n\
             sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n    flush_size: 10\n    rotate_interval: 1h\n"
        ),
    );
    let child = services.spawn_run(&sink_only);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let objects = loop {
        let objects = try_read_bucket(&services.s3().await, &name)
            .await
            .unwrap_or_default();
        if objects.len() == 10 || std::time::Instant::now() > deadline {
            break objects;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert!(child.sigterm_and_wait().success());
    assert_eq!(objects.len(), 10, "{:?}", objects.keys());
    assert!(objects.values().all(|body| body.lines().count() == 10));
}
