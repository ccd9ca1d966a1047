//! Secrets never shown: every value that came from a `${env:...}` or
//! `${file:...}` reference, and every value of a key that looks like a secret
//! (`password`, `secret`, `token`, `sasl.*`, `ssl.key.*`), is registered here
//! when a config is read, and [`redact`] replaces it with `[redacted]` in any
//! text: log lines, error messages, `validate` output, REST responses.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is shown as.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not searched for in free text: they would
/// match everywhere (a `1` from `${env:REPLICAS}`). Under a secret-looking
/// key they are still shown as `[redacted]`.
const MIN_LEN: usize = 4;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `value` as a secret.
pub fn register(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_LEN {
        return;
    }
    if let Ok(mut secrets) = SECRETS.write() {
        if !secrets.iter().any(|s| s == value) {
            secrets.push(value.to_owned());
            // Longest first, so a secret containing another is replaced whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

/// `text` with every registered secret replaced by `[redacted]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(secrets) = SECRETS.read() else {
        return Cow::Borrowed(text);
    };
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

/// Whether a config key names a secret: it contains `password`, `secret`,
/// `token` or `credential`, or is a `sasl.*` or `ssl.key.*` property.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "credential"]
        .iter()
        .any(|word| key.contains(word))
        || key.starts_with("sasl.")
        || key.starts_with("ssl.key.")
}

/// A JSON config as it may be shown: values of secret-looking keys become
/// `[redacted]` (references such as `${env:NAME}` are kept, they are not
/// secret), and registered secrets are redacted from every string.
pub fn redact_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let shown = match value {
                        Value::String(s) if is_secret_key(key) && !is_reference(s) => {
                            Value::String(REDACTED.to_owned())
                        }
                        Value::Number(_) | Value::Bool(_) if is_secret_key(key) => {
                            Value::String(REDACTED.to_owned())
                        }
                        other => redact_json(other),
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::String(s) => Value::String(redact(s).into_owned()),
        other => other.clone(),
    }
}

/// Whether `text` is only a reference (`${env:...}`, `${file:...}`).
fn is_reference(text: &str) -> bool {
    let text = text.trim();
    text.starts_with("${")
        && text.ends_with('}')
        && text[2..].contains(':')
        && text.matches("${").count() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_redacted_everywhere_longest_first() {
        register("hunter2-secret");
        register("hunter2");
        register("ab");
        assert_eq!(
            redact("password=hunter2-secret and hunter2, ab"),
            "password=[redacted] and [redacted], ab"
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn secret_keys_and_json() {
        for key in [
            "sasl.password",
            "sasl.username",
            "ssl.key.pem",
            "auth_token",
            "aws_secret_access_key",
            "db_password",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["bucket", "bootstrap_servers", "ssl.ca.location", "path"] {
            assert!(!is_secret_key(key), "{key}");
        }
        let config = serde_json::json!({
            "kafka": {"properties": {"sasl.password": "p4ssw0rd!", "sasl.username": "${env:USER_NAME}", "security.protocol": "SASL_SSL"}},
            "sinks": {"s3": {"bucket": "b", "tokens": 5}},
        });
        let shown = redact_json(&config);
        assert_eq!(shown["kafka"]["properties"]["sasl.password"], REDACTED);
        assert_eq!(
            shown["kafka"]["properties"]["sasl.username"],
            "${env:USER_NAME}"
        );
        assert_eq!(
            shown["kafka"]["properties"]["security.protocol"],
            "SASL_SSL"
        );
        assert_eq!(shown["sinks"]["s3"]["tokens"], REDACTED);
        assert_eq!(shown["sinks"]["s3"]["bucket"], "b");
    }
}
