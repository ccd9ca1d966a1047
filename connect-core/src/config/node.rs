//! A YAML document as a tree of nodes that remember where they were written.
//!
//! `serde_yaml` reports only the first error and loses positions once a value
//! is parsed, so pipeline files are read with `yaml-rust2`'s event parser into
//! [`Node`]s carrying line, column and YAML path; [`super::de`] deserializes
//! config types from them and reports every problem at its place.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::diagnostics::{Diagnostics, Mark};

/// One YAML node with its position and path.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where it starts in the file.
    pub mark: Mark,
    /// Its YAML path, e.g. `sinks.s3.bucket` or `source.columns[2]`.
    pub path: String,
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false for quoted and block scalars, which are
    /// always strings.
    Scalar {
        /// The text after `${env:...}` interpolation.
        text: String,
        /// Whether the scalar was written unquoted.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; keys are scalars.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Whether this is YAML null (`~`, `null`, or nothing).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The key node and value node for `key`, if this is a mapping holding it.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// The value for `key`, if this is a mapping holding it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// A copy of this mapping without the given keys (other nodes are returned as they are).
    pub fn without_keys(&self, keys: &[&str]) -> Node {
        match &self.kind {
            NodeKind::Map(entries) => Node {
                kind: NodeKind::Map(
                    entries
                        .iter()
                        .filter(|(k, _)| !k.as_str().is_some_and(|k| keys.contains(&k)))
                        .cloned()
                        .collect(),
                ),
                mark: self.mark,
                path: self.path.clone(),
            },
            _ => self.clone(),
        }
    }

    /// A short name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// Parses `text` into a node tree, interpolating `${env:NAME}` and
/// `${env:NAME:-default}` in scalar values. Problems go to `diags`; the tree
/// is `None` only when the YAML itself cannot be parsed.
pub fn parse_document(text: &str, diags: &Diagnostics) -> Option<Node> {
    parse_document_with(text, diags, &|name| std::env::var(name).ok())
}

/// [`parse_document`] with an explicit environment, for tests.
pub fn parse_document_with(
    text: &str,
    diags: &Diagnostics,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Node> {
    let mut builder = TreeBuilder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        documents: 0,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(error) = parser.load(&mut builder, true) {
        let marker = error.marker();
        diags.report(
            to_mark(marker),
            "",
            format!("invalid YAML: {}", error.info()),
        );
        return None;
    }
    if builder.documents > 1 {
        diags.report(
            Mark { line: 1, column: 1 },
            "",
            "a pipeline file holds one YAML document; split the others into their own files",
        );
    }
    let mut root = builder.root?;
    assign_paths(&mut root, String::new(), diags, env);
    Some(root)
}

fn to_mark(marker: &Marker) -> Mark {
    Mark {
        line: marker.line(),
        column: marker.col() + 1,
    }
}

enum Frame {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

struct TreeBuilder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
}

impl TreeBuilder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(Frame::Seq(seq, _)) => {
                if let NodeKind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, pending_key)) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    if let NodeKind::Map(entries) = &mut map.kind {
                        entries.push((key, node));
                    }
                }
            },
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
        }
    }

    fn finish(&mut self) {
        let (mut node, anchor) = match self.stack.pop() {
            Some(Frame::Seq(node, anchor)) | Some(Frame::Map(node, anchor, _)) => (node, anchor),
            None => return,
        };
        // The parser marks a block mapping after its first key; point at that key instead.
        let first_mark = match &node.kind {
            NodeKind::Map(entries) => entries.first().map(|(k, _)| k.mark),
            _ => None,
        };
        if let Some(mark) = first_mark {
            node.mark = mark;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.push_value(node);
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        let mark = to_mark(&marker);
        let new = |kind| Node {
            kind,
            mark,
            path: String::new(),
        };
        match event {
            Event::DocumentStart => self.documents += 1,
            Event::Scalar(text, style, anchor, _) => {
                let node = new(NodeKind::Scalar {
                    text,
                    plain: style == TScalarStyle::Plain,
                });
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) => self
                .stack
                .push(Frame::Seq(new(NodeKind::Seq(Vec::new())), anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(new(NodeKind::Map(Vec::new())), anchor, None))
            }
            Event::SequenceEnd | Event::MappingEnd => self.finish(),
            Event::Alias(anchor) => {
                let node = self.anchors.get(&anchor).cloned().unwrap_or_else(|| {
                    new(NodeKind::Scalar {
                        text: String::new(),
                        plain: true,
                    })
                });
                self.push_value(Node { mark, ..node });
            }
            _ => {}
        }
    }
}

/// Fills in paths, checks keys and interpolates scalar values.
fn assign_paths(
    node: &mut Node,
    path: String,
    diags: &Diagnostics,
    env: &dyn Fn(&str) -> Option<String>,
) {
    node.path = path;
    match &mut node.kind {
        NodeKind::Scalar { text, .. } => {
            if text.contains("${") {
                match interpolate(text, env) {
                    Ok(resolved) => *text = resolved,
                    Err(message) => diags.report(node.mark, &node.path, message),
                }
            }
        }
        NodeKind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                assign_paths(item, format!("{}[{i}]", node.path), diags, env);
            }
        }
        NodeKind::Map(entries) => {
            let mut seen: HashMap<String, Mark> = HashMap::new();
            for (key, value) in entries.iter_mut() {
                let Some(name) = key.as_str().map(str::to_owned) else {
                    diags.report(key.mark, &node.path, "mapping keys must be plain strings");
                    continue;
                };
                let child = child_path(&node.path, &name);
                key.path = child.clone();
                if let Some(first) = seen.insert(name.clone(), key.mark) {
                    diags.report(
                        key.mark,
                        &child,
                        format!(
                            "duplicate key `{name}` (first set at line {}); keep one",
                            first.line
                        ),
                    );
                }
                assign_paths(value, child, diags, env);
                if crate::secrets::is_secret_key(&name) {
                    if let NodeKind::Scalar { text, .. } = &value.kind {
                        crate::secrets::register(text);
                    }
                }
            }
        }
    }
}

/// The path of `key` under `parent`; keys that are not plain identifiers are quoted.
pub fn child_path(parent: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if simple {
        key.to_owned()
    } else {
        format!("\"{}\"", key.replace('"', "\\\""))
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// Replaces `${env:NAME}`, `${env:NAME:-default}`, `${file:/path}` (the
/// file's content, without its final newline) and `${file:/path:key}` (the
/// value of `key` in a properties or `.env` file); `$${` is a literal `${`;
/// a `${name}` without a provider is left for the plugin to read. Every
/// value a reference gives is registered as a secret (see [`crate::secrets`]).
pub fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
            continue;
        }
        let Some(body_start) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = body_start.find('}') else {
            return Err(format!(
                "unterminated reference in `{text}`: write `${{env:NAME}}` (or `$${{` for a literal `${{`)"
            ));
        };
        let body = &body_start[..end];
        rest = &body_start[end + 1..];
        if !body.contains(':') {
            // `${topic}`-style placeholders belong to the plugin (timestamp_router,
            // regex_router); only `${provider:...}` is a reference.
            out.push_str("${");
            out.push_str(body);
            out.push('}');
            continue;
        }
        if let Some(reference) = body.strip_prefix("file:") {
            let value = read_file_reference(reference)?;
            crate::secrets::register(&value);
            out.push_str(&value);
            continue;
        }
        let Some(reference) = body.strip_prefix("env:") else {
            let provider = body.split(':').next().unwrap_or(body);
            return Err(format!(
                "unknown reference provider `{provider}` in `${{{body}}}`; supported: `${{env:NAME}}`, `${{env:NAME:-default}}`, `${{file:/path}}`, `${{file:/path:key}}`"
            ));
        };
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`{name}` is not an environment variable name (letters, digits, `_`)"
            ));
        }
        match (env(name), default) {
            (Some(value), _) => {
                crate::secrets::register(&value);
                out.push_str(&value);
            }
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "environment variable `{name}` is not set; set it, or give a default with `${{env:{name}:-value}}`"
                ))
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `${file:PATH}` or `${file:PATH:KEY}`: the file's content, or one key of a
/// properties / `.env` file (`key=value` or `key: value` lines, `export`
/// prefixes, `#` comments and surrounding quotes allowed). Relative paths
/// resolve against the working directory.
fn read_file_reference(reference: &str) -> Result<String, String> {
    // The key is what follows the last `:`, unless that looks like part of a path.
    let (path, key) = match reference.rsplit_once(':') {
        Some((path, key)) if !key.is_empty() && !key.contains('/') && !path.is_empty() => {
            (path, Some(key))
        }
        _ => (reference, None),
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{path}` for `${{file:{reference}}}`: {e}"))?;
    let Some(key) = key else {
        return Ok(text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text)
            .to_owned());
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once(['=', ':']) else {
            continue;
        };
        if name.trim() == key {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            return Ok(unquoted.to_owned());
        }
    }
    Err(format!(
        "`{path}` has no key `{key}` (for `${{file:{reference}}}`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_references_read_whole_files_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("password.txt");
        std::fs::write(&whole, "s3cr3t-value\n").unwrap();
        let props = dir.path().join("creds.env");
        std::fs::write(
            &props,
            "# creds\nexport USER=alice\nPASSWORD = \"p@ss: word\"\nother: x\n",
        )
        .unwrap();
        let no_env = |_: &str| None;
        let at = |s: &str| interpolate(s, &no_env);
        assert_eq!(
            at(&format!("${{file:{}}}", whole.display())).unwrap(),
            "s3cr3t-value"
        );
        assert_eq!(
            at(&format!("${{file:{}:USER}}", props.display())).unwrap(),
            "alice"
        );
        assert_eq!(
            at(&format!("${{file:{}:PASSWORD}}", props.display())).unwrap(),
            "p@ss: word"
        );
        assert_eq!(
            at(&format!("${{file:{}:other}}", props.display())).unwrap(),
            "x"
        );
        assert!(at(&format!("${{file:{}:NOPE}}", props.display()))
            .unwrap_err()
            .contains("has no key `NOPE`"));
        assert!(at("${file:/no/such/file}")
            .unwrap_err()
            .contains("cannot read `/no/such/file`"));
        // What came from a reference is never shown again.
        assert_eq!(
            crate::secrets::redact("pw is s3cr3t-value"),
            "pw is [redacted]"
        );
    }

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "kafka:9092".to_owned())
    }

    #[test]
    fn interpolates_env_with_defaults_and_escapes() {
        assert_eq!(interpolate("${env:HOST}", &env).unwrap(), "kafka:9092");
        assert_eq!(interpolate("x-${env:NOPE:-d}-y", &env).unwrap(), "x-d-y");
        assert_eq!(interpolate("$${env:HOST}", &env).unwrap(), "${env:HOST}");
        assert_eq!(interpolate("cost $5", &env).unwrap(), "cost $5");
        assert_eq!(
            interpolate("${topic}-${timestamp}", &env).unwrap(),
            "${topic}-${timestamp}"
        );
        assert!(interpolate("${env:NOPE}", &env)
            .unwrap_err()
            .contains("`NOPE` is not set"));
        assert!(interpolate("${vault:x}", &env)
            .unwrap_err()
            .contains("unknown reference provider `vault`"));
    }

    #[test]
    fn nodes_carry_lines_columns_and_paths() {
        let diags = Diagnostics::new("p.yaml");
        let text = "name: x\nsinks:\n  s3:\n    bucket: \"${env:HOST}\"\n    list: [a, b]\n";
        let root = parse_document_with(text, &diags, &env).unwrap();
        assert!(diags.is_empty());
        let bucket = root
            .get("sinks")
            .unwrap()
            .get("s3")
            .unwrap()
            .get("bucket")
            .unwrap();
        assert_eq!(bucket.as_str(), Some("kafka:9092"));
        assert_eq!(
            bucket.mark,
            Mark {
                line: 4,
                column: 13
            }
        );
        assert_eq!(bucket.path, "sinks.s3.bucket");
        let list = root
            .get("sinks")
            .unwrap()
            .get("s3")
            .unwrap()
            .get("list")
            .unwrap();
        let NodeKind::Seq(items) = &list.kind else {
            panic!("not a list")
        };
        assert_eq!(items[1].path, "sinks.s3.list[1]");
        assert_eq!(
            items[1].mark,
            Mark {
                line: 5,
                column: 15
            }
        );
    }

    #[test]
    fn reports_bad_yaml_duplicate_keys_and_missing_env() {
        let diags = Diagnostics::new("p.yaml");
        assert!(parse_document_with("a: [1, 2\nb: 3\n", &diags, &env).is_none());
        let found = diags.into_sorted();
        assert!(found[0].message.starts_with("invalid YAML"), "{found:?}");

        let diags = Diagnostics::new("p.yaml");
        parse_document_with("a: 1\nb: ${env:MISSING}\na: 2\n", &diags, &env).unwrap();
        let found = diags.into_sorted();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].mark.line, found[0].path.as_str()), (2, "b"));
        assert_eq!((found[1].mark.line, found[1].path.as_str()), (3, "a"));
        assert!(found[1].message.contains("duplicate key `a`"));
    }
}
