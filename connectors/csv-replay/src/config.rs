//! Configuration of the `csv_replay` source.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use connect_core::plugin::{
    split_files, BuildContext, FieldIssue, Source, SourceConfig, SourceStream,
};
use connect_core::schemars::{self, json_schema, JsonSchema, Schema, SchemaGenerator};
use connect_core::ConnectorResult;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::source::CsvReplaySource;

/// Replays a CSV file into Kafka, one record per row.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvReplayConfig {
    /// The CSV file, relative to the pipeline file's directory. A gzip file
    /// (`.csv.gz`) is read transparently. Its first row names the fields.
    /// A folder (every `.csv` and `.csv.gz` file in it) or a glob
    /// (`data/*.csv`) makes one stream per file, in name order: each keeps
    /// its own position, and the pipeline's `source.max_tasks` spreads them
    /// over tasks (and workers). `limit` and `rate` then apply per file.
    pub path: PathBuf,
    /// The column whose value becomes the record key (e.g. `Index`). Without
    /// it records have no key and spread over partitions.
    #[serde(default)]
    pub key_column: Option<String>,
    /// Declared types of some columns (`string`, `integer`, `float`,
    /// `boolean`); the others are inferred from the first `infer_rows` rows.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnType>,
    /// How many rows type inference looks at (default 1000).
    #[serde(default = "default_infer_rows")]
    pub infer_rows: usize,
    /// `file` (default): rows in file order. `random`: a seeded shuffle of the
    /// rows, each row once per pass (like the tutorial's `df.sample(1)` loop,
    /// without repeats).
    #[serde(default)]
    pub order: Order,
    /// Seed of the random order; a random seed (logged) when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Stop after this many records in total.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Records per unit of time: `max` (default), or `N/s`, `N/min`, `N/h` (e.g. `1/s`, `200/s`).
    #[serde(default)]
    pub rate: Rate,
    /// Start again from the first row after the last one, forever (or until `limit`).
    #[serde(default, rename = "loop")]
    pub repeat: bool,
    /// Field delimiter (default `,`).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
}

fn default_infer_rows() -> usize {
    1000
}

fn default_delimiter() -> char {
    ','
}

/// The type of a CSV column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Text, written as a JSON string.
    String,
    /// A 64-bit integer, written as a JSON number with its exact text.
    Integer,
    /// A number, written as a JSON number with its exact text.
    Float,
    /// `true` or `false` (any case).
    Boolean,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::String => "a string",
            Self::Integer => "an integer",
            Self::Float => "a float",
            Self::Boolean => "a boolean",
        })
    }
}

/// Row order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// File order.
    #[default]
    File,
    /// Seeded shuffle.
    Random,
}

/// A replay rate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Rate {
    /// As fast as Kafka takes them.
    #[default]
    Max,
    /// This many records per second.
    PerSecond(f64),
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "max" {
            return Ok(Rate::Max);
        }
        let bad = || {
            format!("`{text}` is not a rate; write `max`, or a count per unit like `1/s`, `200/s`, `30/min`, `5000/h`")
        };
        let (count, unit) = text.split_once('/').ok_or_else(bad)?;
        let count: f64 = count.trim().parse().map_err(|_| bad())?;
        let seconds = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            _ => return Err(bad()),
        };
        if !(count.is_finite() && count > 0.0) {
            return Err(format!("rate `{text}` must be a positive count per unit"));
        }
        Ok(Rate::PerSecond(count / seconds))
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Writes `max` or `<records per second>/s`, which reads back as the same rate.
impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::Max => serializer.serialize_str("max"),
            Rate::PerSecond(per_second) => serializer.collect_str(&format_args!("{per_second}/s")),
        }
    }
}

/// What `Rate::from_str` accepts: `max`, or a count per unit.
const RATE_PATTERN: &str = "^\\s*(max|\\+?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?\\s*/\\s*\
    (s|sec|second|m|min|minute|h|hour))\\s*$";

impl JsonSchema for Rate {
    fn schema_name() -> Cow<'static, str> {
        "Rate".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "connect_csv_replay::config::Rate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "rate",
            "pattern": RATE_PATTERN,
            "description": "`max` (as fast as Kafka takes them), or a positive count per unit: \
                `N/s`, `N/min`, `N/h` (`1/s`, `200/s`, `30/min`).",
        })
    }
}

#[async_trait]
impl SourceConfig for CsvReplayConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.path.as_os_str().is_empty() {
            issues.push(FieldIssue::new("path", "must name a CSV file"));
        }
        if self.infer_rows == 0 {
            issues.push(FieldIssue::new("infer_rows", "must be at least 1"));
        }
        if self.limit == Some(0) {
            issues.push(FieldIssue::new(
                "limit",
                "must be at least 1 (leave it out for no limit)",
            ));
        }
        if self.seed.is_some() && self.order != Order::Random {
            issues.push(FieldIssue::new("seed", "only applies with `order: random`"));
        }
        if !self.delimiter.is_ascii() {
            issues.push(FieldIssue::new(
                "delimiter",
                "must be a single ASCII character",
            ));
        }
        if self.key_column.as_deref() == Some("") {
            issues.push(FieldIssue::new(
                "key_column",
                "must name a column of the file",
            ));
        }
        issues
    }

    async fn build(&self, ctx: &BuildContext) -> ConnectorResult<Box<dyn Source>> {
        Ok(Box::new(CsvReplaySource::new(self.clone(), ctx)))
    }

    fn split(&self, ctx: &BuildContext) -> ConnectorResult<Option<Vec<SourceStream>>> {
        let is_csv = |p: &std::path::Path| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            name.ends_with(".csv") || name.ends_with(".csv.gz")
        };
        // Each stream's partition is what its records carry (`Replay::open`).
        split_files(
            &ctx.resolve_path(&self.path),
            "CSV files (.csv, .csv.gz)",
            is_csv,
            |file| {
                Box::new(CsvReplayConfig {
                    path: file,
                    ..self.clone()
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!("max".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("200/s".parse::<Rate>(), Ok(Rate::PerSecond(200.0)));
        assert_eq!("30/min".parse::<Rate>(), Ok(Rate::PerSecond(0.5)));
        assert_eq!("3600/h".parse::<Rate>(), Ok(Rate::PerSecond(1.0)));
        assert!("fast"
            .parse::<Rate>()
            .unwrap_err()
            .contains("is not a rate"));
        assert!("0/s".parse::<Rate>().unwrap_err().contains("positive"));
    }

    #[test]
    fn rates_serialize_to_text_that_reads_back_and_matches_the_schema_pattern() {
        let pattern = regex::Regex::new(RATE_PATTERN).expect("pattern compiles");
        let pattern = |text: &str| pattern.is_match(text);
        for text in [
            "max",
            "1/s",
            "200/s",
            "30/min",
            "5000/h",
            "0.5/s",
            " 2 / sec ",
        ] {
            let rate: Rate = text.parse().expect(text);
            let written = serde_json::to_value(rate).expect("serialize");
            let written = written.as_str().expect("a string");
            assert_eq!(written.parse::<Rate>(), Ok(rate), "{text} -> {written}");
            assert!(pattern(text), "pattern rejects {text}");
            assert!(pattern(written), "pattern rejects {written}");
        }
        for text in ["fast", "10", "1/day", "/s"] {
            assert!(text.parse::<Rate>().is_err(), "{text}");
            assert!(!pattern(text), "pattern accepts {text}");
        }
    }
}
