//! The deployment files of `deploy/` (docs/deploy.md) agree with the binary
//! and with each other: the systemd unit's command is one the binary takes,
//! its worker config loads, the Dockerfile builds the profile that exists
//! and installs the binary where the unit and its own entry point run it.

mod common;

use std::path::Path;

use common::{repo_root, OutputWithinLimit as _};

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The value of `key=` in a systemd unit (the last one, as systemd takes it).
fn unit_value<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .collect()
}

/// The JSON-array form of a Dockerfile instruction (`ENTRYPOINT [...]`).
fn exec_form(dockerfile: &str, instruction: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix(instruction)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {instruction} in the Dockerfile"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{instruction} {line}: {e}"))
}

#[test]
fn the_unit_and_the_image_run_a_command_the_binary_takes() {
    let unit = read("deploy/sluice-worker.service");
    let dockerfile = read("deploy/Dockerfile");
    let exec = unit_value(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart: {exec:?}");
    let command: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(
        command,
        [
            "/usr/local/bin/sluice",
            "worker",
            "/etc/sluice/worker.yaml",
            "--listen",
            "0.0.0.0:8083"
        ]
    );

    // The image installs the binary the unit runs and runs the same command.
    let entrypoint = exec_form(&dockerfile, "ENTRYPOINT");
    let cmd = exec_form(&dockerfile, "CMD");
    assert_eq!(entrypoint, [command[0]]);
    assert_eq!(cmd, command[1..]);
    let copy = dockerfile
        .lines()
        .find(|l| l.starts_with("COPY --from=build"))
        .expect("a COPY from the build stage");
    assert_eq!(
        copy.split_whitespace().collect::<Vec<_>>()[2..],
        ["/src/target/dist/sluice", command[0]]
    );
    // It builds the profile whose output it copies, and the package exists.
    assert!(
        dockerfile.contains("cargo build --locked --profile dist -p sluice"),
        "{dockerfile}"
    );
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("[profile.dist]"), "no dist profile");
    assert!(
        manifest.contains("strip = true"),
        "the dist binary is stripped"
    );
    // The build image's Rust is at least the binary's rust-version.
    let from = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .expect("FROM rust:");
    let minor = |version: &str| -> u32 {
        version
            .split(['.', '-', '"'])
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("a version in {version}"))
    };
    let required = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("rust-version = "))
        .map(minor)
        .max()
        .expect("rust-version");
    assert!(
        minor(from) >= required,
        "rust:{from} is older than rust-version 1.{required}"
    );
    // Paths the build copies from exist; the build context skips target/.
    assert!(dockerfile.contains("COPY . ."));
    assert!(read(".dockerignore").lines().any(|l| l.trim() == "target/"));

    // The binary takes the command: `worker` has a CONFIG argument and `--listen`.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["worker", "--help"])
        .output_within_limit()
        .expect("sluice worker --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--listen <ADDR>"), "{help}");
    assert!(help.contains("[CONFIG]"), "{help}");

    // Stopping waits longer than the worker's graceful shutdown.
    let stop: u64 = unit_value(&unit, "TimeoutStopSec")[0]
        .parse()
        .expect("TimeoutStopSec in seconds");
    let worker = read("deploy/worker.yaml");
    let shutdown: u64 = worker
        .lines()
        .find_map(|l| l.strip_prefix("shutdown_timeout: "))
        .and_then(|t| t.trim().trim_end_matches('s').parse().ok())
        .expect("shutdown_timeout in seconds");
    assert!(
        stop > shutdown,
        "TimeoutStopSec={stop} <= shutdown_timeout {shutdown}s"
    );
    // The working directory is writable under ProtectSystem=strict.
    let working = unit_value(&unit, "WorkingDirectory")[0];
    assert!(unit_value(&unit, "ReadWritePaths").contains(&working));
    assert_eq!(unit_value(&unit, "ExecReload"), ["/bin/kill -HUP $MAINPID"]);
    // No AWS keys in any of the files: the instance role gives them.
    for text in [&unit, &dockerfile, &worker] {
        assert!(!text.contains("AWS_ACCESS_KEY_ID"));
        assert!(!text.contains("AWS_SECRET_ACCESS_KEY"));
    }
}

#[test]
fn the_worker_config_loads_with_its_secrets_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etc = dir.path().display().to_string();
    // (The bootstrap address is given in place of `${env:KAFKA_BOOTSTRAP}`:
    // the environment is shared with the other tests.)
    let worker = read("deploy/worker.yaml")
        .replace("/etc/sluice", &etc)
        .replace("${env:KAFKA_BOOTSTRAP}", "b-1.example:9096");
    assert_ne!(worker, read("deploy/worker.yaml"));
    std::fs::write(dir.path().join("worker.yaml"), &worker).expect("write");
    std::fs::write(
        dir.path().join("secrets.properties"),
        "kafka.username=sluice\nkafka.password=s3cret!\nrest.token=t0ken\n",
    )
    .expect("write");
    let config = connect_core::worker::load_worker_config(&dir.path().join("worker.yaml"))
        .unwrap_or_else(|e| panic!("deploy/worker.yaml does not load:\n{e}"));
    let shown = format!("{config:?}");
    for expected in [
        "sluice-prod",
        "b-1.example:9096",
        "SCRAM-SHA-512",
        "0.0.0.0:8083",
    ] {
        assert!(shown.contains(expected), "{expected} in {shown}");
    }
    assert_eq!(
        config.pipelines_dir.as_deref(),
        Some(Path::new(&format!("{etc}/pipelines")))
    );
}

#[test]
fn the_deploy_guide_names_every_file_it_relies_on() {
    let guide = read("docs/deploy.md");
    for file in [
        "deploy/sluice-worker.service",
        "deploy/worker.yaml",
        "deploy/Dockerfile",
        "--profile dist",
        "target/dist/sluice",
    ] {
        assert!(
            guide.contains(file),
            "docs/deploy.md does not mention {file}"
        );
    }
    for path in [
        "deploy/sluice-worker.service",
        "deploy/worker.yaml",
        "deploy/Dockerfile",
    ] {
        assert!(repo_root().join(path).is_file(), "{path} is missing");
    }
}
