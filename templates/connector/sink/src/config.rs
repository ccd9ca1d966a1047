//! The config of `__TYPE__`: every key documented (its doc comment is its
//! description in `sluice plugins describe __TYPE__`), checked without I/O.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use connect_core::plugin::{BuildContext, FieldIssue, Sink, SinkConfig, SinkStats};
use connect_core::schemars::{self, JsonSchema};
use connect_core::ConnectorResult;
use serde::Deserialize;

use crate::sink::__STRUCT__Sink;

/// Appends each record to a JSON Lines file per Kafka partition.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct __STRUCT__Config {
    /// The folder of the files, relative to the pipeline file's folder (created when missing).
    pub dir: PathBuf,
    /// Records buffered before `flush` writes them even if not asked to write all (default 1000).
    #[serde(default = "default_flush_size")]
    pub flush_size: usize,
}

fn default_flush_size() -> usize {
    1000
}

#[async_trait]
impl SinkConfig for __STRUCT__Config {
    /// Every problem at once, each with the key it is about.
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.dir.as_os_str().is_empty() {
            issues.push(FieldIssue::new("dir", "must name a folder"));
        }
        if self.flush_size == 0 {
            issues.push(FieldIssue::new("flush_size", "must be at least 1"));
        }
        issues
    }

    /// Makes the running sink; this is where I/O may start (here: the folder).
    async fn build(
        &self,
        ctx: &BuildContext,
        stats: Arc<SinkStats>,
    ) -> ConnectorResult<Box<dyn Sink>> {
        Ok(Box::new(
            __STRUCT__Sink::open(self.clone(), ctx, stats).await?,
        ))
    }
}
