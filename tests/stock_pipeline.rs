//! The shipped `pipelines/stock-market.yaml`, run as a user would (only the
//! topic, bucket and consumer-group names made unique), lands Athena-friendly
//! records: snake_case columns, `volume` as an integer, an ingestion time.

mod common;

use common::{cell_text, dataset, read_bucket, read_csv, run_ok, unique, write_pipeline, Services};

#[tokio::test(flavor = "multi_thread")]
async fn the_stock_market_pipeline_lands_athena_friendly_records() {
    let services = Services::get();
    let name = unique("stock");
    let shipped = std::fs::read_to_string(common::repo_root().join("pipelines/stock-market.yaml"))
        .expect("shipped pipeline");
    let text = shipped
        .replace("name: stock-market", &format!("name: {name}"))
        .replace("bucket: stock-market", &format!("bucket: {name}"))
        .replace(
            "../data/indexProcessed.csv",
            &dataset().display().to_string(),
        );
    assert_ne!(
        text, shipped,
        "the shipped pipeline no longer names stock-market"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(dir.path(), &text);

    let started = now_ms();
    run_ok(services.sluice().arg("run").arg(&pipeline));
    let finished = now_ms();

    let (header, rows) = read_csv(&dataset());
    let columns = [
        "index",
        "date",
        "open",
        "high",
        "low",
        "close",
        "adj_close",
        "volume",
        "close_usd",
    ];
    assert_eq!(header.len(), columns.len());
    let line_of: std::collections::BTreeMap<(String, String), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r[0].clone(), r[1].clone()), i))
        .collect();
    let mut seen = vec![0u32; rows.len()];
    for (key, body) in read_bucket(&services.s3().await, &name).await {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let object = value.as_object().expect("object");
            let fields: Vec<&str> = object.keys().map(String::as_str).collect();
            let mut expected_fields = columns.to_vec();
            expected_fields.push("ingested_at");
            assert_eq!(fields, expected_fields, "columns of {key}");
            let index = line_of[&(cell_text(&object["index"]), cell_text(&object["date"]))];
            for (column, text) in columns.iter().zip(&rows[index]) {
                if *column == "volume" {
                    let volume = object["volume"]
                        .as_i64()
                        .unwrap_or_else(|| panic!("volume is not an integer: {line}"));
                    assert_eq!(
                        volume as f64,
                        text.parse::<f64>().expect("CSV volume"),
                        "{line}"
                    );
                } else {
                    assert_eq!(&cell_text(&object[*column]), text, "{column} in {line}");
                }
            }
            let ingested = parse_timestamp_ms(
                object["ingested_at"]
                    .as_str()
                    .expect("ingested_at is a string"),
            );
            assert!(
                (started - 1000..=finished + 1000).contains(&ingested),
                "ingested_at {} is outside the run",
                object["ingested_at"]
            );
            seen[index] += 1;
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "every row exactly once");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Parses `yyyy-MM-dd HH:mm:ss.SSS` (UTC), the format Athena's JSON SerDe reads as a timestamp.
fn parse_timestamp_ms(text: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.3f")
        .unwrap_or_else(|e| panic!("`{text}` is not yyyy-MM-dd HH:mm:ss.SSS: {e}"))
        .and_utc()
        .timestamp_millis()
}
