//! The sink driver: consumes the pipeline's topic in a consumer group, hands
//! batches to a sink, and commits exactly the offsets the sink reports durable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;

use super::errors::{BadRecord, ErrorPolicy, Origin};
use super::source::build_context;
use super::{RuntimeError, SinkDirective, SinkReport};
use crate::config::pipeline::{PipelineConfig, PluginInstance};
use crate::error::ConnectorError;
use crate::kafka::{
    classify, consumer_config, fetch_record, is_membership_change, KafkaGlueError, RawRecord,
};
use crate::plugin::{DurableOffsets, FlushMode, Outcome, Sink, SinkConfig, SinkStats};
use crate::record::{Record, TopicPartition};
use crate::retrying;
use crate::runtime::retry::Backoff;
use crate::transform::TransformChain;

const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// The consumer group of a sink: `sluice-<pipeline>-<sink>`.
pub fn group_id(pipeline: &str, sink: &str) -> String {
    format!("sluice-{pipeline}-{sink}")
}

/// Assignment changes seen in librdkafka's rebalance callbacks, applied to
/// the sink by the driver loop in the order they happened.
#[derive(Debug)]
enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

#[derive(Default)]
struct SinkConsumerContext {
    events: Mutex<Vec<RebalanceEvent>>,
    /// `pipeline` and `sink` labels of the consumer-lag gauge.
    labels: (String, String),
}

impl ClientContext for SinkConsumerContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::kafka::log_librdkafka(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        crate::kafka::log_client_error(&error, reason);
    }

    /// librdkafka's statistics (every `statistics.interval.ms`): the lag of
    /// each assigned partition becomes `sluice_consumer_lag_records`.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let (pipeline, sink) = &self.labels;
        for (topic, stats) in &statistics.topics {
            for (partition, stats) in &stats.partitions {
                if *partition < 0 || stats.consumer_lag < 0 {
                    continue;
                }
                metrics::gauge!(
                    "sluice_consumer_lag_records",
                    "pipeline" => pipeline.clone(),
                    "sink" => sink.clone(),
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(stats.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for SinkConsumerContext {
    fn rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        crate::kafka::apply_rebalance(self, consumer, err, partitions);
    }

    fn pre_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        if let Rebalance::Revoke(list) = rebalance {
            self.push(RebalanceEvent::Revoked(partitions_of(list)));
        }
    }

    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        if let Rebalance::Assign(list) = rebalance {
            self.push(RebalanceEvent::Assigned(partitions_of(list)));
        }
        if !matches!(rebalance, Rebalance::Error(_)) {
            metrics::counter!(
                "sluice_rebalances_total",
                "pipeline" => self.labels.0.clone(),
                "group" => self.labels.1.clone(),
                "change" => if matches!(rebalance, Rebalance::Assign(_)) { "assign" } else { "revoke" },
            )
            .increment(1);
        }
    }
}

impl SinkConsumerContext {
    fn push(&self, event: RebalanceEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }

    fn take(&self) -> Vec<RebalanceEvent> {
        self.events
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

/// Runs one sink until told to stop (after draining, when the directive says so).
pub async fn run_sink(
    pipeline: &PipelineConfig,
    instance: &PluginInstance<Box<dyn SinkConfig>>,
    policy: &ErrorPolicy,
    mut directives: watch::Receiver<SinkDirective>,
    stats: Arc<SinkStats>,
) -> Result<SinkReport, RuntimeError> {
    let mut driver = SinkDriver::start(pipeline, instance, policy, stats.clone()).await?;
    let outcome = driver.run(&mut directives).await;
    driver.report_status(None).await;
    if let Err(error) = driver.sink.close().await {
        tracing::warn!(pipeline = %pipeline.name, sink = %instance.name, %error, "closing the sink failed");
    }
    let SinkDriver { consumer, .. } = driver;
    close_within(
        consumer,
        CONSUMER_CLOSE_LIMIT,
        &pipeline.name,
        &instance.name,
    )
    .await;
    outcome?;
    Ok(SinkReport {
        name: instance.name.clone(),
        type_name: instance.type_name,
        consumed: driver.consumed,
        dropped: driver.dropped,
        records: stats.records.load(Ordering::Relaxed),
        objects: stats.objects.load(Ordering::Relaxed),
        bytes: stats.bytes.load(Ordering::Relaxed),
    })
}

/// Longest wait for a sink's consumer to leave its group when it is dropped.
const CONSUMER_CLOSE_LIMIT: Duration = Duration::from_secs(30);

/// Drops `consumer` (it leaves the group) on a thread of its own, waiting
/// at most `limit`. rdkafka's drop polls, with no bound, until librdkafka
/// says the consumer closed; a consumer dropped while it was still joining
/// its group was seen never to get there, and hung `sluice run` for good.
/// Past the limit the close goes on in the background and the pipeline
/// moves on: the broker ends the membership when its session times out.
async fn close_within(
    consumer: Arc<StreamConsumer<SinkConsumerContext>>,
    limit: Duration,
    pipeline: &str,
    sink: &str,
) {
    let Some(closed) = crate::kafka::drop_in_background(consumer, "sluice-consumer-close") else {
        tracing::warn!(
            pipeline,
            sink,
            "cannot start a thread to close the Kafka consumer; closed it here"
        );
        return;
    };
    if tokio::time::timeout(limit, closed).await.is_err() {
        tracing::warn!(pipeline, sink, limit = ?limit, "the Kafka consumer did not leave its group in time; the broker will end its membership when its session times out");
    }
}

struct SinkDriver<'a> {
    pipeline: &'a PipelineConfig,
    instance: &'a PluginInstance<Box<dyn SinkConfig>>,
    consumer: Arc<StreamConsumer<SinkConsumerContext>>,
    sink: Box<dyn Sink>,
    topic: Arc<str>,
    assigned: BTreeSet<i32>,
    /// Next offset to read per partition, from the records handed to the sink.
    next_offset: BTreeMap<i32, i64>,
    committed: BTreeMap<i32, i64>,
    batch: Vec<Record>,
    backoff: Backoff,
    consumed: u64,
    chain: TransformChain,
    /// Values go to the sink as the JSON text read from Kafka (see
    /// [`Sink::accepts_encoded_values`]).
    pass_through: bool,
    /// When the sink next has something due ([`Sink::due_at`]), asked after
    /// every write and flush.
    due: Option<std::time::Instant>,
    dropped: u64,
    /// Per partition, the offset after the last record handed to the sink.
    kept_to: BTreeMap<i32, i64>,
    policy: &'a ErrorPolicy,
    metrics: SinkMetrics,
}

/// The sink driver's Prometheus metrics (labels `pipeline`, `sink`).
struct SinkMetrics {
    consumed: metrics::Counter,
    dropped: metrics::Counter,
    batch: metrics::Histogram,
}

impl SinkMetrics {
    fn new(pipeline: &str, sink: &str) -> Self {
        let labels = [("pipeline", pipeline.to_owned()), ("sink", sink.to_owned())];
        Self {
            consumed: metrics::counter!("sluice_sink_records_consumed_total", &labels),
            dropped: metrics::counter!("sluice_sink_records_dropped_total", &labels),
            batch: metrics::histogram!("sluice_sink_batch_records", &labels),
        }
    }
}

impl<'a> SinkDriver<'a> {
    async fn start(
        pipeline: &'a PipelineConfig,
        instance: &'a PluginInstance<Box<dyn SinkConfig>>,
        policy: &'a ErrorPolicy,
        stats: Arc<SinkStats>,
    ) -> Result<SinkDriver<'a>, RuntimeError> {
        let ctx = build_context(pipeline, &instance.name);
        let mut backoff = Backoff::for_pipeline(pipeline);
        let sink = retrying!(
            backoff,
            "building the sink",
            instance.config.build(&ctx, stats.clone())
        )
        .map_err(|error| sink_error(pipeline, instance, error))?;
        let chain =
            super::build_chain(&instance.transforms, &pipeline.predicates).map_err(|message| {
                RuntimeError::BuildTransforms {
                    pipeline: pipeline.name.clone(),
                    message,
                }
            })?;
        let pass_through = chain.is_empty()
            && pipeline.topic.value_converter == crate::convert::Converter::Json
            && sink.accepts_encoded_values();
        let consumer = subscribe(pipeline, instance)?;
        tracing::info!(pass_through, pipeline = %pipeline.name, sink = %instance.name, group = %group_id(&pipeline.name, &instance.name), topic = %pipeline.topic.name, "sink started");
        Ok(SinkDriver {
            pipeline,
            instance,
            consumer,
            sink,
            topic: pipeline.topic.name.as_str().into(),
            assigned: BTreeSet::new(),
            next_offset: BTreeMap::new(),
            committed: BTreeMap::new(),
            batch: Vec::with_capacity(pipeline.runtime.batch_size),
            backoff: Backoff::for_pipeline(pipeline),
            consumed: 0,
            chain,
            pass_through,
            due: None,
            dropped: 0,
            kept_to: BTreeMap::new(),
            policy,
            metrics: SinkMetrics::new(&pipeline.name, &instance.name),
        })
    }

    async fn run(
        &mut self,
        directives: &mut watch::Receiver<SinkDirective>,
    ) -> Result<(), RuntimeError> {
        let mut tick = tokio::time::interval(self.pipeline.runtime.flush_interval.0);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut drain_targets: Option<BTreeMap<i32, i64>> = None;
        loop {
            let directive = *directives.borrow();
            match directive {
                SinkDirective::StopNow => return self.finish().await,
                SinkDirective::DrainToEnd if drain_targets.is_none() => {
                    drain_targets = Some(self.end_offsets().await?);
                }
                _ => {}
            }
            let consumer = self.consumer.clone();
            let due = self.due.map(tokio::time::Instant::from_std);
            let idle = !self.batch.is_empty();
            tokio::select! {
                biased;
                message = consumer.recv() => {
                    let message = match message {
                        Ok(message) => {
                            self.backoff.reset();
                            message
                        }
                        Err(error) if is_consumer_fatal(&error) => {
                            self.replace_consumer(&error).await?;
                            continue;
                        }
                        Err(error) => {
                            // librdkafka reconnects by itself; a broker that stays
                            // away longer than retry_timeout fails the run.
                            let error = classify(format_args!("cannot read from topic `{}`", self.topic), error);
                            self.backoff.retry_or_fail(error, "reading from Kafka").await.map_err(|e| self.consume_error(e.to_string()))?;
                            continue;
                        }
                    };
                    self.apply_rebalances().await?;
                    let decoded = match self.decode(&message) {
                        Ok(decoded) => decoded,
                        Err(error) => {
                            let bad = BadRecord {
                                stage: "convert",
                                class: converter_name(self.pipeline.topic.value_converter),
                                message: error.to_string(),
                                key: message.key(),
                                value: message.payload(),
                                origin: Origin::Kafka { topic: &self.topic, partition: message.partition(), offset: message.offset() },
                            };
                            self.policy.handle(bad, error).await?;
                            None
                        }
                    };
                    if let Some(mut record) = decoded {
                        let outcome = match self.chain.apply(&mut record) {
                            Ok(outcome) => outcome,
                            Err(failure) => {
                                let bad = BadRecord {
                                    stage: "transform",
                                    class: failure.type_name,
                                    message: failure.to_string(),
                                    key: message.key(),
                                    value: message.payload(),
                                    origin: Origin::Kafka { topic: &self.topic, partition: message.partition(), offset: message.offset() },
                                };
                                let error = RuntimeError::Transform {
                                    pipeline: self.pipeline.name.clone(),
                                    stage: format!("sink `{}`", self.instance.name),
                                    failure: Box::new(failure),
                                };
                                self.policy.handle(bad, error).await?;
                                Outcome::Drop
                            }
                        };
                        match outcome {
                            Outcome::Keep => {
                                if let (Some(p), Some(o)) = (record.partition, record.offset) {
                                    self.kept_to.insert(p, o + 1);
                                }
                                self.batch.push(record);
                            }
                            Outcome::Drop => {
                                self.dropped += 1;
                                self.metrics.dropped.increment(1);
                            }
                        }
                    }
                    if self.batch.len() >= self.pipeline.runtime.batch_size {
                        self.write_batch().await?;
                        self.flush_and_commit(FlushMode::Due).await?;
                    }
                }
                // Nothing more to read at once: the sink gets what was read
                // now rather than when the batch fills or the tick comes.
                () = std::future::ready(()), if idle => {
                    self.apply_rebalances().await?;
                    self.write_batch().await?;
                }
                // An object's rotation is due before the next tick.
                () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    self.apply_rebalances().await?;
                    self.write_batch().await?;
                    self.flush_and_commit(FlushMode::Due).await?;
                    if drain_targets.as_ref().is_some_and(|targets| self.caught_up(targets)) {
                        return self.finish().await;
                    }
                }
                _ = tick.tick() => {
                    self.apply_rebalances().await?;
                    self.write_batch().await?;
                    self.flush_and_commit(FlushMode::Due).await?;
                    if let Some(targets) = &drain_targets {
                        if self.caught_up(targets) {
                            return self.finish().await;
                        }
                    }
                }
                changed = directives.changed() => {
                    if changed.is_err() {
                        return self.finish().await;
                    }
                }
            }
        }
    }

    /// Writes and flushes everything, commits, and leaves the group.
    async fn finish(&mut self) -> Result<(), RuntimeError> {
        self.apply_rebalances().await?;
        self.write_batch().await?;
        self.flush_and_commit(FlushMode::All).await?;
        tracing::info!(pipeline = %self.pipeline.name, sink = %self.instance.name, consumed = self.consumed, "sink finished");
        Ok(())
    }

    /// The high watermark of every partition: draining ends when the sink has read up to them.
    async fn end_offsets(&mut self) -> Result<BTreeMap<i32, i64>, RuntimeError> {
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        let read = || -> Result<BTreeMap<i32, i64>, ConnectorError> {
            let metadata = consumer
                .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
                .map_err(|e| {
                    classify(format_args!("cannot read metadata of topic `{topic}`"), e)
                })?;
            let mut ends = BTreeMap::new();
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, partition.id(), METADATA_TIMEOUT)
                    .map_err(|e| {
                        classify(
                            format_args!(
                                "cannot read the end offset of {topic}/{}",
                                partition.id()
                            ),
                            e,
                        )
                    })?;
                if high > low {
                    ends.insert(partition.id(), high);
                }
            }
            Ok(ends)
        };
        let ends = retrying!(self.backoff, "reading the topic's end offsets", async {
            tokio::task::block_in_place(read)
        })
        .map_err(|e| self.consume_error(e.to_string()))?;
        tracing::debug!(topic = %self.topic, ?ends, "draining up to these end offsets");
        Ok(ends)
    }

    /// Whether every partition with data has been read up to its target:
    /// assigned ones by this sink (and nothing left in the batch), the others
    /// by whichever member of the group holds them (their committed offset),
    /// so that a run does not end while a partition is still held by a
    /// member that is gone.
    fn caught_up(&self, targets: &BTreeMap<i32, i64>) -> bool {
        if !self.batch.is_empty() {
            return false;
        }
        let positions = self.consumer.position().ok();
        let unassigned: Vec<i32> = targets
            .keys()
            .copied()
            .filter(|p| !self.assigned.contains(p))
            .collect();
        let group_committed = if unassigned.is_empty() {
            BTreeMap::new()
        } else {
            self.group_committed(&unassigned)
        };
        targets.iter().all(|(p, &target)| {
            if !self.assigned.contains(p) {
                return group_committed.get(p).is_some_and(|&c| c >= target);
            }
            let fetched = positions
                .as_ref()
                .and_then(|list| list.find_partition(&self.topic, *p))
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(-1);
            let read = self
                .next_offset
                .get(p)
                .copied()
                .unwrap_or(-1)
                .max(fetched)
                .max(self.committed.get(p).copied().unwrap_or(-1));
            read >= target
        })
    }

    /// The group's committed offsets of `partitions` (empty on error: not caught up yet).
    fn group_committed(&self, partitions: &[i32]) -> BTreeMap<i32, i64> {
        let mut list = TopicPartitionList::new();
        for &p in partitions {
            list.add_partition(&self.topic, p);
        }
        let consumer = &self.consumer;
        tokio::task::block_in_place(|| consumer.committed_offsets(list, METADATA_TIMEOUT))
            .map(|list| {
                list.elements()
                    .iter()
                    .filter_map(|e| Some((e.partition(), e.offset().to_raw()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// In a worker group: this worker's sink task and its partitions, in
    /// the status topic (`None` state: the task is gone).
    async fn report_status(&mut self, state: Option<&str>) {
        let pipeline: &'a PipelineConfig = self.pipeline;
        let Some(member) = &pipeline.member else {
            return;
        };
        let group = &member.group;
        let task = format!("{}@{}", self.instance.name, group.worker_id);
        let status = state.map(|state| {
            let mut status =
                crate::group::TaskStatus::new(state, &group.worker_id, &member.generation);
            status.assigned = self.assigned.iter().map(|p| p.to_string()).collect();
            status
        });
        group
            .status
            .report(&pipeline.name, &task, status.as_ref())
            .await;
    }

    async fn apply_rebalances(&mut self) -> Result<(), RuntimeError> {
        let events = self.consumer.context().take();
        let changed = !events.is_empty();
        for event in events {
            match event {
                RebalanceEvent::Assigned(partitions) => {
                    tracing::info!(pipeline = %self.pipeline.name, sink = %self.instance.name, ?partitions, "partitions assigned");
                    self.assigned.extend(partitions.iter().copied());
                    self.load_committed(&partitions).await?;
                    let list = self.topic_partitions(&partitions);
                    retrying!(
                        self.backoff,
                        "assigning partitions to the sink",
                        self.sink.assigned(&list)
                    )
                    .map_err(|e| sink_error(self.pipeline, self.instance, e))?;
                }
                RebalanceEvent::Revoked(partitions) => {
                    tracing::info!(pipeline = %self.pipeline.name, sink = %self.instance.name, ?partitions, "partitions revoked");
                    self.revoke(&partitions).await?;
                }
            }
        }
        if changed {
            self.report_status(Some("RUNNING")).await;
        }
        Ok(())
    }

    /// Forgets `partitions`: records read from them and not yet durable are
    /// dropped, to be read again from the committed offsets by their next owner.
    async fn revoke(&mut self, partitions: &[i32]) -> Result<(), RuntimeError> {
        for p in partitions {
            self.assigned.remove(p);
            self.kept_to.remove(p);
            self.next_offset.remove(p);
            self.committed.remove(p);
        }
        self.batch
            .retain(|r| r.partition.is_some_and(|p| !partitions.contains(&p)));
        let list = self.topic_partitions(partitions);
        retrying!(
            self.backoff,
            "revoking partitions from the sink",
            self.sink.revoked(&list)
        )
        .map_err(|e| sink_error(self.pipeline, self.instance, e))
    }

    /// Replaces a consumer that librdkafka declared unusable: its partitions
    /// are revoked from the sink (nothing uncommitted is kept) and a new
    /// member joins the group and reads on from the committed offsets.
    async fn replace_consumer(&mut self, error: &KafkaError) -> Result<(), RuntimeError> {
        tracing::warn!(pipeline = %self.pipeline.name, sink = %self.instance.name, %error, "the Kafka consumer failed; replacing it");
        // Assignment changes of the old consumer no longer matter.
        self.consumer.context().take();
        let partitions: Vec<i32> = self.assigned.iter().copied().collect();
        self.revoke(&partitions).await?;
        let retriable = ConnectorError::retriable(error.to_string());
        self.backoff
            .retry_or_fail(retriable, "replacing the Kafka consumer")
            .await
            .map_err(|e| self.consume_error(e.to_string()))?;
        let old = std::mem::replace(&mut self.consumer, subscribe(self.pipeline, self.instance)?);
        close_within(
            old,
            CONSUMER_CLOSE_LIMIT,
            &self.pipeline.name,
            &self.instance.name,
        )
        .await;
        Ok(())
    }

    /// Remembers the group's committed offsets of newly assigned partitions,
    /// so that a partition with nothing new counts as drained.
    async fn load_committed(&mut self, partitions: &[i32]) -> Result<(), RuntimeError> {
        let mut list = TopicPartitionList::new();
        for &p in partitions {
            list.add_partition(&self.topic, p);
        }
        let consumer = self.consumer.clone();
        let committed = retrying!(self.backoff, "reading committed offsets", async {
            tokio::task::block_in_place(|| {
                consumer
                    .committed_offsets(list.clone(), METADATA_TIMEOUT)
                    .map_err(|e| classify("cannot read committed offsets", e))
            })
        })
        .map_err(|e| self.consume_error(e.to_string()))?;
        for element in committed.elements() {
            if let Some(offset) = element.offset().to_raw().filter(|o| *o >= 0) {
                self.committed.insert(element.partition(), offset);
            }
        }
        Ok(())
    }

    fn topic_partitions(&self, partitions: &[i32]) -> Vec<TopicPartition> {
        partitions
            .iter()
            .map(|&partition| TopicPartition {
                topic: self.topic.clone(),
                partition,
            })
            .collect()
    }

    fn decode(&mut self, message: &BorrowedMessage<'_>) -> Result<Option<Record>, RuntimeError> {
        let partition = message.partition();
        if !self.assigned.contains(&partition) {
            return Ok(None);
        }
        let offset = message.offset();
        // Read, whether it decodes or is skipped as bad.
        self.next_offset.insert(partition, offset + 1);
        self.consumed += 1;
        self.metrics.consumed.increment(1);
        let topic_config = &self.pipeline.topic;
        let decode = |bytes: Option<&[u8]>, converter: crate::convert::Converter, part: &str| {
            bytes
                .map(|b| converter.decode(b))
                .transpose()
                .map_err(|e| RuntimeError::Decode {
                    pipeline: self.pipeline.name.clone(),
                    sink: self.instance.name.clone(),
                    topic: self.topic.to_string(),
                    partition,
                    offset,
                    message: format!("{part}: {e}"),
                })
        };
        let key = decode(message.key(), topic_config.key_converter, "key")?;
        // Pass-through: bytes that are one JSON value on one line go to the
        // sink as they are; anything else is decoded (and a bad value gets
        // the decode error, as without pass-through).
        let (value, encoded_value) = match message.payload() {
            Some(bytes) if self.pass_through && crate::record::is_one_json_line(bytes) => {
                (None, Some(bytes.to_vec()))
            }
            payload => (
                decode(payload, topic_config.value_converter, "value")?,
                None,
            ),
        };
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Record {
            topic: self.topic.clone(),
            partition: Some(partition),
            offset: Some(offset),
            key,
            value,
            encoded_value,
            headers,
            timestamp: message.timestamp().to_millis(),
            position: None,
        }))
    }

    /// Hands the batch to the sink. A record the sink rejects goes to the
    /// error policy (its original bytes read again from Kafka for the dead
    /// letter), and the sink gets the records after it.
    async fn write_batch(&mut self) -> Result<(), RuntimeError> {
        if !self.batch.is_empty() {
            self.metrics.batch.record(self.batch.len() as f64);
        }
        let mut start = 0;
        while start < self.batch.len() {
            let written = retrying!(
                self.backoff,
                "writing to the sink",
                self.sink.write(&self.batch[start..])
            );
            let bad = match written {
                Ok(()) => break,
                Err(ConnectorError::BadRecord(bad)) if bad.record.is_some() => bad,
                Err(error) => return Err(sink_error(self.pipeline, self.instance, error)),
            };
            let index = start + bad.record.unwrap_or(0);
            let Some(record) = self.batch.get(index) else {
                return Err(sink_error(
                    self.pipeline,
                    self.instance,
                    ConnectorError::fatal(format!(
                        "the sink rejected record {index} of a batch of {}: {}",
                        self.batch.len(),
                        bad.failure
                    )),
                ));
            };
            let (partition, offset) = (record.partition.unwrap_or(-1), record.offset.unwrap_or(-1));
            let message = bad.failure.to_string();
            let raw = if self.policy.writes_dead_letters() {
                let (kafka, topic) = (&self.pipeline.kafka, self.topic.clone());
                self.backoff
                    .kafka("reading a rejected record again", || async {
                        tokio::task::block_in_place(|| {
                            fetch_record(kafka, &topic, partition, offset, METADATA_TIMEOUT)
                        })
                    })
                    .await?
            } else {
                RawRecord::default()
            };
            let dead = BadRecord {
                stage: "sink",
                class: self.instance.type_name,
                message,
                key: raw.key.as_deref(),
                value: raw.value.as_deref(),
                origin: Origin::Kafka {
                    topic: &self.topic,
                    partition,
                    offset,
                },
            };
            let error = sink_error(self.pipeline, self.instance, ConnectorError::BadRecord(bad));
            self.policy.handle(dead, error).await?;
            start = index + 1;
        }
        self.batch.clear();
        self.due = self.sink.due_at();
        Ok(())
    }

    async fn flush_and_commit(&mut self, mode: FlushMode) -> Result<(), RuntimeError> {
        let durable: DurableOffsets =
            retrying!(self.backoff, "flushing the sink", self.sink.flush(mode))
                .map_err(|e| sink_error(self.pipeline, self.instance, e))?;
        self.due = self.sink.due_at();
        let mut commit: BTreeMap<i32, i64> = durable
            .into_iter()
            .filter(|(tp, _)| tp.topic == self.topic)
            .map(|(tp, offset)| (tp.partition, offset))
            .collect();
        // Records dropped by transforms after the last record the sink kept
        // are done with too, and so are transaction markers and aborted
        // records the consumer skipped (its position is past them): once
        // everything kept is durable, commit past them. (Other members of a
        // worker group wait for the committed offset to reach the end.)
        let positions: BTreeMap<i32, i64> = self
            .consumer
            .position()
            .map(|list| {
                list.elements_for_topic(&self.topic)
                    .iter()
                    .filter_map(|e| Some((e.partition(), e.offset().to_raw()?)))
                    .filter(|(_, offset)| *offset >= 0)
                    .collect()
            })
            .unwrap_or_default();
        for &partition in &self.assigned {
            let read_to = self
                .next_offset
                .get(&partition)
                .copied()
                .max(positions.get(&partition).copied());
            let Some(read_to) = read_to else { continue };
            if commit.get(&partition) == self.kept_to.get(&partition) {
                let offset = commit.entry(partition).or_insert(read_to);
                *offset = (*offset).max(read_to);
            }
        }
        let mut list = TopicPartitionList::new();
        for (partition, offset) in commit {
            let tp = TopicPartition {
                topic: self.topic.clone(),
                partition,
            };
            let newer = self
                .committed
                .get(&tp.partition)
                .is_none_or(|&c| offset > c);
            if self.assigned.contains(&tp.partition) && newer {
                list.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset))
                    .map_err(|e| {
                        self.consume_error(format!("bad offset {offset} for {tp}: {e}"))
                    })?;
            }
        }
        if list.count() == 0 {
            return Ok(());
        }
        let consumer = self.consumer.clone();
        let committed = retrying!(
            self.backoff,
            "committing offsets",
            async {
                match tokio::task::block_in_place(|| consumer.commit(&list, CommitMode::Sync)) {
                    Ok(()) => Ok(Ok(())),
                    Err(error) if is_consumer_fatal(&error) => Ok(Err(Some(error))),
                    // The partitions moved to another member, which rewrites
                    // the same objects and commits them itself.
                    Err(error) if is_membership_change(&error) => {
                        tracing::warn!(pipeline = %self.pipeline.name, sink = %self.instance.name, %error, "offsets not committed: the group is rebalancing");
                        Ok(Err(None))
                    }
                    Err(error) => Err(classify(format_args!("cannot commit offsets {list:?}"), error)),
                }
            }
        )
        .map_err(|e| self.consume_error(e.to_string()))?;
        match committed {
            Ok(()) => {}
            Err(None) => return Ok(()),
            Err(Some(error)) => return self.replace_consumer(&error).await,
        }
        for element in list.elements() {
            if let Some(offset) = element.offset().to_raw() {
                self.committed.insert(element.partition(), offset);
            }
        }
        tracing::debug!(pipeline = %self.pipeline.name, sink = %self.instance.name, committed = ?self.committed, "offsets committed");
        Ok(())
    }

    fn consume_error(&self, message: String) -> RuntimeError {
        RuntimeError::Consume {
            pipeline: self.pipeline.name.clone(),
            sink: self.instance.name.clone(),
            message,
        }
    }
}

/// A consumer in the sink's group, subscribed to the pipeline's topic.
fn subscribe(
    pipeline: &PipelineConfig,
    instance: &PluginInstance<Box<dyn SinkConfig>>,
) -> Result<Arc<StreamConsumer<SinkConsumerContext>>, RuntimeError> {
    let group = group_id(&pipeline.name, &instance.name);
    let mut settings = consumer_config(&pipeline.kafka, &group);
    if let Some(member) = &pipeline.member {
        // One member per worker of the group: its own static id, and an
        // assignor that moves only the partitions that must move.
        let worker = crate::group::kafka_id(&member.group.worker_id);
        settings
            .set("group.instance.id", format!("{group}-{worker}"))
            .set("client.id", format!("sluice-{worker}"))
            .set("partition.assignment.strategy", "cooperative-sticky")
            // A dead worker's partitions move after the group's session timeout.
            .set(
                "session.timeout.ms",
                member
                    .group
                    .session_timeout
                    .as_millis()
                    .max(6000)
                    .to_string(),
            );
        for (key, value) in &pipeline.kafka.consumer {
            settings.set(key, value);
        }
    }
    if settings.get("statistics.interval.ms").is_none() {
        // Feeds the consumer-lag gauge.
        settings.set("statistics.interval.ms", "5000");
    }
    let context = SinkConsumerContext {
        events: Mutex::default(),
        labels: (pipeline.name.clone(), instance.name.clone()),
    };
    let consumer: StreamConsumer<SinkConsumerContext> = settings
        .create_with_context(context)
        .map_err(KafkaGlueError::client(&pipeline.kafka, "consumer"))
        .map_err(RuntimeError::Kafka)?;
    consumer
        .subscribe(&[&pipeline.topic.name])
        .map_err(|e| RuntimeError::Consume {
            pipeline: pipeline.name.clone(),
            sink: instance.name.clone(),
            message: format!("cannot subscribe to topic `{}`: {e}", pipeline.topic.name),
        })?;
    Ok(Arc::new(consumer))
}

/// Whether the consumer is unusable (librdkafka's fatal errors, such as a
/// static member fenced after a broker restart) and must be replaced.
fn is_consumer_fatal(error: &KafkaError) -> bool {
    matches!(error, KafkaError::MessageConsumptionFatal(_))
        || matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Fatal | RDKafkaErrorCode::FencedInstanceId)
        )
}

fn sink_error(
    pipeline: &PipelineConfig,
    instance: &PluginInstance<Box<dyn SinkConfig>>,
    error: ConnectorError,
) -> RuntimeError {
    RuntimeError::Sink {
        pipeline: pipeline.name.clone(),
        sink: instance.name.clone(),
        sink_type: instance.type_name,
        error,
    }
}

fn converter_name(converter: crate::convert::Converter) -> &'static str {
    match converter {
        crate::convert::Converter::Json => "json",
        crate::convert::Converter::String => "string",
    }
}
