//! The columns of a table, inferred from a sample of its JSON Lines records.
//!
//! Records are sampled from objects spread evenly over the table's listing
//! (the first and the last included), up to a number of records per object,
//! and typed by Arrow's JSON inference (the one DataFusion uses) over all of
//! them at once, so that types widen across objects rather than clash:
//! integers are `Int64`, numbers with a fraction or an exponent `Float64`,
//! a column with both is `Float64`; strings `Utf8`, booleans `Boolean`,
//! objects structs, arrays lists. A column with values of different kinds
//! (a number in one record, a string in another) is `Utf8`; an object in
//! one record and a scalar in another is an error. Columns are in the order
//! they first appear in the sample; a column null in every sampled record is
//! `Utf8`.
//!
//! The table reads every record with these types (DataFusion's JSON reader,
//! which is Arrow's). A value that does not fit its column, in or past the
//! sample — a number in a `Utf8` column, a string in a number column — fails
//! the query with Arrow's message naming the column (`whilst decoding field
//! 'x': expected string got 1`); a fraction in an `Int64` column is cut to
//! an integer by Arrow's reader; a column first seen past the sample is not
//! in the table. Sampling every record (`--sample-objects 0
//! --sample-records 0`) leaves only the mixed-kind columns failing.
//!
//! A table of Parquet objects takes its columns from the footers of the
//! sampled objects (their last bytes only), merged in first-seen order with
//! the same widening ([`widen`]): integers of any width with floating point
//! are `Float64`, integers of different widths `Int64`, other mixes `Utf8`,
//! structs field by field, lists by their items. DataFusion then casts each
//! file's columns to the table's types (`Int64` in one file, `Float64` in
//! the table: read as `Float64`); a column missing from a file is null there.

use std::io::BufRead;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::arrow::json::reader::infer_json_schema_from_iterator;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde_json::Value;

/// How much of the data is read to infer the columns.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// Objects read; `0` reads every object.
    pub objects: usize,
    /// Records read from each of those objects; `0` reads all of them.
    pub records_per_object: usize,
}

/// The first bytes fetched to sample an object's first records; four times
/// more while they hold fewer records than wanted, up to the whole object.
const FIRST_SAMPLE_BYTES: u64 = 256 * 1024;

/// Objects sampled at once.
const CONCURRENT_SAMPLES: usize = 8;

/// The indices of `sample` items out of `total`, spread evenly, the first
/// and the last included; all of them when `sample` is 0 or at least `total`.
pub fn spread(total: usize, sample: usize) -> Vec<usize> {
    if sample == 0 || sample >= total {
        return (0..total).collect();
    }
    if sample == 1 {
        return vec![0];
    }
    let mut picked: Vec<usize> = (0..sample)
        .map(|i| i * (total - 1) / (sample - 1))
        .collect();
    picked.dedup();
    picked
}

/// The JSON records at the start of an object's `bytes` (gunzipped when
/// `gzip`), at most `limit` of them (`0`: all). `truncated` says the bytes
/// are only the object's first bytes: a last line without its newline, or a
/// gzip stream ending early, is then the cut and not an error. `key` names
/// the object in errors.
pub fn records_of(
    bytes: &[u8],
    gzip: bool,
    truncated: bool,
    limit: usize,
    key: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut reader: Box<dyn BufRead + '_> = if gzip {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            bytes,
        )))
    } else {
        Box::new(bytes)
    };
    let mut records = Vec::new();
    let mut line = String::new();
    let mut number = 0usize;
    while limit == 0 || records.len() < limit {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) if truncated && gzip => break,
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                bail!("object `{key}`: line {} is not UTF-8: {error}", number + 1)
            }
            Err(error) => bail!(
                "object `{key}`: cannot read{}: {error}",
                if gzip { " it as gzip" } else { "" }
            ),
        }
        number += 1;
        if truncated && !line.ends_with('\n') {
            break;
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(text)
            .with_context(|| format!("object `{key}`: line {number} is not JSON"))?;
        if !value.is_object() {
            bail!("object `{key}`: line {number} is not a JSON object but {value}");
        }
        records.push(value);
    }
    Ok(records)
}

/// Infers the columns of `records` (see the module docs).
pub fn infer(records: &[Value]) -> anyhow::Result<Schema> {
    let inferred = infer_json_schema_from_iterator(records.iter().map(|r| Ok(r.clone()))).context(
        "the sampled records do not agree on a column's shape (an object in one \
             record, a number or a string in another)",
    )?;
    let order = KeyOrder::of(records.iter());
    Ok(Schema::new(order.arrange(inferred.fields())))
}

/// Samples the objects `files` of a table in `store` and infers its
/// columns. `gzip` tells whether an object is gzip-compressed.
pub async fn sample_and_infer(
    store: &Arc<dyn ObjectStore>,
    files: &[ObjectMeta],
    gzip: impl Fn(&ObjectMeta) -> bool,
    sampling: Sampling,
    describe: impl Fn(&ObjectMeta) -> String,
) -> anyhow::Result<Schema> {
    let samples: Vec<Vec<Value>> = futures::stream::iter(spread(files.len(), sampling.objects))
        .map(|index| {
            let file = &files[index];
            sample_object(
                store,
                file,
                gzip(file),
                sampling.records_per_object,
                describe(file),
            )
        })
        .buffered(CONCURRENT_SAMPLES)
        .try_collect()
        .await?;
    let records: Vec<Value> = samples.into_iter().flatten().collect();
    if records.is_empty() {
        bail!(
            "the sampled objects hold no records to infer the columns from \
             (read more with --sample-objects 0)"
        );
    }
    infer(&records)
}

/// The columns of a table of Parquet objects `files` in `store`: the
/// footers of `objects` of them (`0`: all) spread over the listing, merged.
/// `describe` names an object in errors.
pub async fn sample_parquet_schema(
    store: &Arc<dyn ObjectStore>,
    files: &[ObjectMeta],
    objects: usize,
    describe: impl Fn(&ObjectMeta) -> String,
) -> anyhow::Result<Schema> {
    let schemas: Vec<Schema> = futures::stream::iter(spread(files.len(), objects))
        .map(|index| {
            let file = &files[index];
            parquet_footer_schema(store, file, describe(file))
        })
        .buffered(CONCURRENT_SAMPLES)
        .try_collect()
        .await?;
    let schema = merge_schemas(&schemas);
    if schema.fields().is_empty() {
        bail!("the sampled Parquet objects have no columns");
    }
    Ok(schema)
}

/// The Arrow schema in the footer of the Parquet object `file`, fetching
/// only its last bytes. `name` names it in errors.
async fn parquet_footer_schema(
    store: &Arc<dyn ObjectStore>,
    file: &ObjectMeta,
    name: String,
) -> anyhow::Result<Schema> {
    use crate::catalog::parquet::{first_tail, parse_tail, Tail};
    let what_to_do = "every object of a table of Parquet objects must be a Parquet file";
    let mut range = first_tail(file.size);
    for _ in 0..2 {
        let tail = store
            .get_range(&file.location, range.clone())
            .await
            .with_context(|| format!("read the footer of {name}"))?;
        match parse_tail(&tail, file.size).map_err(|e| anyhow!("{name}: {e}; {what_to_do}"))? {
            Tail::Footer(footer) => return Ok(footer.schema),
            Tail::Needs(needed) => range = file.size.saturating_sub(needed)..file.size,
        }
    }
    bail!("{name}: the Parquet footer is not in the object's last bytes; {what_to_do}")
}

/// The columns of every schema of `schemas`, in first-seen order, each of
/// the type every file's fits ([`widen`]), nullable; a `Null` column `Utf8`.
pub fn merge_schemas(schemas: &[Schema]) -> Schema {
    let mut fields: Vec<Field> = Vec::new();
    for schema in schemas {
        merge_fields_into(&mut fields, schema.fields());
    }
    Schema::new(
        fields
            .into_iter()
            .map(|f| {
                let data_type = no_null(f.data_type());
                f.with_data_type(data_type).with_nullable(true)
            })
            .collect::<Vec<_>>(),
    )
}

fn merge_fields_into(fields: &mut Vec<Field>, more: &Fields) {
    for field in more {
        match fields.iter_mut().find(|f| f.name() == field.name()) {
            Some(existing) => {
                let data_type = widen(existing.data_type(), field.data_type());
                *existing = existing
                    .clone()
                    .with_data_type(data_type)
                    .with_nullable(true);
            }
            None => fields.push(field.as_ref().clone().with_nullable(true)),
        }
    }
}

fn is_integer(data_type: &DataType) -> bool {
    data_type.is_integer()
}

fn is_number(data_type: &DataType) -> bool {
    data_type.is_integer() || data_type.is_floating()
}

/// The narrowest type of the two that both fit: `Null` and any type is that
/// type; integers of different widths `Int64`; integers and floating point
/// `Float64`; the string types `Utf8`; structs merged by field name; lists
/// by their items; anything else `Utf8`.
pub fn widen(a: &DataType, b: &DataType) -> DataType {
    if a == b {
        return a.clone();
    }
    match (a, b) {
        (DataType::Null, other) | (other, DataType::Null) => other.clone(),
        (a, b) if is_integer(a) && is_integer(b) => DataType::Int64,
        (a, b) if is_number(a) && is_number(b) => DataType::Float64,
        (DataType::Struct(a), DataType::Struct(b)) => {
            let mut fields: Vec<Field> = a.iter().map(|f| f.as_ref().clone()).collect();
            merge_fields_into(&mut fields, b);
            DataType::Struct(Fields::from(fields))
        }
        (DataType::List(a), DataType::List(b)) => DataType::List(Arc::new(
            a.as_ref()
                .clone()
                .with_data_type(widen(a.data_type(), b.data_type()))
                .with_nullable(true),
        )),
        _ => DataType::Utf8,
    }
}

/// `data_type` with `Null` (a column only ever null) as `Utf8`, at any depth.
fn no_null(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Null => DataType::Utf8,
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| f.as_ref().clone().with_data_type(no_null(f.data_type())))
                .collect::<Vec<_>>()
                .into(),
        ),
        DataType::List(item) => DataType::List(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(no_null(item.data_type())),
        )),
        other => other.clone(),
    }
}

/// The first `limit` records (`0`: all) of the object `file`, fetching no
/// more of it than needed. `name` names it in errors.
async fn sample_object(
    store: &Arc<dyn ObjectStore>,
    file: &ObjectMeta,
    gzip: bool,
    limit: usize,
    name: String,
) -> anyhow::Result<Vec<Value>> {
    let mut length = FIRST_SAMPLE_BYTES;
    loop {
        let whole = limit == 0 || length >= file.size;
        let bytes = if whole {
            store
                .get(&file.location)
                .await
                .with_context(|| format!("read {name}"))?
                .bytes()
                .await
                .with_context(|| format!("read {name}"))?
        } else {
            store
                .get_range(&file.location, 0..length)
                .await
                .with_context(|| format!("read the first {length} bytes of {name}"))?
        };
        let records = records_of(&bytes, gzip, !whole, limit, &name)?;
        if whole || records.len() >= limit {
            return Ok(records);
        }
        length = length.saturating_mul(4);
    }
}

/// The order keys first appear in, at each level of nesting.
#[derive(Debug, Default)]
struct KeyOrder(Vec<(String, KeyOrder)>);

impl KeyOrder {
    fn of<'a>(values: impl Iterator<Item = &'a Value>) -> KeyOrder {
        let mut order = KeyOrder::default();
        for value in values {
            order.add(value);
        }
        order
    }

    fn add(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    let position = match self.0.iter().position(|(k, _)| k == key) {
                        Some(position) => position,
                        None => {
                            self.0.push((key.clone(), KeyOrder::default()));
                            self.0.len() - 1
                        }
                    };
                    self.0[position].1.add(value);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.add(item);
                }
            }
            _ => {}
        }
    }

    fn rank(&self, name: &str) -> (usize, Option<&KeyOrder>) {
        match self.0.iter().position(|(k, _)| k == name) {
            Some(position) => (position, Some(&self.0[position].1)),
            None => (usize::MAX, None),
        }
    }

    /// `fields` in first-seen order, nested structs too; `Null` columns as `Utf8`.
    fn arrange(&self, fields: &Fields) -> Fields {
        let mut fields: Vec<(usize, Field)> = fields
            .iter()
            .map(|field| {
                let (rank, nested) = self.rank(field.name());
                let empty = KeyOrder::default();
                let data_type = arrange_type(field.data_type(), nested.unwrap_or(&empty));
                (rank, field.as_ref().clone().with_data_type(data_type))
            })
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name().cmp(b.1.name())));
        fields.into_iter().map(|(_, field)| field).collect()
    }
}

fn arrange_type(data_type: &DataType, order: &KeyOrder) -> DataType {
    match data_type {
        DataType::Null => DataType::Utf8,
        DataType::Struct(fields) => DataType::Struct(order.arrange(fields)),
        DataType::List(item) => DataType::List(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(arrange_type(item.data_type(), order)),
        )),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn values(lines: &str) -> Vec<Value> {
        records_of(lines.as_bytes(), false, false, 0, "test").expect("records")
    }

    fn types(schema: &Schema) -> Vec<(String, DataType)> {
        schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    }

    #[test]
    fn spread_picks_first_and_last_evenly() {
        assert_eq!(spread(10, 0), (0..10).collect::<Vec<_>>());
        assert_eq!(spread(3, 10), vec![0, 1, 2]);
        assert_eq!(spread(10, 1), vec![0]);
        assert_eq!(spread(10, 2), vec![0, 9]);
        assert_eq!(spread(10, 4), vec![0, 3, 6, 9]);
        assert_eq!(spread(100, 3), vec![0, 49, 99]);
        assert_eq!(spread(0, 5), Vec::<usize>::new());
    }

    #[test]
    fn stock_rows_give_floats_strings_and_integers_in_record_order() {
        let records = values(concat!(
            r#"{"Index":"HSI","Date":"1986-12-31","Open":2568.300049,"Volume":0.0,"CloseUSD":333.87900637,"volume":0}"#,
            "\n",
            r#"{"Index":"NYA","Date":"1987-01-02","Open":2540,"Volume":1.5e+10,"CloseUSD":330.2,"volume":12}"#,
            "\n"
        ));
        let schema = infer(&records).expect("schema");
        assert_eq!(
            types(&schema),
            vec![
                ("Index".to_owned(), DataType::Utf8),
                ("Date".to_owned(), DataType::Utf8),
                ("Open".to_owned(), DataType::Float64),
                ("Volume".to_owned(), DataType::Float64),
                ("CloseUSD".to_owned(), DataType::Float64),
                ("volume".to_owned(), DataType::Int64),
            ]
        );
    }

    #[test]
    fn conflicting_kinds_become_text_and_null_columns_text() {
        let records =
            values("{\"a\":1,\"b\":null,\"c\":true}\n{\"a\":\"x\",\"c\":false,\"d\":[1,2.5]}\n");
        let schema = infer(&records).expect("schema");
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
        assert_eq!(
            types(&schema),
            vec![
                ("a".to_owned(), DataType::Utf8),
                ("b".to_owned(), DataType::Utf8),
                ("c".to_owned(), DataType::Boolean),
                ("d".to_owned(), list),
            ]
        );
    }

    #[test]
    fn object_against_scalar_is_an_error() {
        let records = values("{\"a\":{\"x\":1}}\n{\"a\":2}\n");
        let error = infer(&records).unwrap_err();
        assert!(format!("{error:#}").contains("shape"), "{error:#}");
    }

    #[test]
    fn nested_struct_fields_keep_record_order() {
        let records = values("{\"s\":{\"z\":1,\"a\":\"t\",\"m\":{\"q\":1,\"b\":2}}}\n");
        let schema = infer(&records).expect("schema");
        let DataType::Struct(fields) = schema.field(0).data_type() else {
            panic!("a struct: {schema:?}");
        };
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["z", "a", "m"]);
        let DataType::Struct(inner) = fields[2].data_type() else {
            panic!("a struct: {fields:?}");
        };
        let names: Vec<&str> = inner.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["q", "b"]);
    }

    #[test]
    fn records_respect_the_limit_and_skip_blank_lines() {
        let text = "{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}\n";
        let records = records_of(text.as_bytes(), false, false, 2, "k").expect("records");
        assert_eq!(records.len(), 2);
        assert_eq!(values(text).len(), 3);
    }

    #[test]
    fn a_truncated_object_drops_its_cut_line() {
        let text = "{\"a\":1}\n{\"a\":2}\n{\"a\":";
        let records = records_of(text.as_bytes(), false, true, 10, "k").expect("records");
        assert_eq!(records.len(), 2);
        let error = records_of(text.as_bytes(), false, false, 10, "k").unwrap_err();
        assert!(
            format!("{error:#}").contains("object `k`: line 3 is not JSON"),
            "{error:#}"
        );
    }

    #[test]
    fn gzip_objects_whole_and_cut() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..1000 {
            writeln!(encoder, "{{\"i\":{i},\"f\":{i}.5}}").expect("write");
        }
        let gz = encoder.finish().expect("gzip");
        let records = records_of(&gz, true, false, 0, "k").expect("records");
        assert_eq!(records.len(), 1000);
        let cut = &gz[..gz.len() / 2];
        let records = records_of(cut, true, true, 0, "k").expect("records of a cut object");
        assert!(
            !records.is_empty() && records.len() < 1000,
            "{}",
            records.len()
        );
        assert!(records_of(cut, true, false, 0, "k").is_err());
    }

    #[tokio::test]
    async fn sampling_fetches_more_of_an_object_until_it_has_enough_records() {
        use object_store::memory::InMemory;
        use object_store::path::Path;

        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        // About 1.1 MB: more than the first fetch of 256 KiB.
        let mut text = String::new();
        for i in 0..10_000 {
            text.push_str(&format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(100)));
        }
        let location = Path::from("t/a.json");
        store
            .put(&location, text.clone().into())
            .await
            .expect("put");
        let meta = store.head(&location).await.expect("head");
        assert!(meta.size > 4 * FIRST_SAMPLE_BYTES);
        for (limit, expected) in [(10, 10), (5_000, 5_000), (0, 10_000), (20_000, 10_000)] {
            let records = sample_object(&store, &meta, false, limit, "a".into())
                .await
                .expect("sample");
            assert_eq!(records.len(), expected, "limit {limit}");
            assert_eq!(
                records.last().map(|r| r["i"].to_string()),
                Some((expected - 1).to_string())
            );
        }
    }

    #[test]
    fn parquet_schemas_widen_across_files() {
        let list = |item: DataType| DataType::List(Arc::new(Field::new_list_field(item, true)));
        let first = Schema::new(vec![
            Field::new("index", DataType::Utf8, false),
            Field::new("open", DataType::Int64, true),
            Field::new("gone", DataType::Null, true),
            Field::new("tags", list(DataType::Int32), true),
            Field::new(
                "s",
                DataType::Struct(Fields::from(vec![Field::new("a", DataType::Int64, true)])),
                true,
            ),
        ]);
        let second = Schema::new(vec![
            Field::new("open", DataType::Float64, true),
            Field::new("index", DataType::Utf8, true),
            Field::new("volume", DataType::Int32, true),
            Field::new("tags", list(DataType::Int64), true),
            Field::new(
                "s",
                DataType::Struct(Fields::from(vec![
                    Field::new("b", DataType::Boolean, true),
                    Field::new("a", DataType::Float32, true),
                ])),
                true,
            ),
        ]);
        let third = Schema::new(vec![
            Field::new("volume", DataType::Int64, true),
            Field::new("index", DataType::Int64, true),
        ]);
        let merged = merge_schemas(&[first, second, third]);
        assert_eq!(
            types(&merged),
            vec![
                ("index".to_owned(), DataType::Utf8),
                ("open".to_owned(), DataType::Float64),
                ("gone".to_owned(), DataType::Utf8),
                ("tags".to_owned(), list(DataType::Int64)),
                (
                    "s".to_owned(),
                    DataType::Struct(Fields::from(vec![
                        Field::new("a", DataType::Float64, true),
                        Field::new("b", DataType::Boolean, true),
                    ]))
                ),
                ("volume".to_owned(), DataType::Int64),
            ]
        );
        assert!(merged.fields().iter().all(|f| f.is_nullable()));
        assert_eq!(
            widen(&DataType::LargeUtf8, &DataType::Utf8View),
            DataType::Utf8
        );
        assert_eq!(widen(&DataType::Boolean, &DataType::Int64), DataType::Utf8);
    }

    #[tokio::test]
    async fn parquet_footers_are_read_from_the_objects_last_bytes() {
        use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array};
        use object_store::memory::InMemory;
        use object_store::path::Path;

        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ints = crate::catalog::parquet::tests::parquet_file(
            vec![("x", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)],
            10,
        );
        let floats = crate::catalog::parquet::tests::parquet_file(
            vec![
                ("y", Arc::new(Int64Array::from(vec![3])) as ArrayRef),
                ("x", Arc::new(Float64Array::from(vec![2.5]))),
            ],
            10,
        );
        let mut files = Vec::new();
        for (key, body) in [("t/a.parquet", ints), ("t/b.parquet", floats)] {
            let location = Path::from(key);
            store.put(&location, body.into()).await.expect("put");
            files.push(store.head(&location).await.expect("head"));
        }
        store
            .put(&Path::from("t/c.parquet"), "not parquet".into())
            .await
            .expect("put");
        let schema = sample_parquet_schema(&store, &files, 0, |m| m.location.to_string())
            .await
            .expect("schema");
        assert_eq!(
            types(&schema),
            vec![
                ("x".to_owned(), DataType::Float64),
                ("y".to_owned(), DataType::Int64)
            ]
        );
        files.push(store.head(&Path::from("t/c.parquet")).await.expect("head"));
        let error = sample_parquet_schema(&store, &files, 0, |m| m.location.to_string())
            .await
            .unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains("t/c.parquet: not a readable Parquet file"),
            "{text}"
        );
    }

    #[test]
    fn a_line_that_is_not_an_object_is_an_error() {
        let error = records_of(b"{\"a\":1}\n[1]\n", false, false, 0, "k").unwrap_err();
        assert!(
            format!("{error:#}").contains("line 2 is not a JSON object"),
            "{error:#}"
        );
    }
}
