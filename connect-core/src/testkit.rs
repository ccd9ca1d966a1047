//! Conformance checks for connectors (feature `testkit`): one call runs
//! the standard checks of the plugin contract on a registered source or
//! sink, through the same config loader and the same calls, in the same
//! order, as the runtime. The plugin talks to its real outside system (a
//! file, a bucket, an HTTP server the test starts); Kafka is not needed,
//! since the checks play the runtime's part.
//!
//! ```ignore
//! let report = SourceKit::new("csv_replay", "type: csv_replay\npath: rows.csv\n")
//!     .base_dir(dir.path())
//!     .invalid("type: csv_replay\npath: rows.csv\nrate: 0\n", &["rate"])
//!     .fault("type: csv_replay\npath: missing.csv\n", ErrorClass::Fatal)
//!     .run()
//!     .await;
//! report.assert_passed();
//! ```
//!
//! A source is checked for: its registered example and the given config
//! validate; each invalid config reports every problem it was given (not
//! only the first); open then close, and closing twice, succeed; every
//! record carries a position, of its stream when the source splits; a
//! finite input ends, and stays ended; resuming from any record's position
//! gives exactly the records after it (no gap, no duplicate); and each
//! fault fails with the expected class (retriable, fatal or bad record).
//!
//! A sink is checked for: examples, validation and faults as a source;
//! open and close; `flush` reports as durable only records the outside
//! system holds (read back by the test's own reader) and, with
//! `FlushMode::All`, every record; a `write` retried with the same batch
//! takes nothing twice; a new instance after a crash, given the records
//! again from offset 0, adds nothing twice (when the sink claims exactly
//! once); and a revoked partition's buffered records are dropped.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use crate::config::pipeline::{parse_pipeline, validate_plugin_config, PipelineConfig};
use crate::error::ConnectorError;
use crate::plugin::{
    BuildContext, FlushMode, Poll, Sink, SinkConfig, SinkStats, Source, SourceConfig,
};
use crate::record::{Record, SourcePosition, TopicPartition, Value};
use crate::registry::{PluginKind, Registry};

/// The class of error a fault must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// [`ConnectorError::Retriable`]: the runtime backs off and retries.
    Retriable,
    /// [`ConnectorError::Fatal`]: the runtime stops the pipeline.
    Fatal,
    /// [`ConnectorError::BadRecord`]: one record skipped, the rest goes on.
    BadRecord,
}

impl ErrorClass {
    fn of(error: &ConnectorError) -> Self {
        match error {
            ConnectorError::Retriable(_) => Self::Retriable,
            ConnectorError::Fatal(_) => Self::Fatal,
            ConnectorError::BadRecord(_) => Self::BadRecord,
        }
    }
}

/// A check that failed: its name and what went wrong.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The check.
    pub check: String,
    /// What went wrong.
    pub message: String,
}

/// What a kit's run found.
#[derive(Debug, Default)]
pub struct Report {
    /// The checks that passed, in order.
    pub passed: Vec<String>,
    /// The checks that failed.
    pub failed: Vec<Failure>,
}

impl Report {
    fn check(&mut self, name: impl Into<String>, result: Result<(), String>) {
        let check = name.into();
        match result {
            Ok(()) => self.passed.push(check),
            Err(message) => self.failed.push(Failure { check, message }),
        }
    }

    /// Panics with every failed check, unless all passed.
    pub fn assert_passed(&self) {
        if !self.failed.is_empty() {
            let failures: Vec<String> = self
                .failed
                .iter()
                .map(|f| format!("- {}: {}", f.check, f.message))
                .collect();
            panic!(
                "{} of {} conformance checks failed:\n{}\npassed: {}",
                self.failed.len(),
                self.failed.len() + self.passed.len(),
                failures.join("\n"),
                self.passed.join(", ")
            );
        }
    }
}

/// A config section (YAML, `type` included) and the fields whose problems
/// its validation must report, all at once.
#[derive(Debug, Clone)]
struct Invalid {
    section: String,
    fields: Vec<String>,
}

/// A config section whose plugin must fail with `class`.
#[derive(Debug, Clone)]
struct Fault {
    section: String,
    class: ErrorClass,
}

/// What both kits know of the plugin under test.
#[derive(Debug, Clone)]
struct Plugin {
    type_name: String,
    section: String,
    base_dir: PathBuf,
    invalid: Vec<Invalid>,
    faults: Vec<Fault>,
}

impl Plugin {
    fn new(type_name: &str, section: &str) -> Self {
        Self {
            type_name: type_name.to_owned(),
            section: section.to_owned(),
            base_dir: std::env::current_dir().unwrap_or_default(),
            invalid: Vec::new(),
            faults: Vec::new(),
        }
    }

    fn add_invalid(&mut self, section: &str, fields: &[&str]) {
        self.invalid.push(Invalid {
            section: section.to_owned(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        });
    }

    fn add_fault(&mut self, section: &str, class: ErrorClass) {
        self.faults.push(Fault {
            section: section.to_owned(),
            class,
        });
    }

    /// The checks that need only the config (see [`config_checks`]).
    fn config_checks(&self, report: &mut Report, kind: PluginKind) {
        config_checks(
            report,
            kind,
            &self.type_name,
            &self.section,
            &self.invalid,
            &self.base_dir,
        );
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|line| format!("{by}{line}\n")).collect()
}

/// Checks that need only the config: the registered example validates,
/// `section` validates, each invalid section reports each of its fields.
fn config_checks(
    report: &mut Report,
    kind: PluginKind,
    type_name: &str,
    section: &str,
    invalid: &[Invalid],
    base_dir: &Path,
) {
    let file = base_dir.join("conformance.yaml");
    let example = Registry::global()
        .map_err(|e| e.to_string())
        .and_then(|registry| registry.lookup(kind, type_name))
        .and_then(|plugin| {
            validate_plugin_config(type_name, Some(kind), plugin.example, &file)
                .map(drop)
                .map_err(|e| format!("the registered example does not validate:\n{e}"))
        });
    report.check("the registered example validates", example);
    let given = validate_plugin_config(type_name, Some(kind), section, &file)
        .map(drop)
        .map_err(|e| format!("the config given to the kit does not validate:\n{e}"));
    report.check("the config validates", given);
    for (i, case) in invalid.iter().enumerate() {
        let result = match validate_plugin_config(type_name, Some(kind), &case.section, &file) {
            Ok(_) => Err(format!("invalid config {i} validates:\n{}", case.section)),
            Err(errors) => {
                let missing: Vec<&String> = case
                    .fields
                    .iter()
                    .filter(|field| {
                        !errors.0.iter().any(|d| {
                            d.path == **field
                                || d.path.ends_with(&format!(".{field}"))
                                || d.message.contains(&format!("`{field}`"))
                        })
                    })
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "invalid config {i}: no problem reported for {missing:?}; reported:\n{errors}"
                    ))
                }
            }
        };
        report.check(
            format!("invalid config {i} reports every problem at once"),
            result,
        );
    }
}

fn build_context(base_dir: &Path, name: &str, topic: &str) -> BuildContext {
    BuildContext {
        pipeline: Arc::from("conformance"),
        name: Arc::from(name),
        base_dir: base_dir.to_path_buf(),
        topic: Arc::from(topic),
    }
}

/// Parses a pipeline around one plugin section, as `sluice run` would.
fn pipeline_with(
    kind: PluginKind,
    section: &str,
    base_dir: &Path,
) -> Result<PipelineConfig, String> {
    let body = match kind {
        PluginKind::Sink => format!("sinks:\n  out:\n{}", indent(section, "    ")),
        _ => format!("source:\n{}", indent(section, "  ")),
    };
    let text = format!("name: conformance\ntopic: {{ name: conformance }}\n{body}");
    parse_pipeline(&text, &base_dir.join("conformance.yaml")).map_err(|e| e.to_string())
}

/// What a source gave: its records (in order) and bad records skipped.
struct Read {
    records: Vec<Record>,
    ended: bool,
}

/// What a source record holds, comparable: key, value (decoded) and headers.
type Contents = (Option<Value>, Option<Value>, crate::record::Headers);

/// The [`Contents`] of `record`.
fn contents(record: &Record) -> Contents {
    let value = match (&record.encoded_value, &record.value) {
        (Some(bytes), _) => serde_json::from_slice(bytes).ok(),
        (None, value) => value.clone(),
    };
    (record.key.clone(), value, record.headers.clone())
}

/// Checks a registered source.
#[derive(Debug, Clone)]
pub struct SourceKit {
    plugin: Plugin,
    endless: bool,
    sample: usize,
    batch: usize,
    patience: std::time::Duration,
}

/// Most records a finite source may give before the kit calls it endless.
const MAX_FINITE: usize = 1_000_000;

impl SourceKit {
    /// Checks source `type_name` with its config section `section` (YAML,
    /// `type` included), which must read a finite input with at least two
    /// records (see [`SourceKit::endless`] otherwise).
    pub fn new(type_name: &str, section: &str) -> Self {
        Self {
            plugin: Plugin::new(type_name, section),
            endless: false,
            sample: 200,
            batch: 64,
            patience: std::time::Duration::from_secs(30),
        }
    }

    /// The directory relative paths in the config resolve against (the
    /// pipeline file's directory at run time).
    pub fn base_dir(mut self, dir: &Path) -> Self {
        self.plugin.base_dir = dir.to_path_buf();
        self
    }

    /// The source never ends: the read checks take `sample` records
    /// (waiting in `poll` as the source does) instead of reading to the end.
    pub fn endless(mut self, sample: usize) -> Self {
        self.endless = true;
        self.sample = sample.max(2);
        self
    }

    /// How long a read waits without a new record (default 30s): an
    /// endless source's read ends there with what it has (a resume check
    /// then reports what is missing); a finite source's read fails.
    pub fn patience(mut self, patience: std::time::Duration) -> Self {
        self.patience = patience;
        self
    }

    /// `max_records` given to each `poll` (default 64).
    pub fn batch(mut self, max_records: usize) -> Self {
        self.batch = max_records.max(1);
        self
    }

    /// A config section that must fail validation with a problem for each
    /// of `fields` (reported together, not one per run).
    pub fn invalid(mut self, section: &str, fields: &[&str]) -> Self {
        self.plugin.add_invalid(section, fields);
        self
    }

    /// A config section that validates but whose source fails (in `build`,
    /// `open` or `poll`) with an error of `class`.
    pub fn fault(mut self, section: &str, class: ErrorClass) -> Self {
        self.plugin.add_fault(section, class);
        self
    }

    fn config(&self, section: &str) -> Result<(Box<dyn SourceConfig>, BuildContext), String> {
        let pipeline = pipeline_with(PluginKind::Source, section, &self.plugin.base_dir)?;
        let source = pipeline
            .source
            .ok_or_else(|| "the pipeline has no source".to_owned())?;
        Ok((
            source.config,
            build_context(&self.plugin.base_dir, "source", "conformance"),
        ))
    }

    /// Builds and opens (after `position`) a source.
    async fn open(
        config: &dyn SourceConfig,
        ctx: &BuildContext,
        position: Option<SourcePosition>,
    ) -> Result<Box<dyn Source>, String> {
        let mut source = config
            .build(ctx)
            .await
            .map_err(|e| format!("build failed: {e}"))?;
        source
            .open(position)
            .await
            .map_err(|e| format!("open failed: {e}"))?;
        Ok(source)
    }

    /// Polls until the end, `limit` records, or an error that is not a bad
    /// record; a finite source is polled once more after its end.
    async fn read(&self, source: &mut dyn Source, limit: usize) -> Result<Read, String> {
        let mut records = Vec::new();
        let mut progress = std::time::Instant::now();
        loop {
            if records.len() >= limit {
                return Ok(Read {
                    records,
                    ended: false,
                });
            }
            if progress.elapsed() > self.patience {
                // An endless source with nothing more to give, or a stuck one.
                return if self.endless {
                    Ok(Read {
                        records,
                        ended: false,
                    })
                } else {
                    Err(format!(
                        "no record and no end for {:?}, after {} records",
                        self.patience,
                        records.len()
                    ))
                };
            }
            let want = self.batch.min(limit - records.len());
            // A poll may be dropped at any time (the runtime does at shutdown).
            let Ok(polled) = tokio::time::timeout(self.patience, source.poll(want)).await else {
                continue;
            };
            match polled {
                Ok(Poll::Records(batch)) => {
                    if batch.len() > want {
                        return Err(format!("poll({want}) returned {} records", batch.len()));
                    }
                    if !batch.is_empty() {
                        progress = std::time::Instant::now();
                    }
                    records.extend(batch);
                }
                Ok(Poll::End) => {
                    // Polled again (the runtime does not, but an end is an end).
                    return match source.poll(self.batch).await {
                        Ok(Poll::Records(more)) if !more.is_empty() => Err(format!(
                            "after its end the source returned {} more records",
                            more.len()
                        )),
                        _ => Ok(Read {
                            records,
                            ended: true,
                        }),
                    };
                }
                Err(ConnectorError::BadRecord(bad)) => {
                    if bad.position.is_none() {
                        return Err(format!(
                            "a bad record carries no position (the dead letter could not say where it came from): {}",
                            bad.failure
                        ));
                    }
                }
                Err(error) => return Err(format!("poll failed: {error}")),
            }
        }
    }

    /// Runs every check; see the module documentation.
    pub async fn run(&self) -> Report {
        let mut report = Report::default();
        self.plugin.config_checks(&mut report, PluginKind::Source);
        match self.config(&self.plugin.section) {
            Ok((config, ctx)) => self.instance_checks(&mut report, config, &ctx).await,
            Err(message) => report.check("the config builds a pipeline", Err(message)),
        }
        for (i, fault) in self.plugin.faults.iter().enumerate() {
            let result = self.fault_check(fault).await;
            report.check(format!("fault {i} fails as {:?}", fault.class), result);
        }
        report
    }

    async fn instance_checks(
        &self,
        report: &mut Report,
        config: Box<dyn SourceConfig>,
        ctx: &BuildContext,
    ) {
        // A split source is checked on its first stream (the runtime
        // builds streams, never the config that splits), whose records
        // must carry the stream's partition.
        let (config, partition) = match config.split(ctx) {
            Ok(Some(mut streams)) if !streams.is_empty() => {
                let first = streams.remove(0);
                (first.config, Some(first.partition))
            }
            Ok(_) => (config, None),
            Err(error) => {
                report.check("split", Err(format!("split failed: {error}")));
                return;
            }
        };
        let open_close = async {
            let mut source = Self::open(config.as_ref(), ctx, None).await?;
            source
                .close()
                .await
                .map_err(|e| format!("close failed: {e}"))?;
            source
                .close()
                .await
                .map_err(|e| format!("a second close failed: {e}"))
        };
        report.check("open, close and close again", open_close.await);
        let limit = if self.endless {
            self.sample
        } else {
            MAX_FINITE
        };
        let all = async {
            let mut source = Self::open(config.as_ref(), ctx, None).await?;
            let read = self.read(source.as_mut(), limit).await;
            let _ = source.close().await;
            read
        };
        let read = match all.await {
            Ok(read) => read,
            Err(message) => {
                report.check("read the input", Err(message));
                return;
            }
        };
        let records = read.records;
        report.check(
            if self.endless {
                "read a sample"
            } else {
                "a finite input ends, and stays ended"
            },
            if !self.endless && !read.ended {
                Err(format!("no end after {MAX_FINITE} records"))
            } else if records.len() < 2 {
                Err(format!(
                    "the input gave {} records; give the kit one with at least two",
                    records.len()
                ))
            } else {
                Ok(())
            },
        );
        if records.len() < 2 {
            return;
        }
        let positions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let position = r
                    .position
                    .clone()
                    .ok_or_else(|| format!("record {i} carries no position"))?;
                if let Some(partition) = &partition {
                    if *position.partition != *partition {
                        return Err(format!(
                            "record {i}'s position is of partition {}, not of its stream's {partition}",
                            position.partition
                        ));
                    }
                }
                Ok(position)
            })
            .collect::<Result<Vec<_>, String>>();
        let positions = match positions {
            Ok(positions) => {
                report.check("every record carries a position of its stream", Ok(()));
                positions
            }
            Err(message) => {
                report.check(
                    "every record carries a position of its stream",
                    Err(message),
                );
                return;
            }
        };
        let n = records.len();
        let mut cuts = vec![0, n / 2, n - 2];
        cuts.dedup();
        for k in cuts {
            let resumed = async {
                let mut source =
                    Self::open(config.as_ref(), ctx, Some(positions[k].clone())).await?;
                let want = n - k - 1;
                let read = self.read(source.as_mut(), want).await;
                let _ = source.close().await;
                let rest = read?.records;
                let expected = &records[k + 1..];
                if let Some(i) =
                    (0..want).find(|&i| rest.get(i).map(contents) != expected.get(i).map(contents))
                {
                    return Err(format!(
                        "resumed after record {k}, record {} is {:?}, expected {:?}",
                        k + 1 + i,
                        rest.get(i).map(contents),
                        expected.get(i).map(contents)
                    ));
                }
                if !self.endless && rest.len() != want {
                    return Err(format!(
                        "resumed after record {k}, the source gave {} records, expected {want}",
                        rest.len()
                    ));
                }
                Ok(())
            };
            report.check(
                format!("resuming after record {k} of {n}: no gap, no duplicate"),
                resumed.await,
            );
        }
    }

    async fn fault_check(&self, fault: &Fault) -> Result<(), String> {
        let (config, ctx) = self.config(&fault.section)?;
        let error = async {
            let mut source = config.build(&ctx).await?;
            source.open(None).await?;
            for _ in 0..MAX_FINITE {
                match source.poll(self.batch).await? {
                    Poll::End => break,
                    Poll::Records(_) => {}
                }
            }
            let _ = source.close().await;
            Ok::<(), ConnectorError>(())
        };
        let Ok(error) = tokio::time::timeout(self.patience, error).await else {
            return Err(format!(
                "the source did not fail within {:?}:\n{}",
                self.patience, fault.section
            ));
        };
        match error {
            Ok(()) => Err(format!("the source did not fail:\n{}", fault.section)),
            Err(error) if ErrorClass::of(&error) == fault.class => {
                if error.to_string().trim().is_empty() {
                    Err("the error has no message".into())
                } else {
                    Ok(())
                }
            }
            Err(error) => Err(format!(
                "failed as {:?}, not {:?}: {error}",
                ErrorClass::of(&error),
                fault.class
            )),
        }
    }
}

/// Reads back the values a sink made durable in its outside system (the
/// test knows where: a bucket, a file).
pub type ReadBack =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Vec<serde_json::Value>> + Send>> + Send + Sync>;

/// Checks a registered sink.
#[derive(Clone)]
pub struct SinkKit {
    plugin: Plugin,
    topic: String,
    read_back: ReadBack,
    exactly_once: bool,
    records: i64,
}

impl std::fmt::Debug for SinkKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkKit")
            .field("type_name", &self.plugin.type_name)
            .field("section", &self.plugin.section)
            .finish_non_exhaustive()
    }
}

/// Where the kit's records are in a value read back: `kit` (the check's
/// topic), `partition`, `offset`.
fn record_id(value: &serde_json::Value) -> Option<(String, i64, i64)> {
    Some((
        value.get("kit")?.as_str()?.to_owned(),
        value.get("partition")?.as_i64()?,
        value.get("offset")?.as_i64()?,
    ))
}

impl SinkKit {
    /// Checks sink `type_name` with its config section `section` (YAML,
    /// `type` included); `read_back` returns every value the sink's outside
    /// system now holds. The kit writes JSON objects
    /// `{"kit": <topic>, "partition": p, "offset": o, "text": …}` to topics
    /// named `<topic prefix>-<check>`, two partitions each.
    pub fn new(type_name: &str, section: &str, read_back: ReadBack) -> Self {
        Self {
            plugin: Plugin::new(type_name, section),
            topic: "conformance".to_owned(),
            read_back,
            exactly_once: true,
            records: 100,
        }
    }

    /// The directory relative paths in the config resolve against.
    pub fn base_dir(mut self, dir: &Path) -> Self {
        self.plugin.base_dir = dir.to_path_buf();
        self
    }

    /// The prefix of the topics the kit's records say they come from
    /// (unique per run when the outside system outlives the test).
    pub fn topic_prefix(mut self, prefix: &str) -> Self {
        self.topic = prefix.to_owned();
        self
    }

    /// The sink writes each record at least once, not exactly once: the
    /// rerun check then allows records twice.
    pub fn at_least_once(mut self) -> Self {
        self.exactly_once = false;
        self
    }

    /// Records per partition in each check (default 100).
    pub fn records(mut self, per_partition: i64) -> Self {
        self.records = per_partition.max(2);
        self
    }

    /// A config section that must fail validation with a problem for each of `fields`.
    pub fn invalid(mut self, section: &str, fields: &[&str]) -> Self {
        self.plugin.add_invalid(section, fields);
        self
    }

    /// A config section that validates but whose sink fails (in `build`,
    /// `write` or `flush`) with an error of `class`.
    pub fn fault(mut self, section: &str, class: ErrorClass) -> Self {
        self.plugin.add_fault(section, class);
        self
    }

    fn config(&self, section: &str) -> Result<Box<dyn SinkConfig>, String> {
        let mut pipeline = pipeline_with(PluginKind::Sink, section, &self.plugin.base_dir)?;
        if pipeline.sinks.is_empty() {
            return Err("the pipeline has no sink".into());
        }
        Ok(pipeline.sinks.remove(0).config)
    }

    async fn build(&self, config: &dyn SinkConfig, topic: &str) -> Result<Box<dyn Sink>, String> {
        config
            .build(
                &build_context(&self.plugin.base_dir, "out", topic),
                Arc::new(SinkStats::default()),
            )
            .await
            .map_err(|e| format!("build failed: {e}"))
    }

    /// The kit's records of `topic`: `records` per partition 0 and 1,
    /// offsets `from..to`, interleaved as a consumer reads them.
    fn batch(topic: &Arc<str>, from: i64, to: i64) -> Vec<Record> {
        let mut batch = Vec::new();
        for offset in from..to {
            for partition in 0..2 {
                let value = serde_json::json!({
                    "kit": topic.as_ref(),
                    "partition": partition,
                    "offset": offset,
                    "text": format!("record {offset} of partition {partition}"),
                });
                batch.push(Record {
                    topic: topic.clone(),
                    partition: Some(partition),
                    offset: Some(offset),
                    key: Some(Value::String(format!("k{offset}"))),
                    value: Some(value),
                    encoded_value: None,
                    headers: Vec::new(),
                    timestamp: Some(1_700_000_000_000 + offset),
                    position: None,
                });
            }
        }
        batch
    }

    fn partitions(topic: &Arc<str>) -> Vec<TopicPartition> {
        (0..2)
            .map(|partition| TopicPartition {
                topic: topic.clone(),
                partition,
            })
            .collect()
    }

    /// How many times each `(partition, offset)` of `topic` is in the outside system.
    async fn durable(&self, topic: &str) -> BTreeMap<(i64, i64), usize> {
        let mut counts = BTreeMap::new();
        for value in (self.read_back)().await {
            if let Some((kit, partition, offset)) = record_id(&value) {
                if kit == topic {
                    *counts.entry((partition, offset)).or_insert(0) += 1;
                }
            }
        }
        counts
    }

    /// Runs every check; see the module documentation.
    pub async fn run(&self) -> Report {
        let mut report = Report::default();
        self.plugin.config_checks(&mut report, PluginKind::Sink);
        match self.config(&self.plugin.section) {
            Ok(config) => {
                let open_close = self.open_close(config.as_ref()).await;
                report.check("open, close and close again", open_close);
                let durable = self.flush_reports_durable(config.as_ref()).await;
                report.check(
                    "flush reports only durable offsets; a retried write takes nothing twice",
                    durable,
                );
                let rerun = self.rerun_after_crash(config.as_ref()).await;
                report.check(
                    if self.exactly_once {
                        "a rerun after a crash adds nothing twice"
                    } else {
                        "a rerun after a crash loses nothing"
                    },
                    rerun,
                );
                let revoked = self.revoked_are_dropped(config.as_ref()).await;
                report.check("a revoked partition's records are dropped", revoked);
            }
            Err(message) => report.check("the config builds a pipeline", Err(message)),
        }
        for (i, fault) in self.plugin.faults.iter().enumerate() {
            let result = self.fault_check(fault).await;
            report.check(format!("fault {i} fails as {:?}", fault.class), result);
        }
        report
    }

    async fn open_close(&self, config: &dyn SinkConfig) -> Result<(), String> {
        let topic: Arc<str> = Arc::from(format!("{}-open", self.topic));
        let mut sink = self.build(config, &topic).await?;
        sink.assigned(&Self::partitions(&topic))
            .await
            .map_err(|e| format!("assigned failed: {e}"))?;
        sink.close()
            .await
            .map_err(|e| format!("close failed: {e}"))?;
        sink.close()
            .await
            .map_err(|e| format!("a second close failed: {e}"))
    }

    async fn flush_reports_durable(&self, config: &dyn SinkConfig) -> Result<(), String> {
        let topic: Arc<str> = Arc::from(format!("{}-durable", self.topic));
        let half = self.records / 2;
        let mut sink = self.build(config, &topic).await?;
        sink.assigned(&Self::partitions(&topic))
            .await
            .map_err(|e| format!("assigned failed: {e}"))?;
        let first = Self::batch(&topic, 0, half);
        sink.write(&first)
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        // The runtime gives a batch again after a retriable failure.
        sink.write(&first)
            .await
            .map_err(|e| format!("a retried write failed: {e}"))?;
        let offsets = sink
            .flush(FlushMode::Due)
            .await
            .map_err(|e| format!("flush(Due) failed: {e}"))?;
        let durable = self.durable(&topic).await;
        for (tp, next) in &offsets {
            if let Some(offset) =
                (0..*next).find(|o| !durable.contains_key(&(i64::from(tp.partition), *o)))
            {
                return Err(format!(
                    "flush(Due) reported partition {} durable up to {next}, but offset {offset} is not in the outside system",
                    tp.partition
                ));
            }
        }
        sink.write(&Self::batch(&topic, half, self.records))
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        let offsets = sink
            .flush(FlushMode::All)
            .await
            .map_err(|e| format!("flush(All) failed: {e}"))?;
        for tp in Self::partitions(&topic) {
            if offsets.get(&tp) != Some(&self.records) {
                return Err(format!(
                    "flush(All) reported {:?} for partition {}, not {} (every record written)",
                    offsets.get(&tp),
                    tp.partition,
                    self.records
                ));
            }
        }
        let _ = sink.close().await;
        self.exactly(&topic, &[0, 1], 0..self.records, self.exactly_once)
            .await
    }

    /// Every offset of `range` in `partitions` is in the outside system
    /// (once, when `once`).
    async fn exactly(
        &self,
        topic: &str,
        partitions: &[i64],
        range: std::ops::Range<i64>,
        once: bool,
    ) -> Result<(), String> {
        let durable = self.durable(topic).await;
        for &partition in partitions {
            for offset in range.clone() {
                match durable.get(&(partition, offset)).copied().unwrap_or(0) {
                    0 => {
                        return Err(format!(
                            "offset {offset} of partition {partition} is not in the outside system"
                        ))
                    }
                    1 => {}
                    n if once => {
                        return Err(format!(
                            "offset {offset} of partition {partition} is there {n} times"
                        ))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    async fn rerun_after_crash(&self, config: &dyn SinkConfig) -> Result<(), String> {
        let topic: Arc<str> = Arc::from(format!("{}-rerun", self.topic));
        let partitions = Self::partitions(&topic);
        // A first instance takes every record, makes some durable, and dies.
        let mut first = self.build(config, &topic).await?;
        first
            .assigned(&partitions)
            .await
            .map_err(|e| format!("assigned failed: {e}"))?;
        first
            .write(&Self::batch(&topic, 0, self.records / 2))
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        first
            .flush(FlushMode::All)
            .await
            .map_err(|e| format!("flush(All) failed: {e}"))?;
        first
            .write(&Self::batch(&topic, self.records / 2, self.records))
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        drop(first);
        // The next gets everything again from offset 0 (nothing committed).
        let mut second = self.build(config, &topic).await?;
        second
            .assigned(&partitions)
            .await
            .map_err(|e| format!("assigned failed: {e}"))?;
        second
            .write(&Self::batch(&topic, 0, self.records))
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        second
            .flush(FlushMode::All)
            .await
            .map_err(|e| format!("flush(All) failed: {e}"))?;
        let _ = second.close().await;
        self.exactly(&topic, &[0, 1], 0..self.records, self.exactly_once)
            .await
    }

    async fn revoked_are_dropped(&self, config: &dyn SinkConfig) -> Result<(), String> {
        let topic: Arc<str> = Arc::from(format!("{}-revoked", self.topic));
        let partitions = Self::partitions(&topic);
        let mut sink = self.build(config, &topic).await?;
        sink.assigned(&partitions)
            .await
            .map_err(|e| format!("assigned failed: {e}"))?;
        sink.write(&Self::batch(&topic, 0, self.records))
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        // Whatever the sink made durable already may stay; what it still
        // buffers for partition 1 must not be written after the revoke.
        let before = self.durable(&topic).await;
        sink.revoked(&partitions[1..])
            .await
            .map_err(|e| format!("revoked failed: {e}"))?;
        let offsets = sink
            .flush(FlushMode::All)
            .await
            .map_err(|e| format!("flush(All) failed: {e}"))?;
        let _ = sink.close().await;
        if offsets.contains_key(&partitions[1]) {
            return Err(format!(
                "flush(All) after the revoke still reported partition 1 ({:?})",
                offsets.get(&partitions[1])
            ));
        }
        let after = self.durable(&topic).await;
        let written: Vec<&(i64, i64)> = after
            .keys()
            .filter(|(partition, _)| *partition == 1)
            .filter(|key| !before.contains_key(key))
            .collect();
        if let Some(first) = written.first() {
            return Err(format!(
                "{} records of the revoked partition were written after the revoke (first: offset {})",
                written.len(),
                first.1
            ));
        }
        self.exactly(&topic, &[0], 0..self.records, self.exactly_once)
            .await
            .map_err(|e| format!("after partition 1's revoke: {e}"))
    }

    async fn fault_check(&self, fault: &Fault) -> Result<(), String> {
        let config = self.config(&fault.section)?;
        let topic: Arc<str> = Arc::from(format!("{}-fault", self.topic));
        let result = async {
            let mut sink = config
                .build(
                    &build_context(&self.plugin.base_dir, "out", &topic),
                    Arc::new(SinkStats::default()),
                )
                .await?;
            sink.assigned(&Self::partitions(&topic)).await?;
            sink.write(&Self::batch(&topic, 0, 2)).await?;
            sink.flush(FlushMode::All).await?;
            let _ = sink.close().await;
            Ok::<(), ConnectorError>(())
        };
        match result.await {
            Ok(()) => Err(format!("the sink did not fail:\n{}", fault.section)),
            Err(error) if ErrorClass::of(&error) == fault.class => Ok(()),
            Err(error) => Err(format!(
                "failed as {:?}, not {:?}: {error}",
                ErrorClass::of(&error),
                fault.class
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The kit against small plugins of this file: a correct one passes,
    //! each planted bug fails the check meant to catch it.

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde::Deserialize;

    use super::*;
    use crate::plugin::{DurableOffsets, FieldIssue};
    use crate::schemars::{self, JsonSchema};
    use crate::ConnectorResult;

    /// Counts `0..count`; `bug: gap` resumes one record late.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct CounterConfig {
        /// Records.
        count: u64,
        /// A planted bug: `gap` or `no_position`.
        #[serde(default)]
        bug: Option<String>,
    }

    struct Counter {
        next: u64,
        count: u64,
        bug: Option<String>,
    }

    #[async_trait]
    impl SourceConfig for CounterConfig {
        fn validate(&self) -> Vec<FieldIssue> {
            let mut issues = Vec::new();
            if self.count == 0 {
                issues.push(FieldIssue::new("count", "must be at least 1"));
            }
            if self.bug.as_deref().is_some_and(|b| b.is_empty()) {
                issues.push(FieldIssue::new("bug", "must name a bug"));
            }
            issues
        }

        async fn build(&self, _ctx: &BuildContext) -> ConnectorResult<Box<dyn Source>> {
            if self.bug.as_deref() == Some("unreachable") {
                return Err(ConnectorError::retriable("the counter is unreachable"));
            }
            Ok(Box::new(Counter {
                next: 0,
                count: self.count,
                bug: self.bug.clone(),
            }))
        }
    }

    #[async_trait]
    impl Source for Counter {
        async fn open(&mut self, position: Option<SourcePosition>) -> ConnectorResult<()> {
            if let Some(n) = position.and_then(|p| p.offset.get("n").and_then(Value::as_u64)) {
                self.next = n + if self.bug.as_deref() == Some("gap") {
                    2
                } else {
                    1
                };
            }
            Ok(())
        }

        async fn poll(&mut self, max_records: usize) -> ConnectorResult<Poll> {
            if self.next >= self.count {
                if self.bug.as_deref() == Some("stall") {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    return Ok(Poll::Records(Vec::new()));
                }
                return Ok(Poll::End);
            }
            let end = (self.next + max_records as u64).min(self.count);
            let records = (self.next..end)
                .map(|n| {
                    let mut record = Record::from_source(
                        Arc::from("t"),
                        None,
                        Some(serde_json::json!({ "n": n })),
                        SourcePosition {
                            partition: Arc::new(serde_json::json!({ "counter": 1 })),
                            offset: serde_json::json!({ "n": n }),
                        },
                    );
                    if self.bug.as_deref() == Some("no_position") && n == 1 {
                        record.position = None;
                    }
                    record
                })
                .collect();
            self.next = end;
            Ok(Poll::Records(records))
        }

        async fn close(&mut self) -> ConnectorResult<()> {
            Ok(())
        }
    }

    crate::register_plugin!(source "kit_counter", CounterConfig,
        summary: "Counts (the conformance kit's own tests)",
        example: "type: kit_counter\ncount: 3\n");

    /// Stores records in memory, under `store`; `bug` plants one fault.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct MemoryConfig {
        /// Which store.
        store: String,
        /// A planted bug: `early` (reports buffered records durable),
        /// `twice` (writes again what is there), `keeps_revoked`.
        #[serde(default)]
        bug: Option<String>,
    }

    /// The stores: values written, by store name.
    static STORES: Mutex<BTreeMap<String, Vec<serde_json::Value>>> = Mutex::new(BTreeMap::new());

    struct Memory {
        store: String,
        bug: Option<String>,
        buffered: Vec<Record>,
        next: BTreeMap<TopicPartition, i64>,
    }

    #[async_trait]
    impl SinkConfig for MemoryConfig {
        async fn build(
            &self,
            _ctx: &BuildContext,
            _stats: Arc<SinkStats>,
        ) -> ConnectorResult<Box<dyn Sink>> {
            Ok(Box::new(Memory {
                store: self.store.clone(),
                bug: self.bug.clone(),
                buffered: Vec::new(),
                next: BTreeMap::new(),
            }))
        }
    }

    impl Memory {
        fn stored(&self) -> Vec<serde_json::Value> {
            STORES
                .lock()
                .expect("stores")
                .get(&self.store)
                .cloned()
                .unwrap_or_default()
        }

        /// Per partition: the offset after the last record in the store.
        fn durable(&self) -> DurableOffsets {
            let mut durable = DurableOffsets::new();
            for value in self.stored() {
                if let Some((topic, partition, offset)) = record_id(&value) {
                    let tp = TopicPartition {
                        topic: Arc::from(topic.as_str()),
                        partition: partition as i32,
                    };
                    let next = durable.entry(tp).or_insert(0);
                    *next = (*next).max(offset + 1);
                }
            }
            durable
        }
    }

    #[async_trait]
    impl Sink for Memory {
        async fn assigned(&mut self, _partitions: &[TopicPartition]) -> ConnectorResult<()> {
            Ok(())
        }

        async fn write(&mut self, records: &[Record]) -> ConnectorResult<()> {
            for record in records {
                let tp = TopicPartition {
                    topic: record.topic.clone(),
                    partition: record.partition.unwrap_or_default(),
                };
                let offset = record.offset.unwrap_or_default();
                let next = self.next.entry(tp).or_insert(0);
                if offset >= *next {
                    *next = offset + 1;
                    self.buffered.push(record.clone());
                }
            }
            Ok(())
        }

        async fn flush(&mut self, mode: FlushMode) -> ConnectorResult<DurableOffsets> {
            if mode == FlushMode::Due {
                let mut durable = self.durable();
                if self.bug.as_deref() == Some("early") {
                    for (tp, next) in &self.next {
                        durable.insert(tp.clone(), *next);
                    }
                }
                return Ok(durable);
            }
            let there = self.durable();
            let mut stores = STORES.lock().expect("stores");
            let store = stores.entry(self.store.clone()).or_default();
            for record in self.buffered.drain(..) {
                let tp = TopicPartition {
                    topic: record.topic.clone(),
                    partition: record.partition.unwrap_or_default(),
                };
                let offset = record.offset.unwrap_or_default();
                let already = there.get(&tp).is_some_and(|next| offset < *next);
                if !already || self.bug.as_deref() == Some("twice") {
                    store.push(record.value.clone().unwrap_or_default());
                }
            }
            drop(stores);
            let mut durable = self.durable();
            durable.retain(|tp, _| self.next.contains_key(tp));
            Ok(durable)
        }

        async fn revoked(&mut self, partitions: &[TopicPartition]) -> ConnectorResult<()> {
            if self.bug.as_deref() != Some("keeps_revoked") {
                self.buffered.retain(|r| {
                    !partitions
                        .iter()
                        .any(|tp| tp.topic == r.topic && Some(tp.partition) == r.partition)
                });
                for tp in partitions {
                    self.next.remove(tp);
                }
            }
            Ok(())
        }

        async fn close(&mut self) -> ConnectorResult<()> {
            Ok(())
        }
    }

    crate::register_plugin!(sink "kit_memory", MemoryConfig,
        summary: "Stores records in memory (the conformance kit's own tests)",
        example: "type: kit_memory\nstore: example\n");

    fn source_kit(bug: &str) -> SourceKit {
        SourceKit::new(
            "kit_counter",
            &format!("type: kit_counter\ncount: 9\n{bug}"),
        )
        .batch(4)
        .invalid(
            "type: kit_counter\ncount: 0\nbug: \"\"\n",
            &["count", "bug"],
        )
        .fault(
            "type: kit_counter\ncount: 3\nbug: unreachable\n",
            ErrorClass::Retriable,
        )
    }

    fn failed(report: &Report) -> Vec<String> {
        report.failed.iter().map(|f| f.check.clone()).collect()
    }

    #[tokio::test]
    async fn a_correct_source_passes_and_each_planted_bug_is_caught() {
        let report = source_kit("").run().await;
        report.assert_passed();
        assert_eq!(report.passed.len(), 10, "{:?}", report.passed);

        let gap = source_kit("bug: gap\n").run().await;
        assert_eq!(
            failed(&gap),
            [
                "resuming after record 0 of 9: no gap, no duplicate",
                "resuming after record 4 of 9: no gap, no duplicate",
                "resuming after record 7 of 9: no gap, no duplicate",
            ]
        );
        let unplaced = source_kit("bug: no_position\n").run().await;
        assert_eq!(
            failed(&unplaced),
            ["every record carries a position of its stream"]
        );
        // A source that never ends nor gives more fails the read, in time.
        let stalled = source_kit("bug: stall\n")
            .patience(std::time::Duration::from_millis(200))
            .run()
            .await;
        assert_eq!(failed(&stalled), ["read the input"]);
        assert!(
            stalled.failed[0].message.contains("no record and no end"),
            "{:?}",
            stalled.failed
        );

        // A fault of the wrong class, and an invalid config whose problem
        // is not reported.
        let wrong = SourceKit::new("kit_counter", "type: kit_counter\ncount: 2\n")
            .invalid("type: kit_counter\ncount: 2\n", &["count"])
            .fault(
                "type: kit_counter\ncount: 3\nbug: unreachable\n",
                ErrorClass::Fatal,
            )
            .run()
            .await;
        assert_eq!(
            failed(&wrong),
            [
                "invalid config 0 reports every problem at once",
                "fault 0 fails as Fatal"
            ]
        );
    }

    fn sink_kit(store: &str, bug: &str) -> SinkKit {
        let name = store.to_owned();
        let read_back: ReadBack = Arc::new(move || {
            let values = STORES
                .lock()
                .expect("stores")
                .get(&name)
                .cloned()
                .unwrap_or_default();
            Box::pin(async move { values })
        });
        SinkKit::new(
            "kit_memory",
            &format!("type: kit_memory\nstore: {store}\n{bug}"),
            read_back,
        )
        .records(10)
    }

    #[tokio::test]
    async fn a_correct_sink_passes_and_each_planted_bug_is_caught() {
        let report = sink_kit("correct", "").run().await;
        report.assert_passed();
        let early = sink_kit("early", "bug: early\n").run().await;
        assert_eq!(
            failed(&early),
            ["flush reports only durable offsets; a retried write takes nothing twice"]
        );
        let twice = sink_kit("twice", "bug: twice\n").run().await;
        assert_eq!(failed(&twice), ["a rerun after a crash adds nothing twice"]);
        // At least once allows what exactly once does not.
        sink_kit("twice-allowed", "bug: twice\n")
            .at_least_once()
            .run()
            .await
            .assert_passed();
        let revoked = sink_kit("revoked", "bug: keeps_revoked\n").run().await;
        assert_eq!(
            failed(&revoked),
            ["a revoked partition's records are dropped"]
        );
    }
}
