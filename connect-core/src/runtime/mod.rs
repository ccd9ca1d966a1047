//! Runs pipelines: one source driver and one driver per sink, coordinated so
//! that a finite or stopped source is drained through every sink before exit.

pub mod errors;
pub mod retry;
pub mod sink;
pub mod source;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use std::collections::BTreeMap;

use crate::config::pipeline::{PipelineConfig, PredicateSpec, TransformSpec};
use crate::error::ConnectorError;
use crate::kafka::{ensure_topic, KafkaGlueError};
use crate::transform::{TransformChain, TransformFailure, TransformStep};

/// A pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Kafka could not be reached or set up.
    #[error(transparent)]
    Kafka(#[from] KafkaGlueError),
    /// The source failed.
    #[error("pipeline `{pipeline}`: source `{source_type}`: {error}")]
    Source {
        /// Pipeline name.
        pipeline: String,
        /// Source type.
        source_type: &'static str,
        /// The failure.
        error: ConnectorError,
    },
    /// Records could not be produced.
    #[error("pipeline `{pipeline}`: producing to topic `{topic}`: {message}")]
    Produce {
        /// Pipeline name.
        pipeline: String,
        /// Topic.
        topic: String,
        /// What failed.
        message: String,
    },
    /// A sink failed.
    #[error("pipeline `{pipeline}`: sink `{sink}` ({sink_type}): {error}")]
    Sink {
        /// Pipeline name.
        pipeline: String,
        /// Sink name.
        sink: String,
        /// Sink type.
        sink_type: &'static str,
        /// The failure.
        error: ConnectorError,
    },
    /// Consuming or committing failed.
    #[error("pipeline `{pipeline}`: sink `{sink}`: {message}")]
    Consume {
        /// Pipeline name.
        pipeline: String,
        /// Sink name.
        sink: String,
        /// What failed.
        message: String,
    },
    /// A record read from Kafka does not decode with the topic's converters.
    #[error("pipeline `{pipeline}`: sink `{sink}`: record at {topic}/{partition} offset {offset} does not decode: {message}")]
    Decode {
        /// Pipeline name.
        pipeline: String,
        /// Sink name.
        sink: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// What is wrong.
        message: String,
    },
    /// A transform failed on a record.
    #[error("pipeline `{pipeline}`: {stage}: {failure}")]
    Transform {
        /// Pipeline name.
        pipeline: String,
        /// `source` or `sink <name>`.
        stage: String,
        /// Which step, on which record, and why.
        failure: Box<TransformFailure>,
    },
    /// A transform chain could not be built.
    #[error("pipeline `{pipeline}`: {message}")]
    BuildTransforms {
        /// Pipeline name.
        pipeline: String,
        /// What failed.
        message: String,
    },
    /// The error policy stopped the pipeline on a bad record (`tolerance: none`).
    #[error(transparent)]
    Rejected(Box<RuntimeError>),
    /// A driver task panicked or was cancelled.
    #[error("pipeline `{pipeline}`: a driver task ended abnormally: {message}")]
    Task {
        /// Pipeline name.
        pipeline: String,
        /// What happened.
        message: String,
    },
}

impl RuntimeError {
    /// Whether running the pipeline again may get past this error: Kafka or
    /// S3 away for longer than `retry_timeout`, a failed transaction, a
    /// crashed driver. A bad record under `tolerance: none`, a failing
    /// transform, bad settings or credentials fail the same way every time,
    /// so they stop the pipeline for good.
    pub fn is_restartable(&self) -> bool {
        match self {
            Self::Kafka(error) => error.is_transient(),
            Self::Source { error, .. } | Self::Sink { error, .. } => error.is_retriable(),
            Self::Produce { .. } | Self::Consume { .. } | Self::Task { .. } => true,
            Self::Decode { .. }
            | Self::Transform { .. }
            | Self::BuildTransforms { .. }
            | Self::Rejected(_) => false,
        }
    }
}

/// Counters of one pipeline run, also exported as Prometheus metrics
/// (`sluice_source_records_polled_total`, `sluice_source_records_dropped_total`,
/// `sluice_records_produced_total`, `sluice_producer_queue_messages`; label `pipeline`).
#[derive(Debug)]
pub struct PipelineStats {
    /// Records returned by the source.
    pub polled: AtomicU64,
    /// Source records dropped by the source's transforms.
    pub dropped: AtomicU64,
    /// Records acknowledged by Kafka.
    pub produced: AtomicU64,
    /// Source progress (`done` of `total`; total 0 when unknown).
    pub progress_done: AtomicU64,
    /// See `progress_done`.
    pub progress_total: AtomicU64,
    polled_total: metrics::Counter,
    dropped_total: metrics::Counter,
    produced_total: metrics::Counter,
    queue: metrics::Gauge,
}

impl PipelineStats {
    /// Counters of `pipeline`.
    pub fn new(pipeline: &str) -> Self {
        let labels = [("pipeline", pipeline.to_owned())];
        Self {
            polled: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            produced: AtomicU64::new(0),
            progress_done: AtomicU64::new(0),
            progress_total: AtomicU64::new(0),
            polled_total: metrics::counter!("sluice_source_records_polled_total", &labels),
            dropped_total: metrics::counter!("sluice_source_records_dropped_total", &labels),
            produced_total: metrics::counter!("sluice_records_produced_total", &labels),
            queue: metrics::gauge!("sluice_producer_queue_messages", &labels),
        }
    }

    /// Counts records returned by the source.
    pub fn add_polled(&self, n: u64) {
        self.polled.fetch_add(n, Ordering::Relaxed);
        self.polled_total.increment(n);
    }

    /// Counts records dropped by the source's transforms.
    pub fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.dropped_total.increment(n);
    }

    /// Counts records acknowledged by Kafka.
    pub fn add_produced(&self, n: u64) {
        self.produced.fetch_add(n, Ordering::Relaxed);
        self.produced_total.increment(n);
    }

    /// Records how far the source has got.
    pub fn set_progress(&self, progress: Option<crate::plugin::SourceProgress>) {
        if let Some(progress) = progress {
            self.progress_done.store(progress.done, Ordering::Relaxed);
            self.progress_total.store(progress.total, Ordering::Relaxed);
        }
    }

    /// Records the producer's queue depth (sent, not yet acknowledged).
    pub fn queue_depth(&self, messages: i32) {
        self.queue.set(f64::from(messages));
    }
}

/// Builds the transform chain of a source or sink from its specs.
pub fn build_chain(
    specs: &[TransformSpec],
    predicates: &BTreeMap<String, PredicateSpec>,
) -> Result<TransformChain, String> {
    let mut steps = Vec::with_capacity(specs.len());
    for spec in specs {
        let transform = spec.config.build().map_err(|e| {
            format!(
                "{}: cannot build transform `{}`: {e}",
                spec.path, spec.type_name
            )
        })?;
        let predicate = match &spec.predicate {
            None => None,
            Some(name) => {
                let predicate = predicates
                    .get(name)
                    .ok_or_else(|| format!("{}: predicate `{name}` is not defined", spec.path))?
                    .config
                    .build()
                    .map_err(|e| format!("{}: cannot build predicate `{name}`: {e}", spec.path))?;
                Some((name.clone(), predicate))
            }
        };
        steps.push(TransformStep {
            path: spec.path.clone(),
            type_name: spec.type_name,
            transform,
            predicate,
            negate: spec.negate,
        });
    }
    Ok(TransformChain::new(steps))
}

/// What the sinks of a pipeline should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkDirective {
    /// Keep consuming.
    Run,
    /// The source is done: consume up to the topic's current end, flush, commit, stop.
    DrainToEnd,
    /// Flush what was read, commit, stop.
    StopNow,
}

/// What one sink did during a run.
#[derive(Debug, Clone)]
pub struct SinkReport {
    /// Sink name.
    pub name: String,
    /// Sink type.
    pub type_name: &'static str,
    /// Records read from Kafka.
    pub consumed: u64,
    /// Records dropped by the sink's transforms.
    pub dropped: u64,
    /// Records made durable.
    pub records: u64,
    /// Objects or files written.
    pub objects: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// What one pipeline did during a run.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    /// Pipeline name.
    pub name: String,
    /// Topic.
    pub topic: String,
    /// Source type, if the pipeline has a source.
    pub source_type: Option<&'static str>,
    /// Records read from the source.
    pub polled: u64,
    /// Source records dropped by the source's transforms.
    pub dropped: u64,
    /// Bad records skipped under `tolerance: all`, in every stage.
    pub skipped: u64,
    /// Records acknowledged by Kafka.
    pub produced: u64,
    /// Per sink.
    pub sinks: Vec<SinkReport>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// How many times the pipeline was restarted after a failure; the
    /// counters above are those of the last run.
    pub restarts: u32,
}

/// Runs one pipeline until its finite source is exhausted and drained through
/// every sink, or until `shutdown` (then: stop the source, wait for Kafka's
/// acknowledgements, drain the sinks up to what was produced, commit).
pub async fn run_pipeline(
    pipeline: Arc<PipelineConfig>,
    shutdown: CancellationToken,
    status: Option<&watch::Sender<PipelineStatus>>,
) -> Result<PipelineReport, RuntimeError> {
    let started = Instant::now();
    retry::Backoff::for_pipeline(&pipeline)
        .kafka("creating the topic", || async {
            ensure_topic(&pipeline.kafka, &pipeline.topic, Duration::from_secs(30)).await
        })
        .await?;

    let stats = Arc::new(PipelineStats::new(&pipeline.name));
    let sink_stats: Vec<Arc<crate::plugin::SinkStats>> = pipeline
        .sinks
        .iter()
        .map(|sink| Arc::new(crate::plugin::SinkStats::new(&pipeline.name, &sink.name)))
        .collect();
    if let Some(status) = status {
        let run = Arc::new(RunStats {
            pipeline: stats.clone(),
            sinks: pipeline
                .sinks
                .iter()
                .map(|s| s.name.clone())
                .zip(sink_stats.iter().cloned())
                .collect(),
        });
        status.send_modify(|s| s.run = Some(run));
    }
    let policy = Arc::new(errors::ErrorPolicy::new(&pipeline).await?);
    let (directive_tx, directive_rx) = watch::channel(SinkDirective::Run);
    // `stop` ends the source: on shutdown, or when a sink fails (then the
    // other sinks flush and commit what they have, and the run fails).
    let stop = shutdown.child_token();
    let sink_failed = Arc::new(AtomicBool::new(false));
    let task_error = |pipeline: &str, error: tokio::task::JoinError| RuntimeError::Task {
        pipeline: pipeline.to_owned(),
        message: error.to_string(),
    };
    // Each driver is its own task so that a busy source never starves the sinks.
    let sinks = (0..pipeline.sinks.len()).map(|index| {
        let (rx, stop, sink_failed, pipeline, policy, sink_stats) = (
            directive_rx.clone(),
            stop.clone(),
            sink_failed.clone(),
            pipeline.clone(),
            policy.clone(),
            sink_stats[index].clone(),
        );
        let name = pipeline.name.clone();
        let task = tokio::spawn(async move {
            let result =
                sink::run_sink(&pipeline, &pipeline.sinks[index], &policy, rx, sink_stats).await;
            if result.is_err() {
                sink_failed.store(true, Ordering::SeqCst);
                stop.cancel();
            }
            result
        });
        async move { task.await.unwrap_or_else(|e| Err(task_error(&name, e))) }
    });
    let sinks = futures::future::join_all(sinks);

    let coordinator = async {
        let result = if pipeline.source.is_some() {
            let (pipeline, stats, stop, policy) = (
                pipeline.clone(),
                stats.clone(),
                stop.clone(),
                policy.clone(),
            );
            let name = pipeline.name.clone();
            tokio::spawn(async move {
                source::run_source(&pipeline, &stats, &policy, &stop)
                    .await
                    .map(|_| ())
            })
            .await
            .unwrap_or_else(|e| Err(task_error(&name, e)))
        } else {
            stop.cancelled().await;
            Ok(())
        };
        // Whatever stopped the source (end of input, a signal, a bad row),
        // what Kafka acknowledged is drained through the sinks, so nothing
        // produced is left behind; only a failed sink stops them at once.
        let directive = if sink_failed.load(Ordering::SeqCst) || pipeline.source.is_none() {
            SinkDirective::StopNow
        } else {
            SinkDirective::DrainToEnd
        };
        let _ = directive_tx.send(directive);
        result
    };
    let (source_result, sink_results) = tokio::join!(coordinator, sinks);
    let mut reports = Vec::new();
    let mut first_error = source_result.err();
    for result in sink_results {
        match result {
            Ok(report) => reports.push(report),
            Err(error) => {
                tracing::error!(pipeline = %pipeline.name, %error, "sink failed");
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    Ok(PipelineReport {
        name: pipeline.name.clone(),
        topic: pipeline.topic.name.clone(),
        source_type: pipeline.source.as_ref().map(|s| s.type_name),
        polled: stats.polled.load(Ordering::Relaxed),
        dropped: stats.dropped.load(Ordering::Relaxed),
        skipped: policy.skipped.load(Ordering::Relaxed),
        produced: stats.produced.load(Ordering::Relaxed),
        sinks: reports,
        elapsed: started.elapsed(),
        restarts: 0,
    })
}

/// Where a pipeline is in its life, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineState {
    /// Running (or starting).
    Running,
    /// Failed with a restartable error; waiting before the next run.
    Restarting,
    /// Stopped by an error that a restart cannot fix, or out of restarts.
    Failed,
    /// Its finite source was exhausted and drained, or it was shut down.
    Finished,
}

impl PipelineState {
    /// The state as Kafka Connect spells it (`RUNNING`, `RESTARTING`, `FAILED`, `FINISHED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Restarting => "RESTARTING",
            Self::Failed => "FAILED",
            Self::Finished => "FINISHED",
        }
    }
}

/// A pipeline's state, restarts so far and last error, published by the
/// supervisor for whoever watches (the run's progress display, the worker's
/// REST API).
#[derive(Debug, Clone)]
pub struct PipelineStatus {
    /// Current state.
    pub state: PipelineState,
    /// Restarts after failures so far.
    pub restarts: u32,
    /// The error of the last failed run, if any.
    pub last_error: Option<String>,
    /// The live counters of the current run, once it has started.
    pub run: Option<Arc<RunStats>>,
}

impl Default for PipelineStatus {
    fn default() -> Self {
        Self {
            state: PipelineState::Running,
            restarts: 0,
            last_error: None,
            run: None,
        }
    }
}

/// The live counters of one run: the source side and each sink.
#[derive(Debug)]
pub struct RunStats {
    /// Source and producer counters.
    pub pipeline: Arc<PipelineStats>,
    /// Per sink (name, counters).
    pub sinks: Vec<(String, Arc<crate::plugin::SinkStats>)>,
}

/// Runs a pipeline and restarts it when it fails with a restartable error
/// (see [`RuntimeError::is_restartable`]): after `restart_backoff`, doubling
/// with jitter up to `restart_backoff_max`, at most `restart_attempts` times
/// in a row. A run that lasted longer than `restart_backoff_max` before
/// failing counts as recovered: the count and the back-off start afresh.
/// Every change of state is logged and published on `status`.
pub async fn run_supervised(
    pipeline: Arc<PipelineConfig>,
    shutdown: CancellationToken,
    status: watch::Sender<PipelineStatus>,
) -> Result<PipelineReport, RuntimeError> {
    let runtime = &pipeline.runtime;
    let mut restarts = 0u32;
    let mut in_a_row = 0u32;
    let mut wait = runtime.restart_backoff.0;
    loop {
        status.send_modify(|s| s.state = PipelineState::Running);
        let started = Instant::now();
        let error = match run_pipeline(pipeline.clone(), shutdown.clone(), Some(&status)).await {
            Ok(mut report) => {
                report.restarts = restarts;
                status.send_modify(|s| s.state = PipelineState::Finished);
                tracing::info!(pipeline = %pipeline.name, state = "FINISHED", restarts, "pipeline finished");
                return Ok(report);
            }
            Err(error) => error,
        };
        if started.elapsed() > runtime.restart_backoff_max.0 {
            in_a_row = 0;
            wait = runtime.restart_backoff.0;
        }
        let message = error.to_string();
        if !error.is_restartable()
            || in_a_row >= runtime.restart_attempts
            || shutdown.is_cancelled()
        {
            status.send_modify(|s| {
                s.state = PipelineState::Failed;
                s.last_error = Some(message.clone());
            });
            let reason = if !error.is_restartable() {
                "a restart cannot fix this error"
            } else if shutdown.is_cancelled() {
                "shutting down"
            } else {
                "out of restart attempts"
            };
            tracing::error!(pipeline = %pipeline.name, state = "FAILED", restarts, reason, error = %message, "pipeline failed");
            return Err(error);
        }
        in_a_row += 1;
        restarts += 1;
        metrics::counter!("sluice_pipeline_restarts_total", "pipeline" => pipeline.name.clone())
            .increment(1);
        let delay = retry::jittered(wait);
        status.send_modify(|s| {
            s.state = PipelineState::Restarting;
            s.restarts = restarts;
            s.last_error = Some(message.clone());
        });
        tracing::warn!(pipeline = %pipeline.name, state = "RESTARTING", attempt = in_a_row, of = runtime.restart_attempts, wait_ms = delay.as_millis() as u64, error = %message, "pipeline failed; restarting it");
        tokio::select! {
            _ = shutdown.cancelled() => {
                status.send_modify(|s| s.state = PipelineState::Failed);
                return Err(error);
            }
            _ = tokio::time::sleep(delay) => {}
        }
        wait = (wait * 2).min(runtime.restart_backoff_max.0);
    }
}

/// Runs several pipelines side by side, each under [`run_supervised`]; when
/// one fails for good the others are shut down gracefully. Returns one
/// result per pipeline, in order.
pub async fn run_pipelines(
    pipelines: Vec<(PipelineConfig, watch::Sender<PipelineStatus>)>,
    shutdown: CancellationToken,
) -> Vec<Result<PipelineReport, RuntimeError>> {
    let all_stop = shutdown.child_token();
    let runs = pipelines.into_iter().map(|(pipeline, status)| {
        let stop = all_stop.clone();
        let pipeline = Arc::new(pipeline);
        async move {
            let result = run_supervised(pipeline.clone(), stop.clone(), status).await;
            if result.is_err() {
                tracing::error!(pipeline = %pipeline.name, "pipeline failed; stopping the others");
                stop.cancel();
            }
            result
        }
    });
    futures::future::join_all(runs).await
}
