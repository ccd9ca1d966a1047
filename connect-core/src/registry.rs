//! The plugin registry: every source, sink, transform and predicate linked
//! into the binary, keyed by (kind, type name).
//!
//! Connector crates register with [`register_plugin!`](crate::register_plugin);
//! registration happens at link time through `inventory`, so a binary gets
//! exactly the plugins of the crates it links.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;

use crate::config::de::from_node;
use crate::config::diagnostics::{suggest, Diagnostics};
use crate::config::node::Node;
use crate::plugin::{PredicateConfig, SinkConfig, SourceConfig, TransformConfig};

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

/// Registers a plugin config type under a kind and a type name.
///
/// ```text
/// connect_core::register_plugin!(source "csv_replay", CsvReplayConfig,
///     summary: "Replays a CSV file into Kafka at a chosen rate",
///     example: include_str!("../example.yaml"));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_source(_: &Node, _: &Diagnostics) -> Option<Box<dyn SourceConfig>> {
        None
    }

    static A: PluginRegistration = PluginRegistration {
        name: "same",
        summary: "a",
        example: "",
        crate_name: "crate-a",
        factory: PluginFactory::Source(no_source),
    };
    static B: PluginRegistration = PluginRegistration {
        name: "same",
        summary: "b",
        example: "",
        crate_name: "crate-b",
        factory: PluginFactory::Source(no_source),
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
    }
}
