//! Human-readable durations (`30s`, `1m 30s`, `500ms`) in configs.

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
}
