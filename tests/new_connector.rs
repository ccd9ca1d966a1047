//! `sluice new connector` writes crates that build and pass the
//! conformance kit as written: a source and a sink are generated outside
//! the repository (as a user's own crates would be), put in a workspace of
//! their own with the repository's lock file, and their tests run.

mod common;

use std::process::Command;

use common::{repo_root, OutputWithinLimit as _};

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

#[test]
fn a_generated_source_and_sink_build_and_pass_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let core = repo_root().join("connect-core");
    for (name, kind) in [("demo_count", "source"), ("demo_files", "sink")] {
        let output = sluice()
            .args(["new", "connector", name, "--kind", kind, "--dir"])
            .arg(dir.path().join(name.replace('_', "-")))
            .arg("--core")
            .arg(&core)
            .output_within_limit()
            .expect("sluice new connector");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("next:"), "{stdout}");
        let crate_dir = dir.path().join(name.replace('_', "-"));
        for file in [
            "Cargo.toml",
            "README.md",
            "example.yaml",
            "src/lib.rs",
            "src/config.rs",
            &format!("src/{kind}.rs"),
            "tests/conformance.rs",
        ] {
            let text = std::fs::read_to_string(crate_dir.join(file))
                .unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
            assert!(
                !text.contains("__"),
                "{name}/{file} has a placeholder left:\n{text}"
            );
        }
    }
    // Not over an existing crate, and only snake_case names.
    let again = sluice()
        .args([
            "new",
            "connector",
            "demo_count",
            "--kind",
            "source",
            "--dir",
        ])
        .arg(dir.path().join("demo-count"))
        .arg("--core")
        .arg(&core)
        .output_within_limit()
        .expect("run");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let bad = sluice()
        .args([
            "new",
            "connector",
            "Demo-Count",
            "--kind",
            "source",
            "--core",
        ])
        .arg(&core)
        .output_within_limit()
        .expect("run");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("snake_case"));

    // Build and test both, against the repository's connect-core and the
    // versions of its lock file (offline: every crate is already fetched).
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace]\nmembers = [\"demo-count\", \"demo-files\"]\nresolver = \"2\"\n",
    )
    .expect("workspace");
    std::fs::copy(
        repo_root().join("Cargo.lock"),
        dir.path().join("Cargo.lock"),
    )
    .expect("lock");
    let target = repo_root().join("target/new-connector");
    let test = Command::new(env!("CARGO"))
        .args(["test", "--offline", "--workspace"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_INCREMENTAL", "0")
        .output()
        .expect("cargo test");
    let stdout = String::from_utf8_lossy(&test.stdout);
    let stderr = String::from_utf8_lossy(&test.stderr);
    assert!(test.status.success(), "{stdout}\n{stderr}");
    for passed in [
        "demo_count_passes_the_conformance_kit ... ok",
        "demo_files_passes_the_conformance_kit ... ok",
    ] {
        assert!(stdout.contains(passed), "{passed} in:\n{stdout}");
    }
}
