//! Buffering without I/O: records are gathered into one open object per
//! (Kafka partition, partition path), objects are closed on count, size or
//! age, closed objects queue per partition path for upload (one after the
//! other), and the batcher knows which offsets are durable.
//!
//! # Exactly once in the bucket
//!
//! An object's key is `<prefix>/<topic>/<path>/<topic>+<partition>+<first offset>`,
//! and every object records its first and last offset in its metadata. A
//! rerun (after a crash, a restart or a rebalance) reads again from the last
//! committed offset and may cut objects at other points. Three rules keep each
//! record in the bucket exactly once:
//!
//! 1. *Objects of one partition path land in order*, one after the other, so
//!    the objects of a path in the bucket always form one gap-free chain: each
//!    starts at the path's first record after the previous one's last.
//! 2. *An upload never overwrites*: when the key exists, the existing object's
//!    last offset is read, the records up to it are dropped (they are there),
//!    and the rest becomes an object starting at the next record (the key the
//!    earlier run used for its next object, if it wrote one), again and again.
//!    What an existing object covers is remembered for the path
//!    ([`after_conflict`] is the decision).
//! 3. *The committed offset never falls inside a landed object*: the durable
//!    offset of a Kafka partition is the first offset of its oldest open or
//!    queued object, lowered to the first offset of any landed object that
//!    spans it. (With several paths per partition, an object of path B may
//!    land while an older object of path A is still open; committing A's
//!    first offset would make a rerun start in the middle of B's object.)
//!
//! With these, a rerun from the committed offset meets, in every path, either
//! the start of an existing object (which rule 2 skips) or no object at all.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use connect_core::plugin::{DurableOffsets, FlushMode};
use connect_core::{ConnectorError, ConnectorResult, Record, TopicPartition, Value};

use crate::config::S3JsonConfig;
use crate::encoding::Encoding;
use crate::partitioner::Partitioner;
use crate::spool::{Body, SpoolWriter, Spooled};

/// How keys are built: prefix and encoding (the extension).
#[derive(Debug, Clone)]
pub struct KeyLayout {
    prefix: String,
    /// How the bodies are stored.
    pub encoding: Encoding,
}

impl KeyLayout {
    /// A layout under `prefix` (slashes around it are ignored).
    pub fn new(prefix: &str, encoding: impl Into<Encoding>) -> Self {
        Self {
            prefix: prefix.trim_matches('/').to_owned(),
            encoding: encoding.into(),
        }
    }

    /// `<prefix>/<topic>/<path>/<topic>+<partition>+<first offset, 20 digits>.<json|json.gz|parquet>`.
    pub fn key(&self, topic: &str, path: &str, partition: i32, first_offset: i64) -> String {
        let extension = self.encoding.extension();
        let leaf = format!("{topic}/{path}/{topic}+{partition}+{first_offset:020}.{extension}");
        if self.prefix.is_empty() {
            leaf
        } else {
            format!("{}/{leaf}", self.prefix)
        }
    }
}

/// What to upload of an object whose key already exists, given the last
/// offset the existing object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterConflict {
    /// The existing object already holds every record: upload nothing.
    AllThere,
    /// Upload the records from `index` on (the body from byte `byte` on) as
    /// a new object whose key starts at `first_offset`.
    Remainder {
        /// Index of the first record to upload.
        index: usize,
        /// Byte of the (uncompressed) body where that record starts.
        byte: usize,
        /// That record's offset: the new key's first offset.
        first_offset: i64,
    },
}

/// The decision of rule 2: `records` are an object's `(offset, end byte)`
/// pairs in offset order; an existing object holds every record of the same
/// path up to `existing_last`.
pub fn after_conflict(records: &[(i64, usize)], existing_last: i64) -> AfterConflict {
    let index = records.partition_point(|&(offset, _)| offset <= existing_last);
    match records.get(index) {
        None => AfterConflict::AllThere,
        Some(&(first_offset, _)) => AfterConflict::Remainder {
            index,
            byte: if index == 0 { 0 } else { records[index - 1].1 },
            first_offset,
        },
    }
}

/// A closed object: its uncompressed body (in memory, or on disk when it
/// outgrew `multipart_threshold`), the offset and end byte of each record,
/// and how many leading records are already in the bucket (in an object an
/// earlier run wrote).
#[derive(Debug, Clone)]
pub struct ClosedObject {
    body: ClosedBody,
    start: usize,
    start_byte: u64,
    /// Offset of the record at `start`.
    first: i64,
}

#[derive(Debug, Clone)]
enum ClosedBody {
    Memory {
        body: Bytes,
        records: Arc<Vec<(i64, usize)>>,
    },
    Spooled(Arc<Spooled>),
}

fn spool_error(what: &str, error: std::io::Error) -> ConnectorError {
    ConnectorError::fatal_caused_by(
        format!("{what} (a large object's file in `spool_dir`); check that directory's free space and permissions, or set `spool_dir`"),
        error,
    )
}

impl ClosedObject {
    /// An object of `records` (`(offset, end byte)`, at least one) in `body`.
    pub fn new(body: Bytes, records: Vec<(i64, usize)>) -> Self {
        debug_assert!(!records.is_empty());
        Self {
            first: records[0].0,
            body: ClosedBody::Memory {
                body,
                records: Arc::new(records),
            },
            start: 0,
            start_byte: 0,
        }
    }

    /// An object on disk.
    pub fn spooled(spooled: Spooled) -> Self {
        Self {
            first: spooled.first_offset(),
            body: ClosedBody::Spooled(Arc::new(spooled)),
            start: 0,
            start_byte: 0,
        }
    }

    fn count(&self) -> usize {
        match &self.body {
            ClosedBody::Memory { records, .. } => records.len(),
            ClosedBody::Spooled(spooled) => spooled.count(),
        }
    }

    /// Offset of the first record still to upload.
    pub fn first_offset(&self) -> i64 {
        self.first
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        match &self.body {
            ClosedBody::Memory { records, .. } => records[records.len() - 1].0,
            ClosedBody::Spooled(spooled) => spooled.last_offset(),
        }
    }

    /// Records still to upload.
    pub fn len(&self) -> usize {
        self.count() - self.start
    }

    /// Whether every record is already in the bucket.
    pub fn is_empty(&self) -> bool {
        self.start >= self.count()
    }

    /// Bytes of the object held in memory.
    pub fn in_memory(&self) -> usize {
        match &self.body {
            ClosedBody::Memory { body, .. } => body.len(),
            ClosedBody::Spooled(_) => 0,
        }
    }

    /// Whether the body is on disk.
    pub fn is_spooled(&self) -> bool {
        matches!(self.body, ClosedBody::Spooled(_))
    }

    /// The uncompressed body of the records still to upload.
    pub fn body(&self) -> Body {
        match &self.body {
            ClosedBody::Memory { body, .. } => Body::Memory(body.slice(self.start_byte as usize..)),
            ClosedBody::Spooled(spooled) => Body::Spooled(spooled.body_from(self.start_byte)),
        }
    }

    /// How many of the records still to upload have offsets up to `last`.
    pub fn records_through(&self, last: i64) -> ConnectorResult<usize> {
        let through = match &self.body {
            ClosedBody::Memory { records, .. } => records.partition_point(|&(o, _)| o <= last),
            ClosedBody::Spooled(spooled) => spooled
                .count_through(last)
                .map_err(|e| spool_error("cannot read a record index", e))?,
        };
        Ok(through.saturating_sub(self.start))
    }

    /// Drops the records an existing object holds (offsets up to `existing_last`);
    /// returns how many were dropped.
    pub fn skip_through(&mut self, existing_last: i64) -> ConnectorResult<usize> {
        let before = self.start;
        match &self.body {
            ClosedBody::Memory { body, records } => match after_conflict(records, existing_last) {
                AfterConflict::AllThere => {
                    self.start = records.len();
                    self.start_byte = body.len() as u64;
                }
                AfterConflict::Remainder {
                    index,
                    byte,
                    first_offset,
                } if index > self.start => {
                    self.start = index;
                    self.start_byte = byte as u64;
                    self.first = first_offset;
                }
                AfterConflict::Remainder { .. } => {}
            },
            ClosedBody::Spooled(spooled) => {
                let read = |e| spool_error("cannot read a record index", e);
                let index = spooled.count_through(existing_last).map_err(read)?;
                if index >= spooled.count() {
                    self.start = spooled.count();
                    self.start_byte = spooled.len();
                } else if index > self.start {
                    self.start = index;
                    self.start_byte = spooled.record(index - 1).map_err(read)?.1;
                    self.first = spooled.record(index).map_err(read)?.0;
                }
            }
        }
        Ok(self.start - before)
    }
}

/// The queued objects of one partition path, to land in order.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The Kafka partition.
    pub partition: TopicPartition,
    /// The partition path.
    pub path: String,
    /// The objects, oldest first.
    pub objects: Vec<ClosedObject>,
    /// Offset up to which the path's records are known to be in the bucket.
    pub covered: Option<i64>,
}

/// One uploaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Its key.
    pub key: String,
    /// Records in it.
    pub records: usize,
    /// Bytes uploaded (compressed when compressing).
    pub bytes: usize,
}

/// What landing a [`Chain`] did.
#[derive(Debug)]
pub struct ChainOutcome {
    /// The Kafka partition.
    pub partition: TopicPartition,
    /// The partition path.
    pub path: String,
    /// Objects at the front of the chain now entirely in the bucket.
    pub done: usize,
    /// Offset up to which the path's records are now known to be in the bucket.
    pub covered: Option<i64>,
    /// `(first, last)` offsets of objects found or put in the bucket.
    pub landed: Vec<(i64, i64)>,
    /// Objects this chain uploaded.
    pub uploaded: Vec<Uploaded>,
    /// Why the chain stopped early.
    pub error: Option<ConnectorError>,
}

#[derive(Debug)]
struct OpenObject {
    /// The lines, while in memory; once spooled, the line being written.
    body: Vec<u8>,
    /// `(offset, end byte)` of each record, while in memory.
    records: Vec<(i64, usize)>,
    opened: Instant,
    /// Lines and records once the object outgrew `multipart_threshold`.
    spool: Option<SpoolWriter>,
}

impl OpenObject {
    fn new(body: Vec<u8>, opened: Instant) -> Self {
        Self {
            body,
            records: Vec::new(),
            opened,
            spool: None,
        }
    }

    fn first_offset(&self) -> Option<i64> {
        match &self.spool {
            Some(spool) => Some(spool.first_offset()),
            None => self.records.first().map(|r| r.0),
        }
    }

    /// Bytes of records held in memory (none once on disk: what it holds
    /// then is its write buffers, `SPOOLING_OBJECT_MEMORY`).
    fn in_memory(&self) -> usize {
        match &self.spool {
            Some(_) => 0,
            None => self.body.len(),
        }
    }
}

/// Everything the batcher holds for one Kafka partition.
#[derive(Debug, Default)]
struct PartitionState {
    /// The offset after the last record accepted.
    written_to: Option<i64>,
    open: BTreeMap<String, OpenObject>,
    queued: BTreeMap<String, VecDeque<ClosedObject>>,
    /// Per path: records up to this offset are in an existing object (rule 2).
    covered: BTreeMap<String, i64>,
    /// `(first, last)` of landed objects that may still span the durable offset (rule 3).
    landed: Vec<(i64, i64)>,
}

impl PartitionState {
    fn close(&mut self, path: &str) -> ConnectorResult<()> {
        if let Some(object) = self.open.remove(path) {
            let closed = match object.spool {
                Some(spool) => ClosedObject::spooled(
                    spool
                        .finish()
                        .map_err(|e| spool_error("cannot finish writing an object", e))?,
                ),
                None if object.records.is_empty() => return Ok(()),
                None => ClosedObject::new(object.body.into(), object.records),
            };
            match self.queued.get_mut(path) {
                Some(queue) => queue.push_back(closed),
                None => {
                    self.queued
                        .insert(path.to_owned(), VecDeque::from([closed]));
                }
            }
        }
        Ok(())
    }
}

/// Gathers records into objects, closes them on count, size or age, and
/// knows which offsets are durable. No I/O: [`crate::landing`] lands what it closes.
#[derive(Debug)]
pub struct ObjectBatcher {
    layout: KeyLayout,
    partitioner: Partitioner,
    flush_size: u64,
    max_bytes: Option<usize>,
    rotate_interval: Duration,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    /// Bytes of records held in open and queued objects.
    buffered: usize,
    /// `memory_budget`.
    budget: usize,
    /// `spool_dir` and `multipart_threshold`.
    spool_dir: Arc<std::path::PathBuf>,
    spool_threshold: usize,
}

impl ObjectBatcher {
    /// A batcher for the sink's layout, partitioner and rotation settings.
    pub fn new(config: &S3JsonConfig) -> ConnectorResult<Self> {
        let partitioner = config
            .partitioner
            .build()
            .map_err(|e| ConnectorError::fatal(format!("partitioner: {e}")))?;
        Ok(Self {
            layout: KeyLayout::new(&config.prefix, Encoding::of(config)),
            partitioner,
            flush_size: config.flush_size,
            max_bytes: config
                .max_object_bytes
                .map(|b| usize::try_from(b.0).unwrap_or(usize::MAX)),
            rotate_interval: config.rotate_interval.0,
            partitions: BTreeMap::new(),
            buffered: 0,
            budget: usize::try_from(config.memory_budget.0).unwrap_or(usize::MAX),
            spool_dir: Arc::new(config.spool_dir()),
            spool_threshold: usize::try_from(config.multipart_threshold.0).unwrap_or(usize::MAX),
        })
    }

    /// The key layout.
    pub fn layout(&self) -> &KeyLayout {
        &self.layout
    }

    /// Appends a record as one JSON line to its path's open object; closes
    /// the object when full (count or bytes). A record before one already
    /// appended for its partition is ignored (a `write` retried with the
    /// same batch gives the first records again).
    pub fn append(&mut self, record: &Record, now: Instant) -> ConnectorResult<()> {
        let (Some(partition), Some(offset)) = (record.partition, record.offset) else {
            return Err(ConnectorError::fatal(
                "s3_json was given a record without a Kafka partition and offset",
            ));
        };
        let tp = TopicPartition {
            topic: record.topic.clone(),
            partition,
        };
        if self
            .partitions
            .get(&tp)
            .and_then(|s| s.written_to)
            .is_some_and(|written_to| offset < written_to)
        {
            return Ok(());
        }
        if record.is_tombstone() {
            return Err(ConnectorError::bad_record(
                format!("record at {tp} offset {offset} is a tombstone (null value); s3_json writes one JSON value per line and has no line for it; drop tombstones with a `filter` transform or let `errors.tolerance: all` skip them"),
                None,
                None,
            ));
        };
        if self.layout.encoding.needs_objects()
            && !record.value.as_ref().is_some_and(Value::is_object)
        {
            return Err(ConnectorError::bad_record(
                format!("record at {tp} offset {offset} is not a JSON object; `format: parquet` writes each record as a row of named columns; wrap the value in an object with a transform, or use `format: json`"),
                None,
                None,
            ));
        }
        let path = self.partitioner.path(record, partition).map_err(|e| {
            ConnectorError::bad_record(
                format!("record at {tp} offset {offset}: {e}; the partitioner cannot place it"),
                None,
                None,
            )
        })?;
        let state = match self.partitions.get_mut(&tp) {
            Some(state) => state,
            None => self.partitions.entry(tp.clone()).or_default(),
        };
        if !state.open.contains_key(&path) {
            state
                .open
                .insert(path.clone(), OpenObject::new(Vec::new(), now));
        }
        let object = state.open.get_mut(&path).expect("just inserted");
        let before = object.body.len();
        if let Err(e) = record.write_value_json(&mut object.body) {
            object.body.truncate(before);
            return Err(ConnectorError::fatal_caused_by(
                format!("cannot write record at {tp} offset {offset} as JSON"),
                e,
            ));
        }
        object.body.push(b'\n');
        if let Some(spool) = object.spool.as_mut() {
            // On disk: `body` holds just this line.
            let line = std::mem::take(&mut object.body);
            let over = self
                .max_bytes
                .is_some_and(|max| spool.len() + line.len() as u64 > max as u64);
            let full = if over {
                state.close(&path)?;
                self.buffered += line.len();
                let mut next = OpenObject::new(line, now);
                next.records.push((offset, next.body.len()));
                state.open.insert(path.clone(), next);
                self.flush_size <= 1
            } else {
                spool
                    .append(&line, offset)
                    .map_err(|e| spool_error("cannot write a record", e))?;
                object.body = line;
                object.body.clear();
                spool.count() as u64 >= self.flush_size
                    || self.max_bytes.is_some_and(|max| spool.len() >= max as u64)
            };
            state.written_to = Some(offset + 1);
            if full {
                state.close(&path)?;
            }
            return Ok(());
        }
        self.buffered += object.body.len() - before;
        if self
            .max_bytes
            .is_some_and(|max| object.body.len() > max && !object.records.is_empty())
        {
            // The record would take the object past `max_object_bytes`:
            // close the object without it and start the next one with it.
            let line = object.body.split_off(before);
            state.close(&path)?;
            state.open.insert(path.clone(), OpenObject::new(line, now));
        }
        let object = state.open.get_mut(&path).expect("open object");
        object.records.push((offset, object.body.len()));
        let full = object.records.len() as u64 >= self.flush_size
            || self.max_bytes.is_some_and(|max| object.body.len() >= max);
        state.written_to = Some(offset + 1);
        if full {
            state.close(&path)?;
        } else if object.body.len() > self.spool_threshold {
            // Too large for memory: the object goes on growing on disk.
            let spool = SpoolWriter::create(self.spool_dir.clone(), &object.body, &object.records)
                .map_err(|e| spool_error("cannot move an object to disk", e))?;
            self.buffered -= object.body.len();
            object.body = Vec::new();
            object.records = Vec::new();
            object.spool = Some(spool);
            tracing::debug!(partition = %tp, path = %path, dir = %self.spool_dir.display(), "object moved to disk");
        }
        Ok(())
    }

    /// Whether the buffered records take more than `memory_budget`.
    pub fn over_budget(&self) -> bool {
        self.buffered > self.budget
    }

    /// Bytes of records held in open and queued objects.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Closes the largest open objects in memory until those hold at most
    /// half the budget; returns how many it closed. (Uploading what is
    /// closed then brings the sink well under its budget.) Objects on disk
    /// are left to grow.
    pub fn close_largest(&mut self) -> ConnectorResult<usize> {
        let mut sizes: Vec<(usize, TopicPartition, String)> = self
            .partitions
            .iter()
            .flat_map(|(tp, state)| {
                state
                    .open
                    .iter()
                    .filter(|(_, o)| o.in_memory() > 0)
                    .map(move |(path, o)| (o.in_memory(), tp.clone(), path.clone()))
            })
            .collect();
        let mut open: usize = sizes.iter().map(|(size, _, _)| size).sum();
        sizes.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        let mut closed = 0;
        for (size, tp, path) in sizes {
            if open <= self.budget / 2 {
                break;
            }
            if let Some(state) = self.partitions.get_mut(&tp) {
                state.close(&path)?;
                open -= size;
                closed += 1;
            }
        }
        Ok(closed)
    }

    /// Closes every open object (`All`) or those at least `rotate_interval` old (`Due`).
    pub fn close_due(&mut self, mode: FlushMode, now: Instant) -> ConnectorResult<()> {
        for state in self.partitions.values_mut() {
            let due: Vec<String> = state
                .open
                .iter()
                .filter(|(_, o)| {
                    mode == FlushMode::All
                        || now.saturating_duration_since(o.opened) >= self.rotate_interval
                })
                .map(|(path, _)| path.clone())
                .collect();
            for path in &due {
                state.close(path)?;
            }
        }
        Ok(())
    }

    /// When the oldest open object reaches `rotate_interval`.
    pub fn due_at(&self) -> Option<Instant> {
        self.partitions
            .values()
            .flat_map(|state| state.open.values())
            .map(|object| object.opened + self.rotate_interval)
            .min()
    }

    /// Whether closed objects wait for upload.
    pub fn has_queued(&self) -> bool {
        self.partitions.values().any(|s| !s.queued.is_empty())
    }

    /// The queued objects, one chain per partition path (cheap copies).
    pub fn chains(&self) -> Vec<Chain> {
        let mut chains = Vec::new();
        for (tp, state) in &self.partitions {
            for (path, queue) in &state.queued {
                chains.push(Chain {
                    partition: tp.clone(),
                    path: path.clone(),
                    objects: queue.iter().cloned().collect(),
                    covered: state.covered.get(path).copied(),
                });
            }
        }
        chains
    }

    /// Takes in what landing a chain did.
    pub fn apply(&mut self, outcome: &ChainOutcome) {
        let Some(state) = self.partitions.get_mut(&outcome.partition) else {
            return;
        };
        if let Some(queue) = state.queued.get_mut(&outcome.path) {
            for object in queue.drain(..outcome.done.min(queue.len())) {
                self.buffered = self.buffered.saturating_sub(object.in_memory());
            }
            if queue.is_empty() {
                state.queued.remove(&outcome.path);
            }
        }
        if let Some(covered) = outcome.covered {
            let entry = state.covered.entry(outcome.path.clone()).or_insert(covered);
            *entry = (*entry).max(covered);
        }
        state.landed.extend_from_slice(&outcome.landed);
        // Once the path has nothing buffered and every later record is past
        // it, what an earlier run covered no longer matters.
        if let (Some(&covered), Some(written_to)) =
            (state.covered.get(&outcome.path), state.written_to)
        {
            let idle = !state.open.contains_key(&outcome.path)
                && !state.queued.contains_key(&outcome.path);
            if idle && written_to > covered {
                state.covered.remove(&outcome.path);
            }
        }
    }

    /// Per Kafka partition: the offset to commit (rule 3): every record
    /// before it is in the bucket, and no object in the bucket holds records
    /// on both sides of it.
    pub fn durable_offsets(&mut self) -> DurableOffsets {
        let mut durable = DurableOffsets::new();
        for (tp, state) in &mut self.partitions {
            let Some(written_to) = state.written_to else {
                continue;
            };
            let open = state.open.values().filter_map(OpenObject::first_offset);
            let queued = state
                .queued
                .values()
                .filter_map(|q| q.front())
                .map(ClosedObject::first_offset);
            let mut offset = open.chain(queued).fold(written_to, i64::min);
            while let Some(&(first, _)) = state
                .landed
                .iter()
                .find(|&&(first, last)| first < offset && offset <= last)
            {
                offset = first;
            }
            // The durable offset never goes back, so objects ending before it
            // can never span it again.
            state.landed.retain(|&(_, last)| last >= offset);
            durable.insert(tp.clone(), offset);
        }
        durable
    }

    /// Forgets everything about `partitions`.
    pub fn revoke(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(state) = self.partitions.remove(tp) {
                let open = state.open.values().map(OpenObject::in_memory);
                let queued = state.queued.values().flatten().map(ClosedObject::in_memory);
                let held: usize = open.chain(queued).sum();
                self.buffered = self.buffered.saturating_sub(held);
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.partitions.clear();
        self.buffered = 0;
    }

    #[cfg(test)]
    pub(crate) fn queued_objects(&self) -> Vec<(String, ClosedObject)> {
        self.partitions
            .iter()
            .flat_map(|(tp, s)| {
                s.queued.iter().flat_map(move |(path, q)| {
                    q.iter().map(move |o| {
                        (
                            self.layout
                                .key(&tp.topic, path, tp.partition, o.first_offset()),
                            o.clone(),
                        )
                    })
                })
            })
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn open_count(&self) -> usize {
        self.partitions.values().map(|s| s.open.len()).sum()
    }

    #[cfg(test)]
    pub(crate) fn drop_queued(&mut self) {
        for state in self.partitions.values_mut() {
            for (_, queue) in std::mem::take(&mut state.queued) {
                for object in queue {
                    state
                        .landed
                        .push((object.first_offset(), object.last_offset()));
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{ByteSize, Compression};
    use crate::partitioner::{PartitionerConfig, PartitionerType};

    pub(crate) fn config(flush_size: u64, rotate_secs: u64) -> S3JsonConfig {
        S3JsonConfig {
            bucket: "b".into(),
            prefix: "topics".into(),
            region: None,
            endpoint: None,
            force_path_style: None,
            create_bucket: false,
            flush_size,
            rotate_interval: connect_core::config::units::HumanDuration(
                std::time::Duration::from_secs(rotate_secs),
            ),
            upload_concurrency: 1,
            partitioner: PartitionerConfig::default(),
            max_object_bytes: None,
            memory_budget: crate::config::ByteSize(64 << 20),
            multipart_threshold: crate::config::ByteSize(16 << 20),
            part_size: crate::config::ByteSize(8 << 20),
            spool_dir: None,
            compression: Compression::None,
            format: Default::default(),
            parquet: Default::default(),
            catalog: None,
            conditional_writes: Default::default(),
        }
    }

    pub(crate) fn by_field(mut config: S3JsonConfig, field: &str) -> S3JsonConfig {
        config.partitioner = PartitionerConfig {
            kind: PartitionerType::Field,
            field: Some(field.parse().unwrap()),
            ..Default::default()
        };
        config
    }

    pub(crate) fn record(partition: i32, offset: i64) -> Record {
        keyed(partition, offset, "a")
    }

    pub(crate) fn keyed(partition: i32, offset: i64, k: &str) -> Record {
        Record {
            topic: "t".into(),
            partition: Some(partition),
            offset: Some(offset),
            key: None,
            value: Some(serde_json::json!({ "n": offset, "k": k, "x": 0.0 })),
            encoded_value: None,
            headers: Vec::new(),
            timestamp: None,
            position: None,
        }
    }

    pub(crate) fn tp(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition,
        }
    }

    fn keys(batcher: &ObjectBatcher) -> Vec<String> {
        batcher
            .queued_objects()
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    #[test]
    fn values_passed_through_as_json_text_land_as_decoded_ones_do() {
        let kinds = ["n".to_owned(), "k".to_owned(), "missing".to_owned()];
        for config in std::iter::once(config(3, 600))
            .chain(kinds.iter().map(|field| by_field(config(3, 600), field)))
        {
            let (mut decoded, mut encoded) = (
                ObjectBatcher::new(&config).unwrap(),
                ObjectBatcher::new(&config).unwrap(),
            );
            let now = Instant::now();
            for offset in 0..8 {
                let record = keyed(
                    offset as i32 % 2,
                    offset,
                    ["NYA", "a/b", ""][offset as usize % 3],
                );
                decoded.append(&record, now).unwrap();
                let mut passed = record.clone();
                passed.encoded_value = passed.value.take().map(|v| serde_json::to_vec(&v).unwrap());
                encoded.append(&passed, now).unwrap();
            }
            decoded.close_due(FlushMode::All, now).unwrap();
            encoded.close_due(FlushMode::All, now).unwrap();
            let objects = |batcher: &ObjectBatcher| {
                batcher
                    .queued_objects()
                    .into_iter()
                    .map(|(key, object)| (key, object.body().bytes()))
                    .collect::<Vec<_>>()
            };
            assert!(!objects(&decoded).is_empty());
            assert_eq!(
                objects(&encoded),
                objects(&decoded),
                "{:?}",
                config.partitioner
            );
        }
        // A tombstone is still one (neither form of value).
        let mut batcher = ObjectBatcher::new(&config(3, 600)).unwrap();
        let mut tombstone = record(0, 0);
        tombstone.value = None;
        assert!(batcher.append(&tombstone, Instant::now()).is_err());
    }

    #[test]
    fn an_object_past_the_threshold_grows_on_disk_and_holds_the_same_lines() {
        let in_memory = config(1000, 600);
        let mut spooling = in_memory.clone();
        spooling.multipart_threshold = ByteSize(100);
        let mut a = ObjectBatcher::new(&in_memory).unwrap();
        let mut b = ObjectBatcher::new(&spooling).unwrap();
        let now = Instant::now();
        for offset in 5..55 {
            a.append(&record(0, offset), now).unwrap();
            b.append(&record(0, offset), now).unwrap();
        }
        assert!(a.buffered() > 1000, "{}", a.buffered());
        assert_eq!(b.buffered(), 0, "the records are on disk");
        assert_eq!(a.durable_offsets(), b.durable_offsets());
        assert_eq!(b.durable_offsets()[&tp(0)], 5);
        a.close_due(FlushMode::All, now).unwrap();
        b.close_due(FlushMode::All, now).unwrap();
        let (mut a, mut b) = (a.queued_objects(), b.queued_objects());
        assert_eq!((a.len(), b.len()), (1, 1));
        let ((a_key, a), (b_key, b)) = (&mut a[0], &mut b[0]);
        assert_eq!(a_key, b_key);
        assert!(b.is_spooled() && !a.is_spooled());
        assert_eq!((b.first_offset(), b.last_offset(), b.len()), (5, 54, 50));
        assert_eq!(b.body().bytes(), a.body().bytes());
        assert_eq!(b.records_through(24).unwrap(), 20);
        assert_eq!(b.skip_through(24).unwrap(), 20);
        assert_eq!(a.skip_through(24).unwrap(), 20);
        assert_eq!((b.first_offset(), b.len()), (25, 30));
        assert_eq!(b.body().bytes(), a.body().bytes());
        assert_eq!(b.skip_through(99).unwrap(), 30);
        assert!(b.is_empty() && b.body().is_empty());
    }

    #[test]
    fn keys_are_deterministic_and_sort_by_offset() {
        let layout = KeyLayout::new("topics", Compression::None);
        assert_eq!(
            layout.key("stock-market", "partition=3", 3, 42),
            "topics/stock-market/partition=3/stock-market+3+00000000000000000042.json"
        );
        assert_eq!(
            KeyLayout::new("/a/b/", Compression::Gzip).key("t", "index=NYA", 0, 0),
            "a/b/t/index=NYA/t+0+00000000000000000000.json.gz"
        );
        assert_eq!(
            KeyLayout::new("", Compression::None).key("t", "partition=1", 1, 7),
            "t/partition=1/t+1+00000000000000000007.json"
        );
        assert!(layout.key("t", "p", 0, 9) < layout.key("t", "p", 0, 10));
    }

    #[test]
    fn rotates_on_count_and_reports_only_uploaded_offsets_durable() {
        let mut batcher = ObjectBatcher::new(&config(3, 600)).unwrap();
        let now = Instant::now();
        for offset in 10..17 {
            batcher.append(&record(0, offset), now).unwrap();
        }
        batcher.append(&record(1, 0), now).unwrap();
        assert_eq!(
            keys(&batcher),
            [
                "topics/t/partition=0/t+0+00000000000000000010.json",
                "topics/t/partition=0/t+0+00000000000000000013.json"
            ]
        );
        let (_, first) = &batcher.queued_objects()[0];
        assert_eq!(
            first.body().bytes().as_ref(),
            b"{\"n\":10,\"k\":\"a\",\"x\":0.0}\n{\"n\":11,\"k\":\"a\",\"x\":0.0}\n{\"n\":12,\"k\":\"a\",\"x\":0.0}\n"
        );
        assert_eq!(
            (first.first_offset(), first.last_offset(), first.len()),
            (10, 12, 3)
        );
        // Nothing is uploaded yet: nothing is durable beyond the first record of each partition.
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 10), (tp(1), 0)].into_iter().collect()
        );
        // Once the closed objects are uploaded, offsets up to the open object are durable.
        batcher.drop_queued();
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 16), (tp(1), 0)].into_iter().collect()
        );
        batcher.close_due(FlushMode::All, now).unwrap();
        batcher.drop_queued();
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 17), (tp(1), 1)].into_iter().collect()
        );
    }

    #[test]
    fn the_oldest_open_object_says_when_rotation_is_due() {
        let mut batcher = ObjectBatcher::new(&config(100, 60)).unwrap();
        let start = Instant::now();
        assert_eq!(batcher.due_at(), None);
        batcher
            .append(&record(0, 0), start + Duration::from_secs(5))
            .unwrap();
        batcher.append(&record(1, 0), start).unwrap();
        batcher
            .append(&record(1, 1), start + Duration::from_secs(9))
            .unwrap();
        assert_eq!(batcher.due_at(), Some(start + Duration::from_secs(60)));
        batcher
            .close_due(FlushMode::Due, start + Duration::from_secs(60))
            .unwrap();
        assert_eq!(batcher.due_at(), Some(start + Duration::from_secs(65)));
        batcher.close_due(FlushMode::All, start).unwrap();
        assert_eq!(batcher.due_at(), None);
    }

    #[test]
    fn rotates_on_age_even_without_new_records() {
        let mut batcher = ObjectBatcher::new(&config(1000, 5)).unwrap();
        let start = Instant::now();
        batcher.append(&record(0, 0), start).unwrap();
        batcher
            .append(&record(1, 0), start + Duration::from_secs(3))
            .unwrap();
        batcher
            .close_due(FlushMode::Due, start + Duration::from_secs(4))
            .unwrap();
        assert!(!batcher.has_queued(), "closed before its interval");
        batcher
            .close_due(FlushMode::Due, start + Duration::from_secs(5))
            .unwrap();
        assert_eq!(
            keys(&batcher),
            ["topics/t/partition=0/t+0+00000000000000000000.json"]
        );
        batcher
            .close_due(FlushMode::Due, start + Duration::from_secs(8))
            .unwrap();
        assert_eq!(keys(&batcher).len(), 2);
        assert_eq!(batcher.open_count(), 0);
    }

    #[test]
    fn rotates_on_bytes_without_ever_exceeding_the_limit() {
        // Each line is 25 bytes: `{"n":1x,"k":"a","x":0.0}\n`.
        let mut config = config(1000, 600);
        config.max_object_bytes = Some(ByteSize(60));
        let mut batcher = ObjectBatcher::new(&config).unwrap();
        let now = Instant::now();
        for offset in 10..15 {
            batcher.append(&record(0, offset), now).unwrap();
        }
        let objects = batcher.queued_objects();
        let sizes: Vec<(i64, usize)> = objects
            .iter()
            .map(|(_, o)| (o.first_offset(), o.body().len() as usize))
            .collect();
        // 10,11 (50 bytes; a third line would make 75) then 12,13; 14 still open.
        assert_eq!(sizes, [(10, 50), (12, 50)]);
        assert_eq!(batcher.open_count(), 1);
        // Exactly full closes at once.
        config.max_object_bytes = Some(ByteSize(50));
        let mut batcher = ObjectBatcher::new(&config).unwrap();
        batcher.append(&record(0, 10), now).unwrap();
        batcher.append(&record(0, 11), now).unwrap();
        assert_eq!(batcher.open_count(), 0);
        assert_eq!(batcher.queued_objects().len(), 1);
        // A record larger than the limit gets an object of its own.
        config.max_object_bytes = Some(ByteSize(10));
        let mut batcher = ObjectBatcher::new(&config).unwrap();
        for offset in 10..13 {
            batcher.append(&record(0, offset), now).unwrap();
        }
        let lens: Vec<usize> = batcher
            .queued_objects()
            .iter()
            .map(|(_, o)| o.len())
            .collect();
        assert_eq!(lens, [1, 1, 1]);
    }

    #[test]
    fn one_kafka_partition_feeds_an_object_per_path_each_with_its_first_offset() {
        let mut batcher = ObjectBatcher::new(&by_field(config(2, 600), "k")).unwrap();
        let now = Instant::now();
        for (offset, k) in [(5, "x"), (6, "y"), (7, "x"), (8, "y/z"), (9, "y")] {
            batcher.append(&keyed(0, offset, k), now).unwrap();
        }
        // x (5, 7) and y (6, 9) are full; y/z (8) is open.
        assert_eq!(
            keys(&batcher),
            [
                "topics/t/k=x/t+0+00000000000000000005.json",
                "topics/t/k=y/t+0+00000000000000000006.json",
            ]
        );
        assert_eq!(batcher.open_count(), 1);
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 5)].into_iter().collect()
        );
        // Both land. y/z opened at 8, but y's landed object (6..=9) spans 8
        // and x's (5..=7) spans 6: a rerun must start at 5.
        batcher.drop_queued();
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 5)].into_iter().collect()
        );
        batcher.append(&keyed(0, 10, "y"), now).unwrap();
        batcher.close_due(FlushMode::All, now).unwrap();
        assert_eq!(
            keys(&batcher),
            [
                "topics/t/k=y/t+0+00000000000000000010.json",
                "topics/t/k=y%2Fz/t+0+00000000000000000008.json",
            ]
        );
    }

    #[test]
    fn the_durable_offset_is_lowered_to_the_start_of_a_spanning_object() {
        let mut batcher = ObjectBatcher::new(&by_field(config(3, 600), "k")).unwrap();
        let now = Instant::now();
        // b opens at 0; a opens at 1; b (0, 2, 3) fills and lands; a (1) is open.
        for (offset, k) in [(0, "b"), (1, "a"), (2, "b"), (3, "b")] {
            batcher.append(&keyed(0, offset, k), now).unwrap();
        }
        batcher.drop_queued();
        // The oldest open object starts at 1, but b's landed object (0..=3)
        // spans 1: a rerun from 1 would put b's 2 and 3 in a second object.
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 0)].into_iter().collect()
        );
        batcher.close_due(FlushMode::All, now).unwrap();
        batcher.drop_queued();
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 4)].into_iter().collect()
        );
    }

    #[test]
    fn after_conflict_keeps_only_what_the_existing_object_lacks() {
        // Offsets 10, 12, 15 (gaps: other paths, or dropped records), lines of 5 bytes.
        let records = [(10, 5), (12, 10), (15, 15)];
        assert_eq!(
            after_conflict(&records, 9),
            AfterConflict::Remainder {
                index: 0,
                byte: 0,
                first_offset: 10
            }
        );
        assert_eq!(
            after_conflict(&records, 10),
            AfterConflict::Remainder {
                index: 1,
                byte: 5,
                first_offset: 12
            }
        );
        assert_eq!(
            after_conflict(&records, 14),
            AfterConflict::Remainder {
                index: 2,
                byte: 10,
                first_offset: 15
            }
        );
        assert_eq!(after_conflict(&records, 15), AfterConflict::AllThere);
        assert_eq!(after_conflict(&records, 99), AfterConflict::AllThere);

        let mut object = ClosedObject::new(
            Bytes::from_static(b"l10\nl12\nl15\n"),
            vec![(10, 4), (12, 8), (15, 12)],
        );
        assert_eq!(object.skip_through(11).unwrap(), 1);
        assert_eq!((object.first_offset(), object.len()), (12, 2));
        assert_eq!(object.body().bytes().as_ref(), b"l12\nl15\n");
        assert_eq!(
            object.skip_through(11).unwrap(),
            0,
            "skipping is idempotent"
        );
        assert_eq!(object.skip_through(15).unwrap(), 2);
        assert!(object.is_empty());
        assert!(object.body().is_empty());
    }

    #[test]
    fn tombstones_unplaceable_records_and_revoked_partitions() {
        let mut batcher = ObjectBatcher::new(&config(10, 60)).unwrap();
        let mut tombstone = record(2, 5);
        tombstone.value = None;
        let error = batcher.append(&tombstone, Instant::now()).unwrap_err();
        assert!(
            error.to_string().contains("t/2 offset 5 is a tombstone"),
            "{error}"
        );
        batcher.append(&record(0, 1), Instant::now()).unwrap();
        batcher.revoke(&[tp(0)]);
        assert!(batcher.durable_offsets().is_empty());
        assert_eq!(batcher.open_count(), 0);

        let mut config = config(10, 60);
        config.partitioner = PartitionerConfig {
            kind: PartitionerType::Time,
            ..Default::default()
        };
        let mut batcher = ObjectBatcher::new(&config).unwrap();
        let error = batcher.append(&record(0, 3), Instant::now()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("t/0 offset 3: the record has no timestamp"),
            "{error}"
        );
        assert!(batcher.durable_offsets().is_empty());
    }

    #[test]
    fn parquet_objects_take_only_json_objects() {
        let mut config = config(10, 60);
        config.format = crate::config::Format::Parquet;
        let mut batcher = ObjectBatcher::new(&config).unwrap();
        assert!(batcher.layout().key("t", "p", 0, 0).ends_with(".parquet"));
        let mut scalar = record(1, 4);
        scalar.value = Some(serde_json::json!([1, 2]));
        let error = batcher.append(&scalar, Instant::now()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("t/1 offset 4 is not a JSON object; `format: parquet`"),
            "{error}"
        );
        batcher.append(&record(1, 5), Instant::now()).unwrap();
        assert_eq!(batcher.open_count(), 1);
    }
}
