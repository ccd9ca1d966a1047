//! `sluice query` over buckets written by full stock-market replays through
//! the real Kafka and S3 server: every answer equals the one computed from
//! the CSV itself.

mod common;

use common::OutputWithinLimit as _;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::sql::{assert_plan_reads_only, query_csv};
use common::{
    dataset, read_csv, run_ok, stock_pipeline, unique, write_pipeline, Running, Services,
};

/// The dataset's rows: `Index`, `Date`, ..., `CloseUSD` (the 9th column).
struct Dataset {
    rows: Vec<Vec<String>>,
}

const INDEX: usize = 0;
const DATE: usize = 1;
const CLOSE_USD: usize = 8;

impl Dataset {
    fn load() -> Dataset {
        let (header, rows) = read_csv(&dataset());
        assert_eq!(header[CLOSE_USD], "CloseUSD");
        assert_eq!(rows.len(), 104_224);
        Dataset { rows }
    }

    fn close_usd(row: &[String]) -> f64 {
        row[CLOSE_USD].parse().expect("CloseUSD is a number")
    }

    /// Per index symbol: (rows, average CloseUSD).
    fn by_index(&self) -> BTreeMap<String, (usize, f64)> {
        let mut sums: BTreeMap<String, (usize, f64)> = BTreeMap::new();
        for row in &self.rows {
            let entry = sums.entry(row[INDEX].clone()).or_default();
            entry.0 += 1;
            entry.1 += Dataset::close_usd(row);
        }
        sums.into_iter()
            .map(|(index, (n, sum))| (index, (n, sum / n as f64)))
            .collect()
    }
}

/// Runs the full replay of `pipeline_text` (a fresh topic and bucket).
fn replay(services: &Services, dir: &Path, pipeline_text: &str) -> std::path::PathBuf {
    let pipeline = write_pipeline(dir, pipeline_text);
    let started = Instant::now();
    let output = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("records sunk         104224"),
        "summary:\n{summary}"
    );
    eprintln!("replay took {:.1?}", started.elapsed());
    pipeline
}

/// The one value of a one-row, one-column answer.
fn scalar(services: &Services, args: &[&str], sql: &str) -> String {
    let (_, rows) = query_csv(services, args, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    assert_eq!(rows[0].len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone()
}

/// `sluice query` that must fail: its stderr.
fn query_fails(services: &Services, args: &[&str], sql: &str) -> String {
    let output = services
        .sluice()
        .arg("query")
        .arg(sql)
        .args(args)
        .output_within_limit()
        .expect("run sluice query");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{sql}: {stderr}");
    assert!(output.stdout.is_empty(), "{sql}: nothing on stdout");
    stderr
}

fn assert_close(actual: &str, expected: f64, what: &str) {
    let actual: f64 = actual
        .parse()
        .unwrap_or_else(|_| panic!("{what}: `{actual}` is not a number"));
    let tolerance = 1e-9 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} but the CSV gives {expected}"
    );
}

/// The answers every layout must give, whatever its partition columns:
/// the table is `t` in `args`.
fn check_common_answers(services: &Services, args: &[&str], data: &Dataset) {
    // The tutorial's queries.
    assert_eq!(scalar(services, args, "SELECT COUNT(*) FROM t"), "104224");
    let max_date = data.rows.iter().map(|r| &r[DATE]).max().expect("rows");
    assert_eq!(
        &scalar(services, args, "SELECT MAX(\"Date\") FROM t"),
        max_date
    );

    // GROUP BY the index symbol, with COUNT and AVG.
    let (header, rows) = query_csv(
        services,
        args,
        "SELECT \"Index\", COUNT(*) AS n, AVG(\"CloseUSD\") AS avg_usd FROM t GROUP BY \"Index\" ORDER BY \"Index\"",
    );
    assert_eq!(header, ["Index", "n", "avg_usd"]);
    let expected = data.by_index();
    assert_eq!(
        rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        expected.keys().cloned().collect::<Vec<_>>()
    );
    for row in &rows {
        let (n, avg) = expected[&row[0]];
        assert_eq!(row[1], n.to_string(), "rows of {}", row[0]);
        assert_close(&row[2], avg, &format!("AVG(CloseUSD) of {}", row[0]));
    }

    // A filter on data columns.
    let expected = data
        .rows
        .iter()
        .filter(|r| Dataset::close_usd(r) > 10_000.0 && r[DATE].as_str() >= "2020-01-01")
        .count();
    assert_eq!(
        scalar(
            services,
            args,
            "SELECT COUNT(*) FROM t WHERE \"CloseUSD\" > 10000 AND \"Date\" >= '2020-01-01'"
        ),
        expected.to_string()
    );

    // ORDER BY + LIMIT.
    let mut sorted: Vec<&Vec<String>> = data.rows.iter().collect();
    sorted.sort_by(|a, b| {
        Dataset::close_usd(b)
            .total_cmp(&Dataset::close_usd(a))
            .then_with(|| a[INDEX].cmp(&b[INDEX]))
            .then_with(|| a[DATE].cmp(&b[DATE]))
    });
    let (_, rows) = query_csv(
        services,
        args,
        "SELECT \"Index\", \"Date\", \"CloseUSD\" FROM t ORDER BY \"CloseUSD\" DESC, \"Index\", \"Date\" LIMIT 5",
    );
    assert_eq!(rows.len(), 5);
    for (row, expected) in rows.iter().zip(&sorted) {
        assert_eq!(
            (&row[0], &row[1]),
            (&expected[INDEX], &expected[DATE]),
            "{rows:?}"
        );
        assert_close(&row[2], Dataset::close_usd(expected), "CloseUSD");
    }
}

/// The queries answered by both `sluice query` and DuckDB.
const CROSS_CHECKED: &[&str] = &[
    "SELECT COUNT(*) FROM t",
    "SELECT MAX(\"Date\") FROM t",
    "SELECT \"Index\", COUNT(*) AS n, AVG(\"CloseUSD\") AS avg_usd FROM t GROUP BY \"Index\" ORDER BY \"Index\"",
    "SELECT COUNT(*) FROM t WHERE \"CloseUSD\" > 10000 AND \"Date\" >= '2020-01-01'",
    "SELECT \"Index\", \"Date\", \"CloseUSD\" FROM t ORDER BY \"CloseUSD\" DESC, \"Index\", \"Date\" LIMIT 5",
    "SELECT \"Index\", MIN(\"Low\"), MAX(\"High\"), SUM(\"Volume\") FROM t WHERE \"Date\" BETWEEN '2000-01-01' AND '2000-12-31' GROUP BY \"Index\" ORDER BY \"Index\"",
];

/// A Python virtual environment with DuckDB from PyPI (made once, kept in
/// the target directory): its `python`.
fn duckdb_python() -> &'static Path {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("duckdb-venv");
        let python = venv.join("bin/python");
        let has_duckdb = |python: &Path| {
            std::process::Command::new(python)
                .args(["-c", "import duckdb"])
                .output_within_limit()
                .is_ok_and(|o| o.status.success())
        };
        if !has_duckdb(&python) {
            let output = std::process::Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .output_within_limit()
                .expect("python3 -m venv (is Python 3 installed?)");
            assert!(
                output.status.success(),
                "python3 -m venv: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let output = std::process::Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "duckdb>=1.1,<3"])
                .output_within_limit()
                .expect("pip install duckdb");
            assert!(
                output.status.success(),
                "pip install duckdb: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        python
    })
}

/// Downloads every object of `bucket` as it is (gzip stays gzip) into `dir`, keys as paths.
async fn download_bucket(services: &Services, bucket: &str, dir: &Path) -> usize {
    let client = services.s3().await;
    let mut token = None;
    let mut count = 0;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("list objects");
        for object in page.contents() {
            let key = object.key().expect("key");
            let body = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("get object")
                .body
                .collect()
                .await
                .expect("object body")
                .into_bytes();
            let path = dir.join(key);
            std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
            std::fs::write(&path, &body).expect("write object");
            count += 1;
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return count;
        }
    }
}

/// DuckDB's answers to `queries` over the JSON Lines objects under `dir`
/// as the table `t` (Hive partition columns from the paths when `hive`):
/// rows of cells as text, NULL as `None`.
fn duckdb_answers(dir: &Path, hive: bool, queries: &[&str]) -> Vec<Vec<Vec<Option<String>>>> {
    const SCRIPT: &str = r#"
import json, sys, duckdb
job = json.load(sys.stdin)
con = duckdb.connect()
glob = job["glob"].replace("'", "''")
hive = "true" if job["hive"] else "false"
con.execute(
    f"CREATE VIEW t AS SELECT * FROM read_json_auto('{glob}', "
    f"format = 'newline_delimited', hive_partitioning = {hive})"
)
answers = []
for query in job["queries"]:
    rows = con.execute(query).fetchall()
    answers.append([[None if v is None else str(v) for v in row] for row in rows])
json.dump(answers, sys.stdout)
"#;
    let job = serde_json::json!({
        "glob": format!("{}/**/*.json*", dir.display()),
        "hive": hive,
        "queries": queries,
    });
    let mut child = std::process::Command::new(duckdb_python())
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python with duckdb");
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin"),
        job.to_string().as_bytes(),
    )
    .expect("send the queries to duckdb");
    let output = child.wait_with_output().expect("duckdb answers");
    assert!(
        output.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("duckdb's answers as JSON")
}

/// Every query of `queries` answered by `sluice query` (table `t` in
/// `args`) equals DuckDB's answer over the bucket's objects, numbers to
/// within a relative 1e-9.
async fn cross_check_with_duckdb(
    services: &Services,
    args: &[&str],
    bucket: &str,
    hive: bool,
    queries: &[&str],
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = download_bucket(services, bucket, dir.path()).await;
    assert!(objects > 0, "objects in {bucket}");
    let started = Instant::now();
    let expected = duckdb_answers(dir.path(), hive, queries);
    eprintln!(
        "duckdb answered {} queries over {objects} objects in {:.1?}",
        queries.len(),
        started.elapsed()
    );
    for (sql, expected) in queries.iter().zip(expected) {
        let (_, rows) = query_csv(services, args, sql);
        assert_eq!(rows.len(), expected.len(), "{sql}: rows");
        for (row, expected_row) in rows.iter().zip(&expected) {
            assert_eq!(
                row.len(),
                expected_row.len(),
                "{sql}: {row:?} vs {expected_row:?}"
            );
            for (cell, expected_cell) in row.iter().zip(expected_row) {
                let expected_cell = expected_cell.clone().unwrap_or_default();
                match (cell.parse::<f64>(), expected_cell.parse::<f64>()) {
                    (Ok(a), Ok(b)) => assert!(
                        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                        "{sql}: sluice {row:?}, duckdb {expected_row:?}"
                    ),
                    _ => assert_eq!(
                        cell, &expected_cell,
                        "{sql}: sluice {row:?}, duckdb {expected_row:?}"
                    ),
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn field_partitioned_replay_answers_like_the_csv() {
    let services = Services::get();
    let data = Dataset::load();
    let name = unique("query-field");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = replay(
        &services,
        dir.path(),
        &stock_pipeline(
            &name,
            "  rate: max",
            "    partitioner: {type: field, field: Index, name: index}",
        ),
    );
    let table = format!("t=s3://{name}/topics/{name}/");
    let args = ["--table", table.as_str()];
    check_common_answers(&services, &args, &data);

    // The partition column: its groups are the symbols', a WHERE on it
    // reads only its folder.
    let (_, rows) = query_csv(
        &services,
        &args,
        "SELECT index, COUNT(*) AS n FROM t GROUP BY index ORDER BY index",
    );
    let expected: Vec<Vec<String>> = data
        .by_index()
        .into_iter()
        .map(|(index, (n, _))| vec![index, n.to_string()])
        .collect();
    assert_eq!(rows, expected);
    let nya: Vec<&Vec<String>> = data.rows.iter().filter(|r| r[INDEX] == "NYA").collect();
    let (_, rows) = query_csv(
        &services,
        &args,
        "SELECT COUNT(*), MIN(\"Date\"), MAX(\"Date\") FROM t WHERE index = 'NYA'",
    );
    assert_eq!(
        rows,
        [[
            nya.len().to_string(),
            nya.iter().map(|r| r[DATE].clone()).min().expect("NYA rows"),
            nya.iter().map(|r| r[DATE].clone()).max().expect("NYA rows"),
        ]]
    );
    assert_eq!(nya.len(), 13_947);
    let (_, plan) = query_csv(
        &services,
        &args,
        "EXPLAIN SELECT COUNT(*) FROM t WHERE index = 'NYA'",
    );
    assert_plan_reads_only(&plan, "index=NYA/", "index=HSI/");

    // The same table from the pipeline file: named after its topic.
    let pipeline_args = ["--pipeline", pipeline.to_str().expect("UTF-8 path")];
    assert_eq!(
        scalar(
            &services,
            &pipeline_args,
            &format!("SELECT COUNT(*) FROM \"{name}\" WHERE index = 'HSI'")
        ),
        "8492"
    );

    // The aligned table (the default) and JSON Lines.
    let output = run_ok(services.sluice().args([
        "query",
        "SELECT index, COUNT(*) AS n FROM t WHERE index IN ('HSI', 'NYA') GROUP BY index ORDER BY index",
        "--table",
        &table,
    ]));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "+-------+-------+\n\
         | index | n     |\n\
         +-------+-------+\n\
         | HSI   | 8492  |\n\
         | NYA   | 13947 |\n\
         +-------+-------+\n"
    );
    let output = run_ok(services.sluice().args([
        "query",
        "SELECT \"Index\", \"Date\", \"Volume\", \"CloseUSD\" FROM t WHERE index = 'HSI' ORDER BY \"Date\" LIMIT 1",
        "--table",
        &table,
        "--format",
        "json",
    ]));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "{\"Index\":\"HSI\",\"Date\":\"1986-12-31\",\"Volume\":0.0,\"CloseUSD\":333.87900637}\n"
    );

    // A reader that stops early (`| head -1`) ends the query quietly.
    let mut child = services
        .sluice()
        .args([
            "query",
            "SELECT * FROM t",
            "--format",
            "csv",
            "--table",
            &table,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sluice query");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut first,
    )
    .expect("the header line");
    assert_eq!(
        first,
        "Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD,index\n"
    );
    let output = child.wait_with_output().expect("sluice query exits");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    // Columns and their types, as inferred.
    let (_, rows) = query_csv(
        &services,
        &args,
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position",
    );
    let columns: Vec<String> = rows.iter().map(|r| format!("{} {}", r[0], r[1])).collect();
    assert_eq!(
        columns,
        [
            "Index Utf8",
            "Date Utf8",
            "Open Float64",
            "High Float64",
            "Low Float64",
            "Close Float64",
            "Adj Close Float64",
            "Volume Float64",
            "CloseUSD Float64",
            "index Utf8"
        ]
    );

    // Errors: DataFusion's for an unknown table or column, the bucket and
    // endpoint for S3.
    let stderr = query_fails(&services, &args, "SELECT COUNT(*) FROM nope");
    assert!(
        stderr.contains("table 'datafusion.public.nope' not found"),
        "{stderr}"
    );
    assert!(stderr.contains("the tables are t"), "{stderr}");
    let stderr = query_fails(&services, &args, "SELECT \"Nope\" FROM t");
    assert!(stderr.contains("Nope"), "{stderr}");
    assert!(
        stderr.contains("Index"),
        "valid columns are named: {stderr}"
    );
    let missing = unique("query-missing");
    let stderr = query_fails(
        &services,
        &["--table", &format!("t=s3://{missing}/topics/x/")],
        "SELECT 1",
    );
    assert!(
        stderr.contains(&format!("s3://{missing}/topics/x/")),
        "{stderr}"
    );
    assert!(stderr.contains(&services.s3_endpoint), "{stderr}");
    let port = common::free_port();
    let stderr = query_fails(
        &services,
        &[
            "--table",
            &table,
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
        ],
        "SELECT 1",
    );
    assert!(
        stderr.contains(&format!("s3://{name}/topics/{name}/")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("http://127.0.0.1:{port}")),
        "{stderr}"
    );
    let stderr = query_fails(&services, &args, "CREATE TABLE copy AS SELECT * FROM t");
    assert!(stderr.contains("read-only"), "{stderr}");

    // The same answers from an independent engine over the same objects.
    cross_check_with_duckdb(&services, &args, &name, false, CROSS_CHECKED).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_kafka_partitioned_replay_answers_like_the_csv() {
    let services = Services::get();
    let data = Dataset::load();
    let name = unique("query-gzip");
    let dir = tempfile::tempdir().expect("tempdir");
    replay(
        &services,
        dir.path(),
        &stock_pipeline(&name, "  rate: max", "    compression: gzip"),
    );
    let table = format!("t=s3://{name}/topics/{name}/");
    let args = ["--table", table.as_str()];
    check_common_answers(&services, &args, &data);

    // Records of one symbol share a Kafka partition (the key is the symbol):
    // a partition's count is the sum of its symbols'.
    let (_, rows) = query_csv(
        &services,
        &args,
        "SELECT \"Index\", MIN(partition), COUNT(DISTINCT partition) FROM t GROUP BY \"Index\" ORDER BY \"Index\"",
    );
    let by_index = data.by_index();
    assert_eq!(rows.len(), by_index.len());
    let mut expected: BTreeMap<i64, usize> = BTreeMap::new();
    for row in &rows {
        assert_eq!(row[2], "1", "{} is in one partition", row[0]);
        let partition: i64 = row[1].parse().expect("an integer partition column");
        assert!((0..6).contains(&partition), "{row:?}");
        *expected.entry(partition).or_default() += by_index[&row[0]].0;
    }
    for (partition, n) in expected {
        assert_eq!(
            scalar(
                &services,
                &args,
                &format!("SELECT COUNT(*) FROM t WHERE partition = {partition}")
            ),
            n.to_string(),
            "partition {partition}"
        );
    }
    let (_, plan) = query_csv(
        &services,
        &args,
        "EXPLAIN SELECT COUNT(*) FROM t WHERE partition = 3",
    );
    let plan: String = plan
        .iter()
        .map(|r| r.join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !plan.contains("partition=0/") && !plan.contains("partition=5/"),
        "other partitions are pruned:\n{plan}"
    );

    // The same answers from an independent engine over the same (gzip) objects.
    let mut queries = CROSS_CHECKED.to_vec();
    queries.push("SELECT partition, COUNT(*) AS n FROM t GROUP BY partition ORDER BY partition");
    queries.push("SELECT COUNT(*), MAX(\"Date\") FROM t WHERE partition = 3");
    cross_check_with_duckdb(&services, &args, &name, true, &queries).await;
}

#[test]
fn count_grows_while_a_slow_replay_runs() {
    let services = Services::get();
    let name = unique("query-growing");
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = 12_000;
    let pipeline = write_pipeline(
        dir.path(),
        &stock_pipeline(
            &name,
            &format!("  rate: 1000/s\n  limit: {rows}"),
            "    flush_size: 500\n    rotate_interval: 1s",
        )
        .replace("    flush_size: 10000\n", ""),
    );
    let child = services
        .sluice()
        .arg("run")
        .arg(&pipeline)
        .arg("--no-progress")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start sluice run");
    let mut running = Running(Some(child));
    let table = format!("t=s3://{name}/topics/{name}/");
    let mut counts: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let exited = running
            .0
            .as_mut()
            .and_then(|c| c.try_wait().expect("wait"))
            .is_some();
        let output = services
            .sluice()
            .args([
                "query",
                "SELECT COUNT(*) FROM t",
                "--format",
                "csv",
                "--table",
                &table,
            ])
            .output_within_limit()
            .expect("sluice query");
        if output.status.success() {
            let text = String::from_utf8_lossy(&output.stdout);
            let count: u64 = text
                .lines()
                .nth(1)
                .and_then(|l| l.parse().ok())
                .unwrap_or_else(|| panic!("a count: {text}"));
            if counts.last() != Some(&count) {
                counts.push(count);
            }
        }
        if exited || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = running
        .0
        .take()
        .expect("child")
        .wait()
        .expect("wait for sluice run");
    assert!(status.success(), "sluice run: {status}");
    assert_eq!(
        scalar(&services, &["--table", &table], "SELECT COUNT(*) FROM t"),
        rows.to_string()
    );
    eprintln!("counts seen while running: {counts:?}");
    assert!(
        counts.windows(2).all(|w| w[0] < w[1]),
        "counts only grow: {counts:?}"
    );
    let between = counts.iter().filter(|&&c| c > 0 && c < rows).count();
    assert!(
        between >= 3,
        "at least three counts between none and all while it ran: {counts:?}"
    );
}
