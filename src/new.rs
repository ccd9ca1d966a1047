//! `sluice new connector`: writes a connector crate from the template in
//! `templates/connector/` (embedded in the binary), ready to build, with
//! the conformance kit wired in its tests.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};

/// One file of the template: its path in the crate and its text.
type TemplateFile = (&'static str, &'static str);

const SOURCE: &[TemplateFile] = &[
    (
        "Cargo.toml",
        include_str!("../templates/connector/source/Cargo.toml"),
    ),
    (
        "example.yaml",
        include_str!("../templates/connector/source/example.yaml"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/connector/source/src/lib.rs"),
    ),
    (
        "src/config.rs",
        include_str!("../templates/connector/source/src/config.rs"),
    ),
    (
        "src/source.rs",
        include_str!("../templates/connector/source/src/source.rs"),
    ),
    (
        "tests/conformance.rs",
        include_str!("../templates/connector/source/tests/conformance.rs"),
    ),
];

const SINK: &[TemplateFile] = &[
    (
        "Cargo.toml",
        include_str!("../templates/connector/sink/Cargo.toml"),
    ),
    (
        "example.yaml",
        include_str!("../templates/connector/sink/example.yaml"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/connector/sink/src/lib.rs"),
    ),
    (
        "src/config.rs",
        include_str!("../templates/connector/sink/src/config.rs"),
    ),
    (
        "src/sink.rs",
        include_str!("../templates/connector/sink/src/sink.rs"),
    ),
    (
        "tests/conformance.rs",
        include_str!("../templates/connector/sink/tests/conformance.rs"),
    ),
];

const README: &str = include_str!("../templates/connector/README.md");

/// What `new connector` was asked for.
pub struct NewConnector {
    /// The plugin's type name (`snake_case`), e.g. `quotes_api`.
    pub name: String,
    /// `source` or `sink`.
    pub kind: String,
    /// Where to write the crate (default: `connectors/<name>` in a Sluice
    /// checkout, else `./connect-<name>`).
    pub dir: Option<PathBuf>,
    /// The `connect-core` crate folder (default: `./connect-core` when
    /// run at the root of a Sluice checkout).
    pub core: Option<PathBuf>,
}

/// `quotes_api` → `QuotesApi`.
fn camel(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `to` relative to the folder `from` (both absolute, without `..`).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &to[common..] {
        path.push(part);
    }
    path
}

/// Writes the crate; returns its folder and what to do next.
pub fn write(request: &NewConnector) -> anyhow::Result<(PathBuf, String)> {
    let name = &request.name;
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!("`{name}` is not a plugin type name: use snake_case (lowercase letters, digits and `_`, starting with a letter), e.g. `quotes_api`");
    }
    let files = match request.kind.as_str() {
        "source" => SOURCE,
        "sink" => SINK,
        other => bail!("`--kind {other}`: a connector is a `source` or a `sink`"),
    };
    let cwd = std::env::current_dir().context("the current folder")?;
    let dashed = name.replace('_', "-");
    let crate_name = format!("connect-{dashed}");
    let in_checkout = cwd.join("connect-core/Cargo.toml").is_file();
    let dir = match &request.dir {
        Some(dir) => cwd.join(dir),
        None if in_checkout => cwd.join("connectors").join(&dashed),
        None => cwd.join(&crate_name),
    };
    if dir.exists() {
        bail!("{} exists; pick another name or `--dir`", dir.display());
    }
    let core = match &request.core {
        Some(core) => cwd.join(core),
        None if in_checkout => cwd.join("connect-core"),
        None => bail!("no connect-core here: run this at the root of a Sluice checkout, or give its folder with `--core PATH/connect-core`"),
    };
    let core = core
        .canonicalize()
        .with_context(|| format!("the connect-core folder {}", core.display()))?;
    if !core.join("Cargo.toml").is_file() {
        bail!(
            "{} has no Cargo.toml; `--core` names the connect-core crate's folder",
            core.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize().context("the new crate's folder")?;
    let core_path = relative(&dir, &core)
        .display()
        .to_string()
        .replace('\\', "/");
    let core_inner = format!("path = \"{core_path}\"");
    let ident = crate_name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("__CORE_INNER__", &core_inner)
            .replace("__CORE__", &format!("{{ {core_inner} }}"))
            .replace("__CRATE_IDENT__", &ident)
            .replace("__CRATE__", &crate_name)
            .replace("__STRUCT__", &camel(name))
            .replace("__TYPE__", name)
            .replace("__KIND__", &request.kind)
    };
    for (path, text) in files.iter().chain(&[("README.md", README)]) {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, fill(text))
            .with_context(|| format!("writing {}", target.display()))?;
    }
    let member = relative(&cwd, &dir).display().to_string();
    let next = if in_checkout {
        format!(
            "next:\n  1. add \"{member}\" to `members` in Cargo.toml's [workspace]\n  \
             2. cargo test -p {crate_name}          (the conformance kit runs in tests/conformance.rs)\n  \
             3. to have it in `sluice`: add `{crate_name} = {{ path = \"{member}\" }}` to the [dependencies] of the\n     \
             root Cargo.toml and `use {ident} as _;` to src/main.rs, then `cargo build --release`\n"
        )
    } else {
        format!(
            "next:\n  1. cd {} && cargo test          (the conformance kit runs in tests/conformance.rs)\n  \
             2. to have it in `sluice`, add it to the `sluice` binary's dependencies and `use {ident} as _;`\n     \
             to its src/main.rs (docs/writing-a-connector.md)\n",
            dir.display()
        )
    };
    Ok((dir, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(camel("quotes_api"), "QuotesApi");
        assert_eq!(camel("s3"), "S3");
        assert_eq!(
            relative(Path::new("/w/connectors/x"), Path::new("/w/connect-core")),
            PathBuf::from("../../connect-core")
        );
        assert_eq!(
            relative(Path::new("/tmp/a"), Path::new("/w/connect-core")),
            PathBuf::from("../../w/connect-core")
        );
    }
}
