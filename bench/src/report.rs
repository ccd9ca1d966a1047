//! The results of a run, the machine and versions they were measured on,
//! and their markdown rendering (docs/BENCHMARKS.md).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::data::Dataset;
use crate::freshness::Freshness;
use crate::peer::Peer;
use crate::replay::Replay;
use crate::sink::SinkRun;

/// Targets of issue 8, printed next to the results (not asserted).
pub mod targets {
    /// P1 and P2: at least this fraction of the raw baseline.
    pub const RAW_RATIO: f64 = 0.9;
    /// P3: at least this many times Kafka Connect.
    pub const PEER_RATIO: f64 = 3.0;
    /// P4: peak RSS of the worker.
    pub const RSS_MIB: f64 = 50.0;
    /// P4: first record after start.
    pub const FIRST_RECORD_MS: f64 = 100.0;
    /// P5: 99th percentile freshness.
    pub const FRESHNESS_P99_MS: f64 = 1500.0;
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// When the run ended (UTC, RFC 3339).
    pub generated: String,
    pub note: Option<String>,
    pub machine: Machine,
    pub versions: Versions,
    pub datasets: Vec<Dataset>,
    /// Records per object in P2.
    pub flush_size: u64,
    pub replay: Vec<Replay>,
    pub sink: Vec<SinkRun>,
    pub freshness: Option<Freshness>,
    pub peer: Vec<Peer>,
}

/// The machine the run was on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_mib: u64,
    pub kernel: String,
    pub os: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find_map(|line| {
                    let (key, value) = line.split_once([':', '='])?;
                    (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
                })
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let meminfo = read("/proc/meminfo");
        let memory_kib: u64 = field(&meminfo, "MemTotal")
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or(0);
        Machine {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu: field(&read("/proc/cpuinfo"), "model name"),
            memory_mib: memory_kib / 1024,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            os: field(&read("/etc/os-release"), "PRETTY_NAME"),
        }
    }
}

/// Versions of what was measured and what it ran against.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub sluice: String,
    pub commit: String,
    pub librdkafka: String,
    pub kafka: String,
    /// connect-runtime and connect-file, from the jars' names.
    pub kafka_connect: String,
    pub s3_server: String,
    pub java: String,
}

impl Versions {
    pub fn detect(sluice: &Path, repo: &Path, connect_libs: Option<&Path>) -> Versions {
        let output = |command: &mut Command| {
            command
                .output()
                .ok()
                .map(|o| {
                    let text = if o.stdout.is_empty() {
                        o.stderr
                    } else {
                        o.stdout
                    };
                    String::from_utf8_lossy(&text)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                })
                .filter(|text| !text.is_empty())
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let mut commit = output(Command::new("git").args(["-C"]).arg(repo).args([
            "rev-parse",
            "--short",
            "HEAD",
        ]));
        let dirty = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty());
        if dirty {
            commit.push_str(" (with uncommitted changes)");
        }
        Versions {
            sluice: output(Command::new(sluice).arg("--version")),
            commit,
            librdkafka: rdkafka::util::get_rdkafka_version().1,
            kafka: service_version(repo, "KAFKA"),
            kafka_connect: connect_libs.map_or_else(|| "not used".to_owned(), connect_version),
            s3_server: format!("s3s-fs {}", service_version(repo, "S3S")),
            java: output(Command::new("java").arg("-version")),
        }
    }
}

/// The versions of connect-runtime and connect-file in the Kafka Connect jars folder.
fn connect_version(libs: &Path) -> String {
    let jars: Vec<String> = std::fs::read_dir(libs)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let version = |artifact: &str| {
        let prefix = format!("{artifact}-");
        jars.iter()
            .find_map(|jar| jar.strip_prefix(&prefix)?.strip_suffix(".jar"))
            .map_or_else(|| "unknown".to_owned(), str::to_owned)
    };
    format!(
        "connect-runtime {}, connect-file {}",
        version("connect-runtime"),
        version("connect-file")
    )
}

/// A service's version as scripts/services.sh picks it: `SLUICE_<NAME>_VERSION`,
/// else the script's default.
fn service_version(repo: &Path, name: &str) -> String {
    let variable = format!("SLUICE_{name}_VERSION");
    if let Ok(version) = std::env::var(&variable) {
        return version;
    }
    let script = std::fs::read_to_string(repo.join("scripts/services.sh")).unwrap_or_default();
    let marker = format!("${{{variable}:-");
    script
        .lines()
        .find_map(|line| {
            let start = line.find(&marker)? + marker.len();
            let rest = &line[start..];
            Some(rest[..rest.find('}')?].to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_s(rate: f64) -> String {
    thousands(rate.round() as u64)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn seconds(s: f64) -> String {
    format!("{s:.2} s")
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

impl Results {
    /// The markdown report.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.header(&mut md);
        self.summary(&mut md);
        self.replay_table(&mut md);
        self.sink_table(&mut md);
        self.peer_table(&mut md);
        self.footprint_table(&mut md);
        self.freshness_table(&mut md);
        self.method(&mut md);
        md
    }

    fn header(&self, md: &mut String) {
        let m = &self.machine;
        let v = &self.versions;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `scripts/bench.sh` (the `sluice-bench` harness) on {}. Every scenario runs \
             the real `sluice` binary as a separate process against the local Kafka broker and S3 \
             server, next to its baseline in the same run; ratios are Sluice over the baseline. \
             The targets of issue 8 are printed next to the results: they are reported, not asserted.\n",
            self.generated
        );
        if let Some(note) = &self.note {
            let _ = writeln!(md, "> **{note}**\n");
        }
        let _ = writeln!(md, "| machine and versions | |\n|---|---|");
        let _ = writeln!(md, "| CPU | {} cores, {} |", m.cores, m.cpu);
        let _ = writeln!(md, "| memory | {:.1} GiB |", m.memory_mib as f64 / 1024.0);
        let _ = writeln!(md, "| kernel | Linux {} ({}) |", m.kernel, m.os);
        let _ = writeln!(md, "| sluice | {} (commit {}) |", v.sluice, v.commit);
        let _ = writeln!(md, "| librdkafka | {} |", v.librdkafka);
        let _ = writeln!(
            md,
            "| Apache Kafka | {} (broker: KRaft, one node on 127.0.0.1) |",
            v.kafka
        );
        let _ = writeln!(
            md,
            "| Apache Kafka Connect | {} (the newest release up to the broker's with a published connect-file) |",
            v.kafka_connect
        );
        let _ = writeln!(md, "| S3 server | {} on 127.0.0.1 |", v.s3_server);
        let _ = writeln!(md, "| Java | {} |", v.java);
        let _ = writeln!(md, "\n| data set | rows | CSV bytes |\n|---|---:|---:|");
        for set in &self.datasets {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                set.label,
                thousands(set.rows),
                thousands(set.file_bytes)
            );
        }
        let _ = writeln!(
            md,
            "\nThe 1× set is data/indexProcessed.csv (or evenly spaced rows of it with `--rows`); the \
             larger set repeats its rows. MB are 10^6 bytes.\n"
        );
    }

    fn summary(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## Against the targets\n\n| target | measured | |\n|---|---|---|"
        );
        for r in &self.replay {
            let _ = writeln!(
                md,
                "| P1 replay ≥ {}× the raw producer | {:.2}× ({}) | {} |",
                targets::RAW_RATIO,
                r.ratio,
                r.dataset,
                met(r.ratio >= targets::RAW_RATIO)
            );
        }
        for s in &self.sink {
            let _ = writeln!(
                md,
                "| P2 sink ≥ {}× the raw consumer and PUTs | {:.2}× ({}) | {} |",
                targets::RAW_RATIO,
                s.ratio,
                s.dataset,
                met(s.ratio >= targets::RAW_RATIO)
            );
        }
        for p in &self.peer {
            let _ = writeln!(
                md,
                "| P3 ≥ {}× Kafka Connect, end to end | {:.2}× ({}) | {} |",
                targets::PEER_RATIO,
                p.ratio,
                p.dataset,
                met(p.ratio >= targets::PEER_RATIO)
            );
        }
        let rss = self.peak_rss().max().unwrap_or(0);
        if rss > 0 {
            let _ = writeln!(
                md,
                "| P4 peak RSS ≤ {} MiB (P1 and P2) | {} at most | {} |",
                targets::RSS_MIB,
                mib(rss),
                met(rss as f64 / 1024.0 <= targets::RSS_MIB)
            );
        }
        if let Some(first) = self
            .replay
            .iter()
            .map(|r| r.first_record_ms)
            .max_by(f64::total_cmp)
        {
            let _ = writeln!(
                md,
                "| P4 first record ≤ {} ms after start | {first:.0} ms at most | {} |",
                targets::FIRST_RECORD_MS,
                met(first <= targets::FIRST_RECORD_MS)
            );
        }
        if let Some(f) = &self.freshness {
            let _ = writeln!(
                md,
                "| P5 freshness p99 ≤ {} s | {} | {} |",
                targets::FRESHNESS_P99_MS / 1000.0,
                seconds(f.p99_ms / 1000.0),
                met(f.p99_ms <= targets::FRESHNESS_P99_MS)
            );
        }
        md.push('\n');
    }

    fn peak_rss(&self) -> impl Iterator<Item = u64> + '_ {
        self.replay
            .iter()
            .map(|r| r.peak_rss_kib)
            .chain(self.sink.iter().map(|s| s.peak_rss_kib))
    }

    fn replay_table(&self, md: &mut String) {
        if self.replay.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "## P1 replay: CSV → Kafka (`csv_replay`, `rate: max`) vs a raw librdkafka producer\n\n\
             | data set | records | Sluice records/s | Sluice MB/s | raw records/s | raw MB/s | ratio (target ≥ {}×) | Sluice from process start |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|",
            targets::RAW_RATIO
        );
        for r in &self.replay {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.1} | {} | {:.1} | {:.2}× | {} ({} records/s) |",
                r.dataset,
                thousands(r.records),
                per_s(r.sluice.records_per_s),
                r.sluice.mb_per_s,
                per_s(r.baseline.records_per_s),
                r.baseline.mb_per_s,
                r.ratio,
                seconds(r.sluice_wall.seconds),
                per_s(r.sluice_wall.records_per_s)
            );
        }
        md.push('\n');
    }

    fn sink_table(&self, md: &mut String) {
        if self.sink.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "## P2 sink: Kafka → S3 JSON Lines (`s3_json`, `flush_size: {}`) vs a raw consumer with PUTs\n\n\
             | data set | records | in full objects | Sluice records/s | Sluice MB/s | raw records/s | raw MB/s | ratio (target ≥ {}×) | Sluice from process start | group stable after: Sluice / raw | all committed: Sluice / raw | objects |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            self.flush_size,
            targets::RAW_RATIO
        );
        for s in &self.sink {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} | {} | {:.1} | {:.2}× | {} records/s | {} / {} | {} / {} | {} |",
                s.dataset,
                thousands(s.records),
                thousands(s.sluice.records),
                per_s(s.sluice.records_per_s),
                s.sluice.mb_per_s,
                per_s(s.baseline.records_per_s),
                s.baseline.mb_per_s,
                s.ratio,
                per_s(s.sluice_from_start.records_per_s),
                seconds(s.sluice_joined_seconds),
                seconds(s.baseline_joined_seconds),
                seconds(s.sluice_all_seconds),
                seconds(s.baseline_all_seconds),
                s.objects
            );
        }
        md.push('\n');
    }

    fn peer_table(&self, md: &mut String) {
        if self.peer.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "## P3 peer: file → Kafka → file, Sluice (`file` source and sink) vs Apache Kafka Connect standalone (FileStreamSource, FileStreamSink)\n\n\
             | data set | lines | Sluice lines/s | Kafka Connect lines/s | ratio (target ≥ {}×) | first output line: Sluice / Kafka Connect | after the first line: Sluice / Kafka Connect lines/s (ratio) | peak RSS: Sluice / Kafka Connect |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|",
            targets::PEER_RATIO
        );
        let after = |rate: &Option<crate::stats::Rate>| {
            rate.map_or_else(|| "all in one write".to_owned(), |r| per_s(r.records_per_s))
        };
        for p in &self.peer {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.2}× | {:.0} ms / {:.0} ms | {} / {}{} | {} / {} |",
                p.dataset,
                thousands(p.lines),
                per_s(p.sluice.end_to_end.records_per_s),
                per_s(p.kafka_connect.end_to_end.records_per_s),
                p.ratio,
                p.sluice.first_line_ms,
                p.kafka_connect.first_line_ms,
                after(&p.sluice.after_first_line),
                after(&p.kafka_connect.after_first_line),
                p.ratio_after_first_line
                    .map_or_else(String::new, |r| format!(" ({r:.2}×)")),
                mib(p.sluice.peak_rss_kib),
                mib(p.kafka_connect.peak_rss_kib)
            );
        }
        md.push('\n');
    }

    fn footprint_table(&self, md: &mut String) {
        if self.replay.is_empty() && self.sink.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "## P4 footprint of the `sluice` process\n\n\
             | run | peak RSS (target ≤ {} MiB) | first record after start (target ≤ {} ms) |\n|---|---:|---:|",
            targets::RSS_MIB,
            targets::FIRST_RECORD_MS
        );
        for r in &self.replay {
            let _ = writeln!(
                md,
                "| P1 replay {} | {} | {:.0} ms |",
                r.dataset,
                mib(r.peak_rss_kib),
                r.first_record_ms
            );
        }
        for s in &self.sink {
            let _ = writeln!(md, "| P2 sink {} | {} | |", s.dataset, mib(s.peak_rss_kib));
        }
        md.push('\n');
    }

    fn freshness_table(&self, md: &mut String) {
        let Some(f) = &self.freshness else { return };
        let _ = writeln!(
            md,
            "## P5 freshness: row read → its object listable (`rate: {}/s`, `rotate_interval: {}`)\n\n\
             | steady state measured | rows | objects | p50 | p99 (target ≤ {} s) | max | rows not listable by the end | first object after start |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | {} s | {} | {} | {} | {} | {} | {} | {} |\n",
            f.rate_per_s,
            crate::freshness::ROTATE_INTERVAL,
            targets::FRESHNESS_P99_MS / 1000.0,
            f.seconds,
            thousands(f.rows),
            f.objects,
            seconds(f.p50_ms / 1000.0),
            seconds(f.p99_ms / 1000.0),
            seconds(f.max_ms / 1000.0),
            f.rows_not_listed,
            seconds(f.first_object_ms / 1000.0)
        );
    }

    fn method(&self, md: &mut String) {
        md.push_str(METHOD);
    }
}

const METHOD: &str = "\
## How each scenario is measured

- **P1 replay.** `sluice run` on a source-only pipeline (`csv_replay`, `key_column: Index`, \
`rate: max`, 6 partitions, no transforms). Sluice's rate is over the time from its first \
record's timestamp (csv_replay stamps each record when it reads the row) to the process's exit, \
which comes after every record is acknowledged and the source position stored; the column \
\"from process start\" includes start-up. Bytes are keys and values as stored in Kafka. The \
baseline reads Sluice's topic back and sends exactly those keys and values, in the order \
Sluice sent them, to a fresh topic with a librdkafka `BaseProducer` built from connect-core's \
`producer_config` (Sluice's own producer settings: idempotent, `acks=all`, lz4, \
`linger.ms=5`, `batch.size=1000000`, murmur2 partitioner), serving delivery reports every 100 \
sends; its time runs from the first send to the end of its flush and starts after one warm-up \
record (not counted), so that its connection, idempotent producer id and the topic's metadata \
are there, as Sluice's are when it reads its first row.
- **P2 sink.** `sluice run` on a sink-only pipeline over P1's topic (`s3_json`, `flush_size` \
as shown, `rotate_interval: 1s`, other settings default). A watcher reads the consumer group's \
state and committed offsets every 50 ms. The rate counts the records of full objects (each \
partition up to its last `flush_size` boundary) over the time from the group first being \
stable with a member (the sink joined and holds its partitions) until those records are all \
committed; the rate from spawning the process is shown too. The last, partial objects are \
written when `rotate_interval` elapses (a streaming sink cannot know where the topic ends), \
which the \"all committed\" column includes; then `sluice` gets SIGTERM and must exit 0. The \
baseline is a librdkafka consumer in its own group with connect-core's `consumer_config` \
(Sluice's consumer settings) that appends each value and a newline to a per-partition buffer, \
PUTs it with aws-sdk-s3 under the same key layout every `flush_size` records (its last object \
when it reaches the end offset, which it is told), up to 8 PUTs at once (the sink's default \
`upload_concurrency`; Sluice's PUTs are also conditional, `If-None-Match`), and commits each \
partition as its objects land in order; the same watcher times it the same way. Both buckets \
are checked to hold every value exactly once (the same total bytes).
- **P3 peer.** The data rows of the largest data set as a text file; each side gets a fresh \
one-partition topic and the same lines. Apache Kafka Connect standalone (`ConnectStandalone`, \
the heap and GC options of `connect-standalone.sh`, INFO logging to a file, JSON values \
without schemas: the bytes Sluice's text lines have) runs FileStreamSource and FileStreamSink; \
`sluice run` runs a pipeline with a `file` source (`format: text`) and a `file` sink (its \
defaults, which write in batches and fsync each). Both are timed from spawning the process \
until the output file holds every line (polled every 20 ms). The time to the first output \
line shows the start-up (the JVM's, Connect's plugin scan and group join; Sluice's); the rate \
after it counts the lines after the first write.
- **P4 footprint.** Peak RSS is the kernel's high-water mark of the `sluice` process's own \
memory (`VmHWM` in `/proc/<pid>/status`), read every 10 ms until it exits (`wait4`'s \
`ru_maxrss` would include the harness's own peak, which Linux carries into a child at \
`exec`). First record is the first record's \
timestamp in P1's topic minus the moment `sluice run` was spawned, so it includes process \
start, configuration, topic and offsets-topic checks and reading the stored position.
- **P5 freshness.** `sluice run` replays the CSV at the given rate (`order: random`, \
`seed: 1`, `loop: true`) into 6 partitions and an `s3_json` sink with `rotate_interval: 1s` \
(other settings default). The bucket is listed every 50 ms and each object is stamped when a \
listing that holds it returns. Steady state is measured: the rows read during the given \
seconds from the first object being listable (the time to it is shown as start-up); the run \
goes on 5 s longer and then gets SIGTERM. Afterwards the topic is read back: each row's \
latency is its object's stamp minus the row's record timestamp (the moment csv_replay read \
it), found through the object's partition, first offset and line count; a row whose object \
was not listable by the end counts with the time until the end.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(104_224), "104,224");
        assert_eq!(thousands(1_042_240), "1,042,240");
    }

    #[test]
    fn service_versions_come_from_the_services_script() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let version = service_version(&repo, "S3S");
        assert!(
            version.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "{version}"
        );
    }
}
