//! Mapping a file's Arrow schema onto a table (issue 6, item 2), and the inverse: a table schema
//! from a file's (for `vela import --create`).
//!
//! [`TableMapping::new`] checks the whole schema once and reports every offending column in one
//! error; [`TableMapping::convert`] then turns each file batch into a batch of exactly
//! [`vela_engine::arrow_conv::arrow_schema`]'s shape (the table's columns in order, `Int64`,
//! `Float64`, `Utf8`, `Boolean`, `Timestamp(Microsecond, None)`, `FixedSizeList<Float32>(n)`),
//! which the engine's own `arrow_conv::batch_to_rows` takes without any further cast. Values the
//! engine would reject (wrong vector length, NULL or NaN vectors, NULL in a NOT NULL column,
//! out-of-range numbers, duplicate keys within a batch) are caught here first, so that the error
//! names the file, the row and the column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array, Float32Builder,
    GenericListArray, OffsetSizeTrait,
};
use arrow::buffer::NullBuffer;
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{
    ArrowNativeType, DataType, Field, Float32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use vela_engine::arrow_conv::{arrow_schema, arrow_type};
use vela_engine::catalog::{ColumnDef, ColumnType, ScalarType, TableSchema, MAX_VECTOR_DIM};

use crate::error::DatasetError;

/// Options of the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOptions {
    /// Ignore file columns the table does not have (default false: they are listed as errors).
    pub allow_extra_columns: bool,
    /// Load a NULL vector as NULL into a nullable vector column (default false: a NULL vector is
    /// an error naming the row, as issue 6 asks).
    pub allow_null_vectors: bool,
    /// Reject two rows of one batch with the same primary key, naming both rows (default true;
    /// keys repeated across batches or already in the table are the engine's to reject).
    pub check_duplicate_keys: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            allow_extra_columns: false,
            allow_null_vectors: false,
            check_duplicate_keys: true,
        }
    }
}

/// The table column a file column (a Parquet field or a CSV header, i.e. data, not an SQL
/// identifier) maps to: the column of exactly that name, else the one column whose name matches
/// ignoring ASCII case (none when several do). [`crate::source::CsvSource`] types CSV columns by
/// the same rule, so a header `ID` is read as the type of column `id`.
pub fn match_column<'t>(table: &'t TableSchema, name: &str) -> Option<(usize, &'t ColumnDef)> {
    table.column(name).or_else(|| {
        let mut found = table
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name.eq_ignore_ascii_case(name));
        match (found.next(), found.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    })
}

/// How one file column becomes one table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    /// An all-NULL column (`DataType::Null`).
    Null,
    /// Cast to the table's scalar Arrow type (rows whose value does not fit are errors).
    Scalar,
    /// Timestamp with a time zone: the UTC instant is kept, then the unit cast to microseconds.
    TimestampTz,
    /// `FixedSizeList<float or int>(n)` with `n` the column's dimension.
    VecFixed,
    /// `List<float or int>`: each row's length is checked.
    VecList,
    /// `LargeList<float or int>`.
    VecLargeList,
    /// pgvector text `[1,2,3]` (CSV).
    VecText,
}

#[derive(Debug, Clone)]
struct ColumnPlan {
    def: ColumnDef,
    /// The file column feeding it, and how; `None` fills NULL.
    source: Option<(usize, Conv)>,
}

/// A checked mapping from a file's schema to a table; converts file batches to table batches.
#[derive(Debug, Clone)]
pub struct TableMapping {
    path: PathBuf,
    table: TableSchema,
    output: SchemaRef,
    plans: Vec<ColumnPlan>,
    /// The file schema the plan was made for; every batch must have it.
    file: SchemaRef,
    options: MapOptions,
}

fn is_int(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

fn is_float(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float16 | DataType::Float32 | DataType::Float64
    )
}

fn is_string(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

/// How a file column of type `dt` loads into a column of type `ty`, or why it cannot.
fn classify(dt: &DataType, ty: ColumnType) -> Result<Conv, String> {
    if *dt == DataType::Null {
        return Ok(Conv::Null);
    }
    let ok = match ty {
        ColumnType::Scalar(ScalarType::BigInt) => is_int(dt),
        ColumnType::Scalar(ScalarType::Double) => is_int(dt) || is_float(dt),
        ColumnType::Scalar(ScalarType::Text) => is_string(dt),
        ColumnType::Scalar(ScalarType::Boolean) => *dt == DataType::Boolean,
        ColumnType::Scalar(ScalarType::Timestamp) => {
            if let DataType::Timestamp(_, Some(_)) = dt {
                return Ok(Conv::TimestampTz);
            }
            matches!(
                dt,
                DataType::Timestamp(_, None) | DataType::Date32 | DataType::Date64
            )
        }
        ColumnType::Vector { dim } => {
            let numeric = |f: &Field| is_float(f.data_type()) || is_int(f.data_type());
            return match dt {
                DataType::FixedSizeList(f, n) if numeric(f) => {
                    if u32::try_from(*n).ok() == Some(dim) {
                        Ok(Conv::VecFixed)
                    } else {
                        Err(format!(
                            "the file's vectors have {n} dimensions, the column is VECTOR({dim})"
                        ))
                    }
                }
                DataType::List(f) if numeric(f) => Ok(Conv::VecList),
                DataType::LargeList(f) if numeric(f) => Ok(Conv::VecLargeList),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(Conv::VecText),
                other => Err(format!(
                    "{other} in the file cannot be loaded into VECTOR({dim}) (expected a list of floats)"
                )),
            };
        }
    };
    if ok {
        Ok(Conv::Scalar)
    } else {
        Err(format!("{dt} in the file cannot be loaded into {ty}"))
    }
}

impl TableMapping {
    /// Checks `file` against `table` and plans the conversion. Columns are matched by name
    /// (exactly, else case-insensitively when that is unambiguous). Every problem is collected:
    /// file columns the table lacks (unless allowed), types that cannot convert, vectors of the
    /// wrong fixed length, NOT NULL columns missing from the file, duplicate file columns.
    pub fn new(
        path: &Path,
        file: &Schema,
        table: &TableSchema,
        options: &MapOptions,
    ) -> Result<TableMapping, DatasetError> {
        // A schema about to be created may still have `shards == 0` (the engine's default).
        let mut checked = table.clone();
        checked.shards = checked.shards.max(1);
        checked
            .validate()
            .map_err(|e| DatasetError::invalid(path, format!("table \"{}\": {e}", table.name)))?;
        let mut problems = Vec::new();
        let mut sources: Vec<Option<(usize, Conv)>> = vec![None; table.columns.len()];
        for (fi, field) in file.fields().iter().enumerate() {
            let name = field.name();
            let pos = match_column(table, name).map(|(p, _)| p);
            let Some(pos) = pos else {
                if !options.allow_extra_columns {
                    problems.push(format!(
                        "column \"{name}\" ({}) is not in the table",
                        field.data_type()
                    ));
                }
                continue;
            };
            let def = &table.columns[pos];
            if sources[pos].is_some() {
                problems.push(format!(
                    "column \"{}\" appears more than once in the file",
                    def.name
                ));
                continue;
            }
            match classify(field.data_type(), def.ty) {
                Ok(conv) => sources[pos] = Some((fi, conv)),
                Err(why) => problems.push(format!("column \"{}\": {why}", def.name)),
            }
        }
        for (pos, def) in table.columns.iter().enumerate() {
            let already_reported = file
                .fields()
                .iter()
                .any(|f| f.name().eq_ignore_ascii_case(&def.name));
            if sources[pos].is_none() && !already_reported {
                if pos == table.primary_key {
                    problems.push(format!(
                        "primary key column \"{}\" ({}) is missing from the file",
                        def.name, def.ty
                    ));
                } else if !def.nullable {
                    problems.push(format!(
                        "NOT NULL column \"{}\" ({}) is missing from the file",
                        def.name, def.ty
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(DatasetError::SchemaMismatch {
                path: path.to_path_buf(),
                table: table.name.clone(),
                problems,
            });
        }
        let plans = table
            .columns
            .iter()
            .zip(sources)
            .map(|(def, source)| ColumnPlan {
                def: def.clone(),
                source,
            })
            .collect();
        Ok(TableMapping {
            path: path.to_path_buf(),
            table: table.clone(),
            output: arrow_schema(table),
            plans,
            file: Arc::new(file.clone()),
            options: options.clone(),
        })
    }

    /// The table rows are mapped to.
    pub fn table(&self) -> &TableSchema {
        &self.table
    }

    /// The schema of every converted batch (the engine's Arrow schema of the table).
    pub fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    /// Converts one file batch whose first row is row `first_row` of the file (counted from 0;
    /// errors name rows counted from 1).
    pub fn convert(
        &self,
        batch: &RecordBatch,
        first_row: u64,
    ) -> Result<RecordBatch, DatasetError> {
        let same_types = batch.num_columns() == self.file.fields().len()
            && batch
                .schema()
                .fields()
                .iter()
                .zip(self.file.fields())
                .all(|(a, b)| a.data_type() == b.data_type());
        if !same_types {
            return Err(DatasetError::invalid(
                &self.path,
                "batch schema differs from the schema the mapping was made for",
            ));
        }
        let n = batch.num_rows();
        let mut columns = Vec::with_capacity(self.plans.len());
        for (pos, plan) in self.plans.iter().enumerate() {
            let def = &plan.def;
            let out_type = arrow_type(def.ty);
            let array = match plan.source {
                None | Some((_, Conv::Null)) => new_null_array(&out_type, n),
                Some((fi, conv)) => {
                    let input = batch.columns().get(fi).ok_or_else(|| {
                        DatasetError::invalid(
                            &self.path,
                            format!("batch has no column {fi} for \"{}\"", def.name),
                        )
                    })?;
                    match def.ty {
                        ColumnType::Vector { dim } => {
                            self.vectors(input, conv, def, dim as usize, first_row)?
                        }
                        ColumnType::Scalar(_) => {
                            self.scalar(input, conv, def, &out_type, first_row)?
                        }
                    }
                }
            };
            if array.null_count() > 0 && (!def.nullable || pos == self.table.primary_key) {
                let i = (0..n).find(|&i| array.is_null(i)).unwrap_or(0);
                let what = if pos == self.table.primary_key {
                    "NULL primary key"
                } else {
                    "NULL in a NOT NULL column"
                };
                return Err(self.value_err(first_row, i, &def.name, what));
            }
            columns.push(array);
        }
        if self.options.check_duplicate_keys {
            self.check_duplicates(&columns, first_row)?;
        }
        RecordBatch::try_new_with_options(
            self.output.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .map_err(|e| DatasetError::invalid(&self.path, format!("building the batch: {e}")))
    }

    /// The row (from 0) of a converted batch holding primary key `key` as the engine displays it
    /// (`EngineError::DuplicateKey { key }`), to name the row of a duplicate-key error.
    pub fn key_row(&self, converted: &RecordBatch, key: &str) -> Option<usize> {
        let col = converted.columns().get(self.table.primary_key)?;
        match col.data_type() {
            DataType::Int64 => {
                let want: i64 = key.parse().ok()?;
                let a = col.as_primitive::<Int64Type>();
                (0..a.len()).find(|&i| a.is_valid(i) && a.value(i) == want)
            }
            DataType::Utf8 => {
                let a = col.as_string::<i32>();
                (0..a.len()).find(|&i| a.is_valid(i) && a.value(i) == key)
            }
            _ => None,
        }
    }

    fn value_err(
        &self,
        first_row: u64,
        i: usize,
        column: &str,
        reason: impl Into<String>,
    ) -> DatasetError {
        DatasetError::value(&self.path, first_row + i as u64 + 1, column, reason)
    }

    fn scalar(
        &self,
        input: &ArrayRef,
        conv: Conv,
        def: &ColumnDef,
        out_type: &DataType,
        first_row: u64,
    ) -> Result<ArrayRef, DatasetError> {
        let input: ArrayRef = if conv == Conv::TimestampTz {
            strip_time_zone(input)
        } else {
            input.clone()
        };
        if input.data_type() == out_type {
            return Ok(input);
        }
        let safe = CastOptions {
            safe: true,
            ..Default::default()
        };
        let out = cast_with_options(&input, out_type, &safe).map_err(|e| {
            // Even a safe cast fails for some inputs: name the first row that fails on its own.
            let i = (0..input.len())
                .find(|&i| cast_with_options(&input.slice(i, 1), out_type, &safe).is_err())
                .unwrap_or(0);
            self.value_err(
                first_row,
                i,
                &def.name,
                format!("cannot convert {} to {}: {e}", input.data_type(), def.ty),
            )
        })?;
        // A safe cast turns values that do not fit into NULL: find the first such row.
        if out.null_count() > input.null_count() {
            if let Some(i) = (0..input.len()).find(|&i| input.is_valid(i) && out.is_null(i)) {
                let shown = arrow::util::display::array_value_to_string(&input, i)
                    .unwrap_or_else(|_| "?".into());
                return Err(self.value_err(
                    first_row,
                    i,
                    &def.name,
                    format!("value {shown} does not fit {}", def.ty),
                ));
            }
        }
        Ok(out)
    }

    fn vectors(
        &self,
        input: &ArrayRef,
        conv: Conv,
        def: &ColumnDef,
        dim: usize,
        first_row: u64,
    ) -> Result<ArrayRef, DatasetError> {
        let n = input.len();
        let allow_null = self.options.allow_null_vectors && def.nullable;
        let mut valid = vec![true; n];
        let mut null_row = |i: usize| -> Result<(), DatasetError> {
            if allow_null {
                valid[i] = false;
                Ok(())
            } else {
                Err(self.value_err(first_row, i, &def.name, "NULL vector"))
            }
        };
        let values: Float32Array = match conv {
            Conv::VecFixed => {
                let fsl = input.as_fixed_size_list();
                for i in 0..n {
                    if fsl.is_null(i) {
                        null_row(i)?;
                    }
                }
                let child = fsl.values();
                if child.len() < n * dim {
                    return Err(DatasetError::invalid(
                        &self.path,
                        format!(
                            "column \"{}\": list values are shorter than the rows",
                            def.name
                        ),
                    ));
                }
                let child = self.to_f32(&child.slice(0, n * dim), def, first_row, &|k| {
                    k / dim.max(1)
                })?;
                if valid.iter().all(|&v| v) {
                    child
                } else {
                    // Zero-fill NULL rows so they do not trip the component checks below.
                    let mut b = Float32Builder::with_capacity(n * dim);
                    for (i, &ok) in valid.iter().enumerate() {
                        if ok {
                            let row = child.slice(i * dim, dim);
                            for j in 0..dim {
                                b.append_option(row.is_valid(j).then(|| row.value(j)));
                            }
                        } else {
                            b.append_slice(&vec![0.0; dim]);
                        }
                    }
                    b.finish()
                }
            }
            Conv::VecList => {
                self.list_values(input.as_list::<i32>(), def, dim, first_row, &mut null_row)?
            }
            Conv::VecLargeList => {
                self.list_values(input.as_list::<i64>(), def, dim, first_row, &mut null_row)?
            }
            Conv::VecText => {
                let text = cast_with_options(input, &DataType::Utf8, &CastOptions::default())
                    .map_err(|e| DatasetError::invalid(&self.path, e.to_string()))?;
                let text = text.as_string::<i32>();
                let mut b = Float32Builder::with_capacity(n * dim);
                for i in 0..n {
                    if text.is_null(i) {
                        null_row(i)?;
                        b.append_slice(&vec![0.0; dim]);
                        continue;
                    }
                    let got = parse_vector_into(text.value(i), &mut b)
                        .map_err(|why| self.value_err(first_row, i, &def.name, why))?;
                    if got != dim {
                        return Err(self.value_err(
                            first_row,
                            i,
                            &def.name,
                            format!("vector has {got} dimensions, the column is VECTOR({dim})"),
                        ));
                    }
                }
                b.finish()
            }
            Conv::Null | Conv::Scalar | Conv::TimestampTz => {
                return Err(DatasetError::invalid(
                    &self.path,
                    format!("column \"{}\": not a vector conversion", def.name),
                ))
            }
        };
        if values.null_count() > 0 {
            if let Some(k) = (0..values.len()).find(|&k| values.is_null(k)) {
                return Err(self.value_err(
                    first_row,
                    k / dim.max(1),
                    &def.name,
                    format!("vector has a NULL component (position {})", k % dim.max(1)),
                ));
            }
        }
        if let Some(k) = values.values().iter().position(|v| !v.is_finite()) {
            let v = values.value(k);
            let what = if v.is_nan() { "NaN" } else { "infinite" };
            return Err(self.value_err(
                first_row,
                k / dim.max(1),
                &def.name,
                format!(
                    "vector has a {what} component (position {})",
                    k % dim.max(1)
                ),
            ));
        }
        let nulls = if valid.iter().all(|&v| v) {
            None
        } else {
            Some(NullBuffer::from(valid))
        };
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        let array = FixedSizeListArray::try_new(item, dim as i32, Arc::new(values), nulls)
            .map_err(|e| {
                DatasetError::invalid(&self.path, format!("column \"{}\": {e}", def.name))
            })?;
        Ok(Arc::new(array))
    }

    fn list_values<O: OffsetSizeTrait>(
        &self,
        list: &GenericListArray<O>,
        def: &ColumnDef,
        dim: usize,
        first_row: u64,
        null_row: &mut dyn FnMut(usize) -> Result<(), DatasetError>,
    ) -> Result<Float32Array, DatasetError> {
        let n = list.len();
        let offsets = list.value_offsets();
        let mut any_null = false;
        for i in 0..n {
            if list.is_null(i) {
                null_row(i)?;
                any_null = true;
                continue;
            }
            let len = (offsets[i + 1] - offsets[i]).as_usize();
            if len != dim {
                return Err(self.value_err(
                    first_row,
                    i,
                    &def.name,
                    format!("vector has {len} dimensions, the column is VECTOR({dim})"),
                ));
            }
        }
        let start = offsets.first().map_or(0, |o| o.as_usize());
        let end = offsets.last().map_or(0, |o| o.as_usize());
        let child = list.values();
        if end > child.len() || start > end {
            return Err(DatasetError::invalid(
                &self.path,
                format!("column \"{}\": list offsets out of range", def.name),
            ));
        }
        // Component k of the slice belongs to the row whose offsets enclose `start + k`.
        let row_of = |k: usize| {
            offsets
                .partition_point(|o| o.as_usize() <= start + k)
                .saturating_sub(1)
                .min(n.saturating_sub(1))
        };
        if !any_null {
            // Every row has exactly `dim` values: they are contiguous.
            return self.to_f32(&child.slice(start, end - start), def, first_row, &row_of);
        }
        let child = self.to_f32(&child.slice(start, end - start), def, first_row, &row_of)?;
        let mut b = Float32Builder::with_capacity(n * dim);
        for (i, offset) in offsets.iter().enumerate().take(n) {
            if list.is_null(i) {
                b.append_slice(&vec![0.0; dim]);
            } else {
                let from = offset.as_usize().saturating_sub(start);
                for j in from..from + dim {
                    b.append_option(child.is_valid(j).then(|| child.value(j)));
                }
            }
        }
        Ok(b.finish())
    }

    /// Casts vector components to float32; on failure, the error names the row of the first
    /// component that does not convert (`row_of` maps a component index to its batch row).
    fn to_f32(
        &self,
        values: &ArrayRef,
        def: &ColumnDef,
        first_row: u64,
        row_of: &dyn Fn(usize) -> usize,
    ) -> Result<Float32Array, DatasetError> {
        let options = CastOptions::default();
        match cast_with_options(values, &DataType::Float32, &options) {
            Ok(cast) => Ok(cast.as_primitive::<Float32Type>().clone()),
            Err(e) => {
                let k = (0..values.len())
                    .find(|&k| {
                        cast_with_options(&values.slice(k, 1), &DataType::Float32, &options)
                            .is_err()
                    })
                    .unwrap_or(0);
                Err(self.value_err(
                    first_row,
                    row_of(k),
                    &def.name,
                    format!("cannot convert vector components to float32: {e}"),
                ))
            }
        }
    }

    fn check_duplicates(&self, columns: &[ArrayRef], first_row: u64) -> Result<(), DatasetError> {
        let Some(col) = columns.get(self.table.primary_key) else {
            return Ok(());
        };
        let name = &self.table.primary_key_column().name;
        let dup = |i: usize, j: usize, key: String| {
            self.value_err(
                first_row,
                j,
                name,
                format!(
                    "duplicate primary key {key} (also in row {})",
                    first_row + i as u64 + 1
                ),
            )
        };
        match col.data_type() {
            DataType::Int64 => {
                let a = col.as_primitive::<Int64Type>();
                let mut seen = HashMap::with_capacity(a.len());
                for (j, v) in a.values().iter().enumerate() {
                    if let Some(i) = seen.insert(*v, j) {
                        return Err(dup(i, j, v.to_string()));
                    }
                }
            }
            DataType::Utf8 => {
                let a = col.as_string::<i32>();
                let mut seen = HashMap::with_capacity(a.len());
                for j in 0..a.len() {
                    if let Some(i) = seen.insert(a.value(j), j) {
                        return Err(dup(i, j, format!("'{}'", a.value(j))));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Keeps a zoned timestamp's UTC instant, dropping the zone (a cast would shift to wall time).
fn strip_time_zone(input: &ArrayRef) -> ArrayRef {
    match input.data_type() {
        DataType::Timestamp(TimeUnit::Second, Some(_)) => Arc::new(
            input
                .as_primitive::<TimestampSecondType>()
                .clone()
                .with_timezone_opt(None::<String>),
        ),
        DataType::Timestamp(TimeUnit::Millisecond, Some(_)) => Arc::new(
            input
                .as_primitive::<TimestampMillisecondType>()
                .clone()
                .with_timezone_opt(None::<String>),
        ),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Arc::new(
            input
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
                .with_timezone_opt(None::<String>),
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, Some(_)) => Arc::new(
            input
                .as_primitive::<TimestampNanosecondType>()
                .clone()
                .with_timezone_opt(None::<String>),
        ),
        _ => input.clone(),
    }
}

/// Parses a pgvector literal (`[1, 2.5, -3e-2]`) and appends its components; returns how many.
pub fn parse_vector_into(text: &str, out: &mut Float32Builder) -> Result<usize, String> {
    let shown = || {
        let mut s: String = text.chars().take(40).collect();
        if s.len() < text.len() {
            s.push_str("...");
        }
        s
    };
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| format!("not a vector literal (expected '[1,2,3]'): '{}'", shown()))?;
    if inner.trim().is_empty() {
        return Ok(0);
    }
    let mut count = 0;
    for part in inner.split(',') {
        let v: f32 = part
            .trim()
            .parse()
            .map_err(|_| format!("bad vector component '{}' in '{}'", part.trim(), shown()))?;
        out.append_value(v);
        count += 1;
    }
    Ok(count)
}

/// Parses a pgvector literal (`[1,2,3]`) into its components.
pub fn parse_vector(text: &str) -> Result<Vec<f32>, String> {
    let mut b = Float32Builder::new();
    parse_vector_into(text, &mut b)?;
    Ok(b.finish().values().to_vec())
}

/// Formats a vector as pgvector text (`[1,2.5,-3]`, shortest round-trip floats).
pub fn format_vector(values: &[f32], out: &mut String) {
    use std::fmt::Write;
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{v}");
    }
    out.push(']');
}

/// The table column type a file column would get with `--create`, or why it has none. List
/// columns need `list_dim` (the length of their first non-NULL row).
fn column_type_for(field: &Field, list_dim: Option<usize>) -> Result<ColumnType, String> {
    let dt = field.data_type();
    let vector = |dim: usize| {
        u32::try_from(dim)
            .ok()
            .filter(|d| (1..=MAX_VECTOR_DIM).contains(d))
            .map(|dim| ColumnType::Vector { dim })
            .ok_or_else(|| {
                format!("vectors of {dim} dimensions (VECTOR allows 1 to {MAX_VECTOR_DIM})")
            })
    };
    let numeric = |f: &Field| is_float(f.data_type()) || is_int(f.data_type());
    Ok(match dt {
        d if is_int(d) => ColumnType::Scalar(ScalarType::BigInt),
        d if is_float(d) => ColumnType::Scalar(ScalarType::Double),
        d if is_string(d) => ColumnType::Scalar(ScalarType::Text),
        DataType::Boolean => ColumnType::Scalar(ScalarType::Boolean),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            ColumnType::Scalar(ScalarType::Timestamp)
        }
        DataType::FixedSizeList(f, n) if numeric(f) => vector(usize::try_from(*n).unwrap_or(0))?,
        DataType::List(f) | DataType::LargeList(f) if numeric(f) => match list_dim {
            Some(d) => vector(d)?,
            None => {
                return Err("a list column with no non-NULL row: its dimension is unknown".into())
            }
        },
        other => return Err(format!("type {other} has no Vela column type")),
    })
}

/// The length of the first non-NULL list in column `name` of `sample`.
fn first_list_len(sample: Option<&RecordBatch>, name: &str) -> Option<usize> {
    let col = sample?.column_by_name(name)?;
    match col.data_type() {
        DataType::List(_) => {
            let l = col.as_list::<i32>();
            (0..l.len())
                .find(|&i| l.is_valid(i))
                .map(|i| l.value_length(i).as_usize())
        }
        DataType::LargeList(_) => {
            let l = col.as_list::<i64>();
            (0..l.len())
                .find(|&i| l.is_valid(i))
                .map(|i| l.value_length(i).as_usize())
        }
        _ => None,
    }
}

/// A table schema for a file's schema (`vela import --create`): one column per file column
/// (types as in the module doc, nullability from the file), the primary key `key` or else the
/// column named `id` (case-insensitive) — BIGINT or TEXT, made NOT NULL. `sample` (the file's
/// first batch) gives the dimension of variable-length list columns. No index is created and
/// `shards` is 0 (the engine's default). Every column without a type is listed in one error.
pub fn infer_table_schema(
    path: &Path,
    table_name: &str,
    file: &Schema,
    sample: Option<&RecordBatch>,
    key: Option<&str>,
) -> Result<TableSchema, DatasetError> {
    let mut problems = Vec::new();
    let mut columns = Vec::new();
    for field in file.fields() {
        match column_type_for(field, first_list_len(sample, field.name())) {
            Ok(ty) => columns.push(ColumnDef {
                name: field.name().clone(),
                ty,
                nullable: field.is_nullable(),
            }),
            Err(why) => problems.push(format!("column \"{}\": {why}", field.name())),
        }
    }
    if !problems.is_empty() {
        return Err(DatasetError::SchemaMismatch {
            path: path.to_path_buf(),
            table: table_name.to_string(),
            problems,
        });
    }
    let names = || {
        columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let primary_key = match key {
        Some(k) => columns.iter().position(|c| c.name == k).ok_or_else(|| {
            DatasetError::PrimaryKey {
                path: path.to_path_buf(),
                reason: format!("key column \"{k}\" is not in the file (columns: {})", names()),
            }
        })?,
        None => columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case("id"))
            .ok_or_else(|| DatasetError::PrimaryKey {
                path: path.to_path_buf(),
                reason: format!(
                    "no column named \"id\" to use as the primary key; name one with --key (columns: {})",
                    names()
                ),
            })?,
    };
    let pk = &mut columns[primary_key];
    if !matches!(
        pk.ty,
        ColumnType::Scalar(ScalarType::BigInt) | ColumnType::Scalar(ScalarType::Text)
    ) {
        return Err(DatasetError::PrimaryKey {
            path: path.to_path_buf(),
            reason: format!(
                "key column \"{}\" is {}; a primary key must be BIGINT or TEXT",
                pk.name, pk.ty
            ),
        });
    }
    pk.nullable = false;
    let schema = TableSchema {
        name: table_name.to_string(),
        columns,
        primary_key,
        shards: 0,
        indexes: Vec::new(),
    };
    Ok(schema)
}
