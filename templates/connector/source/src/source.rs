//! The running `__TYPE__` source. The runtime calls `open` once with the
//! stored position (`None` the first time), `poll` in a loop, `close` at
//! the end; it stores a record's position once Kafka has it, so a restart
//! resumes right after the last record stored.

use std::sync::Arc;

use async_trait::async_trait;
use connect_core::plugin::{BuildContext, Poll, Source};
use connect_core::{ConnectorError, ConnectorResult, Record, SourcePosition, Value};

use crate::config::__STRUCT__Config;

/// A running `__TYPE__`.
pub struct __STRUCT__Source {
    config: __STRUCT__Config,
    topic: Arc<str>,
    /// Names this source's stream in stored positions.
    partition: Arc<Value>,
    next: u64,
    /// When the next record is due (with an `interval`).
    due: Option<tokio::time::Instant>,
}

impl __STRUCT__Source {
    /// A source for `config`, producing to the pipeline's topic.
    pub fn new(config: __STRUCT__Config, ctx: &BuildContext) -> Self {
        Self {
            partition: Arc::new(serde_json::json!({ "__TYPE__": config.prefix })),
            config,
            topic: ctx.topic.clone(),
            next: 0,
            due: None,
        }
    }
}

#[async_trait]
impl Source for __STRUCT__Source {
    async fn open(&mut self, position: Option<SourcePosition>) -> ConnectorResult<()> {
        let Some(position) = position else {
            return Ok(());
        };
        if position.partition != self.partition {
            tracing::warn!(stored = %position.partition, "the stored position is of another stream; starting from the beginning");
            return Ok(());
        }
        // Continue right after the stored record.
        let n = position
            .offset
            .get("n")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                ConnectorError::fatal(format!(
                    "stored position {} has no `n`; reset the pipeline's source offsets",
                    position.offset
                ))
            })?;
        self.next = n + 1;
        Ok(())
    }

    /// At most `max_records`; with an `interval`, one record per poll,
    /// after waiting for it. The wait comes first, so a poll dropped while
    /// waiting (the runtime stopping) has consumed nothing.
    async fn poll(&mut self, max_records: usize) -> ConnectorResult<Poll> {
        if self.next >= self.config.count {
            return Ok(Poll::End);
        }
        let interval = self.config.interval.0;
        let take = if interval.is_zero() {
            max_records.max(1) as u64
        } else {
            if let Some(due) = self.due {
                tokio::time::sleep_until(due).await;
            }
            self.due = Some(tokio::time::Instant::now() + interval);
            1
        };
        let end = (self.next + take).min(self.config.count);
        let records = (self.next..end)
            .map(|n| {
                let value =
                    serde_json::json!({ "n": n, "text": format!("{} {n}", self.config.prefix) });
                let position = SourcePosition {
                    partition: self.partition.clone(),
                    offset: serde_json::json!({ "n": n }),
                };
                Record::from_source(
                    self.topic.clone(),
                    Some(serde_json::json!(n)),
                    Some(value),
                    position,
                )
            })
            .collect();
        self.next = end;
        Ok(Poll::Records(records))
    }

    async fn close(&mut self) -> ConnectorResult<()> {
        Ok(())
    }
}
