//! The one error type of this crate. Every variant names the file; value errors also name the
//! row (counted from 1, header lines not counted) and the column.

use std::path::{Path, PathBuf};

/// Errors reading, converting or writing bulk data. Each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// An I/O error (`op` is what was being done: "open", "read", "write", "rename", ...).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A malformed record of a vecs file (`record` counts from 0).
    #[error("{}: record {record}: {reason}", path.display())]
    Format {
        path: PathBuf,
        record: u64,
        reason: String,
    },
    /// The format could not be told from the file name.
    #[error(
        "{}: unknown file format (expected .parquet, .csv, .csv.gz, .fvecs or .bvecs, or name the format)",
        path.display()
    )]
    UnknownFormat { path: PathBuf },
    /// The path exists but is a directory (or another non-file).
    #[error("{}: is a directory, not a file", path.display())]
    NotAFile { path: PathBuf },
    /// A corrupt, truncated or unsupported Parquet file.
    #[error("{}: not a readable Parquet file: {reason}", path.display())]
    Parquet { path: PathBuf, reason: String },
    /// A CSV file that does not parse (the reason names the line and column).
    #[error("{}: {reason}", path.display())]
    Csv { path: PathBuf, reason: String },
    /// One value of one row cannot be loaded (wrong vector length, NULL or NaN vector, NULL in a
    /// NOT NULL column, out-of-range number...).
    #[error("{}: row {row}, column \"{column}\": {reason}", path.display())]
    Value {
        path: PathBuf,
        /// Row number in the file, counted from 1 (a CSV header is not counted).
        row: u64,
        column: String,
        reason: String,
    },
    /// The file's columns do not fit the table; `problems` lists every offending column.
    #[error(
        "{}: does not match table \"{table}\" ({} problem{}): {}",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.join("; ")
    )]
    SchemaMismatch {
        path: PathBuf,
        table: String,
        problems: Vec<String>,
    },
    /// No primary key could be chosen to create a table from a file.
    #[error("{}: {reason}", path.display())]
    PrimaryKey { path: PathBuf, reason: String },
    /// A bad argument (batch size 0, an option that does not apply to the format...).
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// The file is damaged in a way a decoder did not survive (a panic inside the Parquet or CSV
    /// decoder was caught and turned into this error; the source is unusable afterwards).
    #[error("{}: corrupt file: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

impl DatasetError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            DatasetError::Io { path, .. }
            | DatasetError::Format { path, .. }
            | DatasetError::UnknownFormat { path }
            | DatasetError::NotAFile { path }
            | DatasetError::Parquet { path, .. }
            | DatasetError::Csv { path, .. }
            | DatasetError::Value { path, .. }
            | DatasetError::SchemaMismatch { path, .. }
            | DatasetError::PrimaryKey { path, .. }
            | DatasetError::Invalid { path, .. }
            | DatasetError::Corrupt { path, .. } => path,
        }
    }

    /// The row (from 1) the error is about, where one applies.
    pub fn row(&self) -> Option<u64> {
        match self {
            DatasetError::Value { row, .. } => Some(*row),
            _ => None,
        }
    }

    /// The column the error is about, where one applies.
    pub fn column(&self) -> Option<&str> {
        match self {
            DatasetError::Value { column, .. } => Some(column),
            _ => None,
        }
    }

    /// The SQLSTATE a bulk-data error maps to, shared by `COPY ... FROM` and `vela import`:
    /// `58P01` no such file, `42809` not a file, `22P04` corrupt or malformed file, `42804`
    /// schema mismatch, `23505`/`23502` key violations, `22P02` malformed vector text, `22000`
    /// other bad values, `22023` bad options.
    pub fn code(&self) -> &'static str {
        match self {
            DatasetError::Io { .. } if self.is_not_found() => "58P01",
            DatasetError::Io { .. } => "58030",
            DatasetError::NotAFile { .. } => "42809",
            DatasetError::Parquet { .. }
            | DatasetError::Corrupt { .. }
            | DatasetError::Csv { .. }
            | DatasetError::Format { .. } => "22P04",
            DatasetError::SchemaMismatch { .. } => "42804",
            DatasetError::Value { reason, .. } => {
                if reason.starts_with("duplicate primary key") {
                    "23505"
                } else if reason.starts_with("NULL primary key")
                    || reason.starts_with("NULL in a NOT")
                {
                    "23502"
                } else if reason.starts_with("not a vector literal")
                    || reason.starts_with("bad vector component")
                {
                    "22P02"
                } else {
                    "22000"
                }
            }
            DatasetError::UnknownFormat { .. }
            | DatasetError::Invalid { .. }
            | DatasetError::PrimaryKey { .. } => "22023",
        }
    }

    /// Whether the file itself could not be found or opened (for a "no such file" SQLSTATE).
    pub fn is_not_found(&self) -> bool {
        matches!(self, DatasetError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError {
        let path = path.to_path_buf();
        move |source| DatasetError::Io { op, path, source }
    }

    pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> DatasetError {
        DatasetError::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn value(
        path: &Path,
        row: u64,
        column: &str,
        reason: impl Into<String>,
    ) -> DatasetError {
        DatasetError::Value {
            path: path.to_path_buf(),
            row,
            column: column.to_string(),
            reason: reason.into(),
        }
    }
}

/// Checks that `path` names an existing regular file (not a directory), so that every reader
/// reports "missing" and "is a directory" the same way.
pub(crate) fn check_regular_file(path: &Path) -> Result<u64, DatasetError> {
    let meta = std::fs::metadata(path).map_err(DatasetError::io("open", path))?;
    if meta.is_dir() {
        return Err(DatasetError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(meta.len())
}

/// Turns a caught panic's payload into a message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the decoder panicked".to_string()
    }
}
