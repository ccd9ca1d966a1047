//! `timestamp_converter`: Kafka Connect's `TimestampConverter`, converting a
//! timestamp between a Unix time, a formatted string and Connect's
//! `Date`/`Time`/`Timestamp` types, in the whole key/value or in one field.
//!
//! Schemaless semantics, as in Kafka Connect:
//! - Input: an integer is a Unix time in `unix_precision` (Kafka Connect's
//!   `Long`); a string is parsed with `format` (in UTC unless the pattern
//!   has a zone, e.g. `Z` or `XXX`). Any other type is an error.
//! - Output by `target_type`: `unix` is an integer in `unix_precision`;
//!   `string` is formatted with `format` in UTC; `timestamp`, `date` and
//!   `time` are Kafka Connect's `java.util.Date`, which JSON has no type
//!   for: Sluice writes them as **epoch milliseconds** (a number). `date`
//!   truncates to midnight UTC; `time` keeps only the time of day
//!   (milliseconds since midnight, on 1970-01-01). Because these are
//!   epoch milliseconds, an integer input is also how a `date`, `time` or
//!   `timestamp` output of an earlier step reads back (with the default
//!   `unix_precision: milliseconds`).
//! - A null key, a tombstone, a null field or a missing field passes through
//!   unchanged (Kafka Connect's `replace.null.with.default` only matters
//!   with schemas: null stays null).
//! - A key/value that is not an object while `field` is set is an error
//!   (Kafka Connect: "Only Map objects supported in absence of schema").
//!
//! `format` is a `java.text.SimpleDateFormat` pattern, translated at build
//! time to chrono: `yyyy`/`y`, `yy`, `M`, `MM`, `MMM`, `MMMM`, `d`, `dd`, `H`,
//! `HH`, `h`, `hh`, `m`, `mm`, `s`, `ss`, `SSS`, `a`, `E`/`EEE`, `EEEE`, `Z`
//! (`+0000`), `XX` (`Z` or `+0000`), `XXX` (`Z` or `+00:00`), `'quoted'`
//! literals and `''` for a quote. Any other pattern letter is a config error.
//!
//! Deliberate differences from Kafka Connect:
//! - `field` is a dotted path into nested objects (`payload.ts`; quote
//!   names with dots: `"a.b"`); a path through a non-object is missing.
//! - A missing field is left missing (Kafka Connect adds it with a null).
//! - Parsing is strict: the whole string must match the pattern and
//!   out-of-range fields (month 13) are errors, where `SimpleDateFormat` is
//!   lenient. Fields the pattern lacks default to 1970-01-01 00:00:00.000,
//!   as in Java; a two-digit `yy` year means 1970–2069.
//! - A Unix output that overflows a 64-bit integer (nanoseconds after
//!   2262) is an error; Java saturates silently.

use crate::kind;
use std::fmt::Write as _;

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed, StrftimeItems};
use chrono::{DateTime, NaiveDateTime};
use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::{FieldPath, Target};
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::{Deserialize, Serialize};

/// Converts a timestamp between Unix time, formatted strings and dates.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimestampConverterConfig {
    /// `value` (default) or `key`: the part of the record to convert in
    /// (Kafka Connect's `$Value` / `$Key`).
    #[serde(default)]
    pub target: Target,
    /// The field holding the timestamp (a dotted path); without it the whole
    /// key/value is the timestamp.
    #[serde(default)]
    pub field: Option<FieldPath>,
    /// What to convert to: `string`, `unix`, `date`, `time` or `timestamp`.
    pub target_type: TimestampType,
    /// A `java.text.SimpleDateFormat` pattern (e.g. `yyyy-MM-dd HH:mm:ss`):
    /// how `string` output is written and how string input is parsed, in UTC.
    /// Required when `target_type` is `string` or the input is a string.
    #[serde(default)]
    pub format: Option<String>,
    /// The unit of Unix times, read and written: `milliseconds` (default),
    /// `seconds`, `microseconds` or `nanoseconds`.
    #[serde(default)]
    pub unix_precision: UnixPrecision,
}

/// The representation a timestamp is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimestampType {
    /// A string formatted with `format`, in UTC.
    String,
    /// An integer: the Unix time in `unix_precision`.
    Unix,
    /// Midnight UTC of the day, as epoch milliseconds.
    Date,
    /// The time of day, as milliseconds since midnight.
    Time,
    /// The instant, as epoch milliseconds.
    Timestamp,
}

/// The unit of Unix times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnixPrecision {
    /// Milliseconds since the epoch (the default).
    #[default]
    Milliseconds,
    /// Seconds since the epoch.
    Seconds,
    /// Microseconds since the epoch.
    Microseconds,
    /// Nanoseconds since the epoch.
    Nanoseconds,
}

impl UnixPrecision {
    fn name(self) -> &'static str {
        match self {
            Self::Milliseconds => "milliseconds",
            Self::Seconds => "seconds",
            Self::Microseconds => "microseconds",
            Self::Nanoseconds => "nanoseconds",
        }
    }
}

impl TransformConfig for TimestampConverterConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        match &self.format {
            None if self.target_type == TimestampType::String => issues.push(FieldIssue::new(
                "format",
                "is required when `target_type` is `string`: give a SimpleDateFormat pattern such as `yyyy-MM-dd HH:mm:ss`",
            )),
            None => {}
            Some(pattern) => {
                if let Err(message) = SimpleDateFormat::new(pattern) {
                    issues.push(FieldIssue::new("format", message));
                }
            }
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        let format = match &self.format {
            Some(pattern) => Some(SimpleDateFormat::new(pattern).map_err(|message| {
                ConnectorError::fatal(format!("timestamp_converter `format`: {message}"))
            })?),
            None if self.target_type == TimestampType::String => {
                return Err(ConnectorError::fatal(
                    "timestamp_converter needs `format` when `target_type` is `string`",
                ))
            }
            None => None,
        };
        Ok(Box::new(TimestampConverter {
            target: self.target,
            field: self.field.clone(),
            target_type: self.target_type,
            format,
            unix_precision: self.unix_precision,
        }))
    }
}

/// The running `timestamp_converter`.
#[derive(Debug)]
pub struct TimestampConverter {
    target: Target,
    field: Option<FieldPath>,
    target_type: TimestampType,
    format: Option<SimpleDateFormat>,
    unix_precision: UnixPrecision,
}

const MILLIS_PER_DAY: i64 = 86_400_000;

impl TimestampConverter {
    /// What is being converted, for messages.
    fn subject(&self) -> String {
        match &self.field {
            Some(path) => format!("field `{path}` of the record {}", self.target.name()),
            None => format!("the record {}", self.target.name()),
        }
    }

    /// The instant `value` stands for, in epoch milliseconds.
    fn to_millis(&self, value: &Value) -> ConnectorResult<i64> {
        match value {
            Value::Number(number) => {
                let unix = number.as_i64().ok_or_else(|| {
                    ConnectorError::fatal(format!(
                        "{} is the number {number}; a Unix time must be an integer (in {})",
                        self.subject(),
                        self.unix_precision.name()
                    ))
                })?;
                match self.unix_precision {
                    UnixPrecision::Milliseconds => Ok(unix),
                    UnixPrecision::Seconds => unix.checked_mul(1000).ok_or_else(|| {
                        ConnectorError::fatal(format!(
                            "{} is {unix} seconds since the epoch, out of range",
                            self.subject()
                        ))
                    }),
                    UnixPrecision::Microseconds => Ok(unix / 1000),
                    UnixPrecision::Nanoseconds => Ok(unix / 1_000_000),
                }
            }
            Value::String(text) => {
                let format = self.format.as_ref().ok_or_else(|| {
                    ConnectorError::fatal(format!(
                        "{} is the string {value}; set `format` to the SimpleDateFormat pattern it is written in",
                        self.subject()
                    ))
                })?;
                format.parse_millis(text).map_err(|message| {
                    ConnectorError::fatal(format!(
                        "{}: could not parse {value} with the format `{}`: {message}",
                        self.subject(),
                        format.pattern()
                    ))
                })
            }
            other => Err(ConnectorError::fatal(format!(
                "{} is {}; a timestamp must be an integer (a Unix time in {}) or a string in `format`",
                self.subject(),
                kind(other),
                self.unix_precision.name()
            ))),
        }
    }

    /// `millis` in the target representation.
    fn millis_to_target(&self, millis: i64) -> ConnectorResult<Value> {
        let overflow = || {
            ConnectorError::fatal(format!(
                "{}: {millis} ms since the epoch does not fit a 64-bit Unix time in {}",
                self.subject(),
                self.unix_precision.name()
            ))
        };
        Ok(match self.target_type {
            TimestampType::Timestamp => Value::from(millis),
            TimestampType::Date => Value::from(millis.div_euclid(MILLIS_PER_DAY) * MILLIS_PER_DAY),
            TimestampType::Time => Value::from(millis.rem_euclid(MILLIS_PER_DAY)),
            TimestampType::Unix => Value::from(match self.unix_precision {
                UnixPrecision::Milliseconds => millis,
                UnixPrecision::Seconds => millis / 1000,
                UnixPrecision::Microseconds => millis.checked_mul(1000).ok_or_else(overflow)?,
                UnixPrecision::Nanoseconds => millis.checked_mul(1_000_000).ok_or_else(overflow)?,
            }),
            TimestampType::String => {
                let format = self.format.as_ref().ok_or_else(|| {
                    ConnectorError::fatal("timestamp_converter has no `format` to write strings")
                })?;
                Value::String(format.format_millis(millis).map_err(|message| {
                    ConnectorError::fatal(format!("{}: {message}", self.subject()))
                })?)
            }
        })
    }
}

impl Transform for TimestampConverter {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let Some(root) = self.target.get_mut(record).as_mut() else {
            return Ok(Outcome::Keep);
        };
        let slot = match &self.field {
            None => root,
            Some(path) => {
                if root.is_null() {
                    return Ok(Outcome::Keep);
                }
                if !root.is_object() {
                    return Err(ConnectorError::fatal(format!(
                        "the record {} is {}, not an object; converting field `{path}` needs an object (Kafka Connect: \"Only Map objects supported in absence of schema\")",
                        self.target.name(),
                        kind(root)
                    )));
                }
                match path.get_mut(root) {
                    Some(slot) => slot,
                    None => return Ok(Outcome::Keep),
                }
            }
        };
        if slot.is_null() {
            return Ok(Outcome::Keep);
        }
        let millis = self.to_millis(slot)?;
        *slot = self.millis_to_target(millis)?;
        Ok(Outcome::Keep)
    }
}

/// A `java.text.SimpleDateFormat` pattern translated to chrono format
/// items, for formatting and parsing in UTC.
///
/// The items are chrono's compiled form of a format string; they are built
/// directly (rather than as a `%`-string) because `XX`/`XXX` write UTC as
/// `Z`, which no strftime specifier does.
#[derive(Debug, Clone)]
pub(crate) struct SimpleDateFormat {
    pattern: String,
    items: Vec<Item<'static>>,
}

/// The pattern letters [`SimpleDateFormat`] knows, for messages.
const SUPPORTED_LETTERS: &str = "y M d H h m s S a E Z X";

impl SimpleDateFormat {
    /// Translates `pattern`; an unsupported letter or an unclosed quote is an
    /// error naming it.
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        if pattern.trim().is_empty() {
            return Err(
                "is empty: give a SimpleDateFormat pattern such as `yyyy-MM-dd HH:mm:ss`"
                    .to_owned(),
            );
        }
        let mut items: Vec<Item<'static>> = Vec::new();
        let mut literal = String::new();
        let flush = |literal: &mut String, items: &mut Vec<Item<'static>>| {
            if !literal.is_empty() {
                items.push(Item::OwnedLiteral(std::mem::take(literal).into_boxed_str()));
            }
        };
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // `''` is a quote, inside or outside quoted text.
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!(
                                "`{pattern}` has an unclosed quote; quote literal text like `'T'` and write `''` for a quote"
                            ))
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            literal.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            literal.push(c);
                            i += 1;
                        }
                    }
                }
                continue;
            }
            if !c.is_ascii_alphabetic() {
                if c.is_whitespace() {
                    // Parsing accepts any run of whitespace here.
                    flush(&mut literal, &mut items);
                    items.push(Item::OwnedSpace(c.to_string().into_boxed_str()));
                } else {
                    literal.push(c);
                }
                i += 1;
                continue;
            }
            let count = chars[i..].iter().take_while(|&&x| x == c).count();
            let run: String = chars[i..i + count].iter().collect();
            flush(&mut literal, &mut items);
            let numeric = |field: Numeric| -> Result<Vec<Item<'static>>, String> {
                match count {
                    1 => Ok(vec![Item::Numeric(field, Pad::None)]),
                    2 => Ok(vec![Item::Numeric(field, Pad::Zero)]),
                    _ => Err(format!(
                        "`{run}` in `{pattern}` is not supported; write `{c}` or `{c}{c}`"
                    )),
                }
            };
            let translated = match c {
                'y' if count == 2 => vec![Item::Numeric(Numeric::YearMod100, Pad::Zero)],
                'y' if count <= 4 => vec![Item::Numeric(Numeric::Year, Pad::Zero)],
                'y' => {
                    return Err(format!(
                        "`{run}` in `{pattern}` is not supported; write `yyyy` or `yy`"
                    ))
                }
                'M' if count == 3 => vec![Item::Fixed(Fixed::ShortMonthName)],
                'M' if count >= 4 => vec![Item::Fixed(Fixed::LongMonthName)],
                'M' => numeric(Numeric::Month)?,
                'd' => numeric(Numeric::Day)?,
                'H' => numeric(Numeric::Hour)?,
                'h' => numeric(Numeric::Hour12)?,
                'm' => numeric(Numeric::Minute)?,
                's' => numeric(Numeric::Second)?,
                // Three-digit milliseconds, chrono's `%3f`.
                'S' if count == 3 => StrftimeItems::new("%3f").collect(),
                'S' => {
                    return Err(format!(
                        "`{run}` in `{pattern}` is not supported; write `SSS` for milliseconds"
                    ))
                }
                'a' => vec![Item::Fixed(Fixed::UpperAmPm)],
                'E' if count <= 3 => vec![Item::Fixed(Fixed::ShortWeekdayName)],
                'E' => vec![Item::Fixed(Fixed::LongWeekdayName)],
                'Z' => vec![Item::Fixed(Fixed::TimezoneOffset)],
                'X' if count == 2 => vec![Item::Fixed(Fixed::TimezoneOffsetZ)],
                'X' if count == 3 => vec![Item::Fixed(Fixed::TimezoneOffsetColonZ)],
                'X' => {
                    return Err(format!(
                        "`{run}` in `{pattern}` is not supported; write `XX` (+0100) or `XXX` (+01:00)"
                    ))
                }
                _ => {
                    return Err(format!(
                        "pattern letter `{c}` in `{pattern}` is not supported (supported: {SUPPORTED_LETTERS}); quote literal text, e.g. `'T'`"
                    ))
                }
            };
            items.extend(translated);
            i += count;
        }
        flush(&mut literal, &mut items);
        Ok(Self {
            pattern: pattern.to_owned(),
            items,
        })
    }

    /// The SimpleDateFormat pattern, for messages.
    pub(crate) fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Formats the instant `millis` (ms since the epoch) in UTC.
    pub(crate) fn format_millis(&self, millis: i64) -> Result<String, String> {
        let instant = DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| format!("{millis} ms since the epoch is out of the supported range"))?;
        let mut text = String::new();
        write!(text, "{}", instant.format_with_items(self.items.iter()))
            .map_err(|_| format!("cannot format {instant} with `{}`", self.pattern))?;
        Ok(text)
    }

    /// Parses `text` to ms since the epoch; UTC unless it has an offset.
    /// Fields the pattern lacks default to 1970-01-01 00:00:00.000.
    pub(crate) fn parse_millis(&self, text: &str) -> Result<i64, String> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, self.items.iter()).map_err(|e| e.to_string())?;
        let set = |result: chrono::ParseResult<()>| result.map_err(|e| e.to_string());
        if parsed.year().is_none()
            && parsed.year_div_100().is_none()
            && parsed.year_mod_100().is_none()
        {
            set(parsed.set_year(1970))?;
        }
        if parsed.month().is_none() {
            set(parsed.set_month(1))?;
        }
        if parsed.day().is_none() {
            set(parsed.set_day(1))?;
        }
        if parsed.hour_mod_12().is_none() {
            // 12 o'clock on a 12-hour clock is hour 0 (or 12 with PM).
            set(parsed.set_hour12(12))?;
        }
        if parsed.hour_div_12().is_none() {
            set(parsed.set_ampm(false))?;
        }
        if parsed.minute().is_none() {
            set(parsed.set_minute(0))?;
        }
        if parsed.second().is_none() {
            set(parsed.set_second(0))?;
        }
        let date = parsed.to_naive_date().map_err(|e| e.to_string())?;
        let time = parsed.to_naive_time().map_err(|e| e.to_string())?;
        let local = NaiveDateTime::new(date, time).and_utc().timestamp_millis();
        let offset = i64::from(parsed.offset().unwrap_or(0)) * 1000;
        local
            .checked_sub(offset)
            .ok_or_else(|| "the instant is out of range".to_owned())
    }
}

connect_core::register_plugin!(transform "timestamp_converter", TimestampConverterConfig,
    summary: "Converts a timestamp (whole key/value or a field) between Unix time, a formatted string, date, time and timestamp",
    example: "type: timestamp_converter\nfield: Date\ntarget_type: unix\nformat: yyyy-MM-dd\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn converter(yaml: &str) -> Box<dyn Transform> {
        let config: TimestampConverterConfig = config(yaml);
        assert_eq!(config.validate(), Vec::new());
        config.build().unwrap()
    }

    fn convert_value(yaml: &str, value: Value) -> String {
        let mut record = record(None, Some(value));
        assert_eq!(converter(yaml).apply(&mut record).unwrap(), Outcome::Keep);
        serde_json::to_string(&record.value).unwrap()
    }

    fn convert_error(yaml: &str, value: Value) -> String {
        let mut record = record(None, Some(value));
        converter(yaml).apply(&mut record).unwrap_err().to_string()
    }

    #[test]
    fn parses_a_date_string_field_of_the_stock_record_to_unix_and_back() {
        let mut record = record(None, Some(stock_value()));
        converter("field: Date\ntarget_type: unix\nformat: yyyy-MM-dd\n")
            .apply(&mut record)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&record.value).unwrap(),
            r#"{"Index":"HSI","Date":536371200000,"Open":2568.300049,"High":2568.300049,"Low":2568.300049,"Close":2568.300049,"Adj Close":2568.300049,"Volume":0.0,"CloseUSD":333.87900637}"#
        );
        converter("field: Date\ntarget_type: string\nformat: \"dd MMM yyyy, EEE\"\n")
            .apply(&mut record)
            .unwrap();
        assert_eq!(record.value.unwrap()["Date"], json!("31 Dec 1986, Wed"));
    }

    #[test]
    fn converts_every_target_type_from_a_unix_time() {
        // 2021-05-28T13:14:15.678Z
        let ts = || json!({"ts": 1_622_207_655_678_i64, "other": 1});
        let yaml = |t: &str| {
            format!("field: ts\ntarget_type: {t}\nformat: \"yyyy-MM-dd'T'HH:mm:ss.SSSXXX\"\n")
        };
        assert_eq!(
            convert_value(&yaml("string"), ts()),
            r#"{"ts":"2021-05-28T13:14:15.678Z","other":1}"#
        );
        assert_eq!(
            convert_value(&yaml("timestamp"), ts()),
            r#"{"ts":1622207655678,"other":1}"#
        );
        assert_eq!(
            convert_value(&yaml("date"), ts()),
            r#"{"ts":1622160000000,"other":1}"#
        );
        assert_eq!(
            convert_value(&yaml("time"), ts()),
            r#"{"ts":47655678,"other":1}"#
        );
        assert_eq!(
            convert_value(&yaml("unix"), ts()),
            r#"{"ts":1622207655678,"other":1}"#
        );
        // Before the epoch, date and time floor like Java's Calendar.
        assert_eq!(
            convert_value(&yaml("date"), json!({"ts": -1})),
            r#"{"ts":-86400000}"#
        );
        assert_eq!(
            convert_value(&yaml("time"), json!({"ts": -1})),
            r#"{"ts":86399999}"#
        );
    }

    #[test]
    fn unix_precision_applies_to_input_and_output() {
        assert_eq!(
            convert_value(
                "target_type: unix\nunix_precision: seconds\n",
                json!(1_622_207_655)
            ),
            "1622207655"
        );
        assert_eq!(
            convert_value(
                "target_type: timestamp\nunix_precision: seconds\n",
                json!(1_622_207_655)
            ),
            "1622207655000"
        );
        assert_eq!(
            convert_value(
                "target_type: unix\nunix_precision: nanoseconds\nformat: yyyy\n",
                json!("2021")
            ),
            "1609459200000000000"
        );
        assert_eq!(
            convert_value(
                "target_type: timestamp\nunix_precision: microseconds\n",
                json!(1_622_207_655_678_999_i64)
            ),
            "1622207655678"
        );
        assert_eq!(
            convert_error(
                "target_type: unix\nunix_precision: nanoseconds\nformat: yyyy\n",
                json!("3000")
            ),
            "the record value: 32503680000000 ms since the epoch does not fit a 64-bit Unix time in nanoseconds"
        );
    }

    #[test]
    fn parses_offsets_12_hour_clocks_and_quotes() {
        assert_eq!(
            convert_value(
                "target_type: timestamp\nformat: \"yyyy-MM-dd'T'HH:mm:ss.SSSXXX\"\n",
                json!("2021-05-28T15:14:15.678+02:00")
            ),
            "1622207655678"
        );
        assert_eq!(
            convert_value(
                "target_type: timestamp\nformat: \"yyyy-MM-dd HH:mm:ss Z\"\n",
                json!("2021-05-28 08:14:15 -0500")
            ),
            "1622207655000"
        );
        assert_eq!(
            convert_value(
                "target_type: string\nformat: \"MM/dd/yy hh:mm a 'o''clock'\"\n",
                json!(1_622_207_655_678_i64)
            ),
            r#""05/28/21 01:14 PM o'clock""#
        );
        assert_eq!(
            convert_value(
                "target_type: unix\nformat: \"MM/dd/yy hh:mm a\"\n",
                json!("05/28/21 01:14 PM")
            ),
            "1622207640000"
        );
        assert_eq!(
            convert_value("target_type: string\nformat: \"HH:mm XX\"\n", json!(0)),
            r#""00:00 Z""#
        );
    }

    #[test]
    fn key_target_and_nested_field() {
        let mut record = record(
            Some(json!({"meta": {"at": "2021-05-28"}, "id": 1})),
            Some(json!("untouched")),
        );
        converter("target: key\nfield: meta.at\ntarget_type: date\nformat: yyyy-MM-dd\n")
            .apply(&mut record)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&record.key).unwrap(),
            r#"{"meta":{"at":1622160000000},"id":1}"#
        );
        assert_eq!(record.value, Some(json!("untouched")));
    }

    #[test]
    fn nulls_tombstones_and_missing_fields_pass_through() {
        let yaml = "field: ts\ntarget_type: unix\n";
        let mut tombstone = record(Some(json!("k")), None);
        converter(yaml).apply(&mut tombstone).unwrap();
        assert_eq!(tombstone, record(Some(json!("k")), None));
        assert_eq!(
            convert_value(yaml, json!({"ts": null, "a": 1})),
            r#"{"ts":null,"a":1}"#
        );
        assert_eq!(convert_value(yaml, json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(convert_value(yaml, Value::Null), "null");
        assert_eq!(convert_value("target_type: unix\n", Value::Null), "null");
    }

    #[test]
    fn bad_inputs_are_fatal_and_name_the_field() {
        assert_eq!(
            convert_error("field: ts\ntarget_type: unix\n", json!("not an object")),
            "the record value is a string, not an object; converting field `ts` needs an object (Kafka Connect: \"Only Map objects supported in absence of schema\")"
        );
        assert_eq!(
            convert_error("field: ts\ntarget_type: unix\n", json!({"ts": true})),
            "field `ts` of the record value is a boolean; a timestamp must be an integer (a Unix time in milliseconds) or a string in `format`"
        );
        assert_eq!(
            convert_error("field: ts\ntarget_type: unix\n", json!({"ts": 1.5})),
            "field `ts` of the record value is the number 1.5; a Unix time must be an integer (in milliseconds)"
        );
        assert_eq!(
            convert_error("field: ts\ntarget_type: unix\n", json!({"ts": "2021"})),
            "field `ts` of the record value is the string \"2021\"; set `format` to the SimpleDateFormat pattern it is written in"
        );
        assert_eq!(
            convert_error(
                "field: ts\ntarget_type: unix\nformat: yyyy-MM-dd\n",
                json!({"ts": "2021-13-01"})
            ),
            "field `ts` of the record value: could not parse \"2021-13-01\" with the format `yyyy-MM-dd`: input is out of range"
        );
        assert_eq!(
            convert_error(
                "field: ts\ntarget_type: unix\nformat: yyyy-MM-dd\n",
                json!({"ts": "2021-05-28 extra"})
            ),
            "field `ts` of the record value: could not parse \"2021-05-28 extra\" with the format `yyyy-MM-dd`: trailing input"
        );
    }

    #[test]
    fn config_errors() {
        let config: TimestampConverterConfig = config("target_type: string\n");
        assert_eq!(
            config.validate(),
            vec![FieldIssue::new(
                "format",
                "is required when `target_type` is `string`: give a SimpleDateFormat pattern such as `yyyy-MM-dd HH:mm:ss`"
            )]
        );
        let config: TimestampConverterConfig =
            crate::testing::config("target_type: unix\nformat: yyyy-MM-dd'T'HH:mm:ss.SSSQ\n");
        assert_eq!(
            config.validate(),
            vec![FieldIssue::new(
                "format",
                "pattern letter `Q` in `yyyy-MM-dd'T'HH:mm:ss.SSSQ` is not supported (supported: y M d H h m s S a E Z X); quote literal text, e.g. `'T'`"
            )]
        );
        assert!(config.build().is_err());
        assert_eq!(
            SimpleDateFormat::new("yyyy-MM-dd'T").unwrap_err(),
            "`yyyy-MM-dd'T` has an unclosed quote; quote literal text like `'T'` and write `''` for a quote"
        );
        assert_eq!(
            SimpleDateFormat::new("HH:mm:ss.SS").unwrap_err(),
            "`SS` in `HH:mm:ss.SS` is not supported; write `SSS` for milliseconds"
        );
        assert_eq!(
            try_config::<TimestampConverterConfig>("field: ts\ntarget_type: Instant\n")
                .unwrap_err(),
            vec!["2:14: target_type: unknown value `Instant`; expected one of `string`, `unix`, `date`, `time`, `timestamp`".to_owned()]
        );
        assert_eq!(
            try_config::<TimestampConverterConfig>("target_type: unix\nunix.precision: seconds\n")
                .unwrap_err(),
            vec!["2:1: \"unix.precision\": unknown key `unix.precision` (did you mean `unix_precision`?); expected one of `target`, `field`, `target_type`, `format`, `unix_precision`".to_owned()]
        );
    }
}
