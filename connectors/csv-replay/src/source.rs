//! The `csv_replay` source: streams a CSV file (never loading it whole),
//! types each cell, keys each record and paces the replay.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use connect_core::plugin::{BuildContext, Poll, Source, SourceProgress};
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
    /// Per column, the JSON text before its value (see [`Replay::open`]).
    members: Vec<Vec<u8>>,
    /// Their total length.
    members_len: usize,
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
    /// An error met after some rows of a poll, returned by the next poll.
    deferred_error: Option<ConnectorError>,
    row: ByteRecord,
    delimiter: u8,
    /// Rows end with CRLF: their csv positions are one line and one byte early.
    crlf: bool,
    /// Uncompressed size of the file, when known (for progress).
    size: Option<u64>,
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
        match position {
            Some(position) if position.partition == replay.partition => replay.resume(&position)?,
            Some(position) => tracing::warn!(
                stored = %position.partition,
                file = %replay.file,
                "the stored position is for another file; replaying this one from the start"
            ),
            None => {}
        }
        self.state = Some(replay);
        Ok(())
    }

    async fn poll(&mut self, max_records: usize) -> ConnectorResult<Poll> {
        let Some(replay) = self.state.as_mut() else {
            return Err(ConnectorError::fatal(
                "csv_replay was polled before it was opened",
            ));
        };
        let remaining = self
            .config
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(replay.emitted));
        if remaining == 0 || replay.exhausted {
            return Ok(Poll::End);
        }
        let allowed = replay.pacer.allowance(replay.emitted).await;
        let count = allowed.min(max_records as u64).min(remaining) as usize;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if let Some(error) = replay.deferred_error.take() {
            return Err(error);
        }
        let mut records = Vec::with_capacity(count);
        while records.len() < count {
            let next = replay
                .next_row(&self.config)
                .and_then(|more| more.then(|| replay.to_record(&self.topic)).transpose());
            match next {
                Ok(Some(mut record)) => {
                    record.timestamp = Some(timestamp);
                    records.push(record);
                    replay.emitted += 1;
                }
                Ok(None) => {
                    replay.exhausted = true;
                    break;
                }
                // The rows before a bad row are returned first, so they reach
                // Kafka; the error comes with the next poll.
                Err(error) if !records.is_empty() => {
                    replay.deferred_error = Some(error);
                    break;
                }
                Err(error) => return Err(error),
            }
        }
        if records.is_empty() && replay.exhausted {
            return Ok(Poll::End);
        }
        Ok(Poll::Records(records))
    }

    fn progress(&self) -> Option<SourceProgress> {
        let replay = self.state.as_ref()?;
        if self.config.repeat {
            return None;
        }
        match &replay.rows {
            Rows::Indexed { starts, next, .. } => Some(SourceProgress {
                done: *next as u64,
                total: starts.len() as u64,
            }),
            Rows::Stream { reader, .. } => {
                let total = replay.size?;
                let done = if replay.exhausted {
                    total
                } else {
                    reader.position().byte().min(total)
                };
                Some(SourceProgress { done, total })
            }
        }
    }

    async fn close(&mut self) -> ConnectorResult<()> {
        self.state = None;
        Ok(())
    }
}

/// The size of the file's content: its length, or for gzip the size its
/// trailer records (exact for one member under 4 GiB, an estimate otherwise).
fn uncompressed_size(path: &std::path::Path, gzip: bool) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    if !gzip {
        return Some(length);
    }
    file.seek(std::io::SeekFrom::End(-4)).ok()?;
    let mut trailer = [0u8; 4];
    file.read_exact(&mut trailer).ok()?;
    Some(u64::from(u32::from_le_bytes(trailer)))
}

fn open_error(
    path: &std::path::Path,
    error: impl std::error::Error + Send + Sync + 'static,
) -> ConnectorError {
    ConnectorError::fatal_caused_by(
        format!(
            "cannot read CSV file {} (relative paths resolve against the pipeline file's folder)",
            path.display()
        ),
        error,
    )
}

/// Opens `path` as a byte stream, decompressing gzip (detected by its magic bytes).
fn open_stream(path: &std::path::Path) -> ConnectorResult<(Box<dyn Read + Send>, bool)> {
    let mut file = File::open(path).map_err(|e| open_error(path, e))?;
    let mut magic = [0u8; 2];
    let gzip =
        file.read(&mut magic).map_err(|e| open_error(path, e))? == 2 && magic == [0x1f, 0x8b];
    file.rewind().map_err(|e| open_error(path, e))?;
    let reader: Box<dyn Read + Send> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            file,
        )))
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
        let headers = reader
            .byte_headers()
            .map_err(|e| csv_error(&file, e))?
            .clone();
        // The csv crate starts a row that follows a CRLF at its `\n`, one line
        // and one byte early (rust-csv#395); after a CRLF header it has not
        // counted the header's line yet.
        let crlf = reader.position().line()
            == 1 + headers.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
        let columns: Vec<String> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let name = String::from_utf8_lossy(h).into_owned();
                if i == 0 {
                    name.trim_start_matches('\u{feff}').to_owned()
                } else {
                    name
                }
            })
            .collect();
        if columns.is_empty() || columns.iter().all(String::is_empty) {
            return Err(ConnectorError::fatal(format!(
                "{file}:1: the file has no header row; its first row must name the columns"
            )));
        }
        let column_list = || {
            columns
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let key_index = match &config.key_column {
            Some(key) => Some(columns.iter().position(|c| c == key).ok_or_else(|| {
                ConnectorError::fatal(format!(
                    "key_column `{key}` is not a column of {file}; its columns are {}",
                    column_list()
                ))
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
        while sample.len() < config.infer_rows
            && reader
                .read_byte_record(&mut row)
                .map_err(|e| csv_error(&file, e))?
        {
            sample.push_back(row.clone());
        }
        let types: Vec<ColumnType> = columns
            .iter()
            .enumerate()
            .map(|(i, name)| {
                config.columns.get(name).copied().unwrap_or_else(|| {
                    typing::infer(sample.iter().map(|r| {
                        r.get(i)
                            .and_then(|f| std::str::from_utf8(f).ok())
                            .unwrap_or("")
                    }))
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
                    let mut temp =
                        tempfile::NamedTempFile::new().map_err(|e| open_error(path, e))?;
                    let (mut input, _) = open_stream(path)?;
                    std::io::copy(&mut input, &mut temp).map_err(|e| open_error(path, e))?;
                    let plain = temp.reopen().map_err(|e| open_error(path, e))?;
                    (Some(temp), plain)
                } else {
                    (None, File::open(path).map_err(|e| open_error(path, e))?)
                };
                let mut reader = csv_reader(config, plain);
                let mut starts = Vec::new();
                while reader
                    .read_byte_record(&mut row)
                    .map_err(|e| csv_error(&file, e))?
                {
                    if let Some(position) = row.position() {
                        starts.push(position.clone());
                    }
                }
                starts.shuffle(&mut rng);
                Rows::Indexed {
                    reader,
                    starts,
                    next: 0,
                    _decompressed: decompressed,
                }
            }
        };
        // `{"Index":`, `,"Date":`, ...: each column's name as it opens its
        // member of the JSON object, encoded once.
        let members = columns
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut member = if i == 0 { b"{".to_vec() } else { b",".to_vec() };
                serde_json::to_writer(&mut member, name).map(|()| {
                    member.push(b':');
                    member
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                ConnectorError::fatal(format!(
                    "{file}: a column name cannot be written as JSON: {e}"
                ))
            })?;
        Ok(Replay {
            partition: Arc::new(json!({ "file": file.as_ref() })),
            file,
            columns,
            members_len: members.iter().map(Vec::len).sum(),
            members,
            types,
            key_index,
            rows,
            emitted: 0,
            pass: 0,
            seed,
            rng,
            pacer: Pacer::new(config.rate),
            exhausted: false,
            deferred_error: None,
            row,
            delimiter: config.delimiter as u8,
            crlf,
            size: uncompressed_size(path, gzip),
        })
    }

    /// Continues after `position` (from a previous run): the same pass, the
    /// row after the stored one.
    fn resume(&mut self, position: &SourcePosition) -> ConnectorResult<()> {
        let field = |name: &str| position.offset.get(name).and_then(Value::as_u64);
        let (Some(record), Some(pass), Some(byte_offset)) =
            (field("record"), field("pass"), field("byte_offset"))
        else {
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
                None => reader
                    .read_byte_record(&mut self.row)
                    .map_err(|e| csv_error(&self.file, e)),
            },
            Rows::Indexed {
                reader,
                starts,
                next,
                ..
            } => {
                let Some(start) = starts.get(*next) else {
                    return Ok(false);
                };
                *next += 1;
                reader
                    .seek(start.clone())
                    .map_err(|e| csv_error(&self.file, e))?;
                reader
                    .read_byte_record(&mut self.row)
                    .map_err(|e| csv_error(&self.file, e))
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
                reader
                    .byte_headers()
                    .map_err(|e| csv_error(&self.file, e))?;
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
            Err(ConnectorError::fatal(format!(
                "{}: `loop: true` but the file has no rows",
                self.file
            )))
        }
    }

    /// Converts the current row into a record. A malformed row is a
    /// [`ConnectorError::BadRecord`] carrying the row and its position: the
    /// reader has already moved past it, so the replay can go on.
    fn to_record(&self, topic: &Arc<str>) -> ConnectorResult<Record> {
        let row = &self.row;
        let shift = u64::from(self.crlf);
        let (line, byte) = row
            .position()
            .map_or((0, 0), |p| (p.line() + shift, p.byte() + shift));
        let offset = match &self.rows {
            Rows::Stream { .. } => {
                json!({ "line": line, "byte_offset": byte, "record": self.emitted, "pass": self.pass })
            }
            Rows::Indexed { next, .. } => json!({
                "line": line, "byte_offset": byte, "record": self.emitted, "pass": self.pass,
                "index": next.saturating_sub(1), "seed": self.seed,
            }),
        };
        let position = SourcePosition {
            partition: self.partition.clone(),
            offset,
        };
        let bad = |message: String| {
            let raw = row.iter().collect::<Vec<_>>().join(&[self.delimiter][..]);
            ConnectorError::bad_record(message, Some(raw), Some(position.clone()))
        };
        if row.len() != self.columns.len() {
            return Err(bad(format!(
                "{}:{line}: the row has {} fields but the header has {}; fix the row (a field containing the delimiter must be quoted)",
                self.file,
                row.len(),
                self.columns.len()
            )));
        }
        // The value is written as JSON text as the cells are checked: no
        // value is built but the key's (see `Record::encoded_value`).
        // (Room for quotes, `null`s and a few escapes, so that the buffer
        // is allocated once.)
        let mut json =
            Vec::with_capacity(row.as_slice().len() + self.members_len + 8 * row.len() + 2);
        let mut key = None;
        // Where field `i` starts when the raw row cannot be read again: the
        // characters of the fields before it and their delimiters, counted
        // only for an error message.
        let column = |i: usize| {
            1 + row
                .iter()
                .take(i)
                .map(|cell| String::from_utf8_lossy(cell).chars().count() + 1)
                .sum::<usize>()
        };
        for (i, raw) in row.iter().enumerate() {
            let name = &self.columns[i];
            let text = std::str::from_utf8(raw).map_err(|e| {
                let valid =
                    std::str::from_utf8(&raw[..e.valid_up_to()]).map_or(0, |v| v.chars().count());
                bad(format!(
                    "{}:{line}:{}: column `{name}`: not valid UTF-8; convert the file to UTF-8",
                    self.file,
                    self.value_column(byte, i).unwrap_or_else(|| column(i)) + valid
                ))
            })?;
            json.extend_from_slice(&self.members[i]);
            typing::write_json(text, self.types[i], &mut json).map_err(|message| {
                bad(format!(
                    "{}:{line}:{}: column `{name}`: {message}, the column's {} type; fix the row or declare the column's type under `columns:`",
                    self.file,
                    self.value_column(byte, i).unwrap_or_else(|| column(i)),
                    if self.types[i] == ColumnType::String { "string" } else { "declared or inferred" }
                ))
            })?;
            // An empty key cell means no key (not the text `null`).
            if self.key_index == Some(i) && !text.is_empty() {
                key = typing::convert(text, self.types[i]).ok();
            }
        }
        // `open` refused a file without columns: `{` was written.
        json.push(b'}');
        Ok(Record::from_source_encoded(
            topic.clone(),
            key,
            json,
            position,
        ))
    }

    /// The 1-based character column where the value of field `index` starts
    /// (after its opening quote, if quoted) in the row at byte `start`. A
    /// parsed row no longer shows its quotes, so this re-reads the raw row;
    /// only error messages need it.
    fn value_column(&self, start: u64, index: usize) -> Option<usize> {
        let (input, _) = open_stream(std::path::Path::new(self.file.as_ref())).ok()?;
        let mut input = BufReader::new(input);
        std::io::copy(&mut (&mut input).take(start), &mut std::io::sink()).ok()?;
        let mut bytes = input.bytes();
        let (mut field, mut column, mut quoted) = (0, 1, false);
        while field < index {
            let byte = bytes.next()?.ok()?;
            match byte {
                b'"' => quoted = !quoted,
                b'\n' | b'\r' if !quoted => return None,
                _ if byte == self.delimiter && !quoted => field += 1,
                _ => {}
            }
            // Count characters, not UTF-8 continuation bytes.
            if byte & 0xC0 != 0x80 {
                column += 1;
            }
        }
        Some(column + usize::from(matches!(bytes.next(), Some(Ok(b'"')))))
    }
}

fn csv_error(file: &str, error: csv::Error) -> ConnectorError {
    let location = error
        .position()
        .map(|p| format!(":{}", p.line()))
        .unwrap_or_default();
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
        let Some(rate) = self.per_second else {
            return u64::MAX;
        };
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::Write;

    use connect_core::plugin::SourceConfig;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use tempfile::TempDir;

    use super::*;

    const PRICES: &str = "\
Index,Date,Open,High,Low,Close,Adj Close,Volume
HSI,1986-12-31,2568.300049,2568.300049,2568.300049,2568.300049,2568.300049,0.0
HSI,1987-01-02,2540.100098,2540.100098,2540.100098,2540.100098,2540.100098,0.0
N225,1965-01-05,1257.719971,,1257.719971,1257.719971,1257.719971,0
000001.SS,1997-07-02,1199.060059,1199.060059,1164.099976,1164.099976,1164.099976,335.90698726000005
";

    /// The records of `PRICES`, as `serde_json` writes their values.
    const PRICE_VALUES: [&str; 4] = [
        r#"{"Index":"HSI","Date":"1986-12-31","Open":2568.300049,"High":2568.300049,"Low":2568.300049,"Close":2568.300049,"Adj Close":2568.300049,"Volume":0.0}"#,
        r#"{"Index":"HSI","Date":"1987-01-02","Open":2540.100098,"High":2540.100098,"Low":2540.100098,"Close":2540.100098,"Adj Close":2540.100098,"Volume":0.0}"#,
        r#"{"Index":"N225","Date":"1965-01-05","Open":1257.719971,"High":null,"Low":1257.719971,"Close":1257.719971,"Adj Close":1257.719971,"Volume":0}"#,
        r#"{"Index":"000001.SS","Date":"1997-07-02","Open":1199.060059,"High":1199.060059,"Low":1164.099976,"Close":1164.099976,"Adj Close":1164.099976,"Volume":335.90698726000005}"#,
    ];

    fn write_plain(dir: &TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn write_gz(dir: &TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        let mut encoder = GzEncoder::new(File::create(&path).unwrap(), Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap();
        path
    }

    /// A CSV with columns `id,label` and `rows` rows `i,r<i>`.
    fn numbered(rows: usize) -> String {
        let mut text = String::from("id,label\n");
        for i in 0..rows {
            text.push_str(&format!("{i},r{i}\n"));
        }
        text
    }

    fn config(path: &str) -> CsvReplayConfig {
        CsvReplayConfig {
            path: path.into(),
            key_column: None,
            columns: BTreeMap::new(),
            infer_rows: 1000,
            order: Order::File,
            seed: None,
            limit: None,
            rate: Rate::Max,
            repeat: false,
            delimiter: ',',
        }
    }

    fn context(dir: &TempDir) -> BuildContext {
        BuildContext {
            pipeline: "test".into(),
            name: "source".into(),
            base_dir: dir.path().to_path_buf(),
            topic: "prices".into(),
        }
    }

    /// Builds and opens the source the way the runtime does.
    async fn open(
        dir: &TempDir,
        config: &CsvReplayConfig,
        position: Option<SourcePosition>,
    ) -> ConnectorResult<Box<dyn Source>> {
        assert_eq!(config.validate(), Vec::new(), "test config must be valid");
        let mut source = config.build(&context(dir)).await?;
        source.open(position).await?;
        Ok(source)
    }

    /// Polls until `Poll::End`, with batches of at most `max_records`;
    /// the values (given as JSON text) decoded.
    async fn drain(source: &mut dyn Source, max_records: usize) -> ConnectorResult<Vec<Record>> {
        let mut records = Vec::new();
        for _ in 0..100_000 {
            match source.poll(max_records).await? {
                Poll::Records(batch) => {
                    assert!(
                        batch.len() <= max_records,
                        "a poll returned more than max_records"
                    );
                    for mut record in batch {
                        assert!(
                            record.value.is_none() && record.encoded_value.is_some(),
                            "csv_replay gives its values as JSON text"
                        );
                        record.decode_value().expect("the value is JSON");
                        records.push(record);
                    }
                }
                Poll::End => {
                    // End is final.
                    assert!(matches!(source.poll(max_records).await?, Poll::End));
                    return Ok(records);
                }
            }
        }
        panic!("the source never ended");
    }

    /// open → poll until End → close.
    async fn run(
        dir: &TempDir,
        config: &CsvReplayConfig,
        position: Option<SourcePosition>,
    ) -> ConnectorResult<Vec<Record>> {
        let mut source = open(dir, config, position).await?;
        let records = drain(source.as_mut(), 3).await;
        source.close().await?;
        source.close().await?;
        records
    }

    /// The message of a skipped bad row, which must carry the row and its position.
    fn bad_record_message(result: ConnectorResult<impl std::fmt::Debug>) -> String {
        match result {
            Err(ConnectorError::BadRecord(bad)) => {
                assert!(
                    bad.raw.as_ref().is_some_and(|r| !r.is_empty()),
                    "no raw row in {bad:?}"
                );
                assert!(bad.position.is_some(), "no position in {bad:?}");
                ConnectorError::BadRecord(bad).to_string()
            }
            other => panic!("expected a bad-record error, got {other:?}"),
        }
    }

    fn fatal_message(result: ConnectorResult<impl std::fmt::Debug>) -> String {
        match result {
            Err(error @ ConnectorError::Fatal(_)) => error.to_string(),
            other => panic!("expected a fatal error, got {other:?}"),
        }
    }

    /// The record's value, decoded or decoded from its JSON text.
    fn value_of(record: &Record) -> Value {
        let mut record = record.clone();
        record.decode_value().expect("the value is JSON");
        record.value.expect("a value")
    }

    fn values(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| serde_json::to_string(&value_of(r)).unwrap())
            .collect()
    }

    fn ids(records: &[Record]) -> Vec<u64> {
        records
            .iter()
            .map(|r| value_of(r)["id"].as_u64().unwrap())
            .collect()
    }

    fn offset(record: &Record, field: &str) -> u64 {
        record.position.as_ref().unwrap().offset[field]
            .as_u64()
            .unwrap()
    }

    /// Records without their timestamps (the wall-clock time of the poll).
    fn untimed(records: &[Record]) -> Vec<Record> {
        records
            .iter()
            .cloned()
            .map(|r| Record {
                timestamp: None,
                ..r
            })
            .collect()
    }

    #[tokio::test]
    async fn every_row_becomes_a_typed_keyed_record_in_file_order() {
        let dir = TempDir::new().unwrap();
        let path = write_plain(&dir, "prices.csv", PRICES);
        let config = CsvReplayConfig {
            key_column: Some("Index".into()),
            ..config("prices.csv")
        };

        let records = run(&dir, &config, None).await.unwrap();

        assert_eq!(values(&records), PRICE_VALUES);
        let keys: Vec<_> = records
            .iter()
            .map(|r| serde_json::to_string(r.key.as_ref().unwrap()).unwrap())
            .collect();
        assert_eq!(
            keys,
            [r#""HSI""#, r#""HSI""#, r#""N225""#, r#""000001.SS""#]
        );
        let lines: Vec<&str> = PRICES.lines().collect();
        let mut byte_offset = lines[0].len() + 1;
        for (i, record) in records.iter().enumerate() {
            assert_eq!(&*record.topic, "prices");
            assert!(record.timestamp.is_some());
            let position = record.position.as_ref().unwrap();
            assert_eq!(
                *position.partition,
                json!({ "file": path.display().to_string() })
            );
            assert_eq!(
                position.offset,
                json!({ "line": i + 2, "byte_offset": byte_offset, "record": i, "pass": 0 })
            );
            byte_offset += lines[i + 1].len() + 1;
        }
    }

    #[tokio::test]
    async fn records_have_no_key_without_key_column() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "prices.csv", PRICES);
        let records = run(&dir, &config("prices.csv"), None).await.unwrap();
        assert_eq!(records.len(), 4);
        assert!(records.iter().all(|r| r.key.is_none()));
    }

    #[tokio::test]
    async fn a_row_with_the_wrong_number_of_fields_is_a_bad_record() {
        let dir = TempDir::new().unwrap();
        let path = write_plain(&dir, "bad.csv", "a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n");
        let message = bad_record_message(run(&dir, &config("bad.csv"), None).await);
        assert!(
            message.contains(&format!("{}:3:", path.display())),
            "{message}"
        );
        assert!(
            message.contains("the row has 4 fields but the header has 3"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_value_that_is_not_its_declared_type_is_a_bad_record_at_its_column() {
        let dir = TempDir::new().unwrap();
        // A multi-byte character before the bad cell: the column counts characters, not bytes.
        let text = "City,Day,Volume\nParis,1,10\nLyon,2,20\nZürich,3,1.5\n";
        let path = write_plain(&dir, "declared.csv", text);
        let config = CsvReplayConfig {
            columns: BTreeMap::from([("Volume".to_owned(), ColumnType::Integer)]),
            ..config("declared.csv")
        };
        let bad_line = text.lines().nth(3).unwrap();
        let column = bad_line[..bad_line.rfind(',').unwrap()].chars().count() + 2;
        assert_eq!(column, 10);
        let message = bad_record_message(run(&dir, &config, None).await);
        assert!(
            message.contains(&format!("{}:4:{column}: column `Volume`", path.display())),
            "{message}"
        );
        assert!(message.contains("`1.5` is not an integer"), "{message}");
    }

    #[tokio::test]
    async fn a_value_that_is_not_its_inferred_type_after_the_sample_is_a_bad_record() {
        let dir = TempDir::new().unwrap();
        let path = write_plain(
            &dir,
            "inferred.csv",
            "Name,Close\nA,1.5\nB,2.25\nC,3\nD,n/a\n",
        );
        let config = CsvReplayConfig {
            infer_rows: 2,
            ..config("inferred.csv")
        };
        let message = bad_record_message(run(&dir, &config, None).await);
        assert!(
            message.contains(&format!("{}:5:3: column `Close`", path.display())),
            "{message}"
        );
        assert!(message.contains("`n/a` is not a float"), "{message}");

        // With the whole file as the sample, the column is a string and nothing fails.
        let config = CsvReplayConfig {
            infer_rows: 10,
            ..config
        };
        let records = run(&dir, &config, None).await.unwrap();
        assert_eq!(values(&records)[3], r#"{"Name":"D","Close":"n/a"}"#);
    }

    #[tokio::test]
    async fn a_gzip_file_gives_the_same_records() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "x.csv", PRICES);
        write_gz(&dir, "x.csv.gz", PRICES);
        let plain = run(
            &dir,
            &CsvReplayConfig {
                key_column: Some("Index".into()),
                ..config("x.csv")
            },
            None,
        )
        .await
        .unwrap();
        let gz = run(
            &dir,
            &CsvReplayConfig {
                key_column: Some("Index".into()),
                ..config("x.csv.gz")
            },
            None,
        )
        .await
        .unwrap();

        assert_eq!(values(&gz), PRICE_VALUES);
        assert_eq!(gz.len(), plain.len());
        for (g, p) in gz.iter().zip(&plain) {
            assert_eq!(g.key, p.key);
            assert_eq!(g.value, p.value);
            // Same offsets (in the decompressed text), a different file.
            assert_eq!(
                g.position.as_ref().unwrap().offset,
                p.position.as_ref().unwrap().offset
            );
            assert!(g.position.as_ref().unwrap().partition["file"]
                .as_str()
                .unwrap()
                .ends_with("x.csv.gz"));
        }
    }

    #[tokio::test]
    async fn limit_stops_after_that_many_records() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "prices.csv", PRICES);
        let records = run(
            &dir,
            &CsvReplayConfig {
                limit: Some(2),
                ..config("prices.csv")
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(values(&records), PRICE_VALUES[..2]);

        // A limit larger than the file ends at the end of the file.
        let records = run(
            &dir,
            &CsvReplayConfig {
                limit: Some(100),
                ..config("prices.csv")
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(records.len(), 4);
    }

    #[tokio::test]
    async fn loop_starts_again_and_counts_passes() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "three.csv", &numbered(3));
        for name in ["three.csv", "three.csv.gz"] {
            if name.ends_with(".gz") {
                write_gz(&dir, name, &numbered(3));
            }
            let config = CsvReplayConfig {
                repeat: true,
                limit: Some(7),
                ..config(name)
            };
            let records = run(&dir, &config, None).await.unwrap();
            assert_eq!(ids(&records), [0, 1, 2, 0, 1, 2, 0], "{name}");
            let passes: Vec<u64> = records.iter().map(|r| offset(r, "pass")).collect();
            assert_eq!(passes, [0, 0, 0, 1, 1, 1, 2], "{name}");
            let counts: Vec<u64> = records.iter().map(|r| offset(r, "record")).collect();
            assert_eq!(counts, [0, 1, 2, 3, 4, 5, 6], "{name}");
            let lines: Vec<u64> = records.iter().map(|r| offset(r, "line")).collect();
            assert_eq!(lines, [2, 3, 4, 2, 3, 4, 2], "{name}");
        }
    }

    #[tokio::test]
    async fn loop_keeps_the_delimiter() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "semi.csv", "a;b\n1;x\n2;y\n");
        let config = CsvReplayConfig {
            repeat: true,
            limit: Some(4),
            delimiter: ';',
            ..config("semi.csv")
        };
        let records = run(&dir, &config, None).await.unwrap();
        assert_eq!(
            values(&records),
            [
                r#"{"a":1,"b":"x"}"#,
                r#"{"a":2,"b":"y"}"#,
                r#"{"a":1,"b":"x"}"#,
                r#"{"a":2,"b":"y"}"#
            ]
        );
    }

    #[tokio::test]
    async fn loop_over_a_file_without_rows_is_fatal() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "empty.csv", "a,b\n");
        assert_eq!(
            run(&dir, &config("empty.csv"), None).await.unwrap().len(),
            0
        );
        let message = fatal_message(
            run(
                &dir,
                &CsvReplayConfig {
                    repeat: true,
                    ..config("empty.csv")
                },
                None,
            )
            .await,
        );
        assert!(message.contains("the file has no rows"), "{message}");
    }

    fn random(path: &str, seed: u64) -> CsvReplayConfig {
        CsvReplayConfig {
            order: Order::Random,
            seed: Some(seed),
            ..config(path)
        }
    }

    #[tokio::test]
    async fn random_order_is_a_seeded_shuffle_of_every_row() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "fifty.csv", &numbered(50));
        write_gz(&dir, "fifty.csv.gz", &numbered(50));
        let file_order: Vec<u64> = (0..50).collect();

        let first = ids(&run(&dir, &random("fifty.csv", 42), None).await.unwrap());
        assert_ne!(first, file_order);
        assert_eq!(
            first.iter().copied().collect::<BTreeSet<_>>(),
            file_order.iter().copied().collect()
        );
        assert_eq!(first.len(), 50, "each row exactly once");

        let again = ids(&run(&dir, &random("fifty.csv", 42), None).await.unwrap());
        assert_eq!(again, first);
        let other = ids(&run(&dir, &random("fifty.csv", 43), None).await.unwrap());
        assert_ne!(other, first);
        assert_eq!(
            other.iter().copied().collect::<BTreeSet<_>>(),
            file_order.iter().copied().collect()
        );

        let gz = run(&dir, &random("fifty.csv.gz", 42), None).await.unwrap();
        assert_eq!(ids(&gz), first);
        // Each record's position still names its own row.
        for record in &gz {
            let id = record.value.as_ref().unwrap()["id"].as_u64().unwrap();
            assert_eq!(offset(record, "line"), id + 2);
            assert_eq!(offset(record, "seed"), 42);
        }
        let values: Vec<&str> = gz
            .iter()
            .map(|r| r.value.as_ref().unwrap()["label"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = first.iter().map(|i| format!("r{i}")).collect();
        assert_eq!(values, expected);
    }

    #[tokio::test]
    async fn random_order_with_loop_reshuffles_every_pass() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "ten.csv", &numbered(10));
        let config = CsvReplayConfig {
            repeat: true,
            limit: Some(30),
            ..random("ten.csv", 7)
        };
        let records = ids(&run(&dir, &config, None).await.unwrap());
        let passes: Vec<&[u64]> = records.chunks(10).collect();
        for pass in &passes {
            assert_eq!(
                pass.iter().copied().collect::<BTreeSet<_>>(),
                (0..10).collect()
            );
        }
        assert!(
            passes[0] != passes[1] || passes[1] != passes[2],
            "passes should be reshuffled"
        );
    }

    /// Resuming after each record of a full run continues with the next one.
    async fn assert_resumes(dir: &TempDir, config: &CsvReplayConfig) {
        let full = run(dir, config, None).await.unwrap();
        assert!(full.len() > 3);
        for k in 0..full.len() {
            let position = full[k].position.clone();
            let rest = run(dir, config, position).await.unwrap();
            assert_eq!(
                untimed(&rest),
                untimed(&full[k + 1..]),
                "{}: resuming after record {k}",
                config.path.display()
            );
        }
    }

    #[tokio::test]
    async fn resumes_after_a_stored_position_in_file_order() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "prices.csv", PRICES);
        write_gz(&dir, "prices.csv.gz", PRICES);
        for name in ["prices.csv", "prices.csv.gz"] {
            let config = CsvReplayConfig {
                key_column: Some("Index".into()),
                ..config(name)
            };
            assert_resumes(&dir, &config).await;
            // A sample smaller than the file: resuming past the sample.
            assert_resumes(
                &dir,
                &CsvReplayConfig {
                    infer_rows: 1,
                    ..config.clone()
                },
            )
            .await;
            // In a loop, across passes.
            assert_resumes(
                &dir,
                &CsvReplayConfig {
                    repeat: true,
                    limit: Some(10),
                    ..config
                },
            )
            .await;
        }
    }

    #[tokio::test]
    async fn resumes_after_a_stored_position_in_random_order() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "twelve.csv", &numbered(12));
        write_gz(&dir, "twelve.csv.gz", &numbered(12));
        for name in ["twelve.csv", "twelve.csv.gz"] {
            assert_resumes(&dir, &random(name, 5)).await;
            assert_resumes(
                &dir,
                &CsvReplayConfig {
                    repeat: true,
                    limit: Some(30),
                    ..random(name, 5)
                },
            )
            .await;
        }
    }

    #[tokio::test]
    async fn resuming_random_order_needs_the_same_seed() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "twelve.csv", &numbered(12));
        let full = run(&dir, &random("twelve.csv", 5), None).await.unwrap();
        let message =
            fatal_message(run(&dir, &random("twelve.csv", 6), full[3].position.clone()).await);
        assert!(message.contains("random seed Some(5)"), "{message}");

        let foreign = SourcePosition {
            partition: full[3].position.as_ref().unwrap().partition.clone(),
            offset: json!({ "line": 3 }),
        };
        let message = fatal_message(run(&dir, &config("twelve.csv"), Some(foreign)).await);
        assert!(
            message.contains("is not a csv_replay position"),
            "{message}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_paces_the_records() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "fifty.csv", &numbered(50));
        let config = CsvReplayConfig {
            rate: Rate::PerSecond(100.0),
            ..config("fifty.csv")
        };
        let started = Instant::now();
        let mut source = open(&dir, &config, None).await.unwrap();

        let Poll::Records(first) = source.poll(1000).await.unwrap() else {
            panic!("expected records")
        };
        assert!(
            !first.is_empty() && first.len() <= 2,
            "first poll returned {} records",
            first.len()
        );

        let mut records = first;
        records.extend(drain(source.as_mut(), 1000).await.unwrap());
        source.close().await.unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(ids(&records), (0..50).collect::<Vec<_>>());
        assert!(
            (0.45..=0.6).contains(&elapsed),
            "50 records at 100/s took {elapsed} s"
        );
    }

    #[tokio::test]
    async fn max_rate_returns_full_batches() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "fifty.csv", &numbered(50));
        let mut source = open(&dir, &config("fifty.csv"), None).await.unwrap();
        let Poll::Records(first) = source.poll(20).await.unwrap() else {
            panic!("expected records")
        };
        assert_eq!(first.len(), 20);
    }

    #[tokio::test]
    async fn a_missing_file_is_fatal_and_named() {
        let dir = TempDir::new().unwrap();
        let message = fatal_message(run(&dir, &config("nope.csv"), None).await);
        assert!(
            message.contains(&dir.path().join("nope.csv").display().to_string()),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_key_column_not_in_the_header_is_fatal_and_lists_the_columns() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "prices.csv", PRICES);
        let config = CsvReplayConfig {
            key_column: Some("Ticker".into()),
            ..config("prices.csv")
        };
        let message = fatal_message(run(&dir, &config, None).await);
        assert!(
            message.contains("key_column `Ticker` is not a column"),
            "{message}"
        );
        assert!(
            message
                .contains("`Index`, `Date`, `Open`, `High`, `Low`, `Close`, `Adj Close`, `Volume`"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_declared_column_not_in_the_header_is_fatal() {
        let dir = TempDir::new().unwrap();
        write_plain(&dir, "prices.csv", PRICES);
        let config = CsvReplayConfig {
            columns: BTreeMap::from([
                ("Volume".to_owned(), ColumnType::Float),
                ("Vol".to_owned(), ColumnType::Integer),
            ]),
            ..config("prices.csv")
        };
        let message = fatal_message(run(&dir, &config, None).await);
        assert!(
            message.contains("columns: `Vol` is not a column"),
            "{message}"
        );
        assert!(message.contains("`Volume`"), "{message}");
    }

    #[tokio::test]
    async fn polling_before_open_is_fatal() {
        let dir = TempDir::new().unwrap();
        let mut source = CsvReplaySource::new(config("x.csv"), &context(&dir));
        let message = fatal_message(source.poll(1).await);
        assert!(message.contains("before it was opened"), "{message}");
    }

    #[tokio::test]
    async fn the_error_column_counts_quotes_and_characters_of_the_raw_row() {
        let dir = TempDir::new().unwrap();
        // CRLF line ends, quoted fields (one holding the delimiter) and a multi-byte character before the bad value.
        let text = "City,Day,Volume\r\n\"Paris, FR\",1,10\r\n\"Zürich\",\"2\",\"1.5\"\r\n";
        // `"Zürich"` is columns 1-8, `,` 9, `"2"` 10-12, `,` 13, `"` 14: the value starts at 15.
        let column = 15;
        write_plain(&dir, "quoted.csv", text);
        write_gz(&dir, "quoted.csv.gz", text);
        let declared = BTreeMap::from([("Volume".to_owned(), ColumnType::Integer)]);
        for config in [
            config("quoted.csv"),
            config("quoted.csv.gz"),
            random("quoted.csv", 1),
            random("quoted.csv.gz", 1),
        ] {
            let path = dir.path().join(&config.path);
            let config = CsvReplayConfig {
                columns: declared.clone(),
                ..config
            };
            let message = bad_record_message(run(&dir, &config, None).await);
            assert!(
                message.contains(&format!("{}:3:{column}: column `Volume`", path.display())),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn invalid_utf8_is_a_bad_record_at_its_character_column() {
        let dir = TempDir::new().unwrap();
        // `é,éé` then an invalid byte: character column 5 (byte column 7).
        let path = dir.path().join("latin.csv");
        std::fs::write(&path, b"A,B\n\xc3\xa9,\xc3\xa9\xc3\xa9\xff\n").unwrap();
        let message = bad_record_message(run(&dir, &config("latin.csv"), None).await);
        assert!(
            message.contains(&format!(
                "{}:2:5: column `B`: not valid UTF-8",
                path.display()
            )),
            "{message}"
        );

        // Quoted: `"é","éé` then the invalid byte at column 8.
        std::fs::write(&path, b"A,B\n\"\xc3\xa9\",\"\xc3\xa9\xc3\xa9\xff\"\n").unwrap();
        let message = bad_record_message(run(&dir, &config("latin.csv"), None).await);
        assert!(
            message.contains(&format!(
                "{}:2:8: column `B`: not valid UTF-8",
                path.display()
            )),
            "{message}"
        );
    }

    #[tokio::test]
    async fn crlf_rows_have_their_own_line_and_byte_offset() {
        let dir = TempDir::new().unwrap();
        let text = PRICES.replace('\n', "\r\n");
        write_plain(&dir, "crlf.csv", &text);
        write_gz(&dir, "crlf.csv.gz", &text);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let starts: Vec<usize> = lines
            .iter()
            .scan(0, |at, l| Some(std::mem::replace(at, *at + l.len())))
            .collect();
        for config in [
            config("crlf.csv"),
            config("crlf.csv.gz"),
            random("crlf.csv", 3),
            random("crlf.csv.gz", 3),
        ] {
            let records = run(&dir, &config, None).await.unwrap();
            assert_eq!(records.len(), 4);
            for record in &records {
                let row = PRICE_VALUES
                    .iter()
                    .position(|v| {
                        *v == serde_json::to_string(record.value.as_ref().unwrap()).unwrap()
                    })
                    .unwrap();
                assert_eq!(
                    offset(record, "line"),
                    row as u64 + 2,
                    "{}",
                    config.path.display()
                );
                assert_eq!(
                    offset(record, "byte_offset"),
                    starts[row + 1] as u64,
                    "{}",
                    config.path.display()
                );
            }
            assert_resumes(&dir, &config).await;
            assert_resumes(
                &dir,
                &CsvReplayConfig {
                    repeat: true,
                    limit: Some(9),
                    infer_rows: 1,
                    ..config
                },
            )
            .await;
        }

        // A header with a quoted line break is not mistaken for CRLF.
        write_plain(&dir, "multiline.csv", "\"Long\nName\",V\nx,1\ny,2\n");
        let records = run(&dir, &config("multiline.csv"), None).await.unwrap();
        assert_eq!(
            values(&records),
            [r#"{"Long\nName":"x","V":1}"#, r#"{"Long\nName":"y","V":2}"#]
        );
        assert_eq!(
            records
                .iter()
                .map(|r| offset(r, "line"))
                .collect::<Vec<_>>(),
            [3, 4]
        );
        assert_eq!(
            records
                .iter()
                .map(|r| offset(r, "byte_offset"))
                .collect::<Vec<_>>(),
            [14, 18]
        );
    }
}
