//! P1 replay: CSV → Kafka at `rate: max` by `sluice run`, against a raw
//! librdkafka producer sending the same records with the same settings.
//! Also P4's figures of the run: peak RSS and time to the first record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use connect_core::kafka::producer_config;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde::Serialize;

use crate::context::{timeout_for, Bench, PARTITIONS};
use crate::data::Dataset;
use crate::kafka::{self, Dump};
use crate::services::Services;
use crate::stats::Rate;

/// What P1 measured on one data set.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub dataset: String,
    /// Records in Kafka: the CSV's rows.
    pub records: u64,
    /// Sluice, from the first record's timestamp to the process's exit
    /// (bytes: keys and values as in Kafka).
    pub sluice: Rate,
    /// Sluice, from spawning the process to its exit.
    pub sluice_wall: Rate,
    /// The raw producer, from its first send to the end of its flush.
    pub baseline: Rate,
    /// `sluice` over `baseline`, records per second.
    pub ratio: f64,
    /// From spawning `sluice` to the first record's timestamp.
    pub first_record_ms: f64,
    /// Peak RSS of the `sluice` process.
    pub peak_rss_kib: u64,
    /// Value bytes in Kafka (what a JSON Lines sink writes, without newlines).
    pub value_bytes: u64,
    /// Sluice's output topic (P2 reads it).
    #[serde(skip)]
    pub topic: String,
}

pub async fn run(bench: &Bench, dataset: &Dataset) -> anyhow::Result<Replay> {
    let name = bench.unique("p1");
    bench.created_topic(&name);
    let pipeline = format!(
        "name: {name}\n\
         topic:\n  name: {name}\n  partitions: {PARTITIONS}\n  replication_factor: 1\n\
         source:\n  type: csv_replay\n  path: {path}\n  key_column: Index\n  rate: max\n",
        path = dataset.path.display()
    );
    tracing::info!(dataset = %dataset.label, rows = dataset.rows, topic = %name, "P1: sluice run");
    let mut sluice = bench.start_sluice(&name, &pipeline)?;
    let exit = sluice.wait_success(timeout_for(dataset.rows)).await?;

    let services = bench.services.clone();
    let topic = name.clone();
    let timeout = timeout_for(dataset.rows);
    let dump = tokio::task::spawn_blocking(move || kafka::read_topic(&services, &topic, timeout))
        .await
        .context("the topic reader panicked")??;
    let records = dump.records.len() as u64;
    if records != dataset.rows {
        bail!(
            "sluice wrote {records} records to {name}, expected the data set's {} rows",
            dataset.rows
        );
    }
    let first = dump
        .records
        .iter()
        .map(|r| r.timestamp)
        .min()
        .context("no records")?;
    let bytes = dump.key_value_bytes();
    let first_record_ms = first as f64 - sluice.started_epoch_ms;
    let sluice_rate = Rate::new(records, bytes, (exit.epoch_ms - first as f64) / 1000.0);
    let sluice_wall = Rate::new(
        records,
        bytes,
        exit.at.duration_since(sluice.started).as_secs_f64(),
    );

    // The baseline sends the very records Sluice wrote, in about the order it
    // wrote them (by timestamp: a poll's records share one), to a fresh topic.
    let raw_topic = format!("{name}-raw");
    kafka::create_topic(&bench.services, &raw_topic, PARTITIONS).await?;
    bench.created_topic(&raw_topic);
    let mut order: Vec<usize> = (0..dump.records.len()).collect();
    order.sort_by_key(|&i| {
        let r = &dump.records[i];
        (r.timestamp, r.partition, r.offset)
    });
    tracing::info!(dataset = %dataset.label, topic = %raw_topic, "P1: raw producer");
    let services = bench.services.clone();
    let (seconds, dump) = tokio::task::spawn_blocking(move || {
        raw_produce(&services, &raw_topic, &dump, &order).map(|seconds| (seconds, dump))
    })
    .await
    .context("the raw producer panicked")??;
    let baseline = Rate::new(records, bytes, seconds);

    Ok(Replay {
        dataset: dataset.label.clone(),
        records,
        ratio: sluice_rate.ratio_to(&baseline),
        sluice: sluice_rate,
        sluice_wall,
        baseline,
        first_record_ms,
        peak_rss_kib: exit.max_rss_kib,
        value_bytes: dump.value_bytes(),
        topic: name,
    })
}

/// The value of the raw producer's warm-up record.
const WARM_UP: &[u8] = b"\"warm-up\"";

/// Counts delivery reports.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.delivered
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends `dump`'s records in `order` with Sluice's producer settings and
/// waits for every acknowledgement; returns the seconds from the first send
/// to the end of the flush. Blocking.
fn raw_produce(
    services: &Services,
    topic: &str,
    dump: &Dump,
    order: &[usize],
) -> anyhow::Result<f64> {
    let producer: BaseProducer<Deliveries> = producer_config(&services.kafka_config())
        .create_with_context(Deliveries::default())
        .context("cannot create the raw producer")?;
    // Connected, with its idempotent producer id and the topic's metadata
    // before the clock starts, as Sluice's producer is when its first record
    // is read: one warm-up record (not counted) goes first.
    producer
        .send(BaseRecord::<[u8], [u8]>::to(topic).payload(WARM_UP))
        .map_err(|(error, _)| error)
        .with_context(|| format!("raw producer to {topic}: the warm-up record"))?;
    producer
        .flush(Duration::from_secs(30))
        .with_context(|| format!("raw producer to {topic}: the warm-up record"))?;
    let start = Instant::now();
    for (sent, &index) in order.iter().enumerate() {
        let record = &dump.records[index];
        loop {
            let mut message = BaseRecord::<[u8], [u8]>::to(topic);
            if let Some(key) = dump.key(record) {
                message = message.key(key);
            }
            if let Some(value) = dump.value(record) {
                message = message.payload(value);
            }
            match producer.send(message) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    return Err(error).with_context(|| format!("raw producer to {topic}"))
                }
            }
        }
        // Delivery reports are served here (Sluice's producer has a thread for them).
        if sent % 100 == 99 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .with_context(|| format!("flushing the raw producer to {topic}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let deliveries = producer.context();
    let failed = deliveries.failed.load(Ordering::Relaxed);
    let delivered = deliveries.delivered.load(Ordering::Relaxed);
    if failed > 0 || delivered != order.len() as u64 + 1 {
        bail!(
            "raw producer to {topic}: {delivered} delivered, {failed} failed of {} and the warm-up record",
            order.len()
        );
    }
    Ok(seconds)
}
