//! Sluice's runtime library.
//!
//! `connect-core` knows no concrete connector. It holds the record model
//! ([`record`]), the plugin contract ([`plugin`]) and registry ([`registry`]),
//! the pipeline configuration model with located diagnostics ([`config`]),
//! converters between structured values and Kafka bytes ([`convert`]), the
//! Kafka glue ([`kafka`]) and the drivers that run sources and sinks
//! ([`runtime`]).
//!
//! Connector crates implement the traits of [`plugin`] and register
//! themselves with [`register_plugin!`]; a binary that links them and calls
//! [`runtime::run_pipelines`] runs their pipelines.

pub mod config;
pub mod convert;
pub mod error;
pub mod group;
pub mod kafka;
pub mod offsets;
pub mod plugin;
pub mod record;
pub mod registry;
pub mod runtime;
pub mod secrets;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transform;
pub mod worker;

pub use error::{ConnectorError, ConnectorResult};
pub use record::{Headers, Record, SourcePosition, TopicPartition, Value};

/// Re-exported so that [`register_plugin!`] works from any crate without a
/// direct dependency on `inventory`.
#[doc(hidden)]
pub use inventory;

/// Re-exported so that connector crates derive `JsonSchema` for their config
/// types (`use connect_core::schemars::{self, JsonSchema};`) without a
/// direct dependency, and [`register_plugin!`] works from any crate.
pub use schemars;
