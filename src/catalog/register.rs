//! `sluice catalog crawl --register`: the crawled table and its partitions
//! in the AWS Glue Data Catalog, through the Glue API (`aws-sdk-glue`), or in
//! any server of that API (moto's, with `--glue-endpoint`).
//!
//! What it does, in order, as a Glue crawler would:
//! 1. the database: `GetDatabase`, and `CreateDatabase` when it is missing;
//! 2. the table: `CreateTable` with exactly the `TableInput` that
//!    `--format glue` prints, or `UpdateTable` when a table of that name
//!    exists — unless that table is a view, or is at another location, or
//!    has other partition keys: then it stops and says why, rather than
//!    overwrite a table that is not this one;
//! 3. the partitions: `BatchCreatePartition`, 100 a call (Glue's limit), each
//!    with its values and the table's storage descriptor with the
//!    partition's folder as location. A partition that is already registered
//!    is left as it is and counted as such.

use std::collections::HashMap;

use anyhow::{anyhow, bail};
use aws_sdk_glue::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{
    Column as GlueColumn, DatabaseInput, PartitionInput, SerDeInfo, StorageDescriptor, TableInput,
};
use aws_sdk_glue::Client;
use futures::StreamExt;

use super::table::Table;

/// Partitions per `BatchCreatePartition` call: Glue takes at most 100.
pub const BATCH_SIZE: usize = 100;
/// `BatchCreatePartition` calls in flight at once.
const BATCH_CONCURRENCY: usize = 4;

/// The Glue API: a client and how to name it in messages.
pub struct Glue {
    client: Client,
    /// `Glue at http://127.0.0.1:5000` or `AWS Glue (eu-west-1)`.
    at: String,
}

impl Glue {
    /// A client for `endpoint` (AWS when `None`), in `region` (else the AWS
    /// chain's, else us-east-1), with the credentials of the AWS chain.
    pub async fn connect(endpoint: Option<&str>, region: Option<&str>) -> Glue {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region.to_owned()));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_glue::config::Builder::from(&shared);
        let region = match shared.region() {
            Some(region) => region.to_string(),
            None => {
                builder = builder.region(aws_config::Region::new("us-east-1"));
                "us-east-1".to_owned()
            }
        };
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let at = match endpoint {
            Some(endpoint) => format!("Glue at {endpoint}"),
            None => format!("AWS Glue ({region})"),
        };
        Glue {
            client: Client::from_conf(builder.build()),
            at,
        }
    }

    /// `Glue at <endpoint>` / `AWS Glue (<region>)`.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// The error of a call: the service's code and message, and what to check.
    fn error<E, R>(&self, doing: &str, error: &SdkError<E, R>) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let at = &self.at;
        match error.code() {
            Some(code) => {
                let message = error.message().unwrap_or("no message");
                let hint = match code {
                    "AccessDeniedException" => {
                        "; the credentials (the AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, role) need the Glue permission for this call"
                    }
                    "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "ExpiredTokenException"
                    | "InvalidClientTokenId" => {
                        "; check the credentials (the AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, role) and the region (--region, AWS_REGION)"
                    }
                    _ => "",
                };
                anyhow!("{at}: cannot {doing}: {code}: {message}{hint}")
            }
            None => anyhow!(
                "{at}: cannot {doing}: {}; check the endpoint (--glue-endpoint, $GLUE_ENDPOINT; AWS when unset), the region (--region, AWS_REGION) and the credentials (the AWS chain)",
                DisplayErrorContext(error)
            ),
        }
    }
}

/// What happened to the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableAction {
    /// `CreateTable`.
    Created,
    /// `UpdateTable`, with what changed in the columns (empty: nothing).
    Updated(Vec<String>),
}

/// What `register` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// `db`.`table`.
    pub table_name: String,
    /// Whether the database had to be created.
    pub database_created: bool,
    /// The table's fate.
    pub table: TableAction,
    /// Partitions the crawl found.
    pub partitions: usize,
    /// Of those, the ones that were not registered yet.
    pub new_partitions: usize,
    /// `BatchCreatePartition` calls made.
    pub calls: usize,
}

impl Registered {
    /// What was done, one line each, prefixed with where.
    pub fn lines(&self, at: &str, table: &Table) -> Vec<String> {
        let mut lines = Vec::new();
        let database = &table.database;
        lines.push(if self.database_created {
            format!("{at}: database `{database}` created")
        } else {
            format!("{at}: database `{database}` exists")
        });
        let shape = format!(
            "{}, {}, location {}",
            count(table.columns.len(), "column", "columns"),
            if table.partition_keys.is_empty() {
                "not partitioned".to_owned()
            } else {
                format!(
                    "partitioned by {}",
                    table
                        .partition_keys
                        .iter()
                        .map(|k| format!("`{}` {}", k.glue_name, k.ty.hive()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            table.location
        );
        match &self.table {
            TableAction::Created => lines.push(format!(
                "{at}: table {} created (CreateTable): {shape}",
                self.table_name
            )),
            TableAction::Updated(changes) => {
                let changed = if changes.is_empty() {
                    "columns unchanged".to_owned()
                } else {
                    changes.join("; ")
                };
                lines.push(format!(
                    "{at}: table {} existed and was updated (UpdateTable): {changed}; {shape}",
                    self.table_name
                ));
            }
        }
        if table.partition_keys.is_empty() {
            return lines;
        }
        let existing = self.partitions - self.new_partitions;
        lines.push(format!(
            "{at}: {} in {}: {} new, {} already registered",
            count(self.partitions, "partition", "partitions"),
            count(
                self.calls,
                "BatchCreatePartition call",
                "BatchCreatePartition calls"
            ),
            self.new_partitions,
            existing
        ));
        if existing > 0 && matches!(&self.table, TableAction::Updated(c) if !c.is_empty()) {
            lines.push(format!(
                "{at}: the {} already registered keep the columns they were registered with; \
                 engines that read a partition's own schema (Spark, Hive) see the old columns there",
                count(existing, "partition", "partitions")
            ));
        }
        lines
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn string_map(pairs: &[(String, String)]) -> HashMap<String, String> {
    pairs.iter().cloned().collect()
}

/// The table's storage descriptor, at `location`: the same as
/// `--format glue` prints.
pub fn storage_descriptor(table: &Table, location: &str) -> anyhow::Result<StorageDescriptor> {
    let columns = table
        .columns
        .iter()
        .map(|c| {
            GlueColumn::builder()
                .name(&c.glue_name)
                .r#type(c.ty.glue())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("column of table {}: {e}", table.name))?;
    Ok(StorageDescriptor::builder()
        .set_columns(Some(columns))
        .location(location)
        .input_format(table.input_format())
        .output_format(table.output_format())
        .compressed(table.compression_type != "none")
        .number_of_buckets(-1)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(table.serde())
                .set_parameters(Some(string_map(&table.serde_parameters())))
                .build(),
        )
        .set_parameters(Some(string_map(&table.parameters)))
        .stored_as_sub_directories(false)
        .build())
}

/// The `TableInput` of `CreateTable`/`UpdateTable`: what
/// [`super::glue::create_table_input`] prints, with `extra` table parameters
/// (partition projection).
pub fn table_input(table: &Table, extra: &[(String, String)]) -> anyhow::Result<TableInput> {
    let mut parameters = table.parameters.clone();
    parameters.extend(extra.iter().cloned());
    let partition_keys = table
        .partition_keys
        .iter()
        .map(|k| {
            GlueColumn::builder()
                .name(&k.glue_name)
                .r#type(k.ty.hive())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("partition key of table {}: {e}", table.name))?;
    TableInput::builder()
        .name(&table.name)
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(string_map(&parameters)))
        .storage_descriptor(storage_descriptor(table, &table.location)?)
        .set_partition_keys(Some(partition_keys))
        .build()
        .map_err(|e| anyhow!("table {}: {e}", table.name))
}

/// A `PartitionInput` per partition: its values, and the table's storage
/// descriptor at its folder.
pub fn partition_inputs(table: &Table) -> anyhow::Result<Vec<PartitionInput>> {
    table
        .partitions
        .iter()
        .map(|p| {
            Ok(PartitionInput::builder()
                .set_values(Some(p.values.clone()))
                .storage_descriptor(storage_descriptor(table, &p.location)?)
                .build())
        })
        .collect()
}

/// How the existing table's columns differ from the crawl's: `added: a, b`,
/// `removed: c`, `d: bigint → double` (names compared without case, as
/// Athena does).
pub fn column_changes(old: &[(String, String)], new: &[(String, String)]) -> Vec<String> {
    let find = |list: &[(String, String)], name: &str| {
        list.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| t.clone())
    };
    let added: Vec<&str> = new
        .iter()
        .filter(|(n, _)| find(old, n).is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    let removed: Vec<&str> = old
        .iter()
        .filter(|(n, _)| find(new, n).is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    let retyped: Vec<String> = new
        .iter()
        .filter_map(|(n, t)| {
            let before = find(old, n)?;
            (!before.eq_ignore_ascii_case(t)).then(|| format!("`{n}` {before} → {t}"))
        })
        .collect();
    let names = |list: &[&str]| {
        list.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut changes = Vec::new();
    if !added.is_empty() {
        changes.push(format!("columns added: {}", names(&added)));
    }
    if !removed.is_empty() {
        changes.push(format!("columns removed: {}", names(&removed)));
    }
    if !retyped.is_empty() {
        changes.push(format!("column types changed: {}", retyped.join(", ")));
    }
    changes
}

fn name_types(columns: &[GlueColumn]) -> Vec<(String, String)> {
    columns
        .iter()
        .map(|c| (c.name().to_owned(), c.r#type().unwrap_or("").to_owned()))
        .collect()
}

/// Why an existing table must not be overwritten with the crawled one, if
/// it must not.
fn refuse_update(
    at: &str,
    table_name: &str,
    existing: &aws_sdk_glue::types::Table,
    new: &TableInput,
) -> Option<String> {
    let what_to_do = "delete it first (aws glue delete-table), or register the crawl under another name (--table NAME, --database NAME)";
    if let Some(kind) = existing.table_type().filter(|t| {
        t.eq_ignore_ascii_case("VIRTUAL_VIEW") || t.eq_ignore_ascii_case("MATERIALIZED_VIEW")
    }) {
        return Some(format!(
            "{at}: {table_name} exists and is a view ({kind}), not the table of this crawl; {what_to_do}"
        ));
    }
    let old_location = existing
        .storage_descriptor()
        .and_then(|sd| sd.location())
        .unwrap_or("");
    let new_location = new
        .storage_descriptor()
        .and_then(|sd| sd.location())
        .unwrap_or("");
    if old_location.trim_end_matches('/') != new_location.trim_end_matches('/') {
        return Some(format!(
            "{at}: {table_name} exists with location `{old_location}`, not {new_location}: it is another table; {what_to_do}"
        ));
    }
    let old_keys = name_types(existing.partition_keys());
    let new_keys = name_types(new.partition_keys());
    let same_keys = old_keys.len() == new_keys.len()
        && old_keys
            .iter()
            .zip(&new_keys)
            .all(|((a, s), (b, t))| a.eq_ignore_ascii_case(b) && s.eq_ignore_ascii_case(t));
    if !same_keys {
        let list = |keys: &[(String, String)]| {
            if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.iter()
                    .map(|(n, t)| format!("`{n}` {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        return Some(format!(
            "{at}: {table_name} exists with partition keys {}, but the crawl found {}; its registered partitions would not fit the new keys; {what_to_do}",
            list(&old_keys),
            list(&new_keys)
        ));
    }
    None
}

/// Registers the database (if missing), the table (created or updated) and
/// every partition of the crawl; `extra` are table parameters added to the
/// table's (partition projection).
pub async fn register(
    glue: &Glue,
    table: &Table,
    extra: &[(String, String)],
) -> anyhow::Result<Registered> {
    let client = &glue.client;
    let at = glue.at();
    let database = &table.database;
    let table_name = format!("`{database}`.`{}`", table.name);

    // 1. The database.
    let database_created = match client.get_database().name(database).send().await {
        Ok(_) => false,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_entity_not_found_exception()) =>
        {
            let input = DatabaseInput::builder()
                .name(database)
                .description("Created by sluice catalog crawl --register")
                .build()
                .map_err(|e| anyhow!("database `{database}`: {e}"))?;
            match client.create_database().database_input(input).send().await {
                Ok(_) => true,
                // Created meanwhile by someone else: it exists, which is all we need.
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_already_exists_exception()) =>
                {
                    false
                }
                Err(error) => {
                    return Err(glue.error(&format!("create database `{database}`"), &error))
                }
            }
        }
        Err(error) => return Err(glue.error(&format!("get database `{database}`"), &error)),
    };

    // 2. The table.
    let input = table_input(table, extra)?;
    let existing = match client
        .get_table()
        .database_name(database)
        .name(&table.name)
        .send()
        .await
    {
        Ok(output) => output.table,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_entity_not_found_exception()) =>
        {
            None
        }
        Err(error) => return Err(glue.error(&format!("get table {table_name}"), &error)),
    };
    let action = match existing {
        None => {
            match client
                .create_table()
                .database_name(database)
                .table_input(input.clone())
                .send()
                .await
            {
                Ok(_) => TableAction::Created,
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_already_exists_exception()) =>
                {
                    bail!(
                        "{at}: table {table_name} was created by someone else while this crawl registered it; run the crawl again to update it"
                    )
                }
                Err(error) => return Err(glue.error(&format!("create table {table_name}"), &error)),
            }
        }
        Some(existing) => {
            if let Some(why) = refuse_update(at, &table_name, &existing, &input) {
                bail!(why);
            }
            let old_columns = existing
                .storage_descriptor()
                .map(|sd| name_types(sd.columns()))
                .unwrap_or_default();
            let new_columns = input
                .storage_descriptor()
                .map(|sd| name_types(sd.columns()))
                .unwrap_or_default();
            client
                .update_table()
                .database_name(database)
                .table_input(input)
                .send()
                .await
                .map_err(|error| glue.error(&format!("update table {table_name}"), &error))?;
            TableAction::Updated(column_changes(&old_columns, &new_columns))
        }
    };

    // 3. The partitions, 100 a call.
    let partitions = if table.partition_keys.is_empty() {
        Vec::new()
    } else {
        partition_inputs(table)?
    };
    let batches: Vec<Vec<PartitionInput>> = partitions
        .chunks(BATCH_SIZE)
        .map(<[PartitionInput]>::to_vec)
        .collect();
    let calls = batches.len();
    let mut results = futures::stream::iter(batches.into_iter().map(|batch| async move {
        let size = batch.len();
        let output = client
            .batch_create_partition()
            .database_name(database)
            .table_name(&table.name)
            .set_partition_input_list(Some(batch))
            .send()
            .await;
        (size, output)
    }))
    .buffer_unordered(BATCH_CONCURRENCY);
    let mut new_partitions = 0;
    let mut failed = Vec::new();
    while let Some((size, output)) = results.next().await {
        let output = output.map_err(|error| {
            glue.error(&format!("add partitions to table {table_name}"), &error)
        })?;
        // Every partition of the batch was added but those with an error:
        // AlreadyExistsException (fine) or another (collected).
        new_partitions += size.saturating_sub(output.errors().len());
        for error in output.errors() {
            let code = error
                .error_detail()
                .and_then(|d| d.error_code())
                .unwrap_or("no error code");
            if code != "AlreadyExistsException" {
                failed.push(format!(
                    "values {:?}: {code}: {}",
                    error.partition_values(),
                    error
                        .error_detail()
                        .and_then(|d| d.error_message())
                        .unwrap_or("no message")
                ));
            }
        }
    }
    drop(results);
    if let Some(first) = failed.first() {
        bail!(
            "{at}: {} of {} could not be added to table {table_name} ({new_partitions} were added; first: {first})",
            count(failed.len(), "partition", "partitions"),
            partitions.len()
        );
    }
    Ok(Registered {
        table_name,
        database_created,
        table: action,
        partitions: partitions.len(),
        new_partitions,
        calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::glue::create_table_input;
    use crate::catalog::infer::JsonType;
    use crate::catalog::layout::{analyze, Listed};
    use crate::catalog::table::{build, CrawlStats, TableSpec};
    use serde_json::{json, Map, Value};

    fn table(keys: &[&str]) -> Table {
        let listed: Vec<Listed> = keys
            .iter()
            .map(|k| Listed {
                key: (*k).to_owned(),
                size: 5,
            })
            .collect();
        let layout = analyze("t/", &listed).unwrap();
        let fields = vec![
            ("Index".to_owned(), JsonType::String),
            ("Adj Close".to_owned(), JsonType::Double),
            ("a.b".to_owned(), JsonType::BigInt),
            (
                "nested".to_owned(),
                JsonType::Struct(vec![("Key".to_owned(), JsonType::BigInt)]),
            ),
        ];
        build(
            TableSpec {
                database: "market".into(),
                name: "stocks".into(),
                location: "s3://b/t/".into(),
            },
            &layout,
            &fields,
            &CrawlStats::default(),
        )
    }

    fn map(parameters: Option<&HashMap<String, String>>) -> Value {
        let mut pairs: Vec<(&String, &String)> = parameters.into_iter().flatten().collect();
        pairs.sort();
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<Map<String, Value>>(),
        )
    }

    fn sorted(value: &Value) -> Value {
        let mut pairs: Vec<(String, Value)> = value
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Object(pairs.into_iter().collect())
    }

    fn columns(list: &[GlueColumn]) -> Value {
        list.iter()
            .map(|c| json!({"Name": c.name(), "Type": c.r#type().unwrap()}))
            .collect()
    }

    fn sd_json(sd: &StorageDescriptor) -> Value {
        let serde = sd.serde_info().unwrap();
        json!({
            "Columns": columns(sd.columns()),
            "Location": sd.location().unwrap(),
            "InputFormat": sd.input_format().unwrap(),
            "OutputFormat": sd.output_format().unwrap(),
            "Compressed": sd.compressed(),
            "NumberOfBuckets": sd.number_of_buckets(),
            "SerdeInfo": {
                "SerializationLibrary": serde.serialization_library().unwrap(),
                "Parameters": map(serde.parameters()),
            },
            "Parameters": map(sd.parameters()),
            "StoredAsSubDirectories": sd.stored_as_sub_directories(),
        })
    }

    /// The API's TableInput is the JSON `--format glue` prints, field for field.
    #[test]
    fn the_api_input_is_the_printed_create_table_input() {
        let table = table(&["t/index=NYA/a.json.gz", "t/index=HSI/b.json.gz"]);
        let extra = vec![("projection.enabled".to_owned(), "true".to_owned())];
        let input = table_input(&table, &extra).unwrap();
        let printed = create_table_input(&table, &extra);
        let mut printed = printed["TableInput"].clone();
        printed["Parameters"] = sorted(&printed["Parameters"]);
        let sd = &mut printed["StorageDescriptor"];
        sd["Parameters"] = sorted(&sd["Parameters"]);
        sd["SerdeInfo"]["Parameters"] = sorted(&sd["SerdeInfo"]["Parameters"]);
        let from_api = json!({
            "Name": input.name(),
            "TableType": input.table_type().unwrap(),
            "Parameters": map(input.parameters()),
            "StorageDescriptor": sd_json(input.storage_descriptor().unwrap()),
            "PartitionKeys": columns(input.partition_keys()),
        });
        assert_eq!(from_api, printed);
        assert!(printed["StorageDescriptor"]["SerdeInfo"]["Parameters"]
            .get("mapping.a_b")
            .is_some());
    }

    #[test]
    fn each_partition_gets_its_values_and_the_table_descriptor_at_its_folder() {
        let table = table(&["t/index=NYA/a.json", "t/index=N%2FA/b.json"]);
        let inputs = partition_inputs(&table).unwrap();
        assert_eq!(inputs.len(), 2);
        let table_sd = sd_json(
            table_input(&table, &[])
                .unwrap()
                .storage_descriptor()
                .unwrap(),
        );
        let mut seen = Vec::new();
        for input in &inputs {
            let mut sd = sd_json(input.storage_descriptor().unwrap());
            seen.push((input.values().to_vec(), sd["Location"].to_string()));
            sd["Location"] = table_sd["Location"].clone();
            assert_eq!(sd, table_sd);
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                (
                    vec!["N/A".to_owned()],
                    "\"s3://b/t/index=N%2FA/\"".to_owned()
                ),
                (vec!["NYA".to_owned()], "\"s3://b/t/index=NYA/\"".to_owned()),
            ]
        );
    }

    /// A Parquet table: the API input is still the printed one, and every
    /// partition is stored as Parquet too.
    #[test]
    fn a_parquet_table_and_its_partitions_use_the_parquet_serde() {
        let table = table(&["t/index=NYA/a.parquet", "t/index=HSI/b.parquet"]);
        assert_eq!(table.format, crate::catalog::layout::DataFormat::Parquet);
        let input = table_input(&table, &[]).unwrap();
        let mut printed = create_table_input(&table, &[])["TableInput"].clone();
        printed["Parameters"] = sorted(&printed["Parameters"]);
        let sd = &mut printed["StorageDescriptor"];
        sd["Parameters"] = sorted(&sd["Parameters"]);
        let from_api = json!({
            "Name": input.name(),
            "TableType": input.table_type().unwrap(),
            "Parameters": map(input.parameters()),
            "StorageDescriptor": sd_json(input.storage_descriptor().unwrap()),
            "PartitionKeys": columns(input.partition_keys()),
        });
        assert_eq!(from_api, printed);
        assert_eq!(printed["Parameters"]["classification"], "parquet");
        let inputs = partition_inputs(&table).unwrap();
        assert_eq!(inputs.len(), 2);
        for partition in &inputs {
            let sd = partition.storage_descriptor().unwrap();
            assert_eq!(
                sd.serde_info().unwrap().serialization_library(),
                Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
            );
            assert_eq!(
                sd.input_format(),
                Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
            );
            assert_eq!(
                sd.output_format(),
                Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
            );
            let serde_parameters = sd.serde_info().unwrap().parameters().unwrap();
            assert_eq!(serde_parameters.len(), 1, "{serde_parameters:?}");
            assert_eq!(serde_parameters["serialization.format"], "1");
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn column_changes_name_what_was_added_removed_and_retyped() {
        let old = pairs(&[("Open", "bigint"), ("gone", "string"), ("Date", "string")]);
        let new = pairs(&[("open", "double"), ("date", "string"), ("volume", "bigint")]);
        assert_eq!(
            column_changes(&old, &new),
            [
                "columns added: `volume`",
                "columns removed: `gone`",
                "column types changed: `open` bigint → double",
            ]
        );
        assert!(column_changes(&new, &new).is_empty());
    }

    fn existing(location: &str, keys: &[(&str, &str)], kind: &str) -> aws_sdk_glue::types::Table {
        aws_sdk_glue::types::Table::builder()
            .name("stocks")
            .table_type(kind)
            .storage_descriptor(StorageDescriptor::builder().location(location).build())
            .set_partition_keys(Some(
                keys.iter()
                    .map(|(n, t)| GlueColumn::builder().name(*n).r#type(*t).build().unwrap())
                    .collect(),
            ))
            .build()
            .unwrap()
    }

    #[test]
    fn only_the_same_table_is_updated() {
        let table = table(&["t/index=NYA/a.json"]);
        let input = table_input(&table, &[]).unwrap();
        let same = existing("s3://b/t", &[("INDEX", "string")], "EXTERNAL_TABLE");
        assert_eq!(refuse_update("Glue", "`m`.`s`", &same, &input), None);
        let elsewhere = existing("s3://b/other/", &[("index", "string")], "EXTERNAL_TABLE");
        let why = refuse_update("Glue", "`m`.`s`", &elsewhere, &input).unwrap();
        assert!(
            why.contains("location `s3://b/other/`, not s3://b/t/"),
            "{why}"
        );
        assert!(why.contains("--table NAME"), "{why}");
        let keys = existing("s3://b/t/", &[("partition", "int")], "EXTERNAL_TABLE");
        let why = refuse_update("Glue", "`m`.`s`", &keys, &input).unwrap();
        assert!(
            why.contains("partition keys `partition` int, but the crawl found `index` string"),
            "{why}"
        );
        let view = existing("s3://b/t/", &[("index", "string")], "VIRTUAL_VIEW");
        let why = refuse_update("Glue", "`m`.`s`", &view, &input).unwrap();
        assert!(why.contains("is a view (VIRTUAL_VIEW)"), "{why}");
    }

    #[test]
    fn the_report_says_what_was_done() {
        let table = table(&["t/index=NYA/a.json", "t/index=HSI/b.json"]);
        let done = Registered {
            table_name: "`market`.`stocks`".into(),
            database_created: true,
            table: TableAction::Created,
            partitions: 2,
            new_partitions: 2,
            calls: 1,
        };
        let lines = done.lines("Glue at http://g", &table);
        assert_eq!(
            lines,
            [
                "Glue at http://g: database `market` created",
                "Glue at http://g: table `market`.`stocks` created (CreateTable): 4 columns, partitioned by `index` string, location s3://b/t/",
                "Glue at http://g: 2 partitions in 1 BatchCreatePartition call: 2 new, 0 already registered",
            ]
        );
        let again = Registered {
            database_created: false,
            table: TableAction::Updated(vec!["columns added: `x`".into()]),
            new_partitions: 0,
            ..done
        };
        let lines = again.lines("Glue at http://g", &table);
        assert_eq!(lines[0], "Glue at http://g: database `market` exists");
        assert!(
            lines[1].starts_with("Glue at http://g: table `market`.`stocks` existed and was updated (UpdateTable): columns added: `x`; 4 columns"),
            "{lines:?}"
        );
        assert!(
            lines[2].ends_with("0 new, 2 already registered"),
            "{lines:?}"
        );
        assert!(
            lines[3].contains("keep the columns they were registered with"),
            "{lines:?}"
        );
    }
}
