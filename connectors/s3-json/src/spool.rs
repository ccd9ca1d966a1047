//! Large objects on local disk: an open object that outgrows
//! `multipart_threshold` moves its lines *and* its record index to two
//! unnamed files in `spool_dir`, and keeps growing there. Memory per such
//! object is two write buffers, whatever its size; the closed object is
//! uploaded from the file as a multipart upload, one part at a time.
//!
//! The files are unnamed (`O_TMPFILE` where the system has it): nothing is
//! left behind when the process dies, and a crash loses nothing either,
//! since the records of an object that has not landed are read again from
//! Kafka (their offsets were never committed).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

/// Write buffer of a spooling object's lines.
const DATA_BUFFER: usize = 64 << 10;
/// Write buffer of its record index (`ENTRY` bytes per record).
const INDEX_BUFFER: usize = 8 << 10;
/// One index entry: the record's offset and its end byte, little-endian.
const ENTRY: usize = 16;

/// Memory a spooling object holds, whatever its size (its write buffers).
pub const SPOOLING_OBJECT_MEMORY: usize = DATA_BUFFER + INDEX_BUFFER;

/// An open object growing on disk.
#[derive(Debug)]
pub struct SpoolWriter {
    dir: Arc<PathBuf>,
    data: BufWriter<File>,
    index: BufWriter<File>,
    len: u64,
    count: usize,
    first_offset: i64,
    last_offset: i64,
}

impl SpoolWriter {
    /// Moves an object held in memory (`body`, and its `(offset, end byte)`
    /// records, at least one) to two new files in `dir`.
    pub fn create(dir: Arc<PathBuf>, body: &[u8], records: &[(i64, usize)]) -> io::Result<Self> {
        let data = tempfile::tempfile_in(dir.as_path())?;
        let index = tempfile::tempfile_in(dir.as_path())?;
        let mut writer = Self {
            dir,
            data: BufWriter::with_capacity(DATA_BUFFER, data),
            index: BufWriter::with_capacity(INDEX_BUFFER, index),
            len: 0,
            count: 0,
            first_offset: -1,
            last_offset: -1,
        };
        writer.data.write_all(body)?;
        writer.len = body.len() as u64;
        for &(offset, end) in records {
            writer.push_entry(offset, end as u64)?;
        }
        Ok(writer)
    }

    fn push_entry(&mut self, offset: i64, end: u64) -> io::Result<()> {
        let mut entry = [0u8; ENTRY];
        entry[..8].copy_from_slice(&offset.to_le_bytes());
        entry[8..].copy_from_slice(&end.to_le_bytes());
        self.index.write_all(&entry)?;
        if self.count == 0 {
            self.first_offset = offset;
        }
        self.count += 1;
        self.last_offset = offset;
        Ok(())
    }

    /// Appends one record's line (with its newline).
    pub fn append(&mut self, line: &[u8], offset: i64) -> io::Result<()> {
        self.data.write_all(line)?;
        self.len += line.len() as u64;
        self.push_entry(offset, self.len)
    }

    /// Bytes of lines written.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no line is written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records written.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Offset of the first record.
    pub fn first_offset(&self) -> i64 {
        self.first_offset
    }

    /// The object, closed: its files, flushed.
    pub fn finish(self) -> io::Result<Spooled> {
        let data = self.data.into_inner().map_err(|e| e.into_error())?;
        let index = self.index.into_inner().map_err(|e| e.into_error())?;
        Ok(Spooled {
            dir: self.dir,
            data: Arc::new(data),
            index,
            len: self.len,
            count: self.count,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
        })
    }
}

fn read_entry(index: &File, i: usize) -> io::Result<(i64, u64)> {
    let mut entry = [0u8; ENTRY];
    index.read_exact_at(&mut entry, (i * ENTRY) as u64)?;
    let (offset, end) = entry.split_at(8);
    Ok((
        i64::from_le_bytes(offset.try_into().expect("8 bytes")),
        u64::from_le_bytes(end.try_into().expect("8 bytes")),
    ))
}

/// A closed object on disk: its lines and its record index.
#[derive(Debug)]
pub struct Spooled {
    dir: Arc<PathBuf>,
    data: Arc<File>,
    index: File,
    len: u64,
    count: usize,
    first_offset: i64,
    last_offset: i64,
}

impl Spooled {
    /// Records in it.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Bytes of lines.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it has no line.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of its first record.
    pub fn first_offset(&self) -> i64 {
        self.first_offset
    }

    /// Offset of its last record.
    pub fn last_offset(&self) -> i64 {
        self.last_offset
    }

    /// Offset and end byte of record `i`.
    pub fn record(&self, i: usize) -> io::Result<(i64, u64)> {
        read_entry(&self.index, i)
    }

    /// The number of records with an offset up to `last` (offsets increase).
    pub fn count_through(&self, last: i64) -> io::Result<usize> {
        if last < self.first_offset {
            return Ok(0);
        }
        if last >= self.last_offset {
            return Ok(self.count);
        }
        let (mut low, mut high) = (0, self.count);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.record(middle)?.0 <= last {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        Ok(low)
    }

    /// The lines from byte `start` to the end.
    pub fn body_from(&self, start: u64) -> SpooledBody {
        SpooledBody {
            dir: self.dir.clone(),
            file: self.data.clone(),
            start,
            len: self.len - start.min(self.len),
        }
    }
}

/// A byte range of a local file: an object's body too large for memory.
#[derive(Debug, Clone)]
pub struct SpooledBody {
    dir: Arc<PathBuf>,
    file: Arc<File>,
    start: u64,
    len: u64,
}

impl SpooledBody {
    /// Its length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads `buf.len()` bytes from `at` (relative to the body's start).
    pub fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, self.start + at)
    }

    /// A reader over the whole body.
    pub fn reader(&self) -> impl Read + '_ {
        RangeReader {
            file: &self.file,
            at: self.start,
            end: self.start + self.len,
        }
    }

    /// A new unnamed file beside this body's, for an encoding of it.
    pub fn new_file(&self) -> io::Result<BufWriter<File>> {
        let file = tempfile::tempfile_in(self.dir.as_path())?;
        Ok(BufWriter::with_capacity(DATA_BUFFER, file))
    }

    /// What was written to a [`Self::new_file`], as a body.
    pub fn written(&self, out: BufWriter<File>) -> io::Result<SpooledBody> {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        let len = file.metadata()?.len();
        Ok(SpooledBody {
            dir: self.dir.clone(),
            file: Arc::new(file),
            start: 0,
            len,
        })
    }
}

/// An object's body: in memory, or a range of a local file.
#[derive(Debug, Clone)]
pub enum Body {
    /// Small enough for memory.
    Memory(Bytes),
    /// On disk.
    Spooled(SpooledBody),
}

impl Body {
    /// Its length.
    pub fn len(&self) -> u64 {
        match self {
            Body::Memory(bytes) => bytes.len() as u64,
            Body::Spooled(body) => body.len(),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body, read (tests).
    #[cfg(test)]
    pub fn bytes(&self) -> Bytes {
        self.clone()
            .into_bytes()
            .expect("a spooled body reads back")
    }

    /// The whole body in memory (a spooled one is read).
    pub fn into_bytes(self) -> io::Result<Bytes> {
        match self {
            Body::Memory(bytes) => Ok(bytes),
            Body::Spooled(body) => {
                let len = usize::try_from(body.len()).map_err(io::Error::other)?;
                let mut bytes = vec![0; len];
                body.read_exact_at(&mut bytes, 0)?;
                Ok(bytes.into())
            }
        }
    }
}

struct RangeReader<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let read = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spooled_object_keeps_its_lines_and_index_and_finds_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let dir = Arc::new(dir.path().to_path_buf());
        let mut writer = SpoolWriter::create(dir, b"a\nbb\n", &[(3, 2), (5, 5)]).unwrap();
        writer.append(b"ccc\n", 9).unwrap();
        writer.append(b"d\n", 10).unwrap();
        assert_eq!((writer.len(), writer.count()), (11, 4));
        let spooled = writer.finish().unwrap();
        assert_eq!((spooled.first_offset(), spooled.last_offset()), (3, 10));
        assert_eq!(spooled.record(2).unwrap(), (9, 9));
        let counts: Vec<usize> = [2, 3, 4, 5, 8, 9, 10, 11]
            .iter()
            .map(|&o| spooled.count_through(o).unwrap())
            .collect();
        assert_eq!(counts, [0, 1, 1, 2, 2, 3, 4, 4]);
        let body = spooled.body_from(2);
        let mut text = String::new();
        body.reader().read_to_string(&mut text).unwrap();
        assert_eq!(text, "bb\nccc\nd\n");
        let mut two = [0u8; 2];
        body.read_exact_at(&mut two, 3).unwrap();
        assert_eq!(&two, b"cc");
        let mut out = body.new_file().unwrap();
        out.write_all(b"BB\nCCC\nD\n").unwrap();
        let upper = body.written(out).unwrap();
        let mut text = String::new();
        upper.reader().read_to_string(&mut text).unwrap();
        assert_eq!((text.as_str(), upper.len()), ("BB\nCCC\nD\n", 9));
    }
}
