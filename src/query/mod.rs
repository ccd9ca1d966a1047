//! `sluice query "<SQL>"`: SQL over the JSON Lines or Parquet objects the
//! s3_json sink wrote, with an embedded DataFusion reading them from S3 (or
//! an S3-compatible server) through `object_store`.
//!
//! Each table is a DataFusion listing table over the `.json` and `.json.gz`
//! objects under its location (gzip by extension, as Athena reads them), or
//! over its `.parquet` objects (a location holds one or the other), with the
//! Hive-style partition folders of the keys as partition columns (see
//! [`partitions`]), so that a `WHERE` on them lists and reads only the
//! matching folders, and with columns inferred from a sample of the records
//! or from the Parquet footers (see [`schema`]), or given by a crawl result
//! (see [`crawl`]). The objects are listed when the query runs: a query
//! while a pipeline is running sees every object uploaded so far.

mod crawl;
mod location;
mod output;
mod partitions;
mod schema;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore};

use crate::catalog::layout::DataFormat;
use crawl::CrawlTable;
use location::{S3Access, S3Location, TableArg};
pub use output::OutputFormat;
use output::ResultWriter;
use partitions::PartitionColumn;
use schema::Sampling;

/// `sluice query` arguments.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("from").required(true).multiple(true).args(["tables", "pipelines", "crawls"])
))]
pub struct QueryArgs {
    /// The SQL query (one read-only statement: SELECT, WITH, EXPLAIN, SHOW,
    /// DESCRIBE). Names are lower-cased unless double-quoted: write
    /// `"CloseUSD"`, `"stock-market"`.
    pub sql: String,
    /// A table over the `.json`/`.json.gz` (or `.parquet`) objects under an S3 location, as
    /// `NAME=s3://bucket/prefix/`, e.g. `stocks=s3://stock-market/topics/stock-market/`
    /// (repeatable).
    #[arg(long = "table", value_name = "NAME=S3_URL", value_parser = location::parse_table_arg)]
    pub tables: Vec<TableArg>,
    /// A pipeline file: a table named after its topic over its s3_json
    /// sink's `<bucket>/<prefix>/<topic>/`, reached through the sink's
    /// endpoint and region (repeatable).
    #[arg(long = "pipeline", value_name = "PIPELINE.yaml")]
    pub pipelines: Vec<PathBuf>,
    /// A crawl result, the JSON `sluice catalog crawl --format glue` prints
    /// (or `aws glue get-table`): a table named after it at its location,
    /// with its columns, partition keys and format (Parquet or JSON) instead
    /// of inferred ones; reached through --endpoint or $S3_ENDPOINT (repeatable).
    #[arg(long = "crawl", value_name = "FILE")]
    pub crawls: Vec<PathBuf>,
    /// Output format: an aligned `table`, `csv` with a header, or `json` (JSON Lines).
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Endpoint of an S3-compatible server, e.g. http://127.0.0.1:9000 (default:
    /// $S3_ENDPOINT for --table and --crawl, the sink's `endpoint` for --pipeline; AWS when empty).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Objects read per table to infer its columns, spread evenly over its
    /// objects (0: every object); of a Parquet object only its footer.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub sample_objects: usize,
    /// Records read from each of those objects (0: all of them).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub sample_records: usize,
}

/// Runs `sluice query`.
pub fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the query runtime")?;
    let result = runtime.block_on(query(args, output::Stdout(std::io::stdout().lock())));
    // Reads still in flight (the reader of stdout went away, or the query
    // failed) are not waited for.
    runtime.shutdown_background();
    result.map(|()| ExitCode::SUCCESS)
}

/// A table to register: where its objects are and how to reach them.
#[derive(Debug, Clone)]
struct TableSource {
    name: String,
    location: S3Location,
    access: S3Access,
    /// The columns, partition keys and format of a crawl result (`--crawl`);
    /// inferred from the objects when `None`.
    declared: Option<CrawlTable>,
}

impl TableSource {
    fn describe(&self) -> String {
        format!(
            "`{}` ({} at {})",
            self.name,
            self.location.url(),
            self.access.describe()
        )
    }
}

/// The tables named by the arguments, in order; names unique.
fn table_sources(args: &QueryArgs) -> anyhow::Result<Vec<TableSource>> {
    let env_endpoint = std::env::var("S3_ENDPOINT").ok();
    let mut sources = Vec::new();
    for path in &args.pipelines {
        let table = location::pipeline_table(path, args.endpoint.as_deref())?;
        sources.push(TableSource {
            name: table.name,
            location: table.location,
            access: table.access,
            declared: None,
        });
    }
    for table in &args.tables {
        sources.push(TableSource {
            name: table.name.clone(),
            location: table.location.clone(),
            access: S3Access::for_endpoint(args.endpoint.clone().or(env_endpoint.clone())),
            declared: None,
        });
    }
    for path in &args.crawls {
        let table = crawl::read_crawl_file(path)?;
        sources.push(TableSource {
            name: table.name.clone(),
            location: table.location.clone(),
            access: S3Access::for_endpoint(args.endpoint.clone().or(env_endpoint.clone())),
            declared: Some(table),
        });
    }
    for (i, source) in sources.iter().enumerate() {
        if let Some(other) = sources[..i].iter().find(|s| s.name == source.name) {
            bail!(
                "two tables are named `{}`: {} and {}; rename one with --table OTHER=s3://... (or the crawl's `Name`)",
                source.name,
                other.location.url(),
                source.location.url()
            );
        }
    }
    Ok(sources)
}

/// Runs the query of `args`, writing the result to `out`.
async fn query(args: QueryArgs, out: impl Write) -> anyhow::Result<()> {
    let sources = table_sources(&args)?;
    let sampling = Sampling {
        objects: args.sample_objects,
        records_per_object: args.sample_records,
    };
    let mut stores: BTreeMap<String, (S3Access, Arc<dyn ObjectStore>)> = BTreeMap::new();
    let mut tables = Vec::new();
    for source in &sources {
        let store = match stores.get(&source.location.bucket) {
            Some((access, store)) if *access == source.access => store.clone(),
            Some((access, _)) => bail!(
                "bucket `{}` is reached at {} for one table and at {} for {}; query one bucket through one endpoint",
                source.location.bucket,
                access.describe(),
                source.access.describe(),
                source.describe()
            ),
            None => {
                let store = source.access.store(&source.location.bucket)?;
                stores.insert(
                    source.location.bucket.clone(),
                    (source.access.clone(), store.clone()),
                );
                store
            }
        };
        tables.push((source, store));
    }
    let ctx = session();
    for (source, store) in tables {
        let provider = table_provider(&ctx, source, store, sampling)
            .await
            .with_context(|| format!("table {}", source.describe()))?;
        ctx.register_table(TableReference::bare(source.name.clone()), provider)
            .with_context(|| format!("register table {}", source.describe()))?;
    }
    execute(&ctx, &args.sql, args.format, out, &sources).await
}

/// Runs the read-only query `sql` on `ctx` (whose tables are `sources`),
/// writing the result to `out` as it comes.
async fn execute(
    ctx: &SessionContext,
    sql: &str,
    format: OutputFormat,
    out: impl Write,
    sources: &[TableSource],
) -> anyhow::Result<()> {
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = ctx
        .sql_with_options(sql, read_only)
        .await
        .map_err(|e| anyhow!("{}", query_error(&e.to_string(), sources)))?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let reading = || {
        format!(
            "the query failed while reading {}",
            sources
                .iter()
                .map(TableSource::describe)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut stream = frame.execute_stream().await.with_context(reading)?;
    let mut writer = ResultWriter::new(format, schema, out);
    while let Some(batch) = stream.next().await {
        writer.write(batch.with_context(reading)?)?;
        if output::stdout_closed() {
            return Ok(());
        }
    }
    writer.finish()
}

/// DataFusion's message for a query that does not plan, with the tables
/// there are when it is about a table.
fn query_error(message: &str, sources: &[TableSource]) -> String {
    let mut text = format!("query: {message}");
    if message.contains("table '") && message.contains("not found") {
        let names: Vec<String> = sources
            .iter()
            .map(|s| {
                if is_plain_identifier(&s.name) {
                    s.name.clone()
                } else {
                    format!("\"{}\"", s.name)
                }
            })
            .collect();
        text.push_str(&format!(
            "; the tables are {} (a name with capitals or `-` is written in double quotes)",
            names.join(", ")
        ));
    }
    if message.contains("not supported") || message.contains("Only statements") {
        text.push_str(
            "; sluice query runs read-only queries (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE)",
        );
    }
    text
}

/// Whether SQL takes `name` unquoted as it is.
fn is_plain_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The session: SHOW TABLES/COLUMNS, and every object below a table's
/// location read (not only those in partition folders).
fn session() -> SessionContext {
    let mut config = SessionConfig::new().with_information_schema(true);
    config
        .options_mut()
        .execution
        .listing_table_ignore_subdirectory = false;
    SessionContext::new_with_config(config)
}

/// What a data object of a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    /// `.json`.
    Json,
    /// `.json.gz`.
    JsonGzip,
    /// `.parquet`.
    Parquet,
}

impl ObjectKind {
    fn format(self) -> DataFormat {
        match self {
            ObjectKind::Json | ObjectKind::JsonGzip => DataFormat::Json,
            ObjectKind::Parquet => DataFormat::Parquet,
        }
    }
}

/// Whether an object is data of a table: `.json`, `.json.gz` or
/// `.parquet`, not empty.
fn data_kind(meta: &ObjectMeta) -> Option<ObjectKind> {
    let key = meta.location.as_ref();
    if meta.size == 0 {
        None
    } else if key.ends_with(".json") {
        Some(ObjectKind::Json)
    } else if key.ends_with(".json.gz") {
        Some(ObjectKind::JsonGzip)
    } else if key.ends_with(".parquet") {
        Some(ObjectKind::Parquet)
    } else {
        None
    }
}

/// The one format of the objects `files`: an error naming an object of
/// each when JSON Lines and Parquet objects are mixed.
fn one_format(files: &[ObjectMeta], bucket: &str) -> anyhow::Result<DataFormat> {
    let first = |format: DataFormat| {
        files
            .iter()
            .find(|meta| data_kind(meta).map(ObjectKind::format) == Some(format))
    };
    match (first(DataFormat::Json), first(DataFormat::Parquet)) {
        (Some(json), Some(parquet)) => bail!(
            "its location mixes JSON Lines objects (e.g. s3://{bucket}/{}) and Parquet objects \
             (e.g. s3://{bucket}/{}); a table has one format: give each sink its own prefix or \
             bucket, and each table the folder of one",
            json.location,
            parquet.location
        ),
        (None, Some(_)) => Ok(DataFormat::Parquet),
        _ => Ok(DataFormat::Json),
    }
}

/// The partition columns of a crawl result, checked against the folders
/// found (`detected`): the same names in the same order (without case; the
/// folders' spelling is kept), with the crawl's types.
fn declared_partitions(
    declared: &CrawlTable,
    detected: &[PartitionColumn],
) -> anyhow::Result<Vec<PartitionColumn>> {
    let same = declared.partition_keys.len() == detected.len()
        && declared
            .partition_keys
            .iter()
            .zip(detected)
            .all(|((name, _), found)| name.eq_ignore_ascii_case(&found.name));
    if !same {
        let names = |names: Vec<&str>| {
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        bail!(
            "the crawl's partition keys ({}) are not the partition folders of the objects ({}); \
             crawl the location again (sluice catalog crawl --format glue)",
            names(
                declared
                    .partition_keys
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect()
            ),
            names(detected.iter().map(|c| c.name.as_str()).collect())
        );
    }
    Ok(declared
        .partition_keys
        .iter()
        .zip(detected)
        .map(|((_, data_type), found)| PartitionColumn {
            name: found.name.clone(),
            data_type: data_type.clone(),
        })
        .collect())
}

/// The listing table of `source` (for JSON Lines, the union of two when the
/// location holds both plain and gzip objects).
async fn table_provider(
    ctx: &SessionContext,
    source: &TableSource,
    store: Arc<dyn ObjectStore>,
    sampling: Sampling,
) -> anyhow::Result<Arc<dyn TableProvider>> {
    let url = ListingTableUrl::parse(source.location.url())
        .with_context(|| format!("`{}` as a table location", source.location.url()))?;
    ctx.register_object_store(url.object_store().as_ref(), store.clone());
    let listed: Result<Vec<ObjectMeta>, _> = store.list(Some(url.prefix())).try_collect().await;
    let objects = listed.map_err(|e| {
        anyhow!(
            "cannot list its objects: {e}; check the bucket and prefix, the endpoint \
             (--endpoint, $S3_ENDPOINT) and the credentials (AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY, AWS_REGION)"
        )
    })?;
    let bucket = &source.location.bucket;
    let mut files: Vec<ObjectMeta> = objects
        .into_iter()
        .filter(|meta| data_kind(meta).is_some())
        .collect();
    let format = one_format(&files, bucket)?;
    if let Some(declared) = &source.declared {
        if !files.is_empty() && declared.format != format {
            bail!(
                "the crawl result describes {} objects but its location holds {} objects; \
                 crawl the location again (sluice catalog crawl --format glue)",
                declared.format.describe(),
                format.describe()
            );
        }
    }
    if files.is_empty() {
        bail!(
            "no .json, .json.gz or .parquet objects under its location: nothing to query yet (a sink \
             uploads an object after `flush_size` records or `rotate_interval`), or the \
             location is not the topic's folder"
        );
    }
    files.sort_by(|a, b| a.location.cmp(&b.location));
    let detected = partitions::detect(files.iter().map(|meta| {
        let segments = url
            .strip_prefix(&meta.location)
            .map(|parts| parts.collect())
            .unwrap_or_default();
        (meta.location.to_string(), segments)
    }))
    .map_err(|e| anyhow!("{e}"))?;
    let describe = |meta: &ObjectMeta| format!("s3://{bucket}/{}", meta.location);
    let (columns, table_schema) = match (&source.declared, format) {
        (Some(declared), _) => (
            declared_partitions(declared, &detected)?,
            Schema::new(declared.columns.clone()),
        ),
        (None, DataFormat::Json) => (
            detected,
            schema::sample_and_infer(
                &store,
                &files,
                |meta| data_kind(meta) == Some(ObjectKind::JsonGzip),
                sampling,
                describe,
            )
            .await?,
        ),
        (None, DataFormat::Parquet) => (
            detected,
            schema::sample_parquet_schema(&store, &files, sampling.objects, describe).await?,
        ),
    };
    // A data column named like a partition column is read from the key.
    let file_schema = Arc::new(Schema::new(
        table_schema
            .fields()
            .iter()
            .filter(|f| !columns.iter().any(|c| c.name == *f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    ));
    tracing::debug!(
        table = source.name,
        objects = files.len(),
        format = format.describe(),
        partitions = ?columns,
        schema = %file_schema,
        "query table"
    );
    let kinds = match format {
        DataFormat::Json => vec![ObjectKind::Json, ObjectKind::JsonGzip],
        DataFormat::Parquet => vec![ObjectKind::Parquet],
    };
    let mut providers = Vec::new();
    for kind in kinds {
        if files.iter().any(|meta| data_kind(meta) == Some(kind)) {
            let config = ListingTableConfig::new(url.clone())
                .with_listing_options(listing_options(kind, &columns))
                .with_schema(file_schema.clone());
            providers.push(Arc::new(ListingTable::try_new(config)?) as Arc<dyn TableProvider>);
        }
    }
    let mut providers = providers.into_iter();
    let (Some(first), second) = (providers.next(), providers.next()) else {
        bail!("no objects to read");
    };
    match second {
        None => Ok(first),
        Some(second) => Ok(ctx
            .read_table(first)?
            .union(ctx.read_table(second)?)?
            .into_view()),
    }
}

fn listing_options(kind: ObjectKind, columns: &[PartitionColumn]) -> ListingOptions {
    let (format, extension): (Arc<dyn FileFormat>, &str) = match kind {
        ObjectKind::Json => (
            Arc::new(
                JsonFormat::default().with_file_compression_type(FileCompressionType::UNCOMPRESSED),
            ),
            ".json",
        ),
        ObjectKind::JsonGzip => (
            Arc::new(JsonFormat::default().with_file_compression_type(FileCompressionType::GZIP)),
            ".json.gz",
        ),
        ObjectKind::Parquet => (Arc::new(ParquetFormat::default()), ".parquet"),
    };
    ListingOptions::new(format)
        .with_file_extension(extension)
        .with_table_partition_cols(
            columns
                .iter()
                .map(|c| (c.name.clone(), c.data_type.clone()))
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::ObjectStoreExt;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        query: QueryArgs,
    }

    fn parse(args: &[&str]) -> Result<QueryArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("query").chain(args.iter().copied())).map(|c| c.query)
    }

    #[test]
    fn options_parse() {
        let args = parse(&[
            "SELECT 1",
            "--table",
            "t=s3://b/topics/t/",
            "--table",
            "u=s3://c",
            "--format",
            "csv",
            "--endpoint",
            "http://127.0.0.1:9000",
            "--sample-objects",
            "0",
        ])
        .expect("args");
        assert_eq!(args.sql, "SELECT 1");
        assert_eq!(args.tables.len(), 2);
        assert_eq!(args.tables[1].location.url(), "s3://c/");
        assert_eq!(args.format, OutputFormat::Csv);
        assert_eq!(args.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!((args.sample_objects, args.sample_records), (0, 1000));
        let args = parse(&["SELECT 1", "--pipeline", "p.yaml"]).expect("args");
        assert_eq!(args.format, OutputFormat::Table);
        assert_eq!(args.pipelines, vec![PathBuf::from("p.yaml")]);
        // A crawl result alone is a source of tables.
        let args = parse(&["SELECT 1", "--crawl", "a.json", "--crawl", "b.json"]).expect("args");
        assert_eq!(
            args.crawls,
            vec![PathBuf::from("a.json"), PathBuf::from("b.json")]
        );
        assert!(args.tables.is_empty() && args.pipelines.is_empty());
    }

    #[test]
    fn options_need_a_table_and_a_valid_one() {
        let error = parse(&["SELECT 1"]).unwrap_err().to_string();
        assert!(
            error.contains("--table") && error.contains("--pipeline") && error.contains("--crawl"),
            "{error}"
        );
        let error = parse(&["SELECT 1", "--table", "s3://b/p"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not NAME=s3://bucket/prefix/"), "{error}");
        let error = parse(&["SELECT 1", "--table", "t=s3://b", "--format", "xml"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("table, csv, json"), "{error}");
    }

    #[test]
    fn same_name_twice_is_an_error() {
        let args =
            parse(&["SELECT 1", "--table", "t=s3://b/x", "--table", "t=s3://b/y"]).expect("args");
        let error = table_sources(&args).unwrap_err().to_string();
        assert!(error.contains("two tables are named `t`"), "{error}");
    }

    #[test]
    fn unknown_tables_are_listed_in_the_error() {
        let sources = [
            TableSource {
                name: "stock-market".into(),
                location: S3Location::parse("s3://b/t/").expect("url"),
                access: S3Access::default(),
                declared: None,
            },
            TableSource {
                name: "t".into(),
                location: S3Location::parse("s3://b/u/").expect("url"),
                access: S3Access::default(),
                declared: None,
            },
        ];
        let text = query_error(
            "Error during planning: table 'datafusion.public.x' not found",
            &sources,
        );
        assert!(
            text.contains("the tables are \"stock-market\", t"),
            "{text}"
        );
    }

    /// A bucket in memory with stock rows, laid out as the field partitioner
    /// lays them out, part plain and part gzip.
    async fn memory_table(sql: &str, format: OutputFormat) -> anyhow::Result<String> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let rows = [
            ("NYA", "2021-05-28", 16555.660156, 16555.660156),
            ("NYA", "2021-05-27", 16515.0, 16515.0),
            ("HSI", "2021-05-31", 29151.800781, 3755.7),
            ("N225", "1965-01-05", 1257.719971, 12.58),
        ];
        for (i, (index, date, open, usd)) in rows.iter().enumerate() {
            let line = format!(
                "{{\"Index\":\"{index}\",\"Date\":\"{date}\",\"Open\":{open:?},\"CloseUSD\":{usd:?},\"Volume\":{}}}\n",
                i * 10
            );
            let (key, body) = if i % 2 == 0 {
                (
                    format!("topics/t/index={index}/t+0+{i:020}.json"),
                    line.into_bytes(),
                )
            } else {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(line.as_bytes())?;
                (
                    format!("topics/t/index={index}/t+1+{i:020}.json.gz"),
                    encoder.finish()?,
                )
            };
            store.put(&Path::from(key), body.into()).await?;
        }
        store
            .put(&Path::from("topics/t/_ignored.txt"), "not data".into())
            .await?;
        let sampling = Sampling {
            objects: 64,
            records_per_object: 1000,
        };
        query_store(store, sampling, sql, format).await
    }

    /// `sql` over the table `t` at `s3://bucket/topics/t/` in `store`.
    async fn query_store(
        store: Arc<dyn ObjectStore>,
        sampling: Sampling,
        sql: &str,
        format: OutputFormat,
    ) -> anyhow::Result<String> {
        query_declared(store, sampling, None, sql, format).await
    }

    /// `sql` over the table `t` at `s3://bucket/topics/t/` in `store`, with
    /// the columns of a crawl result when `declared`.
    async fn query_declared(
        store: Arc<dyn ObjectStore>,
        sampling: Sampling,
        declared: Option<CrawlTable>,
        sql: &str,
        format: OutputFormat,
    ) -> anyhow::Result<String> {
        let ctx = session();
        let source = TableSource {
            name: "t".into(),
            location: S3Location::parse("s3://bucket/topics/t/")?,
            access: S3Access::default(),
            declared,
        };
        let provider = table_provider(&ctx, &source, store, sampling).await?;
        ctx.register_table(TableReference::bare("t"), provider)?;
        let mut out = Vec::new();
        execute(&ctx, sql, format, &mut out, &[source]).await?;
        Ok(String::from_utf8(out)?)
    }

    /// `sql` over objects `(key under topics/t/, JSON Lines)`, sampling the
    /// first record of each object only.
    async fn query_objects(objects: &[(&str, &str)], sql: &str) -> anyhow::Result<String> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for (key, text) in objects {
            store
                .put(
                    &Path::from(format!("topics/t/{key}")),
                    text.to_string().into(),
                )
                .await?;
        }
        let sampling = Sampling {
            objects: 0,
            records_per_object: 1,
        };
        query_store(store, sampling, sql, OutputFormat::Csv).await
    }

    #[tokio::test]
    async fn a_data_column_named_like_a_partition_column_is_read_from_the_key() {
        let answer = query_objects(
            &[
                ("index=NYA/a.json", "{\"index\":\"NYA\",\"v\":1}\n"),
                ("index=HSI/b.json", "{\"index\":\"HSI\",\"v\":2}\n"),
            ],
            "SELECT * FROM t ORDER BY v",
        )
        .await
        .expect("query");
        assert_eq!(answer, "v,index\n1,NYA\n2,HSI\n");
    }

    #[tokio::test]
    async fn conflicting_types() {
        // Integers and fractions across objects: Float64.
        let answer = query_objects(
            &[("a.json", "{\"x\":1}\n"), ("b.json", "{\"x\":2.5}\n")],
            "SELECT SUM(x) AS s, arrow_typeof(SUM(x)) AS t FROM t",
        )
        .await
        .expect("sum");
        assert_eq!(answer, "s,t\n3.5,Float64\n");
        // A number and a string in the sample: Utf8, and reading the number
        // as a string fails, naming the column.
        let error = query_objects(
            &[("a.json", "{\"x\":1}\n"), ("b.json", "{\"x\":\"one\"}\n")],
            "SELECT x FROM t",
        )
        .await
        .unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains("whilst decoding field 'x': expected string got 1"),
            "{text}"
        );
        assert!(text.contains("s3://bucket/topics/t/"), "{text}");
        // Past the sample: a string in a number column fails the same way ...
        let error = query_objects(
            &[("a.json", "{\"x\":1.5}\n{\"x\":\"two\"}\n")],
            "SELECT x FROM t",
        )
        .await
        .unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains("failed to parse \"two\" as Float64"),
            "{text}"
        );
        // ... a fraction in a column sampled as integers is cut to an
        // integer (Arrow's JSON reader does so) ...
        let answer = query_objects(&[("a.json", "{\"x\":1}\n{\"x\":2.5}\n")], "SELECT x FROM t")
            .await
            .expect("read");
        assert_eq!(answer, "x\n1\n2\n");
        // ... and a column first seen past the sample is not in the table.
        let answer = query_objects(
            &[("a.json", "{\"x\":1}\n{\"x\":3,\"y\":2}\n")],
            "SELECT * FROM t",
        )
        .await
        .expect("read");
        assert_eq!(answer, "x\n1\n3\n");
    }

    #[tokio::test]
    async fn plain_and_gzip_objects_with_a_partition_column() {
        let csv = |sql: &'static str| memory_table(sql, OutputFormat::Csv);
        assert_eq!(
            csv("SELECT COUNT(*) AS n FROM t").await.expect("count"),
            "n\n4\n"
        );
        assert_eq!(
            csv("SELECT index, COUNT(*) AS n FROM t GROUP BY index ORDER BY index")
                .await
                .expect("group by"),
            "index,n\nHSI,1\nN225,1\nNYA,2\n"
        );
        assert_eq!(
            csv("SELECT \"Date\", \"Open\" FROM t WHERE index = 'NYA' ORDER BY \"Date\" DESC LIMIT 1")
                .await
                .expect("filter"),
            "Date,Open\n2021-05-28,16555.660156\n"
        );
        assert_eq!(
            csv("SELECT MAX(\"Date\") AS d FROM t WHERE \"Volume\" >= 10")
                .await
                .expect("max"),
            "d\n2021-05-31\n"
        );
    }

    #[tokio::test]
    async fn column_types_and_order() {
        let text = memory_table(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'",
            OutputFormat::Csv,
        )
        .await
        .expect("columns");
        assert_eq!(
            text,
            "column_name,data_type\nIndex,Utf8\nDate,Utf8\nOpen,Float64\nCloseUSD,Float64\nVolume,Int64\nindex,Utf8\n"
        );
    }

    #[tokio::test]
    async fn unknown_columns_and_writes_are_refused() {
        let error = memory_table("SELECT nope FROM t", OutputFormat::Csv)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("nope"), "{error}");
        for write in [
            "CREATE TABLE x AS SELECT 1",
            "INSERT INTO t SELECT * FROM t",
            "COPY t TO '/tmp/sluice-query-copy.json'",
            "SET datafusion.execution.batch_size = 1",
        ] {
            let error = memory_table(write, OutputFormat::Csv)
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains("read-only"), "{write}: {error}");
        }
    }

    /// A Parquet file of stock-like rows: (index, date, open) with `open`
    /// as `Int64` or `Float64`.
    fn stock_parquet(rows: &[(&str, &str, f64)], open_as_int: bool) -> bytes::Bytes {
        use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
        let index: ArrayRef = Arc::new(StringArray::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        ));
        let date: ArrayRef = Arc::new(StringArray::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ));
        let open: ArrayRef = if open_as_int {
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2 as i64).collect::<Vec<_>>(),
            ))
        } else {
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ))
        };
        crate::catalog::parquet::tests::parquet_file(
            vec![("index", index), ("date", date), ("open", open)],
            2,
        )
    }

    /// A bucket in memory with Parquet objects in `index=` folders, `open`
    /// an integer column in one and a double column in the others.
    async fn parquet_store() -> anyhow::Result<Arc<dyn ObjectStore>> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let objects = [
            (
                "topics/t/index=NYA/t+0+00000000000000000000.parquet",
                stock_parquet(
                    &[
                        ("NYA", "2021-05-27", 16515.0),
                        ("NYA", "2021-05-28", 16555.0),
                    ],
                    true,
                ),
            ),
            (
                "topics/t/index=NYA/t+0+00000000000000000002.parquet",
                stock_parquet(&[("NYA", "2021-05-31", 16600.5)], false),
            ),
            (
                "topics/t/index=HSI/t+1+00000000000000000000.parquet",
                stock_parquet(
                    &[
                        ("HSI", "1986-12-31", 2568.25),
                        ("HSI", "1987-01-02", 2540.5),
                        ("HSI", "1987-01-05", 2552.5),
                    ],
                    false,
                ),
            ),
        ];
        for (key, body) in objects {
            store.put(&Path::from(key), body.into()).await?;
        }
        store
            .put(&Path::from("topics/t/_SUCCESS"), "".into())
            .await?;
        Ok(store)
    }

    #[tokio::test]
    async fn parquet_objects_with_widened_columns_and_a_partition_column() {
        let store = parquet_store().await.expect("store");
        let sampling = Sampling {
            objects: 64,
            records_per_object: 1000,
        };
        let csv = |sql: &'static str| query_store(store.clone(), sampling, sql, OutputFormat::Csv);
        assert_eq!(
            csv("SELECT COUNT(*) AS n, SUM(open) AS s, arrow_typeof(SUM(open)) AS t FROM t")
                .await
                .expect("sum"),
            "n,s,t\n6,57331.75,Float64\n"
        );
        assert_eq!(
            csv("SELECT index, COUNT(*) AS n, MAX(date) AS d FROM t GROUP BY index ORDER BY index")
                .await
                .expect("group by"),
            "index,n,d\nHSI,3,1987-01-05\nNYA,3,2021-05-31\n"
        );
        assert_eq!(
            csv("SELECT date, open FROM t WHERE index = 'NYA' AND open > 16520 ORDER BY date")
                .await
                .expect("filter"),
            "date,open\n2021-05-28,16555.0\n2021-05-31,16600.5\n"
        );
        // The data column `index` is the partition column's: one `index`.
        assert_eq!(
            csv("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'")
                .await
                .expect("columns"),
            "column_name,data_type\ndate,Utf8\nopen,Float64\nindex,Utf8\n"
        );
        let plan = csv("EXPLAIN SELECT COUNT(*) FROM t WHERE index = 'HSI' AND open > 0")
            .await
            .expect("plan");
        assert!(plan.contains("index=HSI/"), "{plan}");
        assert!(!plan.contains("index=NYA/"), "{plan}");
    }

    #[tokio::test]
    async fn json_and_parquet_objects_in_one_location_are_refused() {
        let store = parquet_store().await.expect("store");
        store
            .put(
                &Path::from("topics/t/index=HSI/t+1+00000000000000000003.json"),
                "{\"index\":\"HSI\"}\n".into(),
            )
            .await
            .expect("put");
        let sampling = Sampling {
            objects: 64,
            records_per_object: 1000,
        };
        let error = query_store(store, sampling, "SELECT 1", OutputFormat::Csv)
            .await
            .unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains(
                "JSON Lines objects (e.g. s3://bucket/topics/t/index=HSI/t+1+00000000000000000003.json)"
            ),
            "{text}"
        );
        assert!(
            text.contains("Parquet objects (e.g. s3://bucket/topics/t/index=HSI/t+1+00000000000000000000.parquet)"),
            "{text}"
        );
    }

    fn crawl_result(columns: serde_json::Value, keys: serde_json::Value) -> CrawlTable {
        crawl::parse_crawl(&serde_json::json!({
            "DatabaseName": "default",
            "TableInput": {
                "Name": "t",
                "Parameters": {"classification": "parquet"},
                "StorageDescriptor": {
                    "Columns": columns,
                    "Location": "s3://bucket/topics/t/",
                    "SerdeInfo": {
                        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                    },
                },
                "PartitionKeys": keys,
            },
        }))
        .expect("a crawl result")
    }

    #[tokio::test]
    async fn a_crawl_result_gives_the_columns_and_partition_keys() {
        let store = parquet_store().await.expect("store");
        let sampling = Sampling {
            objects: 1,
            records_per_object: 1,
        };
        let declared = crawl_result(
            serde_json::json!([
                {"Name": "date", "Type": "string"},
                {"Name": "open", "Type": "double"},
                {"Name": "missing", "Type": "bigint"},
            ]),
            serde_json::json!([{"Name": "index", "Type": "string"}]),
        );
        let answer = query_declared(
            store.clone(),
            sampling,
            Some(declared.clone()),
            "SELECT index, COUNT(*) AS n, SUM(open) AS s, COUNT(missing) AS m FROM t GROUP BY index ORDER BY index",
            OutputFormat::Csv,
        )
        .await
        .expect("query");
        assert_eq!(answer, "index,n,s,m\nHSI,3,7661.25,0\nNYA,3,49670.5,0\n");
        let columns = query_declared(
            store.clone(),
            sampling,
            Some(declared),
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'",
            OutputFormat::Csv,
        )
        .await
        .expect("columns");
        assert_eq!(
            columns,
            "column_name,data_type\ndate,Utf8\nopen,Float64\nmissing,Int64\nindex,Utf8\n"
        );

        // Partition keys that are not the folders' are refused.
        let declared = crawl_result(
            serde_json::json!([{"Name": "open", "Type": "double"}]),
            serde_json::json!([{"Name": "partition", "Type": "int"}]),
        );
        let error = query_declared(
            store.clone(),
            sampling,
            Some(declared),
            "SELECT 1",
            OutputFormat::Csv,
        )
        .await
        .unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains(
                "partition keys (partition) are not the partition folders of the objects (index)"
            ),
            "{text}"
        );

        // A JSON crawl result over Parquet objects too.
        let mut declared = crawl_result(
            serde_json::json!([{"Name": "open", "Type": "double"}]),
            serde_json::json!([{"Name": "index", "Type": "string"}]),
        );
        declared.format = DataFormat::Json;
        let error = query_declared(
            store,
            sampling,
            Some(declared),
            "SELECT 1",
            OutputFormat::Csv,
        )
        .await
        .unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains("describes JSON Lines objects but its location holds Parquet objects"),
            "{text}"
        );
    }
}
