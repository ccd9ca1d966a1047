//! `GET /openapi.json` of a real `sluice worker` against what the worker
//! really does: every path and method it routes is described (probed with
//! every method), and every status and body it answers over a whole pipeline
//! lifecycle is documented for that operation and matches the documented
//! schema (with no undocumented properties).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::worker::WorkerProcess;
use common::{unique, Services};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TOKEN: &str = "openapi-test-token";

/// A running `sluice worker` on a free port, with a bearer token.
struct Worker {
    process: WorkerProcess,
}

/// One answer of the worker.
struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl Worker {
    /// Starts a worker with `config` (YAML) written next to its log in `dir`.
    async fn start(services: &Services, dir: &Path, config: &str) -> Worker {
        Worker {
            process: WorkerProcess::start(services, dir, config).await,
        }
    }

    fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    /// Sends a request with the token unless `anonymous`; `body` is sent as
    /// JSON, or as raw bytes with `Content-Type: application/json` when it
    /// is a string starting with `raw:`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        anonymous: bool,
    ) -> Answer {
        let mut request = self.process.client.request(method, self.url(path));
        if !anonymous {
            request = request.bearer_auth(TOKEN);
        }
        match body {
            Some(Value::String(raw)) if raw.starts_with("raw:") => {
                request = request
                    .header("content-type", "application/json")
                    .body(raw["raw:".len()..].to_owned());
            }
            Some(body) => request = request.json(body),
            None => {}
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("body");
        Answer {
            status,
            content_type,
            text,
        }
    }

    /// SIGTERM; the worker must exit 0.
    fn stop(self) {
        self.process.stop();
    }
}

/// The document of a worker, and checks of answers against it.
struct Document(Value);

impl Document {
    async fn fetch(worker: &Worker) -> Document {
        let answer = worker.send(Method::GET, "/openapi.json", None, false).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert!(answer.content_type.starts_with("application/json"));
        let document: Value = serde_json::from_str(&answer.text).expect("the document is JSON");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        Document(document)
    }

    /// (METHOD, path template) of every operation.
    fn operations(&self) -> Vec<(Method, String)> {
        let mut operations = Vec::new();
        for (path, item) in self.0["paths"].as_object().expect("paths") {
            for method in [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ] {
                if item.get(method).is_some() {
                    let method =
                        Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
                    operations.push((method, path.clone()));
                }
            }
        }
        operations
    }

    fn is_described(&self, method: &Method, template: &str) -> bool {
        self.0["paths"][template]
            .get(method.as_str().to_lowercase())
            .is_some()
    }

    /// Checks that `answer` to `method template` is documented: its status,
    /// its media type, and its JSON body against the schema.
    fn check(&self, method: &Method, template: &str, answer: &Answer) {
        let what = format!("{method} {template} -> {}", answer.status);
        let operation = &self.0["paths"][template][method.as_str().to_lowercase()];
        assert!(
            operation.is_object(),
            "{what}: the operation is not described"
        );
        let response = &operation["responses"][answer.status.as_str()];
        assert!(
            response.is_object(),
            "{what}: status not documented; body: {}",
            answer.text
        );
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            assert!(
                answer.text.is_empty(),
                "{what}: documented without a body, answered {}",
                answer.text
            );
            return;
        };
        let essence = |media: &str| {
            media
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let (media, described) = content
            .iter()
            .find(|(media, _)| essence(media) == essence(&answer.content_type))
            .unwrap_or_else(|| {
                panic!(
                    "{what}: content type `{}` not documented (documented: {:?})",
                    answer.content_type,
                    content.keys().collect::<Vec<_>>()
                )
            });
        if essence(media) == "application/json" {
            let body: Value = serde_json::from_str(&answer.text)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", answer.text));
            let mut problems = Vec::new();
            self.validate(&described["schema"], &body, "$", &mut problems);
            assert!(
                problems.is_empty(),
                "{what}: the body does not match the documented schema:\n  {}\nbody: {body}",
                problems.join("\n  ")
            );
        } else {
            assert_eq!(described["schema"]["type"], "string", "{what}");
        }
    }

    /// A JSON Schema check of the constructs the document uses. Stricter
    /// than JSON Schema in one way: an object schema with `properties` and
    /// no `additionalProperties` admits no other property, so a field the
    /// handlers add without documenting it fails.
    fn validate(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {target}"));
            let resolved = &self.0["components"]["schemas"][name];
            assert!(resolved.is_object(), "$ref {target} has no schema");
            return self.validate(resolved, value, at, problems);
        }
        let matching = |options: &Value| -> usize {
            options
                .as_array()
                .expect("schemas")
                .iter()
                .filter(|option| {
                    let mut inner = Vec::new();
                    self.validate(option, value, at, &mut inner);
                    inner.is_empty()
                })
                .count()
        };
        if let Some(options) = schema.get("oneOf") {
            let n = matching(options);
            if n != 1 {
                problems.push(format!("{at}: matches {n} of the oneOf schemas, not 1"));
            }
        }
        if let Some(options) = schema.get("anyOf") {
            if matching(options) == 0 {
                problems.push(format!("{at}: matches none of the anyOf schemas"));
            }
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for option in all {
                self.validate(option, value, at, problems);
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                problems.push(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => panic!("bad type {types}"),
            };
            let fits = types.iter().any(|t| match *t {
                "null" => value.is_null(),
                "boolean" => value.is_boolean(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                other => panic!("unknown type {other}"),
            });
            if !fits {
                problems.push(format!("{at}: {value} is not of type {types:?}"));
                return;
            }
        }
        if let Some(object) = value.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !object.contains_key(required) {
                    problems.push(format!("{at}: `{required}` is missing"));
                }
            }
            for (key, item) in object {
                let here = format!("{at}.{key}");
                match (
                    properties.and_then(|p| p.get(key)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(property), _) => self.validate(property, item, &here, problems),
                    (None, Some(Value::Bool(false))) => {
                        problems.push(format!("{here}: not allowed"))
                    }
                    (None, Some(additional)) if additional.is_object() => {
                        self.validate(additional, item, &here, problems)
                    }
                    (None, _) if properties.is_some() => {
                        problems.push(format!("{here}: not documented"))
                    }
                    (None, _) => {}
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                self.validate(items, item, &format!("{at}[{i}]"), problems);
            }
        }
    }
}

fn worker_config() -> String {
    format!(
        "group: {0}\nconfig_topic: {0}-configs\nrest:\n  auth_token: {TOKEN}\n",
        unique("openapi")
    )
}

/// Every path of the document probed with every method: the worker routes
/// exactly the described (method, path) pairs, and what it answers a probe
/// (with no body, an empty object, or a body that is not JSON) is documented.
#[tokio::test(flavor = "multi_thread")]
async fn the_document_describes_exactly_the_routes_the_worker_serves() {
    let services = Services::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = Worker::start(&services, dir.path(), &worker_config()).await;

    // The document is behind the token, as documented.
    let anonymous = worker.send(Method::GET, "/openapi.json", None, true).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let document = Document::fetch(&worker).await;
    document.check(&Method::GET, "/openapi.json", &anonymous);

    let operations = document.operations();
    assert!(operations.len() >= 21, "{} operations", operations.len());
    let probe_name = unique("no-such-pipeline");
    let mut paths: Vec<&String> = operations.iter().map(|(_, p)| p).collect();
    paths.dedup();
    for template in paths {
        let path = template
            .replace("{name}", &probe_name)
            .replace("{plugin}", "no_such_plugin");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
            Method::TRACE,
        ] {
            let described = document.is_described(&method, template);
            let bodies: &[Option<Value>] = if described && method != Method::GET {
                &[None, Some(json!({})), Some(json!("raw:{not json"))]
            } else {
                &[None]
            };
            for body in bodies {
                let answer = worker
                    .send(method.clone(), &path, body.as_ref(), false)
                    .await;
                if !described {
                    assert_eq!(
                        answer.status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {template} is served but not described: {}",
                        answer.text
                    );
                    continue;
                }
                let fallback = answer.status == StatusCode::NOT_FOUND
                    && answer.json()["message"] == "no such resource";
                assert!(
                    answer.status != StatusCode::METHOD_NOT_ALLOWED && !fallback,
                    "{method} {template} is described but not served"
                );
                document.check(&method, template, &answer);
            }
        }
        // Anonymous: 401 everywhere but /health.
        let anonymous = worker.send(Method::GET, &path, None, true).await;
        if document.is_described(&Method::GET, template) {
            assert_eq!(
                anonymous.status == StatusCode::UNAUTHORIZED,
                template != "/health",
                "GET {template} without the token: {}",
                anonymous.status
            );
            document.check(&Method::GET, template, &anonymous);
        }
    }

    // A path the worker does not know: 404 with the documented error body.
    let unknown = worker.send(Method::GET, "/no/such/path", None, false).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let mut problems = Vec::new();
    document.validate(
        &json!({"$ref": "#/components/schemas/ErrorBody"}),
        &unknown.json(),
        "$",
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:?}");
    worker.stop();
}

/// A pipeline with a source and a sink through its whole life over the API,
/// every answer checked against the document.
#[tokio::test(flavor = "multi_thread")]
async fn every_answer_of_a_pipeline_lifecycle_is_documented() {
    let services = Services::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = Worker::start(&services, dir.path(), &worker_config()).await;
    let document = Document::fetch(&worker).await;

    // Sends `method path`, checks the answer against `template`'s operation.
    let call = |method: Method, template: &'static str, name: &str, body: Option<Value>| {
        let path = template.replace("{name}", name).replace("{plugin}", name);
        let worker = &worker;
        let document = &document;
        async move {
            let answer = worker
                .send(method.clone(), &path, body.as_ref(), false)
                .await;
            document.check(&method, template, &answer);
            answer
        }
    };
    let state = |name: String| {
        let call = &call;
        async move {
            call(Method::GET, "/connectors/{name}/status", &name, None)
                .await
                .json()["connector"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let wait_state = |name: String, want: &'static str| {
        let state = &state;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let now = state(name.clone()).await;
                if now == want {
                    return;
                }
                assert!(Instant::now() < deadline, "`{name}` is {now}, not {want}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    let name = unique("openapi");
    let definition = json!({
        "topic": {"name": name, "partitions": 2},
        "source": {
            "type": "csv_replay",
            "path": common::dataset().display().to_string(),
            "key_column": "Index",
            "limit": 300,
        },
        "sinks": {"s3": {
            "type": "s3_json",
            "bucket": name,
            "endpoint": "${env:S3_ENDPOINT}",
            "create_bucket": true,
            "rotate_interval": "1s",
        }},
    });

    // The worker, its health (open), metrics and plugins.
    let answer = call(Method::GET, "/", "", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let health = worker.send(Method::GET, "/health", None, true).await;
    assert_eq!(health.status, StatusCode::OK);
    document.check(&Method::GET, "/health", &health);
    let answer = call(Method::GET, "/metrics", "", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = call(Method::GET, "/connector-plugins", "", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = call(
        Method::PUT,
        "/connector-plugins/{plugin}/config/validate",
        "s3_json",
        Some(json!({"bukket": "x", "flush_size": "many", "bucket": "my-bucket"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["error_count"], 2, "{}", answer.text);
    let answer = call(
        Method::PUT,
        "/connector-plugins/{plugin}/config/validate",
        "s3_json",
        Some(json!({"bucket": "my-bucket"})),
    )
    .await;
    assert_eq!(answer.json()["error_count"], 0, "{}", answer.text);

    // Create: invalid (400 with field errors), valid (201), again (409).
    let mut invalid = definition.clone();
    invalid["topic"]["partitions"] = json!("two");
    invalid["sinks"]["s3"]["bukket"] = json!("x");
    let answer = call(
        Method::POST,
        "/connectors",
        "",
        Some(json!({"name": name, "config": invalid})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.json()["errors"]
        .as_array()
        .is_some_and(|e| e.len() >= 2));
    let answer = call(
        Method::POST,
        "/connectors",
        "",
        Some(json!({"name": name, "config": definition})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let answer = call(
        Method::POST,
        "/connectors",
        "",
        Some(json!({"name": name, "config": definition})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);

    // Read it every way.
    wait_state(name.clone(), "FINISHED").await;
    for query in [
        "",
        "?expand=status",
        "?expand=info",
        "?expand=status&expand=info",
    ] {
        let answer = worker
            .send(Method::GET, &format!("/connectors{query}"), None, false)
            .await;
        document.check(&Method::GET, "/connectors", &answer);
        assert_eq!(answer.status, StatusCode::OK);
    }
    for template in [
        "/connectors/{name}",
        "/connectors/{name}/config",
        "/connectors/{name}/status",
    ] {
        let answer = call(Method::GET, template, &name, None).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let answer = call(Method::GET, "/connectors/{name}/offsets", &name, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let offsets = answer.json()["offsets"].clone();
    let entries = offsets.as_array().expect("offsets");
    assert!(
        entries.iter().any(|o| o["partition"]["sink"] == "s3")
            && entries.iter().any(|o| o["offset"]["line"].is_number()),
        "both a sink and a source offset: {offsets}"
    );

    // Lifecycle.
    let answer = call(Method::POST, "/connectors/{name}/restart", &name, None).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let answer = call(Method::PUT, "/connectors/{name}/pause", &name, None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let answer = call(Method::POST, "/connectors/{name}/restart", &name, None).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    let answer = call(Method::PUT, "/connectors/{name}/resume", &name, None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let answer = call(Method::DELETE, "/connectors/{name}/offsets", &name, None).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "not stopped");
    let answer = call(Method::PUT, "/connectors/{name}/stop", &name, None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(state(name.clone()).await, "STOPPED");

    // Offsets of the stopped pipeline: set what was read, bad bodies, reset.
    let answer = call(
        Method::PATCH,
        "/connectors/{name}/offsets",
        &name,
        Some(json!({ "offsets": offsets })),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    for bad in [
        json!({"offsets": [{"partition": {"sink": "nope", "kafka_partition": 0}, "offset": {"kafka_offset": 0}}]}),
        json!({"offsets": [{"partition": {"sink": "s3"}, "offset": {}}]}),
        json!({"offsets": "all"}),
    ] {
        let answer = call(
            Method::PATCH,
            "/connectors/{name}/offsets",
            &name,
            Some(bad),
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    }
    let answer = call(Method::DELETE, "/connectors/{name}/offsets", &name, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);

    // Configuration: merge patch, replace, create through PUT, invalid PUT.
    let answer = call(
        Method::PATCH,
        "/connectors/{name}/config",
        &name,
        Some(json!({"source": {"limit": 100}})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let answer = call(
        Method::PATCH,
        "/connectors/{name}/config",
        &name,
        Some(json!({"topic": null})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let answer = call(
        Method::PUT,
        "/connectors/{name}/config",
        &name,
        Some(definition.clone()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let other = unique("openapi-put");
    let answer = call(
        Method::PUT,
        "/connectors/{name}/config",
        &other,
        Some(json!([1, 2])),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let mut source_only = definition.clone();
    source_only["topic"]["name"] = json!(other);
    source_only["source"]["limit"] = json!(10);
    source_only.as_object_mut().expect("object").remove("sinks");
    let answer = call(
        Method::PUT,
        "/connectors/{name}/config",
        &other,
        Some(source_only),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.json()["type"], "source");

    // Delete both; then they are gone.
    for pipeline in [&name, &other] {
        let answer = call(Method::DELETE, "/connectors/{name}", pipeline, None).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        let answer = call(Method::GET, "/connectors/{name}", pipeline, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
    }
    worker.stop();
}
