//! The worker's REST API: Kafka Connect's resource names where they fit,
//! JSON in and out, errors as `{"error_code", "message"}` with the HTTP status.
//!
//! `GET /openapi.json` serves an OpenAPI 3.1 description of it. Each handler
//! carries its `#[utoipa::path]` description and is routed with
//! `utoipa_axum::routes!`, which adds the route and its description together;
//! the response bodies are typed structs whose schemas are derived from the
//! very types that are serialized.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use connect_core::config::pipeline::validate_plugin_config;
use connect_core::offsets::{
    group_offsets, load_positions, reset_group, reset_positions, set_group_offsets, set_position,
};
use connect_core::registry::{PluginKind, Registry};
use connect_core::runtime::sink::group_id;
use connect_core::worker::{field_errors, Origin, PipelineInfo, TargetState, Worker, WorkerError};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
        let body = ErrorBody {
            error_code: self.status.as_u16(),
            message: self.message,
            errors: self
                .errors
                .into_iter()
                .map(|(field, message)| FieldError { field, message })
                .collect(),
        };
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body whose rejections (not JSON, wrong content type, too
/// large) are answered as [`ErrorBody`] with axum's status, like every other error.
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    Json<T>: axum::extract::FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

// ---------------------------------------------------------------------------
// The shapes of requests and responses (serialized as they are documented).
// ---------------------------------------------------------------------------

/// An error. Every error the API itself answers has this body; the HTTP
/// status is repeated as `error_code`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error_code": 404, "message": "pipeline `stock-market` not found"}))]
struct ErrorBody {
    /// The HTTP status code.
    error_code: u16,
    /// What went wrong.
    message: String,
    /// Only for an invalid pipeline config: every problem, with the field it is about.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

/// One problem of a config.
#[derive(Serialize, ToSchema)]
struct FieldError {
    /// The dotted path of the field, e.g. `sinks.s3.bucket` (empty for the config as a whole).
    field: String,
    /// What is wrong with it.
    message: String,
}

/// A pipeline definition as JSON (described by its schema below).
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct PipelineDefinition(Value);

impl PartialSchema for PipelineDefinition {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A pipeline definition: the keys of a pipeline YAML file (`topic`, `source`, \
                 `sinks`, `kafka`, ...) as a JSON object. `name` may be left out (the \
                 pipeline's name is used) and must match it when given. Without a `kafka` key \
                 the pipeline uses the worker's Kafka connection. `${env:NAME}` references are \
                 kept as written and resolved on the worker.",
            ))
            .examples([serde_json::json!({
                "topic": {"name": "stock-market", "partitions": 3},
                "source": {
                    "type": "csv_replay",
                    "path": "data/indexProcessed.csv",
                    "key_column": "Index",
                    "rate": "max",
                },
                "sinks": {"s3": {
                    "type": "s3_json",
                    "bucket": "stock-market",
                    "endpoint": "${env:S3_ENDPOINT}",
                }},
            })])
            .into()
    }
}

impl ToSchema for PipelineDefinition {}

/// `POST /connectors`: a new pipeline.
#[derive(Deserialize, ToSchema)]
struct CreateBody {
    /// The pipeline's name: not empty, no `/`.
    name: String,
    config: PipelineDefinition,
}

/// `GET /`: which worker this is.
#[derive(Serialize, ToSchema)]
struct WorkerInfo {
    /// The `sluice` version.
    version: &'static str,
    /// The `host:port` the API listens on.
    worker_id: String,
    /// The worker group (`group` of the worker config).
    group: String,
    /// The Kafka bootstrap servers of the worker.
    kafka_bootstrap_servers: String,
}

/// Whether the worker has started its pipelines.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum HealthState {
    /// Every stored and file pipeline has been started.
    Healthy,
    /// Still starting them.
    Starting,
}

/// `GET /health`.
#[derive(Serialize, ToSchema)]
struct Health {
    status: HealthState,
    /// The status in words.
    message: &'static str,
}

/// What `expand` adds to each pipeline of `GET /connectors`.
#[derive(Clone, Copy, ToSchema)]
#[schema(rename_all = "lowercase")]
enum Expand {
    /// The pipeline's status, as `GET /connectors/{name}/status`.
    Status,
    /// The pipeline's definition, as `GET /connectors/{name}`.
    Info,
}

impl Expand {
    fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Info => "info",
        }
    }
}

/// `GET /connectors`: the names, or with `expand` an object by name.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum ConnectorList {
    /// Without `expand`: the pipelines' names, sorted.
    Names(Vec<String>),
    /// With `expand`: each pipeline's name to what was asked for.
    Expanded(BTreeMap<String, ExpandedConnector>),
}

/// One pipeline of `GET /connectors?expand=...`.
#[derive(Serialize, ToSchema)]
struct ExpandedConnector {
    /// With `expand=status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    status: Option<ConnectorStatus>,
    /// With `expand=info`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    info: Option<ConnectorInfo>,
}

/// The states a pipeline is shown in: its run's state while it should run,
/// else the state it was put in.
const STATES: [&str; 6] = [
    "RUNNING",
    "RESTARTING",
    "PAUSED",
    "STOPPED",
    "FAILED",
    "FINISHED",
];

/// What a pipeline has: `source`, `sink` or both.
const KINDS: [&str; 3] = ["source", "sink", "source+sink"];

fn state_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(STATES))
        .description(Some(
            "RUNNING (or starting), RESTARTING (failed, waiting before a retry), PAUSED, \
             STOPPED, FAILED (for good, or out of restarts), FINISHED (its finite source \
             was exhausted and drained)",
        ))
        .into()
}

fn kind_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(KINDS))
        .description(Some(
            "`source` (a source, no sinks), `sink` (sinks only) or `source+sink`",
        ))
        .into()
}

/// A pipeline and its definition (Kafka Connect's connector info).
#[derive(Serialize, ToSchema)]
struct ConnectorInfo {
    /// The pipeline's name.
    name: String,
    config: PipelineDefinition,
    /// Always one task: a pipeline runs as one unit.
    tasks: Vec<TaskId>,
    #[serde(rename = "type")]
    #[schema(schema_with = kind_schema)]
    kind: &'static str,
    /// `api` for a pipeline created through this API (stored in the config
    /// topic), else the path of its file in the pipelines directory.
    #[schema(example = "api")]
    origin: String,
}

/// A task of a pipeline.
#[derive(Serialize, ToSchema)]
struct TaskId {
    /// The pipeline's name.
    connector: String,
    /// Always 0.
    task: u32,
}

/// A pipeline's state (Kafka Connect's connector status).
#[derive(Serialize, ToSchema)]
struct ConnectorStatus {
    /// The pipeline's name.
    name: String,
    connector: ConnectorState,
    /// The pipeline's tasks across the worker group: its source tasks (one
    /// per slot, `source-<n>`) and a sink task per worker and sink
    /// (`<sink>@<worker>`); before any task reported, one task in the
    /// pipeline's state on this worker.
    tasks: Vec<TaskState>,
    #[serde(rename = "type")]
    #[schema(schema_with = kind_schema)]
    kind: &'static str,
    /// Restarts after failures in the current run.
    restarts: u32,
}

/// The state of the pipeline as a whole.
#[derive(Serialize, ToSchema)]
struct ConnectorState {
    #[schema(schema_with = state_schema)]
    state: &'static str,
    /// The `host:port` of the worker running it.
    worker_id: String,
    /// The error of the last run, when that run failed or is waiting to be retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    trace: Option<String>,
}

/// The state of one task of the pipeline.
#[derive(Serialize, ToSchema)]
struct TaskState {
    /// The task's number in this list: source tasks first, by slot.
    id: u32,
    /// `source-<n>` or `<sink>@<worker>`.
    name: String,
    /// `source` or `sink`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `RUNNING`, `FINISHED`, `FAILED`, `UNASSIGNED` (its worker left the group;
    /// another takes it within the session timeout), or the pipeline's state.
    state: String,
    /// The id of the worker running it; absent when unassigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    worker_id: Option<String>,
    /// The task's files (source) or topic partitions (sink).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    assigned: Vec<String>,
    /// The error of a failed task.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    trace: Option<String>,
}

/// A pipeline's offsets: its source's positions and its sinks' committed
/// Kafka offsets.
#[derive(Serialize, ToSchema)]
struct Offsets {
    offsets: Vec<Offset>,
}

/// One offset: a source position or a sink's committed offset.
#[derive(Serialize)]
#[serde(untagged)]
enum Offset {
    Source(SourceOffset),
    Sink(SinkOffset),
}

impl PartialSchema for Offset {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(SinkOffset::name()))
            .item(Ref::from_schema_name(SourceOffset::name()))
            .description(Some(
                "A sink's committed offset (the partition has `sink`) or a source position",
            ))
            .into()
    }
}

impl ToSchema for Offset {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((SinkOffset::name().into(), SinkOffset::schema()));
        <SinkOffset as ToSchema>::schemas(schemas);
        schemas.push((SourceOffset::name().into(), SourceOffset::schema()));
        <SourceOffset as ToSchema>::schemas(schemas);
    }
}

/// Where the source is in one of its streams; both parts are defined by the
/// source connector.
#[derive(Serialize, ToSchema)]
struct SourceOffset {
    /// Which stream of the outside system, e.g. `{"file": "data/indexProcessed.csv"}` for `csv_replay`.
    partition: Value,
    /// How far into it, e.g. `{"line": 12, "byte_offset": 1024, "record": 10, "pass": 0}` for `csv_replay`.
    offset: Value,
}

/// The next Kafka offset a sink reads from one partition of the pipeline's topic.
#[derive(Serialize, ToSchema)]
struct SinkOffset {
    partition: SinkPartition,
    offset: KafkaOffset,
}

/// A sink and a partition of the pipeline's topic.
#[derive(Serialize, ToSchema)]
struct SinkPartition {
    /// The sink's name (its key under `sinks`).
    sink: String,
    /// The pipeline's topic; always present in a GET, and may be left out of a PATCH.
    #[schema(required = false)]
    kafka_topic: String,
    /// The partition.
    kafka_partition: i32,
}

/// A Kafka offset.
#[derive(Serialize, ToSchema)]
struct KafkaOffset {
    /// The offset of the next record to read.
    kafka_offset: i64,
}

/// An outcome in words.
#[derive(Serialize, ToSchema)]
struct Message {
    message: &'static str,
}

/// What a plugin is.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum PluginType {
    Source,
    Sink,
    Transformation,
    Predicate,
}

/// A registered plugin.
#[derive(Serialize, ToSchema)]
struct PluginInfo {
    /// The name to use as `type` in a pipeline definition.
    class: &'static str,
    #[serde(rename = "type")]
    kind: PluginType,
    /// The `sluice` version (plugins are linked into it).
    version: &'static str,
    /// What the plugin does, in one line.
    summary: &'static str,
}

/// The outcome of a plugin config's validation (Kafka Connect's form).
#[derive(Serialize, ToSchema)]
struct ValidateResponse {
    /// The plugin.
    name: String,
    /// How many problems were found in all.
    error_count: usize,
    /// Every top-level key of the given config and every field with a
    /// problem, sorted by name.
    configs: Vec<ConfigEntry>,
}

/// One field of a validated config.
#[derive(Serialize, ToSchema)]
struct ConfigEntry {
    value: ConfigValue,
}

/// A field, its value and its problems.
#[derive(Serialize, ToSchema)]
struct ConfigValue {
    /// The field's dotted path (empty for the config as a whole).
    name: String,
    /// The value given for it, if it is a top-level key of the config; else `null`.
    #[schema(required = true)]
    value: Option<Value>,
    /// Its problems; empty when it is fine.
    errors: Vec<String>,
}

// ---------------------------------------------------------------------------
// The router and the document.
// ---------------------------------------------------------------------------

/// The name of the bearer-token security scheme in the document.
const BEARER: &str = "bearer_token";

/// The parts of the document that no handler gives.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice worker REST API",
        version = env!("CARGO_PKG_VERSION"),
        description = "The REST API of `sluice worker`: create, configure, pause, resume, stop, \
            restart and delete pipelines (Kafka Connect's connectors), read and change their \
            offsets, validate plugin configs, and read the worker's health and Prometheus \
            metrics. Errors the API answers itself have the body `ErrorBody`; a path it does \
            not know answers 404 with that body, and a known path with a method it does not \
            serve answers 405 with no body. When the worker config sets `rest.auth_token`, \
            every request but `GET /health` needs `Authorization: Bearer <rest.auth_token>`."
    ),
    tags(
        (name = "worker", description = "The worker itself: identity, health, metrics and this document"),
        (name = "connectors", description = "Pipelines: create, configure, inspect, pause, resume, stop, restart, delete"),
        (name = "offsets", description = "Where a pipeline's source and sinks go on from; changeable while it is stopped"),
        (name = "plugins", description = "The registered sources, sinks, transforms and predicates"),
    ),
)]
struct ApiDoc;

/// The routes behind the bearer token (when one is set), each with its description.
fn protected_routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(root))
        .routes(routes!(openapi_json))
        .routes(routes!(metrics))
        .routes(routes!(list, create))
        .routes(routes!(describe, delete))
        .routes(routes!(get_config, put_config, patch_config))
        .routes(routes!(status))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(stop))
        .routes(routes!(restart))
        .routes(routes!(get_offsets, patch_offsets, delete_offsets))
        .routes(routes!(plugins))
        .routes(routes!(validate))
}

/// The routes open to everyone, each with its description.
fn open_routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(health))
}

/// The protected routes, the open routes, and the document describing both.
fn routes_and_document() -> (Router<Shared>, Router<Shared>, utoipa::openapi::OpenApi) {
    let (protected, mut document) = protected_routes().split_for_parts();
    require_bearer_token(&mut document);
    let (open, open_document) = open_routes().split_for_parts();
    document.merge(open_document);
    (protected, open, document)
}

/// Marks every operation of `document` as needing the bearer token and
/// answering 401 without it, as the middleware of [`router`] does.
fn require_bearer_token(document: &mut utoipa::openapi::OpenApi) {
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <rest.auth_token>`. Needed only when the \
                         worker config sets `rest.auth_token`; without it the API is open.",
                    ))
                    .build(),
            ),
        );
    let unauthorized = ResponseBuilder::new()
        .description(
            "No `Authorization: Bearer <token>` header, or a wrong token (only when the \
             worker config sets `rest.auth_token`)",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build();
    for item in document.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
            operation
                .responses
                .responses
                .insert("401".to_owned(), unauthorized.clone().into());
        }
    }
}

fn operations_mut(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// The document served at `/openapi.json`.
fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_document().2
}

/// `/openapi.json`, serialized once.
static OPENAPI_JSON: LazyLock<Result<String, String>> =
    LazyLock::new(|| openapi().to_json().map_err(|e| e.to_string()));

/// The routes, with bearer-token auth when `token` is set (`/health` stays open).
pub fn router(state: Shared, token: Option<String>) -> Router {
    let (api, open, _) = routes_and_document();
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
    api.merge(open)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such resource") })
        .layer(axum::middleware::map_response(redact_response))
        .with_state(state)
}

/// Every response body with the registered secrets redacted (values that
/// came from `${env:...}` / `${file:...}` references and values of
/// secret-looking keys): definitions, error messages, metrics.
async fn redact_response(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the response: {error}"),
            )
            .into_response()
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    match connect_core::secrets::redact(&text) {
        std::borrow::Cow::Borrowed(_) => Response::from_parts(parts, axum::body::Body::from(bytes)),
        std::borrow::Cow::Owned(redacted) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(redacted))
        }
    }
}

// ---------------------------------------------------------------------------
// The handlers.
// ---------------------------------------------------------------------------

/// Which worker this is
#[utoipa::path(
    get,
    path = "/",
    tag = "worker",
    operation_id = "worker_info",
    responses((status = 200, description = "The worker's version, id, group and Kafka", body = WorkerInfo)),
)]
async fn root(State(state): State<Shared>) -> Json<WorkerInfo> {
    let settings = state.worker.settings();
    Json(WorkerInfo {
        version: env!("CARGO_PKG_VERSION"),
        worker_id: state.worker_id.clone(),
        group: settings.group.clone(),
        kafka_bootstrap_servers: settings.kafka.bootstrap_servers.clone(),
    })
}

/// Whether the worker has started its pipelines
///
/// Open even when the worker config sets `rest.auth_token`.
#[utoipa::path(
    get,
    path = "/health",
    tag = "worker",
    operation_id = "health",
    responses(
        (status = 200, description = "The worker has started every stored and file pipeline (`status` is `healthy`)", body = Health),
        (status = 503, description = "The worker is still starting its pipelines (`status` is `starting`)", body = Health),
    ),
)]
async fn health(State(state): State<Shared>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        Json(Health {
            status: HealthState::Healthy,
            message: "the worker is running its pipelines",
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: HealthState::Starting,
                message: "the worker is still starting its pipelines",
            }),
        )
            .into_response()
    }
}

/// This document
///
/// The OpenAPI 3.1 description of this API, generated from the handlers.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "worker",
    operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json"),
        (status = 500, description = "The document could not be serialized", body = ErrorBody),
    ),
)]
async fn openapi_json() -> ApiResult<Response> {
    let text = OPENAPI_JSON.as_ref().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the OpenAPI document: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response())
}

/// Prometheus metrics
///
/// Every `sluice_*` metric of every pipeline, plus `sluice_pipeline_state`
/// (1 for each pipeline's current state, 0 for the others), in the Prometheus
/// text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "worker",
    operation_id = "metrics",
    responses(
        (status = 200, description = "The metrics in the Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain; version=0.0.4"),
    ),
)]
async fn metrics(State(state): State<Shared>) -> Response {
    for pipeline in state.worker.list() {
        for name in STATES {
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

/// The pipelines
///
/// Without `expand`, their names; with `expand=status` and/or `expand=info`
/// (repeat the parameter for both), an object from each name to its status
/// and/or definition, as Kafka Connect.
#[utoipa::path(
    get,
    path = "/connectors",
    tag = "connectors",
    operation_id = "list_connectors",
    params(
        ("expand" = inline(Option<Vec<Expand>>), Query, explode, style = Form,
            description = "What to add for each pipeline: `status`, `info`, or both (`?expand=status&expand=info`). Any `expand` switches the response to the object form; other values add nothing to the entries."),
    ),
    responses(
        (status = 200, description = "An array of names without `expand`; an object by name with it", body = ConnectorList),
    ),
)]
async fn list(
    State(state): State<Shared>,
    Query(query): Query<Vec<(String, String)>>,
) -> Json<ConnectorList> {
    let pipelines = state.worker.list();
    let expand: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "expand")
        .map(|(_, v)| v.as_str())
        .collect();
    if expand.is_empty() {
        return Json(ConnectorList::Names(
            pipelines.into_iter().map(|p| p.name).collect(),
        ));
    }
    let wants = |what: Expand| expand.contains(&what.as_str());
    Json(ConnectorList::Expanded(
        pipelines
            .iter()
            .map(|p| {
                let entry = ExpandedConnector {
                    status: wants(Expand::Status)
                        .then(|| status_of(&state.worker, p, &state.worker_id)),
                    info: wants(Expand::Info).then(|| info_of(p)),
                };
                (p.name.clone(), entry)
            })
            .collect(),
    ))
}

fn info_of(info: &PipelineInfo) -> ConnectorInfo {
    ConnectorInfo {
        name: info.name.clone(),
        config: PipelineDefinition(connect_core::secrets::redact_json(&info.definition)),
        tasks: vec![TaskId {
            connector: info.name.clone(),
            task: 0,
        }],
        kind: info.kind,
        origin: match &info.origin {
            Origin::Api => "api".to_owned(),
            Origin::File(path) => path.display().to_string(),
        },
    }
}

fn status_of(worker: &Worker, info: &PipelineInfo, worker_id: &str) -> ConnectorStatus {
    let mut tasks: Vec<TaskState> = worker
        .tasks(&info.name)
        .into_iter()
        .enumerate()
        .map(|(id, task)| TaskState {
            id: id as u32,
            name: task.name,
            kind: task.kind,
            state: task.state,
            worker_id: task.worker_id,
            assigned: task.assigned,
            trace: task.trace,
        })
        .collect();
    if tasks.is_empty() {
        tasks.push(TaskState {
            id: 0,
            name: if info.kind == "sink" {
                "sink"
            } else {
                "source-0"
            }
            .to_owned(),
            kind: if info.kind == "sink" {
                "sink"
            } else {
                "source"
            },
            state: info.state.to_owned(),
            worker_id: Some(worker_id.to_owned()),
            assigned: Vec::new(),
            trace: None,
        });
    }
    ConnectorStatus {
        name: info.name.clone(),
        connector: ConnectorState {
            state: info.state,
            worker_id: worker_id.to_owned(),
            trace: info.error.clone(),
        },
        tasks,
        kind: info.kind,
        restarts: info.restarts,
    }
}

/// Create a pipeline
///
/// Checks the definition, stores it in the config topic and starts the pipeline.
#[utoipa::path(
    post,
    path = "/connectors",
    tag = "connectors",
    operation_id = "create_connector",
    request_body(content = CreateBody, description = "The pipeline's name and definition"),
    responses(
        (status = 201, description = "Created and started", body = ConnectorInfo),
        (status = 400, description = "Not `{\"name\", \"config\"}`, an invalid name, or an invalid definition (`errors` lists every problem with its field); also when the body is not valid JSON", body = ErrorBody),
        (status = 404, description = "Only if a concurrent DELETE removed the new pipeline before it could be described", body = ErrorBody),
        (status = 409, description = "A pipeline of that name exists", body = ErrorBody),
        (status = 413, description = "The body is larger than 2 MB", body = ErrorBody),
        (status = 415, description = "No `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "Kafka failed while storing the definition", body = ErrorBody),
    ),
)]
async fn create(State(state): State<Shared>, ApiJson(body): ApiJson<Value>) -> ApiResult<Response> {
    let body: CreateBody = serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"name\": ..., \"config\": {{...}}}}: {e}"),
        )
    })?;
    let info = state.worker.create(&body.name, body.config.0).await?;
    Ok((StatusCode::CREATED, Json(info_of(&info))).into_response())
}

/// A pipeline and its definition
#[utoipa::path(
    get,
    path = "/connectors/{name}",
    tag = "connectors",
    operation_id = "get_connector",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 200, description = "The pipeline", body = ConnectorInfo),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
    ),
)]
async fn describe(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<ConnectorInfo>> {
    Ok(Json(info_of(&state.worker.get(&name)?)))
}

/// A pipeline's definition
///
/// As given, with `${env:...}` references unresolved.
#[utoipa::path(
    get,
    path = "/connectors/{name}/config",
    tag = "connectors",
    operation_id = "get_connector_config",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 200, description = "The definition", body = PipelineDefinition),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
    ),
)]
async fn get_config(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelineDefinition>> {
    Ok(Json(PipelineDefinition(
        connect_core::secrets::redact_json(&state.worker.get(&name)?.definition),
    )))
}

/// Create or replace a pipeline's definition
///
/// A new name creates and starts the pipeline; an existing one is replaced,
/// and restarted with the new definition if it runs (a paused or stopped
/// pipeline stays so).
#[utoipa::path(
    put,
    path = "/connectors/{name}/config",
    tag = "connectors",
    operation_id = "put_connector_config",
    params(("name" = String, Path, description = "The pipeline's name")),
    request_body(content = PipelineDefinition, description = "The whole definition"),
    responses(
        (status = 200, description = "Replaced", body = ConnectorInfo),
        (status = 201, description = "Created and started", body = ConnectorInfo),
        (status = 400, description = "Not a JSON object, a `name` that differs, an invalid name, or an invalid definition (`errors` lists every problem with its field); also when the body is not valid JSON", body = ErrorBody),
        (status = 404, description = "Only if a concurrent DELETE removed the pipeline before it could be described", body = ErrorBody),
        (status = 409, description = "The pipeline is defined by a file of the pipelines directory", body = ErrorBody),
        (status = 413, description = "The body is larger than 2 MB", body = ErrorBody),
        (status = 415, description = "No `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "Kafka failed while storing the definition", body = ErrorBody),
    ),
)]
async fn put_config(
    State(state): State<Shared>,
    Path(name): Path<String>,
    ApiJson(config): ApiJson<Value>,
) -> ApiResult<Response> {
    let created = state.worker.put_config(&name, config).await?;
    let info = state.worker.get(&name)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info_of(&info))).into_response())
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

/// Change part of a pipeline's definition
///
/// Applies a JSON merge patch (RFC 7386: objects merge, `null` removes a key,
/// anything else replaces) to the definition, then replaces it as `PUT` does.
#[utoipa::path(
    patch,
    path = "/connectors/{name}/config",
    tag = "connectors",
    operation_id = "patch_connector_config",
    params(("name" = String, Path, description = "The pipeline's name")),
    request_body(content = Object, description = "A JSON merge patch of the definition, e.g. `{\"source\": {\"rate\": \"max\"}}`"),
    responses(
        (status = 200, description = "Replaced", body = ConnectorInfo),
        (status = 400, description = "The patched definition is invalid (`errors` lists every problem with its field); also when the body is not valid JSON", body = ErrorBody),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
        (status = 409, description = "The pipeline is defined by a file of the pipelines directory", body = ErrorBody),
        (status = 413, description = "The body is larger than 2 MB", body = ErrorBody),
        (status = 415, description = "No `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "Kafka failed while storing the definition", body = ErrorBody),
    ),
)]
async fn patch_config(
    State(state): State<Shared>,
    Path(name): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<ConnectorInfo>> {
    let mut definition = state.worker.get(&name)?.definition;
    merge_patch(&mut definition, &patch);
    state.worker.put_config(&name, definition).await?;
    Ok(Json(info_of(&state.worker.get(&name)?)))
}

/// A pipeline's state
#[utoipa::path(
    get,
    path = "/connectors/{name}/status",
    tag = "connectors",
    operation_id = "get_connector_status",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 200, description = "The state, restarts and last error", body = ConnectorStatus),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
    ),
)]
async fn status(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<ConnectorStatus>> {
    let info = state.worker.get(&name)?;
    Ok(Json(status_of(&state.worker, &info, &state.worker_id)))
}

async fn set_target(state: &Shared, name: &str, target: TargetState) -> ApiResult<StatusCode> {
    state.worker.set_target(name, target).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Pause a pipeline
///
/// Ends its run gracefully (what was read is flushed and committed) and keeps
/// it PAUSED until resumed, also across worker restarts for an API pipeline.
#[utoipa::path(
    put,
    path = "/connectors/{name}/pause",
    tag = "connectors",
    operation_id = "pause_connector",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 202, description = "Paused (the run has ended); no body"),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
        (status = 500, description = "Kafka failed while storing the new state of an API pipeline", body = ErrorBody),
    ),
)]
async fn pause(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_target(&state, &name, TargetState::Paused).await
}

/// Resume a pipeline
///
/// Starts a new run of a paused, stopped, finished or failed pipeline; a
/// pipeline that runs is left alone.
#[utoipa::path(
    put,
    path = "/connectors/{name}/resume",
    tag = "connectors",
    operation_id = "resume_connector",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 202, description = "Running (a new run has been started if none was running); no body"),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
        (status = 500, description = "Kafka failed while storing the new state of an API pipeline", body = ErrorBody),
    ),
)]
async fn resume(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_target(&state, &name, TargetState::Running).await
}

/// Stop a pipeline
///
/// Ends its run gracefully, as pausing does; a STOPPED pipeline's offsets
/// may be changed.
#[utoipa::path(
    put,
    path = "/connectors/{name}/stop",
    tag = "connectors",
    operation_id = "stop_connector",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 202, description = "Stopped (the run has ended); no body"),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
        (status = 500, description = "Kafka failed while storing the new state of an API pipeline", body = ErrorBody),
    ),
)]
async fn stop(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_target(&state, &name, TargetState::Stopped).await
}

/// Restart a pipeline
///
/// Ends its run gracefully and starts a new one, also after it failed for good.
#[utoipa::path(
    post,
    path = "/connectors/{name}/restart",
    tag = "connectors",
    operation_id = "restart_connector",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 204, description = "Restarted"),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
        (status = 409, description = "The pipeline is paused or stopped; resume it instead", body = ErrorBody),
    ),
)]
async fn restart(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    state.worker.restart(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a pipeline
///
/// Stops it gracefully and removes it from the config topic.
#[utoipa::path(
    delete,
    path = "/connectors/{name}",
    tag = "connectors",
    operation_id = "delete_connector",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
        (status = 409, description = "The pipeline is defined by a file of the pipelines directory; remove the file instead", body = ErrorBody),
        (status = 500, description = "Kafka failed while removing the definition", body = ErrorBody),
    ),
)]
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

/// A pipeline's offsets
///
/// Its source's positions, and for each sink the committed offset of every
/// partition of the topic that has one (Kafka Connect's sink form plus the
/// sink name). Readable in any state.
#[utoipa::path(
    get,
    path = "/connectors/{name}/offsets",
    tag = "offsets",
    operation_id = "get_connector_offsets",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 200, description = "The offsets (an empty list when nothing is stored)", body = Offsets),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
        (status = 500, description = "Kafka failed while reading the offsets", body = ErrorBody),
    ),
)]
async fn get_offsets(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<Offsets>> {
    let config = state.worker.get(&name)?.config;
    let kafka = config.kafka.clone();
    let offsets = tokio::task::block_in_place(|| -> ApiResult<Vec<Offset>> {
        let mut offsets = Vec::new();
        if config.source.is_some() {
            for position in load_positions(&kafka, &config.name, Some(&config.topic.name))?.values()
            {
                offsets.push(Offset::Source(SourceOffset {
                    partition: (*position.partition).clone(),
                    offset: position.offset.clone(),
                }));
            }
        }
        for sink in &config.sinks {
            let group = group_id(&config.name, &sink.name);
            for (partition, (committed, _end)) in group_offsets(&kafka, &group, &config.topic.name)?
            {
                if let Some(committed) = committed {
                    offsets.push(Offset::Sink(SinkOffset {
                        partition: SinkPartition {
                            sink: sink.name.clone(),
                            kafka_topic: config.topic.name.clone(),
                            kafka_partition: partition,
                        },
                        offset: KafkaOffset {
                            kafka_offset: committed,
                        },
                    }));
                }
            }
        }
        Ok(offsets)
    })?;
    Ok(Json(Offsets { offsets }))
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

/// Set a stopped pipeline's offsets
///
/// An entry whose partition has `sink` sets that sink's next offset in one
/// partition of the topic; any other entry sets a source position. Entries
/// not given are left as they are. They take effect when the pipeline is
/// resumed.
#[utoipa::path(
    patch,
    path = "/connectors/{name}/offsets",
    tag = "offsets",
    operation_id = "patch_connector_offsets",
    params(("name" = String, Path, description = "The pipeline's name")),
    request_body(content = Offsets, description = "The offsets to set, in the form `GET` returns"),
    responses(
        (status = 200, description = "Set", body = Message),
        (status = 400, description = "Not `{\"offsets\": [{\"partition\", \"offset\"}]}`, a sink the pipeline does not have, a sink entry without `kafka_partition` or `kafka_offset`, or a source entry for a pipeline without a source; also when the body is not valid JSON", body = ErrorBody),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
        (status = 409, description = "The pipeline is not STOPPED", body = ErrorBody),
        (status = 413, description = "The body is larger than 2 MB", body = ErrorBody),
        (status = 415, description = "No `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "Kafka failed while storing the offsets", body = ErrorBody),
    ),
)]
async fn patch_offsets(
    State(state): State<Shared>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Message>> {
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
    Ok(Json(Message {
        message: "the offsets are set; they take effect when the pipeline is resumed",
    }))
}

/// Reset a stopped pipeline's offsets
///
/// Forgets the source's positions and every sink's committed offsets: when
/// resumed, the pipeline starts over.
#[utoipa::path(
    delete,
    path = "/connectors/{name}/offsets",
    tag = "offsets",
    operation_id = "delete_connector_offsets",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses(
        (status = 200, description = "Reset", body = Message),
        (status = 404, description = "No pipeline of that name", body = ErrorBody),
        (status = 409, description = "The pipeline is not STOPPED", body = ErrorBody),
        (status = 500, description = "Kafka failed while resetting the offsets", body = ErrorBody),
    ),
)]
async fn delete_offsets(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<Message>> {
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
    Ok(Json(Message {
        message: "the offsets are reset; the pipeline starts over when resumed",
    }))
}

/// The registered plugins
#[utoipa::path(
    get,
    path = "/connector-plugins",
    tag = "plugins",
    operation_id = "list_plugins",
    responses(
        (status = 200, description = "Every registered source, sink, transformation and predicate", body = Vec<PluginInfo>),
        (status = 500, description = "The plugin registry is inconsistent (e.g. two plugins of one name)", body = ErrorBody),
    ),
)]
async fn plugins() -> ApiResult<Json<Vec<PluginInfo>>> {
    let registry = Registry::global()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(
        registry
            .all()
            .map(|r| PluginInfo {
                class: r.name,
                kind: match r.kind() {
                    PluginKind::Source => PluginType::Source,
                    PluginKind::Sink => PluginType::Sink,
                    PluginKind::Transform => PluginType::Transformation,
                    PluginKind::Predicate => PluginType::Predicate,
                },
                version: env!("CARGO_PKG_VERSION"),
                summary: r.summary,
            })
            .collect(),
    ))
}

/// `?kind=` of the validate endpoint.
#[derive(Debug, Deserialize)]
struct KindQuery {
    kind: Option<String>,
}

/// Validate a plugin's config
///
/// Checks the config as the plugin's section of a pipeline would be checked
/// and reports every field with its problems, as Kafka Connect does. An
/// invalid config is a 200 with a non-zero `error_count`.
#[utoipa::path(
    put,
    path = "/connector-plugins/{plugin}/config/validate",
    tag = "plugins",
    operation_id = "validate_plugin_config",
    params(
        ("plugin" = String, Path, description = "The plugin's name (`class` in `GET /connector-plugins`)"),
        ("kind" = Option<String>, Query, description = "`source`, `sink`, `transform` or `predicate`: needed when two kinds share the name (`file` is a source and a sink)"),
    ),
    request_body(content = Object, description = "The plugin's config: the keys of its section of a pipeline definition, e.g. `{\"bucket\": \"b\"}` for `s3_json`"),
    responses(
        (status = 200, description = "The outcome, valid or not", body = ValidateResponse),
        (status = 400, description = "The body is not valid JSON, or the name is shared by two kinds and `kind` is missing or wrong", body = ErrorBody),
        (status = 404, description = "No plugin of that name is registered", body = ErrorBody),
        (status = 413, description = "The body is larger than 2 MB", body = ErrorBody),
        (status = 415, description = "No `Content-Type: application/json`", body = ErrorBody),
    ),
)]
async fn validate(
    Path(plugin): Path<String>,
    Query(query): Query<KindQuery>,
    ApiJson(config): ApiJson<Value>,
) -> ApiResult<Json<ValidateResponse>> {
    let kind = query
        .kind
        .as_deref()
        .map(str::parse::<PluginKind>)
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let registry = Registry::global()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Err(message) = registry.one(&plugin, kind) {
        let status = match registry.named(&plugin) {
            Err(_) => StatusCode::NOT_FOUND,
            Ok(_) => StatusCode::BAD_REQUEST,
        };
        return Err(ApiError::new(status, message));
    }
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let file = std::path::PathBuf::from(format!("<validate>/{plugin}"));
    let result =
        tokio::task::block_in_place(|| validate_plugin_config(&plugin, kind, &text, &file));
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
    Ok(Json(ValidateResponse {
        name: plugin,
        error_count: errors.len(),
        configs: by_field
            .into_iter()
            .map(|(field, errors)| ConfigEntry {
                value: ConfigValue {
                    value: config.get(&field).cloned(),
                    name: field,
                    errors,
                },
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    //! The document against the router: every route described, and every
    //! operation with the statuses its handler can answer.

    use super::*;
    use std::collections::BTreeSet;

    /// Every route `router()` serves, as (method, path).
    const ROUTES: [(&str, &str); 21] = [
        ("GET", "/"),
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/connectors"),
        ("POST", "/connectors"),
        ("GET", "/connectors/{name}"),
        ("DELETE", "/connectors/{name}"),
        ("GET", "/connectors/{name}/config"),
        ("PUT", "/connectors/{name}/config"),
        ("PATCH", "/connectors/{name}/config"),
        ("GET", "/connectors/{name}/status"),
        ("PUT", "/connectors/{name}/pause"),
        ("PUT", "/connectors/{name}/resume"),
        ("PUT", "/connectors/{name}/stop"),
        ("POST", "/connectors/{name}/restart"),
        ("GET", "/connectors/{name}/offsets"),
        ("PATCH", "/connectors/{name}/offsets"),
        ("DELETE", "/connectors/{name}/offsets"),
        ("GET", "/connector-plugins"),
        ("PUT", "/connector-plugins/{plugin}/config/validate"),
    ];

    /// The operations whose handler can answer 409 Conflict.
    const CONFLICTS: [(&str, &str); 7] = [
        ("POST", "/connectors"),
        ("DELETE", "/connectors/{name}"),
        ("PUT", "/connectors/{name}/config"),
        ("PATCH", "/connectors/{name}/config"),
        ("POST", "/connectors/{name}/restart"),
        ("PATCH", "/connectors/{name}/offsets"),
        ("DELETE", "/connectors/{name}/offsets"),
    ];

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn document() -> Value {
        serde_json::to_value(openapi()).expect("the document serializes")
    }

    /// Every operation of the document: (METHOD, path) to the operation.
    fn operations(document: &Value) -> BTreeMap<(String, String), Value> {
        let mut operations = BTreeMap::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    operations.insert((method.to_uppercase(), path.clone()), operation.clone());
                }
            }
        }
        operations
    }

    fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        list.iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect()
    }

    #[test]
    fn every_route_of_the_router_is_described() {
        let described: BTreeSet<_> = operations(&document()).into_keys().collect();
        let routes = pairs(&ROUTES);
        let missing: Vec<_> = routes.difference(&described).collect();
        let unknown: Vec<_> = described.difference(&routes).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "routes without a description: {missing:?}; described but not in ROUTES: {unknown:?}"
        );
    }

    /// The document comes from `routes!`; a route added with axum's own
    /// routing would be served but not described.
    #[test]
    fn the_router_adds_routes_only_with_their_description() {
        let source = include_str!("api.rs");
        let code = source
            .split("#[cfg(test)]")
            .next()
            .expect("the code before the tests");
        for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            assert!(
                !code.contains(call),
                "src/api.rs routes with `{call}`; use `.routes(routes!(handler))` so the route is described"
            );
        }
    }

    fn has_error_body(response: &Value) -> bool {
        response["content"]["application/json"]["schema"]["$ref"]
            == "#/components/schemas/ErrorBody"
    }

    #[test]
    fn every_operation_documents_its_outcomes() {
        let document = document();
        let conflicts = pairs(&CONFLICTS);
        let mut operation_ids = BTreeSet::new();
        for ((method, path), operation) in operations(&document) {
            let what = format!("{method} {path}");
            let responses = operation["responses"].as_object().expect("responses");
            let has = |status: &str| responses.contains_key(status);
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{what}: no summary"
            );
            assert!(
                operation_ids.insert(operation["operationId"].to_string()),
                "{what}: duplicate operationId"
            );
            assert!(operation["tags"][0].is_string(), "{what}: no tag");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{what}: no 2xx response"
            );
            for (status, response) in responses {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{what} {status}: no description"
                );
                // Errors are ErrorBody (body rejections included), but for
                // the Health body of a starting worker.
                let starting = path == "/health" && status == "503";
                if status.starts_with(['4', '5']) && !starting {
                    assert!(
                        has_error_body(response),
                        "{what} {status}: not an ErrorBody"
                    );
                }
            }
            // Path parameters: declared, and 404 when nothing has that name.
            for parameter in path.split('/').filter(|s| s.starts_with('{')) {
                let name = parameter.trim_matches(['{', '}']);
                assert!(
                    operation["parameters"].as_array().is_some_and(|ps| ps
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path")),
                    "{what}: path parameter `{name}` not declared"
                );
                assert!(has("404"), "{what}: no 404 for an unknown `{name}`");
            }
            // A JSON body: 400, 413 and 415, all as ErrorBody.
            if let Some(body) = operation.get("requestBody") {
                assert!(
                    body["content"]["application/json"]["schema"].is_object(),
                    "{what}: request body without a JSON schema"
                );
                assert!(
                    has("400") && has("413") && has("415"),
                    "{what}: body errors missing"
                );
            }
            assert_eq!(
                has("409"),
                conflicts.contains(&(method.clone(), path.clone())),
                "{what}: 409 documented where the handler cannot conflict, or missing where it can"
            );
            // Everything but /health is behind the token.
            if path == "/health" {
                assert!(operation.get("security").is_none(), "{what} is open");
                assert!(!has("401"), "{what} is open");
            } else {
                assert_eq!(
                    operation["security"],
                    serde_json::json!([{ BEARER: [] }]),
                    "{what}: no bearer security"
                );
                assert!(
                    has_error_body(&operation["responses"]["401"]),
                    "{what}: no 401"
                );
            }
        }
    }

    /// Every `$ref` of `value`, recursively.
    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(object) => {
                for (key, value) in object {
                    match (key.as_str(), value.as_str()) {
                        ("$ref", Some(target)) => found.push(target),
                        _ => refs(value, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn the_document_is_complete_and_versioned() {
        let document = document();
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")));
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {target}"));
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "$ref {target} has no schema"
            );
        }
        let scheme = &document["components"]["securitySchemes"][BEARER];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
        // The served text is the same document.
        let served: Value =
            serde_json::from_str(OPENAPI_JSON.as_ref().expect("serialized")).expect("JSON");
        assert_eq!(served, document);
    }

    /// The enumerations of the document match what the code produces.
    #[test]
    fn documented_values_are_the_ones_produced() {
        use connect_core::runtime::PipelineState;
        // A new run state fails to compile here until STATES (and the
        // document) knows it.
        for state in [
            PipelineState::Running,
            PipelineState::Restarting,
            PipelineState::Failed,
            PipelineState::Finished,
        ] {
            match state {
                PipelineState::Running
                | PipelineState::Restarting
                | PipelineState::Failed
                | PipelineState::Finished => {
                    assert!(STATES.contains(&state.as_str()), "{}", state.as_str())
                }
            }
        }
        for target in [
            TargetState::Running,
            TargetState::Paused,
            TargetState::Stopped,
        ] {
            let shown = match target {
                TargetState::Running => continue,
                TargetState::Paused => "PAUSED",
                TargetState::Stopped => "STOPPED",
            };
            assert!(STATES.contains(&shown));
        }
        let document = document();
        let schemas = &document["components"]["schemas"];
        let expand = &document["paths"]["/connectors"]["get"]["parameters"][0];
        assert_eq!(expand["name"], "expand");
        assert_eq!(
            expand["schema"]["items"]["enum"],
            serde_json::json!([Expand::Status.as_str(), Expand::Info.as_str()])
        );
        assert_eq!(
            schemas["ConnectorStatus"]["properties"]["connector"]["$ref"],
            "#/components/schemas/ConnectorState"
        );
        assert_eq!(
            schemas["ConnectorState"]["properties"]["state"]["enum"],
            serde_json::json!(STATES)
        );
    }
}
