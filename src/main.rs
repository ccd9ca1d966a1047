//! `sluice`: runs Kafka Connect-style pipelines declared in YAML.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use connect_core::config::{load_pipeline_file, ConfigErrors, PipelineConfig};
use connect_core::registry::{PluginKind, Registry};
use connect_core::runtime::{run_pipelines, PipelineReport};
use tokio_util::sync::CancellationToken;

mod api;
mod catalog;
mod new;
mod progress;
mod query;
mod serve;

// Linking a connector crate registers its plugins.
use connect_csv_replay as _;
use connect_file as _;
use connect_http_poll as _;
use connect_s3_json as _;
use connect_transforms as _;

/// Sluice: move data through Apache Kafka with sources, sinks and transforms declared in YAML.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info`, `debug`, `connect_core=debug`.
    #[arg(long, global = true, env = "SLUICE_LOG", default_value = "info")]
    log: String,
    /// Log format on stderr: `text`, or `json` (one object per line, for log shippers).
    #[arg(
        long,
        global = true,
        env = "SLUICE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run pipelines in the foreground until their sources are exhausted and
    /// everything is sunk, or until Ctrl-C / SIGTERM (then drain and exit 0).
    Run {
        /// Pipeline YAML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// No live progress bars (they are shown only when stderr is a terminal).
        #[arg(long)]
        no_progress: bool,
    },
    /// Run as a long-lived worker: pipelines of a directory and of the REST
    /// API (persisted in Kafka), Prometheus metrics, health; SIGHUP reloads
    /// the directory, SIGTERM stops every pipeline gracefully and exits 0.
    Worker {
        /// Worker config YAML (group, kafka, rest, pipelines_dir, config_topic,
        /// shutdown_timeout). Without it: defaults, Kafka at $KAFKA_BOOTSTRAP.
        config: Option<PathBuf>,
        /// Listen address of the REST API (overrides `rest.listen`; default 127.0.0.1:8083).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Check pipeline files and print every problem; exits non-zero if any.
    Validate {
        /// Pipeline YAML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show or reset a pipeline's stored positions: its source position (in
    /// the offsets topic) and each sink's consumer-group offsets.
    Offsets {
        #[command(subcommand)]
        action: OffsetsAction,
    },
    /// Run SQL over the JSON Lines objects of an s3_json sink (embedded
    /// DataFusion): tables from `--table NAME=s3://bucket/prefix/` or `--pipeline`.
    Query(query::QueryArgs),
    /// The bucket as a data catalog table: `catalog crawl` infers a table
    /// from the JSON Lines objects under a prefix, as a Glue crawler would,
    /// and prints it as a Glue CreateTable input and Athena DDL.
    Catalog {
        #[command(subcommand)]
        action: catalog::CatalogAction,
    },
    /// List the registered plugins; `plugins describe <type>` prints every
    /// key of a plugin's config with its type, default and description.
    #[command(args_conflicts_with_subcommands = true)]
    Plugins {
        #[command(subcommand)]
        action: Option<PluginsAction>,
        /// Print the example config of this plugin instead.
        #[arg(long, value_name = "TYPE")]
        example: Option<String>,
        /// With `--example`: the plugin's kind (`source`, `sink`, `transform`,
        /// `predicate`), for a name two kinds share (`file`); without it,
        /// every kind's example is printed.
        #[arg(long, requires = "example", value_parser = parse_kind)]
        kind: Option<PluginKind>,
        /// Print the plugin reference as Markdown (what docs/plugins.md holds).
        #[arg(long, conflicts_with = "example")]
        markdown: bool,
    },
    /// Start something new from a template.
    New {
        #[command(subcommand)]
        what: NewAction,
    },
}

#[derive(Debug, Subcommand)]
enum NewAction {
    /// Write a connector crate (registration, config, source or sink,
    /// example, README, the conformance kit in its tests) that builds and
    /// passes as written: a counting source, or a sink appending JSON Lines
    /// files exactly once. docs/writing-a-connector.md goes on from there.
    Connector {
        /// The plugin's type name, snake_case (`type: <name>` in pipelines).
        name: String,
        /// `source` or `sink`.
        #[arg(long, value_parser = ["source", "sink"])]
        kind: String,
        /// Where to write the crate (default: connectors/<name> at the root
        /// of a Sluice checkout, else ./connect-<name>).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The connect-core crate's folder (default: ./connect-core at the
        /// root of a Sluice checkout).
        #[arg(long, value_name = "PATH")]
        core: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum OffsetsAction {
    /// Print the stored source position and every sink's committed offsets and lag.
    Get {
        /// The pipeline file.
        file: PathBuf,
    },
    /// Forget stored positions (the pipeline must be stopped): the source
    /// starts from the beginning and the sinks read the topic from the start.
    /// Without `--source` or `--sink`, resets all of them.
    Reset {
        /// The pipeline file.
        file: PathBuf,
        /// Reset the source position.
        #[arg(long)]
        source: bool,
        /// Reset this sink's consumer-group offsets (repeatable).
        #[arg(long = "sink", value_name = "NAME")]
        sinks: Vec<String>,
    },
    /// Set stored positions by hand (the pipeline must be stopped): the
    /// source position as the JSON `offsets get` prints, and/or one sink's
    /// next offset per partition.
    Set {
        /// The pipeline file.
        file: PathBuf,
        /// The source offset, as JSON (csv_replay: the object `offsets get` shows).
        #[arg(long, value_name = "JSON")]
        source: Option<String>,
        /// The source partition the offset is for, as JSON; defaults to the
        /// one with a stored position (csv_replay: `{"file": "<path>"}`).
        #[arg(long, value_name = "JSON", requires = "source")]
        source_partition: Option<String>,
        /// The sink whose consumer-group offsets to set.
        #[arg(long, value_name = "NAME", requires = "partitions")]
        sink: Option<String>,
        /// `PARTITION=OFFSET`: the next offset the sink reads in that Kafka partition (repeatable).
        #[arg(long = "partition", value_name = "P=OFFSET", requires = "sink")]
        partitions: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Writes log lines to stderr with every registered secret redacted.
struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let text = connect_core::secrets::redact(&text);
        progress::suspended(|| std::io::stderr().write_all(text.as_bytes()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into());
    // Colours only on a terminal: a log file or a pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(|| RedactingStderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    match real_main(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!(
                "error: {}",
                connect_core::secrets::redact(&format!("{error:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let registry = Registry::global().context("plugin registry")?;
    match cli.command {
        Command::Query(args) => query::run(args),
        Command::Plugins {
            action,
            example,
            kind,
            markdown,
        } => {
            if let Some(PluginsAction::Describe { name, kind }) = action {
                return Ok(describe_plugin(registry, &name, kind));
            }
            if markdown {
                print!("{}", plugins_markdown(registry));
                return Ok(ExitCode::SUCCESS);
            }
            print_plugins(registry, example.as_deref(), kind)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::New {
            what:
                NewAction::Connector {
                    name,
                    kind,
                    dir,
                    core,
                },
        } => {
            let (dir, next) = new::write(&new::NewConnector {
                name,
                kind,
                dir,
                core,
            })?;
            println!("wrote {}\n{next}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { config, listen } => {
            let mut settings = match &config {
                Some(path) => match connect_core::worker::load_worker_config(path) {
                    Ok(settings) => settings,
                    Err(errors) => {
                        report_config_errors(&[errors]);
                        return Ok(ExitCode::from(2));
                    }
                },
                None => connect_core::worker::WorkerConfig::default(),
            };
            if let Some(listen) = listen {
                settings.rest.listen = listen;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve::run_worker(settings))
        }
        Command::Validate { files } => {
            let (pipelines, errors) = load_all(&files);
            for pipeline in &pipelines {
                let sinks: Vec<String> = pipeline
                    .sinks
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.type_name))
                    .collect();
                println!(
                    "ok: {} (pipeline `{}`): topic `{}`, source: {}, sinks: {}",
                    pipeline.file.display(),
                    pipeline.name,
                    pipeline.topic.name,
                    pipeline.source.as_ref().map_or("none", |s| s.type_name),
                    if sinks.is_empty() {
                        "none".to_owned()
                    } else {
                        sinks.join(", ")
                    }
                );
            }
            report_config_errors(&errors);
            Ok(if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Offsets { action } => {
            let file = match &action {
                OffsetsAction::Get { file }
                | OffsetsAction::Reset { file, .. }
                | OffsetsAction::Set { file, .. } => file.clone(),
            };
            let (mut pipelines, errors) = load_all(std::slice::from_ref(&file));
            let Some(pipeline) = pipelines.pop() else {
                report_config_errors(&errors);
                return Ok(ExitCode::from(2));
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(offsets(pipeline, action))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog { action } => catalog::run(action),
        Command::Run { files, no_progress } => {
            let (pipelines, errors) = load_all(&files);
            if !errors.is_empty() {
                report_config_errors(&errors);
                return Ok(ExitCode::from(2));
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(run(pipelines, !no_progress))
        }
    }
}

fn load_all(files: &[PathBuf]) -> (Vec<PipelineConfig>, Vec<ConfigErrors>) {
    let mut pipelines = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match load_pipeline_file(file) {
            Ok(pipeline) => pipelines.push(pipeline),
            Err(e) => errors.push(e),
        }
    }
    (pipelines, errors)
}

fn report_config_errors(errors: &[ConfigErrors]) {
    let count: usize = errors.iter().map(|e| e.0.len()).sum();
    for error in errors {
        eprintln!("{}", connect_core::secrets::redact(&error.to_string()));
    }
    if count > 0 {
        eprintln!("{count} problem{} found", if count == 1 { "" } else { "s" });
    }
}

fn parse_kind(text: &str) -> Result<PluginKind, String> {
    text.parse()
}

fn print_plugins(
    registry: &Registry,
    example: Option<&str>,
    kind: Option<PluginKind>,
) -> anyhow::Result<()> {
    if let Some(name) = example {
        if kind.is_some() {
            let plugin = registry.one(name, kind).map_err(anyhow::Error::msg)?;
            print!("{}", plugin.example);
            return Ok(());
        }
        let plugins = registry.named(name).map_err(anyhow::Error::msg)?;
        for plugin in &plugins {
            if plugins.len() > 1 {
                println!(
                    "# {} `{name}` (`--kind {}` prints only this one)",
                    plugin.kind(),
                    plugin.kind()
                );
            }
            print!("{}", plugin.example);
        }
        return Ok(());
    }
    for plugin in registry.all() {
        println!(
            "{:<10} {:<14} {}",
            plugin.kind().to_string(),
            plugin.name,
            plugin.summary
        );
    }
    Ok(())
}

/// The plugin reference, generated from each plugin's registration.
fn plugins_markdown(registry: &Registry) -> String {
    let mut out = String::from(
        "# Plugin reference\n\nGenerated by `sluice plugins --markdown` from each plugin's registration; \
         a test keeps this file in step with the code. Each plugin's table of keys is generated from \
         the JSON Schema of its config type (its serde attributes and doc comments), as \
         `sluice plugins describe <type>` prints it. Besides these keys, each section has `type`, \
         and each transform step `predicate` and `negate` (see the README).\n",
    );
    let mut kind = None;
    for plugin in registry.all() {
        if kind != Some(plugin.kind()) {
            kind = Some(plugin.kind());
            out.push_str(&format!(
                "\n## {}s\n",
                capitalize(&plugin.kind().to_string())
            ));
        }
        out.push_str(&format!(
            "\n### `{}`\n\n{} (crate `{}`)\n\n```yaml\n{}```\n\n{}",
            plugin.name,
            plugin.summary,
            plugin.crate_name,
            plugin.example,
            fields_markdown(&plugin.fields())
        ));
    }
    out
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[derive(Debug, Subcommand)]
enum PluginsAction {
    /// Print every key of a plugin's config: its type, whether it is
    /// required or its default, its description and, for a fixed set of
    /// values, each value.
    Describe {
        /// The plugin's type name, e.g. `s3_json`.
        #[arg(value_name = "TYPE")]
        name: String,
        /// Only the plugin of this kind (`source`, `sink`, `transform`,
        /// `predicate`), for a name two kinds share (`file`).
        #[arg(long, value_parser = parse_kind)]
        kind: Option<PluginKind>,
    },
}

/// What the keys table says about a transform step's own keys.
const TRANSFORM_STEP_KEYS: &str = "Every transform step also takes `predicate` (a name from the \
    pipeline's `predicates:`) and `negate` (apply where the predicate does not hold).";

/// Total width the description column of `plugins describe` wraps to.
const DESCRIBE_WIDTH: usize = 100;

/// `sluice plugins describe <type>`: exit 2 with a suggestion when no plugin has that name.
fn describe_plugin(registry: &Registry, name: &str, kind: Option<PluginKind>) -> ExitCode {
    let found = match kind {
        Some(kind) => registry.one(name, Some(kind)).map(|p| vec![p]),
        None => registry.named(name),
    };
    let plugins = match found {
        Ok(plugins) => plugins,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    for (i, plugin) in plugins.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!(
            "{} `{}` (crate {}): {}",
            plugin.kind(),
            plugin.name,
            plugin.crate_name,
            plugin.summary
        );
        println!();
        print!("{}", fields_table(&plugin.fields()));
        if plugin.kind() == connect_core::registry::PluginKind::Transform {
            println!();
            for line in wrap(TRANSFORM_STEP_KEYS, DESCRIBE_WIDTH) {
                println!("{line}");
            }
        }
    }
    ExitCode::SUCCESS
}

/// The keys as an aligned text table; the description column is wrapped,
/// the accepted values of an enum key listed under its description.
fn fields_table(fields: &[connect_core::registry::ConfigField]) -> String {
    if fields.is_empty() {
        return "No keys besides `type`.\n".to_owned();
    }
    let header = ["KEY", "TYPE", "DEFAULT"];
    let rows: Vec<[String; 3]> = fields
        .iter()
        .map(|f| [f.path.clone(), f.type_name.clone(), f.default_text()])
        .collect();
    let widths: Vec<usize> = (0..3)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].len()])
                .max()
                .unwrap_or_default()
        })
        .collect();
    let indent = widths.iter().map(|w| w + 2).sum::<usize>();
    let text_width = DESCRIBE_WIDTH.saturating_sub(indent).max(40);
    let line = |cells: [&str; 3], description: &str| {
        let mut text = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            text.push_str(&format!("{cell:<width$}  "));
        }
        text.push_str(description);
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header, "DESCRIPTION");
    for (field, row) in fields.iter().zip(&rows) {
        let mut description = wrap(&field.doc, text_width);
        if !field.values.is_empty() {
            description.push("one of:".to_owned());
            let value_width = field
                .values
                .iter()
                .map(|v| v.value.chars().count())
                .max()
                .unwrap_or_default();
            let doc_width = text_width.saturating_sub(value_width + 4).max(20);
            for value in &field.values {
                for (i, doc_line) in wrap(&value.doc, doc_width).into_iter().enumerate() {
                    let shown = if i == 0 { value.value.as_str() } else { "" };
                    description.push(format!("  {shown:<value_width$}  {doc_line}"));
                }
                if value.doc.is_empty() {
                    description.push(format!("  {}", value.value));
                }
            }
        }
        let mut lines = description.into_iter();
        let first = lines.next().unwrap_or_default();
        out.push_str(&line([&row[0], &row[1], &row[2]], &first));
        for rest in lines {
            out.push_str(&line(["", "", ""], &rest));
        }
    }
    out
}

/// Splits `text` into lines of at most `width` characters at spaces (a
/// longer word gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// The keys as a Markdown table (what `plugins describe` prints), for docs/plugins.md.
fn fields_markdown(fields: &[connect_core::registry::ConfigField]) -> String {
    if fields.is_empty() {
        return "No keys besides `type`.\n".to_owned();
    }
    let cell = |text: &str| text.replace('|', "\\|");
    let mut out = String::from("| key | type | default | description |\n|---|---|---|---|\n");
    for field in fields {
        let default = match field.default_value() {
            Some(value) => format!("`{value}`"),
            None => field.default_text(),
        };
        let mut description = field.doc.clone();
        if !field.values.is_empty() {
            let values: Vec<String> = field
                .values
                .iter()
                .map(|v| {
                    let doc = v.doc.trim_end_matches('.');
                    if doc.is_empty() {
                        format!("`{}`", v.value)
                    } else {
                        format!("`{}`: {doc}", v.value)
                    }
                })
                .collect();
            let separator = if values.iter().any(|v| v.contains(": ")) {
                "; "
            } else {
                ", "
            };
            description.push_str(&format!(" One of: {}.", values.join(separator)));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            cell(&field.path),
            cell(&field.type_name),
            cell(&default),
            cell(description.trim())
        ));
    }
    out
}

async fn offsets(pipeline: PipelineConfig, action: OffsetsAction) -> anyhow::Result<()> {
    use connect_core::offsets::{
        group_offsets, load_positions, reset_group, reset_positions, set_group_offsets,
        set_position,
    };
    use connect_core::runtime::sink::group_id;
    let kafka = &pipeline.kafka;
    connect_core::kafka::check_access(kafka, &pipeline.topic.name, Duration::from_secs(30))?;
    match action {
        OffsetsAction::Get { .. } => {
            let positions = tokio::task::block_in_place(|| {
                load_positions(kafka, &pipeline.name, Some(&pipeline.topic.name))
            })?;
            if pipeline.source.is_some() {
                if positions.is_empty() {
                    println!("source: no stored position (starts from the beginning)");
                }
                for position in positions.values() {
                    println!("source {}: {}", position.partition, position.offset);
                }
            }
            for sink in &pipeline.sinks {
                let group = group_id(&pipeline.name, &sink.name);
                let offsets = tokio::task::block_in_place(|| {
                    group_offsets(kafka, &group, &pipeline.topic.name)
                })?;
                println!("sink {} (group {group}):", sink.name);
                for (partition, (committed, end)) in offsets {
                    let lag = end - committed.unwrap_or(0);
                    let committed = committed.map_or("none".to_owned(), |c| c.to_string());
                    println!(
                        "  {}/{partition}: committed {committed}, end {end}, lag {lag}",
                        pipeline.topic.name
                    );
                }
            }
        }
        OffsetsAction::Reset { source, sinks, .. } => {
            let everything = !source && sinks.is_empty();
            if source || everything {
                ensure_stopped(&pipeline).await?;
                let cleared = reset_positions(kafka, &pipeline.name).await?;
                println!("source: cleared {cleared} stored position(s)");
            }
            for sink in &pipeline.sinks {
                if everything || sinks.contains(&sink.name) {
                    let group = group_id(&pipeline.name, &sink.name);
                    reset_group(kafka, &group, Duration::from_secs(30)).await?;
                    println!("sink {}: deleted consumer group {group}", sink.name);
                }
            }
            for name in &sinks {
                if !pipeline.sinks.iter().any(|s| &s.name == name) {
                    anyhow::bail!("the pipeline has no sink `{name}`");
                }
            }
        }
        OffsetsAction::Set {
            source,
            source_partition,
            sink,
            partitions,
            ..
        } => {
            if source.is_none() && sink.is_none() {
                anyhow::bail!(
                    "nothing to set: pass --source JSON and/or --sink NAME --partition P=OFFSET"
                );
            }
            // Sinks first: their groups must be empty, which also tells that
            // the pipeline is stopped before its source position is touched.
            if let Some(name) = sink {
                if !pipeline.sinks.iter().any(|s| s.name == name) {
                    anyhow::bail!("the pipeline has no sink `{name}`");
                }
                let mut offsets = BTreeMap::new();
                for item in &partitions {
                    let parsed = item
                        .split_once('=')
                        .and_then(|(p, o)| {
                            Some((p.trim().parse::<i32>().ok()?, o.trim().parse::<i64>().ok()?))
                        })
                        .filter(|(p, o)| *p >= 0 && *o >= 0);
                    let Some((partition, offset)) = parsed else {
                        anyhow::bail!("--partition {item}: expected PARTITION=OFFSET with two non-negative integers, e.g. 0=1500");
                    };
                    offsets.insert(partition, offset);
                }
                let group = group_id(&pipeline.name, &name);
                set_group_offsets(
                    kafka,
                    &group,
                    &pipeline.topic.name,
                    &offsets,
                    Duration::from_secs(30),
                )
                .await?;
                for (partition, offset) in &offsets {
                    println!(
                        "sink {name}: {}/{partition} set to {offset} (group {group})",
                        pipeline.topic.name
                    );
                }
            }
            if let Some(source) = source {
                if pipeline.source.is_none() {
                    anyhow::bail!("the pipeline has no source");
                }
                ensure_stopped(&pipeline).await?;
                let offset: serde_json::Value = serde_json::from_str(&source)
                    .map_err(|e| anyhow::anyhow!("--source is not JSON: {e}"))?;
                let partition = match source_partition {
                    Some(text) => serde_json::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("--source-partition is not JSON: {e}"))?,
                    None => {
                        let stored = tokio::task::block_in_place(|| {
                            load_positions(kafka, &pipeline.name, Some(&pipeline.topic.name))
                        })?;
                        let mut partitions = stored.into_values().map(|p| p.partition);
                        match (partitions.next(), partitions.next()) {
                            (Some(only), None) => (*only).clone(),
                            (None, _) => anyhow::bail!("no stored position to take the source partition from; pass --source-partition JSON (csv_replay: {{\"file\": \"<path>\"}})"),
                            (Some(_), Some(_)) => anyhow::bail!("several source partitions have positions; pick one with --source-partition JSON"),
                        }
                    }
                };
                set_position(kafka, &pipeline.name, &partition, &offset).await?;
                println!("source {partition}: set to {offset}");
            }
        }
    }
    Ok(())
}

/// Fails unless every sink group of the pipeline is empty (waiting up to
/// 30 s for a just-stopped run's members to leave): source positions are
/// changed only while the pipeline is stopped.
async fn ensure_stopped(pipeline: &PipelineConfig) -> anyhow::Result<()> {
    for sink in &pipeline.sinks {
        let group = connect_core::runtime::sink::group_id(&pipeline.name, &sink.name);
        connect_core::offsets::wait_until_group_is_empty(
            &pipeline.kafka,
            &group,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| anyhow::anyhow!("pipeline `{}` looks running: {e}", pipeline.name))?;
    }
    Ok(())
}

async fn run(pipelines: Vec<PipelineConfig>, show_progress: bool) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    let mut watched = Vec::new();
    let mut runs = Vec::new();
    for pipeline in pipelines {
        let (status, receiver) =
            tokio::sync::watch::channel(connect_core::runtime::PipelineStatus::default());
        watched.push((pipeline.name.clone(), receiver));
        runs.push((pipeline, status));
    }
    let display = progress::Display::start(watched, show_progress);
    let results = run_pipelines(runs, shutdown.clone()).await;
    if let Some(display) = display {
        display.finish().await;
    }
    let mut failed = false;
    for result in &results {
        match result {
            Ok(report) => print_summary(report, shutdown.is_cancelled()),
            Err(error) => {
                failed = true;
                eprintln!("error: {error}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// First Ctrl-C or SIGTERM: graceful stop (stop sources, drain, commit).
/// Second: exit at once.
async fn watch_signals(shutdown: CancellationToken) {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                return;
            }
        };
    for round in 0.. {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        if round == 0 {
            tracing::info!("stopping: sources stop, everything produced is sunk and committed; signal again to exit at once");
            shutdown.cancel();
        } else {
            eprintln!(
                "stopping at once; records produced but not yet sunk will be sunk by the next run"
            );
            std::process::exit(130);
        }
    }
}

fn print_summary(report: &PipelineReport, interrupted: bool) {
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "pipeline {} {} in {}",
        report.name,
        if interrupted { "stopped" } else { "finished" },
        humanize(report.elapsed)
    );
    if report.restarts > 0 {
        println!(
            "  restarts {:>3} after failures (the counts below are of the last run)",
            report.restarts
        );
    }
    if let Some(source) = report.source_type {
        println!(
            "  source   {source:<12} rows read        {:>10}",
            report.polled
        );
        if report.dropped > 0 {
            println!(
                "  source   {source:<12} dropped by transforms {:>5}",
                report.dropped
            );
        }
        println!(
            "  topic    {:<12} records produced {:>10}  ({:.0} records/s)",
            report.topic,
            report.produced,
            report.produced as f64 / secs
        );
    }
    if report.skipped > 0 {
        println!(
            "  errors   skipped bad records {:>10}  (tolerance: all)",
            report.skipped
        );
    }
    for sink in &report.sinks {
        println!(
            "  sink     {:<12} records sunk     {:>10}  objects {}  {:.1} MB  ({} consumed)",
            format!("{} ({})", sink.name, sink.type_name),
            sink.records,
            sink.objects,
            sink.bytes as f64 / 1e6,
            sink.consumed
        );
        if sink.dropped > 0 {
            println!(
                "  sink     {:<12} dropped by transforms {:>5}",
                sink.name, sink.dropped
            );
        }
    }
}

fn humanize(elapsed: Duration) -> String {
    format!("{:.2}s", elapsed.as_secs_f64())
}
