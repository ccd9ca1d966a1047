//! JSON Lines and Parquet from the same replay give the same answers.
//!
//! One full replay of the stock-market CSV through the real Kafka broker,
//! with the shipped pipeline's transforms (snake_case columns, `volume` an
//! integer, `ingested_at`), lands in two buckets at once: a JSON sink and a
//! `format: parquet` sink, both partitioned by the `index` field. Then:
//! the crawl of the Parquet prefix is asserted exactly (columns, types,
//! partition key, the Parquet SerDe, and DDL that parses); and one set of
//! queries — COUNT(*), MAX(date), a GROUP BY with counts and averages, a
//! filter, a partition-pruned query, a SUM of the integer column — gives the
//! same answers over the JSON table, the Parquet table, and the tables of
//! the crawl results (`sluice query --crawl`), each equal to the answer
//! computed from the CSV itself. The Parquet table is also registered in the
//! local Glue API (table and partitions stored as Parquet).

mod common;

use common::OutputWithinLimit as _;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use common::sql::{assert_plan_reads_only, crawl, json_columns, pairs, query_csv};
use common::{dataset, read_csv, run_ok, unique, write_pipeline, Services};
use serde_json::{json, Value};
use sqlparser::ast::{HiveIOFormat, HiveRowFormat, Statement};
use sqlparser::dialect::DatabricksDialect;
use sqlparser::parser::Parser;

/// The shipped pipeline (its source and transforms) with two sinks: JSON
/// Lines into `<name>-json`, Parquet into `<name>-pq`, both by `index`.
fn two_sink_pipeline(name: &str) -> String {
    let shipped = std::fs::read_to_string(common::repo_root().join("pipelines/stock-market.yaml"))
        .expect("the shipped pipeline");
    let (head, _) = shipped
        .split_once("\nsinks:")
        .expect("the shipped pipeline has sinks");
    let head = head
        .replace("name: stock-market", &format!("name: {name}"))
        .replace(
            "../data/indexProcessed.csv",
            &dataset().display().to_string(),
        );
    assert!(head.contains("type: replace_field") && head.contains("int64"));
    format!(
        r#"{head}
sinks:
  json:
    type: s3_json
    bucket: {name}-json
    endpoint: ${{env:S3_ENDPOINT}}
    create_bucket: true
    flush_size: 10000
    partitioner: {{type: field, field: index, name: index}}
  parquet:
    type: s3_json
    bucket: {name}-pq
    endpoint: ${{env:S3_ENDPOINT}}
    create_bucket: true
    flush_size: 10000
    partitioner: {{type: field, field: index, name: index}}
    format: parquet
    parquet: {{row_group_rows: 4000, compression: zstd}}
"#
    )
}

/// The CSV's rows as the transforms make them.
struct Row {
    index: String,
    date: String,
    close_usd: f64,
    volume: i64,
}

fn rows() -> Vec<Row> {
    let (header, rows) = read_csv(&dataset());
    assert_eq!(header[7], "Volume");
    assert_eq!(header[8], "CloseUSD");
    let rows: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            index: r[0].clone(),
            date: r[1].clone(),
            close_usd: r[8].parse().expect("CloseUSD is a number"),
            volume: r[7].parse::<f64>().expect("Volume is a number") as i64,
        })
        .collect();
    assert_eq!(rows.len(), 104_224);
    rows
}

/// The queries, `{t}` standing for the table, with their answers computed
/// from the CSV (cells as `sluice query --format csv` prints them).
fn queries_and_answers(rows: &[Row]) -> Vec<(&'static str, Vec<Vec<String>>)> {
    let count = |filter: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| filter(r)).count();
    let mut by_index: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for row in rows {
        let entry = by_index.entry(&row.index).or_default();
        entry.0 += 1;
        entry.1 += row.close_usd;
    }
    let mut volume_2000: BTreeMap<&str, i64> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.date.starts_with("2000-")) {
        *volume_2000.entry(&row.index).or_default() += row.volume;
    }
    let nya: Vec<&Row> = rows.iter().filter(|r| r.index == "NYA").collect();
    let dates = |list: &[&Row]| {
        let mut dates: Vec<&str> = list.iter().map(|r| r.date.as_str()).collect();
        dates.sort_unstable();
        (dates[0].to_owned(), dates[dates.len() - 1].to_owned())
    };
    let all: Vec<&Row> = rows.iter().collect();
    let (nya_first, nya_last) = dates(&nya);
    vec![
        (
            "SELECT COUNT(*) AS n FROM {t}",
            vec![vec![rows.len().to_string()]],
        ),
        ("SELECT MAX(date) AS latest FROM {t}", vec![vec![dates(&all).1]]),
        (
            "SELECT index, COUNT(*) AS days, AVG(close_usd) AS avg_close_usd FROM {t} GROUP BY index ORDER BY index",
            by_index
                .iter()
                .map(|(index, (n, sum))| {
                    vec![
                        (*index).to_owned(),
                        n.to_string(),
                        (sum / *n as f64).to_string(),
                    ]
                })
                .collect(),
        ),
        (
            "SELECT COUNT(*) AS n FROM {t} WHERE close_usd > 10000 AND date >= '2020-01-01'",
            vec![vec![count(&|r| r.close_usd > 10_000.0 && r.date.as_str() >= "2020-01-01")
                .to_string()]],
        ),
        (
            "SELECT COUNT(*) AS n, MIN(date) AS first, MAX(date) AS last FROM {t} WHERE index = 'NYA'",
            vec![vec![nya.len().to_string(), nya_first, nya_last]],
        ),
        (
            "SELECT index, SUM(volume) AS volume FROM {t} WHERE date BETWEEN '2000-01-01' AND '2000-12-31' GROUP BY index ORDER BY index",
            volume_2000
                .iter()
                .map(|(index, sum)| vec![(*index).to_owned(), sum.to_string()])
                .collect(),
        ),
    ]
}

/// Whether two answers are the same: every cell equal, but fractions to
/// within a relative 1e-9 (an average sums in whatever order the files are
/// read).
fn same(actual: &[Vec<String>], expected: &[Vec<String>]) -> bool {
    actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(a, e)| {
            a.len() == e.len()
                && a.iter().zip(e).all(|(a, e)| {
                    if a == e {
                        return true;
                    }
                    let fraction = |s: &str| s.contains('.') || s.contains('e');
                    match (a.parse::<f64>(), e.parse::<f64>()) {
                        (Ok(x), Ok(y)) if fraction(a) || fraction(e) => {
                            (x - y).abs() <= 1e-9 * y.abs().max(1.0)
                        }
                        _ => false,
                    }
                })
        })
}

/// Every query over the table `table` (reached with `args`) answers as
/// the CSV does; returns the answers.
fn check_answers(
    services: &Services,
    what: &str,
    args: &[&str],
    table: &str,
    expected: &[(&str, Vec<Vec<String>>)],
) -> Vec<Vec<Vec<String>>> {
    expected
        .iter()
        .map(|(sql, answer)| {
            let sql = sql.replace("{t}", table);
            let (_, rows) = query_csv(services, args, &sql);
            assert!(
                same(&rows, answer),
                "{what}: {sql}\n  sluice: {rows:?}\n  the CSV: {answer:?}"
            );
            rows
        })
        .collect()
}

const SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
const INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

/// The crawl of the Parquet prefix, asserted; the path of its Glue JSON.
fn crawl_parquet(services: &Services, location: &str, table: &str, dir: &Path) -> String {
    let started = Instant::now();
    let (stdout, stderr) = crawl(
        services,
        &[location, "--format", "glue", "--sample", "1000"],
    );
    eprintln!("parquet crawl took {:.2?}", started.elapsed());
    assert!(stderr.contains("Parquet objects"), "{stderr}");
    assert!(
        stderr.contains("in 13 partitions; read the footers of"),
        "{stderr}"
    );
    assert!(stderr.contains(", 104224 rows"), "{stderr}");
    assert!(
        stderr.contains("Parquet column `index` is left out of the table"),
        "{stderr}"
    );
    let glue: Value = serde_json::from_str(&stdout).expect("the Glue JSON");
    let input = &glue["TableInput"];
    assert_eq!(input["Name"], table);
    let sd = &input["StorageDescriptor"];
    assert_eq!(
        json_columns(&sd["Columns"]),
        pairs(&[
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
        pairs(&[("index", "string")])
    );
    assert_eq!(sd["Location"], location);
    assert_eq!(sd["InputFormat"], INPUT_FORMAT);
    assert_eq!(sd["OutputFormat"], OUTPUT_FORMAT);
    assert_eq!(sd["Compressed"], false);
    assert_eq!(
        sd["SerdeInfo"],
        json!({"SerializationLibrary": SERDE, "Parameters": {"serialization.format": "1"}})
    );
    assert_eq!(input["Parameters"]["classification"], "parquet");
    assert_eq!(input["Parameters"]["recordCount"], "104224");

    // The Athena DDL parses, with the Parquet SerDe and formats.
    let (sql, _) = crawl(services, &[location, "--format", "ddl", "--sample", "3"]);
    let statements = Parser::parse_sql(&DatabricksDialect {}, &sql)
        .unwrap_or_else(|e| panic!("the DDL does not parse: {e}\n{sql}"));
    assert_eq!(statements.len(), 1 + 13, "CREATE and 13 partitions:\n{sql}");
    let Statement::CreateTable(create) = &statements[0] else {
        panic!("CREATE TABLE first:\n{sql}")
    };
    let formats = create.hive_formats.as_ref().expect("Hive formats");
    assert!(
        matches!(&formats.row_format, Some(HiveRowFormat::SERDE { class }) if class == SERDE),
        "{sql}"
    );
    let Some(HiveIOFormat::IOF {
        input_format,
        output_format,
    }) = &formats.storage
    else {
        panic!("STORED AS INPUTFORMAT … OUTPUTFORMAT:\n{sql}")
    };
    assert_eq!(input_format.to_string(), format!("'{INPUT_FORMAT}'"));
    assert_eq!(output_format.to_string(), format!("'{OUTPUT_FORMAT}'"));
    assert!(
        sql.contains("'classification' = 'parquet'") && !sql.contains("mapping."),
        "{sql}"
    );

    let path = dir.join("parquet-crawl.json");
    std::fs::write(&path, stdout).expect("write the crawl result");
    path.display().to_string()
}

/// `crawl --register` of the Parquet table into the local Glue API: the
/// table and each of its 13 partitions are stored as Parquet.
async fn register_parquet(services: &Services, location: &str, name: &str) {
    let endpoint = common::glue::glue_endpoint();
    let database = name.replace('-', "_");
    let (stdout, _) = crawl(
        services,
        &[
            location,
            "--register",
            "--database",
            &database,
            "--glue-endpoint",
            &endpoint,
        ],
    );
    assert!(
        stdout.contains("13 partitions in 1 BatchCreatePartition call: 13 new"),
        "{stdout}"
    );
    let glue = common::glue::glue_client(services, &endpoint);
    let table = glue
        .get_table()
        .database_name(&database)
        .name(name.replace('-', "_"))
        .send()
        .await
        .expect("the registered table")
        .table
        .expect("a table");
    let parquet = |sd: Option<&aws_sdk_glue::types::StorageDescriptor>| {
        let sd = sd.expect("a storage descriptor");
        (
            sd.serde_info().and_then(|s| s.serialization_library()) == Some(SERDE)
                && sd.input_format() == Some(INPUT_FORMAT)
                && sd.output_format() == Some(OUTPUT_FORMAT),
            sd.location().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(
        parquet(table.storage_descriptor()),
        (true, location.to_owned())
    );
    assert_eq!(
        table
            .parameters()
            .and_then(|p| p.get("classification"))
            .map(String::as_str),
        Some("parquet")
    );
    let partitions = glue
        .get_partitions()
        .database_name(&database)
        .table_name(name.replace('-', "_"))
        .send()
        .await
        .expect("the registered partitions");
    assert_eq!(partitions.partitions().len(), 13);
    for partition in partitions.partitions() {
        let (is_parquet, at) = parquet(partition.storage_descriptor());
        assert!(is_parquet, "{partition:?}");
        assert_eq!(at, format!("{location}index={}/", partition.values()[0]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_and_parquet_of_one_replay_answer_alike() {
    let services = Services::get();
    let name = unique("pq");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(dir.path(), &two_sink_pipeline(&name));
    let started = Instant::now();
    let output = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&output.stdout);
    eprintln!("replay into both sinks took {:.1?}", started.elapsed());
    assert!(
        summary.matches("104224").count() >= 2,
        "both sinks sank every record:\n{summary}"
    );

    let json_location = format!("s3://{name}-json/topics/{name}/");
    let parquet_location = format!("s3://{name}-pq/topics/{name}/");
    let table = name.replace('-', "_");
    let crawl_file = crawl_parquet(&services, &parquet_location, &table, dir.path());
    register_parquet(&services, &parquet_location, &name).await;

    let rows = rows();
    let expected = queries_and_answers(&rows);
    let json_table = format!("t={json_location}");
    let parquet_table = format!("t={parquet_location}");
    let json = check_answers(
        &services,
        "JSON table",
        &["--table", &json_table],
        "t",
        &expected,
    );
    let parquet = check_answers(
        &services,
        "Parquet table",
        &["--table", &parquet_table],
        "t",
        &expected,
    );
    let crawled = check_answers(
        &services,
        "Parquet crawl",
        &["--crawl", &crawl_file],
        &table,
        &expected,
    );
    for (i, (sql, _)) in expected.iter().enumerate() {
        assert!(
            same(&parquet[i], &json[i]) && same(&crawled[i], &json[i]),
            "{sql}: JSON {:?}, Parquet {:?}, crawl {:?}",
            json[i],
            parquet[i],
            crawled[i]
        );
    }

    // The Parquet table's columns: `index` once, from the folders; the
    // crawl's types (volume bigint → Int64).
    for (args, name) in [
        (vec!["--table", parquet_table.as_str()], "t"),
        (vec!["--crawl", crawl_file.as_str()], table.as_str()),
    ] {
        let (_, columns) = query_csv(
            &services,
            &args,
            &format!(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{name}' ORDER BY ordinal_position"
            ),
        );
        let columns: Vec<String> = columns.iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            columns,
            [
                "date Utf8",
                "open Float64",
                "high Float64",
                "low Float64",
                "close Float64",
                "adj_close Float64",
                "volume Int64",
                "close_usd Float64",
                "ingested_at Utf8",
                "index Utf8"
            ],
            "{args:?}"
        );
        // A WHERE on the partition column reads its folder only (a SUM,
        // which the footers' statistics cannot answer as they do COUNT(*)).
        let (_, plan) = query_csv(
            &services,
            &args,
            &format!("EXPLAIN SELECT SUM(close_usd) FROM {name} WHERE index = 'NYA'"),
        );
        assert_plan_reads_only(&plan, "index=NYA/", "index=HSI/");
    }

    // The JSON prefix's crawl result is a table for `--crawl` too.
    let (stdout, _) = crawl(&services, &[&json_location, "--format", "glue"]);
    let json_crawl = dir.path().join("json-crawl.json");
    std::fs::write(&json_crawl, stdout).expect("write the crawl result");
    let json_crawl = json_crawl.display().to_string();
    check_answers(
        &services,
        "JSON crawl",
        &["--crawl", &json_crawl],
        &table,
        &expected,
    );
    // Both crawl results at once are two tables of one name: refused.
    let output = services
        .sluice()
        .args([
            "query",
            "SELECT 1",
            "--crawl",
            &crawl_file,
            "--crawl",
            &json_crawl,
        ])
        .output_within_limit()
        .expect("run sluice query");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("two tables are named `{table}`")),
        "{stderr}"
    );
}
