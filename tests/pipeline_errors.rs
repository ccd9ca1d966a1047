//! Bad input and bad credentials stop a pipeline with an error that says
//! where and what, and lose nothing that was already produced.

mod common;

use common::OutputWithinLimit as _;

use common::{cell_text, dataset, read_bucket, read_csv, unique, write_pipeline, Services};

fn pipeline(name: &str, csv: &std::path::Path, source_extra: &str) -> String {
    format!(
        "name: {name}\ntopic: {{ name: {name}, partitions: 3 }}\n\
         source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n{source_extra}\n\
         sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n",
        csv.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_row_stops_the_pipeline_at_its_line_and_column_after_sinking_the_rows_before_it(
) {
    let services = Services::get();
    let name = unique("badrow");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(dataset()).expect("dataset");
    let mut lines: Vec<String> = text.lines().take(61).map(str::to_owned).collect();
    // Line 50 of the file gets a non-number in the declared float column `Open`.
    let mut cells: Vec<String> = lines[49].split(',').map(str::to_owned).collect();
    cells[2] = "n/a".to_owned();
    let column = cells[0].len() + cells[1].len() + 3;
    lines[49] = cells.join(",");
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, lines.join("\n") + "\n").expect("write csv");
    let path = write_pipeline(
        dir.path(),
        &pipeline(&name, &csv, "  columns: { Open: float }"),
    );

    let output = services
        .sluice()
        .arg("run")
        .arg(&path)
        .output_within_limit()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    let expected = format!(
        "{}:50:{column}: column `Open`: `n/a` is not a float",
        csv.display()
    );
    assert!(
        stderr.contains(&expected),
        "missing `{expected}` in:\n{stderr}"
    );

    // Rows 2..=49 were produced before the bad row and are all in the bucket, once.
    let (_, rows) = read_csv(&csv);
    let mut landed: Vec<(String, String)> = Vec::new();
    for body in read_bucket(&services.s3().await, &name).await.values() {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            landed.push((cell_text(&value["Index"]), cell_text(&value["Date"])));
        }
    }
    landed.sort();
    let mut expected_rows: Vec<(String, String)> = rows[..48]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    expected_rows.sort();
    assert_eq!(landed, expected_rows);
}

#[test]
fn a_wrong_s3_secret_fails_with_the_s3_error() {
    let services = Services::get();
    let name = unique("badkey");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_pipeline(dir.path(), &pipeline(&name, &dataset(), "  limit: 10"));
    let output = services
        .sluice()
        .arg("run")
        .arg(&path)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output_within_limit()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "sink `s3` (s3_json): cannot reach bucket `{name}`"
        )) && stderr.contains("403"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn a_transform_failing_on_a_record_names_the_step_the_field_and_the_record() {
    let services = Services::get();
    let name = unique("badcast");
    let dir = tempfile::tempdir().expect("tempdir");
    let source_side = format!(
        "name: {name}\ntopic: {{ name: {name}, partitions: 1 }}\n\
         source:\n  type: csv_replay\n  path: {}\n  limit: 5\n  transforms:\n    - type: cast\n      spec: {{ Index: int64 }}\n",
        dataset().display()
    );
    let path = write_pipeline(dir.path(), &source_side);
    let output = services
        .sluice()
        .arg("run")
        .arg(&path)
        .output_within_limit()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    let expected = format!(
        "source: transform 1 `cast` (source.transforms[0]) failed on the record from {{\"file\":\"{}\"}} {{\"line\":2,",
        dataset().display()
    );
    assert!(
        stderr.contains(&expected),
        "missing `{expected}` in:\n{stderr}"
    );
    assert!(
        stderr.contains("`Index` is the string `HSI`, which does not read as an integer (int64)"),
        "{stderr}"
    );

    let sink_side = format!(
        "name: {name}-sink\ntopic: {{ name: {name}, partitions: 1 }}\n\
         sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n\
         \x20   transforms:\n      - type: cast\n        spec: {{ Date: int64 }}\n"
    );
    // The failing cast stopped the source on its first row: fill the topic
    // with a run without it.
    let fill_dir = tempfile::tempdir().expect("tempdir");
    let fill = write_pipeline(
        fill_dir.path(),
        &source_side.replace(
            "  transforms:\n    - type: cast\n      spec: { Index: int64 }\n",
            "",
        ),
    );
    common::run_ok(services.sluice().arg("run").arg(&fill));
    let path = write_pipeline(dir.path(), &sink_side);
    let output = services
        .sluice()
        .arg("run")
        .arg(&path)
        .output_within_limit()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    let expected = format!(
        "sink `s3`: transform 1 `cast` (sinks.s3.transforms[0]) failed on the record at {name}/0 offset 0: cast: `Date` is the string `1986-12-31`"
    );
    assert!(
        stderr.contains(&expected),
        "missing `{expected}` in:\n{stderr}"
    );
}
