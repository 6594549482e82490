//! Printing results: Arrow's pretty printer for `table`, Arrow's CSV and JSON writers for the
//! others. Vectors are printed in pgvector's text form (`[1,2,3]`) in every format; in `table`
//! mode every cell is shown the way psql shows it (`t`/`f`, shortest floats).

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use vela_query::{cell_text, StatementResult};

/// An output format (`--format`, `.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    JsonLines,
}

impl Format {
    pub const NAMES: [&'static str; 4] = ["table", "csv", "json", "jsonl"];

    pub fn parse(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "table" | "box" | "aligned" => Some(Format::Table),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" | "jsonlines" => Some(Format::JsonLines),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::JsonLines => "jsonl",
        }
    }
}

/// Something went wrong while formatting or writing output.
#[derive(Debug)]
pub struct OutputError(pub String);

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for OutputError {
    fn from(e: std::io::Error) -> Self {
        OutputError(e.to_string())
    }
}

impl From<arrow::error::ArrowError> for OutputError {
    fn from(e: arrow::error::ArrowError) -> Self {
        OutputError(e.to_string())
    }
}

/// A column as text, cell by cell (`NULL` stays null).
fn text_column(array: &dyn Array) -> ArrayRef {
    let cells: Vec<Option<String>> = (0..array.len()).map(|i| cell_text(array, i)).collect();
    Arc::new(StringArray::from(cells))
}

/// `batches` with the columns selected by `convert` turned into text columns.
fn convert_columns(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    convert: impl Fn(&DataType) -> bool,
) -> Result<(SchemaRef, Vec<RecordBatch>), OutputError> {
    if !schema.fields().iter().any(|f| convert(f.data_type())) {
        return Ok((schema.clone(), batches.to_vec()));
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if convert(f.data_type()) {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let new_schema = Arc::new(Schema::new(fields));
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let columns: Vec<ArrayRef> = b
            .columns()
            .iter()
            .map(|c| {
                if convert(c.data_type()) {
                    text_column(c.as_ref())
                } else {
                    c.clone()
                }
            })
            .collect();
        out.push(RecordBatch::try_new(new_schema.clone(), columns)?);
    }
    Ok((new_schema, out))
}

fn is_vector(t: &DataType) -> bool {
    matches!(t, DataType::FixedSizeList(..) | DataType::List(_))
}

/// Writes one statement's result: rows in `format`, or the command tag for a statement that
/// returns none.
pub fn write_result(
    out: &mut dyn Write,
    result: &StatementResult,
    format: Format,
) -> Result<(), OutputError> {
    if !result.returns_rows {
        writeln!(out, "{}", result.tag)?;
        return Ok(());
    }
    let rows: usize = result.batches.iter().map(|b| b.num_rows()).sum();
    match format {
        Format::Table => {
            let (schema, batches) = convert_columns(&result.schema, &result.batches, |t| {
                !matches!(t, DataType::Utf8 | DataType::Int64)
            })?;
            let table = arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)?;
            writeln!(out, "{table}")?;
            writeln!(out, "({rows} {})", if rows == 1 { "row" } else { "rows" })?;
        }
        Format::Csv => {
            let (schema, batches) = convert_columns(&result.schema, &result.batches, is_vector)?;
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if batches.iter().all(|b| b.num_rows() == 0) {
                // The writer prints the header with the first batch; make sure there is one.
                w.write(&RecordBatch::new_empty(schema))?;
            } else {
                for b in &batches {
                    w.write(b)?;
                }
            }
        }
        Format::Json => {
            let (_, batches) = convert_columns(&result.schema, &result.batches, is_vector)?;
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::JsonArray>(&mut *out);
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
            drop(w);
            writeln!(out)?;
        }
        Format::JsonLines => {
            let (_, batches) = convert_columns(&result.schema, &result.batches, is_vector)?;
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::LineDelimited>(&mut *out);
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, FixedSizeListArray, Float64Array, Int64Array};
    use arrow::datatypes::Float32Type;

    fn result() -> StatementResult {
        let vectors = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
            [Some([1.0, 2.5, -3.0].map(Some)), None],
            3,
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("ok", DataType::Boolean, true),
            Field::new("score", DataType::Float64, true),
            Field::new("embedding", vectors.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(Float64Array::from(vec![Some(1.0), Some(0.25)])),
                Arc::new(vectors),
            ],
        )
        .unwrap();
        StatementResult {
            tag: "SELECT 2".into(),
            rows_affected: 2,
            schema,
            batches: vec![batch],
            returns_rows: true,
        }
    }

    fn render(format: Format) -> String {
        let mut out = Vec::new();
        write_result(&mut out, &result(), format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_shows_vectors_and_psql_cells() {
        let s = render(Format::Table);
        assert!(s.contains("| [1,2.5,-3]"), "{s}");
        assert!(s.contains("| t "), "{s}");
        assert!(s.ends_with("(2 rows)\n"), "{s}");
    }

    #[test]
    fn csv_and_json_show_vectors_as_text() {
        let csv = render(Format::Csv);
        assert_eq!(csv.lines().next().unwrap(), "id,ok,score,embedding");
        assert!(csv.contains("1,true,1.0,\"[1,2.5,-3]\""), "{csv}");
        let json = render(Format::Json);
        assert!(json.starts_with("[{\"id\":1"), "{json}");
        assert!(json.contains("\"embedding\":\"[1,2.5,-3]\""), "{json}");
        assert!(json.contains("\"embedding\":null"), "{json}");
        let jsonl = render(Format::JsonLines);
        assert_eq!(jsonl.lines().count(), 2, "{jsonl}");
    }

    #[test]
    fn commands_print_their_tag_and_empty_results_their_header() {
        let mut out = Vec::new();
        let tag = StatementResult {
            tag: "INSERT 0 3".into(),
            rows_affected: 3,
            schema: Arc::new(Schema::empty()),
            batches: vec![],
            returns_rows: false,
        };
        write_result(&mut out, &tag, Format::Json).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "INSERT 0 3\n");
        let mut empty = result();
        empty.batches.clear();
        for (format, want) in [
            (Format::Table, "(0 rows)"),
            (Format::Csv, "id,ok,score,embedding"),
            (Format::Json, "[]"),
        ] {
            let mut out = Vec::new();
            write_result(&mut out, &empty, format).unwrap();
            let s = String::from_utf8(out).unwrap();
            assert!(s.contains(want), "{format:?}: {s}");
        }
    }
}
