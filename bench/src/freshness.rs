//! P5 freshness: a replay paced at a fixed rate into an s3_json sink with a
//! 1 s rotation; per row, the time from its being read (its record
//! timestamp, set when csv_replay reads it) to its object first showing in
//! a bucket listing (polled every [`LIST_INTERVAL`]).
//!
//! Steady state only: the rows counted are those read during a window that
//! opens when the first object is listable (the sink is up) and lasts the
//! given seconds; the run goes on for [`TAIL`] after it, so that rows near
//! the window's end land as they would in a longer run, and is then stopped
//! with SIGTERM. A counted row whose object was not listable by then counts
//! with the time until then, a lower bound of its latency.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::context::{Bench, PARTITIONS};
use crate::data::Dataset;
use crate::kafka;
use crate::process::epoch_ms;
use crate::s3;
use crate::stats::percentile;

/// How often the bucket is listed.
const LIST_INTERVAL: Duration = Duration::from_millis(50);
/// How long the run goes on after the measured window.
const TAIL: Duration = Duration::from_secs(5);
/// The longest wait for the first object.
const FIRST_OBJECT_TIMEOUT: Duration = Duration::from_secs(120);
/// The sink's `rotate_interval`.
pub const ROTATE_INTERVAL: &str = "1s";

/// What P5 measured.
#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    /// Rows per second of the replay.
    pub rate_per_s: u64,
    /// Length of the measured window.
    pub seconds: u64,
    /// From spawning `sluice` to the first object being listable (start-up,
    /// not counted in the percentiles).
    pub first_object_ms: f64,
    /// Rows read in the window.
    pub rows: u64,
    /// Objects holding them.
    pub objects: u64,
    /// Rows of the window whose object was not listable when the run was stopped.
    pub rows_not_listed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub async fn run(
    bench: &Bench,
    dataset: &Dataset,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Freshness> {
    let name = bench.unique("p5");
    bench.created_topic(&name);
    bench.created_bucket(&name);
    let pipeline = format!(
        "name: {name}\n\
         topic:\n  name: {name}\n  partitions: {PARTITIONS}\n  replication_factor: 1\n\
         source:\n  type: csv_replay\n  path: {path}\n  key_column: Index\n  rate: {rate}/s\n  order: random\n  seed: 1\n  loop: true\n\
         sinks:\n  s3:\n    type: s3_json\n    bucket: {name}\n    endpoint: ${{env:S3_ENDPOINT}}\n    create_bucket: true\n    rotate_interval: {ROTATE_INTERVAL}\n",
        path = dataset.path.display()
    );
    tracing::info!(rate, seconds, bucket = %name, "P5: sluice run at a fixed rate");
    let s3 = bench.services.s3();
    let mut sluice = bench.start_sluice(&name, &pipeline)?;
    let mut seen: HashMap<String, f64> = HashMap::new();
    let mut window: Option<(f64, f64)> = None;
    let mut tick = tokio::time::interval(LIST_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped_at = loop {
        tick.tick().await;
        if sluice.has_exited() {
            sluice.wait(Duration::from_secs(1)).await?;
            bail!(
                "sluice ended during the measurement; last log lines:\n{}",
                sluice.log_tail(30)
            );
        }
        if let Some(objects) = s3::list(&s3, &name).await? {
            // When the listing returned: the object was listable by then.
            let now = epoch_ms();
            for object in objects {
                seen.entry(object.key).or_insert(now);
            }
            if window.is_none() && !seen.is_empty() {
                window = Some((now, now + seconds as f64 * 1000.0));
            }
        }
        let now = epoch_ms();
        match window {
            Some((_, end)) if now >= end + TAIL.as_secs_f64() * 1000.0 => break now,
            None if now - sluice.started_epoch_ms > FIRST_OBJECT_TIMEOUT.as_secs_f64() * 1000.0 => {
                bail!(
                    "no object in bucket {name} within {FIRST_OBJECT_TIMEOUT:?}; last log lines:\n{}",
                    sluice.log_tail(30)
                )
            }
            _ => {}
        }
    };
    let (window_start, window_end) = window.context("no window")?;
    sluice.terminate()?;
    sluice.wait_success(Duration::from_secs(90)).await?;

    let services = bench.services.clone();
    let topic = name.clone();
    let dump = tokio::task::spawn_blocking(move || {
        kafka::read_topic(&services, &topic, Duration::from_secs(120))
    })
    .await
    .context("the topic reader panicked")??;
    // The rows read in the window, by partition and offset; each gets its latency.
    let mut counted: BTreeMap<(i32, i64), (i64, Option<f64>)> = dump
        .records
        .iter()
        .filter(|r| (window_start..=window_end).contains(&(r.timestamp as f64)))
        .map(|r| ((r.partition, r.offset), (r.timestamp, None)))
        .collect();
    if counted.is_empty() {
        bail!("no row was read in the measured window");
    }
    let mut objects = 0;
    for (key, seen_ms) in &seen {
        let (partition, first) = object_start(key)
            .with_context(|| format!("unexpected object key {key} in bucket {name}"))?;
        let body = s3::get(&s3, &name, key).await?;
        let lines = body.iter().filter(|&&b| b == b'\n').count() as i64;
        let mut held = 0;
        for offset in first..first + lines {
            if let Some((read_ms, latency)) = counted.get_mut(&(partition, offset)) {
                *latency = Some(seen_ms - *read_ms as f64);
                held += 1;
            }
        }
        if held > 0 {
            objects += 1;
            tracing::debug!(%key, lines, held, seen_after_start_ms = seen_ms - sluice.started_epoch_ms, "P5 object");
        }
    }
    let rows_not_listed = counted.values().filter(|(_, l)| l.is_none()).count() as u64;
    let mut latencies: Vec<f64> = counted
        .values()
        .map(|&(read_ms, latency)| latency.unwrap_or(stopped_at - read_ms as f64))
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Freshness {
        rate_per_s: rate,
        seconds,
        first_object_ms: window_start - sluice.started_epoch_ms,
        rows: latencies.len() as u64,
        objects,
        rows_not_listed,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(0.0),
    })
}

/// The Kafka partition and first offset of an s3_json object key
/// (`.../<topic>+<partition>+<first offset>.json`).
fn object_start(key: &str) -> Option<(i32, i64)> {
    let file = key.rsplit('/').next()?.strip_suffix(".json")?;
    let mut parts = file.rsplitn(3, '+');
    let first = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    Some((partition, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_give_partition_and_first_offset() {
        assert_eq!(
            object_start("topics/t-1/partition=3/t-1+3+00000000000000010000.json"),
            Some((3, 10_000))
        );
        assert_eq!(object_start("topics/t/partition=3/t+3+x.json"), None);
        assert_eq!(object_start("topics/t/other.txt"), None);
    }
}
