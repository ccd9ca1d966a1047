//! `csv_replay`: replays a CSV file into a Kafka topic as a stream.
//!
//! The file is streamed (never loaded whole; gzip is read transparently), the
//! header row names the fields, each column is typed (declared or inferred
//! from a sample) with numbers keeping their exact text, records are keyed by
//! a column, and the replay is paced from `1/s` to `max`, in file or seeded
//! random order, once or in a loop. Each record carries its position
//! (file, line, byte offset) so that a restart can resume after it.

pub mod config;
pub mod source;
mod typing;

pub use config::CsvReplayConfig;
pub use source::CsvReplaySource;

connect_core::register_plugin!(source "csv_replay", CsvReplayConfig,
    summary: "Replays a CSV file (or .csv.gz) into Kafka, one keyed record per row, at a chosen rate",
    example: include_str!("../example.yaml"));
