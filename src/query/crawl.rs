//! `--crawl FILE`: a table defined by a crawl result, the JSON that `sluice
//! catalog crawl --format glue` prints (Glue's `CreateTable` input; the
//! output of `aws glue get-table` is taken too). The table is named after
//! it, at its `StorageDescriptor.Location`, with its columns, partition keys
//! and format (the Parquet or the JSON SerDe) rather than inferred ones.
//!
//! Hive types become Arrow types: `bigint` `Int64`, `int` `Int32`,
//! `smallint` `Int16`, `tinyint` `Int8`, `double` `Float64`, `float`
//! `Float32`, `boolean`, `string`/`varchar(n)`/`char(n)` `Utf8`, `date`
//! `Date32`, `timestamp` `Timestamp(ns)`, `decimal(p,s)` `Decimal128`,
//! `binary`, `array<…>` lists and `struct<…>` structs, recursively. Any
//! other type is an error naming the column.
//!
//! Columns are read by name. In a JSON table, a column the SerDe maps to
//! another key (`mapping.a_b` = `a.b`) is read from that key and named after
//! it; a data column named like a partition column is read from the folder
//! names, as with `--table`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use serde_json::Value;

use super::location::{check_table_name, S3Location};
use crate::catalog::layout::DataFormat;

/// A table as a crawl result defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct CrawlTable {
    /// The table's name (`TableInput.Name`).
    pub name: String,
    /// `StorageDescriptor.Location`.
    pub location: S3Location,
    /// Parquet or JSON Lines, from the SerDe.
    pub format: DataFormat,
    /// The data columns, each named as the objects name it.
    pub columns: Vec<Field>,
    /// The partition keys (name, type), in folder order.
    pub partition_keys: Vec<(String, DataType)>,
}

/// Reads and checks the crawl result `path`.
pub fn read_crawl_file(path: &Path) -> anyhow::Result<CrawlTable> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--crawl {}: cannot read the file", path.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "--crawl {}: not JSON; give the output of `sluice catalog crawl --format glue`",
            path.display()
        )
    })?;
    parse_crawl(&value).map_err(|e| anyhow!("--crawl {}: {e}", path.display()))
}

fn text<'a>(value: &'a Value, what: &str) -> anyhow::Result<&'a str> {
    value
        .as_str()
        .ok_or_else(|| anyhow!("{what} is missing or not a string"))
}

/// The table of a crawl result: `{"DatabaseName", "TableInput": {...}}`,
/// `{"Table": {...}}` (`aws glue get-table`) or the table object itself.
pub fn parse_crawl(value: &Value) -> anyhow::Result<CrawlTable> {
    let table = value
        .get("TableInput")
        .or_else(|| value.get("Table"))
        .unwrap_or(value);
    let name = text(&table["Name"], "TableInput.Name")?;
    check_table_name(name).map_err(|e| anyhow!("TableInput.Name: {e}"))?;
    let sd = &table["StorageDescriptor"];
    if !sd.is_object() {
        bail!(
            "TableInput.StorageDescriptor is missing; give the output of `sluice catalog crawl --format glue`"
        );
    }
    let location = S3Location::parse(text(&sd["Location"], "StorageDescriptor.Location")?)
        .context("StorageDescriptor.Location")?;
    let format = table_format(table)?;
    let serde_parameters = &sd["SerdeInfo"]["Parameters"];
    let mut columns = Vec::new();
    for (i, column) in list(&sd["Columns"], "StorageDescriptor.Columns")?
        .iter()
        .enumerate()
    {
        let (name, data_type) = column_of(column, &format!("StorageDescriptor.Columns[{i}]"))?;
        // A JSON column the SerDe maps to another key reads that key.
        let key = match format {
            DataFormat::Json => serde_parameters[format!("mapping.{name}")]
                .as_str()
                .unwrap_or(&name)
                .to_owned(),
            DataFormat::Parquet => name,
        };
        columns.push(Field::new(key, data_type, true));
    }
    if columns.is_empty() {
        bail!("StorageDescriptor.Columns is empty: a table needs columns");
    }
    let partition_keys = match table.get("PartitionKeys") {
        None | Some(Value::Null) => Vec::new(),
        Some(keys) => list(keys, "PartitionKeys")?
            .iter()
            .enumerate()
            .map(|(i, key)| column_of(key, &format!("PartitionKeys[{i}]")))
            .collect::<anyhow::Result<_>>()?,
    };
    Ok(CrawlTable {
        name: name.to_owned(),
        location,
        format,
        columns,
        partition_keys,
    })
}

fn list<'a>(value: &'a Value, what: &str) -> anyhow::Result<&'a Vec<Value>> {
    value
        .as_array()
        .ok_or_else(|| anyhow!("{what} is missing or not a list"))
}

/// `{"Name", "Type"}` as (name, Arrow type).
fn column_of(column: &Value, what: &str) -> anyhow::Result<(String, DataType)> {
    let name = text(&column["Name"], &format!("{what}.Name"))?;
    let ty = text(
        &column["Type"],
        &format!("{what}.Type (of column `{name}`)"),
    )?;
    let data_type = hive_type(ty).map_err(|e| anyhow!("column `{name}` ({what}): {e}"))?;
    Ok((name.to_owned(), data_type))
}

/// The format of the table's objects, from its SerDe, input format or
/// `classification`.
fn table_format(table: &Value) -> anyhow::Result<DataFormat> {
    let sd = &table["StorageDescriptor"];
    let library = sd["SerdeInfo"]["SerializationLibrary"]
        .as_str()
        .unwrap_or("");
    let input = sd["InputFormat"].as_str().unwrap_or("");
    let classification = table["Parameters"]["classification"].as_str().unwrap_or("");
    let lower = |s: &str| s.to_ascii_lowercase();
    if lower(library).contains("parquet")
        || lower(input).contains("parquet")
        || lower(classification) == "parquet"
    {
        Ok(DataFormat::Parquet)
    } else if lower(library).contains("json") || lower(classification) == "json" {
        Ok(DataFormat::Json)
    } else {
        bail!(
            "the table is stored with SerDe `{library}` (input format `{input}`); sluice query reads \
             JSON Lines tables (a JSON SerDe) and Parquet tables (ParquetHiveSerDe)"
        )
    }
}

/// Splits `text` at the commas outside `<…>` and `(…)`.
fn split_top(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `inner` of `name<inner>` (case-insensitive name).
fn generic<'a>(ty: &'a str, name: &str) -> Option<&'a str> {
    let open = ty.find('<')?;
    (ty[..open].trim().eq_ignore_ascii_case(name) && ty.ends_with('>'))
        .then(|| &ty[open + 1..ty.len() - 1])
}

/// The Arrow type of a Hive type string (see the module docs).
pub fn hive_type(ty: &str) -> Result<DataType, String> {
    let ty = ty.trim();
    if let Some(inner) = generic(ty, "array") {
        let item = hive_type(inner)?;
        return Ok(DataType::List(Arc::new(Field::new_list_field(item, true))));
    }
    if let Some(inner) = generic(ty, "struct") {
        let mut fields = Vec::new();
        for part in split_top(inner) {
            let part = part.trim();
            let (name, field_type) = if let Some(rest) = part.strip_prefix('`') {
                let end = rest
                    .find('`')
                    .ok_or_else(|| format!("struct field `{part}` has an unclosed backtick"))?;
                let after = rest[end + 1..].trim_start();
                let field_type = after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("struct field `{part}` is not name:type in `{ty}`"))?;
                (&rest[..end], field_type)
            } else {
                part.split_once(':')
                    .ok_or_else(|| format!("struct field `{part}` is not name:type in `{ty}`"))?
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("a struct field of `{ty}` has no name"));
            }
            fields.push(Field::new(name, hive_type(field_type)?, true));
        }
        return Ok(DataType::Struct(Fields::from(fields)));
    }
    let lower = ty.to_ascii_lowercase();
    let base = lower.split('(').next().unwrap_or("").trim();
    let data_type = match base {
        "bigint" => DataType::Int64,
        "int" | "integer" => DataType::Int32,
        "smallint" => DataType::Int16,
        "tinyint" => DataType::Int8,
        "double" => DataType::Float64,
        "float" | "real" => DataType::Float32,
        "boolean" => DataType::Boolean,
        "string" | "varchar" | "char" => DataType::Utf8,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        "binary" => DataType::Binary,
        "decimal" | "numeric" => decimal(&lower)?,
        _ => {
            return Err(format!(
                "Hive type `{ty}` has no equivalent here (known: bigint, int, smallint, tinyint, double, float, \
                 boolean, string, varchar, char, date, timestamp, decimal, binary, array<…>, struct<…>)"
            ))
        }
    };
    Ok(data_type)
}

/// `decimal`, `decimal(p)` or `decimal(p,s)` (Hive's default: 10, 0).
fn decimal(ty: &str) -> Result<DataType, String> {
    let Some(open) = ty.find('(') else {
        return Ok(DataType::Decimal128(10, 0));
    };
    let args = ty[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| format!("`{ty}` is not decimal(precision, scale)"))?;
    let numbers: Vec<&str> = args.split(',').map(str::trim).collect();
    let parse = |s: &str| {
        s.parse::<u8>()
            .map_err(|_| format!("`{ty}` is not decimal(precision, scale)"))
    };
    let (precision, scale) = match numbers.as_slice() {
        [p] => (parse(p)?, 0),
        [p, s] => (parse(p)?, parse(s)?),
        _ => return Err(format!("`{ty}` is not decimal(precision, scale)")),
    };
    if precision == 0 || precision > 38 || scale > precision {
        return Err(format!(
            "`{ty}`: precision 1 to 38 and a scale no larger than it"
        ));
    }
    Ok(DataType::Decimal128(precision, scale as i8))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn list_of(item: DataType) -> DataType {
        DataType::List(Arc::new(Field::new_list_field(item, true)))
    }

    #[test]
    fn hive_types_become_arrow_types() {
        for (hive, arrow) in [
            ("bigint", DataType::Int64),
            ("INT", DataType::Int32),
            ("integer", DataType::Int32),
            ("smallint", DataType::Int16),
            ("tinyint", DataType::Int8),
            ("double", DataType::Float64),
            ("float", DataType::Float32),
            ("boolean", DataType::Boolean),
            ("string", DataType::Utf8),
            ("varchar(20)", DataType::Utf8),
            ("char(2)", DataType::Utf8),
            ("date", DataType::Date32),
            ("timestamp", DataType::Timestamp(TimeUnit::Nanosecond, None)),
            ("decimal(12, 2)", DataType::Decimal128(12, 2)),
            ("decimal", DataType::Decimal128(10, 0)),
            ("binary", DataType::Binary),
            ("array<double>", list_of(DataType::Float64)),
        ] {
            assert_eq!(hive_type(hive), Ok(arrow), "{hive}");
        }
    }

    #[test]
    fn nested_types_recurse() {
        let ty =
            hive_type("struct<Key:bigint,list:array<struct<a:string,b:decimal(5,1)>>,X y:boolean>")
                .expect("a struct");
        let inner = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Decimal128(5, 1), true),
        ]));
        assert_eq!(
            ty,
            DataType::Struct(Fields::from(vec![
                Field::new("Key", DataType::Int64, true),
                Field::new("list", list_of(inner), true),
                Field::new("X y", DataType::Boolean, true),
            ]))
        );
        // Athena DDL quotes the field names.
        assert_eq!(
            hive_type("struct<`date`:string, `x y`:array<bigint>>"),
            Ok(DataType::Struct(Fields::from(vec![
                Field::new("date", DataType::Utf8, true),
                Field::new("x y", list_of(DataType::Int64), true),
            ])))
        );
    }

    #[test]
    fn unknown_types_are_errors() {
        for bad in [
            "map<string,bigint>",
            "uniontype<int,string>",
            "struct<a>",
            "decimal(50,2)",
            "geometry",
            "array<nope>",
        ] {
            assert!(hive_type(bad).is_err(), "{bad}");
        }
        let error = hive_type("map<string,bigint>").unwrap_err();
        assert!(error.contains("known: bigint"), "{error}");
    }

    fn parquet_crawl() -> Value {
        json!({
            "DatabaseName": "default",
            "TableInput": {
                "Name": "stock_market",
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "parquet"},
                "StorageDescriptor": {
                    "Columns": [
                        {"Name": "date", "Type": "string"},
                        {"Name": "close", "Type": "double"},
                        {"Name": "volume", "Type": "bigint"},
                    ],
                    "Location": "s3://stock-market/topics/stock-market/",
                    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    "SerdeInfo": {
                        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                        "Parameters": {"serialization.format": "1"},
                    },
                },
                "PartitionKeys": [{"Name": "index", "Type": "string"}],
            },
        })
    }

    #[test]
    fn a_parquet_crawl_gives_name_location_columns_and_keys() {
        let table = parse_crawl(&parquet_crawl()).expect("table");
        assert_eq!(table.name, "stock_market");
        assert_eq!(
            table.location.url(),
            "s3://stock-market/topics/stock-market/"
        );
        assert_eq!(table.format, DataFormat::Parquet);
        assert_eq!(
            table.columns,
            vec![
                Field::new("date", DataType::Utf8, true),
                Field::new("close", DataType::Float64, true),
                Field::new("volume", DataType::Int64, true),
            ]
        );
        assert_eq!(
            table.partition_keys,
            vec![("index".to_owned(), DataType::Utf8)]
        );
        // The output of `aws glue get-table` too.
        let get_table = json!({"Table": parquet_crawl()["TableInput"].clone()});
        assert_eq!(parse_crawl(&get_table).expect("table"), table);
    }

    #[test]
    fn a_json_crawl_reads_mapped_columns_from_their_keys() {
        let crawl = json!({
            "TableInput": {
                "Name": "t",
                "Parameters": {"classification": "json"},
                "StorageDescriptor": {
                    "Columns": [
                        {"Name": "index_data", "Type": "string"},
                        {"Name": "a_b", "Type": "bigint"},
                        {"Name": "CloseUSD", "Type": "double"},
                    ],
                    "Location": "s3://b/t",
                    "SerdeInfo": {
                        "SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                        "Parameters": {"mapping.index_data": "index", "mapping.a_b": "a.b"},
                    },
                },
            },
        });
        let table = parse_crawl(&crawl).expect("table");
        assert_eq!(table.format, DataFormat::Json);
        let names: Vec<&str> = table.columns.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["index", "a.b", "CloseUSD"]);
        assert!(table.partition_keys.is_empty());
        assert_eq!(table.location.url(), "s3://b/t/");
    }

    #[test]
    fn bad_crawls_say_what_is_wrong() {
        let mut crawl = parquet_crawl();
        crawl["TableInput"]["StorageDescriptor"]["Columns"][1]["Type"] = json!("map<string,int>");
        let error = format!("{:#}", parse_crawl(&crawl).unwrap_err());
        assert!(error.contains("column `close`"), "{error}");
        assert!(error.contains("map<string,int>"), "{error}");

        let mut crawl = parquet_crawl();
        crawl["TableInput"]["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] =
            json!("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe");
        crawl["TableInput"]["StorageDescriptor"]["InputFormat"] =
            json!("org.apache.hadoop.mapred.TextInputFormat");
        crawl["TableInput"]["Parameters"]["classification"] = json!("csv");
        let error = format!("{:#}", parse_crawl(&crawl).unwrap_err());
        assert!(error.contains("LazySimpleSerDe"), "{error}");

        let mut crawl = parquet_crawl();
        crawl["TableInput"]["StorageDescriptor"]["Location"] = json!("/tmp/x");
        let error = format!("{:#}", parse_crawl(&crawl).unwrap_err());
        assert!(error.contains("StorageDescriptor.Location"), "{error}");

        let error = format!("{:#}", parse_crawl(&json!({"TableInput": {}})).unwrap_err());
        assert!(error.contains("TableInput.Name"), "{error}");

        let mut crawl = parquet_crawl();
        crawl["TableInput"]["PartitionKeys"][0]["Type"] = json!(7);
        let error = format!("{:#}", parse_crawl(&crawl).unwrap_err());
        assert!(error.contains("PartitionKeys[0].Type"), "{error}");
    }

    #[test]
    fn a_missing_or_invalid_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.json");
        let error = format!("{:#}", read_crawl_file(&missing).unwrap_err());
        assert!(error.contains("nope.json: cannot read"), "{error}");
        let invalid = dir.path().join("ddl.sql");
        std::fs::write(&invalid, "CREATE EXTERNAL TABLE ...").expect("write");
        let error = format!("{:#}", read_crawl_file(&invalid).unwrap_err());
        assert!(error.contains("not JSON"), "{error}");
        let good = dir.path().join("crawl.json");
        std::fs::write(&good, parquet_crawl().to_string()).expect("write");
        assert_eq!(read_crawl_file(&good).expect("table").name, "stock_market");
    }
}
