//! The `file` source and sink against the real broker: a text file through
//! a topic into a file comes out byte for byte, including after kill -9 in
//! the middle of a run (with exactly-once on); JSON lines are keyed by a
//! field, and bad lines and tombstones are dead-lettered.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{run_ok, unique, write_pipeline, Running, Services};

/// `count` lines that exercise the encodings on the way: quotes,
/// backslashes, tabs, JSON-looking text, non-ASCII, empty lines and a few
/// long lines; every line ends with `\n`.
fn input_lines(first: usize, count: usize) -> String {
    let mut text = String::new();
    for i in first..first + count {
        match i % 10 {
            0 => text.push_str(&format!("line {i}: plain text\n")),
            1 => text.push_str(&format!("{{\"id\":{i},\"v\":335.90698726000005}}\n")),
            2 => text.push('\n'),
            3 => text.push_str(&format!("\"quoted\" \\back\\slash\\ and\ttab {i}\n")),
            4 => text.push_str(&format!("Zürich → 東京 ✓ {i}\n")),
            5 => text.push_str("null\n"),
            6 => text.push_str(&format!("{i}\n")),
            7 if i % 1000 == 7 => text.push_str(&format!("{}{i}\n", "x".repeat(20_000))),
            _ => text.push_str(&format!("  spaces around {i}  \n")),
        }
    }
    text
}

fn pipeline(name: &str, exactly_once: bool, follow: bool, extra_sink: &str) -> String {
    format!(
        "name: {name}\n\
         exactly_once: {exactly_once}\n\
         topic:\n  name: {name}\n  partitions: 1\n  replication_factor: 1\n\
         source:\n  type: file\n  path: input.txt\n  follow: {follow}\n  poll_interval: 100ms\n\
         sinks:\n  copy:\n    type: file\n    path: out/output.txt\n{extra_sink}"
    )
}

/// Asserts that `output` holds exactly the bytes of `input`, showing the
/// first difference when not.
fn assert_same_bytes(input: &Path, output: &Path) {
    let expected = std::fs::read(input).expect("read the input");
    let actual = std::fs::read(output).expect("read the output");
    if expected == actual {
        return;
    }
    let at = expected
        .iter()
        .zip(&actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let line = expected[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let around = |bytes: &[u8]| {
        String::from_utf8_lossy(&bytes[at.saturating_sub(40)..(at + 40).min(bytes.len())])
            .into_owned()
    };
    panic!(
        "the output differs from the input at byte {at} (line {line}): input {} bytes, output {} bytes\n\
         input:  {:?}\noutput: {:?}",
        expected.len(),
        actual.len(),
        around(&expected),
        around(&actual)
    );
}

#[test]
fn a_text_file_through_a_topic_into_a_file_is_copied_byte_for_byte() {
    let started = Instant::now();
    let services = Services::get();
    let name = unique("file-copy");
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = 200_000;
    let input = dir.path().join("input.txt");
    std::fs::write(&input, input_lines(0, lines)).expect("write the input");
    let pipeline = write_pipeline(dir.path(), &pipeline(&name, false, false, ""));

    let output = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains(&format!("rows read        {lines:>10}")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("records sunk     {lines:>10}")),
        "{summary}"
    );
    assert_eq!(services.topic_record_count(&name), lines as i64);
    let copy = dir.path().join("out/output.txt");
    assert_same_bytes(&input, &copy);
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("out/output.txt.offsets.json")).expect("the sidecar"),
    )
    .expect("JSON");
    assert_eq!(
        sidecar["length"],
        std::fs::metadata(&copy).expect("metadata").len()
    );
    assert_eq!(sidecar["offsets"][0]["next_offset"], lines);

    // A rerun has nothing left to read and leaves the copy as it is.
    let output = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("rows read                 0"), "{summary}");
    assert_same_bytes(&input, &copy);
    eprintln!(
        "{lines} lines copied through Kafka byte for byte in {:.1}s (both runs)",
        started.elapsed().as_secs_f64()
    );
}

/// Waits (at most `timeout`) until `path` is at least `bytes` long.
fn wait_for_length(path: &Path, bytes: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let length = std::fs::metadata(path).map_or(0, |m| m.len());
        if length >= bytes {
            return length;
        }
        assert!(
            Instant::now() < deadline,
            "{} is {length} bytes after {timeout:?}, expected at least {bytes}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A followed file grows while `sluice run` is killed with SIGKILL three
/// times; a last run (not following) reads to its end. Then the sink's two
/// recoveries are forced: a torn write after its last record, and Kafka's
/// committed offset moved far behind the file. The copy equals the input
/// after each.
#[test]
fn kill_9_mid_run_and_rerun_leaves_the_copy_exactly_equal_with_exactly_once() {
    let started = Instant::now();
    let services = Services::get();
    let name = unique("file-kill9");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.txt");
    let copy = dir.path().join("out/output.txt");
    let (first_lines, chunk, chunks) = (50_000, 10_000, 10);
    std::fs::write(&input, input_lines(0, first_lines)).expect("write the input");
    let final_length = (input_lines(0, first_lines + chunk * chunks).len()) as u64;
    // A write per batch, so that kills meet writes often.
    let following = write_pipeline(
        dir.path(),
        &pipeline(&name, true, true, "    flush_size: 1\n"),
    );

    // The file grows while the pipeline follows it.
    let appender = {
        let input = input.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&input)
                .expect("open the input for appending");
            for c in 0..chunks {
                std::thread::sleep(Duration::from_millis(300));
                file.write_all(input_lines(first_lines + c * chunk, chunk).as_bytes())
                    .expect("append");
            }
        })
    };

    let mut kills = Vec::new();
    let mut logs = Vec::new();
    for kill in 0..3 {
        let log = dir.path().join(format!("run-{kill}.log"));
        let mut child = Running(Some(
            services
                .sluice()
                .arg("run")
                .arg(&following)
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .expect("spawn sluice"),
        ));
        logs.push(log);
        // Kill once the copy has grown by some lines since the last run.
        let before = std::fs::metadata(&copy).map_or(0, |m| m.len());
        let grown = wait_for_length(&copy, before + 200_000, Duration::from_secs(120));
        // The copy grows when the sink writes, before it syncs and records
        // the write: killing at once falls between the two, a few
        // milliseconds later between the record and the offset commit, and
        // later anywhere.
        let delay = match kill {
            0 => 0,
            1 => 4,
            _ => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(37, |d| u64::from(d.subsec_nanos()) % 200),
        };
        std::thread::sleep(Duration::from_millis(delay));
        let process = child.0.as_mut().expect("child");
        assert!(
            process.try_wait().expect("wait").is_none(),
            "a following pipeline does not end by itself"
        );
        process.kill().expect("kill -9");
        process.wait().expect("wait");
        kills.push(grown);
    }
    appender.join().expect("the appender");
    let copied_before = std::fs::metadata(&copy).map_or(0, |m| m.len());
    assert!(
        copied_before < final_length,
        "the kills came after everything was copied ({copied_before} of {final_length} bytes); grow the input"
    );

    // The last run reads to the end of the (now complete) file and ends.
    let finishing = write_pipeline(
        dir.path(),
        &pipeline(&name, true, false, "    flush_size: 1\n"),
    );
    let finished = run_ok(services.sluice().arg("run").arg(&finishing));
    assert_eq!(
        std::fs::metadata(&input).expect("input").len(),
        final_length
    );
    assert_same_bytes(&input, &copy);
    let lines = first_lines + chunk * chunks;
    // The topic's offsets also count the killed runs' aborted records and
    // the transaction markers: never fewer than the lines.
    let offsets = services.topic_record_count(&name);
    assert!(
        offsets >= lines as i64,
        "{offsets} offsets for {lines} lines"
    );
    // The two recoveries the kills may or may not have called for (it
    // depends on where they fell), made on purpose: a torn write after the
    // last recorded state, and Kafka's committed offset far behind the file.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&copy)
        .and_then(|mut file| file.write_all(b"torn li"))
        .expect("append a torn line");
    run_ok(
        services
            .sluice()
            .args(["offsets", "set"])
            .arg(&finishing)
            .args(["--sink", "copy", "--partition", "0=1000"]),
    );
    let rerun = run_ok(services.sluice().arg("run").arg(&finishing));
    assert_same_bytes(&input, &copy);
    let summary = String::from_utf8_lossy(&rerun.stdout);
    let consumed: u64 = summary
        .split_once("records sunk              0  ")
        .and_then(|(_, rest)| rest.split_once(" consumed)"))
        .and_then(|(shown, _)| shown.rsplit_once('('))
        .and_then(|(_, count)| count.parse().ok())
        .unwrap_or_else(|| panic!("nothing sunk, some consumed:\n{summary}"));
    let log = String::from_utf8_lossy(&rerun.stderr);
    assert!(log.contains("cutting the lines of a write"), "{log}");
    let skipped = log
        .lines()
        .find(|l| l.contains("records delivered again after a crash were already in the file"))
        .unwrap_or_else(|| panic!("no skipped records logged:\n{log}"));
    assert!(
        skipped.ends_with(&format!(" records={consumed}")),
        "all {consumed} records read again are skipped: {skipped}"
    );

    // Which of the sink's recoveries the kills called for (it depends on
    // where they fell): lines cut at the start of the next run, records
    // delivered again and skipped (logged when a run closes: the last one).
    let mut text: String = logs
        .iter()
        .map(|log| std::fs::read_to_string(log).unwrap_or_default())
        .collect();
    text.push_str(&String::from_utf8_lossy(&finished.stderr));
    let cuts = text.matches("cutting the lines of a write").count();
    let skips = text.matches("were already in the file").count();
    eprintln!(
        "kill -9 three times (copy at {kills:?} bytes), then a finishing run: {lines} lines, {final_length} bytes, \
         copied exactly once in {:.1}s; restarts that cut unrecorded lines: {cuts}, that skipped redelivered records: {skips}",
        started.elapsed().as_secs_f64()
    );
}

/// Every message of `topic` from the start: (partition, key, value,
/// headers), read until `count` are in or 30 s have passed.
fn read_topic(services: &Services, topic: &str, count: usize) -> Vec<TopicMessage> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("group.id", unique("file-test-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while messages.len() < count && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("a message");
        let text = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), text(h.value).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        messages.push(TopicMessage {
            partition: message.partition(),
            key: text(message.key()),
            value: text(message.payload()),
            headers,
        });
    }
    messages
}

#[derive(Debug)]
struct TopicMessage {
    partition: i32,
    key: Option<String>,
    value: Option<String>,
    headers: std::collections::BTreeMap<String, String>,
}

#[test]
fn json_lines_keyed_by_a_field_and_bad_lines_and_tombstones_dead_lettered() {
    let started = Instant::now();
    let services = Services::get();
    let name = unique("file-json");
    let dir = tempfile::tempdir().expect("tempdir");
    let (count, keys) = (3000, 7);
    let bad: [(usize, &str); 3] = [(100, "{\"id\": broken"), (200, "[1,2]"), (300, "")];
    let mut good = Vec::new();
    let mut text = String::new();
    for line in 1..=count {
        match bad.iter().find(|(at, _)| *at == line) {
            Some((_, bad_line)) => text.push_str(bad_line),
            None => {
                let value = format!(
                    r#"{{"id":"k{}","n":{line},"price":335.90698726000005}}"#,
                    line % keys
                );
                text.push_str(&value);
                good.push(value);
            }
        }
        text.push('\n');
    }
    std::fs::write(dir.path().join("input.jsonl"), &text).expect("write the input");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}\n\
             errors:\n  tolerance: all\n  dead_letter_topic: {name}-dlq\n\
             topic:\n  name: {name}\n  partitions: 3\n  replication_factor: 1\n\
             source:\n  type: file\n  path: input.jsonl\n  format: json\n  key_field: id\n\
             sinks:\n  copy:\n    type: file\n    path: out/output.jsonl\n"
        ),
    );
    run_ok(services.sluice().arg("run").arg(&pipeline));

    // Each good line once; the lines of one key in file order (one partition each).
    let output = std::fs::read_to_string(dir.path().join("out/output.jsonl")).expect("output");
    let mut written: Vec<&str> = output.lines().collect();
    let mut by_key: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for line in &written {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        by_key
            .entry(value["id"].as_str().expect("id").to_owned())
            .or_default()
            .push(value["n"].as_u64().expect("n"));
    }
    for (key, numbers) in &by_key {
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "{key}: {numbers:?}"
        );
    }
    written.sort_unstable();
    let mut expected: Vec<&str> = good.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(
        written, expected,
        "every good line once, numbers as written"
    );

    // Kafka holds the key field as each record's key, one partition per key.
    let records = read_topic(&services, &name, good.len());
    assert_eq!(records.len(), good.len());
    let mut partitions: std::collections::BTreeMap<String, i32> = Default::default();
    for record in &records {
        let value: serde_json::Value =
            serde_json::from_str(record.value.as_deref().expect("a value")).expect("JSON");
        let key = record.key.clone().expect("a key");
        assert_eq!(value["id"], key.as_str());
        assert_eq!(
            *partitions.entry(key).or_insert(record.partition),
            record.partition
        );
    }

    // The bad lines are dead letters naming their line.
    let letters = read_topic(&services, &format!("{name}-dlq"), bad.len());
    assert_eq!(letters.len(), bad.len(), "{letters:?}");
    for (letter, (line, raw)) in letters.iter().zip(bad) {
        assert_eq!(letter.headers["__connect.errors.stage"], "source");
        assert_eq!(letter.headers["__connect.errors.class.name"], "file");
        assert_eq!(letter.value.as_deref().unwrap_or_default(), raw);
        assert!(
            letter.headers["__connect.errors.source.position"]
                .contains(&format!("\"line\":{line}")),
            "{letter:?}"
        );
        assert!(
            letter.headers["__connect.errors.exception.message"]
                .contains(&format!("input.jsonl:{line}")),
            "{letter:?}"
        );
    }

    // A tombstone in the topic has no line: dead-lettered by the sink, the file unchanged.
    let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .create()
        .expect("producer");
    producer
        .send(
            rdkafka::producer::BaseRecord::<str, [u8]>::to(&name)
                .key("k1")
                .partition(0),
        )
        .map_err(|(error, _)| error)
        .expect("send a tombstone");
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).expect("flush");
    run_ok(services.sluice().arg("run").arg(&pipeline));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/output.jsonl")).expect("output"),
        output
    );
    let letters = read_topic(&services, &format!("{name}-dlq"), bad.len() + 1);
    let sink_letter = letters
        .iter()
        .find(|l| l.headers["__connect.errors.stage"] == "sink")
        .unwrap_or_else(|| panic!("no sink letter in {letters:?}"));
    assert!(
        sink_letter.headers["__connect.errors.exception.message"].contains("is a tombstone"),
        "{sink_letter:?}"
    );
    eprintln!(
        "{count} JSON lines ({} bad) keyed into 3 partitions and a tombstone in {:.1}s",
        bad.len(),
        started.elapsed().as_secs_f64()
    );
}
