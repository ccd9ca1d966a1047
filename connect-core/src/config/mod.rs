//! Pipeline configuration: YAML with located, collected diagnostics.
//!
//! Loading goes in phases, as in Vector and Benthos: parse (YAML into a
//! located node tree, `${env:...}` interpolation) → validate (typed configs,
//! every unknown key and every plugin check, all collected) → build (I/O, in
//! the runtime). `sluice validate` runs the first two.

pub mod de;
pub mod diagnostics;
pub mod node;
pub mod pipeline;
pub mod units;

pub use diagnostics::{ConfigErrors, Diagnostic, Diagnostics, Mark};
pub use pipeline::{load_pipeline_file, parse_pipeline, PipelineConfig};
