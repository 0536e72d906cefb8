//! Popcount products of packed bit matrices on every SIMD path against scalar sums:
//! `sign_product` (XNOR-popcount, `sum_k sign(a_k) sign(b_k)`) and `and_counts`
//! (`#{k : p_k and q_k}`, with `q` given and with the symmetric triangle-and-mirror path).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pybinscale::bits::{stride_for, BitMatrix};
use pybinscale::matmul::{and_counts, sign_product};
use pybinscale_fuzz::{bit, on_every_path, Bytes};

fn bits(bytes: &mut Bytes<'_>, rows: usize, cols: usize) -> Vec<u64> {
    let mut words = Vec::with_capacity(rows * stride_for(cols));
    for i in 0..rows {
        if i > 0 && bytes.byte() % 8 == 0 {
            // A repeated row (duplicated samples give equal patterns).
            let stride = stride_for(cols);
            let previous: Vec<u64> = words[(i - 1) * stride..i * stride].to_vec();
            words.extend(previous);
        } else {
            bytes.bit_row(cols, &mut words);
        }
    }
    words
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes::new(data);
    let n = bytes.below(13);
    let m = bytes.below(40);
    // Past 1,984 bits (31 words) the AVX2 path flushes its byte counters.
    let k = bytes.below(2300);
    let stride = stride_for(k);
    let a_words = bits(&mut bytes, n, k);
    let b_words = bits(&mut bytes, m, k);
    let a = BitMatrix::new(&a_words, n, k, stride).expect("valid packed rows");
    let b = BitMatrix::new(&b_words, m, k, stride).expect("valid packed rows");

    let signed: Vec<i32> = (0..n * m)
        .map(|ij| {
            let (i, j) = (ij / m, ij % m);
            (0..k).map(|t| if bit(a.row(i), t) == bit(b.row(j), t) { 1 } else { -1 }).sum()
        })
        .collect();
    let count = |x: &[u64], y: &[u64]| (0..k).filter(|&t| bit(x, t) && bit(y, t)).count() as i32;
    let cross: Vec<i32> = (0..n * m).map(|ij| count(a.row(ij / m), b.row(ij % m))).collect();
    let gram: Vec<i32> = (0..n * n).map(|ij| count(a.row(ij / n), a.row(ij % n))).collect();

    on_every_path(|path| {
        assert_eq!(sign_product(a, b).unwrap(), signed, "sign_product on {path}, {n}x{k}x{m}");
        assert_eq!(and_counts(a, Some(b)).unwrap(), cross, "and_counts on {path}, {n}x{k}x{m}");
        assert_eq!(and_counts(a, None).unwrap(), gram, "symmetric and_counts on {path}, {n}x{k}");
    });
});
