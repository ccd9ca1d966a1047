//! `s3_json`: lands records in S3 as JSON Lines objects laid out for a Glue
//! crawler and Athena.
//!
//! Keys are `<prefix>/<topic>/<partition path>/<topic>+<p>+<first offset, 20 digits>.json[.gz]`,
//! the partition path from a [`partitioner`] (`partition=<p>`, Hive-style
//! `<field>=<value>`, or a time format). Keys are a deterministic function
//! of the records, uploads never overwrite, and every object records the
//! offsets it holds, so each record lands exactly once across crashes,
//! restarts and rebalances ([`batcher`] explains how). Offsets are committed
//! only for records in uploaded objects.

pub mod batcher;
pub mod config;
pub mod encoding;
pub mod glue;
pub mod landing;
pub mod partitioner;
pub mod sink;
pub mod spool;

pub use batcher::{after_conflict, AfterConflict, KeyLayout, ObjectBatcher};
pub use config::S3JsonConfig;
pub use sink::S3JsonSink;

connect_core::register_plugin!(sink "s3_json", S3JsonConfig,
    summary: "Writes records as JSON Lines (optionally gzip) or Parquet objects to S3 or an S3-compatible store, partitioned by Kafka partition, a field or time, each record exactly once",
    example: include_str!("../example.yaml"));
