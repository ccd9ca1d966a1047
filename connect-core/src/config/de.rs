//! Deserializes config types from a [`Node`] tree, reporting each problem at
//! its line, column and YAML path.
//!
//! Unknown keys are reported (with the expected names and a likely typo) and
//! skipped, so every unknown key in a file is reported in one go; a value of
//! the wrong type stops the struct it is in, and the caller carries on with
//! the next section of the file.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use super::diagnostics::{suggest, Diagnostics};
use super::node::{Node, NodeKind};

/// Deserializes `T` from `node`. Returns `None` when a problem prevents it;
/// every problem found (including skipped unknown keys) is in `diags`.
pub fn from_node<T: DeserializeOwned>(node: &Node, diags: &Diagnostics) -> Option<T> {
    match T::deserialize(NodeDeserializer { node, diags }) {
        Ok(value) => Some(value),
        Err(error) => {
            if !error.reported {
                diags.report(node.mark, &node.path, error.message);
            }
            None
        }
    }
}

/// A deserialization failure; `reported` once it is in the diagnostics.
#[derive(Debug)]
pub struct DeError {
    message: String,
    reported: bool,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            reported: false,
        }
    }
}

#[derive(Clone, Copy)]
struct NodeDeserializer<'a> {
    node: &'a Node,
    diags: &'a Diagnostics,
}

impl<'a> NodeDeserializer<'a> {
    fn locate(&self, mut error: DeError) -> DeError {
        if !error.reported {
            self.diags
                .report(self.node.mark, &self.node.path, error.message.clone());
            error.reported = true;
        }
        error
    }

    fn scalar(&self, expected: &str) -> Result<&'a str, DeError> {
        match &self.node.kind {
            NodeKind::Scalar { text, .. } => Ok(text),
            _ => Err(self.locate(de::Error::custom(format!(
                "expected {expected}, found {}",
                self.node.type_name()
            )))),
        }
    }

    fn parse<T: std::str::FromStr>(&self, expected: &str) -> Result<T, DeError> {
        let text = self.scalar(expected)?;
        text.trim().parse().map_err(|_| {
            self.locate(de::Error::custom(format!(
                "expected {expected}, found `{text}`"
            )))
        })
    }

    fn with<V>(&self, result: Result<V, DeError>) -> Result<V, DeError> {
        result.map_err(|e| self.locate(e))
    }
}

macro_rules! deserialize_number {
    ($method:ident, $visit:ident, $ty:ty, $expected:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let value: $ty = self.parse($expected)?;
            self.with(visitor.$visit(value))
        }
    };
}

impl<'de, 'a> de::Deserializer<'de> for NodeDeserializer<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            _ if self.node.is_null() => visitor.visit_unit(),
            NodeKind::Scalar { text, plain: true } => {
                if let Some(b) = parse_bool(text) {
                    visitor.visit_bool(b)
                } else if let Ok(i) = text.parse::<i64>() {
                    visitor.visit_i64(i)
                } else if let Ok(u) = text.parse::<u64>() {
                    visitor.visit_u64(u)
                } else if let Some(f) = text.parse::<f64>().ok().filter(|_| looks_like_float(text))
                {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(text)
                }
            }
            NodeKind::Scalar { text, .. } => visitor.visit_str(text),
            NodeKind::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
                diags: self.diags,
            }),
            NodeKind::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter().collect::<Vec<_>>().into_iter(),
                value: None,
                diags: self.diags,
            }),
        };
        self.with(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = self.scalar("true or false")?;
        match parse_bool(text) {
            Some(b) => self.with(visitor.visit_bool(b)),
            None => Err(self.locate(de::Error::custom(format!(
                "expected true or false, found `{text}`"
            )))),
        }
    }

    deserialize_number!(deserialize_i8, visit_i8, i8, "an integer (i8)");
    deserialize_number!(deserialize_i16, visit_i16, i16, "an integer (i16)");
    deserialize_number!(deserialize_i32, visit_i32, i32, "an integer");
    deserialize_number!(deserialize_i64, visit_i64, i64, "an integer");
    deserialize_number!(
        deserialize_u8,
        visit_u8,
        u8,
        "a non-negative integer below 256"
    );
    deserialize_number!(
        deserialize_u16,
        visit_u16,
        u16,
        "a non-negative integer below 65536"
    );
    deserialize_number!(deserialize_u32, visit_u32, u32, "a non-negative integer");
    deserialize_number!(deserialize_u64, visit_u64, u64, "a non-negative integer");
    deserialize_number!(deserialize_f32, visit_f32, f32, "a number");
    deserialize_number!(deserialize_f64, visit_f64, f64, "a number");

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = self.scalar("a string")?;
        self.with(visitor.visit_str(text))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.with(visitor.visit_none())
        } else {
            self.with(visitor.visit_some(self))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.with(visitor.visit_unit())
        } else {
            Err(self.locate(de::Error::custom(format!(
                "expected null, found {}",
                self.node.type_name()
            ))))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.with(visitor.visit_newtype_struct(self))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Seq(_) => self.deserialize_any(visitor),
            _ => Err(self.locate(de::Error::custom(format!(
                "expected a list, found {}",
                self.node.type_name()
            )))),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Map(_) => self.deserialize_any(visitor),
            _ if self.node.is_null() => self.with(visitor.visit_map(MapAccess {
                entries: Vec::new().into_iter(),
                value: None,
                diags: self.diags,
            })),
            _ => Err(self.locate(de::Error::custom(format!(
                "expected a mapping, found {}",
                self.node.type_name()
            )))),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let entries: Vec<&(Node, Node)> = match &self.node.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .filter(|(key, _)| {
                    let name = key.as_str().unwrap_or_default();
                    let known = fields.contains(&name);
                    if !known {
                        self.diags
                            .report(key.mark, &key.path, unknown_field_message(name, fields));
                    }
                    known
                })
                .collect(),
            _ if self.node.is_null() => Vec::new(),
            _ => {
                return Err(self.locate(de::Error::custom(format!(
                    "expected a mapping with keys {}, found {}",
                    list_names(fields),
                    self.node.type_name()
                ))))
            }
        };
        self.with(visitor.visit_map(MapAccess {
            entries: entries.into_iter(),
            value: None,
            diags: self.diags,
        }))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Scalar { text, .. } => {
                if variants.contains(&text.as_str()) {
                    self.with(visitor.visit_enum(text.as_str().into_deserializer()))
                } else {
                    let hint = suggest(text, variants.iter().copied())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    Err(self.locate(de::Error::custom(format!(
                        "unknown value `{text}`{hint}; expected one of {}",
                        list_names(variants)
                    ))))
                }
            }
            NodeKind::Map(entries) if entries.len() == 1 => {
                self.with(visitor.visit_enum(EnumAccess {
                    key: &entries[0].0,
                    value: &entries[0].1,
                    diags: self.diags,
                }))
            }
            _ => Err(self.locate(de::Error::custom(format!(
                "expected one of {}, found {}",
                list_names(variants),
                self.node.type_name()
            )))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.with(visitor.visit_unit())
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn looks_like_float(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        && !text.eq_ignore_ascii_case("infinity")
        && !text.eq_ignore_ascii_case("nan")
}

/// "unknown field `x`; expected one of ..." with a likely typo first.
pub fn unknown_field_message(name: &str, fields: &[&str]) -> String {
    if fields.is_empty() {
        return format!("unknown key `{name}`; this takes no keys");
    }
    let hint = suggest(name, fields.iter().copied())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    format!(
        "unknown key `{name}`{hint}; expected one of {}",
        list_names(fields)
    )
}

fn list_names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct SeqAccess<'a> {
    items: std::slice::Iter<'a, Node>,
    diags: &'a Diagnostics,
}

impl<'de, 'a> de::SeqAccess<'de> for SeqAccess<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some(node) => {
                let de = NodeDeserializer {
                    node,
                    diags: self.diags,
                };
                seed.deserialize(de).map(Some).map_err(|e| de.locate(e))
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a> {
    entries: std::vec::IntoIter<&'a (Node, Node)>,
    value: Option<&'a Node>,
    diags: &'a Diagnostics,
}

impl<'de, 'a> de::MapAccess<'de> for MapAccess<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            None => Ok(None),
            Some((key, value)) => {
                self.value = Some(value);
                let de = NodeDeserializer {
                    node: key,
                    diags: self.diags,
                };
                seed.deserialize(de).map(Some).map_err(|e| de.locate(e))
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self.value.take().ok_or_else(|| {
            <DeError as de::Error>::custom("a mapping value was requested before its key")
        })?;
        let de = NodeDeserializer {
            node,
            diags: self.diags,
        };
        seed.deserialize(de).map_err(|e| de.locate(e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAccess<'a> {
    key: &'a Node,
    value: &'a Node,
    diags: &'a Diagnostics,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = DeError;
    type Variant = NodeDeserializer<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let key = NodeDeserializer {
            node: self.key,
            diags: self.diags,
        };
        let variant = seed.deserialize(key).map_err(|e| key.locate(e))?;
        Ok((
            variant,
            NodeDeserializer {
                node: self.value,
                diags: self.diags,
            },
        ))
    }
}

impl<'de, 'a> de::VariantAccess<'de> for NodeDeserializer<'a> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self).map_err(|e| self.locate(e))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::parse_document_with;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        bucket: String,
        #[serde(default)]
        size: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Inner,
        #[serde(default)]
        flag: bool,
    }

    fn errors(text: &str) -> Vec<String> {
        let diags = Diagnostics::new("t.yaml");
        let node = parse_document_with(text, &diags, &|_| None).unwrap();
        let _ = from_node::<Outer>(&node, &diags);
        diags.into_sorted().iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn reads_a_valid_document() {
        let diags = Diagnostics::new("t.yaml");
        let node =
            parse_document_with("name: a\ninner:\n  bucket: b\n  size: 3\n", &diags, &|_| {
                None
            })
            .unwrap();
        let outer: Outer = from_node(&node, &diags).unwrap();
        assert_eq!(
            outer.inner,
            Inner {
                bucket: "b".into(),
                size: 3
            }
        );
        assert!(diags.is_empty());
    }

    #[test]
    fn reports_every_unknown_key_with_position_and_hint() {
        let found = errors("name: a\nflg: true\ninner:\n  bucket: b\n  sise: 3\n");
        assert_eq!(
            found,
            vec![
                "t.yaml:2:1: flg: unknown key `flg` (did you mean `flag`?); expected one of `name`, `inner`, `flag`",
                "t.yaml:5:3: inner.sise: unknown key `sise` (did you mean `size`?); expected one of `bucket`, `size`",
            ]
        );
    }

    #[test]
    fn reports_wrong_types_and_missing_fields_where_they_are() {
        let found = errors("name: a\ninner:\n  bucket: b\n  size: lots\n");
        assert_eq!(
            found,
            vec!["t.yaml:4:9: inner.size: expected a non-negative integer, found `lots`"]
        );
        let found = errors("name: a\ninner:\n  size: 2\n");
        assert_eq!(found, vec!["t.yaml:3:3: inner: missing field `bucket`"]);
        let found = errors("name: [1]\ninner: {bucket: b}\n");
        assert_eq!(
            found,
            vec!["t.yaml:1:7: name: expected a string, found a list"]
        );
    }
}
