//! The running services (as started by `scripts/services.sh up`) and clients for them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use connect_core::config::pipeline::KafkaConfig;

/// Addresses and credentials of the local broker and S3 server, and where
/// the Apache Kafka Connect jars are.
#[derive(Debug, Clone)]
pub struct Services {
    pub kafka: String,
    pub s3_endpoint: String,
    access_key: String,
    secret_key: String,
    region: String,
    /// `KAFKA_CONNECT_LIBS`: the Kafka Connect jars `scripts/services.sh up` fetched.
    pub connect_libs: Option<PathBuf>,
}

impl Services {
    /// Reads the environment, then `<root>/.services/env` for what it lacks.
    pub fn load(root: &Path) -> anyhow::Result<Services> {
        let mut vars: BTreeMap<String, String> = std::env::vars().collect();
        let env_file = root.join(".services/env");
        if let Ok(text) = std::fs::read_to_string(&env_file) {
            for line in text.lines() {
                let line = line.trim().trim_start_matches("export ").trim();
                if let Some((key, value)) = line.split_once('=') {
                    vars.entry(key.to_owned())
                        .or_insert_with(|| value.trim_matches('"').trim_matches('\'').to_owned());
                }
            }
        }
        let get = |key: &str| {
            vars.get(key).cloned().with_context(|| {
                format!(
                    "{key} is not set and {} has no value for it: run `scripts/services.sh up` first",
                    env_file.display()
                )
            })
        };
        Ok(Services {
            kafka: get("KAFKA_BOOTSTRAP")?,
            s3_endpoint: get("S3_ENDPOINT")?,
            access_key: get("AWS_ACCESS_KEY_ID")?,
            secret_key: get("AWS_SECRET_ACCESS_KEY")?,
            region: get("AWS_REGION")?,
            connect_libs: vars.get("KAFKA_CONNECT_LIBS").map(PathBuf::from),
        })
    }

    /// The pipeline-level Kafka settings of a pipeline that only names the
    /// bootstrap servers: what `sluice run` derives its clients from.
    pub fn kafka_config(&self) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: self.kafka.clone(),
            ..KafkaConfig::default()
        }
    }

    /// Passes the services' environment to a child process.
    pub fn apply_env(&self, command: &mut Command) {
        command
            .env("KAFKA_BOOTSTRAP", &self.kafka)
            .env("S3_ENDPOINT", &self.s3_endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_REGION", &self.region);
    }

    /// An S3 client for the local server (path-style, static credentials).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let credentials = aws_sdk_s3::config::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "sluice-bench",
        );
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(self.region.clone()))
            .endpoint_url(&self.s3_endpoint)
            .force_path_style(true)
            .credentials_provider(credentials)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}
