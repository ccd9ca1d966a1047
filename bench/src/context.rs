//! What every scenario shares: the services, the `sluice` binary, a work
//! folder, unique names, and the topics and buckets to remove at the end.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;

use crate::kafka;
use crate::process::Measured;
use crate::services::Services;

/// Partitions of every benchmark topic (as the flagship pipeline's).
pub const PARTITIONS: i32 = 6;

pub struct Bench {
    pub services: Services,
    /// The `sluice` binary under test.
    pub sluice: PathBuf,
    /// Pipelines, data sets and logs of this run.
    pub work: PathBuf,
    /// Records per object of the S3 sinks (Sluice's `flush_size` and the raw baseline's).
    pub flush_size: u64,
    run_id: String,
    counter: AtomicU32,
    topics: Mutex<Vec<String>>,
    buckets: Mutex<Vec<String>>,
}

impl Bench {
    pub fn new(services: Services, sluice: PathBuf, work: PathBuf, flush_size: u64) -> Bench {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Bench {
            services,
            sluice,
            work,
            flush_size,
            run_id: format!("{}-{}", std::process::id(), secs % 1_000_000),
            counter: AtomicU32::new(0),
            topics: Mutex::new(Vec::new()),
            buckets: Mutex::new(Vec::new()),
        }
    }

    /// A name unique to this run, usable as pipeline, topic, bucket and group name.
    pub fn unique(&self, scenario: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("sluice-bench-{}-{scenario}-{n}", self.run_id)
    }

    /// Notes a topic to delete at the end.
    pub fn created_topic(&self, topic: &str) {
        if let Ok(mut topics) = self.topics.lock() {
            topics.push(topic.to_owned());
        }
    }

    /// Notes a bucket to empty and delete at the end.
    pub fn created_bucket(&self, bucket: &str) {
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.push(bucket.to_owned());
        }
    }

    /// Writes `pipeline` to the work folder and starts `sluice run` on it,
    /// as a user runs it (no progress display, warnings only).
    pub fn start_sluice(&self, name: &str, pipeline: &str) -> anyhow::Result<Measured> {
        let file = self.work.join(format!("{name}.yaml"));
        std::fs::write(&file, pipeline)
            .with_context(|| format!("cannot write {}", file.display()))?;
        let mut command = Command::new(&self.sluice);
        command
            .arg("run")
            .arg("--no-progress")
            .arg(&file)
            .env("SLUICE_LOG", "warn");
        self.services.apply_env(&mut command);
        Measured::spawn(
            &format!("sluice run {name}"),
            command,
            &self.work.join(format!("{name}.log")),
        )
    }

    /// Deletes the topics and buckets this run made (best effort).
    pub async fn clean_up(&self) {
        let topics = self.topics.lock().map(|t| t.clone()).unwrap_or_default();
        kafka::delete_topics(&self.services, &topics).await;
        let buckets = self.buckets.lock().map(|b| b.clone()).unwrap_or_default();
        let s3 = self.services.s3();
        for bucket in buckets {
            if let Err(error) = delete_bucket(&s3, &bucket).await {
                tracing::warn!(%bucket, error = format!("{error:#}"), "benchmark bucket left behind");
            }
        }
    }
}

/// Generous time for a run over `rows` records: a minute, plus a second per 5,000 records.
pub fn timeout_for(rows: u64) -> Duration {
    Duration::from_secs(60 + rows / 5_000)
}

async fn delete_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    for object in crate::s3::list(s3, bucket).await?.unwrap_or_default() {
        s3.delete_object()
            .bucket(bucket)
            .key(&object.key)
            .send()
            .await
            .with_context(|| format!("cannot delete s3://{bucket}/{}", object.key))?;
    }
    s3.delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .with_context(|| format!("cannot delete bucket {bucket}"))?;
    Ok(())
}
