//! P3 peer: the same file → topic → file job done by Apache Kafka Connect in
//! standalone mode (FileStreamSource and FileStreamSink, the jars from Maven
//! Central that `scripts/services.sh up` fetches) and by `sluice run` (its
//! `file` source and sink). Each side is timed end to end, from spawning its
//! process until the output file holds every line (the file polled every
//! [`POLL_INTERVAL`]); the time to the first output line is reported too,
//! since the JVM's start-up weighs on small inputs.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::context::{timeout_for, Bench};
use crate::data::Dataset;
use crate::kafka;
use crate::process::{Exit, Measured};
use crate::stats::Rate;

const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// One side of P3.
#[derive(Debug, Clone, Serialize)]
pub struct PeerSide {
    /// Lines over the time from spawning the process to the last line in the output file.
    pub end_to_end: Rate,
    /// From spawning the process to the first line in the output file.
    pub first_line_ms: f64,
    /// The lines after the first write over the time from the first to the
    /// last output line; `None` when every line came in one write.
    pub after_first_line: Option<Rate>,
    /// Peak RSS of the process.
    pub peak_rss_kib: u64,
}

/// What P3 measured.
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    pub dataset: String,
    pub lines: u64,
    pub sluice: PeerSide,
    pub kafka_connect: PeerSide,
    /// Sluice over Kafka Connect, end to end.
    pub ratio: f64,
    /// Sluice over Kafka Connect, after the first output line.
    pub ratio_after_first_line: Option<f64>,
}

pub async fn run(bench: &Bench, dataset: &Dataset, connect_libs: &Path) -> anyhow::Result<Peer> {
    let dir = bench
        .work
        .join(format!("p3-{}", dataset.label.trim_end_matches('×')));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The CSV's data rows as plain lines: the same input for both.
    let input = dir.join("input.txt");
    let text = std::fs::read_to_string(&dataset.path)
        .with_context(|| format!("cannot read {}", dataset.path.display()))?;
    let lines: Vec<&str> = text.lines().skip(1).collect();
    std::fs::write(&input, lines.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", input.display()))?;
    let count = lines.len() as u64;
    let bytes = std::fs::metadata(&input)?.len();
    let timeout = timeout_for(count) * 2;

    let name = bench.unique("p3");
    let connect_topic = format!("{name}-connect");
    let sluice_topic = format!("{name}-sluice");
    for topic in [&connect_topic, &sluice_topic] {
        kafka::create_topic(&bench.services, topic, 1).await?;
        bench.created_topic(topic);
    }

    tracing::info!(dataset = %dataset.label, lines = count, topic = %connect_topic, "P3: Kafka Connect standalone");
    let connect_out = dir.join("connect-out.txt");
    let connect = kafka_connect(
        bench,
        &dir,
        connect_libs,
        &name,
        &connect_topic,
        &input,
        &connect_out,
    )?;
    let kafka_connect = measure(connect, &connect_out, count, bytes, timeout).await?;

    tracing::info!(dataset = %dataset.label, lines = count, topic = %sluice_topic, "P3: sluice run (file source and sink)");
    let sluice_out = dir.join("sluice-out.txt");
    let pipeline = format!(
        "name: {name}\n\
         topic:\n  name: {sluice_topic}\n  create: false\n\
         source:\n  type: file\n  path: {input}\n  format: text\n\
         sinks:\n  out:\n    type: file\n    path: {out}\n",
        input = input.display(),
        out = sluice_out.display()
    );
    let sluice = bench.start_sluice(&name, &pipeline)?;
    let sluice = measure(sluice, &sluice_out, count, bytes, timeout).await?;

    Ok(Peer {
        dataset: dataset.label.clone(),
        lines: count,
        ratio: sluice.end_to_end.ratio_to(&kafka_connect.end_to_end),
        ratio_after_first_line: sluice
            .after_first_line
            .zip(kafka_connect.after_first_line)
            .map(|(sluice, connect)| sluice.ratio_to(&connect)),
        sluice,
        kafka_connect,
    })
}

/// Starts Kafka Connect standalone with a FileStreamSource from `input` to
/// `topic` and a FileStreamSink from `topic` to `output`, launched as
/// `connect-standalone.sh` launches it (its default heap and GC options),
/// with JSON values without schemas (the bytes Sluice's text lines have).
fn kafka_connect(
    bench: &Bench,
    dir: &Path,
    libs: &Path,
    name: &str,
    topic: &str,
    input: &Path,
    output: &Path,
) -> anyhow::Result<Measured> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("no free port for Kafka Connect's REST listener")?
        .port();
    let write = |file: &str, text: String| -> anyhow::Result<PathBuf> {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    let worker = write(
        "connect-worker.properties",
        format!(
            "bootstrap.servers={kafka}\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter.schemas.enable=false\n\
             offset.storage.file.filename={offsets}\n\
             listeners=http://127.0.0.1:{port}\n",
            kafka = bench.services.kafka,
            offsets = dir.join("connect.offsets").display()
        ),
    )?;
    let source = write(
        "connect-source.properties",
        format!(
            "name={name}-source\n\
             connector.class=org.apache.kafka.connect.file.FileStreamSourceConnector\n\
             tasks.max=1\nfile={input}\ntopic={topic}\n",
            input = input.display()
        ),
    )?;
    let sink = write(
        "connect-sink.properties",
        format!(
            "name={name}-sink\n\
             connector.class=org.apache.kafka.connect.file.FileStreamSinkConnector\n\
             tasks.max=1\nfile={output}\ntopics={topic}\n",
            output = output.display()
        ),
    )?;
    let log = dir.join("connect.log");
    let log4j = write(
        "connect-log4j2.xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Configuration status=\"warn\">\n\
             <Appenders><File name=\"file\" fileName=\"{log}\"><PatternLayout pattern=\"[%d] %p %m (%c)%n\"/></File></Appenders>\n\
             <Loggers><Root level=\"info\"><AppenderRef ref=\"file\"/></Root></Loggers>\n\
             </Configuration>\n",
            log = log.display()
        ),
    )?;
    let mut command = Command::new("java");
    command
        .args(["-Xms256M", "-Xmx2G"])
        .args([
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
        ])
        .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg("org.apache.kafka.connect.cli.ConnectStandalone")
        .args([&worker, &source, &sink]);
    Measured::spawn(
        "Kafka Connect standalone",
        command,
        &dir.join("connect-stdout.log"),
    )
}

/// Waits until `output` holds `lines` lines, then stops the process
/// (SIGTERM; Sluice has usually ended on its own by then).
async fn measure(
    mut process: Measured,
    output: &Path,
    lines: u64,
    bytes: u64,
    timeout: Duration,
) -> anyhow::Result<PeerSide> {
    let mut counter = LineCounter::default();
    let mut first_write: Option<(Instant, u64)> = None;
    let last_line = loop {
        let exited = process.has_exited();
        let seen = counter.count(output)?;
        let now = Instant::now();
        if seen > 0 && first_write.is_none() {
            first_write = Some((now, seen));
        }
        if seen >= lines {
            break now;
        }
        if exited {
            process.wait(Duration::from_secs(1)).await?;
            bail!(
                "it ended with {seen} of {lines} lines in {}; last log lines:\n{}",
                output.display(),
                process.log_tail(30)
            );
        }
        if now.duration_since(process.started) > timeout {
            bail!(
                "{seen} of {lines} lines in {} after {timeout:?}; last log lines:\n{}",
                output.display(),
                process.log_tail(30)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    process.terminate()?;
    let exit: Exit = process.wait(Duration::from_secs(60)).await?;
    let started = process.started;
    let (first_line, first_lines) = first_write.unwrap_or((last_line, lines));
    let later = lines - first_lines.min(lines);
    Ok(PeerSide {
        end_to_end: Rate::new(
            lines,
            bytes,
            last_line.duration_since(started).as_secs_f64(),
        ),
        first_line_ms: first_line.duration_since(started).as_secs_f64() * 1000.0,
        after_first_line: (later > 0).then(|| {
            Rate::new(
                later,
                bytes * later / lines.max(1),
                last_line.duration_since(first_line).as_secs_f64(),
            )
        }),
        peak_rss_kib: exit.max_rss_kib,
    })
}

/// Counts the newlines of a growing file, reading only what was appended.
#[derive(Default)]
struct LineCounter {
    read: u64,
    lines: u64,
    buffer: Vec<u8>,
}

impl LineCounter {
    fn count(&mut self, path: &Path) -> anyhow::Result<u64> {
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot open {}", path.display()))
            }
        };
        file.seek(SeekFrom::Start(self.read))?;
        self.buffer.clear();
        file.read_to_end(&mut self.buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        self.read += self.buffer.len() as u64;
        self.lines += self.buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(self.lines)
    }
}
