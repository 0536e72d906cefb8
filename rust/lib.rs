//! pybinscale's core: exact bitwise kernels for 1-bit neural networks.
//!
//! Plain Rust with no Python types. The modules follow the data:
//! [`bits`] packs real matrices into sign bits, [`matmul`] multiplies packed matrices
//! with XNOR/AND-popcount (and b-bit activations bit-serially), [`gram`] builds
//! empirical NTK Gram matrices from activation patterns, [`ntk`] evaluates the closed-form
//! infinite-width kernels, [`network`] runs the forward and backward passes of the
//! two-layer ReLU network, [`simd`] picks the instruction set at run time and [`parallel`]
//! owns the thread pool. The `python` feature adds the thin PyO3 layer.

pub mod bits;
pub mod dense;
pub mod error;
pub mod gram;
pub mod matmul;
pub mod network;
pub mod ntk;
pub mod parallel;
pub mod quantize;
pub mod simd;

pub use error::Error;

#[cfg(feature = "python")]
mod python;

#[cfg(test)]
mod test_support;
