//! `sluice worker` and its REST API against the real broker and S3 server:
//! every endpoint, its errors (404, 400 with field errors, 409, 401), metrics
//! that move with a replay, and pipelines created through the API coming back
//! after a worker restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::worker::WorkerProcess;
use common::{read_bucket, unique, Services};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A running `sluice worker` on a free port.
struct Worker {
    process: WorkerProcess,
    token: Option<String>,
}

impl Worker {
    /// Starts a worker with `config` (YAML) written next to its log in `dir`.
    async fn start(services: &Services, dir: &Path, config: &str, token: Option<&str>) -> Worker {
        Worker {
            process: WorkerProcess::start(services, dir, config).await,
            token: token.map(str::to_owned),
        }
    }

    fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.process.client.request(method, self.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn state(&self, name: &str) -> String {
        let (status, body) = self.get(&format!("/connectors/{name}/status")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["connector"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn wait_state(&self, name: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = self.state(name).await;
            if state == want {
                return;
            }
            assert!(Instant::now() < deadline, "`{name}` is {state}, not {want}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of a Prometheus sample line starting with `prefix`, if any.
    async fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await;
        body.as_str()?
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// SIGTERM; the worker must exit 0 within 60 s.
    fn stop(self) {
        self.process.stop();
    }
}

/// The stock pipeline as a JSON config for the API.
fn stock_config(name: &str, rate: &str) -> Value {
    json!({
        "topic": {"name": name, "partitions": 3},
        "source": {
            "type": "csv_replay",
            // Relative, as in the README: against the worker's working directory.
            "path": "data/indexProcessed.csv",
            "key_column": "Index",
            "rate": rate,
        },
        "sinks": {"s3": {
            "type": "s3_json",
            "bucket": name,
            "endpoint": "${env:S3_ENDPOINT}",
            "create_bucket": true,
            "rotate_interval": "1s",
        }},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rest_api_manages_pipelines_end_to_end() {
    use reqwest::Method;
    let services = Services::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = format!("group: {0}\nconfig_topic: {0}-configs\n", unique("worker"));
    let worker = Worker::start(&services, dir.path(), &settings, None).await;

    let (status, root) = worker.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(root["version"].is_string(), "{root}");
    let (_, plugins) = worker.get("/connector-plugins").await;
    assert!(
        plugins
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p["class"] == "csv_replay" && p["type"] == "source"),
        "{plugins}"
    );
    assert!(
        plugins
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p["class"] == "s3_json" && p["type"] == "sink"),
        "{plugins}"
    );

    // Validation of one plugin's config, field by field.
    let (status, checked) = worker
        .call(
            Method::PUT,
            "/connector-plugins/s3_json/config/validate",
            Some(json!({"bukket": "x", "flush_size": "many"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(checked["error_count"], 2, "{checked}");
    let fields: Vec<&str> = checked["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .filter(|c| !c["value"]["errors"].as_array().expect("errors").is_empty())
        .filter_map(|c| c["value"]["name"].as_str())
        .collect();
    assert_eq!(fields, ["bukket", "flush_size"], "{checked}");
    let (status, _) = worker
        .call(
            Method::PUT,
            "/connector-plugins/nope/config/validate",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // `file` is a source and a sink: the kind says which.
    let (status, error) = worker
        .call(
            Method::PUT,
            "/connector-plugins/file/config/validate",
            Some(json!({"path": "out.jsonl"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("say which kind")),
        "{error}"
    );
    let (status, checked) = worker
        .call(
            Method::PUT,
            "/connector-plugins/file/config/validate?kind=sink",
            Some(json!({"path": "out.jsonl", "follow": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        checked["error_count"], 1,
        "`follow` is the source's: {checked}"
    );

    // An invalid pipeline: 400 with every problem and its field.
    let name = unique("api");
    let mut bad = stock_config(&name, "max");
    bad["sinks"]["s3"]["bukket"] = json!("x");
    bad["topic"]["partitions"] = json!("three");
    let (status, error) = worker
        .call(
            Method::POST,
            "/connectors",
            Some(json!({"name": name, "config": bad})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error_code"], 400);
    let fields: Vec<&str> = error["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"sinks.s3.bukket") && fields.contains(&"topic.partitions"),
        "{error}"
    );

    // A body that is not JSON gets the same error shape.
    let response = worker
        .process
        .client
        .post(worker.url("/connectors"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.expect("a JSON error body");
    assert_eq!(error["error_code"], 400, "{error}");

    // Create a replay slow enough to watch.
    let (status, created) = worker
        .call(
            Method::POST,
            "/connectors",
            Some(json!({"name": name, "config": stock_config(&name, "3000/s")})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], name.as_str());
    let (status, _) = worker
        .call(
            Method::POST,
            "/connectors",
            Some(json!({"name": name, "config": stock_config(&name, "max")})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, list) = worker.get("/connectors").await;
    assert!(
        list.as_array().expect("list").contains(&json!(name)),
        "{list}"
    );
    let (_, described) = worker.get(&format!("/connectors/{name}")).await;
    assert_eq!(described["type"], "source+sink");
    let (_, config) = worker.get(&format!("/connectors/{name}/config")).await;
    assert_eq!(config["source"]["rate"], "3000/s");
    let (_, expanded) = worker.get("/connectors?expand=status&expand=info").await;
    assert_eq!(
        expanded[&name]["status"]["connector"]["state"], "RUNNING",
        "{expanded}"
    );
    worker.wait_state(&name, "RUNNING").await;

    // Metrics move as the replay moves.
    let produced = format!("sluice_records_produced_total{{pipeline=\"{name}\"}}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let first = worker.metric(&produced).await.expect("produced metric");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = worker.metric(&produced).await.expect("produced metric");
    assert!(second > first && first > 0.0, "{first} then {second}");
    let (_, text) = worker.get("/metrics").await;
    let text = text.as_str().expect("text");
    for metric in [
        "sluice_source_records_polled_total",
        "sluice_sink_records_consumed_total",
        "sluice_pipeline_state",
        "sluice_producer_queue_messages",
    ] {
        assert!(
            text.contains(&format!("{metric}{{")),
            "{metric} missing:\n{text}"
        );
    }
    assert!(
        text.contains(&format!(
            "sluice_pipeline_state{{pipeline=\"{name}\",state=\"RUNNING\"}} 1"
        )),
        "{text}"
    );

    // Pause: nothing more is produced; resume: it goes on.
    let (status, _) = worker
        .call(Method::PUT, &format!("/connectors/{name}/pause"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(worker.state(&name).await, "PAUSED");
    let paused_at = services.topic_record_count(&name);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        services.topic_record_count(&name),
        paused_at,
        "a paused pipeline produced"
    );
    let (status, _) = worker
        .call(Method::PUT, &format!("/connectors/{name}/resume"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    worker.wait_state(&name, "RUNNING").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        services.topic_record_count(&name) > paused_at,
        "a resumed pipeline produces"
    );
    let (status, _) = worker
        .call(Method::POST, &format!("/connectors/{name}/restart"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    worker.wait_state(&name, "RUNNING").await;

    // Offsets: readable any time, changeable only when stopped.
    let (status, offsets) = worker.get(&format!("/connectors/{name}/offsets")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        offsets["offsets"]
            .as_array()
            .expect("offsets")
            .iter()
            .any(|o| o["offset"]["line"].is_number()),
        "{offsets}"
    );
    let (status, _) = worker
        .call(Method::DELETE, &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "offsets of a running pipeline"
    );
    let (status, _) = worker
        .call(Method::PUT, &format!("/connectors/{name}/stop"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(worker.state(&name).await, "STOPPED");
    let (status, _) = worker
        .call(Method::POST, &format!("/connectors/{name}/restart"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "restart of a stopped pipeline"
    );
    let (status, body) = worker
        .call(Method::PATCH, &format!("/connectors/{name}/offsets"), Some(json!({"offsets": [{"partition": {"sink": "s3", "kafka_topic": name, "kafka_partition": 0}, "offset": {"kafka_offset": 0}}]})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = worker
        .call(Method::DELETE, &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, offsets) = worker.get(&format!("/connectors/{name}/offsets")).await;
    assert_eq!(offsets["offsets"], json!([]), "reset offsets: {offsets}");

    // Reconfigure with a merge patch: the whole file at full speed.
    let (status, patched) = worker
        .call(
            Method::PATCH,
            &format!("/connectors/{name}/config"),
            Some(json!({"source": {"rate": "max"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["config"]["source"]["rate"], "max");
    assert_eq!(patched["config"]["source"]["key_column"], "Index");

    // A restarted worker brings the API pipeline back, still stopped.
    worker.stop();
    let worker = Worker::start(&services, dir.path(), &settings, None).await;
    assert_eq!(worker.state(&name).await, "STOPPED");
    let (_, config) = worker.get(&format!("/connectors/{name}/config")).await;
    assert_eq!(config["source"]["rate"], "max");
    // Resumed after the reset, it replays the whole file into the bucket.
    worker
        .call(Method::PUT, &format!("/connectors/{name}/resume"), None)
        .await;
    worker.wait_state(&name, "FINISHED").await;
    let rows: usize = read_bucket(&services.s3().await, &name)
        .await
        .values()
        .map(|b| b.lines().count())
        .sum();
    assert!(rows >= 104_224, "{rows} rows in the bucket");

    // Errors and delete.
    let (status, error) = worker.get("/connectors/nope/status").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error_code"], 404);
    let (status, _) = worker
        .call(Method::DELETE, &format!("/connectors/{name}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = worker.get(&format!("/connectors/{name}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    worker.stop();
    let log = dir.path().join("worker.log");
    let created = format!("pipeline created pipeline={name}");
    let count = |log: &Path| {
        let text = std::fs::read_to_string(log).expect("worker log");
        text.matches(&created).count()
    };
    let before = count(&log);
    assert!(before > 0, "the log names created pipelines as `{created}`");
    let worker = Worker::start(&services, dir.path(), &settings, None).await;
    let (_, list) = worker.get("/connectors").await;
    assert!(
        !list.as_array().expect("list").contains(&json!(name)),
        "a deleted pipeline came back: {list}"
    );
    // The stored history (created, changed, deleted) is folded before
    // anything starts: the deleted pipeline is not started even briefly.
    assert_eq!(
        count(&log),
        before,
        "a deleted pipeline was started on restart"
    );
    worker.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_protects_the_api_and_a_pipelines_directory_is_reloaded_on_change() {
    let services = Services::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).expect("mkdir");
    let name = unique("dir");
    let file = pipelines.join("stock.yaml");
    let pipeline = |limit: u32| {
        format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: 2 }}\nsource:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  limit: {limit}\nsinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n",
            common::dataset().display()
        )
    };
    std::fs::write(&file, pipeline(1000)).expect("pipeline");
    let config = format!(
        "group: {0}\nconfig_topic: {0}-configs\npipelines_dir: pipelines\nrest:\n  auth_token: s3cret-token\n",
        unique("worker")
    );
    let worker = Worker::start(&services, dir.path(), &config, Some("s3cret-token")).await;

    // Without the token: 401 everywhere but /health.
    let anonymous = reqwest::Client::new();
    let response = anonymous
        .get(worker.url("/connectors"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = anonymous
        .get(worker.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);

    // The file's pipeline runs; its config cannot be changed over the API.
    worker.wait_state(&name, "FINISHED").await;
    let (_, described) = worker.get(&format!("/connectors/{name}")).await;
    assert!(
        described["origin"]
            .as_str()
            .expect("origin")
            .ends_with("stock.yaml"),
        "{described}"
    );
    let (status, _) = worker
        .call(
            reqwest::Method::PUT,
            &format!("/connectors/{name}/config"),
            Some(json!({"topic": {"name": name}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = worker
        .call(
            reqwest::Method::DELETE,
            &format!("/connectors/{name}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(services.topic_record_count(&name), 1000);

    // Editing the file restarts the pipeline with the new definition.
    std::fs::write(&file, pipeline(3000)).expect("pipeline");
    let deadline = Instant::now() + Duration::from_secs(60);
    while services.topic_record_count(&name) < 3000 {
        assert!(
            Instant::now() < deadline,
            "the changed file was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, config) = worker.get(&format!("/connectors/{name}/config")).await;
    assert_eq!(config["source"]["limit"], 3000);

    // Removing it removes the pipeline.
    std::fs::remove_file(&file).expect("rm");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = worker.get(&format!("/connectors/{name}")).await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removed file's pipeline is still there"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    worker.stop();
}
