//! The data sets: the stock CSV (or evenly spaced rows of it) and a larger
//! variant made of its rows repeated.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

/// A CSV file a scenario replays.
#[derive(Debug, Clone, Serialize)]
pub struct Dataset {
    /// Short name in the report, e.g. `1×` or `10×`.
    pub label: String,
    pub path: PathBuf,
    /// Data rows (the header excluded).
    pub rows: u64,
    /// Size of the file.
    pub file_bytes: u64,
}

/// The data rows of a CSV: its header and its rows, as lines.
pub struct CsvLines {
    header: String,
    rows: Vec<String>,
}

impl CsvLines {
    /// Reads `path`; with `rows`, keeps that many rows spread evenly over the
    /// file (every key of the file stays represented).
    pub fn read(path: &Path, rows: Option<u64>) -> anyhow::Result<CsvLines> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the data set {}", path.display()))?;
        let mut lines = text.lines().filter(|line| !line.trim().is_empty());
        let header = lines
            .next()
            .with_context(|| format!("{} is empty", path.display()))?
            .to_owned();
        let all: Vec<&str> = lines.collect();
        if all.is_empty() {
            bail!("{} has a header but no rows", path.display());
        }
        let keep = rows.map_or(all.len(), |n| {
            usize::try_from(n).unwrap_or(usize::MAX).clamp(1, all.len())
        });
        let rows = (0..keep)
            .map(|i| all[i * all.len() / keep].to_owned())
            .collect();
        Ok(CsvLines { header, rows })
    }

    pub fn len(&self) -> u64 {
        self.rows.len() as u64
    }

    /// Writes the rows `times` times over, after the header, to `path`.
    pub fn write(&self, path: &Path, times: u32, label: &str) -> anyhow::Result<Dataset> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        writeln!(out, "{}", self.header)?;
        for _ in 0..times {
            for row in &self.rows {
                writeln!(out, "{row}")?;
            }
        }
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        let file_bytes = std::fs::metadata(path)?.len();
        Ok(Dataset {
            label: label.to_owned(),
            path: path.to_owned(),
            rows: self.len() * u64::from(times),
            file_bytes,
        })
    }
}

/// The base data set (`1×`) and the scaled one (`<scale>×`), written into `dir`.
pub fn prepare(
    source: &Path,
    rows: Option<u64>,
    scale: u32,
    dir: &Path,
) -> anyhow::Result<Vec<Dataset>> {
    let lines = CsvLines::read(source, rows)?;
    let mut sets = vec![lines.write(&dir.join("data-1x.csv"), 1, "1×")?];
    if scale > 1 {
        let label = format!("{scale}×");
        sets.push(lines.write(&dir.join(format!("data-{scale}x.csv")), scale, &label)?);
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_rows_are_spread_over_the_file_and_scaled_sets_repeat_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("in.csv");
        let rows: String = (0..100).map(|i| format!("K{},{i}\n", i / 10)).collect();
        std::fs::write(&source, format!("k,v\n{rows}")).expect("write");

        let sets = prepare(&source, Some(10), 3, dir.path()).expect("prepare");
        assert_eq!(sets[0].rows, 10);
        assert_eq!(sets[1].rows, 30);
        let base = std::fs::read_to_string(&sets[0].path).expect("read");
        let keys: Vec<&str> = base.lines().skip(1).map(|l| &l[..2]).collect();
        assert_eq!(
            keys,
            ["K0", "K1", "K2", "K3", "K4", "K5", "K6", "K7", "K8", "K9"]
        );
        let scaled = std::fs::read_to_string(&sets[1].path).expect("read");
        assert_eq!(scaled.lines().count(), 31);
        assert_eq!(scaled.lines().nth(11), base.lines().nth(1));
    }
}
