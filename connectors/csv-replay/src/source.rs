//! The `csv_replay` source: streams a CSV file (never loading it whole),
//! types each cell, keys each record and paces the replay.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use connect_core::plugin::{BuildContext, Poll, Source};
use connect_core::{ConnectorError, ConnectorResult, Record, SourcePosition, Value};
use csv::{ByteRecord, Position};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::json;
use tokio::time::Instant;

use crate::config::{ColumnType, CsvReplayConfig, Order, Rate};
use crate::typing;

/// A running `csv_replay` source.
pub struct CsvReplaySource {
    config: CsvReplayConfig,
    path: PathBuf,
    topic: Arc<str>,
    state: Option<Replay>,
}

impl CsvReplaySource {
    /// A source for `config`; the file is opened by [`Source::open`].
    pub fn new(config: CsvReplayConfig, ctx: &BuildContext) -> Self {
        Self {
            path: ctx.resolve_path(&config.path),
            topic: ctx.topic.clone(),
            config,
            state: None,
        }
    }
}

/// The state of an open replay.
struct Replay {
    file: Arc<str>,
    columns: Vec<String>,
    types: Vec<ColumnType>,
    key_index: Option<usize>,
    rows: Rows,
    partition: Arc<Value>,
    emitted: u64,
    pass: u64,
    seed: u64,
    rng: StdRng,
    pacer: Pacer,
    exhausted: bool,
    row: ByteRecord,
    delimiter: u8,
}

/// Where the rows come from.
enum Rows {
    /// File order: the sampled rows first, then the rest of the stream.
    Stream {
        reader: csv::Reader<Box<dyn Read + Send>>,
        sample: VecDeque<ByteRecord>,
    },
    /// Random order: row start positions, shuffled, read by seeking.
    Indexed {
        reader: csv::Reader<File>,
        starts: Vec<Position>,
        next: usize,
        /// Keeps a decompressed copy of a gzip file alive while it is read.
        _decompressed: Option<tempfile::NamedTempFile>,
    },
}

#[async_trait]
impl Source for CsvReplaySource {
    async fn open(&mut self, position: Option<SourcePosition>) -> ConnectorResult<()> {
        let mut replay = Replay::open(&self.config, &self.path)?;
        if let Some(position) = position {
            replay.resume(&position)?;
        }
        self.state = Some(replay);
        Ok(())
    }

    async fn poll(&mut self, max_records: usize) -> ConnectorResult<Poll> {
        let Some(replay) = self.state.as_mut() else {
            return Err(ConnectorError::fatal("csv_replay was polled before it was opened"));
        };
        let remaining = self.config.limit.map_or(u64::MAX, |l| l.saturating_sub(replay.emitted));
        if remaining == 0 || replay.exhausted {
            return Ok(Poll::End);
        }
        let allowed = replay.pacer.allowance(replay.emitted).await;
        let count = allowed.min(max_records as u64).min(remaining) as usize;
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut records = Vec::with_capacity(count);
        while records.len() < count {
            if !replay.next_row(&self.config)? {
                replay.exhausted = true;
                break;
            }
            let mut record = replay.to_record(&self.topic)?;
            record.timestamp = Some(timestamp);
            records.push(record);
            replay.emitted += 1;
        }
        if records.is_empty() && replay.exhausted {
            return Ok(Poll::End);
        }
        Ok(Poll::Records(records))
    }

    async fn close(&mut self) -> ConnectorResult<()> {
        self.state = None;
        Ok(())
    }
}

fn open_error(path: &std::path::Path, error: impl std::error::Error + Send + Sync + 'static) -> ConnectorError {
    ConnectorError::fatal_caused_by(
        format!("cannot read CSV file {} (relative paths resolve against the pipeline file's folder)", path.display()),
        error,
    )
}

/// Opens `path` as a byte stream, decompressing gzip (detected by its magic bytes).
fn open_stream(path: &std::path::Path) -> ConnectorResult<(Box<dyn Read + Send>, bool)> {
    let mut file = File::open(path).map_err(|e| open_error(path, e))?;
    let mut magic = [0u8; 2];
    let gzip = file.read(&mut magic).map_err(|e| open_error(path, e))? == 2 && magic == [0x1f, 0x8b];
    file.rewind().map_err(|e| open_error(path, e))?;
    let reader: Box<dyn Read + Send> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, file)))
    } else {
        Box::new(file)
    };
    Ok((reader, gzip))
}

fn csv_reader<R: Read>(config: &CsvReplayConfig, input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .delimiter(config.delimiter as u8)
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(input)
}

impl Replay {
    fn open(config: &CsvReplayConfig, path: &std::path::Path) -> ConnectorResult<Replay> {
        let file: Arc<str> = path.display().to_string().into();
        let (input, gzip) = open_stream(path)?;
        let mut reader = csv_reader(config, input);
        let columns: Vec<String> = reader
            .byte_headers()
            .map_err(|e| csv_error(&file, e))?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let name = String::from_utf8_lossy(h).into_owned();
                if i == 0 { name.trim_start_matches('\u{feff}').to_owned() } else { name }
            })
            .collect();
        if columns.is_empty() || columns.iter().all(String::is_empty) {
            return Err(ConnectorError::fatal(format!("{file}:1: the file has no header row; its first row must name the columns")));
        }
        let column_list = || columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        let key_index = match &config.key_column {
            Some(key) => Some(columns.iter().position(|c| c == key).ok_or_else(|| {
                ConnectorError::fatal(format!("key_column `{key}` is not a column of {file}; its columns are {}", column_list()))
            })?),
            None => None,
        };
        for declared in config.columns.keys() {
            if !columns.contains(declared) {
                return Err(ConnectorError::fatal(format!(
                    "columns: `{declared}` is not a column of {file}; its columns are {}",
                    column_list()
                )));
            }
        }

        let mut sample = VecDeque::new();
        let mut row = ByteRecord::new();
        while sample.len() < config.infer_rows && reader.read_byte_record(&mut row).map_err(|e| csv_error(&file, e))? {
            sample.push_back(row.clone());
        }
        let types: Vec<ColumnType> = columns
            .iter()
            .enumerate()
            .map(|(i, name)| {
                config.columns.get(name).copied().unwrap_or_else(|| {
                    typing::infer(sample.iter().map(|r| r.get(i).and_then(|f| std::str::from_utf8(f).ok()).unwrap_or("")))
                })
            })
            .collect();
        tracing::info!(file = %file, ?columns, ?types, sampled = sample.len(), "CSV columns typed");

        let seed = config.seed.unwrap_or_else(rand::random);
        let mut rng = StdRng::seed_from_u64(seed);
        let rows = match config.order {
            Order::File => Rows::Stream { reader, sample },
            Order::Random => {
                tracing::info!(file = %file, seed, "random order; set `seed` to this value to replay the same order");
                drop(reader);
                let (decompressed, plain) = if gzip {
                    let mut temp = tempfile::NamedTempFile::new().map_err(|e| open_error(path, e))?;
                    let (mut input, _) = open_stream(path)?;
                    std::io::copy(&mut input, &mut temp).map_err(|e| open_error(path, e))?;
                    let plain = temp.reopen().map_err(|e| open_error(path, e))?;
                    (Some(temp), plain)
                } else {
                    (None, File::open(path).map_err(|e| open_error(path, e))?)
                };
                let mut reader = csv_reader(config, plain);
                let mut starts = Vec::new();
                while reader.read_byte_record(&mut row).map_err(|e| csv_error(&file, e))? {
                    if let Some(position) = row.position() {
                        starts.push(position.clone());
                    }
                }
                starts.shuffle(&mut rng);
                Rows::Indexed { reader, starts, next: 0, _decompressed: decompressed }
            }
        };
        Ok(Replay {
            partition: Arc::new(json!({ "file": file.as_ref() })),
            file,
            columns,
            types,
            key_index,
            rows,
            emitted: 0,
            pass: 0,
            seed,
            rng,
            pacer: Pacer::new(config.rate),
            exhausted: false,
            row,
            delimiter: config.delimiter as u8,
        })
    }

    /// Continues after `position` (from a previous run): the same pass, the
    /// row after the stored one.
    fn resume(&mut self, position: &SourcePosition) -> ConnectorResult<()> {
        let field = |name: &str| position.offset.get(name).and_then(Value::as_u64);
        let (Some(record), Some(pass), Some(byte_offset)) = (field("record"), field("pass"), field("byte_offset")) else {
            return Err(ConnectorError::fatal(format!(
                "stored position {} of {} is not a csv_replay position; reset the pipeline's source offsets",
                position.offset, self.file
            )));
        };
        if matches!(self.rows, Rows::Indexed { .. }) && field("seed") != Some(self.seed) {
            return Err(ConnectorError::fatal(format!(
                "the stored position of {} was made with random seed {:?}; set `seed` to it to resume",
                self.file,
                field("seed")
            )));
        }
        for _ in 0..pass {
            self.restart()?;
        }
        match &mut self.rows {
            Rows::Indexed { next, .. } => *next = field("index").map_or(0, |i| i as usize + 1),
            Rows::Stream { .. } => loop {
                let at = self.rows_peek_offset();
                if at.is_none_or(|at| at > byte_offset) {
                    break;
                }
                self.advance()?;
            },
        }
        self.emitted = record + 1;
        Ok(())
    }

    /// The byte offset of the row [`advance`](Self::advance) would return next (file order only).
    fn rows_peek_offset(&mut self) -> Option<u64> {
        match &mut self.rows {
            Rows::Stream { reader, sample } => match sample.front() {
                Some(row) => row.position().map(Position::byte),
                None => {
                    let mut row = ByteRecord::new();
                    match reader.read_byte_record(&mut row) {
                        Ok(true) => {
                            let at = row.position().map(Position::byte);
                            sample.push_back(row);
                            at
                        }
                        _ => None,
                    }
                }
            },
            Rows::Indexed { .. } => None,
        }
    }

    /// Moves to the next row without converting it; false at the end of a pass.
    fn advance(&mut self) -> ConnectorResult<bool> {
        match &mut self.rows {
            Rows::Stream { reader, sample } => match sample.pop_front() {
                Some(row) => {
                    self.row = row;
                    Ok(true)
                }
                None => reader.read_byte_record(&mut self.row).map_err(|e| csv_error(&self.file, e)),
            },
            Rows::Indexed { reader, starts, next, .. } => {
                let Some(start) = starts.get(*next) else { return Ok(false) };
                *next += 1;
                reader.seek(start.clone()).map_err(|e| csv_error(&self.file, e))?;
                reader.read_byte_record(&mut self.row).map_err(|e| csv_error(&self.file, e))
            }
        }
    }

    /// Starts the next pass over the file.
    fn restart(&mut self) -> ConnectorResult<()> {
        self.pass += 1;
        match &mut self.rows {
            Rows::Stream { reader, sample } => {
                sample.clear();
                let path = std::path::PathBuf::from(self.file.as_ref());
                let (input, _) = open_stream(&path)?;
                *reader = csv::ReaderBuilder::new()
                    .delimiter(self.delimiter)
                    .flexible(true)
                    .buffer_capacity(256 * 1024)
                    .from_reader(input);
                reader.byte_headers().map_err(|e| csv_error(&self.file, e))?;
            }
            Rows::Indexed { starts, next, .. } => {
                starts.shuffle(&mut self.rng);
                *next = 0;
            }
        }
        Ok(())
    }

    /// Moves to the next row (looping when configured); false at the end of input.
    fn next_row(&mut self, config: &CsvReplayConfig) -> ConnectorResult<bool> {
        if self.advance()? {
            return Ok(true);
        }
        if !config.repeat {
            return Ok(false);
        }
        self.restart()?;
        if self.advance()? {
            Ok(true)
        } else {
            Err(ConnectorError::fatal(format!("{}: `loop: true` but the file has no rows", self.file)))
        }
    }

    /// Converts the current row into a record.
    fn to_record(&self, topic: &Arc<str>) -> ConnectorResult<Record> {
        let row = &self.row;
        let (line, byte) = row.position().map_or((0, 0), |p| (p.line(), p.byte()));
        if row.len() != self.columns.len() {
            return Err(ConnectorError::fatal(format!(
                "{}:{line}: the row has {} fields but the header has {}; fix the row (a field containing the delimiter must be quoted)",
                self.file,
                row.len(),
                self.columns.len()
            )));
        }
        let mut fields = serde_json::Map::with_capacity(self.columns.len());
        let mut column = 1;
        for (i, raw) in row.iter().enumerate() {
            let name = &self.columns[i];
            let text = std::str::from_utf8(raw).map_err(|e| {
                ConnectorError::fatal(format!(
                    "{}:{line}:{}: column `{name}`: not valid UTF-8; convert the file to UTF-8",
                    self.file,
                    column + e.valid_up_to()
                ))
            })?;
            let value = typing::convert(text, self.types[i]).map_err(|message| {
                ConnectorError::fatal(format!(
                    "{}:{line}:{column}: column `{name}`: {message}, the column's {} type; fix the row or declare the column's type under `columns:`",
                    self.file,
                    if self.types[i] == ColumnType::String { "string" } else { "declared or inferred" }
                ))
            })?;
            fields.insert(name.clone(), value);
            column += text.chars().count() + 1;
        }
        let key = self.key_index.map(|k| fields.get(&self.columns[k]).cloned().unwrap_or(Value::Null));
        let offset = match &self.rows {
            Rows::Stream { .. } => json!({ "line": line, "byte_offset": byte, "record": self.emitted, "pass": self.pass }),
            Rows::Indexed { next, .. } => json!({
                "line": line, "byte_offset": byte, "record": self.emitted, "pass": self.pass,
                "index": next.saturating_sub(1), "seed": self.seed,
            }),
        };
        Ok(Record::from_source(
            topic.clone(),
            key,
            Some(Value::Object(fields)),
            SourcePosition { partition: self.partition.clone(), offset },
        ))
    }
}

fn csv_error(file: &str, error: csv::Error) -> ConnectorError {
    let location = error.position().map(|p| format!(":{}", p.line())).unwrap_or_default();
    ConnectorError::fatal_caused_by(format!("{file}{location}: cannot read CSV"), error)
}

/// Paces records to a rate: the n-th record (from 0) is due `n / rate`
/// seconds after the first poll.
struct Pacer {
    per_second: Option<f64>,
    started: Option<Instant>,
    base: u64,
}

impl Pacer {
    fn new(rate: Rate) -> Self {
        Self {
            per_second: match rate {
                Rate::Max => None,
                Rate::PerSecond(r) => Some(r),
            },
            started: None,
            base: 0,
        }
    }

    /// Waits until at least one record is due; returns how many are due.
    async fn allowance(&mut self, emitted: u64) -> u64 {
        let Some(rate) = self.per_second else { return u64::MAX };
        let started = *self.started.get_or_insert_with(|| {
            self.base = emitted;
            Instant::now()
        });
        let done = emitted - self.base;
        let due_at = started + Duration::from_secs_f64(done as f64 / rate);
        tokio::time::sleep_until(due_at).await;
        let due_total = (started.elapsed().as_secs_f64() * rate).floor() as u64 + 1;
        due_total.saturating_sub(done).max(1)
    }
}
