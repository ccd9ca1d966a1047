//! Exponential back-off for retriable errors, owned by the runtime.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::pipeline::RuntimeConfig;
use crate::error::ConnectorError;

/// Tracks one operation's retries: doubling waits from 100 ms up to
/// `retry_backoff_max`, giving up after `retry_timeout` of failures.
#[derive(Debug)]
pub struct Backoff {
    next_wait: Duration,
    max_wait: Duration,
    give_up_after: Duration,
    first_failure: Option<Instant>,
    attempts: u32,
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
        }
    }

    /// Handles a failed attempt: waits and returns `Ok` if the error is
    /// retriable and time is left, otherwise returns the error.
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
            return Err(ConnectorError::fatal(format!(
                "{operation} kept failing for {} ({} attempts); last error: {error}",
                humantime::format_duration(self.give_up_after),
                self.attempts + 1
            )));
        }
        self.attempts += 1;
        tracing::warn!(operation, attempt = self.attempts, wait_ms = self.next_wait.as_millis() as u64, %error, "retriable error; retrying");
        tokio::time::sleep(self.next_wait).await;
        self.next_wait = (self.next_wait * 2).min(self.max_wait);
        Ok(())
    }

    /// Forgets past failures after a success.
    pub fn reset(&mut self) {
        if self.attempts > 0 {
            *self = Self {
                next_wait: Duration::from_millis(100),
                max_wait: self.max_wait,
                give_up_after: self.give_up_after,
                first_failure: None,
                attempts: 0,
            };
        }
    }
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
        assert!(!error.is_retriable());
        assert!(error.to_string().contains("test kept failing"), "{error}");
        // Failures at 0, 0.1, 0.3, 0.7, 1.1, 1.5, 1.9 and 2.3 s: the last one is past the 2 s budget.
        assert_eq!(calls, 8);

        let mut backoff = Backoff::new(&runtime);
        let result: Result<(), ConnectorError> = retrying!(backoff, "test", async {
            Err::<(), _>(ConnectorError::fatal("bad"))
        });
        assert_eq!(result.unwrap_err().to_string(), "bad");
    }
}
