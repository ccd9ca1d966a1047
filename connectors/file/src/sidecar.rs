//! The sink's sidecar file, `<path>.offsets.json`: how much of the output
//! file is written for good, and which Kafka records that covers.
//!
//! ```json
//! {"version": 1, "length": 5123, "offsets": [{"topic": "lines", "partition": 0, "next_offset": 120}]}
//! ```
//!
//! The output file's first `length` bytes hold exactly the records before
//! each `next_offset`. The sidecar is replaced atomically (a temporary file,
//! synced, renamed over it, the folder synced), so after a crash it holds
//! either the state before a write or the state after it, never a mix.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use connect_core::TopicPartition;
use serde::{Deserialize, Serialize};

/// The sidecar format this code writes and reads.
const VERSION: u32 = 1;

/// What the sidecar records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// How many bytes of the output file are written for good.
    pub length: u64,
    /// Per topic partition, the offset after the last record in those bytes.
    pub offsets: BTreeMap<TopicPartition, i64>,
}

/// A sidecar that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// The file exists but could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The sidecar.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a sidecar this version understands.
    #[error("{path} is not a file sink offsets record ({reason}); it was changed outside Sluice: to start a new output file, delete it and the output file")]
    Invalid {
        /// The sidecar.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing, syncing or renaming failed.
    #[error("cannot record the written offsets in {path}")]
    Write {
        /// The sidecar.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    length: u64,
    offsets: Vec<PartitionOffset>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionOffset {
    topic: String,
    partition: i32,
    next_offset: i64,
}

/// The sidecar of the output file `path`: `<path>.offsets.json`.
pub fn path_for(output: &Path) -> PathBuf {
    let mut name = OsString::from(output.as_os_str());
    name.push(".offsets.json");
    PathBuf::from(name)
}

/// Reads the sidecar at `path`; `None` when there is none.
pub fn load(path: &Path) -> Result<Option<Recorded>, SidecarError> {
    let shown = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SidecarError::Read {
                path: shown,
                source,
            })
        }
    };
    let invalid = |reason: String| SidecarError::Invalid {
        path: shown.clone(),
        reason,
    };
    let on_disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if on_disk.version != VERSION {
        return Err(invalid(format!(
            "version {}, this Sluice reads version {VERSION}",
            on_disk.version
        )));
    }
    let mut offsets = BTreeMap::new();
    for entry in on_disk.offsets {
        if entry.next_offset < 0 {
            return Err(invalid(format!(
                "negative offset {} for {}/{}",
                entry.next_offset, entry.topic, entry.partition
            )));
        }
        let tp = TopicPartition {
            topic: entry.topic.into(),
            partition: entry.partition,
        };
        offsets.insert(tp, entry.next_offset);
    }
    Ok(Some(Recorded {
        length: on_disk.length,
        offsets,
    }))
}

/// Replaces the sidecar at `path` with `recorded`, atomically: a temporary
/// file next to it, renamed over it. With `sync`, the temporary file is
/// synced before the rename and the folder after it, so that the new state
/// survives a crash of the machine once this returns.
pub fn store(path: &Path, recorded: &Recorded, sync: bool) -> Result<(), SidecarError> {
    let on_disk = OnDisk {
        version: VERSION,
        length: recorded.length,
        offsets: recorded
            .offsets
            .iter()
            .map(|(tp, &next_offset)| PartitionOffset {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                next_offset,
            })
            .collect(),
    };
    let mut text = serde_json::to_vec(&on_disk).map_err(|e| SidecarError::Write {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    text.push(b'\n');
    let mut temporary = OsString::from(path.as_os_str());
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temporary)?;
        file.write_all(&text)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&temporary, path)?;
        if sync {
            let folder = match path.parent() {
                Some(folder) if !folder.as_os_str().is_empty() => folder,
                _ => Path::new("."),
            };
            File::open(folder)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|source| SidecarError::Write {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    #[test]
    fn a_stored_state_loads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path_for(&dir.path().join("out.txt"));
        assert!(path.ends_with("out.txt.offsets.json"));
        assert_eq!(load(&path).expect("load"), None);

        let recorded = Recorded {
            length: 1234,
            offsets: BTreeMap::from([(tp("lines", 0), 17), (tp("lines", 3), 5)]),
        };
        for sync in [true, false] {
            store(&path, &recorded, sync).expect("store");
            assert_eq!(load(&path).expect("load"), Some(recorded.clone()));
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "{\"version\":1,\"length\":1234,\"offsets\":[{\"topic\":\"lines\",\"partition\":0,\"next_offset\":17},\
             {\"topic\":\"lines\",\"partition\":3,\"next_offset\":5}]}\n"
        );
        assert!(
            !dir.path().join("out.txt.offsets.json.tmp").exists(),
            "the temporary file is renamed away"
        );
    }

    #[test]
    fn a_sidecar_changed_by_hand_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt.offsets.json");
        for (text, reason) in [
            ("not json", "expected ident"),
            (
                r#"{"version":2,"length":0,"offsets":[]}"#,
                "version 2, this Sluice reads version 1",
            ),
            (
                r#"{"version":1,"length":0,"offsets":[{"topic":"t","partition":0,"next_offset":-4}]}"#,
                "negative offset -4 for t/0",
            ),
            (
                r#"{"version":1,"length":0,"offsets":[],"extra":1}"#,
                "unknown field `extra`",
            ),
        ] {
            std::fs::write(&path, text).expect("write");
            let message = load(&path).expect_err(text).to_string();
            assert!(message.contains(reason), "{message}");
            assert!(
                message.contains("delete it and the output file"),
                "{message}"
            );
        }
    }
}
