//! Activation patterns and the empirical first-layer NTK Gram matrix.
//!
//! For inputs `x_i`, hidden weights `w_r` (r = 1..m) and `q` the 1-bit quantiser (sign)
//! or the identity, the pattern bit (i, r) is `<q(w_r), x_i> >= 0`, and
//!
//! ```text
//! H_ij = kappa^2 / m * <x_i, z_j> * #{ r : <q(w_r), x_i> >= 0 and <q(w_r), z_j> >= 0 }
//! ```
//!
//! The count is `popcount(P_i AND Q_j)` over packed patterns, so the Gram matrix costs one
//! AND-popcount product plus an f64 product of the inputs, both exact in their order of
//! operations on every SIMD path.

use crate::bits::{Matrix, PackedBits, Real};
use crate::dense::{for_each_block, inner_products, Transposed};
use crate::error::Error;
use crate::matmul::{for_each_tile, Combine, Panels};

fn sign_value<T: Real>(v: T) -> f64 {
    if v >= T::ZERO {
        1.0
    } else {
        -1.0
    }
}

/// Packed activation patterns: row `i` has bit `r` set when `<q(w_r), x_i> >= 0`, with
/// `q = sign` when `quantized` and the identity otherwise.
pub fn activation_patterns<T: Real>(
    x: Matrix<'_, T>,
    w: Matrix<'_, T>,
    quantized: bool,
) -> Result<PackedBits, Error> {
    x.check_finite()?;
    w.check_finite()?;
    if x.cols() != w.cols() {
        return Err(Error::DimensionMismatch {
            what: "input features and weight columns",
            left: x.cols(),
            right: w.cols(),
        });
    }
    let weights = if quantized {
        Transposed::new(w, sign_value)?
    } else {
        Transposed::new(w, |v: T| v.to_f64())?
    };
    let mut packed = PackedBits::zeros(x.rows(), w.rows())?;
    let stride = packed.stride();
    for_each_block(x, &weights, false, packed.words_mut(), stride, |chunk, first, block| {
        let word = block.col / 64;
        for r in 0..block.rows {
            chunk[(block.row - first + r) * stride + word] = block.signs[r];
        }
    })?;
    Ok(packed)
}

/// The empirical NTK Gram matrix `H` between the rows of `x` and of `z` (`x` itself when
/// `None`, computed on one triangle and mirrored), `n` x `n_z` row-major.
pub fn ntk_gram<T: Real>(
    x: Matrix<'_, T>,
    w: Matrix<'_, T>,
    z: Option<Matrix<'_, T>>,
    kappa: f64,
    quantized: bool,
) -> Result<Vec<f64>, Error> {
    if w.rows() == 0 {
        return Err(Error::OutOfRange("the NTK needs at least one neuron (row of W)".into()));
    }
    if !kappa.is_finite() {
        return Err(Error::OutOfRange(format!("kappa must be finite, got {kappa}")));
    }
    let x_patterns = activation_patterns(x, w, quantized)?;
    let z_patterns = z.map(|z| activation_patterns(z, w, quantized)).transpose()?;
    let symmetric = z.is_none();
    let mut gram = inner_products(x, z, false)?;
    let scale = kappa * kappa / w.rows() as f64;
    let panels = Panels::new(z_patterns.as_ref().unwrap_or(&x_patterns).view())?;
    for_each_tile(
        Combine::And,
        x_patterns.view(),
        &panels,
        1,
        symmetric,
        &mut gram,
        |tile, i, skip, dest| {
            for (value, &count) in dest.iter_mut().zip(&tile.counts[i][skip..]) {
                *value = scale * *value * count as f64;
            }
        },
    );
    Ok(gram)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{force_path, supported_paths};
    use crate::test_support::{random_matrix, PATH_LOCK};

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).fold(0.0, |acc, (x, y)| x.mul_add(*y, acc))
    }

    #[test]
    fn patterns_and_gram_match_the_definition_on_every_path() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let (n, n_z, d, m) = (23, 9, 6, 150);
        let x = random_matrix(n, d, 31);
        let z = random_matrix(n_z, d, 32);
        let w = random_matrix(m, d, 33);
        let (xm, zm, wm) = (
            Matrix::contiguous(&x, n, d).unwrap(),
            Matrix::contiguous(&z, n_z, d).unwrap(),
            Matrix::contiguous(&w, m, d).unwrap(),
        );
        for quantized in [false, true] {
            let q = |v: f64| if quantized { sign_value(v) } else { v };
            let active = |row: &[f64], r: usize| {
                let wq: Vec<f64> = w[r * d..(r + 1) * d].iter().map(|&v| q(v)).collect();
                dot(row, &wq) >= 0.0
            };
            let expected = |a: &[f64], rows_a: usize, b: &[f64], rows_b: usize| -> Vec<f64> {
                (0..rows_a * rows_b)
                    .map(|ij| {
                        let (i, j) = (ij / rows_b, ij % rows_b);
                        let (ai, bj) = (&a[i * d..(i + 1) * d], &b[j * d..(j + 1) * d]);
                        let count = (0..m).filter(|&r| active(ai, r) && active(bj, r)).count();
                        1.5f64 * 1.5 / m as f64 * dot(ai, bj) * count as f64
                    })
                    .collect()
            };
            let cross = expected(&x, n, &z, n_z);
            let own = expected(&x, n, &x, n);
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                let patterns = activation_patterns(xm, wm, quantized).unwrap();
                for i in 0..n {
                    for r in 0..m {
                        assert_eq!(patterns.view().get(i, r), active(&x[i * d..(i + 1) * d], r));
                    }
                }
                assert_eq!(ntk_gram(xm, wm, Some(zm), 1.5, quantized).unwrap(), cross, "{path}");
                let gram = ntk_gram(xm, wm, None, 1.5, quantized).unwrap();
                for i in 0..n {
                    for j in i..n {
                        assert_eq!(gram[i * n + j], own[i * n + j]);
                        assert_eq!(gram[j * n + i], gram[i * n + j]);
                    }
                }
            }
            force_path(None).unwrap();
        }
    }

    #[test]
    fn invalid_arguments_are_errors() {
        let x = random_matrix(3, 4, 1);
        let w = random_matrix(5, 3, 2);
        let xm = Matrix::contiguous(&x, 3, 4).unwrap();
        let wm = Matrix::contiguous(&w, 5, 3).unwrap();
        assert!(matches!(activation_patterns(xm, wm, true), Err(Error::DimensionMismatch { .. })));
        let empty = Matrix::contiguous(&w[..0], 0, 4).unwrap();
        assert!(matches!(ntk_gram(xm, empty, None, 1.0, true), Err(Error::OutOfRange(_))));
    }
}
