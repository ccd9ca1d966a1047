//! `sluice offsets get|reset`: stored positions are visible, and resetting a
//! sink's offsets rebuilds the bucket identically (same keys, same bytes).

mod common;

use common::{read_bucket, run_ok, unique, write_pipeline, Services};

#[tokio::test(flavor = "multi_thread")]
async fn offsets_are_shown_and_a_reset_sink_rebuilds_the_bucket_identically() {
    let services = Services::get();
    let name = unique("offsets");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: 2 }}\n\
             source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  limit: 2000\n\
             sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n    flush_size: 300\n",
            common::dataset().display()
        ),
    );
    run_ok(services.sluice().arg("run").arg(&pipeline));
    let client = services.s3().await;
    let first = read_bucket(&client, &name).await;
    assert_eq!(
        first.values().map(|b| b.lines().count()).sum::<usize>(),
        2000
    );

    let get = run_ok(services.sluice().args(["offsets", "get"]).arg(&pipeline));
    let shown = String::from_utf8_lossy(&get.stdout);
    assert!(
        shown.contains("\"line\":2001"),
        "the source position is the 2000th row:\n{shown}"
    );
    assert!(
        shown.contains(&format!("sink s3 (group sluice-{name}-s3):")),
        "{shown}"
    );
    assert!(
        shown.lines().filter(|l| l.contains("lag 0")).count() == 2,
        "both partitions fully committed:\n{shown}"
    );

    for key in first.keys() {
        client
            .delete_object()
            .bucket(&name)
            .key(key)
            .send()
            .await
            .expect("delete");
    }
    let reset = run_ok(
        services
            .sluice()
            .args(["offsets", "reset", "--sink", "s3"])
            .arg(&pipeline),
    );
    assert!(String::from_utf8_lossy(&reset.stdout).contains("deleted consumer group"));
    let rerun = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&rerun.stdout);
    assert!(
        summary.contains("rows read                 0"),
        "the source resumed at its end:\n{summary}"
    );
    assert_eq!(
        read_bucket(&client, &name).await,
        first,
        "the bucket is rebuilt with the same keys and bytes"
    );

    run_ok(
        services
            .sluice()
            .args(["offsets", "reset", "--source"])
            .arg(&pipeline),
    );
    let get = run_ok(services.sluice().args(["offsets", "get"]).arg(&pipeline));
    assert!(String::from_utf8_lossy(&get.stdout).contains("source: no stored position"));
}
