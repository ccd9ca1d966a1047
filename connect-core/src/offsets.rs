//! Source positions in Kafka: a compacted topic (`sluice-offsets` by default)
//! whose records are keyed `["<pipeline>", <source partition>]` and hold the
//! source offset as JSON — the layout of Kafka Connect's offsets topic.
//!
//! A position is written only after Kafka acknowledged every record it
//! covers, so a restarted pipeline resumes with no row skipped and at most
//! the unacknowledged tail sent again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::config::pipeline::KafkaConfig;
use crate::kafka::{base_config, KafkaGlueError};
use crate::record::{SourcePosition, Value};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The key of a position record: `["<pipeline>", <source partition>]`.
pub fn position_key(pipeline: &str, partition: &Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([pipeline, partition])).unwrap_or_default()
}

/// Creates the offsets topic (compacted) if it does not exist.
pub async fn ensure_offsets_topic(kafka: &KafkaConfig) -> Result<(), KafkaGlueError> {
    ensure_compacted_topic(kafka, &kafka.offsets_topic, 25).await
}

/// Creates a compacted state topic with `partitions` partitions if it does
/// not exist.
pub async fn ensure_compacted_topic(
    kafka: &KafkaConfig,
    topic: &str,
    partitions: i32,
) -> Result<(), KafkaGlueError> {
    let admin: AdminClient<DefaultClientContext> = base_config(kafka)
        .create()
        .map_err(KafkaGlueError::client(kafka, "admin"))?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact");
    let results = admin
        .create_topics(
            [&new_topic],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .map_err(|e| KafkaGlueError::call(topic, "cannot create the topic", e))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic, "created a compacted state topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(KafkaGlueError::Topic {
                    topic: topic.to_owned(),
                    message: format!("cannot create the topic: {code}"),
                })
            }
        }
    }
    Ok(())
}

/// Reads every committed record of `topic` from the beginning up to the end
/// offsets seen at the start, calling `each(key, value)` in order per
/// partition: how compacted state topics (positions, pipeline configs) are
/// loaded.
pub fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    mut each: impl FnMut(&[u8], Option<&[u8]>),
) -> Result<(), KafkaGlueError> {
    let error = |message: String| KafkaGlueError::Topic {
        topic: topic.to_owned(),
        message,
    };
    let (consumer, watermarks) = state_reader(kafka, topic)?;
    let mut ends: BTreeMap<i32, i64> = watermarks
        .into_iter()
        .filter(|(_, (low, high))| high > low)
        .map(|(partition, (_, high))| (partition, high))
        .collect();
    let assignment = from_beginning(topic, ends.keys().copied())?;
    if ends.is_empty() {
        return Ok(());
    }
    consumer
        .assign(&assignment)
        .map_err(|e| KafkaGlueError::call(topic, "cannot read the topic", e))?;
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !ends.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(error("timed out reading the topic to its end".to_owned()));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            // Transaction markers can end a partition: check positions too.
            if let Ok(list) = consumer.position() {
                for element in list.elements() {
                    if let (Some(position), Some(end)) =
                        (element.offset().to_raw(), ends.get(&element.partition()))
                    {
                        if position >= *end {
                            ends.remove(&element.partition());
                        }
                    }
                }
            }
            continue;
        };
        let message =
            message.map_err(|e| KafkaGlueError::call(topic, "cannot read the topic", e))?;
        if ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&message.partition());
        }
        if let Some(key) = message.key() {
            each(key, message.payload());
        }
    }
    Ok(())
}

/// `(low, high)` watermarks by partition.
pub(crate) type Watermarks = BTreeMap<i32, (i64, i64)>;

/// A consumer for reading the state topic `topic` whole (`read_committed`,
/// no group offsets of its own), and the `(low, high)` watermarks of each of
/// its partitions.
pub(crate) fn state_reader(
    kafka: &KafkaConfig,
    topic: &str,
) -> Result<(BaseConsumer, Watermarks), KafkaGlueError> {
    let consumer: BaseConsumer = base_config(kafka)
        .set("group.id", "sluice-state-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(KafkaGlueError::client(kafka, "consumer"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| KafkaGlueError::call(topic, "cannot read metadata", e))?;
    let mut watermarks = BTreeMap::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let marks = consumer
            .fetch_watermarks(topic, partition.id(), TIMEOUT)
            .map_err(|e| KafkaGlueError::call(topic, "cannot read end offsets", e))?;
        watermarks.insert(partition.id(), marks);
    }
    Ok((consumer, watermarks))
}

/// An assignment of `partitions` of `topic`, each from its beginning.
pub(crate) fn from_beginning(
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
) -> Result<TopicPartitionList, KafkaGlueError> {
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|e| KafkaGlueError::call(topic, "cannot read the topic", e))?;
    }
    Ok(assignment)
}

/// Every stored position of `pipeline`, by source partition (the last record
/// of each key wins; a tombstone deletes).
pub fn load_positions(
    kafka: &KafkaConfig,
    pipeline: &str,
) -> Result<BTreeMap<String, SourcePosition>, KafkaGlueError> {
    let topic = &kafka.offsets_topic;
    let prefix = format!("[{}", serde_json::to_string(pipeline).unwrap_or_default());
    let mut positions = BTreeMap::new();
    read_to_end(kafka, topic, |key, payload| {
        if !key.starts_with(prefix.as_bytes()) {
            return;
        }
        let Ok(Value::Array(parts)) = serde_json::from_slice::<Value>(key) else {
            return;
        };
        let (Some(Value::String(name)), Some(partition)) = (parts.first(), parts.get(1)) else {
            return;
        };
        if name != pipeline {
            return;
        }
        let partition_key = partition.to_string();
        match payload {
            None => {
                positions.remove(&partition_key);
            }
            Some(payload) => match serde_json::from_slice::<Value>(payload) {
                Ok(offset) => {
                    positions.insert(
                        partition_key,
                        SourcePosition {
                            partition: Arc::new(partition.clone()),
                            offset,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(topic = %topic, key = %String::from_utf8_lossy(key), error = %e, "ignoring a stored position that is not JSON")
                }
            },
        }
    })?;
    Ok(positions)
}

/// Writes a tombstone for every stored position of `pipeline`: its source
/// starts from the beginning next time. Returns how many were cleared.
pub async fn reset_positions(kafka: &KafkaConfig, pipeline: &str) -> Result<usize, KafkaGlueError> {
    let positions = tokio::task::block_in_place(|| load_positions(kafka, pipeline))?;
    let producer: rdkafka::producer::FutureProducer = crate::kafka::producer_config(kafka)
        .create()
        .map_err(KafkaGlueError::client(kafka, "producer"))?;
    for position in positions.values() {
        let key = position_key(pipeline, &position.partition);
        let record =
            rdkafka::producer::FutureRecord::<[u8], [u8]>::to(&kafka.offsets_topic).key(&key);
        producer.send(record, TIMEOUT).await.map_err(|(e, _)| {
            KafkaGlueError::call(&kafka.offsets_topic, "cannot clear a stored position", e)
        })?;
    }
    Ok(positions.len())
}

/// Stores `offset` as the position of source partition `partition` of
/// `pipeline`, as if the source had reached it.
pub async fn set_position(
    kafka: &KafkaConfig,
    pipeline: &str,
    partition: &Value,
    offset: &Value,
) -> Result<(), KafkaGlueError> {
    let producer: rdkafka::producer::FutureProducer = crate::kafka::producer_config(kafka)
        .create()
        .map_err(KafkaGlueError::client(kafka, "producer"))?;
    let key = position_key(pipeline, partition);
    let value = serde_json::to_vec(offset).unwrap_or_default();
    let record = rdkafka::producer::FutureRecord::<[u8], [u8]>::to(&kafka.offsets_topic)
        .key(&key)
        .payload(&value);
    producer.send(record, TIMEOUT).await.map_err(|(e, _)| {
        KafkaGlueError::call(&kafka.offsets_topic, "cannot store the position", e)
    })?;
    Ok(())
}

/// Commits `offsets` (partition → next offset to read) of `topic` for
/// consumer `group`, once the group has no member (waiting up to `wait`).
pub async fn set_group_offsets(
    kafka: &KafkaConfig,
    group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    wait: Duration,
) -> Result<(), KafkaGlueError> {
    let consumer: BaseConsumer = base_config(kafka)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(KafkaGlueError::client(kafka, "consumer"))?;
    let mut list = TopicPartitionList::new();
    for (&partition, &offset) in offsets {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(|e| KafkaGlueError::call(topic, format!("bad offset {offset}"), e))?;
    }
    wait_until_group_is_empty(kafka, group, wait).await?;
    tokio::task::block_in_place(|| consumer.commit(&list, rdkafka::consumer::CommitMode::Sync))
        .map_err(|e| {
            KafkaGlueError::call(
                topic,
                format!("cannot commit offsets for group `{group}`"),
                e,
            )
        })
}

/// Waits (at most `wait`) until consumer `group` has no member: the
/// pipeline's sink is stopped. A stopped `sluice run`'s static member leaves
/// within the session timeout (10 s).
pub async fn wait_until_group_is_empty(
    kafka: &KafkaConfig,
    group: &str,
    wait: Duration,
) -> Result<(), KafkaGlueError> {
    let consumer: BaseConsumer = base_config(kafka)
        .create()
        .map_err(KafkaGlueError::client(kafka, "consumer"))?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        let busy = tokio::task::block_in_place(|| group_members(&consumer, group))?;
        if busy == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(KafkaGlueError::Topic {
                topic: group.to_owned(),
                message: format!("consumer group still has {busy} member(s); stop every `sluice` running this pipeline and try again"),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How many members consumer `group` has now.
fn group_members(consumer: &BaseConsumer, group: &str) -> Result<usize, KafkaGlueError> {
    let groups = consumer
        .fetch_group_list(Some(group), TIMEOUT)
        .map_err(|e| KafkaGlueError::call(group, "cannot describe the consumer group", e))?;
    Ok(groups
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .map(|g| g.members().len())
        .sum())
}

/// The committed offsets of consumer `group` on `topic`, by partition, with
/// each partition's end offset.
pub fn group_offsets(
    kafka: &KafkaConfig,
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, (Option<i64>, i64)>, KafkaGlueError> {
    let consumer: BaseConsumer = base_config(kafka)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(KafkaGlueError::client(kafka, "consumer"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| KafkaGlueError::call(topic, "cannot read metadata", e))?;
    let mut list = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        list.add_partition(topic, partition.id());
    }
    let committed = consumer.committed_offsets(list, TIMEOUT).map_err(|e| {
        KafkaGlueError::call(
            topic,
            format!("cannot read the committed offsets of group `{group}`"),
            e,
        )
    })?;
    let mut offsets = BTreeMap::new();
    for element in committed.elements() {
        let (_, high) = consumer
            .fetch_watermarks(topic, element.partition(), TIMEOUT)
            .map_err(|e| KafkaGlueError::call(topic, "cannot read end offsets", e))?;
        offsets.insert(
            element.partition(),
            (element.offset().to_raw().filter(|o| *o >= 0), high),
        );
    }
    Ok(offsets)
}

/// Deletes consumer `group` (its committed offsets): the sink reads the
/// topic from the beginning next time. The group must be empty; a stopped
/// `sluice run` leaves it within the session timeout (10 s), so this retries
/// for up to `wait`.
pub async fn reset_group(
    kafka: &KafkaConfig,
    group: &str,
    wait: Duration,
) -> Result<(), KafkaGlueError> {
    let admin: AdminClient<DefaultClientContext> = base_config(kafka)
        .create()
        .map_err(KafkaGlueError::client(kafka, "admin"))?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        let results = admin
            .delete_groups(
                &[group],
                &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
            )
            .await
            .map_err(|e| KafkaGlueError::call(group, "cannot delete consumer group", e))?;
        match results.into_iter().next() {
            Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::GroupIdNotFound))) | None => return Ok(()),
            Some(Err((_, RDKafkaErrorCode::NonEmptyGroup))) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some(Err((_, code))) => {
                return Err(KafkaGlueError::Topic {
                    topic: group.to_owned(),
                    message: format!(
                        "cannot delete consumer group: {code}; stop every `sluice` running this pipeline and try again"
                    ),
                })
            }
        }
    }
}
