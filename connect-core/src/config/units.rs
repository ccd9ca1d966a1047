//! Human-readable durations (`30s`, `1m 30s`, `500ms`) and sizes (`64MiB`,
//! `5MB`) in configs.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as `humantime` text, e.g. `250ms`, `30s`, `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a duration ({e}); write it like `500ms`, `30s`, `5m` or `1h`"
                ))
            })
    }
}

/// A string in the `duration` format: numbers with units (humantime's),
/// optionally several (`1m 30s`), as [`HumanDuration`]'s `Deserialize` reads it.
impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "connect_core::config::units::HumanDuration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "duration",
            "pattern": DURATION_PATTERN,
            "description": "A duration: a number and a unit, e.g. `500ms`, `30s`, `10m`, `1h`; \
                parts add up (`1m 30s`).",
        })
    }
}

/// What `humantime::parse_duration` accepts: numbers (with an optional
/// fraction) each followed by one of its units.
const DURATION_PATTERN: &str = "^\\s*([0-9]+(\\.[0-9]+)?\\s*\
    (nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|\
    hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)\\s*)+$";

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Duration {
        d.0
    }
}

/// A size in bytes, written `123`, `10KiB`, `64MiB`, `1GiB` (binary) or `5MB`, `2GB` (decimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `123`, `123B`, `10KB`, `10KiB`, `64MiB`, `1.5GiB` (units case-insensitive).
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "k" => 1_000,
            "mb" | "m" => 1_000_000,
            "gb" | "g" => 1_000_000_000,
            "tb" | "t" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => {
                return Err(format!(
                "`{text}` is not a size; write it like `123`, `10KiB`, `64MiB`, `1GiB` or `5MB`"
            ))
            }
        };
        let bytes = if let Ok(whole) = number.parse::<u64>() {
            whole.checked_mul(multiplier)
        } else {
            number
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| f * multiplier as f64)
                .filter(|b| *b < u64::MAX as f64)
                .map(|b| b.round() as u64)
        };
        bytes.map(ByteSize).ok_or_else(|| {
            format!(
                "`{text}` is not a size; write it like `123`, `10KiB`, `64MiB`, `1GiB` or `5MB`"
            )
        })
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = [
            (1u64 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (size, unit) in units {
            if self.0 >= size && self.0 % size == 0 {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

/// Written as its `Display` text, which parses back to the same size.
impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size like `123`, `10KiB`, `64MiB`, `1GiB` or `5MB`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("`{v}` is not a size: it is negative")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ByteSize, E> {
                ByteSize::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// What `ByteSize::parse` accepts as text (a YAML number is a count of bytes).
const BYTE_SIZE_PATTERN: &str =
    "^\\s*([0-9]+\\.?[0-9]*|\\.[0-9]+)\\s*([kKmMgGtT][iI]?[bB]|[kKmMgGtT]|[bB])?\\s*$";

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "connect_core::config::units::ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "number"],
            "format": "size",
            "pattern": BYTE_SIZE_PATTERN,
            "minimum": 0,
            "description": "A size in bytes: a number, or a number and a unit, binary \
                (`10KiB`, `64MiB`, `1GiB`) or decimal (`5MB`, `2GB`).",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_pattern_describes_what_parses() {
        let schema = schemars::schema_for!(HumanDuration);
        assert_eq!(
            schema.get("format").and_then(|f| f.as_str()),
            Some("duration")
        );
        assert_eq!(
            schema.get("pattern").and_then(|p| p.as_str()),
            Some(DURATION_PATTERN)
        );
        let pattern = regex::Regex::new(DURATION_PATTERN).expect("pattern compiles");
        for text in [
            "500ms", "30s", "10m", "1h", "1m 30s", "1.5h", "2days", "3 weeks", "5µs",
        ] {
            assert!(pattern.is_match(text), "pattern rejects {text}");
            assert!(humantime::parse_duration(text).is_ok(), "{text}");
        }
        for text in ["", "fast", "10", "10 parsecs", "m5", "1.h"] {
            assert!(!pattern.is_match(text), "pattern accepts {text}");
            assert!(humantime::parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        let parse = |t: &str| ByteSize::parse(t).map(|b| b.0);
        assert_eq!(parse("123"), Ok(123));
        assert_eq!(parse("123B"), Ok(123));
        assert_eq!(parse("10KiB"), Ok(10 * 1024));
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("5MB"), Ok(5_000_000));
        assert_eq!(parse("2 gb"), Ok(2_000_000_000));
        assert_eq!(parse("1.5KiB"), Ok(1536));
        for bad in ["", "MiB", "12 parsecs", "-5", "1.2.3MB", "99999999999TiB"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(5_000_000).to_string(), "5000000B");
        let pattern = regex::Regex::new(BYTE_SIZE_PATTERN).expect("pattern compiles");
        for good in [
            "123", "123B", "10KiB", "64MiB", "5MB", "2 gb", "1.5KiB", " 7k ",
        ] {
            assert!(pattern.is_match(good), "pattern rejects {good}");
            assert!(parse(good).is_ok(), "{good}");
        }
        for bad in ["", "MiB", "12 parsecs", "-5", "1.2.3MB", "10Ki"] {
            assert!(!pattern.is_match(bad), "pattern accepts {bad}");
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
