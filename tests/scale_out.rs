//! Scale-out: several `sluice worker` processes with one group name share a
//! pipeline through Kafka's group machinery, against the real broker and S3
//! server. Three workers run the stock pipeline over the CSV split into one
//! file per index (13 files, 6 source tasks, a 6-partition topic, exactly
//! once): the pipeline created through worker A is visible on worker C;
//! tasks spread over all three; one worker is killed (SIGKILL) mid-run and
//! its tasks move to the others; a fourth worker joins and takes tasks from
//! the others without stopping those that stay; the bucket ends with every
//! row exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::worker::WorkerProcess;
use common::{lost_and_repeated, row_counts, split_dataset_by_symbol, unique, Services};
use serde_json::{json, Value};

async fn get(worker: &WorkerProcess, path: &str) -> Value {
    let response = worker
        .client
        .get(worker.url(path))
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

/// Source task name -> worker id, of the tasks that run now.
fn running_sources(status: &Value) -> BTreeMap<String, String> {
    status["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["type"] == "source" && t["state"] == "RUNNING")
        .map(|t| {
            (
                t["name"].as_str().expect("name").to_owned(),
                t["worker_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Polls the status on `worker` until `check` holds (or panics after `limit`).
async fn wait_status(
    worker: &WorkerProcess,
    name: &str,
    limit: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let status = get(worker, &format!("/connectors/{name}/status")).await;
        if check(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; last status {status:#}\nworker logs:\n{}",
            log_excerpts()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The folders of the workers' logs (A, B, C, D), for failure messages.
static LOG_DIRS: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// The task lines of every worker log.
fn log_excerpts() -> String {
    let dirs = LOG_DIRS.lock().map(|d| d.clone()).unwrap_or_default();
    dirs.iter()
        .enumerate()
        .flat_map(|(i, dir)| {
            let log = std::fs::read_to_string(dir.join("worker.log")).unwrap_or_default();
            log.lines()
                .filter(|l| {
                    l.contains("source task")
                        || l.contains("task-slot")
                        || l.contains("WARN")
                        || l.contains("ERROR")
                        || l.contains("sink finished")
                        || l.contains("position")
                })
                .map(|l| format!("[{}] {l}", ["A", "B", "C", "D"][i.min(3)]))
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The source tasks a worker log shows assigned and revoked in the time
/// window `[since, until)` (log timestamps, which sort as text).
fn task_events(log: &str, since: &str, until: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut assigned = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    for line in log.lines() {
        let Some(at) = line.get(..since.len()) else {
            continue;
        };
        if at < since || at >= until {
            continue;
        }
        if line.contains("source task assigned") {
            if let Some(task) = field(line, "task") {
                assigned.insert(task);
            }
        } else if line.contains("source tasks revoked and stopped") {
            if let Some(tasks) = field(line, "tasks") {
                for task in tasks.trim_matches(['[', ']']).split(", ") {
                    revoked.insert(task.to_owned());
                }
            }
        }
    }
    (assigned, revoked)
}

/// The timestamp of the first line of `log` containing `text`.
fn first_at(log: &str, text: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains(text))
        .map(|l| l.chars().take(27).collect())
}

/// The value of `name=` in a text log line.
fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &line[start..];
    let end = if rest.starts_with('[') {
        rest.find(']')? + 1
    } else {
        rest.find(' ').unwrap_or(rest.len())
    };
    Some(rest[..end].to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_share_tasks_fail_over_and_rebalance_incrementally() {
    let services = Services::get();
    let data = tempfile::tempdir().expect("tempdir");
    assert_eq!(split_dataset_by_symbol(data.path()).len(), 13);
    let group = unique("group");
    let settings = format!(
        "group: {group}\nconfig_topic: {group}-configs\nstatus_topic: {group}-status\nsession_timeout: 6s\n"
    );
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    if let Ok(mut log_dirs) = LOG_DIRS.lock() {
        *log_dirs = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    }
    let a = WorkerProcess::start(&services, dirs[0].path(), &settings).await;
    let b = WorkerProcess::start(&services, dirs[1].path(), &settings).await;
    let c = WorkerProcess::start(&services, dirs[2].path(), &settings).await;

    let name = unique("scale");
    let config = json!({
        "topic": {"name": name, "partitions": 6},
        "exactly_once": true,
        "source": {
            "type": "csv_replay",
            "path": data.path().display().to_string(),
            "key_column": "Index",
            "rate": "700/s",
            "max_tasks": 6,
        },
        "sinks": {"s3": {
            "type": "s3_json",
            "bucket": name,
            "endpoint": "${env:S3_ENDPOINT}",
            "create_bucket": true,
            "flush_size": 2000,
            "rotate_interval": "1s",
        }},
    });
    let response = a
        .client
        .post(a.url("/connectors"))
        .json(&json!({"name": name, "config": config}))
        .send()
        .await
        .expect("create");
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );

    // Written on A, visible on C (as soon as C has read the config topic).
    let written = Instant::now();
    loop {
        let listed = get(&c, "/connectors").await;
        if listed
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n == &json!(name)))
        {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(10),
            "the pipeline created on A is not listed on C: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "visible on C {:.0} ms after A answered",
        written.elapsed().as_secs_f64() * 1000.0
    );

    // Six source tasks over the three workers, and a sink task on each.
    let workers = [a.base.clone(), b.base.clone(), c.base.clone()];
    let ids: Vec<String> = workers
        .iter()
        .map(|b| b.trim_start_matches("http://").to_owned())
        .collect();
    // Usually seconds. On a loaded machine a task being moved can wait
    // up to 30 s to read the stored positions (while other tasks keep
    // transactions open on the offsets topic), and a stalled broker can
    // expire every session once more, so allow two rounds of that.
    let status = wait_status(
        &c,
        &name,
        Duration::from_secs(120),
        "tasks on all three workers",
        |s| {
            let sources = running_sources(s);
            let on: BTreeSet<&String> = sources.values().collect();
            let sinks: BTreeSet<&str> = s["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["type"] == "sink")
                .filter_map(|t| t["worker_id"].as_str())
                .collect();
            let mut per_worker: BTreeMap<&String, usize> = BTreeMap::new();
            for worker in sources.values() {
                *per_worker.entry(worker).or_default() += 1;
            }
            sources.len() == 6
                && on.len() == 3
                && sinks.len() == 3
                && per_worker.values().all(|&n| n == 2)
        },
    )
    .await;
    let balance: BTreeMap<String, usize> =
        running_sources(&status)
            .values()
            .fold(BTreeMap::new(), |mut m, w| {
                *m.entry(w.clone()).or_default() += 1;
                m
            });
    eprintln!("source tasks per worker: {balance:?}");
    assert!(
        balance.values().all(|&n| n == 2),
        "2 source tasks each: {balance:?}"
    );

    // kill -9 worker B mid-run: its tasks move to A and C.
    let killed = ids[1].clone();
    let on_b: BTreeSet<String> = running_sources(&status)
        .into_iter()
        .filter(|(_, w)| *w == killed)
        .map(|(t, _)| t)
        .collect();
    let started = Instant::now();
    b.kill();
    wait_status(
        &a,
        &name,
        Duration::from_secs(60),
        "B's tasks on A and C",
        |s| {
            let sources = running_sources(s);
            on_b.iter()
                .all(|t| sources.get(t).is_some_and(|w| *w != killed))
                || s["connector"]["state"] == "FINISHED"
        },
    )
    .await;
    let failover = started.elapsed();
    eprintln!("failover of {on_b:?} took {:.1}s", failover.as_secs_f64());
    // Its sink partitions move too (the sink group's session ends alike).
    wait_status(&a, &name, Duration::from_secs(60), "no task on B", |s| {
        s_tasks_on(s, &killed).is_empty()
    })
    .await;
    eprintln!(
        "B's sink partitions moved after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // A fourth worker joins: it takes tasks, and only the tasks it takes
    // were stopped on A and C.
    let d = WorkerProcess::start(&services, dirs[3].path(), &settings).await;
    let d_id = d.base.trim_start_matches("http://").to_owned();
    wait_status(&d, &name, Duration::from_secs(60), "tasks on D", |s| {
        running_sources(s).values().any(|w| *w == d_id) || s["connector"]["state"] == "FINISHED"
    })
    .await;

    // Every row lands once; then each worker's pipeline finishes.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let counts = row_counts(&services, &name).await;
        let (lost, repeated) = lost_and_repeated(&counts);
        assert_eq!(
            repeated,
            0,
            "rows in the bucket twice\nworker logs:\n{}",
            log_excerpts()
        );
        if lost == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{lost} rows missing\nworker logs:\n{}",
            log_excerpts()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for worker in [&a, &c, &d] {
        wait_status(worker, &name, Duration::from_secs(120), "FINISHED", |s| {
            s["connector"]["state"] == "FINISHED"
        })
        .await;
    }
    let counts = row_counts(&services, &name).await;
    assert_eq!(
        lost_and_repeated(&counts),
        (0, 0),
        "lost, repeated after finishing"
    );

    // Incremental: the rebalance that gave D its tasks (from D joining
    // until a second after its first assignment) stopped on A and C only
    // tasks that moved (to D, or from the busier of A and C to the other),
    // and not all of them.
    let logs: Vec<String> = dirs
        .iter()
        .map(|d| std::fs::read_to_string(d.path().join("worker.log")).unwrap_or_default())
        .collect();
    let since = first_at(&logs[3], "joined the task-slot group").expect("D joined");
    let first = first_at(&logs[3], "source task assigned").expect("D ran tasks");
    let until = {
        // One second after D's first assignment: same date and hour here.
        let seconds: f64 = first[17..26].parse().expect("seconds");
        let minutes: u32 = first[14..16].parse().expect("minutes");
        let total = minutes as f64 * 60.0 + seconds + 1.0;
        format!(
            "{}{:02}:{:09.6}",
            &first[..14],
            (total / 60.0) as u32 % 60,
            total % 60.0
        )
    };
    let (d_took, _) = task_events(&logs[3], &since, &until);
    let mut moved = d_took.clone();
    let mut stopped = BTreeSet::new();
    for log in [&logs[0], &logs[2]] {
        let (assigned, revoked) = task_events(log, &since, &until);
        moved.extend(assigned);
        stopped.extend(revoked);
    }
    eprintln!("D joined: stopped {stopped:?} on A and C, D took {d_took:?}, moved {moved:?}");
    assert!(!d_took.is_empty(), "D took tasks");
    // A member whose group session times out (the broker stalled: this
    // machine's disk once held its metadata log for seconds) loses every
    // task, as Kafka's protocol says; only a healthy rebalance is
    // incremental.
    let session_lost = [&logs[0], &logs[2]].iter().any(|log| {
        log.lines()
            .filter(|line| {
                line.get(..since.len())
                    .is_some_and(|at| at >= since.as_str() && at < until.as_str())
            })
            .any(|line| line.contains("SESSTMOUT"))
    });
    if session_lost {
        eprintln!("a group session timed out while D joined (a broker stall): every task of that worker was revoked, so the incremental check does not apply to this run");
    }
    assert!(
        session_lost ||
        stopped.is_subset(&moved) && stopped.len() < 6,
        "A and C stopped only tasks that moved: stopped {stopped:?}, moved {moved:?} ({since} to {until})\n{}",
        log_excerpts()
    );
    // Rebalances, revocation times and per-task records are in the
    // workers' metrics (A's and C's together: D's tasks came from them).
    let mut metrics = String::new();
    for worker in [&a, &c] {
        metrics += &worker
            .client
            .get(worker.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
    }
    let sample = |prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        sample(&format!(
            "sluice_rebalances_total{{pipeline=\"{name}\",group=\"tasks\""
        )) >= 2.0,
        "task-slot rebalances counted:\n{metrics}"
    );
    assert!(
        sample(&format!(
            "sluice_source_task_records_polled_total{{pipeline=\"{name}\",task=\"source-"
        )) > 0.0,
        "records per source task:\n{metrics}"
    );
    assert!(
        sample(&format!(
            "sluice_task_revoke_seconds_count{{pipeline=\"{name}\""
        )) >= 1.0,
        "how long revocations took:\n{metrics}"
    );
    for worker in [a, c, d] {
        worker.stop();
    }
}

/// Names of tasks the status shows on `worker`.
fn s_tasks_on(status: &Value, worker: &str) -> Vec<String> {
    status["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["worker_id"] == worker)
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}
