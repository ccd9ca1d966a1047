//! What transforms share: which part of a record they work on, field paths,
//! and the chain that runs a connector's transforms with their predicates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::error::ConnectorError;
use crate::plugin::{Outcome, Predicate, Transform};
use crate::record::{Record, Value};

/// The part of a record a transform works on, Kafka Connect's `$Key` / `$Value`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The record value (Kafka Connect's `$Value`), the default.
    #[default]
    Value,
    /// The record key (Kafka Connect's `$Key`).
    Key,
}

impl Target {
    /// The targeted part; `None` is a null key or a tombstone value.
    pub fn get(self, record: &Record) -> Option<&Value> {
        match self {
            Target::Value => record.value.as_ref(),
            Target::Key => record.key.as_ref(),
        }
    }

    /// The targeted part, for changing it.
    pub fn get_mut(self, record: &mut Record) -> &mut Option<Value> {
        match self {
            Target::Value => &mut record.value,
            Target::Key => &mut record.key,
        }
    }

    /// `value` or `key`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Target::Value => "value",
            Target::Key => "key",
        }
    }
}

/// A path to a field in nested objects: segments separated by dots. A
/// segment in double quotes may hold dots and spaces (`"Adj Close"`,
/// `meta."x.y".z`); inside quotes, `\\"` is a quote and `\\\\` a backslash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// A path of one segment, taken literally (no dot splitting).
    pub fn single(name: impl Into<String>) -> Self {
        Self(vec![name.into()])
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The last segment: the field's own name.
    pub fn leaf(&self) -> &str {
        self.0.last().map_or("", String::as_str)
    }

    /// The field in `value`, if every segment exists.
    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.0
            .iter()
            .try_fold(value, |v, segment| v.as_object()?.get(segment))
    }

    /// The field in `json`, a value's JSON text, without building the rest
    /// of the value: the keys on the way are compared in place and every
    /// other member is skipped. `Ok(None)` when a segment is missing or a
    /// parent is not an object, as [`get`](Self::get) on the decoded value.
    pub fn get_in_json(&self, json: &[u8]) -> Result<Option<Value>, serde_json::Error> {
        let mut reader = serde_json::Deserializer::from_slice(json);
        let found = serde::de::DeserializeSeed::deserialize(seek::Seek(&self.0), &mut reader)?;
        reader.end()?;
        Ok(found)
    }

    /// The field in `value`, for changing it.
    pub fn get_mut<'a>(&self, value: &'a mut Value) -> Option<&'a mut Value> {
        self.0
            .iter()
            .try_fold(value, |v, segment| v.as_object_mut()?.get_mut(segment))
    }

    /// The object holding the field (the parent), if it exists.
    pub fn parent_mut<'a>(
        &self,
        value: &'a mut Value,
    ) -> Option<&'a mut serde_json::Map<String, Value>> {
        let (_, parents) = self.0.split_last()?;
        parents
            .iter()
            .try_fold(value, |v, segment| v.as_object_mut()?.get_mut(segment))?
            .as_object_mut()
    }

    /// Removes the field and returns it, keeping the order of the others.
    pub fn remove(&self, value: &mut Value) -> Option<Value> {
        self.parent_mut(value)?.shift_remove(self.leaf())
    }

    /// Sets the field, creating missing parent objects; fails when a parent
    /// exists and is not an object.
    pub fn insert(&self, value: &mut Value, field: Value) -> Result<(), String> {
        let Some((leaf, parents)) = self.0.split_last() else {
            return Err("an empty field path names no field".to_owned());
        };
        let mut current = value;
        for segment in parents {
            let object = current.as_object_mut().ok_or_else(|| {
                format!("cannot set `{self}`: `{segment}`'s parent is not an object")
            })?;
            current = object
                .entry(segment.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
        let object = current
            .as_object_mut()
            .ok_or_else(|| format!("cannot set `{self}`: its parent is not an object"))?;
        object.insert(leaf.clone(), field);
        Ok(())
    }
}

impl FromStr for FieldPath {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut segment = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => segment.push(c),
                            None => {
                                return Err(format!("field path `{text}` ends inside an escape"))
                            }
                        },
                        Some(c) => segment.push(c),
                        None => return Err(format!("field path `{text}` has an unclosed quote")),
                    }
                }
                match chars.next() {
                    None => {
                        segments.push(segment);
                        break;
                    }
                    Some('.') => segments.push(segment),
                    Some(c) => {
                        return Err(format!(
                            "field path `{text}`: `{c}` after a closing quote; expected `.`"
                        ))
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    segment.push(c);
                    chars.next();
                }
                if segment.is_empty() {
                    return Err(format!(
                        "field path `{text}` has an empty segment; quote names with dots or spaces, e.g. `\"Adj Close\"`"
                    ));
                }
                segments.push(segment);
                if chars.next().is_none() {
                    break;
                }
            }
        }
        Ok(FieldPath(segments))
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            let plain = !segment.is_empty() && !segment.contains(['.', ' ', '"', '\\']);
            if plain {
                f.write_str(segment)?;
            } else {
                write!(
                    f,
                    "\"{}\"",
                    segment.replace('\\', "\\\\").replace('"', "\\\"")
                )?;
            }
        }
        Ok(())
    }
}

/// One step of a chain: a transform, optionally guarded by a predicate.
pub struct TransformStep {
    /// The step's YAML path, e.g. `source.transforms[1]`.
    pub path: String,
    /// The transform type.
    pub type_name: &'static str,
    /// The transform.
    pub transform: Box<dyn Transform>,
    /// The predicate's name and instance, if the step has one.
    pub predicate: Option<(String, Box<dyn Predicate>)>,
    /// Apply the transform when the predicate does *not* hold.
    pub negate: bool,
}

/// A connector's transforms, applied in order.
#[derive(Default)]
pub struct TransformChain {
    steps: Vec<TransformStep>,
}

/// A transform failed on a record.
#[derive(Debug, thiserror::Error)]
#[error("transform {position} `{type_name}` ({path}) failed on the record {location}: {error}")]
pub struct TransformFailure {
    /// 1-based position in the chain.
    pub position: usize,
    /// The transform type.
    pub type_name: &'static str,
    /// The step's YAML path.
    pub path: String,
    /// Where the record is: topic/partition/offset, or its source position.
    pub location: String,
    /// What went wrong.
    pub error: ConnectorError,
}

impl TransformChain {
    /// A chain of `steps`.
    pub fn new(steps: Vec<TransformStep>) -> Self {
        Self { steps }
    }

    /// Whether the chain has no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs every step on `record`; `Ok(Outcome::Drop)` when a step dropped it.
    pub fn apply(&mut self, record: &mut Record) -> Result<Outcome, TransformFailure> {
        for (i, step) in self.steps.iter_mut().enumerate() {
            if let Some((_, predicate)) = &step.predicate {
                if predicate.test(record) == step.negate {
                    continue;
                }
            }
            match step.transform.apply(record) {
                Ok(Outcome::Keep) => {}
                Ok(Outcome::Drop) => return Ok(Outcome::Drop),
                Err(error) => {
                    return Err(TransformFailure {
                        position: i + 1,
                        type_name: step.type_name,
                        path: step.path.clone(),
                        location: location_of(record),
                        error,
                    })
                }
            }
        }
        Ok(Outcome::Keep)
    }
}

/// `at topic/partition offset N`, or `from <source position>`.
pub fn location_of(record: &Record) -> String {
    match (record.partition, record.offset, &record.position) {
        (Some(partition), Some(offset), _) => {
            format!("at {}/{partition} offset {offset}", record.topic)
        }
        (_, _, Some(position)) => format!("from {} {}", position.partition, position.offset),
        _ => format!("for topic {}", record.topic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> FieldPath {
        text.parse().unwrap()
    }

    #[test]
    fn a_field_read_from_json_text_is_the_field_of_the_decoded_value() {
        let texts = [
            r#"{"Index":"NYA","Close":335.90698726000005,"meta":{"x.y":{"z":[1,{"a":2}]},"n":null}}"#,
            r#"{"Index":"first","Index":"last"}"#,
            r#"{"Ind\u0065x":"escaped key","other":{"Index":"nested"}}"#,
            r#"{"meta":"not an object","Index":0.0}"#,
            r#"["Index",{"Index":1}]"#,
            r#""Index""#,
            "12.50",
            "null",
            " { } ",
        ];
        let paths = [
            "Index",
            "Close",
            "meta.\"x.y\".z",
            "meta.n",
            "meta.x",
            "other.Index",
        ];
        for text in texts {
            let decoded: Value = serde_json::from_str(text).unwrap();
            for path in paths.map(path) {
                assert_eq!(
                    path.get_in_json(text.as_bytes()).unwrap().as_ref(),
                    path.get(&decoded),
                    "{path} in {text}"
                );
            }
        }
        // The number keeps its text.
        let close = path("Close").get_in_json(texts[0].as_bytes()).unwrap();
        assert_eq!(close.unwrap().to_string(), "335.90698726000005");
        // Broken JSON is an error, also after the field.
        for broken in [r#"{"Index":"NYA""#, r#"{"Index":"NYA"} x"#, r#"{"a":tru}"#] {
            assert!(
                path("Index").get_in_json(broken.as_bytes()).is_err(),
                "{broken}"
            );
        }
    }

    #[test]
    fn parses_dotted_and_quoted_paths() {
        assert_eq!(path("a.b.c").segments(), ["a", "b", "c"]);
        assert_eq!(path("\"Adj Close\"").segments(), ["Adj Close"]);
        assert_eq!(path("meta.\"x.y\".z").segments(), ["meta", "x.y", "z"]);
        assert_eq!(path("\"say \\\"hi\\\"\"").segments(), ["say \"hi\""]);
        assert_eq!(path("Adj Close").segments(), ["Adj Close"]);
        assert!("a..b"
            .parse::<FieldPath>()
            .unwrap_err()
            .contains("empty segment"));
        assert!("\"a"
            .parse::<FieldPath>()
            .unwrap_err()
            .contains("unclosed quote"));
        assert_eq!(path("meta.\"x.y\".z").to_string(), "meta.\"x.y\".z");
    }

    #[test]
    fn gets_sets_and_removes_nested_fields_in_order() {
        let mut value = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        assert_eq!(path("b.c").get(&value), Some(&json!(2)));
        assert_eq!(path("b.x").get(&value), None);
        assert_eq!(path("a.x").get(&value), None);
        assert_eq!(path("b.c").remove(&mut value), Some(json!(2)));
        path("n.m").insert(&mut value, json!(true)).unwrap();
        assert_eq!(
            value.to_string(),
            r#"{"a":1,"b":{"d":3},"e":4,"n":{"m":true}}"#
        );
        assert!(path("a.z").insert(&mut value, json!(0)).is_err());
    }
}

/// The visitors of [`FieldPath::get_in_json`].
mod seek {
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;

    use super::Value;

    /// Finds the field at the path's segments in the value being read.
    pub(super) struct Seek<'p>(pub(super) &'p [String]);

    impl<'de> DeserializeSeed<'de> for Seek<'_> {
        type Value = Option<Value>;

        fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<Self::Value, D::Error> {
            match self.0.split_first() {
                None => Value::deserialize(reader).map(Some),
                Some((segment, rest)) => reader.deserialize_any(Member { segment, rest }),
            }
        }
    }

    /// Looks for `segment` among an object's members; anything else has
    /// no such member (and is skipped whole).
    struct Member<'p> {
        segment: &'p str,
        rest: &'p [String],
    }

    impl<'de> Visitor<'de> for Member<'_> {
        type Value = Option<Value>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // The last of repeated keys wins, as when the value is decoded.
            let mut found = None;
            while let Some(matches) = map.next_key_seed(KeyIs(self.segment))? {
                if matches {
                    found = map.next_value_seed(Seek(self.rest))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }

        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    /// Whether an object key is the wanted one, compared in place.
    struct KeyIs<'p>(&'p str);

    impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
        type Value = bool;

        fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<bool, D::Error> {
            reader.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for KeyIs<'_> {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object key")
        }

        fn visit_str<E>(self, key: &str) -> Result<bool, E> {
            Ok(key == self.0)
        }
    }
}
