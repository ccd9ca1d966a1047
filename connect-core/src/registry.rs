//! The plugin registry: every source, sink, transform and predicate linked
//! into the binary, keyed by (kind, type name).
//!
//! Connector crates register with [`register_plugin!`](crate::register_plugin);
//! registration happens at link time through `inventory`, so a binary gets
//! exactly the plugins of the crates it links.
//!
//! Each registration carries the JSON Schema of its config type, derived by
//! `schemars` from the type's serde attributes and doc comments;
//! [`config_fields`] turns it into the list of keys that
//! `sluice plugins describe` and docs/plugins.md show.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::config::de::from_node;
use crate::config::diagnostics::{suggest, Diagnostics};
use crate::config::node::Node;
use crate::plugin::{PredicateConfig, SinkConfig, SourceConfig, TransformConfig};
use crate::transform::{FieldPath, Target};

/// The four kinds of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginKind {
    /// Reads from an outside system into Kafka.
    Source,
    /// Writes from Kafka to an outside system.
    Sink,
    /// Reshapes one record.
    Transform,
    /// Decides whether a transform applies.
    Predicate,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Source => "source",
            Self::Sink => "sink",
            Self::Transform => "transform",
            Self::Predicate => "predicate",
        })
    }
}

impl std::str::FromStr for PluginKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "source" => Ok(Self::Source),
            "sink" => Ok(Self::Sink),
            "transform" => Ok(Self::Transform),
            "predicate" => Ok(Self::Predicate),
            other => Err(format!(
                "`{other}` is not a plugin kind; use `source`, `sink`, `transform` or `predicate`"
            )),
        }
    }
}

/// Parses a plugin's config from its YAML node (without the `type` key).
pub type ParseFn<T> = fn(&Node, &Diagnostics) -> Option<T>;

/// How to make a plugin's config from YAML, by kind.
pub enum PluginFactory {
    /// A source.
    Source(ParseFn<Box<dyn SourceConfig>>),
    /// A sink.
    Sink(ParseFn<Box<dyn SinkConfig>>),
    /// A transform.
    Transform(ParseFn<Box<dyn TransformConfig>>),
    /// A predicate.
    Predicate(ParseFn<Box<dyn PredicateConfig>>),
}

/// One registered plugin. Created by [`register_plugin!`](crate::register_plugin).
pub struct PluginRegistration {
    /// The type name used in YAML (`type: csv_replay`), snake_case.
    pub name: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// An example of its YAML section, `type` included.
    pub example: &'static str,
    /// The crate that registered it.
    pub crate_name: &'static str,
    /// How to make its config.
    pub factory: PluginFactory,
    /// The JSON Schema of its config type (without the `type` key).
    pub schema: fn() -> Schema,
}

impl PluginRegistration {
    /// The plugin's kind.
    pub fn kind(&self) -> PluginKind {
        match self.factory {
            PluginFactory::Source(_) => PluginKind::Source,
            PluginFactory::Sink(_) => PluginKind::Sink,
            PluginFactory::Transform(_) => PluginKind::Transform,
            PluginFactory::Predicate(_) => PluginKind::Predicate,
        }
    }

    /// The keys of its config, in declaration order, nested sections after
    /// their parent key.
    pub fn fields(&self) -> Vec<ConfigField> {
        config_fields(&(self.schema)())
    }
}

inventory::collect!(PluginRegistration);

/// Parses a source config of type `T`; used by [`register_plugin!`](crate::register_plugin).
pub fn parse_source<T: SourceConfig + DeserializeOwned + 'static>(
    node: &Node,
    diags: &Diagnostics,
) -> Option<Box<dyn SourceConfig>> {
    from_node::<T>(node, diags).map(|c| Box::new(c) as Box<dyn SourceConfig>)
}

/// Parses a sink config of type `T`; used by [`register_plugin!`](crate::register_plugin).
pub fn parse_sink<T: SinkConfig + DeserializeOwned + 'static>(
    node: &Node,
    diags: &Diagnostics,
) -> Option<Box<dyn SinkConfig>> {
    from_node::<T>(node, diags).map(|c| Box::new(c) as Box<dyn SinkConfig>)
}

/// Parses a transform config of type `T`; used by [`register_plugin!`](crate::register_plugin).
pub fn parse_transform<T: TransformConfig + DeserializeOwned + 'static>(
    node: &Node,
    diags: &Diagnostics,
) -> Option<Box<dyn TransformConfig>> {
    from_node::<T>(node, diags).map(|c| Box::new(c) as Box<dyn TransformConfig>)
}

/// Parses a predicate config of type `T`; used by [`register_plugin!`](crate::register_plugin).
pub fn parse_predicate<T: PredicateConfig + DeserializeOwned + 'static>(
    node: &Node,
    diags: &Diagnostics,
) -> Option<Box<dyn PredicateConfig>> {
    from_node::<T>(node, diags).map(|c| Box::new(c) as Box<dyn PredicateConfig>)
}

/// The JSON Schema of config type `T`; used by [`register_plugin!`](crate::register_plugin).
pub fn schema_of<T: JsonSchema>() -> Schema {
    schemars::schema_for!(T)
}

/// Registers a plugin config type under a kind and a type name.
///
/// ```text
/// connect_core::register_plugin!(source "csv_replay", CsvReplayConfig,
///     summary: "Replays a CSV file into Kafka at a chosen rate",
///     example: include_str!("../example.yaml"));
/// ```
///
/// The config type implements `serde::Deserialize` and
/// `schemars::JsonSchema`. Connector crates derive the latter through
/// connect-core's re-export, without a dependency of their own:
///
/// ```text
/// use connect_core::schemars::{self, JsonSchema};
///
/// #[derive(Deserialize, JsonSchema)]
/// #[serde(deny_unknown_fields)]
/// pub struct MyConfig {
///     /// Every key has a doc comment: it is the key's description.
///     pub path: String,
/// }
/// ```
#[macro_export]
macro_rules! register_plugin {
    ($kind:ident $name:literal, $config:ty, summary: $summary:expr, example: $example:expr $(,)?) => {
        $crate::inventory::submit! {
            $crate::registry::PluginRegistration {
                name: $name,
                summary: $summary,
                example: $example,
                crate_name: env!("CARGO_PKG_NAME"),
                factory: $crate::register_plugin!(@factory $kind, $config),
                schema: $crate::registry::schema_of::<$config>,
            }
        }
    };
    (@factory source, $config:ty) => {
        $crate::registry::PluginFactory::Source($crate::registry::parse_source::<$config>)
    };
    (@factory sink, $config:ty) => {
        $crate::registry::PluginFactory::Sink($crate::registry::parse_sink::<$config>)
    };
    (@factory transform, $config:ty) => {
        $crate::registry::PluginFactory::Transform($crate::registry::parse_transform::<$config>)
    };
    (@factory predicate, $config:ty) => {
        $crate::registry::PluginFactory::Predicate($crate::registry::parse_predicate::<$config>)
    };
}

/// The registry could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// Two crates registered the same (kind, name).
    #[error("{kind} plugin `{name}` is registered twice (by crate `{first}` and by crate `{second}`); rename one of them")]
    Duplicate {
        /// Plugin kind.
        kind: PluginKind,
        /// Type name.
        name: &'static str,
        /// Crate of the first registration.
        first: &'static str,
        /// Crate of the second registration.
        second: &'static str,
    },
}

/// Every plugin linked into this binary, by kind then name.
pub struct Registry {
    plugins: BTreeMap<(PluginKind, &'static str), &'static PluginRegistration>,
}

impl Registry {
    /// The registry of this binary, built once; fails if a name is registered twice.
    pub fn global() -> Result<&'static Registry, RegistryError> {
        static GLOBAL: OnceLock<Result<Registry, RegistryError>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| Registry::from_registrations(inventory::iter::<PluginRegistration>()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Builds a registry from explicit registrations.
    pub fn from_registrations(
        registrations: impl IntoIterator<Item = &'static PluginRegistration>,
    ) -> Result<Registry, RegistryError> {
        let mut plugins = BTreeMap::new();
        for registration in registrations {
            let key = (registration.kind(), registration.name);
            if let Some(first) = plugins.insert(key, registration) {
                return Err(RegistryError::Duplicate {
                    kind: key.0,
                    name: key.1,
                    first: first.crate_name,
                    second: registration.crate_name,
                });
            }
        }
        Ok(Registry { plugins })
    }

    /// Every plugin, by kind then name.
    pub fn all(&self) -> impl Iterator<Item = &'static PluginRegistration> + '_ {
        self.plugins.values().copied()
    }

    /// The plugin of `kind` named `name`, or an error message listing the valid names.
    pub fn lookup(
        &self,
        kind: PluginKind,
        name: &str,
    ) -> Result<&'static PluginRegistration, String> {
        if let Some(found) = self.plugins.get(&(kind, name)) {
            return Ok(found);
        }
        let names: Vec<&str> = self.names(kind).collect();
        let hint = suggest(name, names.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        let valid = if names.is_empty() {
            "none are registered in this binary".to_owned()
        } else {
            format!(
                "registered {kind}s: {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Err(format!("unknown {kind} type `{name}`{hint}; {valid}"))
    }

    /// The names registered for `kind`, sorted.
    pub fn names(&self, kind: PluginKind) -> impl Iterator<Item = &'static str> + '_ {
        self.plugins
            .keys()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, n)| *n)
    }

    /// The plugins named `name`, of any kind (usually one), or an error
    /// message with the closest registered name.
    pub fn named(&self, name: &str) -> Result<Vec<&'static PluginRegistration>, String> {
        let found: Vec<_> = self.all().filter(|p| p.name == name).collect();
        if !found.is_empty() {
            return Ok(found);
        }
        let hint = suggest(name, self.plugins.keys().map(|(_, n)| *n))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(format!(
            "no plugin named `{name}`{hint}; `sluice plugins` lists them"
        ))
    }

    /// The one plugin named `name` (of `kind`, when given). A name that two
    /// kinds share (`file` is a source and a sink) needs the kind.
    pub fn one(
        &self,
        name: &str,
        kind: Option<PluginKind>,
    ) -> Result<&'static PluginRegistration, String> {
        let found = self.named(name)?;
        let kinds = || {
            found
                .iter()
                .map(|p| format!("`{}`", p.kind()))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        let matching: Vec<_> = found
            .iter()
            .filter(|p| kind.is_none_or(|k| p.kind() == k))
            .collect();
        match (matching.as_slice(), kind) {
            ([one], _) => Ok(**one),
            ([], Some(kind)) => Err(format!(
                "`{name}` is not a {kind} plugin; it is a {} plugin",
                kinds()
            )),
            _ => Err(format!(
                "`{name}` names a {} plugin; say which kind",
                kinds()
            )),
        }
    }
}

/// One key of a plugin's config, read from its JSON Schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigField {
    /// The key; keys of a nested section are dotted: `partitioner.type`.
    pub path: String,
    /// The type in words: `string`, `integer`, `boolean`, `duration`,
    /// `size`, `field path`, `list of string`, `map of string`, `object`...
    pub type_name: String,
    /// Whether the key must be given (in its section, for nested keys).
    pub required: bool,
    /// The value used when the key is left out, when the schema states it.
    pub default: Option<Value>,
    /// Whether the key may be unset (`null`), which is also what leaving it
    /// out means when there is no other default.
    pub nullable: bool,
    /// The key's doc comment, as one paragraph.
    pub doc: String,
    /// The values it accepts, when they are a fixed set (an enum).
    pub values: Vec<AllowedValue>,
}

/// One value of an enum key, with its doc comment.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedValue {
    /// The value as written in YAML.
    pub value: String,
    /// The variant's doc comment, as one paragraph (empty when it has none).
    pub doc: String,
}

impl ConfigField {
    /// What leaving the key out means: `required`, the default value as YAML
    /// writes it (`10000`, `1m`, `[]`), `none` when the key is then unset, or
    /// `optional` when the schema does not say.
    pub fn default_text(&self) -> String {
        if self.required {
            return "required".to_owned();
        }
        match self.default_value() {
            Some(value) => value,
            None if self.nullable || self.default.is_some() => "none".to_owned(),
            None => "optional".to_owned(),
        }
    }

    /// The default value as YAML writes it, when the key is optional and
    /// has one (not when leaving it out leaves it unset).
    pub fn default_value(&self) -> Option<String> {
        match &self.default {
            Some(value) if !self.required && !value.is_null() => Some(value_text(value)),
            _ => None,
        }
    }
}

/// A value as YAML writes it: a string without quotes (`""` when empty),
/// anything else as compact JSON (`10000`, `false`, `[]`, `{"type":"kafka"}`),
/// leaving out the unset (null) keys of objects.
fn value_text(value: &Value) -> String {
    fn without_nulls(value: &Value) -> Value {
        match value {
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), without_nulls(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
            other => other.clone(),
        }
    }
    match value {
        Value::String(text) if text.is_empty() => "\"\"".to_owned(),
        Value::String(text) => text.clone(),
        other => without_nulls(other).to_string(),
    }
}

/// How deep nested sections are followed (a recursive type stops there).
const MAX_DEPTH: usize = 8;

/// The keys of a config schema made by [`schema_of`]: every property of the
/// root object, in declaration order, each followed by the keys of its own
/// section when it is an object with properties.
pub fn config_fields(schema: &Schema) -> Vec<ConfigField> {
    let root = schema.as_value();
    let mut fields = Vec::new();
    collect_fields(root, root, "", 0, &mut fields);
    fields
}

fn collect_fields(
    object: &Value,
    root: &Value,
    prefix: &str,
    depth: usize,
    fields: &mut Vec<ConfigField>,
) {
    let object = resolve(object, root);
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, schema) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let shape = Shape::of(schema, root, depth);
        fields.push(ConfigField {
            path: path.clone(),
            type_name: shape.type_name,
            required: required.contains(&name.as_str()),
            // schemars states a key's serde default when its type is `Serialize`.
            default: schema.get("default").cloned(),
            nullable: shape.nullable,
            // Only the key's own doc comment: a key without one has none,
            // even if its type is documented.
            doc: doc_text(schema),
            values: shape.values,
        });
        if let Some(section) = shape.object {
            if depth < MAX_DEPTH {
                collect_fields(section, root, &path, depth + 1, fields);
            }
        }
    }
}

/// Follows `$ref`s into the root's `$defs`.
fn resolve<'a>(mut schema: &'a Value, root: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#"))
            .and_then(|pointer| root.pointer(pointer))
        else {
            break;
        };
        schema = target;
    }
    schema
}

/// A schema's title and description as one paragraph.
fn doc_text(schema: &Value) -> String {
    ["title", "description"]
        .iter()
        .filter_map(|key| schema.get(*key).and_then(Value::as_str))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a schema accepts, in words.
struct Shape<'a> {
    type_name: String,
    nullable: bool,
    values: Vec<AllowedValue>,
    /// The object schema whose properties are a nested section.
    object: Option<&'a Value>,
}

impl<'a> Shape<'a> {
    fn of(schema: &'a Value, root: &'a Value, depth: usize) -> Shape<'a> {
        let schema = resolve(schema, root);
        let mut shape = Shape {
            type_name: "any".to_owned(),
            nullable: false,
            values: Vec::new(),
            object: None,
        };
        if depth > MAX_DEPTH {
            return shape;
        }
        let doc = doc_text(schema);
        if let Some(value) = schema.get("const") {
            shape.type_name = json_type_name(value).to_owned();
            shape.values.push(AllowedValue {
                value: value_text(value),
                doc,
            });
            return shape;
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            shape.nullable = values.iter().any(Value::is_null);
            let values: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
            shape.type_name = values
                .first()
                .map_or("any", |v| json_type_name(v))
                .to_owned();
            // One value alone is a documented variant; several share no doc.
            let doc = if values.len() == 1 {
                doc
            } else {
                String::new()
            };
            shape.values = values
                .into_iter()
                .map(|value| AllowedValue {
                    value: value_text(value),
                    doc: doc.clone(),
                })
                .collect();
            return shape;
        }
        let variants = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array);
        if let Some(variants) = variants {
            let mut names: Vec<String> = Vec::new();
            let mut objects = Vec::new();
            for variant in variants {
                let part = Shape::of(variant, root, depth + 1);
                shape.nullable |= part.nullable;
                if part.type_name == "null" {
                    shape.nullable = true;
                    continue;
                }
                if !names.contains(&part.type_name) {
                    names.push(part.type_name);
                }
                for value in part.values {
                    if !shape.values.iter().any(|v| v.value == value.value) {
                        shape.values.push(value);
                    }
                }
                objects.extend(part.object);
            }
            shape.type_name = if names.is_empty() {
                "null".to_owned()
            } else {
                names.join(" or ")
            };
            if objects.len() == 1 {
                shape.object = objects.pop();
            }
            return shape;
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(name)) => vec![name.as_str()],
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        shape.nullable = types.contains(&"null");
        let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        let format = schema.get("format").and_then(Value::as_str);
        shape.type_name = match (types.as_slice(), format) {
            ([], _) if shape.nullable => "null".to_owned(),
            ([], _) => "any".to_owned(),
            // A string with a format of ours (`duration`, `size`, `field-path`,
            // `rate`) is named by its format; integer formats (`uint64`) are
            // Rust's widths and add nothing for YAML.
            (types, Some(format)) if types.contains(&"string") => format.replace('-', " "),
            (["string"], None)
                if schema.get("minLength").and_then(Value::as_u64) == Some(1)
                    && schema.get("maxLength").and_then(Value::as_u64) == Some(1) =>
            {
                "character".to_owned()
            }
            (["array"], _) => {
                let items = schema
                    .get("items")
                    .map(|items| Shape::of(items, root, depth + 1));
                match items {
                    Some(items) => {
                        shape.values = items.values;
                        format!("list of {}", items.type_name)
                    }
                    None => "list".to_owned(),
                }
            }
            (["object"], _) => {
                let has_properties = schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|p| !p.is_empty());
                match schema.get("additionalProperties") {
                    _ if has_properties => {
                        shape.object = Some(schema);
                        "object".to_owned()
                    }
                    Some(values @ Value::Object(_)) => {
                        let values = Shape::of(values, root, depth + 1);
                        shape.values = values.values;
                        format!("map of {}", values.type_name)
                    }
                    _ => "object".to_owned(),
                }
            }
            (types, _) => types.join(" or "),
        };
        shape
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

// Schemas of the connect-core types that plugin configs use, written by
// hand next to the schema code; each says what the type's `Deserialize`
// accepts. The `Serialize` impls write what `Deserialize` reads back: with
// them, schemars states the defaults of keys of these types.

impl JsonSchema for Target {
    fn schema_name() -> Cow<'static, str> {
        "Target".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "connect_core::transform::Target".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The part of a record a transform works on, Kafka Connect's `$Key` / `$Value`.",
            "oneOf": [
                {
                    "type": "string",
                    "const": Target::Value.name(),
                    "description": "The record value (Kafka Connect's `$Value`).",
                },
                {
                    "type": "string",
                    "const": Target::Key.name(),
                    "description": "The record key (Kafka Connect's `$Key`).",
                },
            ],
        })
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for FieldPath {
    fn schema_name() -> Cow<'static, str> {
        "FieldPath".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "connect_core::transform::FieldPath".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "field-path",
            "minLength": 1,
            "description": "A path to a field in nested objects: names separated by dots (`meta.source`); \
                a name in double quotes may hold dots and spaces (`\"Adj Close\"`).",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::HumanDuration;

    fn no_source(_: &Node, _: &Diagnostics) -> Option<Box<dyn SourceConfig>> {
        None
    }

    static A: PluginRegistration = PluginRegistration {
        name: "same",
        summary: "a",
        example: "",
        crate_name: "crate-a",
        factory: PluginFactory::Source(no_source),
        schema: schema_of::<Example>,
    };
    static B: PluginRegistration = PluginRegistration {
        name: "same",
        summary: "b",
        example: "",
        crate_name: "crate-b",
        factory: PluginFactory::Source(no_source),
        schema: schema_of::<Example>,
    };

    #[test]
    fn duplicate_names_fail_and_unknown_names_list_the_valid_ones() {
        let error = Registry::from_registrations([&A, &B])
            .err()
            .expect("duplicate accepted");
        assert_eq!(
            error.to_string(),
            "source plugin `same` is registered twice (by crate `crate-a` and by crate `crate-b`); rename one of them"
        );
        let registry = Registry::from_registrations([&A]).expect("one registration");
        assert_eq!(
            registry
                .lookup(PluginKind::Source, "sme")
                .err()
                .expect("unknown accepted"),
            "unknown source type `sme` (did you mean `same`?); registered sources: `same`"
        );
        assert!(registry.lookup(PluginKind::Sink, "same").is_err());
        assert_eq!(registry.named("same").map(|found| found.len()), Ok(1));
        assert_eq!(
            registry.named("sam").err().as_deref(),
            Some("no plugin named `sam` (did you mean `same`?); `sluice plugins` lists them")
        );
    }

    #[test]
    fn field_paths_and_targets_serialize_to_what_they_read_back() {
        for text in ["a", "meta.source", "\"Adj Close\"", "m.\"x.y\".z"] {
            let path: FieldPath = text.parse().expect(text);
            let written = serde_json::to_value(&path).expect("serialize");
            assert_eq!(written, Value::String(text.to_owned()));
            let read: FieldPath = serde_json::from_value(written).expect("read back");
            assert_eq!(read, path);
        }
        for target in [Target::Value, Target::Key] {
            let written = serde_json::to_value(target).expect("serialize");
            assert_eq!(serde_json::from_value::<Target>(written).ok(), Some(target));
        }
    }

    /// A config with every shape the plugins use.
    #[derive(serde::Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        /// Where it goes.
        path: String,
        /// How many at once
        /// (default 8).
        #[serde(default = "eight")]
        count: u32,
        /// How long to wait.
        #[serde(default = "half_a_minute")]
        wait: HumanDuration,
        /// An optional name.
        #[serde(default)]
        name: Option<String>,
        /// Fields to read.
        #[serde(default)]
        fields: Vec<FieldPath>,
        /// Which part.
        #[serde(default)]
        target: Target,
        /// Types by column.
        #[serde(default)]
        columns: BTreeMap<String, Mode>,
        /// A nested section.
        #[serde(default)]
        section: Section,
        /// An optional field path.
        #[serde(default)]
        field: Option<FieldPath>,
        /// One character.
        #[serde(default = "comma")]
        delimiter: char,
    }

    #[derive(serde::Deserialize, serde::Serialize, JsonSchema, Default)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        /// Quickly.
        #[default]
        Fast,
        /// Carefully.
        Slow,
    }

    #[derive(serde::Deserialize, JsonSchema, Default)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Section {
        /// The mode.
        #[serde(rename = "type", default)]
        mode: Mode,
        /// Required inside the section.
        size: u64,
    }

    fn eight() -> u32 {
        8
    }

    fn half_a_minute() -> HumanDuration {
        HumanDuration(std::time::Duration::from_secs(30))
    }

    fn comma() -> char {
        ','
    }

    #[test]
    fn fields_come_from_the_schema_with_types_defaults_docs_and_values() {
        let fields = A.fields();
        let rows: Vec<(&str, &str, String, &str)> = fields
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    f.type_name.as_str(),
                    f.default_text(),
                    f.doc.as_str(),
                )
            })
            .collect();
        let expected = [
            ("path", "string", "required", "Where it goes."),
            ("count", "integer", "8", "How many at once (default 8)."),
            ("wait", "duration", "30s", "How long to wait."),
            ("name", "string", "none", "An optional name."),
            ("fields", "list of field path", "[]", "Fields to read."),
            ("target", "string", "value", "Which part."),
            ("columns", "map of string", "{}", "Types by column."),
            ("section", "object", "optional", "A nested section."),
            ("section.type", "string", "fast", "The mode."),
            (
                "section.size",
                "integer",
                "required",
                "Required inside the section.",
            ),
            ("field", "field path", "none", "An optional field path."),
            ("delimiter", "character", ",", "One character."),
        ];
        let expected: Vec<(&str, &str, String, &str)> = expected
            .iter()
            .map(|(p, t, d, doc)| (*p, *t, d.to_string(), *doc))
            .collect();
        assert_eq!(rows, expected);

        let values = |path: &str| -> Vec<(String, String)> {
            fields
                .iter()
                .find(|f| f.path == path)
                .map(|f| {
                    f.values
                        .iter()
                        .map(|v| (v.value.clone(), v.doc.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let modes = vec![
            ("fast".to_owned(), "Quickly.".to_owned()),
            ("slow".to_owned(), "Carefully.".to_owned()),
        ];
        assert_eq!(values("section.type"), modes);
        assert_eq!(values("columns"), modes);
        assert_eq!(
            values("target"),
            vec![
                (
                    "value".to_owned(),
                    "The record value (Kafka Connect's `$Value`).".to_owned()
                ),
                (
                    "key".to_owned(),
                    "The record key (Kafka Connect's `$Key`).".to_owned()
                ),
            ]
        );
        assert!(values("path").is_empty());
    }
}
