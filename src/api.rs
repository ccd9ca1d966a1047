//! The worker's REST API: Kafka Connect's resource names where they fit,
//! JSON in and out, errors as `{"error_code", "message"}` with the HTTP status.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use connect_core::config::pipeline::validate_plugin_config;
use connect_core::offsets::{
    group_offsets, load_positions, reset_group, reset_positions, set_group_offsets, set_position,
};
use connect_core::registry::{PluginKind, Registry};
use connect_core::runtime::sink::group_id;
use connect_core::worker::{field_errors, Origin, PipelineInfo, TargetState, Worker, WorkerError};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{json, Value};

/// What every handler shares.
pub struct AppState {
    /// The pipelines.
    pub worker: Arc<Worker>,
    /// Set once the stored and file pipelines are started.
    pub ready: AtomicBool,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The `host:port` the API listens on, reported as the worker id.
    pub worker_id: String,
}

type Shared = Arc<AppState>;

/// An API error: status and message, as `{"error_code", "message"}`.
pub struct ApiError {
    status: StatusCode,
    message: String,
    errors: Vec<(String, String)>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            errors: Vec::new(),
        }
    }
}

impl From<WorkerError> for ApiError {
    fn from(error: WorkerError) -> Self {
        let status = match &error {
            WorkerError::NotFound(_) => StatusCode::NOT_FOUND,
            WorkerError::Conflict(_) => StatusCode::CONFLICT,
            WorkerError::Invalid(_) | WorkerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WorkerError::Kafka(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let errors = match &error {
            WorkerError::Invalid(errors) => field_errors(errors),
            _ => Vec::new(),
        };
        Self {
            status,
            message: error.to_string(),
            errors,
        }
    }
}

impl From<connect_core::kafka::KafkaGlueError> for ApiError {
    fn from(error: connect_core::kafka::KafkaGlueError) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error_code": self.status.as_u16(), "message": self.message});
        if !self.errors.is_empty() {
            body["errors"] = self
                .errors
                .iter()
                .map(|(field, message)| json!({"field": field, "message": message}))
                .collect();
        }
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The routes, with bearer-token auth when `token` is set (`/health` stays open).
pub fn router(state: Shared, token: Option<String>) -> Router {
    let api = Router::new()
        .route("/", get(root))
        .route("/metrics", get(metrics))
        .route("/connectors", get(list).post(create))
        .route("/connectors/{name}", get(describe).delete(delete))
        .route(
            "/connectors/{name}/config",
            get(get_config).put(put_config).patch(patch_config),
        )
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route("/connectors/{name}/restart", axum::routing::post(restart))
        .route(
            "/connectors/{name}/offsets",
            get(get_offsets).patch(patch_offsets).delete(delete_offsets),
        )
        .route("/connector-plugins", get(plugins))
        .route("/connector-plugins/{plugin}/config/validate", put(validate));
    let api = match token {
        Some(token) => {
            let expected: Arc<str> = format!("Bearer {token}").into();
            api.layer(axum::middleware::from_fn(move |request: Request, next: Next| {
                let expected = expected.clone();
                async move {
                    let given = request
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    if given == Some(&*expected) {
                        next.run(request).await
                    } else {
                        ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "missing or wrong bearer token (Authorization: Bearer <rest.auth_token>)",
                        )
                        .into_response()
                    }
                }
            }))
        }
        None => api,
    };
    api.route("/health", get(health))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such resource") })
        .with_state(state)
}

async fn root(State(state): State<Shared>) -> Json<Value> {
    let settings = state.worker.settings();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "worker_id": state.worker_id,
        "group": settings.group,
        "kafka_bootstrap_servers": settings.kafka.bootstrap_servers,
    }))
}

async fn health(State(state): State<Shared>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        Json(json!({"status": "healthy", "message": "the worker is running its pipelines"}))
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting", "message": "the worker is still starting its pipelines"})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    for pipeline in state.worker.list() {
        for name in [
            "RUNNING",
            "RESTARTING",
            "PAUSED",
            "STOPPED",
            "FAILED",
            "FINISHED",
        ] {
            metrics::gauge!("sluice_pipeline_state", "pipeline" => pipeline.name.clone(), "state" => name)
                .set(if pipeline.state == name { 1.0 } else { 0.0 });
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /connectors[?expand=status][&expand=info]`, as Kafka Connect.
async fn list(
    State(state): State<Shared>,
    Query(query): Query<Vec<(String, String)>>,
) -> Json<Value> {
    let pipelines = state.worker.list();
    let expand: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "expand")
        .map(|(_, v)| v.as_str())
        .collect();
    if expand.is_empty() {
        return Json(
            pipelines
                .iter()
                .map(|p| Value::from(p.name.clone()))
                .collect(),
        );
    }
    Json(Value::Object(
        pipelines
            .iter()
            .map(|p| {
                let mut entry = serde_json::Map::new();
                if expand.contains(&"status") {
                    entry.insert("status".to_owned(), status_json(p, &state.worker_id));
                }
                if expand.contains(&"info") {
                    entry.insert("info".to_owned(), info_json(p));
                }
                (p.name.clone(), Value::Object(entry))
            })
            .collect(),
    ))
}

fn info_json(info: &PipelineInfo) -> Value {
    json!({
        "name": info.name,
        "config": info.definition,
        "tasks": [{"connector": info.name, "task": 0}],
        "type": info.kind,
        "origin": match &info.origin {
            Origin::Api => "api".to_owned(),
            Origin::File(path) => path.display().to_string(),
        },
    })
}

fn status_json(info: &PipelineInfo, worker_id: &str) -> Value {
    let mut connector = json!({"state": info.state, "worker_id": worker_id});
    if let Some(error) = &info.error {
        connector["trace"] = Value::from(error.clone());
    }
    json!({
        "name": info.name,
        "connector": connector,
        "tasks": [{"id": 0, "state": info.state, "worker_id": worker_id}],
        "type": info.kind,
        "restarts": info.restarts,
    })
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    config: Value,
}

async fn create(State(state): State<Shared>, body: Json<Value>) -> ApiResult<Response> {
    let body: CreateBody = serde_json::from_value(body.0).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"name\": ..., \"config\": {{...}}}}: {e}"),
        )
    })?;
    let info = state.worker.create(&body.name, body.config).await?;
    Ok((StatusCode::CREATED, Json(info_json(&info))).into_response())
}

async fn describe(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(info_json(&state.worker.get(&name)?)))
}

async fn get_config(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.worker.get(&name)?.definition))
}

async fn put_config(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Json(config): Json<Value>,
) -> ApiResult<Response> {
    let created = state.worker.put_config(&name, config).await?;
    let info = state.worker.get(&name)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info_json(&info))).into_response())
}

/// JSON merge patch (RFC 7386): objects merge, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

async fn patch_config(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Json(patch): Json<Value>,
) -> ApiResult<Json<Value>> {
    let mut definition = state.worker.get(&name)?.definition;
    merge_patch(&mut definition, &patch);
    state.worker.put_config(&name, definition).await?;
    Ok(Json(info_json(&state.worker.get(&name)?)))
}

async fn status(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(status_json(
        &state.worker.get(&name)?,
        &state.worker_id,
    )))
}

async fn set_target(state: &Shared, name: &str, target: TargetState) -> ApiResult<StatusCode> {
    state.worker.set_target(name, target).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn pause(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_target(&state, &name, TargetState::Paused).await
}

async fn resume(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_target(&state, &name, TargetState::Running).await
}

async fn stop(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_target(&state, &name, TargetState::Stopped).await
}

async fn restart(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    state.worker.restart(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    if let Origin::File(path) = state.worker.get(&name)?.origin {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "pipeline `{name}` is defined by {}; remove the file instead",
                path.display()
            ),
        ));
    }
    state.worker.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Source positions as `{"partition": <source partition>, "offset": <offset>}`;
/// sink offsets as `{"partition": {"sink", "kafka_topic", "kafka_partition"},
/// "offset": {"kafka_offset"}}` (Kafka Connect's sink form plus the sink name).
async fn get_offsets(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let config = state.worker.get(&name)?.config;
    let kafka = config.kafka.clone();
    let offsets = tokio::task::block_in_place(|| -> ApiResult<Vec<Value>> {
        let mut offsets = Vec::new();
        if config.source.is_some() {
            for position in load_positions(&kafka, &config.name)?.values() {
                offsets.push(json!({"partition": *position.partition, "offset": position.offset}));
            }
        }
        for sink in &config.sinks {
            let group = group_id(&config.name, &sink.name);
            for (partition, (committed, _end)) in group_offsets(&kafka, &group, &config.topic.name)?
            {
                if let Some(committed) = committed {
                    offsets.push(json!({
                        "partition": {"sink": sink.name, "kafka_topic": config.topic.name, "kafka_partition": partition},
                        "offset": {"kafka_offset": committed},
                    }));
                }
            }
        }
        Ok(offsets)
    })?;
    Ok(Json(json!({"offsets": offsets})))
}

#[derive(Deserialize)]
struct OffsetsBody {
    offsets: Vec<OffsetEntry>,
}

#[derive(Deserialize)]
struct OffsetEntry {
    partition: Value,
    offset: Value,
}

async fn patch_offsets(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let config = state.worker.stopped_config(&name)?;
    let body: OffsetsBody = serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"offsets\": [{{\"partition\": ..., \"offset\": ...}}]}}: {e}"),
        )
    })?;
    let mut sink_offsets: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for entry in &body.offsets {
        if let Some(sink) = entry.partition.get("sink").and_then(Value::as_str) {
            if !config.sinks.iter().any(|s| s.name == sink) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the pipeline has no sink `{sink}`"),
                ));
            }
            let partition = entry
                .partition
                .get("kafka_partition")
                .and_then(Value::as_i64);
            let offset = entry.offset.get("kafka_offset").and_then(Value::as_i64);
            let (Some(partition), Some(offset)) = (partition, offset) else {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "a sink offset is {\"partition\": {\"sink\", \"kafka_partition\"}, \"offset\": {\"kafka_offset\"}}",
                ));
            };
            let partition = i32::try_from(partition).map_err(|_| {
                ApiError::new(StatusCode::BAD_REQUEST, "kafka_partition is out of range")
            })?;
            sink_offsets
                .entry(sink.to_owned())
                .or_default()
                .insert(partition, offset);
        } else {
            if config.source.is_none() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the pipeline has no source",
                ));
            }
            set_position(&config.kafka, &config.name, &entry.partition, &entry.offset).await?;
        }
    }
    for (sink, offsets) in &sink_offsets {
        let group = group_id(&config.name, sink);
        set_group_offsets(
            &config.kafka,
            &group,
            &config.topic.name,
            offsets,
            Duration::from_secs(30),
        )
        .await?;
    }
    Ok(Json(
        json!({"message": "the offsets are set; they take effect when the pipeline is resumed"}),
    ))
}

async fn delete_offsets(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let config = state.worker.stopped_config(&name)?;
    if config.source.is_some() {
        reset_positions(&config.kafka, &config.name).await?;
    }
    for sink in &config.sinks {
        reset_group(
            &config.kafka,
            &group_id(&config.name, &sink.name),
            Duration::from_secs(30),
        )
        .await?;
    }
    Ok(Json(
        json!({"message": "the offsets are reset; the pipeline starts over when resumed"}),
    ))
}

async fn plugins() -> ApiResult<Json<Value>> {
    let registry = Registry::global()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(
        registry
            .all()
            .map(|r| {
                let kind = match r.kind() {
                    PluginKind::Source => "source",
                    PluginKind::Sink => "sink",
                    PluginKind::Transform => "transformation",
                    PluginKind::Predicate => "predicate",
                };
                json!({"class": r.name, "type": kind, "version": env!("CARGO_PKG_VERSION"), "summary": r.summary})
            })
            .collect(),
    ))
}

/// Kafka Connect's validate response: every field with its errors.
async fn validate(Path(plugin): Path<String>, Json(config): Json<Value>) -> ApiResult<Json<Value>> {
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let file = std::path::PathBuf::from(format!("<validate>/{plugin}"));
    let result = tokio::task::block_in_place(|| validate_plugin_config(&plugin, &text, &file));
    let errors = match result {
        Ok(_) => Vec::new(),
        Err(errors) => {
            let fields = field_errors(&errors);
            if fields.len() == 1 && fields[0].1.starts_with("no plugin is registered") {
                return Err(ApiError::new(StatusCode::NOT_FOUND, fields[0].1.clone()));
            }
            fields
        }
    };
    let mut by_field: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(object) = config.as_object() {
        for key in object.keys() {
            by_field.entry(key.clone()).or_default();
        }
    }
    for (field, message) in &errors {
        by_field
            .entry(field.clone())
            .or_default()
            .push(message.clone());
    }
    Ok(Json(json!({
        "name": plugin,
        "error_count": errors.len(),
        "configs": by_field
            .into_iter()
            .map(|(field, errors)| json!({"value": {"name": field, "value": config.get(&field), "errors": errors}}))
            .collect::<Vec<_>>(),
    })))
}
