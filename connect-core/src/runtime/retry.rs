//! Exponential back-off with jitter for retriable errors, owned by the runtime.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::pipeline::{PipelineConfig, RuntimeConfig};
use crate::error::ConnectorError;
use crate::kafka::KafkaGlueError;

/// Tracks one operation's retries: doubling waits from 100 ms up to
/// `retry_backoff_max`, giving up after `retry_timeout` of failures.
///
/// Each wait is drawn between half and all of the doubled value ("equal
/// jitter"), so that clients failing together (every sink of a worker when
/// S3 goes away) do not retry in lockstep, while waits still grow.
#[derive(Debug)]
pub struct Backoff {
    next_wait: Duration,
    max_wait: Duration,
    give_up_after: Duration,
    first_failure: Option<Instant>,
    attempts: u32,
    /// Label of `sluice_retries_total`.
    pipeline: std::sync::Arc<str>,
}

impl Backoff {
    /// A fresh back-off with the pipeline's limits.
    pub fn new(runtime: &RuntimeConfig) -> Self {
        Self {
            next_wait: Duration::from_millis(100),
            max_wait: runtime.retry_backoff_max.0,
            give_up_after: runtime.retry_timeout.0,
            first_failure: None,
            attempts: 0,
            pipeline: "".into(),
        }
    }

    /// A fresh back-off with `pipeline`'s limits, counting its retries in
    /// `sluice_retries_total{pipeline, operation}`.
    pub fn for_pipeline(pipeline: &PipelineConfig) -> Self {
        Self {
            pipeline: pipeline.name.as_str().into(),
            ..Self::new(&pipeline.runtime)
        }
    }

    /// Handles a failed attempt: waits and returns `Ok` if the error is
    /// retriable and time is left, otherwise returns the error. A retriable
    /// error that outlived `retry_timeout` is returned still retriable (with
    /// how long it was retried), so the supervisor can restart the pipeline.
    pub async fn retry_or_fail(
        &mut self,
        error: ConnectorError,
        operation: &str,
    ) -> Result<(), ConnectorError> {
        if !error.is_retriable() {
            return Err(error);
        }
        let first = *self.first_failure.get_or_insert_with(Instant::now);
        if first.elapsed() >= self.give_up_after {
            tracing::error!(operation, attempts = self.attempts, %error, "giving up after retrying for the whole retry_timeout");
            return Err(ConnectorError::retriable(format!(
                "{operation} kept failing for {} ({} attempts); last error: {error}",
                humantime::format_duration(self.give_up_after),
                self.attempts + 1
            )));
        }
        self.attempts += 1;
        metrics::counter!("sluice_retries_total", "pipeline" => self.pipeline.to_string(), "operation" => operation.to_owned()).increment(1);
        let wait = jittered(self.next_wait);
        tracing::warn!(operation, attempt = self.attempts, wait_ms = wait.as_millis() as u64, %error, "retriable error; retrying");
        tokio::time::sleep(wait).await;
        self.next_wait = (self.next_wait * 2).min(self.max_wait);
        Ok(())
    }

    /// Runs a Kafka call until it succeeds, retrying transient failures
    /// (the broker is away, a new partition has no leader yet).
    pub async fn kafka<T, F>(
        &mut self,
        operation: &str,
        mut call: impl FnMut() -> F,
    ) -> Result<T, KafkaGlueError>
    where
        F: std::future::Future<Output = Result<T, KafkaGlueError>>,
    {
        loop {
            match call().await {
                Ok(value) => {
                    self.reset();
                    return Ok(value);
                }
                Err(error) if error.is_transient() => {
                    let retriable = ConnectorError::retriable(error.to_string());
                    if self.retry_or_fail(retriable, operation).await.is_err() {
                        return Err(error);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Forgets past failures after a success.
    pub fn reset(&mut self) {
        if self.attempts > 0 {
            self.next_wait = Duration::from_millis(100);
            self.first_failure = None;
            self.attempts = 0;
        }
    }
}

/// A wait between half and all of `wait`.
pub fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// Calls `$call` until it succeeds, retrying retriable errors with `$backoff`.
/// A macro rather than a function because the call borrows the plugin mutably.
#[macro_export]
#[doc(hidden)]
macro_rules! retrying {
    ($backoff:expr, $operation:expr, $call:expr) => {{
        loop {
            match $call.await {
                Ok(value) => {
                    $backoff.reset();
                    break Ok(value);
                }
                Err(error) => {
                    if let Err(error) = $backoff.retry_or_fail(error, $operation).await {
                        break Err(error);
                    }
                }
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::HumanDuration;

    #[tokio::test(start_paused = true)]
    async fn retries_retriable_errors_until_the_timeout() {
        let runtime = RuntimeConfig {
            retry_backoff_max: HumanDuration(Duration::from_millis(400)),
            retry_timeout: HumanDuration(Duration::from_secs(2)),
            ..RuntimeConfig::default()
        };
        let mut backoff = Backoff::new(&runtime);
        let mut calls = 0;
        let result: Result<(), ConnectorError> = retrying!(backoff, "test", async {
            calls += 1;
            Err::<(), _>(ConnectorError::retriable("down"))
        });
        let error = result.unwrap_err();
        assert!(error.is_retriable(), "still transient in kind: {error}");
        assert!(error.to_string().contains("test kept failing"), "{error}");
        // Waits of 0.1, 0.2, 0.4, 0.4, ... s, each jittered down to half at
        // most: between 8 calls (no jitter: failures at 0, 0.1, 0.3, 0.7,
        // 1.1, 1.5, 1.9, 2.3 s) and 13 (every wait halved) fit in 2 s.
        assert!((8..=13).contains(&calls), "{calls} calls");

        let mut backoff = Backoff::new(&runtime);
        let result: Result<(), ConnectorError> = retrying!(backoff, "test", async {
            Err::<(), _>(ConnectorError::fatal("bad"))
        });
        assert_eq!(result.unwrap_err().to_string(), "bad");
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_wait() {
        let wait = Duration::from_millis(1000);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(wait)).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_millis(500) && *w <= wait));
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "waits are spread, not fixed");
    }
}
