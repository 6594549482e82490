//! Integration tests of the engine (one test binary: one link on 2 cores).
//!
//! Every randomised test prints its seed and takes `VELA_TEST_SEED` to replay it.

mod engine {
    pub mod basics;
    pub mod common;
    pub mod model;
    pub mod optimizer;
    pub mod released;
    pub mod rocks;
    pub mod tail;
    pub mod transactions;
    pub mod vectors;
}
