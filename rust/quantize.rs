//! BitNet's absmax quantisation of activations to b-bit integers, as bit planes.
//!
//! For a row `x` with `gamma = max |x_k|` and `Q_b = 2^(b-1)`, the integers are
//! `round(x_k * Q_b / gamma)` (to nearest, ties to even, computed in f64 as
//! `(x_k * Q_b) / gamma`) clipped to `[-Q_b, Q_b - 1]`, the range of a b-bit two's
//! complement integer: BitNet's clip to `±(Q_b - eps)` once the value is stored in b bits.
//! One bit is the binary case: `sign(x_k)` in {-1, +1} (sign(0) = +1). The row's product is
//! rescaled by `gamma / Q_b`. A zero row quantises to zeros (or +1s for one bit) with scale 0.

use rayon::prelude::*;

use crate::bits::{BitMatrix, Matrix, PackedBits, Real, WORD_BITS};
use crate::error::{checked_len, try_zeroed, Error, Zeroable};
use crate::matmul::{bit_serial_product, PlaneEncoding};
use crate::parallel;

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

/// Quantises one row into `out`; returns the row's scale, or the first non-finite column.
fn quantize_row<T: Real>(row: &[T], bits: usize, out: &mut [i8]) -> Result<f64, usize> {
    let mut gamma = 0.0f64;
    for (col, &x) in row.iter().enumerate() {
        if !x.is_finite() {
            return Err(col);
        }
        gamma = gamma.max(x.to_f64().abs());
    }
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
    for (value, &x) in out.iter_mut().zip(row) {
        let scaled = (x.to_f64() * levels / gamma).round_ties_even();
        *value = scaled.clamp(-levels, levels - 1.0) as i8;
    }
    Ok(gamma / levels)
}

/// Quantises every row of `x` to `bits`-bit integers (see the module documentation).
pub fn quantize<T: Real>(x: Matrix<'_, T>, bits: usize) -> Result<Quantized, Error> {
    check_bits(bits)?;
    let cols = x.cols();
    let mut values = try_zeroed::<i8>(checked_len(x.rows(), cols, 1)?)?;
    let mut scales = try_zeroed::<f64>(x.rows())?;
    let outcome: Result<(), (usize, usize)> = parallel::install(|| {
        values.par_chunks_mut(cols.max(1)).zip(scales.par_iter_mut()).enumerate().try_for_each(
            |(i, (out, scale))| {
                *scale = quantize_row(x.row(i), bits, &mut out[..cols]).map_err(|col| (i, col))?;
                Ok(())
            },
        )
    });
    if outcome.is_err() {
        let (row, col) = x.first_non_finite().expect("a row reported a non-finite value");
        return Err(Error::NonFinite { row, col });
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

/// Writes the `bits` planes of one row of integers into `out` (`bits` rows of `stride` words).
fn write_planes(values: &[i8], bits: usize, stride: usize, out: &mut [u64]) {
    for (word_index, chunk) in values.chunks(WORD_BITS).enumerate() {
        for plane in 0..bits {
            let mut word = 0u64;
            for (bit, &value) in chunk.iter().enumerate() {
                let set = if bits == 1 { value > 0 } else { (value as u8 >> plane) & 1 == 1 };
                word |= u64::from(set) << bit;
            }
            out[plane * stride + word_index] = word;
        }
    }
}

/// The bit planes of quantised activations: row `i * bits + p` is plane `p` of row `i`.
pub fn planes(
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
    let words = packed.words_mut();
    parallel::install(|| {
        words
            .par_chunks_mut(bits * stride)
            .zip(quantized.values.par_chunks(cols))
            .for_each(|(out, values)| write_planes(values, bits, stride, out))
    });
    Ok(packed)
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
    T: Real + Zeroable,
{
    check_bits(bits)?;
    if x.cols() != w.cols() {
        return Err(Error::DimensionMismatch {
            what: "columns of the activations and the weights",
            left: x.cols(),
            right: w.cols(),
        });
    }
    let quantized = quantize(x, bits)?;
    let packed = planes(&quantized, x.rows(), x.cols(), bits)?;
    let (weights, offset) = plane_weights(bits);
    let encoding = PlaneEncoding { planes: packed.view(), weights: &weights, offset };
    bit_serial_product(&encoding, w, &quantized.scales, convert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::pack_signs;
    use crate::simd::{force_path, supported_paths};
    use crate::test_support::{random_matrix, PATH_LOCK};

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
    fn bad_arguments_are_errors() {
        let x = [1.0f64, f64::NAN, 2.0, 3.0];
        let m = Matrix::contiguous(&x, 2, 2).unwrap();
        assert_eq!(quantize(m, 8).unwrap_err(), Error::NonFinite { row: 0, col: 1 });
        assert!(matches!(quantize(m, 0), Err(Error::OutOfRange(_))));
        assert!(matches!(quantize(m, 9), Err(Error::OutOfRange(_))));
    }
}
