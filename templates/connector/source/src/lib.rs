//! Source `__TYPE__`: made from Sluice's connector template
//! (`sluice new connector`). It counts: `count` records `{"n", "text"}`,
//! one every `interval`. Replace the counting with your system's reading;
//! keep the shape (docs/writing-a-connector.md).

pub mod config;
pub mod source;

pub use config::__STRUCT__Config;
pub use source::__STRUCT__Source;

// The registration: a binary that links this crate (`use __CRATE_IDENT__ as _;`)
// has the plugin, under `type: __TYPE__`.
connect_core::register_plugin!(source "__TYPE__", __STRUCT__Config,
    summary: "Counts: `count` records {n, text}, one every `interval` (from the connector template)",
    example: include_str!("../example.yaml"));
