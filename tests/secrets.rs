//! Secrets: values from `${file:...}` / `${env:...}` references and values of
//! secret-looking keys never appear in logs, error messages, `validate`
//! output or REST responses — checked by grepping all of them for the value.

mod common;

use common::OutputWithinLimit as _;

use std::time::{Duration, Instant};

use common::{free_port, read_bucket, run_ok, unique, write_pipeline, Running, Services};
use serde_json::{json, Value};

/// A pipeline whose bucket name is a secret read from a `.env` file, with a
/// literal secret-looking Kafka property.
fn pipeline(name: &str, secrets: &std::path::Path, extra_sink: &str) -> String {
    format!(
        "name: {name}\ntopic: {{ name: {name}, partitions: 1 }}\n\
         kafka:\n  properties:\n    ssl.key.password: literal-key-pass-42\n\
         source:\n  type: csv_replay\n  path: {}\n  limit: 500\n\
         sinks:\n  s3:\n    type: s3_json\n    bucket: ${{file:{}:BUCKET}}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n{extra_sink}",
        common::dataset().display(),
        secrets.display()
    )
}

fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{what} shows the secret `{secret}`:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_show_in_logs_errors_validate_or_the_api() {
    let services = Services::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("secret");
    let bucket = format!("hidden-{}", unique("b"));
    let secrets_file = dir.path().join("secrets.env");
    std::fs::write(&secrets_file, format!("# test secrets\nBUCKET={bucket}\n")).expect("secrets");
    let hidden = [bucket.as_str(), "literal-key-pass-42"];

    // validate, with an error that would quote the value.
    let bad = write_pipeline(
        dir.path(),
        &pipeline(
            &name,
            &secrets_file,
            &format!(
                "    flush_size: ${{file:{}:BUCKET}}\n",
                secrets_file.display()
            ),
        ),
    );
    let output = services
        .sluice()
        .arg("validate")
        .arg(&bad)
        .output_within_limit()
        .expect("validate");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("flush_size") && stderr.contains("[redacted]"),
        "{stderr}"
    );
    assert_hidden("validate", &stderr, &hidden);
    assert_hidden(
        "validate",
        &String::from_utf8_lossy(&output.stdout),
        &hidden,
    );

    // A run, logging at debug level: it works, and no line shows the secret.
    let good = write_pipeline(dir.path(), &pipeline(&name, &secrets_file, ""));
    let output = run_ok(
        services
            .sluice()
            .env("SLUICE_LOG", "debug")
            .arg("run")
            .arg(&good),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.lines().count() > 20,
        "debug logs expected:\n{stderr}"
    );
    assert!(
        stderr.contains("[redacted]"),
        "the bucket is logged, redacted"
    );
    assert_hidden("the run's log", &stderr, &hidden);
    assert_hidden(
        "the run's summary",
        &String::from_utf8_lossy(&output.stdout),
        &hidden,
    );
    let rows: usize = read_bucket(&services.s3().await, &bucket)
        .await
        .values()
        .map(|b| b.lines().count())
        .sum();
    assert_eq!(rows, 500, "the secret bucket name was used");

    // A worker: create the pipeline over the API; read everything back.
    let port = free_port();
    let worker_file = dir.path().join("worker.yaml");
    let group = unique("secret-worker");
    std::fs::write(
        &worker_file,
        format!("group: {group}\nconfig_topic: {group}-configs\n"),
    )
    .expect("worker config");
    let log_path = dir.path().join("worker.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let worker = Running(Some(
        services
            .sluice()
            .env("SLUICE_LOG", "debug")
            .arg("worker")
            .arg(&worker_file)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stderr(log)
            .spawn()
            .expect("worker"),
    ));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("{base}/health"))
        .send()
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        assert!(Instant::now() < deadline, "the worker did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let api_name = format!("{name}-api");
    let config: Value =
        serde_yaml::from_str(&pipeline(&api_name, &secrets_file, "")).expect("yaml");
    let created = client
        .post(format!("{base}/connectors"))
        .json(&json!({"name": api_name, "config": config}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let mut responses = vec![created.text().await.expect("body")];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = client
            .get(format!("{base}/connectors/{api_name}/status"))
            .send()
            .await
            .expect("status");
        let text = status.text().await.expect("body");
        let done = text.contains("FINISHED");
        responses.push(text);
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the API pipeline did not finish");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for path in [
        "/connectors".to_owned(),
        "/connectors?expand=info&expand=status".to_owned(),
        format!("/connectors/{api_name}"),
        format!("/connectors/{api_name}/config"),
        format!("/connectors/{api_name}/offsets"),
        "/metrics".to_owned(),
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("get");
        responses.push(response.text().await.expect("body"));
    }
    let config_text = &responses[responses.len() - 3];
    assert!(
        config_text.contains("${file:"),
        "the reference is shown, not its value: {config_text}"
    );
    assert!(
        config_text.contains("[redacted]"),
        "the literal secret key is redacted: {config_text}"
    );
    // A config error over the API quotes no secret either.
    let mut bad: Value =
        serde_yaml::from_str(&pipeline(&format!("{name}-bad"), &secrets_file, "")).expect("yaml");
    bad["sinks"]["s3"]["flush_size"] =
        json!(format!("${{file:{}:BUCKET}}", secrets_file.display()));
    let rejected = client
        .post(format!("{base}/connectors"))
        .json(&json!({"name": format!("{name}-bad"), "config": bad}))
        .send()
        .await
        .expect("create");
    assert_eq!(rejected.status().as_u16(), 400);
    responses.push(rejected.text().await.expect("body"));
    for response in &responses {
        assert_hidden("an API response", response, &hidden);
    }
    assert!(worker.sigterm_and_wait().success());
    let log = std::fs::read_to_string(&log_path).expect("worker log");
    assert_hidden("the worker's log", &log, &hidden);
}
