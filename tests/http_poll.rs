//! `http_poll` end to end, as the tutorial used a stock API in a loop: a
//! local HTTP endpoint serving index quotes, polled by `sluice run` into
//! Kafka. Each quote reaches the topic once however often it is polled, a
//! restart sends nothing again, and a quote that changes is sent again.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use common::{unique, write_pipeline, Services};

/// The quotes the endpoint serves; NYA's close moves with `version`.
fn quotes(version: u64) -> String {
    // The last quote of each of the 13 indices.
    let mut last = std::collections::BTreeMap::new();
    for row in common::read_csv(&common::dataset()).1 {
        last.insert(row[0].clone(), row);
    }
    let rows: Vec<String> = last
        .into_values()
        .map(|row| {
            let close = if row[0] == "NYA" {
                format!("{}.25", 16_000 + version)
            } else {
                row[5].clone()
            };
            format!(
                r#"{{"Index":"{}","Date":"{}","Close":{close}}}"#,
                row[0], row[1]
            )
        })
        .collect();
    format!(r#"{{"status":"ok","data":[{}]}}"#, rows.join(","))
}

/// Runs the pipeline until the topic holds `want` records and then two
/// more seconds (many more polls), then stops it.
fn run_until(services: &Services, pipeline: &std::path::Path, topic: &str, want: i64) {
    let running = services.spawn_run(pipeline);
    let deadline = Instant::now() + Duration::from_secs(60);
    while services.try_topic_record_count(topic).unwrap_or(0) < want {
        assert!(
            Instant::now() < deadline,
            "the topic holds {} records, not {want}, after 60 s",
            services.try_topic_record_count(topic).unwrap_or(0)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(running.sigterm_and_wait().success(), "sluice exits 0");
    assert_eq!(
        services.topic_record_count(topic),
        want,
        "records in the topic after many polls"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn polled_quotes_reach_kafka_once_and_again_only_when_they_change() {
    let services = Services::get();
    let version = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/v1/indices",
            get(|State(version): State<Arc<AtomicU64>>| async move {
                quotes(version.load(Ordering::SeqCst))
            }),
        )
        .with_state(version.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let name = unique("quotes");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: {name}\ntopic: {{ name: {name}, partitions: 3 }}\n\
             source:\n  type: http_poll\n  url: http://{address}/v1/indices\n  interval: 100ms\n\
             \x20 records: /data\n  key_field: Index\n  dedup_fields: [Date, Close]\n"
        ),
    );
    // 13 quotes, polled about 20 times: 13 records.
    run_until(&services, &pipeline, &name, 13);
    // A restart resumes with what was sent: nothing again.
    run_until(&services, &pipeline, &name, 13);
    // NYA moves: one more record, keyed NYA.
    version.store(1, Ordering::SeqCst);
    run_until(&services, &pipeline, &name, 14);
}
