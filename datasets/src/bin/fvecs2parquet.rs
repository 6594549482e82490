//! `fvecs2parquet BASE.fvecs OUT.parquet [--texts TEXTS.txt[.gz]] [--limit N]`
//!
//! Converts an fvecs (or bvecs) file to Parquet: columns `id BIGINT` (row number), optionally
//! `text TEXT` (line i of the texts file belongs to vector i) and `embedding
//! FixedSizeList<Float32>(d)`. Streams in batches (memory: one batch), writes through a temporary
//! file renamed at the end.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use vela_datasets::{
    BatchSource, BatchWriter, DatasetError, ExportOptions, Format, ParquetCompression, VecsOptions,
    VecsSource,
};

const USAGE: &str = "usage: fvecs2parquet BASE.fvecs|BASE.bvecs OUT.parquet [options]

options:
  --texts FILE           a text per vector, line i for vector i (.gz read through gzip)
  --limit N              convert only the first N vectors
  --compression C        zstd[:LEVEL] (default zstd:9), snappy, lz4 or none
  --row-group-rows N     rows per Parquet row group (default 65536)
  --batch-rows N         rows read and written at a time (default 8192)
  --id-column NAME       default id
  --text-column NAME     default text
  --vector-column NAME   default embedding";

struct Args {
    input: PathBuf,
    output: PathBuf,
    texts: Option<PathBuf>,
    limit: Option<u64>,
    compression: ParquetCompression,
    row_group_rows: usize,
    batch_rows: usize,
    id_column: String,
    text_column: String,
    vector_column: String,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut args = Args {
        input: PathBuf::new(),
        output: PathBuf::new(),
        texts: None,
        limit: None,
        compression: ParquetCompression::Zstd(9),
        row_group_rows: 65_536,
        batch_rows: 8192,
        id_column: "id".into(),
        text_column: "text".into(),
        vector_column: "embedding".into(),
    };
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{name}: not a positive number: {v}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--texts" => args.texts = Some(PathBuf::from(value(&arg)?)),
            "--limit" => args.limit = Some(number(&arg, value(&arg)?)?),
            "--row-group-rows" => args.row_group_rows = number(&arg, value(&arg)?)? as usize,
            "--batch-rows" => args.batch_rows = number(&arg, value(&arg)?)? as usize,
            "--id-column" => args.id_column = value(&arg)?,
            "--text-column" => args.text_column = value(&arg)?,
            "--vector-column" => args.vector_column = value(&arg)?,
            "--compression" => {
                let v = value(&arg)?;
                args.compression = match v.split_once(':') {
                    None if v == "zstd" => ParquetCompression::Zstd(3),
                    None if v == "snappy" => ParquetCompression::Snappy,
                    None if v == "lz4" => ParquetCompression::Lz4,
                    None if v == "none" => ParquetCompression::None,
                    Some(("zstd", level)) => ParquetCompression::Zstd(
                        level
                            .parse()
                            .map_err(|_| format!("--compression: bad zstd level {level}"))?,
                    ),
                    _ => return Err(format!("--compression: unknown codec {v}")),
                }
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    match <[PathBuf; 2]>::try_from(positional) {
        Ok([input, output]) => {
            args.input = input;
            args.output = output;
            Ok(args)
        }
        Err(_) => Err("expected an input and an output file".into()),
    }
}

/// Lines of a text file, gzip-compressed or not.
fn open_texts(path: &Path) -> Result<Box<dyn BufRead>, DatasetError> {
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        op: "open",
        path: path.to_path_buf(),
        source,
    })?;
    let raw: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, raw)))
}

fn convert(args: &Args) -> Result<(u64, u64), DatasetError> {
    let format = Format::from_path(&args.input)?;
    let names = VecsOptions {
        id_column: args.id_column.clone(),
        vector_column: args.vector_column.clone(),
    };
    let mut source = VecsSource::open(&args.input, format, &names)?;
    let mut texts = match &args.texts {
        Some(p) => Some((p.clone(), open_texts(p)?)),
        None => None,
    };
    let vecs_schema = source.schema();
    let mut fields: Vec<Field> = vecs_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    if texts.is_some() {
        fields.insert(1, Field::new(&args.text_column, DataType::Utf8, false));
    }
    let schema = Arc::new(Schema::new(fields));
    let options = ExportOptions {
        format: Some(Format::Parquet),
        compression: args.compression,
        row_group_rows: args.row_group_rows,
        ..ExportOptions::default()
    };
    let mut writer = BatchWriter::create(&args.output, schema.clone(), &options)?;
    let mut line = String::new();
    loop {
        let done = source.rows_read();
        let want = match args.limit {
            Some(limit) if done >= limit => break,
            Some(limit) => (limit - done).min(args.batch_rows as u64) as usize,
            None => args.batch_rows,
        };
        let Some(batch) = source.next_batch(want)? else {
            break;
        };
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        if let Some((path, reader)) = &mut texts {
            let mut b = StringBuilder::new();
            for i in 0..batch.num_rows() {
                line.clear();
                let n = reader
                    .read_line(&mut line)
                    .map_err(|source| DatasetError::Io {
                        op: "read",
                        path: path.clone(),
                        source,
                    })?;
                if n == 0 {
                    return Err(DatasetError::Value {
                        path: path.clone(),
                        row: done + i as u64 + 1,
                        column: args.text_column.clone(),
                        reason: "the texts file has fewer lines than there are vectors".into(),
                    });
                }
                b.append_value(line.trim_end_matches(['\n', '\r']));
            }
            columns.insert(1, Arc::new(b.finish()));
        }
        let out =
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| DatasetError::Invalid {
                path: args.output.clone(),
                reason: e.to_string(),
            })?;
        writer.write(&out)?;
    }
    let summary = writer.finish()?;
    Ok((summary.rows, summary.bytes))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fvecs2parquet: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match convert(&args) {
        Ok((rows, bytes)) => {
            eprintln!(
                "fvecs2parquet: wrote {rows} rows to {} ({bytes} bytes)",
                args.output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fvecs2parquet: {e}");
            ExitCode::FAILURE
        }
    }
}
