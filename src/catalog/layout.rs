//! The layout of a table's objects: which keys under the table's location
//! are data, which folders are partitions (`index=NYA/`, `partition=3/`,
//! `year=2021/month=05/`), what type each partition column has, and which
//! objects a bounded sample reads.
//!
//! Partition columns come from the folders between the table's location and
//! the objects, in path order. A Hive-style folder `name=value` gives column
//! `name`, its value Hive-unescaped (`a%2Fb` is `a/b`), as Hive, Athena and
//! Glue read it. A folder without `=` gives a positional column
//! `partition_<i>` (`i` its depth), as a Glue crawler names them.
//!
//! A partition column's type is `int` when every value is an integer that
//! fits 32 bits, `bigint` when every value fits 64 bits, else `string`
//! (unlike the data columns, every partition value is known: the crawl lists
//! every key). Zero-padded integers (`month=05`) are integers when every
//! value has the same number of digits (the width is kept for partition
//! projection); integers padded to different widths are strings, since the
//! folder could not be rebuilt from the number. `__HIVE_DEFAULT_PARTITION__`
//! (the folder of a null value) makes a column `string`.

use std::collections::BTreeMap;

/// One object listed under the table's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a listed key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// JSON Lines, plain (`.json`, `.jsonl`, `.ndjson`).
    Json,
    /// JSON Lines, gzip-compressed (the same names with `.gz`).
    JsonGzip,
    /// Apache Parquet (`.parquet`), as the s3_json sink writes with `format: parquet`.
    Parquet,
    /// A hidden file (`_SUCCESS`, `.tmp`, anything under such a folder) or a
    /// folder marker (ends in `/`): Athena skips these too.
    Hidden,
    /// Anything else: not read by the crawl, but Athena would read it.
    Other,
}

/// Classifies `relative`, a key relative to the table's location.
pub fn key_kind(relative: &str) -> KeyKind {
    if relative.is_empty() || relative.ends_with('/') {
        return KeyKind::Hidden;
    }
    if relative
        .split('/')
        .any(|segment| segment.starts_with('_') || segment.starts_with('.'))
    {
        return KeyKind::Hidden;
    }
    let file = relative.rsplit('/').next().unwrap_or(relative);
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".parquet") {
        return KeyKind::Parquet;
    }
    let (stem, gzip) = match lower.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (lower.as_str(), false),
    };
    if [".json", ".jsonl", ".ndjson"]
        .iter()
        .any(|ext| stem.ends_with(ext))
    {
        if gzip {
            KeyKind::JsonGzip
        } else {
            KeyKind::Json
        }
    } else {
        KeyKind::Other
    }
}

/// Decodes Hive's escaping of partition path names and values (`%XX`),
/// the inverse of the s3_json sink's escaping.
pub use connect_s3_json::partitioner::unescape_path_value as hive_unescape;

/// One folder level of the key: a Hive `name=value` or a bare value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    /// The name as written in the key (`None` for a positional folder).
    name: Option<String>,
    /// The value as written in the key (escaped).
    raw_value: String,
}

fn parse_segment(segment: &str) -> Segment {
    match segment.split_once('=') {
        Some((name, value)) if !name.is_empty() => Segment {
            name: Some(name.to_owned()),
            raw_value: value.to_owned(),
        },
        _ => Segment {
            name: None,
            raw_value: segment.to_owned(),
        },
    }
}

/// The type of a partition column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionType {
    /// Every value an integer that fits 32 bits.
    Int,
    /// Every value an integer that fits 64 bits.
    BigInt,
    /// Anything else.
    String,
}

impl PartitionType {
    /// The Hive type name.
    pub fn hive(self) -> &'static str {
        match self {
            PartitionType::Int => "int",
            PartitionType::BigInt => "bigint",
            PartitionType::String => "string",
        }
    }
}

/// A partition column found in the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionColumn {
    /// The name in the folder as written (`index` of `index=NYA`), or
    /// `partition_<i>` for a folder without `=`.
    pub name: String,
    /// Whether folders are `name=value` (else the folder is the value).
    pub hive_style: bool,
    /// The type every value fits.
    pub ty: PartitionType,
    /// For zero-padded integers (`05`): the number of digits of every value.
    pub digits: Option<usize>,
}

/// One partition: a folder holding data objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The value of each partition column, unescaped, in column order.
    pub values: Vec<String>,
    /// The folder relative to the table location, with a trailing `/`
    /// (`index=NYA/`; empty for an unpartitioned table).
    pub folder: String,
    /// Data objects in it.
    pub objects: usize,
    /// Their total size.
    pub bytes: u64,
}

/// What the data objects of a table hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DataFormat {
    /// JSON Lines (plain or gzip).
    #[default]
    Json,
    /// Apache Parquet.
    Parquet,
}

impl DataFormat {
    /// `JSON Lines` / `Parquet`, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            DataFormat::Json => "JSON Lines",
            DataFormat::Parquet => "Parquet",
        }
    }
}

/// A data object and the partition it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataObject {
    /// The full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it is gzip-compressed (by its name).
    pub gzip: bool,
    /// Index into [`Layout::partitions`].
    pub partition: usize,
}

/// What the listing says about the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// What every data object holds (one format a table).
    pub format: DataFormat,
    /// The partition columns in path order.
    pub columns: Vec<PartitionColumn>,
    /// Every partition, sorted by folder.
    pub partitions: Vec<Partition>,
    /// Every data object, sorted by key.
    pub objects: Vec<DataObject>,
    /// Keys that are neither data nor hidden (Athena would read them).
    pub other_keys: Vec<String>,
    /// Hidden keys skipped.
    pub hidden: usize,
}

impl Layout {
    /// Total bytes of the data objects.
    pub fn bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }
}

/// Works out the layout from a listing of the keys under `root` (the table
/// location's key prefix, ending in `/`, or empty for a bucket's root).
/// Fails when the folders are not one partition scheme (different depths or
/// names), or when JSON Lines and Parquet objects are mixed, saying which
/// keys disagree.
pub fn analyze(root: &str, listed: &[Listed]) -> Result<Layout, String> {
    let mut objects: Vec<(Vec<Segment>, DataObject, String)> = Vec::new();
    let mut other_keys = Vec::new();
    let mut hidden = 0;
    // The first key (in key order) of each format.
    let mut first_json: Option<&str> = None;
    let mut first_parquet: Option<&str> = None;
    for item in listed {
        let Some(relative) = item.key.strip_prefix(root) else {
            continue;
        };
        let kind = key_kind(relative);
        let first = match kind {
            KeyKind::Json | KeyKind::JsonGzip => Some(&mut first_json),
            KeyKind::Parquet => Some(&mut first_parquet),
            KeyKind::Hidden | KeyKind::Other => None,
        };
        if let Some(first) = first {
            if first.is_none_or(|key| item.key.as_str() < key) {
                *first = Some(item.key.as_str());
            }
        }
        let gzip = match kind {
            KeyKind::Json | KeyKind::Parquet => false,
            KeyKind::JsonGzip => true,
            KeyKind::Hidden => {
                hidden += 1;
                continue;
            }
            KeyKind::Other => {
                other_keys.push(item.key.clone());
                continue;
            }
        };
        let (folder, _file) = relative.rsplit_once('/').unwrap_or(("", relative));
        let segments: Vec<Segment> = if folder.is_empty() {
            Vec::new()
        } else {
            folder.split('/').map(parse_segment).collect()
        };
        let folder = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        objects.push((
            segments,
            DataObject {
                key: item.key.clone(),
                size: item.size,
                gzip,
                partition: 0,
            },
            folder,
        ));
    }
    let format = match (first_json, first_parquet) {
        (Some(json), Some(parquet)) => {
            return Err(format!(
                "the location mixes JSON Lines objects (e.g. `{json}`) and Parquet objects (e.g. `{parquet}`); \
                 a table has one format: crawl a prefix holding one of them (give each sink its own prefix or bucket)"
            ));
        }
        (None, Some(_)) => DataFormat::Parquet,
        _ => DataFormat::Json,
    };
    objects.sort_by(|a, b| a.1.key.cmp(&b.1.key));

    // One scheme: the same depth, and at each depth the same name (or none).
    let mut scheme: Option<(Vec<Option<String>>, String)> = None;
    for (segments, object, _) in &objects {
        let names: Vec<Option<String>> = segments.iter().map(|s| s.name.clone()).collect();
        match &scheme {
            None => scheme = Some((names, object.key.clone())),
            Some((expected, example)) if *expected != names => {
                return Err(format!(
                    "the objects are not laid out as one table: `{example}` is in folders {} but `{}` in {}; \
                     crawl a prefix holding one partition scheme (e.g. one topic's folder)",
                    describe_scheme(expected),
                    object.key,
                    describe_scheme(&names)
                ));
            }
            Some(_) => {}
        }
    }
    let names = scheme.map(|(names, _)| names).unwrap_or_default();

    let mut by_folder: BTreeMap<String, Partition> = BTreeMap::new();
    for (segments, object, folder) in &objects {
        let partition = by_folder
            .entry(folder.clone())
            .or_insert_with(|| Partition {
                values: segments
                    .iter()
                    .map(|s| hive_unescape(&s.raw_value))
                    .collect(),
                folder: folder.clone(),
                objects: 0,
                bytes: 0,
            });
        partition.objects += 1;
        partition.bytes += object.size;
    }
    let partitions: Vec<Partition> = by_folder.into_values().collect();
    let index: BTreeMap<&str, usize> = partitions
        .iter()
        .enumerate()
        .map(|(i, p)| (p.folder.as_str(), i))
        .collect();
    let objects: Vec<DataObject> = objects
        .iter()
        .map(|(_, object, folder)| DataObject {
            partition: index[folder.as_str()],
            ..object.clone()
        })
        .collect();

    let columns = names
        .iter()
        .enumerate()
        .map(|(depth, name)| {
            let values: Vec<&str> = partitions
                .iter()
                .map(|p| p.values[depth].as_str())
                .collect();
            let (ty, digits) = partition_type(&values);
            PartitionColumn {
                name: match name {
                    Some(name) => hive_unescape(name),
                    None => format!("partition_{depth}"),
                },
                hive_style: name.is_some(),
                ty,
                digits,
            }
        })
        .collect();
    Ok(Layout {
        format,
        columns,
        partitions,
        objects,
        other_keys,
        hidden,
    })
}

fn describe_scheme(names: &[Option<String>]) -> String {
    if names.is_empty() {
        return "none (directly under the location)".to_owned();
    }
    names
        .iter()
        .map(|n| match n {
            Some(name) => format!("`{name}=…/`"),
            None => "`…/`".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The type of a partition column from all its values, and the digits of
/// zero-padded integers.
pub fn partition_type(values: &[&str]) -> (PartitionType, Option<usize>) {
    let mut fits_int = true;
    let mut padded = false;
    let mut widths = std::collections::BTreeSet::new();
    for value in values {
        let digits = value.strip_prefix('-').unwrap_or(value);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return (PartitionType::String, None);
        }
        let Ok(number) = value.parse::<i64>() else {
            return (PartitionType::String, None);
        };
        fits_int &= i32::try_from(number).is_ok();
        padded |= digits.len() > 1 && digits.starts_with('0');
        widths.insert(value.len());
    }
    if values.is_empty() {
        return (PartitionType::String, None);
    }
    let digits = if padded {
        if widths.len() != 1 || values.iter().any(|v| v.starts_with('-')) {
            return (PartitionType::String, None);
        }
        widths.into_iter().next()
    } else {
        None
    };
    let ty = if fits_int {
        PartitionType::Int
    } else {
        PartitionType::BigInt
    };
    (ty, digits)
}

/// Which objects to read: at most `limit`, spread evenly over the
/// partitions (each partition gets an equal share; a partition with fewer
/// objects than its share leaves the rest to the others), and within a
/// partition spread over its objects in key order (the first and the last
/// always among them, the last alone when only one is read). Returns
/// indexes into `layout.objects`, in key order.
pub fn sample(layout: &Layout, limit: usize) -> Vec<usize> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); layout.partitions.len()];
    for (i, object) in layout.objects.iter().enumerate() {
        members[object.partition].push(i);
    }
    // Water-filling: smallest partitions first, each takes min(size, fair share).
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&p| (members[p].len(), p));
    let mut quota = vec![0usize; members.len()];
    let mut left = limit;
    for (position, &p) in order.iter().enumerate() {
        let share = left / (order.len() - position);
        quota[p] = members[p].len().min(share);
        left -= quota[p];
    }
    // The largest partition took what was left unless it ran out: then
    // every partition is read whole, and nothing remains to hand out.
    debug_assert!(left == 0 || quota.iter().zip(&members).all(|(q, m)| *q == m.len()));
    let mut chosen = Vec::new();
    for (p, list) in members.iter().enumerate() {
        chosen.extend(spread(list.len(), quota[p]).into_iter().map(|i| list[i]));
    }
    chosen.sort_unstable();
    chosen
}

/// `k` indexes of `0..n` spread evenly: the first and the last among them
/// (the last alone when `k` is 1).
fn spread(n: usize, k: usize) -> Vec<usize> {
    match k {
        0 => Vec::new(),
        _ if k >= n => (0..n).collect(),
        1 => vec![n - 1],
        _ => (0..k).map(|i| i * (n - 1) / (k - 1)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_s3_json::partitioner::HIVE_DEFAULT_PARTITION;

    fn listed(keys: &[&str]) -> Vec<Listed> {
        keys.iter()
            .map(|k| Listed {
                key: (*k).to_owned(),
                size: 10,
            })
            .collect()
    }

    #[test]
    fn keys_are_data_hidden_or_other() {
        assert_eq!(
            key_kind("partition=0/t+0+00000000000000000000.json"),
            KeyKind::Json
        );
        assert_eq!(key_kind("a/b.json.gz"), KeyKind::JsonGzip);
        assert_eq!(key_kind("a/b.JSONL"), KeyKind::Json);
        assert_eq!(key_kind("a/b.ndjson.gz"), KeyKind::JsonGzip);
        assert_eq!(key_kind("_SUCCESS"), KeyKind::Hidden);
        assert_eq!(key_kind("a/.tmp/x.json"), KeyKind::Hidden);
        assert_eq!(key_kind("a/_temporary/x.json"), KeyKind::Hidden);
        assert_eq!(key_kind("a/"), KeyKind::Hidden);
        assert_eq!(key_kind("a/b.csv"), KeyKind::Other);
        assert_eq!(
            key_kind("partition=0/t+0+00000000000000000000.parquet"),
            KeyKind::Parquet
        );
        assert_eq!(key_kind("a/b.snappy.PARQUET"), KeyKind::Parquet);
        assert_eq!(key_kind("a/_tmp/b.parquet"), KeyKind::Hidden);
        assert_eq!(key_kind("a/b.parquet.gz"), KeyKind::Other);
        assert_eq!(key_kind("a/b.gz"), KeyKind::Other);
    }

    #[test]
    fn hive_unescape_decodes_percent_escapes() {
        assert_eq!(hive_unescape("a%2Fb"), "a/b");
        assert_eq!(hive_unescape("a%2fb"), "a/b");
        assert_eq!(hive_unescape("%3D%25"), "=%");
        assert_eq!(hive_unescape("100%"), "100%");
        assert_eq!(hive_unescape("%zz%4"), "%zz%4");
        assert_eq!(hive_unescape("%C3%A9t%C3%A9"), "été");
        assert_eq!(hive_unescape("NYA"), "NYA");
        assert_eq!(hive_unescape("000001.SS"), "000001.SS");
    }

    #[test]
    fn the_escaping_of_the_sink_round_trips() {
        for value in ["a/b", "x=y", "50%", "O'Reilly", "{}[]^|`<>", "été", "a b"] {
            let escaped = connect_s3_json::partitioner::escape_path_value(value);
            assert_eq!(hive_unescape(&escaped), value, "{escaped}");
        }
    }

    #[test]
    fn kafka_partitions_are_int_columns() {
        let layout = analyze(
            "topics/t/",
            &listed(&[
                "topics/t/partition=1/t+1+00000000000000000000.json",
                "topics/t/partition=0/t+0+00000000000000000000.json",
                "topics/t/partition=0/t+0+00000000000000010000.json",
                "topics/t/partition=10/t+10+00000000000000000000.json",
            ]),
        )
        .unwrap();
        assert_eq!(
            layout.columns,
            vec![PartitionColumn {
                name: "partition".into(),
                hive_style: true,
                ty: PartitionType::Int,
                digits: None
            }]
        );
        let folders: Vec<(&str, &[String], usize)> = layout
            .partitions
            .iter()
            .map(|p| (p.folder.as_str(), p.values.as_slice(), p.objects))
            .collect();
        assert_eq!(
            folders,
            vec![
                ("partition=0/", &["0".to_owned()][..], 2),
                ("partition=1/", &["1".to_owned()][..], 1),
                ("partition=10/", &["10".to_owned()][..], 1),
            ]
        );
        assert_eq!(layout.objects.len(), 4);
        assert_eq!(layout.objects[0].partition, 0);
        assert!(!layout.objects[0].gzip);
    }

    #[test]
    fn field_partitions_are_unescaped_strings() {
        let layout = analyze(
            "p/",
            &listed(&[
                "p/index=NYA/x.json.gz",
                "p/index=a%2Fb/x.json.gz",
                "p/index=__HIVE_DEFAULT_PARTITION__/x.json.gz",
                "p/_SUCCESS",
                "p/index=NYA/notes.txt",
            ]),
        )
        .unwrap();
        assert_eq!(layout.columns[0].name, "index");
        assert_eq!(layout.columns[0].ty, PartitionType::String);
        let values: Vec<&str> = layout
            .partitions
            .iter()
            .map(|p| p.values[0].as_str())
            .collect();
        assert_eq!(values, ["NYA", "__HIVE_DEFAULT_PARTITION__", "a/b"]);
        assert_eq!(layout.partitions[2].folder, "index=a%2Fb/");
        assert!(layout.objects.iter().all(|o| o.gzip));
        assert_eq!(layout.hidden, 1);
        assert_eq!(layout.other_keys, ["p/index=NYA/notes.txt"]);
    }

    #[test]
    fn time_partitions_are_zero_padded_ints_in_path_order() {
        let layout = analyze(
            "",
            &listed(&[
                "year=2021/month=05/day=28/a.json",
                "year=2021/month=12/day=01/a.json",
                "year=2020/month=11/day=30/a.json",
            ]),
        )
        .unwrap();
        let columns: Vec<(&str, PartitionType, Option<usize>)> = layout
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty, c.digits))
            .collect();
        assert_eq!(
            columns,
            vec![
                ("year", PartitionType::Int, None),
                ("month", PartitionType::Int, Some(2)),
                ("day", PartitionType::Int, Some(2)),
            ]
        );
        assert_eq!(layout.partitions[0].values, ["2020", "11", "30"]);
        assert_eq!(layout.partitions[0].folder, "year=2020/month=11/day=30/");
    }

    #[test]
    fn partition_types_from_values() {
        use PartitionType::*;
        assert_eq!(partition_type(&["0", "5", "-3"]), (Int, None));
        assert_eq!(partition_type(&["2147483648", "1"]), (BigInt, None));
        assert_eq!(partition_type(&["01", "12"]), (Int, Some(2)));
        assert_eq!(partition_type(&["01", "123"]), (String, None));
        assert_eq!(partition_type(&["1", "x"]), (String, None));
        assert_eq!(
            partition_type(&["1", HIVE_DEFAULT_PARTITION]),
            (String, None)
        );
        assert_eq!(partition_type(&["99999999999999999999"]), (String, None));
        assert_eq!(partition_type(&["-", "+1"]), (String, None));
        assert_eq!(partition_type(&[]), (String, None));
    }

    #[test]
    fn folders_without_equals_are_positional_columns() {
        let layout = analyze("t/", &listed(&["t/2021/eu/a.json", "t/2022/us/b.json"])).unwrap();
        let columns: Vec<(&str, bool, PartitionType)> = layout
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.hive_style, c.ty))
            .collect();
        assert_eq!(
            columns,
            vec![
                ("partition_0", false, PartitionType::Int),
                ("partition_1", false, PartitionType::String)
            ]
        );
    }

    #[test]
    fn objects_at_the_location_make_an_unpartitioned_table() {
        let layout = analyze("t/", &listed(&["t/a.json", "t/b.json"])).unwrap();
        assert!(layout.columns.is_empty());
        assert_eq!(layout.partitions.len(), 1);
        assert_eq!(layout.partitions[0].folder, "");
        assert!(layout.partitions[0].values.is_empty());
    }

    #[test]
    fn mixed_layouts_are_refused_with_both_examples() {
        let error = analyze(
            "t/",
            &listed(&["t/index=NYA/a.json", "t/partition=0/b.json"]),
        )
        .unwrap_err();
        assert!(error.contains("t/index=NYA/a.json"), "{error}");
        assert!(error.contains("t/partition=0/b.json"), "{error}");
        assert!(error.contains("`partition=…/`"), "{error}");
        let error = analyze("t/", &listed(&["t/a.json", "t/p=1/b.json"])).unwrap_err();
        assert!(
            error.contains("none (directly under the location)"),
            "{error}"
        );
    }

    #[test]
    fn parquet_objects_make_a_parquet_layout() {
        let layout = analyze(
            "t/",
            &listed(&[
                "t/partition=1/t+1+00000000000000000000.parquet",
                "t/partition=0/t+0+00000000000000000000.parquet",
                "t/_SUCCESS",
            ]),
        )
        .unwrap();
        assert_eq!(layout.format, DataFormat::Parquet);
        assert_eq!(layout.objects.len(), 2);
        assert!(layout.objects.iter().all(|o| !o.gzip));
        assert_eq!(layout.columns[0].name, "partition");
        assert_eq!(layout.columns[0].ty, PartitionType::Int);
        let json = analyze("t/", &listed(&["t/a.json.gz"])).unwrap();
        assert_eq!(json.format, DataFormat::Json);
        assert_eq!(analyze("t/", &[]).unwrap().format, DataFormat::Json);
    }

    #[test]
    fn json_and_parquet_objects_are_not_one_table() {
        let error = analyze(
            "t/",
            &listed(&[
                "t/p=1/z.json",
                "t/p=1/b.parquet",
                "t/p=0/a.json.gz",
                "t/p=0/c.parquet",
            ]),
        )
        .unwrap_err();
        assert!(
            error.contains("JSON Lines objects (e.g. `t/p=0/a.json.gz`)"),
            "{error}"
        );
        assert!(
            error.contains("Parquet objects (e.g. `t/p=0/c.parquet`)"),
            "{error}"
        );
        assert!(error.contains("one format"), "{error}");
    }

    fn layout_with(sizes: &[usize]) -> Layout {
        let mut keys = Vec::new();
        for (p, &n) in sizes.iter().enumerate() {
            for i in 0..n {
                keys.push(format!("p={p:03}/{i:05}.json"));
            }
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        analyze("", &listed(&refs)).unwrap()
    }

    fn per_partition(layout: &Layout, chosen: &[usize]) -> Vec<usize> {
        let mut counts = vec![0; layout.partitions.len()];
        for &i in chosen {
            counts[layout.objects[i].partition] += 1;
        }
        counts
    }

    #[test]
    fn a_sample_covers_every_partition_evenly() {
        let layout = layout_with(&[50, 50, 50, 50]);
        let chosen = sample(&layout, 10);
        assert_eq!(chosen.len(), 10);
        let counts = per_partition(&layout, &chosen);
        assert!(counts.iter().all(|&c| c == 2 || c == 3), "{counts:?}");
        // Within a partition: its first and last object.
        let first: Vec<&str> = chosen
            .iter()
            .map(|&i| layout.objects[i].key.as_str())
            .filter(|k| k.starts_with("p=000/"))
            .collect();
        assert_eq!(first.first().copied(), Some("p=000/00000.json"));
        assert_eq!(first.last().copied(), Some("p=000/00049.json"));
    }

    #[test]
    fn small_partitions_leave_their_share_to_large_ones() {
        let layout = layout_with(&[1, 2, 40, 40]);
        let chosen = sample(&layout, 20);
        assert_eq!(per_partition(&layout, &chosen), vec![1, 2, 8, 9]);
        let all = sample(&layout, 1000);
        assert_eq!(all, (0..83).collect::<Vec<_>>());
        let few = sample(&layout, 2);
        assert_eq!(few.len(), 2);
        assert_eq!(sample(&layout, 0), Vec::<usize>::new());
    }

    #[test]
    fn spread_picks_evenly_with_both_ends() {
        assert_eq!(spread(10, 3), vec![0, 4, 9]);
        assert_eq!(spread(10, 1), vec![9]);
        assert_eq!(spread(3, 5), vec![0, 1, 2]);
        assert_eq!(spread(5, 0), Vec::<usize>::new());
    }
}
