//! A csv_replay source over a folder of files (one per index symbol) runs
//! as several tasks (`source.max_tasks`), each file its own stream with its
//! own stored position: against the real broker and S3 server, every row
//! lands exactly once, each symbol's rows stay in file order in the topic,
//! and a second run of the same pipeline produces nothing (every file's
//! position is stored). A glob selects a subset of the files.

mod common;

use common::OutputWithinLimit as _;

use std::collections::BTreeMap;

use common::{
    cell_text, dataset, lost_and_repeated, read_bucket, read_csv, row_counts, run_ok,
    split_dataset_by_symbol, stock_pipeline, unique, write_pipeline, Services,
};

/// The stock pipeline reading `path` with `max_tasks` (at least once, so
/// the topic's offsets count its records).
fn pipeline(name: &str, path: &str, max_tasks: usize) -> String {
    stock_pipeline(
        name,
        &format!("  max_tasks: {max_tasks}"),
        "    rotate_interval: 1s",
    )
    .replace(&dataset().display().to_string(), path)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_of_files_replays_as_tasks_each_row_once_in_order_per_file() {
    let services = Services::get();
    let data = tempfile::tempdir().expect("tempdir");
    let symbols = split_dataset_by_symbol(data.path());
    assert_eq!(symbols.len(), 13);
    let name = unique("tasks");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_pipeline(
        dir.path(),
        &pipeline(&name, &data.path().display().to_string(), 4),
    );
    let output = run_ok(services.sluice().args(["run", "--no-progress"]).arg(&file));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for task in 0..4 {
        assert!(
            stderr.contains(&format!("task={task}")),
            "no log line of task {task}:\n{stderr}"
        );
    }
    assert!(!stderr.contains("task=4"), "only 4 tasks:\n{stderr}");

    let counts = row_counts(&services, &name).await;
    assert_eq!(lost_and_repeated(&counts), (0, 0), "lost, repeated");
    assert_eq!(services.topic_record_count(&name), 104_224);

    // Objects of one Kafka partition, in key order, hold its records in
    // offset order; a symbol's rows are all in one partition (the key).
    let (_, rows) = read_csv(&dataset());
    let mut in_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &rows {
        in_file
            .entry(row[0].clone())
            .or_default()
            .push(row[1].clone());
    }
    let mut in_topic: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for body in read_bucket(&services.s3().await, &name).await.values() {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
            in_topic
                .entry(cell_text(&value["Index"]))
                .or_default()
                .push(cell_text(&value["Date"]));
        }
    }
    assert_eq!(in_topic, in_file, "every symbol's rows, in file order");

    // Every file's position is stored: a second run adds nothing.
    run_ok(services.sluice().args(["run", "--no-progress"]).arg(&file));
    assert_eq!(services.topic_record_count(&name), 104_224);

    // A glob picks files; an empty match is an error naming the pattern.
    let name = unique("tasks-glob");
    let glob = format!("{}/N*.csv", data.path().display());
    let file = write_pipeline(dir.path(), &pipeline(&name, &glob, 8));
    run_ok(services.sluice().args(["run", "--no-progress"]).arg(&file));
    let expected: usize = rows.iter().filter(|r| r[0].starts_with('N')).count();
    assert_eq!(services.topic_record_count(&name), expected as i64);
    let missing = format!("{}/nothing-*.csv", data.path().display());
    let file = write_pipeline(dir.path(), &pipeline(&unique("tasks-none"), &missing, 2));
    let output = services
        .sluice()
        .args(["run", "--no-progress"])
        .arg(&file)
        .output_within_limit()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no CSV files (.csv, .csv.gz) match") && stderr.contains("nothing-*.csv"),
        "{stderr}"
    );
}
