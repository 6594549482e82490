//! Bulk data end to end: round trips, the Arrow mapping, bad input, streaming, the sample data
//! and the fvecs2parquet converter. One test binary (links once).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, DictionaryArray, FixedSizeListArray,
    Float32Array, Float64Array, Int32Array, Int64Array, LargeListArray, LargeStringArray,
    ListArray, StringArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use common::*;
use vela_datasets::{
    open_source, write_batches, BatchSource, BatchWriter, CsvOptions, DatasetError, ExportOptions,
    Format, ImportOptions, MapOptions, MemorySource, SourceOptions, TableMapping, TableSource,
};
use vela_engine::catalog::{ColumnType, ScalarType, Value};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn export(path: &Path, batches: &[RecordBatch], options: &ExportOptions) {
    write_batches(
        path,
        batches[0].schema(),
        batches.iter().cloned().map(Ok),
        options,
    )
    .unwrap();
}

/// Parquet with row groups of `rows` rows.
fn export_in_groups(path: &Path, batches: &[RecordBatch], rows: usize) {
    let options = ExportOptions {
        row_group_rows: rows,
        ..ExportOptions::default()
    };
    export(path, batches, &options);
}

/// `t(id BIGINT, name TEXT, embedding VECTOR(2))` loaded from `path`, whose ids must be 1 and 2.
fn load_named(path: &Path) -> RecordBatch {
    let t = table(
        "t",
        vec![
            col("id", BIGINT, false),
            col("name", TEXT, true),
            col("embedding", vector(2), false),
        ],
    );
    let got = drain_table(&mut open_table(path, &t).unwrap(), 10).unwrap();
    assert_eq!(got.column(0).as_primitive::<Int64Type>().values(), &[1, 2]);
    got
}

fn open_table(path: &Path, t: &vela_engine::TableSchema) -> Result<TableSource, DatasetError> {
    TableSource::open(path, t, &ImportOptions::default())
}

fn map_one(batch: &RecordBatch, t: &vela_engine::TableSchema) -> Result<RecordBatch, DatasetError> {
    let m = TableMapping::new(
        Path::new("f.parquet"),
        &batch.schema(),
        t,
        &MapOptions::default(),
    )?;
    m.convert(batch, 0)
}

// ---------------------------------------------------------------- round trips

#[test]
fn parquet_round_trip_in_any_batch_size() {
    let dir = tmp();
    let path = dir.path().join("docs.parquet");
    let batches = vec![docs_batch(0, 700, 8), docs_batch(700, 300, 8)];
    let expected = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    export_in_groups(&path, &batches, 256);
    for max_rows in [1, 7, 256, 300, 5000] {
        // A decode size that does not divide the row groups, to exercise re-chunking.
        let options = SourceOptions {
            decode_rows: 100,
            ..SourceOptions::default()
        };
        let mut source = open_source(&path, &options, None).unwrap();
        assert_eq!(source.total_rows(), Some(1000));
        assert_eq!(source.format(), Format::Parquet);
        let got = drain(source.as_mut(), max_rows);
        assert_eq!(got, expected, "max_rows {max_rows}");
        assert_eq!(source.rows_read(), 1000);
    }
    // Into the table: the identity mapping.
    let mut ts = open_table(&path, &docs_table(8)).unwrap();
    assert_eq!(drain_table(&mut ts, 333).unwrap(), expected);
    // No temporary file is left next to it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn csv_round_trip_with_and_without_header_and_gzip() {
    let dir = tmp();
    let batches = vec![docs_batch(0, 250, 5), docs_batch(250, 50, 5)];
    let expected = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    // CSV cannot tell an empty string from NULL (arrow's reader drops the quotes of `""`): an
    // empty field reads back as NULL.
    let titles: StringArray = expected
        .column(1)
        .as_string::<i32>()
        .iter()
        .map(|t| t.filter(|t| !t.is_empty()))
        .collect();
    let mut columns = expected.columns().to_vec();
    columns[1] = Arc::new(titles);
    let expected = RecordBatch::try_new(expected.schema(), columns).unwrap();
    let t = docs_table(5);

    let path = dir.path().join("docs.csv");
    export(&path, &batches, &ExportOptions::default());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("id,title,score,flag,at,embedding\n"),
        "{text:.80}"
    );
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .ends_with(",\"[0,-0.33333334,-0.6666667,-1,-1.3333334]\""),
        "pgvector text: {:?}",
        text.lines().nth(1)
    );
    let mut ts = open_table(&path, &t).unwrap();
    assert_eq!(drain_table(&mut ts, 64).unwrap(), expected);

    // No header: columns by position.
    let path = dir.path().join("noheader.csv");
    let no_header = ExportOptions {
        header: false,
        ..ExportOptions::default()
    };
    export(&path, &batches, &no_header);
    let options = ImportOptions {
        source: SourceOptions {
            csv: CsvOptions {
                header: false,
                ..CsvOptions::default()
            },
            ..SourceOptions::default()
        },
        ..ImportOptions::default()
    };
    let mut ts = TableSource::open(&path, &t, &options).unwrap();
    assert_eq!(drain_table(&mut ts, 1000).unwrap(), expected);

    // Gzip.
    let gz = dir.path().join("docs.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, text.as_bytes()).unwrap();
    write_file(&gz, &enc.finish().unwrap());
    let mut ts = open_table(&gz, &t).unwrap();
    assert_eq!(drain_table(&mut ts, 100).unwrap(), expected);
    let (read, total) = ts.progress_bytes().unwrap();
    assert_eq!(read, total);
}

#[test]
fn csv_header_columns_in_another_order_and_inferred_types() {
    let dir = tmp();
    let path = dir.path().join("t.csv");
    write_file(
        &path,
        b"embedding,name,id\n\"[1,2]\",a,1\n\"[3, 4.5]\",,2\n",
    );
    let got = load_named(&path);
    assert_eq!(
        vectors_of(&got, "embedding"),
        vec![vec![1.0, 2.0], vec![3.0, 4.5]]
    );
    assert!(got.column(1).is_null(1));

    // Without a table: inferred types.
    let mut src = open_source(&path, &SourceOptions::default(), None).unwrap();
    let schema = src.schema();
    assert_eq!(
        schema.field_with_name("id").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("embedding").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(drain(src.as_mut(), 1).num_rows(), 2);
    assert_eq!(src.total_rows(), None);
}

#[test]
fn vectors_export_as_fixed_size_lists_in_parquet() {
    let dir = tmp();
    let path = dir.path().join("v.parquet");
    export(&path, &[docs_batch(0, 10, 3)], &ExportOptions::default());
    let src = open_source(&path, &SourceOptions::default(), None).unwrap();
    assert!(matches!(
        src.schema().field_with_name("embedding").unwrap().data_type(),
        DataType::FixedSizeList(f, 3) if f.data_type() == &DataType::Float32
    ));
}

#[test]
fn converted_batches_are_what_the_engine_takes() {
    let t = docs_table(4);
    let b = docs_batch(10, 20, 4);
    let rows = vela_engine::arrow_conv::batch_to_rows(&t, &map_one(&b, &t).unwrap()).unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[1][0], Value::BigInt(11));
    assert_eq!(rows[1][1], Value::Text("plain 11".into()));
    assert_eq!(rows[0][1], Value::Null);
    assert_eq!(
        rows[0][5],
        Value::Vector(vec![5.0, 4.6666665, 4.3333335, 4.0])
    );
}

#[test]
fn fvecs_and_bvecs_stream_as_id_and_embedding() {
    let dir = tmp();
    let f = dir.path().join("a.fvecs");
    let data: Vec<f32> = (0..300).map(|i| i as f32).collect();
    vela_datasets::write_fvecs(&f, 3, &data).unwrap();
    let mut src = open_source(&f, &SourceOptions::default(), None).unwrap();
    assert_eq!(src.total_rows(), Some(100));
    let got = drain(src.as_mut(), 7);
    assert_eq!(got.num_rows(), 100);
    assert_eq!(got.schema().field(0).name(), "id");
    assert_eq!(got.column(0).as_primitive::<Int64Type>().value(99), 99);
    assert_eq!(vectors_of(&got, "embedding")[2], vec![6.0, 7.0, 8.0]);

    // bvecs: bytes become floats.
    let b = dir.path().join("a.bvecs");
    let mut bytes = Vec::new();
    for r in 0..4u8 {
        bytes.extend_from_slice(&2i32.to_le_bytes());
        bytes.extend_from_slice(&[r, 255 - r]);
    }
    write_file(&b, &bytes);
    let mut src = open_source(&b, &SourceOptions::default(), None).unwrap();
    let got = drain(src.as_mut(), 3);
    assert_eq!(vectors_of(&got, "embedding")[3], vec![3.0, 252.0]);

    // Into a table whose key and vector column have other names.
    let t = table(
        "t",
        vec![col("pk", BIGINT, false), col("vec", vector(3), false)],
    );
    let got = drain_table(&mut open_table(&f, &t).unwrap(), 64).unwrap();
    assert_eq!(got.schema().field(1).name(), "vec");
    assert_eq!(got.num_rows(), 100);
    // A table of another dimension: a schema mismatch naming the column.
    let t = table(
        "t",
        vec![col("pk", BIGINT, false), col("vec", vector(4), false)],
    );
    let e = open_table(&f, &t).unwrap_err().to_string();
    assert!(e.contains("\"vec\"") && e.contains("3 dimensions"), "{e}");
}

#[test]
fn memory_source_recuts_batches() {
    let b = docs_batch(0, 10, 2);
    let mut src = MemorySource::new(Path::new("mem"), b.schema(), vec![b.clone(), b.clone()]);
    let sizes: Vec<usize> = std::iter::from_fn(|| src.next_batch(4).unwrap())
        .map(|b| b.num_rows())
        .collect();
    assert_eq!(sizes, vec![4, 4, 4, 4, 4]);
}

// ---------------------------------------------------------------- streaming, bounded

#[test]
fn large_row_groups_are_read_in_bounded_batches() {
    let dir = tmp();
    let path = dir.path().join("big.parquet");
    // 60,000 rows x 16 dims in row groups of 50,000: batches must stay small anyway.
    let mut w = BatchWriter::create(
        &path,
        docs_batch(0, 1, 16).schema(),
        &ExportOptions {
            row_group_rows: 50_000,
            compression: vela_datasets::ParquetCompression::None,
            ..ExportOptions::default()
        },
    )
    .unwrap();
    for k in 0..6 {
        w.write(&docs_batch(k * 10_000, 10_000, 16)).unwrap();
    }
    assert_eq!(w.finish().unwrap().rows, 60_000);
    let t = docs_table(16);
    let mut ts = open_table(&path, &t).unwrap();
    assert_eq!(ts.total_rows(), Some(60_000));
    let mut seen = 0;
    let mut last_id = -1;
    while let Some(b) = ts.next_batch(1500).unwrap() {
        assert!(b.num_rows() <= 1500);
        // Memory held by a batch is the batch, not the row group.
        assert!(
            b.get_array_memory_size() < 8 * 1500 * (16 * 4 + 64),
            "{}",
            b.get_array_memory_size()
        );
        let ids = b.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.value(0), last_id + 1);
        last_id = ids.value(ids.len() - 1);
        seen += b.num_rows();
    }
    assert_eq!(seen, 60_000);
    assert_eq!(ts.rows_done(), 60_000);
}

#[test]
fn next_rows_gives_the_rows_of_next_batch_in_batches_bounded_by_rows_and_bytes() {
    let dir = tmp();
    let path = dir.path().join("docs.parquet");
    let batches = vec![docs_batch(0, 700, 8), docs_batch(700, 300, 8)];
    export_in_groups(&path, &batches, 256);
    let t = docs_table(8);
    let expected = rows_of(
        &t,
        &drain_table(&mut open_table(&path, &t).unwrap(), 1000).unwrap(),
    );
    let options = ImportOptions {
        source: SourceOptions {
            decode_rows: 100,
            ..SourceOptions::default()
        },
        ..ImportOptions::default()
    };
    // By rows: batches of exactly max_rows rows (spanning decode chunks and row groups).
    for max_rows in [1, 7, 100, 333, 5000] {
        let mut ts = TableSource::open(&path, &t, &options).unwrap();
        let mut got = Vec::new();
        while let Some(b) = ts.next_rows(max_rows, usize::MAX).unwrap() {
            assert_eq!(b.first_row, got.len() as u64);
            assert_eq!(
                b.len(),
                max_rows.min(1000 - got.len()),
                "max_rows {max_rows}"
            );
            assert!(b.bytes > 0);
            got.extend(b.rows);
        }
        assert_eq!(got, expected, "max_rows {max_rows}");
        assert_eq!(ts.rows_done(), 1000);
    }
    // By bytes: a budget of about 50 rows cuts batches there, whatever max_rows says.
    let mut ts = TableSource::open(&path, &t, &options).unwrap();
    let first = ts.next_rows(10, usize::MAX).unwrap().unwrap();
    let row_bytes = first.bytes / first.len();
    let budget = 50 * row_bytes;
    let mut got = first.rows;
    let mut sizes = Vec::new();
    while let Some(b) = ts.next_rows(1000, budget).unwrap() {
        assert!(
            b.len() <= 60 && b.bytes < budget + budget / 5,
            "{} rows, {} bytes",
            b.len(),
            b.bytes
        );
        sizes.push(b.len());
        got.extend(b.rows);
    }
    assert_eq!(got, expected);
    // Only the last batch is short.
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n >= 45),
        "{sizes:?}"
    );
    // A bad value mid-batch is an error naming its row; the earlier rows of the batch are not
    // handed out.
    let bad = dir.path().join("bad.parquet");
    let mut b = docs_batch(0, 300, 8);
    let mut cols = b.columns().to_vec();
    let mut values = cols[5]
        .as_fixed_size_list()
        .values()
        .as_primitive::<Float32Type>()
        .values()
        .to_vec();
    values[250 * 8 + 3] = f32::NAN;
    cols[5] = Arc::new(fsl(8, values));
    b = RecordBatch::try_new(b.schema(), cols).unwrap();
    export(&bad, &[b], &ExportOptions::default());
    let mut ts = TableSource::open(&bad, &t, &options).unwrap();
    let e = ts.next_rows(1000, usize::MAX).unwrap_err().to_string();
    assert!(e.contains("row 251") && e.contains("\"embedding\""), "{e}");
}

#[test]
fn wide_rows_are_decoded_in_fewer_rows_per_chunk() {
    let dir = tmp();
    let path = dir.path().join("wide.parquet");
    // 2,000 rows of 256-d vectors (about 1.1 KiB a row uncompressed) in one row group.
    export_in_groups(&path, &[docs_batch(0, 2000, 256)], 2000);
    let chunk = |decode_bytes: usize| {
        let options = SourceOptions {
            decode_bytes,
            ..SourceOptions::default()
        };
        let mut source = open_source(&path, &options, None).unwrap();
        let first = source.next_chunk(10_000).unwrap().unwrap().num_rows();
        // next_chunk never joins chunks: the next one starts where this one ended.
        if let Some(second) = source.next_chunk(10_000).unwrap() {
            assert_eq!(
                second.column(0).as_primitive::<Int64Type>().value(0),
                first as i64
            );
        }
        first
    };
    // Unbounded bytes: the whole row group fits one 8,192-row chunk.
    assert_eq!(chunk(usize::MAX), 2000);
    // 256 KiB: about 230 rows of ~1.1 KiB.
    let rows = chunk(256 << 10);
    assert!((150..=300).contains(&rows), "{rows}");
    // Never fewer than 64 rows, however small the budget.
    assert_eq!(chunk(1), 64);
}

#[test]
fn wide_csv_rows_are_decoded_in_fewer_rows_per_chunk() {
    let dir = tmp();
    let path = dir.path().join("wide.csv");
    // 500 rows of 512-d vectors as text: about 6 KiB a row once decoded.
    let mut text = String::from("id,embedding\n");
    for i in 0..500 {
        let v: Vec<String> = (0..512).map(|j| format!("{}", (i + j) % 10)).collect();
        text.push_str(&format!("{i},\"[{}]\"\n", v.join(",")));
    }
    write_file(&path, text.as_bytes());
    let t = table(
        "t",
        vec![
            col("id", BIGINT, false),
            col("embedding", vector(512), false),
        ],
    );
    let chunk = |decode_bytes: usize| {
        let options = SourceOptions {
            decode_bytes,
            ..SourceOptions::default()
        };
        let mut source = open_source(&path, &options, Some(&t)).unwrap();
        source.next_chunk(10_000).unwrap().unwrap().num_rows()
    };
    assert_eq!(chunk(usize::MAX), 500);
    // 1 MiB at ~6 KiB a row (12 bytes a component, as the reader estimates): ~170 rows.
    let rows = chunk(1 << 20);
    assert!((150..=200).contains(&rows), "{rows}");
}

#[test]
fn key_index_finds_the_displayed_key() {
    use vela_datasets::key_index;
    let keys = [Value::BigInt(5), Value::BigInt(-3), Value::Text("x".into())];
    assert_eq!(key_index(&keys, "-3"), Some(1));
    assert_eq!(key_index(&keys, "x"), Some(2));
    assert_eq!(key_index(&keys, "7"), None);
    assert_eq!(key_index(&keys, ""), None);
    // A slice counts its own rows only.
    let b = docs_batch(0, 1000, 8);
    let whole = vela_datasets::slice_bytes(&b);
    let part = vela_datasets::slice_bytes(&b.slice(0, 100));
    assert!(part * 8 < whole && part * 12 > whole, "{part} of {whole}");
}

// ---------------------------------------------------------------- the Arrow mapping

#[test]
fn every_scalar_type_maps() {
    let t = table(
        "t",
        vec![
            col("id", BIGINT, false),
            col("d", DOUBLE, true),
            col("d2", DOUBLE, true),
            col("s", TEXT, true),
            col("s2", TEXT, true),
            col("b", BOOLEAN, true),
            col("ts_s", TIMESTAMP, true),
            col("ts_ms", TIMESTAMP, true),
            col("ts_ns", TIMESTAMP, true),
            col("ts_tz", TIMESTAMP, true),
            col("day", TIMESTAMP, true),
            col("missing", TEXT, true),
        ],
    );
    let dict: DictionaryArray<Int32Type> = vec!["x", "y"].into_iter().collect();
    let b = batch(vec![
        ("id", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
        ("d", Arc::new(Float32Array::from(vec![0.5, 1.5]))),
        ("d2", Arc::new(Int64Array::from(vec![Some(3), None]))),
        ("s", Arc::new(LargeStringArray::from(vec!["a", "b"]))),
        ("s2", Arc::new(dict)),
        ("b", Arc::new(BooleanArray::from(vec![true, false]))),
        ("ts_s", Arc::new(TimestampSecondArray::from(vec![1, 2]))),
        (
            "ts_ms",
            Arc::new(TimestampMillisecondArray::from(vec![1, 2])),
        ),
        (
            "ts_ns",
            Arc::new(TimestampNanosecondArray::from(vec![1_000, 2_999])),
        ),
        (
            "ts_tz",
            Arc::new(TimestampSecondArray::from(vec![10, 20]).with_timezone("+05:00")),
        ),
        ("day", Arc::new(Date32Array::from(vec![1, 2]))),
    ]);
    let out = map_one(&b, &t).unwrap();
    assert_eq!(out.schema(), vela_engine::arrow_conv::arrow_schema(&t));
    let rows = vela_engine::arrow_conv::batch_to_rows(&t, &out).unwrap();
    assert_eq!(
        rows[0],
        vec![
            Value::BigInt(1),
            Value::Double(0.5),
            Value::Double(3.0),
            Value::Text("a".into()),
            Value::Text("x".into()),
            Value::Boolean(true),
            Value::Timestamp(1_000_000),
            Value::Timestamp(1_000),
            Value::Timestamp(1),
            // The UTC instant is kept, not the wall time in +05:00.
            Value::Timestamp(10_000_000),
            Value::Timestamp(86_400_000_000),
            Value::Null,
        ]
    );
    assert_eq!(rows[1][2], Value::Null);
    assert_eq!(rows[1][8], Value::Timestamp(2));
}

#[test]
fn every_vector_encoding_maps() {
    let t = table(
        "t",
        vec![col("id", BIGINT, false), col("v", vector(2), false)],
    );
    let expect = vec![vec![1.0f32, 2.0], vec![3.0, -4.5]];
    let f16 = arrow::compute::cast(
        &(Arc::new(Float32Array::from(vec![1.0f32, 2.0, 3.0, -4.5])) as ArrayRef),
        &DataType::Float16,
    )
    .unwrap();
    let encodings: Vec<ArrayRef> = vec![
        Arc::new(fsl(2, vec![1.0, 2.0, 3.0, -4.5])),
        Arc::new(
            FixedSizeListArray::try_new(
                Arc::new(Field::new("item", DataType::Float64, true)),
                2,
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, -4.5])),
                None,
            )
            .unwrap(),
        ),
        Arc::new(
            FixedSizeListArray::try_new(
                Arc::new(Field::new("item", DataType::Float16, true)),
                2,
                f16,
                None,
            )
            .unwrap(),
        ),
        Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(vec![
            Some(vec![Some(1.0), Some(2.0)]),
            Some(vec![Some(3.0), Some(-4.5)]),
        ])),
        Arc::new(LargeListArray::from_iter_primitive::<
            arrow::datatypes::Float64Type,
            _,
            _,
        >(vec![
            Some(vec![Some(1.0), Some(2.0)]),
            Some(vec![Some(3.0), Some(-4.5)]),
        ])),
        Arc::new(StringArray::from(vec!["[1,2]", " [ 3 , -4.5e0 ] "])),
    ];
    for v in encodings {
        let dt = v.data_type().clone();
        let b = batch(vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            ("v", v),
        ]);
        let out = map_one(&b, &t).unwrap_or_else(|e| panic!("{dt}: {e}"));
        assert_eq!(vectors_of(&out, "v"), expect, "{dt}");
        // A slice (non-zero offset) maps too.
        let out = map_one(&b.slice(1, 1), &t).unwrap();
        assert_eq!(
            vectors_of(&out, "v"),
            vec![expect[1].clone()],
            "{dt} sliced"
        );
    }
}

#[test]
fn missing_nullable_columns_fill_with_null_and_extra_columns_are_errors_unless_allowed() {
    let t = docs_table(2);
    let b = batch(vec![
        ("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("embedding", Arc::new(fsl(2, vec![0.0, 1.0]))),
    ]);
    let out = map_one(&b, &t).unwrap();
    for i in 1..5 {
        assert!(out.column(i).is_null(0));
    }
    let extra = batch(vec![
        ("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("embedding", Arc::new(fsl(2, vec![0.0, 1.0]))),
        ("other", Arc::new(Int64Array::from(vec![1]))),
    ]);
    let e = map_one(&extra, &t).unwrap_err().to_string();
    assert!(
        e.contains("\"other\"") && e.contains("not in the table"),
        "{e}"
    );
    let allow = MapOptions {
        allow_extra_columns: true,
        ..MapOptions::default()
    };
    let m = TableMapping::new(Path::new("f"), &extra.schema(), &t, &allow).unwrap();
    assert_eq!(m.convert(&extra, 0).unwrap().num_columns(), 6);
}

#[test]
fn schema_mismatch_lists_every_offending_column() {
    let t = table(
        "t",
        vec![
            col("id", BIGINT, false),
            col("n", BIGINT, true),
            col("must", TEXT, false),
            col("v", vector(3), false),
        ],
    );
    let b = batch(vec![
        ("id", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
        ("n", Arc::new(Float64Array::from(vec![1.0]))),
        ("v", Arc::new(fsl(2, vec![1.0, 2.0]))),
        ("stray", Arc::new(Int64Array::from(vec![1]))),
    ]);
    let e = map_one(&b, &t).unwrap_err();
    let DatasetError::SchemaMismatch {
        problems, table, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(table, "t");
    assert_eq!(problems.len(), 5, "{problems:?}");
    let text = e.to_string();
    for name in ["\"id\"", "\"n\"", "\"must\"", "\"v\"", "\"stray\""] {
        assert!(text.contains(name), "{name} missing from: {text}");
    }
    assert!(
        text.contains("f.parquet") && text.contains("5 problems"),
        "{text}"
    );
}

#[test]
fn infer_table_schema_for_create() {
    let dir = tmp();
    let path = dir.path().join("c.parquet");
    let b = batch(vec![
        ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ("name", Arc::new(StringArray::from(vec!["a", "b"]))),
        (
            "emb",
            Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(vec![
                None,
                Some(vec![Some(1.0), Some(2.0), Some(3.0)]),
            ])),
        ),
    ]);
    export(&path, &[b], &ExportOptions::default());
    let allow_null = ImportOptions {
        mapping: MapOptions {
            allow_null_vectors: true,
            ..MapOptions::default()
        },
        ..ImportOptions::default()
    };
    let mut ts = TableSource::open_create(&path, "c", None, &allow_null).unwrap();
    let schema = ts.table().clone();
    assert_eq!(schema.name, "c");
    assert_eq!(schema.primary_key, 0);
    assert!(!schema.columns[0].nullable);
    assert_eq!(schema.columns[1].ty, TEXT);
    assert_eq!(schema.columns[2].ty, vector(3));
    let got = drain_table(&mut ts, 1).unwrap();
    assert_eq!(got.num_rows(), 2);
    assert!(got.column(2).is_null(0));

    // Without allow_null_vectors, the NULL vector is an error naming row 1.
    let mut ts = TableSource::open_create(&path, "c", None, &ImportOptions::default()).unwrap();
    let e = drain_table(&mut ts, 10).unwrap_err();
    assert_eq!((e.row(), e.column()), (Some(1), Some("emb")), "{e}");

    // No `id`: ask for --key; --key picks another column; a bad key type is refused.
    let b = batch(vec![
        ("name", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ("x", Arc::new(Float64Array::from(vec![1.0]))),
    ]);
    let p = Path::new("k.parquet");
    let e = vela_datasets::infer_table_schema(p, "k", &b.schema(), None, None).unwrap_err();
    assert!(e.to_string().contains("--key"), "{e}");
    let s = vela_datasets::infer_table_schema(p, "k", &b.schema(), None, Some("name")).unwrap();
    assert_eq!(s.primary_key, 0);
    let e = vela_datasets::infer_table_schema(p, "k", &b.schema(), None, Some("x")).unwrap_err();
    assert!(e.to_string().contains("BIGINT or TEXT"), "{e}");
    let e = vela_datasets::infer_table_schema(p, "k", &b.schema(), None, Some("nope")).unwrap_err();
    assert!(e.to_string().contains("\"nope\""), "{e}");
}

// ---------------------------------------------------------------- bad input

#[test]
fn missing_file_and_directory_are_named() {
    let dir = tmp();
    let t = docs_table(2);
    for name in ["nope.parquet", "nope.csv", "nope.fvecs"] {
        let p = dir.path().join(name);
        let e = open_table(&p, &t).unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains(name), "{e}");
    }
    for name in ["d.parquet", "d.csv", "d.fvecs"] {
        let p = dir.path().join(name);
        std::fs::create_dir(&p).unwrap();
        let e = open_table(&p, &t).unwrap_err();
        assert!(matches!(e, DatasetError::NotAFile { .. }), "{e}");
        assert!(e.to_string().contains("is a directory"), "{e}");
        // Exporting onto a directory fails too.
        assert!(matches!(
            BatchWriter::create(&p, docs_batch(0, 1, 2).schema(), &ExportOptions::default()),
            Err(DatasetError::NotAFile { .. })
        ));
    }
    write_file(&dir.path().join("x.txt"), b"1,2\n");
    let e = open_table(&dir.path().join("x.txt"), &t).unwrap_err();
    assert!(matches!(e, DatasetError::UnknownFormat { .. }), "{e}");
}

#[test]
fn truncated_and_corrupt_parquet_files_are_errors_not_panics() {
    let dir = tmp();
    let good = dir.path().join("good.parquet");
    export_in_groups(&good, &[docs_batch(0, 400, 8)], 100);
    let bytes = std::fs::read(&good).unwrap();
    let t = docs_table(8);
    let read_all = |p: &Path| -> Result<usize, DatasetError> {
        let mut ts = open_table(p, &t)?;
        Ok(drain_table(&mut ts, 64)?.num_rows())
    };
    assert_eq!(read_all(&good).unwrap(), 400);
    let cut = dir.path().join("cut.parquet");
    let len = bytes.len();
    for at in [
        0,
        1,
        3,
        4,
        100,
        len / 3,
        len / 2,
        len - 200,
        len - 9,
        len - 8,
        len - 4,
        len - 1,
    ] {
        write_file(&cut, &bytes[..at]);
        let e = read_all(&cut).expect_err("a truncated file must not read");
        assert!(
            matches!(e, DatasetError::Parquet { .. }),
            "cut at {at}: {e}"
        );
        assert!(e.to_string().contains("cut.parquet"), "{e}");
    }
    // Bytes flipped in the data pages: an error or (no page checksums) other values, never a
    // panic nor more rows than the file has.
    let bad = dir.path().join("bad.parquet");
    for k in 1..24 {
        let mut b = bytes.clone();
        let at = 4 + (len - 12) * k / 24;
        for x in &mut b[at..(at + 16).min(len - 8)] {
            *x ^= 0x5a;
        }
        write_file(&bad, &b);
        match read_all(&bad) {
            Ok(n) => assert!(n <= 400),
            Err(e) => assert!(e.to_string().contains("bad.parquet"), "{e}"),
        }
    }
}

#[test]
fn wrong_vector_length_names_row_and_column() {
    let t = table(
        "t",
        vec![col("id", BIGINT, false), col("v", vector(2), false)],
    );
    let b = batch(vec![
        ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
        (
            "v",
            Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(vec![
                Some(vec![Some(1.0), Some(2.0)]),
                Some(vec![Some(1.0), Some(2.0)]),
                Some(vec![Some(1.0)]),
            ])),
        ),
    ]);
    let m = TableMapping::new(
        Path::new("f.parquet"),
        &b.schema(),
        &t,
        &MapOptions::default(),
    )
    .unwrap();
    // As the second batch of a file (rows 1001..): row numbers count from the file's start.
    let e = m.convert(&b, 1000).unwrap_err();
    assert_eq!((e.row(), e.column()), (Some(1003), Some("v")), "{e}");
    assert!(e.to_string().contains("1 dimensions"), "{e}");

    // CSV text of the wrong length, and a malformed literal.
    let dir = tmp();
    let p = dir.path().join("v.csv");
    write_file(&p, b"id,v\n1,\"[1,2]\"\n2,\"[1,2,3]\"\n");
    let e = drain_table(&mut open_table(&p, &t).unwrap(), 10).unwrap_err();
    assert_eq!((e.row(), e.column()), (Some(2), Some("v")), "{e}");
    write_file(&p, b"id,v\n1,\"[1,2]\"\n2,\"[1,2]\"\n3,\"1,x\"\n");
    let e = drain_table(&mut open_table(&p, &t).unwrap(), 10).unwrap_err();
    assert_eq!((e.row(), e.column()), (Some(3), Some("v")), "{e}");
}

#[test]
fn null_and_nan_vectors_name_the_row() {
    let t = table(
        "t",
        vec![col("id", BIGINT, false), col("v", vector(2), true)],
    );
    let with = |v: ArrayRef| {
        batch(vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            ("v", v),
        ])
    };
    let null_fsl = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        2,
        Arc::new(Float32Array::from(vec![1.0, 2.0, 0.0, 0.0, 5.0, 6.0])),
        Some(vec![true, false, true].into()),
    )
    .unwrap();
    let cases: Vec<(ArrayRef, u64, &str)> = vec![
        (Arc::new(null_fsl), 2, "NULL vector"),
        (
            Arc::new(fsl(2, vec![1.0, 2.0, 3.0, 4.0, f32::NAN, 6.0])),
            3,
            "NaN",
        ),
        (
            Arc::new(fsl(2, vec![1.0, f32::INFINITY, 3.0, 4.0, 5.0, 6.0])),
            1,
            "infinite",
        ),
        (
            Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(vec![
                Some(vec![Some(1.0), Some(2.0)]),
                Some(vec![Some(1.0), None]),
                Some(vec![Some(1.0), Some(2.0)]),
            ])),
            2,
            "NULL component",
        ),
        (
            Arc::new(StringArray::from(vec![Some("[1,2]"), Some("[1,2]"), None])),
            3,
            "NULL vector",
        ),
        (
            Arc::new(StringArray::from(vec!["[1,2]", "[NaN,2]", "[1,2]"])),
            2,
            "NaN",
        ),
        // A finite f64 that overflows f32.
        (
            Arc::new(
                FixedSizeListArray::try_new(
                    Arc::new(Field::new("item", DataType::Float64, true)),
                    2,
                    Arc::new(Float64Array::from(vec![1.0, 2.0, 1e300, 4.0, 5.0, 6.0])),
                    None,
                )
                .unwrap(),
            ),
            2,
            "infinite",
        ),
    ];
    for (v, row, what) in cases {
        let dt = v.data_type().clone();
        let e = map_one(&with(v), &t).unwrap_err();
        assert_eq!((e.row(), e.column()), (Some(row), Some("v")), "{dt}: {e}");
        assert!(e.to_string().contains(what), "{dt}: {e}");
    }
}

#[test]
fn nulls_duplicates_and_out_of_range_values_name_the_row() {
    let t = table(
        "t",
        vec![col("id", BIGINT, false), col("must", TEXT, false)],
    );
    let b = batch(vec![
        (
            "id",
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
        ),
        ("must", Arc::new(StringArray::from(vec!["a", "b"]))),
    ]);
    let e = map_one(&b, &t).unwrap_err();
    assert_eq!((e.row(), e.column()), (Some(2), Some("id")));
    assert!(e.to_string().contains("NULL primary key"), "{e}");
    let b = batch(vec![
        ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ("must", Arc::new(StringArray::from(vec![Some("a"), None]))),
    ]);
    let e = map_one(&b, &t).unwrap_err();
    assert_eq!((e.row(), e.column()), (Some(2), Some("must")));

    let b = batch(vec![
        ("id", Arc::new(Int64Array::from(vec![7, 8, 7])) as ArrayRef),
        ("must", Arc::new(StringArray::from(vec!["a", "b", "c"]))),
    ]);
    let e = map_one(&b, &t).unwrap_err();
    assert_eq!((e.row(), e.column()), (Some(3), Some("id")));
    assert!(
        e.to_string()
            .contains("duplicate primary key 7 (also in row 1)"),
        "{e}"
    );
    let m = TableMapping::new(
        Path::new("f"),
        &b.schema(),
        &t,
        &MapOptions {
            check_duplicate_keys: false,
            ..MapOptions::default()
        },
    )
    .unwrap();
    let out = m.convert(&b, 0).unwrap();
    assert_eq!(m.key_row(&out, "8"), Some(1));

    let b = batch(vec![
        (
            "id",
            Arc::new(UInt64Array::from(vec![1, u64::MAX])) as ArrayRef,
        ),
        ("must", Arc::new(StringArray::from(vec!["a", "b"]))),
    ]);
    let e = map_one(&b, &t).unwrap_err();
    assert_eq!((e.row(), e.column()), (Some(2), Some("id")), "{e}");
    assert!(e.to_string().contains("does not fit BIGINT"), "{e}");
}

#[test]
fn bad_csv_values_name_line_and_column() {
    let dir = tmp();
    let p = dir.path().join("bad.csv");
    write_file(&p, b"id,score\n1,0.5\n2,abc\n");
    let t = table(
        "t",
        vec![col("id", BIGINT, false), col("score", DOUBLE, true)],
    );
    let e = drain_table(&mut open_table(&p, &t).unwrap(), 10).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("bad.csv") && s.contains("\"score\"") && s.contains("abc"),
        "{s}"
    );
    // A ragged row.
    write_file(&p, b"id,score\n1,0.5\n2,0.5,9\n");
    let e = drain_table(&mut open_table(&p, &t).unwrap(), 10).unwrap_err();
    assert!(e.to_string().contains("bad.csv"), "{e}");
}

#[test]
fn a_failed_export_leaves_no_file_and_keeps_the_old_one() {
    let dir = tmp();
    for name in ["out.parquet", "out.csv"] {
        let p = dir.path().join(name);
        let b = docs_batch(0, 10, 2);
        // Abandoned half way (an error in the query feeding it): nothing under the name.
        let failing = || {
            vec![
                Ok(b.clone()),
                Err(DatasetError::Invalid {
                    path: p.clone(),
                    reason: "the query failed".into(),
                }),
            ]
        };
        assert!(write_batches(&p, b.schema(), failing(), &ExportOptions::default()).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{name}");
        // An old file survives a failed export, and is replaced by a good one.
        write_file(&p, b"old");
        assert!(write_batches(&p, b.schema(), failing(), &ExportOptions::default()).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        let mut w = BatchWriter::create(&p, b.schema(), &ExportOptions::default()).unwrap();
        w.write(&b).unwrap();
        // A batch of another schema is refused; the writer is then dropped: old file intact.
        assert!(w.write(&docs_batch(0, 1, 3)).is_err());
        drop(w);
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        let s = write_batches(
            &p,
            b.schema(),
            vec![Ok(b.clone())],
            &ExportOptions::default(),
        )
        .unwrap();
        assert_eq!(s.rows, 10);
        assert_eq!(s.bytes, std::fs::metadata(&p).unwrap().len());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::remove_file(&p).unwrap();
    }
    // Unknown or read-only formats are refused before anything is written.
    let b = docs_batch(0, 1, 2);
    assert!(BatchWriter::create(
        &dir.path().join("x.fvecs"),
        b.schema(),
        &ExportOptions::default()
    )
    .is_err());
    assert!(BatchWriter::create(
        &dir.path().join("nodir/x.csv"),
        b.schema(),
        &ExportOptions::default()
    )
    .is_err());
}

// ---------------------------------------------------------------- sample data and converter

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample")
        .join(name)
}

#[test]
fn the_sample_imports_with_create() {
    let mut ts = TableSource::open_create(
        &sample("wordnet-minilm-384.parquet"),
        "words",
        None,
        &ImportOptions::default(),
    )
    .unwrap();
    let t = ts.table().clone();
    let types: Vec<_> = t.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect();
    assert_eq!(
        types,
        vec![
            ("id", ColumnType::Scalar(ScalarType::BigInt)),
            ("text", ColumnType::Scalar(ScalarType::Text)),
            ("embedding", ColumnType::Vector { dim: 384 }),
        ]
    );
    assert_eq!(ts.total_rows(), Some(2000));
    let all = drain_table(&mut ts, 4096).unwrap();
    assert_eq!(all.num_rows(), 2000);
    let texts = all.column(1).as_string::<i32>();
    assert_eq!(
        texts.value(0),
        "agelessness: the quality of being timeless and eternal"
    );
    for v in vectors_of(&all, "embedding") {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    }
    let queries = open_source(
        &sample("wordnet-minilm-384-queries.parquet"),
        &SourceOptions::default(),
        None,
    )
    .unwrap()
    .total_rows();
    assert_eq!(queries, Some(20));
}

#[test]
fn fvecs2parquet_converts_with_texts() {
    let dir = tmp();
    let f = dir.path().join("b.fvecs");
    let data: Vec<f32> = (0..80).map(|i| i as f32 / 4.0).collect();
    vela_datasets::write_fvecs(&f, 4, &data).unwrap();
    let texts = dir.path().join("t.txt.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..12 {
        std::io::Write::write_all(&mut enc, format!("text, number {i}\n").as_bytes()).unwrap();
    }
    write_file(&texts, &enc.finish().unwrap());
    let out = dir.path().join("o.parquet");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_fvecs2parquet"))
            .arg(&f)
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let r = run(&[
        "--texts",
        texts.to_str().unwrap(),
        "--limit",
        "7",
        "--batch-rows",
        "3",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let mut src = open_source(&out, &SourceOptions::default(), None).unwrap();
    let got = drain(src.as_mut(), 100);
    assert_eq!(got.num_rows(), 7);
    assert_eq!(got.column(1).as_string::<i32>().value(6), "text, number 6");
    assert_eq!(vectors_of(&got, "embedding")[6], vec![6.0, 6.25, 6.5, 6.75]);
    // Fewer texts than vectors: an error, and no output file.
    std::fs::remove_file(&out).unwrap();
    let r = run(&["--texts", texts.to_str().unwrap()]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("fewer lines") && err.contains("row 13"),
        "{err}"
    );
    assert!(!out.exists());
    let r = run(&["--bogus"]);
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn error_messages_read_well() {
    let dir = tmp();
    let t = table(
        "t",
        vec![
            col("id", BIGINT, false),
            col("score", DOUBLE, true),
            col("v", vector(2), false),
        ],
    );
    let p = dir.path().join("bad.csv");
    let shown = |e: DatasetError| {
        e.to_string()
            .replace(&format!("{}/", dir.path().display()), "")
    };
    let csv_err = |bytes: &[u8]| {
        write_file(&p, bytes);
        shown(drain_table(&mut open_table(&p, &t).unwrap(), 10).unwrap_err())
    };
    assert_eq!(
        csv_err(b"id,score,v\n1,0.5,\"[1,2]\"\n2,abc,\"[1,2]\"\n"),
        "bad.csv: row 2, column \"score\": cannot parse 'abc' as 'Float64'"
    );
    assert_eq!(
        csv_err(b"id,score,v\n1,0.5,\"[1,2]\"\n2,0.5,\"[1,2]\",9\n"),
        "bad.csv: incorrect number of fields in row 2, expected 3 got 4"
    );
    assert_eq!(
        csv_err(b"id,score,v\n1,0.5,\"[1,2]\"\n2,0.5,\"[1,2,3]\"\n"),
        "bad.csv: row 2, column \"v\": vector has 3 dimensions, the column is VECTOR(2)"
    );
    let q = dir.path().join("x.parquet");
    write_file(&q, b"PAR1garbagePAR1");
    assert!(shown(open_table(&q, &t).unwrap_err())
        .starts_with("x.parquet: not a readable Parquet file: "));
    assert_eq!(
        shown(open_table(&dir.path().join("none"), &t).unwrap_err()),
        "open none: No such file or directory (os error 2)"
    );
    let b = batch(vec![
        ("id", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
        ("w", Arc::new(Int64Array::from(vec![1]))),
    ]);
    assert_eq!(
        map_one(&b, &t).unwrap_err().to_string(),
        "f.parquet: does not match table \"t\" (3 problems): column \"id\": Utf8 in the file cannot be \
         loaded into BIGINT; column \"w\" (Int64) is not in the table; NOT NULL column \"v\" \
         (VECTOR(2)) is missing from the file"
    );
}

#[test]
fn csv_header_matches_columns_ignoring_case_and_prefers_exact_names() {
    let dir = tmp();
    let path = dir.path().join("t.csv");
    write_file(&path, b"ID,Name,EMBEDDING\n1,a,\"[1,2]\"\n2,b,\"[3,4]\"\n");
    let got = load_named(&path);
    assert_eq!(
        vectors_of(&got, "embedding"),
        vec![vec![1.0, 2.0], vec![3.0, 4.0]]
    );

    // Two columns differing only by case: each header takes the exactly matching one.
    let path = dir.path().join("u.csv");
    write_file(&path, b"id,N,n\n1,7,x\n");
    let t = table(
        "u",
        vec![
            col("id", BIGINT, false),
            col("N", BIGINT, true),
            col("n", TEXT, true),
        ],
    );
    let got = drain_table(&mut open_table(&path, &t).unwrap(), 10).unwrap();
    assert_eq!(got.column(1).as_primitive::<Int64Type>().values(), &[7]);
    assert_eq!(got.column(2).as_string::<i32>().value(0), "x");
}
