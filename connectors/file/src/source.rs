//! The `file` source: streams the lines of a file (never loading it whole)
//! as records, each with its position `{byte_offset, line}` in the file, and
//! at the end of the file either ends or, with `follow`, waits for more.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use connect_core::plugin::{BuildContext, Poll, Source, SourceProgress};
use connect_core::record::value_kind;
use connect_core::{ConnectorError, ConnectorResult, Record, SourcePosition, Value};
use serde_json::json;

use crate::config::{FileSourceConfig, Format};
use crate::lines::{Line, LineReader, Next};

/// A running `file` source.
pub struct FileSource {
    config: FileSourceConfig,
    path: PathBuf,
    topic: Arc<str>,
    state: Option<Reading>,
}

impl FileSource {
    /// A source for `config`; the file is opened by [`Source::open`].
    pub fn new(config: FileSourceConfig, ctx: &BuildContext) -> Self {
        Self {
            path: ctx.resolve_path(&config.path),
            topic: ctx.topic.clone(),
            config,
            state: None,
        }
    }
}

/// The state of an open file.
struct Reading {
    /// The file's name as records and messages show it.
    file: Arc<str>,
    /// `{"file": ...}`, the source partition of every record.
    partition: Arc<Value>,
    lines: LineReader<BufReader<File>>,
    /// The end of the file was reached (without `follow`): no more records.
    exhausted: bool,
    /// The end of the file was reached with `follow`: the next poll waits
    /// `poll_interval` before reading again.
    waiting: bool,
    /// A bad line met after some good ones in a poll, returned by the next poll.
    deferred_error: Option<ConnectorError>,
    /// The file's size when it was opened (for progress).
    size: u64,
}

fn read_error(file: &str, error: std::io::Error) -> ConnectorError {
    ConnectorError::fatal_caused_by(
        format!("cannot read {file} (relative paths resolve against the pipeline file's folder)"),
        error,
    )
}

#[async_trait]
impl Source for FileSource {
    async fn open(&mut self, position: Option<SourcePosition>) -> ConnectorResult<()> {
        let file: Arc<str> = self.path.display().to_string().into();
        let partition = Arc::new(json!({ "file": file.as_ref() }));
        let mut input = File::open(&self.path).map_err(|e| read_error(&file, e))?;
        let size = input.metadata().map_err(|e| read_error(&file, e))?.len();
        let resume_at = match position {
            Some(position) if position.partition == partition => {
                Some(stored_line(&file, &position, size)?)
            }
            Some(position) => {
                tracing::warn!(
                    stored = %position.partition,
                    file = %file,
                    "the stored position is for another file; reading this one from the start"
                );
                None
            }
            None => None,
        };
        let (start, number) = resume_at.unwrap_or((0, 1));
        input
            .seek(SeekFrom::Start(start))
            .map_err(|e| read_error(&file, e))?;
        let max_bytes = usize::try_from(self.config.max_line_bytes.0).unwrap_or(usize::MAX);
        let mut lines = LineReader::new(
            BufReader::with_capacity(256 * 1024, input),
            start,
            number,
            max_bytes,
        );
        if resume_at.is_some() {
            // The stored line itself was sent: go on after it.
            lines.next_line(false).map_err(|e| read_error(&file, e))?;
        }
        tracing::info!(file = %file, from_byte = lines.consumed(), follow = self.config.follow, format = ?self.config.format, "file source open");
        self.state = Some(Reading {
            file,
            partition,
            lines,
            exhausted: false,
            waiting: false,
            deferred_error: None,
            size,
        });
        Ok(())
    }

    async fn poll(&mut self, max_records: usize) -> ConnectorResult<Poll> {
        let Some(reading) = self.state.as_mut() else {
            return Err(ConnectorError::fatal(
                "the file source was polled before it was opened",
            ));
        };
        if let Some(error) = reading.deferred_error.take() {
            return Err(error);
        }
        if reading.exhausted {
            return Ok(Poll::End);
        }
        if reading.waiting {
            // Nothing is read before the wait ends, so dropping this poll
            // (at shutdown) loses nothing.
            tokio::time::sleep(self.config.poll_interval.0).await;
            reading.check_not_truncated()?;
            reading.waiting = false;
        }
        let follow = self.config.follow;
        let mut records = Vec::with_capacity(max_records.min(4096));
        while records.len() < max_records {
            let line = match reading.lines.next_line(follow) {
                Ok(Next::Line(line)) => line,
                Ok(Next::End) => {
                    if follow {
                        reading.waiting = true;
                    } else {
                        reading.exhausted = true;
                    }
                    break;
                }
                Err(error) => return Err(read_error(&reading.file, error)),
            };
            let record = to_record(
                line,
                &reading.file,
                &reading.partition,
                &self.config,
                &self.topic,
            );
            match record {
                Ok(record) => records.push(record),
                // The lines before a bad line are returned first, so they
                // reach Kafka; the error comes with the next poll.
                Err(error) if !records.is_empty() => {
                    reading.deferred_error = Some(error);
                    break;
                }
                Err(error) => return Err(error),
            }
        }
        if records.is_empty() && reading.exhausted {
            return Ok(Poll::End);
        }
        Ok(Poll::Records(records))
    }

    fn progress(&self) -> Option<SourceProgress> {
        if self.config.follow {
            return None;
        }
        let reading = self.state.as_ref()?;
        let total = reading.size;
        let done = if reading.exhausted {
            total
        } else {
            reading.lines.consumed().min(total)
        };
        Some(SourceProgress { done, total })
    }

    async fn close(&mut self) -> ConnectorResult<()> {
        self.state = None;
        Ok(())
    }
}

impl Reading {
    /// A followed file shorter than what was read was truncated or
    /// replaced: its lines can no longer be told apart from those read.
    fn check_not_truncated(&mut self) -> ConnectorResult<()> {
        let length = self
            .lines
            .input_mut()
            .get_ref()
            .metadata()
            .map_err(|e| read_error(&self.file, e))?
            .len();
        let read = self.lines.consumed();
        if length < read {
            return Err(ConnectorError::fatal(format!(
                "{} is {length} bytes, but {read} bytes of it were already read: it was truncated or replaced; \
                 the file source follows one growing file (log rotation is not supported): \
                 reset the source position (`sluice offsets reset --source`) to read it again from the start",
                self.file
            )));
        }
        Ok(())
    }
}

/// The (byte offset, number) of the line a previous run stored, checked
/// against the file's size.
fn stored_line(file: &str, position: &SourcePosition, size: u64) -> ConnectorResult<(u64, u64)> {
    let field = |name: &str| position.offset.get(name).and_then(Value::as_u64);
    let (Some(byte_offset), Some(line)) = (field("byte_offset"), field("line")) else {
        return Err(ConnectorError::fatal(format!(
            "stored position {} of {file} is not a file source position (`byte_offset` and `line`); \
             reset the pipeline's source position (`sluice offsets reset --source`)",
            position.offset
        )));
    };
    if byte_offset >= size {
        return Err(ConnectorError::fatal(format!(
            "{file} is {size} bytes, but the stored position is line {line} at byte {byte_offset}: \
             the file was truncated or replaced since; reset the source position \
             (`sluice offsets reset --source`) to read it from the start"
        )));
    }
    Ok((byte_offset, line))
}

/// The record of `line`: its value (and key) by `format`, its position.
/// A line that cannot be a record is a [`ConnectorError::BadRecord`]
/// carrying the line and its position; the reader is already past it.
fn to_record(
    line: Line<'_>,
    file: &str,
    partition: &Arc<Value>,
    config: &FileSourceConfig,
    topic: &Arc<str>,
) -> ConnectorResult<Record> {
    let number = line.number;
    let position = SourcePosition {
        partition: partition.clone(),
        offset: json!({ "byte_offset": line.start, "line": number }),
    };
    let bad = |message: String| {
        ConnectorError::bad_record(message, Some(line.bytes.to_vec()), Some(position.clone()))
    };
    if let Some(length) = line.too_long {
        return Err(bad(format!(
            "{file}:{number}: the line is {length} bytes, more than `max_line_bytes` ({}); \
             raise `max_line_bytes` (Kafka's `message.max.bytes` limits records too)",
            config.max_line_bytes
        )));
    }
    let text = std::str::from_utf8(line.bytes).map_err(|e| {
        let column = String::from_utf8_lossy(&line.bytes[..e.valid_up_to()])
            .chars()
            .count()
            + 1;
        bad(format!(
            "{file}:{number}:{column}: not valid UTF-8; convert the file to UTF-8"
        ))
    })?;
    let (key, value) = match config.format {
        Format::Text => (None, Value::String(text.to_owned())),
        Format::Json => {
            let text = if number == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            if text.trim().is_empty() {
                return Err(bad(format!(
                    "{file}:{number}: the line is blank; with `format: json` each line must be one JSON value: \
                     remove blank lines, or skip them with `errors: {{tolerance: all}}`"
                )));
            }
            let value: Value = serde_json::from_str(text).map_err(|e| {
                let byte = e.column().saturating_sub(1).min(text.len());
                let column = String::from_utf8_lossy(&text.as_bytes()[..byte])
                    .chars()
                    .count()
                    + 1;
                let message = e.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m);
                bad(format!(
                    "{file}:{number}:{column}: not valid JSON: {message}; with `format: json` each line must be one JSON value"
                ))
            })?;
            let key = match (&config.key_field, &value) {
                (None, _) => None,
                (Some(field), Value::Object(fields)) => {
                    fields.get(field).filter(|k| !k.is_null()).cloned()
                }
                (Some(field), other) => {
                    return Err(bad(format!(
                        "{file}:{number}: `key_field: {field}` needs each line to be a JSON object, but this line is {}",
                        value_kind(other)
                    )))
                }
            };
            (key, value)
        }
    };
    Ok(Record::from_source(
        topic.clone(),
        key,
        Some(value),
        position,
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use connect_core::config::units::{ByteSize, HumanDuration};
    use connect_core::plugin::SourceConfig;
    use tempfile::TempDir;

    use super::*;

    fn config(path: &str) -> FileSourceConfig {
        FileSourceConfig {
            path: path.into(),
            format: Format::Text,
            key_field: None,
            follow: false,
            poll_interval: HumanDuration(Duration::from_millis(50)),
            max_line_bytes: ByteSize(1 << 20),
        }
    }

    fn json(path: &str) -> FileSourceConfig {
        FileSourceConfig {
            format: Format::Json,
            ..config(path)
        }
    }

    fn context(dir: &TempDir) -> BuildContext {
        BuildContext {
            pipeline: "test".into(),
            name: "source".into(),
            base_dir: dir.path().to_path_buf(),
            topic: "lines".into(),
        }
    }

    fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write input");
        path.display().to_string()
    }

    async fn open(
        dir: &TempDir,
        config: &FileSourceConfig,
        position: Option<SourcePosition>,
    ) -> ConnectorResult<Box<dyn Source>> {
        assert_eq!(config.validate(), Vec::new(), "test config must be valid");
        let mut source = config.build(&context(dir)).await?;
        source.open(position).await?;
        Ok(source)
    }

    /// Polls (batches of at most 2) until End; stops at the first error.
    async fn drain(source: &mut dyn Source) -> (Vec<Record>, Option<ConnectorError>) {
        let mut records = Vec::new();
        loop {
            match source.poll(2).await {
                Ok(Poll::Records(batch)) => {
                    assert!(batch.len() <= 2, "a poll returned more than max_records");
                    records.extend(batch);
                }
                Ok(Poll::End) => {
                    assert!(
                        matches!(source.poll(2).await, Ok(Poll::End)),
                        "End is final"
                    );
                    return (records, None);
                }
                Err(error) => return (records, Some(error)),
            }
        }
    }

    /// open → poll until End → close; the records, failing on any error.
    async fn run(
        dir: &TempDir,
        config: &FileSourceConfig,
        position: Option<SourcePosition>,
    ) -> Vec<Record> {
        let mut source = open(dir, config, position).await.expect("open");
        let (records, error) = drain(source.as_mut()).await;
        assert!(error.is_none(), "{error:?}");
        source.close().await.expect("close");
        source.close().await.expect("close twice");
        records
    }

    fn strings(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| match r.value.as_ref().expect("a value") {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    fn offsets(records: &[Record]) -> Vec<(u64, u64)> {
        records
            .iter()
            .map(|r| {
                let offset = &r.position.as_ref().expect("a position").offset;
                (
                    offset["line"].as_u64().expect("line"),
                    offset["byte_offset"].as_u64().expect("byte_offset"),
                )
            })
            .collect()
    }

    fn bad_record_message(error: Option<ConnectorError>) -> String {
        match error {
            Some(ConnectorError::BadRecord(bad)) => {
                assert!(bad.raw.is_some(), "no raw line in {bad:?}");
                assert!(bad.position.is_some(), "no position in {bad:?}");
                ConnectorError::BadRecord(bad).to_string()
            }
            other => panic!("expected a bad-record error, got {other:?}"),
        }
    }

    fn fatal_message<T: std::fmt::Debug>(result: ConnectorResult<T>) -> String {
        match result {
            Err(error @ ConnectorError::Fatal(_)) => error.to_string(),
            other => panic!("expected a fatal error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn each_line_is_a_string_record_with_its_position() {
        let dir = TempDir::new().expect("tempdir");
        let file = write(
            &dir,
            "in.txt",
            "héllo, \"world\"\r\n\nlast\\line\ttab\n".as_bytes(),
        );
        let records = run(&dir, &config("in.txt"), None).await;
        assert_eq!(
            strings(&records),
            ["héllo, \"world\"", "", "last\\line\ttab"]
        );
        assert_eq!(offsets(&records), [(1, 0), (2, 17), (3, 18)]);
        for record in &records {
            assert_eq!(&*record.topic, "lines");
            assert_eq!(record.key, None);
            let position = record.position.as_ref().expect("position");
            assert_eq!(*position.partition, json!({ "file": file }));
        }
    }

    #[tokio::test]
    async fn the_last_line_needs_no_newline_and_an_empty_last_line_is_no_record() {
        let dir = TempDir::new().expect("tempdir");
        for (text, expected) in [
            ("a\nb", vec!["a", "b"]),
            ("a\nb\n", vec!["a", "b"]),
            ("a\r\nb\r\n", vec!["a", "b"]),
            ("a\n\n", vec!["a", ""]),
            ("", vec![]),
        ] {
            write(&dir, "in.txt", text.as_bytes());
            let records = run(&dir, &config("in.txt"), None).await;
            assert_eq!(strings(&records), expected, "{text:?}");
        }
    }

    /// Resuming after each record of a full run gives exactly the rest.
    async fn assert_resumes(dir: &TempDir, config: &FileSourceConfig) {
        let full = run(dir, config, None).await;
        assert!(full.len() > 3);
        for k in 0..full.len() {
            let rest = run(dir, config, full[k].position.clone()).await;
            assert_eq!(rest, full[k + 1..], "resuming after record {k}");
        }
    }

    #[tokio::test]
    async fn resumes_right_after_the_stored_line() {
        let dir = TempDir::new().expect("tempdir");
        write(&dir, "in.txt", b"one\r\n\ntwo\nthree\r\nfour");
        assert_resumes(&dir, &config("in.txt")).await;
        write(&dir, "in.jsonl", b"{\"id\":1}\n[2]\r\n\"three\"\n4.50\n");
        assert_resumes(&dir, &json("in.jsonl")).await;
    }

    #[tokio::test]
    async fn stored_positions_of_other_files_or_shapes() {
        let dir = TempDir::new().expect("tempdir");
        write(&dir, "in.txt", b"one\ntwo\n");
        let other = SourcePosition {
            partition: Arc::new(json!({ "file": "/elsewhere.txt" })),
            offset: json!({ "byte_offset": 4, "line": 2 }),
        };
        assert_eq!(
            strings(&run(&dir, &config("in.txt"), Some(other)).await),
            ["one", "two"],
            "another file's position: from the start"
        );

        let full = run(&dir, &config("in.txt"), None).await;
        let partition = full[0]
            .position
            .as_ref()
            .expect("position")
            .partition
            .clone();
        let foreign = SourcePosition {
            partition: partition.clone(),
            offset: json!({ "record": 3 }),
        };
        let message = fatal_message(open(&dir, &config("in.txt"), Some(foreign)).await.map(drop));
        assert!(
            message.contains("is not a file source position"),
            "{message}"
        );

        let past_the_end = SourcePosition {
            partition,
            offset: json!({ "byte_offset": 8, "line": 3 }),
        };
        let message = fatal_message(
            open(&dir, &config("in.txt"), Some(past_the_end))
                .await
                .map(drop),
        );
        assert!(
            message.contains("is 8 bytes, but the stored position is line 3 at byte 8"),
            "{message}"
        );
        assert!(
            message.contains("sluice offsets reset --source"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn json_lines_become_values_keyed_by_key_field() {
        let dir = TempDir::new().expect("tempdir");
        write(
            &dir,
            "in.jsonl",
            "\u{feff}{\"id\":\"a\",\"n\":335.90698726000005,\"z\":0.0}\n{\"n\":1}\n{\"id\":7, \"x\": [1, {\"y\": null}]}\n{\"id\":null}\n"
                .as_bytes(),
        );
        let config = FileSourceConfig {
            key_field: Some("id".into()),
            ..json("in.jsonl")
        };
        let records = run(&dir, &config, None).await;
        assert_eq!(
            strings(&records),
            [
                r#"{"id":"a","n":335.90698726000005,"z":0.0}"#,
                r#"{"n":1}"#,
                r#"{"id":7,"x":[1,{"y":null}]}"#,
                r#"{"id":null}"#
            ]
        );
        let keys: Vec<Option<Value>> = records.iter().map(|r| r.key.clone()).collect();
        assert_eq!(keys, [Some(json!("a")), None, Some(json!(7)), None]);
    }

    #[tokio::test]
    async fn bad_json_lines_are_bad_records_at_their_line_and_column() {
        let dir = TempDir::new().expect("tempdir");
        let file = write(
            &dir,
            "in.jsonl",
            "{\"a\":1}\n{\"a\":2}\n{\"é\": tru}\n{\"a\":3}\n   \n[4]\n\"x\" 5\n".as_bytes(),
        );
        let config = FileSourceConfig {
            key_field: Some("a".into()),
            ..json("in.jsonl")
        };
        let mut source = open(&dir, &config, None).await.expect("open");
        let (records, error) = drain(source.as_mut()).await;
        // The good lines before the bad one reach Kafka first.
        assert_eq!(strings(&records), [r#"{"a":1}"#, r#"{"a":2}"#]);
        let message = bad_record_message(error);
        assert!(
            message.starts_with(&format!("{file}:3:10: not valid JSON: expected ident")),
            "{message}"
        );
        // The source goes on after a bad line.
        let (records, error) = drain(source.as_mut()).await;
        assert_eq!(strings(&records), [r#"{"a":3}"#]);
        let message = bad_record_message(error);
        assert!(
            message.starts_with(&format!("{file}:5: the line is blank")),
            "{message}"
        );
        let (records, error) = drain(source.as_mut()).await;
        assert!(records.is_empty());
        let message = bad_record_message(error);
        assert!(
            message.contains(
                ":6: `key_field: a` needs each line to be a JSON object, but this line is an array"
            ),
            "{message}"
        );
        let (_, error) = drain(source.as_mut()).await;
        let message = bad_record_message(error);
        assert!(
            message.contains(":7:5: not valid JSON: trailing characters"),
            "{message}"
        );
        let (records, error) = drain(source.as_mut()).await;
        assert!(records.is_empty() && error.is_none());
    }

    #[tokio::test]
    async fn invalid_utf8_is_a_bad_record_at_its_character_column() {
        let dir = TempDir::new().expect("tempdir");
        let file = write(&dir, "in.txt", b"ok\n\xc3\xa9t\xc3\xa9 \xff!\nafter\n");
        let mut source = open(&dir, &config("in.txt"), None).await.expect("open");
        let (records, error) = drain(source.as_mut()).await;
        assert_eq!(strings(&records), ["ok"]);
        let message = bad_record_message(error);
        assert!(
            message.starts_with(&format!("{file}:2:5: not valid UTF-8")),
            "{message}"
        );
        let (records, error) = drain(source.as_mut()).await;
        assert_eq!(strings(&records), ["after"]);
        assert!(error.is_none());
    }

    #[tokio::test]
    async fn a_line_longer_than_max_line_bytes_is_a_bad_record() {
        let dir = TempDir::new().expect("tempdir");
        let file = write(&dir, "in.txt", b"short\n0123456789ABCDEF\nok\n");
        let config = FileSourceConfig {
            max_line_bytes: ByteSize(8),
            ..config("in.txt")
        };
        let mut source = open(&dir, &config, None).await.expect("open");
        let (records, error) = drain(source.as_mut()).await;
        assert_eq!(strings(&records), ["short"]);
        let message = bad_record_message(error);
        assert!(
            message.starts_with(&format!(
                "{file}:2: the line is 16 bytes, more than `max_line_bytes` (8B)"
            )),
            "{message}"
        );
        let (records, error) = drain(source.as_mut()).await;
        assert_eq!(strings(&records), ["ok"]);
        assert_eq!(offsets(&records), [(3, 23)]);
        assert!(error.is_none());
    }

    async fn poll_records(source: &mut dyn Source) -> Vec<Record> {
        match source.poll(100).await.expect("poll") {
            Poll::Records(records) => records,
            Poll::End => panic!("a followed file never ends"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn follow_waits_for_more_lines_and_for_the_end_of_the_last_one() {
        let dir = TempDir::new().expect("tempdir");
        write(&dir, "in.txt", b"one\ntw");
        let config = FileSourceConfig {
            follow: true,
            ..config("in.txt")
        };
        let mut source = open(&dir, &config, None).await.expect("open");
        assert_eq!(source.progress(), None, "a followed file has no end");
        assert_eq!(strings(&poll_records(source.as_mut()).await), ["one"]);
        let started = tokio::time::Instant::now();
        assert!(poll_records(source.as_mut()).await.is_empty());
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "waited poll_interval"
        );

        let mut appender = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("in.txt"))
            .expect("open for append");
        appender.write_all(b"o\r\nthree\nfo").expect("append");
        let records = poll_records(source.as_mut()).await;
        assert_eq!(strings(&records), ["two", "three"]);
        assert_eq!(offsets(&records), [(2, 4), (3, 9)]);
        assert!(poll_records(source.as_mut()).await.is_empty());
        appender.write_all(b"ur\n").expect("append");
        let records = poll_records(source.as_mut()).await;
        assert_eq!(strings(&records), ["four"]);

        // A restart in follow mode goes on after the stored line.
        let position = records[0].position.clone();
        source.close().await.expect("close");
        appender.write_all(b"five\n").expect("append");
        let mut source = open(&dir, &config, position).await.expect("reopen");
        assert_eq!(strings(&poll_records(source.as_mut()).await), ["five"]);

        // A truncated file is noticed at the next look.
        assert!(poll_records(source.as_mut()).await.is_empty());
        std::fs::write(dir.path().join("in.txt"), b"new\n").expect("truncate");
        let message = fatal_message(source.poll(100).await);
        assert!(
            message.contains("it was truncated or replaced"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn progress_counts_bytes_read() {
        let dir = TempDir::new().expect("tempdir");
        write(&dir, "in.txt", b"aaaa\nbbbb\ncccc\n");
        let mut source = open(&dir, &config("in.txt"), None).await.expect("open");
        assert_eq!(
            source.progress(),
            Some(SourceProgress { done: 0, total: 15 })
        );
        let Poll::Records(records) = source.poll(1).await.expect("poll") else {
            panic!("expected records")
        };
        assert_eq!(records.len(), 1);
        assert_eq!(
            source.progress(),
            Some(SourceProgress { done: 5, total: 15 })
        );
        drain(source.as_mut()).await;
        assert_eq!(
            source.progress(),
            Some(SourceProgress {
                done: 15,
                total: 15
            })
        );
    }

    #[tokio::test]
    async fn missing_files_and_polls_before_open_are_fatal() {
        let dir = TempDir::new().expect("tempdir");
        let message = fatal_message(open(&dir, &config("nope.txt"), None).await.map(drop));
        assert!(
            message.contains(&dir.path().join("nope.txt").display().to_string()),
            "{message}"
        );
        let mut source = FileSource::new(config("x.txt"), &context(&dir));
        let message = fatal_message(source.poll(1).await);
        assert!(message.contains("before it was opened"), "{message}");
    }

    #[tokio::test]
    async fn a_folder_or_glob_splits_into_one_stream_per_file() {
        let dir = TempDir::new().expect("tempdir");
        std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
        for name in ["b.log", "a.log", ".hidden", "c.txt"] {
            std::fs::write(dir.path().join("logs").join(name), format!("{name}\n")).expect("write");
        }
        let names = |streams: Option<Vec<connect_core::plugin::SourceStream>>| {
            streams
                .expect("split")
                .iter()
                .map(|s| {
                    let file = s.partition["file"].as_str().expect("file").to_owned();
                    file.rsplit('/').next().unwrap_or_default().to_owned()
                })
                .collect::<Vec<_>>()
        };
        let ctx = context(&dir);
        assert_eq!(
            names(config("logs").split(&ctx).expect("split")),
            ["a.log", "b.log", "c.txt"]
        );
        assert_eq!(
            names(config("logs/*.log").split(&ctx).expect("split")),
            ["a.log", "b.log"]
        );
        assert!(config("logs/a.log").split(&ctx).expect("split").is_none());
        let message = fatal_message(config("logs/*.csv").split(&ctx));
        assert!(message.contains("no files match"), "{message}");

        // Each stream reads its own file, and its records carry the stream's partition.
        let streams = config("logs").split(&ctx).expect("split").expect("streams");
        for stream in streams {
            let mut source = stream.config.build(&ctx).await.expect("build");
            source.open(None).await.expect("open");
            let (records, _) = drain(source.as_mut()).await;
            assert_eq!(records.len(), 1);
            assert_eq!(
                *records[0].position.as_ref().expect("position").partition,
                stream.partition
            );
        }
    }
}
