//! Shared helpers of the integration tests: real Kafka and a real S3 server,
//! as started by `scripts/services.sh up` (their addresses come from the
//! environment or from `.services/env`).

#![allow(dead_code)]

pub mod glue;
pub mod sql;
pub mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::Client;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// Addresses and credentials of the running services.
#[derive(Debug, Clone)]
pub struct Services {
    pub kafka: String,
    pub s3_endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn dataset() -> PathBuf {
    repo_root().join("data/indexProcessed.csv")
}

impl Services {
    /// Reads the services' addresses; fails (never skips) when they are unknown.
    pub fn get() -> Services {
        let mut vars: BTreeMap<String, String> = std::env::vars().collect();
        if let Ok(text) = std::fs::read_to_string(repo_root().join(".services/env")) {
            for line in text.lines() {
                let line = line.trim().trim_start_matches("export ").trim();
                if let Some((k, v)) = line.split_once('=') {
                    vars.entry(k.to_owned())
                        .or_insert_with(|| v.trim_matches('"').trim_matches('\'').to_owned());
                }
            }
        }
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{k} is not set and .services/env has no value for it: run `scripts/services.sh up` first"))
        };
        Services {
            kafka: get("KAFKA_BOOTSTRAP"),
            s3_endpoint: get("S3_ENDPOINT"),
            access_key: get("AWS_ACCESS_KEY_ID"),
            secret_key: get("AWS_SECRET_ACCESS_KEY"),
            region: get("AWS_REGION"),
        }
    }

    /// `sluice` with the services' environment.
    pub fn sluice(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .env("KAFKA_BOOTSTRAP", &self.kafka)
            .env("S3_ENDPOINT", &self.s3_endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_REGION", &self.region)
            .env("SLUICE_LOG", "info");
        command
    }

    /// `sluice run <pipeline>` in the background, killed if the test ends
    /// before it exits.
    pub fn spawn_run(&self, pipeline: &Path) -> Running {
        Running(Some(
            self.sluice()
                .arg("run")
                .arg(pipeline)
                .spawn()
                .expect("spawn sluice run"),
        ))
    }

    pub async fn s3(&self) -> Client {
        let credentials = aws_sdk_s3::config::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "tests",
        );
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(self.region.clone()))
            .endpoint_url(&self.s3_endpoint)
            .force_path_style(true)
            .credentials_provider(credentials)
            .build();
        Client::from_conf(config)
    }

    /// Sum of the high watermarks of every partition of `topic`: records
    /// written to it. Retries for 30 s while partitions have no leader yet
    /// (just created, or the broker is restarting).
    pub fn topic_record_count(&self, topic: &str) -> i64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match self.try_topic_record_count(topic) {
                Ok(count) => return count,
                Err(error) if std::time::Instant::now() < deadline => {
                    eprintln!("watermarks of {topic}: {error}; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(error) => panic!("watermarks of {topic}: {error}"),
            }
        }
    }

    /// The committed offsets of consumer group `group` on partitions
    /// `0..partitions` of `topic` (partitions without one are left out).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut list = rdkafka::TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets")
            .elements()
            .iter()
            .filter_map(|e| Some((e.partition(), e.offset().to_raw().filter(|o| *o >= 0)?)))
            .collect()
    }

    /// Deletes consumer group `group` (retrying while its last member leaves).
    pub async fn delete_group(&self, group: &str) {
        use rdkafka::admin::{AdminClient, AdminOptions};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka)
            .create()
            .expect("admin client");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let results = admin
                .delete_groups(&[group], &AdminOptions::new())
                .await
                .expect("delete groups");
            match &results[0] {
                Ok(_) => return,
                Err((_, code)) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "cannot delete group {group}: {code:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    pub fn try_topic_record_count(&self, topic: &str) -> Result<i64, rdkafka::error::KafkaError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka)
            .set("group.id", "sluice-tests-watermarks")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut count = 0;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) =
                consumer.fetch_watermarks(topic, partition.id(), Duration::from_secs(10))?;
            count += high - low;
        }
        Ok(count)
    }
}

/// A name unique to this test run, usable as a topic and a bucket name.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `text` as a pipeline file in `dir`.
pub fn write_pipeline(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// A stock-market pipeline over the dataset with the given extra source keys.
pub fn stock_pipeline(name: &str, source_extra: &str, sink_extra: &str) -> String {
    format!(
        r#"name: {name}
topic:
  name: {name}
  partitions: 6
  replication_factor: 1
source:
  type: csv_replay
  path: {data}
  key_column: Index
{source_extra}
sinks:
  s3:
    type: s3_json
    bucket: {name}
    endpoint: ${{env:S3_ENDPOINT}}
    create_bucket: true
    flush_size: 10000
{sink_extra}
"#,
        data = dataset().display()
    )
}

/// Every object in `bucket` (following continuation tokens), key → text
/// (gunzipped when the key ends in `.gz`).
pub async fn read_bucket(client: &Client, bucket: &str) -> BTreeMap<String, String> {
    try_read_bucket(client, bucket)
        .await
        .expect("the bucket exists")
}

/// Like [`read_bucket`], but `None` while the bucket does not exist yet.
pub async fn try_read_bucket(client: &Client, bucket: &str) -> Option<BTreeMap<String, String>> {
    let mut objects = BTreeMap::new();
    let mut token = None;
    loop {
        let page = match client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.clone())
            .send()
            .await
        {
            Ok(page) => page,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_bucket()) =>
            {
                return None
            }
            Err(error) => panic!("list objects of {bucket}: {error:?}"),
        };
        for object in page.contents() {
            let key = object.key().expect("key").to_owned();
            let body = client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .expect("get object");
            let bytes = body.body.collect().await.expect("object body").into_bytes();
            let text = if key.ends_with(".gz") {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::MultiGzDecoder::new(bytes.as_ref()),
                    &mut text,
                )
                .expect("gzip object");
                text
            } else {
                String::from_utf8(bytes.to_vec()).expect("utf-8 object")
            };
            objects.insert(key, text);
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Some(objects)
}

/// A `sluice` child process, killed if the test ends before it exits.
pub struct Running(pub Option<std::process::Child>);

impl Running {
    /// Sends SIGTERM and waits (at most 90 s) for the exit status.
    pub fn sigterm_and_wait(mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("running child");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(exit) = child.try_wait().expect("wait") {
                return exit;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("sluice did not stop within 90 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The CSV as (header, rows of cell texts).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    csv_table(csv::Reader::from_path(path).expect("open csv"))
}

/// What `reader` holds as (header, rows of cell texts).
pub fn csv_table<R: std::io::Read>(mut reader: csv::Reader<R>) -> (Vec<String>, Vec<Vec<String>>) {
    let header = reader
        .headers()
        .expect("CSV header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("CSV row").iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Writes the dataset as one CSV file per index symbol (`<symbol>.csv`,
/// header and rows in file order) into `dir`; returns the symbols, sorted.
pub fn split_dataset_by_symbol(dir: &Path) -> Vec<String> {
    let (header, rows) = read_csv(&dataset());
    let mut writers: BTreeMap<String, csv::Writer<std::fs::File>> = BTreeMap::new();
    for row in &rows {
        let writer = writers.entry(row[0].clone()).or_insert_with(|| {
            let mut writer =
                csv::Writer::from_path(dir.join(format!("{}.csv", row[0]))).expect("csv file");
            writer.write_record(&header).expect("header");
            writer
        });
        writer.write_record(row).expect("row");
    }
    for writer in writers.values_mut() {
        writer.flush().expect("flush csv");
    }
    writers.into_keys().collect()
}

/// Runs a command, failing the test with its output if it does not exit 0.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output_within_limit().expect("run sluice");
    assert!(
        output.status.success(),
        "sluice failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The text of a JSON value as it appears in the object (numbers keep their text).
pub fn cell_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// How many times each row of the dataset is in `bucket`, in file order
/// (rows are told apart by index symbol and date).
pub async fn row_counts(services: &Services, bucket: &str) -> Vec<u32> {
    let (_, rows) = read_csv(&dataset());
    let index: BTreeMap<(String, String), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r[0].clone(), r[1].clone()), i))
        .collect();
    let mut counts = vec![0u32; rows.len()];
    for body in read_bucket(&services.s3().await, bucket).await.values() {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            counts[index[&(cell_text(&value["Index"]), cell_text(&value["Date"]))]] += 1;
        }
    }
    counts
}

/// (rows missing, extra copies) in row counts from [`row_counts`].
pub fn lost_and_repeated(counts: &[u32]) -> (usize, u32) {
    let lost = counts.iter().filter(|&&n| n == 0).count();
    let repeated = counts.iter().map(|&n| n.saturating_sub(1)).sum();
    (lost, repeated)
}

/// The last `lines` lines of the log file at `path` (empty when it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// A free TCP port on loopback (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Which service a [`PrivateService`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kafka,
    S3,
}

/// A Kafka broker or S3 server of one test's own, started by
/// `scripts/services.sh` in a temporary directory on free ports, so that the
/// test can stop and start it without disturbing the others. Purged on drop.
pub struct PrivateService {
    which: Service,
    dir: tempfile::TempDir,
    kafka_port: u16,
    controller_port: u16,
    s3_port: u16,
}

impl PrivateService {
    pub fn start(which: Service) -> PrivateService {
        let service = PrivateService {
            which,
            dir: tempfile::tempdir().expect("tempdir"),
            kafka_port: free_port(),
            controller_port: free_port(),
            s3_port: free_port(),
        };
        service.up();
        service
    }

    fn script(&self, args: &[&str]) -> Output {
        let name = match self.which {
            Service::Kafka => "kafka",
            Service::S3 => "s3",
        };
        Command::new(repo_root().join("scripts/services.sh"))
            .args(args)
            .arg(name)
            .env("SLUICE_SERVICES_DIR", self.dir.path())
            .env("SLUICE_KAFKA_PORT", self.kafka_port.to_string())
            .env(
                "SLUICE_KAFKA_CONTROLLER_PORT",
                self.controller_port.to_string(),
            )
            .env("SLUICE_S3_PORT", self.s3_port.to_string())
            .output_within_limit()
            .expect("run scripts/services.sh")
    }

    /// Starts the service (again) and waits until it answers.
    pub fn up(&self) {
        let output = self.script(&["up"]);
        assert!(
            output.status.success(),
            "services.sh up failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the service, keeping its data as a real restart would.
    pub fn down(&self) {
        let output = self.script(&["down"]);
        assert!(
            output.status.success(),
            "services.sh down failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `base` with this service in place of the shared one.
    pub fn services(&self, base: &Services) -> Services {
        let mut services = base.clone();
        match self.which {
            Service::Kafka => services.kafka = format!("127.0.0.1:{}", self.kafka_port),
            Service::S3 => services.s3_endpoint = format!("http://127.0.0.1:{}", self.s3_port),
        }
        services
    }
}

impl Drop for PrivateService {
    fn drop(&mut self) {
        let _ = self.script(&["down", "--purge"]);
    }
}

/// The SCRAM-SHA-512 user of [`SecureKafka`] (local test credentials only).
pub const SCRAM_USER: &str = "sluice-test";
/// That user's password.
pub const SCRAM_PASSWORD: &str = "scram-test-secret";

/// A private Kafka broker with two extra listeners besides PLAINTEXT: a
/// SASL_PLAINTEXT one (SCRAM-SHA-512, user [`SCRAM_USER`]) and an SSL one
/// whose CA, certificate and key are made with the `openssl` command, the
/// certificate naming 127.0.0.1 and localhost. Started once per test binary
/// by [`SecureKafka::shared`]; a watchdog process stops and purges it when
/// the test process exits, however it exits.
pub struct SecureKafka {
    /// `host:port` of the PLAINTEXT listener (for checks from the tests).
    pub plaintext: String,
    /// `host:port` of the SASL_PLAINTEXT (SCRAM-SHA-512) listener.
    pub sasl: String,
    /// `host:port` of the SSL listener.
    pub ssl: String,
    /// The CA certificate (PEM) that signed the broker's certificate.
    pub ca: PathBuf,
    /// Another CA's certificate, which did not.
    pub other_ca: PathBuf,
}

impl SecureKafka {
    /// The broker of this test binary, started on first use.
    pub fn shared() -> &'static SecureKafka {
        static BROKER: std::sync::OnceLock<SecureKafka> = std::sync::OnceLock::new();
        BROKER.get_or_init(SecureKafka::start)
    }

    fn start() -> SecureKafka {
        let dir = std::env::temp_dir().join(unique("sluice-secure-kafka"));
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).expect("create the broker's directory");
        let ca = make_ca(&tls, "ca", "Sluice test CA");
        let other_ca = make_ca(&tls, "other-ca", "Some other CA");
        make_server_cert(&tls, "broker", "ca");
        let ports = [free_port(), free_port(), free_port(), free_port()];
        let env = [
            ("SLUICE_SERVICES_DIR", dir.display().to_string()),
            ("SLUICE_KAFKA_PORT", ports[0].to_string()),
            ("SLUICE_KAFKA_CONTROLLER_PORT", ports[1].to_string()),
            ("SLUICE_KAFKA_SASL_PORT", ports[2].to_string()),
            ("SLUICE_KAFKA_SSL_PORT", ports[3].to_string()),
            (
                "SLUICE_KAFKA_SCRAM_USERS",
                format!("{SCRAM_USER}:{SCRAM_PASSWORD}"),
            ),
            (
                "SLUICE_KAFKA_SSL_KEY",
                tls.join("broker.key").display().to_string(),
            ),
            (
                "SLUICE_KAFKA_SSL_CERT",
                tls.join("broker.pem").display().to_string(),
            ),
            ("SLUICE_KAFKA_SSL_CA", ca.display().to_string()),
        ];
        let script = repo_root().join("scripts/services.sh");
        // The watchdog runs in its own process group, so a Ctrl-C of the
        // tests does not take it down with them before it cleaned up. It is
        // never waited for: it outlives this process on purpose.
        #[allow(clippy::zombie_processes)]
        std::os::unix::process::CommandExt::process_group(
            Command::new("bash")
                .arg("-c")
                .arg(r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" down kafka --purge; rm -rf "$3""#)
                .arg("secure-kafka-watchdog")
                .arg(std::process::id().to_string())
                .arg(&script)
                .arg(&dir)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
            0,
        )
        .spawn()
        .expect("spawn the broker's watchdog");
        let output = Command::new(&script)
            .args(["up", "kafka"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output_within_limit()
            .expect("run scripts/services.sh");
        assert!(
            output.status.success(),
            "services.sh up kafka with SASL and SSL listeners failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        SecureKafka {
            plaintext: format!("127.0.0.1:{}", ports[0]),
            sasl: format!("127.0.0.1:{}", ports[2]),
            ssl: format!("127.0.0.1:{}", ports[3]),
            ca,
            other_ca,
        }
    }
}

/// Runs `openssl` with `args` in `dir`, failing the test with its output.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output_within_limit()
        .expect("run openssl (is it installed?)");
    assert!(
        output.status.success(),
        "openssl {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A self-signed CA: `<name>.key` and `<name>.pem` in `dir`; returns the certificate's path.
fn make_ca(dir: &Path, name: &str, common_name: &str) -> PathBuf {
    let (key, cert, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={common_name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(cert)
}

/// A server certificate for 127.0.0.1 and localhost signed by CA `ca`:
/// `<name>.key` (PKCS#8, as Kafka's PEM keystore wants) and `<name>.pem`.
fn make_server_cert(dir: &Path, name: &str, ca: &str) {
    let (key, csr, cert, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write the extensions file");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ],
    );
    let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &cert,
            "-extfile",
            &ext,
        ],
    );
}

/// Longest a command run by a test may take (`SLUICE_TEST_COMMAND_TIMEOUT`
/// seconds, default 300): past it the test kills the command and fails with
/// its output, so a hang costs minutes and says where, instead of holding CI
/// until its time limit with nothing to show.
fn command_limit() -> Duration {
    let seconds = std::env::var("SLUICE_TEST_COMMAND_TIMEOUT")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(seconds)
}

/// `Command::output` with a time limit (see [`command_limit`]).
pub trait OutputWithinLimit {
    /// Runs the command to its end, stdout and stderr captured, stdin
    /// empty; panics with what it printed if it runs past the limit.
    fn output_within_limit(&mut self) -> std::io::Result<Output>;
}

impl OutputWithinLimit for Command {
    fn output_within_limit(&mut self) -> std::io::Result<Output> {
        use std::io::Read;
        use std::process::Stdio;

        fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        }

        let limit = command_limit();
        let mut child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                let text = |handle: std::thread::JoinHandle<Vec<u8>>| {
                    String::from_utf8_lossy(&handle.join().unwrap_or_default()).into_owned()
                };
                panic!(
                    "{self:?} did not finish within {} s (SLUICE_TEST_COMMAND_TIMEOUT); killed it\nstdout:\n{}\nstderr:\n{}",
                    limit.as_secs(),
                    text(stdout),
                    text(stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }
}
