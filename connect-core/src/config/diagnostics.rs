//! Located config errors, collected rather than thrown one at a time.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

/// A position in a YAML file (both 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// One config problem: where (file:line:column and the YAML path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: Arc<str>,
    /// Where in the file.
    pub mark: Mark,
    /// The YAML path, e.g. `sinks.s3.bucket` (empty for the document root).
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.mark.line, self.mark.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one file, in the order found.
#[derive(Debug)]
pub struct Diagnostics {
    file: Arc<str>,
    found: RefCell<Vec<Diagnostic>>,
}

impl Diagnostics {
    /// An empty collection for `file`.
    pub fn new(file: impl Into<Arc<str>>) -> Self {
        Self {
            file: file.into(),
            found: RefCell::new(Vec::new()),
        }
    }

    /// The file these diagnostics are about.
    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    /// Records a problem at `mark` / `path`.
    pub fn report(&self, mark: Mark, path: &str, message: impl Into<String>) {
        self.found.borrow_mut().push(Diagnostic {
            file: self.file.clone(),
            mark,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Whether a problem was already recorded at `mark` (later checks of the
    /// same value would only repeat it).
    pub fn has_at(&self, mark: Mark) -> bool {
        self.found.borrow().iter().any(|d| d.mark == mark)
    }

    /// How many problems were recorded so far.
    pub fn len(&self) -> usize {
        self.found.borrow().len()
    }

    /// Prefixes the messages of the problems recorded since the `start`-th,
    /// e.g. to name the transform step they belong to.
    pub fn prefix_since(&self, start: usize, prefix: &str) {
        for diagnostic in self.found.borrow_mut().iter_mut().skip(start) {
            diagnostic.message.insert_str(0, prefix);
        }
    }

    /// Whether any problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.found.borrow().is_empty()
    }

    /// The problems, sorted by position in the file.
    pub fn into_sorted(self) -> Vec<Diagnostic> {
        let mut found = self.found.into_inner();
        found.sort_by_key(|d| (d.mark.line, d.mark.column));
        found
    }
}

/// Every problem of a config file; printed one per line.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["bucket", "prefix", "region"];
        assert_eq!(suggest("bukcet", names), Some("bucket"));
        assert_eq!(suggest("prefx", names), Some("prefix"));
        assert_eq!(suggest("compression", names), None);
    }
}
