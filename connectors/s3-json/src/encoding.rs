//! How a closed object's body is stored: the batcher gathers every object as
//! JSON Lines (that is what its offsets index), and an [`Encoding`] turns the
//! lines into the bytes uploaded — as they are, gzip-compressed, or as an
//! Apache Parquet file.
//!
//! # Parquet
//!
//! The columns of a Parquet object are inferred from its own records with
//! arrow-json's inference, which widens the way the crawler does: integers
//! are `int64`, any fraction makes a column `double`, other mixes become
//! `string` (numbers and booleans are then written as their text), objects
//! become structs and arrays lists; a column only ever null is written as
//! `string`, as Glue types it. Two objects may therefore differ (one may
//! hold `int64` where a later one holds `double`): `sluice catalog crawl` and
//! `sluice query` merge the files' schemas with the same widening, and Athena
//! reads each file by column name. The conversion is a pure function of the
//! lines, so an object cut at the same records is the same file on every run.

use std::io::{BufRead, BufReader, Cursor, Write};
use std::sync::Arc;

use arrow_json::reader::{infer_json_schema, ReaderBuilder};
use arrow_schema::{DataType, Field, Fields, Schema};
use bytes::Bytes;
use connect_core::{ConnectorError, ConnectorResult};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCodec, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::config::{Compression, Format, ParquetCompression, ParquetConfig, S3JsonConfig};
use crate::spool::{Body, SpooledBody};

/// How an object's JSON Lines are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON Lines, plain or gzip.
    Json(Compression),
    /// One Parquet file.
    Parquet(ParquetConfig),
}

impl From<Compression> for Encoding {
    fn from(compression: Compression) -> Self {
        Encoding::Json(compression)
    }
}

impl Encoding {
    /// The encoding a sink's settings ask for.
    pub fn of(config: &S3JsonConfig) -> Self {
        match config.format {
            Format::Json => Encoding::Json(config.compression),
            Format::Parquet => Encoding::Parquet(config.parquet),
        }
    }

    /// The object key's extension.
    pub fn extension(&self) -> &'static str {
        match self {
            Encoding::Json(compression) => compression.extension(),
            Encoding::Parquet(_) => "parquet",
        }
    }

    /// Whether every record must be a JSON object (a Parquet row).
    pub fn needs_objects(&self) -> bool {
        matches!(self, Encoding::Parquet(_))
    }

    /// The bytes to upload for `body`, the JSON Lines of object `key`
    /// (compression and Parquet conversion run on a blocking thread: they
    /// take milliseconds per megabyte). A body on disk is encoded into
    /// another file beside it, streaming: memory stays small.
    pub async fn encode(&self, key: &str, body: Body) -> ConnectorResult<Body> {
        let encoding = *self;
        let result = match (encoding, body) {
            (Encoding::Json(Compression::None), body) => return Ok(body),
            (Encoding::Json(Compression::Gzip), Body::Memory(body)) => {
                tokio::task::spawn_blocking(move || {
                    gzip(&body)
                        .map(Body::Memory)
                        .map_err(|e| ConnectorError::fatal_caused_by("cannot gzip", e))
                })
                .await
            }
            (Encoding::Parquet(settings), Body::Memory(body)) => {
                tokio::task::spawn_blocking(move || {
                    let file = Vec::with_capacity(body.len() / 4 + 1024);
                    to_parquet(|| Cursor::new(&body[..]), file, &settings)
                        .map(|file| Body::Memory(file.into()))
                })
                .await
            }
            (encoding, Body::Spooled(body)) => {
                tokio::task::spawn_blocking(move || encode_spooled(encoding, &body)).await
            }
        };
        result
            .map_err(|e| ConnectorError::fatal(format!("encoding task for {key} failed: {e}")))?
            .map_err(|e| ConnectorError::fatal(format!("{key}: {e}")))
    }
}

/// Encodes a body on disk into a new file beside it.
fn encode_spooled(encoding: Encoding, body: &SpooledBody) -> ConnectorResult<Body> {
    let disk = |e: std::io::Error| {
        ConnectorError::fatal_caused_by(
            "cannot encode a large object in `spool_dir`; check that directory's free space",
            e,
        )
    };
    let out = body.new_file().map_err(disk)?;
    let out = match encoding {
        Encoding::Json(Compression::None) => return Ok(Body::Spooled(body.clone())),
        Encoding::Json(Compression::Gzip) => {
            let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            std::io::copy(&mut body.reader(), &mut encoder).map_err(disk)?;
            encoder.finish().map_err(disk)?
        }
        Encoding::Parquet(settings) => {
            to_parquet(|| BufReader::new(body.reader()), out, &settings)?
        }
    };
    body.written(out).map(Body::Spooled).map_err(disk)
}

/// gzip at the default level.
pub fn gzip(body: &[u8]) -> std::io::Result<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::default(),
    );
    encoder.write_all(body)?;
    Ok(encoder.finish()?.into())
}

/// One Parquet file, written to `file`, holding the JSON objects of the
/// lines `lines` reads (called twice: once to infer the columns, once to
/// read the rows), in order, in row groups of at most
/// `settings.row_group_rows` rows.
pub fn to_parquet<R: BufRead, W: Write + Send>(
    lines: impl Fn() -> R,
    file: W,
    settings: &ParquetConfig,
) -> ConnectorResult<W> {
    let cannot = |what: &str, e: &dyn std::fmt::Display| {
        ConnectorError::fatal(format!(
            "cannot write the records as Parquet ({what}: {e}); a field holds an object in one record and a plain value or list in another — \
             make the records agree with a transform, or use `format: json`"
        ))
    };
    let (schema, _) =
        infer_json_schema(lines(), None).map_err(|e| cannot("inferring columns", &e))?;
    let schema = Arc::new(Schema::new(typed_fields(schema.fields())));
    let rows = settings.row_group_rows.max(1);
    let reader = ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .with_batch_size(rows.min(8192))
        .build(lines())
        .map_err(|e| cannot("reading records", &e))?;
    let codec = match settings.compression {
        ParquetCompression::Snappy => ParquetCodec::SNAPPY,
        ParquetCompression::Zstd => ParquetCodec::ZSTD(ZstdLevel::default()),
        ParquetCompression::Gzip => ParquetCodec::GZIP(GzipLevel::default()),
        ParquetCompression::None => ParquetCodec::UNCOMPRESSED,
    };
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows))
        .set_compression(codec)
        .set_created_by(format!("sluice s3_json {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties))
        .map_err(|e| cannot("starting the file", &e))?;
    for batch in reader {
        let batch = batch.map_err(|e| cannot("reading records", &e))?;
        writer
            .write(&batch)
            .map_err(|e| cannot("writing rows", &e))?;
    }
    writer
        .into_inner()
        .map_err(|e| cannot("finishing the file", &e))
}

/// `fields` with every column that was only ever null typed `string` (Glue
/// does the same; Parquet readers and Athena have no use for a null type).
fn typed_fields(fields: &Fields) -> Vec<Field> {
    fields
        .iter()
        .map(|field| {
            let data_type = typed(field.data_type());
            Field::new(field.name(), data_type, true)
        })
        .collect()
}

fn typed(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Null => DataType::Utf8,
        DataType::Struct(fields) => DataType::Struct(typed_fields(fields).into()),
        DataType::List(item) => DataType::List(Arc::new(Field::new(
            item.name(),
            typed(item.data_type()),
            true,
        ))),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_array::RecordBatch;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn parquet_of(lines: &[u8], settings: &ParquetConfig) -> ConnectorResult<Bytes> {
        to_parquet(|| Cursor::new(lines), Vec::new(), settings).map(Bytes::from)
    }

    fn read(file: Bytes) -> (Vec<RecordBatch>, usize) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("a Parquet file");
        let row_groups = builder.metadata().num_row_groups();
        let batches = builder
            .build()
            .expect("reader")
            .collect::<Result<Vec<_>, _>>()
            .expect("batches");
        (batches, row_groups)
    }

    #[test]
    fn json_lines_become_typed_columns_in_row_groups() {
        let lines = (0..25)
            .map(|i| {
                format!(
                    r#"{{"index":"NYA","close":{i}.5,"volume":{i},"gone":null,"tags":["a"],"at":{{"y":{i}}}}}"#
                ) + "\n"
            })
            .collect::<String>();
        let settings = ParquetConfig {
            row_group_rows: 10,
            compression: ParquetCompression::Snappy,
        };
        let file = parquet_of(lines.as_bytes(), &settings).expect("converts");
        assert_eq!(&file[..4], b"PAR1");
        let again = parquet_of(lines.as_bytes(), &settings).expect("converts");
        assert_eq!(file, again, "the same lines make the same file");
        let (batches, row_groups) = read(file);
        assert_eq!(row_groups, 3, "25 rows in groups of 10");
        let schema = batches[0].schema();
        let columns: Vec<(&str, &DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(columns[0], ("index", &DataType::Utf8));
        assert_eq!(columns[1], ("close", &DataType::Float64));
        assert_eq!(columns[2], ("volume", &DataType::Int64));
        assert_eq!(columns[3], ("gone", &DataType::Utf8));
        assert!(matches!(columns[4].1, DataType::List(_)));
        assert!(matches!(columns[5].1, DataType::Struct(_)));
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 25);
        let volumes: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(2).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(volumes, (0..25).collect::<Vec<i64>>());
        let close = batches[0].column(1).as_primitive::<Float64Type>();
        assert_eq!(close.value(1), 1.5);
    }

    #[test]
    fn mixed_values_widen_and_conflicts_are_errors() {
        let lines = "{\"a\":1,\"b\":\"x\"}\n{\"a\":2.5,\"b\":7}\n";
        let (batches, _) = read(parquet_of(lines.as_bytes(), &ParquetConfig::default()).unwrap());
        let schema = batches[0].schema();
        assert_eq!(schema.field(0).data_type(), &DataType::Float64);
        assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
        assert_eq!(batches[0].column(1).as_string::<i32>().value(1), "7");

        let error =
            parquet_of(b"{\"a\":{\"b\":1}}\n{\"a\":3}\n", &ParquetConfig::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("cannot write the records as Parquet"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn every_encoding_names_its_extension_and_encodes() {
        let body = Bytes::from_static(b"{\"a\":1}\n");
        let plain = Encoding::Json(Compression::None);
        assert_eq!(plain.extension(), "json");
        let memory = Body::Memory(body.clone());
        assert_eq!(
            plain.encode("k", memory.clone()).await.unwrap().bytes(),
            body
        );
        let gz = Encoding::Json(Compression::Gzip);
        assert_eq!(gz.extension(), "json.gz");
        assert_eq!(
            &gz.encode("k", memory.clone()).await.unwrap().bytes()[..2],
            &[0x1f, 0x8b]
        );
        let parquet = Encoding::Parquet(ParquetConfig::default());
        assert_eq!(parquet.extension(), "parquet");
        assert!(parquet.needs_objects());
        assert_eq!(
            &parquet.encode("k", memory).await.unwrap().bytes()[..4],
            b"PAR1"
        );
        let error = parquet
            .encode(
                "t/x.parquet",
                Body::Memory(Bytes::from_static(b"{\"a\":{}}\n{\"a\":[1]}\n")),
            )
            .await
            .unwrap_err();
        assert!(error.to_string().starts_with("t/x.parquet: "), "{error}");
    }

    /// A body on disk encodes, streaming into a file, to the very bytes
    /// the same lines encode to in memory.
    #[tokio::test]
    async fn a_body_on_disk_encodes_to_the_same_bytes_as_in_memory() {
        let lines: String = (0..500)
            .map(|i| format!("{{\"i\":{i},\"s\":\"row {i}\",\"x\":{i}.25}}\n"))
            .collect();
        let records: Vec<(i64, usize)> = lines
            .match_indices('\n')
            .enumerate()
            .map(|(i, (at, _))| (i as i64, at + 1))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let spooled = crate::spool::SpoolWriter::create(
            Arc::new(dir.path().to_path_buf()),
            lines.as_bytes(),
            &records,
        )
        .unwrap()
        .finish()
        .unwrap();
        let settings = ParquetConfig {
            row_group_rows: 64,
            ..Default::default()
        };
        for encoding in [
            Encoding::Json(Compression::None),
            Encoding::Json(Compression::Gzip),
            Encoding::Parquet(settings),
        ] {
            let memory = Bytes::from(lines.clone());
            let in_memory = encoding.encode("k", Body::Memory(memory)).await.unwrap();
            let on_disk = encoding
                .encode("k", Body::Spooled(spooled.body_from(0)))
                .await
                .unwrap();
            assert!(matches!(on_disk, Body::Spooled(_)), "{encoding:?}");
            assert_eq!(on_disk.bytes(), in_memory.bytes(), "{encoding:?}");
        }
    }
}
