//! The whole stock-market CSV through real Kafka into a real S3 server:
//! every row exactly once, every field as in the CSV, per-symbol file order.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    cell_text, dataset, read_bucket, read_csv, run_ok, stock_pipeline, unique, write_pipeline,
    Services,
};

#[tokio::test(flavor = "multi_thread")]
async fn full_replay_lands_every_row_exactly_once_with_exact_fields() {
    let services = Services::get();
    let name = unique("full");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &stock_pipeline(&name, "  rate: max", "    rotate_interval: 60s"),
    );

    let output = run_ok(services.sluice().arg("run").arg(&pipeline));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("rows read            104224"),
        "summary:\n{summary}"
    );
    assert!(
        summary.contains("records produced     104224"),
        "summary:\n{summary}"
    );
    assert!(
        summary.contains("records sunk         104224"),
        "summary:\n{summary}"
    );
    assert_eq!(services.topic_record_count(&name), 104_224);

    let (header, rows) = read_csv(&dataset());
    assert_eq!(rows.len(), 104_224);
    let line_of: BTreeMap<(String, String), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r[0].clone(), r[1].clone()), i))
        .collect();
    assert_eq!(
        line_of.len(),
        rows.len(),
        "(Index, Date) identifies a row of the dataset"
    );

    let objects = read_bucket(&services.s3().await, &name).await;
    let key_shape = format!("topics/{name}/partition=");
    let mut seen = vec![0u32; rows.len()];
    let mut partitions_of_symbol: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, body) in &objects {
        let rest = key
            .strip_prefix(&key_shape)
            .unwrap_or_else(|| panic!("unexpected key {key}"));
        let (partition, file) = rest.split_once('/').expect("partition folder");
        let prefix = format!("{name}+{partition}+");
        let offset = file
            .strip_prefix(&prefix)
            .and_then(|f| f.strip_suffix(".json"))
            .expect("file name");
        assert_eq!(offset.len(), 20, "zero-padded offset in {key}");
        assert!(offset.bytes().all(|b| b.is_ascii_digit()), "{key}");

        let mut last_line_of_symbol: BTreeMap<String, usize> = BTreeMap::new();
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let object = value.as_object().expect("JSON object");
            let fields: Vec<&str> = object.keys().map(String::as_str).collect();
            assert_eq!(
                fields,
                header.iter().map(String::as_str).collect::<Vec<_>>(),
                "field order in {key}"
            );
            let symbol = cell_text(&object["Index"]);
            let index = line_of[&(symbol.clone(), cell_text(&object["Date"]))];
            for (column, text) in header.iter().zip(&rows[index]) {
                assert_eq!(
                    &cell_text(&object[column]),
                    text,
                    "{column} of CSV row {} in {key}",
                    index + 2
                );
            }
            seen[index] += 1;
            if let Some(previous) = last_line_of_symbol.insert(symbol.clone(), index) {
                assert!(
                    previous < index,
                    "{symbol}: CSV row {} came after row {} in {key}",
                    index + 2,
                    previous + 2
                );
            }
            partitions_of_symbol
                .entry(symbol)
                .or_default()
                .insert(partition.to_owned());
        }
    }
    let missing = seen.iter().filter(|&&n| n == 0).count();
    let duplicated = seen.iter().filter(|&&n| n > 1).count();
    assert_eq!(
        (missing, duplicated),
        (0, 0),
        "rows missing or duplicated in the bucket"
    );
    assert_eq!(partitions_of_symbol.len(), 13);
    for (symbol, partitions) in &partitions_of_symbol {
        assert_eq!(
            partitions.len(),
            1,
            "records keyed by {symbol} landed in several partitions: {partitions:?}"
        );
    }
    // Objects rotate on count: 104,224 rows in objects of at most 10,000 lines.
    assert!(objects.values().all(|b| b.lines().count() <= 10_000));
}
