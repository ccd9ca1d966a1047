//! The pipeline's error policy: stop on a bad record, or skip it, count it,
//! log it and (optionally) send it to a dead-letter topic.

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::retry::Backoff;
use super::RuntimeError;
use crate::config::pipeline::{ErrorsConfig, PipelineConfig, Tolerance, TopicConfig};
use crate::convert::Converter;
use crate::kafka::{ensure_topic, producer_config, KafkaGlueError, LoggingContext};
use crate::record::SourcePosition;

/// Where a bad record was.
#[derive(Debug)]
pub enum Origin<'a> {
    /// Read from Kafka.
    Kafka {
        /// Topic.
        topic: &'a str,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// Read by the source.
    Source(Option<&'a SourcePosition>),
}

/// A record the pipeline could not handle.
#[derive(Debug)]
pub struct BadRecord<'a> {
    /// `source`, `transform`, `convert` or `sink`.
    pub stage: &'static str,
    /// The plugin or converter that failed (e.g. `csv_replay`, `cast`, `json`).
    pub class: &'a str,
    /// What went wrong, with where.
    pub message: String,
    /// The record's key bytes as read, if any.
    pub key: Option<&'a [u8]>,
    /// The record's value bytes as read, if any.
    pub value: Option<&'a [u8]>,
    /// Where it was.
    pub origin: Origin<'a>,
}

/// Applies `errors:` of a pipeline.
pub struct ErrorPolicy {
    pipeline: String,
    config: ErrorsConfig,
    dead_letters: Option<FutureProducer<LoggingContext>>,
    /// Records skipped under `tolerance: all`.
    pub skipped: AtomicU64,
}

impl ErrorPolicy {
    /// The policy of `pipeline`; creates the dead-letter topic and producer when configured.
    pub async fn new(pipeline: &PipelineConfig) -> Result<Self, RuntimeError> {
        let config = pipeline.errors.clone();
        let dead_letters = match &config.dead_letter_topic {
            None => None,
            Some(topic) => {
                let topic_config = TopicConfig {
                    name: topic.clone(),
                    partitions: None,
                    replication_factor: None,
                    create: true,
                    key_converter: Converter::String,
                    value_converter: Converter::String,
                };
                Backoff::for_pipeline(pipeline)
                    .kafka("creating the dead-letter topic", || async {
                        ensure_topic(
                            &pipeline.kafka,
                            &topic_config,
                            std::time::Duration::from_secs(30),
                        )
                        .await
                    })
                    .await?;
                let producer: FutureProducer<LoggingContext> = producer_config(&pipeline.kafka)
                    .create_with_context(LoggingContext)
                    .map_err(KafkaGlueError::client(&pipeline.kafka, "producer"))
                    .map_err(RuntimeError::Kafka)?;
                Some(producer)
            }
        };
        Ok(Self {
            pipeline: pipeline.name.clone(),
            config,
            dead_letters,
            skipped: AtomicU64::new(0),
        })
    }

    /// Whether bad records are skipped and written to a dead-letter topic.
    pub fn writes_dead_letters(&self) -> bool {
        self.config.tolerance == Tolerance::All && self.dead_letters.is_some()
    }

    /// Handles a bad record: with `tolerance: none` returns `error`; with
    /// `all`, logs it, writes it to the dead-letter topic (waiting for Kafka's
    /// acknowledgement, so it is never lost), counts it and returns `Ok`.
    pub async fn handle(
        &self,
        bad: BadRecord<'_>,
        error: RuntimeError,
    ) -> Result<(), RuntimeError> {
        let labels = [
            ("pipeline", self.pipeline.clone()),
            ("stage", bad.stage.to_owned()),
        ];
        metrics::counter!("sluice_records_failed_total", &labels).increment(1);
        if self.config.tolerance == Tolerance::None {
            return Err(RuntimeError::Rejected(Box::new(error)));
        }
        tracing::warn!(pipeline = %self.pipeline, stage = bad.stage, class = bad.class, origin = ?bad.origin, error = %bad.message, "skipping a bad record (tolerance: all)");
        if let (Some(producer), Some(topic)) = (&self.dead_letters, &self.config.dead_letter_topic)
        {
            let mut headers = OwnedHeaders::new();
            let mut add = |key: &str, value: &str| {
                headers = std::mem::take(&mut headers).insert(Header {
                    key,
                    value: Some(value),
                });
            };
            add("__connect.errors.stage", bad.stage);
            add("__connect.errors.class.name", bad.class);
            add("__connect.errors.exception.message", &bad.message);
            add("__connect.errors.connector.name", &self.pipeline);
            match &bad.origin {
                Origin::Kafka {
                    topic,
                    partition,
                    offset,
                } => {
                    add("__connect.errors.topic", topic);
                    add("__connect.errors.partition", &partition.to_string());
                    add("__connect.errors.offset", &offset.to_string());
                }
                Origin::Source(position) => {
                    if let Some(position) = position {
                        add(
                            "__connect.errors.source.partition",
                            &position.partition.to_string(),
                        );
                        add(
                            "__connect.errors.source.position",
                            &position.offset.to_string(),
                        );
                    }
                }
            }
            let failed = |detail: String| RuntimeError::Produce {
                pipeline: self.pipeline.clone(),
                topic: topic.clone(),
                message: format!("cannot write a dead letter: {detail}"),
            };
            let mut message = FutureRecord::<[u8], [u8]>::to(topic).headers(headers.clone());
            if let Some(key) = bad.key {
                message = message.key(key);
            }
            if let Some(value) = bad.value {
                message = message.payload(value);
            }
            let delivery = match producer.send_result(message) {
                Ok(delivery) => delivery,
                Err((e, _))
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) =>
                {
                    // Too large for the dead-letter topic too: the dead
                    // letter goes without the value, its headers still say
                    // where the record is (source position or offset).
                    let size = bad.value.map_or(0, <[u8]>::len);
                    let headers = headers.insert(Header {
                        key: "__sluice.errors.value.omitted",
                        value: Some(&format!(
                            "{size} bytes, larger than the producer's message.max.bytes"
                        )),
                    });
                    let mut message = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
                    if let Some(key) = bad.key {
                        message = message.key(key);
                    }
                    producer
                        .send_result(message)
                        .map_err(|(e, _)| failed(e.to_string()))?
                }
                Err((e, _)) => return Err(failed(e.to_string())),
            };
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(failed(e.to_string())),
                Err(_) => return Err(failed("the producer shut down".to_owned())),
            }
        }
        if self.dead_letters.is_some() {
            metrics::counter!("sluice_records_dead_lettered_total", &labels).increment(1);
        }
        metrics::counter!("sluice_records_skipped_total", &labels).increment(1);
        self.skipped.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
