//! `sluice run` shows live progress bars in a terminal (a pseudo-terminal
//! made by `script`), and none when stderr is not a terminal.

mod common;

use common::{run_ok, unique, write_pipeline, Services};

fn pipeline(name: &str) -> String {
    format!(
        "name: {name}\ntopic: {{ name: {name}, partitions: 2 }}\n\
         source:\n  type: csv_replay\n  path: {}\n  key_column: Index\n  rate: 40000/s\n\
         sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n",
        common::dataset().display()
    )
}

/// Text without terminal escape sequences, one line per carriage return too.
fn plain(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).replace('\r', "\n");
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn a_terminal_shows_progress_bars_and_a_pipe_does_not() {
    let services = Services::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("progress");
    let file = write_pipeline(dir.path(), &pipeline(&name));
    let sluice = env!("CARGO_BIN_EXE_sluice");
    let transcript = dir.path().join("terminal.txt");
    // `script` runs the command with a pseudo-terminal as its stdin/stdout/stderr.
    let status = services
        .sluice()
        .get_envs()
        .fold(
            std::process::Command::new("script"),
            |mut command, (key, value)| {
                if let Some(value) = value {
                    command.env(key, value);
                }
                command
            },
        )
        .env("SLUICE_LOG", "warn")
        .args(["-q", "-e", "-f", "-c"])
        .arg(format!("{sluice} run {}", file.display()))
        .arg(&transcript)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script (util-linux)");
    assert!(status.success(), "sluice run under a terminal failed");
    let shown = plain(&std::fs::read(&transcript).expect("transcript"));
    let bar = shown
        .lines()
        .find(|l| {
            l.contains(&format!("{name} source [")) && l.contains("% ") && l.contains("rows read")
        })
        .unwrap_or_else(|| panic!("no source progress bar in:\n{shown}"));
    assert!(bar.contains("rows/s") && bar.contains("ETA"), "{bar}");
    assert!(
        shown.contains(&format!("{name} sink s3")) && shown.contains("records sunk"),
        "no sink line in:\n{shown}"
    );
    assert!(
        shown.contains("rows read            104224"),
        "the summary follows:\n{shown}"
    );

    // Not a terminal: no bars, only the summary.
    let name = unique("progress-pipe");
    let file = write_pipeline(dir.path(), &pipeline(&name));
    let output = run_ok(
        services
            .sluice()
            .env("SLUICE_LOG", "warn")
            .arg("run")
            .arg(&file),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("rows read,"), "bars on a pipe:\n{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape sequences on a pipe:\n{stderr}"
    );
}
