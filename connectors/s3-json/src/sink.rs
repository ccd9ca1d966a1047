//! The running `s3_json` sink: the S3 client, the bucket check, and the
//! [`ObjectStore`] that lands objects in S3 without ever overwriting one.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use connect_core::plugin::{BuildContext, DurableOffsets, FlushMode, Sink, SinkStats};
use connect_core::{ConnectorError, ConnectorResult, Record, TopicPartition};

use crate::batcher::ObjectBatcher;
use crate::config::{ConditionalWrites, S3JsonConfig};
use crate::glue::GlueCatalog;
use crate::landing::{land_all, Landing, ObjectStore, PutRequest, PutResult};
use crate::spool::{Body, SpooledBody};

/// User metadata (`x-amz-meta-…`) with the offset of an object's first record.
pub const META_FIRST_OFFSET: &str = "sluice-first-offset";
/// User metadata with the offset of an object's last record.
pub const META_LAST_OFFSET: &str = "sluice-last-offset";
/// User metadata with the number of records in an object.
pub const META_RECORDS: &str = "sluice-records";

/// Whether the store honours `If-None-Match: *` (not known yet with `auto`).
const UNKNOWN: u8 = 0;
const HONOURED: u8 = 1;
const IGNORED: u8 = 2;

/// The bucket as landing sees it: puts that never overwrite, and the offset
/// metadata of existing objects.
///
/// When the store honours `If-None-Match: *`, a put carries it and a 412
/// says the key exists. When it ignores it, a HEAD before each put does.
/// With `conditional_writes: auto` it is unknown at first: each put does the
/// HEAD *and* carries the header (safe either way), and the first object
/// written is put again, byte for byte, with the header: a 412 shows the
/// store honours it, a success that it ignores it (and the second put
/// changed nothing).
#[derive(Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    mode: AtomicU8,
    /// `sluice_s3_upload_duration_seconds`: one successful PUT.
    upload_seconds: metrics::Histogram,
    /// Bodies larger than this go as multipart uploads of parts this size.
    part_size: u64,
}

impl S3Store {
    /// Records upload latencies in `sluice_s3_upload_duration_seconds`
    /// with the pipeline's and sink's names.
    pub fn with_metrics(mut self, pipeline: &str, sink: &str) -> Self {
        self.upload_seconds = metrics::histogram!(
            "sluice_s3_upload_duration_seconds",
            "pipeline" => pipeline.to_owned(),
            "sink" => sink.to_owned()
        );
        self
    }

    /// A store for `bucket`, with conditional writes as configured.
    pub fn new(client: Client, bucket: impl Into<String>, conditional: ConditionalWrites) -> Self {
        let mode = match conditional {
            ConditionalWrites::Auto => UNKNOWN,
            ConditionalWrites::Always => HONOURED,
            ConditionalWrites::Never => IGNORED,
        };
        Self {
            client,
            bucket: bucket.into(),
            mode: AtomicU8::new(mode),
            upload_seconds: metrics::Histogram::noop(),
            part_size: 8 << 20,
        }
    }

    /// Bodies (on disk) larger than `part_size` go as multipart uploads of
    /// parts that size (larger when the body would need over 10,000 parts).
    pub fn with_part_size(mut self, part_size: u64) -> Self {
        self.part_size = part_size.max(1);
        self
    }

    /// `Some(true)` when puts rely on `If-None-Match: *`, `Some(false)` when
    /// a HEAD goes first, `None` while `auto` has not found out yet.
    pub fn conditional(&self) -> Option<bool> {
        match self.mode.load(Ordering::Relaxed) {
            HONOURED => Some(true),
            IGNORED => Some(false),
            _ => None,
        }
    }

    fn learn(&self, honoured: bool) {
        let mode = if honoured { HONOURED } else { IGNORED };
        if self
            .mode
            .compare_exchange(UNKNOWN, mode, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            if honoured {
                tracing::info!(bucket = %self.bucket, "the store honours If-None-Match: uploads are conditional");
            } else {
                tracing::warn!(bucket = %self.bucket, "the store ignores If-None-Match: each upload is checked with a HEAD first (safe with one writer per partition)");
            }
        }
    }

    async fn head(&self, key: &str) -> ConnectorResult<Option<HeadObjectOutput>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(head)),
            Err(error) if status(&error) == Some(404) => Ok(None),
            Err(error) => Err(classify(
                format!("cannot look up s3://{}/{key}", self.bucket),
                error,
            )),
        }
    }

    async fn put(
        &self,
        request: &PutRequest<'_>,
        body: &Bytes,
        if_none_match: bool,
    ) -> Result<(), SdkError<PutObjectError, HttpResponse>> {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(request.key)
            .content_type("application/x-ndjson")
            .metadata(META_FIRST_OFFSET, request.first_offset.to_string())
            .metadata(META_LAST_OFFSET, request.last_offset.to_string())
            .metadata(META_RECORDS, request.records.to_string())
            .body(ByteStream::from(body.clone()));
        if if_none_match {
            put = put.if_none_match("*");
        }
        put.send().await.map(drop)
    }

    /// A body on disk, as a multipart upload: the object's metadata at
    /// the start (its offsets are known: the object is closed), one part
    /// in memory at a time, and the same never-overwrite rule as a PUT
    /// (`If-None-Match: *` on the completion, or a HEAD first).
    async fn put_multipart(
        &self,
        request: &PutRequest<'_>,
        body: &SpooledBody,
    ) -> ConnectorResult<PutResult> {
        let mode = self.mode.load(Ordering::Relaxed);
        if mode != HONOURED && self.head(request.key).await?.is_some() {
            return Ok(PutResult::Exists);
        }
        let location = format!("s3://{}/{}", self.bucket, request.key);
        let started = Instant::now();
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(request.key)
            .content_type("application/x-ndjson")
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .metadata(META_FIRST_OFFSET, request.first_offset.to_string())
            .metadata(META_LAST_OFFSET, request.last_offset.to_string())
            .metadata(META_RECORDS, request.records.to_string())
            .send()
            .await
            .map_err(|e| classify(format!("cannot start uploading {location}"), e))?;
        let Some(upload_id) = created.upload_id().map(str::to_owned) else {
            return Err(ConnectorError::retriable(format!(
                "{location}: the store started a multipart upload without an upload id"
            )));
        };
        let result = self
            .upload_parts(request, body, &upload_id, mode != IGNORED)
            .await;
        if !matches!(result, Ok(PutResult::Written)) {
            // Nothing half-done stays behind (a store also expires them).
            if let Err(error) = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(request.key)
                .upload_id(&upload_id)
                .send()
                .await
            {
                tracing::warn!(key = %request.key, upload_id = %upload_id, error = %DisplayErrorContext(&error), "could not abort a multipart upload; the bucket's lifecycle rule for incomplete uploads removes it");
            }
        }
        if let Ok(PutResult::Written) = result {
            self.upload_seconds.record(started.elapsed().as_secs_f64());
            tracing::debug!(bucket = %self.bucket, key = %request.key, records = request.records, bytes = body.len(), ms = started.elapsed().as_millis() as u64, "uploaded in parts");
        }
        result
    }

    async fn upload_parts(
        &self,
        request: &PutRequest<'_>,
        body: &SpooledBody,
        upload_id: &str,
        if_none_match: bool,
    ) -> ConnectorResult<PutResult> {
        let location = format!("s3://{}/{}", self.bucket, request.key);
        let part_size = self.part_size.max(body.len().div_ceil(MAX_PARTS));
        let mut parts = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let len = part_size.min(body.len() - at);
            let part = {
                let body = body.clone();
                tokio::task::spawn_blocking(move || {
                    let mut part = vec![0; len as usize];
                    body.read_exact_at(&mut part, at)
                        .map(|()| Bytes::from(part))
                })
                .await
                .map_err(|e| {
                    ConnectorError::fatal(format!("reading a part of {location} failed: {e}"))
                })?
                .map_err(|e| {
                    ConnectorError::fatal_caused_by(
                        format!("cannot read a part of {location} from `spool_dir`"),
                        e,
                    )
                })?
            };
            let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(request.key)
                .upload_id(upload_id)
                .part_number(number)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(|e| classify(format!("cannot upload part {number} of {location}"), e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(uploaded.e_tag().map(str::to_owned))
                    .set_checksum_crc32(uploaded.checksum_crc32().map(str::to_owned))
                    .build(),
            );
            at += len;
        }
        let complete = |if_none_match: bool| {
            let mut complete = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(request.key)
                .upload_id(upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts.clone()))
                        .build(),
                );
            if if_none_match {
                complete = complete.if_none_match("*");
            }
            complete.send()
        };
        let mut result = complete(if_none_match).await;
        if self.mode.load(Ordering::Relaxed) == UNKNOWN {
            if let Err(error) = &result {
                if status(error) == Some(501) || error.code() == Some("NotImplemented") {
                    // A HEAD went first: complete without the header.
                    self.learn(false);
                    result = complete(false).await;
                }
            }
        }
        match result {
            Ok(_) => Ok(PutResult::Written),
            Err(error) if precondition_failed(&error) => {
                self.learn(true);
                Ok(PutResult::Exists)
            }
            Err(error) => Err(classify(
                format!("cannot complete uploading {location}"),
                error,
            )),
        }
    }
}

/// The most parts of one multipart upload.
const MAX_PARTS: u64 = 10_000;

#[async_trait]
impl ObjectStore for S3Store {
    async fn put_new(&self, request: PutRequest<'_>) -> ConnectorResult<PutResult> {
        let body = match &request.body {
            Body::Memory(body) => body.clone(),
            Body::Spooled(body) if body.len() > self.part_size => {
                return self.put_multipart(&request, body).await;
            }
            Body::Spooled(body) => {
                let body = body.clone();
                tokio::task::spawn_blocking(move || Body::Spooled(body).into_bytes())
                    .await
                    .map_err(|e| {
                        ConnectorError::fatal(format!("reading {} failed: {e}", request.key))
                    })?
                    .map_err(|e| {
                        ConnectorError::fatal_caused_by(
                            format!("cannot read {} from `spool_dir`", request.key),
                            e,
                        )
                    })?
            }
        };
        let mode = self.mode.load(Ordering::Relaxed);
        if mode != HONOURED && self.head(request.key).await?.is_some() {
            return Ok(PutResult::Exists);
        }
        let started = Instant::now();
        let mut result = self.put(&request, &body, mode != IGNORED).await;
        if mode == UNKNOWN {
            if let Err(error) = &result {
                if status(error) == Some(501) || error.code() == Some("NotImplemented") {
                    // The store rejects the header: HEAD before each put from now on.
                    self.learn(false);
                    result = self.put(&request, &body, false).await;
                }
            }
        }
        match result {
            Ok(()) => {
                self.upload_seconds.record(started.elapsed().as_secs_f64());
                tracing::debug!(bucket = %self.bucket, key = %request.key, records = request.records, bytes = request.body.len(), ms = started.elapsed().as_millis() as u64, "uploaded");
                if self.mode.load(Ordering::Relaxed) == UNKNOWN {
                    // The same bytes again: harmless if the header is ignored.
                    match self.put(&request, &body, true).await {
                        Ok(()) => self.learn(false),
                        Err(error) if precondition_failed(&error) => self.learn(true),
                        Err(error) => {
                            tracing::debug!(key = %request.key, error = %DisplayErrorContext(&error), "could not check If-None-Match; will try with the next object")
                        }
                    }
                }
                Ok(PutResult::Written)
            }
            Err(error) if precondition_failed(&error) => {
                self.learn(true);
                Ok(PutResult::Exists)
            }
            Err(error) => Err(classify(
                format!("cannot upload s3://{}/{}", self.bucket, request.key),
                error,
            )),
        }
    }

    async fn existing_last_offset(
        &self,
        key: &str,
        first_offset: i64,
    ) -> ConnectorResult<Option<i64>> {
        let read = |head: &HeadObjectOutput, name: &str| {
            head.metadata()
                .and_then(|m| m.get(name))
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        // A store that writes an object and its metadata in two steps
        // (s3s-fs does) can show a concurrent writer's object without its
        // metadata for a moment: look again before calling it foreign.
        let mut attempt = 0;
        let head = loop {
            let Some(head) = self.head(key).await? else {
                return Ok(None);
            };
            attempt += 1;
            if read(&head, META_LAST_OFFSET).is_some() || attempt >= 10 {
                break head;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
        };
        let read = |name: &str| read(&head, name);
        let location = format!("s3://{}/{key}", self.bucket);
        let Some(last) = read(META_LAST_OFFSET) else {
            return Err(ConnectorError::fatal(format!(
                "{location} exists but has no `x-amz-meta-{META_LAST_OFFSET}`, so which records it holds is unknown \
                 (it was not written by this version of s3_json); move it away, or use another `prefix`"
            )));
        };
        let first = read(META_FIRST_OFFSET).unwrap_or(first_offset);
        if first != first_offset || last < first_offset {
            return Err(ConnectorError::fatal(format!(
                "{location} says it holds offsets {first}..={last}, which does not fit its key (first offset {first_offset}); \
                 move it away, or use another `prefix`"
            )));
        }
        Ok(Some(last))
    }
}

/// A running `s3_json` sink.
pub struct S3JsonSink {
    store: S3Store,
    config: S3JsonConfig,
    stats: Arc<SinkStats>,
    batcher: ObjectBatcher,
    catalog: Option<GlueCatalog>,
    /// `sluice_s3_budget_closes_total`: objects closed early by `memory_budget`.
    early_closes: metrics::Counter,
}

impl S3JsonSink {
    /// Uploads every closed object; returns the first error.
    async fn land(&mut self) -> Option<ConnectorError> {
        let Landing {
            uploaded,
            paths,
            error,
        } = land_all(
            &self.store,
            &mut self.batcher,
            self.config.upload_concurrency,
        )
        .await;
        for object in uploaded {
            self.stats
                .add_object(object.records as u64, object.bytes as u64);
        }
        if let Some(catalog) = &mut self.catalog {
            catalog.landed(paths);
        }
        error
    }

    /// The buffered records reached `memory_budget`: closes the largest open
    /// objects and uploads everything closed before taking more records.
    /// Offsets become durable at the next flush, as usual. When uploads
    /// fail the error goes to the runtime, which retries `write` with the
    /// same batch (the records already taken are ignored then).
    async fn relieve(&mut self) -> ConnectorResult<()> {
        let buffered = self.batcher.buffered();
        let closed = self.batcher.close_largest()?;
        self.early_closes.increment(closed as u64);
        tracing::debug!(bucket = %self.config.bucket, buffered, closed, budget = %self.config.memory_budget, "memory budget reached: uploading early");
        match self.land().await {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }

    /// Makes the S3 client and checks the bucket (creating it when configured).
    pub async fn connect(
        config: S3JsonConfig,
        ctx: &BuildContext,
        stats: Arc<SinkStats>,
    ) -> ConnectorResult<Self> {
        let batcher = ObjectBatcher::new(&config)?;
        let spool_dir = config.spool_dir();
        if let Err(error) = tempfile::tempfile_in(&spool_dir) {
            return Err(ConnectorError::fatal_caused_by(
                format!(
                    "`spool_dir` {} cannot hold the files of objects larger than `multipart_threshold`; create it, make it writable, or set `spool_dir` to another directory",
                    spool_dir.display()
                ),
                error,
            ));
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared);
        if shared.region().is_none() {
            builder = builder.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(endpoint) = config.endpoint() {
            builder = builder.endpoint_url(endpoint);
        }
        builder = builder.force_path_style(
            config
                .force_path_style
                .unwrap_or(config.endpoint().is_some()),
        );
        let client = Client::from_conf(builder.build());
        check_bucket(&client, &config).await?;
        let store = S3Store::new(client, config.bucket.clone(), config.conditional_writes)
            .with_metrics(&ctx.pipeline, &ctx.name)
            .with_part_size(config.part_size.0);
        let catalog = match &config.catalog {
            Some(catalog) => Some(GlueCatalog::connect(catalog.clone(), &config).await),
            None => None,
        };
        tracing::info!(pipeline = %ctx.pipeline, sink = %ctx.name, bucket = %config.bucket, endpoint = ?config.endpoint(), conditional_writes = ?config.conditional_writes, format = ?config.format, catalog = ?config.catalog.as_ref().map(|c| &c.database), "s3_json ready");
        Ok(Self {
            store,
            batcher,
            config,
            stats,
            catalog,
            early_closes: metrics::counter!(
                "sluice_s3_budget_closes_total",
                "pipeline" => ctx.pipeline.clone(),
                "sink" => ctx.name.clone()
            ),
        })
    }
}

async fn check_bucket(client: &Client, config: &S3JsonConfig) -> ConnectorResult<()> {
    let bucket = &config.bucket;
    let head = client.head_bucket().bucket(bucket).send().await;
    let Err(error) = head else { return Ok(()) };
    if status(&error) != Some(404) {
        return Err(classify(format!("cannot reach bucket `{bucket}`"), error));
    }
    if !config.create_bucket {
        return Err(ConnectorError::fatal(format!(
            "bucket `{bucket}` does not exist; create it or set `create_bucket: true`"
        )));
    }
    let mut create = client.create_bucket().bucket(bucket);
    let region = client.config().region().map(|r| r.as_ref().to_owned());
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => {
            tracing::info!(bucket = %bucket, "created bucket");
            Ok(())
        }
        Err(error) if matches!(error.code(), Some("BucketAlreadyOwnedByYou")) => Ok(()),
        // Another sink (another worker of the group) created it first: some
        // stores say so as `BucketAlreadyExists`; fine if we can reach it.
        Err(error)
            if matches!(error.code(), Some("BucketAlreadyExists"))
                && client.head_bucket().bucket(bucket).send().await.is_ok() =>
        {
            Ok(())
        }
        Err(error) => Err(classify(format!("cannot create bucket `{bucket}`"), error)),
    }
}

#[async_trait]
impl Sink for S3JsonSink {
    async fn assigned(&mut self, _partitions: &[TopicPartition]) -> ConnectorResult<()> {
        Ok(())
    }

    async fn write(&mut self, records: &[Record]) -> ConnectorResult<()> {
        let now = Instant::now();
        if let Some(catalog) = &mut self.catalog {
            catalog.observe(records);
        }
        for (index, record) in records.iter().enumerate() {
            self.batcher
                .append(record, now)
                .map_err(|e| e.at_record(index))?;
            if self.batcher.over_budget() {
                self.relieve().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self, mode: FlushMode) -> ConnectorResult<DurableOffsets> {
        self.batcher.close_due(mode, Instant::now())?;
        let error = self.land().await;
        // The catalog learns of every landed path before its offsets are
        // reported durable (the paths stay queued while Glue fails).
        if let Some(catalog) = &mut self.catalog {
            catalog.sync().await?;
        }
        match error {
            Some(error) => Err(error),
            None => Ok(self.batcher.durable_offsets()),
        }
    }

    async fn revoked(&mut self, partitions: &[TopicPartition]) -> ConnectorResult<()> {
        self.batcher.revoke(partitions);
        Ok(())
    }

    async fn close(&mut self) -> ConnectorResult<()> {
        self.batcher.clear();
        Ok(())
    }

    /// Now when closed objects wait for upload (a full object lands at
    /// once), else when the oldest open object reaches `rotate_interval`.
    fn due_at(&self) -> Option<Instant> {
        if self.batcher.has_queued() {
            Some(Instant::now())
        } else {
            self.batcher.due_at()
        }
    }

    /// JSON Lines objects take the values' JSON text as read from Kafka;
    /// Parquet needs every value decoded into columns.
    fn accepts_encoded_values(&self) -> bool {
        self.config.format == crate::config::Format::Json
    }
}

fn status<E>(error: &SdkError<E>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

/// 412: the key exists (`If-None-Match: *`).
fn precondition_failed<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    status(error) == Some(412) || error.code() == Some("PreconditionFailed")
}

/// Retriable: timeouts, connection failures, throttling (429, Glue's
/// `ThrottlingException`), 5xx (and Glue's `InternalServiceException`,
/// `OperationTimeoutException`), and concurrent changes (S3's 409
/// `ConditionalRequestConflict`, Glue's `ConcurrentModificationException`);
/// fatal: the rest. For any AWS SDK's errors (S3, Glue).
pub(crate) fn classify<E>(context: String, error: SdkError<E>) -> ConnectorError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = status(&error);
    let retriable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            status.is_some_and(|s| s >= 500 || s == 429 || s == 408)
                || matches!(
                    error.code(),
                    Some(
                        "ConditionalRequestConflict"
                            | "ThrottlingException"
                            | "ConcurrentModificationException"
                            | "InternalServiceException"
                            | "OperationTimeoutException"
                    )
                )
        }
        _ => false,
    };
    let detail = DisplayErrorContext(&error).to_string();
    let message = match (error.code(), status) {
        (Some(code), Some(status)) => format!("{context}: {code} (HTTP {status}): {detail}"),
        _ => format!("{context}: {detail}"),
    };
    if retriable {
        ConnectorError::retriable(message)
    } else {
        ConnectorError::fatal(message)
    }
}
