//! Shared pieces of the fuzz targets: turning the fuzzer's bytes into shapes and values,
//! and the scalar references every SIMD path is compared with.
//!
//! The references are written from the documented rules (bit `(i, j)` of packed signs is
//! `A[i][j] >= 0`, a sign product is `sum_k sign(a_k) sign(b_k)`, ...) one entry at a
//! time with no vectors, no tiles and no threads, so that they share no code with the
//! kernels they check.

use pybinscale::bits::{last_word_mask, stride_for, words_for, Real};
use pybinscale::simd::{force_path, supported_paths, SimdPath};

/// Reads the fuzzer's bytes as numbers; past the end it starts again from the beginning
/// (or gives zeros for empty input), so any input describes a whole case.
pub struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, at: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        if self.data.is_empty() {
            return 0;
        }
        let value = self.data[self.at % self.data.len()];
        self.at += 1;
        value
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    /// A number in `0..bound` (`bound >= 1`).
    pub fn below(&mut self, bound: usize) -> usize {
        self.u16() as usize % bound
    }

    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A row of packed bits: `words_for(cols)` words of raw bytes, the padding bits of
    /// the last word and the padding words cleared, `stride_for(cols)` words in all.
    pub fn bit_row(&mut self, cols: usize, out: &mut Vec<u64>) {
        let used = words_for(cols);
        let start = out.len();
        out.extend((0..used).map(|_| self.sparse_word()));
        if used > 0 {
            out[start + used - 1] &= last_word_mask(cols);
        }
        out.resize(start + stride_for(cols), 0);
    }

    /// A word of bits: raw, or all zeros / all ones (runs of equal bits are where
    /// popcount carries and byte-counter overflows would show).
    fn sparse_word(&mut self) -> u64 {
        match self.byte() % 8 {
            0 => 0,
            1 => u64::MAX,
            _ => self.u64(),
        }
    }
}

/// Scalar types the targets generate.
pub trait Sample: Real + std::fmt::Debug {
    fn from_f64(value: f64) -> Self;
    fn from_raw(bytes: &mut Bytes<'_>) -> Self;
    fn bits(self) -> u64;
}

impl Sample for f32 {
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn from_raw(bytes: &mut Bytes<'_>) -> Self {
        f32::from_bits(bytes.u32())
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Sample for f64 {
    fn from_f64(value: f64) -> Self {
        value
    }
    fn from_raw(bytes: &mut Bytes<'_>) -> Self {
        f64::from_bits(bytes.u64())
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// One value: mostly small numbers of both signs, with zeros of both signs, subnormals,
/// huge magnitudes, raw bit patterns and (rarely) NaN and infinities mixed in.
pub fn value<T: Sample>(bytes: &mut Bytes<'_>, allow_non_finite: bool) -> T {
    let kind = bytes.byte();
    let v = match kind {
        0 if allow_non_finite => f64::NAN,
        1 if allow_non_finite => f64::INFINITY,
        2 if allow_non_finite => f64::NEG_INFINITY,
        3..=9 => 0.0,
        10..=14 => -0.0,
        15..=19 => {
            f64::from_bits(u64::from(bytes.u16()) + 1) * if kind % 2 == 0 { 1.0 } else { -1.0 }
        } // f64 subnormal
        20..=24 => f64::from(f32::from_bits(u32::from(bytes.u16()) + 1)), // f32 subnormal
        25..=29 => (f64::from(bytes.u16()) + 1.0) * 1e300 * if kind % 2 == 0 { 1.0 } else { -1.0 },
        30..=34 => (f64::from(bytes.u16()) + 1.0) * 1e-310,
        35..=49 => {
            let raw = T::from_raw(bytes);
            if allow_non_finite || raw.is_finite() {
                return raw;
            }
            1.5
        }
        _ => f64::from(bytes.u16() as i16) / 256.0,
    };
    let v = T::from_f64(v); // huge f64 values become infinite f32 ones
    if allow_non_finite || v.is_finite() {
        v
    } else {
        T::from_f64(-2.5)
    }
}

/// `rows` x `cols` values in a buffer whose rows are `row_stride` apart (the gaps filled
/// with values too, which the kernels must not read).
pub fn matrix<T: Sample>(
    bytes: &mut Bytes<'_>,
    rows: usize,
    cols: usize,
    row_stride: usize,
    allow_non_finite: bool,
) -> Vec<T> {
    let len = if rows == 0 || cols == 0 { 0 } else { (rows - 1) * row_stride + cols };
    let mut data: Vec<T> = (0..len).map(|_| value(bytes, allow_non_finite)).collect();
    // Rows that repeat an earlier one (duplicated inputs) are common in real data.
    for i in 1..rows {
        if cols > 0 && bytes.byte() % 8 == 0 {
            data.copy_within((i - 1) * row_stride..(i - 1) * row_stride + cols, i * row_stride);
        }
    }
    data
}

/// The first non-finite entry in row-major order.
pub fn first_non_finite<T: Real>(
    data: &[T],
    rows: usize,
    cols: usize,
    stride: usize,
) -> Option<(usize, usize)> {
    (0..rows).find_map(|i| (0..cols).find(|&j| !data[i * stride + j].is_finite()).map(|j| (i, j)))
}

/// Bit `j` of a packed row.
pub fn bit(row: &[u64], j: usize) -> bool {
    row[j / 64] >> (j % 64) & 1 == 1
}

/// Runs `check` once on every SIMD path this CPU supports, pinning the path first, and
/// returns to automatic choice afterwards.
pub fn on_every_path(mut check: impl FnMut(SimdPath)) {
    for path in supported_paths() {
        force_path(Some(path)).expect("a supported path can be forced");
        check(path);
    }
    force_path(None).expect("automatic choice");
}

/// The sequential fused multiply-add of the documented order: `acc = fma(a_k, b_k, acc)`
/// for `k = 0, 1, ...` from `+0.0`, in f64.
pub fn fma_dot(a: impl Iterator<Item = f64>, b: impl Iterator<Item = f64>) -> f64 {
    a.zip(b).fold(0.0f64, |acc, (x, y)| x.mul_add(y, acc))
}

/// BitNet's absmax quantisation of one row as documented in `pybinscale.kernels`:
/// `clip(round_ties_even(x * (Q / gamma)), -Q, Q - 1)` with `gamma = max |x|`, the
/// factor and the product in f64 as if its exponent had no range limit (a row whose
/// `gamma` is below `Q / f64::MAX` must give the integers of the same row scaled by a
/// power of two); one bit gives signs; a zero row gives zeros (or +1s) and scale 0.
pub fn quantize_row_reference<T: Real>(row: &[T], bits: usize) -> (Vec<i8>, f64) {
    let gamma = row.iter().fold(0.0f64, |m, x| m.max(x.to_f64().abs()));
    if bits == 1 {
        return (row.iter().map(|&x| if x >= T::ZERO { 1 } else { -1 }).collect(), gamma);
    }
    let levels = f64::from(1u32 << (bits - 1));
    if gamma == 0.0 {
        return (vec![0; row.len()], 0.0);
    }
    // Scaling by 2^600 is exact for these tiny values and keeps every step normal.
    let shift = if (levels / gamma).is_finite() { 1.0 } else { 2f64.powi(600) };
    let factor = levels / (gamma * shift);
    let values = row
        .iter()
        .map(|&x| {
            let r = (x.to_f64() * shift * factor).round_ties_even();
            r.clamp(-levels, levels - 1.0) as i8
        })
        .collect();
    (values, gamma / levels)
}
