//! Sluice's built-in single-message transforms and predicates.
//!
//! One file per transform and per predicate: its config (every key
//! documented), its logic, its registration and its unit tests. Names and
//! behaviour follow Kafka Connect's `org.apache.kafka.connect.transforms`;
//! `target: key` is Kafka Connect's `$Key` variant, `target: value` (the
//! default) its `$Value`. Differences from Kafka Connect are documented on
//! each transform.

// Transforms.
pub mod cast;
pub mod drop_headers;
pub mod extract_field;
pub mod filter;
pub mod flatten;
pub mod header_from;
pub mod hoist_field;
pub mod insert_field;
pub mod insert_header;
pub mod mask_field;
pub mod regex_router;
pub mod replace_field;
pub mod set_schema_metadata;
pub mod timestamp_converter;
pub mod timestamp_router;
pub mod value_to_key;

// Predicates.
pub mod has_header_key;
pub mod record_is_tombstone;
pub mod topic_name_matches;

#[cfg(test)]
mod testing;

pub(crate) use connect_core::record::value_kind as kind;

/// "`pattern` is not a valid regular expression: reason", with the regex
/// crate's multi-line message cut to its last line, the reason.
pub(crate) fn invalid_regex(pattern: &str, error: &regex::Error) -> String {
    let text = error.to_string();
    let reason = text
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .unwrap_or(text.as_str());
    format!("`{pattern}` is not a valid regular expression: {reason}")
}
