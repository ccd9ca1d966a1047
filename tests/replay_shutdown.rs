//! SIGTERM in the middle of a replay: exit 0, and everything produced is in the bucket.

mod common;

use std::time::Duration;

use common::{
    cell_text, dataset, read_bucket, read_csv, stock_pipeline, unique, write_pipeline, Running,
    Services,
};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_replay_exits_zero_with_everything_produced_sunk() {
    let services = Services::get();
    let name = unique("sigterm");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &stock_pipeline(&name, "  rate: 2000/s", "    rotate_interval: 60s"),
    );

    let stdout = dir.path().join("stdout.txt");
    let child = Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(&pipeline)
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .spawn()
            .expect("spawn sluice"),
    ));
    std::thread::sleep(Duration::from_secs(6));
    let exit = child.sigterm_and_wait();
    let summary = std::fs::read_to_string(&stdout).expect("summary");
    assert!(
        exit.success(),
        "exit status {exit} after SIGTERM; summary:\n{summary}"
    );
    assert!(summary.contains("stopped"), "summary:\n{summary}");

    let produced = services.topic_record_count(&name) as usize;
    assert!(
        produced > 1000 && produced < 104_224,
        "SIGTERM after 6 s at 2000/s, but {produced} records were produced"
    );

    // The bucket holds exactly the first `produced` rows of the file, once each.
    let (_, rows) = read_csv(&dataset());
    let expected: std::collections::BTreeSet<(String, String)> = rows[..produced]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let mut landed = Vec::new();
    for body in read_bucket(&services.s3().await, &name).await.values() {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            landed.push((cell_text(&value["Index"]), cell_text(&value["Date"])));
        }
    }
    assert_eq!(
        landed.len(),
        produced,
        "records in the bucket vs records produced"
    );
    let landed: std::collections::BTreeSet<_> = landed.into_iter().collect();
    assert_eq!(landed, expected);
}
