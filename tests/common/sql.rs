//! Running `sluice catalog crawl` and `sluice query` in tests, and reading
//! what they print.

use std::time::Instant;

use serde_json::Value;

use super::{run_ok, Services};

/// `sluice catalog crawl <args>`: (stdout, stderr), failing the test unless it exits 0.
pub fn crawl(services: &Services, args: &[&str]) -> (String, String) {
    let started = Instant::now();
    let output = run_ok(services.sluice().args(["catalog", "crawl"]).args(args));
    eprintln!(
        "crawl {args:?} took {:.2}s",
        started.elapsed().as_secs_f64()
    );
    (
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

/// `sluice query SQL --format csv` with `args`: (header, rows).
pub fn query_csv(services: &Services, args: &[&str], sql: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let started = Instant::now();
    let output = run_ok(
        services
            .sluice()
            .arg("query")
            .arg(sql)
            .args(args)
            .args(["--format", "csv"]),
    );
    eprintln!("{:.2?}: {sql} {args:?}", started.elapsed());
    super::csv_table(csv::Reader::from_reader(output.stdout.as_slice()))
}

/// An `EXPLAIN` answer reads the folder `read` and not `pruned`.
pub fn assert_plan_reads_only(plan: &[Vec<String>], read: &str, pruned: &str) {
    let plan: String = plan
        .iter()
        .map(|r| r.join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains(read), "the {read} folder is read:\n{plan}");
    assert!(!plan.contains(pruned), "other folders are pruned:\n{plan}");
}

/// (Name, Type) of a Glue column list in JSON.
pub fn json_columns(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .expect("a column list")
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().expect("Name").to_owned(),
                c["Type"].as_str().expect("Type").to_owned(),
            )
        })
        .collect()
}

/// `[("a", "b")]` as owned pairs, to compare with [`json_columns`].
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}
