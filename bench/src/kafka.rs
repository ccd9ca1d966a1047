//! Kafka helpers of the harness: reading a topic back whole, watermarks,
//! a consumer group's committed offsets, creating and deleting topics.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::services::Services;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Every record of a topic, keys and values in one buffer.
#[derive(Debug, Default)]
pub struct Dump {
    data: Vec<u8>,
    pub records: Vec<DumpedRecord>,
}

/// One record of a [`Dump`].
#[derive(Debug, Clone)]
pub struct DumpedRecord {
    /// The record's timestamp (CreateTime: set by the producer), ms since the epoch.
    pub timestamp: i64,
    pub partition: i32,
    pub offset: i64,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
}

impl Dump {
    pub fn key(&self, record: &DumpedRecord) -> Option<&[u8]> {
        record.key.clone().map(|range| &self.data[range])
    }

    pub fn value(&self, record: &DumpedRecord) -> Option<&[u8]> {
        record.value.clone().map(|range| &self.data[range])
    }

    /// Key and value bytes of every record.
    pub fn key_value_bytes(&self) -> u64 {
        self.records
            .iter()
            .map(|r| (range_len(&r.key) + range_len(&r.value)) as u64)
            .sum()
    }

    /// Value bytes of every record.
    pub fn value_bytes(&self) -> u64 {
        self.records
            .iter()
            .map(|r| range_len(&r.value) as u64)
            .sum()
    }
}

fn range_len(range: &Option<Range<usize>>) -> usize {
    range.as_ref().map_or(0, |r| r.len())
}

fn plain_consumer(services: &Services, group: &str) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .create()
        .context("cannot create a Kafka consumer")
}

/// The high watermark of every partition of `topic` (its end offsets).
pub fn end_offsets(services: &Services, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let consumer = plain_consumer(services, "sluice-bench-watermarks")?;
    watermarks(&consumer, topic).map(|marks| {
        marks
            .into_iter()
            .map(|(partition, (_, high))| (partition, high))
            .collect()
    })
}

fn watermarks(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<BTreeMap<i32, (i64, i64)>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .with_context(|| format!("cannot read the metadata of topic {topic}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions())
        .map(|p| p.id())
        .collect();
    if partitions.is_empty() {
        bail!("topic {topic} has no partitions (does it exist?)");
    }
    let mut marks = BTreeMap::new();
    for partition in partitions {
        let mark = consumer
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .with_context(|| format!("cannot read the watermarks of {topic}/{partition}"))?;
        marks.insert(partition, mark);
    }
    Ok(marks)
}

/// Reads every record of `topic` (blocking; call from a blocking thread).
pub fn read_topic(services: &Services, topic: &str, timeout: Duration) -> anyhow::Result<Dump> {
    let consumer = plain_consumer(services, "sluice-bench-reader")?;
    let marks = watermarks(&consumer, topic)?;
    let mut list = TopicPartitionList::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut total = 0usize;
    for (&partition, &(low, high)) in &marks {
        if high > low {
            list.add_partition_offset(topic, partition, Offset::Offset(low))
                .with_context(|| format!("cannot assign {topic}/{partition}"))?;
            next.insert(partition, low);
            total += usize::try_from(high - low).unwrap_or(0);
        }
    }
    let mut dump = Dump {
        data: Vec::new(),
        records: Vec::with_capacity(total),
    };
    if list.count() == 0 {
        return Ok(dump);
    }
    consumer
        .assign(&list)
        .with_context(|| format!("cannot assign the partitions of {topic}"))?;
    let deadline = Instant::now() + timeout;
    let behind = |next: &BTreeMap<i32, i64>| {
        next.iter()
            .any(|(p, &offset)| marks.get(p).is_some_and(|&(_, high)| offset < high))
    };
    while behind(&next) {
        if Instant::now() > deadline {
            bail!(
                "reading topic {topic} back: {} of {total} records within {timeout:?}",
                dump.records.len()
            );
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.with_context(|| format!("reading topic {topic} back"))?;
        next.insert(message.partition(), message.offset() + 1);
        let mut append = |bytes: Option<&[u8]>| {
            bytes.map(|bytes| {
                let start = dump.data.len();
                dump.data.extend_from_slice(bytes);
                start..dump.data.len()
            })
        };
        let key = append(message.key());
        let value = append(message.payload());
        dump.records.push(DumpedRecord {
            timestamp: message.timestamp().to_millis().unwrap_or(0),
            partition: message.partition(),
            offset: message.offset(),
            key,
            value,
        });
    }
    Ok(dump)
}

/// Reads a consumer group's state and committed offsets of a topic (without joining the group).
pub struct CommitWatcher {
    consumer: BaseConsumer,
    group: String,
    list: TopicPartitionList,
}

impl CommitWatcher {
    pub fn new(
        services: &Services,
        group: &str,
        topic: &str,
        partitions: impl IntoIterator<Item = i32>,
    ) -> anyhow::Result<CommitWatcher> {
        let consumer = plain_consumer(services, group)?;
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            list.add_partition(topic, partition);
        }
        Ok(CommitWatcher {
            consumer,
            group: group.to_owned(),
            list,
        })
    }

    /// Whether the group has members and is done assigning partitions to them.
    pub fn group_is_stable(&self) -> anyhow::Result<bool> {
        let groups = self
            .consumer
            .fetch_group_list(Some(&self.group), METADATA_TIMEOUT)
            .with_context(|| format!("cannot describe consumer group {}", self.group))?;
        Ok(groups
            .groups()
            .iter()
            .any(|g| g.state() == "Stable" && !g.members().is_empty()))
    }

    /// Committed offset per partition (-1 where nothing is committed yet).
    pub fn committed(&self) -> anyhow::Result<BTreeMap<i32, i64>> {
        let committed = self
            .consumer
            .committed_offsets(self.list.clone(), METADATA_TIMEOUT)
            .context("cannot read committed offsets")?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
            .collect())
    }
}

fn admin(services: &Services) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .create()
        .context("cannot create a Kafka admin client")
}

/// Creates `topic` with `partitions` partitions and one replica.
pub async fn create_topic(services: &Services, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin = admin(services)?;
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &options,
        )
        .await
        .with_context(|| format!("cannot create topic {topic}"))?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("cannot create topic {name}: {code}");
        }
    }
    // Wait until every partition has a leader, as the first produce needs one.
    let consumer = plain_consumer(services, "sluice-bench-watermarks")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::task::block_in_place(|| watermarks(&consumer, topic)) {
            Ok(marks) if marks.len() == usize::try_from(partitions).unwrap_or(0) => return Ok(()),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(marks) => bail!(
                "topic {topic} has {} partitions, not {partitions}",
                marks.len()
            ),
            Err(error) => return Err(error),
        }
    }
}

/// Deletes topics (best effort: a failure is logged).
pub async fn delete_topics(services: &Services, topics: &[String]) {
    if topics.is_empty() {
        return;
    }
    let result = async {
        let admin = admin(services)?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        admin
            .delete_topics(&names, &AdminOptions::new())
            .await
            .context("cannot delete topics")
    }
    .await;
    if let Err(error) = result {
        tracing::warn!(%error, ?topics, "benchmark topics left behind");
    }
}
