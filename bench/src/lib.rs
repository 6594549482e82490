//! Vela's benchmarks: criterion micro-benchmarks live in `benches/`, the ANN recall/QPS harness
//! (which also speaks `../shared/tools/peers.py`'s external-peer contract) in `src/bin/`.
//! Figures and the commands that reproduce them go to `RESULTS.md`.

/// Deterministic benchmark data without a dependency: xorshift64*, uniform floats in [0, 1).
/// The same seed gives the same vectors in every bench, so runs compare like with like.
pub struct Gen(pub u64);

impl Gen {
    /// The next uniform float in [0, 1) (24 random bits).
    pub fn f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A vector of `dim` uniform floats.
    pub fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.f32()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Gen;

    #[test]
    fn same_seed_same_vectors_in_unit_range() {
        let a = Gen(42).vector(64);
        assert_eq!(a, Gen(42).vector(64));
        assert_ne!(a, Gen(43).vector(64));
        assert!(a.iter().all(|x| (0.0..1.0).contains(x)));
    }
}
