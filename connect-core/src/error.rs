//! Errors that cross the plugin boundary.
//!
//! A connector says whether a failure is worth retrying; the runtime, not the
//! connector, owns the retry loop and its back-off.

use std::fmt;

/// Result type of every plugin call.
pub type ConnectorResult<T> = Result<T, ConnectorError>;

/// A failure reported by a source, sink, transform or predicate.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A transient failure (network, throttling, a server's 5xx): the runtime
    /// backs off and calls the same method again with the same input.
    #[error("{0}")]
    Retriable(Failure),
    /// A failure that retrying cannot fix (bad input, bad credentials, a
    /// missing bucket): the runtime stops the pipeline with this error.
    #[error("{0}")]
    Fatal(Failure),
}

/// What failed, where and what to do about it.
#[derive(Debug)]
pub struct Failure {
    /// One sentence: what failed and where (file:line:column, topic/partition/offset, key).
    pub message: String,
    /// The underlying error, if any.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
            let mut cause = source.source();
            while let Some(inner) = cause {
                write!(f, ": {inner}")?;
                cause = inner.source();
            }
        }
        Ok(())
    }
}

impl ConnectorError {
    /// A transient failure with no underlying error value.
    pub fn retriable(message: impl Into<String>) -> Self {
        Self::Retriable(Failure {
            message: message.into(),
            source: None,
        })
    }

    /// A permanent failure with no underlying error value.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::Fatal(Failure {
            message: message.into(),
            source: None,
        })
    }

    /// A transient failure caused by `source`.
    pub fn retriable_caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Retriable(Failure {
            message: message.into(),
            source: Some(Box::new(source)),
        })
    }

    /// A permanent failure caused by `source`.
    pub fn fatal_caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Fatal(Failure {
            message: message.into(),
            source: Some(Box::new(source)),
        })
    }

    /// Whether the runtime should retry the call that returned this error.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Retriable(_))
    }
}
