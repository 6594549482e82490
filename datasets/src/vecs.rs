//! Streaming reader and writer for `.fvecs`, `.ivecs` and `.bvecs` files.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

pub use crate::error::DatasetError;

/// Largest dimension a record may declare. Far above any real embedding; it bounds what a
/// corrupt header can make us allocate (64 Ki components).
pub const MAX_DIM: usize = 1 << 16;

/// Which of the three formats a file is in, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VecsKind {
    F32,
    I32,
    U8,
}

impl VecsKind {
    /// The format named by a path's extension (`.fvecs`, `.ivecs`, `.bvecs`).
    pub fn from_path(path: &Path) -> Result<VecsKind, DatasetError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("fvecs") => Ok(VecsKind::F32),
            Some("ivecs") => Ok(VecsKind::I32),
            Some("bvecs") => Ok(VecsKind::U8),
            _ => Err(DatasetError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// A component type of a vecs file.
pub trait Component: Copy + Default + Send + 'static {
    /// Bytes per component on disk.
    const SIZE: usize;
    /// Decodes one little-endian component; `bytes.len() == SIZE`.
    fn from_le(bytes: &[u8]) -> Self;
    /// Appends the little-endian encoding.
    fn put_le(self, out: &mut Vec<u8>);
}

impl Component for f32 {
    const SIZE: usize = 4;
    fn from_le(bytes: &[u8]) -> Self {
        f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Component for i32 {
    const SIZE: usize = 4;
    fn from_le(bytes: &[u8]) -> Self {
        i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Component for u8 {
    const SIZE: usize = 1;
    fn from_le(bytes: &[u8]) -> Self {
        bytes[0]
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

/// Reads records one batch at a time. The first record fixes the dimension; every later record
/// must declare the same one.
pub struct VecsReader<T: Component, R: Read = BufReader<File>> {
    input: R,
    path: PathBuf,
    dim: Option<usize>,
    records_read: u64,
    /// The first header was read by `open` to learn the dimension; its body comes next.
    pending_header: bool,
    scratch: Vec<u8>,
    _component: PhantomData<T>,
}

impl<T: Component> VecsReader<T> {
    /// Opens a file for streaming.
    pub fn open(path: &Path) -> Result<Self, DatasetError> {
        crate::error::check_regular_file(path)?;
        let file = File::open(path).map_err(|source| DatasetError::Io {
            op: "open",
            path: path.to_path_buf(),
            source,
        })?;
        let mut reader = VecsReader::new(BufReader::with_capacity(1 << 20, file), path);
        reader.peek_dim()?;
        Ok(reader)
    }
}

impl<T: Component, R: Read> VecsReader<T, R> {
    /// Wraps any byte source; `path` only names it in errors.
    pub fn new(input: R, path: &Path) -> Self {
        VecsReader {
            input,
            path: path.to_path_buf(),
            dim: None,
            records_read: 0,
            pending_header: false,
            scratch: Vec::new(),
            _component: PhantomData,
        }
    }

    /// The dimension, once the first record header has been read (`None` for an empty input).
    pub fn dim(&self) -> Option<usize> {
        self.dim
    }

    /// How many whole records have been returned so far.
    pub fn records_read(&self) -> u64 {
        self.records_read
    }

    fn format_error(&self, reason: impl Into<String>) -> DatasetError {
        DatasetError::Format {
            path: self.path.clone(),
            record: self.records_read,
            reason: reason.into(),
        }
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end of input before any byte.
    fn read_exact_or_eof(&mut self, buf_len: usize, what: &str) -> Result<bool, DatasetError> {
        self.scratch.resize(buf_len, 0);
        let mut filled = 0;
        while filled < buf_len {
            match self.input.read(&mut self.scratch[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => {
                    return Err(
                        self.format_error(format!("truncated {what}: {filled} of {buf_len} bytes"))
                    )
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(DatasetError::Io {
                        op: "read",
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        Ok(true)
    }

    fn read_header(&mut self) -> Result<Option<usize>, DatasetError> {
        if !self.read_exact_or_eof(4, "record header")? {
            return Ok(None);
        }
        let raw = i32::from_le_bytes([
            self.scratch[0],
            self.scratch[1],
            self.scratch[2],
            self.scratch[3],
        ]);
        let dim = usize::try_from(raw)
            .ok()
            .filter(|&d| (1..=MAX_DIM).contains(&d))
            .ok_or_else(|| {
                self.format_error(format!("dimension {raw} is not between 1 and {MAX_DIM}"))
            })?;
        match self.dim {
            Some(expected) if expected != dim => Err(self.format_error(format!(
                "dimension {dim} differs from the file's dimension {expected}"
            ))),
            _ => Ok(Some(dim)),
        }
    }

    fn peek_dim(&mut self) -> Result<(), DatasetError> {
        // Reading the first header fixes the dimension; the record body is read by the next call.
        if self.dim.is_none() {
            if let Some(dim) = self.read_header()? {
                self.dim = Some(dim);
                self.pending_header = true;
            }
        }
        Ok(())
    }

    /// Appends up to `max_records` records to `out` (flat, `dim` components each) and returns
    /// how many were read; 0 at the end of the file.
    pub fn read_batch(
        &mut self,
        max_records: usize,
        out: &mut Vec<T>,
    ) -> Result<usize, DatasetError> {
        let mut count = 0;
        while count < max_records && self.next_into(out)? {
            count += 1;
        }
        Ok(count)
    }

    /// Appends the next record to `out`; `Ok(false)` at the end of the file.
    pub fn next_into(&mut self, out: &mut Vec<T>) -> Result<bool, DatasetError> {
        let dim = if std::mem::take(&mut self.pending_header) {
            self.dim.unwrap_or(0)
        } else {
            match self.read_header()? {
                Some(dim) => {
                    self.dim = Some(dim);
                    dim
                }
                None => return Ok(false),
            }
        };
        if !self.read_exact_or_eof(dim * T::SIZE, "record body")? {
            return Err(self.format_error("record body missing after its header"));
        }
        out.extend(self.scratch.chunks_exact(T::SIZE).map(T::from_le));
        self.records_read += 1;
        Ok(true)
    }
}

/// Reads a whole `.fvecs` file: `(dim, flat components)`. An empty file gives `(0, [])`.
pub fn read_fvecs(path: &Path) -> Result<(usize, Vec<f32>), DatasetError> {
    read_all::<f32>(path)
}

/// Reads a whole `.ivecs` file: `(dim, flat components)`.
pub fn read_ivecs(path: &Path) -> Result<(usize, Vec<i32>), DatasetError> {
    read_all::<i32>(path)
}

fn read_all<T: Component>(path: &Path) -> Result<(usize, Vec<T>), DatasetError> {
    let mut reader = VecsReader::<T>::open(path)?;
    let mut out = Vec::new();
    while reader.next_into(&mut out)? {}
    Ok((reader.dim().unwrap_or(0), out))
}

/// Writes `data` (flat, `dim` components per record) as a `.fvecs` file.
pub fn write_fvecs(path: &Path, dim: usize, data: &[f32]) -> Result<(), DatasetError> {
    write_all(path, dim, data)
}

/// Writes `data` (flat, `dim` components per record) as a `.ivecs` file.
pub fn write_ivecs(path: &Path, dim: usize, data: &[i32]) -> Result<(), DatasetError> {
    write_all(path, dim, data)
}

fn write_all<T: Component>(path: &Path, dim: usize, data: &[T]) -> Result<(), DatasetError> {
    let bad = |reason: String| DatasetError::Format {
        path: path.to_path_buf(),
        record: 0,
        reason,
    };
    let dim_i32 = i32::try_from(dim)
        .ok()
        .filter(|&d| d > 0 && dim <= MAX_DIM)
        .ok_or_else(|| bad(format!("dimension {dim} is not between 1 and {MAX_DIM}")))?;
    if data.len() / dim * dim != data.len() {
        return Err(bad(format!(
            "{} components is not a whole number of {dim}-dimensional records",
            data.len()
        )));
    }
    let io = |op: &'static str| {
        move |source| DatasetError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut writer = BufWriter::new(File::create(path).map_err(io("create"))?);
    let mut record = Vec::with_capacity(4 + dim * T::SIZE);
    for row in data.chunks_exact(dim) {
        record.clear();
        record.extend_from_slice(&dim_i32.to_le_bytes());
        for &c in row {
            c.put_le(&mut record);
        }
        writer.write_all(&record).map_err(io("write"))?;
    }
    writer.flush().map_err(io("write"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fvecs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.fvecs");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        write_fvecs(&path, 3, &data).unwrap();
        assert_eq!(read_fvecs(&path).unwrap(), (3, data));
    }

    #[test]
    fn streaming_batches_cover_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ivecs");
        let data: Vec<i32> = (0..100).collect();
        write_ivecs(&path, 10, &data).unwrap();
        let mut reader = VecsReader::<i32>::open(&path).unwrap();
        assert_eq!(reader.dim(), Some(10));
        let mut out = Vec::new();
        assert_eq!(reader.read_batch(4, &mut out).unwrap(), 4);
        assert_eq!(reader.read_batch(4, &mut out).unwrap(), 4);
        assert_eq!(reader.read_batch(4, &mut out).unwrap(), 2);
        assert_eq!(reader.read_batch(4, &mut out).unwrap(), 0);
        assert_eq!(out, data);
    }

    #[test]
    fn bvecs_reads_bytes() {
        let bytes = [2i32.to_le_bytes().as_slice(), &[7u8, 9u8]].concat();
        let mut reader = VecsReader::<u8, _>::new(bytes.as_slice(), Path::new("x.bvecs"));
        let mut out = Vec::new();
        assert!(reader.next_into(&mut out).unwrap());
        assert_eq!(out, vec![7, 9]);
        assert!(!reader.next_into(&mut out).unwrap());
    }

    #[test]
    fn bad_headers_are_errors_not_allocations() {
        for dim in [0i32, -1, i32::MAX] {
            let bytes = dim.to_le_bytes();
            let mut reader = VecsReader::<f32, _>::new(bytes.as_slice(), Path::new("x.fvecs"));
            let err = reader.next_into(&mut Vec::new()).unwrap_err();
            assert!(err.to_string().contains("dimension"), "{err}");
        }
    }

    #[test]
    fn mixed_dimensions_are_rejected() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1i32.to_le_bytes());
        bytes.extend_from_slice(&1.0f32.to_le_bytes());
        bytes.extend_from_slice(&2i32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        let mut reader = VecsReader::<f32, _>::new(bytes.as_slice(), Path::new("x.fvecs"));
        let mut out = Vec::new();
        assert!(reader.next_into(&mut out).unwrap());
        let err = reader.next_into(&mut out).unwrap_err();
        assert!(err.to_string().contains("record 1"), "{err}");
    }

    #[test]
    fn unknown_extension_is_an_error() {
        assert!(VecsKind::from_path(Path::new("a.parquet")).is_err());
        assert_eq!(
            VecsKind::from_path(Path::new("a.bvecs")).unwrap(),
            VecsKind::U8
        );
    }

    proptest! {
        /// Any truncation of a valid file yields either the whole records before the cut or a
        /// truncation error, never a panic or a wrong value.
        #[test]
        fn truncated_files_give_a_prefix_or_an_error(cut in 0usize..(3 * 16)) {
            let mut bytes = Vec::new();
            for r in 0..3 {
                bytes.extend_from_slice(&3i32.to_le_bytes());
                for c in 0..3 {
                    bytes.extend_from_slice(&((r * 3 + c) as f32).to_le_bytes());
                }
            }
            let cut_bytes = &bytes[..cut];
            let mut reader = VecsReader::<f32, _>::new(cut_bytes, Path::new("x.fvecs"));
            let mut out = Vec::new();
            let result = loop {
                match reader.next_into(&mut out) {
                    Ok(true) => continue,
                    Ok(false) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            prop_assert_eq!(out.len(), (cut / 16) * 3);
            prop_assert_eq!(result.is_ok(), cut % 16 == 0);
            for (i, v) in out.iter().enumerate() {
                prop_assert_eq!(*v, i as f32);
            }
        }
    }
}
