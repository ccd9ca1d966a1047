//! Pass-through: with no sink transform and the `json` value converter,
//! s3_json writes each value's bytes as Kafka holds them (one JSON value on
//! one line), without decoding and encoding it again. A value spread over
//! several lines is still written as one line, a sink with a transform
//! writes what the transform made, and the field partitioner reads its field
//! from the text.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{read_bucket, try_read_bucket, unique, write_pipeline, Services};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

/// Values as a producer other than Sluice wrote them: spaces, an escaped
/// character, a number with a trailing zero, a pretty-printed object.
const VALUES: [&str; 5] = [
    r#"{ "Index" : "NYA", "name": "caf\u00e9", "Close": 1.50 }"#,
    r#"{"Index":"HSI","nested":{"a":[1, 2,3]}}"#,
    "{\n  \"Index\": \"N225\",\n  \"Close\": 2.0\n}",
    r#"{"Index":"NYA","name":"plain"}"#,
    r#"{"name":"no index"}"#,
];

async fn lines_in(services: &Services, bucket: &str) -> usize {
    try_read_bucket(&services.s3().await, bucket)
        .await
        .unwrap_or_default()
        .values()
        .map(|body| body.lines().count())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn values_pass_through_as_kafka_holds_them_unless_a_transform_runs() {
    let services = Services::get();
    let name = unique("passthru");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .create()
        .expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(&name, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .create()
        .expect("producer");
    for value in VALUES {
        producer
            .send(BaseRecord::<(), str>::to(&name).payload(value))
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");

    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            r#"name: {name}
topic: {{ name: {name} }}
runtime: {{ flush_interval: 200ms }}
sinks:
  raw:
    type: s3_json
    bucket: {name}-raw
    endpoint: ${{env:S3_ENDPOINT}}
    create_bucket: true
    rotate_interval: 1s
  by_index:
    type: s3_json
    bucket: {name}-index
    endpoint: ${{env:S3_ENDPOINT}}
    create_bucket: true
    rotate_interval: 1s
    partitioner: {{ type: field, field: Index }}
  shaped:
    type: s3_json
    bucket: {name}-shaped
    endpoint: ${{env:S3_ENDPOINT}}
    create_bucket: true
    rotate_interval: 1s
    transforms:
      - type: insert_field
        static_field: via
        static_value: sluice
"#
        ),
    );
    let child = services.spawn_run(&pipeline);
    let deadline = Instant::now() + Duration::from_secs(90);
    for suffix in ["raw", "index", "shaped"] {
        while lines_in(&services, &format!("{name}-{suffix}")).await < VALUES.len() {
            assert!(
                Instant::now() < deadline,
                "sink {suffix} did not land {} values within 90 s",
                VALUES.len()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    assert!(child.sigterm_and_wait().success());

    let s3 = services.s3().await;
    // Byte for byte what Kafka holds, but the multi-line value, which is
    // written as one line.
    let raw: Vec<String> = read_bucket(&s3, &format!("{name}-raw"))
        .await
        .values()
        .flat_map(|body| body.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let mut expected: Vec<String> = VALUES.iter().map(|v| (*v).to_owned()).collect();
    expected[2] = r#"{"Index":"N225","Close":2.0}"#.to_owned();
    assert_eq!(raw, expected);

    // The field partitioner finds `Index` in the text; a value without it
    // goes to Hive's default partition. The lines are the values as they are.
    let by_index = read_bucket(&s3, &format!("{name}-index")).await;
    let folders: BTreeSet<&str> = by_index
        .keys()
        .map(|key| key.split('/').nth(2).expect("folder"))
        .collect();
    assert_eq!(
        folders,
        BTreeSet::from([
            "Index=HSI",
            "Index=N225",
            "Index=NYA",
            "Index=__HIVE_DEFAULT_PARTITION__"
        ])
    );
    let nya: Vec<&str> = by_index
        .iter()
        .filter(|(key, _)| key.contains("/Index=NYA/"))
        .flat_map(|(_, body)| body.lines())
        .collect();
    assert_eq!(nya, [VALUES[0], VALUES[3]]);

    // With a transform the values are decoded, changed and written anew.
    let shaped: Vec<String> = read_bucket(&s3, &format!("{name}-shaped"))
        .await
        .values()
        .flat_map(|body| body.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(
        shaped[0],
        r#"{"Index":"NYA","name":"café","Close":1.50,"via":"sluice"}"#
    );
    assert_eq!(shaped.len(), VALUES.len());
}
