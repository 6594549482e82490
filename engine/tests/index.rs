//! Integration tests of the vector index (one test binary: one link on 2 cores).
//!
//! Every randomised test prints its seed and takes `VELA_TEST_SEED` to replay it.

mod index {
    pub mod bad_input;
    pub mod collinear;
    pub mod common;
    pub mod concurrency;
    pub mod distance;
    pub mod exact;
    pub mod filtered;
    pub mod given;
    pub mod props;
    pub mod recall;
    pub mod serialize;
}
