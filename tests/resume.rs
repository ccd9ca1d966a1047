//! Source positions stored in Kafka: a stopped or killed replay resumes where
//! it left off. After SIGTERM nothing is lost or repeated; after kill -9 no
//! row is lost and the only repeats are the re-sent unacknowledged tail.

mod common;

use std::time::Duration;

use common::{
    lost_and_repeated, row_counts, run_ok, stock_pipeline, unique, write_pipeline, Running,
    Services,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_stopped_with_sigterm_resumes_without_loss_or_repeat() {
    let services = Services::get();
    let name = unique("resume");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &stock_pipeline(&name, "  rate: 8000/s", "    rotate_interval: 60s"),
    );
    let child = services.spawn_run(&pipeline);
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.sigterm_and_wait().success());
    let first = services.topic_record_count(&name);
    assert!(
        first > 0 && first < 104_224,
        "{first} records after the first run"
    );

    let fast = write_pipeline(
        dir.path(),
        &stock_pipeline(&name, "  rate: max", "    rotate_interval: 60s"),
    );
    let output = run_ok(services.sluice().arg("run").arg(&fast));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains(&format!("rows read        {:>10}", 104_224 - first)),
        "resumed after {first} rows:\n{summary}"
    );
    assert_eq!(
        services.topic_record_count(&name),
        104_224,
        "the topic holds each row once"
    );
    let counts = row_counts(&services, &name).await;
    assert!(
        counts.iter().all(|&n| n == 1),
        "rows lost or repeated after a graceful stop"
    );
}

/// Kills a replay of `pipeline` with SIGKILL five times at random moments,
/// then lets it finish; returns the kill delays.
fn kill_five_times_then_finish(services: &Services, pipeline: &std::path::Path) -> Vec<Duration> {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos() as u64);
    let mut kills = Vec::new();
    for _ in 0..5 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(1500 + (seed >> 33) % 2500);
        let mut child = Running(Some(
            services
                .sluice()
                .arg("run")
                .arg(pipeline)
                .spawn()
                .expect("spawn"),
        ));
        std::thread::sleep(delay);
        let process = child.0.as_mut().expect("child");
        let finished_early = process.try_wait().expect("wait").is_some();
        assert!(
            !finished_early,
            "the replay ended before the kill after {delay:?}; slow the rate"
        );
        process.kill().expect("kill -9");
        process.wait().expect("wait");
        kills.push(delay);
    }
    run_ok(services.sluice().arg("run").arg(pipeline));
    kills
}

/// The sink's partitioner lines for each partitioner under test.
const PARTITIONERS: [(&str, &str); 3] = [
    ("kafka", "    partitioner: {type: kafka}"),
    (
        "field",
        "    partitioner: {type: field, field: Index, name: index}",
    ),
    (
        "time",
        "    partitioner: {type: time, timestamp_field: Date, path_format: 'year=%Y'}",
    ),
];

/// kill -9 five times during a replay with `partitioner`, then finish it,
/// and check the bucket: with `exactly_once` every row once; without, no
/// row lost and the only repeats the re-sent tails (the bucket mirrors the topic).
async fn kill_9_five_times(partitioner: &str, exactly_once: bool) {
    let services = Services::get();
    let (label, lines) = PARTITIONERS
        .iter()
        .find(|(label, _)| *label == partitioner)
        .expect("partitioner");
    let name = unique(&format!("kill9-{label}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "exactly_once: {exactly_once}\n{}",
            stock_pipeline(
                &name,
                "  rate: 5000/s",
                &format!("    rotate_interval: 60s\n{lines}"),
            )
        ),
    );
    let kills = kill_five_times_then_finish(&services, &pipeline);
    let produced = services.topic_record_count(&name);
    let (lost, repeated) = lost_and_repeated(&row_counts(&services, &name).await);
    eprintln!(
        "exactly_once: {exactly_once}, {label} partitioner, kill -9 after {kills:?}: {produced} records in the topic for 104224 rows, {lost} rows lost, {repeated} repeats in the bucket"
    );
    if exactly_once {
        assert_eq!(
            (lost, repeated),
            (0, 0),
            "with exactly_once every row lands once"
        );
    } else {
        assert_eq!(lost, 0, "rows lost after kill -9");
        // Repeats are rows sent again because the killed process had not
        // stored their position yet; the bucket mirrors the topic exactly.
        assert_eq!(
            produced as u64,
            104_224 + u64::from(repeated),
            "the bucket mirrors the topic"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_five_times_loses_no_row() {
    kill_9_five_times("kafka", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_five_times_loses_no_row_with_the_field_partitioner() {
    kill_9_five_times("field", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_five_times_loses_no_row_with_the_time_partitioner() {
    kill_9_five_times("time", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_five_times_with_exactly_once_lands_every_row_once() {
    kill_9_five_times("kafka", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_exactly_once_and_the_field_partitioner_lands_every_row_once() {
    kill_9_five_times("field", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_exactly_once_and_the_time_partitioner_lands_every_row_once() {
    kill_9_five_times("time", true).await;
}
