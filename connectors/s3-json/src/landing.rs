//! Landing closed objects in a store without ever writing a record twice.
//!
//! The objects of one partition path land one after the other (rule 1 of
//! [`crate::batcher`]); different paths land concurrently. An upload never
//! overwrites: when the key exists, the existing object's last offset says
//! which records are already there, those are dropped and the rest is tried
//! again under its own key (rule 2).

use std::collections::BTreeSet;

use async_trait::async_trait;

use connect_core::{ConnectorError, ConnectorResult};
use futures::stream::{self, StreamExt};

use crate::batcher::{Chain, ChainOutcome, KeyLayout, ObjectBatcher, Uploaded};
use crate::spool::Body;

/// One object to put.
#[derive(Debug, Clone)]
pub struct PutRequest<'a> {
    /// Its key.
    pub key: &'a str,
    /// Its body, compressed when compressing (on disk when large).
    pub body: Body,
    /// Offset of its first record.
    pub first_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Number of records.
    pub records: usize,
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutResult {
    /// The object was written.
    Written,
    /// An object with that key exists; nothing was written.
    Exists,
}

/// The few operations landing needs; S3 in production, memory in tests.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Writes the object unless its key exists (never overwrites).
    async fn put_new(&self, request: PutRequest<'_>) -> ConnectorResult<PutResult>;

    /// The last offset recorded in the existing object `key`'s metadata, checked
    /// against `first_offset`; `None` when there is no such object (any more).
    async fn existing_last_offset(
        &self,
        key: &str,
        first_offset: i64,
    ) -> ConnectorResult<Option<i64>>;
}

/// Lands the objects of one chain in order; stops at the first error.
pub async fn land_chain(store: &dyn ObjectStore, layout: &KeyLayout, chain: Chain) -> ChainOutcome {
    let Chain {
        partition,
        path,
        objects,
        covered,
    } = chain;
    let mut outcome = ChainOutcome {
        partition,
        path,
        done: 0,
        covered,
        landed: Vec::new(),
        uploaded: Vec::new(),
        error: None,
    };
    let tp = outcome.partition.clone();
    'objects: for mut object in objects {
        let mut vanished = 0;
        loop {
            if let Some(covered) = outcome.covered {
                let skipped = match object.skip_through(covered) {
                    Ok(skipped) => skipped,
                    Err(error) => {
                        outcome.error = Some(error);
                        break 'objects;
                    }
                };
                if skipped > 0 {
                    tracing::debug!(partition = %tp, path = %outcome.path, skipped, covered, "records already in the bucket skipped");
                }
            }
            if object.is_empty() {
                outcome.done += 1;
                continue 'objects;
            }
            let first_offset = object.first_offset();
            let last_offset = object.last_offset();
            let key = layout.key(&tp.topic, &outcome.path, tp.partition, first_offset);
            let body = match layout.encoding.encode(&key, object.body()).await {
                Ok(body) => body,
                Err(error) => {
                    outcome.error = Some(error);
                    break 'objects;
                }
            };
            let bytes = body.len() as usize;
            let request = PutRequest {
                key: &key,
                body,
                first_offset,
                last_offset,
                records: object.len(),
            };
            match store.put_new(request).await {
                Ok(PutResult::Written) => {
                    outcome.landed.push((first_offset, last_offset));
                    outcome.uploaded.push(Uploaded {
                        key,
                        records: object.len(),
                        bytes,
                    });
                    outcome.done += 1;
                    continue 'objects;
                }
                Ok(PutResult::Exists) => {}
                Err(error) => {
                    outcome.error = Some(error);
                    break 'objects;
                }
            }
            match store.existing_last_offset(&key, first_offset).await {
                Ok(Some(existing_last)) => {
                    let already = match object.records_through(existing_last) {
                        Ok(already) => already,
                        Err(error) => {
                            outcome.error = Some(error);
                            break 'objects;
                        }
                    };
                    tracing::info!(
                        key = %key,
                        existing_last,
                        already,
                        rest = object.len() - already,
                        "object exists (written by an earlier run): skipping the records it holds"
                    );
                    outcome.landed.push((first_offset, existing_last));
                    outcome.covered = Some(
                        outcome
                            .covered
                            .map_or(existing_last, |c| c.max(existing_last)),
                    );
                }
                Ok(None) => {
                    // Deleted between the put and the look-up: try the put again.
                    vanished += 1;
                    if vanished > 3 {
                        outcome.error = Some(ConnectorError::retriable(format!(
                            "{key} exists when written and is gone when read, again and again"
                        )));
                        break 'objects;
                    }
                }
                Err(error) => {
                    outcome.error = Some(error);
                    break 'objects;
                }
            }
        }
    }
    outcome
}

/// What [`land_all`] did.
#[derive(Debug, Default)]
pub struct Landing {
    /// The objects uploaded.
    pub uploaded: Vec<Uploaded>,
    /// `(topic, partition path)` of every path that now has an object in the
    /// bucket, uploaded now or found there (written by an earlier run).
    pub paths: BTreeSet<(String, String)>,
    /// The first error; objects not landed stay queued.
    pub error: Option<ConnectorError>,
}

/// Lands every queued object of `batcher` (chains concurrently, at most
/// `concurrency` at once) and takes in the outcomes.
pub async fn land_all(
    store: &dyn ObjectStore,
    batcher: &mut ObjectBatcher,
    concurrency: usize,
) -> Landing {
    if !batcher.has_queued() {
        return Landing::default();
    }
    let layout = batcher.layout().clone();
    let chains = batcher.chains();
    let outcomes: Vec<ChainOutcome> = stream::iter(chains)
        .map(|chain| land_chain(store, &layout, chain))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut landing = Landing::default();
    for mut outcome in outcomes {
        batcher.apply(&outcome);
        landing.uploaded.append(&mut outcome.uploaded);
        if !outcome.landed.is_empty() {
            landing
                .paths
                .insert((outcome.partition.topic.to_string(), outcome.path.clone()));
        }
        if let Some(error) = outcome.error.take() {
            landing.error.get_or_insert(error);
        }
    }
    landing
}

/// An in-memory store for tests: objects with their offset metadata, and
/// failures on demand.
#[cfg(test)]
pub(crate) mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;

    /// A stored object.
    #[derive(Debug, Clone)]
    pub struct Stored {
        pub body: Bytes,
        pub first: i64,
        pub last: i64,
        pub records: usize,
    }

    #[derive(Default)]
    pub struct MemoryStore {
        pub objects: Mutex<BTreeMap<String, Stored>>,
        /// Decides, per put (by key), whether it fails retriably.
        #[allow(clippy::type_complexity)]
        pub fail: Mutex<Option<Box<dyn FnMut(&str) -> bool + Send>>>,
        pub puts: Mutex<u64>,
    }

    impl MemoryStore {
        pub fn failing(fail: impl FnMut(&str) -> bool + Send + 'static) -> Self {
            Self {
                fail: Mutex::new(Some(Box::new(fail))),
                ..Default::default()
            }
        }

        pub fn stop_failing(&self) {
            *self.fail.lock().unwrap() = None;
        }

        pub fn keys(&self) -> Vec<String> {
            self.objects.lock().unwrap().keys().cloned().collect()
        }
    }

    #[async_trait]
    impl ObjectStore for MemoryStore {
        async fn put_new(&self, request: PutRequest<'_>) -> ConnectorResult<PutResult> {
            tokio::task::yield_now().await;
            *self.puts.lock().unwrap() += 1;
            if let Some(fail) = self.fail.lock().unwrap().as_mut() {
                if fail(request.key) {
                    return Err(ConnectorError::retriable(format!(
                        "injected failure putting {}",
                        request.key
                    )));
                }
            }
            let mut objects = self.objects.lock().unwrap();
            if objects.contains_key(request.key) {
                return Ok(PutResult::Exists);
            }
            objects.insert(
                request.key.to_owned(),
                Stored {
                    body: request
                        .body
                        .into_bytes()
                        .expect("a spooled body reads back"),
                    first: request.first_offset,
                    last: request.last_offset,
                    records: request.records,
                },
            );
            Ok(PutResult::Written)
        }

        async fn existing_last_offset(
            &self,
            key: &str,
            first_offset: i64,
        ) -> ConnectorResult<Option<i64>> {
            let objects = self.objects.lock().unwrap();
            Ok(objects.get(key).map(|o| {
                assert_eq!(o.first, first_offset, "{key}");
                o.last
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::time::{Duration, Instant};

    use connect_core::plugin::FlushMode;

    use super::memory::MemoryStore;
    use super::*;
    use crate::batcher::tests::{by_field, config, keyed, record, tp};
    use crate::config::{ByteSize, Compression, Format, ParquetConfig};
    use crate::encoding::{gzip, Encoding};

    fn gunzip(body: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(body)
            .read_to_string(&mut text)
            .expect("gzip");
        text
    }

    /// The `n` of every row of a Parquet object.
    fn parquet_ns(body: &Bytes) -> Vec<i64> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::Int64Type;
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body.clone())
                .expect("a Parquet file")
                .build()
                .expect("reader");
        reader
            .flat_map(|batch| {
                let batch = batch.expect("batch");
                let column = batch.column_by_name("n").expect("column n");
                column.as_primitive::<Int64Type>().values().to_vec()
            })
            .collect()
    }

    /// The `n` of every line (or row) of every stored object, per object key.
    fn stored_offsets(store: &MemoryStore, encoding: Encoding) -> BTreeMap<String, Vec<i64>> {
        store
            .objects
            .lock()
            .unwrap()
            .iter()
            .map(|(key, object)| {
                let text = match encoding {
                    Encoding::Json(Compression::None) => {
                        String::from_utf8(object.body.to_vec()).unwrap()
                    }
                    Encoding::Json(Compression::Gzip) => gunzip(&object.body),
                    Encoding::Parquet(_) => {
                        assert!(key.ends_with(".parquet"), "{key}");
                        String::new()
                    }
                };
                let offsets: Vec<i64> = match encoding {
                    Encoding::Parquet(_) => parquet_ns(&object.body),
                    Encoding::Json(_) => text
                        .lines()
                        .map(|l| {
                            serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                                .as_i64()
                                .unwrap()
                        })
                        .collect(),
                };
                assert_eq!(offsets.first(), Some(&object.first), "{key}");
                assert_eq!(offsets.last(), Some(&object.last), "{key}");
                assert_eq!(offsets.len(), object.records, "{key}");
                (key.clone(), offsets)
            })
            .collect()
    }

    #[tokio::test]
    async fn gzip_objects_round_trip_and_are_named_json_gz() {
        let mut config = config(3, 600);
        config.compression = Compression::Gzip;
        let mut batcher = ObjectBatcher::new(&config).unwrap();
        let now = Instant::now();
        for offset in 0..4 {
            batcher.append(&record(0, offset), now).unwrap();
        }
        batcher.close_due(FlushMode::All, now).unwrap();
        let store = MemoryStore::default();
        let Landing {
            uploaded, error, ..
        } = land_all(&store, &mut batcher, 2).await;
        assert!(error.is_none());
        assert_eq!(
            store.keys(),
            [
                "topics/t/partition=0/t+0+00000000000000000000.json.gz",
                "topics/t/partition=0/t+0+00000000000000000003.json.gz"
            ]
        );
        let objects = store.objects.lock().unwrap();
        let first = &objects["topics/t/partition=0/t+0+00000000000000000000.json.gz"];
        assert_eq!(&first.body[..2], &[0x1f, 0x8b], "gzip magic");
        assert_eq!(
            gunzip(&first.body),
            "{\"n\":0,\"k\":\"a\",\"x\":0.0}\n{\"n\":1,\"k\":\"a\",\"x\":0.0}\n{\"n\":2,\"k\":\"a\",\"x\":0.0}\n"
        );
        assert_eq!(
            uploaded[0].bytes + uploaded[1].bytes,
            objects.values().map(|o| o.body.len()).sum::<usize>()
        );
        assert_eq!(gzip(b"").map(|b| gunzip(&b)).unwrap(), "");
    }

    #[tokio::test]
    async fn the_memory_budget_closes_the_largest_objects_and_frees_what_lands() {
        let mut config = by_field(config(1000, 3600), "k");
        config.memory_budget = ByteSize(2000);
        let mut batcher = ObjectBatcher::new(&config).unwrap();
        let now = Instant::now();
        let mut offset = 0;
        while !batcher.over_budget() {
            for k in ["a", "a", "a", "b", "c"] {
                batcher.append(&keyed(0, offset, k), now).unwrap();
                offset += 1;
            }
        }
        let held = batcher.buffered();
        assert!(held > 2000);
        assert_eq!(
            batcher.close_largest().unwrap(),
            1,
            "path a holds more than half: closing it is enough"
        );
        assert_eq!(batcher.buffered(), held, "closed, not uploaded: still held");
        let store = MemoryStore::default();
        assert!(land_all(&store, &mut batcher, 2).await.error.is_none());
        assert!(batcher.buffered() < held / 2, "{}", batcher.buffered());
        assert!(!batcher.over_budget());
        let keys = store.keys();
        assert_eq!(keys, ["topics/t/k=a/t+0+00000000000000000000.json"]);
        // b and c are still open (the first b record is offset 3), and the
        // landed object of a spans offset 3: nothing is durable yet (rule 3).
        assert_eq!(batcher.durable_offsets()[&tp(0)], 0);
    }

    #[tokio::test]
    async fn records_given_again_after_a_failed_write_are_taken_once() {
        let mut batcher = ObjectBatcher::new(&config(100, 600)).unwrap();
        let now = Instant::now();
        for offset in (0..4).chain(0..6) {
            batcher.append(&record(0, offset), now).unwrap();
        }
        batcher.close_due(FlushMode::All, now).unwrap();
        let store = MemoryStore::default();
        assert!(land_all(&store, &mut batcher, 2).await.error.is_none());
        assert_eq!(
            stored_offsets(&store, Encoding::Json(Compression::None))
                .into_values()
                .collect::<Vec<_>>(),
            [vec![0, 1, 2, 3, 4, 5]]
        );
    }

    /// Writes what an earlier run left: objects of `path` of partition 0 covering `ranges`.
    async fn earlier_run(store: &MemoryStore, path_records: &[(i64, &str)], flush_size: u64) {
        let mut batcher = ObjectBatcher::new(&by_field(config(flush_size, 600), "k")).unwrap();
        for &(offset, k) in path_records {
            batcher
                .append(&keyed(0, offset, k), Instant::now())
                .unwrap();
        }
        batcher.close_due(FlushMode::All, Instant::now()).unwrap();
        let error = land_all(store, &mut batcher, 1).await.error;
        assert!(error.is_none());
    }

    #[tokio::test]
    async fn an_existing_key_splits_the_object_and_only_the_rest_lands() {
        let store = MemoryStore::default();
        // An earlier run wrote 0..=4 and 5..=9.
        let earlier: Vec<(i64, &str)> = (0..10).map(|o| (o, "a")).collect();
        earlier_run(&store, &earlier, 5).await;
        // This run cut 0..=12 as one object: 412 at 0 (holds ..=4), 412 at 5
        // (holds ..=9), then 10..=12 lands under its own key.
        let mut batcher = ObjectBatcher::new(&by_field(config(13, 600), "k")).unwrap();
        for offset in 0..13 {
            batcher
                .append(&keyed(0, offset, "a"), Instant::now())
                .unwrap();
        }
        batcher.close_due(FlushMode::All, Instant::now()).unwrap();
        let Landing {
            uploaded, error, ..
        } = land_all(&store, &mut batcher, 1).await;
        assert!(error.is_none());
        assert_eq!(
            uploaded,
            [Uploaded {
                key: "topics/t/k=a/t+0+00000000000000000010.json".into(),
                records: 3,
                bytes: 75
            }]
        );
        let objects = stored_offsets(&store, Encoding::Json(Compression::None));
        let all: Vec<i64> = objects.values().flatten().copied().collect();
        assert_eq!(all, (0..13).collect::<Vec<_>>());
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 13)].into_iter().collect()
        );
    }

    #[tokio::test]
    async fn what_an_existing_object_covers_carries_over_to_the_next_objects_of_its_path() {
        let store = MemoryStore::default();
        // An earlier run wrote a's 0..=9 in one object, and b's 3.
        let earlier: Vec<(i64, &str)> = (0..10)
            .map(|o| (o, if o == 3 { "b" } else { "a" }))
            .collect();
        earlier_run(&store, &earlier, 100).await;
        // This run cuts a after 3 records: 0,1,2 (412 → all there), then
        // 4,5,6 (no key 4 exists, but 0..=9 holds them: skipped), 7,8,9
        // (skipped), 10 (lands).
        let mut batcher = ObjectBatcher::new(&by_field(config(3, 600), "k")).unwrap();
        for &(offset, k) in &earlier {
            batcher
                .append(&keyed(0, offset, k), Instant::now())
                .unwrap();
        }
        batcher.append(&keyed(0, 10, "a"), Instant::now()).unwrap();
        batcher.close_due(FlushMode::All, Instant::now()).unwrap();
        let Landing {
            uploaded, error, ..
        } = land_all(&store, &mut batcher, 4).await;
        assert!(error.is_none(), "{error:?}");
        let keys: Vec<&str> = uploaded.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["topics/t/k=a/t+0+00000000000000000010.json"]);
        let all: Vec<i64> = stored_offsets(&store, Encoding::Json(Compression::None))
            .values()
            .flatten()
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(all, (0..11).collect::<Vec<_>>());
        assert_eq!(store.keys().len(), 3);
    }

    #[tokio::test]
    async fn a_failed_upload_holds_back_the_later_objects_of_its_path_only() {
        let store = MemoryStore::failing(|key| key.contains("k=a/t+0+00000000000000000000"));
        let mut batcher = ObjectBatcher::new(&by_field(config(2, 600), "k")).unwrap();
        for (offset, k) in [(0, "a"), (1, "a"), (2, "b"), (3, "a"), (4, "a"), (5, "b")] {
            batcher
                .append(&keyed(0, offset, k), Instant::now())
                .unwrap();
        }
        let Landing {
            uploaded, error, ..
        } = land_all(&store, &mut batcher, 4).await;
        assert!(
            matches!(error, Some(ConnectorError::Retriable(_))),
            "{error:?}"
        );
        // b landed; a's second object waits for its first.
        assert_eq!(store.keys(), ["topics/t/k=b/t+0+00000000000000000002.json"]);
        assert_eq!(uploaded.len(), 1);
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 0)].into_iter().collect()
        );
        store.stop_failing();
        let Landing {
            uploaded, error, ..
        } = land_all(&store, &mut batcher, 4).await;
        assert!(error.is_none());
        assert_eq!(uploaded.len(), 2);
        assert_eq!(
            batcher.durable_offsets(),
            [(tp(0), 6)].into_iter().collect()
        );
    }

    /// A small deterministic generator, so failures are reproducible by seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Several runs over the same two partitions, each cutting objects at
    /// other points (count, bytes, age), failing uploads at random and
    /// crashing at a random point; a run resumes from the offsets the one
    /// before committed, as the runtime does. The last run finishes. Every
    /// record must be in the store exactly once.
    async fn crash_and_rerun(seed: u64) {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        const TOTAL: i64 = 240;
        let paths = 1 + rng.below(4);
        let key_of: Vec<Vec<String>> = (0..2)
            .map(|_| {
                (0..TOTAL)
                    .map(|_| format!("p{}", rng.below(paths)))
                    .collect()
            })
            .collect();
        let encoding = match rng.below(3) {
            0 => Encoding::Json(Compression::None),
            1 => Encoding::Json(Compression::Gzip),
            _ => Encoding::Parquet(ParquetConfig {
                row_group_rows: 1 + rng.below(5) as usize,
                ..Default::default()
            }),
        };
        let store = MemoryStore::default();
        let mut committed = [0i64; 2];
        let runs = 2 + rng.below(3);
        for run in 0..=runs {
            let last = run == runs;
            let mut config = by_field(config(1 + rng.below(12), 1 + rng.below(4)), "k");
            match encoding {
                Encoding::Json(compression) => config.compression = compression,
                Encoding::Parquet(settings) => {
                    config.format = Format::Parquet;
                    config.parquet = settings;
                }
            }
            if rng.below(3) == 0 {
                config.max_object_bytes = Some(ByteSize(30 + rng.below(200)));
            }
            if rng.below(3) == 0 {
                config.memory_budget = ByteSize(60 + rng.below(600));
            }
            if rng.below(2) == 0 {
                // Objects past a few lines go on growing on disk.
                config.multipart_threshold = ByteSize(20 + rng.below(200));
            }
            let mut batcher = ObjectBatcher::new(&config).unwrap();
            let mut fail_rng = Rng(rng.next() | 1);
            let fail_percent = if last { 0 } else { rng.below(50) };
            *store.fail.lock().unwrap() =
                Some(Box::new(move |_: &str| fail_rng.below(100) < fail_percent));
            let stop: [i64; 2] = if last {
                [TOTAL; 2]
            } else {
                [0, 1].map(|p| committed[p] + rng.below((TOTAL - committed[p]) as u64 + 1) as i64)
            };
            let mut next = committed;
            let start = Instant::now();
            let mut clock = Duration::ZERO;
            while next != stop {
                let p = rng.below(2) as usize;
                let batch_start = next[p];
                let batch_end = (next[p] + 1 + rng.below(10) as i64).min(stop[p]);
                while next[p] < batch_end {
                    let offset = next[p];
                    let r = keyed(p as i32, offset, &key_of[p][offset as usize]);
                    batcher.append(&r, start + clock).unwrap();
                    next[p] += 1;
                    // As the sink's `write` does at its memory budget.
                    if batcher.over_budget() {
                        batcher.close_largest().unwrap();
                        land_all(&store, &mut batcher, 3).await;
                    }
                }
                // A `write` retried with the same batch: what was taken is ignored.
                if rng.below(4) == 0 {
                    for offset in batch_start..batch_end {
                        let r = keyed(p as i32, offset, &key_of[p][offset as usize]);
                        batcher.append(&r, start + clock).unwrap();
                    }
                }
                clock += Duration::from_millis(rng.below(1500));
                batcher.close_due(FlushMode::Due, start + clock).unwrap();
                let error = land_all(&store, &mut batcher, 3).await.error;
                if error.is_none() {
                    for (tp, offset) in batcher.durable_offsets() {
                        let p = tp.partition as usize;
                        assert!(
                            offset >= committed[p],
                            "seed {seed}: durable offset went back"
                        );
                        assert!(
                            offset <= next[p],
                            "seed {seed}: durable beyond what was read"
                        );
                        committed[p] = offset;
                    }
                }
            }
            if last {
                store.stop_failing();
                batcher.close_due(FlushMode::All, start + clock).unwrap();
                let error = land_all(&store, &mut batcher, 3).await.error;
                assert!(error.is_none(), "seed {seed}: {error:?}");
                for (tp, offset) in batcher.durable_offsets() {
                    committed[tp.partition as usize] = offset;
                }
                assert_eq!(committed, [TOTAL; 2], "seed {seed}");
            }
            // Otherwise: a crash. The batcher and everything it held are gone.
        }
        let objects = stored_offsets(&store, encoding);
        for (p, keys) in key_of.iter().enumerate() {
            let mut seen: Vec<i64> = objects
                .iter()
                .filter(|(key, _)| key.contains(&format!("+{p}+")))
                .flat_map(|(key, offsets)| {
                    for &o in offsets {
                        assert!(
                            key.contains(&format!("/k={}/", keys[o as usize])),
                            "seed {seed}: {o} in {key}"
                        );
                    }
                    offsets.iter().copied()
                })
                .collect();
            seen.sort_unstable();
            let duplicates: Vec<i64> = seen
                .windows(2)
                .filter(|w| w[0] == w[1])
                .map(|w| w[0])
                .collect();
            assert!(
                duplicates.is_empty(),
                "seed {seed}: partition {p} has {duplicates:?} twice:\n{objects:#?}"
            );
            assert_eq!(
                seen,
                (0..TOTAL).collect::<Vec<_>>(),
                "seed {seed}: partition {p}"
            );
        }
    }

    #[tokio::test]
    async fn crashes_and_reruns_with_other_cuts_keep_every_record_exactly_once() {
        for seed in 1..=200 {
            crash_and_rerun(seed).await;
        }
    }
}
