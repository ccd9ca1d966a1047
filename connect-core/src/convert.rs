//! Converters: structured values to Kafka bytes and back.

use serde::Deserialize;

use crate::record::Value;

/// How a key or value is written to and read from Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Converter {
    /// JSON text (numbers keep their exact text).
    Json,
    /// UTF-8 text: a string value is written as is; any other value as its JSON text.
    String,
}

/// Bytes that do not decode with the configured converter.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Not valid JSON.
    #[error("not valid JSON ({0}); is the topic's `value_converter`/`key_converter` right?")]
    Json(#[from] serde_json::Error),
    /// Not valid UTF-8.
    #[error("not valid UTF-8 at byte {0}; use a converter that matches the data")]
    Utf8(usize),
}

impl Converter {
    /// Appends the bytes of `value` to `out` (cleared first).
    pub fn encode_into(self, value: &Value, out: &mut Vec<u8>) -> Result<(), ConvertError> {
        out.clear();
        match (self, value) {
            (Converter::String, Value::String(text)) => out.extend_from_slice(text.as_bytes()),
            _ => serde_json::to_writer(&mut *out, value)?,
        }
        Ok(())
    }

    /// Decodes bytes read from Kafka.
    pub fn decode(self, bytes: &[u8]) -> Result<Value, ConvertError> {
        match self {
            Converter::Json => Ok(serde_json::from_slice(bytes)?),
            Converter::String => std::str::from_utf8(bytes)
                .map(|s| Value::String(s.to_owned()))
                .map_err(|e| ConvertError::Utf8(e.valid_up_to())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_number_text_and_field_order() {
        let input = br#"{"z":1,"a":335.90698726000005,"v":0.0,"big":12345678901234567890}"#;
        let value = Converter::Json.decode(input).unwrap();
        let mut out = Vec::new();
        Converter::Json.encode_into(&value, &mut out).unwrap();
        assert_eq!(out, input);
    }

    #[test]
    fn string_writes_strings_raw_and_rejects_bad_utf8() {
        let mut out = Vec::new();
        Converter::String
            .encode_into(&Value::String("000001.SS".into()), &mut out)
            .unwrap();
        assert_eq!(out, b"000001.SS");
        assert_eq!(
            Converter::String.decode(b"NYA").unwrap(),
            Value::String("NYA".into())
        );
        assert!(matches!(
            Converter::String.decode(b"ab\xff"),
            Err(ConvertError::Utf8(2))
        ));
    }
}
