//! Kafka glue on rdkafka: client settings, topic creation, watermarks.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;

use crate::config::pipeline::{KafkaConfig, TopicConfig};
use crate::error::ConnectorError;

/// A Kafka operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaGlueError {
    /// The cluster's metadata shows no partition of a topic that must
    /// exist (it was just checked or created): retried.
    #[error("topic `{topic}` has no partitions in the cluster's metadata; it is missing or the broker is not answering")]
    NoPartitions {
        /// The topic.
        topic: String,
    },
    /// A client could not be created from the settings.
    #[error("cannot create a Kafka {role} for {bootstrap}: {source}; check `kafka.properties` and `kafka.{role}`")]
    Client {
        /// producer, consumer or admin.
        role: &'static str,
        /// The bootstrap servers.
        bootstrap: String,
        /// The librdkafka error.
        source: KafkaError,
    },
    /// Topic creation or inspection failed.
    #[error("topic `{topic}`: {message}")]
    Topic {
        /// The topic.
        topic: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// A call to Kafka about a topic or group failed.
    #[error("topic `{topic}`: {what}: {source}")]
    Call {
        /// The topic (or consumer group).
        topic: String,
        /// What was being done.
        what: String,
        /// The librdkafka error.
        source: Box<KafkaError>,
    },
    /// The broker refused the client's credentials, or the TLS handshake
    /// failed: the same settings fail the same way every time.
    #[error("{what} at {bootstrap}: {reason}; {hint}")]
    Security {
        /// What failed, e.g. "authentication failed for user `alice`".
        what: String,
        /// The bootstrap servers.
        bootstrap: String,
        /// librdkafka's explanation.
        reason: String,
        /// Which settings to check.
        hint: &'static str,
    },
}

impl KafkaGlueError {
    /// Maps a failure to create a client of `role` (producer, consumer,
    /// admin) for `kafka` into [`KafkaGlueError::Client`].
    pub fn client(kafka: &KafkaConfig, role: &'static str) -> impl FnOnce(KafkaError) -> Self {
        let bootstrap = kafka.bootstrap_servers.clone();
        move |source| Self::Client {
            role,
            bootstrap,
            source,
        }
    }

    /// A failed call about `topic`.
    pub fn call(topic: &str, what: impl Into<String>, source: KafkaError) -> Self {
        Self::Call {
            topic: topic.to_owned(),
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Whether trying again later may succeed (the broker is away, a
    /// partition is moving), as opposed to a settings or permission problem.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Client { .. } | Self::Security { .. } => false,
            Self::Topic { .. } | Self::NoPartitions { .. } => true,
            Self::Call { source, .. } => is_transient(source),
        }
    }
}

/// The settings every client of a pipeline shares.
pub fn base_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.bootstrap_servers);
    config.set("client.id", "sluice");
    // Topics are created by the pipeline's admin step with the configured
    // partitions, never implicitly by a metadata request.
    config.set("allow.auto.create.topics", "false");
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    config
}

/// Producer settings: idempotent (no duplicates or reordering on internal
/// retries), acks from all in-sync replicas, batched, and partitioned by key
/// with murmur2 like the Java client so Java producers and Sluice agree on
/// which partition a key lands in.
pub fn producer_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = base_config(kafka);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", kafka.compression.as_str())
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "500000")
        .set("partitioner", "murmur2_random");
    for (key, value) in &kafka.producer {
        config.set(key, value);
    }
    config
}

/// Applies a group rebalance for a consumer whose contexts override
/// `ConsumerContext::rebalance` with this: `pre_rebalance`, the
/// (incremental) assign or unassign, `post_rebalance`, as rdkafka's default
/// does, with two differences that keep a closing consumer from hanging.
///
/// - rdkafka's default asks librdkafka for the group's protocol on every
///   event (`rd_kafka_rebalance_protocol`), a request to the group's thread
///   with no timeout. An event handled after the group terminated (a
///   consumer dropped mid-join, while `BaseConsumer`'s drop polls its queue)
///   is never answered, and the process hangs in drop (librdkafka #4041,
///   rust-rdkafka #509). Sluice's groups are cooperative, so this tries the
///   incremental call and falls back to the eager one only if librdkafka
///   refuses it (a user-set eager `partition.assignment.strategy`).
/// - Once the group has terminated there is nothing left to assign or
///   revoke: the call is skipped (it would hang the same way).
pub fn apply_rebalance<C: ConsumerContext>(
    context: &C,
    consumer: &BaseConsumer<C>,
    err: RDKafkaRespErr,
    partitions: &mut TopicPartitionList,
) {
    let partitions: &TopicPartitionList = partitions;
    let rebalance = match err {
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(partitions),
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(partitions),
        other => Rebalance::Error(KafkaError::Rebalance(other.into())),
    };
    context.pre_rebalance(consumer, &rebalance);
    if consumer.closed() {
        tracing::debug!(
            ?err,
            "rebalance event after the group closed: nothing to apply"
        );
    } else {
        let assign = matches!(rebalance, Rebalance::Assign(_));
        let result = if assign {
            consumer
                .incremental_assign(partitions)
                .or_else(|_| consumer.assign(partitions))
        } else {
            consumer
                .incremental_unassign(partitions)
                .or_else(|_| consumer.unassign())
        };
        if let Err(error) = result {
            tracing::warn!(%error, assign, "cannot apply the group's rebalance");
        }
    }
    context.post_rebalance(consumer, &rebalance);
}

/// Consumer settings for a sink: its own group, offsets committed by the
/// runtime only after the sink reported them durable, committed data only.
pub fn consumer_config(kafka: &KafkaConfig, group_id: &str) -> ClientConfig {
    let mut config = base_config(kafka);
    config
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // Static membership: a restarted `sluice` (even after kill -9) takes
        // its partitions back at once instead of waiting for the old
        // member's session to expire; a second copy of the same pipeline
        // fences the first.
        .set("group.instance.id", group_id)
        .set("session.timeout.ms", "10000")
        // librdkafka pre-fetches up to 64 MiB per consumer by default,
        // outside any sink's memory budget; 16 MiB keeps a sink busy on
        // loopback and in a region alike (docs/BENCHMARKS.md, P2 and P4).
        .set("queued.max.messages.kbytes", "16384");
    for (key, value) in &kafka.consumer {
        config.set(key, value);
    }
    config
}

/// Topics this process created (see [`created_by_this_process`]).
static CREATED_HERE: Mutex<std::collections::BTreeSet<String>> =
    Mutex::new(std::collections::BTreeSet::new());

/// Whether this process created `topic` (with [`ensure_topic`]): it held
/// nothing before this run.
pub fn created_by_this_process(topic: &str) -> bool {
    CREATED_HERE
        .lock()
        .map(|created| created.contains(topic))
        .unwrap_or(false)
}

/// Creates the pipeline's topic if it is missing (when `topic.create` is on),
/// then returns its partition count.
pub async fn ensure_topic(
    kafka: &KafkaConfig,
    topic: &TopicConfig,
    timeout: Duration,
) -> Result<usize, KafkaGlueError> {
    let probe = MetadataProbe::new(kafka)?;
    let admin: AdminClient<DefaultClientContext> = base_config(kafka)
        .create()
        .map_err(KafkaGlueError::client(kafka, "admin"))?;
    if let Some(count) = probe.partition_count(&topic.name, timeout)? {
        if topic.partitions.is_some_and(|want| want as usize != count) {
            tracing::warn!(topic = %topic.name, existing = count, configured = ?topic.partitions, "topic exists with a different partition count; using it as it is");
        }
        return Ok(count);
    }
    if !topic.create {
        return Err(KafkaGlueError::Topic {
            topic: topic.name.clone(),
            message: "does not exist and `topic.create` is false; create it or set `create: true`"
                .to_owned(),
        });
    }
    let new_topic = NewTopic::new(
        &topic.name,
        topic.partitions.unwrap_or(-1),
        TopicReplication::Fixed(topic.replication_factor.unwrap_or(-1)),
    );
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| {
            KafkaGlueError::call(
                &topic.name,
                format!(
                    "cannot create it (is Kafka reachable at {}?)",
                    kafka.bootstrap_servers
                ),
                e,
            )
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(KafkaGlueError::Topic {
                    topic: topic.name.clone(),
                    message: format!("cannot create it: {code}"),
                })
            }
        }
    }
    tracing::info!(topic = %topic.name, partitions = ?topic.partitions, replication_factor = ?topic.replication_factor, "created topic");
    if let Ok(mut created) = CREATED_HERE.lock() {
        created.insert(topic.name.clone());
    }
    // Metadata can lag the creation for a moment; wait until the broker reports the partitions.
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(count) = probe.partition_count(&topic.name, timeout)? {
            return Ok(count);
        }
        if std::time::Instant::now() > deadline {
            return Err(KafkaGlueError::Topic {
                topic: topic.name.clone(),
                message: "was created but its metadata did not appear in time".to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks that Kafka accepts the settings (reachable, credentials, TLS) by
/// reading `topic`'s metadata: a security failure is reported at once, as a
/// [`KafkaGlueError::Security`], instead of a timeout much later.
pub fn check_access(
    kafka: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<(), KafkaGlueError> {
    topic_partition_count(kafka, topic, timeout).map(|_| ())
}

/// `topic`'s partition count, `None` if it does not exist (yet), read as
/// [`check_access`] reads it.
pub fn topic_partition_count(
    kafka: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<Option<usize>, KafkaGlueError> {
    MetadataProbe::new(kafka)?.partition_count(topic, timeout)
}

/// Drops a Kafka client on a thread of its own and returns at once, with a
/// receiver that completes when the drop is done. rdkafka's drop of a group
/// consumer polls, with no bound, until the consumer has left its group
/// (100-200 ms normally; forever in librdkafka #4041). `None` if no thread
/// could be started (the client was then dropped here).
pub fn drop_in_background<T: Send + 'static>(
    client: T,
    name: &str,
) -> Option<tokio::sync::oneshot::Receiver<()>> {
    let (done, dropped) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            drop(client);
            let _ = done.send(());
        })
        .ok()
        .map(|_| dropped)
}

/// A client that reads topic metadata and watches the client's error events
/// for failures no retry can fix (the broker refusing the credentials, a TLS
/// handshake failing). librdkafka reports those only as events and keeps
/// reconnecting, so a metadata request alone would just time out as if the
/// broker were away, and be retried for the whole `retry_timeout`.
struct MetadataProbe<'a> {
    kafka: &'a KafkaConfig,
    producer: BaseProducer<ProbeContext>,
}

impl<'a> MetadataProbe<'a> {
    fn new(kafka: &'a KafkaConfig) -> Result<Self, KafkaGlueError> {
        let producer = base_config(kafka)
            .create_with_context(ProbeContext::default())
            .map_err(KafkaGlueError::client(kafka, "admin"))?;
        Ok(Self { kafka, producer })
    }

    /// The partition count of `topic`, `None` if it does not exist (yet).
    /// Asks in short rounds until `timeout`, checking the client's events
    /// between rounds, so a security failure ends the wait at once.
    fn partition_count(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<usize>, KafkaGlueError> {
        let deadline = Instant::now() + timeout;
        loop {
            let round = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(100), Duration::from_secs(1));
            let result = tokio::task::block_in_place(|| {
                self.producer.client().fetch_metadata(Some(topic), round)
            });
            let error = match result {
                Ok(metadata) => {
                    return Ok(metadata
                        .topics()
                        .iter()
                        .find(|t| {
                            t.name() == topic && t.error().is_none() && !t.partitions().is_empty()
                        })
                        .map(|t| t.partitions().len()))
                }
                Err(error) => error,
            };
            // Serves the client's queued events (each error reaches
            // ProbeContext::error, each log line the log).
            self.producer.poll(Duration::from_millis(50));
            if let Some((code, reason)) = self.producer.context().failure() {
                return Err(security_error(self.kafka, code, reason));
            }
            if Instant::now() >= deadline || !is_transient(&error) {
                return Err(KafkaGlueError::call(
                    topic,
                    format!(
                        "cannot read metadata (is Kafka reachable at {}?)",
                        self.kafka.bootstrap_servers
                    ),
                    error,
                ));
            }
        }
    }
}

/// Client context of [`MetadataProbe`]: remembers the first security failure.
#[derive(Debug, Default)]
struct ProbeContext {
    failure: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl ProbeContext {
    fn failure(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.failure.lock().ok().and_then(|failure| failure.clone())
    }
}

impl rdkafka::ClientContext for ProbeContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error
            .rdkafka_error_code()
            .filter(|&c| is_security_failure(c))
        {
            Some(code) => {
                tracing::debug!(target: "librdkafka", %error, reason, "security failure");
                if let Ok(mut failure) = self.failure.lock() {
                    failure.get_or_insert_with(|| (code, reason.to_owned()));
                }
            }
            None => log_client_error(&error, reason),
        }
    }
}

impl ProducerContext for ProbeContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Whether `code` says the client's credentials or TLS settings are wrong.
pub fn is_security_failure(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::Authentication
            | C::SaslAuthenticationFailed
            | C::UnsupportedSASLMechanism
            | C::IllegalSASLState
            | C::SSL
    )
}

/// The error for a security failure `code` seen by a client of `kafka`,
/// naming the user and the settings to check.
fn security_error(kafka: &KafkaConfig, code: RDKafkaErrorCode, reason: String) -> KafkaGlueError {
    let bootstrap = kafka.bootstrap_servers.clone();
    if code == RDKafkaErrorCode::SSL {
        return KafkaGlueError::Security {
            what: "TLS handshake failed".to_owned(),
            bootstrap,
            reason,
            hint: "check kafka.properties ssl.ca.location (the CA that signed the broker's certificate) and security.protocol",
        };
    }
    let user = kafka.properties.get("sasl.username").map_or_else(
        || "(no sasl.username)".to_owned(),
        |user| format!("`{user}`"),
    );
    KafkaGlueError::Security {
        what: format!("authentication failed for user {user}"),
        bootstrap,
        reason,
        hint: "check kafka.properties sasl.username/sasl.password and sasl.mechanism",
    }
}

/// Whether a Kafka error is one a later attempt can get past: the broker or
/// coordinator is unreachable, moving, loading or busy.
pub fn is_transient(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    if let KafkaError::Transaction(error) = error {
        return error.is_retriable();
    }
    error.rdkafka_error_code().is_some_and(|code| {
        matches!(
            code,
            C::AllBrokersDown
                | C::BrokerTransportFailure
                | C::Resolve
                | C::OperationTimedOut
                | C::TimedOutQueue
                | C::MessageTimedOut
                | C::RequestTimedOut
                | C::NetworkException
                | C::BrokerNotAvailable
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::ReplicaNotAvailable
                | C::NotEnoughReplicas
                | C::NotEnoughReplicasAfterAppend
                | C::CoordinatorLoadInProgress
                | C::CoordinatorNotAvailable
                | C::NotCoordinator
                | C::WaitingForCoordinator
                | C::KafkaStorageError
                | C::FetchSessionIdNotFound
                | C::InvalidFetchSessionEpoch
                | C::OffsetNotAvailable
                | C::UnstableOffsetCommit
                | C::ThrottlingQuotaExceeded
                | C::ConcurrentTransactions
                | C::Retry
        )
    })
}

/// Whether a commit failed because this member lost its partitions in a
/// rebalance: the new owner rewrites the same objects, nothing to retry.
pub fn is_membership_change(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    error.rdkafka_error_code().is_some_and(|code| {
        matches!(
            code,
            C::RebalanceInProgress
                | C::IllegalGeneration
                | C::UnknownMemberId
                | C::AssignmentLost
                | C::FencedInstanceId
                | C::StaleMemberEpoch
                | C::FencedMemberEpoch
        )
    })
}

/// A Kafka error as a plugin-boundary error: retriable when transient.
pub fn classify(context: impl std::fmt::Display, error: KafkaError) -> ConnectorError {
    let message = format!("{context}: {error}");
    if is_transient(&error) {
        ConnectorError::retriable(message)
    } else {
        ConnectorError::fatal(message)
    }
}

/// The key and value bytes of the record at `topic`/`partition`/`offset`,
/// read again from Kafka (for a dead letter of a record a sink rejected).
pub fn fetch_record(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    offset: i64,
    timeout: Duration,
) -> Result<RawRecord, KafkaGlueError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = base_config(kafka)
        .set("group.id", "sluice-dead-letters")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(KafkaGlueError::client(kafka, "consumer"))?;
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))
        .map_err(|e| KafkaGlueError::call(topic, "cannot read a record again", e))?;
    consumer
        .assign(&list)
        .map_err(|e| KafkaGlueError::call(topic, "cannot read a record again", e))?;
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) if message.offset() == offset => {
                return Ok(RawRecord {
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                })
            }
            Some(Ok(_)) | None => {}
            Some(Err(e)) => {
                return Err(KafkaGlueError::call(
                    topic,
                    format!(
                        "cannot read the record at partition {partition} offset {offset} again"
                    ),
                    e,
                ))
            }
        }
    }
    Err(KafkaGlueError::Topic {
        topic: topic.to_owned(),
        message: format!("the record at partition {partition} offset {offset} could not be read again within {timeout:?}"),
    })
}

/// A record's bytes as they are in Kafka.
#[derive(Debug, Clone, Default)]
pub struct RawRecord {
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
}

/// The client context of Sluice's long-lived producers and consumers: the
/// broker being away (connection refused, all brokers down) is logged as a
/// warning, since the runtime retries it, not as an error on every attempt.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoggingContext;

impl rdkafka::ClientContext for LoggingContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

/// Logs a librdkafka log line: connection failures (`FAIL`) as warnings.
pub fn log_librdkafka(level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    // `apply_rebalance` tries the incremental call first and falls back to
    // the eager one when librdkafka refuses it; the refusal is expected.
    if fac == "ASSIGN" && message.contains("rebalance protocol type is") {
        tracing::debug!(target: "librdkafka", facility = fac, "{message}");
        return;
    }
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error if fac != "FAIL" => {
            tracing::error!(target: "librdkafka", facility = fac, "{message}")
        }
        L::Emerg | L::Alert | L::Critical | L::Error | L::Warning => {
            tracing::warn!(target: "librdkafka", facility = fac, "{message}")
        }
        L::Notice | L::Info => tracing::info!(target: "librdkafka", facility = fac, "{message}"),
        L::Debug => tracing::debug!(target: "librdkafka", facility = fac, "{message}"),
    }
}

/// Logs a client-wide librdkafka error: transient ones as warnings.
pub fn log_client_error(error: &KafkaError, reason: &str) {
    if is_transient(error) {
        tracing::warn!(target: "librdkafka", %error, reason, "Kafka client error; retrying");
    } else {
        tracing::error!(target: "librdkafka", %error, reason, "Kafka client error");
    }
}
