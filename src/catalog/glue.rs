//! The table as the input of Glue's `CreateTable`: the JSON that
//! `aws glue create-table --cli-input-json file://table.json` takes, and what
//! the Glue API's `TableInput` holds.

use serde_json::{json, Map, Value};

use super::table::Table;

fn parameters(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// `{"DatabaseName", "TableInput": {...}}` for `CreateTable`, with `extra`
/// table parameters (partition projection) after the table's own.
pub fn create_table_input(table: &Table, extra: &[(String, String)]) -> Value {
    let mut table_parameters = table.parameters.clone();
    table_parameters.extend(extra.iter().cloned());
    let columns: Vec<Value> = table
        .columns
        .iter()
        .map(|c| json!({"Name": c.glue_name, "Type": c.ty.glue()}))
        .collect();
    let partition_keys: Vec<Value> = table
        .partition_keys
        .iter()
        .map(|k| json!({"Name": k.glue_name, "Type": k.ty.hive()}))
        .collect();
    json!({
        "DatabaseName": table.database,
        "TableInput": {
            "Name": table.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": parameters(&table_parameters),
            "StorageDescriptor": {
                "Columns": columns,
                "Location": table.location,
                "InputFormat": table.input_format(),
                "OutputFormat": table.output_format(),
                "Compressed": table.compression_type != "none",
                "NumberOfBuckets": -1,
                "SerdeInfo": {
                    "SerializationLibrary": table.serde(),
                    "Parameters": parameters(&table.serde_parameters()),
                },
                "Parameters": parameters(&table.parameters),
                "StoredAsSubDirectories": false,
            },
            "PartitionKeys": partition_keys,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::infer::JsonType;
    use crate::catalog::layout::{analyze, Listed};
    use crate::catalog::table::{
        build, CrawlStats, TableSpec, INPUT_FORMAT, OUTPUT_FORMAT, PARQUET_INPUT_FORMAT,
        PARQUET_OUTPUT_FORMAT, PARQUET_SERDE, SERDE,
    };

    #[test]
    fn the_create_table_input_has_the_shape_glue_takes() {
        let listed: Vec<Listed> = ["t/index=NYA/a.json.gz", "t/index=HSI/b.json.gz"]
            .iter()
            .map(|k| Listed {
                key: (*k).to_owned(),
                size: 5,
            })
            .collect();
        let layout = analyze("t/", &listed).unwrap();
        let fields = vec![
            ("Index".to_owned(), JsonType::String),
            ("Adj Close".to_owned(), JsonType::Double),
            (
                "nested".to_owned(),
                JsonType::Struct(vec![("Key".to_owned(), JsonType::BigInt)]),
            ),
        ];
        let table = build(
            TableSpec {
                database: "market".into(),
                name: "stocks".into(),
                location: "s3://b/t/".into(),
            },
            &layout,
            &fields,
            &CrawlStats::default(),
        );
        let extra = vec![("projection.enabled".to_owned(), "true".to_owned())];
        let input = create_table_input(&table, &extra);
        assert_eq!(input["DatabaseName"], "market");
        let table_input = &input["TableInput"];
        assert_eq!(table_input["Name"], "stocks");
        assert_eq!(table_input["TableType"], "EXTERNAL_TABLE");
        assert_eq!(table_input["Parameters"]["classification"], "json");
        assert_eq!(table_input["Parameters"]["compressionType"], "gzip");
        assert_eq!(table_input["Parameters"]["projection.enabled"], "true");
        let sd = &table_input["StorageDescriptor"];
        assert_eq!(
            sd["Columns"],
            json!([
                {"Name": "index_data", "Type": "string"},
                {"Name": "Adj Close", "Type": "double"},
                {"Name": "nested", "Type": "struct<Key:bigint>"},
            ])
        );
        assert_eq!(sd["Location"], "s3://b/t/");
        assert_eq!(sd["InputFormat"], INPUT_FORMAT);
        assert_eq!(sd["OutputFormat"], OUTPUT_FORMAT);
        assert_eq!(sd["Compressed"], true);
        assert_eq!(sd["SerdeInfo"]["SerializationLibrary"], SERDE);
        assert_eq!(
            sd["SerdeInfo"]["Parameters"],
            json!({
                "ignore.malformed.json": "FALSE",
                "case.insensitive": "TRUE",
                "mapping.index_data": "index",
            })
        );
        assert!(sd["Parameters"].get("projection.enabled").is_none());
        assert_eq!(
            table_input["PartitionKeys"],
            json!([{"Name": "index", "Type": "string"}])
        );
        // Only keys CreateTable knows, so `--cli-input-json` takes it.
        let keys: Vec<&String> = input.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["DatabaseName", "TableInput"]);
    }

    #[test]
    fn a_parquet_table_has_the_parquet_serde_and_classification() {
        let listed: Vec<Listed> = ["t/index=NYA/a.parquet", "t/index=HSI/b.parquet"]
            .iter()
            .map(|k| Listed {
                key: (*k).to_owned(),
                size: 5,
            })
            .collect();
        let layout = analyze("t/", &listed).unwrap();
        let fields = vec![
            ("index".to_owned(), JsonType::String),
            ("close".to_owned(), JsonType::Double),
            ("volume".to_owned(), JsonType::BigInt),
        ];
        let stats = CrawlStats {
            objects_read: 2,
            bytes_read: 10,
            records: 7,
            record_bytes: 70,
            ..Default::default()
        };
        let table = build(
            TableSpec {
                database: "market".into(),
                name: "stocks".into(),
                location: "s3://b/t/".into(),
            },
            &layout,
            &fields,
            &stats,
        );
        let input = create_table_input(&table, &[]);
        let table_input = &input["TableInput"];
        assert_eq!(
            table_input["Parameters"],
            json!({
                "classification": "parquet",
                "compressionType": "none",
                "typeOfData": "file",
                "objectCount": "2",
                "recordCount": "7",
                "averageRecordSize": "10",
                "sizeKey": "10",
            })
        );
        let sd = &table_input["StorageDescriptor"];
        // The data column `index` is the partition column's: left out.
        assert_eq!(
            sd["Columns"],
            json!([
                {"Name": "close", "Type": "double"},
                {"Name": "volume", "Type": "bigint"},
            ])
        );
        assert_eq!(sd["InputFormat"], PARQUET_INPUT_FORMAT);
        assert_eq!(sd["OutputFormat"], PARQUET_OUTPUT_FORMAT);
        assert_eq!(sd["Compressed"], false);
        assert_eq!(
            sd["SerdeInfo"],
            json!({
                "SerializationLibrary": PARQUET_SERDE,
                "Parameters": {"serialization.format": "1"},
            })
        );
        assert_eq!(
            table_input["PartitionKeys"],
            json!([{"Name": "index", "Type": "string"}])
        );
        assert!(
            table.notes[0].contains("`index` is left out"),
            "{:?}",
            table.notes
        );
    }
}
