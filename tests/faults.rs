//! Faults injected into real services mid-run: the Kafka broker stopped for
//! 20 s, the S3 server stopped for 30 s. Each test runs its own broker or S3
//! server (started by `scripts/services.sh` on free ports) so that stopping it
//! does not disturb the other tests.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    log_tail, lost_and_repeated, row_counts, stock_pipeline, unique, write_pipeline,
    PrivateService, Running, Service, Services,
};

/// Starts `sluice run` on `pipeline`, its log going to `<pipeline>.log`.
fn spawn(services: &Services, pipeline: &std::path::Path) -> Running {
    let log = std::fs::File::create(pipeline.with_extension("log")).expect("log file");
    Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(pipeline)
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn sluice"),
    ))
}

/// Waits (at most `limit`) for the process to exit; returns its stdout,
/// failing the test on a non-zero exit with the end of `log`.
fn wait_success(mut running: Running, limit: Duration, log: &Path) -> String {
    let mut child = running.0.take().expect("child");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sluice did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        panic!(
            "sluice failed: {}\n{stdout}\nlast lines of its log:\n{}",
            output.status,
            log_tail(log, 40)
        );
    }
    stdout
}

/// Waits until `topic` holds at least `records` records.
fn wait_for_records(services: &Services, topic: &str, records: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if services.topic_record_count(topic) >= records {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{topic}` did not reach {records} records"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kafka_broker_stopped_for_20_s_loses_and_repeats_nothing() {
    let shared = Services::get();
    let broker = PrivateService::start(Service::Kafka);
    let services = broker.services(&shared);
    let dir = tempfile::tempdir().expect("tempdir");
    // One at-least-once and one exactly-once pipeline through the same outage.
    let mut runs = Vec::new();
    for exactly_once in [false, true] {
        let name = unique(if exactly_once { "broker-eos" } else { "broker" });
        let pipeline_dir = dir.path().join(&name);
        std::fs::create_dir(&pipeline_dir).expect("mkdir");
        let pipeline = write_pipeline(
            &pipeline_dir,
            &format!(
                "exactly_once: {exactly_once}\n{}",
                stock_pipeline(&name, "  rate: 5000/s", "    rotate_interval: 2s")
            ),
        );
        let log = pipeline.with_extension("log");
        runs.push((name, exactly_once, spawn(&services, &pipeline), log));
    }
    for (name, _, _, _) in &runs {
        wait_for_records(&services, name, 10_000);
    }
    broker.down();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    broker.up();
    eprintln!("broker down for {:.1} s", stopped.elapsed().as_secs_f64());
    for (name, exactly_once, running, log) in runs {
        let summary = wait_success(running, Duration::from_secs(300), &log);
        let (lost, repeated) = lost_and_repeated(&row_counts(&services, &name).await);
        eprintln!("broker stopped 20 s, exactly_once: {exactly_once}: 104224 rows checked, {lost} lost, {repeated} repeated\n{summary}");
        assert_eq!(
            (lost, repeated),
            (0, 0),
            "a broker restart loses or repeats rows (exactly_once: {exactly_once})"
        );
        if !exactly_once {
            // The idempotent producer's retries across the outage wrote no
            // duplicate (with transactions, commit markers take offsets too).
            assert_eq!(services.topic_record_count(&name), 104_224);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_s3_server_stopped_for_30_s_delays_commits_and_loses_nothing() {
    let shared = Services::get();
    let server = PrivateService::start(Service::S3);
    let services = server.services(&shared);
    let name = unique("s3down");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &stock_pipeline(&name, "  rate: 4000/s", "    rotate_interval: 1s"),
    );
    let group = format!("sluice-{name}-s3");
    let running = spawn(&services, &pipeline);
    wait_for_records(&services, &name, 10_000);
    server.down();
    // Uploads in flight when the server stopped have failed by now.
    std::thread::sleep(Duration::from_secs(3));
    let at_outage = services.committed(&group, &name, 6);
    std::thread::sleep(Duration::from_secs(27));
    let before_restart = services.committed(&group, &name, 6);
    let produced_meanwhile = services.topic_record_count(&name);
    server.up();
    assert!(
        !at_outage.is_empty(),
        "nothing was committed before the outage"
    );
    assert_eq!(
        at_outage, before_restart,
        "offsets were committed while S3 was unreachable"
    );
    assert!(
        produced_meanwhile > at_outage.values().sum::<i64>(),
        "the source kept producing during the outage"
    );
    let summary = wait_success(
        running,
        Duration::from_secs(300),
        &pipeline.with_extension("log"),
    );
    let (lost, repeated) = lost_and_repeated(&row_counts(&services, &name).await);
    eprintln!(
        "S3 stopped 30 s: committed {at_outage:?} throughout; 104224 rows checked, {lost} lost, {repeated} repeated\n{summary}"
    );
    assert_eq!(
        (lost, repeated),
        (0, 0),
        "an S3 outage loses or repeats rows"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_outage_longer_than_retry_timeout_restarts_the_pipeline_until_it_completes() {
    let shared = Services::get();
    let server = PrivateService::start(Service::S3);
    let services = server.services(&shared);
    let name = unique("restart");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "runtime:\n  retry_timeout: 4s\n  restart_backoff: 1s\n  restart_backoff_max: 4s\n{}",
            stock_pipeline(&name, "  rate: 4000/s", "    rotate_interval: 1s")
        ),
    );
    let running = spawn(&services, &pipeline);
    wait_for_records(&services, &name, 10_000);
    server.down();
    std::thread::sleep(Duration::from_secs(20));
    server.up();
    let summary = wait_success(
        running,
        Duration::from_secs(300),
        &pipeline.with_extension("log"),
    );
    let log = std::fs::read_to_string(pipeline.with_extension("log")).expect("log");
    let restarting = log.lines().filter(|l| l.contains("RESTARTING")).count();
    let (lost, repeated) = lost_and_repeated(&row_counts(&services, &name).await);
    eprintln!("S3 stopped 20 s with retry_timeout 4s: {restarting} restarts logged; 104224 rows checked, {lost} lost, {repeated} repeated\n{summary}");
    assert!(restarting >= 1, "the pipeline was not restarted:\n{log}");
    assert!(
        summary.contains(&format!("restarts {restarting:>3} after failures")),
        "the summary reports the restarts:\n{summary}"
    );
    assert_eq!(
        (lost, repeated),
        (0, 0),
        "a restarted pipeline loses or repeats rows"
    );
}
