//! The source driver: polls a source and produces its records to Kafka.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use super::errors::{BadRecord, ErrorPolicy, Origin};
use super::{PipelineStats, RuntimeError};
use crate::config::pipeline::{PipelineConfig, PipelineMember};
use crate::error::ConnectorError;
use crate::group::{ensure_slot_topic, SlotConsumer, SlotEvent, TaskStatus};
use crate::kafka::{classify, producer_config, KafkaGlueError, LoggingContext};
use crate::offsets::{ensure_offsets_topic, load_positions_and_partition, position_key};
use crate::plugin::{BuildContext, Outcome, Poll, Source, SourceConfig};
use crate::record::{Record, SourcePosition};
use crate::retrying;
use crate::runtime::retry::Backoff;

/// Most records awaiting Kafka's acknowledgement before the driver waits:
/// the back-pressure between the source and the producer.
const MAX_IN_FLIGHT: usize = 200_000;

/// How long a transaction operation (init, commit, abort) may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the source driver stopped polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEnd {
    /// The source reported the end of its input.
    Exhausted,
    /// Shutdown was requested.
    Stopped,
}

/// One stream of a source task: a split source's stream, or the whole
/// source when it does not split.
#[derive(Debug)]
pub struct PlannedStream {
    /// Its source partition (`None`: the unsplit source, resumed from the
    /// last stored position whatever its partition).
    pub partition: Option<serde_json::Value>,
    /// Its own config (`None`: the pipeline's source config).
    pub config: Option<Box<dyn SourceConfig>>,
}

/// The streams of a pipeline's source spread over its tasks: task `i` reads
/// `plan[i]`, one stream after the other. A source that does not split is
/// one task of one stream; a split one gets `min(streams, max_tasks)` tasks,
/// the streams dealt round robin in the order the source listed them.
pub fn plan_tasks(pipeline: &PipelineConfig) -> Result<Vec<Vec<PlannedStream>>, RuntimeError> {
    let Some(instance) = &pipeline.source else {
        return Ok(Vec::new());
    };
    let ctx = build_context(pipeline, "source");
    let streams = instance
        .config
        .split(&ctx)
        .map_err(|error| RuntimeError::Source {
            pipeline: pipeline.name.clone(),
            source_type: instance.type_name,
            error,
        })?;
    let Some(streams) = streams else {
        return Ok(vec![vec![PlannedStream {
            partition: None,
            config: None,
        }]]);
    };
    let tasks = streams.len().min(instance.max_tasks.max(1)).max(1);
    let mut plan: Vec<Vec<PlannedStream>> = (0..tasks).map(|_| Vec::new()).collect();
    for (i, stream) in streams.into_iter().enumerate() {
        plan[i % tasks].push(PlannedStream {
            partition: Some(stream.partition),
            config: Some(stream.config),
        });
    }
    Ok(plan)
}

/// Runs every task of the pipeline's source side by side (see
/// [`plan_tasks`]) until each has exhausted its streams or `stop`; a failed
/// task stops the others.
pub async fn run_source(
    pipeline: &Arc<PipelineConfig>,
    stats: &Arc<PipelineStats>,
    policy: &Arc<ErrorPolicy>,
    stop: &CancellationToken,
) -> Result<SourceEnd, RuntimeError> {
    if pipeline.source.is_none() {
        return Ok(SourceEnd::Exhausted);
    }
    if let Some(member) = &pipeline.member {
        return run_group_tasks(pipeline, member, stats, policy, stop).await;
    }
    let plan = plan_tasks(pipeline)?;
    let single = plan.len() == 1 && plan[0].len() == 1;
    let stop = stop.child_token();
    // Each task on its own Tokio task: a task at `rate: max` seldom waits.
    let tasks = plan.into_iter().enumerate().map(|(index, streams)| {
        let (pipeline, stats, policy, stop) = (
            pipeline.clone(),
            stats.clone(),
            policy.clone(),
            stop.clone(),
        );
        let name = pipeline.name.clone();
        let task = tokio::spawn(async move {
            let result = run_task(&pipeline, index, streams, single, &stats, &policy, &stop).await;
            if result.is_err() {
                stop.cancel();
            }
            result
        });
        async move {
            task.await.unwrap_or_else(|e| {
                Err(RuntimeError::Task {
                    pipeline: name,
                    message: e.to_string(),
                })
            })
        }
    });
    let mut end = SourceEnd::Exhausted;
    let mut first_error = None;
    for result in futures::future::join_all(tasks).await {
        match result {
            Ok(SourceEnd::Exhausted) => {}
            Ok(SourceEnd::Stopped) => end = SourceEnd::Stopped,
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(end), Err)
}

/// Decrements `gauge` when dropped (however the task ends).
fn decrement_on_drop(gauge: metrics::Gauge) -> impl Drop {
    struct Guard(metrics::Gauge);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.decrement(1.0);
        }
    }
    Guard(gauge)
}

/// The status-topic name of source task `task`.
pub fn task_name(task: usize) -> String {
    format!("source-{task}")
}

/// In a worker group: runs the source tasks whose slots Kafka assigns to
/// this worker (see [`crate::group`]), starting and stopping them as the
/// assignment changes, until every task of the pipeline has finished (on
/// whichever worker) or `stop`.
async fn run_group_tasks(
    pipeline: &Arc<PipelineConfig>,
    member: &PipelineMember,
    stats: &Arc<PipelineStats>,
    policy: &Arc<ErrorPolicy>,
    stop: &CancellationToken,
) -> Result<SourceEnd, RuntimeError> {
    let group = &member.group;
    let name = &pipeline.name;
    let tasks = plan_tasks(pipeline)?.len();
    let slot_topic = group.slot_topic(name);
    Backoff::for_pipeline(pipeline)
        .kafka("creating the task-slot topic", || async {
            ensure_slot_topic(&pipeline.kafka, &slot_topic, tasks).await
        })
        .await?;
    let (slots, mut events) =
        SlotConsumer::join(&pipeline.kafka, group, name, Duration::from_secs(60))
            .map_err(RuntimeError::Kafka)?;
    tracing::info!(pipeline = %name, worker = %group.worker_id, tasks, group = %slot_topic, "joined the task-slot group");
    let report = |task: usize, state: &str, assigned: Vec<String>, trace: Option<String>| {
        let mut status = TaskStatus::new(state, &group.worker_id, &member.generation);
        status.assigned = assigned;
        status.trace = trace;
        async move {
            group
                .status
                .report(name, &task_name(task), Some(&status))
                .await
        }
    };
    let finished_everywhere = || {
        let statuses = group.board.tasks(name);
        (0..tasks).all(|task| {
            statuses
                .get(&task_name(task))
                .is_some_and(|s| s.state == "FINISHED" && s.generation == member.generation)
        })
    };
    let mut running: BTreeMap<usize, CancellationToken> = BTreeMap::new();
    let mut joins: tokio::task::JoinSet<(usize, Result<SourceEnd, RuntimeError>)> =
        tokio::task::JoinSet::new();
    let outcome: Result<SourceEnd, RuntimeError> = loop {
        tokio::select! {
            _ = stop.cancelled() => break Ok(SourceEnd::Stopped),
            event = events.recv() => match event {
                None => break Ok(SourceEnd::Stopped),
                Some(SlotEvent::Assigned(assigned)) => {
                    let plan = match plan_tasks(pipeline) {
                        Ok(plan) => plan,
                        Err(error) => break Err(error),
                    };
                    let mut plan: Vec<Option<Vec<PlannedStream>>> =
                        plan.into_iter().map(Some).collect();
                    for task in assigned {
                        let Some(streams) = plan.get_mut(task).and_then(Option::take) else {
                            // A slot beyond the tasks of this definition.
                            continue;
                        };
                        let files = streams
                            .iter()
                            .filter_map(|s| s.partition.as_ref().map(|p| p.to_string()))
                            .collect();
                        report(task, "RUNNING", files, None).await;
                        tracing::info!(pipeline = %name, task, worker = %group.worker_id, "source task assigned");
                        let token = stop.child_token();
                        running.insert(task, token.clone());
                        let (pipeline, stats, policy) =
                            (pipeline.clone(), stats.clone(), policy.clone());
                        joins.spawn(async move {
                            let result =
                                run_task(&pipeline, task, streams, false, &stats, &policy, &token)
                                    .await;
                            (task, result)
                        });
                    }
                }
                Some(SlotEvent::Revoked(revoked, done)) => {
                    for task in &revoked {
                        if let Some(token) = running.remove(task) {
                            token.cancel();
                        }
                    }
                    // Wait for the revoked tasks (their positions stored)
                    // before the rebalance hands them to another worker.
                    // Tasks that are not revoked and end meanwhile are
                    // settled after.
                    let mut ended = Vec::new();
                    while joins.len() > running.len() {
                        match joins.join_next().await {
                            Some(Ok((task, result))) if revoked.contains(&task) => {
                                if let Err(error) = &result {
                                    tracing::warn!(pipeline = %name, task, %error, "a revoked source task ended with an error");
                                }
                            }
                            Some(Ok((task, result))) => {
                                running.remove(&task);
                                ended.push((task, result));
                            }
                            Some(Err(error)) => {
                                tracing::warn!(pipeline = %name, %error, "a source task panicked")
                            }
                            None => break,
                        }
                    }
                    tracing::info!(pipeline = %name, tasks = ?revoked, worker = %group.worker_id, "source tasks revoked and stopped");
                    let _ = done.send(());
                    let mut failed = None;
                    for (task, result) in ended {
                        match result {
                            Ok(SourceEnd::Exhausted) => report(task, "FINISHED", Vec::new(), None).await,
                            Ok(SourceEnd::Stopped) => {}
                            Err(error) => {
                                report(task, "FAILED", Vec::new(), Some(error.to_string())).await;
                                failed.get_or_insert(error);
                            }
                        }
                    }
                    if let Some(error) = failed {
                        break Err(error);
                    }
                }
            },
            Some(joined) = joins.join_next(), if !joins.is_empty() => match joined {
                Ok((task, Ok(end))) => {
                    running.remove(&task);
                    if end == SourceEnd::Exhausted {
                        report(task, "FINISHED", Vec::new(), None).await;
                    }
                }
                Ok((task, Err(error))) => {
                    running.remove(&task);
                    report(task, "FAILED", Vec::new(), Some(error.to_string())).await;
                    break Err(error);
                }
                Err(error) => {
                    break Err(RuntimeError::Task {
                        pipeline: name.clone(),
                        message: error.to_string(),
                    })
                }
            },
            _ = group.board.changed(Duration::from_millis(500)) => {
                if running.is_empty() && finished_everywhere() {
                    tracing::info!(pipeline = %name, tasks, "every source task of the group has finished");
                    break Ok(SourceEnd::Exhausted);
                }
            }
        }
    };
    // Stop what still runs, then leave the group (which hands this
    // worker's slots to the others).
    for token in running.values() {
        token.cancel();
    }
    while let Some(joined) = joins.join_next().await {
        if let Ok((task, Err(error))) = joined {
            tracing::warn!(pipeline = %name, task, %error, "a stopped source task ended with an error");
        }
    }
    drop(events);
    if let Some(thread) = slots.leave() {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    outcome
}

/// Source task `task`: builds each of its streams in turn, opens it after
/// its stored position, polls it until end of input (then the next stream)
/// or `stop`, produces every record and waits until Kafka acknowledged all
/// of them. With exactly-once, the task's transactional id
/// (`sluice-<pipeline>-source-<task>`) fences any other copy of the task.
pub async fn run_task(
    pipeline: &PipelineConfig,
    task: usize,
    streams: Vec<PlannedStream>,
    report_progress: bool,
    stats: &PipelineStats,
    policy: &ErrorPolicy,
    stop: &CancellationToken,
) -> Result<SourceEnd, RuntimeError> {
    let Some(instance) = &pipeline.source else {
        return Ok(SourceEnd::Exhausted);
    };
    let fail = |error: ConnectorError| RuntimeError::Source {
        pipeline: pipeline.name.clone(),
        source_type: instance.type_name,
        error,
    };
    let ctx = build_context(pipeline, "source");
    let mut backoff = Backoff::for_pipeline(pipeline);
    let kafka = &pipeline.kafka;
    backoff
        .kafka("creating the offsets topic", || async {
            ensure_offsets_topic(kafka).await
        })
        .await?;
    let mut producer_settings = producer_config(&pipeline.kafka);
    if pipeline.exactly_once {
        // One transactional id per source task: a second copy of the task
        // fences the first when it initialises its transactions.
        producer_settings.set(
            "transactional.id",
            format!("sluice-{}-source-{task}", pipeline.name),
        );
    }
    let producer: FutureProducer<LoggingContext> = producer_settings
        .create_with_context(LoggingContext)
        .map_err(KafkaGlueError::client(&pipeline.kafka, "producer"))
        .map_err(RuntimeError::Kafka)?;
    let mut writer = TopicWriter {
        producer: &producer,
        pipeline,
        in_flight: VecDeque::new(),
        key_buf: Vec::new(),
        value_buf: Vec::new(),
        stats,
        policy,
        acknowledged: BTreeMap::new(),
        sent: BTreeMap::new(),
        offsets_partition: 0,
    };
    let transactional = pipeline.exactly_once;
    if transactional {
        // Fence any other copy of this task (a worker that lost the task
        // without knowing yet) *before* reading the positions: from here on
        // no other copy can commit, so this task's positions are final.
        // (Other tasks' transactions left open in the same partition are
        // waited for: positions are read to the log end, see `offsets`.)
        tokio::task::block_in_place(|| producer.init_transactions(TRANSACTION_TIMEOUT))
            .map_err(|e| writer.produce_error(format!("cannot start a Kafka transaction: {e}")))?;
    }
    // The read waits for transactions left open in the positions partition
    // (see `offsets`): on a thread of its own, so that a stop (a rebalance
    // revoking this task) does not wait for it.
    let loading = backoff.kafka("reading the stored source positions", || {
        let (kafka, name, topic) = (
            kafka.clone(),
            pipeline.name.clone(),
            pipeline.topic.name.clone(),
        );
        async move {
            let offsets_topic = kafka.offsets_topic.clone();
            tokio::task::spawn_blocking(move || {
                load_positions_and_partition(&kafka, &name, Some(&topic))
            })
            .await
            .unwrap_or_else(|e| {
                Err(KafkaGlueError::Topic {
                    topic: offsets_topic,
                    message: format!("reading the stored positions failed: {e}"),
                })
            })
        }
    });
    let (mut stored, offsets_partition) = tokio::select! {
        biased;
        _ = stop.cancelled() => return Ok(SourceEnd::Stopped),
        loaded = loading => loaded?,
    };
    writer.offsets_partition = offsets_partition;
    let mut streams = streams.into_iter();
    // Opens the next stream, if any, after its stored position.
    let mut next_stream =
        async |backoff: &mut Backoff| -> Result<Option<Box<dyn Source>>, RuntimeError> {
            let Some(stream) = streams.next() else {
                return Ok(None);
            };
            let config: &dyn SourceConfig = stream.config.as_deref().unwrap_or(&*instance.config);
            let resume_from = match &stream.partition {
                Some(partition) => stored.remove(&partition.to_string()),
                None => {
                    if stored.len() > 1 {
                        tracing::warn!(pipeline = %pipeline.name, partitions = stored.len(), "several source partitions have stored positions; resuming from the last one");
                    }
                    stored.pop_last().map(|(_, position)| position)
                }
            };
            match &resume_from {
                Some(position) => {
                    tracing::info!(pipeline = %pipeline.name, task, partition = %position.partition, offset = %position.offset, "resuming after the stored source position")
                }
                None => {
                    tracing::info!(pipeline = %pipeline.name, task, partition = ?stream.partition, "no stored source position; starting from the beginning")
                }
            }
            let mut source: Box<dyn Source> =
                retrying!(backoff, "building the source", config.build(&ctx)).map_err(fail)?;
            retrying!(
                backoff,
                "opening the source",
                source.open(resume_from.clone())
            )
            .map_err(fail)?;
            Ok(Some(source))
        };
    let Some(mut source) = next_stream(&mut backoff).await? else {
        return Ok(SourceEnd::Exhausted);
    };
    if transactional {
        tokio::task::block_in_place(|| producer.begin_transaction())
            .map_err(|e| writer.produce_error(format!("cannot begin a Kafka transaction: {e}")))?;
    }
    let task_records = metrics::counter!(
        "sluice_source_task_records_polled_total",
        "pipeline" => pipeline.name.clone(),
        "task" => task_name(task),
    );
    let running =
        metrics::gauge!("sluice_source_tasks_running", "pipeline" => pipeline.name.clone());
    running.increment(1.0);
    let _running = decrement_on_drop(running);

    let mut last_store = tokio::time::Instant::now();

    let mut chain =
        super::build_chain(&instance.transforms, &pipeline.predicates).map_err(|message| {
            RuntimeError::BuildTransforms {
                pipeline: pipeline.name.clone(),
                message,
            }
        })?;
    // Values a source gives as JSON text go to Kafka as they are, unless a
    // transform has to see them or the topic writes values another way.
    let decode_values =
        !chain.is_empty() || pipeline.topic.value_converter != crate::convert::Converter::Json;
    let result: Result<SourceEnd, RuntimeError> = async {
        loop {
            let poll = tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(SourceEnd::Stopped),
                poll = async { retrying!(backoff, "polling the source", source.poll(pipeline.runtime.batch_size)) } => poll,
            };
            let poll = match poll {
                Ok(poll) => poll,
                Err(ConnectorError::BadRecord(bad)) => {
                    let crate::error::BadRecord { failure, raw, position, .. } = *bad;
                    let message = failure.to_string();
                    let bad = BadRecord {
                        stage: "source",
                        class: instance.type_name,
                        message: message.clone(),
                        key: None,
                        value: raw.as_deref(),
                        origin: Origin::Source(position.as_ref()),
                    };
                    policy.handle(bad, fail(ConnectorError::fatal(message))).await?;
                    continue;
                }
                Err(error) => return Err(fail(error)),
            };
            match poll {
                Poll::End => {
                    if report_progress {
                        stats.set_progress(source.progress());
                    }
                    if let Err(error) = source.close().await {
                        tracing::warn!(pipeline = %pipeline.name, task, %error, "closing the source failed");
                    }
                    match next_stream(&mut backoff).await? {
                        Some(next) => source = next,
                        None => return Ok(SourceEnd::Exhausted),
                    }
                }
                Poll::Records(records) => {
                    stats.add_polled(records.len() as u64);
                    task_records.increment(records.len() as u64);
                    if report_progress {
                        stats.set_progress(source.progress());
                    }
                    stats.queue_depth(producer.in_flight_count());
                    for mut record in records {
                        if decode_values {
                            if let Err(error) = record.decode_value() {
                                let message = format!(
                                    "the source gave the record {} a value that is not valid JSON: {error}",
                                    crate::transform::location_of(&record)
                                );
                                let bad = BadRecord {
                                    stage: "convert",
                                    class: "json",
                                    message: message.clone(),
                                    key: None,
                                    value: record.encoded_value.as_deref(),
                                    origin: Origin::Source(record.position.as_ref()),
                                };
                                policy.handle(bad, fail(ConnectorError::fatal(message))).await?;
                                continue;
                            }
                        }
                        let outcome = match chain.apply(&mut record) {
                            Ok(outcome) => outcome,
                            Err(failure) => {
                                // The dead letter holds the value as the failing step saw it.
                                let value = record.value.as_ref().map(|v| serde_json::to_vec(v).unwrap_or_default());
                                let bad = BadRecord {
                                    stage: "transform",
                                    class: failure.type_name,
                                    message: failure.to_string(),
                                    key: None,
                                    value: value.as_deref(),
                                    origin: Origin::Source(record.position.as_ref()),
                                };
                                let error = RuntimeError::Transform {
                                    pipeline: pipeline.name.clone(),
                                    stage: "source".to_owned(),
                                    failure: Box::new(failure),
                                };
                                policy.handle(bad, error).await?;
                                continue;
                            }
                        };
                        match outcome {
                            Outcome::Keep => writer.send(record).await?,
                            Outcome::Drop => {
                                stats.add_dropped(1);
                            }
                        }
                    }
                    writer.reap_ready()?;
                    if transactional {
                        writer.commit_transaction().await?;
                    } else if last_store.elapsed() >= pipeline.runtime.flush_interval.0 {
                        writer.store_positions().await?;
                        last_store = tokio::time::Instant::now();
                    }
                    // Let the other tasks of this worker thread run: a source at
                    // `rate: max` may never have to wait.
                    tokio::task::yield_now().await;
                }
            }
        }
    }
    .await;
    // Whatever stopped the loop, everything already handed to the producer is
    // waited for, so that the sinks can drain it.
    let mut acknowledged = writer.wait_all().await;
    let stored = if transactional {
        // Records sent since the last commit (a stop between two polls sends
        // none) are committed with their position, or aborted on error.
        match &acknowledged {
            Ok(()) => writer.commit_transaction().await,
            Err(_) => {
                tokio::task::block_in_place(|| producer.abort_transaction(TRANSACTION_TIMEOUT))
                    .map_err(|e| {
                        writer.produce_error(format!("cannot abort the Kafka transaction: {e}"))
                    })
            }
        }
    } else {
        writer.store_positions().await
    };
    if let Err(error) = stored {
        acknowledged = acknowledged.and(Err(error));
    }
    if let Err(error) = source.close().await {
        tracing::warn!(pipeline = %pipeline.name, %error, "closing the source failed");
    }
    let end = result?;
    acknowledged?;
    tracing::info!(pipeline = %pipeline.name, task, ?end, produced = stats.produced.load(Ordering::Relaxed), "source task finished");
    Ok(end)
}

pub(super) fn build_context(pipeline: &PipelineConfig, name: &str) -> BuildContext {
    BuildContext {
        pipeline: pipeline.name.as_str().into(),
        name: name.into(),
        base_dir: pipeline
            .file
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf(),
        topic: pipeline.topic.name.as_str().into(),
    }
}

/// Produces records and keeps their delivery futures, in order.
struct TopicWriter<'a> {
    producer: &'a FutureProducer<LoggingContext>,
    pipeline: &'a PipelineConfig,
    /// Deliveries in send order, with the position of their record.
    in_flight: VecDeque<(DeliveryFuture, Option<SourcePosition>)>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    stats: &'a PipelineStats,
    policy: &'a ErrorPolicy,
    /// Per source partition, the position of the last record Kafka
    /// acknowledged with every record before it; not yet stored.
    acknowledged: BTreeMap<String, SourcePosition>,
    /// Per source partition, the position of the last record sent in the
    /// open transaction (exactly-once only).
    sent: BTreeMap<String, SourcePosition>,
    /// The partition of the offsets topic for this pipeline's positions
    /// ([`crate::offsets::positions_partition`]).
    offsets_partition: i32,
}

impl TopicWriter<'_> {
    async fn send(&mut self, mut record: Record) -> Result<(), RuntimeError> {
        let position = record.position.take();
        if self.pipeline.exactly_once {
            if let Some(position) = &position {
                self.sent
                    .insert(position.partition.to_string(), position.clone());
            }
        }
        let topic = &self.pipeline.topic;
        if let Some(key) = &record.key {
            topic
                .key_converter
                .encode_into(key, &mut self.key_buf)
                .map_err(|e| self.convert_error(&record, "key", e))?;
        }
        if let (None, Some(value)) = (&record.encoded_value, &record.value) {
            topic
                .value_converter
                .encode_into(value, &mut self.value_buf)
                .map_err(|e| self.convert_error(&record, "value", e))?;
        }
        let headers = (!record.headers.is_empty()).then(|| {
            record
                .headers
                .iter()
                .fold(OwnedHeaders::new(), |headers, (key, value)| {
                    headers.insert(Header {
                        key,
                        value: value.as_deref(),
                    })
                })
        });
        loop {
            let mut message = FutureRecord::<[u8], [u8]>::to(&topic.name);
            if record.key.is_some() {
                message = message.key(&self.key_buf);
            }
            if let Some(encoded) = &record.encoded_value {
                message = message.payload(encoded);
            } else if record.value.is_some() {
                message = message.payload(&self.value_buf);
            }
            if let Some(ts) = record.timestamp {
                message = message.timestamp(ts);
            }
            if let Some(headers) = &headers {
                message = message.headers(headers.clone());
            }
            match self.producer.send_result(message) {
                Ok(delivery) => {
                    self.in_flight.push_back((delivery, position));
                    if self.in_flight.len() >= MAX_IN_FLIGHT {
                        self.wait_oldest().await?;
                    }
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // The producer's queue is full: wait for Kafka to acknowledge something.
                    if self.in_flight.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        self.wait_oldest().await?;
                    }
                }
                Err((error, _)) if is_record_rejection(&error) => {
                    return self.reject(&record, position, error).await;
                }
                Err((error, _)) => return Err(self.produce_error(error.to_string())),
            }
        }
    }

    /// A record the producer refused on its own (too large for
    /// `message.max.bytes`) goes to the error policy; once it is handled, its
    /// position rides on the last record in flight, so that it is stored only
    /// when everything before it is acknowledged.
    async fn reject(
        &mut self,
        record: &Record,
        position: Option<SourcePosition>,
        error: KafkaError,
    ) -> Result<(), RuntimeError> {
        let message = format!(
            "Kafka refused the record {} for topic `{}`: {error}; raise `message.max.bytes` in `kafka.producer` (and the topic's `max.message.bytes`) or drop such records with a transform",
            crate::transform::location_of(record),
            self.pipeline.topic.name
        );
        let bad = BadRecord {
            stage: "produce",
            class: "kafka",
            message: message.clone(),
            key: record.key.is_some().then_some(self.key_buf.as_slice()),
            value: match (&record.encoded_value, &record.value) {
                (Some(encoded), _) => Some(encoded.as_slice()),
                (None, Some(_)) => Some(self.value_buf.as_slice()),
                (None, None) => None,
            },
            origin: Origin::Source(position.as_ref()),
        };
        self.policy.handle(bad, self.produce_error(message)).await?;
        if let Some(position) = position {
            match self.in_flight.back_mut() {
                Some((_, last)) => *last = Some(position),
                None => {
                    self.acknowledged
                        .insert(position.partition.to_string(), position);
                }
            }
        }
        Ok(())
    }

    fn convert_error(
        &self,
        record: &Record,
        part: &str,
        error: crate::convert::ConvertError,
    ) -> RuntimeError {
        RuntimeError::Source {
            pipeline: self.pipeline.name.clone(),
            source_type: self.pipeline.source.as_ref().map_or("", |s| s.type_name),
            error: ConnectorError::fatal(format!(
                "cannot encode the {part} of the record {} for topic `{}`: {error}",
                crate::transform::location_of(record),
                self.pipeline.topic.name
            )),
        }
    }

    fn produce_error(&self, message: String) -> RuntimeError {
        RuntimeError::Produce {
            pipeline: self.pipeline.name.clone(),
            topic: self.pipeline.topic.name.clone(),
            message,
        }
    }

    /// Pops every delivery that already completed, surfacing failures early.
    fn reap_ready(&mut self) -> Result<(), RuntimeError> {
        while let Some((front, _)) = self.in_flight.front_mut() {
            match front.now_or_never() {
                Some(result) => {
                    if let Some((_, position)) = self.in_flight.pop_front() {
                        self.check(result, position)?;
                    }
                }
                None => break,
            }
        }
        Ok(())
    }

    async fn wait_oldest(&mut self) -> Result<(), RuntimeError> {
        if let Some((delivery, position)) = self.in_flight.pop_front() {
            let result = delivery.await;
            self.check(result, position)?;
        }
        Ok(())
    }

    async fn wait_all(&mut self) -> Result<(), RuntimeError> {
        let mut first_error = None;
        while let Some((delivery, position)) = self.in_flight.pop_front() {
            let result = delivery.await;
            // After a failure, later acknowledgements must not move the stored position past it.
            let position = position.filter(|_| first_error.is_none());
            if let Err(error) = self.check(result, position) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Exactly-once: adds the positions of what was sent to the open
    /// transaction, commits it (records and positions become visible
    /// together), and begins the next one.
    async fn commit_transaction(&mut self) -> Result<(), RuntimeError> {
        let offsets_topic = &self.pipeline.kafka.offsets_topic;
        let mut stored = Vec::new();
        for (_, position) in std::mem::take(&mut self.sent) {
            let key = position_key(&self.pipeline.name, &position.partition);
            let value = serde_json::to_vec(&position.offset).unwrap_or_default();
            let delivery = self
                .producer
                .send_result(
                    FutureRecord::to(offsets_topic)
                        .key(&key)
                        .payload(&value)
                        .partition(self.offsets_partition),
                )
                .map_err(|(error, _)| {
                    self.produce_error(format!(
                        "cannot store the source position in `{offsets_topic}`: {error}"
                    ))
                })?;
            // Completed by the commit below.
            stored.push(delivery);
        }
        let producer = self.producer;
        // A commit that timed out (the broker is away) may be called again;
        // one that needs an abort fails the run, and the restart resumes
        // from the last committed position.
        let mut backoff = Backoff::for_pipeline(self.pipeline);
        retrying!(backoff, "committing the Kafka transaction", async {
            tokio::task::block_in_place(|| producer.commit_transaction(TRANSACTION_TIMEOUT))
                .map_err(|e| classify("cannot commit the Kafka transaction", e))
        })
        .map_err(|e| self.produce_error(e.to_string()))?;
        self.wait_all().await?;
        for delivery in stored {
            if !matches!(delivery.await, Ok(Ok(_))) {
                return Err(self.produce_error(format!(
                    "the transaction committed but a position record in `{offsets_topic}` was not acknowledged"
                )));
            }
        }
        self.acknowledged.clear();
        tokio::task::block_in_place(|| producer.begin_transaction())
            .map_err(|e| self.produce_error(format!("cannot begin a Kafka transaction: {e}")))
    }

    /// Stores the acknowledged positions in the offsets topic and waits until
    /// Kafka acknowledged them too.
    async fn store_positions(&mut self) -> Result<(), RuntimeError> {
        let offsets_topic = &self.pipeline.kafka.offsets_topic;
        for (_, position) in std::mem::take(&mut self.acknowledged) {
            let key = position_key(&self.pipeline.name, &position.partition);
            let value = serde_json::to_vec(&position.offset).unwrap_or_default();
            let message = FutureRecord::to(offsets_topic)
                .key(&key)
                .payload(&value)
                .partition(self.offsets_partition);
            let delivery = self.producer.send_result(message).map_err(|(error, _)| {
                self.produce_error(format!(
                    "cannot store the source position in `{offsets_topic}`: {error}"
                ))
            })?;
            match delivery.await {
                Ok(Ok(_)) => {
                    tracing::debug!(pipeline = %self.pipeline.name, position = %position.offset, "source position stored")
                }
                Ok(Err((error, _))) => {
                    return Err(self.produce_error(format!(
                        "cannot store the source position in `{offsets_topic}`: {error}"
                    )))
                }
                Err(_) => {
                    return Err(self.produce_error(
                        "the producer shut down before storing the source position".to_owned(),
                    ))
                }
            }
        }
        Ok(())
    }

    fn check(
        &mut self,
        result: Result<
            rdkafka::producer::future_producer::OwnedDeliveryResult,
            futures::channel::oneshot::Canceled,
        >,
        position: Option<SourcePosition>,
    ) -> Result<(), RuntimeError> {
        match result {
            Ok(Ok(_)) => {
                self.stats.add_produced(1);
                if let Some(position) = position {
                    self.acknowledged
                        .insert(position.partition.to_string(), position);
                }
                Ok(())
            }
            Ok(Err((error, _))) => {
                Err(self.produce_error(format!("Kafka did not acknowledge a record: {error}")))
            }
            Err(_) => Err(self
                .produce_error("the producer shut down before acknowledging a record".to_owned())),
        }
    }
}

/// Whether the producer refused one record for what it is (its size), not
/// because of the producer's or the cluster's state.
fn is_record_rejection(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize)
    )
}

impl Drop for TopicWriter<'_> {
    fn drop(&mut self) {
        if !self.in_flight.is_empty() {
            let _ = self.producer.flush(Duration::from_secs(5));
        }
    }
}
