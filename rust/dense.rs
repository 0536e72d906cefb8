//! Real products `A @ B.T` in f64 with one fixed order of operations.
//!
//! Every entry is accumulated as `acc = fma(a_k, b_k, acc)` for `k = 0, 1, ..., d - 1`
//! starting from `+0.0`, on every SIMD path: vector lanes hold different output columns,
//! never different `k`, so the AVX-512, AVX2 and portable paths give the same bits. That
//! is what makes activation patterns (`<w, x> >= 0`, where a last-bit difference can flip
//! a bit) identical on every machine. Inputs of either precision are widened to f64.
//!
//! [`for_each_block`] computes blocks of [`BLOCK_ROWS`] rows of `A` by [`BLOCK_COLS`] rows of
//! `B` and hands each, with the sign bits of its values, to a sink.

use crate::bits::{Matrix, Real};
use crate::error::{checked_len, try_zeroed, Error};
use crate::parallel;
use crate::simd::{active_path, SimdPath};

/// Columns of a block: one 64-bit word of sign bits per row.
pub const BLOCK_COLS: usize = 64;
/// Rows of a block: 2 rows x 8 vectors of 8 f64 = 16 accumulators, which with the 8
/// vectors of the panel row and a broadcast fit the 32 AVX-512 registers without spills.
pub const BLOCK_ROWS: usize = 2;

/// `B` transposed and cut into panels of [`BLOCK_COLS`] columns, in f64: panel `p` holds
/// columns `64p .. 64p + 64` (zero beyond `cols`) as `depth` contiguous rows of 64, so a
/// block reads one contiguous stretch of memory. (A plain transpose would space those
/// rows a whole matrix row apart, and with thousands of columns every row of a block
/// would fall in the same L1 cache set.)
pub struct Transposed {
    data: Vec<f64>,
    depth: usize,
    cols: usize,
}

impl Transposed {
    /// Transposes `b`, mapping each entry through `map` (e.g. to its sign).
    pub fn new<T: Real>(b: Matrix<'_, T>, map: impl Fn(T) -> f64) -> Result<Self, Error> {
        let (cols, depth) = (b.rows(), b.cols());
        let panels = cols.div_ceil(BLOCK_COLS);
        let mut data = try_zeroed::<f64>(checked_len(panels * depth, BLOCK_COLS, 8)?)?;
        for j in 0..cols {
            let panel = &mut data[(j / BLOCK_COLS) * depth * BLOCK_COLS..];
            for (k, &value) in b.row(j).iter().enumerate() {
                panel[k * BLOCK_COLS + j % BLOCK_COLS] = map(value);
            }
        }
        Ok(Transposed { data, depth, cols })
    }

    /// Columns: rows of the original `B`.
    pub fn cols(&self) -> usize {
        self.cols
    }

    fn blocks(&self) -> usize {
        self.cols.div_ceil(BLOCK_COLS)
    }

    /// Panel `block`: `depth` rows of [`BLOCK_COLS`] values.
    fn panel(&self, block: usize) -> &[f64] {
        let len = self.depth * BLOCK_COLS;
        &self.data[block * len..(block + 1) * len]
    }
}

/// Values and sign bits of one block.
pub struct Block<'t> {
    /// First row of `A` in the block.
    pub row: usize,
    pub rows: usize,
    /// First column (row of `B`); a multiple of [`BLOCK_COLS`].
    pub col: usize,
    /// Valid columns (at most [`BLOCK_COLS`]).
    pub cols: usize,
    /// `values[r][c]` = entry (`row + r`, `col + c`).
    pub values: &'t [[f64; BLOCK_COLS]; BLOCK_ROWS],
    /// Bit `c` of `signs[r]` is set when `values[r][c] >= 0`; bits past `cols` are zero.
    pub signs: &'t [u64; BLOCK_ROWS],
}

/// Computes every block of `a @ bt.T` (row-major output rows of `row_len` elements in
/// `out`, one per row of `a`) and gives it to `sink(chunk, first_row, block)`. With
/// `upper_only`, blocks lying wholly below the diagonal are skipped.
pub fn for_each_block<T, O, S>(
    a: Matrix<'_, T>,
    bt: &Transposed,
    upper_only: bool,
    out: &mut [O],
    row_len: usize,
    sink: S,
) -> Result<(), Error>
where
    T: Real,
    O: Send,
    S: Fn(&mut [O], usize, &Block<'_>) + Sync,
{
    if a.cols() != bt.depth {
        return Err(Error::DimensionMismatch {
            what: "columns of the two matrices",
            left: a.cols(),
            right: bt.depth,
        });
    }
    if a.rows() == 0 || bt.cols == 0 {
        return Ok(());
    }
    let path = active_path();
    let depth = bt.depth;
    // Chunks of rows whose f64 copy stays in L2 next to a block of B.
    let chunk_rows = ((128 * 1024) / (8 * depth.max(1)) / BLOCK_ROWS).clamp(1, 32) * BLOCK_ROWS;
    parallel::for_each_row_chunk(out, row_len, chunk_rows, |first, chunk| {
        let rows_here = chunk.len() / row_len;
        let mut widened = vec![0.0f64; rows_here * depth];
        for (r, slot) in widened.chunks_mut(depth.max(1)).enumerate().take(rows_here) {
            for (value, &x) in slot.iter_mut().zip(a.row(first + r)) {
                *value = x.to_f64();
            }
        }
        let mut values = [[0.0f64; BLOCK_COLS]; BLOCK_ROWS];
        let mut signs = [0u64; BLOCK_ROWS];
        for block in 0..bt.blocks() {
            let col = block * BLOCK_COLS;
            let columns = bt.panel(block);
            for row in (first..first + rows_here).step_by(BLOCK_ROWS) {
                if upper_only && col + BLOCK_COLS <= row {
                    continue;
                }
                let rows = BLOCK_ROWS.min(first + rows_here - row);
                let a_rows: [&[f64]; BLOCK_ROWS] = std::array::from_fn(|r| {
                    let r = (row - first + r).min(rows_here - 1);
                    &widened[r * depth..(r + 1) * depth]
                });
                compute_block(path, &a_rows, columns, depth, &mut values, &mut signs);
                let cols = BLOCK_COLS.min(bt.cols - col);
                if cols < BLOCK_COLS {
                    for word in &mut signs {
                        *word &= (1u64 << cols) - 1;
                    }
                }
                let block = Block { row, rows, col, cols, values: &values, signs: &signs };
                sink(chunk, first, &block);
            }
        }
    });
    Ok(())
}

/// Fills one block. Rows past the block's own repeat a valid row and are ignored by sinks.
fn compute_block(
    path: SimdPath,
    a_rows: &[&[f64]; BLOCK_ROWS],
    columns: &[f64],
    depth: usize,
    values: &mut [[f64; BLOCK_COLS]; BLOCK_ROWS],
    signs: &mut [u64; BLOCK_ROWS],
) {
    debug_assert_eq!(columns.len(), depth * BLOCK_COLS);
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active_path` returns only supported paths; every row has `depth`
        // entries and `columns` holds the block's `depth` rows of BLOCK_COLS entries, all
        // of which the kernels read and no more.
        SimdPath::Avx512 => unsafe { x86::block_avx512(a_rows, columns, depth, values, signs) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        SimdPath::Avx2 => unsafe { x86::block_avx2(a_rows, columns, depth, values, signs) },
        _ => block_portable(a_rows, columns, depth, values, signs),
    }
}

fn block_portable(
    a_rows: &[&[f64]; BLOCK_ROWS],
    columns: &[f64],
    depth: usize,
    values: &mut [[f64; BLOCK_COLS]; BLOCK_ROWS],
    signs: &mut [u64; BLOCK_ROWS],
) {
    for r in 0..BLOCK_ROWS {
        let acc = &mut values[r];
        acc.fill(0.0);
        for k in 0..depth {
            let x = a_rows[r][k];
            let b = &columns[k * BLOCK_COLS..(k + 1) * BLOCK_COLS];
            for (value, &bk) in acc.iter_mut().zip(b) {
                *value = x.mul_add(bk, *value);
            }
        }
        signs[r] =
            acc.iter().enumerate().fold(0u64, |word, (c, &v)| word | u64::from(v >= 0.0) << c);
    }
}

#[cfg(target_arch = "x86_64")]
// Register arrays are indexed by lane and row: clearer than iterator chains here.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BLOCK_COLS, BLOCK_ROWS};

    /// # Safety
    /// The CPU must support AVX-512 F; slice extents as described at `compute_block`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn block_avx512(
        a_rows: &[&[f64]; BLOCK_ROWS],
        columns: &[f64],
        depth: usize,
        values: &mut [[f64; BLOCK_COLS]; BLOCK_ROWS],
        signs: &mut [u64; BLOCK_ROWS],
    ) {
        const VECTORS: usize = BLOCK_COLS / 8;
        let mut acc = [[_mm512_setzero_pd(); VECTORS]; BLOCK_ROWS];
        let b = columns.as_ptr();
        for k in 0..depth {
            // SAFETY: row k < depth of the panel is `columns[k * BLOCK_COLS..][..BLOCK_COLS]`.
            let b_row = b.add(k * BLOCK_COLS);
            for r in 0..BLOCK_ROWS {
                let x = _mm512_set1_pd(*a_rows[r].get_unchecked(k));
                for v in 0..VECTORS {
                    acc[r][v] = _mm512_fmadd_pd(x, _mm512_loadu_pd(b_row.add(8 * v)), acc[r][v]);
                }
            }
        }
        let zero = _mm512_setzero_pd();
        for r in 0..BLOCK_ROWS {
            let mut word = 0u64;
            for v in 0..VECTORS {
                _mm512_storeu_pd(values[r].as_mut_ptr().add(8 * v), acc[r][v]);
                word |= u64::from(_mm512_cmp_pd_mask::<_CMP_GE_OQ>(acc[r][v], zero)) << (8 * v);
            }
            signs[r] = word;
        }
    }

    /// AVX2 has 16 registers, so the block is done in strips of 16 columns per row.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; slice extents as for [`block_avx512`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn block_avx2(
        a_rows: &[&[f64]; BLOCK_ROWS],
        columns: &[f64],
        depth: usize,
        values: &mut [[f64; BLOCK_COLS]; BLOCK_ROWS],
        signs: &mut [u64; BLOCK_ROWS],
    ) {
        const STRIP: usize = 16;
        let b = columns.as_ptr();
        let zero = _mm256_setzero_pd();
        for r in 0..BLOCK_ROWS {
            let mut word = 0u64;
            for strip in (0..BLOCK_COLS).step_by(STRIP) {
                let mut acc = [_mm256_setzero_pd(); STRIP / 4];
                for k in 0..depth {
                    let x = _mm256_set1_pd(*a_rows[r].get_unchecked(k));
                    // SAFETY: as in `block_avx512`.
                    let b_row = b.add(k * BLOCK_COLS + strip);
                    for v in 0..STRIP / 4 {
                        acc[v] = _mm256_fmadd_pd(x, _mm256_loadu_pd(b_row.add(4 * v)), acc[v]);
                    }
                }
                for v in 0..STRIP / 4 {
                    _mm256_storeu_pd(values[r].as_mut_ptr().add(strip + 4 * v), acc[v]);
                    let mask = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(acc[v], zero));
                    word |= (mask as u32 as u64) << (strip + 4 * v);
                }
            }
            signs[r] = word;
        }
    }
}

/// `a @ b.T` in f64 with the fixed order of the module documentation, `n` x `m`
/// row-major; with `b = None`, `a @ a.T` computed on one triangle and mirrored when
/// `mirror` (left with only the upper triangle filled otherwise).
pub fn inner_products<T: Real>(
    a: Matrix<'_, T>,
    b: Option<Matrix<'_, T>>,
    mirror: bool,
) -> Result<Vec<f64>, Error> {
    let other = b.unwrap_or(a);
    let bt = Transposed::new(other, |v| v.to_f64())?;
    let m = bt.cols();
    let mut out = try_zeroed::<f64>(checked_len(a.rows(), m, 8)?)?;
    for_each_block(a, &bt, b.is_none(), &mut out, m, |chunk, first, block| {
        for r in 0..block.rows {
            let start = (block.row - first + r) * m + block.col;
            chunk[start..start + block.cols].copy_from_slice(&block.values[r][..block.cols]);
        }
    })?;
    if b.is_none() && mirror {
        crate::matmul::mirror_upper(&mut out, m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{force_path, supported_paths};
    use crate::test_support::{random_matrix, PATH_LOCK};

    fn reference(a: &[f64], b: &[f64], n: usize, m: usize, d: usize) -> Vec<f64> {
        (0..n * m)
            .map(|ij| {
                let (i, j) = (ij / m, ij % m);
                (0..d).fold(0.0f64, |acc, k| a[i * d + k].mul_add(b[j * d + k], acc))
            })
            .collect()
    }

    #[test]
    fn every_path_reproduces_the_sequential_fma_bit_for_bit() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for &(n, d, m) in &[(1, 1, 1), (4, 7, 65), (7, 33, 130), (10, 0, 3), (50, 20, 64)] {
            let a = random_matrix(n, d, 1);
            let b = random_matrix(m, d, 2);
            let expected = reference(&a, &b, n, m, d);
            let self_expected = reference(&a, &a, n, n, d);
            let am = Matrix::contiguous(&a, n, d).unwrap();
            let bm = Matrix::contiguous(&b, m, d).unwrap();
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                let got = inner_products(am, Some(bm), false).unwrap();
                assert!(
                    got.iter().zip(&expected).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{path}"
                );
                let got = inner_products(am, None, true).unwrap();
                // Mirrored entries are the (j, i) sums, equal as reals but not always in bits.
                for i in 0..n {
                    for j in i..n {
                        assert_eq!(got[i * n + j].to_bits(), self_expected[i * n + j].to_bits());
                        assert_eq!(got[j * n + i], got[i * n + j]);
                    }
                }
            }
            force_path(None).unwrap();
        }
    }
}
