//! Worker groups: several `sluice worker` processes with the same group name
//! share pipelines through Kafka itself — no coordinator of their own.
//!
//! - **Configs** live in the compacted config topic; every worker tails it
//!   ([`tail`]) and applies each record in log order, so a pipeline created
//!   through any worker's REST API runs on all of them.
//! - **Sink tasks** are the members of each sink's consumer group: every
//!   worker runs a member (static id `<group id>-<worker id>`), and Kafka's
//!   cooperative-sticky assignor splits the topic's partitions.
//! - **Source tasks** are the partitions of a per-pipeline *task-slot topic*
//!   (`<group>-tasks-<pipeline>`, one partition per task, never written to):
//!   every worker joins the consumer group `<group>-tasks-<pipeline>` over it
//!   ([`SlotConsumer`]), and runs the tasks whose slots Kafka assigns to it. A
//!   worker that dies stops heartbeating; after the session timeout its
//!   slots go to the others. With cooperative-sticky a rebalance moves only
//!   what must move, and a revoked task is stopped (its position stored)
//!   before the rebalance completes, so a task never runs on two workers at
//!   once; with exactly-once its transactional id fences a zombie copy anyway.
//! - **Statuses** of every task go to the compacted status topic, keyed
//!   `<pipeline>/<task>`; every worker tails it ([`StatusBoard`]) and serves
//!   the whole group's view.

use std::collections::BTreeMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Message, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::pipeline::KafkaConfig;
use crate::kafka::{base_config, producer_config, KafkaGlueError, LoggingContext};
use crate::offsets::{from_beginning, state_reader};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A worker's place in its group, handed to the pipelines it runs.
#[derive(Debug, Clone)]
pub struct GroupMember {
    /// The group's name.
    pub group: String,
    /// This worker's id (unique in the group, stable across restarts).
    pub worker_id: String,
    /// How long the group waits for a silent worker before moving its tasks.
    pub session_timeout: Duration,
    /// Where task statuses go.
    pub status: StatusWriter,
    /// What every worker's tasks report.
    pub board: StatusBoard,
}

/// `worker_id` as Kafka accepts it in client and group-instance ids
/// (letters, digits, `.`, `_` and `-`; anything else becomes `-`).
pub fn kafka_id(worker_id: &str) -> String {
    worker_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl GroupMember {
    /// The task-slot topic (and the slot consumer group) of `pipeline`.
    pub fn slot_topic(&self, pipeline: &str) -> String {
        format!("{}-tasks-{pipeline}", self.group)
    }
}

/// One record read by [`tail`].
#[derive(Debug)]
pub struct Tailed {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Vec<u8>,
    /// Its value (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
}

/// Reads `topic` from the beginning and then forever, on a thread of its
/// own, sending every keyed record until `stop` (or until the receiver is
/// dropped).
pub fn tail(
    kafka: &KafkaConfig,
    topic: &str,
    stop: CancellationToken,
) -> Result<mpsc::UnboundedReceiver<Tailed>, KafkaGlueError> {
    let (consumer, watermarks) = state_reader(kafka, topic)?;
    consumer
        .assign(&from_beginning(topic, watermarks.into_keys())?)
        .map_err(|e| KafkaGlueError::call(topic, "cannot read the topic", e))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let name = topic.to_owned();
    std::thread::Builder::new()
        .name(format!("tail-{topic}"))
        .spawn(move || {
            while !stop.is_cancelled() && !tx.is_closed() {
                match consumer.poll(Duration::from_millis(200)) {
                    None => {}
                    Some(Err(error)) => {
                        tracing::warn!(topic = %name, %error, "reading the topic failed; retrying");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    Some(Ok(message)) => {
                        let Some(key) = message.key() else { continue };
                        let record = Tailed {
                            partition: message.partition(),
                            offset: message.offset(),
                            key: key.to_vec(),
                            value: message.payload().map(<[u8]>::to_vec),
                        };
                        if tx.send(record).is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .map_err(|e| KafkaGlueError::Topic {
            topic: topic.to_owned(),
            message: format!("cannot start the reader thread: {e}"),
        })?;
    Ok(rx)
}

/// The end offset of every partition of `topic` (what a reader must reach
/// to have seen everything written so far).
pub fn end_offsets(kafka: &KafkaConfig, topic: &str) -> Result<BTreeMap<i32, i64>, KafkaGlueError> {
    let (_, watermarks) = state_reader(kafka, topic)?;
    Ok(watermarks
        .into_iter()
        .map(|(partition, (_, high))| (partition, high))
        .collect())
}

/// The state of one task, as stored in the status topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// `RUNNING`, `FINISHED`, `FAILED` or `UNASSIGNED`.
    pub state: String,
    /// The worker running it.
    pub worker_id: String,
    /// The pipeline definition it runs (a hash; tasks of an older
    /// definition are not counted).
    pub generation: String,
    /// Source tasks: its streams (files); sink tasks: its topic partitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assigned: Vec<String>,
    /// The error, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Milliseconds since the epoch of the change.
    pub at: u64,
}

impl TaskStatus {
    /// A status of now.
    pub fn new(state: &str, worker_id: &str, generation: &str) -> Self {
        TaskStatus {
            state: state.to_owned(),
            worker_id: worker_id.to_owned(),
            generation: generation.to_owned(),
            assigned: Vec::new(),
            trace: None,
            at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }
}

/// Writes task statuses to the status topic.
#[derive(Clone)]
pub struct StatusWriter {
    producer: FutureProducer<LoggingContext>,
    topic: String,
}

impl std::fmt::Debug for StatusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter")
            .field("topic", &self.topic)
            .finish()
    }
}

impl StatusWriter {
    /// A writer to `topic`.
    pub fn new(kafka: &KafkaConfig, topic: &str) -> Result<Self, KafkaGlueError> {
        let producer = producer_config(kafka)
            .set("linger.ms", "0")
            .create_with_context(LoggingContext)
            .map_err(KafkaGlueError::client(kafka, "producer"))?;
        Ok(StatusWriter {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Stores the status of task `task` of `pipeline` (`None`: forget it).
    /// A failure is logged, not returned: statuses are for people.
    pub async fn report(&self, pipeline: &str, task: &str, status: Option<&TaskStatus>) {
        let key = format!("{pipeline}/{task}");
        let value = status.and_then(|s| serde_json::to_vec(s).ok());
        let mut record = FutureRecord::<str, [u8]>::to(&self.topic).key(&key);
        if let Some(value) = &value {
            record = record.payload(value);
        }
        if let Err((error, _)) = self.producer.send(record, Duration::from_secs(10)).await {
            tracing::warn!(topic = %self.topic, task = %key, %error, "cannot store the task status");
        }
    }
}

/// Every task status of the group, as read from the status topic.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    statuses: Arc<Mutex<BTreeMap<String, TaskStatus>>>,
    changed: Arc<Mutex<Option<watch::Sender<u64>>>>,
    updates: Option<watch::Receiver<u64>>,
}

impl StatusBoard {
    /// Tails `topic` into a board until `stop`.
    pub fn follow(
        kafka: &KafkaConfig,
        topic: &str,
        stop: CancellationToken,
    ) -> Result<StatusBoard, KafkaGlueError> {
        let mut rx = tail(kafka, topic, stop.clone())?;
        let (changed, updates) = watch::channel(0u64);
        let board = StatusBoard {
            statuses: Arc::default(),
            changed: Arc::new(Mutex::new(Some(changed))),
            updates: Some(updates),
        };
        let statuses = board.statuses.clone();
        let notify = board.changed.clone();
        tokio::spawn(async move {
            while let Some(record) = rx.recv().await {
                let key = String::from_utf8_lossy(&record.key).into_owned();
                if let Ok(mut statuses) = statuses.lock() {
                    match record
                        .value
                        .as_deref()
                        .map(serde_json::from_slice::<TaskStatus>)
                    {
                        None => {
                            statuses.remove(&key);
                        }
                        Some(Ok(status)) => {
                            statuses.insert(key, status);
                        }
                        Some(Err(_)) => {}
                    }
                }
                if let Ok(notify) = notify.lock() {
                    if let Some(notify) = notify.as_ref() {
                        notify.send_modify(|n| *n += 1);
                    }
                }
            }
        });
        Ok(board)
    }

    /// The statuses of `pipeline`'s tasks, by task name.
    pub fn tasks(&self, pipeline: &str) -> BTreeMap<String, TaskStatus> {
        let prefix = format!("{pipeline}/");
        self.statuses
            .lock()
            .map(|s| {
                s.range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k[prefix.len()..].to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the board changes (or `timeout`).
    pub async fn changed(&self, timeout: Duration) {
        if let Some(mut updates) = self.updates.clone() {
            let _ = tokio::time::timeout(timeout, updates.changed()).await;
        } else {
            tokio::time::sleep(timeout).await;
        }
    }
}

/// Creates the task-slot topic with at least `tasks` partitions.
pub async fn ensure_slot_topic(
    kafka: &KafkaConfig,
    topic: &str,
    tasks: usize,
) -> Result<(), KafkaGlueError> {
    let admin: AdminClient<DefaultClientContext> = base_config(kafka)
        .create()
        .map_err(KafkaGlueError::client(kafka, "admin"))?;
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let new_topic = NewTopic::new(topic, tasks as i32, TopicReplication::Fixed(-1));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| KafkaGlueError::call(topic, "cannot create the task-slot topic", e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(KafkaGlueError::Topic {
                    topic: topic.to_owned(),
                    message: format!("cannot create the task-slot topic: {code}"),
                })
            }
        }
    }
    // More tasks than slots (the pipeline changed): add partitions.
    let consumer: BaseConsumer = base_config(kafka)
        .create()
        .map_err(KafkaGlueError::client(kafka, "consumer"))?;
    let have = tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), TIMEOUT))
        .map_err(|e| KafkaGlueError::call(topic, "cannot read metadata", e))?
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    if have < tasks {
        let more = NewPartitions::new(topic, tasks);
        for result in admin
            .create_partitions([&more], &options)
            .await
            .map_err(|e| KafkaGlueError::call(topic, "cannot add task slots", e))?
        {
            if let Err((_, code)) = result {
                if code != RDKafkaErrorCode::InvalidPartitions {
                    return Err(KafkaGlueError::Topic {
                        topic: topic.to_owned(),
                        message: format!("cannot add task slots: {code}"),
                    });
                }
            }
        }
    }
    Ok(())
}

/// A change of the tasks this worker runs.
#[derive(Debug)]
pub enum SlotEvent {
    /// Start these tasks.
    Assigned(Vec<usize>),
    /// Stop these tasks, then answer on the channel: the rebalance waits.
    Revoked(Vec<usize>, std_mpsc::Sender<()>),
}

struct SlotContext {
    events: mpsc::UnboundedSender<SlotEvent>,
    /// Longest wait for revoked tasks to stop.
    stop_timeout: Duration,
    pipeline: String,
}

impl ClientContext for SlotContext {}

impl ConsumerContext for SlotContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        crate::kafka::apply_rebalance(self, consumer, err, partitions);
    }

    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let tasks = slots(list);
            if tasks.is_empty() {
                return;
            }
            // Stop the tasks before Kafka hands their slots to another
            // worker: this callback blocks the rebalance until they stopped.
            let started = std::time::Instant::now();
            let (done, wait) = std_mpsc::channel();
            if self
                .events
                .send(SlotEvent::Revoked(tasks.clone(), done))
                .is_ok()
                && wait.recv_timeout(self.stop_timeout).is_err()
            {
                tracing::warn!(pipeline = %self.pipeline, ?tasks, "revoked tasks did not stop in time");
            }
            metrics::histogram!("sluice_task_revoke_seconds", "pipeline" => self.pipeline.clone())
                .record(started.elapsed().as_secs_f64());
            self.count("revoke");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let tasks = slots(list);
                if !tasks.is_empty() {
                    let _ = self.events.send(SlotEvent::Assigned(tasks));
                }
                self.count("assign");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => {
                tracing::warn!(pipeline = %self.pipeline, %error, "task-slot rebalance failed")
            }
        }
    }
}

impl SlotContext {
    fn count(&self, change: &'static str) {
        metrics::counter!(
            "sluice_rebalances_total",
            "pipeline" => self.pipeline.clone(),
            "group" => "tasks",
            "change" => change,
        )
        .increment(1);
    }
}

fn slots(list: &TopicPartitionList) -> Vec<usize> {
    list.elements()
        .iter()
        .filter_map(|e| usize::try_from(e.partition()).ok())
        .collect()
}

/// This worker's membership in a pipeline's task-slot group: a consumer on
/// a thread of its own that only heartbeats and rebalances (the topic holds
/// no records), turning assignments into [`SlotEvent`]s.
pub struct SlotConsumer {
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SlotConsumer {
    /// Joins the slot group of `pipeline`; events arrive on the receiver.
    pub fn join(
        kafka: &KafkaConfig,
        member: &GroupMember,
        pipeline: &str,
        stop_timeout: Duration,
    ) -> Result<(SlotConsumer, mpsc::UnboundedReceiver<SlotEvent>), KafkaGlueError> {
        let topic = member.slot_topic(pipeline);
        let (events, rx) = mpsc::unbounded_channel();
        let context = SlotContext {
            events,
            stop_timeout,
            pipeline: pipeline.to_owned(),
        };
        let session = member.session_timeout.as_millis().max(6000);
        let consumer: BaseConsumer<SlotContext> = base_config(kafka)
            .set("group.id", &topic)
            .set(
                "client.id",
                format!("sluice-{}", kafka_id(&member.worker_id)),
            )
            .set("enable.auto.commit", "false")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 5).max(500).to_string())
            // A revoked task may take a while to stop (it stores its position).
            .set(
                "max.poll.interval.ms",
                (stop_timeout.as_millis() + 60_000).to_string(),
            )
            .create_with_context(context)
            .map_err(KafkaGlueError::client(kafka, "consumer"))?;
        consumer
            .subscribe(&[&topic])
            .map_err(|e| KafkaGlueError::call(&topic, "cannot join the task-slot group", e))?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("slots-{pipeline}"))
            .spawn(move || {
                while !token.is_cancelled() {
                    if let Some(Err(error)) = consumer.poll(Duration::from_millis(100)) {
                        tracing::debug!(topic = %topic, %error, "task-slot consumer");
                    }
                }
                // Leaving the group revokes (and stops) this worker's tasks
                // and hands their slots to the others at once.
                consumer.unsubscribe();
                for _ in 0..20 {
                    let _ = consumer.poll(Duration::from_millis(50));
                }
            })
            .map_err(|e| KafkaGlueError::Topic {
                topic: member.slot_topic(pipeline),
                message: format!("cannot start the task-slot thread: {e}"),
            })?;
        Ok((
            SlotConsumer {
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }

    /// Leaves the group (the revocation arrives as an event first).
    pub fn leave(mut self) -> Option<std::thread::JoinHandle<()>> {
        self.stop.cancel();
        self.thread.take()
    }
}

impl Drop for SlotConsumer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_become_kafka_ids() {
        assert_eq!(kafka_id("127.0.0.1:8083"), "127.0.0.1-8083");
        assert_eq!(kafka_id("host_a.example-1"), "host_a.example-1");
        assert_eq!(kafka_id("wörker 2"), "w-rker-2");
    }

    #[test]
    fn statuses_round_trip_and_omit_what_is_empty() {
        let mut status = TaskStatus::new("RUNNING", "w1", "g");
        let text = serde_json::to_string(&status).unwrap();
        assert!(
            !text.contains("assigned") && !text.contains("trace"),
            "{text}"
        );
        status.assigned = vec!["0".into()];
        status.trace = Some("boom".into());
        let back: TaskStatus =
            serde_json::from_str(&serde_json::to_string(&status).unwrap()).unwrap();
        assert_eq!(back, status);
    }
}
