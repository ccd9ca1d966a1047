//! A long-lived worker: runs many pipelines side by side, each under the
//! supervisor, and manages their lifecycle (create, reconfigure, pause,
//! resume, stop, restart, delete) for the REST API.
//!
//! Pipelines come from two places: YAML files in the worker's pipelines
//! directory (reloaded when a file changes), and the API, whose pipelines are
//! persisted in a compacted config topic (`sluice-configs` by default) so a
//! restarted worker runs them again, in the state they were left in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::de::from_node;
use crate::config::node::parse_document;
use crate::config::pipeline::KafkaConfig;
use crate::config::pipeline::PipelineMember;
use crate::config::units::HumanDuration;
use crate::config::{parse_pipeline, ConfigErrors, Diagnostic, Diagnostics, Mark, PipelineConfig};
use crate::group::{end_offsets, tail, GroupMember, StatusBoard, StatusWriter};
use crate::kafka::{producer_config, KafkaGlueError, LoggingContext};
use crate::offsets::ensure_compacted_topic;
use crate::runtime::{run_supervised, PipelineState, PipelineStatus};

/// The worker's config file (YAML, checked as strictly as pipelines).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// The worker group's name (default `sluice`).
    #[serde(default = "default_group")]
    pub group: String,
    /// Kafka connection of the worker, and of every pipeline that has no
    /// `kafka:` section of its own.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// The REST API.
    #[serde(default)]
    pub rest: RestConfig,
    /// A folder of pipeline YAML files run at start and reloaded on change.
    #[serde(default)]
    pub pipelines_dir: Option<PathBuf>,
    /// The compacted topic holding pipelines created through the API (default `sluice-configs`).
    #[serde(default = "default_config_topic")]
    pub config_topic: String,
    /// How long a graceful stop of every pipeline may take on SIGTERM (default 60s).
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: HumanDuration,
    /// This worker's id in the group, stable across restarts (default: the
    /// REST address, `host:port`; the host name when listening on all interfaces).
    #[serde(default)]
    pub worker_id: Option<String>,
    /// The compacted topic of task statuses (default `sluice-status`).
    #[serde(default = "default_status_topic")]
    pub status_topic: String,
    /// How long the group waits for a silent worker (killed, cut off) before
    /// its tasks move to the others (default 10s; at least 6s).
    #[serde(default = "default_session_timeout")]
    pub session_timeout: HumanDuration,
}

/// The `rest:` section of the worker config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// Address to listen on (default `127.0.0.1:8083`, Kafka Connect's port).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// When set, every request but `GET /health` needs `Authorization: Bearer <token>`.
    #[serde(default)]
    pub auth_token: Option<String>,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            auth_token: None,
        }
    }
}

fn default_group() -> String {
    "sluice".to_owned()
}

fn default_listen() -> String {
    "127.0.0.1:8083".to_owned()
}

fn default_config_topic() -> String {
    "sluice-configs".to_owned()
}

fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

fn default_status_topic() -> String {
    "sluice-status".to_owned()
}

fn default_session_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            group: default_group(),
            kafka: KafkaConfig::default(),
            rest: RestConfig::default(),
            pipelines_dir: None,
            config_topic: default_config_topic(),
            shutdown_timeout: default_shutdown_timeout(),
            worker_id: None,
            status_topic: default_status_topic(),
            session_timeout: default_session_timeout(),
        }
    }
}

/// Reads and checks a worker config file; relative `pipelines_dir` resolves
/// against the file's folder.
pub fn load_worker_config(path: &Path) -> Result<WorkerConfig, ConfigErrors> {
    let diags = Diagnostics::new(path.display().to_string());
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            diags.report(
                Mark { line: 1, column: 1 },
                "",
                format!("cannot read the worker config: {e}"),
            );
            return Err(ConfigErrors(diags.into_sorted()));
        }
    };
    let parsed =
        parse_document(&text, &diags).and_then(|root| from_node::<WorkerConfig>(&root, &diags));
    match parsed {
        Some(mut config) if diags.is_empty() => {
            if let (Some(dir), Some(base)) = (&config.pipelines_dir, path.parent()) {
                if dir.is_relative() {
                    config.pipelines_dir = Some(base.join(dir));
                }
            }
            Ok(config)
        }
        _ => Err(ConfigErrors(diags.into_sorted())),
    }
}

/// The state a pipeline should be in, as set through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetState {
    /// Running.
    Running,
    /// Stopped gracefully, to be resumed (`PUT .../resume`).
    Paused,
    /// Stopped gracefully; offsets may be changed now.
    Stopped,
}

/// Where a pipeline's definition comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A YAML file of the pipelines directory.
    File(PathBuf),
    /// The REST API (persisted in the config topic).
    Api,
}

/// What the API reports of one pipeline.
#[derive(Debug, Clone)]
pub struct PipelineInfo {
    /// Name.
    pub name: String,
    /// The definition as given (references such as `${env:...}` unresolved).
    pub definition: serde_json::Value,
    /// Where it comes from.
    pub origin: Origin,
    /// `source`, `sink` or `source+sink`.
    pub kind: &'static str,
    /// The state shown to users: `RUNNING`, `RESTARTING`, `PAUSED`, `STOPPED`, `FAILED`, `FINISHED`.
    pub state: &'static str,
    /// Restarts after failures in the current run.
    pub restarts: u32,
    /// The last error, if the pipeline failed or is restarting.
    pub error: Option<String>,
    /// The checked config.
    pub config: Arc<PipelineConfig>,
}

/// Why a worker operation failed; the REST layer maps each to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// No pipeline of that name (404).
    #[error("pipeline `{0}` not found")]
    NotFound(String),
    /// The operation conflicts with the pipeline's state or origin (409).
    #[error("{0}")]
    Conflict(String),
    /// The definition is invalid (400); every problem with its field.
    #[error("invalid pipeline config: {0}")]
    Invalid(ConfigErrors),
    /// The request itself is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Kafka failed (500).
    #[error(transparent)]
    Kafka(#[from] KafkaGlueError),
}

/// One managed pipeline.
struct Entry {
    /// Serialises lifecycle operations on this pipeline.
    control: tokio::sync::Mutex<Control>,
    /// What reads see, without waiting for a lifecycle operation.
    view: Mutex<View>,
}

struct Control {
    run: Option<Run>,
}

struct Run {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct View {
    origin: Origin,
    definition: serde_json::Value,
    config: Arc<PipelineConfig>,
    target: TargetState,
    status: watch::Receiver<PipelineStatus>,
}

/// A stored API pipeline: its definition and target state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    definition: serde_json::Value,
    target: TargetState,
}

/// Runs and manages pipelines.
pub struct Worker {
    settings: WorkerConfig,
    pipelines: Mutex<BTreeMap<String, Arc<Entry>>>,
    shutdown: CancellationToken,
    producer: rdkafka::producer::FutureProducer<LoggingContext>,
    member: GroupMember,
    /// Per config-topic partition, the offset after the last record applied.
    applied: watch::Sender<BTreeMap<i32, i64>>,
    /// Reads group memberships (which workers are alive).
    probe: rdkafka::consumer::BaseConsumer,
}

/// One task of a pipeline, as the group's status topic and memberships show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// `source-<n>` or `<sink>@<worker>`.
    pub name: String,
    /// `source` or `sink`.
    pub kind: &'static str,
    /// `RUNNING`, `FINISHED`, `FAILED` or `UNASSIGNED` (its worker left the group).
    pub state: String,
    /// The worker running it (none when unassigned).
    pub worker_id: Option<String>,
    /// Its files (source) or topic partitions (sink).
    pub assigned: Vec<String>,
    /// The error of a failed task.
    pub trace: Option<String>,
}

impl Worker {
    /// Connects to Kafka, creates the config and status topics and starts
    /// following the status topic; runs nothing yet. `worker_id` is used
    /// unless the settings name one.
    pub async fn new(
        settings: WorkerConfig,
        worker_id: String,
        shutdown: CancellationToken,
    ) -> Result<Self, WorkerError> {
        crate::kafka::check_access(
            &settings.kafka,
            &settings.config_topic,
            Duration::from_secs(30),
        )?;
        ensure_compacted_topic(&settings.kafka, &settings.config_topic, 1).await?;
        ensure_compacted_topic(&settings.kafka, &settings.status_topic, 1).await?;
        let producer = producer_config(&settings.kafka)
            .create_with_context(LoggingContext)
            .map_err(KafkaGlueError::client(&settings.kafka, "producer"))?;
        let probe = crate::kafka::base_config(&settings.kafka)
            .create()
            .map_err(KafkaGlueError::client(&settings.kafka, "consumer"))?;
        let member = GroupMember {
            group: settings.group.clone(),
            worker_id: settings.worker_id.clone().unwrap_or(worker_id),
            session_timeout: settings.session_timeout.0,
            status: StatusWriter::new(&settings.kafka, &settings.status_topic)?,
            board: StatusBoard::follow(&settings.kafka, &settings.status_topic, shutdown.clone())?,
        };
        tracing::info!(group = %member.group, worker = %member.worker_id, "worker joining its group");
        Ok(Self {
            settings,
            pipelines: Mutex::new(BTreeMap::new()),
            shutdown,
            producer,
            member,
            applied: watch::channel(BTreeMap::new()).0,
            probe,
        })
    }

    /// This worker's id in its group.
    pub fn worker_id(&self) -> &str {
        &self.member.worker_id
    }

    /// The tasks of pipeline `name` across the group: source tasks from the
    /// status topic (a task whose worker has left the slot group is
    /// `UNASSIGNED` until another worker takes it), and a sink task per
    /// worker that is a member of the sink's consumer group.
    pub fn tasks(&self, name: &str) -> Vec<TaskView> {
        let Ok(info) = self.get(name) else {
            return Vec::new();
        };
        let statuses = self.member.board.tasks(name);
        let members = |group: &str| -> Option<std::collections::BTreeSet<String>> {
            use rdkafka::consumer::Consumer;
            let list = tokio::task::block_in_place(|| {
                self.probe
                    .fetch_group_list(Some(group), Duration::from_secs(5))
            })
            .ok()?;
            Some(
                list.groups()
                    .iter()
                    .flat_map(|g| g.members())
                    .map(|m| m.client_id().trim_start_matches("sluice-").to_owned())
                    .collect(),
            )
        };
        let slot_members = members(&self.member.slot_topic(name));
        let sink_members: Vec<_> = info
            .config
            .sinks
            .iter()
            .map(|sink| {
                (
                    sink.name.clone(),
                    members(&crate::runtime::sink::group_id(name, &sink.name)),
                )
            })
            .collect();
        let alive = |members: &Option<std::collections::BTreeSet<String>>, worker: &str| {
            // When the membership cannot be read, trust the status.
            members
                .as_ref()
                .is_none_or(|m| m.contains(&crate::group::kafka_id(worker)))
        };
        let mut views = Vec::new();
        for (task, status) in &statuses {
            if task.starts_with("source-") {
                let here = status.state == "RUNNING" && !alive(&slot_members, &status.worker_id);
                views.push(TaskView {
                    name: task.clone(),
                    kind: "source",
                    state: if here {
                        "UNASSIGNED".to_owned()
                    } else {
                        status.state.clone()
                    },
                    worker_id: (!here).then(|| status.worker_id.clone()),
                    assigned: status.assigned.clone(),
                    trace: status.trace.clone(),
                });
            }
        }
        // Source tasks in number order (`source-10` after `source-9`).
        views.sort_by_key(|v| {
            v.name
                .trim_start_matches("source-")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        for (sink, members) in &sink_members {
            let prefix = format!("{sink}@");
            for (task, status) in &statuses {
                if task.starts_with(&prefix) && alive(members, &status.worker_id) {
                    views.push(TaskView {
                        name: task.clone(),
                        kind: "sink",
                        state: status.state.clone(),
                        worker_id: Some(status.worker_id.clone()),
                        assigned: status.assigned.clone(),
                        trace: status.trace.clone(),
                    });
                }
            }
        }
        views
    }

    /// The worker's settings.
    pub fn settings(&self) -> &WorkerConfig {
        &self.settings
    }

    /// Follows the config topic and starts the pipelines of the pipelines
    /// directory. What is stored is read to the end first and folded to the
    /// last record of each pipeline (as compaction would), so a pipeline
    /// deleted or reconfigured since does not start in an old shape; every
    /// later change, from any worker of the group, is applied in log order.
    pub async fn start_all(self: &Arc<Self>) -> Result<(), WorkerError> {
        let kafka = self.settings.kafka.clone();
        let topic = self.settings.config_topic.clone();
        let ends = tokio::task::block_in_place(|| end_offsets(&kafka, &topic))?;
        let mut records = tail(&kafka, &topic, self.shutdown.clone())?;
        let mut stored: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        let mut read: BTreeMap<i32, i64> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Some((&partition, &end)) = ends
            .iter()
            .find(|(p, end)| **end > 0 && read.get(*p).is_none_or(|o| o < *end))
        {
            let record = match tokio::time::timeout_at(deadline, records.recv()).await {
                Ok(Some(record)) => record,
                Ok(None) if self.shutdown.is_cancelled() => return Ok(()),
                _ => {
                    return Err(WorkerError::Kafka(KafkaGlueError::Topic {
                        topic,
                        message: format!(
                            "partition {partition} was not read up to offset {end} within 60 s"
                        ),
                    }))
                }
            };
            read.insert(record.partition, record.offset + 1);
            stored.insert(
                String::from_utf8_lossy(&record.key).into_owned(),
                record.value,
            );
        }
        tracing::info!(topic = %topic, pipelines = stored.values().filter(|v| v.is_some()).count(), "stored pipelines read");
        for (name, value) in stored {
            self.apply_record(&topic, &name, value.as_deref()).await;
        }
        self.applied.send_modify(|applied| applied.extend(read));
        let worker = self.clone();
        tokio::spawn(async move {
            while let Some(record) = records.recv().await {
                let name = String::from_utf8_lossy(&record.key);
                worker
                    .apply_record(&topic, &name, record.value.as_deref())
                    .await;
                worker.applied.send_modify(|applied| {
                    applied.insert(record.partition, record.offset + 1);
                });
            }
        });
        self.reload_files().await;
        Ok(())
    }

    /// Applies one record of the config topic: a pipeline definition, or a
    /// tombstone (`None`).
    async fn apply_record(&self, topic: &str, name: &str, value: Option<&[u8]>) {
        match value.map(serde_json::from_slice::<Stored>) {
            None => self.apply_stored(name, None).await,
            Some(Ok(stored)) => self.apply_stored(name, Some(stored)).await,
            Some(Err(error)) => {
                tracing::error!(topic = %topic, pipeline = %name, %error, "ignoring a stored pipeline that does not parse")
            }
        }
    }

    /// Waits until this worker applied the config topic up to `end`
    /// (exclusive) on `partition`.
    async fn wait_applied(&self, partition: i32, end: i64) -> Result<(), WorkerError> {
        let mut applied = self.applied.subscribe();
        let reached = tokio::time::timeout(
            Duration::from_secs(60),
            applied.wait_for(|a| end <= 0 || a.get(&partition).is_some_and(|o| *o >= end)),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        match reached {
            true => Ok(()),
            false => Err(WorkerError::Kafka(KafkaGlueError::Topic {
                topic: self.settings.config_topic.clone(),
                message: format!("the config topic was not read up to offset {end} within 60 s"),
            })),
        }
    }

    /// Applies one record of the config topic (from any worker of the
    /// group): a new pipeline starts, a changed definition restarts it, a
    /// changed target state pauses, stops or resumes it, a tombstone
    /// removes it. Records that change nothing are ignored.
    async fn apply_stored(&self, name: &str, stored: Option<Stored>) {
        let entry = self.entry(name).ok();
        let view = entry.as_ref().and_then(|e| {
            e.view
                .lock()
                .ok()
                .map(|v| (v.origin.clone(), v.definition.clone(), v.target))
        });
        match (stored, view) {
            (None, None) => {}
            (None, Some((Origin::Api, _, _))) => {
                tracing::info!(pipeline = %name, "pipeline deleted");
                self.remove_local(name).await;
            }
            (_, Some((Origin::File(path), _, _))) => {
                tracing::error!(pipeline = %name, file = %path.display(), "the config topic holds a pipeline of the same name as a file of this worker; the file wins here");
            }
            (Some(stored), None) => match self.check(name, &stored.definition, &Origin::Api) {
                Ok(config) => {
                    tracing::info!(pipeline = %name, target = ?stored.target, "pipeline created");
                    self.install(
                        name.to_owned(),
                        Origin::Api,
                        stored.definition,
                        config,
                        stored.target,
                    )
                }
                Err(error) => {
                    tracing::error!(pipeline = %name, %error, "a stored pipeline does not validate; not started")
                }
            },
            (Some(stored), Some((Origin::Api, definition, target))) => {
                if definition != stored.definition {
                    match self.check(name, &stored.definition, &Origin::Api) {
                        Ok(config) => {
                            tracing::info!(pipeline = %name, "pipeline reconfigured");
                            self.replace_local(
                                name,
                                Origin::Api,
                                stored.definition,
                                config,
                                Some(stored.target),
                            )
                            .await;
                        }
                        Err(error) => {
                            tracing::error!(pipeline = %name, %error, "a stored pipeline does not validate; keeping what runs")
                        }
                    }
                } else if target != stored.target {
                    self.set_target_local(name, stored.target).await;
                }
            }
        }
    }

    /// Reads the pipelines directory again: new files start, changed ones
    /// restart with their new definition, removed ones stop; the others are
    /// not touched. Invalid files are logged and left as they were.
    pub async fn reload_files(&self) {
        let Some(dir) = self.settings.pipelines_dir.clone() else {
            return;
        };
        let mut found: BTreeMap<String, (PathBuf, serde_json::Value)> = BTreeMap::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(dir = %dir.display(), %error, "cannot read the pipelines directory");
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        paths.sort();
        for path in paths {
            let definition = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| {
                    serde_yaml::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
                });
            match definition {
                Ok(definition) => {
                    let name = definition
                        .get("name")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| {
                            path.file_stem()
                                .map(|s| s.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        });
                    found.insert(name, (path, definition));
                }
                Err(error) => {
                    tracing::error!(file = %path.display(), %error, "cannot read a pipeline file")
                }
            }
        }
        let current: Vec<(String, View)> = self.views();
        for (name, view) in &current {
            if let Origin::File(_) = view.origin {
                if !found.contains_key(name) {
                    tracing::info!(pipeline = %name, "pipeline file removed; stopping the pipeline");
                    let _ = self.delete(name).await;
                }
            }
        }
        for (name, (path, definition)) in found {
            let existing = current.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
            if let Some(view) = existing {
                if view.origin == Origin::Api {
                    tracing::error!(pipeline = %name, file = %path.display(), "a pipeline of this name was created through the API; the file is ignored");
                    continue;
                }
                if view.definition == definition {
                    continue;
                }
            }
            let origin = Origin::File(path.clone());
            match self.check(&name, &definition, &origin) {
                Ok(config) => {
                    if existing.is_some() {
                        tracing::info!(pipeline = %name, file = %path.display(), "pipeline file changed; restarting the pipeline with it");
                        let _ = self.replace(&name, origin, definition, config).await;
                    } else {
                        tracing::info!(pipeline = %name, file = %path.display(), "starting the pipeline of a file");
                        self.install(name, origin, definition, config, TargetState::Running);
                    }
                }
                Err(error) => {
                    tracing::error!(pipeline = %name, file = %path.display(), %error, "the pipeline file is invalid; keeping what runs")
                }
            }
        }
    }

    /// Checks a definition; a pipeline without a `kafka:` section gets the worker's.
    pub fn check(
        &self,
        name: &str,
        definition: &serde_json::Value,
        origin: &Origin,
    ) -> Result<PipelineConfig, WorkerError> {
        let Some(object) = definition.as_object() else {
            return Err(WorkerError::BadRequest(
                "a pipeline config is a JSON object with the keys of a pipeline YAML file"
                    .to_owned(),
            ));
        };
        let mut object = object.clone();
        match object.get("name").and_then(serde_json::Value::as_str) {
            Some(given) if given != name => {
                return Err(WorkerError::BadRequest(format!(
                    "the config's name `{given}` differs from the pipeline name `{name}`"
                )))
            }
            Some(_) => {}
            None => {
                object.insert(
                    "name".to_owned(),
                    serde_json::Value::String(name.to_owned()),
                );
            }
        }
        let inherits_kafka = !object.contains_key("kafka");
        let (text, path) = match origin {
            Origin::File(path) => (
                std::fs::read_to_string(path).map_err(|e| {
                    WorkerError::BadRequest(format!("cannot read {}: {e}", path.display()))
                })?,
                path.clone(),
            ),
            // JSON is YAML: the same loader checks it, and diagnostics name the fields.
            Origin::Api => (
                serde_json::to_string_pretty(&serde_json::Value::Object(object))
                    .map_err(|e| WorkerError::BadRequest(e.to_string()))?,
                PathBuf::from(format!("<api>/{name}")),
            ),
        };
        let mut config = parse_pipeline(&text, &path).map_err(WorkerError::Invalid)?;
        if config.name != name {
            return Err(WorkerError::BadRequest(format!(
                "the file's pipeline name `{}` differs from `{name}`",
                config.name
            )));
        }
        if inherits_kafka {
            config.kafka = self.settings.kafka.clone();
        }
        config.member = Some(PipelineMember {
            group: self.member.clone(),
            generation: generation(definition),
        });
        if *origin == Origin::Api {
            // Relative paths in an API pipeline (a CSV file) resolve against
            // the worker's working directory.
            if let Ok(cwd) = std::env::current_dir() {
                config.file = cwd.join(name);
            }
        }
        Ok(config)
    }

    fn views(&self) -> Vec<(String, View)> {
        let pipelines = self.pipelines.lock().map(|p| p.clone()).unwrap_or_default();
        pipelines
            .into_iter()
            .filter_map(|(name, entry)| entry.view.lock().ok().map(|v| (name, v.clone())))
            .collect()
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>, WorkerError> {
        self.pipelines
            .lock()
            .ok()
            .and_then(|p| p.get(name).cloned())
            .ok_or_else(|| WorkerError::NotFound(name.to_owned()))
    }

    /// Adds a pipeline and starts it unless its target state says otherwise.
    fn install(
        &self,
        name: String,
        origin: Origin,
        definition: serde_json::Value,
        config: PipelineConfig,
        target: TargetState,
    ) {
        let config = Arc::new(config);
        let (status_tx, status) = watch::channel(PipelineStatus::default());
        let run = (target == TargetState::Running).then(|| self.spawn(config.clone(), status_tx));
        let entry = Arc::new(Entry {
            control: tokio::sync::Mutex::new(Control { run }),
            view: Mutex::new(View {
                origin,
                definition,
                config,
                target,
                status,
            }),
        });
        if let Ok(mut pipelines) = self.pipelines.lock() {
            pipelines.insert(name, entry);
        }
    }

    fn spawn(&self, config: Arc<PipelineConfig>, status: watch::Sender<PipelineStatus>) -> Run {
        let stop = self.shutdown.child_token();
        let name = config.name.clone();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            match run_supervised(config, token, status).await {
                Ok(report) => {
                    tracing::info!(pipeline = %name, polled = report.polled, produced = report.produced, "pipeline run ended")
                }
                Err(error) => tracing::error!(pipeline = %name, %error, "pipeline run failed"),
            }
        });
        Run { stop, task }
    }

    /// Stops a run gracefully and waits for it.
    async fn halt(control: &mut Control) {
        if let Some(run) = control.run.take() {
            run.stop.cancel();
            let _ = run.task.await;
        }
    }

    /// Starts a run of the pipeline's current config with a fresh status.
    fn start(&self, entry: &Entry, control: &mut Control) {
        let (status_tx, status) = watch::channel(PipelineStatus::default());
        if let Ok(mut view) = entry.view.lock() {
            view.status = status;
            control.run = Some(self.spawn(view.config.clone(), status_tx));
        }
    }

    /// Writes a pipeline's record to the config topic and waits until this
    /// worker applied it (as every worker of the group will).
    async fn persist(&self, name: &str, stored: Option<&Stored>) -> Result<(), WorkerError> {
        let value = stored
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| WorkerError::BadRequest(e.to_string()))?;
        let topic = &self.settings.config_topic;
        let mut record = rdkafka::producer::FutureRecord::<str, [u8]>::to(topic).key(name);
        if let Some(value) = &value {
            record = record.payload(value);
        }
        let delivered = self
            .producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| KafkaGlueError::call(topic, "cannot store the pipeline config", e))?;
        self.wait_applied(delivered.partition, delivered.offset + 1)
            .await
    }

    /// Every pipeline, by name.
    pub fn list(&self) -> Vec<PipelineInfo> {
        self.views()
            .into_iter()
            .map(|(name, view)| info(name, &view))
            .collect()
    }

    /// One pipeline.
    pub fn get(&self, name: &str) -> Result<PipelineInfo, WorkerError> {
        let entry = self.entry(name)?;
        let view = entry
            .view
            .lock()
            .map_err(|_| WorkerError::NotFound(name.to_owned()))?;
        Ok(info(name.to_owned(), &view))
    }

    /// Creates a pipeline through the API and starts it.
    pub async fn create(
        &self,
        name: &str,
        definition: serde_json::Value,
    ) -> Result<PipelineInfo, WorkerError> {
        if name.is_empty() || name.contains('/') {
            return Err(WorkerError::BadRequest(format!(
                "`{name}` is not a valid pipeline name"
            )));
        }
        if self.entry(name).is_ok() {
            return Err(WorkerError::Conflict(format!(
                "pipeline `{name}` already exists"
            )));
        }
        self.check(name, &definition, &Origin::Api)?;
        // Every worker of the group (this one too) installs it from the topic.
        self.persist(
            name,
            Some(&Stored {
                definition,
                target: TargetState::Running,
            }),
        )
        .await?;
        self.get(name)
    }

    /// Creates or reconfigures an API pipeline; returns whether it was created.
    pub async fn put_config(
        &self,
        name: &str,
        definition: serde_json::Value,
    ) -> Result<bool, WorkerError> {
        match self.entry(name) {
            Err(_) => self.create(name, definition).await.map(|_| true),
            Ok(entry) => {
                let origin = entry
                    .view
                    .lock()
                    .map(|v| v.origin.clone())
                    .unwrap_or(Origin::Api);
                if let Origin::File(path) = origin {
                    return Err(WorkerError::Conflict(format!(
                        "pipeline `{name}` is defined by {}; edit the file instead",
                        path.display()
                    )));
                }
                let config = self.check(name, &definition, &Origin::Api)?;
                self.replace(name, Origin::Api, definition, config).await?;
                Ok(false)
            }
        }
    }

    /// Swaps a pipeline's definition; a running pipeline restarts with it
    /// (an API pipeline on every worker of the group).
    async fn replace(
        &self,
        name: &str,
        origin: Origin,
        definition: serde_json::Value,
        config: PipelineConfig,
    ) -> Result<(), WorkerError> {
        let entry = self.entry(name)?;
        if origin == Origin::Api {
            let target = entry
                .view
                .lock()
                .map(|v| v.target)
                .unwrap_or(TargetState::Running);
            return self
                .persist(name, Some(&Stored { definition, target }))
                .await;
        }
        self.replace_local(name, origin, definition, config, None)
            .await;
        Ok(())
    }

    /// Swaps the definition on this worker (and the target state, if given).
    async fn replace_local(
        &self,
        name: &str,
        origin: Origin,
        definition: serde_json::Value,
        config: PipelineConfig,
        target: Option<TargetState>,
    ) {
        let Ok(entry) = self.entry(name) else { return };
        let mut control = entry.control.lock().await;
        Self::halt(&mut control).await;
        let mut running = false;
        if let Ok(mut view) = entry.view.lock() {
            view.definition = definition;
            view.config = Arc::new(config);
            view.origin = origin;
            if let Some(target) = target {
                view.target = target;
            }
            running = view.target == TargetState::Running;
        }
        if running {
            self.start(&entry, &mut control);
        }
    }

    /// Moves a pipeline to `target`: pausing or stopping ends its run
    /// gracefully (flush, commit); resuming starts a new run. An API
    /// pipeline moves on every worker of the group.
    pub async fn set_target(&self, name: &str, target: TargetState) -> Result<(), WorkerError> {
        let entry = self.entry(name)?;
        let (origin, definition) = entry
            .view
            .lock()
            .map(|v| (v.origin.clone(), v.definition.clone()))
            .map_err(|_| WorkerError::NotFound(name.to_owned()))?;
        if origin == Origin::Api {
            return self
                .persist(name, Some(&Stored { definition, target }))
                .await;
        }
        self.set_target_local(name, target).await;
        Ok(())
    }

    /// Moves the pipeline to `target` on this worker.
    async fn set_target_local(&self, name: &str, target: TargetState) {
        let Ok(entry) = self.entry(name) else { return };
        let mut control = entry.control.lock().await;
        if let Ok(mut view) = entry.view.lock() {
            view.target = target;
        }
        match target {
            TargetState::Running => {
                let ended = control.run.as_ref().is_none_or(|r| r.task.is_finished());
                if ended {
                    Self::halt(&mut control).await;
                    self.start(&entry, &mut control);
                }
            }
            TargetState::Paused | TargetState::Stopped => Self::halt(&mut control).await,
        }
        tracing::info!(pipeline = %name, target = ?target, "pipeline target state changed");
    }

    /// Restarts a pipeline: ends its run gracefully and starts a new one
    /// (also after it failed for good). A paused or stopped pipeline is not started.
    pub async fn restart(&self, name: &str) -> Result<(), WorkerError> {
        let entry = self.entry(name)?;
        let mut control = entry.control.lock().await;
        let target = entry
            .view
            .lock()
            .map(|v| v.target)
            .unwrap_or(TargetState::Running);
        if target != TargetState::Running {
            return Err(WorkerError::Conflict(format!(
                "pipeline `{name}` is {}; resume it instead",
                if target == TargetState::Paused {
                    "paused"
                } else {
                    "stopped"
                }
            )));
        }
        Self::halt(&mut control).await;
        self.start(&entry, &mut control);
        Ok(())
    }

    /// Stops and forgets a pipeline (an API pipeline is removed from the
    /// config topic, and so from every worker of the group).
    pub async fn delete(&self, name: &str) -> Result<(), WorkerError> {
        let entry = self.entry(name)?;
        let origin = entry
            .view
            .lock()
            .map(|v| v.origin.clone())
            .unwrap_or(Origin::Api);
        if origin == Origin::Api {
            return self.persist(name, None).await;
        }
        self.remove_local(name).await;
        Ok(())
    }

    /// Stops the pipeline on this worker and forgets it.
    async fn remove_local(&self, name: &str) {
        let Ok(entry) = self.entry(name) else { return };
        let mut control = entry.control.lock().await;
        Self::halt(&mut control).await;
        if let Ok(mut pipelines) = self.pipelines.lock() {
            pipelines.remove(name);
        }
    }

    /// The checked config of a pipeline that is stopped (offsets may only be
    /// changed then, as in Kafka Connect).
    pub fn stopped_config(&self, name: &str) -> Result<Arc<PipelineConfig>, WorkerError> {
        let info = self.get(name)?;
        if info.state != "STOPPED" {
            return Err(WorkerError::Conflict(format!(
                "pipeline `{name}` is {}; stop it first (PUT /connectors/{name}/stop)",
                info.state
            )));
        }
        Ok(info.config)
    }

    /// Stops every pipeline gracefully, waiting at most `shutdown_timeout`.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let entries: Vec<Arc<Entry>> = self
            .pipelines
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default();
        let all = futures::future::join_all(entries.iter().map(|entry| async move {
            let mut control = entry.control.lock().await;
            Self::halt(&mut control).await;
        }));
        if tokio::time::timeout(self.settings.shutdown_timeout.0, all)
            .await
            .is_err()
        {
            tracing::error!(timeout = ?self.settings.shutdown_timeout.0, "pipelines did not stop within shutdown_timeout");
        }
    }
}

fn info(name: String, view: &View) -> PipelineInfo {
    let status = view.status.borrow().clone();
    let state = match view.target {
        TargetState::Paused => "PAUSED",
        TargetState::Stopped => "STOPPED",
        TargetState::Running => status.state.as_str(),
    };
    let kind = match (view.config.source.is_some(), view.config.sinks.is_empty()) {
        (true, true) => "source",
        (false, _) => "sink",
        (true, false) => "source+sink",
    };
    let error = match status.state {
        PipelineState::Failed | PipelineState::Restarting => status.last_error.clone(),
        _ => None,
    };
    PipelineInfo {
        name,
        definition: view.definition.clone(),
        origin: view.origin.clone(),
        kind,
        state,
        restarts: status.restarts,
        error,
        config: view.config.clone(),
    }
}

/// Identifies a pipeline definition, the same on every worker of a group.
fn generation(definition: &serde_json::Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    definition.to_string().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// The diagnostics of a config error as (field, message) pairs for an API.
pub fn field_errors(errors: &ConfigErrors) -> Vec<(String, String)> {
    errors
        .0
        .iter()
        .map(|d: &Diagnostic| (d.path.clone(), d.message.clone()))
        .collect()
}
