//! `s3_json` passes the connector conformance kit (`connect_core::testkit`)
//! against the local S3 server (`scripts/services.sh up`; its address and
//! credentials come from the environment `.services/env` sets).

use std::sync::Arc;

use aws_sdk_s3::Client;
use connect_core::testkit::{ErrorClass, ReadBack, SinkKit};
use connect_s3_json as _;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set; run `scripts/services.sh up` and `source .services/env`")
    })
}

async fn client() -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(env("S3_ENDPOINT"))
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .build();
    Client::from_conf(s3)
}

/// Every JSON line of every object in `bucket` (gzip objects unzipped).
async fn lines(client: &Client, bucket: &str) -> Vec<serde_json::Value> {
    let mut values = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let Ok(page) = page else { break };
        for object in page.contents() {
            let key = object.key().unwrap_or_default();
            let body = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("get object")
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes();
            let text = if key.ends_with(".gz") {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::MultiGzDecoder::new(&body[..]),
                    &mut text,
                )
                .expect("gzip");
                text
            } else {
                String::from_utf8(body.to_vec()).expect("utf-8")
            };
            values.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_json_passes_the_conformance_kit() {
    let endpoint = env("S3_ENDPOINT");
    let run = format!(
        "kit-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 1_000_000)
    );
    let client = client().await;
    for (name, extra) in [("plain", ""), ("gzip", "compression: gzip\n")] {
        let bucket = format!("{run}-{name}");
        let read_back: ReadBack = {
            let (client, bucket) = (client.clone(), bucket.clone());
            Arc::new(move || {
                let (client, bucket) = (client.clone(), bucket.clone());
                Box::pin(async move { lines(&client, &bucket).await })
            })
        };
        let section = format!(
            "type: s3_json\nbucket: {bucket}\nendpoint: {endpoint}\ncreate_bucket: true\nflush_size: 30\n{extra}"
        );
        SinkKit::new("s3_json", &section, read_back)
            .topic_prefix(&run)
            .invalid(
                &format!("type: s3_json\nbucket: {bucket}\nflush_size: 0\nupload_concurrency: 0\npart_size: 1MiB\n"),
                &["flush_size", "upload_concurrency", "part_size"],
            )
            .invalid("type: s3_json\nbucket: Not_A_Bucket\nendpoint: s3.local\n", &["bucket", "endpoint"])
            .fault(
                &format!("type: s3_json\nbucket: {run}-missing\nendpoint: {endpoint}\n"),
                ErrorClass::Fatal,
            )
            .fault(
                &format!("type: s3_json\nbucket: {bucket}\nendpoint: http://127.0.0.1:9\n"),
                ErrorClass::Retriable,
            )
            .run()
            .await
            .assert_passed();
    }
}
