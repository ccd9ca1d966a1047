//! The record model shared by sources, transforms and sinks.

use std::sync::Arc;

/// A structured value: JSON-like, objects keep their field order and numbers
/// keep their exact text (`335.90698726000005` stays that, `0.0` stays `0.0`),
/// because `serde_json` is built with `preserve_order` and `arbitrary_precision`.
pub type Value = serde_json::Value;

/// How a value is named in error messages: "a string", "an object", ...
pub fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Record headers, in order; a header may repeat and may have no value.
pub type Headers = Vec<(String, Option<Vec<u8>>)>;

/// One record on its way through a pipeline.
///
/// On the source side `partition` and `offset` are `None` (Kafka assigns them
/// on produce) and `position` says where in the outside system the record came
/// from. On the sink side `partition` and `offset` say where in Kafka it was
/// read and `position` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Kafka topic.
    pub topic: Arc<str>,
    /// Kafka partition; `None` until the record has been written to Kafka.
    pub partition: Option<i32>,
    /// Kafka offset; `None` until the record has been written to Kafka.
    pub offset: Option<i64>,
    /// Record key; `None` is a null key.
    pub key: Option<Value>,
    /// Record value; `None` is a tombstone, unless `encoded_value` holds
    /// the value (see [`Record::is_tombstone`]).
    pub value: Option<Value>,
    /// The value as JSON text, in place of `value` (which is then `None`):
    /// the fast path that spares building a [`Value`] only to write it out
    /// again. A source may emit its values this way; the runtime produces
    /// the bytes as they are when no source transform runs and the topic's
    /// `value_converter` is `json`, and decodes them otherwise. A sink gets
    /// values this way only if it asks ([`crate::plugin::Sink::accepts_encoded_values`])
    /// and no sink transform runs: the bytes read from Kafka, checked to be
    /// one JSON value without line breaks. Transforms never see it.
    pub encoded_value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Headers,
    /// Milliseconds since the Unix epoch; `None` lets the producer stamp it.
    pub timestamp: Option<i64>,
    /// Where a source record came from, for resuming (sources only).
    pub position: Option<SourcePosition>,
}

impl Record {
    /// A source record for `topic` with a key, a value and a position.
    pub fn from_source(
        topic: Arc<str>,
        key: Option<Value>,
        value: Option<Value>,
        position: SourcePosition,
    ) -> Self {
        Self {
            topic,
            partition: None,
            offset: None,
            key,
            value,
            encoded_value: None,
            headers: Vec::new(),
            timestamp: None,
            position: Some(position),
        }
    }

    /// A source record whose value is already JSON text (see
    /// [`Record::encoded_value`]).
    pub fn from_source_encoded(
        topic: Arc<str>,
        key: Option<Value>,
        encoded_value: Vec<u8>,
        position: SourcePosition,
    ) -> Self {
        Self {
            encoded_value: Some(encoded_value),
            ..Self::from_source(topic, key, None, position)
        }
    }

    /// Whether the record has no value (a tombstone).
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none() && self.encoded_value.is_none()
    }

    /// Turns an encoded value into a [`Value`] (`value` set,
    /// `encoded_value` cleared); does nothing to a decoded value or a
    /// tombstone.
    pub fn decode_value(&mut self) -> Result<(), serde_json::Error> {
        if let Some(bytes) = self.encoded_value.take() {
            match serde_json::from_slice(&bytes) {
                Ok(value) => self.value = Some(value),
                Err(error) => {
                    self.encoded_value = Some(bytes);
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Appends the value as JSON text to `out`: the encoded bytes as they
    /// are, or the decoded value serialised. Returns `false` (and writes
    /// nothing) for a tombstone.
    pub fn write_value_json(&self, out: &mut Vec<u8>) -> Result<bool, serde_json::Error> {
        if let Some(bytes) = &self.encoded_value {
            out.extend_from_slice(bytes);
            return Ok(true);
        }
        match &self.value {
            Some(value) => serde_json::to_writer(out, value).map(|()| true),
            None => Ok(false),
        }
    }
}

/// Whether `bytes` can pass through to a JSON Lines line as they are: one
/// JSON value (checked without building it) with no line break in it.
pub fn is_one_json_line(bytes: &[u8]) -> bool {
    !bytes.iter().any(|&b| b == b'\n' || b == b'\r')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// A source's position, opaque to the runtime, in Kafka Connect's two parts:
/// which stream of the outside system (`partition`, e.g. `{"file": "..."}`)
/// and how far into it (`offset`, e.g. `{"byte_offset": 1024, "line": 12}`).
#[derive(Debug, Clone, PartialEq)]
pub struct SourcePosition {
    /// Identifies the stream within the source, shared by many records.
    pub partition: Arc<Value>,
    /// How far into that stream this record is.
    pub offset: Value,
}

/// A Kafka topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number.
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> SourcePosition {
        SourcePosition {
            partition: Arc::new(serde_json::json!({"file": "f"})),
            offset: serde_json::json!({"line": 1}),
        }
    }

    #[test]
    fn an_encoded_value_decodes_and_writes_as_the_same_json() {
        let text = br#"{"Index":"NYA","Close":335.90698726000005,"Volume":0.0}"#;
        let mut record = Record::from_source_encoded("t".into(), None, text.to_vec(), position());
        assert!(!record.is_tombstone());
        let mut out = Vec::new();
        assert!(record.write_value_json(&mut out).unwrap());
        assert_eq!(out, text);
        record.decode_value().unwrap();
        assert!(record.encoded_value.is_none());
        assert_eq!(
            record.value.as_ref().unwrap()["Close"].to_string(),
            "335.90698726000005"
        );
        out.clear();
        assert!(record.write_value_json(&mut out).unwrap());
        assert_eq!(out, text, "decoding keeps field order and number text");

        let mut broken =
            Record::from_source_encoded("t".into(), None, b"{\"a\":".to_vec(), position());
        assert!(broken.decode_value().is_err());
        assert!(
            broken.encoded_value.is_some(),
            "a failed decode keeps the bytes"
        );

        let tombstone = Record::from_source("t".into(), None, None, position());
        assert!(tombstone.is_tombstone());
        assert!(!tombstone.write_value_json(&mut out).unwrap());
    }

    #[test]
    fn only_one_json_value_on_one_line_passes_through() {
        for good in [&b"{\"a\":[1,2]}"[..], b"\"text\"", b"12.50", b" null "] {
            assert!(is_one_json_line(good), "{}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"{\"a\":\n1}"[..],
            b"{\"a\":1}\r",
            b"{\"a\":1} {}",
            b"{\"a\"",
            b"",
            b"nul",
        ] {
            assert!(!is_one_json_line(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
