//! `sluice catalog crawl` against buckets the s3_json sink wrote through the
//! real Kafka broker and S3 server: the shipped stock-market pipeline (kafka
//! partitioner), the field partitioner, gzip with the time partitioner, and
//! a hand-made bucket with nested, mixed and oddly named fields. The schema,
//! partition keys, location, compression and partitions are asserted
//! exactly, against what the test computes itself from the CSV and the
//! bucket listing; the Athena DDL is parsed by an independent SQL parser
//! (sqlparser's Databricks dialect — Spark SQL's Hive-compatible DDL, which
//! takes Hive's `struct<name:type>` and backslash escapes in strings — and,
//! where the table has no struct, its Hive dialect too) and its parts are
//! checked in the syntax tree.

mod common;

use common::OutputWithinLimit as _;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;
use std::time::Instant;

use common::sql::{crawl, json_columns, pairs};
use common::{dataset, read_csv, run_ok, stock_pipeline, unique, write_pipeline, Services};
use serde_json::{json, Value};
use sqlparser::ast::{
    AlterTableOperation, CreateTableOptions, Expr, HiveDistributionStyle, HiveIOFormat,
    HiveRowFormat, ObjectNamePart, Partition, SqlOption, Statement,
};
use sqlparser::dialect::{DatabricksDialect, Dialect, HiveDialect};
use sqlparser::parser::Parser;

/// `sluice catalog crawl <args>` expected to fail: its stderr.
fn crawl_fails(services: &Services, args: &[&str]) -> String {
    let output = services
        .sluice()
        .args(["catalog", "crawl"])
        .args(args)
        .output_within_limit()
        .expect("run sluice");
    assert!(
        !output.status.success(),
        "crawl {args:?} should fail; stdout:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn run_pipeline(services: &Services, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(dir.path(), text);
    let started = Instant::now();
    run_ok(services.sluice().arg("run").arg(&pipeline));
    eprintln!("replay took {:.2}s", started.elapsed().as_secs_f64());
    dir
}

/// Every key in the bucket with its size.
async fn keys(services: &Services, bucket: &str) -> BTreeMap<String, i64> {
    let client = services.s3().await;
    let mut keys = BTreeMap::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.take())
            .send()
            .await
            .expect("list objects");
        for object in page.contents() {
            keys.insert(
                object.key().expect("key").to_owned(),
                object.size().unwrap_or(0),
            );
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return keys;
        }
    }
}

/// The partition folders (`name=value/` chains) of the keys under `root`.
fn folders(keys: &BTreeMap<String, i64>, root: &str) -> BTreeSet<String> {
    keys.keys()
        .filter_map(|k| k.strip_prefix(root))
        .filter_map(|rest| {
            rest.rsplit_once('/')
                .map(|(folder, _)| format!("{folder}/"))
        })
        .collect()
}

/// The DDL parsed by sqlparser, with what the checks look at.
#[derive(Debug)]
struct Ddl {
    table: String,
    columns: Vec<(String, String)>,
    partition_keys: Vec<(String, String)>,
    serde: String,
    serde_properties: BTreeMap<String, String>,
    input_format: String,
    output_format: String,
    location: String,
    table_properties: BTreeMap<String, String>,
    /// (table, partition spec as name → literal text, location) per ALTER TABLE.
    partitions: Vec<(String, BTreeMap<String, String>, String)>,
}

fn string_of(expr: &Expr) -> String {
    match expr {
        Expr::Value(value) => match &value.value {
            sqlparser::ast::Value::SingleQuotedString(s) => s.clone(),
            sqlparser::ast::Value::Number(n, _) => n.to_string(),
            other => panic!("unexpected literal {other:?}"),
        },
        Expr::UnaryOp { op, expr } => format!("{op}{}", string_of(expr)),
        other => panic!("unexpected expression {other:?}"),
    }
}

fn options(options: &[SqlOption]) -> BTreeMap<String, String> {
    options
        .iter()
        .map(|option| match option {
            SqlOption::KeyValue { key, value } => {
                let [ObjectNamePart::Identifier(key)] = key.0.as_slice() else {
                    panic!("unexpected property key {key:?}")
                };
                (key.value.clone(), string_of(value))
            }
            other => panic!("unexpected property {other:?}"),
        })
        .collect()
}

fn parse_ddl(sql: &str, dialect: &dyn Dialect) -> Ddl {
    let statements = Parser::parse_sql(dialect, sql)
        .unwrap_or_else(|e| panic!("{dialect:?} cannot parse the DDL: {e}\n{sql}"));
    let mut statements = statements.into_iter();
    let Some(Statement::CreateTable(create)) = statements.next() else {
        panic!("the DDL does not start with CREATE TABLE:\n{sql}")
    };
    assert!(create.external && create.if_not_exists, "{sql}");
    let columns = create
        .columns
        .iter()
        .map(|c| (c.name.value.clone(), c.data_type.to_string()))
        .collect();
    let partition_keys = match &create.hive_distribution {
        HiveDistributionStyle::PARTITIONED { columns } => columns
            .iter()
            .map(|c| (c.name.value.clone(), c.data_type.to_string()))
            .collect(),
        HiveDistributionStyle::NONE => Vec::new(),
        other => panic!("unexpected distribution {other:?}"),
    };
    let formats = create.hive_formats.as_ref().expect("Hive formats");
    let Some(HiveRowFormat::SERDE { class }) = &formats.row_format else {
        panic!("no ROW FORMAT SERDE:\n{sql}")
    };
    let Some(HiveIOFormat::IOF {
        input_format,
        output_format,
    }) = &formats.storage
    else {
        panic!("no STORED AS INPUTFORMAT ... OUTPUTFORMAT:\n{sql}")
    };
    let CreateTableOptions::TableProperties(table_properties) = &create.table_options else {
        panic!("no TBLPROPERTIES:\n{sql}")
    };
    let mut ddl = Ddl {
        table: create.name.to_string(),
        columns,
        partition_keys,
        serde: class.clone(),
        serde_properties: options(formats.serde_properties.as_deref().unwrap_or(&[])),
        input_format: string_of(input_format),
        output_format: string_of(output_format),
        location: formats.location.clone().expect("LOCATION"),
        table_properties: options(table_properties),
        partitions: Vec::new(),
    };
    for statement in statements {
        let Statement::AlterTable(alter) = statement else {
            panic!("unexpected statement {statement}")
        };
        let [AlterTableOperation::AddPartitions {
            if_not_exists: true,
            new_partitions,
        }] = alter.operations.as_slice()
        else {
            panic!("unexpected ALTER TABLE {alter}")
        };
        let [Partition::Partitions(spec)] = new_partitions.as_slice() else {
            panic!("unexpected partition list {alter}")
        };
        let spec = spec
            .iter()
            .map(|e| match e {
                Expr::BinaryOp { left, right, .. } => {
                    let Expr::Identifier(name) = left.as_ref() else {
                        panic!("unexpected partition column {left}")
                    };
                    (name.value.clone(), string_of(right))
                }
                other => panic!("unexpected partition spec {other}"),
            })
            .collect();
        let location = alter.location.as_ref().expect("partition LOCATION");
        ddl.partitions.push((
            alter.name.to_string(),
            spec,
            location.location.value.clone(),
        ));
    }
    ddl
}

/// Parses with the Databricks dialect, and with the Hive dialect too when
/// asked (sqlparser's Hive dialect takes neither `struct<a:t>` nor `\'`);
/// both must agree.
fn ddl(sql: &str, also_hive: bool) -> Ddl {
    let parsed = parse_ddl(sql, &DatabricksDialect {});
    if also_hive {
        let hive = parse_ddl(sql, &HiveDialect {});
        assert_eq!(format!("{hive:?}"), format!("{parsed:?}"));
    }
    parsed
}

/// Splits `--format both` output into the Glue JSON and the DDL.
fn split_both(stdout: &str) -> (Value, String) {
    let mut stream = serde_json::Deserializer::from_str(stdout).into_iter::<Value>();
    let glue = stream
        .next()
        .expect("a JSON document first")
        .expect("valid JSON");
    let rest = &stdout[stream.byte_offset()..];
    (glue, rest.trim_start().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_pipeline_kafka_partitioner() {
    let services = Services::get();
    let name = unique("crawl-kafka");
    let shipped = std::fs::read_to_string(common::repo_root().join("pipelines/stock-market.yaml"))
        .expect("shipped pipeline");
    let text = shipped
        .replace("name: stock-market", &format!("name: {name}"))
        .replace("bucket: stock-market", &format!("bucket: {name}"))
        .replace(
            "../data/indexProcessed.csv",
            &dataset().display().to_string(),
        )
        .replace(
            "rate: max",
            "rate: max\n  order: random\n  seed: 11\n  limit: 8000",
        );
    assert!(text.contains("limit: 8000") && text.contains(&format!("bucket: {name}")));
    let dir = run_pipeline(&services, &text);
    let pipeline = dir.path().join("pipeline.yaml");
    let pipeline = pipeline.to_str().expect("utf-8 path");

    let root = format!("topics/{name}/");
    let listing = keys(&services, &name).await;
    let expected_folders = folders(&listing, &root);
    assert!(!expected_folders.is_empty());
    let table = name.replace('-', "_");
    let location = format!("s3://{name}/{root}");

    // The pipeline file as the target: the sink's bucket, prefix and topic.
    let (stdout, stderr) = crawl(&services, &[pipeline, "--format", "both"]);
    assert!(
        stderr.contains(&format!(
            "read {0} of {0} objects, 8000 records",
            listing.len()
        )),
        "{stderr}"
    );
    let (glue, sql) = split_both(&stdout);
    assert_eq!(glue["DatabaseName"], "default");
    let input = &glue["TableInput"];
    assert_eq!(input["Name"], table.as_str());
    assert_eq!(input["TableType"], "EXTERNAL_TABLE");
    let sd = &input["StorageDescriptor"];
    assert_eq!(
        json_columns(&sd["Columns"]),
        pairs(&[
            ("index", "string"),
            ("date", "string"),
            ("open", "double"),
            ("high", "double"),
            ("low", "double"),
            ("close", "double"),
            ("adj_close", "double"),
            ("volume", "bigint"),
            ("close_usd", "double"),
            ("ingested_at", "string"),
        ])
    );
    assert_eq!(
        json_columns(&input["PartitionKeys"]),
        pairs(&[("partition", "int")])
    );
    assert_eq!(sd["Location"], location.as_str());
    assert_eq!(sd["Compressed"], false);
    assert_eq!(input["Parameters"]["classification"], "json");
    assert_eq!(input["Parameters"]["compressionType"], "none");
    assert_eq!(input["Parameters"]["recordCount"], "8000");
    assert_eq!(
        input["Parameters"]["objectCount"],
        listing.len().to_string().as_str()
    );
    assert_eq!(
        sd["SerdeInfo"],
        json!({
            "SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
            "Parameters": {"ignore.malformed.json": "FALSE", "case.insensitive": "TRUE"},
        })
    );

    let parsed = ddl(&sql, true);
    assert_eq!(parsed.table, format!("`default`.`{table}`"));
    assert_eq!(
        parsed.columns,
        pairs(&[
            ("index", "STRING"),
            ("date", "STRING"),
            ("open", "DOUBLE"),
            ("high", "DOUBLE"),
            ("low", "DOUBLE"),
            ("close", "DOUBLE"),
            ("adj_close", "DOUBLE"),
            ("volume", "BIGINT"),
            ("close_usd", "DOUBLE"),
            ("ingested_at", "STRING"),
        ])
    );
    assert_eq!(parsed.partition_keys, pairs(&[("partition", "INT")]));
    assert_eq!(parsed.serde, "org.openx.data.jsonserde.JsonSerDe");
    assert_eq!(
        parsed.input_format,
        "org.apache.hadoop.mapred.TextInputFormat"
    );
    assert_eq!(
        parsed.output_format,
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
    );
    assert_eq!(parsed.location, location);
    assert_eq!(parsed.serde_properties["case.insensitive"], "TRUE");
    assert_eq!(parsed.serde_properties["ignore.malformed.json"], "FALSE");
    assert_eq!(parsed.table_properties["compressionType"], "none");
    // One ALTER TABLE per partition folder in the bucket.
    let added: BTreeSet<String> = parsed
        .partitions
        .iter()
        .map(|(t, spec, at)| {
            assert_eq!(t, &parsed.table);
            let folder = format!("partition={}/", spec["partition"]);
            assert_eq!(at, &format!("{location}{folder}"));
            folder
        })
        .collect();
    assert_eq!(added, expected_folders);

    // Projection instead: an integer range over the partitions found.
    let (sql, _) = crawl(&services, &[pipeline, "--format", "ddl", "--projection"]);
    let parsed = ddl(&sql, true);
    assert!(parsed.partitions.is_empty(), "{sql}");
    let numbers: Vec<u32> = expected_folders
        .iter()
        .map(|f| {
            f["partition=".len()..f.len() - 1]
                .parse()
                .expect("partition number")
        })
        .collect();
    let properties = &parsed.table_properties;
    assert_eq!(properties["projection.enabled"], "true");
    assert_eq!(properties["projection.partition.type"], "integer");
    assert_eq!(
        properties["projection.partition.range"],
        format!(
            "{},{}",
            numbers.iter().min().expect("a partition"),
            numbers.iter().max().expect("a partition")
        )
    );
    assert_eq!(
        properties["storage.location.template"],
        format!("{location}partition=${{partition}}/")
    );

    // The same table from its s3:// URL, with a name and a database.
    let (stdout, _) = crawl(
        &services,
        &[
            &location,
            "--format",
            "glue",
            "--table",
            "stocks",
            "--database",
            "market",
        ],
    );
    let by_url: Value = serde_json::from_str(&stdout).expect("glue JSON");
    assert_eq!(by_url["DatabaseName"], "market");
    assert_eq!(by_url["TableInput"]["Name"], "stocks");
    assert_eq!(by_url["TableInput"]["StorageDescriptor"], *sd);

    let error = crawl_fails(&services, &[pipeline, "--sink", "nope"]);
    assert!(error.contains("has no s3_json sink `nope`"), "{error}");
    assert!(error.contains("its s3_json sinks: s3"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_field_partitioner_gives_the_index_column() {
    let services = Services::get();
    let name = unique("crawl-field");
    let _dir = run_pipeline(
        &services,
        &stock_pipeline(
            &name,
            "  rate: max\n  order: random\n  seed: 5\n  limit: 6000",
            "    partitioner: {type: field, field: Index, name: index}",
        ),
    );
    let (_, rows) = read_csv(&dataset());
    let indexes: BTreeSet<String> = rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(indexes.len(), 13);
    let location = format!("s3://{name}/topics/{name}/");

    let (stdout, stderr) = crawl(&services, &[&location, "--format", "glue"]);
    assert!(stderr.contains("in 13 partitions"), "{stderr}");
    let glue: Value = serde_json::from_str(&stdout).expect("glue JSON");
    let input = &glue["TableInput"];
    let sd = &input["StorageDescriptor"];
    // `Index` is also the partition column `index`: the data column is
    // renamed and mapped to its key.
    assert_eq!(
        json_columns(&sd["Columns"]),
        pairs(&[
            ("index_data", "string"),
            ("Date", "string"),
            ("Open", "double"),
            ("High", "double"),
            ("Low", "double"),
            ("Close", "double"),
            ("Adj Close", "double"),
            ("Volume", "double"),
            ("CloseUSD", "double"),
        ])
    );
    assert_eq!(
        json_columns(&input["PartitionKeys"]),
        pairs(&[("index", "string")])
    );
    assert_eq!(sd["SerdeInfo"]["Parameters"]["mapping.index_data"], "index");
    assert_eq!(sd["Location"], location.as_str());
    assert_eq!(input["Parameters"]["compressionType"], "none");
    assert!(
        stderr.contains("JSON key `Index` is column `index_data`"),
        "{stderr}"
    );

    let (sql, _) = crawl(&services, &[&location, "--format", "ddl"]);
    let parsed = ddl(&sql, true);
    assert_eq!(
        parsed.columns,
        pairs(&[
            ("index_data", "STRING"),
            ("date", "STRING"),
            ("open", "DOUBLE"),
            ("high", "DOUBLE"),
            ("low", "DOUBLE"),
            ("close", "DOUBLE"),
            ("adj close", "DOUBLE"),
            ("volume", "DOUBLE"),
            ("closeusd", "DOUBLE"),
        ])
    );
    assert_eq!(parsed.partition_keys, pairs(&[("index", "STRING")]));
    assert_eq!(parsed.serde_properties["mapping.index_data"], "index");
    let found: BTreeMap<String, String> = parsed
        .partitions
        .iter()
        .map(|(_, spec, at)| (spec["index"].clone(), at.clone()))
        .collect();
    assert_eq!(found.keys().cloned().collect::<BTreeSet<_>>(), indexes);
    for (index, at) in &found {
        assert_eq!(at, &format!("{location}index={index}/"));
    }

    let (sql, _) = crawl(&services, &[&location, "--format", "ddl", "--projection"]);
    let parsed = ddl(&sql, true);
    assert_eq!(parsed.table_properties["projection.index.type"], "enum");
    assert_eq!(
        parsed.table_properties["projection.index.values"],
        indexes.iter().cloned().collect::<Vec<_>>().join(",")
    );
    assert_eq!(
        parsed.table_properties["storage.location.template"],
        format!("{location}index=${{index}}/")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_objects_by_year_are_sampled_across_partitions() {
    let services = Services::get();
    let name = unique("crawl-gzip");
    let _dir = run_pipeline(
        &services,
        &stock_pipeline(
            &name,
            "  rate: max",
            "    compression: gzip\n    partitioner: {type: time, path_format: \"year=%Y\", timestamp_field: Date}",
        ),
    );
    let (_, rows) = read_csv(&dataset());
    let years: BTreeSet<i32> = rows
        .iter()
        .map(|r| r[1][..4].parse().expect("a year"))
        .collect();
    let root = format!("topics/{name}/");
    let listing = keys(&services, &name).await;
    assert!(listing.keys().all(|k| k.ends_with(".json.gz")));
    let objects = listing.len();
    assert!(objects > 100, "{objects} objects");
    let location = format!("s3://{name}/{root}");

    let (stdout, stderr) = crawl(&services, &[&location, "--sample", "40"]);
    assert!(
        stderr.contains(&format!(
            "{objects} JSON Lines objects ({:.1} MB) in {} partitions; read 40 of {objects} objects",
            listing.values().sum::<i64>() as f64 / 1e6,
            years.len()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("raise --sample"), "{stderr}");
    let (glue, sql) = split_both(&stdout);
    let input = &glue["TableInput"];
    assert_eq!(
        json_columns(&input["StorageDescriptor"]["Columns"]),
        pairs(&[
            ("Index", "string"),
            ("Date", "string"),
            ("Open", "double"),
            ("High", "double"),
            ("Low", "double"),
            ("Close", "double"),
            ("Adj Close", "double"),
            ("Volume", "double"),
            ("CloseUSD", "double"),
        ])
    );
    assert_eq!(
        json_columns(&input["PartitionKeys"]),
        pairs(&[("year", "int")])
    );
    assert_eq!(input["Parameters"]["compressionType"], "gzip");
    assert_eq!(input["StorageDescriptor"]["Compressed"], true);
    assert!(sql.starts_with("-- sluice catalog crawl"), "{sql}");
    let parsed = ddl(&sql, true);
    assert_eq!(parsed.partition_keys, pairs(&[("year", "INT")]));
    assert_eq!(parsed.table_properties["compressionType"], "gzip");
    let found: BTreeSet<i32> = parsed
        .partitions
        .iter()
        .map(|(_, spec, at)| {
            assert_eq!(at, &format!("{location}year={}/", spec["year"]));
            spec["year"].parse().expect("an integer literal")
        })
        .collect();
    assert_eq!(found, years);

    let (sql, _) = crawl(&services, &[&location, "--format", "ddl", "--projection"]);
    let parsed = ddl(&sql, true);
    assert_eq!(
        parsed.table_properties["projection.year.range"],
        format!(
            "{},{}",
            years.first().expect("a year"),
            years.last().expect("a year")
        )
    );
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_mixed_and_oddly_named_fields() {
    let services = Services::get();
    let bucket = unique("crawl-nested");
    let client = services.s3().await;
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let objects: Vec<(&str, Vec<u8>)> = vec![
        (
            "data/events/kind=a%2Fb/part-0.json",
            concat!(
                r#"{"id": 1, "a.b": "x", "nested": {"k": 1, "list": [1, 2]}, "mixed": 1, "Date": null}"#,
                "\n",
                r#"{"id": 2, "nested": {"k": 2, "list": []}, "mixed": 2.5}"#,
                "\n",
            )
            .as_bytes()
            .to_vec(),
        ),
        (
            "data/events/kind=plain/part-1.json.gz",
            gzip(concat!(
                r#"{"id": 2.5, "nested": {"k": "str", "extra": true}, "mixed": "s", "tags": [], "Date": "2021-05-28"}"#,
                "\n",
            )),
        ),
        ("data/events/_SUCCESS", Vec::new()),
    ];
    for (key, body) in objects {
        client
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .expect("put object");
    }
    let location = format!("s3://{bucket}/data/events");

    let (stdout, stderr) = crawl(&services, &[&location]);
    assert!(
        stderr.contains("2 JSON Lines objects")
            && stderr.contains("read 2 of 2 objects, 3 records"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 2 objects are gzip"),
        "mixed compression is noted: {stderr}"
    );
    let (glue, sql) = split_both(&stdout);
    let input = &glue["TableInput"];
    assert_eq!(input["Name"], "events");
    let sd = &input["StorageDescriptor"];
    assert_eq!(
        sd["Location"],
        format!("s3://{bucket}/data/events/").as_str()
    );
    assert_eq!(
        json_columns(&sd["Columns"]),
        pairs(&[
            ("id", "double"),
            ("a_b", "string"),
            (
                "nested",
                "struct<k:string,list:array<bigint>,extra:boolean>"
            ),
            ("mixed", "string"),
            ("Date", "string"),
            ("tags", "array<string>"),
        ])
    );
    assert_eq!(sd["SerdeInfo"]["Parameters"]["mapping.a_b"], "a.b");
    assert_eq!(
        json_columns(&input["PartitionKeys"]),
        pairs(&[("kind", "string")])
    );

    let parsed = ddl(&sql, false);
    assert_eq!(
        parsed.columns,
        pairs(&[
            ("id", "DOUBLE"),
            ("a_b", "STRING"),
            (
                "nested",
                "STRUCT<`k` STRING, `list` ARRAY<BIGINT>, `extra` BOOLEAN>"
            ),
            ("mixed", "STRING"),
            ("date", "STRING"),
            ("tags", "ARRAY<STRING>"),
        ])
    );
    assert_eq!(parsed.serde_properties["mapping.a_b"], "a.b");
    let partitions: Vec<(String, String)> = parsed
        .partitions
        .iter()
        .map(|(_, spec, at)| (spec["kind"].clone(), at.clone()))
        .collect();
    assert_eq!(
        partitions,
        vec![
            (
                "a/b".to_owned(),
                format!("s3://{bucket}/data/events/kind=a%2Fb/")
            ),
            (
                "plain".to_owned(),
                format!("s3://{bucket}/data/events/kind=plain/")
            ),
        ]
    );

    // A value stored escaped cannot be projected: said, not guessed.
    let error = crawl_fails(&services, &[&location, "--projection"]);
    assert!(error.contains("stored escaped (`a%2Fb`)"), "{error}");
    // Nothing there, no such bucket: errors that say what to check.
    let error = crawl_fails(&services, &[&format!("s3://{bucket}/nothing")]);
    assert!(error.contains("no JSON Lines objects"), "{error}");
    let error = crawl_fails(&services, &["s3://no-such-bucket-for-the-crawl/x"]);
    assert!(error.contains("does not exist"), "{error}");
    let error = crawl_fails(&services, &[&location, "--table", "bad-name"]);
    assert!(error.contains("try `bad_name`"), "{error}");
}

#[test]
fn a_missing_target_is_explained() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["catalog", "crawl", "/nonexistent/pipeline.yaml"])
        .output_within_limit()
        .expect("run sluice");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("neither an s3:// URL nor a pipeline file"),
        "{stderr}"
    );
}
