//! Sink `__TYPE__`: made from Sluice's connector template (`sluice new
//! connector`). It appends each record to `<dir>/<topic>+<partition>.jsonl`
//! as `{"offset", "value"}`, exactly once across crashes. Replace the file
//! with your system; keep the shape (docs/writing-a-connector.md).

pub mod config;
pub mod sink;

pub use config::__STRUCT__Config;
pub use sink::__STRUCT__Sink;

// The registration: a binary that links this crate (`use __CRATE_IDENT__ as _;`)
// has the plugin, under `type: __TYPE__`.
connect_core::register_plugin!(sink "__TYPE__", __STRUCT__Config,
    summary: "Appends each record to a JSON Lines file per Kafka partition, exactly once (from the connector template)",
    example: include_str!("../example.yaml"));
