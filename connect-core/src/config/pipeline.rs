//! The pipeline file: one topic, at most one source, any number of sinks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::de::{from_node, unknown_field_message};
use super::diagnostics::{ConfigErrors, Diagnostics, Mark};
use super::node::{parse_document, Node, NodeKind};
use super::units::HumanDuration;
use crate::convert::Converter;
use crate::plugin::{FieldIssue, PredicateConfig, SinkConfig, SourceConfig, TransformConfig};
use crate::registry::{PluginFactory, PluginKind, Registry};

/// A validated pipeline, ready for the runtime to build and run.
#[derive(Debug)]
pub struct PipelineConfig {
    /// Unique name; Kafka group ids and transactional ids derive from it.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// How to reach Kafka.
    pub kafka: KafkaConfig,
    /// The topic records move through.
    pub topic: TopicConfig,
    /// Loop tuning shared by the source and sinks.
    pub runtime: RuntimeConfig,
    /// The source writing into the topic, if any.
    pub source: Option<PluginInstance<Box<dyn SourceConfig>>>,
    /// The sinks reading from the topic, in file order.
    pub sinks: Vec<PluginInstance<Box<dyn SinkConfig>>>,
    /// Named predicates that transform steps refer to.
    pub predicates: BTreeMap<String, PredicateSpec>,
    /// What to do with bad records.
    pub errors: ErrorsConfig,
    /// Write the source's records and its position in one Kafka transaction
    /// (`exactly_once: true`), so read_committed consumers see each row once.
    pub exactly_once: bool,
    /// Set by a worker of a group: the pipeline's tasks are shared with the
    /// group's other workers (`None`: this process runs every task).
    pub member: Option<PipelineMember>,
}

/// A pipeline as run by one worker of a group.
#[derive(Debug, Clone)]
pub struct PipelineMember {
    /// The worker's place in its group.
    pub group: crate::group::GroupMember,
    /// Identifies the pipeline's definition (the same on every worker), so
    /// task statuses of an older definition are told apart.
    pub generation: String,
}

/// A plugin section of a pipeline: its name, type, config and transforms.
#[derive(Debug)]
pub struct PluginInstance<C> {
    /// `source`, or the sink's key under `sinks`.
    pub name: String,
    /// The registered type name.
    pub type_name: &'static str,
    /// The plugin's validated config.
    pub config: C,
    /// Transforms applied to its records, in order: on a source before
    /// producing, on a sink after consuming.
    pub transforms: Vec<TransformSpec>,
    /// Sources: how many tasks its streams may be spread over (`max_tasks`,
    /// default 1); see [`SourceConfig::split`]. Always 1 for sinks, whose
    /// tasks are the members of their consumer group.
    pub max_tasks: usize,
}

/// One step of a `transforms:` list.
#[derive(Debug)]
pub struct TransformSpec {
    /// The step's YAML path, e.g. `sinks.s3.transforms[1]`.
    pub path: String,
    /// The transform type.
    pub type_name: &'static str,
    /// Its validated config.
    pub config: Box<dyn TransformConfig>,
    /// The name of a predicate from the pipeline's `predicates:`, if any.
    pub predicate: Option<String>,
    /// Apply the transform when the predicate does not hold.
    pub negate: bool,
}

/// An entry of the pipeline's `predicates:` map.
#[derive(Debug)]
pub struct PredicateSpec {
    /// The predicate type.
    pub type_name: &'static str,
    /// Its validated config.
    pub config: Box<dyn PredicateConfig>,
}

/// The `kafka:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`. Defaults to `$KAFKA_BOOTSTRAP`, else `127.0.0.1:9092`.
    #[serde(default = "default_bootstrap")]
    pub bootstrap_servers: String,
    /// librdkafka properties for every client (TLS, SASL, client.id, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the source's producer only; they win over the defaults.
    #[serde(default)]
    pub producer: BTreeMap<String, String>,
    /// librdkafka properties for the sinks' consumers only; they win over the defaults.
    #[serde(default)]
    pub consumer: BTreeMap<String, String>,
    /// Producer compression: `none`, `gzip`, `snappy`, `lz4` (default) or `zstd`.
    #[serde(default)]
    pub compression: Compression,
    /// The compacted topic holding source positions (default `sluice-offsets`).
    #[serde(default = "default_offsets_topic")]
    pub offsets_topic: String,
}

fn default_offsets_topic() -> String {
    "sluice-offsets".to_owned()
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: default_bootstrap(),
            properties: BTreeMap::new(),
            producer: BTreeMap::new(),
            consumer: BTreeMap::new(),
            compression: Compression::default(),
            offsets_topic: default_offsets_topic(),
        }
    }
}

fn default_bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// Producer compression codec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4: fast, and what Kafka itself recommends for throughput.
    #[default]
    Lz4,
    /// Zstandard (needs a librdkafka built with zstd).
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// The `topic:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Topic name.
    pub name: String,
    /// Partitions when the topic is created; the broker's `num.partitions` when absent.
    #[serde(default)]
    pub partitions: Option<i32>,
    /// Replication factor when the topic is created; the broker's default when absent.
    #[serde(default)]
    pub replication_factor: Option<i32>,
    /// Create the topic when it does not exist (default true).
    #[serde(default = "default_true")]
    pub create: bool,
    /// How record keys are turned into bytes and back: `string` (default) or `json`.
    #[serde(default = "default_key_converter")]
    pub key_converter: Converter,
    /// How record values are turned into bytes and back: `json` (default) or `string`.
    #[serde(default = "default_value_converter")]
    pub value_converter: Converter,
}

fn default_true() -> bool {
    true
}

fn default_key_converter() -> Converter {
    Converter::String
}

fn default_value_converter() -> Converter {
    Converter::Json
}

/// The `errors:` section: the error policy of every stage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsConfig {
    /// `none` (default): a bad record stops the pipeline with a located
    /// error. `all`: it is skipped, counted, logged and dead-lettered.
    #[serde(default)]
    pub tolerance: Tolerance,
    /// Topic receiving skipped records (original bytes, `__connect.errors.*`
    /// headers naming stage, class, message and origin); created if missing.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
}

/// How many bad records a pipeline tolerates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    /// None: the first one stops the pipeline.
    #[default]
    None,
    /// All: each is skipped.
    All,
}

/// The `runtime:` section: loop tuning shared by the source and the sinks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Most records per source poll and per sink write (default 1000).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How often sinks are flushed (time-based rotation) and offsets committed (default 1s).
    #[serde(default = "default_flush_interval")]
    pub flush_interval: HumanDuration,
    /// Longest wait between two retries of a retriable error (default 30s).
    #[serde(default = "default_retry_backoff_max")]
    pub retry_backoff_max: HumanDuration,
    /// How long a retriable error may keep failing before the pipeline stops (default 10m).
    #[serde(default = "default_retry_timeout")]
    pub retry_timeout: HumanDuration,
    /// How many times in a row a failed pipeline is restarted (default 10; 0: never).
    #[serde(default = "default_restart_attempts")]
    pub restart_attempts: u32,
    /// Wait before the first restart; doubles with jitter (default 1s).
    #[serde(default = "default_restart_backoff")]
    pub restart_backoff: HumanDuration,
    /// Longest wait between restarts; a run that lasted longer counts as recovered (default 1m).
    #[serde(default = "default_restart_backoff_max")]
    pub restart_backoff_max: HumanDuration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            batch_size: default_batch_size(),
            flush_interval: default_flush_interval(),
            retry_backoff_max: default_retry_backoff_max(),
            retry_timeout: default_retry_timeout(),
            restart_attempts: default_restart_attempts(),
            restart_backoff: default_restart_backoff(),
            restart_backoff_max: default_restart_backoff_max(),
        }
    }
}

fn default_batch_size() -> usize {
    1000
}

fn default_flush_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

fn default_retry_backoff_max() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_retry_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}

fn default_restart_attempts() -> u32 {
    10
}

fn default_restart_backoff() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

fn default_restart_backoff_max() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

const ROOT_KEYS: &[&str] = &[
    "name",
    "exactly_once",
    "errors",
    "kafka",
    "topic",
    "runtime",
    "predicates",
    "source",
    "sinks",
];

/// Reads and validates a pipeline file; every problem is in the error.
pub fn load_pipeline_file(path: &Path) -> Result<PipelineConfig, ConfigErrors> {
    let display: String = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![super::Diagnostic {
            file: display.clone().into(),
            mark: Mark { line: 1, column: 1 },
            path: String::new(),
            message: format!("cannot read the pipeline file: {e}"),
        }])
    })?;
    parse_pipeline(&text, path)
}

/// Validates a pipeline given as text, read from `path`.
pub fn parse_pipeline(text: &str, path: &Path) -> Result<PipelineConfig, ConfigErrors> {
    let diags = Diagnostics::new(path.display().to_string());
    let registry = match Registry::global() {
        Ok(registry) => registry,
        Err(e) => {
            diags.report(Mark { line: 1, column: 1 }, "", e.to_string());
            return Err(ConfigErrors(diags.into_sorted()));
        }
    };
    let parsed = parse_document(text, &diags).and_then(|root| build(&root, path, registry, &diags));
    match parsed {
        Some(pipeline) if diags.is_empty() => Ok(pipeline),
        _ => Err(ConfigErrors(diags.into_sorted())),
    }
}

fn build(
    root: &Node,
    path: &Path,
    registry: &Registry,
    diags: &Diagnostics,
) -> Option<PipelineConfig> {
    let Some(entries) = root.entries() else {
        diags.report(
            root.mark,
            "",
            format!(
                "a pipeline is a mapping with keys `name`, `topic`, `source`, `sinks`; found {}",
                root.type_name()
            ),
        );
        return None;
    };
    for (key, _) in entries {
        let name = key.as_str().unwrap_or_default();
        if !ROOT_KEYS.contains(&name) {
            diags.report(key.mark, &key.path, unknown_field_message(name, ROOT_KEYS));
        }
    }
    let name = required::<String>(root, "name", diags);
    if let (Some(name), Some(node)) = (&name, root.get("name")) {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            diags.report(node.mark, &node.path, format!("pipeline name `{name}` may use only letters, digits, `-`, `_` and `.` (it names Kafka consumer groups)"));
        }
    }
    let kafka = optional::<KafkaConfig>(root, "kafka", diags);
    let topic = required::<TopicConfig>(root, "topic", diags);
    if let (Some(topic), Some(node)) = (&topic, root.get("topic")) {
        validate_topic(topic, node, diags);
    }
    let exactly_once = optional::<bool>(root, "exactly_once", diags);
    let errors = optional::<ErrorsConfig>(root, "errors", diags);
    let runtime = optional::<RuntimeConfig>(root, "runtime", diags);
    if let (Some(Some(runtime)), Some(node)) = (&runtime, root.get("runtime")) {
        if runtime.batch_size == 0 {
            report_field(node, "batch_size", "must be at least 1", diags);
        }
    }
    let predicates = parse_predicates(root, registry, diags);
    let source = root.get("source").and_then(|node| {
        let transforms = parse_transforms(node, registry, &predicates, diags);
        let max_tasks = match node.get("max_tasks") {
            Some(value) => match from_node::<usize>(value, diags) {
                Some(0) => {
                    report_field(node, "max_tasks", "must be at least 1", diags);
                    1
                }
                Some(n) => n,
                None => 1,
            },
            None => 1,
        };
        let (type_name, config_node) = plugin_type(
            node,
            registry,
            PluginKind::Source,
            &["transforms", "max_tasks"],
            diags,
        )?;
        let PluginFactory::Source(parse) = type_name.factory else {
            return None;
        };
        let config = parse(&config_node, diags)?;
        report_issues(&config_node, config.validate(), diags);
        Some(PluginInstance {
            name: "source".to_owned(),
            type_name: type_name.name,
            config,
            transforms,
            max_tasks,
        })
    });
    let sinks = parse_sinks(root, registry, &predicates, diags);
    if root.get("source").is_none() && root.get("sinks").is_none() {
        diags.report(
            root.mark,
            "",
            "a pipeline needs a `source`, one or more `sinks`, or both",
        );
    }
    Some(PipelineConfig {
        name: name?,
        file: path.to_path_buf(),
        kafka: kafka?.unwrap_or_default(),
        topic: topic?,
        runtime: runtime?.unwrap_or_default(),
        source,
        sinks,
        predicates,
        exactly_once: exactly_once?.unwrap_or(false),
        errors: errors?.unwrap_or_default(),
        member: None,
    })
}

fn validate_topic(topic: &TopicConfig, node: &Node, diags: &Diagnostics) {
    if topic.name.is_empty()
        || topic.name.len() > 249
        || !topic
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        report_field(
            node,
            "name",
            format!(
                "`{}` is not a Kafka topic name (1 to 249 of letters, digits, `-`, `_`, `.`)",
                topic.name
            ),
            diags,
        );
    }
    if topic.partitions.is_some_and(|p| p < 1) {
        report_field(node, "partitions", "must be at least 1", diags);
    }
    if topic.replication_factor.is_some_and(|r| r < 1) {
        report_field(node, "replication_factor", "must be at least 1", diags);
    }
}

fn parse_sinks(
    root: &Node,
    registry: &Registry,
    predicates: &BTreeMap<String, PredicateSpec>,
    diags: &Diagnostics,
) -> Vec<PluginInstance<Box<dyn SinkConfig>>> {
    let Some(node) = root.get("sinks") else {
        return Vec::new();
    };
    let Some(entries) = node.entries() else {
        diags.report(
            node.mark,
            &node.path,
            format!(
                "`sinks` is a mapping from a sink name to its config; found {}",
                node.type_name()
            ),
        );
        return Vec::new();
    };
    let mut sinks = Vec::new();
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default().to_owned();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            diags.report(key.mark, &key.path, format!("sink name `{name}` may use only letters, digits, `-` and `_` (it names a Kafka consumer group)"));
        }
        let transforms = parse_transforms(value, registry, predicates, diags);
        let Some((registration, config_node)) =
            plugin_type(value, registry, PluginKind::Sink, &["transforms"], diags)
        else {
            continue;
        };
        let PluginFactory::Sink(parse) = registration.factory else {
            continue;
        };
        if let Some(config) = parse(&config_node, diags) {
            report_issues(&config_node, config.validate(), diags);
            sinks.push(PluginInstance {
                name,
                type_name: registration.name,
                config,
                transforms,
                max_tasks: 1,
            });
        }
    }
    if entries.is_empty() {
        diags.report(
            node.mark,
            &node.path,
            "`sinks` is empty; add a sink or remove the key",
        );
    }
    sinks
}

/// The `predicates:` map: name → predicate config.
fn parse_predicates(
    root: &Node,
    registry: &Registry,
    diags: &Diagnostics,
) -> BTreeMap<String, PredicateSpec> {
    let mut predicates = BTreeMap::new();
    let Some(node) = root.get("predicates") else {
        return predicates;
    };
    let Some(entries) = node.entries() else {
        diags.report(
            node.mark,
            &node.path,
            format!(
                "`predicates` is a mapping from a predicate name to its config; found {}",
                node.type_name()
            ),
        );
        return predicates;
    };
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default().to_owned();
        let Some((registration, config_node)) =
            plugin_type(value, registry, PluginKind::Predicate, &[], diags)
        else {
            continue;
        };
        let PluginFactory::Predicate(parse) = registration.factory else {
            continue;
        };
        if let Some(config) = parse(&config_node, diags) {
            report_issues(&config_node, config.validate(), diags);
            predicates.insert(
                name,
                PredicateSpec {
                    type_name: registration.name,
                    config,
                },
            );
        }
    }
    predicates
}

/// The `transforms:` list of a source or sink section.
fn parse_transforms(
    section: &Node,
    registry: &Registry,
    predicates: &BTreeMap<String, PredicateSpec>,
    diags: &Diagnostics,
) -> Vec<TransformSpec> {
    let Some(node) = section.get("transforms") else {
        return Vec::new();
    };
    let NodeKind::Seq(steps) = &node.kind else {
        diags.report(
            node.mark,
            &node.path,
            format!(
                "`transforms` is a list of steps, each with a `type`; found {}",
                node.type_name()
            ),
        );
        return Vec::new();
    };
    let mut specs = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let first_diagnostic = diags.len();
        if let Some(spec) = parse_step(step, registry, predicates, diags) {
            specs.push(spec);
        }
        let type_name = step.get("type").and_then(Node::as_str).unwrap_or("?");
        diags.prefix_since(
            first_diagnostic,
            &format!("transform {} `{type_name}`: ", i + 1),
        );
    }
    specs
}

fn parse_step(
    step: &Node,
    registry: &Registry,
    predicates: &BTreeMap<String, PredicateSpec>,
    diags: &Diagnostics,
) -> Option<TransformSpec> {
    let (registration, config_node) = plugin_type(
        step,
        registry,
        PluginKind::Transform,
        &["predicate", "negate"],
        diags,
    )?;
    let predicate = match step.entry("predicate") {
        None => None,
        Some((key, value)) => match value.as_str() {
            Some(name) if predicates.contains_key(name) => Some(name.to_owned()),
            _ => {
                let defined: Vec<String> = predicates.keys().map(|n| format!("`{n}`")).collect();
                let name = value.as_str().unwrap_or_default();
                diags.report(
                    value.mark,
                    &key.path,
                    if defined.is_empty() {
                        format!("predicate `{name}` is not defined; declare it under the pipeline's `predicates:`")
                    } else {
                        format!("predicate `{name}` is not defined; defined predicates: {}", defined.join(", "))
                    },
                );
                None
            }
        },
    };
    let negate = match step.entry("negate") {
        None => false,
        Some((key, value)) => {
            let negate = crate::config::de::from_node::<bool>(value, diags).unwrap_or(false);
            if step.get("predicate").is_none() {
                diags.report(
                    key.mark,
                    &key.path,
                    "`negate` needs a `predicate` on the same step",
                );
            }
            negate
        }
    };
    let PluginFactory::Transform(parse) = registration.factory else {
        return None;
    };
    let config = parse(&config_node, diags)?;
    report_issues(&config_node, config.validate(), diags);
    Some(TransformSpec {
        path: step.path.clone(),
        type_name: registration.name,
        config,
        predicate,
        negate,
    })
}

/// Parses a YAML document holding a `transforms:` list and an optional
/// `predicates:` map, as written in a pipeline, into a ready chain. For tools
/// and tests that run transforms outside a pipeline.
pub fn transform_chain_from_yaml(
    text: &str,
    file: &Path,
) -> Result<crate::transform::TransformChain, ConfigErrors> {
    let diags = Diagnostics::new(file.display().to_string());
    let registry = match Registry::global() {
        Ok(registry) => registry,
        Err(e) => {
            diags.report(Mark { line: 1, column: 1 }, "", e.to_string());
            return Err(ConfigErrors(diags.into_sorted()));
        }
    };
    let Some(root) = parse_document(text, &diags) else {
        return Err(ConfigErrors(diags.into_sorted()));
    };
    for (key, _) in root.entries().unwrap_or_default() {
        let name = key.as_str().unwrap_or_default();
        if !["transforms", "predicates"].contains(&name) {
            diags.report(
                key.mark,
                &key.path,
                unknown_field_message(name, &["transforms", "predicates"]),
            );
        }
    }
    let predicates = parse_predicates(&root, registry, &diags);
    let specs = parse_transforms(&root, registry, &predicates, &diags);
    if !diags.is_empty() {
        return Err(ConfigErrors(diags.into_sorted()));
    }
    crate::runtime::build_chain(&specs, &predicates).map_err(|message| {
        ConfigErrors(vec![super::Diagnostic {
            file: diags.file().clone(),
            mark: Mark { line: 1, column: 1 },
            path: String::new(),
            message,
        }])
    })
}

/// Finds the plugin named by the section's `type` key; returns it with the
/// section minus `type` and the `extra` keys the pipeline itself handles.
fn plugin_type(
    node: &Node,
    registry: &Registry,
    kind: PluginKind,
    extra: &[&str],
    diags: &Diagnostics,
) -> Option<(&'static crate::registry::PluginRegistration, Node)> {
    if node.entries().is_none() {
        diags.report(
            node.mark,
            &node.path,
            format!(
                "a {kind} is a mapping with a `type` key; found {}",
                node.type_name()
            ),
        );
        return None;
    }
    let Some((type_key, type_node)) = node.entry("type") else {
        let valid: Vec<String> = registry.names(kind).map(|n| format!("`{n}`")).collect();
        diags.report(
            node.mark,
            &node.path,
            format!(
                "missing key `type`; registered {kind}s: {}",
                valid.join(", ")
            ),
        );
        return None;
    };
    let Some(type_name) = type_node.as_str() else {
        diags.report(
            type_node.mark,
            &type_key.path,
            format!(
                "`type` is a {kind} type name; found {}",
                type_node.type_name()
            ),
        );
        return None;
    };
    match registry.lookup(kind, type_name) {
        Ok(registration) => {
            let mut handled = vec!["type"];
            handled.extend_from_slice(extra);
            Some((registration, node.without_keys(&handled)))
        }
        Err(message) => {
            diags.report(type_node.mark, &type_key.path, message);
            None
        }
    }
}

/// Reports a plugin's own validation issues at the key they are about.
fn report_issues(node: &Node, issues: Vec<FieldIssue>, diags: &Diagnostics) {
    for issue in issues {
        report_field(node, &issue.field, issue.message, diags);
    }
}

/// Reports `message` at `field` of `node` (a dotted path), or at `node` if absent.
fn report_field(node: &Node, field: &str, message: impl Into<String>, diags: &Diagnostics) {
    let mut target = node;
    for part in field.split('.').filter(|p| !p.is_empty()) {
        match &target.kind {
            NodeKind::Map(_) => match target.entry(part) {
                Some((_, value)) => target = value,
                None => break,
            },
            _ => break,
        }
    }
    if diags.has_at(target.mark) && !std::ptr::eq(target, node) {
        return;
    }
    let path = if std::ptr::eq(target, node) && !field.is_empty() {
        super::node::child_path(&node.path, field)
    } else {
        target.path.clone()
    };
    diags.report(target.mark, &path, message);
}

fn required<T: serde::de::DeserializeOwned>(
    root: &Node,
    key: &str,
    diags: &Diagnostics,
) -> Option<T> {
    match root.get(key) {
        Some(node) => from_node(node, diags),
        None => {
            diags.report(root.mark, "", format!("missing key `{key}`"));
            None
        }
    }
}

/// `Some(None)` when absent, `Some(Some(value))` when valid, `None` when invalid.
fn optional<T: serde::de::DeserializeOwned>(
    root: &Node,
    key: &str,
    diags: &Diagnostics,
) -> Option<Option<T>> {
    match root.get(key) {
        Some(node) => from_node(node, diags).map(Some),
        None => Some(None),
    }
}

/// Checks one plugin's config section (YAML or JSON text, `type` optional)
/// against the plugin registered as `type_name`, as the pipeline loader
/// would: every unknown key, wrong type and plugin check is reported.
/// `kind` picks between plugins of different kinds sharing the name.
/// Returns the plugin's kind.
pub fn validate_plugin_config(
    type_name: &str,
    kind: Option<PluginKind>,
    text: &str,
    file: &Path,
) -> Result<PluginKind, ConfigErrors> {
    let diags = Diagnostics::new(file.display().to_string());
    let fail = |message: String| {
        ConfigErrors(vec![super::Diagnostic {
            file: diags.file().clone(),
            mark: Mark { line: 1, column: 1 },
            path: String::new(),
            message,
        }])
    };
    let registry = Registry::global().map_err(|e| fail(e.to_string()))?;
    let registration = match registry.one(type_name, kind) {
        Ok(registration) => registration,
        Err(_) if registry.named(type_name).is_err() => {
            return Err(fail(format!("no plugin is registered as `{type_name}`")))
        }
        Err(message) => return Err(fail(message)),
    };
    let Some(root) = parse_document(text, &diags) else {
        return Err(ConfigErrors(diags.into_sorted()));
    };
    if let Some((key, value)) = root.entry("type") {
        if value.as_str() != Some(type_name) {
            diags.report(
                value.mark,
                &key.path,
                format!("`type` must be `{type_name}` here"),
            );
        }
    }
    let node = root.without_keys(&["type", "transforms", "predicate", "negate"]);
    let issues = match registration.factory {
        PluginFactory::Source(parse) => parse(&node, &diags).map(|c| c.validate()),
        PluginFactory::Sink(parse) => parse(&node, &diags).map(|c| c.validate()),
        PluginFactory::Transform(parse) => parse(&node, &diags).map(|c| c.validate()),
        PluginFactory::Predicate(parse) => parse(&node, &diags).map(|c| c.validate()),
    };
    if let Some(issues) = issues {
        report_issues(&node, issues, &diags);
    }
    if diags.is_empty() {
        Ok(registration.kind())
    } else {
        Err(ConfigErrors(diags.into_sorted()))
    }
}
