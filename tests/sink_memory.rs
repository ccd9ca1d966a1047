//! The s3_json sink's `memory_budget` on real services: a sink over many
//! Kafka partitions and folders, fed far more than its budget, keeps its
//! peak memory near the budget and still lands every record exactly once.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{log_tail, read_bucket, unique, write_pipeline, Running, Services};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

const RECORDS: u64 = 24_000;
const PAD: usize = 8_000;
const PARTITIONS: i32 = 12;
const BUDGET_MIB: u64 = 8;

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`) in bytes.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_memory_budget_bounds_the_sink_and_every_record_lands_once() {
    let services = Services::get();
    let name = unique("memory");
    let dir = tempfile::tempdir().expect("tempdir");
    // Objects would grow for 15 s and to a million records: the budget
    // closes them long before (the rest close 15 s after the last record).
    // The consumer's prefetch is kept small so that what is measured is
    // the sink's buffering.
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: {PARTITIONS} }}\n\
             kafka:\n  consumer:\n    queued.max.messages.kbytes: \"2048\"\n\
             runtime: {{ flush_interval: 1s }}\n\
             sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n\
             \x20   flush_size: 1000000\n    rotate_interval: 15s\n    memory_budget: {BUDGET_MIB}MiB\n\
             \x20   partitioner: {{ type: field, field: k }}\n"
        ),
    );
    let log = dir.path().join("sink.log");
    let sink = Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(&pipeline)
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn sluice"),
    ));
    let pid = sink.0.as_ref().expect("child").id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("partitions assigned")
    {
        assert!(
            Instant::now() < deadline,
            "the sink got no partitions in 60 s:\n{}",
            log_tail(&log, 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let idle = status_kb(pid, "VmRSS");

    // 24,000 records of 8 kB: about 190 MB, 24 times the budget, spread
    // over 12 partitions and 8 folders (96 open objects).
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let pad = "x".repeat(PAD);
    for id in 0..RECORDS {
        let key = id.to_string();
        let value = format!(r#"{{"id":{id},"k":"k{}","pad":"{pad}"}}"#, id % 8);
        let mut record = BaseRecord::to(&name).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert_eq!(services.topic_record_count(&name), RECORDS as i64);

    // Every record committed means every record is in the bucket.
    let group = format!("sluice-{name}-s3");
    let produced = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let committed: i64 = services.committed(&group, &name, PARTITIONS).values().sum();
        if committed == RECORDS as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{committed} of {RECORDS} records committed after 240 s:\n{}",
            log_tail(&log, 40)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "every record committed {:.1} s after the last was produced",
        produced.elapsed().as_secs_f64()
    );
    let peak = status_kb(pid, "VmHWM");
    assert!(
        sink.sigterm_and_wait().success(),
        "sluice exits 0 on SIGTERM:\n{}",
        log_tail(&log, 40)
    );
    let grown = peak.saturating_sub(idle) as f64 / (1 << 20) as f64;
    eprintln!(
        "idle RSS {:.1} MiB, peak {:.1} MiB: grew {grown:.1} MiB with a {BUDGET_MIB} MiB budget over {:.0} MB of records",
        idle as f64 / (1 << 20) as f64,
        peak as f64 / (1 << 20) as f64,
        (RECORDS as usize * PAD) as f64 / 1e6
    );
    // The budget, half of it again for bodies being encoded and sent, and
    // a fixed margin: the runtime's batch of 1,000 records (8 MB here), the
    // consumer's fetch buffers and the allocator. Measured in a debug
    // build: about 60 MiB with the 8 MiB budget, about 170 MiB without one
    // (`memory_budget: 1GiB`).
    let limit = BUDGET_MIB as f64 * 1.5 + 64.0;
    assert!(
        grown <= limit,
        "the sink grew by {grown:.1} MiB, over {limit:.0} MiB, with a {BUDGET_MIB} MiB budget"
    );

    let objects = read_bucket(&services.s3().await, &name).await;
    let mut ids = BTreeSet::new();
    let mut lines = 0u64;
    for (key, body) in &objects {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let id = value["id"].as_u64().expect("id");
            let folder = format!("/k=k{}/", id % 8);
            assert!(key.contains(&folder), "record {id} in {key}");
            ids.insert(id);
            lines += 1;
        }
    }
    assert_eq!(
        lines, RECORDS,
        "records in the bucket (duplicates count twice)"
    );
    assert_eq!(ids, (0..RECORDS).collect(), "every record, once");
}
