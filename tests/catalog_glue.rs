//! `sluice catalog crawl --register` against the real Kafka broker and S3
//! server and a Glue API server (moto's, started by `scripts/services.sh up`
//! as GLUE_ENDPOINT): a replay of the stock CSV with the field partitioner is
//! crawled and registered, then read back with the Glue API (aws-sdk-glue)
//! from this test: the table's columns, partition keys, location and SerDe
//! are what the crawl prints, and every partition folder of the bucket is a
//! partition with its values and location. A second registration adds no
//! partition and updates the table; after more data lands in a new partition,
//! registration adds exactly that one. A hand-made bucket of 250 partitions
//! goes in three BatchCreatePartition calls; a name clash with another
//! table and an unreachable endpoint are refused with what to do.

mod common;

use common::OutputWithinLimit as _;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::Instant;

use common::glue::{columns, folders, glue_client, glue_endpoint, map, partitions};
use common::sql::json_columns;
use common::{read_csv, run_ok, stock_pipeline, unique, write_pipeline, Services};
use serde_json::Value;

/// `sluice catalog crawl <args>` with GLUE_ENDPOINT set.
fn crawl_output(services: &Services, glue: &str, args: &[&str]) -> Output {
    let started = Instant::now();
    let output = services
        .sluice()
        .env("GLUE_ENDPOINT", glue)
        .args(["catalog", "crawl"])
        .args(args)
        .output_within_limit()
        .expect("run sluice");
    eprintln!(
        "crawl {args:?} took {:.2}s",
        started.elapsed().as_secs_f64()
    );
    output
}

/// The same, failing the test unless it exits 0: (stdout, stderr).
fn crawl(services: &Services, glue: &str, args: &[&str]) -> (String, String) {
    let output = crawl_output(services, glue, args);
    assert!(
        output.status.success(),
        "crawl {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

/// The same, expected to fail: its stderr.
fn crawl_fails(services: &Services, glue: &str, args: &[&str]) -> String {
    let output = crawl_output(services, glue, args);
    assert!(
        !output.status.success(),
        "crawl {args:?} should fail; stdout:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn replay(services: &Services, text: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(dir.path(), text);
    let started = Instant::now();
    run_ok(services.sluice().arg("run").arg(&pipeline));
    eprintln!("replay took {:.2}s", started.elapsed().as_secs_f64());
}

fn json_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
        .collect()
}

/// Checks that the registered table is the one `--format glue` printed.
async fn assert_table_is(
    glue: &aws_sdk_glue::Client,
    database: &str,
    table: &str,
    printed: &Value,
) -> aws_sdk_glue::types::StorageDescriptor {
    let got = glue
        .get_table()
        .database_name(database)
        .name(table)
        .send()
        .await
        .expect("GetTable")
        .table
        .expect("a table");
    let input = &printed["TableInput"];
    assert_eq!(got.name(), table);
    assert_eq!(got.database_name(), Some(database));
    assert_eq!(got.table_type(), Some("EXTERNAL_TABLE"));
    assert_eq!(map(got.parameters()), json_map(&input["Parameters"]));
    assert_eq!(
        columns(got.partition_keys()),
        json_columns(&input["PartitionKeys"])
    );
    let sd = got.storage_descriptor().expect("a storage descriptor");
    let want = &input["StorageDescriptor"];
    assert_eq!(columns(sd.columns()), json_columns(&want["Columns"]));
    assert_eq!(sd.location(), want["Location"].as_str());
    assert_eq!(sd.input_format(), want["InputFormat"].as_str());
    assert_eq!(sd.output_format(), want["OutputFormat"].as_str());
    assert_eq!(Some(sd.compressed()), want["Compressed"].as_bool());
    let serde = sd.serde_info().expect("SerDe info");
    assert_eq!(
        serde.serialization_library(),
        want["SerdeInfo"]["SerializationLibrary"].as_str()
    );
    assert_eq!(
        map(serde.parameters()),
        json_map(&want["SerdeInfo"]["Parameters"])
    );
    sd.clone()
}

/// Every partition is a folder of the bucket, with its value and location,
/// and the table's columns and SerDe.
fn assert_partitions_are_folders(
    partitions: &BTreeMap<Vec<String>, aws_sdk_glue::types::StorageDescriptor>,
    folders: &BTreeSet<String>,
    location: &str,
    table_sd: &aws_sdk_glue::types::StorageDescriptor,
) {
    let registered: BTreeSet<String> = partitions
        .iter()
        .map(|(values, sd)| {
            let [value] = values.as_slice() else {
                panic!("one value per partition, not {values:?}")
            };
            let folder = format!("index={value}/");
            assert_eq!(sd.location(), Some(format!("{location}{folder}").as_str()));
            assert_eq!(columns(sd.columns()), columns(table_sd.columns()));
            assert_eq!(sd.serde_info(), table_sd.serde_info());
            assert_eq!(sd.input_format(), table_sd.input_format());
            folder
        })
        .collect();
    assert_eq!(&registered, folders);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_partitioned_replay_is_registered_and_kept_current() {
    let started = Instant::now();
    let services = Services::get();
    let endpoint = glue_endpoint();
    let glue = glue_client(&services, &endpoint);
    let name = unique("glue-field");
    let database = unique("sluice_test").replace('-', "_");
    let table = name.replace('-', "_");
    let partitioner = "    partitioner: {type: field, field: Index, name: index}";
    let source = |limit: u32| format!("  rate: max\n  order: random\n  seed: 3\n  limit: {limit}");
    replay(
        &services,
        &stock_pipeline(&name, &source(3000), partitioner),
    );
    let root = format!("topics/{name}/");
    let location = format!("s3://{name}/{root}");
    let folders_before = folders(&services, &name, &root).await;
    // 3000 random rows of 104,224: every index (the smallest has 2,346 rows) is there.
    let (_, rows) = read_csv(&common::dataset());
    let indexes: BTreeSet<String> = rows.iter().map(|r| format!("index={}/", r[0])).collect();
    assert_eq!(indexes.len(), 13);
    assert_eq!(folders_before, indexes);

    // Create: the database, the table, 13 partitions in one call.
    let (stdout, stderr) = crawl(
        &services,
        &endpoint,
        &[&location, "--register", "--database", &database],
    );
    let at = format!("Glue at {endpoint}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("{at}: database `{database}` created"),
        "{stdout}\n{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{at}: table `{database}`.`{table}` created (CreateTable): 9 columns, partitioned by `index` string, location {location}"
        )),
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        format!("{at}: 13 partitions in 1 BatchCreatePartition call: 13 new, 0 already registered")
    );
    assert_eq!(lines.len(), 3, "{stdout}");

    // Read back with the Glue API: the table `--format glue` prints.
    let (printed, stderr) = crawl(
        &services,
        &endpoint,
        &[&location, "--format", "glue", "--database", &database],
    );
    assert!(
        !stderr.contains("Glue at"),
        "no registration without --register: {stderr}"
    );
    let printed: Value = serde_json::from_str(&printed).expect("glue JSON");
    let table_sd = assert_table_is(&glue, &database, &table, &printed).await;
    assert_eq!(
        columns(table_sd.columns()),
        [
            ("index_data", "string"),
            ("Date", "string"),
            ("Open", "double"),
            ("High", "double"),
            ("Low", "double"),
            ("Close", "double"),
            ("Adj Close", "double"),
            ("Volume", "double"),
            ("CloseUSD", "double"),
        ]
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
    );
    assert_eq!(table_sd.location(), Some(location.as_str()));
    let serde = table_sd.serde_info().expect("SerDe");
    assert_eq!(
        serde.serialization_library(),
        Some("org.openx.data.jsonserde.JsonSerDe")
    );
    assert_eq!(
        map(serde.parameters())
            .get("mapping.index_data")
            .map(String::as_str),
        Some("index")
    );
    let registered = partitions(&glue, &database, &table).await;
    assert_eq!(registered.len(), 13);
    assert_partitions_are_folders(&registered, &folders_before, &location, &table_sd);

    // Again: nothing new; the table is updated. With --format glue the
    // table JSON stays alone on stdout and the report goes to stderr.
    let (stdout, stderr) = crawl(
        &services,
        &endpoint,
        &[
            &location,
            "--register",
            "--database",
            &database,
            "--format",
            "glue",
        ],
    );
    let again: Value = serde_json::from_str(&stdout).expect("stdout is the glue JSON alone");
    assert_eq!(again, printed);
    assert!(
        stderr.contains(&format!("{at}: database `{database}` exists")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{at}: table `{database}`.`{table}` existed and was updated (UpdateTable): columns unchanged;"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{at}: 13 partitions in 1 BatchCreatePartition call: 0 new, 13 already registered"
        )),
        "{stderr}"
    );
    assert_eq!(partitions(&glue, &database, &table).await, registered);

    // More data, in a new partition: the same pipeline resumes (40 more
    // records) and its sink writes them all under index=ZZZ.
    let with_zzz = format!(
        "{partitioner}\n    transforms:\n      - {{type: insert_field, static_field: Index, static_value: ZZZ}}"
    );
    replay(&services, &stock_pipeline(&name, &source(3040), &with_zzz));
    let folders_after = folders(&services, &name, &root).await;
    let mut expected = folders_before.clone();
    expected.insert("index=ZZZ/".to_owned());
    assert_eq!(folders_after, expected);
    let (stdout, _) = crawl(
        &services,
        &endpoint,
        &[&location, "--register", "--database", &database],
    );
    assert!(
        stdout.contains("existed and was updated (UpdateTable): columns unchanged;"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{at}: 14 partitions in 1 BatchCreatePartition call: 1 new, 13 already registered"
        )),
        "{stdout}"
    );
    let after = partitions(&glue, &database, &table).await;
    assert_eq!(after.len(), 14);
    assert_partitions_are_folders(&after, &folders_after, &location, &table_sd);
    for (values, sd) in &registered {
        assert_eq!(after.get(values), Some(sd), "an earlier partition changed");
    }
    let (printed, _) = crawl(
        &services,
        &endpoint,
        &[&location, "--format", "glue", "--database", &database],
    );
    let printed: Value = serde_json::from_str(&printed).expect("glue JSON");
    assert_eq!(printed["TableInput"]["Parameters"]["recordCount"], "3040");
    assert_table_is(&glue, &database, &table, &printed).await;

    // A crawl of another location under this table's name does not
    // overwrite it.
    let error = crawl_fails(
        &services,
        &endpoint,
        &[
            &location.replace(&root, &format!("{root}index=NYA/")),
            "--register",
            "--database",
            &database,
            "--table",
            &table,
        ],
    );
    assert!(
        error.contains(&format!(
            "{at}: `{database}`.`{table}` exists with location `{location}`, not {location}index=NYA/: it is another table; \
             delete it first (aws glue delete-table), or register the crawl under another name (--table NAME, --database NAME)"
        )),
        "{error}"
    );
    eprintln!(
        "the field-partitioned test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_partitions_go_in_batches_of_100() {
    let services = Services::get();
    let endpoint = glue_endpoint();
    let glue = glue_client(&services, &endpoint);
    let bucket = unique("glue-many");
    let database = unique("sluice_test").replace('-', "_");
    let client = services.s3().await;
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    for n in 0..250 {
        client
            .put_object()
            .bucket(&bucket)
            .key(format!("events/day={n}/part-0.json"))
            .body(
                format!("{{\"n\": {n}, \"what\": \"x\"}}\n")
                    .into_bytes()
                    .into(),
            )
            .send()
            .await
            .expect("put object");
    }
    let location = format!("s3://{bucket}/events/");
    let args = [
        location.as_str(),
        "--register",
        "--database",
        &database,
        "--sample",
        "10",
    ];
    let (stdout, _) = crawl(&services, &endpoint, &args);
    let at = format!("Glue at {endpoint}");
    assert!(
        stdout.contains(&format!(
            "{at}: 250 partitions in 3 BatchCreatePartition calls: 250 new, 0 already registered"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 columns, partitioned by `day` int"),
        "{stdout}"
    );
    let registered = partitions(&glue, &database, "events").await;
    let days: BTreeSet<u32> = registered
        .keys()
        .map(|v| v[0].parse().expect("an int partition value"))
        .collect();
    assert_eq!(days, (0..250).collect());
    for (values, sd) in &registered {
        assert_eq!(
            sd.location(),
            Some(format!("{location}day={}/", values[0]).as_str())
        );
    }
    let (stdout, _) = crawl(&services, &endpoint, &args);
    assert!(
        stdout.contains(
            "250 partitions in 3 BatchCreatePartition calls: 0 new, 250 already registered"
        ),
        "{stdout}"
    );
}

#[test]
fn an_unreachable_glue_endpoint_is_named_with_what_to_check() {
    let services = Services::get();
    // The bucket must exist for the crawl to get as far as Glue: use the
    // S3 server's own listing of a fresh bucket with one object.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bucket = unique("glue-down");
    runtime.block_on(async {
        let client = services.s3().await;
        client
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket");
        client
            .put_object()
            .bucket(&bucket)
            .key("t/part-0.json")
            .body(b"{\"a\": 1}\n".to_vec().into())
            .send()
            .await
            .expect("put object");
    });
    let nowhere = format!("http://127.0.0.1:{}", common::free_port());
    let error = crawl_fails(
        &services,
        &glue_endpoint(),
        &[
            &format!("s3://{bucket}/t"),
            "--register",
            "--glue-endpoint",
            &nowhere,
        ],
    );
    assert!(
        error.contains(&format!(
            "Glue at {nowhere}: cannot get database `default`: "
        )),
        "{error}"
    );
    assert!(
        error.contains("check the endpoint (--glue-endpoint, $GLUE_ENDPOINT; AWS when unset)"),
        "{error}"
    );
}
