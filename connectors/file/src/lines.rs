//! Splits a byte stream into lines, streaming, with the byte offset and
//! number of each line.
//!
//! A line ends at `\n`; a `\r` before it is not part of the line. The bytes
//! after the last `\n` are a line only when the input has ended for good
//! (not when following a growing file), and only when there are any: the
//! empty "line" after a final newline is not a line.

use std::io::BufRead;

/// A line read by [`LineReader::next_line`].
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// Its 1-based number.
    pub number: u64,
    /// The byte offset of its first byte.
    pub start: u64,
    /// Its bytes, without the newline and a `\r` before it; only the first
    /// `max_bytes` of them when it is [`too_long`](Self::too_long).
    pub bytes: &'a [u8],
    /// Its whole length (newline excluded) when that is more than `max_bytes`.
    pub too_long: Option<u64>,
}

/// What [`LineReader::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// A whole line.
    Line(Line<'a>),
    /// The end of the input for now (see [`LineReader::next_line`]).
    End,
}

/// Reads lines from `input`, keeping an unfinished line between calls.
#[derive(Debug)]
pub struct LineReader<R> {
    input: R,
    max_bytes: usize,
    /// The first `max_bytes + 2` bytes of the line being read (enough for a
    /// line of `max_bytes` and its `\r\n`).
    line: Vec<u8>,
    /// How many bytes of the input the line being read has so far.
    line_len: u64,
    /// The last byte read into the line being read.
    last_byte: Option<u8>,
    /// The byte offset where the line being read starts.
    start: u64,
    /// Its number.
    number: u64,
    /// The line being read was returned: the next call starts a new one.
    returned: bool,
}

impl<R: BufRead> LineReader<R> {
    /// Reads `input`, positioned at byte `start`, which begins line
    /// `number`; lines longer than `max_bytes` are cut (see [`Line::too_long`]).
    pub fn new(input: R, start: u64, number: u64, max_bytes: usize) -> Self {
        Self {
            input,
            max_bytes,
            line: Vec::new(),
            line_len: 0,
            last_byte: None,
            start,
            number,
            returned: false,
        }
    }

    /// How many bytes of the input have been read: up to the end of the
    /// last line returned, plus those of an unfinished line.
    pub fn consumed(&self) -> u64 {
        self.start + self.line_len
    }

    /// The input being read.
    pub fn input_mut(&mut self) -> &mut R {
        &mut self.input
    }

    /// The next whole line, or [`Next::End`] at the end of the input. Bytes
    /// after the last newline are returned as the last line when
    /// `more_may_come` is false; when it is true they are kept, and a later
    /// call, once the input has grown, goes on with them.
    pub fn next_line(&mut self, more_may_come: bool) -> std::io::Result<Next<'_>> {
        if self.returned {
            self.start += self.line_len;
            self.number += 1;
            self.line.clear();
            self.line_len = 0;
            self.last_byte = None;
            self.returned = false;
        }
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if available.is_empty() {
                if self.line_len == 0 || more_may_come {
                    return Ok(Next::End);
                }
                self.returned = true;
                return Ok(Next::Line(self.finished(0)));
            }
            let newline = memchr::memchr(b'\n', available);
            let taken = newline.map_or(available.len(), |at| at + 1);
            let newline_len = newline.map(|at| {
                let before = if at > 0 {
                    Some(available[at - 1])
                } else {
                    self.last_byte
                };
                if before == Some(b'\r') {
                    2
                } else {
                    1
                }
            });
            let room = (self.max_bytes + 2).saturating_sub(self.line.len());
            self.line.extend_from_slice(&available[..taken.min(room)]);
            self.last_byte = Some(available[taken - 1]);
            self.line_len += taken as u64;
            self.input.consume(taken);
            if let Some(newline_len) = newline_len {
                self.returned = true;
                return Ok(Next::Line(self.finished(newline_len)));
            }
        }
    }

    /// The line read so far, ending with `newline_len` bytes of line end.
    fn finished(&self, newline_len: u64) -> Line<'_> {
        let length = self.line_len - newline_len;
        let (bytes, too_long) = if length > self.max_bytes as u64 {
            (&self.line[..self.max_bytes], Some(length))
        } else {
            (&self.line[..length as usize], None)
        };
        Line {
            number: self.number,
            start: self.start,
            bytes,
            too_long,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};

    use super::*;

    /// Every line of `text` as (number, start, text, too_long), reading to the end.
    fn lines(text: &[u8], max_bytes: usize) -> Vec<(u64, u64, String, Option<u64>)> {
        // A tiny buffer, so that lines span many reads.
        let mut reader = LineReader::new(BufReader::with_capacity(3, text), 0, 1, max_bytes);
        let mut out = Vec::new();
        while let Next::Line(line) = reader.next_line(false).expect("read") {
            out.push((
                line.number,
                line.start,
                String::from_utf8_lossy(line.bytes).into_owned(),
                line.too_long,
            ));
        }
        assert_eq!(reader.consumed(), text.len() as u64, "every byte read");
        assert!(
            matches!(reader.next_line(false), Ok(Next::End)),
            "End is final"
        );
        out
    }

    fn texts(text: &[u8]) -> Vec<String> {
        lines(text, 100).into_iter().map(|l| l.2).collect()
    }

    #[test]
    fn lines_have_their_number_and_start() {
        assert_eq!(
            lines(b"alpha\nbe\n\ngamma\n", 100),
            [
                (1, 0, "alpha".to_owned(), None),
                (2, 6, "be".to_owned(), None),
                (3, 9, String::new(), None),
                (4, 10, "gamma".to_owned(), None),
            ]
        );
    }

    #[test]
    fn crlf_endings_lose_the_cr_but_count_in_offsets() {
        assert_eq!(
            lines(b"a\r\nbb\r\n\r\nc\r", 100),
            [
                (1, 0, "a".to_owned(), None),
                (2, 3, "bb".to_owned(), None),
                (3, 7, String::new(), None),
                // The last line has no newline: its `\r` is its own.
                (4, 9, "c\r".to_owned(), None),
            ]
        );
        // A `\r` alone in a line is kept; one split from its `\n` by a read boundary is not.
        assert_eq!(texts(b"a\rb\nxy\r\n"), ["a\rb", "xy"]);
        assert_eq!(texts(b"xy\r\nz\n"), ["xy", "z"]);
    }

    #[test]
    fn the_last_line_needs_no_newline_and_an_empty_last_line_is_none() {
        assert_eq!(texts(b"a\nb"), ["a", "b"]);
        assert_eq!(texts(b"a\nb\n"), ["a", "b"]);
        assert_eq!(texts(b"a\nb\n\n"), ["a", "b", ""]);
        assert_eq!(texts(b"\n"), [""]);
        assert!(texts(b"").is_empty());
    }

    #[test]
    fn long_lines_are_cut_and_say_their_length() {
        let text = b"0123456789\nabc\n0123456789\r\nxyz";
        assert_eq!(
            lines(text, 4),
            [
                (1, 0, "0123".to_owned(), Some(10)),
                (2, 11, "abc".to_owned(), None),
                (3, 15, "0123".to_owned(), Some(10)),
                (4, 27, "xyz".to_owned(), None),
            ]
        );
        // Exactly max_bytes is not too long, with either line end.
        assert_eq!(
            lines(b"abcd\r\nabcd\nabcd", 4)
                .into_iter()
                .map(|l| (l.2, l.3))
                .collect::<Vec<_>>(),
            [
                ("abcd".to_owned(), None),
                ("abcd".to_owned(), None),
                ("abcd".to_owned(), None)
            ]
        );
    }

    #[test]
    fn an_unfinished_line_waits_for_its_newline_when_more_may_come() {
        let mut input = Cursor::new(b"one\ntw".to_vec());
        let mut reader = LineReader::new(BufReader::new(&mut input), 0, 1, 100);
        let Next::Line(line) = reader.next_line(true).expect("read") else {
            panic!("expected a line")
        };
        assert_eq!((line.number, line.bytes), (1, &b"one"[..]));
        assert_eq!(reader.next_line(true).expect("read"), Next::End);
        assert_eq!(reader.consumed(), 6, "the unfinished line's bytes are read");
        assert_eq!(reader.next_line(true).expect("read"), Next::End);

        // The writer finishes the line and starts another.
        let input = reader.input_mut().get_mut();
        input.get_mut().extend_from_slice(b"o\r\nthr");
        let Next::Line(line) = reader.next_line(true).expect("read") else {
            panic!("expected a line")
        };
        assert_eq!((line.number, line.start, line.bytes), (2, 4, &b"two"[..]));
        assert_eq!(reader.next_line(true).expect("read"), Next::End);
        // Without more to come, the unfinished line is the last one.
        let Next::Line(line) = reader.next_line(false).expect("read") else {
            panic!("expected a line")
        };
        assert_eq!((line.number, line.start, line.bytes), (3, 9, &b"thr"[..]));
        assert_eq!(reader.next_line(false).expect("read"), Next::End);
        assert_eq!(reader.consumed(), 12);
    }

    #[test]
    fn reading_can_start_mid_file() {
        let text = b"a\nbb\nccc\n";
        let mut reader = LineReader::new(&text[2..], 2, 2, 100);
        let Next::Line(line) = reader.next_line(false).expect("read") else {
            panic!("expected a line")
        };
        assert_eq!((line.number, line.start, line.bytes), (2, 2, &b"bb"[..]));
        let Next::Line(line) = reader.next_line(false).expect("read") else {
            panic!("expected a line")
        };
        assert_eq!((line.number, line.start, line.bytes), (3, 5, &b"ccc"[..]));
    }
}
