//! Child processes measured from the outside: spawn time, exit time and
//! their peak resident set size.
//!
//! The peak is the kernel's high-water mark of the process's own memory
//! (`VmHWM` in `/proc/<pid>/status`), read every 10 ms until it exits.
//! `wait4`'s `ru_maxrss` is not used: Linux carries the parent's
//! high-water mark into a child at `exec`, so a child of a large harness
//! reports the harness's peak (it showed 403 MiB for a 96 MiB `sluice`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

/// How a measured process ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// `Some(code)` when it exited, `None` when a signal ended it.
    pub code: Option<i32>,
    /// When `wait4` returned.
    pub at: Instant,
    /// The same moment as milliseconds since the Unix epoch.
    pub epoch_ms: f64,
    /// Peak resident set size over the process's life (up to the last
    /// 10 ms), in KiB.
    pub max_rss_kib: u64,
}

impl Exit {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A running child process; killed (SIGKILL) if dropped before it is waited for.
pub struct Measured {
    name: String,
    pid: libc::pid_t,
    /// When it was spawned.
    pub started: Instant,
    /// The same moment as milliseconds since the Unix epoch.
    pub started_epoch_ms: f64,
    log: PathBuf,
    waiter: Option<JoinHandle<std::io::Result<Exit>>>,
}

/// Milliseconds since the Unix epoch, with sub-millisecond precision.
pub fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

impl Measured {
    /// Spawns `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Measured> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open the log file {}", log.display()))?;
        let err = out.try_clone().context("cannot duplicate the log file")?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let started = Instant::now();
        let started_epoch_ms = epoch_ms();
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
        // The child is reaped by `wait_for` below (which samples its peak RSS), not by `Child`.
        drop(child);
        let waiter = std::thread::Builder::new()
            .name(format!("wait-{pid}"))
            .spawn(move || wait_for(pid))
            .context("cannot start a waiter thread")?;
        Ok(Measured {
            name: name.to_owned(),
            pid,
            started,
            started_epoch_ms,
            log: log.to_owned(),
            waiter: Some(waiter),
        })
    }

    /// Whether the process has ended (and been reaped).
    pub fn has_exited(&self) -> bool {
        self.waiter.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Asks the process to stop (SIGTERM), as a user's Ctrl-C or a service manager would.
    pub fn terminate(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGTERM)
    }

    fn signal(&self, signal: libc::c_int) -> anyhow::Result<()> {
        if self.has_exited() {
            return Ok(());
        }
        // SAFETY: kill(2) with a pid this process spawned and has not reaped yet.
        if unsafe { libc::kill(self.pid, signal) } != 0 {
            let error = std::io::Error::last_os_error();
            bail!("cannot signal {} (pid {}): {error}", self.name, self.pid);
        }
        Ok(())
    }

    /// Waits for the process to end; past `timeout` it is killed and this fails.
    pub async fn wait(&mut self, timeout: Duration) -> anyhow::Result<Exit> {
        let deadline = Instant::now() + timeout;
        while !self.has_exited() {
            if Instant::now() >= deadline {
                self.signal(libc::SIGKILL)?;
                self.join()?;
                bail!(
                    "{} did not end within {timeout:?}; killed it. Last lines of {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.join()
    }

    /// Waits for the process and fails unless it exited 0.
    pub async fn wait_success(&mut self, timeout: Duration) -> anyhow::Result<Exit> {
        let exit = self.wait(timeout).await?;
        if !exit.success() {
            bail!(
                "{} failed (exit {:?}). Last lines of {}:\n{}",
                self.name,
                exit.code,
                self.log.display(),
                self.log_tail(30)
            );
        }
        Ok(exit)
    }

    fn join(&mut self) -> anyhow::Result<Exit> {
        let waiter = self
            .waiter
            .take()
            .with_context(|| format!("{} was already waited for", self.name))?;
        match waiter.join() {
            Ok(result) => result.with_context(|| format!("waiting for {}", self.name)),
            Err(_) => bail!("the waiter thread of {} panicked", self.name),
        }
    }

    /// The last `lines` lines of the process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        if self.waiter.is_some() {
            let _ = self.signal(libc::SIGKILL);
            let _ = self.join();
        }
    }
}

/// `VmHWM` of `pid` in KiB (`None` once it has no memory: exited).
fn high_water_kib(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Blocks until `pid` ends and returns its status and peak RSS.
fn wait_for(pid: libc::pid_t) -> std::io::Result<Exit> {
    let mut status: libc::c_int = 0;
    let mut peak_kib = 0;
    loop {
        if let Some(kib) = high_water_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        // SAFETY: waitpid(2) on our own child, with a valid out-pointer.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if reaped == pid {
            break;
        }
        if reaped < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let at = Instant::now();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(Exit {
        code,
        at,
        epoch_ms: epoch_ms(),
        max_rss_kib: peak_kib,
    })
}
