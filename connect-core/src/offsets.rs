//! Source positions in Kafka: a compacted topic (`sluice-offsets` by default)
//! whose records are keyed `["<pipeline>", <source partition>]` and hold the
//! source offset as JSON — the layout of Kafka Connect's offsets topic.
//!
//! A position is written only after Kafka acknowledged every record it
//! covers, so a restarted pipeline resumes with no row skipped and at most
//! the unacknowledged tail sent again.
//!
//! Unlike Kafka Connect, which partitions by key and reads the whole topic,
//! Sluice writes every position of a pipeline to one partition, chosen by a
//! hash of the pipeline's name ([`positions_partition`]); a task reads only
//! that partition when it starts. That is 1/25th of the reading, and a
//! transaction left open by another pipeline killed mid-commit no longer
//! stalls every pipeline's start.
//!
//! # Reading to the log end
//!
//! State is read `read_committed`, up to each partition's *log end* (high
//! watermark) taken from a `read_uncommitted` client. A `read_committed`
//! client's own end offsets are the *last stable offset*: the start of the
//! oldest transaction still open. Reading up to that would stop, without a
//! word, before every commit made after a transaction that another task
//! (of a worker killed mid-commit) left open, and a task taking over
//! would resume from an older position and send rows again (it happened in
//! `tests/scale_out.rs`: 1,088 rows twice). Reading to the log end waits
//! at the open transaction instead, until it commits or aborts: the new
//! owner of the killed worker's task aborts it when it starts (its
//! `init_transactions`), or the broker does at `transaction.timeout.ms`.
//! Positions stored by earlier versions (keyed, in any partition) are
//! still found: a pipeline with no record in its own partition reads them
//! all once.

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
    // Asking is a metadata round trip; creating one that exists costs the
    // controller's answer (100 ms).
    if crate::kafka::topic_partition_count(kafka, topic, TIMEOUT)?.is_some() {
        return Ok(());
    }
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

/// The partition of a state topic of `partitions` partitions that holds
/// every position of `pipeline`: a CRC-32 of its name, so that any version
/// of Sluice on any machine finds it.
pub fn positions_partition(pipeline: &str, partitions: i32) -> i32 {
    let partitions = partitions.max(1) as u32;
    (crc32fast::hash(pipeline.as_bytes()) % partitions) as i32
}

/// Reads every committed record of `topic` from the beginning up to the end
/// offsets seen at the start, calling `each(key, value)` in order per
/// partition: how compacted state topics (positions, pipeline configs) are
/// loaded.
pub fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    each: impl FnMut(&[u8], Option<&[u8]>),
) -> Result<(), KafkaGlueError> {
    let (consumer, watermarks) = state_reader(kafka, topic)?;
    read_partitions_to_end(&consumer, topic, watermarks, each)
}

/// [`read_to_end`] of the partitions in `watermarks` only.
fn read_partitions_to_end(
    consumer: &BaseConsumer,
    topic: &str,
    watermarks: Watermarks,
    mut each: impl FnMut(&[u8], Option<&[u8]>),
) -> Result<(), KafkaGlueError> {
    let error = |message: String| KafkaGlueError::Topic {
        topic: topic.to_owned(),
        message,
    };
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
    let started = std::time::Instant::now();
    let deadline = started + TIMEOUT;
    let mut said_waiting = false;
    while !ends.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(error(format!(
                "timed out reading the topic to its end (partitions {:?}); a transaction left open there (by a worker killed mid-commit) holds readers back until the new owner of its task starts or the broker aborts it (`transaction.timeout.ms`, a minute by default)",
                ends.keys().collect::<Vec<_>>()
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(20)) else {
            // Transaction markers can end a partition: check positions too.
            if let Ok(list) = consumer.position() {
                for element in list.elements() {
                    if let (Some(position), Some(end)) =
                        (element.offset().to_raw(), ends.get(&element.partition()))
                    {
                        if position >= *end {
                            ends.remove(&element.partition());
                        } else if !said_waiting && started.elapsed() > Duration::from_secs(2) {
                            said_waiting = true;
                            tracing::info!(topic = %topic, partition = element.partition(), position, end = *end, "waiting for a transaction left open in the partition to commit or abort before reading on");
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
    // Stop fetching: a consumer that keeps long-polling the partitions
    // answers its next watermark queries only between fetches (500 ms each).
    let _ = consumer.unassign();
    Ok(())
}

/// `(low, high)` watermarks by partition.
pub(crate) type Watermarks = BTreeMap<i32, (i64, i64)>;

/// A consumer for reading the state topic `topic` whole (`read_committed`,
/// no group offsets of its own), and the `(low, log end)` watermarks of
/// each of its partitions (see "Reading to the log end").
pub(crate) fn state_reader(
    kafka: &KafkaConfig,
    topic: &str,
) -> Result<(BaseConsumer, Watermarks), KafkaGlueError> {
    let consumer = state_consumer(kafka)?;
    let probe = end_probe(kafka)?;
    let partitions = partition_count(&probe, topic)?;
    let watermarks = watermarks(&probe, topic, 0..partitions)?;
    Ok((consumer, watermarks))
}

/// A client whose watermarks are the log ends (`read_uncommitted`), not the
/// last stable offsets a `read_committed` client gets.
fn end_probe(kafka: &KafkaConfig) -> Result<BaseConsumer, KafkaGlueError> {
    base_config(kafka)
        .set("isolation.level", "read_uncommitted")
        .create()
        .map_err(KafkaGlueError::client(kafka, "consumer"))
}

/// A consumer that reads state topics by assignment (`read_committed`, no
/// group offsets of its own).
fn state_consumer(kafka: &KafkaConfig) -> Result<BaseConsumer, KafkaGlueError> {
    base_config(kafka)
        .set("group.id", "sluice-state-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(KafkaGlueError::client(kafka, "consumer"))
}

/// How many partitions `topic` has.
fn partition_count(consumer: &BaseConsumer, topic: &str) -> Result<i32, KafkaGlueError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| KafkaGlueError::call(topic, "cannot read metadata", e))?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| t.partitions().len() as i32)
        .sum())
}

/// The watermarks of `partitions` of `topic`.
fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
) -> Result<Watermarks, KafkaGlueError> {
    partitions
        .into_iter()
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, TIMEOUT)
                .map(|marks| (partition, marks))
                .map_err(|e| KafkaGlueError::call(topic, "cannot read end offsets", e))
        })
        .collect()
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
///
/// Positions stored by earlier versions of Sluice (keyed, in any partition)
/// are looked for, with a scan of the whole offsets topic, only when the
/// pipeline's own partition has nothing for it and its `topic` (when given)
/// has ever been written to: a stored position implies records produced
/// to the topic, so a topic never written to (a pipeline's first run) skips
/// the scan.
pub fn load_positions(
    kafka: &KafkaConfig,
    pipeline: &str,
    topic: Option<&str>,
) -> Result<BTreeMap<String, SourcePosition>, KafkaGlueError> {
    match load_positions_and_partition(kafka, pipeline, topic) {
        Ok((positions, _)) => Ok(positions),
        // No offsets topic yet: nothing stored.
        Err(KafkaGlueError::NoPartitions { .. }) => Ok(BTreeMap::new()),
        Err(error) => Err(error),
    }
}

/// [`load_positions`], and the partition of the offsets topic where the
/// pipeline's positions are written ([`positions_partition`]).
pub fn load_positions_and_partition(
    kafka: &KafkaConfig,
    pipeline: &str,
    data_topic: Option<&str>,
) -> Result<(BTreeMap<String, SourcePosition>, i32), KafkaGlueError> {
    let topic = &kafka.offsets_topic;
    let consumer = state_consumer(kafka)?;
    let probe = end_probe(kafka)?;
    let count = partition_count(&probe, topic)?;
    if count == 0 {
        // Missing, or the metadata came back without it (a broker in
        // trouble): never "nothing stored", which would start over and
        // write positions where they are not read.
        return Err(KafkaGlueError::NoPartitions {
            topic: topic.to_owned(),
        });
    }
    let own = positions_partition(pipeline, count);
    let mut positions = BTreeMap::new();
    let found = read_positions(&consumer, &probe, topic, pipeline, [own], &mut positions)?;
    let written = || -> Result<bool, KafkaGlueError> {
        let Some(data_topic) = data_topic else {
            return Ok(true);
        };
        // (A topic created a moment ago would also make the watermark
        // queries wait for its leaders, half a second.)
        if crate::kafka::created_by_this_process(data_topic) {
            return Ok(false);
        }
        let partitions = partition_count(&probe, data_topic)?;
        let marks = watermarks(&probe, data_topic, 0..partitions)?;
        Ok(marks.values().any(|(_, high)| *high > 0))
    };
    if !found && written()? {
        // Positions stored before they went to one partition per pipeline.
        let partitions = (0..count).filter(|p| *p != own);
        read_positions(
            &consumer,
            &probe,
            topic,
            pipeline,
            partitions,
            &mut positions,
        )?;
    }
    // Closing takes 100-200 ms that nobody needs to wait for.
    let _ = crate::kafka::drop_in_background(consumer, "sluice-state-reader-close");
    let _ = crate::kafka::drop_in_background(probe, "sluice-state-probe-close");
    Ok((positions, own))
}

/// Folds `pipeline`'s position records in `partitions` into `positions`
/// (read with `consumer` up to the log ends `probe` gives); whether there
/// was any (a tombstone counts).
fn read_positions(
    consumer: &BaseConsumer,
    probe: &BaseConsumer,
    topic: &str,
    pipeline: &str,
    partitions: impl IntoIterator<Item = i32>,
    positions: &mut BTreeMap<String, SourcePosition>,
) -> Result<bool, KafkaGlueError> {
    let prefix = format!("[{}", serde_json::to_string(pipeline).unwrap_or_default());
    let mut found = false;
    let marks = watermarks(probe, topic, partitions)?;
    read_partitions_to_end(consumer, topic, marks, |key, payload| {
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
        found = true;
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
    Ok(found)
}

/// Writes a tombstone for every stored position of `pipeline`: its source
/// starts from the beginning next time. Returns how many were cleared.
pub async fn reset_positions(kafka: &KafkaConfig, pipeline: &str) -> Result<usize, KafkaGlueError> {
    let (positions, own) =
        match tokio::task::block_in_place(|| load_positions_and_partition(kafka, pipeline, None)) {
            Ok(loaded) => loaded,
            Err(KafkaGlueError::NoPartitions { .. }) => return Ok(0),
            Err(error) => return Err(error),
        };
    let producer: rdkafka::producer::FutureProducer = crate::kafka::producer_config(kafka)
        .create()
        .map_err(KafkaGlueError::client(kafka, "producer"))?;
    for position in positions.values() {
        let key = position_key(pipeline, &position.partition);
        let record = rdkafka::producer::FutureRecord::<[u8], [u8]>::to(&kafka.offsets_topic)
            .key(&key)
            .partition(own);
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
    ensure_offsets_topic(kafka).await?;
    let partitions = crate::kafka::topic_partition_count(kafka, &kafka.offsets_topic, TIMEOUT)?
        .filter(|&count| count > 0)
        .ok_or_else(|| KafkaGlueError::NoPartitions {
            topic: kafka.offsets_topic.clone(),
        })?;
    let own = positions_partition(pipeline, partitions as i32);
    let record = rdkafka::producer::FutureRecord::<[u8], [u8]>::to(&kafka.offsets_topic)
        .key(&key)
        .payload(&value)
        .partition(own);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipelines_positions_partition_never_changes() {
        // Changing the hash would lose every stored position: these are fixed.
        assert_eq!(positions_partition("stock-market", 25), 8);
        assert_eq!(positions_partition("file-to-file", 25), 8);
        assert_eq!(positions_partition("orders", 25), 12);
        assert_eq!(positions_partition("x", 1), 0);
        assert_eq!(positions_partition("x", 0), 0);
        let spread: std::collections::BTreeSet<i32> = (0..200)
            .map(|i| positions_partition(&format!("pipeline-{i}"), 25))
            .collect();
        assert_eq!(spread.len(), 25, "names spread over every partition");
    }
}
