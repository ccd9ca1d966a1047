//! A real `sluice worker` process for the REST API tests: started on a free
//! port with its config and log in a directory, healthy before it is used,
//! and stopped with SIGTERM (it must exit 0).

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{free_port, log_tail, repo_root, Running, Services};

/// A running `sluice worker` on a free port of 127.0.0.1.
pub struct WorkerProcess {
    process: Running,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client for it.
    pub client: reqwest::Client,
}

impl WorkerProcess {
    /// Starts a worker (working directory: the repository) with `config`
    /// (YAML) written to `dir/worker.yaml`, its log appended to
    /// `dir/worker.log`, and waits up to 60 s for `GET /health` to answer 200.
    pub async fn start(services: &Services, dir: &Path, config: &str) -> WorkerProcess {
        let port = free_port();
        let file = dir.join("worker.yaml");
        std::fs::write(&file, config).expect("worker config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("worker.log"))
            .expect("log");
        let process = Running(Some(
            services
                .sluice()
                .current_dir(repo_root())
                .arg("worker")
                .arg(&file)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .stderr(log)
                .spawn()
                .expect("spawn worker"),
        ));
        let worker = WorkerProcess {
            process,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = worker.client.get(worker.url("/health")).send().await {
                if response.status() == StatusCode::OK {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not get healthy in 60 s; last lines of {}:\n{}",
                dir.join("worker.log").display(),
                log_tail(&dir.join("worker.log"), 60)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        worker
    }

    /// The URL of `path` on the worker.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL, as a crash: the worker leaves no word behind.
    pub fn kill(self) {
        drop(self.process);
    }

    /// SIGTERM; the worker must exit 0.
    pub fn stop(self) {
        assert!(
            self.process.sigterm_and_wait().success(),
            "the worker exits 0 on SIGTERM"
        );
    }
}
