//! The closed-form infinite-width kernels of a two-layer ReLU network.
//!
//! For Gaussian first-layer weights, as the width grows the empirical NTK of the first
//! layer tends to the arc-cosine kernel of order 0,
//!
//! ```text
//! H*_ij = kappa^2 <x_i, z_j> (pi - theta_ij) / (2 pi),   theta_ij = arccos(cos(x_i, z_j)),
//! ```
//!
//! and training the output layer as well adds the order-1 arc-cosine (NNGP) term
//! `kappa^2 |x_i| |z_j| (sin theta + (pi - theta) cos theta) / (2 pi)`. A zero row has no
//! direction; both terms vanish there, and `theta` is taken as pi/2.

use std::f64::consts::PI;

use crate::bits::{Matrix, Real};
use crate::dense::inner_products;
use crate::error::Error;
use crate::matmul::mirror_upper;
use crate::parallel;

fn row_norms<T: Real>(m: Matrix<'_, T>) -> Vec<f64> {
    (0..m.rows())
        .map(|i| {
            let row = m.row(i);
            let squares = row.iter().fold(0.0f64, |acc, &v| v.to_f64().mul_add(v.to_f64(), acc));
            if squares.is_normal() {
                return squares.sqrt();
            }
            // The sum of squares overflowed (entries above ~1e154) or underflowed (all
            // below ~1e-154, where a nonzero row would count as a zero row and get the
            // wrong angle): scale by the largest magnitude first.
            let peak = row.iter().fold(0.0f64, |acc, &v| acc.max(v.to_f64().abs()));
            if peak == 0.0 {
                return 0.0;
            }
            peak * row
                .iter()
                .fold(0.0f64, |acc, &v| (v.to_f64() / peak).mul_add(v.to_f64() / peak, acc))
                .sqrt()
        })
        .collect()
}

/// Cosines above this are recomputed from the rows themselves (see [`parallel_angle`]).
const NEAR_PARALLEL: f64 = 1.0 - 1e-6;

fn cosine_of(dot: f64, norm_x: f64, norm_z: f64) -> f64 {
    let norms = norm_x * norm_z;
    if norms.is_normal() {
        (dot / norms).clamp(-1.0, 1.0)
    } else if norm_x > 0.0 && norm_z > 0.0 {
        // The product of the norms overflowed or underflowed; their quotients do not.
        (dot / norm_x / norm_z).clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// The angle between two nonzero rows as `2 atan2(|x^ - z^|, |x^ + z^|)` of their unit
/// vectors: exact to rounding for any angle. `arccos` of a cosine rounded near 1 is not
/// (a cosine one ulp below 1 is an angle of 1.5e-8), and near-parallel rows are common:
/// a point of the training set met again in the test set.
fn parallel_angle<T: Real>(x: &[T], z: &[T], norm_x: f64, norm_z: f64) -> f64 {
    let (mut apart, mut together) = (0.0f64, 0.0f64);
    for (&a, &b) in x.iter().zip(z) {
        let (a, b) = (a.to_f64() / norm_x, b.to_f64() / norm_z);
        apart = (a - b).mul_add(a - b, apart);
        together = (a + b).mul_add(a + b, together);
    }
    2.0 * apart.sqrt().atan2(together.sqrt())
}

/// `(cosine, sine, theta)` from the cosine by arccos; the sine only `with_sine` (only the
/// NNGP term reads it), 0 otherwise.
fn angle_from_cosine(cosine: f64, with_sine: bool) -> (f64, f64, f64) {
    let sine = if with_sine { (1.0 - cosine * cosine).max(0.0).sqrt() } else { 0.0 };
    (cosine, sine, cosine.acos())
}

/// `(cosine, sine, theta)` between rows `x` and `z`: by arccos of their cosine, or from
/// the rows themselves where they are near parallel.
fn angle_between<T: Real>(
    x: &[T],
    z: &[T],
    dot: f64,
    norm_x: f64,
    norm_z: f64,
    with_sine: bool,
) -> (f64, f64, f64) {
    let cosine = cosine_of(dot, norm_x, norm_z);
    if cosine > NEAR_PARALLEL {
        let theta = parallel_angle(x, z, norm_x, norm_z);
        return (theta.cos(), theta.sin(), theta);
    }
    angle_from_cosine(cosine, with_sine)
}

/// One kernel entry from the inner product and the two norms.
pub fn arccos_entry(dot: f64, norm_x: f64, norm_z: f64, kappa: f64, output_layer: bool) -> f64 {
    let angle = angle_from_cosine(cosine_of(dot, norm_x, norm_z), output_layer);
    entry_at_angle(dot, norm_x, norm_z, angle, kappa, output_layer)
}

/// One kernel entry from the inner product, the norms and the angle `theta` between the
/// rows (with its cosine and sine).
fn entry_at_angle(
    dot: f64,
    norm_x: f64,
    norm_z: f64,
    (cosine, sine, theta): (f64, f64, f64),
    kappa: f64,
    output_layer: bool,
) -> f64 {
    let norms = norm_x * norm_z;
    let mut value = kappa * kappa * dot * (PI - theta) / (2.0 * PI);
    if output_layer {
        value += kappa * kappa * norms * (sine + (PI - theta) * cosine) / (2.0 * PI);
    }
    if !value.is_finite() && dot.is_finite() {
        // An intermediate product overflowed (kappa^2 <x, z> pi can exceed f64::MAX
        // while the entry, at most half of it, does not): small factors first.
        value = kappa * (kappa * (dot * ((PI - theta) / (2.0 * PI))));
        if output_layer {
            let angular = (sine + (PI - theta) * cosine) / (2.0 * PI);
            value += kappa * (kappa * (norm_x * (norm_z * angular)));
        }
    }
    value
}

/// The limit kernel `H*` (plus the NNGP term when `output_layer`) between the rows of
/// `x` and of `z` (`x` itself when `None`), `n` x `n_z` row-major.
pub fn arccos_ntk<T: Real>(
    x: Matrix<'_, T>,
    z: Option<Matrix<'_, T>>,
    kappa: f64,
    output_layer: bool,
) -> Result<Vec<f64>, Error> {
    for m in std::iter::once(x).chain(z) {
        m.check_finite()?;
    }
    if !kappa.is_finite() {
        return Err(Error::OutOfRange(format!("kappa must be finite, got {kappa}")));
    }
    let symmetric = z.is_none();
    let other = z.unwrap_or(x);
    let mut kernel = inner_products(x, z, false)?;
    let norms_x = row_norms(x);
    let norms_z = z.map_or_else(|| norms_x.clone(), row_norms);
    let n_z = norms_z.len();
    parallel::for_each_row_chunk(&mut kernel, n_z, 16, |first, rows| {
        for (r, row) in rows.chunks_mut(n_z).enumerate() {
            let i = first + r;
            // In the symmetric case only the upper triangle holds inner products.
            let start = if symmetric { i } else { 0 };
            for (j, value) in row.iter_mut().enumerate().skip(start) {
                let (norm_x, norm_z) = (norms_x[i], norms_z[j]);
                if symmetric && i == j {
                    // A row with itself: its exact squared norm at angle 0.
                    let square = norm_x * norm_x;
                    *value = entry_at_angle(
                        square,
                        norm_x,
                        norm_x,
                        (1.0, 0.0, 0.0),
                        kappa,
                        output_layer,
                    );
                    continue;
                }
                let dot = *value;
                let (x_row, z_row) = (x.row(i), other.row(j));
                let angle = angle_between(x_row, z_row, dot, norm_x, norm_z, output_layer);
                *value = entry_at_angle(dot, norm_x, norm_z, angle, kappa, output_layer);
            }
        }
    });
    if symmetric {
        mirror_upper(&mut kernel, n_z);
    }
    Ok(kernel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gram::ntk_gram;
    use crate::test_support::random_matrix;

    #[test]
    fn known_angles_give_known_values() {
        // Parallel: theta = 0, H = <x, x> / 2; orthogonal: 0; opposite: 0.
        assert!((arccos_entry(4.0, 2.0, 2.0, 1.0, false) - 2.0).abs() < 1e-15);
        assert_eq!(arccos_entry(0.0, 1.0, 1.0, 1.0, false), 0.0);
        assert!(arccos_entry(-1.0, 1.0, 1.0, 1.0, false).abs() < 1e-15);
        // NNGP term at theta = 0 is |x||z| pi / (2 pi) = |x||z| / 2; at theta = pi/2, 1/(2 pi).
        assert!((arccos_entry(1.0, 1.0, 1.0, 1.0, true) - 1.0).abs() < 1e-15);
        assert!((arccos_entry(0.0, 1.0, 1.0, 2.0, true) - 4.0 / (2.0 * PI)).abs() < 1e-15);
        assert_eq!(arccos_entry(0.0, 0.0, 3.0, 1.0, true), 0.0);
    }

    #[test]
    fn rows_of_extreme_norms_keep_their_angle() {
        // Sums of squares that underflowed made a tiny row a zero row (angle pi/2), and
        // ones that overflowed gave NaN or a cosine of 0; x and z are parallel here.
        for (scale_x, scale_z) in [(1e-200, 1.0), (1e-283, 1.0), (1e200, 1e-200), (1e160, 1e-100)] {
            let x = [3.0 * scale_x, 4.0 * scale_x];
            let z = [6.0 * scale_z, 8.0 * scale_z];
            let (xm, zm) =
                (Matrix::contiguous(&x, 1, 2).unwrap(), Matrix::contiguous(&z, 1, 2).unwrap());
            let dot = 3.0 * scale_x * 6.0 * scale_z + 4.0 * scale_x * 8.0 * scale_z;
            for output_layer in [false, true] {
                let got = arccos_ntk(xm, Some(zm), 1.0, output_layer).unwrap()[0];
                let want = if output_layer { dot } else { dot / 2.0 };
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs(),
                    "{scale_x} {scale_z}: {got} != {want}"
                );
            }
        }
        // kappa^2 <x, x> pi overflows while the entry <x, x> / 2 does not.
        let x = [7.5e153];
        let got = arccos_ntk(Matrix::contiguous(&x, 1, 1).unwrap(), None, 1.0, false).unwrap()[0];
        assert!((got - 7.5e153 * 7.5e153 / 2.0).abs() <= 1e-12 * got, "{got}");
        // Rows of ordinary norms keep their bits.
        let x = [0.6, 0.8, 1.0, 0.0];
        let got = arccos_ntk(Matrix::contiguous(&x, 2, 2).unwrap(), None, 1.0, false).unwrap();
        assert_eq!(got[1], arccos_entry(0.6, 1.0, 1.0, 1.0, false));
    }

    #[test]
    fn near_parallel_rows_get_their_exact_angle() {
        // z_k is x rotated by a known angle t (and scaled); the entry at angle t is known
        // in closed form. arccos of the rounded cosine was off by up to 1.5e-8 in the angle.
        let x = [0.6f64, 0.8, 0.0];
        let mut z = Vec::new();
        let angles = [0.0f64, 1e-12, 1e-9, 1e-7, 1e-5, 1e-3];
        for (k, &t) in angles.iter().enumerate() {
            let scale = [1.0, 3.0, 0.1][k % 3];
            z.extend([scale * t.cos() * 0.6, scale * t.cos() * 0.8, scale * t.sin()]);
        }
        let xm = Matrix::contiguous(&x, 1, 3).unwrap();
        let zm = Matrix::contiguous(&z, angles.len(), 3).unwrap();
        for output_layer in [false, true] {
            let got = arccos_ntk(xm, Some(zm), 1.0, output_layer).unwrap();
            for (k, &t) in angles.iter().enumerate() {
                let (row, norm_z) = (&z[3 * k..3 * k + 3], [1.0, 3.0, 0.1][k % 3]);
                // The angle of the stored (rounded) coordinates.
                let theta = row[2].atan2(row[0] * 0.6 + row[1] * 0.8);
                assert!((theta - t).abs() <= 1e-15 * t.max(1e-300) + 1e-300);
                let mut want = norm_z * theta.cos() * (PI - theta) / (2.0 * PI);
                if output_layer {
                    want += norm_z * (theta.sin() + (PI - theta) * theta.cos()) / (2.0 * PI);
                }
                let error = (got[k] - want).abs() / want;
                assert!(error <= 4e-16, "angle {t}, output_layer {output_layer}: {error:e}");
            }
        }
        // A row met again, as in a test set that shares points with the training set.
        let x = random_matrix(4, 7, 63);
        let xm = Matrix::contiguous(&x, 4, 7).unwrap();
        let own = arccos_ntk(xm, None, 1.0, false).unwrap();
        let cross = arccos_ntk(xm, Some(xm), 1.0, false).unwrap();
        for i in 0..4 {
            let error = (cross[i * 4 + i] - own[i * 4 + i]).abs() / own[i * 4 + i];
            assert!(error <= 4e-16, "row {i}: {error:e}");
        }
    }

    #[test]
    fn arccos_ntk_matches_a_scalar_reference_on_every_path() {
        use crate::simd::{force_path, supported_paths};
        use crate::test_support::PATH_LOCK;
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let fma_dot =
            |a: &[f64], b: &[f64]| a.iter().zip(b).fold(0.0f64, |s, (x, y)| x.mul_add(*y, s));
        let (n, n_z, d) = (13, 70, 9);
        let mut x = random_matrix(n, d, 61);
        x[2 * d..3 * d].fill(0.0); // a zero row
        let copy = x[..d].to_vec();
        x[4 * d..5 * d].copy_from_slice(&copy); // a repeated row
        let mut z = random_matrix(n_z, d, 62);
        z[5 * d..6 * d].copy_from_slice(&copy); // a row of x met again in z
        let (xm, zm) =
            (Matrix::contiguous(&x, n, d).unwrap(), Matrix::contiguous(&z, n_z, d).unwrap());
        let norm = |r: &[f64]| fma_dot(r, r).sqrt();
        for output_layer in [false, true] {
            let entry = |a: &[f64], b: &[f64], same: bool| {
                if same {
                    return arccos_entry(norm(a) * norm(a), norm(a), norm(a), 1.5, output_layer);
                }
                let dot = fma_dot(a, b);
                let angle = angle_between(a, b, dot, norm(a), norm(b), output_layer);
                entry_at_angle(dot, norm(a), norm(b), angle, 1.5, output_layer)
            };
            let cross: Vec<f64> = (0..n * n_z)
                .map(|ij| entry(&x[ij / n_z * d..][..d], &z[ij % n_z * d..][..d], false))
                .collect();
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                let got = arccos_ntk(xm, Some(zm), 1.5, output_layer).unwrap();
                assert!(got.iter().zip(&cross).all(|(a, b)| a.to_bits() == b.to_bits()), "{path}");
                let own = arccos_ntk(xm, None, 1.5, output_layer).unwrap();
                for i in 0..n {
                    for j in i..n {
                        let want = entry(&x[i * d..][..d], &x[j * d..][..d], i == j);
                        assert_eq!(own[i * n + j].to_bits(), want.to_bits(), "{path} ({i}, {j})");
                        assert_eq!(own[j * n + i].to_bits(), own[i * n + j].to_bits());
                    }
                }
            }
            force_path(None).unwrap();
        }
    }

    #[test]
    fn wide_gaussian_gram_approaches_the_limit() {
        let (n, d, m) = (12, 5, 1 << 15);
        let mut x = random_matrix(n, d, 41);
        for row in x.chunks_mut(d) {
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            row.iter_mut().for_each(|v| *v /= norm);
        }
        let w = random_matrix(m, d, 42);
        let xm = Matrix::contiguous(&x, n, d).unwrap();
        let limit = arccos_ntk(xm, None, 1.0, false).unwrap();
        let gram = ntk_gram(xm, Matrix::contiguous(&w, m, d).unwrap(), None, 1.0, false).unwrap();
        let diff: f64 = gram.iter().zip(&limit).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
        let size: f64 = limit.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(diff / size < 0.03, "relative error {}", diff / size);
    }
}
