//! The crawled table: column names Athena accepts, Hive types, partition
//! keys and partitions, the JSON SerDe's settings, and the table parameters
//! — everything the Glue and Athena outputs are rendered from.
//!
//! Column names. Athena lowercases every name, and Hive (so Athena DDL and
//! the Glue type strings) cannot take some characters in them at all. A JSON
//! key made of ASCII letters, digits, `_` and inner spaces becomes the column
//! of its lowercased name (`Adj Close` → `adj close`, quoted in the DDL);
//! the Glue table keeps the key's case, as the brief of a crawler's table
//! does. Any other key (`a.b`, `user-id`, `été`) becomes a column named
//! after it with every other character replaced by `_` (`a_b`), and the
//! OpenX JSON SerDe's `mapping.<column>` = `<key>` property tells the SerDe
//! which key to read. The SerDe applies a mapping to fields of that name at
//! every level of nesting, so a name is never given to two different keys:
//! the later one gets `_2`, `_3`, ...
//!
//! A data column with the name of a partition column (Athena compares names
//! without case): the partition column keeps its name, because it is the
//! folder name (`index=NYA/`) that `MSCK REPAIR TABLE`, partition
//! registration and Hive-style readers go by; the data column is renamed
//! `<name>_data` and mapped to its key, so both stay queryable (a Glue
//! crawler would make a table with two columns of one name, which Athena
//! refuses with `HIVE_INVALID_METADATA`).
//!
//! Keys that differ only in case (`URL` and `Url` in one object): the SerDe
//! lowercases keys by default and would fail on such records ("Duplicate
//! key"), so the table gets `case.insensitive` = `FALSE` and a mapping for
//! every key that is not already its column's name.
//!
//! Parquet tables use the Parquet SerDe, which reads a file's columns by
//! name (without case) and knows no mappings: a column whose name Athena
//! cannot take is still named after it (`a.b` → `a_b`), with a note that
//! Athena reads it as null; a data column named like a partition column is
//! left out of the table (its values are the folder's, which the partition
//! column has), with a note.

use super::infer::JsonType;
use super::layout::{DataFormat, Layout, PartitionType};

/// The Hive type of a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HiveType {
    /// `boolean`.
    Boolean,
    /// `bigint`.
    BigInt,
    /// `double`.
    Double,
    /// `string`.
    String,
    /// `array<...>`.
    Array(Box<HiveType>),
    /// `struct<...>`.
    Struct(Vec<Column>),
}

impl HiveType {
    /// The Hive type string as the Glue catalog stores it: struct field
    /// names unquoted (with the Glue name, so the key's case).
    pub fn glue(&self) -> String {
        match self {
            HiveType::Boolean => "boolean".to_owned(),
            HiveType::BigInt => "bigint".to_owned(),
            HiveType::Double => "double".to_owned(),
            HiveType::String => "string".to_owned(),
            HiveType::Array(item) => format!("array<{}>", item.glue()),
            HiveType::Struct(fields) => format!(
                "struct<{}>",
                fields
                    .iter()
                    .map(|f| format!("{}:{}", f.glue_name, f.ty.glue()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// A column, or a field of a struct column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The name in Athena (lowercase).
    pub name: String,
    /// The name in the Glue table: the JSON key as written when it needs no
    /// mapping, else `name`.
    pub glue_name: String,
    /// The JSON key the column reads.
    pub key: String,
    /// Its type.
    pub ty: HiveType,
}

/// A partition column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionKey {
    /// The name in Athena (lowercase).
    pub name: String,
    /// The name in the Glue table (as in the folder, when usable).
    pub glue_name: String,
    /// `int`, `bigint` or `string`.
    pub ty: PartitionType,
    /// Digits of zero-padded integer values (`05`).
    pub digits: Option<usize>,
    /// The name as written in the folders (`index` of `index=NYA/`), or
    /// `None` when the folder is the value alone.
    pub folder_name: Option<String>,
}

/// One partition: its values (unescaped) and its folder's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionEntry {
    /// A value per partition key, as read from the folder names.
    pub values: Vec<String>,
    /// `s3://bucket/.../index=NYA/`.
    pub location: String,
}

/// What was read to crawl the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrawlStats {
    /// Data objects read.
    pub objects_read: usize,
    /// Stored bytes (compressed when gzip) the records read came from: the
    /// objects' sizes when read whole, less when `--max-lines` cut them.
    pub bytes_read: u64,
    /// JSON object lines read.
    pub records: u64,
    /// Uncompressed bytes of those lines (newlines included).
    pub record_bytes: u64,
    /// Lines that were not a JSON object (skipped).
    pub malformed: u64,
    /// The first malformed line: `s3://...:line: what`.
    pub first_malformed: Option<String>,
    /// Whether `--max-lines` cut any object short.
    pub truncated: bool,
}

/// The crawled table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Glue database (Athena schema).
    pub database: String,
    /// Table name.
    pub name: String,
    /// `s3://bucket/prefix/`, with the trailing slash.
    pub location: String,
    /// Data columns, in first-seen order.
    pub columns: Vec<Column>,
    /// Partition columns, in path order.
    pub partition_keys: Vec<PartitionKey>,
    /// Every partition found.
    pub partitions: Vec<PartitionEntry>,
    /// What the objects hold: JSON Lines (the JSON SerDe) or Parquet (the Parquet SerDe).
    pub format: DataFormat,
    /// `none` or `gzip` (Glue's `compressionType`; `none` for Parquet).
    pub compression_type: &'static str,
    /// SerDe `case.insensitive`.
    pub case_insensitive: bool,
    /// SerDe `mapping.<column>` → key, in the order the columns were named.
    pub mappings: Vec<(String, String)>,
    /// Table parameters (Glue `Parameters`, Athena `TBLPROPERTIES`).
    pub parameters: Vec<(String, String)>,
    /// What the crawl renamed or decided, one sentence each.
    pub notes: Vec<String>,
}

/// The Hive storage of JSON Lines and Parquet tables: the same names the
/// s3_json sink's catalog upkeep uses.
pub use connect_s3_json::glue::{
    JSON_INPUT_FORMAT as INPUT_FORMAT, JSON_OUTPUT_FORMAT as OUTPUT_FORMAT, JSON_SERDE as SERDE,
    PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, PARQUET_SERDE,
};

impl Table {
    /// The SerDe's class.
    pub fn serde(&self) -> &'static str {
        match self.format {
            DataFormat::Json => SERDE,
            DataFormat::Parquet => PARQUET_SERDE,
        }
    }

    /// The input format's class.
    pub fn input_format(&self) -> &'static str {
        match self.format {
            DataFormat::Json => INPUT_FORMAT,
            DataFormat::Parquet => PARQUET_INPUT_FORMAT,
        }
    }

    /// The output format's class.
    pub fn output_format(&self) -> &'static str {
        match self.format {
            DataFormat::Json => OUTPUT_FORMAT,
            DataFormat::Parquet => PARQUET_OUTPUT_FORMAT,
        }
    }

    /// The SerDe's parameters. JSON: malformed JSON fails the query (so a
    /// bad line is noticed), case handling, and the key mappings. Parquet:
    /// `serialization.format` = `1`, as a Glue crawler sets it.
    pub fn serde_parameters(&self) -> Vec<(String, String)> {
        if self.format == DataFormat::Parquet {
            return vec![("serialization.format".to_owned(), "1".to_owned())];
        }
        let mut parameters = vec![
            ("ignore.malformed.json".to_owned(), "FALSE".to_owned()),
            (
                "case.insensitive".to_owned(),
                if self.case_insensitive {
                    "TRUE"
                } else {
                    "FALSE"
                }
                .to_owned(),
            ),
        ];
        for (column, key) in &self.mappings {
            parameters.push((format!("mapping.{column}"), key.clone()));
        }
        parameters
    }
}

/// Longest name Glue and Athena take, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Whether a JSON key can be a column name as it is (lowercased): ASCII
/// letters, digits, `_`, and spaces that are neither leading nor trailing.
pub fn is_plain_name(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_NAME_BYTES
        && !key.starts_with(' ')
        && !key.ends_with(' ')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ')
}

/// A column name made from any key: lowercased, every character but ASCII
/// letters, digits and `_` replaced by `_`, at most 255 bytes; `col` for an
/// empty key.
pub fn sanitize_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(MAX_NAME_BYTES - 8);
    if name.is_empty() {
        name.push_str("col");
    }
    name
}

/// A table or database name for Athena from any text (a topic, a folder):
/// [`sanitize_name`]'s rules (`stock-market` → `stock_market`).
pub fn default_table_name(text: &str) -> String {
    sanitize_name(text)
}

/// Checks a table or database name given by the user: letters, digits and
/// `_` only (Athena's rule), lowercased.
pub fn check_name(what: &str, name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!("{what} `{name}` must have 1 to 255 characters"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "{what} `{name}`: Athena names take letters, digits and `_` only; try `{}`",
            sanitize_name(name)
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// Whether any object of the schema (at any depth) has two keys that are
/// equal without case.
fn has_case_clash(fields: &[(String, JsonType)]) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    for (key, _) in fields {
        if !seen.insert(key.to_lowercase()) {
            return true;
        }
    }
    fields.iter().any(|(_, ty)| type_has_case_clash(ty))
}

fn type_has_case_clash(ty: &JsonType) -> bool {
    match ty {
        JsonType::Struct(fields) => has_case_clash(fields),
        JsonType::Array(item) => type_has_case_clash(item),
        _ => false,
    }
}

/// Names every column and struct field (see the module docs).
struct Namer<'a> {
    case_insensitive: bool,
    partition_names: &'a [String],
    /// Column name → the key it reads, as the SerDe compares keys.
    registry: Vec<(String, String)>,
    notes: Vec<String>,
}

impl Namer<'_> {
    /// The key as the SerDe sees it: lowercased unless case-sensitive.
    fn target(&self, key: &str) -> String {
        if self.case_insensitive {
            key.to_lowercase()
        } else {
            key.to_owned()
        }
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        self.registry
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }

    fn collides_with_partition(&self, key: &str, top: bool) -> bool {
        top && self
            .partition_names
            .iter()
            .any(|p| *p == key.to_lowercase())
    }

    /// Whether `key` is its own column name (no mapping).
    fn is_plain(&self, key: &str, top: bool) -> bool {
        is_plain_name(key)
            && (self.case_insensitive || key == key.to_lowercase())
            && !self.collides_with_partition(key, top)
    }

    /// First pass: every plain key claims its name.
    fn claim_plain(&mut self, fields: &[(String, JsonType)], top: bool) {
        for (key, ty) in fields {
            if self.is_plain(key, top) {
                let name = key.to_lowercase();
                if self.lookup(&name).is_none() {
                    let target = self.target(key);
                    self.registry.push((name, target));
                }
            }
            self.claim_nested(ty);
        }
    }

    fn claim_nested(&mut self, ty: &JsonType) {
        match ty {
            JsonType::Struct(fields) => self.claim_plain(fields, false),
            JsonType::Array(item) => self.claim_nested(item),
            _ => {}
        }
    }

    /// Second pass: names every field, mapping the keys that are not plain.
    fn name_fields(&mut self, fields: &[(String, JsonType)], top: bool) -> Vec<Column> {
        let mut used: Vec<String> = Vec::new();
        let mut columns = Vec::new();
        for (key, ty) in fields {
            let (name, glue_name) = if self.is_plain(key, top) {
                (key.to_lowercase(), key.clone())
            } else {
                let name = self.mapped_name(key, top, &used);
                (name.clone(), name)
            };
            used.push(name.clone());
            let ty = self.hive_type(ty);
            columns.push(Column {
                name,
                glue_name,
                key: key.clone(),
                ty,
            });
        }
        columns
    }

    fn mapped_name(&mut self, key: &str, top: bool, used: &[String]) -> String {
        let target = self.target(key);
        let partition = self.collides_with_partition(key, top);
        let base = if partition {
            format!("{}_data", sanitize_name(key))
        } else {
            sanitize_name(key)
        };
        let mut n = 1;
        let name = loop {
            let candidate = if n == 1 {
                base.clone()
            } else {
                format!("{base}_{n}")
            };
            let free = self.lookup(&candidate).is_none_or(|t| t == target)
                && !(top && self.partition_names.contains(&candidate))
                && !used.contains(&candidate);
            if free {
                break candidate;
            }
            n += 1;
        };
        if self.lookup(&name).is_none() {
            self.registry.push((name.clone(), target));
            let why = if partition {
                format!("the partition column `{}` has its name", key.to_lowercase())
            } else if !is_plain_name(key) {
                "Athena column names take only letters, digits, `_` and inner spaces".to_owned()
            } else {
                "the data has keys that differ only in case, so the SerDe compares keys with case"
                    .to_owned()
            };
            self.notes.push(format!(
                "JSON key `{key}` is column `{name}` (SerDe property `mapping.{name}`): {why}"
            ));
        }
        name
    }

    fn hive_type(&mut self, ty: &JsonType) -> HiveType {
        match ty {
            JsonType::Null | JsonType::String => HiveType::String,
            JsonType::Boolean => HiveType::Boolean,
            JsonType::BigInt => HiveType::BigInt,
            JsonType::Double => HiveType::Double,
            JsonType::Array(item) => HiveType::Array(Box::new(self.hive_type(item))),
            JsonType::Struct(fields) if fields.is_empty() => HiveType::String,
            JsonType::Struct(fields) => HiveType::Struct(self.name_fields(fields, false)),
        }
    }
}

/// The columns named, and what the SerDe needs to read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    /// The data columns.
    pub columns: Vec<Column>,
    /// SerDe `mapping.<column>` → key.
    pub mappings: Vec<(String, String)>,
    /// SerDe `case.insensitive`.
    pub case_insensitive: bool,
    /// What was renamed and why.
    pub notes: Vec<String>,
}

/// Columns, SerDe mappings and case mode for the inferred fields, given the
/// (Athena) names of the partition columns.
pub fn name_columns(fields: &[(String, JsonType)], partition_names: &[String]) -> Naming {
    let mut namer = Namer {
        case_insensitive: !has_case_clash(fields),
        partition_names,
        registry: Vec::new(),
        notes: Vec::new(),
    };
    if !namer.case_insensitive {
        namer.notes.push(
            "some JSON objects have keys that differ only in case: the SerDe compares keys with case \
             (`case.insensitive` = `FALSE`) and maps every key that is not lowercase"
                .to_owned(),
        );
    }
    namer.claim_plain(fields, true);
    let columns = namer.name_fields(fields, true);
    let mappings = namer
        .registry
        .iter()
        .filter(|(name, target)| name != target)
        .cloned()
        .collect();
    Naming {
        columns,
        mappings,
        case_insensitive: namer.case_insensitive,
        notes: namer.notes,
    }
}

/// Columns for the fields of Parquet files (see the module docs): no SerDe
/// mappings, `case.insensitive` unused (the Parquet SerDe compares names
/// without case).
pub fn name_parquet_columns(fields: &[(String, JsonType)], partition_names: &[String]) -> Naming {
    let mut notes = Vec::new();
    let mut kept = Vec::new();
    for (key, ty) in fields {
        let lower = key.to_lowercase();
        if partition_names.contains(&lower) {
            notes.push(format!(
                "Parquet column `{key}` is left out of the table: the partition column `{lower}` has its name (and, \
                 as the sink writes them, its values); the Parquet SerDe cannot read the column under another name"
            ));
        } else {
            kept.push((key.clone(), ty.clone()));
        }
    }
    let reserved: Vec<String> = partition_names.to_vec();
    let columns = parquet_fields(&kept, &reserved, &mut notes);
    Naming {
        columns,
        mappings: Vec::new(),
        case_insensitive: true,
        notes,
    }
}

/// Names the fields of one level of a Parquet schema.
fn parquet_fields(
    fields: &[(String, JsonType)],
    reserved: &[String],
    notes: &mut Vec<String>,
) -> Vec<Column> {
    let mut used: Vec<String> = reserved.to_vec();
    // Plain names first, so that a renamed field never takes one.
    for (key, _) in fields {
        if is_plain_name(key) && !used.contains(&key.to_lowercase()) {
            used.push(key.to_lowercase());
        }
    }
    let mut claimed: Vec<String> = Vec::new();
    let mut columns = Vec::new();
    for (key, ty) in fields {
        let lower = key.to_lowercase();
        let (name, glue_name) = if is_plain_name(key) && !claimed.contains(&lower) {
            (lower, key.clone())
        } else {
            let base = sanitize_name(key);
            let mut name = base.clone();
            let mut n = 1;
            while used.contains(&name) || claimed.contains(&name) {
                n += 1;
                name = format!("{base}_{n}");
            }
            used.push(name.clone());
            notes.push(format!(
                "Parquet column `{key}` is column `{name}`: Athena takes only letters, digits, `_` and inner spaces \
                 in names, with case not telling names apart, and the Parquet SerDe reads columns by name, so Athena \
                 reads `{name}` as null; rename the field before the sink (transform `replace_field`)"
            ));
            (name.clone(), name)
        };
        claimed.push(name.clone());
        let ty = parquet_hive_type(ty, notes);
        columns.push(Column {
            name,
            glue_name,
            key: key.clone(),
            ty,
        });
    }
    columns
}

fn parquet_hive_type(ty: &JsonType, notes: &mut Vec<String>) -> HiveType {
    match ty {
        JsonType::Null | JsonType::String => HiveType::String,
        JsonType::Boolean => HiveType::Boolean,
        JsonType::BigInt => HiveType::BigInt,
        JsonType::Double => HiveType::Double,
        JsonType::Array(item) => HiveType::Array(Box::new(parquet_hive_type(item, notes))),
        JsonType::Struct(fields) if fields.is_empty() => HiveType::String,
        JsonType::Struct(fields) => HiveType::Struct(parquet_fields(fields, &[], notes)),
    }
}

/// Partition keys named for Athena: a folder name that is not plain is
/// sanitized; repeated names get `_2`, ...
pub fn name_partition_keys(layout: &Layout) -> (Vec<PartitionKey>, Vec<String>) {
    let mut keys: Vec<PartitionKey> = Vec::new();
    let mut notes = Vec::new();
    for column in &layout.columns {
        let plain = is_plain_name(&column.name) && !column.name.contains(' ');
        let base = if plain {
            column.name.to_lowercase()
        } else {
            sanitize_name(&column.name)
        };
        let mut name = base.clone();
        let mut n = 1;
        while keys.iter().any(|k| k.name == name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        let glue_name = if plain && n == 1 {
            column.name.clone()
        } else {
            notes.push(format!(
                "partition folder name `{}` is partition column `{name}`",
                column.name
            ));
            name.clone()
        };
        keys.push(PartitionKey {
            name,
            glue_name,
            ty: column.ty,
            digits: column.digits,
            folder_name: column.hive_style.then(|| column.name.clone()),
        });
    }
    (keys, notes)
}

/// Everything [`build`] needs besides the layout and the inferred fields.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Glue database.
    pub database: String,
    /// Table name.
    pub name: String,
    /// `s3://bucket/prefix/` (trailing slash).
    pub location: String,
}

/// Builds the table from the listing's layout, the inferred fields and what
/// was read.
pub fn build(
    spec: TableSpec,
    layout: &Layout,
    fields: &[(String, JsonType)],
    stats: &CrawlStats,
) -> Table {
    let (partition_keys, mut notes) = name_partition_keys(layout);
    let partition_names: Vec<String> = partition_keys.iter().map(|k| k.name.clone()).collect();
    let Naming {
        columns,
        mappings,
        case_insensitive,
        notes: column_notes,
    } = match layout.format {
        DataFormat::Json => name_columns(fields, &partition_names),
        DataFormat::Parquet => name_parquet_columns(fields, &partition_names),
    };
    notes.extend(column_notes);
    let gzip = layout.objects.iter().filter(|o| o.gzip).count();
    let compression_type = if gzip == 0 { "none" } else { "gzip" };
    if gzip > 0 && gzip < layout.objects.len() {
        notes.push(format!(
            "{gzip} of {} objects are gzip (`compressionType` says gzip); Athena reads each object by its extension",
            layout.objects.len()
        ));
    }
    let partitions = if partition_keys.is_empty() {
        Vec::new()
    } else {
        layout
            .partitions
            .iter()
            .map(|p| PartitionEntry {
                values: p.values.clone(),
                location: format!("{}{}", spec.location, p.folder),
            })
            .collect()
    };
    let parameters = table_parameters(layout, stats, compression_type);
    Table {
        database: spec.database,
        name: spec.name,
        location: spec.location,
        columns,
        partition_keys,
        partitions,
        format: layout.format,
        compression_type,
        case_insensitive,
        mappings,
        parameters,
        notes,
    }
}

/// The parameters a Glue crawler sets on a JSON table: classification,
/// compression, and its size estimates (`recordCount` is the records read
/// scaled by the stored bytes they came from, so exact when every object was
/// read whole).
fn table_parameters(
    layout: &Layout,
    stats: &CrawlStats,
    compression_type: &str,
) -> Vec<(String, String)> {
    let total_bytes = layout.bytes();
    let records = if stats.bytes_read == 0 || stats.bytes_read >= total_bytes {
        stats.records
    } else {
        (stats.records as f64 * total_bytes as f64 / stats.bytes_read as f64).round() as u64
    };
    let average = stats.record_bytes.checked_div(stats.records).unwrap_or(0);
    let classification = match layout.format {
        DataFormat::Json => "json",
        DataFormat::Parquet => "parquet",
    };
    [
        ("classification", classification.to_owned()),
        ("compressionType", compression_type.to_owned()),
        ("typeOfData", "file".to_owned()),
        ("objectCount", layout.objects.len().to_string()),
        ("recordCount", records.to_string()),
        ("averageRecordSize", average.to_string()),
        ("sizeKey", total_bytes.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::layout::{analyze, Listed};

    fn f(key: &str, ty: JsonType) -> (String, JsonType) {
        (key.to_owned(), ty)
    }

    fn names(columns: &[Column]) -> Vec<(&str, &str, &str)> {
        columns
            .iter()
            .map(|c| (c.name.as_str(), c.glue_name.as_str(), c.key.as_str()))
            .collect()
    }

    #[test]
    fn plain_keys_keep_their_name_lowercased_for_athena() {
        let Naming {
            columns,
            mappings,
            case_insensitive: insensitive,
            notes,
        } = name_columns(
            &[
                f("Index", JsonType::String),
                f("Adj Close", JsonType::Double),
                f("date", JsonType::String),
                f("_id", JsonType::BigInt),
            ],
            &[],
        );
        assert_eq!(
            names(&columns),
            vec![
                ("index", "Index", "Index"),
                ("adj close", "Adj Close", "Adj Close"),
                ("date", "date", "date"),
                ("_id", "_id", "_id"),
            ]
        );
        assert!(mappings.is_empty());
        assert!(insensitive);
        assert!(notes.is_empty());
    }

    #[test]
    fn keys_athena_cannot_take_are_mapped() {
        let Naming {
            columns,
            mappings,
            notes,
            ..
        } = name_columns(
            &[
                f("a.b", JsonType::String),
                f("user-id", JsonType::BigInt),
                f(" padded", JsonType::BigInt),
                f("", JsonType::BigInt),
                f("a_b", JsonType::String),
            ],
            &[],
        );
        assert_eq!(
            names(&columns),
            vec![
                ("a_b_2", "a_b_2", "a.b"),
                ("user_id", "user_id", "user-id"),
                ("_padded", "_padded", " padded"),
                ("col", "col", ""),
                ("a_b", "a_b", "a_b"),
            ]
        );
        assert_eq!(
            mappings,
            vec![
                ("a_b_2".to_owned(), "a.b".to_owned()),
                ("user_id".to_owned(), "user-id".to_owned()),
                ("_padded".to_owned(), " padded".to_owned()),
                ("col".to_owned(), "".to_owned()),
            ]
        );
        assert_eq!(notes.len(), 4);
        assert!(notes[0].contains("`a.b`"), "{notes:?}");
    }

    #[test]
    fn mappings_are_global_so_a_name_never_reads_two_keys() {
        // `x_y` plain inside the struct; `x.y` at the top must not take that name.
        let Naming {
            columns, mappings, ..
        } = name_columns(
            &[
                f("x.y", JsonType::BigInt),
                f(
                    "s",
                    JsonType::Struct(vec![f("x_y", JsonType::String), f("x.y", JsonType::Double)]),
                ),
            ],
            &[],
        );
        assert_eq!(columns[0].name, "x_y_2");
        let HiveType::Struct(inner) = &columns[1].ty else {
            panic!("struct expected")
        };
        assert_eq!(
            names(inner),
            vec![("x_y", "x_y", "x_y"), ("x_y_2", "x_y_2", "x.y")]
        );
        assert_eq!(mappings, vec![("x_y_2".to_owned(), "x.y".to_owned())]);
    }

    #[test]
    fn a_data_column_named_like_a_partition_column_is_renamed() {
        let Naming {
            columns,
            mappings,
            notes,
            ..
        } = name_columns(
            &[f("Index", JsonType::String), f("Date", JsonType::String)],
            &["index".to_owned()],
        );
        assert_eq!(
            names(&columns),
            vec![
                ("index_data", "index_data", "Index"),
                ("date", "Date", "Date")
            ]
        );
        assert_eq!(
            mappings,
            vec![("index_data".to_owned(), "index".to_owned())]
        );
        assert!(notes[0].contains("partition column `index`"), "{notes:?}");
        // Only at the top level: a struct field may be called `index`.
        let Naming {
            columns, mappings, ..
        } = name_columns(
            &[f("s", JsonType::Struct(vec![f("index", JsonType::BigInt)]))],
            &["index".to_owned()],
        );
        assert_eq!(columns[0].ty.glue(), "struct<index:bigint>");
        assert!(mappings.is_empty());
    }

    #[test]
    fn keys_differing_only_in_case_make_the_serde_case_sensitive() {
        let Naming {
            columns,
            mappings,
            case_insensitive: insensitive,
            ..
        } = name_columns(
            &[
                f("URL", JsonType::String),
                f("Url", JsonType::String),
                f("url", JsonType::String),
                f("plain", JsonType::BigInt),
            ],
            &[],
        );
        assert!(!insensitive);
        assert_eq!(
            names(&columns),
            vec![
                ("url_2", "url_2", "URL"),
                ("url_3", "url_3", "Url"),
                ("url", "url", "url"),
                ("plain", "plain", "plain"),
            ]
        );
        assert_eq!(
            mappings,
            vec![
                ("url_2".to_owned(), "URL".to_owned()),
                ("url_3".to_owned(), "Url".to_owned())
            ]
        );
    }

    #[test]
    fn hive_types_from_inferred_types() {
        let Naming { columns, .. } = name_columns(
            &[
                f("n", JsonType::Null),
                f("e", JsonType::Struct(vec![])),
                f("a", JsonType::Array(Box::new(JsonType::Null))),
                f(
                    "s",
                    JsonType::Struct(vec![
                        f("Flag", JsonType::Boolean),
                        f("list", JsonType::Array(Box::new(JsonType::Double))),
                        f("k.v", JsonType::BigInt),
                    ]),
                ),
            ],
            &[],
        );
        let types: Vec<String> = columns.iter().map(|c| c.ty.glue()).collect();
        assert_eq!(
            types,
            [
                "string",
                "string",
                "array<string>",
                "struct<Flag:boolean,list:array<double>,k_v:bigint>"
            ]
        );
    }

    #[test]
    fn parquet_columns_are_named_without_mappings() {
        let Naming {
            columns,
            mappings,
            case_insensitive,
            notes,
        } = name_parquet_columns(
            &[
                f("index", JsonType::String),
                f("Adj Close", JsonType::Double),
                f("a.b", JsonType::BigInt),
                f("a_b", JsonType::String),
                f("URL", JsonType::String),
                f("Url", JsonType::String),
                f(
                    "s",
                    JsonType::Struct(vec![f("k.v", JsonType::BigInt), f("X", JsonType::Boolean)]),
                ),
                f("gone", JsonType::Null),
            ],
            &["index".to_owned()],
        );
        assert_eq!(
            names(&columns),
            vec![
                ("adj close", "Adj Close", "Adj Close"),
                ("a_b_2", "a_b_2", "a.b"),
                ("a_b", "a_b", "a_b"),
                ("url", "URL", "URL"),
                ("url_2", "url_2", "Url"),
                ("s", "s", "s"),
                ("gone", "gone", "gone"),
            ]
        );
        let types: Vec<String> = columns.iter().map(|c| c.ty.glue()).collect();
        assert_eq!(
            types,
            [
                "double",
                "bigint",
                "string",
                "string",
                "string",
                "struct<k_v:bigint,X:boolean>",
                "string"
            ]
        );
        assert!(mappings.is_empty());
        assert!(case_insensitive);
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert!(
            notes[0].starts_with("Parquet column `index` is left out of the table"),
            "{notes:?}"
        );
        assert!(
            notes[1].starts_with("Parquet column `a.b` is column `a_b_2`")
                && notes[1].contains("reads `a_b_2` as null"),
            "{notes:?}"
        );
        assert!(notes[3].contains("`k.v` is column `k_v`"), "{notes:?}");
    }

    #[test]
    fn a_parquet_table_has_parquet_parameters() {
        let layout = layout(&["t/partition=0/a.parquet", "t/partition=1/b.parquet"]);
        let stats = CrawlStats {
            objects_read: 1,
            bytes_read: 100,
            records: 40,
            record_bytes: 800,
            ..Default::default()
        };
        let table = build(
            TableSpec {
                database: "default".into(),
                name: "t".into(),
                location: "s3://b/t/".into(),
            },
            &layout,
            &[f("Close", JsonType::Double)],
            &stats,
        );
        assert_eq!(table.format, DataFormat::Parquet);
        assert_eq!(table.compression_type, "none");
        assert_eq!(table.serde(), PARQUET_SERDE);
        assert_eq!(table.input_format(), PARQUET_INPUT_FORMAT);
        assert_eq!(table.output_format(), PARQUET_OUTPUT_FORMAT);
        assert_eq!(
            table.serde_parameters(),
            vec![("serialization.format".to_owned(), "1".to_owned())]
        );
        let parameters: std::collections::BTreeMap<&str, &str> = table
            .parameters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(parameters["classification"], "parquet");
        // 40 rows in 100 of 200 bytes.
        assert_eq!(parameters["recordCount"], "80");
        assert_eq!(parameters["averageRecordSize"], "20");
        assert_eq!(table.columns[0].glue_name, "Close");
        assert_eq!(table.columns[0].name, "close");
        assert_eq!(table.partitions.len(), 2);
    }

    #[test]
    fn names_for_tables() {
        assert_eq!(default_table_name("stock-market"), "stock_market");
        assert_eq!(default_table_name("Stock.Market 2"), "stock_market_2");
        assert_eq!(check_name("--table", "Stocks_1").unwrap(), "stocks_1");
        let error = check_name("--table", "stock-market").unwrap_err();
        assert!(error.contains("try `stock_market`"), "{error}");
        assert!(check_name("--database", "").is_err());
    }

    fn layout(keys: &[&str]) -> Layout {
        let listed: Vec<Listed> = keys
            .iter()
            .map(|k| Listed {
                key: (*k).to_owned(),
                size: 100,
            })
            .collect();
        analyze("t/", &listed).unwrap()
    }

    #[test]
    fn the_table_has_partitions_locations_and_crawler_parameters() {
        let layout = layout(&[
            "t/index=NYA/a.json.gz",
            "t/index=a%2Fb/b.json.gz",
            "t/index=a%2Fb/c.json.gz",
        ]);
        let stats = CrawlStats {
            objects_read: 2,
            bytes_read: 200,
            records: 10,
            record_bytes: 1000,
            ..Default::default()
        };
        let table = build(
            TableSpec {
                database: "default".into(),
                name: "t".into(),
                location: "s3://b/t/".into(),
            },
            &layout,
            &[f("Index", JsonType::String)],
            &stats,
        );
        assert_eq!(table.compression_type, "gzip");
        assert_eq!(table.partition_keys[0].name, "index");
        assert_eq!(
            table.partition_keys[0].folder_name.as_deref(),
            Some("index")
        );
        assert_eq!(
            table.partitions,
            vec![
                PartitionEntry {
                    values: vec!["NYA".into()],
                    location: "s3://b/t/index=NYA/".into()
                },
                PartitionEntry {
                    values: vec!["a/b".into()],
                    location: "s3://b/t/index=a%2Fb/".into()
                },
            ]
        );
        let parameters: std::collections::BTreeMap<&str, &str> = table
            .parameters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(parameters["classification"], "json");
        assert_eq!(parameters["objectCount"], "3");
        assert_eq!(parameters["sizeKey"], "300");
        // 10 records in 200 of 300 bytes: about 15.
        assert_eq!(parameters["recordCount"], "15");
        assert_eq!(parameters["averageRecordSize"], "100");
        assert_eq!(
            table.serde_parameters(),
            vec![
                ("ignore.malformed.json".to_owned(), "FALSE".to_owned()),
                ("case.insensitive".to_owned(), "TRUE".to_owned()),
                ("mapping.index_data".to_owned(), "index".to_owned()),
            ]
        );
    }

    #[test]
    fn an_unpartitioned_table_has_no_partition_entries() {
        let table = build(
            TableSpec {
                database: "default".into(),
                name: "t".into(),
                location: "s3://b/t/".into(),
            },
            &layout(&["t/a.json"]),
            &[f("a", JsonType::BigInt)],
            &CrawlStats::default(),
        );
        assert!(table.partition_keys.is_empty());
        assert!(table.partitions.is_empty());
        assert_eq!(table.compression_type, "none");
    }
}
