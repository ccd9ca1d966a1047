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
    /// One record is bad (a malformed CSV row, a value that does not convert)
    /// and the plugin has skipped it: the next call goes on after it. The
    /// pipeline's error policy decides: stop (`tolerance: none`), or count it,
    /// log it and send it to the dead-letter topic (`tolerance: all`).
    ///
    /// From [`Sink::write`](crate::plugin::Sink::write) it must name the
    /// rejected record ([`ConnectorError::at_record`]): the records before it
    /// were accepted, and the runtime calls `write` again with those after it.
    #[error("{}", .0.failure)]
    BadRecord(Box<BadRecord>),
}

/// A record a plugin skipped as bad; see [`ConnectorError::BadRecord`].
#[derive(Debug)]
pub struct BadRecord {
    /// What is wrong with the record and where it is.
    pub failure: Failure,
    /// The record as read (a CSV row's fields joined by the delimiter).
    pub raw: Option<Vec<u8>>,
    /// Where the record came from, so a dead letter can say it.
    pub position: Option<crate::record::SourcePosition>,
    /// From a sink's `write`: the index of the rejected record in the batch.
    pub record: Option<usize>,
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

    /// A skipped bad record.
    pub fn bad_record(
        message: impl Into<String>,
        raw: Option<Vec<u8>>,
        position: Option<crate::record::SourcePosition>,
    ) -> Self {
        Self::BadRecord(Box::new(BadRecord {
            failure: Failure {
                message: message.into(),
                source: None,
            },
            raw,
            position,
            record: None,
        }))
    }

    /// A bad record error naming record `index` of the batch given to a
    /// sink's `write`; other errors are returned as they are.
    pub fn at_record(self, index: usize) -> Self {
        match self {
            Self::BadRecord(mut bad) => {
                bad.record = Some(index);
                Self::BadRecord(bad)
            }
            other => other,
        }
    }

    /// Whether the runtime should retry the call that returned this error.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Retriable(_))
    }
}
