//! Kafka security on the real broker: the stock pipeline through a
//! SASL_PLAINTEXT listener with SCRAM-SHA-512 and through an SSL listener
//! whose CA the test makes itself (with zstd compression); a wrong password
//! and a CA the client does not trust fail fast with an error that says
//! what to check.
//!
//! One private broker (`SecureKafka`, started by `scripts/services.sh` with
//! `SLUICE_KAFKA_SASL_PORT`/`SLUICE_KAFKA_SSL_PORT`) serves every test here;
//! S3 is the shared server.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{
    lost_and_repeated, row_counts, run_ok, stock_pipeline, unique, write_pipeline, SecureKafka,
    Services, SCRAM_PASSWORD, SCRAM_USER,
};

/// Rows each pipeline replays (the first ones of the dataset).
const ROWS: usize = 20_000;

/// How long a pipeline with wrong security settings may take to fail.
const FAIL_WITHIN: Duration = Duration::from_secs(60);

/// `kafka:` settings for SASL_PLAINTEXT with SCRAM-SHA-512, the credentials
/// read from the environment as a real deployment would.
const SASL: &str = r#"kafka:
  properties:
    security.protocol: SASL_PLAINTEXT
    sasl.mechanism: SCRAM-SHA-512
    sasl.username: ${env:KAFKA_SASL_USERNAME}
    sasl.password: ${env:KAFKA_SASL_PASSWORD}
"#;

/// `kafka:` settings for TLS trusting the CA in `ca` (and zstd, the other
/// librdkafka feature Sluice enables).
fn tls(ca: &std::path::Path) -> String {
    format!(
        "kafka:\n  compression: zstd\n  properties:\n    security.protocol: SSL\n    ssl.ca.location: {}\n",
        ca.display()
    )
}

/// The shared services with Kafka at `bootstrap` (a listener of the secure broker).
fn through(bootstrap: &str) -> Services {
    let mut services = Services::get();
    services.kafka = bootstrap.to_owned();
    services
}

/// A stock pipeline of [`ROWS`] rows named `name`, with the `kafka:` section `kafka`.
fn pipeline(dir: &std::path::Path, name: &str, kafka: &str) -> std::path::PathBuf {
    write_pipeline(
        dir,
        &format!(
            "{kafka}{}",
            stock_pipeline(name, &format!("  limit: {ROWS}"), "")
        ),
    )
}

/// Asserts that the first [`ROWS`] rows of the dataset are in `bucket` once
/// each and no other row is, and that the topic holds [`ROWS`] records.
async fn assert_exactly_once(name: &str) {
    let secure = SecureKafka::shared();
    let counts = row_counts(&Services::get(), name).await;
    let (lost, repeated) = lost_and_repeated(&counts[..ROWS]);
    assert_eq!(
        (lost, repeated),
        (0, 0),
        "rows lost and extra copies in the bucket"
    );
    assert!(
        counts[ROWS..].iter().all(|&n| n == 0),
        "rows past the limit reached the bucket"
    );
    // Read through the PLAINTEXT listener of the same broker.
    assert_eq!(
        through(&secure.plaintext).topic_record_count(name),
        ROWS as i64,
        "records in the topic"
    );
}

/// Runs `command`, killing it (and failing the test) if it takes longer
/// than [`FAIL_WITHIN`]; returns its output and how long it took.
fn run_bounded(command: &mut Command) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    // Drain both pipes while waiting, so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut text).map(|_| text)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sluice") {
            break status;
        }
        if started.elapsed() > FAIL_WITHIN {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().expect("stderr reader").unwrap_or_default();
            panic!(
                "sluice was still running after {FAIL_WITHIN:?} (a hang or a retry loop); stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let elapsed = started.elapsed();
    let output = Output {
        status,
        stdout: out.join().expect("stdout reader").expect("read stdout"),
        stderr: err.join().expect("stderr reader").expect("read stderr"),
    };
    (output, elapsed)
}

/// The last line of `sluice`'s stderr that starts with `error:` (what the user reads).
fn final_error(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .rev()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_else(|| {
            panic!(
                "no `error:` line in stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stock_pipeline_runs_through_a_sasl_scram_listener_exactly_once() {
    let secure = SecureKafka::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("sec-sasl");
    let started = Instant::now();
    let output = run_ok(
        through(&secure.sasl)
            .sluice()
            .arg("run")
            .arg(pipeline(dir.path(), &name, SASL))
            .env("KAFKA_SASL_USERNAME", SCRAM_USER)
            .env("KAFKA_SASL_PASSWORD", SCRAM_PASSWORD),
    );
    eprintln!(
        "SASL_PLAINTEXT/SCRAM-SHA-512: {ROWS} rows in {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stdout)
    );
    assert_exactly_once(&name).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains(SCRAM_PASSWORD),
        "the password appears in the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stock_pipeline_runs_through_a_tls_listener_with_zstd_exactly_once() {
    let secure = SecureKafka::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("sec-tls");
    let started = Instant::now();
    let output = run_ok(through(&secure.ssl).sluice().arg("run").arg(pipeline(
        dir.path(),
        &name,
        &tls(&secure.ca),
    )));
    eprintln!(
        "SSL: {ROWS} rows in {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stdout)
    );
    assert_exactly_once(&name).await;
}

#[test]
fn a_wrong_scram_password_fails_fast_naming_the_user_and_the_settings() {
    let secure = SecureKafka::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("sec-badpass");
    let wrong = "not-the-password";
    let (output, elapsed) = run_bounded(
        through(&secure.sasl)
            .sluice()
            .arg("run")
            .arg(pipeline(dir.path(), &name, SASL))
            .env("KAFKA_SASL_USERNAME", SCRAM_USER)
            .env("KAFKA_SASL_PASSWORD", wrong),
    );
    let error = final_error(&output);
    eprintln!(
        "wrong password: {} after {elapsed:.1?}: {error}",
        output.status
    );
    assert_eq!(output.status.code(), Some(1), "exit code: {error}");
    for expected in [
        format!(
            "authentication failed for user `{SCRAM_USER}` at {}",
            secure.sasl
        ),
        "SASL authentication error".to_owned(),
        "check kafka.properties sasl.username/sasl.password".to_owned(),
    ] {
        assert!(error.contains(&expected), "`{expected}` not in: {error}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(wrong), "the password appears in the log");
    assert!(
        !stderr.contains("RESTARTING"),
        "a wrong password is not worth a restart:\n{stderr}"
    );
}

#[test]
fn a_client_that_does_not_trust_the_broker_ca_fails_fast_naming_tls() {
    let secure = SecureKafka::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("sec-badca");
    let (output, elapsed) = run_bounded(through(&secure.ssl).sluice().arg("run").arg(pipeline(
        dir.path(),
        &name,
        &tls(&secure.other_ca),
    )));
    let error = final_error(&output);
    eprintln!(
        "untrusted CA: {} after {elapsed:.1?}: {error}",
        output.status
    );
    assert_eq!(output.status.code(), Some(1), "exit code: {error}");
    for expected in [
        format!("TLS handshake failed at {}", secure.ssl),
        "certificate verify failed".to_owned(),
        "check kafka.properties ssl.ca.location".to_owned(),
    ] {
        assert!(error.contains(&expected), "`{expected}` not in: {error}");
    }
}
