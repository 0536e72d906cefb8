//! Products of packed bit matrices by popcount.
//!
//! Everything here reduces to one primitive: for rows `a_i` of `A` and `b_j` of `B`,
//! count the set bits of `a_i XOR b_j` (signs: the ±1 dot product is `K - 2 * count`) or of
//! `a_i AND b_j` (0/1 patterns: the count itself). [`for_each_tile`] computes those counts
//! for tiles of up to [`TILE_ROWS`] rows of `A` by [`TILE_COLS`] rows of `B` and hands each
//! tile to a caller-supplied sink that turns counts into output values, so that signed
//! products, pattern Gram matrices and bit-serial b-bit products share one fast kernel.
//!
//! `B` is first re-laid into panels of [`PANEL_WIDTH`] rows whose words interleave (word
//! `k` of rows `j..j+8` side by side), so one 512-bit load holds word `k` of eight rows and
//! a broadcast word of `a_i` meets all eight at once: no horizontal sums are needed.

use rayon::prelude::*;

use crate::bits::BitMatrix;
use crate::error::{checked_len, try_zeroed, Error};
use crate::parallel;
use crate::simd::{active_path, SimdPath};

/// Rows of `B` per panel: the number of 64-bit lanes in a 512-bit register.
pub const PANEL_WIDTH: usize = 8;
/// Panels per tile.
pub const TILE_PANELS: usize = 3;
/// Columns of a count tile (rows of `B`).
pub const TILE_COLS: usize = PANEL_WIDTH * TILE_PANELS;
/// The most rows of `A` in a count tile: 8 rows x 3 panels = 24 accumulators, which with
/// the three panel registers fits the 32 AVX-512 registers.
pub const TILE_ROWS: usize = 8;

/// The bitwise operation whose popcount is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// `a XOR b`: disagreements between sign vectors.
    Xor,
    /// `a AND b`: coincidences between 0/1 patterns.
    And,
}

/// Word `k` of eight consecutive rows of `B`, aligned for 512-bit loads.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Lanes(pub [u64; PANEL_WIDTH]);

// SAFETY: an array of u64 with no padding (size 64 = alignment 64): zero bytes are valid.
unsafe impl crate::error::Zeroable for Lanes {}

/// `B` re-laid into interleaved panels, padded with zero rows to whole tiles.
pub struct Panels {
    blocks: Vec<Lanes>,
    words: usize,
    rows: usize,
}

impl Panels {
    /// Interleaves the rows of `b`.
    pub fn new(b: BitMatrix<'_>) -> Result<Self, Error> {
        let words = b.used_words();
        let panels = b.rows().div_ceil(TILE_COLS) * TILE_PANELS;
        let mut blocks = try_zeroed::<Lanes>(checked_len(panels, words.max(1), 64)?)?;
        if words > 0 {
            parallel::install(|| {
                blocks.par_chunks_mut(words).enumerate().for_each(|(panel, out)| {
                    for lane in 0..PANEL_WIDTH {
                        let row = panel * PANEL_WIDTH + lane;
                        if row < b.rows() {
                            for (block, &word) in out.iter_mut().zip(b.row(row)) {
                                block.0[lane] = word;
                            }
                        }
                    }
                })
            });
        }
        Ok(Panels { blocks, words, rows: b.rows() })
    }

    /// The blocks of tile column `group`: `TILE_PANELS * words` blocks, panel after panel.
    fn group(&self, group: usize) -> &[Lanes] {
        let len = TILE_PANELS * self.words;
        &self.blocks[group * len..(group + 1) * len]
    }

    fn groups(&self) -> usize {
        self.rows.div_ceil(TILE_COLS)
    }
}

/// Popcounts of one tile: `counts[r][c]` for row `r` of the tile's rows of `A` and
/// row `c` of its columns (rows of `B`).
pub type TileCounts = [[u64; TILE_COLS]; TILE_ROWS];

/// A finished tile, as handed to a sink.
pub struct Tile<'t> {
    /// First output row of the tile.
    pub row: usize,
    /// First output column (row of `B`).
    pub col: usize,
    /// Counts; with `planes` rows of `A` per output row, the row of `A` for output row
    /// `row + i`, plane `p` is `i * planes + p`.
    pub counts: &'t TileCounts,
}

/// Computes every tile of `popcount(A_row combine B_row)` and has `sink` turn each
/// output row of it into values.
///
/// `A` has `planes` consecutive rows per output row; the output is `A.rows() / planes` by
/// `B.rows()`, row-major in `out`. For output row `tile.row + i` of a tile, `sink(tile, i,
/// first, dest)` writes `dest`, the entries from column `tile.col + first` to the tile's
/// last column, from `tile.counts[i * planes + p][first..]` (it may read what `dest`
/// held before).
/// With `symmetric` (for `B = A`), only entries on or above the diagonal are given to
/// the sink, and a blocked pass then copies them below it. (Copying each tile's mirror
/// image as it is made was measured slower: it writes 32-byte pieces all over the lower
/// triangle.)
pub fn for_each_tile<O, S>(
    combine: Combine,
    a: BitMatrix<'_>,
    panels: &Panels,
    planes: usize,
    symmetric: bool,
    out: &mut [O],
    sink: S,
) where
    O: Copy + Send + Sync,
    S: Fn(&Tile<'_>, usize, usize, &mut [O]) + Sync,
{
    let out_cols = panels.rows;
    let out_rows = a.rows() / planes.max(1);
    if out_rows == 0 || out_cols == 0 {
        return;
    }
    assert_eq!(out.len(), out_rows * out_cols, "output buffer of the wrong size");
    assert!(!symmetric || out_rows == out_cols, "a symmetric product is square");
    let path = active_path();
    let rows_per_tile = TILE_ROWS / planes;
    // Every chunk streams all of B's panels once, so chunks should be tall; its rows of A
    // are reused against every panel group, so they should stay in L2 (512 KiB of them);
    // and there should be a few chunks per thread to balance the triangle of a symmetric
    // product.
    let tile_bytes = rows_per_tile * planes * a.stride().max(1) * 8;
    let tiles_for_cache = (512 * 1024 / tile_bytes).max(1);
    let tiles_for_balance = out_rows.div_ceil(rows_per_tile * 4 * parallel::num_threads()).max(1);
    let chunk_rows = rows_per_tile * tiles_for_cache.min(tiles_for_balance);
    // Each row tile sweeps a block of panel groups (~256 KiB of B, kept in L2 for all the
    // row tiles of the chunk) and so writes whole stretches of its output rows in order,
    // rather than 96-byte pieces scattered over the chunk's rows, which would cost a
    // read of every partly written cache line.
    let groups_per_block = (256 * 1024 / (TILE_PANELS * panels.words.max(1) * 64)).max(1);
    let words = panels.words;
    parallel::for_each_row_chunk(out, out_cols, chunk_rows, |first, chunk| {
        let end = first + chunk.len() / out_cols;
        let mut counts: TileCounts = [[0; TILE_COLS]; TILE_ROWS];
        for block in (0..panels.groups()).step_by(groups_per_block) {
            for row in (first..end).step_by(rows_per_tile) {
                let rows = rows_per_tile.min(end - row);
                let mut a_rows: [&[u64]; TILE_ROWS] = [&[]; TILE_ROWS];
                for (r, slot) in a_rows.iter_mut().enumerate().take(rows * planes) {
                    *slot = &a.row(row * planes + r)[..words];
                }
                for group in block..(block + groups_per_block).min(panels.groups()) {
                    let col = group * TILE_COLS;
                    let cols = TILE_COLS.min(out_cols - col);
                    if symmetric && col + cols <= row {
                        continue;
                    }
                    let blocks = panels.group(group);
                    count_tile(path, combine, &a_rows[..rows * planes], blocks, words, &mut counts);
                    let tile = Tile { row, col, counts: &counts };
                    for i in 0..rows {
                        let r = row + i;
                        let skip = if symmetric { r.saturating_sub(col).min(cols) } else { 0 };
                        let start = (r - first) * out_cols + col + skip;
                        sink(&tile, i, skip, &mut chunk[start..start + cols - skip]);
                    }
                }
            }
        }
    });
    if symmetric {
        mirror_upper(out, out_rows);
    }
}

/// Copies the upper triangle of the square row-major `matrix` onto its lower triangle.
pub fn mirror_upper<T: Copy + Send + Sync>(matrix: &mut [T], n: usize) {
    const BLOCK: usize = 64;
    if n < 2 {
        return;
    }
    let base = SharedMut(matrix.as_mut_ptr());
    parallel::install(|| {
        (0..n.div_ceil(BLOCK)).into_par_iter().for_each(|block_row| {
            let base = &base;
            let rows = block_row * BLOCK..((block_row + 1) * BLOCK).min(n);
            // Blocked so that both the rows read and the rows written stay in cache.
            for block_col in 0..=block_row {
                let cols = block_col * BLOCK..((block_col + 1) * BLOCK).min(n);
                for i in rows.clone() {
                    for j in cols.clone().take_while(|&j| j < i) {
                        // SAFETY: i, j < n so both indices are inside the n*n buffer. Each
                        // task writes only (i, j) with j < i in its own rows and reads only
                        // (j, i) with j < i, which no task writes: no data race.
                        unsafe { *base.0.add(i * n + j) = *base.0.add(j * n + i) };
                    }
                }
            }
        })
    });
}

/// A pointer to a buffer shared by tasks that write disjoint entries of it.
struct SharedMut<T>(*mut T);
// SAFETY: used only by `mirror_upper`, whose tasks write disjoint entries (see there), so
// sharing the pointer between threads creates no data race.
unsafe impl<T: Send> Sync for SharedMut<T> {}

/// Dispatches one tile to the kernel of `path` for `rows` rows of `A`.
fn count_tile(
    path: SimdPath,
    combine: Combine,
    a_rows: &[&[u64]],
    blocks: &[Lanes],
    words: usize,
    counts: &mut TileCounts,
) {
    macro_rules! by_rows {
        ($kernel:ident) => {
            match (a_rows.len(), combine) {
                (1, Combine::Xor) => $kernel::<1, false>(a_rows, blocks, words, counts),
                (2, Combine::Xor) => $kernel::<2, false>(a_rows, blocks, words, counts),
                (3, Combine::Xor) => $kernel::<3, false>(a_rows, blocks, words, counts),
                (4, Combine::Xor) => $kernel::<4, false>(a_rows, blocks, words, counts),
                (5, Combine::Xor) => $kernel::<5, false>(a_rows, blocks, words, counts),
                (6, Combine::Xor) => $kernel::<6, false>(a_rows, blocks, words, counts),
                (7, Combine::Xor) => $kernel::<7, false>(a_rows, blocks, words, counts),
                (8, Combine::Xor) => $kernel::<8, false>(a_rows, blocks, words, counts),
                (1, Combine::And) => $kernel::<1, true>(a_rows, blocks, words, counts),
                (2, Combine::And) => $kernel::<2, true>(a_rows, blocks, words, counts),
                (3, Combine::And) => $kernel::<3, true>(a_rows, blocks, words, counts),
                (4, Combine::And) => $kernel::<4, true>(a_rows, blocks, words, counts),
                (5, Combine::And) => $kernel::<5, true>(a_rows, blocks, words, counts),
                (6, Combine::And) => $kernel::<6, true>(a_rows, blocks, words, counts),
                (7, Combine::And) => $kernel::<7, true>(a_rows, blocks, words, counts),
                (8, Combine::And) => $kernel::<8, true>(a_rows, blocks, words, counts),
                (rows, _) => unreachable!("tiles have 1 to {TILE_ROWS} rows, not {rows}"),
            }
        };
    }
    debug_assert!(a_rows.iter().all(|row| row.len() == words));
    debug_assert_eq!(blocks.len(), TILE_PANELS * words);
    match path {
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx512 => {
            use x86::tile_avx512 as kernel;
            // SAFETY: `active_path` only returns paths the CPU supports, and the slices
            // have the lengths the kernel reads (checked above in debug builds, guaranteed
            // by `for_each_tile`).
            unsafe { by_rows!(kernel) }
        }
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx2 => {
            use x86::tile_avx2 as kernel;
            // SAFETY: as above.
            unsafe { by_rows!(kernel) }
        }
        _ => by_rows!(tile_portable),
    }
}

fn tile_portable<const ROWS: usize, const AND: bool>(
    a_rows: &[&[u64]],
    blocks: &[Lanes],
    words: usize,
    counts: &mut TileCounts,
) {
    for (r, a_row) in a_rows.iter().enumerate().take(ROWS) {
        for panel in 0..TILE_PANELS {
            let panel_blocks = &blocks[panel * words..(panel + 1) * words];
            let mut lanes = [0u64; PANEL_WIDTH];
            for (&a_word, block) in a_row.iter().zip(panel_blocks) {
                for (lane, &b_word) in lanes.iter_mut().zip(&block.0) {
                    let combined = if AND { a_word & b_word } else { a_word ^ b_word };
                    *lane += u64::from(combined.count_ones());
                }
            }
            counts[r][panel * PANEL_WIDTH..(panel + 1) * PANEL_WIDTH].copy_from_slice(&lanes);
        }
    }
}

#[cfg(target_arch = "x86_64")]
// Register arrays are indexed by lane and row: clearer than iterator chains here.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Lanes, TileCounts, PANEL_WIDTH, TILE_PANELS};

    /// The AVX-512 tile: per word `k`, three 512-bit panel loads, then for each row of `A`
    /// one broadcast and three XOR/AND + VPOPCNTQ + add. All 24 accumulators stay in
    /// registers for the whole `k` loop.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and VPOPCNTDQ; `a_rows` holds `ROWS` rows of
    /// `words` words and `blocks` holds `TILE_PANELS * words` blocks.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn tile_avx512<const ROWS: usize, const AND: bool>(
        a_rows: &[&[u64]],
        blocks: &[Lanes],
        words: usize,
        counts: &mut TileCounts,
    ) {
        let a: [*const u64; ROWS] = std::array::from_fn(|r| a_rows[r].as_ptr());
        let b = blocks.as_ptr().cast::<__m512i>();
        let mut acc = [[_mm512_setzero_si512(); TILE_PANELS]; ROWS];
        for k in 0..words {
            // SAFETY: k < words, so block `panel * words + k` is inside `blocks`, and
            // `Lanes` is 64-byte aligned as the aligned load requires.
            let panel: [__m512i; TILE_PANELS] =
                std::array::from_fn(|p| _mm512_load_si512(b.add(p * words + k)));
            for r in 0..ROWS {
                // SAFETY: k < words = the length of every row in `a_rows`.
                let word = _mm512_set1_epi64(*a[r].add(k) as i64);
                for p in 0..TILE_PANELS {
                    let combined = if AND {
                        _mm512_and_si512(word, panel[p])
                    } else {
                        _mm512_xor_si512(word, panel[p])
                    };
                    acc[r][p] = _mm512_add_epi64(acc[r][p], _mm512_popcnt_epi64(combined));
                }
            }
        }
        for r in 0..ROWS {
            for p in 0..TILE_PANELS {
                // SAFETY: counts[r] has TILE_PANELS * PANEL_WIDTH u64s; this writes 8 of them.
                _mm512_storeu_si512(counts[r][p * PANEL_WIDTH..].as_mut_ptr().cast(), acc[r][p]);
            }
        }
    }

    /// Byte-wise popcount of 256 bits by two 16-entry table lookups (Mula's method).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn popcount_bytes(x: __m256i, table: __m256i, low_nibbles: __m256i) -> __m256i {
        let low = _mm256_and_si256(x, low_nibbles);
        let high = _mm256_and_si256(_mm256_srli_epi16::<4>(x), low_nibbles);
        _mm256_add_epi8(_mm256_shuffle_epi8(table, low), _mm256_shuffle_epi8(table, high))
    }

    /// The AVX2 tile: AVX2 has no vector popcount and only 16 registers, so each panel is
    /// taken separately, two rows of `A` at a time, with byte counters that are widened
    /// to 64 bits (`vpsadbw`) before they can overflow.
    ///
    /// # Safety
    /// The CPU must support AVX2; slice lengths as for [`tile_avx512`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn tile_avx2<const ROWS: usize, const AND: bool>(
        a_rows: &[&[u64]],
        blocks: &[Lanes],
        words: usize,
        counts: &mut TileCounts,
    ) {
        for panel in 0..TILE_PANELS {
            let panel_blocks = &blocks[panel * words..(panel + 1) * words];
            let mut r = 0;
            while r + 2 <= ROWS {
                avx2_rows::<2, AND>(
                    [a_rows[r], a_rows[r + 1]],
                    panel_blocks,
                    &mut counts[r..r + 2],
                    panel,
                );
                r += 2;
            }
            if r < ROWS {
                avx2_rows::<1, AND>([a_rows[r]], panel_blocks, &mut counts[r..r + 1], panel);
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn avx2_rows<const R: usize, const AND: bool>(
        a_rows: [&[u64]; R],
        panel_blocks: &[Lanes],
        counts: &mut [[u64; super::TILE_COLS]],
        panel: usize,
    ) {
        // A byte counter gains at most 8 per word, so 31 words fit below 256.
        const WORDS_PER_FLUSH: usize = 31;
        let table = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, //
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        );
        let low_nibbles = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let mut wide = [[zero; 2]; R];
        let words = panel_blocks.len();
        let mut start = 0;
        while start < words {
            let end = (start + WORDS_PER_FLUSH).min(words);
            let mut narrow = [[zero; 2]; R];
            for k in start..end {
                let block = panel_blocks[k].0.as_ptr().cast::<__m256i>();
                // SAFETY: a block is 8 u64 = two 256-bit halves, 64-byte aligned.
                let halves = unsafe { [_mm256_load_si256(block), _mm256_load_si256(block.add(1))] };
                for r in 0..R {
                    let word = _mm256_set1_epi64x(a_rows[r][k] as i64);
                    for h in 0..2 {
                        let combined = if AND {
                            _mm256_and_si256(word, halves[h])
                        } else {
                            _mm256_xor_si256(word, halves[h])
                        };
                        narrow[r][h] = _mm256_add_epi8(
                            narrow[r][h],
                            popcount_bytes(combined, table, low_nibbles),
                        );
                    }
                }
            }
            for r in 0..R {
                for h in 0..2 {
                    wide[r][h] = _mm256_add_epi64(wide[r][h], _mm256_sad_epu8(narrow[r][h], zero));
                }
            }
            start = end;
        }
        for r in 0..R {
            for h in 0..2 {
                let out =
                    &mut counts[r][panel * PANEL_WIDTH + 4 * h..panel * PANEL_WIDTH + 4 * h + 4];
                // SAFETY: `out` is exactly four u64s.
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), wide[r][h]) };
            }
        }
    }
}

fn check_inner(what: &'static str, a: BitMatrix<'_>, b: BitMatrix<'_>) -> Result<usize, Error> {
    if a.cols() != b.cols() {
        return Err(Error::DimensionMismatch { what, left: a.cols(), right: b.cols() });
    }
    if a.cols() > i32::MAX as usize {
        return Err(Error::OutOfRange(format!(
            "{} columns do not fit the int32 result (at most {})",
            a.cols(),
            i32::MAX
        )));
    }
    Ok(a.cols())
}

/// The exact ±1 product `sign(A) @ sign(B).T` of two packed sign matrices:
/// `out[i * m + j] = cols - 2 * popcount(a_i XOR b_j)`, an `n` x `m` row-major matrix.
pub fn sign_product(a: BitMatrix<'_>, b: BitMatrix<'_>) -> Result<Vec<i32>, Error> {
    let cols = check_inner("columns of the two sign matrices", a, b)? as i64;
    let m = b.rows();
    let mut out = try_zeroed::<i32>(checked_len(a.rows(), m, 4)?)?;
    let panels = Panels::new(b)?;
    for_each_tile(Combine::Xor, a, &panels, 1, false, &mut out, |tile, i, skip, dest| {
        for (value, &count) in dest.iter_mut().zip(&tile.counts[i][skip..]) {
            // |cols - 2 count| <= cols <= i32::MAX, checked above.
            *value = (cols - 2 * count as i64) as i32;
        }
    });
    Ok(out)
}

/// Coincidence counts `popcount(p_i AND q_j)` of two packed 0/1 matrices, `n` x `m`.
///
/// With `q = None` the product of `p` with itself is computed on one triangle and
/// mirrored.
pub fn and_counts(p: BitMatrix<'_>, q: Option<BitMatrix<'_>>) -> Result<Vec<i32>, Error> {
    let other = q.unwrap_or(p);
    check_inner("columns of the two pattern matrices", p, other)?;
    let m = other.rows();
    let mut out = try_zeroed::<i32>(checked_len(p.rows(), m, 4)?)?;
    let panels = Panels::new(other)?;
    for_each_tile(Combine::And, p, &panels, 1, q.is_none(), &mut out, |tile, i, skip, dest| {
        for (value, &count) in dest.iter_mut().zip(&tile.counts[i][skip..]) {
            *value = count as i32;
        }
    });
    Ok(out)
}

/// Integer rows written as signed sums of bit planes: `q = offset + sum_p weights[p] * bit_p`.
pub struct PlaneEncoding<'a> {
    /// `rows * planes` rows: row `i * planes + p` is plane `p` of integer row `i`.
    pub planes: BitMatrix<'a>,
    /// Weight of each plane (`2^p`, and `-2^(b-1)` for the sign plane of two's complement).
    pub weights: &'a [i64],
    /// Added to every entry (two's complement: 0; ±1 values as one plane: -1).
    pub offset: i64,
}

/// The exact integer product `Q @ sign(W).T` of integer rows given as bit planes and a
/// packed sign matrix, computed plane by plane with AND-popcount, each row then
/// multiplied by `row_scales[i]` and converted by `convert`.
///
/// With `t_j` the sign bits of `w_j` (1 for +1), `sum_k q_k w_k` equals
/// `sum_p weights[p] * (2 popcount(plane_p AND t_j) - popcount(plane_p))
///  + offset * (2 popcount(t_j) - cols)`.
pub fn bit_serial_product<T: crate::error::Zeroable + Send + Sync>(
    encoding: &PlaneEncoding<'_>,
    w: BitMatrix<'_>,
    row_scales: &[f64],
    convert: impl Fn(f64) -> T + Sync,
) -> Result<Vec<T>, Error> {
    let planes = encoding.weights.len();
    let cols =
        check_inner("columns of the activations and the weights", encoding.planes, w)? as i64;
    if planes == 0 || planes > TILE_ROWS || !encoding.planes.rows().is_multiple_of(planes) {
        return Err(Error::InvalidLayout(format!(
            "{} plane rows cannot hold whole rows of {planes} planes",
            encoding.planes.rows()
        )));
    }
    let n = encoding.planes.rows() / planes;
    if row_scales.len() != n {
        return Err(Error::DimensionMismatch {
            what: "rows and row scales",
            left: n,
            right: row_scales.len(),
        });
    }
    let m = w.rows();
    let mut out = try_zeroed::<T>(checked_len(n, m, std::mem::size_of::<T>())?)?;
    // sum_k q_k w_k = 2 sum_p weight_p popcount(plane_p AND t) + row term + column term:
    // the last two do not depend on the pair, so they are computed once here.
    let plane_popcounts = encoding.planes.row_popcounts();
    let row_terms: Vec<i64> = plane_popcounts
        .chunks_exact(planes)
        .map(|ones| {
            -ones.iter().zip(encoding.weights).map(|(&o, &wp)| wp * i64::from(o)).sum::<i64>()
        })
        .collect();
    let column_terms: Vec<i64> = w
        .row_popcounts()
        .into_iter()
        .map(|ones| encoding.offset * (2 * i64::from(ones) - cols))
        .collect();
    let panels = Panels::new(w)?;
    let weights = encoding.weights;
    for_each_tile(
        Combine::And,
        encoding.planes,
        &panels,
        planes,
        false,
        &mut out,
        |tile, i, skip, dest| {
            let row = tile.row + i;
            // Plane by plane over the tile's columns, so the sum vectorises.
            let mut weighted = [0i64; TILE_COLS];
            for (p, &weight) in weights.iter().enumerate() {
                for (sum, &count) in weighted.iter_mut().zip(&tile.counts[i * planes + p]) {
                    *sum += weight * count as i64;
                }
            }
            let columns = &column_terms[tile.col + skip..];
            for ((value, &sum), &column) in dest.iter_mut().zip(&weighted[skip..]).zip(columns) {
                *value = convert((2 * sum + row_terms[row] + column) as f64 * row_scales[row]);
            }
        },
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::{pack_signs, Matrix, PackedBits};
    use crate::simd::{force_path, supported_paths};
    use crate::test_support::{random_matrix, SplitMix, PATH_LOCK};

    fn packed(rows: usize, cols: usize, seed: u64) -> (Vec<f64>, PackedBits) {
        let data = random_matrix(rows, cols, seed);
        let bits = pack_signs(Matrix::contiguous(&data, rows, cols).unwrap()).unwrap();
        (data, bits)
    }

    fn sign(x: f64) -> i64 {
        if x >= 0.0 {
            1
        } else {
            -1
        }
    }

    const SHAPES: [(usize, usize, usize); 9] = [
        (1, 1, 1),
        (1, 64, 1),
        (3, 63, 5),
        (9, 65, 25),
        (17, 130, 23),
        (8, 512, 48),
        (33, 1000, 70),
        (2, 5000, 3),
        (0, 10, 4),
    ];

    #[test]
    fn sign_product_matches_the_reference_on_every_path() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for (n, k, m) in SHAPES {
            let (a, pa) = packed(n, k, 1 + k as u64);
            let (b, pb) = packed(m, k, 2 + k as u64);
            let expected: Vec<i32> = (0..n)
                .flat_map(|i| {
                    let (a, b) = (&a, &b);
                    (0..m).map(move |j| {
                        (0..k).map(|t| sign(a[i * k + t]) * sign(b[j * k + t])).sum::<i64>() as i32
                    })
                })
                .collect();
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                assert_eq!(
                    sign_product(pa.view(), pb.view()).unwrap(),
                    expected,
                    "{path} {n}x{k}x{m}"
                );
            }
            force_path(None).unwrap();
        }
    }

    #[test]
    fn and_counts_match_the_reference_with_and_without_symmetry() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for (n, k, m) in SHAPES {
            let (p, pp) = packed(n, k, 3 + k as u64);
            let (q, pq) = packed(m, k, 4 + k as u64);
            let count = |x: &[f64], y: &[f64]| {
                x.iter().zip(y).filter(|(a, b)| **a >= 0.0 && **b >= 0.0).count() as i32
            };
            let cross: Vec<i32> = (0..n)
                .flat_map(|i| (0..m).map(move |j| (i, j)))
                .map(|(i, j)| count(&p[i * k..(i + 1) * k], &q[j * k..(j + 1) * k]))
                .collect();
            let gram: Vec<i32> = (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| count(&p[i * k..(i + 1) * k], &p[j * k..(j + 1) * k]))
                .collect();
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                assert_eq!(and_counts(pp.view(), Some(pq.view())).unwrap(), cross, "{path}");
                assert_eq!(and_counts(pp.view(), None).unwrap(), gram, "{path}");
            }
            force_path(None).unwrap();
        }
    }

    #[test]
    fn symmetric_counts_cover_many_tiles() {
        // Large enough for several chunks and tiles, with ragged edges.
        let (_, pp) = packed(301, 200, 8);
        let full = and_counts(pp.view(), Some(pp.view())).unwrap();
        assert_eq!(and_counts(pp.view(), None).unwrap(), full);
    }

    #[test]
    fn bit_serial_product_is_the_integer_product() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut rng = SplitMix::new(77);
        for bits in 1..=8usize {
            let (n, k, m) = (11, 150, 29);
            let (lo, hi) = if bits == 1 {
                (-1i64, 1i64)
            } else {
                (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
            };
            let values: Vec<i64> = (0..n * k)
                .map(|_| {
                    let v = lo + (rng.next_u64() % (hi - lo + 1) as u64) as i64;
                    if bits == 1 && v == 0 {
                        1
                    } else {
                        v
                    }
                })
                .collect();
            let (weights, offset): (Vec<i64>, i64) = if bits == 1 {
                (vec![2], -1)
            } else {
                (
                    (0..bits)
                        .map(|p| if p == bits - 1 { -(1i64 << p) } else { 1i64 << p })
                        .collect(),
                    0,
                )
            };
            let mut planes = PackedBits::zeros(n * bits, k).unwrap();
            let stride = planes.stride();
            let mut words = planes.clone().into_words();
            for i in 0..n {
                for p in 0..bits {
                    for t in 0..k {
                        let v = values[i * k + t];
                        let bit = if bits == 1 { v > 0 } else { (v as u8 >> p) & 1 == 1 };
                        words[(i * bits + p) * stride + t / 64] |= u64::from(bit) << (t % 64);
                    }
                }
            }
            planes = PackedBits::zeros(n * bits, k).unwrap();
            let view = BitMatrix::new(&words, planes.rows(), k, stride).unwrap();
            let (w, pw) = packed(m, k, 99);
            let scales: Vec<f64> = (0..n).map(|i| 0.5 + i as f64).collect();
            let expected: Vec<f64> = (0..n)
                .flat_map(|i| (0..m).map(move |j| (i, j)))
                .map(|(i, j)| {
                    (0..k).map(|t| values[i * k + t] * sign(w[j * k + t])).sum::<i64>() as f64
                        * scales[i]
                })
                .collect();
            let encoding = PlaneEncoding { planes: view, weights: &weights, offset };
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                let got = bit_serial_product(&encoding, pw.view(), &scales, |v| v).unwrap();
                assert_eq!(got, expected, "{bits} bits on {path}");
            }
            force_path(None).unwrap();
        }
    }

    #[test]
    fn mismatched_inner_dimensions_are_errors() {
        let (_, a) = packed(2, 10, 1);
        let (_, b) = packed(2, 11, 2);
        assert!(matches!(sign_product(a.view(), b.view()), Err(Error::DimensionMismatch { .. })));
        assert!(matches!(
            and_counts(a.view(), Some(b.view())),
            Err(Error::DimensionMismatch { .. })
        ));
    }
}
