//! Transforms on the sink side: Kafka Connect's sink-only metadata (offset,
//! partition), a predicate with `negate`, dropped records counted and their
//! offsets committed.

mod common;

use std::time::Duration;

use common::{read_bucket, run_ok, try_read_bucket, unique, write_pipeline, Services};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[tokio::test(flavor = "multi_thread")]
async fn sink_transforms_reshape_drop_and_commit() {
    let services = Services::get();
    let name = unique("sinkxf");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            r#"name: {name}
topic: {{ name: {name}, partitions: 2 }}
predicates:
  archive_topics:
    type: topic_name_matches
    pattern: "archive-.*"
source:
  type: csv_replay
  path: {data}
  key_column: Index
  limit: 300
sinks:
  slim:
    type: s3_json
    bucket: {name}
    endpoint: ${{env:S3_ENDPOINT}}
    create_bucket: true
    transforms:
      - type: replace_field
        include: [Index, Date, Close]
      - type: insert_field
        partition_field: kafka.partition
        offset_field: kafka.offset
  none:
    type: s3_json
    bucket: {name}-none
    endpoint: ${{env:S3_ENDPOINT}}
    create_bucket: true
    transforms:
      - type: filter
        predicate: archive_topics
        negate: true
"#,
            data = common::dataset().display()
        ),
    );
    let output = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("none         dropped by transforms   300"),
        "summary:\n{summary}"
    );

    let mut offsets_seen = std::collections::BTreeSet::new();
    for (key, body) in read_bucket(&services.s3().await, &name).await {
        let partition: i64 = key
            .split("partition=")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .expect("partition");
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let fields: Vec<&str> = value
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(fields, ["Index", "Date", "Close", "kafka"], "{line}");
            assert_eq!(
                value["kafka"]["partition"].as_i64(),
                Some(partition),
                "{line}"
            );
            let offset = value["kafka"]["offset"].as_i64().expect("offset");
            assert!(
                offsets_seen.insert((partition, offset)),
                "offset {partition}/{offset} twice"
            );
        }
    }
    assert_eq!(offsets_seen.len(), 300);

    // The sink that dropped everything wrote nothing, yet committed past every record.
    let none_bucket = try_read_bucket(&services.s3().await, &format!("{name}-none"))
        .await
        .unwrap_or_default();
    assert!(none_bucket.is_empty(), "{:?}", none_bucket.keys());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("group.id", format!("sluice-{name}-none"))
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition(&name, 0);
    list.add_partition(&name, 1);
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    for element in committed.elements() {
        let (_, high) = consumer
            .fetch_watermarks(&name, element.partition(), Duration::from_secs(10))
            .expect("watermarks");
        let committed = match element.offset() {
            Offset::Offset(o) => o,
            // A partition that received no record has nothing to commit.
            _ => 0,
        };
        assert_eq!(
            committed,
            high,
            "partition {}: committed vs end offset",
            element.partition()
        );
    }
}
