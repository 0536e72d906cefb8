//! Sign matrices packed one bit per entry into `u64` words.
//!
//! Row `i` of a packed matrix occupies `stride` words starting at word `i * stride`;
//! column `j` is bit `j % 64` of word `j / 64`. A set bit means "non-negative" (the sign
//! +1, with sign(0) = +1) or, for activation patterns, "active". `stride` is rounded up to
//! a multiple of [`ROW_ALIGN_WORDS`] so a row is a whole number of 512-bit vectors, and
//! every bit past `cols` is zero: kernels XOR and AND whole words without masking.

use rayon::prelude::*;

use crate::error::{checked_len, try_zeroed, Error};
use crate::parallel;
use crate::simd::{active_path, SimdPath};

/// Bits in one storage word.
pub const WORD_BITS: usize = 64;
/// Rows are padded to a multiple of this many words (one 512-bit vector).
pub const ROW_ALIGN_WORDS: usize = 8;

/// Words that hold `cols` bits.
pub fn words_for(cols: usize) -> usize {
    cols.div_ceil(WORD_BITS)
}

/// The padded row stride, in words, for rows of `cols` bits.
pub fn stride_for(cols: usize) -> usize {
    words_for(cols).div_ceil(ROW_ALIGN_WORDS) * ROW_ALIGN_WORDS
}

/// The mask of valid bits in the last word of a row of `cols` bits (all ones when full).
pub fn last_word_mask(cols: usize) -> u64 {
    match cols % WORD_BITS {
        0 => u64::MAX,
        rem => (1u64 << rem) - 1,
    }
}

/// A real scalar the kernels read: `f32` or `f64`.
pub trait Real: Copy + Send + Sync + PartialOrd + 'static {
    const ZERO: Self;
    /// `abs_bits` of infinity: any larger value is NaN.
    const INFINITY_BITS: u64;
    fn to_f64(self) -> f64;
    fn is_finite(self) -> bool;
    /// The bits of `|self|`. For non-negative floats the bit patterns are ordered like the
    /// values, so a maximum over integers (which vectorises, unlike a float maximum that
    /// must respect NaN) finds the largest magnitude and any NaN or infinity at once.
    fn abs_bits(self) -> u64;
    /// The value whose `abs_bits` is `bits`, widened to f64.
    fn from_abs_bits(bits: u64) -> f64;
    fn pack_row(path: SimdPath, row: &[Self], out: &mut [u64]) -> Option<usize>;
}

/// A borrowed row-major real matrix whose rows may be spaced `row_stride` elements apart.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a, T: Copy> Matrix<'a, T> {
    /// Views `data` as `rows` x `cols`, row `i` starting at element `i * row_stride`.
    pub fn new(data: &'a [T], rows: usize, cols: usize, row_stride: usize) -> Result<Self, Error> {
        let needed = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1)
                .checked_mul(row_stride)
                .and_then(|n| n.checked_add(cols))
                .ok_or_else(|| Error::InvalidLayout("matrix extent overflows".into()))?
        };
        if row_stride < cols && rows > 1 {
            return Err(Error::InvalidLayout(format!(
                "row stride {row_stride} is shorter than a row of {cols} elements"
            )));
        }
        if data.len() < needed {
            return Err(Error::InvalidLayout(format!(
                "buffer of {} elements is too short for {rows} x {cols} with row stride {row_stride}",
                data.len()
            )));
        }
        Ok(Matrix { data, rows, cols, row_stride })
    }

    /// A contiguous row-major matrix.
    pub fn contiguous(data: &'a [T], rows: usize, cols: usize) -> Result<Self, Error> {
        Matrix::new(data, rows, cols, cols)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`, `cols` elements long.
    #[inline]
    pub fn row(&self, i: usize) -> &'a [T] {
        let start = i * self.row_stride;
        &self.data[start..start + self.cols]
    }
}

impl<T: Real> Matrix<'_, T> {
    /// The first (row, column) holding NaN or an infinity, scanning rows in order.
    pub fn first_non_finite(&self) -> Option<(usize, usize)> {
        (0..self.rows).find_map(|i| self.row(i).iter().position(|x| !x.is_finite()).map(|j| (i, j)))
    }

    /// [`Error::NonFinite`] at the first NaN or infinity, if there is one.
    pub fn check_finite(&self) -> Result<(), Error> {
        match self.first_non_finite() {
            Some((row, col)) => Err(Error::NonFinite { row, col }),
            None => Ok(()),
        }
    }
}

/// A borrowed packed bit matrix: see the module documentation for the layout.
#[derive(Clone, Copy, Debug)]
pub struct BitMatrix<'a> {
    words: &'a [u64],
    rows: usize,
    cols: usize,
    stride: usize,
}

impl<'a> BitMatrix<'a> {
    /// Views `words` as a packed `rows` x `cols` bit matrix with the given row stride.
    ///
    /// Checks the layout, and that every padding bit is zero (kernels rely on it).
    pub fn new(words: &'a [u64], rows: usize, cols: usize, stride: usize) -> Result<Self, Error> {
        let needed = words_for(cols);
        if stride < needed {
            return Err(Error::InvalidLayout(format!(
                "row stride of {stride} words cannot hold {cols} bits ({needed} words needed)"
            )));
        }
        let total = checked_len(rows, stride, 8)?;
        if words.len() != total {
            return Err(Error::InvalidLayout(format!(
                "{} words given for {rows} rows of stride {stride} ({total} expected)",
                words.len()
            )));
        }
        let mask = last_word_mask(cols);
        for (i, row) in words.chunks_exact(stride.max(1)).take(rows).enumerate() {
            let tail_dirty = needed > 0 && row[needed - 1] & !mask != 0;
            if tail_dirty || row[needed..].iter().any(|&w| w != 0) {
                return Err(Error::InvalidLayout(format!(
                    "row {i} has bits set past column {cols}: padding bits must be zero"
                )));
            }
        }
        Ok(BitMatrix { words, rows, cols, stride })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns: the number of meaningful bits per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Words per row, padding included.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Words per row that hold meaningful bits.
    pub fn used_words(&self) -> usize {
        words_for(self.cols)
    }

    /// All storage words, row after row.
    pub fn words(&self) -> &'a [u64] {
        self.words
    }

    /// Row `i`, `stride` words long.
    #[inline]
    pub fn row(&self, i: usize) -> &'a [u64] {
        &self.words[i * self.stride..(i + 1) * self.stride]
    }

    /// Bit (`i`, `j`).
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> bool {
        self.row(i)[j / WORD_BITS] >> (j % WORD_BITS) & 1 == 1
    }

    /// Set bits in each row.
    pub fn row_popcounts(&self) -> Vec<u32> {
        (0..self.rows).map(|i| self.row(i).iter().map(|w| w.count_ones()).sum()).collect()
    }
}

/// An owned packed bit matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedBits {
    words: Vec<u64>,
    rows: usize,
    cols: usize,
    stride: usize,
}

impl PackedBits {
    /// An all-zero `rows` x `cols` bit matrix with the standard padded stride.
    pub fn zeros(rows: usize, cols: usize) -> Result<Self, Error> {
        let stride = stride_for(cols);
        let words = try_zeroed(checked_len(rows, stride, 8)?)?;
        Ok(PackedBits { words, rows, cols, stride })
    }

    pub fn view(&self) -> BitMatrix<'_> {
        BitMatrix { words: &self.words, rows: self.rows, cols: self.cols, stride: self.stride }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Gives up the storage words, row after row.
    pub fn into_words(self) -> Vec<u64> {
        self.words
    }

    /// All storage words, for filling; the caller keeps padding bits zero.
    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// Mutable rows, in parallel, for filling; the caller keeps padding bits zero.
    pub(crate) fn par_rows_mut(&mut self) -> rayon::slice::ChunksExactMut<'_, u64> {
        self.words.par_chunks_exact_mut(self.stride.max(1))
    }
}

/// Packs the signs of `matrix`: bit (i, j) is set when `matrix[i][j] >= 0`.
///
/// Fails with [`Error::NonFinite`] at the first NaN or infinity in row-major order.
pub fn pack_signs<T: Real>(matrix: Matrix<'_, T>) -> Result<PackedBits, Error> {
    let mut packed = PackedBits::zeros(matrix.rows(), matrix.cols())?;
    if matrix.cols() == 0 {
        return Ok(packed);
    }
    let path = active_path();
    // Rows are independent; a few thousand elements per task keep rayon's overhead small.
    let min_rows = (4096 / matrix.cols()).max(1);
    let any_bad = parallel::install(|| {
        packed
            .par_rows_mut()
            .enumerate()
            .with_min_len(min_rows)
            .any(|(i, out)| T::pack_row(path, matrix.row(i), out).is_some())
    });
    if any_bad {
        // Parallel rows report in any order; the serial scan names the first bad entry.
        matrix.check_finite()?;
    }
    Ok(packed)
}

/// Unpacks to ±1 bytes, row-major `rows` x `cols`: +1 where the bit is set.
pub fn unpack_signs(bits: BitMatrix<'_>) -> Result<Vec<i8>, Error> {
    let cols = bits.cols();
    let mut out = try_zeroed::<i8>(checked_len(bits.rows(), cols, 1)?)?;
    if cols == 0 {
        return Ok(out);
    }
    parallel::install(|| {
        out.par_chunks_mut(cols).enumerate().for_each(|(i, row_out)| {
            let row = bits.row(i);
            for (j, value) in row_out.iter_mut().enumerate() {
                *value = if row[j / WORD_BITS] >> (j % WORD_BITS) & 1 == 1 { 1 } else { -1 };
            }
        })
    });
    Ok(out)
}

/// Packs one row of signs with plain Rust; returns the first non-finite column, if any.
fn pack_row_portable<T: Real>(row: &[T], out: &mut [u64]) -> Option<usize> {
    let mut bad = None;
    for (word_index, chunk) in row.chunks(WORD_BITS).enumerate() {
        let mut word = 0u64;
        for (bit, &x) in chunk.iter().enumerate() {
            word |= u64::from(x >= T::ZERO) << bit;
            if bad.is_none() && !x.is_finite() {
                bad = Some(word_index * WORD_BITS + bit);
            }
        }
        // NaN compares false, so a row with NaN still packs without a stray bit.
        out[word_index] = word;
    }
    bad
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const INFINITY_BITS: u64 = 0x7f80_0000;

    #[inline(always)]
    fn abs_bits(self) -> u64 {
        u64::from(self.to_bits() & 0x7fff_ffff)
    }

    #[inline(always)]
    fn from_abs_bits(bits: u64) -> f64 {
        f64::from(f32::from_bits(bits as u32))
    }

    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    #[inline]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }

    fn pack_row(path: SimdPath, row: &[f32], out: &mut [u64]) -> Option<usize> {
        match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `active_path` only returns a path the CPU supports.
            SimdPath::Avx512 => unsafe { x86::pack_row_f32_avx512(row, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            SimdPath::Avx2 => unsafe { x86::pack_row_f32_avx2(row, out) },
            _ => pack_row_portable(row, out),
        }
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const INFINITY_BITS: u64 = 0x7ff0_0000_0000_0000;

    #[inline(always)]
    fn abs_bits(self) -> u64 {
        self.to_bits() & 0x7fff_ffff_ffff_ffff
    }

    #[inline(always)]
    fn from_abs_bits(bits: u64) -> f64 {
        f64::from_bits(bits)
    }

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }

    #[inline]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }

    fn pack_row(path: SimdPath, row: &[f64], out: &mut [u64]) -> Option<usize> {
        match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `active_path` only returns a path the CPU supports.
            SimdPath::Avx512 => unsafe { x86::pack_row_f64_avx512(row, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            SimdPath::Avx2 => unsafe { x86::pack_row_f64_avx2(row, out) },
            _ => pack_row_portable(row, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
// Register arrays are indexed by lane and row: clearer than iterator chains here.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Real, WORD_BITS};

    // The x86 packers compare 64 elements at a time against zero (`>=`, ordered, so NaN
    // gives 0) and flag non-finite lanes on the side. The scalar tail repeats the portable
    // rule exactly, so every path yields the same bits.

    /// The frame every packer shares: `chunk_word(p)` packs the 64 elements at `p` and says
    /// whether any is non-finite; the tail is packed portably. Returns the first non-finite
    /// column, if any.
    ///
    /// # Safety
    /// `chunk_word` may read 64 elements from the pointer it is given, which this function
    /// only ever points at whole chunks inside `row`.
    #[inline(always)]
    unsafe fn pack_chunks<T: Real>(
        row: &[T],
        out: &mut [u64],
        chunk_word: impl Fn(*const T) -> (u64, bool),
    ) -> Option<usize> {
        let full = row.len() / WORD_BITS;
        let mut any_bad = false;
        for (w, word_out) in out.iter_mut().enumerate().take(full) {
            let (word, bad) = chunk_word(row.as_ptr().add(w * WORD_BITS));
            *word_out = word;
            any_bad |= bad;
        }
        let start = full * WORD_BITS;
        let tail_bad = super::pack_row_portable(&row[start..], &mut out[full..]).map(|c| c + start);
        if any_bad {
            return row.iter().position(|x| !x.is_finite());
        }
        tail_bad
    }

    /// # Safety
    /// The CPU must support AVX-512 F and DQ.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn pack_row_f32_avx512(row: &[f32], out: &mut [u64]) -> Option<usize> {
        let zero = _mm512_setzero_ps();
        pack_chunks(row, out, |chunk| {
            let (mut word, mut bad) = (0u64, 0);
            for part in 0..4 {
                // SAFETY: `chunk` points at 64 readable elements (see `pack_chunks`).
                let x = unsafe { _mm512_loadu_ps(chunk.add(16 * part)) };
                word |= u64::from(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, zero)) << (16 * part);
                // 0x99 = quiet NaN | +inf | -inf | signalling NaN
                bad |= _mm512_fpclass_ps_mask::<0x99>(x);
            }
            (word, bad != 0)
        })
    }

    /// # Safety
    /// The CPU must support AVX-512 F and DQ.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn pack_row_f64_avx512(row: &[f64], out: &mut [u64]) -> Option<usize> {
        let zero = _mm512_setzero_pd();
        pack_chunks(row, out, |chunk| {
            let (mut word, mut bad) = (0u64, 0);
            for part in 0..8 {
                // SAFETY: as above.
                let x = unsafe { _mm512_loadu_pd(chunk.add(8 * part)) };
                word |= u64::from(_mm512_cmp_pd_mask::<_CMP_GE_OQ>(x, zero)) << (8 * part);
                bad |= _mm512_fpclass_pd_mask::<0x99>(x);
            }
            (word, bad != 0)
        })
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn pack_row_f32_avx2(row: &[f32], out: &mut [u64]) -> Option<usize> {
        let zero = _mm256_setzero_ps();
        pack_chunks(row, out, |chunk| {
            let (mut word, mut bad) = (0u64, 0);
            for part in 0..8 {
                // SAFETY: as above.
                let x = unsafe { _mm256_loadu_ps(chunk.add(8 * part)) };
                let ge = _mm256_cmp_ps::<_CMP_GE_OQ>(x, zero);
                word |= u64::from(_mm256_movemask_ps(ge) as u8) << (8 * part);
                // x - x is NaN exactly when x is NaN or infinite.
                let unordered = _mm256_cmp_ps::<_CMP_UNORD_Q>(_mm256_sub_ps(x, x), zero);
                bad |= _mm256_movemask_ps(unordered);
            }
            (word, bad != 0)
        })
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn pack_row_f64_avx2(row: &[f64], out: &mut [u64]) -> Option<usize> {
        let zero = _mm256_setzero_pd();
        pack_chunks(row, out, |chunk| {
            let (mut word, mut bad) = (0u64, 0);
            for part in 0..16 {
                // SAFETY: as above.
                let x = unsafe { _mm256_loadu_pd(chunk.add(4 * part)) };
                let ge = _mm256_cmp_pd::<_CMP_GE_OQ>(x, zero);
                word |= u64::from(_mm256_movemask_pd(ge) as u8) << (4 * part);
                let unordered = _mm256_cmp_pd::<_CMP_UNORD_Q>(_mm256_sub_pd(x, x), zero);
                bad |= _mm256_movemask_pd(unordered);
            }
            (word, bad != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{force_path, supported_paths};
    use crate::test_support::{random_matrix, PATH_LOCK};

    fn reference_bit(x: f64) -> bool {
        x >= 0.0
    }

    #[test]
    fn packing_matches_the_sign_rule_on_every_path() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for &(rows, cols) in
            &[(1, 1), (3, 63), (2, 64), (5, 65), (4, 130), (7, 1000), (0, 5), (3, 0)]
        {
            let mut data = random_matrix(rows, cols, 11 + cols as u64);
            if rows * cols > 3 {
                data[1] = 0.0;
                data[2] = -0.0;
            }
            let data32: Vec<f32> = data.iter().map(|&x| x as f32).collect();
            let mut results = Vec::new();
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                let p64 = pack_signs(Matrix::contiguous(&data, rows, cols).unwrap()).unwrap();
                let p32 = pack_signs(Matrix::contiguous(&data32, rows, cols).unwrap()).unwrap();
                assert_eq!(p64, p32);
                let view = p64.view();
                for i in 0..rows {
                    for j in 0..cols {
                        assert_eq!(view.get(i, j), reference_bit(data[i * cols + j]));
                    }
                }
                // Re-validating proves the padding bits are zero.
                BitMatrix::new(view.words(), rows, cols, view.stride()).unwrap();
                results.push(p64);
            }
            force_path(None).unwrap();
            assert!(results.windows(2).all(|w| w[0] == w[1]));
        }
    }

    #[test]
    fn non_finite_values_are_reported_at_their_first_position() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let (rows, cols) = (6, 200);
        for path in supported_paths() {
            force_path(Some(path)).unwrap();
            for (bad_row, bad_col, value) in
                [(0, 0, f64::NAN), (4, 199, f64::INFINITY), (3, 70, -f64::INFINITY)]
            {
                let mut data = random_matrix(rows, cols, 5);
                data[bad_row * cols + bad_col] = value;
                data[5 * cols + 3] = f64::NAN; // a later one must not be the one reported
                let error = pack_signs(Matrix::contiguous(&data, rows, cols).unwrap()).unwrap_err();
                assert_eq!(error, Error::NonFinite { row: bad_row, col: bad_col });
                let data32: Vec<f32> = data.iter().map(|&x| x as f32).collect();
                let error =
                    pack_signs(Matrix::contiguous(&data32, rows, cols).unwrap()).unwrap_err();
                assert_eq!(error, Error::NonFinite { row: bad_row, col: bad_col });
            }
        }
        force_path(None).unwrap();
    }

    #[test]
    fn strided_rows_pack_like_their_copy() {
        let data = random_matrix(4, 100, 3);
        let strided = Matrix::new(&data, 4, 70, 100).unwrap();
        let copy: Vec<f64> = (0..4).flat_map(|i| data[i * 100..i * 100 + 70].to_vec()).collect();
        assert_eq!(
            pack_signs(strided).unwrap(),
            pack_signs(Matrix::contiguous(&copy, 4, 70).unwrap()).unwrap()
        );
    }

    #[test]
    fn unpack_inverts_pack() {
        let data = random_matrix(3, 77, 9);
        let packed = pack_signs(Matrix::contiguous(&data, 3, 77).unwrap()).unwrap();
        let signs = unpack_signs(packed.view()).unwrap();
        let expected: Vec<i8> = data.iter().map(|&x| if x >= 0.0 { 1 } else { -1 }).collect();
        assert_eq!(signs, expected);
    }

    #[test]
    fn layout_errors_are_reported() {
        let words = vec![0u64; 16];
        assert!(BitMatrix::new(&words, 2, 64, 8).is_ok());
        assert!(matches!(BitMatrix::new(&words, 2, 600, 8), Err(Error::InvalidLayout(_))));
        assert!(matches!(BitMatrix::new(&words, 3, 64, 8), Err(Error::InvalidLayout(_))));
        let mut dirty = words.clone();
        dirty[8] = 1 << 10;
        assert!(matches!(BitMatrix::new(&dirty, 2, 5, 8), Err(Error::InvalidLayout(_))));
        assert!(matches!(Matrix::new(&[1.0f64; 5], 2, 3, 3), Err(Error::InvalidLayout(_))));
    }
}
