//! The `s3_json` sink lands every record exactly once: Hive-style field
//! partitions with gzip, time partitions, and a rerun from offset 0 that cuts
//! its objects at other points and still adds no record twice — with
//! conditional writes (`If-None-Match: *`, which s3s-fs honours) and with the
//! HEAD-before-PUT fallback.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use common::{
    cell_text, read_csv, run_ok, stock_pipeline, unique, write_pipeline, Running, Services,
};

/// The objects, checking that every one is under `topics/<topic>/` (the
/// sink leaves nothing else in the bucket).
fn data_objects(objects: BTreeMap<String, String>, topic: &str) -> BTreeMap<String, String> {
    for key in objects.keys() {
        assert!(
            key.starts_with(&format!("topics/{topic}/")),
            "unexpected object {key}"
        );
    }
    objects
}

async fn lines_in_bucket(services: &Services, bucket: &str, topic: &str) -> usize {
    let objects = common::try_read_bucket(&services.s3().await, bucket)
        .await
        .unwrap_or_default();
    data_objects(objects, topic)
        .values()
        .map(|b| b.lines().count())
        .sum()
}

/// (Index, Date) → how many times the row is in the objects; also checks
/// that each line sits in the folder `folder_of(line)` names, if it names one.
fn count_rows(
    objects: &BTreeMap<String, String>,
    folder_of: impl Fn(&serde_json::Value) -> Option<String>,
) -> BTreeMap<(String, String), u32> {
    let mut counts = BTreeMap::new();
    for (key, body) in objects {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            if let Some(folder) = folder_of(&value) {
                assert!(
                    key.contains(&format!("/{folder}/")),
                    "{line} is in {key}, not under {folder}/"
                );
            }
            *counts
                .entry((cell_text(&value["Index"]), cell_text(&value["Date"])))
                .or_default() += 1;
        }
    }
    counts
}

/// The folder of the field partitioner `{field: Index, name: index}`.
fn index_folder(value: &serde_json::Value) -> Option<String> {
    Some(format!("index={}", cell_text(&value["Index"])))
}

/// The dataset's rows by (Index, Date), as cell texts.
/// Dataset rows by (Index, Date).
type RowsByKey = BTreeMap<(String, String), Vec<String>>;

fn dataset_rows() -> (Vec<String>, RowsByKey) {
    let (header, rows) = read_csv(&common::dataset());
    let index = header.iter().position(|h| h == "Index").expect("Index");
    let date = header.iter().position(|h| h == "Date").expect("Date");
    let rows = rows
        .into_iter()
        .map(|row| ((row[index].clone(), row[date].clone()), row))
        .collect();
    (header, rows)
}

async fn create_bucket(client: &Client, bucket: &str) {
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("create bucket");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3s_fs_honours_if_none_match_and_keeps_user_metadata() {
    let services = Services::get();
    let client = services.s3().await;
    let bucket = unique("inm");
    create_bucket(&client, &bucket).await;
    let put = || {
        client
            .put_object()
            .bucket(&bucket)
            .key("a/b.json")
            .metadata("sluice-last-offset", "41")
            .if_none_match("*")
            .body(ByteStream::from_static(b"{}\n"))
            .send()
    };
    put().await.expect("the first conditional put writes");
    let error = put()
        .await
        .expect_err("the second conditional put must fail");
    let status = error.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(412), "{error:?}");
    let head = client
        .head_object()
        .bucket(&bucket)
        .key("a/b.json")
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.metadata().and_then(|m| m.get("sluice-last-offset")),
        Some(&"41".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn field_partitioner_with_gzip_lands_every_row_once_under_hive_folders() {
    let services = Services::get();
    let name = unique("s3field");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_pipeline(
        dir.path(),
        &stock_pipeline(
            &name,
            "  order: random\n  seed: 7\n  limit: 3000",
            "    compression: gzip\n    partitioner:\n      type: field\n      field: Index\n      name: index",
        ),
    );
    run_ok(services.sluice().arg("run").arg(&path));
    let client = services.s3().await;
    let objects = data_objects(
        common::try_read_bucket(&client, &name)
            .await
            .expect("bucket"),
        &name,
    );
    let key_shape = regex_like_key(&name, "index=", ".json.gz");
    for key in objects.keys() {
        assert!(key_shape(key), "unexpected key {key}");
    }
    let counts = count_rows(&objects, index_folder);
    assert_eq!(counts.len(), 3000, "distinct rows");
    assert!(counts.values().all(|&n| n == 1), "a row landed twice");
    let symbols: BTreeSet<&str> = counts.keys().map(|(i, _)| i.as_str()).collect();
    assert!(
        symbols.len() > 5,
        "a random sample covers many indexes: {symbols:?}"
    );
    // Every line is a row of the file, every cell as written.
    let (header, rows) = dataset_rows();
    for body in objects.values() {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let row = &rows[&(cell_text(&value["Index"]), cell_text(&value["Date"]))];
            for (column, cell) in header.iter().zip(row) {
                assert_eq!(&cell_text(&value[column]), cell, "{column} of {line}");
            }
        }
    }
    // Offsets in the metadata, no Content-Encoding (Athena goes by `.gz`).
    let (key, body) = objects.iter().next().unwrap();
    let head = client
        .head_object()
        .bucket(&name)
        .key(key)
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_encoding(), None);
    assert_eq!(head.content_type(), Some("application/x-ndjson"));
    let meta = head.metadata().expect("user metadata");
    let first: i64 = meta["sluice-first-offset"].parse().unwrap();
    let last: i64 = meta["sluice-last-offset"].parse().unwrap();
    assert!(key.ends_with(&format!("+{first:020}.json.gz")), "{key}");
    assert!(last >= first);
    assert_eq!(meta["sluice-records"], body.lines().count().to_string());
}

/// A predicate for `topics/<topic>/<folder start>.../<topic>+<p>+<20 digits><ext>`.
fn regex_like_key<'a>(topic: &'a str, folder: &'a str, ext: &'a str) -> impl Fn(&str) -> bool + 'a {
    move |key: &str| {
        let Some(rest) = key.strip_prefix(&format!("topics/{topic}/{folder}")) else {
            return false;
        };
        let Some((_, leaf)) = rest.rsplit_once('/') else {
            return false;
        };
        let Some(leaf) = leaf.strip_suffix(ext) else {
            return false;
        };
        let parts: Vec<&str> = leaf.split('+').collect();
        parts.len() == 3
            && parts[0] == topic
            && parts[1].parse::<i32>().is_ok()
            && parts[2].len() == 20
            && parts[2].bytes().all(|b| b.is_ascii_digit())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn time_partitioner_lands_year_month_day_folders() {
    let services = Services::get();
    // By record timestamp: the time each row was produced (now, in UTC).
    let name = unique("s3time");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_pipeline(
        dir.path(),
        &stock_pipeline(
            &name,
            "  limit: 500",
            "    partitioner:\n      type: time\n      timestamp: record",
        ),
    );
    let before = chrono::Utc::now();
    run_ok(services.sluice().arg("run").arg(&path));
    let after = chrono::Utc::now();
    let today: BTreeSet<String> = [before, after]
        .iter()
        .map(|t| t.format("year=%Y/month=%m/day=%d").to_string())
        .collect();
    let objects = data_objects(
        common::try_read_bucket(&services.s3().await, &name)
            .await
            .expect("bucket"),
        &name,
    );
    for key in objects.keys() {
        assert!(
            today
                .iter()
                .any(|d| key.starts_with(&format!("topics/{name}/{d}/{name}+"))),
            "{key} is not under {today:?}"
        );
        assert!(regex_like_key(&name, "year=", ".json")(key), "{key}");
    }
    let counts = count_rows(&objects, |_| None);
    assert_eq!(counts.len(), 500);
    assert!(counts.values().all(|&n| n == 1));

    // By a field: the row's own Date, in a custom format.
    let name = unique("s3date");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_pipeline(
        dir.path(),
        &stock_pipeline(
            &name,
            "  limit: 120",
            "    partitioner:\n      type: time\n      timestamp_field: Date\n      path_format: dt=%Y-%m-%d",
        ),
    );
    run_ok(services.sluice().arg("run").arg(&path));
    let objects = data_objects(
        common::try_read_bucket(&services.s3().await, &name)
            .await
            .expect("bucket"),
        &name,
    );
    let counts = count_rows(&objects, |v| Some(format!("dt={}", cell_text(&v["Date"]))));
    assert_eq!(counts.len(), 120);
    assert!(counts.values().all(|&n| n == 1));
}

/// The group's committed offsets summed over the topic's partitions.
fn committed_total(services: &Services, group: &str, topic: &str, partitions: i32) -> i64 {
    services.committed(group, topic, partitions).values().sum()
}

/// Runs the sink-only pipeline until it has committed every record, then stops it.
async fn land_all_and_stop(
    services: &Services,
    pipeline: &std::path::Path,
    name: &str,
    group: &str,
) -> String {
    let stderr = tempfile::NamedTempFile::new().expect("log file");
    let child = Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(pipeline)
            .stderr(stderr.reopen().expect("log"))
            .spawn()
            .expect("spawn"),
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_total(services, group, name, 3) < 3000 {
        assert!(
            Instant::now() < deadline,
            "the sink did not commit 3000 records within 120 s; {} lines in the bucket\n{}",
            lines_in_bucket(services, name, name).await,
            std::fs::read_to_string(stderr.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(child.sigterm_and_wait().success());
    std::fs::read_to_string(stderr.path()).expect("log")
}

/// Fills a topic, lands it, resets the sink's consumer group and lands it
/// again with other cut points: the bucket holds every row once.
async fn rerun_from_zero_adds_no_duplicates(conditional_writes: &str) {
    let services = Services::get();
    let name = unique("s3rerun");
    let dir = tempfile::tempdir().expect("tempdir");
    let fill = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}-fill\ntopic: {{ name: {name}, partitions: 3 }}\nsource:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  order: random\n  seed: 11\n  limit: 3000\n",
            common::dataset().display()
        ),
    );
    run_ok(services.sluice().arg("run").arg(&fill));
    assert_eq!(services.topic_record_count(&name), 3000);

    let sink_only = |flush_size: u32, rotate: &str| {
        format!(
            "name: {name}-land\ntopic: {{ name: {name} }}\nruntime: {{ flush_interval: 200ms }}\n\
             sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n\
             \x20   flush_size: {flush_size}\n    rotate_interval: {rotate}\n    compression: gzip\n    conditional_writes: {conditional_writes}\n\
             \x20   partitioner: {{ type: field, field: Index, name: index }}\n"
        )
    };
    let group = format!("sluice-{name}-land-s3");
    let first_dir = tempfile::tempdir().expect("tempdir");
    let first = write_pipeline(first_dir.path(), &sink_only(100, "1s"));
    let log = land_all_and_stop(&services, &first, &name, &group).await;
    match conditional_writes {
        "auto" => assert!(log.contains("uploads are conditional"), "{log}"),
        _ => assert!(!log.contains("uploads are conditional"), "{log}"),
    }
    let client = services.s3().await;
    let objects_first = data_objects(
        common::try_read_bucket(&client, &name)
            .await
            .expect("bucket"),
        &name,
    );
    let counts = count_rows(&objects_first, index_folder);
    assert_eq!(counts.len(), 3000);
    assert!(counts.values().all(|&n| n == 1));

    // From offset 0 again, cutting objects at other points.
    services.delete_group(&group).await;
    assert_eq!(committed_total(&services, &group, &name, 3), 0);
    let second_dir = tempfile::tempdir().expect("tempdir");
    let second = write_pipeline(second_dir.path(), &sink_only(37, "2s"));
    let log = land_all_and_stop(&services, &second, &name, &group).await;
    assert!(
        log.contains("object exists (written by an earlier run)"),
        "the rerun met no existing object:\n{log}"
    );
    let objects_second = data_objects(
        common::try_read_bucket(&client, &name)
            .await
            .expect("bucket"),
        &name,
    );
    let counts = count_rows(&objects_second, index_folder);
    assert_eq!(counts.len(), 3000);
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "rows landed twice: {twice:?}");
    // What the first run wrote is untouched: nothing was overwritten.
    for (key, body) in &objects_first {
        assert_eq!(objects_second.get(key), Some(body), "{key} changed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_from_offset_zero_with_other_cuts_adds_no_duplicates() {
    rerun_from_zero_adds_no_duplicates("auto").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_with_head_before_put_adds_no_duplicates() {
    rerun_from_zero_adds_no_duplicates("never").await;
}

/// A pipeline killed (SIGKILL) while landing leaves objects beyond its last
/// commit; the next run reads again from the commit, cuts its objects at
/// other points, and the bucket still holds every record once.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_pipeline_resumes_without_duplicates() {
    let services = Services::get();
    let name = unique("s3kill");
    let sink = |flush_size: u32| {
        format!(
            "sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n\
             \x20   flush_size: {flush_size}\n    rotate_interval: 1s\n    compression: gzip\n\
             \x20   partitioner: {{ type: field, field: Index, name: index }}\n"
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: 3 }}\nruntime: {{ flush_interval: 200ms }}\n\
             source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  order: random\n  seed: 5\n  limit: 3000\n  rate: 400/s\n{}",
            common::dataset().display(),
            sink(50)
        ),
    );
    let mut child = Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(&path)
            .spawn()
            .expect("spawn"),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines_in_bucket(&services, &name, &name).await < 1200 {
        assert!(Instant::now() < deadline, "nothing landed within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut killed = child.0.take().expect("child");
    killed.kill().expect("SIGKILL");
    killed.wait().expect("wait");
    let produced = services.topic_record_count(&name);
    let landed = lines_in_bucket(&services, &name, &name).await;
    assert!(produced < 3000, "the source finished before the kill");

    // The same pipeline name (so the same consumer group), sink only, other cuts.
    let group = format!("sluice-{name}-s3");
    let rerun_dir = tempfile::tempdir().expect("tempdir");
    let rerun = write_pipeline(
        rerun_dir.path(),
        &format!(
            "name: {name}\ntopic: {{ name: {name} }}\nruntime: {{ flush_interval: 200ms }}\n{}",
            sink(23)
        ),
    );
    let stderr = tempfile::NamedTempFile::new().expect("log file");
    let child = Running(Some(
        services
            .sluice()
            .arg("run")
            .arg(&rerun)
            .stderr(stderr.reopen().expect("log"))
            .spawn()
            .expect("spawn"),
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_total(&services, &group, &name, 3) < produced {
        assert!(
            Instant::now() < deadline,
            "the rerun did not commit everything within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(child.sigterm_and_wait().success());
    let log = std::fs::read_to_string(stderr.path()).expect("log");
    let met_existing = log
        .matches("object exists (written by an earlier run)")
        .count();
    eprintln!("killed after {landed} of {produced} produced records had landed; the rerun met {met_existing} existing objects");

    let objects = data_objects(
        common::try_read_bucket(&services.s3().await, &name)
            .await
            .expect("bucket"),
        &name,
    );
    let counts = count_rows(&objects, index_folder);
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "rows landed twice: {twice:?}");
    assert_eq!(counts.len() as i64, produced);
}
