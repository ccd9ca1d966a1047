//! `sluice offsets get|reset|set`: stored positions are visible, resetting a
//! sink's offsets rebuilds the bucket identically (same keys, same bytes), and
//! setting saved positions makes the next run resume from them.

mod common;

use common::OutputWithinLimit as _;

use common::{read_bucket, run_ok, unique, write_pipeline, Services};

#[tokio::test(flavor = "multi_thread")]
async fn offsets_are_shown_and_a_reset_sink_rebuilds_the_bucket_identically() {
    let services = Services::get();
    let name = unique("offsets");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: 2 }}\n\
             source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  limit: 2000\n\
             sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n    flush_size: 300\n",
            common::dataset().display()
        ),
    );
    run_ok(services.sluice().arg("run").arg(&pipeline));
    let client = services.s3().await;
    let first = read_bucket(&client, &name).await;
    assert_eq!(
        first.values().map(|b| b.lines().count()).sum::<usize>(),
        2000
    );

    let get = run_ok(services.sluice().args(["offsets", "get"]).arg(&pipeline));
    let shown = String::from_utf8_lossy(&get.stdout);
    assert!(
        shown.contains("\"line\":2001"),
        "the source position is the 2000th row:\n{shown}"
    );
    assert!(
        shown.contains(&format!("sink s3 (group sluice-{name}-s3):")),
        "{shown}"
    );
    assert!(
        shown.lines().filter(|l| l.contains("lag 0")).count() == 2,
        "both partitions fully committed:\n{shown}"
    );

    for key in first.keys() {
        client
            .delete_object()
            .bucket(&name)
            .key(key)
            .send()
            .await
            .expect("delete");
    }
    let reset = run_ok(
        services
            .sluice()
            .args(["offsets", "reset", "--sink", "s3"])
            .arg(&pipeline),
    );
    assert!(String::from_utf8_lossy(&reset.stdout).contains("deleted consumer group"));
    let rerun = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&rerun.stdout);
    assert!(
        summary.contains("rows read                 0"),
        "the source resumed at its end:\n{summary}"
    );
    assert_eq!(
        read_bucket(&client, &name).await,
        first,
        "the bucket is rebuilt with the same keys and bytes"
    );

    run_ok(
        services
            .sluice()
            .args(["offsets", "reset", "--source"])
            .arg(&pipeline),
    );
    let get = run_ok(services.sluice().args(["offsets", "get"]).arg(&pipeline));
    assert!(String::from_utf8_lossy(&get.stdout).contains("source: no stored position"));
}

/// The value after `marker` on the line of `text` that contains `marker`.
fn after<'a>(text: &'a str, marker: &str) -> &'a str {
    let line = text
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no `{marker}` in:\n{text}"));
    line[line.find(marker).expect("marker") + marker.len()..].trim()
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_set_rewinds_the_source_and_a_sink_to_saved_positions() {
    let services = Services::get();
    let name = unique("offsets-set");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline_with_limit = |limit: u32| {
        write_pipeline(
            dir.path(),
            &format!(
                "name: {name}\ntopic: {{ name: {name}, partitions: 2 }}\n\
                 source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  limit: {limit}\n\
                 sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n",
                common::dataset().display()
            ),
        )
    };
    // A first run of 1000 rows; save where the source and the sink stand.
    let pipeline = pipeline_with_limit(1000);
    run_ok(services.sluice().arg("run").arg(&pipeline));
    let get = run_ok(services.sluice().args(["offsets", "get"]).arg(&pipeline));
    let saved = String::from_utf8_lossy(&get.stdout).into_owned();
    let source_line = saved
        .lines()
        .find(|l| l.starts_with("source "))
        .expect("a source position");
    let (partition, offset) = source_line["source ".len()..]
        .split_once("}: ")
        .map(|(p, o)| (format!("{p}}}"), o.to_owned()))
        .expect("`source <partition>: <offset>`");
    // (The first rows are all of one index, so one partition may have none.)
    let committed: Vec<(i32, i64)> = (0..2)
        .filter_map(|p| {
            let shown = after(&saved, &format!("{name}/{p}: committed "));
            let offset = shown.split(',').next().expect("offset");
            (offset != "none").then(|| (p, offset.parse().expect("number")))
        })
        .collect();
    assert_eq!(
        committed.iter().map(|(_, o)| o).sum::<i64>(),
        1000,
        "{saved}"
    );

    // A second run of 1000 more rows moves both on.
    let pipeline = pipeline_with_limit(2000);
    run_ok(services.sluice().arg("run").arg(&pipeline));

    // Set both back to the saved positions.
    let mut set = services.sluice();
    set.args(["offsets", "set"]).arg(&pipeline).args([
        "--source",
        &offset,
        "--source-partition",
        &partition,
        "--sink",
        "s3",
    ]);
    for (p, o) in &committed {
        set.args(["--partition", &format!("{p}={o}")]);
    }
    let output = run_ok(&mut set);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("source {"), "{said}");
    let get = run_ok(services.sluice().args(["offsets", "get"]).arg(&pipeline));
    let shown = String::from_utf8_lossy(&get.stdout);
    assert!(shown.contains(source_line), "source set back:\n{shown}");
    for (p, o) in &committed {
        assert!(
            shown.contains(&format!("{name}/{p}: committed {o},")),
            "sink set back:\n{shown}"
        );
    }

    // A third run resends rows 1001..2000, and the sink reads on from the
    // saved offsets: the second run's 1000 records and the 1000 resent.
    let rerun = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&rerun.stdout);
    assert!(
        summary.contains("rows read              1000"),
        "the source resumed at row 1001:\n{summary}"
    );
    assert!(
        summary.contains("(2000 consumed)"),
        "the sink resumed at the saved offsets:\n{summary}"
    );

    let bad = services
        .sluice()
        .args(["offsets", "set"])
        .arg(&pipeline)
        .args(["--sink", "s3", "--partition", "zero=5"])
        .output_within_limit()
        .expect("run");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("--partition zero=5: expected PARTITION=OFFSET"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// The records of partition `partition` of the offsets topic, as (key, value) texts.
fn offsets_partition_records(services: &Services, partition: i32) -> Vec<(String, String)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("group.id", "offsets-cli-test")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset("sluice-offsets", partition, rdkafka::Offset::Beginning)
        .expect("partition");
    consumer.assign(&list).expect("assign");
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match consumer.poll(std::time::Duration::from_millis(500)) {
            Some(Ok(message)) => records.push((
                String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return records,
            Some(Err(error)) => panic!("reading sluice-offsets: {error}"),
            None => {}
        }
    }
    panic!("sluice-offsets/{partition} not read to its end within 30 s");
}

/// A pipeline `name` replaying the dataset's first `limit` rows to a
/// one-partition topic `name`.
fn first_rows(dir: &std::path::Path, name: &str, limit: u32) -> std::path::PathBuf {
    write_pipeline(
        dir,
        &format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: 1 }}\n\
             source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  limit: {limit}\n",
            common::dataset().display()
        ),
    )
}

/// Writes a position record as an earlier version stored it: keyed, in
/// `partition` of the offsets topic.
fn store_keyed_position(
    producer: &rdkafka::producer::BaseProducer,
    partition: i32,
    key: &str,
    value: &str,
) {
    use rdkafka::producer::{BaseRecord, Producer};
    producer
        .send(
            BaseRecord::to("sluice-offsets")
                .partition(partition)
                .key(key)
                .payload(value),
        )
        .expect("enqueue");
    producer
        .flush(std::time::Duration::from_secs(30))
        .expect("flush");
}

#[tokio::test(flavor = "multi_thread")]
async fn positions_go_to_the_pipelines_own_partition_and_older_keyed_ones_are_found() {
    use connect_core::offsets::positions_partition;
    use rdkafka::producer::{BaseProducer, BaseRecord};

    let services = Services::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = |name: &str, limit: u32| first_rows(dir.path(), name, limit);
    // A run stores its position in the pipeline's own partition only.
    let first = unique("own-partition");
    run_ok(services.sluice().arg("run").arg(pipeline(&first, 50)));
    let own = positions_partition(&first, 25);
    let key_prefix = format!("[\"{first}\",");
    let stored: Vec<(String, String)> = offsets_partition_records(&services, own)
        .into_iter()
        .filter(|(key, _)| key.starts_with(&key_prefix))
        .collect();
    let (key, value) = stored
        .last()
        .expect("a position in the pipeline's own partition")
        .clone();
    assert!(value.contains("\"line\":51"), "{value}");

    // The same position, as an earlier version stored it for another
    // pipeline: keyed, in some other partition; that version's run left
    // its rows in the topic (here one stands for them).
    let second = unique("keyed-partition");
    let elsewhere = (positions_partition(&second, 25) + 1) % 25;
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &services.kafka)
            .create()
            .expect("admin client");
    let created = admin
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                &second,
                1,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &rdkafka::admin::AdminOptions::new(),
        )
        .await
        .expect("create topic");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::<(), str>::to(&second).payload("{}"))
        .expect("enqueue");
    let legacy_key = key.replacen(&first, &second, 1);
    store_keyed_position(&producer, elsewhere, &legacy_key, &value);

    // The second pipeline finds it and resumes after row 50: 50 more rows.
    run_ok(services.sluice().arg("run").arg(pipeline(&second, 100)));
    assert_eq!(services.topic_record_count(&second), 1 + 50);
    // Its new position is in its own partition, and wins from then on.
    let own_records = offsets_partition_records(&services, positions_partition(&second, 25));
    assert!(
        own_records
            .iter()
            .any(|(k, v)| *k == legacy_key && v.contains("\"line\":101")),
        "{own_records:?}"
    );
    let get = run_ok(
        services
            .sluice()
            .args(["offsets", "get"])
            .arg(pipeline(&second, 100)),
    );
    let shown = String::from_utf8_lossy(&get.stdout);
    assert!(shown.contains("\"line\":101"), "{shown}");

    // A pipeline whose topic was never written to does not look for
    // positions of earlier versions: its first run starts from the top.
    let third = unique("never-written");
    let legacy_key = key.replacen(&first, &third, 1);
    let elsewhere = (positions_partition(&third, 25) + 1) % 25;
    store_keyed_position(&producer, elsewhere, &legacy_key, &value);
    run_ok(services.sluice().arg("run").arg(pipeline(&third, 100)));
    assert_eq!(services.topic_record_count(&third), 100);
}

/// A task that takes over reads its positions to the log end: a
/// transaction another task left open in the pipeline's partition (its
/// worker killed mid-commit) does not hide the positions committed after
/// it. The resumed run waits until the transaction is aborted (here 3 s
/// later, as the new owner of the killed worker's task would), then
/// resumes from the last position. Reading only to the last stable offset
/// resumed from an older one and sent 100 rows twice (as `scale_out` once
/// saw).
#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_left_open_by_another_task_does_not_hide_later_positions() {
    use connect_core::offsets::positions_partition;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use std::time::{Duration, Instant};
    const T: Duration = Duration::from_secs(30);

    let services = Services::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("open-txn");
    let pipeline = |limit: u32| first_rows(dir.path(), &name, limit);
    let own = positions_partition(&name, 25);
    let prefix = format!("[\"{name}\",");
    let last_position = || {
        offsets_partition_records(&services, own)
            .into_iter()
            .rfind(|(key, _)| key.starts_with(&prefix))
            .expect("a stored position")
    };
    run_ok(services.sluice().arg("run").arg(pipeline(100)));
    let (key, at_100) = last_position();
    run_ok(services.sluice().arg("run").arg(pipeline(200)));
    let (_, at_200) = last_position();
    assert!(at_200.contains("\"line\":201"), "{at_200}");
    assert_eq!(services.topic_record_count(&name), 200);

    let task = |index: u32| -> BaseProducer {
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &services.kafka)
            .set("transactional.id", format!("sluice-{name}-source-{index}"))
            .create()
            .expect("producer")
    };
    let send = |producer: &BaseProducer, key: &str, value: &str| {
        producer
            .send(
                BaseRecord::to("sluice-offsets")
                    .partition(own)
                    .key(key)
                    .payload(value),
            )
            .expect("enqueue");
    };
    // Task 0's owner commits the position after row 100 ...
    let owner = task(0);
    owner.init_transactions(T).expect("init");
    owner.begin_transaction().expect("begin");
    send(&owner, &key, &at_100);
    owner.commit_transaction(T).expect("commit");
    // ... task 7's worker is killed mid-commit: its transaction stays open ...
    let killed = task(7);
    killed.init_transactions(T).expect("init");
    killed.begin_transaction().expect("begin");
    let other = format!("[\"{name}\",{{\"file\":\"killed\"}}]");
    send(&killed, &other, "{\"line\":7}");
    killed.flush(T).expect("flush");
    // ... and task 0's owner commits the position after row 200, and stops.
    owner.begin_transaction().expect("begin");
    send(&owner, &key, &at_200);
    owner.commit_transaction(T).expect("commit");
    drop(owner);

    // Task 7's new owner starts 3 s after task 0's: it aborts the open
    // transaction (its `init_transactions` fences the killed copy).
    let new_owner = task(7);
    let takeover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        new_owner
            .init_transactions(T)
            .expect("fence the killed copy");
        drop(killed);
    });
    let started = Instant::now();
    let run = run_ok(services.sluice().arg("run").arg(pipeline(300)));
    takeover.join().expect("takeover");
    let log = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        services.topic_record_count(&name),
        300,
        "the run resumed after row 200 (not 100):\n{log}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "the run waited for the open transaction"
    );
    assert!(
        log.contains("waiting for a transaction left open"),
        "the wait is logged:\n{log}"
    );
}
