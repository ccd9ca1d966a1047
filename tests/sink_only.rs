//! A pipeline with only a sink reads a topic filled by someone else, runs
//! until SIGTERM, and commits what it wrote so that a rerun adds nothing.

mod common;

use std::time::{Duration, Instant};

use common::{read_bucket, run_ok, try_read_bucket, unique, write_pipeline, Running, Services};

async fn lines_in_bucket(services: &Services, bucket: &str) -> usize {
    let objects = try_read_bucket(&services.s3().await, bucket)
        .await
        .unwrap_or_default();
    objects.values().map(|b| b.lines().count()).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_only_pipeline_runs_until_sigterm_and_commits_what_it_wrote() {
    let services = Services::get();
    let name = unique("sinkonly");
    let dir = tempfile::tempdir().expect("tempdir");
    let producer = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}-fill\ntopic: {{ name: {name}, partitions: 2 }}\nsource:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  limit: 500\n",
            common::dataset().display()
        ),
    );
    run_ok(services.sluice().arg("run").arg(&producer));
    assert_eq!(services.topic_record_count(&name), 500);

    let sink_dir = tempfile::tempdir().expect("tempdir");
    let sink_only = write_pipeline(
        sink_dir.path(),
        &format!(
            "name: {name}-land\ntopic: {{ name: {name} }}\nruntime: {{ flush_interval: 200ms }}\n\
             sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n    rotate_interval: 1s\n"
        ),
    );
    let child = Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(&sink_only)
            .spawn()
            .expect("spawn"),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines_in_bucket(&services, &name).await < 500 {
        assert!(
            Instant::now() < deadline,
            "the sink did not land 500 records within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(child.sigterm_and_wait().success());
    assert_eq!(lines_in_bucket(&services, &name).await, 500);

    // A second run starts from the committed offsets: nothing new to write.
    let objects_before = read_bucket(&services.s3().await, &name).await;
    let child = Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(&sink_only)
            .spawn()
            .expect("spawn"),
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(child.sigterm_and_wait().success());
    assert_eq!(
        read_bucket(&services.s3().await, &name).await,
        objects_before
    );
}
