//! `cast`: casts fields of the record key or value, or the whole key or
//! value, to another primitive type, like Kafka Connect's `Cast$Key` /
//! `Cast$Value` in schemaless mode.
//!
//! `spec` is either one type for the whole key or value (`spec: string`) or a
//! mapping of fields to types (`spec: {Volume: int64, "Adj Close": float32}`).
//! The types are Kafka Connect's: `int8`, `int16`, `int32`, `int64`,
//! `float32`, `float64`, `boolean`, `string`. A JSON number written with a
//! fraction or an exponent is a `Double` for Kafka Connect, any other number a
//! `Long`, and the casts follow Kafka Connect's rules for them:
//! - to an integer type: a number with a fraction is truncated toward zero
//!   (`Number.longValue()`: `0.0` → `0`, `1.23E9` → `1230000000`,
//!   `-2.7` → `-2`); a string must be an integer (`Long.parseLong`: `"12"`,
//!   `"+12"`, not `"1.5"` nor `" 12"`); a boolean gives `1` or `0`;
//! - to `float32` / `float64`: a number or a string read as a number (leading
//!   and trailing whitespace allowed, as `Double.parseDouble`), written in the
//!   shortest form that reads back to the same `float`/`double` (`5` → `5.0`,
//!   `2568.300049` as `float32` → `2568.3`); a boolean gives `1.0` or `0.0`;
//! - to `boolean`: a number is `true` unless its integer part is zero
//!   (`longValue() != 0`, so `0.5` → `false`); a string is `true` only when it
//!   is `true` in any case (`Boolean.parseBoolean`);
//! - to `string`: a number as its JSON text, a boolean as `true`/`false`.
//!
//! A cast that keeps the JSON type keeps the exact text: a float cast to
//! `float64`, an integer cast to an integer type it fits in, a string cast to
//! `string` are unchanged byte for byte. A null field stays null. As in Kafka
//! Connect, a field of the spec that is missing from the record is added with
//! a null value (Kafka Connect puts `cast(value.get(field))`, which is null).
//! A null key or a tombstone value passes through unchanged. An object or an
//! array cannot be cast (Kafka Connect: "Cast transformation does not support
//! casting from MAP"), and a field spec on a key or value that is not an
//! object is an error ("Only Map objects supported in absence of schema for
//! [cast types]").
//!
//! Deliberate differences from Kafka Connect (checked against Kafka Connect
//! 4.4.0):
//! - A value out of the range of the integer type (`300` to `int8`,
//!   `1e30` to `int64`) is an error naming the field; Kafka Connect narrows
//!   numbers silently (`300` → `44`, `1e30` → `9223372036854775807` as
//!   `int64` and `-1` as `int8`) and only fails for strings.
//! - `float32`/`float64` results that would be NaN or infinite (`"NaN"`,
//!   `"1e400"`) are errors: JSON has no such numbers (Kafka Connect's JSON
//!   converter writes the string `"NaN"`).
//! - Numbers cast to `string` keep their JSON text (`1230000000.0` stays
//!   that, and `1.23E9`, which `serde_json` stores as `1.23e+9`, gives
//!   `"1.23e+9"`); Kafka Connect writes a `Double` with `Double.toString`
//!   (`"1.23E9"`).
//! - A float cast to `float64` keeps its text instead of going through a
//!   `double` (`1.50E2` stays `1.50e+2`, `0.10000000000000000001` stays that;
//!   Kafka Connect writes `150.0` and `0.1`) — the same number as far as a
//!   `double` can tell. Other floats are written in the shortest form with a
//!   lower-case exponent (`1e+20`, Java `1.0E20`).
//! - Field names are dotted paths into nested objects (`quote."Adj Close"`);
//!   Kafka Connect only casts top-level fields. When the parent object of a
//!   nested field is missing (or is not an object), the field is left alone.
//! - `spec` is a YAML mapping rather than Kafka Connect's `field:type,...`
//!   text, and fields keep their order (Kafka Connect builds a `HashMap`).

use crate::kind;
use std::borrow::Cow;
use std::fmt;
use std::num::IntErrorKind;

use connect_core::config::diagnostics::suggest;
use connect_core::plugin::{FieldIssue, Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, json_schema, JsonSchema, Schema, SchemaGenerator};
use connect_core::transform::{FieldPath, Target};
use connect_core::{ConnectorError, ConnectorResult, Record, Value};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Number;

/// Casts fields of the key or value, or the whole key or value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CastConfig {
    /// Which part of the record to cast: `value` (default) or `key`.
    #[serde(default)]
    pub target: Target,
    /// One type for the whole key or value (`int64`), or a mapping of field
    /// paths to types (`{Volume: int64, "Adj Close": float64}`).
    pub spec: CastSpec,
}

/// What to cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CastSpec {
    /// The whole key or value, to this type.
    Whole(CastType),
    /// These fields, each to its type, in order.
    Fields(Vec<(FieldPath, CastType)>),
}

/// A type to cast to, as Kafka Connect names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CastType {
    /// An 8-bit signed integer.
    Int8,
    /// A 16-bit signed integer.
    Int16,
    /// A 32-bit signed integer.
    Int32,
    /// A 64-bit signed integer.
    Int64,
    /// A single-precision float.
    Float32,
    /// A double-precision float.
    Float64,
    /// `true` or `false`.
    Boolean,
    /// A string.
    String,
}

/// Every type name, in Kafka Connect's order.
const TYPE_NAMES: [&str; 8] = [
    "int8", "int16", "int32", "int64", "float32", "float64", "boolean", "string",
];

impl CastType {
    /// The YAML name, e.g. `int64`.
    pub fn name(self) -> &'static str {
        match self {
            CastType::Int8 => "int8",
            CastType::Int16 => "int16",
            CastType::Int32 => "int32",
            CastType::Int64 => "int64",
            CastType::Float32 => "float32",
            CastType::Float64 => "float64",
            CastType::Boolean => "boolean",
            CastType::String => "string",
        }
    }

    fn from_name(name: &str) -> Option<CastType> {
        Some(match name {
            "int8" => CastType::Int8,
            "int16" => CastType::Int16,
            "int32" => CastType::Int32,
            "int64" => CastType::Int64,
            "float32" => CastType::Float32,
            "float64" => CastType::Float64,
            "boolean" => CastType::Boolean,
            "string" => CastType::String,
            _ => return None,
        })
    }

    /// The smallest and largest value of an integer type.
    fn int_range(self) -> Option<(i64, i64)> {
        match self {
            CastType::Int8 => Some((i8::MIN.into(), i8::MAX.into())),
            CastType::Int16 => Some((i16::MIN.into(), i16::MAX.into())),
            CastType::Int32 => Some((i32::MIN.into(), i32::MAX.into())),
            CastType::Int64 => Some((i64::MIN, i64::MAX)),
            _ => None,
        }
    }
}

impl fmt::Display for CastType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for CastSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SpecVisitor)
    }
}

/// What `SpecVisitor` reads: a type name, or a mapping of field paths to type names.
impl JsonSchema for CastSpec {
    fn schema_name() -> Cow<'static, str> {
        "CastSpec".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "connect_transforms::cast::CastSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let cast_type = generator.subschema_for::<CastType>();
        json_schema!({
            "description": "One type for the whole key or value, or a mapping of field paths to types.",
            "anyOf": [
                cast_type,
                {
                    "type": "object",
                    "additionalProperties": cast_type,
                    "minProperties": 1,
                },
            ],
        })
    }
}

/// Reads `spec`: a type name or a mapping of field paths to type names.
struct SpecVisitor;

impl<'de> Visitor<'de> for SpecVisitor {
    type Value = CastSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a type for the whole value (`int64`) or a mapping of fields to types (`{Volume: int64}`)")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<CastSpec, E> {
        if let Some(found) = CastType::from_name(text) {
            return Ok(CastSpec::Whole(found));
        }
        if text.contains(':') {
            return Err(E::custom(format!(
                "`{text}` is Kafka Connect's `field:type` form; write a mapping instead, e.g. `spec: {{Volume: int64}}`"
            )));
        }
        let hint = suggest(text, TYPE_NAMES)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(E::custom(format!(
            "unknown type `{text}`{hint}; expected one of {}, or a mapping of fields to types",
            TYPE_NAMES.map(|n| format!("`{n}`")).join(", ")
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CastSpec, A::Error> {
        let mut fields = Vec::new();
        while let Some(entry) = map.next_entry::<FieldPath, CastType>()? {
            fields.push(entry);
        }
        Ok(CastSpec::Fields(fields))
    }
}

impl TransformConfig for CastConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.spec == CastSpec::Fields(Vec::new()) {
            issues.push(FieldIssue::new(
                "spec",
                "names no field; map at least one field to a type, or give one type for the whole value",
            ));
        }
        issues
    }

    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(Cast {
            target: self.target,
            spec: self.spec.clone(),
        }))
    }
}

/// The running transform.
struct Cast {
    target: Target,
    spec: CastSpec,
}

impl Transform for Cast {
    fn apply(&mut self, record: &mut Record) -> ConnectorResult<Outcome> {
        let target = self.target;
        let value = match target.get_mut(record) {
            None | Some(Value::Null) => return Ok(Outcome::Keep),
            Some(value) => value,
        };
        match &self.spec {
            CastSpec::Whole(to) => {
                if let Some(cast) = cast(value, *to).map_err(|problem| {
                    ConnectorError::fatal(format!("cast: the record {} {problem}", target.name()))
                })? {
                    *value = cast;
                }
            }
            CastSpec::Fields(fields) => {
                if !value.is_object() {
                    return Err(ConnectorError::fatal(format!(
                        "cast of fields works on objects only, and the record {} is {} (Kafka Connect: \"Only Map objects supported in absence of schema for [cast types]\"); to cast the whole {0}, give one type: `spec: {}`",
                        target.name(),
                        kind(value),
                        fields.first().map_or("string", |(_, to)| to.name()),
                    )));
                }
                for (path, to) in fields {
                    let Some(parent) = path.parent_mut(value) else {
                        continue;
                    };
                    let Some(field) = parent.get_mut(path.leaf()) else {
                        parent.insert(path.leaf().to_owned(), Value::Null);
                        continue;
                    };
                    if let Some(cast) = cast(field, *to).map_err(|problem| {
                        ConnectorError::fatal(format!("cast: `{path}` {problem}"))
                    })? {
                        *field = cast;
                    }
                }
            }
        }
        Ok(Outcome::Keep)
    }
}

/// `value` cast to `to`: `None` when it stays as it is (same JSON type, same
/// text), or what is wrong, worded to follow the field's name.
fn cast(value: &Value, to: CastType) -> Result<Option<Value>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(match to {
            CastType::Boolean => return Ok(None),
            CastType::String => Value::String(b.to_string()),
            CastType::Float32 | CastType::Float64 => Value::from(if *b { 1.0 } else { 0.0 }),
            _ => Value::from(i64::from(*b)),
        })),
        Value::Number(n) => cast_number(n, to),
        Value::String(text) => cast_string(text, to),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "is {}, and cast converts numbers, strings and booleans only (Kafka Connect: \"Cast transformation does not support casting from {}\")",
            kind(value),
            if value.is_array() { "ARRAY" } else { "MAP" }
        )),
    }
}

/// Casts a JSON number: a `Long` when written as an integer, else a `Double`.
fn cast_number(number: &Number, to: CastType) -> Result<Option<Value>, String> {
    let text = number.as_str();
    let integer = !text.contains(['.', 'e', 'E']);
    let out_of_range = || format!("is {text}, out of the range of {to}{}", range_text(to));
    if integer {
        let long = text.parse::<i64>().ok();
        match to {
            CastType::String => Ok(Some(Value::String(text.to_owned()))),
            CastType::Boolean => Ok(Some(Value::Bool(
                text.bytes().any(|b| b.is_ascii_digit() && b != b'0'),
            ))),
            // Java's `Long.floatValue()` / `doubleValue()`: one rounding.
            CastType::Float32 => float32(long.map(|l| l as f32).or_else(|| text.parse().ok()))
                .map(Some)
                .ok_or_else(out_of_range),
            CastType::Float64 => float64(long.map(|l| l as f64).or_else(|| text.parse().ok()))
                .map(Some)
                .ok_or_else(out_of_range),
            _ => match (long, to.int_range()) {
                (Some(long), Some((min, max))) if (min..=max).contains(&long) => Ok(None),
                _ => Err(out_of_range()),
            },
        }
    } else {
        let double = text.parse::<f64>().ok().filter(|f| f.is_finite());
        match to {
            CastType::Float64 => Ok(None),
            CastType::String => Ok(Some(Value::String(text.to_owned()))),
            CastType::Float32 => float32(double.map(|f| f as f32))
                .map(Some)
                .ok_or_else(out_of_range),
            CastType::Boolean => Ok(Some(Value::Bool(double.is_some_and(|f| f.trunc() != 0.0)))),
            _ => double
                .and_then(|f| truncate(f, to))
                .map(|long| Some(Value::from(long)))
                .ok_or_else(out_of_range),
        }
    }
}

/// Casts a string, parsing it as Kafka Connect does.
fn cast_string(text: &str, to: CastType) -> Result<Option<Value>, String> {
    let not_read = |what: &str| format!("is the string `{text}`, which does not read as {what}");
    match to {
        CastType::String => Ok(None),
        CastType::Boolean => Ok(Some(Value::Bool(text.eq_ignore_ascii_case("true")))),
        CastType::Float32 => match text.trim().parse::<f32>() {
            Ok(f) => float32(Some(f))
                .map(Some)
                .ok_or_else(|| not_read("a finite float32 (JSON has no NaN or infinity)")),
            Err(_) => Err(not_read("a number")),
        },
        CastType::Float64 => match text.trim().parse::<f64>() {
            Ok(f) => float64(Some(f))
                .map(Some)
                .ok_or_else(|| not_read("a finite float64 (JSON has no NaN or infinity)")),
            Err(_) => Err(not_read("a number")),
        },
        _ => {
            let out_of_range = || {
                format!(
                    "is the string `{text}`, out of the range of {to}{}",
                    range_text(to)
                )
            };
            match text.parse::<i64>() {
                Ok(long)
                    if to
                        .int_range()
                        .is_some_and(|(min, max)| (min..=max).contains(&long)) =>
                {
                    Ok(Some(Value::from(long)))
                }
                Ok(_) => Err(out_of_range()),
                Err(e)
                    if matches!(
                        e.kind(),
                        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
                    ) =>
                {
                    Err(out_of_range())
                }
                Err(_) => Err(not_read(&format!("an integer ({to})"))),
            }
        }
    }
}

/// `f` truncated toward zero, if that fits in the integer type `to`.
fn truncate(f: f64, to: CastType) -> Option<i64> {
    let (min, max) = to.int_range()?;
    let t = f.trunc();
    // `max as f64 + 1.0` is exact for the small types and rounds to 2^63 for
    // int64, so `t < ...` is the right bound for every type.
    (t >= min as f64 && t < max as f64 + 1.0).then_some(t as i64)
}

/// A JSON number for a finite `float`, in its shortest form.
fn float32(f: Option<f32>) -> Option<Value> {
    f.filter(|f| f.is_finite()).map(Value::from)
}

/// A JSON number for a finite `double`, in its shortest form.
fn float64(f: Option<f64>) -> Option<Value> {
    f.and_then(Number::from_f64).map(Value::Number)
}

/// ` (-128 to 127)` for integer types; empty for the others.
fn range_text(to: CastType) -> String {
    to.int_range()
        .map(|(min, max)| format!(" ({min} to {max})"))
        .unwrap_or_default()
}

connect_core::register_plugin!(transform "cast", CastConfig,
    summary: "Casts fields of the key or value, or the whole key or value, to int8..int64, float32, float64, boolean or string",
    example: "type: cast\nspec:\n  Volume: int64\n  \"Adj Close\": float64\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn run(yaml: &str, record: &mut Record) -> ConnectorResult<Outcome> {
        apply_config::<CastConfig>(yaml, record)
    }

    /// The value `value` (JSON text) after casting it whole to `to`.
    fn whole(value: &str, to: &str) -> Result<String, String> {
        let mut record = record(None, Some(serde_json::from_str(value).unwrap()));
        run(&format!("spec: {to}\n"), &mut record).map_err(|e| e.to_string())?;
        Ok(serde_json::to_string(record.value.as_ref().unwrap()).unwrap())
    }

    #[test]
    fn casts_the_flagship_stock_record() {
        let mut record = record(None, Some(stock_value()));
        run(
            "spec:\n  Volume: int64\n  \"Adj Close\": float64\n  Open: float32\n  Close: string\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(record.value.as_ref().unwrap()).unwrap(),
            r#"{"Index":"HSI","Date":"1986-12-31","Open":2568.3,"High":2568.300049,"Low":2568.300049,"Close":"2568.300049","Adj Close":2568.300049,"Volume":0,"CloseUSD":333.87900637}"#
        );
    }

    #[test]
    fn casts_numbers_like_kafka_connect() {
        assert_eq!(whole("0.0", "int64").unwrap(), "0");
        assert_eq!(whole("1.23E9", "int64").unwrap(), "1230000000");
        assert_eq!(whole("-2.7", "int32").unwrap(), "-2");
        assert_eq!(whole("-0.5", "int8").unwrap(), "0");
        assert_eq!(
            whole("9223372036854775807", "int64").unwrap(),
            "9223372036854775807"
        );
        assert_eq!(whole("16777217", "float32").unwrap(), "16777216.0");
        assert_eq!(whole("5", "float64").unwrap(), "5.0");
        assert_eq!(
            whole("335.90698726000005", "float64").unwrap(),
            "335.90698726000005"
        );
        assert_eq!(whole("1.50E2", "float64").unwrap(), "1.50e+2");
        assert_eq!(
            whole("9007199254740993", "int64").unwrap(),
            "9007199254740993"
        );
        assert_eq!(whole("127", "int8").unwrap(), "127");
        assert_eq!(whole("0.5", "boolean").unwrap(), "false");
        assert_eq!(whole("-3", "boolean").unwrap(), "true");
        assert_eq!(whole("0", "boolean").unwrap(), "false");
        assert_eq!(whole("1.23E9", "string").unwrap(), r#""1.23e+9""#);
        assert_eq!(whole("1e20", "float32").unwrap(), "1e+20");
        assert_eq!(whole("true", "int16").unwrap(), "1");
        assert_eq!(whole("false", "float32").unwrap(), "0.0");
        assert_eq!(whole("true", "string").unwrap(), r#""true""#);
    }

    #[test]
    fn casts_strings_like_kafka_connect() {
        assert_eq!(whole(r#""42""#, "int64").unwrap(), "42");
        assert_eq!(whole(r#""+42""#, "int8").unwrap(), "42");
        assert_eq!(whole(r#"" 1.5 ""#, "float64").unwrap(), "1.5");
        assert_eq!(whole(r#""2568.300049""#, "float32").unwrap(), "2568.3");
        assert_eq!(whole(r#""TRUE""#, "boolean").unwrap(), "true");
        assert_eq!(whole(r#""yes""#, "boolean").unwrap(), "false");
        assert_eq!(whole(r#""x y""#, "string").unwrap(), r#""x y""#);
    }

    #[test]
    fn reports_values_that_do_not_cast() {
        assert_eq!(
            whole("300", "int8").unwrap_err(),
            "cast: the record value is 300, out of the range of int8 (-128 to 127)"
        );
        assert_eq!(
            whole("1e30", "int64").unwrap_err(),
            "cast: the record value is 1e+30, out of the range of int64 (-9223372036854775808 to 9223372036854775807)"
        );
        assert_eq!(
            whole("1e300", "float32").unwrap_err(),
            "cast: the record value is 1e+300, out of the range of float32"
        );
        assert_eq!(
            whole(r#""300""#, "int8").unwrap_err(),
            "cast: the record value is the string `300`, out of the range of int8 (-128 to 127)"
        );
        assert_eq!(
            whole(r#""NaN""#, "float64").unwrap_err(),
            "cast: the record value is the string `NaN`, which does not read as a finite float64 (JSON has no NaN or infinity)"
        );
        assert_eq!(
            whole("9223372036854775808", "int64").unwrap_err(),
            "cast: the record value is 9223372036854775808, out of the range of int64 (-9223372036854775808 to 9223372036854775807)"
        );
        assert_eq!(
            whole(r#"" 12""#, "int32").unwrap_err(),
            "cast: the record value is the string ` 12`, which does not read as an integer (int32)"
        );
        let mut record = record(None, Some(json!({"Volume": "abc"})));
        assert_eq!(
            run("spec: {Volume: int64}\n", &mut record)
                .unwrap_err()
                .to_string(),
            "cast: `Volume` is the string `abc`, which does not read as an integer (int64)"
        );
        let mut record = crate::testing::record(None, Some(json!({"a": {"b": 1}})));
        assert_eq!(
            run("spec: {a: string}\n", &mut record).unwrap_err().to_string(),
            "cast: `a` is an object, and cast converts numbers, strings and booleans only (Kafka Connect: \"Cast transformation does not support casting from MAP\")"
        );
    }

    #[test]
    fn casts_nested_fields_and_adds_missing_ones_as_null() {
        let mut record = record(
            None,
            Some(json!({"q": {"Adj Close": "12", "n": null}, "id": 1})),
        );
        run(
            "spec: {q.\"Adj Close\": int32, q.n: int8, missing: string, none.x: int8}\n",
            &mut record,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(record.value.as_ref().unwrap()).unwrap(),
            r#"{"q":{"Adj Close":12,"n":null},"id":1,"missing":null}"#
        );
    }

    #[test]
    fn targets_the_key_and_passes_nulls_through() {
        let mut record = record(Some(json!(7)), Some(json!({"a": 1})));
        run("target: key\nspec: string\n", &mut record).unwrap();
        assert_eq!(record.key, Some(json!("7")));
        assert_eq!(record.value, Some(json!({"a": 1})));
        let mut tombstone = crate::testing::record(Some(json!("k")), None);
        run("spec: {a: int8}\n", &mut tombstone).unwrap();
        assert_eq!(tombstone, crate::testing::record(Some(json!("k")), None));
    }

    #[test]
    fn a_field_spec_needs_an_object() {
        let mut record = record(None, Some(json!("12")));
        assert_eq!(
            run("spec: {a: int8}\n", &mut record).unwrap_err().to_string(),
            "cast of fields works on objects only, and the record value is a string (Kafka Connect: \"Only Map objects supported in absence of schema for [cast types]\"); to cast the whole value, give one type: `spec: int8`"
        );
    }

    #[test]
    fn reports_config_problems() {
        assert_eq!(
            try_config::<CastConfig>("spec: int\n").unwrap_err(),
            vec!["1:7: spec: unknown type `int` (did you mean `int8`?); expected one of `int8`, `int16`, `int32`, `int64`, `float32`, `float64`, `boolean`, `string`, or a mapping of fields to types".to_owned()]
        );
        assert_eq!(
            try_config::<CastConfig>("spec:\n  Volume: int64\n  Open: double\n").unwrap_err(),
            vec!["3:9: spec.Open: unknown value `double`; expected one of `int8`, `int16`, `int32`, `int64`, `float32`, `float64`, `boolean`, `string`".to_owned()]
        );
        assert_eq!(
            try_config::<CastConfig>("spec: Volume:int64\n").unwrap_err(),
            vec!["1:7: spec: `Volume:int64` is Kafka Connect's `field:type` form; write a mapping instead, e.g. `spec: {Volume: int64}`".to_owned()]
        );
        assert_eq!(
            try_config::<CastConfig>("target: value\n").unwrap_err(),
            vec!["1:1: : missing field `spec`".to_owned()]
        );
        let empty: CastConfig = config("spec: {}\n");
        assert_eq!(
            empty.validate(),
            vec![FieldIssue::new(
                "spec",
                "names no field; map at least one field to a type, or give one type for the whole value"
            )]
        );
    }

    #[test]
    fn locates_validation_problems_in_the_pipeline_file() {
        let yaml = "transforms:\n  - type: cast\n    spec: {}\n";
        assert_eq!(
            crate::testing::chain_errors("t.yaml", yaml),
            "t.yaml:3:11: transforms[0].spec: transform 1 `cast`: names no field; map at least one field to a type, or give one type for the whole value"
        );
    }
}
