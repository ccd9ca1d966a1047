//! Where a table's objects are: `--table NAME=s3://bucket/prefix/` and
//! `--pipeline FILE` (the topic's folder of its s3_json sink), and how to
//! reach the bucket.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use connect_core::config::diagnostics::Diagnostics;
use connect_core::config::{de, node};
use connect_s3_json::S3JsonConfig;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, RetryConfig};

/// `s3://bucket/prefix/`: a bucket and a key prefix ending in `/` (or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix[/]]`.
    pub fn parse(url: &str) -> anyhow::Result<S3Location> {
        let Some(rest) = url.strip_prefix("s3://") else {
            bail!("`{url}` is not an S3 location: write s3://bucket/prefix/");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("`{url}` names no bucket: write s3://bucket/prefix/");
        }
        if let Some(bad) = bucket
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        {
            bail!("`{url}`: the bucket name `{bucket}` has the character {bad:?}, which bucket names cannot have");
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..") {
            bail!(
                "`{url}`: `.` and `..` are not folders in S3; write the prefix as the keys start"
            );
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }

    /// The location as a URL, ending in `/`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// How to reach a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Access {
    /// An S3-compatible server; AWS when `None`.
    pub endpoint: Option<String>,
    /// The region; from `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`, when `None`.
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted ones.
    pub path_style: bool,
}

impl S3Access {
    /// Access through `endpoint` (empty: AWS), path style for an endpoint.
    pub fn for_endpoint(endpoint: Option<String>) -> S3Access {
        let endpoint = endpoint.filter(|e| !e.trim().is_empty());
        S3Access {
            path_style: endpoint.is_some(),
            endpoint,
            region: None,
        }
    }

    /// `endpoint http://...` or `AWS S3`, for messages.
    pub fn describe(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("endpoint {endpoint}"),
            None => "AWS S3".to_owned(),
        }
    }

    /// An object store of `bucket`. Credentials and region come from the
    /// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION`, web identity, container or instance
    /// credentials); against an endpoint without `AWS_ACCESS_KEY_ID` the
    /// requests are unsigned (anonymous).
    pub fn store(&self, bucket: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                builder = builder.with_skip_signature(true);
            }
        }
        builder = builder.with_virtual_hosted_style_request(!self.path_style);
        let store = builder
            .build()
            .with_context(|| format!("S3 client for bucket `{bucket}` at {}", self.describe()))?;
        Ok(Arc::new(store))
    }
}

/// `--table NAME=s3://bucket/prefix/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableArg {
    pub name: String,
    pub location: S3Location,
}

/// Parses a `--table` value (clap's value parser).
pub fn parse_table_arg(text: &str) -> Result<TableArg, String> {
    let Some((name, url)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not NAME=s3://bucket/prefix/ (e.g. stocks=s3://stock-market/topics/stock-market/)"
        ));
    };
    let name = name.trim();
    check_table_name(name)?;
    let location = S3Location::parse(url.trim()).map_err(|e| e.to_string())?;
    Ok(TableArg {
        name: name.to_owned(),
        location,
    })
}

/// Table names: letters, digits, `_` and `-` (a name that is not a
/// lower-case SQL identifier is written in double quotes in the query).
pub fn check_table_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the table name before `=` is empty".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Err(format!(
            "table name `{name}` has the character {bad:?}; use letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// A table read from a pipeline file: named after its topic, over its
/// s3_json sink's `<bucket>/<prefix>/<topic>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineTable {
    pub name: String,
    pub location: S3Location,
    pub access: S3Access,
}

/// The table of the pipeline file `path` (validated as `sluice validate`
/// does, `${env:...}` resolved). Its endpoint is the sink's (`None`: AWS),
/// unless `endpoint` overrides it.
pub fn pipeline_table(path: &Path, endpoint: Option<&str>) -> anyhow::Result<PipelineTable> {
    let pipeline = connect_core::config::load_pipeline_file(path).map_err(|errors| {
        anyhow::anyhow!(
            "{}\nthe pipeline file is invalid (`sluice validate {}` shows the same)",
            connect_core::secrets::redact(&errors.to_string()),
            path.display()
        )
    })?;
    let sinks: Vec<&str> = pipeline
        .sinks
        .iter()
        .filter(|s| s.type_name == "s3_json")
        .map(|s| s.name.as_str())
        .collect();
    let sink = match sinks.as_slice() {
        [sink] => *sink,
        [] => bail!(
            "pipeline `{}` ({}) has no s3_json sink to query; use --table NAME=s3://bucket/prefix/",
            pipeline.name,
            path.display()
        ),
        several => bail!(
            "pipeline `{}` ({}) has several s3_json sinks ({}); query one with --table NAME=s3://bucket/prefix/topic/",
            pipeline.name,
            path.display(),
            several.join(", ")
        ),
    };
    // The validated pipeline keeps the sink's config behind a trait object:
    // read the same section again, with the same interpolation.
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the pipeline file {}", path.display()))?;
    let diags = Diagnostics::new(path.display().to_string());
    let config = node::parse_document(&text, &diags)
        .and_then(|root| {
            let section = root
                .get("sinks")?
                .get(sink)?
                .without_keys(&["type", "transforms"]);
            de::from_node::<S3JsonConfig>(&section, &diags)
        })
        .with_context(|| {
            format!(
                "read sink `{sink}` of {}: {}",
                path.display(),
                connect_core::secrets::redact(
                    &connect_core::config::ConfigErrors(diags.into_sorted()).to_string()
                )
            )
        })?;
    let location = S3Location::parse(&format!(
        "s3://{}/{}/{}/",
        config.bucket,
        config.prefix.trim_matches('/'),
        pipeline.topic.name
    ))
    .with_context(|| format!("sink `{sink}` of {}", path.display()))?;
    let sink_endpoint = config.endpoint.clone().filter(|e| !e.trim().is_empty());
    let mut access = S3Access::for_endpoint(endpoint.map(str::to_owned).or(sink_endpoint));
    if let Some(force_path_style) = config.force_path_style {
        access.path_style = force_path_style;
    }
    access.region = config.region.clone();
    Ok(PipelineTable {
        name: pipeline.topic.name.clone(),
        location,
        access,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_end_in_a_slash() {
        let location = S3Location::parse("s3://stock-market/topics/stock-market").expect("url");
        assert_eq!(location.bucket, "stock-market");
        assert_eq!(location.prefix, "topics/stock-market/");
        assert_eq!(location.url(), "s3://stock-market/topics/stock-market/");
        let same = S3Location::parse("s3://stock-market/topics/stock-market/").expect("url");
        assert_eq!(same, location);
        let bucket = S3Location::parse("s3://b").expect("url");
        assert_eq!(
            (bucket.prefix.as_str(), bucket.url()),
            ("", "s3://b/".to_owned())
        );
        assert_eq!(S3Location::parse("s3://b/").expect("url"), bucket);
    }

    #[test]
    fn bad_locations_say_what_to_write() {
        for (url, says) in [
            ("http://b/p", "not an S3 location"),
            ("b/p", "not an S3 location"),
            ("s3:///p", "names no bucket"),
            ("s3://b b/p", "has the character ' '"),
            ("s3://b/../p", "`.` and `..`"),
        ] {
            let error = S3Location::parse(url).unwrap_err().to_string();
            assert!(error.contains(says), "{url}: {error}");
        }
    }

    #[test]
    fn table_args() {
        let table = parse_table_arg("stocks=s3://stock-market/topics/stock-market/").expect("arg");
        assert_eq!(table.name, "stocks");
        assert_eq!(table.location.bucket, "stock-market");
        assert_eq!(table.location.prefix, "topics/stock-market/");
        let table = parse_table_arg("stock-market=s3://b").expect("arg");
        assert_eq!(table.name, "stock-market");
        for (arg, says) in [
            ("s3://b/p", "is not NAME=s3://bucket/prefix/"),
            ("=s3://b/p", "the table name before `=` is empty"),
            ("my.table=s3://b/p", "has the character '.'"),
            ("t=/tmp/x", "not an S3 location"),
        ] {
            let error = parse_table_arg(arg).unwrap_err();
            assert!(error.contains(says), "{arg}: {error}");
        }
    }

    #[test]
    fn access_for_an_endpoint_is_path_style() {
        let access = S3Access::for_endpoint(Some("http://127.0.0.1:9000".to_owned()));
        assert!(access.path_style);
        assert_eq!(access.describe(), "endpoint http://127.0.0.1:9000");
        let aws = S3Access::for_endpoint(Some("  ".to_owned()));
        assert_eq!(aws, S3Access::default());
        assert_eq!(aws.describe(), "AWS S3");
    }

    fn pipeline_file(dir: &Path, sinks: &str) -> std::path::PathBuf {
        let path = dir.join("p.yaml");
        std::fs::write(
            &path,
            format!(
                "name: p\ntopic:\n  name: stock-market\nsinks:\n{sinks}",
                sinks = sinks
            ),
        )
        .expect("write pipeline");
        path
    }

    #[test]
    fn a_pipeline_gives_its_topic_folder_and_the_sink_endpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = pipeline_file(
            dir.path(),
            "  s3:\n    type: s3_json\n    bucket: stocks\n    prefix: data/raw/\n    endpoint: http://127.0.0.1:9999\n    region: eu-west-1\n",
        );
        let table = pipeline_table(&path, None).expect("table");
        assert_eq!(table.name, "stock-market");
        assert_eq!(table.location.url(), "s3://stocks/data/raw/stock-market/");
        assert_eq!(
            table.access,
            S3Access {
                endpoint: Some("http://127.0.0.1:9999".to_owned()),
                region: Some("eu-west-1".to_owned()),
                path_style: true,
            }
        );
        let table = pipeline_table(&path, Some("http://other:9000")).expect("table");
        assert_eq!(table.access.endpoint.as_deref(), Some("http://other:9000"));
    }

    #[test]
    fn a_pipeline_on_aws_with_the_default_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = pipeline_file(dir.path(), "  s3:\n    type: s3_json\n    bucket: stocks\n");
        let table = pipeline_table(&path, None).expect("table");
        assert_eq!(table.location.url(), "s3://stocks/topics/stock-market/");
        assert_eq!(table.access, S3Access::default());
    }

    #[test]
    fn a_pipeline_without_one_s3_json_sink_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let two = pipeline_file(
            dir.path(),
            "  a:\n    type: s3_json\n    bucket: xxx\n  b:\n    type: s3_json\n    bucket: yyy\n",
        );
        let error = pipeline_table(&two, None).unwrap_err().to_string();
        assert!(error.contains("several s3_json sinks (a, b)"), "{error}");
        let invalid = pipeline_file(dir.path(), "  a:\n    type: s3_json\n    bukket: x\n");
        let error = format!("{:#}", pipeline_table(&invalid, None).unwrap_err());
        assert!(error.contains("bukket"), "{error}");
        assert!(error.contains("the pipeline file is invalid"), "{error}");
    }
}
