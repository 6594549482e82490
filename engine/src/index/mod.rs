//! Vector index (placeholder doc, expanded below).

pub mod distance;
pub mod exact;
pub mod filter;
pub mod hnsw;
mod prefetch;
mod store;

pub use distance::Metric;
pub use exact::{exact_knn, exact_knn_scalar};
pub use filter::{RowFilter, SearchOptions, SearchStrategy};
pub use hnsw::{HnswIndex, HnswParams};

use crate::error::{EngineError, Result};

/// Checks a vector's length and that every component is finite.
pub(crate) fn validate_vector(dim: usize, v: &[f32]) -> Result<()> {
    if v.len() != dim {
        return Err(EngineError::DimensionMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(EngineError::NonFiniteComponent { index, value });
    }
    Ok(())
}
