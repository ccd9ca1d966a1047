//! The running `__TYPE__` sink.
//!
//! Exactly once, the file way: records of a partition are appended to its
//! file in offset order, each line holding its offset, and a partition's
//! durable offset is the one after the last line in its file. The runtime
//! commits exactly what `flush` reports durable, so after a crash Kafka
//! gives the records after the last commit again; those already in the
//! file (the last line says up to where) are skipped, and a line cut short
//! by the crash is removed when the partition is assigned again.

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use connect_core::plugin::{BuildContext, DurableOffsets, FlushMode, Sink, SinkStats};
use connect_core::{ConnectorError, ConnectorResult, Record, TopicPartition};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::config::__STRUCT__Config;

/// Bytes read from the end of a file to find its last line.
const TAIL: u64 = 64 << 10;

/// A running `__TYPE__`.
pub struct __STRUCT__Sink {
    config: __STRUCT__Config,
    dir: PathBuf,
    stats: Arc<SinkStats>,
    /// Per partition: lines taken and not written yet, with the offset after them.
    buffered: BTreeMap<TopicPartition, (Vec<u8>, usize, i64)>,
    /// Per partition: the next offset to take.
    next: BTreeMap<TopicPartition, i64>,
    /// Per partition: the offset after the last line in its file.
    written: BTreeMap<TopicPartition, i64>,
}

fn io_error(what: String, error: std::io::Error) -> ConnectorError {
    // A full disk or a missing permission does not fix itself: fatal.
    ConnectorError::fatal_caused_by(what, error)
}

impl __STRUCT__Sink {
    /// Creates the folder; nothing else is touched before partitions come.
    pub async fn open(
        config: __STRUCT__Config,
        ctx: &BuildContext,
        stats: Arc<SinkStats>,
    ) -> ConnectorResult<Self> {
        let dir = ctx.resolve_path(&config.dir);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| {
            io_error(
                format!("cannot create the folder {} (`dir`)", dir.display()),
                e,
            )
        })?;
        Ok(Self {
            config,
            dir,
            stats,
            buffered: BTreeMap::new(),
            next: BTreeMap::new(),
            written: BTreeMap::new(),
        })
    }

    fn file_of(&self, tp: &TopicPartition) -> PathBuf {
        self.dir
            .join(format!("{}+{}.jsonl", tp.topic, tp.partition))
    }

    /// The offset after the last complete line of `tp`'s file (0 without
    /// one); a line cut short by a crash is removed first.
    async fn recover(&self, tp: &TopicPartition) -> ConnectorResult<i64> {
        let path = self.file_of(tp);
        let failed = |e| io_error(format!("cannot read {}", path.display()), e);
        let mut file = match tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .await
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(failed(e)),
        };
        let len = file.metadata().await.map_err(failed)?.len();
        let start = len.saturating_sub(TAIL);
        file.seek(SeekFrom::Start(start)).await.map_err(failed)?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).await.map_err(failed)?;
        // Cut a torn last line.
        let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < tail.len() {
            tracing::warn!(file = %path.display(), bytes = tail.len() - complete, "removing a line cut short by a crash");
            file.set_len(start + complete as u64)
                .await
                .map_err(failed)?;
        }
        let Some(last) = tail[..complete]
            .split(|&b| b == b'\n')
            .rfind(|line| !line.is_empty())
        else {
            return Ok(0);
        };
        let line: serde_json::Value = serde_json::from_slice(last).map_err(|e| {
            ConnectorError::fatal(format!(
                "{}: the last line is not one this sink wrote ({e}); move the file away",
                path.display()
            ))
        })?;
        line.get("offset")
            .and_then(serde_json::Value::as_i64)
            .map(|offset| offset + 1)
            .ok_or_else(|| {
                ConnectorError::fatal(format!(
                    "{}: the last line has no `offset`; move the file away",
                    path.display()
                ))
            })
    }

    /// Appends what is buffered for `tp` to its file and syncs it.
    async fn write_out(&mut self, tp: &TopicPartition) -> ConnectorResult<()> {
        let Some((lines, records, next)) = self.buffered.remove(tp) else {
            return Ok(());
        };
        let path = self.file_of(tp);
        let failed = |e| io_error(format!("cannot write {}", path.display()), e);
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(failed)?;
        file.write_all(&lines).await.map_err(failed)?;
        file.sync_data().await.map_err(failed)?;
        self.written.insert(tp.clone(), next);
        self.stats.add_object(records as u64, lines.len() as u64);
        Ok(())
    }
}

#[async_trait]
impl Sink for __STRUCT__Sink {
    async fn assigned(&mut self, partitions: &[TopicPartition]) -> ConnectorResult<()> {
        for tp in partitions {
            let written = self.recover(tp).await?;
            self.written.insert(tp.clone(), written);
            self.next.insert(tp.clone(), written);
        }
        Ok(())
    }

    /// Buffers; records below a partition's next offset (a retried batch,
    /// or records the file holds) are skipped.
    async fn write(&mut self, records: &[Record]) -> ConnectorResult<()> {
        for record in records {
            let (Some(partition), Some(offset)) = (record.partition, record.offset) else {
                return Err(ConnectorError::fatal(
                    "a record without a Kafka partition and offset",
                ));
            };
            let tp = TopicPartition {
                topic: record.topic.clone(),
                partition,
            };
            let next = match self.next.get(&tp) {
                Some(next) => *next,
                None => {
                    let written = self.recover(&tp).await?;
                    self.written.insert(tp.clone(), written);
                    written
                }
            };
            if offset < next {
                continue;
            }
            let mut line = serde_json::to_vec(&serde_json::json!({
                "offset": offset,
                "value": record.value,
            }))
            .map_err(|e| ConnectorError::fatal_caused_by("cannot write a record as JSON", e))?;
            line.push(b'\n');
            let (lines, count, after) = self.buffered.entry(tp.clone()).or_default();
            lines.extend_from_slice(&line);
            *count += 1;
            *after = offset + 1;
            self.next.insert(tp, offset + 1);
        }
        Ok(())
    }

    /// Writes full buffers (`Due`) or all of them (`All`); reports what the files hold.
    async fn flush(&mut self, mode: FlushMode) -> ConnectorResult<DurableOffsets> {
        let due: Vec<TopicPartition> = self
            .buffered
            .iter()
            .filter(|(_, (_, count, _))| mode == FlushMode::All || *count >= self.config.flush_size)
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in due {
            self.write_out(&tp).await?;
        }
        Ok(self.written.clone())
    }

    /// Forgets what was buffered for `partitions`: their next owner reads it again.
    async fn revoked(&mut self, partitions: &[TopicPartition]) -> ConnectorResult<()> {
        for tp in partitions {
            self.buffered.remove(tp);
            self.next.remove(tp);
            self.written.remove(tp);
        }
        Ok(())
    }

    async fn close(&mut self) -> ConnectorResult<()> {
        self.buffered.clear();
        Ok(())
    }
}
