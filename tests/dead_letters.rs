//! `errors: {tolerance: all, dead_letter_topic: ...}`: malformed CSV rows, a
//! row too large for the producer, poison (non-JSON) messages and a tombstone
//! the sink cannot write are skipped, counted and dead-lettered with headers
//! saying what and where; every good row still lands in the bucket.

mod common;

use common::OutputWithinLimit as _;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{cell_text, dataset, read_bucket, run_ok, unique, write_pipeline, Services};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message};

#[tokio::test(flavor = "multi_thread")]
async fn bad_rows_and_poison_messages_go_to_the_dead_letter_topic() {
    let services = Services::get();
    let name = unique("dlq");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(dataset()).expect("dataset");
    let mut lines: Vec<String> = text.lines().take(41).map(str::to_owned).collect();
    lines[9] = format!("{},extra", lines[9]); // line 10: one field too many
    let mut cells: Vec<String> = lines[24].split(',').map(str::to_owned).collect();
    cells[2] = "n/a".to_owned(); // line 25: not a float
    lines[24] = cells.join(",");
    let bad_rows = [lines[9].clone(), lines[24].clone()];
    // Line 42: a row larger than the producer's message.max.bytes (2000).
    let mut cells: Vec<String> = lines[30].split(',').map(str::to_owned).collect();
    cells[1] = "x".repeat(3000);
    lines.push(cells.join(","));
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, lines.join("\n") + "\n").expect("write csv");

    // Two poison messages already in the topic.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .create()
        .expect("producer");
    let admin_pipeline = write_pipeline(
        dir.path(),
        &format!("name: {name}-create\ntopic: {{ name: {name}, partitions: 1 }}\nsinks:\n  noop:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n"),
    );
    let validate = services
        .sluice()
        .arg("validate")
        .arg(&admin_pipeline)
        .output_within_limit()
        .expect("validate");
    assert!(validate.status.success());
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}\nerrors:\n  tolerance: all\n  dead_letter_topic: {name}-dlq\n\
             kafka:\n  producer: {{ message.max.bytes: 2000 }}\n\
             topic: {{ name: {name}, partitions: 1 }}\n\
             source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  columns: {{ Open: float }}\n\
             sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n",
            csv.display()
        ),
    );
    // Create the topic through a first run with no rows? Simpler: produce the
    // poison after the topic exists, which the admin step of a run does; so
    // create it here with the admin API of the test.
    {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &services.kafka)
            .create()
            .expect("admin");
        admin
            .create_topics(
                [&NewTopic::new(&name, 1, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .expect("create topic");
    }
    for poison in [&b"not json"[..], &b"{\"open\": "[..]] {
        producer
            .send(
                BaseRecord::<[u8], [u8]>::to(&name)
                    .payload(poison)
                    .key(&b"bad"[..]),
            )
            .expect("send poison");
    }
    // A tombstone: valid for the converter, but s3_json has no line for it.
    producer
        .send(BaseRecord::<[u8], [u8]>::to(&name).key(&b"tomb"[..]))
        .expect("send tombstone");
    producer.flush(Duration::from_secs(10)).expect("flush");

    let output = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("skipped bad records          6"),
        "summary:\n{summary}"
    );

    // Every good row is in the bucket once.
    let mut landed: BTreeMap<String, u32> = BTreeMap::new();
    for body in read_bucket(&services.s3().await, &name).await.values() {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            *landed.entry(cell_text(&value["Date"])).or_default() += 1;
        }
    }
    assert_eq!(landed.len(), 38);
    assert!(landed.values().all(|&n| n == 1));

    // The dead-letter topic holds the three rows, the two poison messages and the tombstone.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("group.id", unique("dlq-check"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&[&format!("{name}-dlq")])
        .expect("subscribe");
    let mut letters = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while letters.len() < 6 && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message.expect("dead letter");
            let headers: BTreeMap<String, String> = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            letters.push((
                headers,
                message
                    .payload()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
            ));
        }
    }
    assert_eq!(letters.len(), 6, "{letters:?}");
    let source_letters: Vec<_> = letters
        .iter()
        .filter(|(h, _)| h["__connect.errors.stage"] == "source")
        .collect();
    assert_eq!(source_letters.len(), 2, "{letters:?}");
    for ((headers, payload), (row, line)) in
        source_letters.iter().zip(bad_rows.iter().zip([10, 25]))
    {
        assert_eq!(payload.as_deref(), Some(row.as_str()));
        assert_eq!(headers["__connect.errors.class.name"], "csv_replay");
        assert_eq!(headers["__connect.errors.connector.name"], name);
        assert!(
            headers["__connect.errors.source.position"].contains(&format!("\"line\":{line}")),
            "{headers:?}"
        );
        assert!(
            headers["__connect.errors.exception.message"].contains(&format!("rows.csv:{line}")),
            "{headers:?}"
        );
    }
    let poison_letters: Vec<_> = letters
        .iter()
        .filter(|(h, _)| h["__connect.errors.stage"] == "convert")
        .collect();
    assert_eq!(poison_letters.len(), 2, "{letters:?}");
    for ((headers, payload), (offset, original)) in poison_letters
        .iter()
        .zip([(0, "not json"), (1, "{\"open\": ")])
    {
        assert_eq!(payload.as_deref(), Some(original));
        assert_eq!(headers["__connect.errors.topic"], name);
        assert_eq!(headers["__connect.errors.partition"], "0");
        assert_eq!(headers["__connect.errors.offset"], offset.to_string());
        assert_eq!(headers["__connect.errors.class.name"], "json");
    }

    // The row the producer refused: too large for the dead-letter topic as
    // well, so its letter has no value but says where the row is.
    let produce_letters: Vec<_> = letters
        .iter()
        .filter(|(h, _)| h["__connect.errors.stage"] == "produce")
        .collect();
    assert_eq!(produce_letters.len(), 1, "{letters:?}");
    let (headers, payload) = produce_letters[0];
    assert_eq!(payload, &None);
    assert_eq!(headers["__connect.errors.class.name"], "kafka");
    assert!(
        headers["__connect.errors.source.position"].contains("\"line\":42"),
        "{headers:?}"
    );
    assert!(
        headers["__connect.errors.exception.message"].contains("message.max.bytes"),
        "{headers:?}"
    );
    assert!(
        headers["__sluice.errors.value.omitted"].starts_with("3"),
        "{headers:?}"
    );

    // The tombstone the sink rejected, with its offset.
    let sink_letters: Vec<_> = letters
        .iter()
        .filter(|(h, _)| h["__connect.errors.stage"] == "sink")
        .collect();
    assert_eq!(sink_letters.len(), 1, "{letters:?}");
    let (headers, payload) = sink_letters[0];
    assert_eq!(payload, &None);
    assert_eq!(headers["__connect.errors.class.name"], "s3_json");
    assert_eq!(headers["__connect.errors.topic"], name);
    assert_eq!(headers["__connect.errors.offset"], "2");
    assert!(
        headers["__connect.errors.exception.message"].contains("tombstone"),
        "{headers:?}"
    );
}
