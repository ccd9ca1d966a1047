//! Athena DDL for a crawled table: `CREATE EXTERNAL TABLE` with the OpenX
//! JSON SerDe, and either `ALTER TABLE ... ADD IF NOT EXISTS PARTITION`
//! statements for every partition found or partition projection
//! properties.
//!
//! Quoting. Every identifier is quoted with backticks, as Athena's own `SHOW
//! CREATE TABLE` writes them, so reserved words (`date`, `partition`,
//! `index`), names starting with a digit or `_`, and names with spaces are
//! all accepted; struct field names are quoted too. String literals are
//! Hive's: single quotes, with `\` escaping `'`, `\` and control characters.

use super::layout::PartitionType;
use super::table::{Column, HiveType, PartitionKey, Table};

/// `` `name` ``, a backtick inside doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `'text'` with Hive's backslash escapes.
pub fn quote_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The column type as written in DDL (struct field names quoted).
pub fn type_sql(ty: &HiveType) -> String {
    match ty {
        HiveType::Array(item) => format!("array<{}>", type_sql(item)),
        HiveType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}:{}", quote_ident(&f.name), type_sql(&f.ty)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.glue(),
    }
}

/// The partition projection table properties for the partitions found:
/// `integer` columns with the range of the values seen (and their digits
/// when zero-padded), `enum` columns with every value seen, and the
/// location template. Fails when a partition cannot be projected: a value
/// with a comma (enum values are comma-separated) or one the folder names
/// escaped (projection puts values into the template unescaped).
pub fn projection_properties(table: &Table) -> Result<Vec<(String, String)>, String> {
    if table.partition_keys.is_empty() {
        return Err(format!(
            "{} has no partition folders, so there is nothing to project; leave out --projection",
            table.location
        ));
    }
    let mut properties = vec![("projection.enabled".to_owned(), "true".to_owned())];
    let mut template = table.location.clone();
    for (i, key) in table.partition_keys.iter().enumerate() {
        let values: Vec<&str> = table
            .partitions
            .iter()
            .map(|p| p.values[i].as_str())
            .collect();
        let prefix = format!("projection.{}", key.name);
        match key.ty {
            PartitionType::Int | PartitionType::BigInt => {
                let numbers: Vec<i64> = values.iter().filter_map(|v| v.parse().ok()).collect();
                let (Some(min), Some(max)) = (numbers.iter().min(), numbers.iter().max()) else {
                    return Err(format!(
                        "partition column `{}` has no values to project",
                        key.name
                    ));
                };
                properties.push((format!("{prefix}.type"), "integer".to_owned()));
                properties.push((format!("{prefix}.range"), format!("{min},{max}")));
                if let Some(digits) = key.digits {
                    properties.push((format!("{prefix}.digits"), digits.to_string()));
                }
            }
            PartitionType::String => {
                let mut distinct: Vec<&str> = values.clone();
                distinct.sort_unstable();
                distinct.dedup();
                for value in &distinct {
                    if value.contains(',') {
                        return Err(format!(
                            "partition value `{value}` of `{}` has a comma, which an enum projection cannot hold; \
                             leave out --projection to get ALTER TABLE statements",
                            key.name
                        ));
                    }
                    let escaped = connect_s3_json::partitioner::escape_path_value(value);
                    if escaped != *value {
                        return Err(format!(
                            "partition value `{value}` of `{}` is stored escaped (`{escaped}`) but projection would look \
                             for it unescaped; leave out --projection to get ALTER TABLE statements",
                            key.name
                        ));
                    }
                }
                properties.push((format!("{prefix}.type"), "enum".to_owned()));
                properties.push((format!("{prefix}.values"), distinct.join(",")));
            }
        }
        match &key.folder_name {
            Some(folder) => template.push_str(&format!("{folder}=${{{}}}/", key.name)),
            None => template.push_str(&format!("${{{}}}/", key.name)),
        }
    }
    properties.push(("storage.location.template".to_owned(), template));
    Ok(properties)
}

fn column_lines(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| format!("  {} {}", quote_ident(&c.name), type_sql(&c.ty)))
        .collect::<Vec<_>>()
        .join(",\n")
}

fn partition_key_lines(keys: &[PartitionKey]) -> String {
    keys.iter()
        .map(|k| format!("  {} {}", quote_ident(&k.name), k.ty.hive()))
        .collect::<Vec<_>>()
        .join(",\n")
}

fn properties_block(properties: &[(String, String)]) -> String {
    properties
        .iter()
        .map(|(k, v)| format!("  {} = {}", quote_string(k), quote_string(v)))
        .collect::<Vec<_>>()
        .join(",\n")
}

/// The partition value as a literal of the column's type: integers
/// unquoted (`05` as `5`), anything else a string.
fn partition_literal(key: &PartitionKey, value: &str) -> String {
    match key.ty {
        PartitionType::Int | PartitionType::BigInt => match value.parse::<i64>() {
            Ok(number) => number.to_string(),
            Err(_) => quote_string(value),
        },
        PartitionType::String => quote_string(value),
    }
}

/// The qualified table name, quoted.
pub fn table_ref(table: &Table) -> String {
    format!(
        "{}.{}",
        quote_ident(&table.database),
        quote_ident(&table.name)
    )
}

/// `CREATE EXTERNAL TABLE IF NOT EXISTS ...` (without a trailing `;`), with
/// `extra` table properties (partition projection) after the table's own.
pub fn create_table(table: &Table, extra: &[(String, String)]) -> String {
    let mut sql = format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS {} (\n{}\n)\n",
        table_ref(table),
        column_lines(&table.columns)
    );
    if !table.partition_keys.is_empty() {
        sql.push_str(&format!(
            "PARTITIONED BY (\n{}\n)\n",
            partition_key_lines(&table.partition_keys)
        ));
    }
    sql.push_str(&format!(
        "ROW FORMAT SERDE {}\nWITH SERDEPROPERTIES (\n{}\n)\n",
        quote_string(table.serde()),
        properties_block(&table.serde_parameters())
    ));
    sql.push_str(&format!(
        "STORED AS INPUTFORMAT {}\nOUTPUTFORMAT {}\n",
        quote_string(table.input_format()),
        quote_string(table.output_format())
    ));
    sql.push_str(&format!("LOCATION {}\n", quote_string(&table.location)));
    let mut properties = table.parameters.clone();
    properties.extend(extra.iter().cloned());
    sql.push_str(&format!(
        "TBLPROPERTIES (\n{}\n)",
        properties_block(&properties)
    ));
    sql
}

/// One `ALTER TABLE ... ADD IF NOT EXISTS PARTITION (...) LOCATION '...'`
/// per partition (without trailing `;`).
pub fn add_partitions(table: &Table) -> Vec<String> {
    table
        .partitions
        .iter()
        .map(|partition| {
            let spec = table
                .partition_keys
                .iter()
                .zip(&partition.values)
                .map(|(key, value)| {
                    format!(
                        "{} = {}",
                        quote_ident(&key.name),
                        partition_literal(key, value)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "ALTER TABLE {} ADD IF NOT EXISTS PARTITION ({spec}) LOCATION {}",
                table_ref(table),
                quote_string(&partition.location)
            )
        })
        .collect()
}

/// The whole script: `header` and the table's notes as `--` comments, the
/// CREATE statement, then the partition statements (none with projection).
pub fn script(table: &Table, header: &[String], projection: Option<&[(String, String)]>) -> String {
    let mut out = String::new();
    for line in header.iter().chain(&table.notes) {
        for part in line.lines() {
            out.push_str(&format!("-- {part}\n"));
        }
    }
    out.push_str(&create_table(table, projection.unwrap_or(&[])));
    out.push_str(";\n");
    if projection.is_none() {
        let statements = add_partitions(table);
        if !statements.is_empty() {
            out.push_str(&format!(
                "\n-- {} partition{}\n",
                statements.len(),
                if statements.len() == 1 { "" } else { "s" }
            ));
        }
        for statement in statements {
            out.push_str(&statement);
            out.push_str(";\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::infer::JsonType;
    use crate::catalog::layout::{analyze, Listed};
    use crate::catalog::table::{build, CrawlStats, TableSpec};

    fn table(keys: &[&str], fields: &[(&str, JsonType)]) -> Table {
        let listed: Vec<Listed> = keys
            .iter()
            .map(|k| Listed {
                key: (*k).to_owned(),
                size: 10,
            })
            .collect();
        let layout = analyze("topics/t/", &listed).unwrap();
        let fields: Vec<(String, JsonType)> = fields
            .iter()
            .map(|(k, t)| ((*k).to_owned(), t.clone()))
            .collect();
        build(
            TableSpec {
                database: "default".into(),
                name: "t".into(),
                location: "s3://b/topics/t/".into(),
            },
            &layout,
            &fields,
            &CrawlStats::default(),
        )
    }

    #[test]
    fn identifiers_are_always_backquoted() {
        assert_eq!(quote_ident("date"), "`date`");
        assert_eq!(quote_ident("adj close"), "`adj close`");
        assert_eq!(quote_ident("partition"), "`partition`");
        assert_eq!(quote_ident("1st"), "`1st`");
        assert_eq!(quote_ident("a`b"), "`a``b`");
    }

    #[test]
    fn strings_use_hive_backslash_escapes() {
        assert_eq!(quote_string("s3://b/p/"), "'s3://b/p/'");
        assert_eq!(quote_string("O'Reilly"), r"'O\'Reilly'");
        assert_eq!(quote_string(r"a\b"), r"'a\\b'");
        assert_eq!(quote_string("a\nb\tc"), r"'a\nb\tc'");
        assert_eq!(quote_string("x\u{1}"), r"'x\u0001'");
    }

    #[test]
    fn struct_and_array_types_quote_their_field_names() {
        let ty = HiveType::Array(Box::new(HiveType::Struct(vec![Column {
            name: "date".into(),
            glue_name: "Date".into(),
            key: "Date".into(),
            ty: HiveType::Struct(vec![Column {
                name: "x y".into(),
                glue_name: "X y".into(),
                key: "X y".into(),
                ty: HiveType::BigInt,
            }]),
        }])));
        assert_eq!(type_sql(&ty), "array<struct<`date`:struct<`x y`:bigint>>>");
        assert_eq!(ty.glue(), "array<struct<Date:struct<X y:bigint>>>");
    }

    #[test]
    fn the_create_statement_has_every_clause() {
        let t = table(
            &["topics/t/partition=0/a.json", "topics/t/partition=1/b.json"],
            &[
                ("Date", JsonType::String),
                ("Adj Close", JsonType::Double),
                ("a.b", JsonType::BigInt),
            ],
        );
        let sql = create_table(&t, &[]);
        let expected = "CREATE EXTERNAL TABLE IF NOT EXISTS `default`.`t` (\n  \
             `date` string,\n  `adj close` double,\n  `a_b` bigint\n)\n\
             PARTITIONED BY (\n  `partition` int\n)\n\
             ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n\
             WITH SERDEPROPERTIES (\n  'ignore.malformed.json' = 'FALSE',\n  'case.insensitive' = 'TRUE',\n  'mapping.a_b' = 'a.b'\n)\n\
             STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n\
             OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n\
             LOCATION 's3://b/topics/t/'\n\
             TBLPROPERTIES (\n  'classification' = 'json',\n  'compressionType' = 'none',\n  'typeOfData' = 'file',\n  \
             'objectCount' = '2',\n  'recordCount' = '0',\n  'averageRecordSize' = '0',\n  'sizeKey' = '20'\n)";
        assert_eq!(sql, expected);
    }

    #[test]
    fn a_parquet_table_is_stored_as_parquet() {
        let t = table(
            &[
                "topics/t/partition=0/t+0+00000000000000000000.parquet",
                "topics/t/partition=1/t+1+00000000000000000000.parquet",
            ],
            &[("date", JsonType::String), ("Close", JsonType::Double)],
        );
        let sql = create_table(&t, &[]);
        let expected = "CREATE EXTERNAL TABLE IF NOT EXISTS `default`.`t` (\n  \
             `date` string,\n  `close` double\n)\n\
             PARTITIONED BY (\n  `partition` int\n)\n\
             ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n\
             WITH SERDEPROPERTIES (\n  'serialization.format' = '1'\n)\n\
             STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'\n\
             OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'\n\
             LOCATION 's3://b/topics/t/'\n\
             TBLPROPERTIES (\n  'classification' = 'parquet',\n  'compressionType' = 'none',\n  'typeOfData' = 'file',\n  \
             'objectCount' = '2',\n  'recordCount' = '0',\n  'averageRecordSize' = '0',\n  'sizeKey' = '20'\n)";
        assert_eq!(sql, expected);
        assert_eq!(
            add_partitions(&t)[1],
            "ALTER TABLE `default`.`t` ADD IF NOT EXISTS PARTITION (`partition` = 1) LOCATION 's3://b/topics/t/partition=1/'"
        );
    }

    #[test]
    fn partitions_are_added_with_typed_literals_and_their_locations() {
        let t = table(
            &[
                "topics/t/year=2021/month=05/a.json",
                "topics/t/year=2021/month=12/a.json",
            ],
            &[("x", JsonType::BigInt)],
        );
        assert_eq!(
            add_partitions(&t),
            vec![
                "ALTER TABLE `default`.`t` ADD IF NOT EXISTS PARTITION (`year` = 2021, `month` = 5) LOCATION 's3://b/topics/t/year=2021/month=05/'",
                "ALTER TABLE `default`.`t` ADD IF NOT EXISTS PARTITION (`year` = 2021, `month` = 12) LOCATION 's3://b/topics/t/year=2021/month=12/'",
            ]
        );
        let t = table(
            &["topics/t/index=O%27Reilly/a.json"],
            &[("x", JsonType::BigInt)],
        );
        assert_eq!(
            add_partitions(&t),
            vec![
                r"ALTER TABLE `default`.`t` ADD IF NOT EXISTS PARTITION (`index` = 'O\'Reilly') LOCATION 's3://b/topics/t/index=O%27Reilly/'"
            ]
        );
    }

    #[test]
    fn projection_covers_the_values_seen() {
        let t = table(
            &[
                "topics/t/year=2020/month=11/a.json",
                "topics/t/year=2021/month=05/a.json",
            ],
            &[("x", JsonType::BigInt)],
        );
        assert_eq!(
            projection_properties(&t).unwrap(),
            [
                ("projection.enabled", "true"),
                ("projection.year.type", "integer"),
                ("projection.year.range", "2020,2021"),
                ("projection.month.type", "integer"),
                ("projection.month.range", "5,11"),
                ("projection.month.digits", "2"),
                (
                    "storage.location.template",
                    "s3://b/topics/t/year=${year}/month=${month}/"
                ),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let t = table(
            &[
                "topics/t/index=NYA/a.json",
                "topics/t/index=HSI/a.json",
                "topics/t/index=NYA/b.json",
            ],
            &[("x", JsonType::BigInt)],
        );
        let properties = projection_properties(&t).unwrap();
        assert!(properties.contains(&("projection.index.type".into(), "enum".into())));
        assert!(properties.contains(&("projection.index.values".into(), "HSI,NYA".into())));
    }

    #[test]
    fn projection_refuses_what_it_cannot_express() {
        let t = table(&["topics/t/index=a%2Fb/a.json"], &[("x", JsonType::BigInt)]);
        let error = projection_properties(&t).unwrap_err();
        assert!(error.contains("stored escaped (`a%2Fb`)"), "{error}");
        let t = table(&["topics/t/index=a,b/a.json"], &[("x", JsonType::BigInt)]);
        assert!(projection_properties(&t).unwrap_err().contains("comma"));
        let t = table(&["topics/t/a.json"], &[("x", JsonType::BigInt)]);
        assert!(projection_properties(&t)
            .unwrap_err()
            .contains("no partition folders"));
    }

    #[test]
    fn the_script_has_comments_the_table_and_its_partitions() {
        let t = table(
            &["topics/t/partition=0/a.json", "topics/t/partition=3/b.json"],
            &[("Index", JsonType::String)],
        );
        let sql = script(&t, &["crawled s3://b/topics/t/".to_owned()], None);
        assert!(
            sql.starts_with("-- crawled s3://b/topics/t/\nCREATE EXTERNAL TABLE"),
            "{sql}"
        );
        assert!(sql.contains("\n-- 2 partitions\nALTER TABLE"), "{sql}");
        assert_eq!(sql.matches(";\n").count(), 3, "{sql}");
        let projected = projection_properties(&t).unwrap();
        let sql = script(&t, &[], Some(&projected));
        assert!(!sql.contains("ALTER TABLE"), "{sql}");
        assert!(
            sql.contains("'projection.partition.range' = '0,3'"),
            "{sql}"
        );
    }
}
