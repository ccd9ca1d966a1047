//! `rate: 200/s` replays at that rate, measured on the records' Kafka timestamps.

mod common;

use std::time::Duration;

use common::{run_ok, unique, write_pipeline, Services};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};

#[tokio::test(flavor = "multi_thread")]
async fn replays_at_the_configured_rate_within_ten_percent() {
    let services = Services::get();
    let name = unique("rate");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: 1 }}\nsource:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  rate: 200/s\n  limit: 600\n",
            common::dataset().display()
        ),
    );
    let started = std::time::Instant::now();
    run_ok(services.sluice().arg("run").arg(&pipeline));
    assert!(
        started.elapsed() >= Duration::from_millis(2700),
        "600 rows at 200/s finished in {:?}",
        started.elapsed()
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("group.id", unique("rate-check"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&name]).expect("subscribe");
    let mut timestamps = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while timestamps.len() < 600 && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message.expect("message");
            timestamps.push(message.timestamp().to_millis().expect("timestamp"));
        }
    }
    assert_eq!(
        timestamps.len(),
        600,
        "limit: 600 produced {} records",
        timestamps.len()
    );
    let span_ms = (timestamps[599] - timestamps[0]) as f64;
    let rate = 599.0 / (span_ms / 1000.0);
    assert!(
        (180.0..=220.0).contains(&rate),
        "measured {rate:.1} records/s over {span_ms} ms, wanted 200 ± 10%"
    );
}
