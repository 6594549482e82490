//! Readers and writers for the texmex / ann-benchmarks "vecs" formats, and the small real
//! sample data that Vela's tests and README use (see `datasets/README.md`).
//!
//! The formats are little-endian; every record is a dimension `d` as `i32`, then `d` components:
//! `f32` for `.fvecs`, `i32` for `.ivecs`, `u8` for `.bvecs`. All records of a file must have
//! the same dimension. Readers stream record by record ([`VecsReader`]) so a file larger than
//! memory can be imported, and they validate the dimension before allocating anything, so a
//! corrupt or hostile file gets an error, never a huge allocation or a panic.

pub mod vecs;

pub use vecs::{
    read_fvecs, read_ivecs, write_fvecs, write_ivecs, Component, DatasetError, VecsKind, VecsReader,
};
