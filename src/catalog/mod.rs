//! `sluice catalog`: the data catalog side of the bucket.
//!
//! `sluice catalog crawl <s3://bucket/prefix | pipeline.yaml>` does what an
//! AWS Glue crawler does for the JSON Lines or Parquet objects an `s3_json`
//! sink writes: it lists every key under the table's location, works out the
//! partition columns from the folders ([`layout`]), reads a bounded sample of
//! the objects spread over the partitions (of a Parquet object, only its
//! footer: [`parquet`]), infers the columns and their types
//! ([`infer`]), names them so that Athena takes them ([`table`]), and prints
//! the table as a Glue `CreateTable` input ([`glue`]) and as Athena DDL
//! ([`athena`]). With `--register` it also creates or updates the table and
//! its partitions through the Glue API ([`register`]). Everything but the S3
//! calls in this file is pure.

pub mod athena;
pub mod glue;
pub mod infer;
pub mod layout;
pub mod parquet;
pub mod register;
pub mod table;

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::Client;
use futures::StreamExt;

use infer::{JsonType, SchemaBuilder};
use layout::{DataFormat, Layout, Listed};
use table::{CrawlStats, Table, TableSpec};

/// `sluice catalog` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CatalogAction {
    /// Infer a table from the JSON Lines or Parquet objects under an S3
    /// prefix, as a Glue crawler would (columns, types, Hive-style partitions), and print
    /// it as a Glue CreateTable input and/or Athena DDL.
    Crawl(CrawlArgs),
}

/// What `--format` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The Glue CreateTable input (`aws glue create-table --cli-input-json`).
    Glue,
    /// Athena DDL: CREATE EXTERNAL TABLE and the partitions.
    Ddl,
    /// The Glue JSON, then the DDL.
    Both,
    /// Neither (with `--register`: what was registered is printed instead).
    #[value(name = "none")]
    Nothing,
}

/// `sluice catalog crawl` arguments.
#[derive(Debug, clap::Args)]
pub struct CrawlArgs {
    /// `s3://bucket/prefix`, the table's location; or a pipeline YAML file:
    /// then the table is the pipeline topic's folder under its s3_json
    /// sink's bucket and prefix.
    #[arg(value_name = "S3_URL|PIPELINE")]
    pub target: String,
    /// With a pipeline of several s3_json sinks: which one.
    #[arg(long, value_name = "NAME")]
    pub sink: Option<String>,
    /// Endpoint of an S3-compatible server (path-style addressing). Default:
    /// the pipeline sink's `endpoint`; for an s3:// URL, $S3_ENDPOINT; else AWS.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// AWS region (of S3, and of Glue with --register). Default: the
    /// pipeline sink's `region`, else the AWS chain (AWS_REGION, profile),
    /// else us-east-1.
    #[arg(long)]
    pub region: Option<String>,
    /// Table name. Default: the topic (or the prefix's last folder), with
    /// characters Athena does not take in names as `_` (`stock-market` →
    /// `stock_market`).
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Glue database (Athena schema) of the table.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub database: String,
    /// Most objects read to infer the schema, spread evenly over the
    /// partitions (of a Parquet object only its footer is read). Every key
    /// is listed whatever this is.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub sample: usize,
    /// Most lines read from each object read (default: every line).
    #[arg(long, value_name = "N")]
    pub max_lines: Option<usize>,
    /// What to print on stdout: `glue`, `ddl`, `both` or `none`. Default:
    /// `both`, or `none` with --register.
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Partition projection table properties (enum / integer ranges of the
    /// values found, and the location template) instead of ALTER TABLE ADD
    /// PARTITION statements.
    #[arg(long)]
    pub projection: bool,
    /// Register the table and its partitions in the Glue Data Catalog: create
    /// the database if missing, create the table or update it (UpdateTable)
    /// when it exists, add the partitions not yet registered
    /// (BatchCreatePartition). Credentials from the AWS chain.
    #[arg(long)]
    pub register: bool,
    /// Endpoint of the Glue API for --register (e.g. a local moto server).
    /// Default: $GLUE_ENDPOINT, else AWS.
    #[arg(long, value_name = "URL", requires = "register")]
    pub glue_endpoint: Option<String>,
}

/// Runs a `sluice catalog` subcommand.
pub fn run(action: CatalogAction) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match action {
        CatalogAction::Crawl(args) => runtime.block_on(crawl(args)),
    }
}

/// Where the table is, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    bucket: String,
    /// The location's key prefix, without leading or trailing `/` (empty: the bucket's root).
    prefix: String,
    /// The table name when `--table` is not given (before sanitizing).
    default_name: String,
    endpoint: Option<String>,
    region: Option<String>,
    force_path_style: Option<bool>,
}

impl Target {
    /// `s3://bucket/prefix/`.
    fn location(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}/", self.bucket)
        } else {
            format!("s3://{}/{}/", self.bucket, self.prefix)
        }
    }

    /// The listing prefix: `prefix/`, or empty.
    fn root(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }
}

/// Parses `s3://bucket[/prefix]` into (bucket, prefix without surrounding `/`).
fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("`{url}` is not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!(
            "`{url}` has no bucket; write s3://bucket/prefix (e.g. s3://stock-market/topics/stock-market)"
        ));
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The target of an s3:// URL: endpoint from `--endpoint` or `$S3_ENDPOINT`.
fn url_target(url: &str, args: &CrawlArgs) -> anyhow::Result<Target> {
    let (bucket, prefix) = parse_s3_url(url).map_err(|e| anyhow!(e))?;
    let default_name = prefix
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(&bucket)
        .to_owned();
    Ok(Target {
        bucket,
        prefix,
        default_name,
        endpoint: non_empty(args.endpoint.clone())
            .or_else(|| non_empty(std::env::var("S3_ENDPOINT").ok())),
        region: non_empty(args.region.clone()),
        force_path_style: None,
    })
}

/// The target of a pipeline: its s3_json sink's bucket, prefix and S3
/// settings, and its topic's folder. `Err(code)` after printing the
/// pipeline's config errors.
fn pipeline_target(path: &Path, args: &CrawlArgs) -> anyhow::Result<Result<Target, ExitCode>> {
    use connect_core::config::{de::from_node, node::parse_document, ConfigErrors, Diagnostics};
    let pipeline = match connect_core::config::load_pipeline_file(path) {
        Ok(pipeline) => pipeline,
        Err(errors) => {
            eprintln!("{}", connect_core::secrets::redact(&errors.to_string()));
            return Ok(Err(ExitCode::from(2)));
        }
    };
    let s3_sinks: Vec<&str> = pipeline
        .sinks
        .iter()
        .filter(|s| s.type_name == "s3_json")
        .map(|s| s.name.as_str())
        .collect();
    let sink = match (&args.sink, s3_sinks.as_slice()) {
        (Some(name), _) if s3_sinks.contains(&name.as_str()) => name.clone(),
        (Some(name), _) => bail!(
            "pipeline `{}` ({}) has no s3_json sink `{name}`; its s3_json sinks: {}",
            pipeline.name,
            path.display(),
            list_or_none(&s3_sinks)
        ),
        (None, [only]) => (*only).to_owned(),
        (None, []) => bail!(
            "pipeline `{}` ({}) has no s3_json sink, so it writes no table to crawl; give an s3://bucket/prefix instead",
            pipeline.name,
            path.display()
        ),
        (None, several) => bail!(
            "pipeline `{}` ({}) has several s3_json sinks ({}); pick one with --sink NAME",
            pipeline.name,
            path.display(),
            several.join(", ")
        ),
    };
    if let Some(instance) = pipeline.sinks.iter().find(|s| s.name == sink) {
        if let Some(router) = instance
            .transforms
            .iter()
            .find(|t| matches!(t.type_name, "regex_router" | "timestamp_router"))
        {
            tracing::warn!(
                "sink `{sink}` renames topics ({} at {}): its objects may be under another topic's folder; \
                 if the crawl finds nothing, crawl s3://<bucket>/<prefix>/<renamed topic> instead",
                router.type_name,
                router.path
            );
        }
    }
    // The sink's config as the sink sees it (`${env:...}` resolved); the
    // file was just validated, so this only fails if it changed meanwhile.
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let diags = Diagnostics::new(path.display().to_string());
    let node = parse_document(&text, &diags)
        .and_then(|root| root.get("sinks")?.get(&sink).cloned())
        .ok_or_else(|| anyhow!("{}: sink `{sink}` is gone from the file", path.display()))?
        .without_keys(&["type", "transforms"]);
    let Some(config) = from_node::<connect_s3_json::S3JsonConfig>(&node, &diags) else {
        bail!("{}", ConfigErrors(diags.into_sorted()));
    };
    let topic = pipeline.topic.name.clone();
    let base = config.prefix.trim_matches('/');
    let prefix = if base.is_empty() {
        topic.clone()
    } else {
        format!("{base}/{topic}")
    };
    Ok(Ok(Target {
        bucket: config.bucket.clone(),
        prefix,
        default_name: topic,
        endpoint: non_empty(args.endpoint.clone()).or_else(|| config.endpoint().map(str::to_owned)),
        region: non_empty(args.region.clone()).or_else(|| config.region.clone()),
        force_path_style: if args.endpoint.is_some() {
            None
        } else {
            config.force_path_style
        },
    }))
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// An S3 client configured as the s3_json sink configures its own.
async fn s3_client(target: &Target) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &target.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        builder = builder.region(aws_config::Region::new("us-east-1"));
    }
    if let Some(endpoint) = &target.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder =
        builder.force_path_style(target.force_path_style.unwrap_or(target.endpoint.is_some()));
    Client::from_conf(builder.build())
}

fn where_(target: &Target) -> String {
    match &target.endpoint {
        Some(endpoint) => format!("at {endpoint}"),
        None => "on AWS S3".to_owned(),
    }
}

/// Every key under the location (all pages).
async fn list_all(client: &Client, target: &Target) -> anyhow::Result<Vec<Listed>> {
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(&target.bucket)
            .prefix(target.root())
            .set_continuation_token(token.take())
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_bucket())
                    || error.code() == Some("NoSuchBucket")
                {
                    bail!(
                        "bucket `{}` does not exist {}; check the bucket name, or the endpoint (--endpoint, $S3_ENDPOINT)",
                        target.bucket,
                        where_(target)
                    );
                }
                bail!(
                    "cannot list {} {}: {}; check the endpoint (--endpoint, $S3_ENDPOINT), region and credentials (the AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, role)",
                    target.location(),
                    where_(target),
                    DisplayErrorContext(&error)
                );
            }
        };
        for object in page.contents() {
            if let Some(key) = object.key() {
                listed.push(Listed {
                    key: key.to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                });
            }
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(listed);
        }
    }
}

/// Objects fetched at once.
const FETCH_CONCURRENCY: usize = 8;

async fn fetch(client: &Client, bucket: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot read s3://{bucket}/{key}: {}",
                DisplayErrorContext(&e)
            )
        })?;
    let body = object
        .body
        .collect()
        .await
        .map_err(|e| anyhow!("cannot read s3://{bucket}/{key}: {e}"))?;
    Ok(body.into_bytes().to_vec())
}

/// The bytes `range` of an object.
async fn fetch_range(
    client: &Client,
    bucket: &str,
    key: &str,
    range: std::ops::Range<u64>,
) -> anyhow::Result<bytes::Bytes> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!(
            "bytes={}-{}",
            range.start,
            range.end.saturating_sub(1)
        ))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot read s3://{bucket}/{key}: {}",
                DisplayErrorContext(&e)
            )
        })?;
    let body = object
        .body
        .collect()
        .await
        .map_err(|e| anyhow!("cannot read s3://{bucket}/{key}: {e}"))?;
    Ok(body.into_bytes())
}

/// The footer of the Parquet object `key` of `size` bytes: its last bytes
/// only (once more when the footer is longer than the first guess).
async fn fetch_footer(
    client: &Client,
    bucket: &str,
    key: &str,
    size: u64,
) -> anyhow::Result<parquet::Footer> {
    let at = format!("s3://{bucket}/{key}");
    let what_to_do =
        "every object under the location must be a Parquet file: move others elsewhere";
    if size == 0 {
        bail!("{at} is empty, not a Parquet file; {what_to_do}");
    }
    let mut range = parquet::first_tail(size);
    for _ in 0..2 {
        let tail = fetch_range(client, bucket, key, range.clone()).await?;
        match parquet::parse_tail(&tail, size).map_err(|e| anyhow!("{at}: {e}; {what_to_do}"))? {
            parquet::Tail::Footer(footer) => return Ok(footer),
            parquet::Tail::Needs(needed) => range = size.saturating_sub(needed)..size,
        }
    }
    bail!("{at}: the Parquet footer is not in the object's last bytes; {what_to_do}")
}

/// Reads the JSON Lines of the objects `chosen` (indexes into the layout's
/// objects) into a schema, with what was read.
async fn read_json_sample(
    client: &Client,
    target: &Target,
    layout: &Layout,
    chosen: &[usize],
    args: &CrawlArgs,
) -> anyhow::Result<(SchemaBuilder, CrawlStats)> {
    let location = target.location();
    let mut schema = SchemaBuilder::default();
    let mut stats = CrawlStats::default();
    let mut bodies = futures::stream::iter(chosen.iter().map(|&i| {
        let bucket = &target.bucket;
        let key = &layout.objects[i].key;
        async move { (i, fetch(client, bucket, key).await) }
    }))
    .buffered(FETCH_CONCURRENCY);
    while let Some((i, body)) = bodies.next().await {
        let object = &layout.objects[i];
        let bytes = body?;
        let at = format!("s3://{}/{}", target.bucket, object.key);
        let consumed = read_object(&at, &bytes, args.max_lines, &mut schema, &mut stats)
            .map_err(|e| anyhow!(e))?;
        stats.objects_read += 1;
        stats.bytes_read += consumed;
    }
    drop(bodies);
    if stats.records == 0 {
        bail!(
            "the {} read under {location} hold no JSON object lines{}; is this a table of JSON Lines?",
            plural(stats.objects_read, "object", "objects"),
            stats
                .first_malformed
                .as_deref()
                .map(|m| format!(" (first line: {m})"))
                .unwrap_or_default()
        );
    }
    Ok((schema, stats))
}

/// Reads the footers of the Parquet objects `chosen` (indexes into the
/// layout's objects): their columns merged into a schema, their rows counted.
async fn read_parquet_footers(
    client: &Client,
    target: &Target,
    layout: &Layout,
    chosen: &[usize],
) -> anyhow::Result<(SchemaBuilder, CrawlStats)> {
    let mut schema = SchemaBuilder::default();
    let mut stats = CrawlStats::default();
    let mut footers = futures::stream::iter(chosen.iter().map(|&i| {
        let bucket = &target.bucket;
        let object = &layout.objects[i];
        async move {
            (
                i,
                fetch_footer(client, bucket, &object.key, object.size).await,
            )
        }
    }))
    .buffered(FETCH_CONCURRENCY);
    while let Some((i, footer)) = footers.next().await {
        let footer = footer?;
        schema.observe_columns(
            footer
                .schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), JsonType::of_arrow(f.data_type()))),
        );
        stats.objects_read += 1;
        stats.bytes_read += layout.objects[i].size;
        stats.records += footer.rows;
        stats.record_bytes += footer.uncompressed_bytes;
    }
    drop(footers);
    if schema.fields().is_empty() {
        bail!(
            "the {} read under {} have no columns; is this a table of the s3_json sink?",
            plural(stats.objects_read, "Parquet object", "Parquet objects"),
            target.location()
        );
    }
    Ok((schema, stats))
}

/// Feeds one object's JSON lines to the schema: at most `max_lines` lines,
/// gzip decoded when the bytes are gzip. Lines that are not JSON objects are
/// counted in `stats`; blank lines are skipped. Returns how many of the
/// stored bytes were consumed (all of them unless `max_lines` stopped it;
/// for gzip, to within the decoder's buffer).
pub fn read_object(
    location: &str,
    bytes: &[u8],
    max_lines: Option<usize>,
    schema: &mut SchemaBuilder,
    stats: &mut CrawlStats,
) -> Result<u64, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut remaining = bytes;
        let mut decoder =
            std::io::BufReader::new(flate2::read::MultiGzDecoder::new(&mut remaining));
        read_lines(location, &mut decoder, max_lines, schema, stats)?;
        drop(decoder);
        Ok((bytes.len() - remaining.len()) as u64)
    } else {
        let mut reader = bytes;
        read_lines(location, &mut reader, max_lines, schema, stats)
    }
}

/// Reads lines from `reader`; returns the bytes of the lines processed.
fn read_lines(
    location: &str,
    reader: &mut dyn BufRead,
    max_lines: Option<usize>,
    schema: &mut SchemaBuilder,
    stats: &mut CrawlStats,
) -> Result<u64, String> {
    let mut line = Vec::new();
    let mut number = 0usize;
    let mut consumed = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{location}: cannot decode after line {number}: {e}"))?;
        if read == 0 {
            return Ok(consumed);
        }
        if max_lines.is_some_and(|max| number >= max) {
            stats.truncated = true;
            return Ok(consumed);
        }
        number += 1;
        consumed += read as u64;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(record)) => {
                schema.observe(&record);
                stats.records += 1;
                stats.record_bytes += read as u64;
            }
            Ok(other) => malformed(
                stats,
                format!(
                    "{location}:{number}: a JSON {} rather than an object",
                    kind(&other)
                ),
            ),
            Err(error) => malformed(stats, format!("{location}:{number}: not JSON ({error})")),
        }
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn malformed(stats: &mut CrawlStats, what: String) {
    stats.malformed += 1;
    if stats.first_malformed.is_none() {
        stats.first_malformed = Some(what);
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the crawl saw and read, one sentence a line: shown on stderr and
/// as comments at the top of the DDL.
pub fn summary(
    location: &str,
    layout: &Layout,
    stats: &CrawlStats,
    max_lines: Option<usize>,
) -> Vec<String> {
    let partitions = if layout.columns.is_empty() {
        "unpartitioned".to_owned()
    } else {
        format!(
            "in {}",
            plural(layout.partitions.len(), "partition", "partitions")
        )
    };
    let mut lines = match layout.format {
        DataFormat::Json => vec![format!(
            "sluice catalog crawl {location}: {} ({}) {partitions}; read {} of {} objects, {} records",
            plural(layout.objects.len(), "JSON Lines object", "JSON Lines objects"),
            megabytes(layout.bytes()),
            stats.objects_read,
            layout.objects.len(),
            stats.records
        )],
        DataFormat::Parquet => vec![format!(
            "sluice catalog crawl {location}: {} ({}) {partitions}; read the footers of {} of {} objects, {} rows",
            plural(layout.objects.len(), "Parquet object", "Parquet objects"),
            megabytes(layout.bytes()),
            stats.objects_read,
            layout.objects.len(),
            stats.records
        )],
    };
    if stats.objects_read < layout.objects.len() {
        lines.push(
            "the schema is inferred from a sample spread over the partitions; raise --sample to read more"
                .to_owned(),
        );
    }
    if stats.truncated {
        if let Some(max) = max_lines {
            lines.push(format!(
                "at most {max} lines were read from each object (--max-lines)"
            ));
        }
    }
    if stats.malformed > 0 {
        lines.push(format!(
            "{} not a JSON object and skipped (first: {}); Athena fails on such lines ('ignore.malformed.json'='FALSE')",
            plural(stats.malformed as usize, "line was", "lines were"),
            stats.first_malformed.as_deref().unwrap_or("?")
        ));
    }
    if let Some(example) = layout.other_keys.first() {
        lines.push(format!(
            "{} under the location {} not {} (e.g. {example}) and not crawled; Athena reads every object under the location, so move them elsewhere",
            plural(layout.other_keys.len(), "object", "objects"),
            if layout.other_keys.len() == 1 { "is" } else { "are" },
            layout.format.describe()
        ));
    }
    lines
}

/// `sluice catalog crawl`.
async fn crawl(args: CrawlArgs) -> anyhow::Result<ExitCode> {
    let target = if args.target.starts_with("s3://") {
        url_target(&args.target, &args)?
    } else {
        let path = Path::new(&args.target);
        if !path.is_file() {
            bail!(
                "`{}` is neither an s3:// URL nor a pipeline file; give s3://bucket/prefix or a pipeline YAML",
                args.target
            );
        }
        match pipeline_target(path, &args)? {
            Ok(target) => target,
            Err(code) => return Ok(code),
        }
    };
    let database = table::check_name("--database", &args.database).map_err(|e| anyhow!(e))?;
    let name = match &args.table {
        Some(name) => table::check_name("--table", name).map_err(|e| anyhow!(e))?,
        None => table::default_table_name(&target.default_name),
    };
    let location = target.location();

    let client = s3_client(&target).await;
    let listed = list_all(&client, &target).await?;
    let layout =
        layout::analyze(&target.root(), &listed).map_err(|e| anyhow!("{location}: {e}"))?;
    if layout.objects.is_empty() {
        bail!(
            "no JSON Lines objects (.json, .json.gz) or Parquet objects (.parquet) under {location} {} ({} keys there); \
             check the prefix, or run the pipeline first",
            where_(&target),
            listed.len()
        );
    }
    let chosen = layout::sample(&layout, args.sample.max(1));

    let (schema, stats) = match layout.format {
        DataFormat::Json => read_json_sample(&client, &target, &layout, &chosen, &args).await?,
        DataFormat::Parquet => read_parquet_footers(&client, &target, &layout, &chosen).await?,
    };

    let table = table::build(
        TableSpec {
            database,
            name,
            location: location.clone(),
        },
        &layout,
        schema.fields(),
        &stats,
    );
    let header = summary(&location, &layout, &stats, args.max_lines);
    for line in header.iter().chain(&table.notes) {
        eprintln!("{line}");
    }
    let projection = if args.projection {
        Some(athena::projection_properties(&table).map_err(|e| anyhow!("--projection: {e}"))?)
    } else {
        None
    };
    let format = args.format.unwrap_or(if args.register {
        OutputFormat::Nothing
    } else {
        OutputFormat::Both
    });
    print!(
        "{}",
        render(&table, &header, projection.as_deref(), format)?
    );
    if args.register {
        let endpoint = non_empty(args.glue_endpoint.clone())
            .or_else(|| non_empty(std::env::var("GLUE_ENDPOINT").ok()));
        let glue = register::Glue::connect(endpoint.as_deref(), target.region.as_deref()).await;
        let done = register::register(&glue, &table, projection.as_deref().unwrap_or(&[])).await?;
        // On stdout, unless stdout already holds the table (one document
        // that `aws glue create-table` or Athena can take).
        for line in done.lines(glue.at(), &table) {
            if format == OutputFormat::Nothing {
                println!("{line}");
            } else {
                eprintln!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The output of `--format`.
pub fn render(
    table: &Table,
    header: &[String],
    projection: Option<&[(String, String)]>,
    format: OutputFormat,
) -> anyhow::Result<String> {
    let mut out = String::new();
    if matches!(format, OutputFormat::Glue | OutputFormat::Both) {
        let input = glue::create_table_input(table, projection.unwrap_or(&[]));
        out.push_str(&serde_json::to_string_pretty(&input)?);
        out.push('\n');
    }
    if format == OutputFormat::Both {
        out.push('\n');
    }
    if matches!(format, OutputFormat::Ddl | OutputFormat::Both) {
        out.push_str(&athena::script(table, header, projection));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn s3_urls_give_bucket_and_prefix() {
        assert_eq!(
            parse_s3_url("s3://b/topics/stock-market/").unwrap(),
            ("b".to_owned(), "topics/stock-market".to_owned())
        );
        assert_eq!(
            parse_s3_url("s3://b").unwrap(),
            ("b".to_owned(), String::new())
        );
        assert!(parse_s3_url("s3:///x").unwrap_err().contains("no bucket"));
        assert!(parse_s3_url("http://b/x").is_err());
    }

    #[test]
    fn targets_know_their_location_and_listing_root() {
        let target = Target {
            bucket: "b".into(),
            prefix: "topics/t".into(),
            default_name: "t".into(),
            endpoint: None,
            region: None,
            force_path_style: None,
        };
        assert_eq!(target.location(), "s3://b/topics/t/");
        assert_eq!(target.root(), "topics/t/");
        let root = Target {
            prefix: String::new(),
            ..target
        };
        assert_eq!(root.location(), "s3://b/");
        assert_eq!(root.root(), "");
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn objects_are_read_plain_or_gzip_line_by_line() {
        let text = "{\"a\":1}\n\n{\"a\":2.5,\"b\":\"x\"}\r\n[1]\nnot json\n{\"c\":true}";
        for bytes in [text.as_bytes().to_vec(), gzip(text)] {
            let mut schema = SchemaBuilder::default();
            let mut stats = CrawlStats::default();
            let consumed = read_object("s3://b/k", &bytes, None, &mut schema, &mut stats).unwrap();
            assert_eq!(consumed, bytes.len() as u64);
            assert_eq!(stats.records, 3);
            assert_eq!(stats.malformed, 2);
            assert_eq!(
                stats.first_malformed.as_deref(),
                Some("s3://b/k:4: a JSON array rather than an object")
            );
            let names: Vec<&str> = schema.fields().iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, ["a", "b", "c"]);
            assert!(!stats.truncated);
        }
    }

    #[test]
    fn max_lines_stops_early_and_says_so() {
        let text = "{\"a\":1}\n{\"b\":1}\n{\"c\":1}\n";
        let mut schema = SchemaBuilder::default();
        let mut stats = CrawlStats::default();
        let consumed = read_object("k", text.as_bytes(), Some(2), &mut schema, &mut stats).unwrap();
        assert_eq!(consumed, 16);
        assert_eq!(stats.records, 2);
        assert!(stats.truncated);
        let mut stats = CrawlStats::default();
        read_object("k", text.as_bytes(), Some(3), &mut schema, &mut stats).unwrap();
        assert!(!stats.truncated);
    }

    #[test]
    fn a_corrupt_gzip_object_is_an_error_naming_it() {
        let mut bytes = gzip(&"{\"a\":1}\n".repeat(1000));
        let len = bytes.len();
        bytes.truncate(len / 2);
        let mut schema = SchemaBuilder::default();
        let mut stats = CrawlStats::default();
        let error =
            read_object("s3://b/k.json.gz", &bytes, None, &mut schema, &mut stats).unwrap_err();
        assert!(
            error.starts_with("s3://b/k.json.gz: cannot decode"),
            "{error}"
        );
    }

    #[test]
    fn the_summary_says_what_was_read_of_what() {
        let listed: Vec<Listed> = (0..4)
            .map(|i| Listed {
                key: format!("t/partition={i}/x.json"),
                size: 1_000_000,
            })
            .chain([Listed {
                key: "t/notes.txt".into(),
                size: 1,
            }])
            .collect();
        let layout = layout::analyze("t/", &listed).unwrap();
        let stats = CrawlStats {
            objects_read: 2,
            records: 7,
            malformed: 1,
            first_malformed: Some("s3://b/t/partition=0/x.json:3: not JSON".into()),
            ..Default::default()
        };
        let lines = summary("s3://b/t/", &layout, &stats, None);
        assert_eq!(
            lines[0],
            "sluice catalog crawl s3://b/t/: 4 JSON Lines objects (4.0 MB) in 4 partitions; read 2 of 4 objects, 7 records"
        );
        assert!(lines[1].contains("raise --sample"), "{lines:?}");
        assert!(
            lines[2].starts_with("1 line was not a JSON object"),
            "{lines:?}"
        );
        assert!(lines[3].contains("t/notes.txt"), "{lines:?}");
    }

    #[test]
    fn the_summary_of_a_parquet_table_counts_rows_from_the_footers() {
        let listed: Vec<Listed> = (0..3)
            .map(|i| Listed {
                key: format!("t/partition={i}/t+{i}+00000000000000000000.parquet"),
                size: 500_000,
            })
            .chain([Listed {
                key: "t/notes.txt".into(),
                size: 1,
            }])
            .collect();
        let layout = layout::analyze("t/", &listed).unwrap();
        let stats = CrawlStats {
            objects_read: 3,
            records: 30_000,
            ..Default::default()
        };
        let lines = summary("s3://b/t/", &layout, &stats, None);
        assert_eq!(
            lines[0],
            "sluice catalog crawl s3://b/t/: 3 Parquet objects (1.5 MB) in 3 partitions; read the footers of 3 of 3 objects, 30000 rows"
        );
        assert!(
            lines[1].starts_with("1 object under the location is not Parquet (e.g. t/notes.txt)"),
            "{lines:?}"
        );
    }
}
