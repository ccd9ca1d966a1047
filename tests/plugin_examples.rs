//! Every registered plugin's example config is valid, as `sluice plugins --example` shows it.

use std::path::Path;

use connect_core::config::pipeline::{parse_pipeline, transform_chain_from_yaml};
use connect_core::registry::{PluginKind, Registry};

use connect_csv_replay as _;
use connect_file as _;
use connect_s3_json as _;
use connect_transforms as _;

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

#[test]
fn every_plugin_example_validates() {
    let registry = Registry::global().expect("registry");
    let mut failures = Vec::new();
    for plugin in registry.all() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/example.yaml");
        let result = match plugin.kind() {
            PluginKind::Source => parse_pipeline(
                &format!(
                    "name: example\ntopic: {{ name: example }}\nsource:\n{}",
                    indent(plugin.example, "  ")
                ),
                &file,
            )
            .map(drop),
            PluginKind::Sink => parse_pipeline(
                &format!(
                    "name: example\ntopic: {{ name: example }}\nsinks:\n  out:\n{}",
                    indent(plugin.example, "    ")
                ),
                &file,
            )
            .map(drop),
            PluginKind::Transform => {
                let step = indent(plugin.example, "    ");
                let step = step.replacen("    ", "  - ", 1);
                // Examples may guard a step with a predicate named `tombstones`.
                let predicates = "predicates:\n  tombstones:\n    type: record_is_tombstone\n";
                transform_chain_from_yaml(&format!("{predicates}transforms:\n{step}"), &file)
                    .map(drop)
            }
            PluginKind::Predicate => transform_chain_from_yaml(
                &format!(
                    "predicates:\n  p:\n{}transforms: []\n",
                    indent(plugin.example, "    ")
                ),
                &file,
            )
            .map(drop),
        };
        if let Err(errors) = result {
            failures.push(format!("{} `{}`:\n{errors}", plugin.kind(), plugin.name));
        }
    }
    assert!(
        failures.is_empty(),
        "examples that do not validate:\n{}",
        failures.join("\n")
    );
}
