//! The s3_json sink's `catalog:` option against the real broker and S3
//! server and a Glue API server (moto's, `scripts/services.sh up`): a replay
//! of the stock CSV partitioned by index creates the Glue table and adds
//! every partition folder as it lands, with the folder's location and the
//! table's SerDe (JSON and Parquet); a replay into an existing table whose
//! partition keys do not match the folders, and one into a missing table
//! with `create_table: false`, stop with an error saying what to do.

mod common;

use common::OutputWithinLimit as _;

use std::collections::BTreeSet;

use common::glue::{columns, folders, glue_client, glue_endpoint, partitions};
use common::{stock_pipeline, unique, write_pipeline, Services};

const PARTITION_BY_INDEX: &str = "    partitioner: {type: field, field: Index, name: index}\n";

fn catalog(database: &str, extra: &str) -> String {
    format!(
        "    catalog:\n      type: glue\n      database: {database}\n      endpoint: {}\n{extra}",
        glue_endpoint()
    )
}

/// Runs the pipeline; returns (success, stderr).
fn run(services: &Services, text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(dir.path(), text);
    let output = services
        .sluice()
        .arg("run")
        .arg("--no-progress")
        .arg(&pipeline)
        .output_within_limit()
        .expect("run sluice");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn sink_keeps_the_table_current(format: &str) {
    let services = Services::get();
    let glue_at = glue_endpoint();
    let glue = glue_client(&services, &glue_at);
    let name = unique(&format!("sinkcat-{format}"));
    let database = name.replace('-', "_");
    let table = database.clone();
    let sink = format!(
        "{PARTITION_BY_INDEX}    format: {format}\n{}",
        catalog(&database, "")
    );
    let (ok, stderr) = run(&services, &stock_pipeline(&name, "", &sink));
    assert!(ok, "the replay failed:\n{stderr}");

    let found = glue
        .get_table()
        .database_name(&database)
        .name(&table)
        .send()
        .await
        .expect("the sink created the table");
    let found = found.table().expect("a table");
    let sd = found.storage_descriptor().expect("a storage descriptor");
    let location = format!("s3://{name}/topics/{name}/");
    assert_eq!(sd.location(), Some(location.as_str()));
    let keys = columns(found.partition_keys());
    assert_eq!(keys, [("index".to_owned(), "string".to_owned())]);
    let (serde, classification) = match format {
        "json" => ("org.openx.data.jsonserde.JsonSerDe", "json"),
        _ => (
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            "parquet",
        ),
    };
    assert_eq!(
        sd.serde_info().and_then(|s| s.serialization_library()),
        Some(serde)
    );
    assert_eq!(
        found
            .parameters()
            .and_then(|p| p.get("classification"))
            .map(String::as_str),
        Some(classification)
    );
    let expected_columns: Vec<(String, String)> = [
        ("date", "string"),
        ("open", "double"),
        ("high", "double"),
        ("low", "double"),
        ("close", "double"),
        ("adj close", "double"),
        ("volume", "double"),
        ("closeusd", "double"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect();
    // `Index` is the partition column, not also a data column (Athena
    // refuses a table with both).
    assert_eq!(columns(sd.columns()), expected_columns);

    // Every folder in the bucket is a partition, with its own location.
    let root = format!("topics/{name}/");
    let in_bucket = folders(&services, &name, &root).await;
    assert_eq!(in_bucket.len(), 13, "{in_bucket:?}");
    let registered = partitions(&glue, &database, &table).await;
    let registered_folders: BTreeSet<String> = registered
        .keys()
        .map(|values| format!("index={}/", values.join("/")))
        .collect();
    assert_eq!(registered_folders, in_bucket);
    for (values, sd) in &registered {
        assert_eq!(
            sd.location(),
            Some(format!("{location}index={}/", values[0]).as_str())
        );
        assert_eq!(
            sd.serde_info().and_then(|s| s.serialization_library()),
            Some(serde)
        );
    }

    // A second replay of the same data into the same table (new topic
    // prefix, same table) adds nothing and does not fail.
    let (ok, stderr) = run(&services, &stock_pipeline(&name, "", &sink));
    assert!(ok, "the second replay failed:\n{stderr}");
    assert_eq!(partitions(&glue, &database, &table).await.len(), 13);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_sink_creates_the_table_and_adds_each_partition() {
    sink_keeps_the_table_current("json").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_sink_creates_the_table_and_adds_each_partition() {
    sink_keeps_the_table_current("parquet").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mismatched_or_missing_tables_stop_the_sink_with_what_to_do() {
    let services = Services::get();
    let name = unique("sinkcat-bad");
    let database = name.replace('-', "_");

    // Missing table, create_table off.
    let sink = catalog(&database, "      create_table: false\n");
    let (ok, stderr) = run(&services, &stock_pipeline(&name, "", &sink));
    assert!(!ok, "the replay should fail");
    assert!(
        stderr.contains(&format!("table {database}.{database} does not exist"))
            && stderr.contains("catalog.create_table: true"),
        "{stderr}"
    );

    // The table exists (made by a run partitioned by index); a sink
    // writing Kafka-partition folders cannot add its partitions to it.
    let other = unique("sinkcat-bad");
    let sink = format!(
        "{PARTITION_BY_INDEX}{}",
        catalog(&database, &format!("      table: {database}\n"))
    );
    let (ok, stderr) = run(&services, &stock_pipeline(&other, "", &sink));
    assert!(ok, "{stderr}");
    let sink = catalog(&database, &format!("      table: {database}\n"));
    let (ok, stderr) = run(&services, &stock_pipeline(&name, "", &sink));
    assert!(!ok, "the replay should fail");
    assert!(
        stderr.contains("is partitioned by [\"index\"], but the sink writes folders partition="),
        "{stderr}"
    );
}
