//! Printing a query's result: an aligned table, CSV with a header, or JSON Lines.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::writer::{LineDelimited, WriterBuilder as JsonWriterBuilder};
use datafusion::arrow::json::Writer as JsonWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;

/// Set once stdout's reader went away (`sluice query ... | head`).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout's reader went away: the rest of the result is not wanted.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Stdout that, when its reader goes away, takes in and drops the rest
/// instead of failing, as `head` expects of the command before it.
pub struct Stdout(pub std::io::StdoutLock<'static>);

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if stdout_closed() {
            return Ok(buf.len());
        }
        match self.0.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                STDOUT_CLOSED.store(true, Ordering::Relaxed);
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if stdout_closed() {
            return Ok(());
        }
        match self.0.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                STDOUT_CLOSED.store(true, Ordering::Relaxed);
                Ok(())
            }
            other => other,
        }
    }
}

/// How `sluice query` prints the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table with the column names on top.
    #[default]
    Table,
    /// CSV with a header line.
    Csv,
    /// JSON Lines: one object per row, every column in it (null included).
    Json,
}

/// Writes result batches to `out` as they come, in one format.
pub enum ResultWriter<W: Write> {
    /// The table needs every row to align the columns: kept until `finish`.
    Table {
        out: W,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    Csv(Box<datafusion::arrow::csv::Writer<W>>, SchemaRef, bool),
    Json(JsonWriter<W, LineDelimited>),
}

impl<W: Write> ResultWriter<W> {
    pub fn new(format: OutputFormat, schema: SchemaRef, out: W) -> ResultWriter<W> {
        match format {
            OutputFormat::Table => ResultWriter::Table {
                out,
                schema,
                batches: Vec::new(),
            },
            OutputFormat::Csv => ResultWriter::Csv(
                Box::new(CsvWriterBuilder::new().with_header(true).build(out)),
                schema,
                false,
            ),
            OutputFormat::Json => ResultWriter::Json(
                JsonWriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<W, LineDelimited>(out),
            ),
        }
    }

    pub fn write(&mut self, batch: RecordBatch) -> anyhow::Result<()> {
        match self {
            ResultWriter::Table { batches, .. } => batches.push(batch),
            ResultWriter::Csv(writer, _, wrote) => {
                writer.write(&batch).context("write CSV")?;
                *wrote = true;
            }
            ResultWriter::Json(writer) => writer.write(&batch).context("write JSON")?,
        }
        Ok(())
    }

    /// Writes what is left (the table; the CSV header of an empty result).
    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            ResultWriter::Table {
                mut out,
                schema,
                batches,
            } => {
                let table = pretty_format_batches_with_schema(schema, &batches)
                    .context("format the table")?;
                writeln!(out, "{table}").context("write the table")?;
                out.flush().context("write the table")?;
            }
            ResultWriter::Csv(writer, schema, wrote) => {
                let mut writer = *writer;
                if !wrote {
                    writer
                        .write(&RecordBatch::new_empty(schema))
                        .context("write CSV")?;
                }
                writer.into_inner().flush().context("write CSV")?;
            }
            ResultWriter::Json(mut writer) => {
                writer.finish().context("write JSON")?;
                writer.into_inner().flush().context("write JSON")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("index", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new("avg", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("NYA"), None])),
                Arc::new(Int64Array::from(vec![13947, 2])),
                Arc::new(Float64Array::from(vec![Some(6785.25), None])),
            ],
        )
        .expect("batch")
    }

    fn render(format: OutputFormat, batches: Vec<RecordBatch>, schema: SchemaRef) -> String {
        let mut out = Vec::new();
        let mut writer = ResultWriter::new(format, schema, &mut out);
        for batch in batches {
            writer.write(batch).expect("write");
        }
        writer.finish().expect("finish");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn csv_has_a_header_and_empty_cells_for_null() {
        let batch = batch();
        let text = render(OutputFormat::Csv, vec![batch.clone()], batch.schema());
        assert_eq!(text, "index,n,avg\nNYA,13947,6785.25\n,2,\n");
    }

    #[test]
    fn an_empty_result_still_has_its_header() {
        let schema = batch().schema();
        assert_eq!(
            render(OutputFormat::Csv, vec![], schema.clone()),
            "index,n,avg\n"
        );
        let table = render(OutputFormat::Table, vec![], schema.clone());
        assert!(table.contains("| index | n | avg |"), "{table}");
        assert_eq!(render(OutputFormat::Json, vec![], schema), "");
    }

    #[test]
    fn json_lines_with_every_column() {
        let batch = batch();
        let text = render(OutputFormat::Json, vec![batch.clone()], batch.schema());
        assert_eq!(
            text,
            "{\"index\":\"NYA\",\"n\":13947,\"avg\":6785.25}\n{\"index\":null,\"n\":2,\"avg\":null}\n"
        );
    }

    #[test]
    fn table_is_aligned() {
        let batch = batch();
        let text = render(OutputFormat::Table, vec![batch.clone()], batch.schema());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "| index | n     | avg     |");
        assert_eq!(lines[3], "| NYA   | 13947 | 6785.25 |");
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{text}");
    }
}
