//! Helpers shared by the unit tests: a seeded generator and a lock for the global SIMD path.

use std::sync::Mutex;

/// Tests that pin a SIMD path hold this so they do not pin each other's paths.
pub static PATH_LOCK: Mutex<()> = Mutex::new(());

/// SplitMix64: small, seedable and good enough for test data.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal by Box-Muller.
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A `rows` x `cols` row-major matrix of standard normals.
pub fn random_matrix(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix::new(seed);
    (0..rows * cols).map(|_| rng.normal()).collect()
}
