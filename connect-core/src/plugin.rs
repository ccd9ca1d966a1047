//! The plugin contract: sources, sinks, transforms and predicates.
//!
//! Every plugin comes in two parts. A *config* type is deserialized from the
//! pipeline YAML and validated without I/O; its `build` method does the I/O
//! needed to create the running *instance* (open a file, make a client).
//! The runtime owns everything around the instance: the polling loop,
//! batching, retries with back-off, back-pressure, offset commits and
//! shutdown. Connectors stay small.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{ConnectorError, ConnectorResult};
use crate::record::{Record, SourcePosition, TopicPartition};

/// What a plugin's `build` may use.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The pipeline's name.
    pub pipeline: Arc<str>,
    /// The plugin's name in the pipeline (`source`, or the sink's key under `sinks`).
    pub name: Arc<str>,
    /// The directory of the pipeline file; relative paths in a config resolve against it.
    pub base_dir: PathBuf,
    /// The Kafka topic the pipeline moves records through.
    pub topic: Arc<str>,
}

impl BuildContext {
    /// Resolves a path from a config against the pipeline file's directory.
    pub fn resolve_path(&self, path: &std::path::Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

/// A config problem found by a plugin's own validation, located by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// The config key (as written in YAML) the problem is about.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl FieldIssue {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The validated configuration of a source, ready to build.
#[async_trait]
pub trait SourceConfig: Debug + Send + Sync {
    /// Checks that need no I/O and that the type system could not express;
    /// returns every problem, not only the first.
    fn validate(&self) -> Vec<FieldIssue> {
        Vec::new()
    }

    /// Creates the source instance. May do I/O (open files, connect).
    async fn build(&self, ctx: &BuildContext) -> ConnectorResult<Box<dyn Source>>;

    /// The independent streams this source reads, when it reads several
    /// that may run apart (csv_replay: one per file of a folder or glob).
    /// The runtime spreads them over at most `max_tasks` tasks (round
    /// robin, in the order returned), which may run on different workers;
    /// each stream is built from its own config and opened with the stored
    /// position of its own source partition. `None` (the default): one
    /// stream, this config, resumed from the last stored position.
    /// Called at each pipeline start; may do I/O (list files).
    fn split(&self, _ctx: &BuildContext) -> ConnectorResult<Option<Vec<SourceStream>>> {
        Ok(None)
    }
}

/// One stream of a split source (see [`SourceConfig::split`]).
#[derive(Debug)]
pub struct SourceStream {
    /// The source partition its records carry (their position's
    /// `partition`), under which its position is stored.
    pub partition: serde_json::Value,
    /// The config that reads just this stream.
    pub config: Box<dyn SourceConfig>,
}

/// Splits a file source whose `path` names a folder or a glob into one
/// stream per file, sorted by name; `None` when `path` names one file.
///
/// In a folder, the files `wanted` accepts count (a glob takes every file
/// it matches); `kind` names them in the error for none (`CSV files`).
/// `with_path` makes the config that reads one file. Each stream's source
/// partition is `{"file": <path>}`, which the source's records must carry.
pub fn split_files(
    path: &Path,
    kind: &str,
    wanted: impl Fn(&Path) -> bool,
    with_path: impl Fn(PathBuf) -> Box<dyn SourceConfig>,
) -> ConnectorResult<Option<Vec<SourceStream>>> {
    let text = path.display().to_string();
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .map_err(|e| {
                ConnectorError::fatal_caused_by(format!("cannot list the folder {text}"), e)
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && wanted(p))
            .collect()
    } else if text.contains(['*', '?', '[']) {
        glob::glob(&text)
            .map_err(|e| {
                ConnectorError::fatal(format!(
                    "`{text}` is not a valid glob pattern: {e}; check `path`"
                ))
            })?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect()
    } else {
        return Ok(None);
    };
    if files.is_empty() {
        let place = if path.is_dir() {
            "in the folder"
        } else {
            "match"
        };
        return Err(ConnectorError::fatal(format!(
            "no {kind} {place} {text}; check `path`"
        )));
    }
    files.sort();
    Ok(Some(
        files
            .into_iter()
            .map(|file| SourceStream {
                partition: serde_json::json!({ "file": file.display().to_string() }),
                config: with_path(file),
            })
            .collect(),
    ))
}

/// What a source returns from [`Source::poll`].
#[derive(Debug)]
pub enum Poll {
    /// Records, in the order they must be written to Kafka. May be empty
    /// when the source had nothing to return within its own wait.
    Records(Vec<Record>),
    /// A finite source is exhausted: the runtime stops polling, waits until
    /// Kafka acknowledged every record and closes the source.
    End,
}

/// A source of records, driven by the runtime on one task.
///
/// Lifecycle, in order:
/// 1. [`open`](Source::open) once, with the last committed position of this
///    source (`None` on the first run). The source continues right after it.
/// 2. [`poll`](Source::poll) in a loop, never concurrently with itself. A poll
///    may wait (for a rate limit, for new data) but must be cancel-safe: the
///    runtime drops the poll future at shutdown, and a dropped poll must not
///    have consumed data it did not return.
/// 3. [`close`](Source::close) once the runtime stops polling (end of input,
///    shutdown or error). Closing twice is harmless.
///
/// Each record carries its [`SourcePosition`]; the runtime stores a position
/// only after Kafka acknowledged every record up to it.
#[async_trait]
pub trait Source: Send {
    /// Prepares to read, starting after `position` when one is given.
    async fn open(&mut self, position: Option<SourcePosition>) -> ConnectorResult<()>;

    /// Returns the next records (at most `max_records`) or [`Poll::End`].
    async fn poll(&mut self, max_records: usize) -> ConnectorResult<Poll>;

    /// How far a finite source has got, for progress displays (`done` of
    /// `total`, in any unit: bytes of a file, rows); `None` when unknown or
    /// endless. Called after each poll; must be cheap.
    fn progress(&self) -> Option<SourceProgress> {
        None
    }

    /// Releases resources. Idempotent.
    async fn close(&mut self) -> ConnectorResult<()>;
}

/// How far a finite source has got: `done` of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceProgress {
    /// Work done.
    pub done: u64,
    /// All the work.
    pub total: u64,
}

/// Counters a sink keeps up to date; the runtime reports them in the run
/// summary, and as the Prometheus metrics `sluice_sink_records_sunk_total`,
/// `sluice_sink_objects_total` and `sluice_sink_bytes_total` (labels
/// `pipeline`, `sink`).
#[derive(Debug)]
pub struct SinkStats {
    /// Records made durable in the outside system.
    pub records: AtomicU64,
    /// Objects or files written.
    pub objects: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
    records_total: metrics::Counter,
    objects_total: metrics::Counter,
    bytes_total: metrics::Counter,
}

impl Default for SinkStats {
    /// Counters that are not exported (for tests and tools).
    fn default() -> Self {
        Self {
            records: AtomicU64::new(0),
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            records_total: metrics::Counter::noop(),
            objects_total: metrics::Counter::noop(),
            bytes_total: metrics::Counter::noop(),
        }
    }
}

impl SinkStats {
    /// Counters of sink `sink` of `pipeline`, exported as metrics.
    pub fn new(pipeline: &str, sink: &str) -> Self {
        let labels = [("pipeline", pipeline.to_owned()), ("sink", sink.to_owned())];
        Self {
            records_total: metrics::counter!("sluice_sink_records_sunk_total", &labels),
            objects_total: metrics::counter!("sluice_sink_objects_total", &labels),
            bytes_total: metrics::counter!("sluice_sink_bytes_total", &labels),
            ..Self::default()
        }
    }

    /// Counts one durable write of `records` records in `bytes` bytes.
    pub fn add_object(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.records_total.increment(records);
        self.objects_total.increment(1);
        self.bytes_total.increment(bytes);
    }
}

/// The validated configuration of a sink, ready to build.
#[async_trait]
pub trait SinkConfig: Debug + Send + Sync {
    /// Checks that need no I/O; returns every problem, not only the first.
    fn validate(&self) -> Vec<FieldIssue> {
        Vec::new()
    }

    /// Creates the sink instance. May do I/O (make clients, check or create
    /// the destination). `stats` is where the sink counts what it wrote.
    async fn build(
        &self,
        ctx: &BuildContext,
        stats: Arc<SinkStats>,
    ) -> ConnectorResult<Box<dyn Sink>>;
}

/// How much a [`Sink::flush`] must write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// Write what the sink's own rotation rules say is due (size, count or
    /// age), including for partitions that received nothing new.
    Due,
    /// Write everything buffered: the runtime is about to commit and stop.
    All,
}

/// For each partition, the next offset to consume: every record before it is
/// durable in the outside system. Partitions with nothing new are absent.
pub type DurableOffsets = BTreeMap<TopicPartition, i64>;

/// A sink of records, driven by the runtime on one task.
///
/// Lifecycle, in order:
/// 1. [`assigned`](Sink::assigned) whenever the consumer group gives this sink
///    partitions (first with its initial assignment).
/// 2. [`write`](Sink::write) with batches of records in offset order per
///    partition. It may only buffer. If it fails retriably it must have had no
///    effect, because the runtime calls it again with the same batch.
/// 3. [`flush`](Sink::flush) often (after writes and on a timer, so that
///    time-based rotation happens on idle partitions too). It writes what is
///    due and returns the offsets that are now durable; the runtime commits
///    exactly those to Kafka. A flush that failed retriably is called again.
/// 4. [`revoked`](Sink::revoked) when partitions are taken away: the sink drops
///    what it buffered for them (the next owner reads it again from the last
///    commit, so nothing is lost).
/// 5. [`close`](Sink::close) once, after the last flush. Closing twice is harmless.
#[async_trait]
pub trait Sink: Send {
    /// Partitions newly assigned to this sink.
    async fn assigned(&mut self, partitions: &[TopicPartition]) -> ConnectorResult<()>;

    /// Accepts a batch of records (offset order within each partition).
    async fn write(&mut self, records: &[Record]) -> ConnectorResult<()>;

    /// Makes due (or, with [`FlushMode::All`], all) buffered records durable
    /// and reports every partition's durable position.
    async fn flush(&mut self, mode: FlushMode) -> ConnectorResult<DurableOffsets>;

    /// Partitions taken away from this sink; buffered data for them is dropped.
    async fn revoked(&mut self, partitions: &[TopicPartition]) -> ConnectorResult<()>;

    /// Releases resources. Idempotent.
    async fn close(&mut self) -> ConnectorResult<()>;

    /// When the sink next has something due without new records (an
    /// object's time-based rotation; now, when finished objects wait to be
    /// written): the runtime flushes then instead of waiting for its next
    /// `flush_interval` tick, so that data lands on time. Asked after every
    /// write and flush. Default: `None`, the tick.
    fn due_at(&self) -> Option<std::time::Instant> {
        None
    }

    /// Whether this sink takes values as JSON text
    /// ([`Record::encoded_value`], `value` then `None`) when the runtime
    /// can pass the bytes read from Kafka through: no sink transform runs
    /// and the topic's `value_converter` is `json`. A sink that writes
    /// values out as JSON (with [`Record::write_value_json`]) spares the
    /// decode and the encode of every record. Default: `false`, every
    /// value decoded.
    fn accepts_encoded_values(&self) -> bool {
        false
    }
}

/// The validated configuration of a transform, ready to build.
pub trait TransformConfig: Debug + Send + Sync {
    /// Checks that need no I/O; returns every problem.
    fn validate(&self) -> Vec<FieldIssue> {
        Vec::new()
    }

    /// Creates the transform.
    fn build(&self) -> ConnectorResult<Box<dyn Transform>>;
}

/// What a transform decided about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The (possibly changed) record goes on to the next step.
    Keep,
    /// The record is dropped; the runtime counts it (never silent).
    Drop,
}

/// A single-message transform: synchronous, pure and per record.
///
/// The runtime calls [`apply`](Transform::apply) once per record, in order,
/// from one task. The transform changes the record in place (touching only
/// what it transforms, so a chain never copies whole records) and says
/// whether to keep it. An error names the field and what is wrong with it;
/// the runtime adds the step and the record's location. It must not block or
/// do I/O.
pub trait Transform: Send {
    /// Transforms one record in place.
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome>;
}

/// The validated configuration of a predicate, ready to build.
pub trait PredicateConfig: Debug + Send + Sync {
    /// Checks that need no I/O; returns every problem.
    fn validate(&self) -> Vec<FieldIssue> {
        Vec::new()
    }

    /// Creates the predicate.
    fn build(&self) -> ConnectorResult<Box<dyn Predicate>>;
}

/// A condition on a record that decides whether a transform applies to it
/// (joined to a transform by `predicate` and `negate`, as in Kafka Connect).
/// Synchronous and pure, like a transform.
pub trait Predicate: Send {
    /// Whether the condition holds for `record`.
    fn test(&self, record: &Record) -> bool;
}
