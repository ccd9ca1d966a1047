//! The s3_json sink's `memory_budget` on real services: a sink over many
//! Kafka partitions and folders, fed far more than its budget, keeps its
//! peak memory near the budget and still lands every record exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
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
    let (sink, pid, idle) = start_sink(&services, &pipeline, &log);

    // 24,000 records of 8 kB: about 190 MB, 24 times the budget, spread
    // over 12 partitions and 8 folders (96 open objects).
    produce_padded(&services, &name, RECORDS, 8);

    // Every record committed means every record is in the bucket.
    let group = format!("sluice-{name}-s3");
    wait_committed(&services, &group, &name, PARTITIONS, RECORDS, &log);
    let grown = stop_and_measure(
        sink,
        pid,
        idle,
        &log,
        &format!(
            "with a {BUDGET_MIB} MiB budget over {:.0} MB of records",
            (RECORDS as usize * PAD) as f64 / 1e6
        ),
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
    assert_every_record_once(&objects, RECORDS, 8);
}

/// Runs `pipeline`, logging to `log`, until its sink has partitions; the
/// process, its pid and its resident memory then.
fn start_sink(services: &Services, pipeline: &Path, log: &Path) -> (Running, u32, u64) {
    let sink = Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(pipeline)
            .stderr(std::fs::File::create(log).expect("log"))
            .spawn()
            .expect("spawn sluice"),
    ));
    let pid = sink.0.as_ref().expect("child").id();
    wait_for_partitions(log);
    (sink, pid, status_kb(pid, "VmRSS"))
}

/// Stops the sink (it must exit 0) and returns how much its resident
/// memory grew from `idle` to its peak, in MiB (printed with `what`).
fn stop_and_measure(sink: Running, pid: u32, idle: u64, log: &Path, what: &str) -> f64 {
    let peak = status_kb(pid, "VmHWM");
    assert!(
        sink.sigterm_and_wait().success(),
        "sluice exits 0 on SIGTERM:\n{}",
        log_tail(log, 40)
    );
    let grown = peak.saturating_sub(idle) as f64 / (1 << 20) as f64;
    eprintln!(
        "idle RSS {:.1} MiB, peak {:.1} MiB: grew {grown:.1} MiB {what}",
        idle as f64 / (1 << 20) as f64,
        peak as f64 / (1 << 20) as f64,
    );
    grown
}

/// Waits (60 s at most) until the sink logging to `log` has partitions.
fn wait_for_partitions(log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("partitions assigned")
    {
        assert!(
            Instant::now() < deadline,
            "the sink got no partitions in 60 s:\n{}",
            log_tail(log, 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Produces `records` values `{"id":…,"k":"k<id % folders>","pad":"xxx…"}`
/// of about `PAD` bytes to `topic`.
fn produce_padded(services: &Services, topic: &str, records: u64, folders: u64) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let pad = "x".repeat(PAD);
    for id in 0..records {
        let key = id.to_string();
        let value = format!(r#"{{"id":{id},"k":"k{}","pad":"{pad}"}}"#, id % folders);
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
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
    assert_eq!(services.topic_record_count(topic), records as i64);
}

/// Waits (240 s at most) until `group` has committed `records` records of
/// `topic`: every record committed means every record is in the bucket.
fn wait_committed(
    services: &Services,
    group: &str,
    topic: &str,
    partitions: i32,
    records: u64,
    log: &Path,
) {
    let produced = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let committed: i64 = services.committed(group, topic, partitions).values().sum();
        if committed == records as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{committed} of {records} records committed after 240 s:\n{}",
            log_tail(log, 40)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "every record committed {:.1} s after the last was produced",
        produced.elapsed().as_secs_f64()
    );
}

/// Every id of `0..records` is in the bucket once, in its folder.
fn assert_every_record_once(objects: &BTreeMap<String, String>, records: u64, folders: u64) {
    let mut ids = BTreeSet::new();
    let mut lines = 0u64;
    for (key, body) in objects {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let id = value["id"].as_u64().expect("id");
            let folder = format!("/k=k{}/", id % folders);
            assert!(key.contains(&folder), "record {id} in {key}");
            ids.insert(id);
            lines += 1;
        }
    }
    assert_eq!(
        lines, records,
        "records in the bucket (duplicates count twice)"
    );
    assert_eq!(ids, (0..records).collect(), "every record, once");
}

/// One object far larger than the memory budget: it moves to disk past
/// `multipart_threshold` and lands as a multipart upload, one part in
/// memory at a time, so the sink's memory does not follow the object's
/// size. A rerun from offset 0 with other part sizes finds the object
/// there (the completion carries `If-None-Match: *`) and adds nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_larger_than_memory_lands_in_parts_from_disk_once() {
    const LARGE: u64 = 8_000;
    let services = Services::get();
    let name = unique("multipart");
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = tempfile::tempdir().expect("spool dir");
    // About 64 MB of records in one partition and one folder: two objects
    // of 4,000 records (32 MB, 7 parts of 5MiB each). Without spooling the
    // budget would cut them at 4MiB.
    let pipeline = |part_size: &str| {
        format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: 1 }}\n\
             kafka:\n  consumer:\n    queued.max.messages.kbytes: \"2048\"\n\
             runtime: {{ flush_interval: 1s }}\n\
             sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n\
             \x20   flush_size: 4000\n    rotate_interval: 10m\n    memory_budget: {BUDGET_MIB}MiB\n\
             \x20   multipart_threshold: 2MiB\n    part_size: {part_size}\n\
             \x20   spool_dir: {}\n    partitioner: {{ type: field, field: k }}\n",
            spool.path().display()
        )
    };
    let first = write_pipeline(dir.path(), &pipeline("5MiB"));
    let log = dir.path().join("first.log");
    let (sink, pid, idle) = start_sink(&services, &first, &log);
    produce_padded(&services, &name, LARGE, 1);
    let group = format!("sluice-{name}-s3");
    wait_committed(&services, &group, &name, 1, LARGE, &log);
    let grown = stop_and_measure(
        sink,
        pid,
        idle,
        &log,
        &format!("landing 32 MB objects with a {BUDGET_MIB} MiB budget"),
    );
    // Far less than the object: the same bound as the budget test.
    let limit = BUDGET_MIB as f64 * 1.5 + 64.0;
    assert!(
        grown <= limit,
        "the sink grew by {grown:.1} MiB, over {limit:.0} MiB, landing 32 MB objects"
    );

    let client = services.s3().await;
    let objects = read_bucket(&client, &name).await;
    assert_every_record_once(&objects, LARGE, 1);
    let keys: Vec<&String> = objects.keys().collect();
    assert_eq!(
        keys,
        [0, 4000]
            .map(|o| format!("topics/{name}/k=k0/{name}+0+{o:020}.json"))
            .each_ref(),
        "two objects of 4,000 records"
    );
    let large = keys[0];
    let head = client
        .head_object()
        .bucket(&name)
        .key(large)
        .send()
        .await
        .expect("head");
    let size = head.content_length().unwrap_or_default();
    assert!(
        (30 << 20..=31 << 20).contains(&size),
        "{large} holds {size} bytes"
    );
    let etag = head.e_tag().unwrap_or_default();
    assert!(
        etag.trim_matches('"').ends_with("-7"),
        "{large} was not uploaded in 7 parts (ETag {etag})"
    );
    let metadata = head.metadata().cloned().unwrap_or_default();
    let records = objects[large].lines().count();
    assert_eq!(
        (
            metadata.get("sluice-first-offset").map(String::as_str),
            metadata.get("sluice-last-offset").cloned(),
        ),
        (Some("0"), Some((records - 1).to_string())),
        "{large}'s offsets"
    );
    assert_eq!(
        std::fs::read_dir(spool.path()).expect("spool dir").count(),
        0,
        "nothing is left in spool_dir"
    );

    // From offset 0 again, in other parts: the object is there already.
    services.delete_group(&group).await;
    let rerun_dir = tempfile::tempdir().expect("tempdir");
    let rerun = write_pipeline(rerun_dir.path(), &pipeline("6MiB"));
    let log = rerun_dir.path().join("rerun.log");
    let sink = Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(&rerun)
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn sluice"),
    ));
    wait_committed(&services, &group, &name, 1, LARGE, &log);
    assert!(sink.sigterm_and_wait().success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("object exists (written by an earlier run)"),
        "the rerun met no existing object:\n{}",
        log_tail(&log, 40)
    );
    let again = read_bucket(&client, &name).await;
    assert_eq!(again, objects, "the rerun changed the bucket");
}
