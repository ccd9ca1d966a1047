//! `csv_replay` passes the connector conformance kit (`connect_core::testkit`).

use connect_core::testkit::{ErrorClass, SourceKit};
use connect_csv_replay as _;

const ROWS: &str = "Index,Date,Close\n\
                    NYA,1965-12-31,528.69\n\
                    NYA,1966-01-03,527.21\n\
                    \"N,225\",1966-01-04,\"1,527.84\"\n\
                    HSI,1986-12-31,2568.3\n\
                    HSI,1987-01-02,2540.1\n\
                    GDAXI,1987-12-30,1000\n";

#[tokio::test]
async fn csv_replay_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("rows.csv"), ROWS).expect("write");
    std::fs::write(dir.path().join("short.csv"), "Index,Close\nNYA,1.5\nNYA\n").expect("write");
    std::fs::create_dir(dir.path().join("split")).expect("mkdir");
    std::fs::write(dir.path().join("split/a.csv"), ROWS).expect("write");
    std::fs::write(dir.path().join("split/b.csv"), ROWS).expect("write");
    let kit = |section: &str| {
        SourceKit::new("csv_replay", section)
            .base_dir(dir.path())
            .batch(2)
            .invalid(
                "type: csv_replay\npath: rows.csv\nlimit: 0\ninfer_rows: 0\nseed: 3\n",
                &["limit", "infer_rows", "seed"],
            )
            .invalid("type: csv_replay\npath: rows.csv\nrate: fast\n", &["rate"])
            .fault("type: csv_replay\npath: missing.csv\n", ErrorClass::Fatal)
            .fault("type: csv_replay\npath: short.csv\n", ErrorClass::BadRecord)
            .fault(
                "type: csv_replay\npath: rows.csv\nkey_column: Ticker\n",
                ErrorClass::Fatal,
            )
    };
    kit("type: csv_replay\npath: rows.csv\nkey_column: Index\n")
        .run()
        .await
        .assert_passed();
    // Random order resumes by its shuffled index; a folder splits into streams.
    kit("type: csv_replay\npath: rows.csv\norder: random\nseed: 7\n")
        .run()
        .await
        .assert_passed();
    kit("type: csv_replay\npath: split\nkey_column: Index\n")
        .run()
        .await
        .assert_passed();
}
