//! `s3_json`: lands records in S3 as JSON Lines objects laid out for a Glue
//! crawler and Athena.
//!
//! Keys are `<prefix>/<topic>/partition=<p>/<topic>+<p>+<first offset, 20 digits>.json`:
//! a deterministic function of where the object's records are in Kafka, so a
//! replay after a crash rewrites the same objects instead of adding new ones.
//! Offsets are committed only for records in uploaded objects.

pub mod config;
pub mod sink;

pub use config::S3JsonConfig;
pub use sink::{object_key, S3JsonSink};

connect_core::register_plugin!(sink "s3_json", S3JsonConfig,
    summary: "Writes records as JSON Lines objects to S3 or an S3-compatible store, keyed by topic, partition and offset",
    example: include_str!("../example.yaml"));
