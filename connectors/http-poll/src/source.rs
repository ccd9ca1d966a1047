//! The running `http_poll` source.
//!
//! Each poll GETs the endpoint, cuts the JSON response into records at the
//! configured pointer and keeps, per key, the dedup fields of the record
//! last sent. A record whose fields are the ones last sent for its key is
//! skipped. That map is the position every record carries (as it is once
//! the record is sent), under the source partition `{"url": <url>}`, so a
//! restart skips what was sent before it.
//!
//! Errors: a request that fails to connect or times out, and answers 408,
//! 429 and 5xx, are retriable (the runtime backs off and polls again); any
//! other 4xx is fatal (the URL or the credentials are wrong). A response
//! that is not JSON, has nothing at the pointer, or is larger than
//! `max_body_bytes` is a bad record: the pipeline's `errors:` policy decides,
//! and with `tolerance: all` the next poll goes on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connect_core::plugin::{BuildContext, Poll, Source};
use connect_core::{ConnectorError, ConnectorResult, Record, SourcePosition, Value};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Map;

use crate::config::HttpPollConfig;

/// Bytes of a response body kept in an error message.
const SHOWN: usize = 200;

/// A running `http_poll` source.
pub struct HttpPollSource {
    config: HttpPollConfig,
    client: reqwest::Client,
    topic: Arc<str>,
    partition: Arc<Value>,
    /// Per key (its JSON text; empty for none): the dedup fields last sent.
    last: Map<String, Value>,
    /// Records of the last response not yet returned.
    pending: VecDeque<Record>,
    next_poll: Option<tokio::time::Instant>,
}

impl HttpPollSource {
    /// A source for `config`; the HTTP client is made here (no request yet).
    pub fn new(config: HttpPollConfig, ctx: &BuildContext) -> ConnectorResult<Self> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                ConnectorError::fatal(format!("`headers.{name}` is not a header name: {e}"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|e| {
                ConnectorError::fatal(format!(
                    "`headers.{name}` has a value that cannot be sent in a header: {e}"
                ))
            })?;
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout.0)
            .connect_timeout(config.timeout.0.min(Duration::from_secs(10)))
            .default_headers(headers)
            .user_agent(concat!("sluice-http-poll/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConnectorError::fatal_caused_by("cannot make the HTTP client", e))?;
        Ok(Self {
            partition: Arc::new(serde_json::json!({ "url": config.url })),
            config,
            client,
            topic: ctx.topic.clone(),
            last: Map::new(),
            pending: VecDeque::new(),
            next_poll: None,
        })
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            partition: self.partition.clone(),
            offset: serde_json::json!({ "last": Value::Object(self.last.clone()) }),
        }
    }

    fn bad(&self, message: String, body: &[u8]) -> ConnectorError {
        ConnectorError::bad_record(message, Some(body.to_vec()), Some(self.position()))
    }

    /// GETs the endpoint: the body of a 2xx answer.
    async fn fetch(&self) -> ConnectorResult<Result<Vec<u8>, ConnectorError>> {
        let url = &self.config.url;
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| ConnectorError::retriable_caused_by(format!("GET {url} failed"), e))?;
        let status = response.status();
        let max = usize::try_from(self.config.max_body_bytes.0).unwrap_or(usize::MAX);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            ConnectorError::retriable_caused_by(
                format!("reading the answer of GET {url} failed"),
                e,
            )
        })? {
            if body.len() + chunk.len() > max {
                body.extend_from_slice(&chunk[..max - body.len()]);
                return Ok(Err(self.bad(
                    format!(
                        "GET {url}: the response is larger than `max_body_bytes` ({}); raise it, or ask the endpoint for less",
                        self.config.max_body_bytes
                    ),
                    &body,
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(Ok(body));
        }
        let shown = String::from_utf8_lossy(&body[..body.len().min(SHOWN)]).into_owned();
        let message = format!("GET {url} answered {status}: {shown}");
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(ConnectorError::retriable(message))
        } else {
            Err(ConnectorError::fatal(format!(
                "{message}; check `url` and `headers` (credentials)"
            )))
        }
    }

    /// Cuts a response into records, skipping those unchanged since sent.
    fn take(&mut self, body: &[u8]) -> Result<(), ConnectorError> {
        let url = &self.config.url;
        let response: Value = serde_json::from_slice(body).map_err(|e| {
            self.bad(
                format!("GET {url}: the response is not JSON ({e}); check `url`"),
                body,
            )
        })?;
        let pointer = &self.config.records;
        let Some(found) = response.pointer(pointer) else {
            return Err(self.bad(
                format!("GET {url}: the response has nothing at `records: {pointer}`; check the pointer against the response"),
                body,
            ));
        };
        let elements = match found {
            Value::Array(elements) => elements.clone(),
            other => vec![other.clone()],
        };
        let mut skipped = 0usize;
        for element in elements {
            let key = self
                .config
                .key_field
                .as_ref()
                .and_then(|field| element.get(field))
                .filter(|k| !k.is_null())
                .cloned();
            let key_text = key.as_ref().map(Value::to_string).unwrap_or_default();
            let dedup = if self.config.dedup_fields.is_empty() {
                element.clone()
            } else {
                Value::Object(
                    self.config
                        .dedup_fields
                        .iter()
                        .map(|f| (f.clone(), element.get(f).cloned().unwrap_or(Value::Null)))
                        .collect(),
                )
            };
            if self.last.get(&key_text) == Some(&dedup) {
                skipped += 1;
                continue;
            }
            self.last.insert(key_text, dedup);
            let record =
                Record::from_source(self.topic.clone(), key, Some(element), self.position());
            self.pending.push_back(record);
        }
        tracing::debug!(url = %url, new = self.pending.len(), unchanged = skipped, "polled");
        Ok(())
    }
}

#[async_trait]
impl Source for HttpPollSource {
    async fn open(&mut self, position: Option<SourcePosition>) -> ConnectorResult<()> {
        let Some(position) = position else {
            return Ok(());
        };
        if position.partition != self.partition {
            tracing::warn!(stored = %position.partition, url = %self.config.url, "the stored position is for another URL; starting with nothing sent");
            return Ok(());
        }
        match position.offset.get("last") {
            Some(Value::Object(last)) => {
                self.last = last.clone();
                Ok(())
            }
            _ => Err(ConnectorError::fatal(format!(
                "stored position {} is not an http_poll position; reset the pipeline's source offsets",
                position.offset
            ))),
        }
    }

    async fn poll(&mut self, max_records: usize) -> ConnectorResult<Poll> {
        if self.pending.is_empty() {
            if let Some(at) = self.next_poll {
                tokio::time::sleep_until(at).await;
            }
            self.next_poll = Some(tokio::time::Instant::now() + self.config.interval.0);
            match self.fetch().await? {
                Ok(body) => self.take(&body)?,
                Err(bad) => return Err(bad),
            }
        }
        let n = self.pending.len().min(max_records.max(1));
        Ok(Poll::Records(self.pending.drain(..n).collect()))
    }

    async fn close(&mut self) -> ConnectorResult<()> {
        self.pending.clear();
        Ok(())
    }
}
