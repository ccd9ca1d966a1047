//! P2 sink: Kafka → S3 JSON Lines by a sink-only `sluice run` pipeline,
//! against a raw consumer that PUTs the same bytes in objects of the same
//! size and commits after each PUT. Both are timed the same way, from the
//! outside: from start until the consumer group's committed offsets cover
//! every full object (`flush_size` records) of every partition.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use connect_core::kafka::consumer_config;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::context::{timeout_for, Bench};
use crate::kafka::{self, CommitWatcher};
use crate::process::Measured;
use crate::replay::Replay;
use crate::s3;
use crate::services::Services;
use crate::stats::Rate;

/// Uploads in flight at once: the s3_json sink's default `upload_concurrency`.
const UPLOAD_CONCURRENCY: usize = 8;
/// How often the committed offsets are read.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// The sink's `rotate_interval`: how soon the last, partial objects are written.
const ROTATE_INTERVAL: &str = "1s";

/// What P2 measured on one topic.
#[derive(Debug, Clone, Serialize)]
pub struct SinkRun {
    pub dataset: String,
    /// Records in the topic.
    pub records: u64,
    /// Sluice: records in full objects over the time from its consumer
    /// group becoming stable (the sink joined and has its partitions) until
    /// they were all committed (bytes: JSON Lines, newlines included).
    pub sluice: Rate,
    /// Sluice: the same records over the time from spawning the process.
    pub sluice_from_start: Rate,
    /// Sluice: from spawning until its group was stable.
    pub sluice_joined_seconds: f64,
    /// Sluice: from spawning until every record was committed (the last,
    /// partial objects are written when `rotate_interval` elapses).
    pub sluice_all_seconds: f64,
    /// The raw consumer, measured the same way from its start.
    pub baseline: Rate,
    pub baseline_joined_seconds: f64,
    pub baseline_all_seconds: f64,
    /// `sluice` over `baseline`, records per second.
    pub ratio: f64,
    /// Peak RSS of the `sluice` process.
    pub peak_rss_kib: u64,
    /// Objects Sluice wrote, and their bytes.
    pub objects: u64,
    pub object_bytes: u64,
    /// Objects the baseline wrote.
    pub baseline_objects: u64,
}

/// Offsets to wait for: every partition's end, and its last full-object boundary.
#[derive(Debug, Clone, PartialEq)]
struct Targets {
    ends: BTreeMap<i32, i64>,
    full: BTreeMap<i32, i64>,
    /// Records below the `full` offsets: what the rate counts.
    full_records: u64,
}

impl Targets {
    /// For a topic whose partitions start at offset 0. When no partition
    /// fills an object (a tiny data set), the full targets are the ends.
    fn new(ends: BTreeMap<i32, i64>, flush_size: u64) -> Targets {
        let size = i64::try_from(flush_size.max(1)).unwrap_or(i64::MAX);
        let full: BTreeMap<i32, i64> = ends.iter().map(|(&p, &e)| (p, e / size * size)).collect();
        let sum = |offsets: &BTreeMap<i32, i64>| {
            offsets
                .values()
                .map(|&o| u64::try_from(o).unwrap_or(0))
                .sum::<u64>()
        };
        let full_records = sum(&full);
        if full_records == 0 {
            return Targets {
                full_records: sum(&ends),
                full: ends.clone(),
                ends,
            };
        }
        Targets {
            ends,
            full,
            full_records,
        }
    }
}

/// Whether `committed` reaches `targets` (an empty partition needs no commit).
fn reached(committed: &BTreeMap<i32, i64>, targets: &BTreeMap<i32, i64>) -> bool {
    targets
        .iter()
        .all(|(p, &target)| target == 0 || committed.get(p).is_some_and(|&c| c >= target))
}

/// When (after the start) the group was first seen stable with a member,
/// and when its commits reached the full-object and the end targets.
struct Reached {
    joined: Duration,
    full: Duration,
    all: Duration,
}

impl Reached {
    /// From joining the group to the full objects committed.
    fn working(&self) -> Duration {
        self.full.saturating_sub(self.joined)
    }
}

/// Connects the watcher to the group's coordinator, so that its first
/// reading after the start is as quick as the others.
fn warm_up(watcher: &CommitWatcher) -> anyhow::Result<()> {
    tokio::task::block_in_place(|| {
        watcher.group_is_stable()?;
        watcher.committed().map(drop)
    })
}

/// Reads the committed offsets every [`WATCH_INTERVAL`] until they reach the
/// ends; fails when `running` says the committer stopped first, or at `timeout`.
async fn watch(
    watcher: &CommitWatcher,
    targets: &Targets,
    start: Instant,
    timeout: Duration,
    mut running: impl FnMut() -> bool,
) -> anyhow::Result<Reached> {
    let mut joined = None;
    let mut full = None;
    loop {
        // Asked before reading the offsets, so a committer that ends right
        // after its last commit is not taken for one that died early.
        let was_running = running();
        if joined.is_none() && tokio::task::block_in_place(|| watcher.group_is_stable())? {
            joined = Some(start.elapsed());
        }
        let committed = tokio::task::block_in_place(|| watcher.committed())?;
        let now = start.elapsed();
        if full.is_none() && reached(&committed, &targets.full) {
            full = Some(now);
        }
        if reached(&committed, &targets.ends) {
            let full = full.unwrap_or(now);
            return Ok(Reached {
                joined: joined.unwrap_or(full).min(full),
                full,
                all: now,
            });
        }
        if !was_running {
            bail!(
                "it ended before committing every record (committed {committed:?}, ends {:?})",
                targets.ends
            );
        }
        if now > timeout {
            bail!("not every record was committed within {timeout:?} (committed {committed:?}, ends {:?})", targets.ends);
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

pub async fn run(bench: &Bench, replay: &Replay) -> anyhow::Result<SinkRun> {
    let services = &bench.services;
    let topic = &replay.topic;
    let ends = tokio::task::block_in_place(|| kafka::end_offsets(services, topic))?;
    let targets = Targets::new(ends, bench.flush_size);
    let records = replay.records;
    let timeout = timeout_for(records);
    // Each record is its value and a newline in the objects.
    let expected_bytes = replay.value_bytes + records;
    let bytes_per_record = expected_bytes as f64 / records.max(1) as f64;
    let full_bytes = (targets.full_records as f64 * bytes_per_record) as u64;

    let name = bench.unique("p2");
    bench.created_bucket(&name);
    let pipeline = format!(
        "name: {name}\n\
         topic:\n  name: {topic}\n  create: false\n\
         sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n    flush_size: {flush_size}\n    rotate_interval: {ROTATE_INTERVAL}\n",
        flush_size = bench.flush_size
    );
    let group = connect_core::runtime::sink::group_id(&name, "s3");
    let watcher = CommitWatcher::new(services, &group, topic, targets.ends.keys().copied())?;
    warm_up(&watcher)?;
    tracing::info!(dataset = %replay.dataset, %topic, bucket = %name, "P2: sluice run (sink only)");
    let mut sluice = bench.start_sluice(&name, &pipeline)?;
    let reached = watch(&watcher, &targets, sluice.started, timeout, || {
        !sluice.has_exited()
    })
    .await
    .with_context(|| sink_failure(&sluice))?;
    sluice.terminate()?;
    let exit = sluice.wait_success(Duration::from_secs(90)).await?;
    let listed = s3::list(&services.s3(), &name)
        .await?
        .with_context(|| format!("sluice made no bucket {name}"))?;
    let object_bytes: u64 = listed.iter().map(|o| o.size).sum();
    if object_bytes != expected_bytes {
        bail!("sluice's objects in {name} hold {object_bytes} bytes, expected {expected_bytes} (every value once, with a newline)");
    }
    let sluice_rate = Rate::new(
        targets.full_records,
        full_bytes,
        reached.working().as_secs_f64(),
    );
    let sluice_start = Rate::new(targets.full_records, full_bytes, reached.full.as_secs_f64());

    let raw_name = format!("{name}-raw");
    bench.created_bucket(&raw_name);
    let raw_watcher = CommitWatcher::new(services, &raw_name, topic, targets.ends.keys().copied())?;
    warm_up(&raw_watcher)?;
    tracing::info!(dataset = %replay.dataset, %topic, bucket = %raw_name, "P2: raw consumer and PUTs");
    let start = Instant::now();
    let raw = tokio::spawn(raw_sink(
        services.clone(),
        topic.clone(),
        raw_name.clone(),
        bench.flush_size,
        targets.ends.clone(),
    ));
    let raw_reached = watch(&raw_watcher, &targets, start, timeout, || {
        !raw.is_finished()
    })
    .await;
    let raw_result = raw.await.context("the raw sink panicked")?;
    let (baseline_objects, baseline_bytes) = raw_result.context("the raw sink failed")?;
    let raw_reached = raw_reached.context("the raw sink")?;
    if baseline_bytes != expected_bytes {
        bail!("the raw sink wrote {baseline_bytes} bytes, expected {expected_bytes}");
    }
    let baseline = Rate::new(
        targets.full_records,
        full_bytes,
        raw_reached.working().as_secs_f64(),
    );

    Ok(SinkRun {
        dataset: replay.dataset.clone(),
        records,
        ratio: sluice_rate.ratio_to(&baseline),
        sluice: sluice_rate,
        sluice_from_start: sluice_start,
        sluice_joined_seconds: reached.joined.as_secs_f64(),
        sluice_all_seconds: reached.all.as_secs_f64(),
        baseline,
        baseline_joined_seconds: raw_reached.joined.as_secs_f64(),
        baseline_all_seconds: raw_reached.all.as_secs_f64(),
        peak_rss_kib: exit.max_rss_kib,
        objects: listed.len() as u64,
        object_bytes,
        baseline_objects,
    })
}

fn sink_failure(sluice: &Measured) -> String {
    format!(
        "the sluice sink; its last log lines:\n{}",
        sluice.log_tail(30)
    )
}

/// An object being filled.
struct OpenObject {
    first: i64,
    records: u64,
    body: Vec<u8>,
}

/// The raw baseline: reads `topic` in consumer group `group` (Sluice's
/// consumer settings), writes each partition's values as JSON Lines objects
/// of `flush_size` records (the last one shorter) under the s3_json key
/// layout in bucket `group`, up to [`UPLOAD_CONCURRENCY`] PUTs at once, and
/// commits each partition's offsets as its objects land in order. Returns
/// the objects and bytes written.
async fn raw_sink(
    services: Services,
    topic: String,
    group: String,
    flush_size: u64,
    ends: BTreeMap<i32, i64>,
) -> anyhow::Result<(u64, u64)> {
    let s3 = services.s3();
    s3::ensure_bucket(&s3, &group).await?;
    let consumer: StreamConsumer = consumer_config(&services.kafka_config(), &group)
        .create()
        .context("cannot create the raw consumer")?;
    consumer
        .subscribe(&[&topic])
        .with_context(|| format!("cannot subscribe to {topic}"))?;
    let mut open: BTreeMap<i32, OpenObject> = BTreeMap::new();
    let mut read_to: BTreeMap<i32, i64> = ends.keys().map(|&p| (p, 0)).collect();
    let mut landing = Landing {
        committed: ends.keys().map(|&p| (p, 0)).collect(),
        landed: BTreeMap::new(),
        objects: 0,
        bytes: 0,
    };
    let mut uploads: JoinSet<anyhow::Result<Landed>> = JoinSet::new();
    let all_read = |read_to: &BTreeMap<i32, i64>| {
        ends.iter()
            .all(|(p, &end)| read_to.get(p).is_some_and(|&r| r >= end))
    };
    while !reached(&landing.committed, &ends) {
        let reading = !all_read(&read_to);
        tokio::select! {
            message = consumer.recv(), if reading => {
                let message = message.with_context(|| format!("reading {topic}"))?;
                let partition = message.partition();
                let offset = message.offset();
                let object = open.entry(partition).or_insert_with(|| OpenObject {
                    first: offset,
                    records: 0,
                    body: Vec::new(),
                });
                object.body.extend_from_slice(message.payload().unwrap_or_default());
                object.body.push(b'\n');
                object.records += 1;
                read_to.insert(partition, offset + 1);
                let end = ends.get(&partition).copied().unwrap_or(0);
                let full = object.records >= flush_size || offset + 1 >= end;
                if let Some(object) = full.then(|| open.remove(&partition)).flatten() {
                    while uploads.len() >= UPLOAD_CONCURRENCY {
                        if let Some(done) = uploads.join_next().await {
                            landing.land(done, &consumer, &topic)?;
                        }
                    }
                    let key = format!(
                        "topics/{topic}/partition={partition}/{topic}+{partition}+{:020}.json",
                        object.first
                    );
                    uploads.spawn(put(s3.clone(), group.clone(), key, partition, object, offset + 1));
                }
            }
            Some(done) = uploads.join_next(), if !uploads.is_empty() => {
                landing.land(done, &consumer, &topic)?;
            }
            else => bail!("the raw sink has nothing to read or upload but is not done (committed {:?}, ends {ends:?})", landing.committed),
        }
    }
    // The commits above are asynchronous: make sure the last ones are in.
    let mut list = TopicPartitionList::new();
    for (&partition, &offset) in &landing.committed {
        if offset > 0 {
            list.add_partition_offset(&topic, partition, Offset::Offset(offset))
                .context("bad offset")?;
        }
    }
    if list.count() > 0 {
        tokio::task::block_in_place(|| consumer.commit(&list, CommitMode::Sync))
            .with_context(|| format!("cannot commit {topic}"))?;
    }
    Ok((landing.objects, landing.bytes))
}

/// An uploaded object: its partition and offsets `first..next`, and size.
struct Landed {
    partition: i32,
    first: i64,
    next: i64,
    bytes: u64,
}

/// Uploaded objects and the offsets committed for them.
struct Landing {
    committed: BTreeMap<i32, i64>,
    /// Per partition, uploaded objects not yet contiguous with the committed offset.
    landed: BTreeMap<i32, BTreeMap<i64, i64>>,
    objects: u64,
    bytes: u64,
}

impl Landing {
    /// Takes a finished upload and commits its partition as far as objects landed in order.
    fn land(
        &mut self,
        done: Result<anyhow::Result<Landed>, tokio::task::JoinError>,
        consumer: &StreamConsumer,
        topic: &str,
    ) -> anyhow::Result<()> {
        let landed = done.context("an upload panicked")??;
        self.objects += 1;
        self.bytes += landed.bytes;
        let pending = self.landed.entry(landed.partition).or_default();
        pending.insert(landed.first, landed.next);
        let committed = self.committed.entry(landed.partition).or_insert(0);
        let before = *committed;
        while let Some(next) = pending.remove(committed) {
            *committed = next;
        }
        if *committed > before {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(topic, landed.partition, Offset::Offset(*committed))
                .context("bad offset")?;
            consumer
                .commit(&list, CommitMode::Async)
                .with_context(|| format!("cannot commit {topic}/{}", landed.partition))?;
        }
        Ok(())
    }
}

async fn put(
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    partition: i32,
    object: OpenObject,
    next: i64,
) -> anyhow::Result<Landed> {
    let bytes = object.body.len() as u64;
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(object.body.into())
        .send()
        .await
        .with_context(|| format!("cannot put s3://{bucket}/{key}"))?;
    Ok(Landed {
        partition,
        first: object.first,
        next,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stop_at_the_last_full_object_or_at_the_end_when_none_fills() {
        let ends = BTreeMap::from([(0, 25), (1, 9), (2, 0)]);
        let targets = Targets::new(ends.clone(), 10);
        assert_eq!(targets.full, BTreeMap::from([(0, 20), (1, 0), (2, 0)]));
        assert_eq!(targets.full_records, 20);
        let tiny = Targets::new(ends.clone(), 100);
        assert_eq!(tiny.full, ends);
        assert_eq!(tiny.full_records, 34);
    }

    #[test]
    fn empty_partitions_need_no_commit() {
        let targets = BTreeMap::from([(0, 20), (1, 0)]);
        assert!(reached(&BTreeMap::from([(0, 20), (1, -1)]), &targets));
        assert!(!reached(&BTreeMap::from([(0, 19), (1, 0)]), &targets));
        assert!(!reached(&BTreeMap::new(), &targets));
    }
}
