//! Partitioners: which folder (the *partition path*) of the bucket a record's
//! object goes to, between `<prefix>/<topic>/` and the object's file name.
//!
//! - `kafka` (default): `partition=<kafka partition>`.
//! - `field`: Hive style `<name>=<value of a record field>`, the value
//!   escaped as Hive escapes partition values (`/` → `%2F`), a missing, null
//!   or empty field in `<name>=__HIVE_DEFAULT_PARTITION__` as Hive does.
//! - `time`: a chrono `strftime` format (default `year=%Y/month=%m/day=%d`)
//!   of the record's Kafka timestamp or of a timestamp field, in UTC.
//!
//! The path is a pure function of the record, so a record lands in the same
//! folder on every run.

use std::borrow::Cow;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use connect_core::plugin::FieldIssue;
use connect_core::record::value_kind;
use connect_core::schemars::{self, JsonSchema};
use connect_core::transform::FieldPath;
use connect_core::{Record, Value};
use serde::{Deserialize, Serialize};

/// The folder Hive (and Athena, Glue) use for a null or empty partition value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The default `path_format` of the time partitioner.
pub const DEFAULT_PATH_FORMAT: &str = "year=%Y/month=%m/day=%d";

/// Which partitioner lays out the objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartitionerType {
    /// `partition=<kafka partition>`.
    #[default]
    Kafka,
    /// `<name>=<field value>`.
    Field,
    /// A time format of the record's timestamp.
    Time,
}

/// Which timestamp the time partitioner formats, when no `timestamp_field` is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimestampSource {
    /// The Kafka record's timestamp (create or log-append time).
    #[default]
    Record,
}

/// The `partitioner:` section of the sink.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionerConfig {
    /// `kafka` (default), `field` or `time`.
    #[serde(rename = "type", default)]
    pub kind: PartitionerType,
    /// `field`: the record value field whose value names the folder (a field path).
    #[serde(default)]
    pub field: Option<FieldPath>,
    /// `field`: the column name in the path (default: the field's name).
    #[serde(default)]
    pub name: Option<String>,
    /// `time`: chrono strftime format of the path (default `year=%Y/month=%m/day=%d`), in UTC.
    #[serde(default)]
    pub path_format: Option<String>,
    /// `time`: `record`, the Kafka record timestamp (the default when no `timestamp_field`).
    #[serde(default)]
    pub timestamp: Option<TimestampSource>,
    /// `time`: a value field holding the time instead: epoch milliseconds, or an
    /// RFC 3339 / `yyyy-MM-dd[ HH:mm:ss[.SSS]]` string (UTC unless it has an offset).
    #[serde(default)]
    pub timestamp_field: Option<FieldPath>,
}

impl PartitionerConfig {
    /// Problems found without I/O, with keys relative to the sink section.
    pub fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        let only = |issues: &mut Vec<FieldIssue>, key: &str, present: bool, kind: &str| {
            if present {
                issues.push(FieldIssue::new(
                    format!("partitioner.{key}"),
                    format!("`{key}` applies only to `type: {kind}`"),
                ));
            }
        };
        let field_keys = self.kind != PartitionerType::Field;
        only(
            &mut issues,
            "field",
            field_keys && self.field.is_some(),
            "field",
        );
        only(
            &mut issues,
            "name",
            field_keys && self.name.is_some(),
            "field",
        );
        let time_keys = self.kind != PartitionerType::Time;
        only(
            &mut issues,
            "path_format",
            time_keys && self.path_format.is_some(),
            "time",
        );
        only(
            &mut issues,
            "timestamp",
            time_keys && self.timestamp.is_some(),
            "time",
        );
        only(
            &mut issues,
            "timestamp_field",
            time_keys && self.timestamp_field.is_some(),
            "time",
        );
        match self.kind {
            PartitionerType::Kafka => {}
            PartitionerType::Field => {
                if self.field.is_none() {
                    issues.push(FieldIssue::new(
                        "partitioner",
                        "`type: field` needs `field`, the record field that names the folder (e.g. `field: Index`)",
                    ));
                }
                if let Some(name) = &self.name {
                    if let Err(message) = check_column_name(name) {
                        issues.push(FieldIssue::new("partitioner.name", message));
                    }
                }
            }
            PartitionerType::Time => {
                if let Some(format) = &self.path_format {
                    if let Err(message) = check_path_format(format) {
                        issues.push(FieldIssue::new("partitioner.path_format", message));
                    }
                }
                if self.timestamp.is_some() && self.timestamp_field.is_some() {
                    issues.push(FieldIssue::new(
                        "partitioner.timestamp_field",
                        "give either `timestamp: record` or `timestamp_field`, not both",
                    ));
                }
            }
        }
        issues
    }

    /// The partitioner; fails only on what [`validate`](Self::validate) reports.
    pub fn build(&self) -> Result<Partitioner, String> {
        Ok(match self.kind {
            PartitionerType::Kafka => Partitioner::Kafka,
            PartitionerType::Field => {
                let field = self.field.clone().ok_or("`type: field` needs `field`")?;
                let name = match &self.name {
                    Some(name) => {
                        check_column_name(name)?;
                        name.clone()
                    }
                    None => escape_path_value(field.leaf()),
                };
                Partitioner::Field { field, name }
            }
            PartitionerType::Time => {
                let format = self.path_format.as_deref().unwrap_or(DEFAULT_PATH_FORMAT);
                check_path_format(format)?;
                let items = StrftimeItems::new(format.trim_matches('/'))
                    .parse_to_owned()
                    .map_err(|e| format!("`{format}`: {e}"))?;
                Partitioner::Time {
                    items,
                    field: self.timestamp_field.clone(),
                }
            }
        })
    }
}

/// A built partitioner.
#[derive(Debug, Clone)]
pub enum Partitioner {
    /// `partition=<p>`.
    Kafka,
    /// `<name>=<escaped value of field>`.
    Field {
        /// The value field.
        field: FieldPath,
        /// The column name written in the path.
        name: String,
    },
    /// strftime items of the path, of the record timestamp or of `field`.
    Time {
        /// The parsed `path_format`.
        items: Vec<Item<'static>>,
        /// The timestamp field; the record timestamp when `None`.
        field: Option<FieldPath>,
    },
}

impl Partitioner {
    /// The partition path of `record` (in Kafka partition `partition`), without
    /// leading or trailing `/`. The error says what is wrong with the record.
    pub fn path(&self, record: &Record, partition: i32) -> Result<String, String> {
        match self {
            Partitioner::Kafka => Ok(format!("partition={partition}")),
            Partitioner::Field { field, name } => {
                let value = field_of(record, field)?;
                let text = match value.as_deref() {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Bool(b)) => Some(b.to_string()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(other) => {
                        return Err(format!(
                            "field `{field}` is {}; the field partitioner needs a string, number or boolean",
                            value_kind(other)
                        ))
                    }
                };
                let text = text.filter(|t| !t.is_empty());
                Ok(match text {
                    Some(text) => format!("{name}={}", escape_path_value(&text)),
                    None => format!("{name}={HIVE_DEFAULT_PARTITION}"),
                })
            }
            Partitioner::Time { items, field } => {
                let time = match field {
                    None => {
                        let millis = record.timestamp.filter(|t| *t >= 0).ok_or(
                            "the record has no timestamp for the time partitioner (use `timestamp_field`)",
                        )?;
                        DateTime::from_timestamp_millis(millis)
                            .ok_or_else(|| format!("record timestamp {millis} is out of range"))?
                    }
                    Some(field) => {
                        let value = field_of(record, field)?;
                        match value.as_deref() {
                            None | Some(Value::Null) => {
                                return Err(format!("timestamp field `{field}` is missing or null"))
                            }
                            Some(value) => parse_timestamp(value)
                                .map_err(|e| format!("timestamp field `{field}`: {e}"))?,
                        }
                    }
                };
                Ok(time.format_with_items(items.iter()).to_string())
            }
        }
    }
}

/// The field at `path` of the record's value, decoded or JSON text (only
/// the field is built then).
fn field_of<'r>(record: &'r Record, path: &FieldPath) -> Result<Option<Cow<'r, Value>>, String> {
    match (&record.value, &record.encoded_value) {
        (Some(value), _) => Ok(path.get(value).map(Cow::Borrowed)),
        (None, Some(json)) => path
            .get_in_json(json)
            .map(|field| field.map(Cow::Owned))
            .map_err(|e| format!("the value is not valid JSON ({e})")),
        (None, None) => Ok(None),
    }
}

/// Parses a timestamp value: epoch milliseconds (an integer), or an RFC 3339
/// string, or `yyyy-MM-dd`, `yyyy-MM-dd HH:mm[:ss[.fff]]` (also with `T`), taken as UTC.
pub fn parse_timestamp(value: &Value) -> Result<DateTime<Utc>, String> {
    match value {
        Value::Number(n) => {
            let millis = n.as_i64().ok_or_else(|| {
                format!("`{n}` is not a whole number of milliseconds since the epoch")
            })?;
            DateTime::from_timestamp_millis(millis)
                .ok_or_else(|| format!("{millis} ms since the epoch is out of range"))
        }
        Value::String(text) => parse_timestamp_text(text.trim()).ok_or_else(|| {
            format!("`{text}` is not a time (expected RFC 3339 like `2012-03-30T09:30:00Z`, or `yyyy-MM-dd[ HH:mm:ss[.SSS]]`, or epoch milliseconds)")
        }),
        other => Err(format!(
            "is {}; expected epoch milliseconds or a time string",
            value_kind(other)
        )),
    }
}

fn parse_timestamp_text(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(time) = DateTime::parse_from_str(text, format) {
            return Some(time.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Whether `c` is escaped in a partition value: what Hive escapes
/// (`FileUtils.escapePathName`: control characters, `"#%'*/:=?\{[]^`) plus
/// what S3 advises against in keys (`` }<>|` ``).
fn needs_escape(c: char) -> bool {
    c.is_ascii_control()
        || matches!(
            c,
            '"' | '#'
                | '%'
                | '\''
                | '*'
                | '/'
                | ':'
                | '='
                | '?'
                | '\\'
                | '{'
                | '['
                | ']'
                | '^'
                | '}'
                | '<'
                | '>'
                | '|'
                | '`'
        )
}

/// Escapes a partition value as Hive does: each unsafe character becomes
/// `%XX` (uppercase hex), so `a/b` is `a%2Fb`; Hive, Athena and Glue decode it.
pub fn escape_path_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if needs_escape(c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes Hive's escaping of partition path names and values (the inverse
/// of [`escape_path_value`]): `%XX` (two hex digits) is the byte XX; anything
/// else, including a malformed `%`, is kept as it is, as Hive's
/// `FileUtils.unescapePathName` does.
pub fn unescape_path_value(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let high = (bytes[i + 1] as char).to_digit(16);
            let low = (bytes[i + 2] as char).to_digit(16);
            if let (Some(high), Some(low)) = (high, low) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_column_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the column name must not be empty".to_owned());
    }
    if let Some(c) = name.chars().find(|&c| needs_escape(c) || c == ' ') {
        return Err(format!(
            "column name `{name}` has `{}`; use letters, digits, `_` or `-` (Athena lowercases column names)",
            c.escape_default()
        ));
    }
    Ok(())
}

fn check_path_format(format: &str) -> Result<(), String> {
    let trimmed = format.trim_matches('/');
    if trimmed.is_empty() {
        return Err("must not be empty (the default is `year=%Y/month=%m/day=%d`)".to_owned());
    }
    if trimmed.split('/').any(|segment| segment.is_empty()) {
        return Err(format!("`{format}` has an empty folder (`//`)"));
    }
    if StrftimeItems::new(trimmed).parse().is_err() {
        return Err(format!(
            "`{format}` is not a valid strftime format (chrono: `%Y` year, `%m` month, `%d` day, `%H` hour, ...)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: Value, timestamp: Option<i64>) -> Record {
        Record {
            topic: "t".into(),
            partition: Some(2),
            offset: Some(7),
            key: None,
            value: Some(value),
            encoded_value: None,
            headers: Vec::new(),
            timestamp,
            position: None,
        }
    }

    fn field(field: &str, name: Option<&str>) -> Partitioner {
        PartitionerConfig {
            kind: PartitionerType::Field,
            field: Some(field.parse().unwrap()),
            name: name.map(str::to_owned),
            ..Default::default()
        }
        .build()
        .unwrap()
    }

    fn time(path_format: Option<&str>, timestamp_field: Option<&str>) -> Partitioner {
        PartitionerConfig {
            kind: PartitionerType::Time,
            path_format: path_format.map(str::to_owned),
            timestamp_field: timestamp_field.map(|f| f.parse().unwrap()),
            ..Default::default()
        }
        .build()
        .unwrap()
    }

    #[test]
    fn kafka_partitioner_names_the_partition() {
        let p = PartitionerConfig::default().build().unwrap();
        assert_eq!(p.path(&record(json!({}), None), 2).unwrap(), "partition=2");
    }

    #[test]
    fn field_partitioner_is_hive_style_with_an_optional_column_name() {
        let r = record(json!({"Index": "NYA", "Volume": 12, "ok": true}), None);
        assert_eq!(field("Index", None).path(&r, 2).unwrap(), "Index=NYA");
        assert_eq!(
            field("Index", Some("index")).path(&r, 2).unwrap(),
            "index=NYA"
        );
        assert_eq!(field("Volume", None).path(&r, 2).unwrap(), "Volume=12");
        assert_eq!(field("ok", None).path(&r, 2).unwrap(), "ok=true");
        let nested = record(json!({"meta": {"src": "a"}}), None);
        assert_eq!(field("meta.src", None).path(&nested, 0).unwrap(), "src=a");
    }

    #[test]
    fn field_values_are_escaped_like_hive() {
        let r = record(json!({"f": "a/b c=d%e:f?g#h\\i\u{1}j{k}l~m.é"}), None);
        assert_eq!(
            field("f", None).path(&r, 0).unwrap(),
            "f=a%2Fb c%3Dd%25e%3Af%3Fg%23h%5Ci%01j%7Bk%7Dl~m.é"
        );
        assert_eq!(escape_path_value("../x"), "..%2Fx");
    }

    #[test]
    fn missing_null_or_empty_fields_go_to_the_hive_default_partition() {
        let p = field("Index", Some("index"));
        for value in [json!({}), json!({"Index": null}), json!({"Index": ""})] {
            assert_eq!(
                p.path(&record(value, None), 0).unwrap(),
                "index=__HIVE_DEFAULT_PARTITION__"
            );
        }
        let error = p
            .path(&record(json!({"Index": {"a": 1}}), None), 0)
            .unwrap_err();
        assert!(error.contains("is an object"), "{error}");
    }

    #[test]
    fn time_partitioner_formats_the_record_timestamp_in_utc() {
        // 2021-05-31T23:59:59.999Z
        let r = record(json!({}), Some(1_622_505_599_999));
        assert_eq!(
            time(None, None).path(&r, 0).unwrap(),
            "year=2021/month=05/day=31"
        );
        assert_eq!(
            time(Some("/dt=%Y-%m-%d/hour=%H/"), None)
                .path(&r, 0)
                .unwrap(),
            "dt=2021-05-31/hour=23"
        );
        let error = time(None, None)
            .path(&record(json!({}), None), 0)
            .unwrap_err();
        assert!(error.contains("no timestamp"), "{error}");
    }

    #[test]
    fn time_partitioner_reads_a_timestamp_field() {
        let p = time(None, Some("Date"));
        let path = |v: Value| p.path(&record(json!({ "Date": v }), None), 0);
        assert_eq!(
            path(json!("2012-03-30")).unwrap(),
            "year=2012/month=03/day=30"
        );
        assert_eq!(
            path(json!("2012-03-30 23:10:00.250")).unwrap(),
            "year=2012/month=03/day=30"
        );
        assert_eq!(
            path(json!("2012-03-30T23:10:00-02:00")).unwrap(),
            "year=2012/month=03/day=31"
        );
        assert_eq!(
            path(json!(1_333_065_600_000_i64)).unwrap(),
            "year=2012/month=03/day=30"
        );
        assert!(path(json!("30/03/2012"))
            .unwrap_err()
            .contains("not a time"));
        assert!(path(json!(1.5)).unwrap_err().contains("whole number"));
        assert!(p
            .path(&record(json!({}), None), 0)
            .unwrap_err()
            .contains("missing or null"));
    }

    #[test]
    fn validation_reports_misplaced_and_missing_keys() {
        let config = PartitionerConfig {
            kind: PartitionerType::Kafka,
            field: Some("x".parse().unwrap()),
            path_format: Some("%Y".into()),
            ..Default::default()
        };
        let fields: Vec<String> = config.validate().into_iter().map(|i| i.field).collect();
        assert_eq!(fields, ["partitioner.field", "partitioner.path_format"]);
        let config = PartitionerConfig {
            kind: PartitionerType::Field,
            name: Some("a/b".into()),
            ..Default::default()
        };
        let fields: Vec<String> = config.validate().into_iter().map(|i| i.field).collect();
        assert_eq!(fields, ["partitioner", "partitioner.name"]);
        let config = PartitionerConfig {
            kind: PartitionerType::Time,
            path_format: Some("year=%Y/%Q".into()),
            timestamp: Some(TimestampSource::Record),
            timestamp_field: Some("t".parse().unwrap()),
            ..Default::default()
        };
        let fields: Vec<String> = config.validate().into_iter().map(|i| i.field).collect();
        assert_eq!(
            fields,
            ["partitioner.path_format", "partitioner.timestamp_field"]
        );
    }
}
