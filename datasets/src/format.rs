//! File formats, told from a file's name or named by the caller (`COPY ... WITH (FORMAT csv)`).

use std::path::Path;

use crate::error::DatasetError;

/// A bulk file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Apache Parquet (any codec the `parquet` crate reads: snappy, lz4, zstd, gzip, none).
    Parquet,
    /// Comma-separated values (also `.csv.gz`, read through gzip).
    Csv,
    /// texmex `.fvecs`: `(id = row number, embedding)` rows.
    Fvecs,
    /// texmex `.bvecs` (bytes, converted to f32): `(id = row number, embedding)` rows.
    Bvecs,
}

impl Format {
    /// The format named by a path's extension: `.parquet`/`.pq`, `.csv`/`.csv.gz`/`.tsv`,
    /// `.fvecs`, `.bvecs` (case-insensitive).
    pub fn from_path(path: &Path) -> Result<Format, DatasetError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        match ext {
            "parquet" | "pq" => Ok(Format::Parquet),
            "csv" | "tsv" => Ok(Format::Csv),
            "fvecs" => Ok(Format::Fvecs),
            "bvecs" => Ok(Format::Bvecs),
            _ => Err(DatasetError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The format named in SQL (`FORMAT parquet`, `FORMAT csv`, ...), case-insensitive.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "parquet" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            "fvecs" => Some(Format::Fvecs),
            "bvecs" => Some(Format::Bvecs),
            _ => None,
        }
    }

    /// Lower-case name, as accepted by [`Format::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Fvecs => "fvecs",
            Format::Bvecs => "bvecs",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a path names a gzip-compressed file (`.gz`).
pub(crate) fn is_gzip(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        let f = |p: &str| Format::from_path(Path::new(p)).ok();
        assert_eq!(f("a.parquet"), Some(Format::Parquet));
        assert_eq!(f("dir.x/A.PARQUET"), Some(Format::Parquet));
        assert_eq!(f("a.csv"), Some(Format::Csv));
        assert_eq!(f("a.csv.gz"), Some(Format::Csv));
        assert_eq!(f("a.fvecs"), Some(Format::Fvecs));
        assert_eq!(f("a.bvecs"), Some(Format::Bvecs));
        assert_eq!(f("a.ivecs"), None);
        assert_eq!(f("a"), None);
        assert_eq!(f("a.gz"), None);
        assert_eq!(Format::from_name("CSV"), Some(Format::Csv));
        assert!(is_gzip(Path::new("x.csv.GZ")));
    }
}
