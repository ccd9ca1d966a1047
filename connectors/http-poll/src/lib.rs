//! `http_poll`: a source that polls an HTTP endpoint returning JSON — the
//! tutorial's "real-time stock API in a while loop" as a connector. Each
//! poll's response is cut into records (the array at a JSON pointer, or
//! the one value there), keyed by a field; a record whose dedup fields are
//! what was last sent for its key is not sent again, so an unchanged quote
//! is sent once however often it is polled. The last values sent per key
//! are the source's position: a restarted pipeline does not send again
//! what it sent before.
//!
//! Built with the public API only (`connect_core::plugin`), as
//! docs/writing-a-connector.md describes, and checked by the conformance
//! kit (`tests/conformance.rs`).

pub mod config;
pub mod source;

pub use config::HttpPollConfig;
pub use source::HttpPollSource;

connect_core::register_plugin!(source "http_poll", HttpPollConfig,
    summary: "Polls an HTTP JSON endpoint on an interval, cuts the response into records at a JSON pointer, keys them by a field and sends a record again only when it changed",
    example: include_str!("../example.yaml"));
