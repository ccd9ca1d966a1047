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
        // Read from the end, in a window that doubles until it holds the
        // whole last complete line (or the whole file).
        let mut window = TAIL;
        let (start, tail, last) = loop {
            let start = len.saturating_sub(window);
            file.seek(SeekFrom::Start(start)).await.map_err(failed)?;
            let mut tail = Vec::new();
            file.read_to_end(&mut tail).await.map_err(failed)?;
            let newline = |bytes: &[u8]| bytes.iter().rposition(|&b| b == b'\n');
            match newline(&tail) {
                // The last complete line ends at `end`; it starts after the
                // newline before it, or at the start of the file.
                Some(end) => match newline(&tail[..end]) {
                    Some(before) => break (start, tail, Some((before + 1, end))),
                    None if start == 0 => break (start, tail, Some((0, end))),
                    None => {}
                },
                None if start == 0 => break (start, tail, None),
                None => {}
            }
            window *= 2;
        };
        // Cut a torn last line (bytes after the last newline).
        let complete = last.map_or(0, |(_, end)| end + 1);
        if complete < tail.len() {
            tracing::warn!(file = %path.display(), bytes = tail.len() - complete, "removing a line cut short by a crash");
            file.set_len(start + complete as u64)
                .await
                .map_err(failed)?;
        }
        let Some(last) = last.map(|(from, end)| &tail[from..end]) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, text: String) -> Record {
        Record {
            topic: Arc::from("t"),
            partition: Some(0),
            offset: Some(offset),
            key: None,
            value: Some(serde_json::json!(text)),
            encoded_value: None,
            headers: Vec::new(),
            timestamp: None,
            position: None,
        }
    }

    /// A crash in the middle of a line, after a line longer than the
    /// window read at recovery: only the torn line is cut.
    #[tokio::test]
    async fn a_crash_cuts_only_the_torn_line_even_after_a_long_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = BuildContext {
            pipeline: Arc::from("p"),
            name: Arc::from("out"),
            base_dir: dir.path().to_path_buf(),
            topic: Arc::from("t"),
        };
        let config = __STRUCT__Config {
            dir: "out".into(),
            flush_size: 1,
        };
        let tp = TopicPartition {
            topic: Arc::from("t"),
            partition: 0,
        };
        let stats = Arc::new(SinkStats::default());
        let mut sink = __STRUCT__Sink::open(config.clone(), &ctx, stats.clone())
            .await
            .expect("open");
        sink.assigned(std::slice::from_ref(&tp))
            .await
            .expect("assigned");
        sink.write(&[record(0, "short".into()), record(1, "x".repeat(200_000))])
            .await
            .expect("write");
        sink.flush(FlushMode::All).await.expect("flush");
        let path = dir.path().join("out/t+0.jsonl");
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(b"{\"offset\":2,\"val");
        std::fs::write(&path, &bytes).expect("write");

        let mut again = __STRUCT__Sink::open(config, &ctx, stats)
            .await
            .expect("open");
        again
            .assigned(std::slice::from_ref(&tp))
            .await
            .expect("assigned");
        let durable = again.flush(FlushMode::All).await.expect("flush");
        assert_eq!(durable[&tp], 2);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with("x\"}\n"), "{}", &text[text.len() - 20..]);
    }
}
