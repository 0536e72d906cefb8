//! Real inner products in the fixed fused-multiply-add order, activation patterns and the
//! empirical NTK Gram matrix (cross and symmetric), f32 and f64, on every SIMD path,
//! against `fma(a_k, b_k, acc)` summed for k = 0, 1, ... from +0.0, bit for bit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pybinscale::bits::Matrix;
use pybinscale::dense::inner_products;
use pybinscale::gram::{activation_patterns, ntk_gram};
use pybinscale::Error;
use pybinscale_fuzz::{bit, first_non_finite, fma_dot, matrix, on_every_path, Bytes, Sample};

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn check<T: Sample>(bytes: &mut Bytes<'_>) {
    let n = bytes.below(9);
    let n_z = bytes.below(6);
    let m = bytes.below(150);
    let d = bytes.below(40);
    let quantized = bytes.flag();
    let kappa = [1.0, 0.5, 3.0][bytes.below(3)];
    let x: Vec<T> = matrix(bytes, n, d, d, true);
    let z: Vec<T> = matrix(bytes, n_z, d, d, false);
    let w: Vec<T> = matrix(bytes, m, d, d, false);
    let (xm, zm, wm) = (
        Matrix::contiguous(&x, n, d).unwrap(),
        Matrix::contiguous(&z, n_z, d).unwrap(),
        Matrix::contiguous(&w, m, d).unwrap(),
    );
    let row = |data: &[T], i: usize| -> Vec<f64> {
        data[i * d..(i + 1) * d].iter().map(|v| v.to_f64()).collect()
    };
    let q = |v: f64| {
        if quantized {
            if v >= 0.0 {
                1.0
            } else {
                -1.0
            }
        } else {
            v
        }
    };
    let dot = |a: &[f64], b: &[f64]| fma_dot(a.iter().copied(), b.iter().copied());
    let bad = first_non_finite(&x, n, d, d);

    // Inner products of z with w (both finite) must hold the sequential fma bits.
    let zw: Vec<f64> = (0..n_z * m).map(|ij| dot(&row(&z, ij / m), &row(&w, ij % m))).collect();
    let active = |a: &[f64], r: usize| {
        let wq: Vec<f64> = row(&w, r).into_iter().map(q).collect();
        dot(a, &wq) >= 0.0
    };
    on_every_path(|path| {
        let got = inner_products(zm, Some(wm), false).unwrap();
        assert!(got.iter().zip(&zw).all(|(a, b)| same(*a, *b)), "inner products on {path}");
        let patterns = activation_patterns(xm, wm, quantized);
        let gram = ntk_gram(xm, wm, Some(zm), kappa, quantized);
        let own = ntk_gram(xm, wm, None, kappa, quantized);
        if let Some((r, c)) = bad {
            assert_eq!(patterns.unwrap_err(), Error::NonFinite { row: r, col: c }, "{path}");
            assert!(gram.is_err() && own.is_err(), "{path}");
            return;
        }
        let patterns = patterns.unwrap();
        for i in 0..n {
            let xi = row(&x, i);
            for r in 0..m {
                assert_eq!(
                    bit(patterns.view().row(i), r),
                    active(&xi, r),
                    "{path}: pattern ({i}, {r})"
                );
            }
        }
        if m == 0 {
            assert!(matches!(gram, Err(Error::OutOfRange(_))) && own.is_err(), "{path}");
            return;
        }
        let (gram, own) = (gram.unwrap(), own.unwrap());
        let scale = kappa * kappa / m as f64;
        let entry = |a: &[f64], b: &[f64]| {
            let count = (0..m).filter(|&r| active(a, r) && active(b, r)).count();
            scale * dot(a, b) * count as f64
        };
        for i in 0..n {
            let xi = row(&x, i);
            for j in 0..n_z {
                let want = entry(&xi, &row(&z, j));
                assert!(
                    same(gram[i * n_z + j], want),
                    "{path}: H[{i}, {j}] = {} != {want}",
                    gram[i * n_z + j]
                );
            }
            for j in i..n {
                let want = entry(&xi, &row(&x, j));
                assert!(
                    same(own[i * n + j], want),
                    "{path}: H[{i}, {j}] = {} != {want}",
                    own[i * n + j]
                );
                assert!(same(own[j * n + i], own[i * n + j]), "{path}: the mirror of H[{i}, {j}]");
            }
        }
    });
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes::new(data);
    if bytes.flag() {
        check::<f32>(&mut bytes);
    } else {
        check::<f64>(&mut bytes);
    }
});
