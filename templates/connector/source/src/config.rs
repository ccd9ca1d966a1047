//! The config of `__TYPE__`: every key documented (its doc comment is its
//! description in `sluice plugins describe __TYPE__`), checked without I/O.

use std::time::Duration;

use async_trait::async_trait;
use connect_core::config::units::HumanDuration;
use connect_core::plugin::{BuildContext, FieldIssue, Source, SourceConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::ConnectorResult;
use serde::Deserialize;

use crate::source::__STRUCT__Source;

/// Counts: `count` records `{"n", "text"}`, one every `interval`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct __STRUCT__Config {
    /// How many records (default 100).
    #[serde(default = "default_count")]
    pub count: u64,
    /// The text before each number (default `record`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Time between two records (default 0s: as fast as the runtime takes them).
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
}

fn default_count() -> u64 {
    100
}

fn default_prefix() -> String {
    "record".to_owned()
}

fn default_interval() -> HumanDuration {
    HumanDuration(Duration::ZERO)
}

#[async_trait]
impl SourceConfig for __STRUCT__Config {
    /// Every problem at once, each with the key it is about.
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.count == 0 {
            issues.push(FieldIssue::new("count", "must be at least 1"));
        }
        if self.prefix.trim().is_empty() {
            issues.push(FieldIssue::new("prefix", "must not be empty"));
        }
        if self.interval.0 > Duration::from_secs(3600) {
            issues.push(FieldIssue::new("interval", "must be at most 1h"));
        }
        issues
    }

    /// Makes the running source; this is where I/O may start (open, connect).
    async fn build(&self, ctx: &BuildContext) -> ConnectorResult<Box<dyn Source>> {
        Ok(Box::new(__STRUCT__Source::new(self.clone(), ctx)))
    }
}
