//! Runtime CPU dispatch.
//!
//! Every kernel in the crate exists in up to three instruction-set variants; which one
//! runs is decided here once per call. The fastest path the CPU supports is chosen by
//! default, and [`force_path`] pins a slower one so that tests can check that all paths
//! give bitwise-identical results and benchmarks can compare them.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set path through the kernels, slowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdPath {
    /// Plain Rust, no target features: runs on any CPU.
    Portable,
    /// AVX2 with FMA; popcounts by nibble lookup tables (no hardware vector popcount).
    Avx2,
    /// AVX-512 F/BW/DQ/VL with VPOPCNTDQ: one `vpopcntq` per 512 bits.
    Avx512,
}

impl SimdPath {
    /// Every path, slowest first.
    pub const ALL: [SimdPath; 3] = [SimdPath::Portable, SimdPath::Avx2, SimdPath::Avx512];

    /// The name used by `PYBINSCALE_SIMD` and `simd_path()`.
    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Portable => "portable",
            SimdPath::Avx2 => "avx2",
            SimdPath::Avx512 => "avx512",
        }
    }

    /// Whether the CPU this process runs on can execute this path.
    pub fn is_supported(self) -> bool {
        match self {
            SimdPath::Portable => true,
            SimdPath::Avx2 => cpu_has_avx2(),
            SimdPath::Avx512 => cpu_has_avx512(),
        }
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(code: u8) -> Option<SimdPath> {
        SimdPath::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

impl fmt::Display for SimdPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The reason a path name could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    /// The name is not one of `portable`, `avx2`, `avx512`.
    Unknown(String),
    /// The name is known but this CPU lacks the instructions it needs.
    Unsupported(SimdPath),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Unknown(name) => write!(
                f,
                "unknown SIMD path {name:?}: expected one of 'portable', 'avx2', 'avx512'"
            ),
            PathError::Unsupported(path) => write!(
                f,
                "this CPU cannot run the {path} path; supported paths: {}",
                supported_paths().iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

impl std::error::Error for PathError {}

impl FromStr for SimdPath {
    type Err = PathError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let wanted = name.trim().to_ascii_lowercase();
        SimdPath::ALL
            .into_iter()
            .find(|path| path.name() == wanted)
            .ok_or_else(|| PathError::Unknown(name.to_string()))
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("popcnt")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx2() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx512() -> bool {
    cpu_has_avx2()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx512() -> bool {
    false
}

/// The paths this CPU supports, slowest first.
pub fn supported_paths() -> Vec<SimdPath> {
    SimdPath::ALL.into_iter().filter(|p| p.is_supported()).collect()
}

/// The fastest path this CPU supports.
pub fn best_path() -> SimdPath {
    *supported_paths().last().unwrap_or(&SimdPath::Portable)
}

/// 0 means "not forced": use [`best_path`].
static FORCED: AtomicU8 = AtomicU8::new(0);

/// Pins every later kernel call to `path`, or returns to automatic choice with `None`.
///
/// Fails, changing nothing, when the CPU cannot run `path`.
pub fn force_path(path: Option<SimdPath>) -> Result<(), PathError> {
    match path {
        Some(p) if !p.is_supported() => Err(PathError::Unsupported(p)),
        Some(p) => {
            FORCED.store(p.code(), Ordering::Relaxed);
            Ok(())
        }
        None => {
            FORCED.store(0, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// The path the next kernel call will take.
pub fn active_path() -> SimdPath {
    SimdPath::from_code(FORCED.load(Ordering::Relaxed)).unwrap_or_else(best_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for path in SimdPath::ALL {
            assert_eq!(path.name().parse::<SimdPath>(), Ok(path));
        }
        assert_eq!(" AVX512 ".parse::<SimdPath>(), Ok(SimdPath::Avx512));
        assert!(matches!("sse".parse::<SimdPath>(), Err(PathError::Unknown(_))));
    }

    #[test]
    fn portable_is_always_supported_and_best_is_supported() {
        assert!(SimdPath::Portable.is_supported());
        assert!(best_path().is_supported());
        assert_eq!(supported_paths()[0], SimdPath::Portable);
    }
}
