//! The footer of a Parquet object: its columns (as an Arrow schema) and its
//! row count, read from the object's last bytes only. `sluice catalog crawl`
//! and `sluice query` fetch the tail of an object (with a ranged GET), and
//! fetch a longer tail when the footer is longer than the first guess.

use bytes::Bytes;
use datafusion::arrow::datatypes::Schema;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;

/// The last bytes fetched first: most footers fit (the sink's files have a
/// footer of a few KB).
pub const FIRST_TAIL_BYTES: u64 = 64 * 1024;

/// What a footer says.
#[derive(Debug, Clone, PartialEq)]
pub struct Footer {
    /// The file's columns (the Arrow schema the writer stored, else the one
    /// derived from the Parquet schema).
    pub schema: Schema,
    /// Rows in the file.
    pub rows: u64,
    /// The uncompressed size of its row groups.
    pub uncompressed_bytes: u64,
}

/// The footer, or how many last bytes it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Tail {
    /// The tail held the whole footer.
    Footer(Footer),
    /// Fetch the last `n` bytes and parse again.
    Needs(u64),
}

/// The range of the first tail to fetch of an object of `size` bytes.
pub fn first_tail(size: u64) -> std::ops::Range<u64> {
    size.saturating_sub(FIRST_TAIL_BYTES)..size
}

/// Parses the footer from `tail`, the last bytes of an object of `size`
/// bytes (the whole object when `tail` is as long). Errors say what is
/// wrong, for a message that names the object.
pub fn parse_tail(tail: &Bytes, size: u64) -> Result<Tail, String> {
    let mut reader = ParquetMetaDataReader::new();
    match reader.try_parse_sized(tail, size) {
        Ok(()) => {}
        Err(ParquetError::NeedMoreData(needed)) if (needed as u64) > tail.len() as u64 => {
            return Ok(Tail::Needs(needed as u64));
        }
        Err(error) => return Err(format!("not a readable Parquet file ({error})")),
    }
    let metadata = reader
        .finish()
        .map_err(|e| format!("not a readable Parquet file ({e})"))?;
    let file = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(|e| format!("its Parquet schema has no Arrow equivalent ({e})"))?;
    let uncompressed_bytes = metadata
        .row_groups()
        .iter()
        .map(|group| group.total_byte_size().max(0) as u64)
        .sum();
    Ok(Tail::Footer(Footer {
        schema,
        rows: file.num_rows().max(0) as u64,
        uncompressed_bytes,
    }))
}

#[cfg(test)]
pub mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// A Parquet file of `columns` (name, values), every value of a column
    /// the same Arrow type, in row groups of `group_rows`.
    pub fn parquet_file(columns: Vec<(&str, ArrayRef)>, group_rows: usize) -> Bytes {
        let batch = RecordBatch::try_from_iter(columns).expect("a batch");
        let mut file = Vec::new();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .build();
        let mut writer =
            ArrowWriter::try_new(&mut file, batch.schema(), Some(properties)).expect("a writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        file.into()
    }

    fn stock_file() -> Bytes {
        parquet_file(
            vec![
                (
                    "index",
                    Arc::new(StringArray::from(vec!["NYA", "HSI", "NYA"])) as ArrayRef,
                ),
                ("close", Arc::new(Float64Array::from(vec![1.5, 2.0, 3.25]))),
                ("volume", Arc::new(Int64Array::from(vec![1, 2, 3]))),
            ],
            2,
        )
    }

    #[test]
    fn the_footer_gives_columns_and_rows() {
        let file = stock_file();
        let Tail::Footer(footer) = parse_tail(&file, file.len() as u64).expect("footer") else {
            panic!("the whole file holds the footer")
        };
        assert_eq!(footer.rows, 3);
        assert!(footer.uncompressed_bytes > 0);
        let fields: Vec<(&str, &DataType)> = footer
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            fields,
            [
                ("index", &DataType::Utf8),
                ("close", &DataType::Float64),
                ("volume", &DataType::Int64)
            ]
        );
        // The last bytes alone do, as long as they hold the footer.
        let size = file.len() as u64;
        let Tail::Needs(needed) = parse_tail(&file.slice(file.len() - 8..), size).expect("tail")
        else {
            panic!("8 bytes hold only the footer's length")
        };
        assert!(needed > 8 && needed < size, "{needed}");
        let tail = file.slice(file.len() - needed as usize..);
        let Tail::Footer(again) = parse_tail(&tail, size).expect("footer") else {
            panic!("the tail asked for holds the footer")
        };
        assert_eq!(again, footer);
        assert_eq!(first_tail(10), 0..10);
        assert_eq!(first_tail(100_000), (100_000 - FIRST_TAIL_BYTES)..100_000);
    }

    #[test]
    fn a_file_that_is_not_parquet_is_an_error() {
        let json = Bytes::from_static(b"{\"a\":1}\n{\"a\":2}\n");
        let error = parse_tail(&json, json.len() as u64).unwrap_err();
        assert!(error.starts_with("not a readable Parquet file"), "{error}");
        let file = stock_file();
        let cut = file.slice(..file.len() - 1);
        assert!(parse_tail(&cut, cut.len() as u64).is_err());
    }
}
