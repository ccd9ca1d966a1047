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
    /// Record value; `None` is a tombstone.
    pub value: Option<Value>,
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
            headers: Vec::new(),
            timestamp: None,
            position: Some(position),
        }
    }
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
