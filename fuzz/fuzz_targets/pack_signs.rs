//! Packing signs: `pack_signs` then `unpack_signs`, f32 and f64, contiguous and strided
//! rows, on every SIMD path, against the rule "bit (i, j) is A[i][j] >= 0" (and the first
//! NaN or infinity in row-major order reported as the error).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pybinscale::bits::{pack_signs, stride_for, unpack_signs, BitMatrix, Matrix};
use pybinscale::Error;
use pybinscale_fuzz::{bit, first_non_finite, matrix, on_every_path, Bytes, Sample};

fn check<T: Sample>(bytes: &mut Bytes<'_>) {
    let rows = bytes.below(10);
    // Up to 1,100 columns: partial words, whole words, several 512-bit rows.
    let cols = bytes.below(1100);
    let row_stride = cols + bytes.below(3);
    let data: Vec<T> = matrix(bytes, rows, cols, row_stride, true);
    let view = Matrix::new(&data, rows, cols, row_stride).expect("a valid layout");
    let bad = first_non_finite(&data, rows, cols, row_stride);
    let mut first: Option<Vec<u64>> = None;
    on_every_path(|path| {
        let packed = pack_signs(view);
        if let Some((row, col)) = bad {
            assert_eq!(packed.unwrap_err(), Error::NonFinite { row, col }, "{path}");
            return;
        }
        let packed = packed.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!((packed.rows(), packed.cols(), packed.stride()), (rows, cols, stride_for(cols)));
        let bits = packed.view();
        // Re-validating checks that every padding bit is zero.
        BitMatrix::new(bits.words(), rows, cols, bits.stride())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        for i in 0..rows {
            for j in 0..cols {
                let x = data[i * row_stride + j];
                assert_eq!(bit(bits.row(i), j), x >= T::ZERO, "{path}: ({i}, {j}) = {x:?}");
            }
        }
        let signs = unpack_signs(bits).unwrap();
        for i in 0..rows {
            for j in 0..cols {
                let expected = if data[i * row_stride + j] >= T::ZERO { 1 } else { -1 };
                assert_eq!(signs[i * cols + j], expected, "{path}");
            }
        }
        let words = packed.into_words();
        match &first {
            Some(previous) => assert_eq!(previous, &words, "{path} differs from the first path"),
            None => first = Some(words),
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
