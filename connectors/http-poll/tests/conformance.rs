//! `http_poll` against a local HTTP server started by the test: the
//! conformance kit, faults (5xx, 404, timeouts, bad JSON, a missing
//! pointer), and deduplication across polls and restarts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use connect_core::plugin::{BuildContext, Poll, SourceConfig};
use connect_core::testkit::{ErrorClass, SourceKit};
use connect_http_poll::HttpPollConfig;

const QUOTES: &str = r#"{"data": [
    {"Index": "NYA", "Date": "2021-05-27", "Close": 16526.49},
    {"Index": "HSI", "Date": "2021-05-27", "Close": 29113.2},
    {"Index": "N225", "Date": "2021-05-27", "Close": 28549.01},
    {"Index": "GDAXI", "Date": "2021-05-27", "Close": 15406.69},
    {"Index": "IXIC", "Date": "2021-05-27", "Close": 13736.28},
    {"Index": "GSPTSE", "Date": "2021-05-27", "Close": 19699.9}
]}"#;

/// What the moving endpoint answers on its `n`th request (from 0): NYA's
/// close changes on every second request, HSI's never; request 2 fails.
fn moving(n: usize) -> (StatusCode, String) {
    if n == 2 {
        return (StatusCode::SERVICE_UNAVAILABLE, "try again".into());
    }
    let close = 100 + n / 2;
    (
        StatusCode::OK,
        format!(
            r#"[{{"Index":"NYA","Close":{close},"polled":{n}}},{{"Index":"HSI","Close":7,"polled":{n}}}]"#
        ),
    )
}

/// Serves the test endpoints on a free port; returns its base URL.
async fn serve() -> String {
    let requests = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/quotes", get(|| async { QUOTES }))
        .route(
            "/moving",
            get(|State(requests): State<Arc<AtomicUsize>>| async move {
                moving(requests.fetch_add(1, Ordering::SeqCst))
            }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/throttled",
            get(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }),
        )
        .route(
            "/gone",
            get(|| async { (StatusCode::NOT_FOUND, "no such API") }),
        )
        .route("/html", get(|| async { "<html>maintenance</html>" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                QUOTES
            }),
        )
        .with_state(requests);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread")]
async fn http_poll_passes_the_conformance_kit_and_classifies_faults() {
    let base = serve().await;
    let section = |path: &str, extra: &str| {
        format!("type: http_poll\nurl: {base}{path}\ninterval: 50ms\n{extra}")
    };
    SourceKit::new(
        "http_poll",
        &section(
            "/quotes",
            "records: /data\nkey_field: Index\ndedup_fields: [Date, Close]\n",
        ),
    )
    .endless(6)
    .batch(4)
    .invalid(
        "type: http_poll\nurl: ftp://quotes\ninterval: 0s\nrecords: data\nkey_field: \"\"\n",
        &["url", "interval", "records", "key_field"],
    )
    .fault(&section("/down", ""), ErrorClass::Retriable)
    .fault(&section("/throttled", ""), ErrorClass::Retriable)
    .fault(&section("/slow", "timeout: 300ms\n"), ErrorClass::Retriable)
    .fault(&section("/gone", ""), ErrorClass::Fatal)
    .fault(&section("/html", ""), ErrorClass::BadRecord)
    .fault(
        &section("/quotes", "records: /quotes\n"),
        ErrorClass::BadRecord,
    )
    .fault(
        &section("/quotes", "max_body_bytes: 100\n"),
        ErrorClass::BadRecord,
    )
    .fault(
        "type: http_poll\nurl: http://127.0.0.1:9/\n",
        ErrorClass::Retriable,
    )
    .run()
    .await
    .assert_passed();
}

/// The closes of the records of one poll, as `(Index, Close)`.
fn closes(poll: Poll) -> Vec<(String, u64)> {
    let Poll::Records(records) = poll else {
        panic!("an endless source ended");
    };
    records
        .into_iter()
        .map(|r| {
            let value = r.value.expect("value");
            (
                value["Index"].as_str().expect("Index").to_owned(),
                value["Close"].as_u64().expect("Close"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_records_are_sent_once_across_polls_failures_and_restarts() {
    let base = serve().await;
    let config: HttpPollConfig = serde_yaml::from_str(&format!(
        "url: {base}/moving\ninterval: 20ms\nkey_field: Index\ndedup_fields: [Close]\n"
    ))
    .expect("config");
    let ctx = BuildContext {
        pipeline: Arc::from("quotes"),
        name: Arc::from("source"),
        base_dir: std::env::temp_dir(),
        topic: Arc::from("quotes"),
    };
    let mut source = config.build(&ctx).await.expect("build");
    source.open(None).await.expect("open");
    // Request 0: both new.
    assert_eq!(
        closes(source.poll(10).await.expect("poll")),
        [("NYA".into(), 100), ("HSI".into(), 7)]
    );
    // Request 1: nothing changed (NYA's close changes every second request).
    assert_eq!(closes(source.poll(10).await.expect("poll")), []);
    // Request 2: the server fails; retriable, nothing lost.
    let error = source.poll(10).await.expect_err("503");
    assert!(
        matches!(error, connect_core::ConnectorError::Retriable(_)),
        "{error}"
    );
    // Request 3: NYA moved to 101.
    let Poll::Records(records) = source.poll(10).await.expect("poll") else {
        panic!("ended");
    };
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key, Some(serde_json::json!("NYA")));
    let position = records[0].position.clone().expect("position");
    source.close().await.expect("close");

    // A restart from that position sends nothing it sent before: request
    // 4 has the same closes (NYA 102 comes with request 4: 100 + 4/2).
    let mut restarted = config.build(&ctx).await.expect("build");
    restarted.open(Some(position)).await.expect("open");
    assert_eq!(
        closes(restarted.poll(10).await.expect("poll")),
        [("NYA".into(), 102)]
    );
    // Request 5: unchanged again.
    assert_eq!(closes(restarted.poll(10).await.expect("poll")), []);
}
