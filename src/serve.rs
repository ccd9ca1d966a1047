//! `sluice worker`: the pipelines of a worker, the REST API, and the signals
//! that reload (SIGHUP) or stop (SIGTERM, Ctrl-C) them.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use connect_core::worker::{Worker, WorkerConfig};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::api::{router, AppState};

/// How often the pipelines directory is checked for changed files.
const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Runs the worker until SIGTERM or Ctrl-C, then stops every pipeline gracefully.
pub async fn run_worker(settings: WorkerConfig) -> anyhow::Result<ExitCode> {
    let metrics = PrometheusBuilder::new()
        .set_buckets(&[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .context("metrics buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let addr: SocketAddr = settings
        .rest
        .listen
        .parse()
        .with_context(|| format!("rest.listen `{}` is not host:port", settings.rest.listen))?;
    if !addr.ip().is_loopback() && settings.rest.auth_token.is_none() {
        tracing::warn!(%addr, "the REST API listens beyond loopback without rest.auth_token: anyone who reaches it can change pipelines");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    let shutdown = CancellationToken::new();
    let token = settings.rest.auth_token.clone();
    // The REST address identifies the worker in its group unless
    // `worker_id` is set; on all interfaces, the host name stands for the IP.
    let default_id = if local.ip().is_unspecified() {
        format!(
            "{}:{}",
            gethostname::gethostname().to_string_lossy(),
            local.port()
        )
    } else {
        local.to_string()
    };
    let worker = Arc::new(
        Worker::new(settings, default_id, shutdown.clone())
            .await
            .context("cannot start the worker")?,
    );
    let state = Arc::new(AppState {
        worker: worker.clone(),
        ready: AtomicBool::new(false),
        metrics,
        worker_id: worker.worker_id().to_owned(),
    });
    let server_stop = CancellationToken::new();
    let server = {
        let stop = server_stop.clone();
        let app = router(state.clone(), token);
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        })
    };
    tracing::info!(listen = %local, "REST API listening");
    worker
        .start_all()
        .await
        .context("cannot start the stored pipelines")?;
    state.ready.store(true, Ordering::SeqCst);
    tracing::info!(pipelines = worker.list().len(), "worker ready");

    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut files = tokio::time::interval(FILE_CHECK_INTERVAL);
    let mut seen = directory_stamp(&worker);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the pipelines directory");
                worker.reload_files().await;
                seen = directory_stamp(&worker);
            }
            _ = files.tick() => {
                let now = directory_stamp(&worker);
                if now != seen {
                    tracing::info!("a pipeline file changed: reloading the pipelines directory");
                    worker.reload_files().await;
                    seen = now;
                }
            }
        }
    }
    tracing::info!("stopping: every pipeline flushes and commits");
    state.ready.store(false, Ordering::SeqCst);
    worker.shutdown().await;
    server_stop.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "the REST API failed"),
        Err(error) => tracing::error!(%error, "the REST API task failed"),
    }
    tracing::info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}

/// Names, sizes and modification times of the pipeline files: a change means reload.
fn directory_stamp(worker: &Worker) -> Vec<(String, u64, Option<SystemTime>)> {
    let Some(dir) = &worker.settings().pipelines_dir else {
        return Vec::new();
    };
    let mut stamp: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            Some((
                entry.file_name().to_string_lossy().into_owned(),
                metadata.len(),
                metadata.modified().ok(),
            ))
        })
        .collect();
    stamp.sort();
    stamp
}
