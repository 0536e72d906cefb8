//! BitNet's absmax quantisation of activations to b-bit integers, as bit planes.
//!
//! For a row `x` with `gamma = max |x_k|` and `Q_b = 2^(b-1)`, the integers are
//! `round(x_k * (Q_b / gamma))` (the factor `Q_b / gamma` and the product computed in f64,
//! rounded to nearest with ties to even, as BitNet multiplies by `Q_b / gamma`) clipped to
//! `[-Q_b, Q_b - 1]`, the range of a b-bit two's complement integer: BitNet's clip to
//! `±(Q_b - eps)` once the value is stored in b bits. One bit is the binary case:
//! `sign(x_k)` in {-1, +1} (sign(0) = +1). The row's product is rescaled by `gamma / Q_b`.
//! A zero row quantises to zeros (or +1s for one bit) with scale 0.
//!
//! Every step is an IEEE operation with one correct result (a multiply, a round, a
//! compare), so the vectorised paths give the same integers as the portable one.

use rayon::prelude::*;

use crate::bits::{BitMatrix, Matrix, PackedBits, Real, WORD_BITS};
use crate::error::{checked_len, try_zeroed, Error, Zeroable};
use crate::matmul::{bit_serial_product, PlaneEncoding};
use crate::parallel;
use crate::simd::{active_path, SimdPath};

/// The widest activations supported (one i8 per entry).
pub const MAX_BITS: usize = 8;

/// Activations quantised row by row: integers and the scale that restores each row.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    /// `rows * cols` integers, row-major.
    pub values: Vec<i8>,
    /// `gamma / Q_b` for each row.
    pub scales: Vec<f64>,
}

fn check_bits(bits: usize) -> Result<(), Error> {
    if (1..=MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(Error::OutOfRange(format!(
            "activation bits must be between 1 and {MAX_BITS}, got {bits}"
        )))
    }
}

/// Scalar types the quantiser reads, with an AVX-512 kernel for the rounding step.
pub trait Quantizable: Real {
    /// Writes `clip(round_ties_even(x * factor), low, high)` for the longest prefix of
    /// `row` that is a multiple of 8 and returns its length; the caller finishes the rest
    /// with the same scalar rule, which this kernel reproduces exactly.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, VL and DQ; `out` is at least as long as `row`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn round_lanes_avx512(
        row: &[Self],
        factor: f64,
        low: f64,
        high: f64,
        out: &mut [i8],
    ) -> usize;
}

macro_rules! quantizable {
    ($t:ty, $kernel:ident) => {
        impl Quantizable for $t {
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            unsafe fn round_lanes_avx512(
                row: &[$t],
                factor: f64,
                low: f64,
                high: f64,
                out: &mut [i8],
            ) -> usize {
                x86::$kernel(row, factor, low, high, out)
            }
        }
    };
}

quantizable!(f32, round_f32_avx512);
quantizable!(f64, round_f64_avx512);

/// A rounding kernel for a prefix of a row: returns how many entries it wrote.
type RoundLanes<T> = fn(&[T], f64, f64, f64, &mut [i8]) -> usize;

fn no_lanes<T>(_: &[T], _: f64, _: f64, _: f64, _: &mut [i8]) -> usize {
    0
}

/// 2^600: scales rows too small for the absmax factor into the normal range.
const TINY_ROW_SHIFT: f64 = f64::from_bits((1023 + 600) << 52);

/// Quantises one row into `out`; returns the row's scale, or the first non-finite column.
///
/// Written so that the compiler vectorises the magnitude scan under the target features
/// of the caller; `round_lanes` does the rounding step with explicit vectors where the
/// compiler would not.
#[inline(always)]
fn quantize_row_generic<T: Real>(
    row: &[T],
    bits: usize,
    out: &mut [i8],
    round_lanes: impl Fn(&[T], f64, f64, f64, &mut [i8]) -> usize,
) -> Result<f64, usize> {
    let largest = row.iter().fold(0u64, |acc, x| acc.max(x.abs_bits()));
    if largest >= T::INFINITY_BITS {
        return Err(row.iter().position(|x| !x.is_finite()).unwrap_or(0));
    }
    let gamma = T::from_abs_bits(largest);
    if bits == 1 {
        for (value, &x) in out.iter_mut().zip(row) {
            *value = if x >= T::ZERO { 1 } else { -1 };
        }
        return Ok(gamma);
    }
    let levels = (1u32 << (bits - 1)) as f64;
    if gamma == 0.0 {
        out.fill(0);
        return Ok(0.0);
    }
    let factor = levels / gamma;
    let (low, high) = (-levels, levels - 1.0);
    // Below gamma = levels / f64::MAX (about 1e-306) the factor overflows to infinity,
    // which would clip every entry and turn zeros into NaN. Such rows are scaled by
    // 2^600 first, exactly (they are tiny), which gives the integers the factor would
    // give if f64 had no exponent limit; other rows multiply by 1, which changes no bit.
    let (shift, factor) = if factor.is_finite() {
        (1.0, factor)
    } else {
        (TINY_ROW_SHIFT, levels / (gamma * TINY_ROW_SHIFT))
    };
    let done = if shift == 1.0 { round_lanes(row, factor, low, high, out) } else { 0 };
    for (value, &x) in out.iter_mut().zip(row).skip(done) {
        let rounded = (x.to_f64() * shift * factor).round_ties_even();
        let clipped = if rounded < low {
            low
        } else if rounded > high {
            high
        } else {
            rounded
        };
        *value = clipped as i8;
    }
    Ok(gamma / levels)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
fn quantize_row_avx512<T: Quantizable>(
    row: &[T],
    bits: usize,
    out: &mut [i8],
) -> Result<f64, usize> {
    // SAFETY: this function only runs with AVX-512 F/VL/DQ enabled, and `out` has the
    // row's length (checked by the callers).
    quantize_row_generic(row, bits, out, |r, f, lo, hi, o| unsafe {
        T::round_lanes_avx512(r, f, lo, hi, o)
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn quantize_row_avx2<T: Real>(row: &[T], bits: usize, out: &mut [i8]) -> Result<f64, usize> {
    quantize_row_generic(row, bits, out, no_lanes::<T> as RoundLanes<T>)
}

fn quantize_row<T: Quantizable>(
    path: SimdPath,
    row: &[T],
    bits: usize,
    out: &mut [i8],
) -> Result<f64, usize> {
    debug_assert_eq!(row.len(), out.len());
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active_path` returns only paths whose features the CPU has.
        SimdPath::Avx512 => unsafe { quantize_row_avx512(row, bits, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        SimdPath::Avx2 => unsafe { quantize_row_avx2(row, bits, out) },
        _ => quantize_row_generic(row, bits, out, no_lanes::<T> as RoundLanes<T>),
    }
}

/// Quantises every row of `x` to `bits`-bit integers (see the module documentation).
pub fn quantize<T: Quantizable>(x: Matrix<'_, T>, bits: usize) -> Result<Quantized, Error> {
    check_bits(bits)?;
    let cols = x.cols();
    let mut values = try_zeroed::<i8>(checked_len(x.rows(), cols, 1)?)?;
    let mut scales = try_zeroed::<f64>(x.rows())?;
    let path = active_path();
    let outcome: Result<(), ()> = parallel::install(|| {
        values.par_chunks_mut(cols.max(1)).zip(scales.par_iter_mut()).enumerate().try_for_each(
            |(i, (out, scale))| {
                *scale = quantize_row(path, x.row(i), bits, &mut out[..cols]).map_err(|_| ())?;
                Ok(())
            },
        )
    });
    if outcome.is_err() {
        // Parallel rows report in any order; the serial scan names the first bad entry.
        x.check_finite()?;
    }
    Ok(Quantized { values, scales })
}

/// How integers of `bits` bits are written as planes: `value = offset + sum_p weights[p] * bit_p`.
pub fn plane_weights(bits: usize) -> (Vec<i64>, i64) {
    if bits == 1 {
        // ±1 = 2 * [x >= 0] - 1
        return (vec![2], -1);
    }
    let weights = (0..bits).map(|p| if p + 1 == bits { -(1i64 << p) } else { 1i64 << p }).collect();
    (weights, 0)
}

/// The bit that plane `plane` stores for `value`: bit `plane` of its two's complement
/// byte, or for one-bit activations (values ±1) whether the value is +1.
fn plane_bit(value: i8, bits: usize, plane: usize) -> bool {
    if bits == 1 {
        value > 0
    } else {
        (value as u8 >> plane) & 1 == 1
    }
}

/// Writes the `bits` planes of one row of integers into `out` (`bits` rows of `stride` words).
fn write_planes(path: SimdPath, values: &[i8], bits: usize, stride: usize, out: &mut [u64]) {
    let full = values.len() / WORD_BITS;
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active_path` returns only supported paths; `full` whole words of 64
        // values lie inside `values` and each plane row of `out` has at least `full` words.
        SimdPath::Avx512 => unsafe { x86::planes_avx512(values, full, bits, stride, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        SimdPath::Avx2 => unsafe { x86::planes_avx2(values, full, bits, stride, out) },
        _ => planes_portable(values, full, bits, stride, out),
    }
    // The last partial word, bit by bit, on every path.
    let tail = &values[full * WORD_BITS..];
    if !tail.is_empty() {
        for plane in 0..bits {
            out[plane * stride + full] = tail
                .iter()
                .enumerate()
                .fold(0u64, |word, (bit, &v)| word | u64::from(plane_bit(v, bits, plane)) << bit);
        }
    }
}

/// Eight plane bits from eight values at once: byte `k` of `bytes` holds value `k`.
/// Multiplying the isolated bits by 0x0102..80 gathers them into the top byte, in order.
fn gather_bits(bytes: u64, shift: usize) -> u64 {
    ((bytes >> shift) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

fn planes_portable(values: &[i8], full: usize, bits: usize, stride: usize, out: &mut [u64]) {
    for word_index in 0..full {
        let chunk = &values[word_index * WORD_BITS..(word_index + 1) * WORD_BITS];
        let groups: [u64; 8] = std::array::from_fn(|g| {
            u64::from_le_bytes(std::array::from_fn(|k| chunk[8 * g + k] as u8))
        });
        for plane in 0..bits {
            let mut word = 0u64;
            for (g, &bytes) in groups.iter().enumerate() {
                let gathered = if bits == 1 {
                    // +1 has its sign bit clear: gather sign bits and invert them.
                    !gather_bits(bytes, 7) & 0xff
                } else {
                    gather_bits(bytes, plane)
                };
                word |= gathered << (8 * g);
            }
            out[plane * stride + word_index] = word;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::WORD_BITS;

    /// The rounding step for 8 lanes at a time: `vroundscalepd` to nearest-even and
    /// `vmaxpd`/`vminpd` give exactly the scalar results (no NaN reaches here), and the
    /// clipped values are whole numbers in i8 range, so the conversions are exact.
    macro_rules! round_kernel {
        ($name:ident, $t:ty, $load:expr) => {
            /// # Safety
            /// The CPU must support AVX-512 F, VL and DQ; `out` is at least as long as `row`.
            #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
            pub unsafe fn $name(
                row: &[$t],
                factor: f64,
                low: f64,
                high: f64,
                out: &mut [i8],
            ) -> usize {
                let lanes = row.len() / 8 * 8;
                let (factor, low, high) =
                    (_mm512_set1_pd(factor), _mm512_set1_pd(low), _mm512_set1_pd(high));
                for start in (0..lanes).step_by(8) {
                    // SAFETY: start + 8 <= lanes <= row.len() <= out.len().
                    let x: __m512d = $load(row.as_ptr().add(start));
                    let scaled = _mm512_mul_pd(x, factor);
                    let rounded = _mm512_roundscale_pd::<
                        { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
                    >(scaled);
                    let clipped = _mm512_min_pd(_mm512_max_pd(rounded, low), high);
                    let bytes = _mm256_cvtepi32_epi8(_mm512_cvtpd_epi32(clipped));
                    _mm_storel_epi64(out.as_mut_ptr().add(start).cast(), bytes);
                }
                lanes
            }
        };
    }

    round_kernel!(round_f64_avx512, f64, |p: *const f64| _mm512_loadu_pd(p));
    round_kernel!(round_f32_avx512, f32, |p: *const f32| _mm512_cvtps_pd(_mm256_loadu_ps(p)));

    /// # Safety
    /// The CPU must support AVX-512 BW; `values` holds `full * 64` values and every
    /// plane row of `out` (`stride` words apart) has at least `full` words.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn planes_avx512(
        values: &[i8],
        full: usize,
        bits: usize,
        stride: usize,
        out: &mut [u64],
    ) {
        for word_index in 0..full {
            // SAFETY: 64 values from word_index * 64 lie inside `values`.
            let v = _mm512_loadu_si512(values.as_ptr().add(word_index * WORD_BITS).cast());
            if bits == 1 {
                out[word_index] = !_mm512_movepi8_mask(v);
                continue;
            }
            for plane in 0..bits {
                let bit = _mm512_set1_epi8(1i8 << plane);
                out[plane * stride + word_index] = _mm512_test_epi8_mask(v, bit);
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX2; extents as for [`planes_avx512`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn planes_avx2(
        values: &[i8],
        full: usize,
        bits: usize,
        stride: usize,
        out: &mut [u64],
    ) {
        for word_index in 0..full {
            let base = values.as_ptr().add(word_index * WORD_BITS);
            // SAFETY: 64 values from `base` lie inside `values`.
            let halves = [_mm256_loadu_si256(base.cast()), _mm256_loadu_si256(base.add(32).cast())];
            let mask_of = |v: __m256i| u64::from(_mm256_movemask_epi8(v) as u32);
            if bits == 1 {
                out[word_index] = !(mask_of(halves[0]) | mask_of(halves[1]) << 32);
                continue;
            }
            for plane in 0..bits {
                let bit = _mm256_set1_epi8(1i8 << plane);
                let set = |v: __m256i| mask_of(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit));
                out[plane * stride + word_index] = set(halves[0]) | set(halves[1]) << 32;
            }
        }
    }
}

/// Quantises `x` straight into bit planes (no matrix of integers is kept) and returns the
/// planes with the row scales.
fn quantize_to_planes<T: Quantizable>(
    x: Matrix<'_, T>,
    bits: usize,
) -> Result<(PackedBits, Vec<f64>), Error> {
    let (rows, cols) = (x.rows(), x.cols());
    let mut packed = PackedBits::zeros(checked_len(rows, bits, 1)?, cols)?;
    let mut scales = try_zeroed::<f64>(rows)?;
    let stride = packed.stride();
    if cols == 0 || rows == 0 {
        return Ok((packed, scales));
    }
    let path = active_path();
    let words = packed.words_mut();
    let outcome: Result<(), ()> = parallel::install(|| {
        words
            .par_chunks_mut(bits * stride)
            .zip(scales.par_iter_mut())
            .enumerate()
            .try_for_each_init(
                || vec![0i8; cols],
                |values, (i, (out, scale))| {
                    *scale = quantize_row(path, x.row(i), bits, values).map_err(|_| ())?;
                    write_planes(path, values, bits, stride, out);
                    Ok(())
                },
            )
    });
    if outcome.is_err() {
        // Parallel rows report in any order; the serial scan names the first bad entry.
        x.check_finite()?;
    }
    Ok((packed, scales))
}

/// `quantize(x) @ sign(W).T`, rescaled per row: the product of b-bit activations with
/// 1-bit weights, exact in integers, by bit-serial AND-popcount over the planes.
pub fn quantized_product<T>(
    x: Matrix<'_, T>,
    w: BitMatrix<'_>,
    bits: usize,
    convert: impl Fn(f64) -> T + Sync,
) -> Result<Vec<T>, Error>
where
    T: Quantizable + Zeroable,
{
    check_bits(bits)?;
    if x.cols() != w.cols() {
        return Err(Error::DimensionMismatch {
            what: "columns of the activations and the weights",
            left: x.cols(),
            right: w.cols(),
        });
    }
    let (packed, scales) = quantize_to_planes(x, bits)?;
    let (weights, offset) = plane_weights(bits);
    let encoding = PlaneEncoding { planes: packed.view(), weights: &weights, offset };
    bit_serial_product(&encoding, w, &scales, convert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::pack_signs;
    use crate::simd::{force_path, supported_paths};
    use crate::test_support::{random_matrix, SplitMix, PATH_LOCK};

    /// Planes of already quantised rows, written row by row: the reference that the fused
    /// `quantize_to_planes` must reproduce. Row `i * bits + p` is plane `p` of row `i`.
    fn planes(
        quantized: &Quantized,
        rows: usize,
        cols: usize,
        bits: usize,
    ) -> Result<PackedBits, Error> {
        check_bits(bits)?;
        let mut packed = PackedBits::zeros(checked_len(rows, bits, 1)?, cols)?;
        let stride = packed.stride();
        if cols == 0 || rows == 0 {
            return Ok(packed);
        }
        let path = active_path();
        let words = packed.words_mut();
        parallel::install(|| {
            words
                .par_chunks_mut(bits * stride)
                .zip(quantized.values.par_chunks(cols))
                .for_each(|(out, values)| write_planes(path, values, bits, stride, out))
        });
        Ok(packed)
    }

    #[test]
    fn quantisation_follows_the_absmax_rule() {
        let x = [0.5f64, -1.0, 0.25, 0.0, 1.0 / 256.0, -0.75];
        let q = quantize(Matrix::contiguous(&x, 1, 6).unwrap(), 8).unwrap();
        // gamma = 1, Q = 128: 64, -128, 32, 0, round(0.5) = 0 (ties to even), -96
        assert_eq!(q.values, vec![64, -128, 32, 0, 0, -96]);
        assert_eq!(q.scales, vec![1.0 / 128.0]);
        let q = quantize(Matrix::contiguous(&[2.0f32, -2.0, 1.0], 1, 3).unwrap(), 2).unwrap();
        // gamma = 2, Q = 2: 2 clips to 1, -2, 1
        assert_eq!(q.values, vec![1, -2, 1]);
        let q = quantize(Matrix::contiguous(&[0.3f64, -0.1, 0.0], 1, 3).unwrap(), 1).unwrap();
        assert_eq!((q.values, q.scales), (vec![1, -1, 1], vec![0.3]));
        let q = quantize(Matrix::contiguous(&[0.0f64; 4], 2, 2).unwrap(), 4).unwrap();
        assert_eq!((q.values, q.scales), (vec![0; 4], vec![0.0, 0.0]));
    }

    #[test]
    fn quantized_product_equals_the_integer_product_on_every_path() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let (n, k, m) = (13, 200, 27);
        let x = random_matrix(n, k, 21);
        let w = random_matrix(m, k, 22);
        let xm = Matrix::contiguous(&x, n, k).unwrap();
        let pw = pack_signs(Matrix::contiguous(&w, m, k).unwrap()).unwrap();
        for bits in 1..=MAX_BITS {
            let q = quantize(xm, bits).unwrap();
            let expected: Vec<f64> = (0..n * m)
                .map(|ij| {
                    let (i, j) = (ij / m, ij % m);
                    let dot: i64 = (0..k)
                        .map(|t| {
                            i64::from(q.values[i * k + t])
                                * if w[j * k + t] >= 0.0 { 1 } else { -1 }
                        })
                        .sum();
                    dot as f64 * q.scales[i]
                })
                .collect();
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                let got = quantized_product(xm, pw.view(), bits, |v| v).unwrap();
                assert_eq!(got, expected, "{bits} bits on {path}");
            }
            force_path(None).unwrap();
        }
    }

    #[test]
    fn planes_hold_the_bits_of_the_integers_on_every_path() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let (n, k) = (5, 200);
        let x = random_matrix(n, k, 23);
        let xm = Matrix::contiguous(&x, n, k).unwrap();
        for bits in 1..=MAX_BITS {
            let mut results = Vec::new();
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                let q = quantize(xm, bits).unwrap();
                let packed = planes(&q, n, k, bits).unwrap();
                for i in 0..n {
                    for p in 0..bits {
                        for t in 0..k {
                            let v = q.values[i * k + t];
                            assert_eq!(packed.view().get(i * bits + p, t), plane_bit(v, bits, p));
                        }
                    }
                }
                let (fused, scales) = quantize_to_planes(xm, bits).unwrap();
                assert_eq!((&fused, &scales), (&packed, &q.scales));
                results.push((q, packed));
            }
            force_path(None).unwrap();
            assert!(results.windows(2).all(|w| w[0] == w[1]), "{bits} bits");
        }
    }

    /// The absmax rule entry by entry, as documented, with no vectors.
    fn scalar_quantize(row: &[f64], bits: usize) -> (Vec<i8>, f64) {
        let gamma = row.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if bits == 1 {
            return (row.iter().map(|&x| if x >= 0.0 { 1 } else { -1 }).collect(), gamma);
        }
        let levels = f64::from(1u32 << (bits - 1));
        if gamma == 0.0 {
            return (vec![0; row.len()], 0.0);
        }
        let factor = levels / gamma;
        let values =
            row.iter().map(|&x| (x * factor).round_ties_even().clamp(-levels, levels - 1.0) as i8);
        (values.collect(), gamma / levels)
    }

    #[test]
    fn quantize_matches_a_scalar_reference_on_every_path() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut rng = SplitMix::new(5);
        // Rows of lengths around the 8- and 64-lane boundaries, with ties (x * factor
        // exactly k + 0.5), zeros of both signs, repeated maxima and an all-zero row.
        for cols in [1usize, 7, 8, 9, 63, 64, 65, 200] {
            let rows = 6;
            let mut x = random_matrix(rows, cols, 40 + cols as u64);
            for (i, v) in x.iter_mut().enumerate() {
                match rng.next_u64() % 8 {
                    0 => *v = 0.0,
                    1 => *v = -0.0,
                    2 => *v = (((rng.next_u64() % 64) as f64) + 0.5) / 64.0, // ties at 7 bits
                    3 => *v = if i % 2 == 0 { 1.0 } else { -1.0 },
                    _ => {}
                }
            }
            x[cols..2 * cols].fill(0.0);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            for bits in 1..=MAX_BITS {
                let expected: Vec<(Vec<i8>, f64)> =
                    x.chunks(cols).map(|row| scalar_quantize(row, bits)).collect();
                let expected32: Vec<(Vec<i8>, f64)> = x32
                    .chunks(cols)
                    .map(|row| {
                        scalar_quantize(
                            &row.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
                            bits,
                        )
                    })
                    .collect();
                for path in supported_paths() {
                    force_path(Some(path)).unwrap();
                    let got = quantize(Matrix::contiguous(&x, rows, cols).unwrap(), bits).unwrap();
                    let got32 =
                        quantize(Matrix::contiguous(&x32, rows, cols).unwrap(), bits).unwrap();
                    for (i, ((values, scale), (values32, scale32))) in
                        expected.iter().zip(&expected32).enumerate()
                    {
                        let row = i * cols..(i + 1) * cols;
                        assert_eq!(&got.values[row.clone()], &values[..], "{bits} bits, {path}");
                        assert_eq!(got.scales[i].to_bits(), scale.to_bits(), "{bits} bits, {path}");
                        assert_eq!(&got32.values[row], &values32[..], "f32, {bits} bits, {path}");
                        assert_eq!(got32.scales[i].to_bits(), scale32.to_bits(), "f32, {path}");
                    }
                }
                force_path(None).unwrap();
            }
        }
    }

    #[test]
    fn rows_too_small_for_the_factor_quantise_like_their_scaled_copy() {
        // gamma below 128 / f64::MAX overflowed the factor: zeros came out as NaN casts
        // (-128 on the AVX-512 path, 0 elsewhere) and every other entry clipped.
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let row = [0.0, 2e-308, -1e-308, 5e-324, 0.5e-308, -2e-308, 0.0, 1.5e-308, 3e-309, 0.0];
        let scaled: Vec<f64> = row.iter().map(|x| x * 2f64.powi(1000)).collect();
        for path in supported_paths() {
            force_path(Some(path)).unwrap();
            for bits in 2..=MAX_BITS {
                let tiny = quantize(Matrix::contiguous(&row, 1, row.len()).unwrap(), bits).unwrap();
                let normal =
                    quantize(Matrix::contiguous(&scaled, 1, row.len()).unwrap(), bits).unwrap();
                assert_eq!(tiny.values, normal.values, "{bits} bits on {path}");
                assert_eq!(tiny.scales[0], 2e-308 / f64::from(1u32 << (bits - 1)));
            }
        }
        force_path(None).unwrap();
    }

    #[test]
    fn bad_arguments_are_errors() {
        let x = [1.0f64, f64::NAN, 2.0, 3.0];
        let m = Matrix::contiguous(&x, 2, 2).unwrap();
        assert_eq!(quantize(m, 8).unwrap_err(), Error::NonFinite { row: 0, col: 1 });
        assert!(matches!(quantize(m, 0), Err(Error::OutOfRange(_))));
        assert!(matches!(quantize(m, 9), Err(Error::OutOfRange(_))));
    }
}
