//! Keeping an AWS Glue table current as the sink writes (`catalog:`), as
//! Confluent's Hive integration does for HDFS: every partition path that
//! gets an object is added to the table as a partition, so Athena sees new
//! data without a crawler run.
//!
//! - A partition is added *before* the offsets of its objects are reported
//!   durable: when adding fails (Glue unreachable, throttled), the flush
//!   fails and is retried, and a crash in between leaves the partition to be
//!   added by the rerun (which finds the objects in the bucket and adds
//!   their paths again). Adding an existing partition is a no-op.
//! - The table is the topic's (`<database>.<table>`, by default the topic
//!   name with `-` and `.` as `_`). When it does not exist and
//!   `create_table` is on (the default), the sink creates it: location
//!   `s3://<bucket>/<prefix>/<topic>/`, the format's SerDe, partition keys
//!   from the path (`name=value` folders; `partition_<n>` for unnamed ones,
//!   as a Glue crawler names them) typed `string`, and columns inferred from
//!   the first records written (up to [`SAMPLE_RECORDS`]; a field named
//!   like a partition key is left to the partition column). Columns that
//!   appear later are not added: `sluice catalog crawl <pipeline>
//!   --register` updates the table from the whole bucket.
//! - An existing table is used as it is (a crawl's, or one made by hand);
//!   its partition keys must match the sink's folders, or the sink stops
//!   with an error saying both.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arrow_json::reader::infer_json_schema_from_iterator;
use arrow_schema::DataType;
use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{Column, PartitionInput, SerDeInfo, StorageDescriptor, TableInput};
use aws_sdk_glue::Client;
use connect_core::schemars::{self, JsonSchema};
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::Deserialize;

use crate::config::{Compression, Format, S3JsonConfig};
use crate::partitioner::unescape_path_value;
use crate::sink::classify;

/// The OpenX JSON SerDe (Athena's and Glue's for JSON Lines).
pub const JSON_SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";
/// The input format of text (JSON Lines) tables; reads gzip by extension.
pub const JSON_INPUT_FORMAT: &str = "org.apache.hadoop.mapred.TextInputFormat";
/// The output format of text tables.
pub const JSON_OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
/// The Parquet SerDe.
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
/// The input format of Parquet tables.
pub const PARQUET_INPUT_FORMAT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
/// The output format of Parquet tables.
pub const PARQUET_OUTPUT_FORMAT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

/// Records sampled per topic for the columns of a table the sink creates.
pub const SAMPLE_RECORDS: usize = 1000;

/// Partitions per `BatchCreatePartition` call (Glue's limit).
const BATCH: usize = 100;

/// `catalog:` — the table the sink keeps current.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// The catalog: `glue` (AWS Glue, or any Glue-API endpoint).
    #[serde(rename = "type")]
    pub kind: CatalogType,
    /// Glue database (created when missing together with the table).
    pub database: String,
    /// Table name; default: the topic with `-` and `.` as `_`, lowercased.
    #[serde(default)]
    pub table: Option<String>,
    /// Glue endpoint (e.g. `http://127.0.0.1:5000` for a local Glue API); AWS when absent or empty.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region of the Glue catalog; default: the sink's `region`, else the AWS chain's, else us-east-1.
    #[serde(default)]
    pub region: Option<String>,
    /// Create the database and table when missing (default true), with
    /// columns inferred from the first records written.
    #[serde(default = "yes")]
    pub create_table: bool,
}

fn yes() -> bool {
    true
}

/// The catalogs the sink can keep current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatalogType {
    /// The AWS Glue Data Catalog API.
    Glue,
}

impl CatalogConfig {
    /// Problems with the settings, as `(field under catalog, message)`.
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut issues = Vec::new();
        if let Err(e) = check_name(&self.database) {
            issues.push(("database", e));
        }
        if let Some(Err(e)) = self.table.as_deref().map(check_name) {
            issues.push(("table", e));
        }
        if let Some(endpoint) = self.endpoint() {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                issues.push((
                    "endpoint",
                    format!("`{endpoint}` must start with http:// or https://"),
                ));
            }
        }
        issues
    }

    fn endpoint(&self) -> Option<&str> {
        self.endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }

    /// The table of `topic`.
    pub fn table_of(&self, topic: &str) -> String {
        match &self.table {
            Some(table) => table.clone(),
            None => topic
                .chars()
                .map(|c| match c {
                    '-' | '.' => '_',
                    c => c.to_ascii_lowercase(),
                })
                .collect(),
        }
    }
}

/// Glue database and table names: lowercase letters, digits and `_`, at most 255.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a Glue name Athena can query: use lowercase letters, digits and `_`"
        ))
    }
}

/// The partition keys and values of a partition path: `index=NYA` gives
/// `[("index", "NYA")]`; a folder without `=` is `partition_<n>`.
pub fn partition_of(path: &str) -> Vec<(String, String)> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(n, segment)| match segment.split_once('=') {
            Some((name, value)) => (
                unescape_path_value(name).to_ascii_lowercase(),
                unescape_path_value(value),
            ),
            None => (format!("partition_{n}"), unescape_path_value(segment)),
        })
        .collect()
}

/// The Hive type of an inferred Arrow type (`string` for what Hive lacks).
pub fn hive_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "double".into(),
        DataType::List(item) => format!("array<{}>", hive_type(item.data_type())),
        DataType::Struct(fields) if !fields.is_empty() => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!(
                    "{}:{}",
                    f.name().to_ascii_lowercase(),
                    hive_type(f.data_type())
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
        _ => "string".into(),
    }
}

/// The columns for a table over `sample`: first-seen order, names
/// lowercased (the JSON SerDe matches keys case-insensitively), a name seen
/// again in another case kept once.
pub fn columns_of(sample: &[Value]) -> Result<Vec<(String, String)>, String> {
    let schema = infer_json_schema_from_iterator(sample.iter().map(Ok))
        .map_err(|e| format!("cannot infer columns from the first records: {e}"))?;
    let mut seen = BTreeSet::new();
    Ok(schema
        .fields()
        .iter()
        .filter_map(|f| {
            let name = f.name().to_ascii_lowercase();
            seen.insert(name.clone())
                .then(|| (name, hive_type(f.data_type())))
        })
        .collect())
}

/// A table as the sink needs it: where it is, how it is stored, and its partition keys.
#[derive(Debug, Clone)]
struct KnownTable {
    name: String,
    keys: Vec<String>,
    storage: StorageDescriptor,
}

/// Keeps the Glue tables of the sink's topics current.
pub struct GlueCatalog {
    client: Client,
    at: String,
    config: CatalogConfig,
    /// `s3://bucket/prefix/`.
    root: String,
    format: Format,
    compression: Compression,
    tables: HashMap<String, KnownTable>,
    samples: HashMap<String, Vec<Value>>,
    /// `(topic, path)` waiting to be added.
    pending: BTreeSet<(String, String)>,
    /// `(topic, path)` added (or found) already.
    added: BTreeSet<(String, String)>,
}

impl GlueCatalog {
    /// A client for the catalog of `config` (credentials from the AWS chain).
    pub async fn connect(config: CatalogConfig, sink: &S3JsonConfig) -> Self {
        let region = config.region.clone().or_else(|| sink.region.clone());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_glue::config::Builder::from(&shared);
        if shared.region().is_none() {
            builder = builder.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(endpoint) = config.endpoint() {
            builder = builder.endpoint_url(endpoint);
        }
        let at = match config.endpoint() {
            Some(endpoint) => format!("Glue at {endpoint}"),
            None => "AWS Glue".to_owned(),
        };
        let prefix = sink.prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            format!("s3://{}/", sink.bucket)
        } else {
            format!("s3://{}/{prefix}/", sink.bucket)
        };
        GlueCatalog {
            client: Client::from_conf(builder.build()),
            at,
            config,
            root,
            format: sink.format,
            compression: sink.compression,
            tables: HashMap::new(),
            samples: HashMap::new(),
            pending: BTreeSet::new(),
            added: BTreeSet::new(),
        }
    }

    /// Keeps the first records of each topic whose table may have to be created.
    pub fn observe(&mut self, records: &[Record]) {
        if !self.config.create_table {
            return;
        }
        for record in records {
            if self.tables.contains_key(&*record.topic) {
                continue;
            }
            let sample = self.samples.entry(record.topic.to_string()).or_default();
            if sample.len() >= SAMPLE_RECORDS {
                continue;
            }
            // A value passed through as JSON text is decoded for the sample.
            let value = match (&record.value, &record.encoded_value) {
                (Some(value), _) => Some(value.clone()),
                (None, Some(json)) => serde_json::from_slice(json).ok(),
                (None, None) => None,
            };
            if let Some(value @ Value::Object(_)) = value {
                sample.push(value);
            }
        }
    }

    /// Queues the paths that now have objects.
    pub fn landed(&mut self, paths: impl IntoIterator<Item = (String, String)>) {
        for path in paths {
            if !self.added.contains(&path) {
                self.pending.insert(path);
            }
        }
    }

    /// Adds every queued partition (creating the table first when needed).
    pub async fn sync(&mut self) -> ConnectorResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut by_topic: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (topic, path) in &self.pending {
            by_topic
                .entry(topic.clone())
                .or_default()
                .push(path.clone());
        }
        for (topic, paths) in by_topic {
            let table = self.table(&topic, &paths[0]).await?;
            self.add_partitions(&topic, &table, &paths).await?;
            for path in paths {
                let key = (topic.clone(), path);
                self.pending.remove(&key);
                self.added.insert(key);
            }
        }
        Ok(())
    }

    /// The topic's table: known, read from Glue, or created.
    async fn table(&mut self, topic: &str, first_path: &str) -> ConnectorResult<KnownTable> {
        if let Some(table) = self.tables.get(topic) {
            return Ok(table.clone());
        }
        let database = self.config.database.clone();
        let name = self.config.table_of(topic);
        let found = self
            .client
            .get_table()
            .database_name(&database)
            .name(&name)
            .send()
            .await;
        let table = match found {
            Ok(output) => {
                let table = output.table().ok_or_else(|| {
                    ConnectorError::fatal(format!(
                        "{}: GetTable {database}.{name} returned no table",
                        self.at
                    ))
                })?;
                let storage = table.storage_descriptor().cloned().ok_or_else(|| {
                    ConnectorError::fatal(format!(
                        "{}: table {database}.{name} has no storage descriptor, so new partitions cannot say how they are stored; \
                         recreate it with `sluice catalog crawl --register`",
                        self.at
                    ))
                })?;
                KnownTable {
                    name: name.clone(),
                    keys: table
                        .partition_keys()
                        .iter()
                        .map(|k| k.name().to_ascii_lowercase())
                        .collect(),
                    storage,
                }
            }
            Err(error) if error.code() == Some("EntityNotFoundException") => {
                if !self.config.create_table {
                    return Err(ConnectorError::fatal(format!(
                        "{}: table {database}.{name} does not exist; create it (`sluice catalog crawl <pipeline> --register` after a first run) or set `catalog.create_table: true`",
                        self.at
                    )));
                }
                self.create(topic, &name, first_path).await?
            }
            Err(error) => {
                return Err(self.error(&format!("cannot read table {database}.{name}"), error))
            }
        };
        self.samples.remove(topic);
        self.tables.insert(topic.to_owned(), table.clone());
        Ok(table)
    }

    async fn create(
        &mut self,
        topic: &str,
        name: &str,
        first_path: &str,
    ) -> ConnectorResult<KnownTable> {
        let database = self.config.database.clone();
        let sample = self.samples.get(topic).map(Vec::as_slice).unwrap_or(&[]);
        let mut columns = columns_of(sample).map_err(|e| {
            ConnectorError::fatal(format!("cannot create table {database}.{name}: {e}"))
        })?;
        let keys: Vec<String> = partition_of(first_path)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // A column may not share a partition key's name (Athena refuses the
        // table); the field partitioner's field is the partition's value anyway.
        columns.retain(|(column, _)| !keys.contains(column));
        let storage = self.storage(&format!("{}{topic}/", self.root), &columns);
        let mut parameters = vec![
            ("classification", self.classification()),
            ("EXTERNAL", "TRUE"),
        ];
        if self.format == Format::Json {
            parameters.push(("compressionType", self.compression_type()));
        }
        let mut input = TableInput::builder()
            .name(name)
            .table_type("EXTERNAL_TABLE")
            .storage_descriptor(storage.clone())
            .set_partition_keys(Some(
                keys.iter()
                    .map(|k| column(k, "string"))
                    .collect::<ConnectorResult<Vec<_>>>()?,
            ));
        for (key, value) in parameters {
            input = input.parameters(key, value);
        }
        let input = input
            .build()
            .map_err(|e| ConnectorError::fatal(format!("cannot describe table {name}: {e}")))?;
        let created = self
            .client
            .create_table()
            .database_name(&database)
            .table_input(input.clone())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error) if error.code() == Some("EntityNotFoundException") => {
                // No database yet: create it, then the table.
                let db = aws_sdk_glue::types::DatabaseInput::builder()
                    .name(&database)
                    .description("created by sluice s3_json")
                    .build()
                    .map_err(|e| {
                        ConnectorError::fatal(format!("cannot describe database {database}: {e}"))
                    })?;
                match self
                    .client
                    .create_database()
                    .database_input(db)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(error) if error.code() == Some("AlreadyExistsException") => {}
                    Err(error) => {
                        return Err(self.error(&format!("cannot create database {database}"), error))
                    }
                }
                match self
                    .client
                    .create_table()
                    .database_name(&database)
                    .table_input(input)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(error) if error.code() == Some("AlreadyExistsException") => {}
                    Err(error) => {
                        return Err(
                            self.error(&format!("cannot create table {database}.{name}"), error)
                        )
                    }
                }
            }
            // Another sink task created it first.
            Err(error) if error.code() == Some("AlreadyExistsException") => {}
            Err(error) => {
                return Err(self.error(&format!("cannot create table {database}.{name}"), error))
            }
        }
        tracing::info!(catalog = %self.at, table = %format!("{database}.{name}"), columns = columns.len(), partition_keys = ?keys, "created table");
        Ok(KnownTable {
            name: name.to_owned(),
            keys,
            storage,
        })
    }

    fn classification(&self) -> &'static str {
        match self.format {
            Format::Json => "json",
            Format::Parquet => "parquet",
        }
    }

    fn compression_type(&self) -> &'static str {
        match self.compression {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        }
    }

    fn storage(&self, location: &str, columns: &[(String, String)]) -> StorageDescriptor {
        let (serde, input, output) = match self.format {
            Format::Json => (JSON_SERDE, JSON_INPUT_FORMAT, JSON_OUTPUT_FORMAT),
            Format::Parquet => (PARQUET_SERDE, PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT),
        };
        let mut serde_info = SerDeInfo::builder()
            .serialization_library(serde)
            .parameters("serialization.format", "1");
        if self.format == Format::Json {
            serde_info = serde_info.parameters("ignore.malformed.json", "FALSE");
        }
        StorageDescriptor::builder()
            .location(location)
            .input_format(input)
            .output_format(output)
            .compressed(self.format == Format::Json && self.compression == Compression::Gzip)
            .serde_info(serde_info.build())
            .set_columns(Some(
                columns
                    .iter()
                    .filter_map(|(n, t)| column(n, t).ok())
                    .collect(),
            ))
            .build()
    }

    async fn add_partitions(
        &self,
        topic: &str,
        table: &KnownTable,
        paths: &[String],
    ) -> ConnectorResult<()> {
        let database = &self.config.database;
        let base = table
            .storage
            .location()
            .map(|l| format!("{}/", l.trim_end_matches('/')))
            .unwrap_or_else(|| format!("{}{topic}/", self.root));
        let mut inputs = Vec::with_capacity(paths.len());
        for path in paths {
            let partition = partition_of(path);
            let names: Vec<&str> = partition.iter().map(|(k, _)| k.as_str()).collect();
            if names != table.keys.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(ConnectorError::fatal(format!(
                    "{}: table {database}.{} is partitioned by {:?}, but the sink writes folders {path}/ ({names:?}); \
                     point `catalog.table` at a table for this layout, or drop the table and let the sink create it",
                    self.at, table.name, table.keys
                )));
            }
            let mut storage = table.storage.clone();
            storage.location = Some(format!("{base}{path}/"));
            inputs.push(
                PartitionInput::builder()
                    .set_values(Some(partition.into_iter().map(|(_, v)| v).collect()))
                    .storage_descriptor(storage)
                    .build(),
            );
        }
        for batch in inputs.chunks(BATCH) {
            let output = self
                .client
                .batch_create_partition()
                .database_name(database)
                .table_name(&table.name)
                .set_partition_input_list(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    self.error(
                        &format!("cannot add partitions to {database}.{}", table.name),
                        e,
                    )
                })?;
            let failed: Vec<String> = output
                .errors()
                .iter()
                .filter_map(|error| {
                    let code = error
                        .error_detail()
                        .and_then(|d| d.error_code())
                        .unwrap_or("no error code");
                    (code != "AlreadyExistsException").then(|| {
                        format!(
                            "{:?}: {code}: {}",
                            error.partition_values(),
                            error
                                .error_detail()
                                .and_then(|d| d.error_message())
                                .unwrap_or("no message")
                        )
                    })
                })
                .collect();
            if let Some(first) = failed.first() {
                return Err(ConnectorError::retriable(format!(
                    "{}: {} of {} partitions could not be added to {database}.{} (first: {first})",
                    self.at,
                    failed.len(),
                    batch.len(),
                    table.name
                )));
            }
            tracing::debug!(catalog = %self.at, table = %table.name, partitions = batch.len(), "partitions added");
        }
        Ok(())
    }

    /// The error with where it happened; retriable or fatal as S3's are.
    fn error<E>(&self, context: &str, error: SdkError<E>) -> ConnectorError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(format!("{}: {context}", self.at), error)
    }
}

fn column(name: &str, hive_type: &str) -> ConnectorResult<Column> {
    Column::builder()
        .name(name)
        .r#type(hive_type)
        .build()
        .map_err(|e| ConnectorError::fatal(format!("cannot describe column {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_give_partition_keys_and_unescaped_values() {
        assert_eq!(
            partition_of("index=N%2FYA"),
            [("index".to_owned(), "N/YA".to_owned())]
        );
        assert_eq!(
            partition_of("year=2021/Month=07"),
            [
                ("year".to_owned(), "2021".to_owned()),
                ("month".to_owned(), "07".to_owned())
            ]
        );
        assert_eq!(
            partition_of("2021/07"),
            [
                ("partition_0".to_owned(), "2021".to_owned()),
                ("partition_1".to_owned(), "07".to_owned())
            ]
        );
    }

    #[test]
    fn columns_are_inferred_lowercased_and_typed_for_hive() {
        let sample = vec![
            serde_json::json!({"Index": "NYA", "close": 1, "tags": ["a"], "at": {"Y": 2}, "gone": null}),
            serde_json::json!({"index": "HSI", "close": 2.5, "ok": true}),
        ];
        let columns = columns_of(&sample).unwrap();
        let expected = [
            ("index", "string"),
            ("close", "double"),
            ("tags", "array<string>"),
            ("at", "struct<y:bigint>"),
            ("gone", "string"),
            ("ok", "boolean"),
        ];
        assert_eq!(
            columns,
            expected
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn settings_validate_and_name_tables_after_topics() {
        let config: CatalogConfig = serde_json::from_value(serde_json::json!({
            "type": "glue", "database": "Bad-Name", "endpoint": "localhost:5000"
        }))
        .unwrap();
        let fields: Vec<&str> = config.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["database", "endpoint"]);
        assert!(config.create_table);
        assert_eq!(config.table_of("stock-market.v1"), "stock_market_v1");
        let error = serde_json::from_value::<CatalogConfig>(
            serde_json::json!({"type": "hive", "database": "d"}),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown variant `hive`"),
            "{error}"
        );
    }
}
