//! The `file` source and sink against the real broker: a text file through
//! a topic into a file comes out byte for byte, including after kill -9 in
//! the middle of a run (with exactly-once on).

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
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_mid_run_and_rerun_leaves_the_copy_exactly_equal_with_exactly_once() {
    let started = Instant::now();
    let services = Services::get();
    let name = unique("file-kill9");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.txt");
    let copy = dir.path().join("out/output.txt");
    let (first_lines, chunk, chunks) = (50_000, 10_000, 25);
    std::fs::write(&input, input_lines(0, first_lines)).expect("write the input");
    let final_length = (input_lines(0, first_lines + chunk * chunks).len()) as u64;
    // Small writes, so that a kill often falls between a write and its record.
    let following = write_pipeline(
        dir.path(),
        &pipeline(&name, true, true, "    flush_size: 500\n"),
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
                std::thread::sleep(Duration::from_millis(150));
                file.write_all(input_lines(first_lines + c * chunk, chunk).as_bytes())
                    .expect("append");
            }
        })
    };

    let mut kills = Vec::new();
    for kill in 0..2 {
        let mut child = Running(Some(
            services
                .sluice()
                .arg("run")
                .arg(&following)
                .spawn()
                .expect("spawn sluice"),
        ));
        // Kill once the copy has grown by some lines since the last run.
        let before = std::fs::metadata(&copy).map_or(0, |m| m.len());
        let grown = wait_for_length(&copy, before + 200_000, Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(37 * (kill + 1)));
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
        &pipeline(&name, true, false, "    flush_size: 500\n"),
    );
    run_ok(services.sluice().arg("run").arg(&finishing));
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
    eprintln!(
        "kill -9 twice (copy at {kills:?} bytes), then a finishing run: {lines} lines, {final_length} bytes, \
         copied exactly once in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
