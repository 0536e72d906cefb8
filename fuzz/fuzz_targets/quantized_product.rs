//! Absmax quantisation and the bit-serial product of b-bit activations with 1-bit
//! weights, f32 and f64, on every SIMD path, against the documented rule entry by entry
//! and the exact integer product `sum_k q_k sign(w_k)` times the row scale.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pybinscale::bits::{pack_signs, Matrix};
use pybinscale::error::Zeroable;
use pybinscale::quantize::{quantize, quantized_product, Quantizable};
use pybinscale::Error;
use pybinscale_fuzz::{
    first_non_finite, matrix, on_every_path, quantize_row_reference, Bytes, Sample,
};

fn check<T: Sample + Quantizable + Zeroable>(bytes: &mut Bytes<'_>) {
    let n = bytes.below(9);
    let m = bytes.below(30);
    let k = bytes.below(700);
    // 0 and 9 bits are out of range and must be refused.
    let bits = bytes.below(10);
    let x: Vec<T> = matrix(bytes, n, k, k, true);
    let w: Vec<f64> = matrix(bytes, m, k, k, false);
    let xm = Matrix::contiguous(&x, n, k).unwrap();
    let packed_w = pack_signs(Matrix::contiguous(&w, m, k).unwrap()).unwrap();
    let bad = first_non_finite(&x, n, k, k);

    if !(1..=8).contains(&bits) {
        on_every_path(|path| {
            assert!(matches!(quantize(xm, bits), Err(Error::OutOfRange(_))), "{path}");
            assert!(
                matches!(
                    quantized_product(xm, packed_w.view(), bits, |v| T::from_f64(v)),
                    Err(Error::OutOfRange(_))
                ),
                "{path}"
            );
        });
        return;
    }
    let reference: Vec<(Vec<i8>, f64)> =
        (0..n).map(|i| quantize_row_reference(&x[i * k..(i + 1) * k], bits)).collect();
    let product: Vec<T> = (0..n * m)
        .map(|ij| {
            let (i, j) = (ij / m, ij % m);
            let (values, scale) = &reference[i];
            let dot: i64 = (0..k)
                .map(|t| i64::from(values[t]) * if w[j * k + t] >= 0.0 { 1 } else { -1 })
                .sum();
            T::from_f64(dot as f64 * scale)
        })
        .collect();
    on_every_path(|path| {
        let quantized = quantize(xm, bits);
        let multiplied = quantized_product(xm, packed_w.view(), bits, |v| T::from_f64(v));
        if let Some((row, col)) = bad {
            assert_eq!(quantized.unwrap_err(), Error::NonFinite { row, col }, "{path}");
            assert_eq!(multiplied.unwrap_err(), Error::NonFinite { row, col }, "{path}");
            return;
        }
        let quantized = quantized.unwrap();
        for i in 0..n {
            let (values, scale) = &reference[i];
            assert_eq!(
                &quantized.values[i * k..(i + 1) * k],
                &values[..],
                "{path}: row {i}, {bits} bits, gamma {scale:e}"
            );
            assert_eq!(quantized.scales[i].to_bits(), scale.to_bits(), "{path}: scale of row {i}");
        }
        let multiplied = multiplied.unwrap();
        assert_eq!(multiplied.len(), product.len());
        for (index, (got, want)) in multiplied.iter().zip(&product).enumerate() {
            assert_eq!(got.bits(), want.bits(), "{path}: entry {index}: {got:?} != {want:?}");
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
