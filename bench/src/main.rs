//! `sluice-bench`: measures the `sluice` binary against raw baselines in
//! one run and writes docs/BENCHMARKS.md (issue 8). `scripts/bench.sh`
//! starts the services, builds both binaries in release and runs it.

mod context;
mod data;
mod freshness;
mod kafka;
mod peer;
mod process;
mod replay;
mod report;
mod s3;
mod services;
mod sink;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use crate::context::Bench;
use crate::report::{Machine, Results, Versions};
use crate::services::Services;

/// The repository this binary was built from: its data set, `.services/env` and docs.
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Benchmarks `sluice` on the local Kafka broker and S3 server against raw
/// librdkafka, raw S3 uploads and Apache Kafka Connect, and writes the
/// results as markdown.
#[derive(Debug, Parser)]
#[command(name = "sluice-bench", version)]
struct Args {
    /// The `sluice` binary to measure (default: the `sluice` next to this binary).
    #[arg(long)]
    sluice: Option<PathBuf>,
    /// The repository: data set, `.services/env`, default report path.
    #[arg(long, default_value = REPO)]
    repo: PathBuf,
    /// The CSV to replay (default: `<repo>/data/indexProcessed.csv`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Rows of the CSV to use, spread evenly over it (default: all).
    #[arg(long)]
    rows: Option<u64>,
    /// The larger data set holds the rows this many times (1: no larger set).
    #[arg(long, default_value_t = 10)]
    scale: u32,
    /// Records per S3 object in P2 (the sinks' `flush_size`).
    #[arg(long, default_value_t = 10_000)]
    flush_size: u64,
    /// P5: rows per second.
    #[arg(long, default_value_t = 1_000)]
    p5_rate: u64,
    /// P5: seconds of steady state measured (after the first object, before a 5 s tail).
    #[arg(long, default_value_t = 25)]
    p5_seconds: u64,
    /// Scenarios to run; P4 is measured during P1 and P2, P2 needs P1.
    #[arg(long, value_delimiter = ',', default_value = "p1,p2,p3,p5")]
    scenarios: Vec<Scenario>,
    /// The Apache Kafka Connect jars (default: `KAFKA_CONNECT_LIBS` from the
    /// environment or `.services/env`, set by `scripts/services.sh up`).
    #[arg(long)]
    connect_libs: Option<PathBuf>,
    /// The markdown report (default: `<repo>/docs/BENCHMARKS.md`).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A line shown at the top of the report, e.g. how busy the machine was.
    #[arg(long)]
    note: Option<String>,
    /// Keep the topics, buckets and work folder (pipelines, logs) of the run.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    P1,
    P2,
    P3,
    P5,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_BENCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("sluice_bench=info")),
        )
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let repo = args.repo.clone();
    let services = Services::load(&repo)?;
    let sluice = match &args.sluice {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("cannot find this binary's folder")?
            .with_file_name("sluice"),
    };
    if !sluice.is_file() {
        bail!(
            "no sluice binary at {}; build it (`cargo build --release`) or pass --sluice",
            sluice.display()
        );
    }
    let want = |s: Scenario| args.scenarios.contains(&s);
    let connect_libs = args
        .connect_libs
        .clone()
        .or_else(|| services.connect_libs.clone());
    let connect_libs = match connect_libs {
        Some(dir) if dir.is_dir() => Some(dir),
        _ if want(Scenario::P3) => bail!(
            "P3 needs the Apache Kafka Connect jars: run `scripts/services.sh up` (it fetches them \
             and sets KAFKA_CONNECT_LIBS in .services/env), pass --connect-libs, or leave p3 out of --scenarios"
        ),
        _ => None,
    };
    let work = tempfile::Builder::new()
        .prefix("sluice-bench-")
        .tempdir()
        .context("cannot create a work folder")?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| repo.join("data/indexProcessed.csv"));
    let datasets = data::prepare(&data, args.rows, args.scale, work.path())?;
    let bench = Bench::new(
        services,
        sluice.clone(),
        work.path().to_owned(),
        args.flush_size,
    );
    tracing::info!(work = %work.path().display(), sluice = %sluice.display(), "benchmark starting");

    let measured = scenarios(&bench, &args, &datasets, connect_libs.as_deref()).await;
    if args.keep {
        let kept = work.keep();
        tracing::info!(work = %kept.display(), "kept the work folder, topics and buckets");
    } else {
        bench.clean_up().await;
    }
    let (replay, sink, peer, freshness) = measured?;

    let results = Results {
        generated: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        note: args.note.clone(),
        machine: Machine::detect(),
        versions: Versions::detect(&sluice, &repo, connect_libs.as_deref()),
        datasets,
        flush_size: args.flush_size,
        replay,
        sink,
        freshness,
        peer,
    };
    let report = args
        .report
        .clone()
        .unwrap_or_else(|| repo.join("docs/BENCHMARKS.md"));
    std::fs::write(&report, results.markdown())
        .with_context(|| format!("cannot write {}", report.display()))?;
    if let Some(json) = &args.json {
        let text = serde_json::to_string_pretty(&results).context("results as JSON")?;
        std::fs::write(json, text).with_context(|| format!("cannot write {}", json.display()))?;
    }
    println!("{}", results.markdown());
    tracing::info!(report = %report.display(), "benchmark done");
    Ok(())
}

type Measured = (
    Vec<replay::Replay>,
    Vec<sink::SinkRun>,
    Vec<peer::Peer>,
    Option<freshness::Freshness>,
);

async fn scenarios(
    bench: &Bench,
    args: &Args,
    datasets: &[data::Dataset],
    connect_libs: Option<&std::path::Path>,
) -> anyhow::Result<Measured> {
    let want = |s: Scenario| args.scenarios.contains(&s);
    let base = datasets.first().context("no data set")?;
    let mut replays = Vec::new();
    if want(Scenario::P1) || want(Scenario::P2) {
        for set in datasets {
            let replay = replay::run(bench, set)
                .await
                .with_context(|| format!("P1 replay on the {} data set", set.label))?;
            replays.push(replay);
        }
    }
    let mut sinks = Vec::new();
    if want(Scenario::P2) {
        for replay in &replays {
            let sink = sink::run(bench, replay)
                .await
                .with_context(|| format!("P2 sink on the {} data set", replay.dataset))?;
            sinks.push(sink);
        }
    }
    // P3 on the largest set, where Kafka Connect's start-up weighs least.
    let largest = datasets.last().unwrap_or(base);
    let mut peers = Vec::new();
    if let (true, Some(libs)) = (want(Scenario::P3), connect_libs) {
        peers.push(
            peer::run(bench, largest, libs)
                .await
                .with_context(|| format!("P3 peer on the {} data set", largest.label))?,
        );
    }
    let freshness = if want(Scenario::P5) {
        Some(
            freshness::run(bench, base, args.p5_rate, args.p5_seconds)
                .await
                .context("P5 freshness")?,
        )
    } else {
        None
    };
    Ok((replays, sinks, peers, freshness))
}
