//! Hive-style partition columns detected from the keys under a table's location.
//!
//! The s3_json sink writes `<location>/<name>=<value>/.../<file>`
//! (`partition=3`, `index=NYA`, `year=2021/month=05`). The partition columns
//! are the leading `name=value` folders of the keys, the same for every
//! object; their values are percent-decoded as DataFusion decodes them when
//! it reads the files. A column is `Int64` when every value is an integer,
//! else `Utf8` (Hive's `__HIVE_DEFAULT_PARTITION__`, a missing value, makes it `Utf8`).

use std::fmt;

use connect_s3_json::partitioner::HIVE_DEFAULT_PARTITION;
use datafusion::arrow::datatypes::DataType;

/// A detected partition column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionColumn {
    /// The name in the key (`index` of `index=NYA`).
    pub name: String,
    /// `Int64` when every value is an integer, else `Utf8`.
    pub data_type: DataType,
}

/// Keys under one location that are not laid out alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError {
    /// A key and the partition names of its folders.
    pub first: (String, Vec<String>),
    /// Another key whose folders name other partitions.
    pub other: (String, Vec<String>),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |names: &[String]| {
            if names.is_empty() {
                "no partition folders".to_owned()
            } else {
                format!("partition folders ({})", names.join(", "))
            }
        };
        write!(
            f,
            "the objects are not partitioned alike: `{}` has {} but `{}` has {}; \
             point each --table at one layout (a deeper prefix)",
            self.first.0,
            names(&self.first.1),
            self.other.0,
            names(&self.other.1)
        )
    }
}

/// The `name=value` folders at the start of `segments` (the key's parts
/// after the table location, the file name last): (name, decoded value)
/// pairs, up to the first folder that is not `name=value` with a non-empty name.
pub fn partition_folders(segments: &[&str]) -> Vec<(String, String)> {
    let folders = segments
        .split_last()
        .map_or(&[][..], |(_, folders)| folders);
    folders
        .iter()
        .map_while(|folder| match folder.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                Some((name.to_owned(), percent_decode(value)))
            }
            _ => None,
        })
        .collect()
}

/// The partition columns of a table whose objects are at `keys`: each key
/// as (a display name, its parts after the table location). Every key must
/// have the same partition folders, in the same order.
pub fn detect<'a, I>(keys: I) -> Result<Vec<PartitionColumn>, LayoutError>
where
    I: IntoIterator<Item = (String, Vec<&'a str>)>,
{
    let mut first: Option<(String, Vec<String>)> = None;
    let mut integer: Vec<bool> = Vec::new();
    for (key, segments) in keys {
        let folders = partition_folders(&segments);
        let names: Vec<String> = folders.iter().map(|(name, _)| name.clone()).collect();
        match &first {
            None => {
                integer = vec![true; names.len()];
                first = Some((key, names));
            }
            Some((first_key, first_names)) => {
                if *first_names != names {
                    return Err(LayoutError {
                        first: (first_key.clone(), first_names.clone()),
                        other: (key, names),
                    });
                }
            }
        }
        for (is_integer, (_, value)) in integer.iter_mut().zip(&folders) {
            *is_integer = *is_integer && value != HIVE_DEFAULT_PARTITION && is_integer_text(value);
        }
    }
    let Some((first_key, names)) = first else {
        return Ok(Vec::new());
    };
    if let Some(name) = duplicate(&names) {
        return Err(LayoutError {
            first: (first_key.clone(), names.clone()),
            other: (
                first_key,
                vec![format!(
                    "`{name}` twice: a column cannot be partitioned twice"
                )],
            ),
        });
    }
    Ok(names
        .into_iter()
        .zip(integer)
        .map(|(name, is_integer)| PartitionColumn {
            name,
            data_type: if is_integer {
                DataType::Int64
            } else {
                DataType::Utf8
            },
        })
        .collect())
}

fn duplicate(names: &[String]) -> Option<&String> {
    names
        .iter()
        .enumerate()
        .find(|(i, name)| names[..*i].contains(name))
        .map(|(_, name)| name)
}

/// An optional `-` and 1 to 18 digits: certainly an `i64` (longer integers
/// stay text rather than risk an overflow when DataFusion parses the value).
fn is_integer_text(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Decodes `%XX` escapes (as Hive writes `/` as `%2F`); anything else,
/// including a malformed escape or a result that is not UTF-8, stays as it is.
pub fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(keys: &[&'static str]) -> Vec<(String, Vec<&'static str>)> {
        keys.iter()
            .map(|k| (k.to_string(), k.split('/').collect()))
            .collect()
    }

    fn columns(spec: &[(&str, DataType)]) -> Vec<PartitionColumn> {
        spec.iter()
            .map(|(name, data_type)| PartitionColumn {
                name: name.to_string(),
                data_type: data_type.clone(),
            })
            .collect()
    }

    #[test]
    fn kafka_partitioner_gives_an_integer_column() {
        let found = detect(keys(&[
            "partition=0/t+0+00000000000000000000.json",
            "partition=5/t+5+00000000000000010000.json",
        ]));
        assert_eq!(found, Ok(columns(&[("partition", DataType::Int64)])));
    }

    #[test]
    fn field_partitioner_gives_a_text_column() {
        let found = detect(keys(&[
            "index=NYA/t+1+00000000000000000000.json.gz",
            "index=000001.SS/t+2+00000000000000000000.json.gz",
            "index=399001/t+2+00000000000000000000.json.gz",
        ]));
        assert_eq!(found, Ok(columns(&[("index", DataType::Utf8)])));
    }

    #[test]
    fn time_partitioner_gives_several_columns_in_order() {
        let found = detect(keys(&[
            "year=2021/month=05/day=01/t+0+00000000000000000000.json",
            "year=2021/month=12/day=31/t+0+00000000000000000100.json",
        ]));
        assert_eq!(
            found,
            Ok(columns(&[
                ("year", DataType::Int64),
                ("month", DataType::Int64),
                ("day", DataType::Int64),
            ]))
        );
    }

    #[test]
    fn hive_default_partition_makes_the_column_text() {
        let found = detect(keys(&["n=1/a.json", "n=__HIVE_DEFAULT_PARTITION__/b.json"]));
        assert_eq!(found, Ok(columns(&[("n", DataType::Utf8)])));
    }

    #[test]
    fn integers_too_long_for_i64_stay_text() {
        let found = detect(keys(&["n=12345678901234567890/a.json", "n=-3/b.json"]));
        assert_eq!(found, Ok(columns(&[("n", DataType::Utf8)])));
        let found = detect(keys(&["n=-3/a.json", "n=007/b.json"]));
        assert_eq!(found, Ok(columns(&[("n", DataType::Int64)])));
        for not_integer in ["", "-", "+3", "1.5", "1e3", " 1"] {
            assert!(!is_integer_text(not_integer), "{not_integer:?}");
        }
    }

    #[test]
    fn no_folders_no_columns() {
        assert_eq!(detect(keys(&["a.json", "b.json.gz"])), Ok(vec![]));
        assert_eq!(detect(keys(&[])), Ok(vec![]));
    }

    #[test]
    fn partition_folders_stop_at_a_plain_folder() {
        assert_eq!(
            partition_folders(&["a=1", "plain", "b=2", "f.json"]),
            vec![("a".to_owned(), "1".to_owned())]
        );
        assert_eq!(partition_folders(&["=1", "f.json"]), vec![]);
        assert_eq!(
            partition_folders(&["a=", "f.json"]),
            vec![("a".to_owned(), String::new())]
        );
        // The value is everything after the first `=`.
        assert_eq!(
            partition_folders(&["expr=x=y", "f.json"]),
            vec![("expr".to_owned(), "x=y".to_owned())]
        );
        // The file name itself is never a partition folder.
        assert_eq!(partition_folders(&["a=1.json"]), vec![]);
    }

    #[test]
    fn different_layouts_are_an_error_naming_both_keys() {
        let error = detect(keys(&["index=NYA/a.json", "partition=1/b.json"])).unwrap_err();
        assert_eq!(error.first.0, "index=NYA/a.json");
        assert_eq!(error.other.0, "partition=1/b.json");
        let text = error.to_string();
        assert!(text.contains("partition folders (index)"), "{text}");
        assert!(text.contains("partition folders (partition)"), "{text}");
        let error = detect(keys(&["index=NYA/a.json", "b.json"])).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`b.json` has no partition folders"),
            "{error}"
        );
        let error = detect(keys(&["year=2021/month=1/a.json", "year=2021/b.json"])).unwrap_err();
        assert_eq!(error.other.1, vec!["year".to_owned()]);
    }

    #[test]
    fn a_column_twice_is_an_error() {
        let error = detect(keys(&["a=1/a=2/f.json"])).unwrap_err();
        assert!(error.to_string().contains("`a` twice"), "{error}");
    }

    #[test]
    fn values_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
        assert_eq!(percent_decode("%FF"), "%FF");
        assert_eq!(
            partition_folders(&["index=a%3Db", "f.json"]),
            vec![("index".to_owned(), "a=b".to_owned())]
        );
    }
}
