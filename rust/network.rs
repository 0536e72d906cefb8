//! Forward and backward passes of the two-layer ReLU network, fused.
//!
//! For inputs `x_i` (rows of `X`, n x d), effective hidden weights `v_r` (rows of `V`,
//! m x d, already quantised by the caller), output weights `A` (m x k), targets `Y`
//! (n x k) and the output scale `s`:
//!
//! ```text
//! pre[i,r] = hidden_scale * <v_r, x_i>     active[i,r] = pre[i,r] >= 0
//! F[i,c]   = s * sum_r A[r,c] * relu(pre[i,r])          R = F - Y
//! loss     = 1/(2n) * sum_{i,c} R[i,c]^2
//! grad_hidden[r,:] = (s/n) * sum_i active[i,r] * (sum_c R[i,c] A[r,c]) * x_i
//! grad_output[r,c] = (s/n) * sum_i R[i,c] * relu(pre[i,r])
//! ```
//!
//! No n x m matrix is ever stored: a first pass over blocks of [`PANEL`] samples computes
//! pre-activations in registers and keeps only their signs (one bit per sample and
//! neuron) and the outputs; a second pass over blocks of neurons sums the gradients,
//! skipping inactive samples. The orders of operations are fixed, so that every SIMD path
//! and every thread count give the same bits:
//!
//! - `<v_r, x_i>` is `fma(v_rj, x_ij, acc)` for j = 0, 1, ... from `+0.0`, as in
//!   [`crate::dense`]; then multiplied by `hidden_scale`. `relu(z)` is `z` when `z >= 0`
//!   and `+0.0` otherwise.
//! - The sum over neurons is cut into chunks of [`NEURON_CHUNK`] neurons; each chunk is
//!   `fma(A[r,c], relu(pre[i,r]), acc)` for r in order from `+0.0`, and the chunk sums
//!   are added left to right. Only `m` decides the chunks, so the outputs of one sample
//!   do not depend on which other samples are passed with it.
//! - `loss` is `fma(R, R, acc)` over R in row-major order, divided by `2n`.
//! - `grad_hidden[r,j]` is `fma(c_ir, x_ij, acc)` for i = 0, 1, ... from `+0.0`, with
//!   `c_ir = fma(R[i,k-1], A[r,k-1], ... fma(R[i,0], A[r,0], +0.0))` for active `(i, r)`
//!   and `0` otherwise. Adding `0 * x` to a sum that started at `+0.0` never changes it,
//!   so skipping inactive samples gives these very bits.
//! - `grad_output[r,c]` sums `fma(R[i,c], relu(pre[i,r]), acc)` in eight partial sums,
//!   sample `i` going to partial `i % 8` in order of `i`, then adds the partials as
//!   `((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))`.
//!
//! The gradients are finally multiplied by `s / n`.

use rayon::prelude::*;

use crate::bits::{BitMatrix, Matrix, WORD_BITS};
use crate::error::{checked_len, try_zeroed, Error, Zeroable};
use crate::parallel;
use crate::simd::{active_path, SimdPath};

/// Samples per block of the forward pass: one word of activation bits per neuron.
pub const PANEL: usize = WORD_BITS;
/// Neurons whose contributions to an output are summed before being added to the rest.
pub const NEURON_CHUNK: usize = 1024;
/// Neurons per call of the pre-activation kernel: 2 neurons x 8 vectors of 8 samples =
/// 16 AVX-512 accumulators, as in [`crate::dense`].
const GROUP: usize = 2;
/// Blocks of samples the forward pass transposes and sums at a time, which bounds its
/// working memory whatever the number of samples.
const BATCH_PANELS: usize = 64;
/// The most neurons per task of the backward pass. A task reads every sample once per
/// block of samples, so the more neurons share that read the better, as long as their
/// gradient rows (128 x 64 features = 64 KiB) stay in L2 beside the block.
const BACKWARD_NEURONS: usize = 128;
/// Lanes of the partial sums of the output-layer gradient.
const LANES: usize = 8;
/// Neurons whose hidden-weight gradients are summed together over one block of samples:
/// with few features a neuron's sum is a short chain of dependent FMAs, and several
/// neurons side by side keep the FMA units busy while sharing the loads of the samples.
const HIDDEN_GROUP: usize = 8;

/// Eight values on a 64-byte boundary. Buffers of them keep every 512-bit load of the
/// kernels inside one cache line: a load across two lines costs two, which cost the
/// pre-activation kernel a quarter of its speed when measured.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([f64; 8]);

// SAFETY: an array of f64 with no padding (size 64 = alignment 64): zero bytes are valid.
unsafe impl Zeroable for Line {}

/// A zero-filled buffer of f64 that starts on a cache line.
struct Aligned {
    lines: Vec<Line>,
    len: usize,
}

impl Aligned {
    /// `len` zeros, or [`Error::TooLarge`].
    fn zeroed(len: usize) -> Result<Self, Error> {
        Ok(Aligned { lines: try_zeroed(len.div_ceil(8))?, len })
    }
}

impl std::ops::Deref for Aligned {
    type Target = [f64];

    fn deref(&self) -> &[f64] {
        // SAFETY: a `Line` is 8 f64 with no padding, so the `lines` hold `8 * lines.len()`
        // >= `len` contiguous initialised f64, borrowed here as long as `self` is.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f64>(), self.len) }
    }
}

impl std::ops::DerefMut for Aligned {
    fn deref_mut(&mut self) -> &mut [f64] {
        // SAFETY: as in `deref`, borrowed mutably as long as `self` is.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f64>(), self.len) }
    }
}

/// `R` rows of PANEL values, each on a cache line (see [`Line`]).
#[repr(C, align(64))]
struct Rows<const R: usize>([[f64; PANEL]; R]);

impl<const R: usize> Rows<R> {
    fn zeros() -> Self {
        Rows([[0.0; PANEL]; R])
    }
}

/// `data` cut into consecutive slices of the given lengths, each cut short where `data`
/// ends: the disjoint outputs of parallel tasks.
fn split_lengths<T>(mut data: &mut [T], lengths: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    lengths
        .map(|len| {
            let len = len.min(data.len());
            let (part, rest) = std::mem::take(&mut data).split_at_mut(len);
            data = rest;
            part
        })
        .collect()
}

/// Hidden weights as the forward pass reads them.
#[derive(Clone, Copy, Debug)]
pub enum Hidden<'a> {
    /// Real weights, one neuron per row.
    Dense(Matrix<'a, f64>),
    /// Packed signs, one neuron per row: a set bit is +1, a clear bit -1.
    Signs(BitMatrix<'a>),
    /// Latent real weights, binarised as they are read: `scale * sign(w - offset)` with
    /// sign(0) = +1 (BitNet's quantiser; the plain sign with offset 0 and scale 1). The
    /// values equal those of the quantised matrix passed as `Dense`, so the results have
    /// the same bits, without the caller writing that matrix at every step.
    Binarized { latent: Matrix<'a, f64>, offset: f64, scale: f64 },
}

impl Hidden<'_> {
    /// Neurons.
    pub fn rows(&self) -> usize {
        match self {
            Hidden::Dense(v) | Hidden::Binarized { latent: v, .. } => v.rows(),
            Hidden::Signs(bits) => bits.rows(),
        }
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        match self {
            Hidden::Dense(v) | Hidden::Binarized { latent: v, .. } => v.cols(),
            Hidden::Signs(bits) => bits.cols(),
        }
    }
}

/// A two-layer network: `f(x) = scale * sum_r output[r] * relu(hidden_scale * <v_r, x>)`.
#[derive(Clone, Copy, Debug)]
pub struct Network<'a> {
    pub hidden: Hidden<'a>,
    /// Multiplies every pre-activation (e.g. BitNet's `beta` for packed signs).
    pub hidden_scale: f64,
    /// Output weights, m x k.
    pub output: Matrix<'a, f64>,
    /// The output scale, `kappa / sqrt(m)`.
    pub scale: f64,
}

impl Network<'_> {
    fn check(&self, x: &Matrix<'_, f64>) -> Result<(), Error> {
        if x.cols() != self.hidden.cols() {
            return Err(Error::DimensionMismatch {
                what: "columns of hidden and X",
                left: self.hidden.cols(),
                right: x.cols(),
            });
        }
        if self.output.rows() != self.hidden.rows() {
            return Err(Error::DimensionMismatch {
                what: "rows of output and hidden",
                left: self.output.rows(),
                right: self.hidden.rows(),
            });
        }
        let mut scalars = vec![("scale", self.scale), ("hidden_scale", self.hidden_scale)];
        if let Hidden::Binarized { offset, scale, .. } = self.hidden {
            scalars.extend([("binarize offset", offset), ("binarize scale", scale)]);
        }
        for (name, value) in scalars {
            if !value.is_finite() {
                return Err(Error::OutOfRange(format!("{name} must be finite, got {value}")));
            }
        }
        Ok(())
    }
}

/// What one training step computes.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Network outputs, n x k row-major.
    pub outputs: Vec<f64>,
    pub loss: f64,
    /// Gradient of the loss with respect to the effective hidden weights, m x d.
    pub grad_hidden: Vec<f64>,
    /// Gradient with respect to the output weights, m x k, when asked for.
    pub grad_output: Option<Vec<f64>>,
}

/// The network's outputs on the rows of `x`, n x k row-major.
///
/// Works on a few thousand samples at a time, so beyond the result it needs little
/// memory whatever `n` and the width: no n x m matrix is formed.
pub fn outputs(x: Matrix<'_, f64>, net: &Network<'_>) -> Result<Vec<f64>, Error> {
    net.check(&x)?;
    let mut sums = try_zeroed::<f64>(checked_len(x.rows(), net.output.cols(), 8)?)?;
    forward(x, net, &mut sums, None)?;
    for value in &mut sums {
        *value *= net.scale;
    }
    Ok(sums)
}

/// One gradient step's worth of work: outputs, loss and gradients of the network
/// `f(x) = scale * sum_r output[r] * relu(<hidden[r], x>)` on the rows of `x` against the
/// targets `y` (see the module documentation).
pub fn train_step(
    x: Matrix<'_, f64>,
    y: Matrix<'_, f64>,
    hidden: Hidden<'_>,
    output: Matrix<'_, f64>,
    scale: f64,
    output_grad: bool,
) -> Result<Step, Error> {
    let net = Network { hidden, hidden_scale: 1.0, output, scale };
    net.check(&x)?;
    let (n, m, k) = (x.rows(), hidden.rows(), output.cols());
    if y.rows() != n {
        return Err(Error::DimensionMismatch { what: "rows of Y and X", left: y.rows(), right: n });
    }
    if y.cols() != k {
        return Err(Error::DimensionMismatch {
            what: "columns of Y and output",
            left: y.cols(),
            right: k,
        });
    }
    if n == 0 {
        return Err(Error::OutOfRange("the loss needs at least one sample (row of X)".into()));
    }
    let panels = n.div_ceil(PANEL);
    let mut outputs = try_zeroed::<f64>(checked_len(n, k, 8)?)?;
    let mut pattern = try_zeroed::<u64>(checked_len(panels, m, 8)?)?;
    forward(x, &net, &mut outputs, Some(&mut pattern))?;

    // Residuals, transposed into blocks of PANEL samples (zero past `n`) for the
    // coefficients of the backward pass.
    let mut residuals = Aligned::zeroed(checked_len(panels * PANEL, k, 8)?)?;
    let mut total = 0.0f64;
    for i in 0..n {
        for c in 0..k {
            let value = &mut outputs[i * k + c];
            *value *= scale;
            let r = *value - y.row(i)[c];
            total = r.mul_add(r, total);
            residuals[(i / PANEL * k + c) * PANEL + i % PANEL] = r;
        }
    }
    let loss = total / (2.0 * n as f64);
    let (grad_hidden, grad_output) = backward(
        &Backward {
            x,
            hidden,
            output,
            pattern: &pattern,
            residuals: &residuals,
            factor: scale / n as f64,
            output_grad,
        },
        active_path(),
    )?;
    Ok(Step { outputs, loss, grad_hidden, grad_output })
}

/// Rows `first * PANEL ..` of `x`, `count` blocks of PANEL samples (zero past the last
/// row), each stored as `d` rows of PANEL values: a row of a block is one feature of
/// PANEL samples, a vector load of the kernels.
fn transpose_blocks(x: Matrix<'_, f64>, first: usize, count: usize) -> Result<Aligned, Error> {
    let d = x.cols();
    let mut out = Aligned::zeroed(checked_len(count * PANEL, d, 8)?)?;
    if d == 0 {
        return Ok(out);
    }
    parallel::install(|| {
        out.par_chunks_mut(d * PANEL).enumerate().for_each(|(block, values)| {
            let start = (first + block) * PANEL;
            for lane in 0..PANEL.min(x.rows().saturating_sub(start)) {
                for (j, &value) in x.row(start + lane).iter().enumerate() {
                    values[j * PANEL + lane] = value;
                }
            }
        })
    });
    Ok(out)
}

/// The forward pass: the neuron sums (not yet multiplied by `scale`) of every sample into
/// `sums` (n x k) and, with `pattern`, the activation bits of block of samples `b` and
/// neuron `r` at word `b * m + r`.
///
/// Works on [`BATCH_PANELS`] blocks of samples at a time, so that beyond its results it
/// needs memory for a few thousand samples only, whatever `n` and the width.
fn forward(
    x: Matrix<'_, f64>,
    net: &Network<'_>,
    sums: &mut [f64],
    mut pattern: Option<&mut [u64]>,
) -> Result<(), Error> {
    let (n, m, k) = (x.rows(), net.hidden.rows(), net.output.cols());
    if m == 0 {
        return Ok(());
    }
    let panels = n.div_ceil(PANEL);
    for first in (0..panels).step_by(BATCH_PANELS) {
        let count = BATCH_PANELS.min(panels - first);
        let rows = first * PANEL..n.min((first + count) * PANEL);
        let words = pattern.as_deref_mut().map(|words| &mut words[first * m..(first + count) * m]);
        forward_batch(x, net, first, count, &mut sums[rows.start * k..rows.end * k], words)?;
    }
    Ok(())
}

/// [`forward`] for `count` blocks of samples from block `first`; `sums` and `pattern`
/// hold those blocks' rows only.
fn forward_batch(
    x: Matrix<'_, f64>,
    net: &Network<'_>,
    first: usize,
    count: usize,
    sums: &mut [f64],
    pattern: Option<&mut [u64]>,
) -> Result<(), Error> {
    let (n, d, m, k) = (x.rows(), x.cols(), net.hidden.rows(), net.output.cols());
    let path = active_path();
    let blocks = transpose_blocks(x, first, count)?;
    let chunks = m.div_ceil(NEURON_CHUNK);
    let neurons = |q: usize| q * NEURON_CHUNK..m.min((q + 1) * NEURON_CHUNK);
    // Each task is one block of samples against one chunk of neurons, writing that
    // chunk's activation words (if kept) and returning its sums, which are put together
    // below in task order: the threads that ran the tasks do not matter.
    let lengths = (0..count).flat_map(|_| (0..chunks).map(|q| neurons(q).len()));
    let words = split_lengths(pattern.unwrap_or_default(), lengths);
    let results: Vec<Aligned> = parallel::install(|| {
        words
            .into_par_iter()
            .enumerate()
            .map(|(task, words)| {
                let (b, q) = (task / chunks, task % chunks);
                let valid = PANEL.min(n - (first + b) * PANEL);
                let block = &blocks[b * d * PANEL..(b + 1) * d * PANEL];
                forward_task(path, block, net, neurons(q), valid, words)
            })
            .collect::<Result<_, _>>()
    })?;
    for (b, block_results) in results.chunks(chunks).enumerate() {
        let start = b * PANEL;
        let valid = PANEL.min(n - (first * PANEL + start));
        for lane in 0..valid {
            for c in 0..k {
                let mut sum = block_results[0][c * PANEL + lane];
                for partial in &block_results[1..] {
                    sum += partial[c * PANEL + lane];
                }
                sums[(start + lane) * k + c] = sum;
            }
        }
    }
    Ok(())
}

/// One block of samples (`valid` of its PANEL lanes are real) against the neurons
/// `neurons`: their sums, `k` rows of PANEL lanes, and their words of activation bits
/// into `words` unless it is empty (not kept).
fn forward_task(
    path: SimdPath,
    block: &[f64],
    net: &Network<'_>,
    neurons: std::ops::Range<usize>,
    valid: usize,
    words: &mut [u64],
) -> Result<Aligned, Error> {
    let k = net.output.cols();
    let d = net.hidden.cols();
    let mut sums = Aligned::zeroed(k * PANEL)?;
    let valid_bits = if valid == PANEL { u64::MAX } else { (1u64 << valid) - 1 };
    let mut decoded = vec![0.0f64; GROUP * d.next_multiple_of(8)];
    let mut relu = Rows::<GROUP>::zeros();
    let mut signs = [0u64; GROUP];
    for r in neurons.clone().step_by(GROUP) {
        let here = GROUP.min(neurons.end - r);
        let rows = neuron_rows(path, &net.hidden, r, here, &mut decoded);
        let a: [&[f64]; GROUP] = std::array::from_fn(|g| net.output.row(r + g.min(here - 1)));
        match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `active_path` returns only supported paths; rows have `d` entries,
            // `block` `d` rows of PANEL values, `a` rows `k` entries and `sums` `k` rows
            // of PANEL values, all the kernel reads or writes.
            SimdPath::Avx512 => unsafe {
                x86::forward_avx512(
                    valid,
                    &rows,
                    here,
                    block,
                    d,
                    net.hidden_scale,
                    &a,
                    &mut sums,
                    &mut signs,
                )
            },
            _ => {
                relu_block(path, &rows, block, d, net.hidden_scale, &mut relu.0, &mut signs);
                for (values, a) in relu.0.iter().zip(a).take(here) {
                    add_outputs(path, values, a, &mut sums);
                }
            }
        }
        if let Some(words) = words.get_mut(r - neurons.start..r - neurons.start + here) {
            for (word, &signs) in words.iter_mut().zip(&signs) {
                *word = signs & valid_bits;
            }
        }
    }
    Ok(sums)
}

/// The weights of neurons `first .. first + count` as real rows (the last one repeated
/// to fill the group); packed signs are decoded into `buffer` as ±1.
fn neuron_rows<'o, 'a: 'o>(
    path: SimdPath,
    hidden: &Hidden<'a>,
    first: usize,
    count: usize,
    buffer: &'o mut [f64],
) -> [&'o [f64]; GROUP] {
    match hidden {
        Hidden::Dense(v) => std::array::from_fn(|g| v.row(first + g.min(count - 1))),
        Hidden::Binarized { latent, offset, scale } => {
            let d = latent.cols();
            let width = d.next_multiple_of(8);
            for (g, row) in buffer.chunks_mut(width.max(1)).enumerate().take(count) {
                for (value, &w) in row.iter_mut().zip(latent.row(first + g)) {
                    *value = if w - offset >= 0.0 { *scale } else { -*scale };
                }
            }
            let buffer: &'o [f64] = buffer;
            std::array::from_fn(|g| {
                let g = g.min(count - 1);
                &buffer[g * width..g * width + d]
            })
        }
        Hidden::Signs(bits) => {
            let d = bits.cols();
            let width = d.next_multiple_of(8);
            for (g, row) in buffer.chunks_mut(width.max(1)).enumerate().take(count) {
                decode_signs(path, bits.row(first + g), row);
            }
            let buffer: &'o [f64] = buffer;
            std::array::from_fn(|g| {
                let g = g.min(count - 1);
                &buffer[g * width..g * width + d]
            })
        }
    }
}

/// ±1.0 for the bits of `words`, into all of `out` (the columns rounded up to a multiple
/// of 8; entries past the columns read padding bits and are never used).
fn decode_signs(path: SimdPath, words: &[u64], out: &mut [f64]) {
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active_path` returns only supported paths; `out` has whole groups of
        // 8 entries, fewer than 8 past the columns, and a row has whole words for them.
        SimdPath::Avx512 => unsafe { x86::decode_signs_avx512(words, out) },
        _ => {
            for (j, value) in out.iter_mut().enumerate() {
                *value = if words[j / WORD_BITS] >> (j % WORD_BITS) & 1 == 1 { 1.0 } else { -1.0 };
            }
        }
    }
}

/// ReLU of the pre-activations of `rows` (GROUP neurons) on one block of samples, and
/// their activation bits (bit `l` of `signs[g]`: `pre >= 0` on lane `l`). The AVX-512
/// path has kernels that go on with these values in registers instead.
fn relu_block(
    path: SimdPath,
    rows: &[&[f64]; GROUP],
    block: &[f64],
    d: usize,
    hidden_scale: f64,
    relu: &mut [[f64; PANEL]; GROUP],
    signs: &mut [u64; GROUP],
) {
    debug_assert!(block.len() == d * PANEL && rows.iter().all(|row| row.len() == d));
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active_path` returns only supported paths; every row has `d` entries
        // and `block` holds `d` rows of PANEL values, all the kernel reads.
        SimdPath::Avx2 => unsafe {
            x86::relu_block_avx2(rows, block, d, hidden_scale, relu, signs)
        },
        _ => relu_block_portable(rows, block, d, hidden_scale, relu, signs),
    }
}

fn relu_block_portable(
    rows: &[&[f64]; GROUP],
    block: &[f64],
    d: usize,
    hidden_scale: f64,
    relu: &mut [[f64; PANEL]; GROUP],
    signs: &mut [u64; GROUP],
) {
    for g in 0..GROUP {
        let acc = &mut relu[g];
        acc.fill(0.0);
        for j in 0..d {
            let w = rows[g][j];
            for (value, &x) in acc.iter_mut().zip(&block[j * PANEL..(j + 1) * PANEL]) {
                *value = w.mul_add(x, *value);
            }
        }
        let mut word = 0u64;
        for (lane, value) in acc.iter_mut().enumerate() {
            let pre = *value * hidden_scale;
            let active = pre >= 0.0;
            word |= u64::from(active) << lane;
            *value = if active { pre } else { 0.0 };
        }
        signs[g] = word;
    }
}

/// `sums[c][l] = fma(a[c], relu[l], sums[c][l])`: one neuron's share of the outputs.
fn add_outputs(path: SimdPath, relu: &[f64; PANEL], a: &[f64], sums: &mut [f64]) {
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active_path` returns only supported paths.
        SimdPath::Avx512 | SimdPath::Avx2 => unsafe { x86::add_outputs_fma(relu, a, sums) },
        _ => add_outputs_lanes(relu, a, sums),
    }
}

/// Every lane on its own, so vectorising it cannot change a bit.
#[inline(always)]
fn add_outputs_lanes(relu: &[f64; PANEL], a: &[f64], sums: &mut [f64]) {
    for (&weight, row) in a.iter().zip(sums.chunks_exact_mut(PANEL)) {
        for (sum, &h) in row.iter_mut().zip(relu) {
            *sum = weight.mul_add(h, *sum);
        }
    }
}

/// What the backward pass reads.
struct Backward<'a> {
    x: Matrix<'a, f64>,
    hidden: Hidden<'a>,
    output: Matrix<'a, f64>,
    /// Activation words, block-major (see [`forward`]).
    pattern: &'a [u64],
    /// Residuals by block of samples: `k` rows of PANEL lanes each.
    residuals: &'a [f64],
    /// `s / n`.
    factor: f64,
    output_grad: bool,
}

/// Gradients for the hidden weights (m x d) and, if asked, the output weights (m x k).
fn backward(ctx: &Backward<'_>, path: SimdPath) -> Result<(Vec<f64>, Option<Vec<f64>>), Error> {
    let (n, d, m, k) = (ctx.x.rows(), ctx.x.cols(), ctx.hidden.rows(), ctx.output.cols());
    let panels = n.div_ceil(PANEL);
    // Sample rows padded to whole vectors (and zero rows to whole blocks), for the
    // hidden-weight gradients, whose lanes are features.
    let width = d.next_multiple_of(8);
    let mut rows = Aligned::zeroed(checked_len(panels * PANEL, width, 8)?)?;
    if width > 0 {
        for (i, row) in rows.chunks_exact_mut(width).enumerate().take(n) {
            row[..d].copy_from_slice(ctx.x.row(i));
        }
    }
    // Blocks of samples as the forward pass reads them, to recompute pre-activations.
    let blocks = transpose_blocks(ctx.x, 0, if ctx.output_grad { panels } else { 0 })?;
    let mut grad_hidden = try_zeroed::<f64>(checked_len(m, d, 8)?)?;
    let mut grad_output =
        if ctx.output_grad { Some(try_zeroed::<f64>(checked_len(m, k, 8)?)?) } else { None };
    // Each neuron's gradients are summed on their own, so how neurons are split into
    // tasks changes no bit: split them so that every thread has a few tasks.
    let per_task = (m / (4 * parallel::num_threads()))
        .next_multiple_of(HIDDEN_GROUP)
        .clamp(HIDDEN_GROUP, BACKWARD_NEURONS);
    let tasks = m.div_ceil(per_task);
    let hidden_rows = split_lengths(&mut grad_hidden, (0..tasks).map(|_| per_task * d));
    let output_rows = split_lengths(
        grad_output.as_deref_mut().unwrap_or_default(),
        (0..tasks).map(|_| per_task * k),
    );
    parallel::install(|| {
        hidden_rows.into_par_iter().zip(output_rows).enumerate().try_for_each(
            |(t, (hidden, output))| {
                let neurons = t * per_task..m.min((t + 1) * per_task);
                backward_task(ctx, path, &rows, &blocks, neurons, hidden, output)
            },
        )
    })?;
    Ok((grad_hidden, grad_output))
}

/// The gradient rows of `neurons` into `hidden_rows` (d each) and, if asked,
/// `output_rows` (k each).
fn backward_task(
    ctx: &Backward<'_>,
    path: SimdPath,
    rows: &[f64],
    blocks: &[f64],
    neurons: std::ops::Range<usize>,
    hidden_rows: &mut [f64],
    output_rows: &mut [f64],
) -> Result<(), Error> {
    let (n, d, m, k) = (ctx.x.rows(), ctx.x.cols(), ctx.hidden.rows(), ctx.output.cols());
    let width = d.next_multiple_of(8);
    let count = neurons.len();
    // Whole groups of rows: the rows past `count` get zero coefficients and stay zero.
    let mut hidden = Aligned::zeroed(count.next_multiple_of(HIDDEN_GROUP) * width)?;
    let mut output = Aligned::zeroed(if ctx.output_grad { count * k * LANES } else { 0 })?;
    let mut coefficients = Rows::<HIDDEN_GROUP>::zeros();
    let mut relu = Rows::<GROUP>::zeros();
    let mut signs = [0u64; GROUP];
    let mut decoded = vec![0.0f64; GROUP * width];
    for p in 0..n.div_ceil(PANEL) {
        let residuals = &ctx.residuals[p * k * PANEL..(p + 1) * k * PANEL];
        // With no outputs (k = 0) there is no output-weight gradient to sum.
        if ctx.output_grad && k > 0 {
            let block = &blocks[p * d * PANEL..(p + 1) * d * PANEL];
            for r in neurons.clone().step_by(GROUP) {
                let here = GROUP.min(neurons.end - r);
                let weights = neuron_rows(path, &ctx.hidden, r, here, &mut decoded);
                let at = (r - neurons.start) * k * LANES;
                let partials = &mut output[at..at + here * k * LANES];
                match path {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `active_path` returns only supported paths; rows have `d`
                    // entries, `block` `d` rows of PANEL values, `residuals` `k` rows of
                    // PANEL and `partials` `here * k` rows of LANES values.
                    SimdPath::Avx512 => unsafe {
                        let valid = PANEL.min(n - p * PANEL);
                        x86::output_grad_avx512(
                            valid, &weights, here, block, d, residuals, partials,
                        )
                    },
                    _ => {
                        relu_block(path, &weights, block, d, 1.0, &mut relu.0, &mut signs);
                        for (values, partials) in
                            relu.0.iter().zip(partials.chunks_exact_mut(k * LANES))
                        {
                            add_output_grad(path, values, residuals, partials);
                        }
                    }
                }
            }
        }
        if width == 0 {
            continue;
        }
        let samples = &rows[p * PANEL * width..(p + 1) * PANEL * width];
        for (g, acc) in hidden.chunks_exact_mut(HIDDEN_GROUP * width).enumerate() {
            let first = neurons.start + g * HIDDEN_GROUP;
            let here = HIDDEN_GROUP.min(neurons.end - first);
            let words: [u64; HIDDEN_GROUP] =
                std::array::from_fn(|t| if t < here { ctx.pattern[p * m + first + t] } else { 0 });
            for (t, values) in coefficients.0.iter_mut().enumerate() {
                if words[t] == 0 {
                    // Read by the grouped kernel for samples other neurons need (and for
                    // the rows past `count`, which thus stay zero).
                    values.fill(0.0);
                } else {
                    coefficients_of(path, words[t], residuals, ctx.output.row(first + t), values);
                }
            }
            add_hidden_grad(path, &words, &coefficients.0, samples, width, acc);
        }
    }
    if d > 0 {
        for (acc, row) in hidden.chunks_exact(width).zip(hidden_rows.chunks_exact_mut(d)) {
            for (value, &sum) in row.iter_mut().zip(acc) {
                *value = ctx.factor * sum;
            }
        }
    }
    for (value, p) in output_rows.iter_mut().zip(output.chunks_exact(LANES)) {
        let sum = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
        *value = ctx.factor * sum;
    }
    Ok(())
}

/// `coefficients[l] = sum_c R[l,c] A[r,c]` (FMAs in order of `c` from `+0.0`) where bit `l`
/// of `word` is set, `0` elsewhere.
fn coefficients_of(
    path: SimdPath,
    word: u64,
    residuals: &[f64],
    a: &[f64],
    coefficients: &mut [f64; PANEL],
) {
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active_path` returns only supported paths.
        SimdPath::Avx512 => unsafe { x86::coefficients_avx512(word, residuals, a, coefficients) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        SimdPath::Avx2 => unsafe { x86::coefficients_fma(word, residuals, a, coefficients) },
        _ => coefficients_lanes(word, residuals, a, coefficients),
    }
}

/// Every lane on its own, so vectorising it cannot change a bit.
#[inline(always)]
fn coefficients_lanes(word: u64, residuals: &[f64], a: &[f64], coefficients: &mut [f64; PANEL]) {
    coefficients.fill(0.0);
    for (&weight, row) in a.iter().zip(residuals.chunks_exact(PANEL)) {
        for (value, &r) in coefficients.iter_mut().zip(row) {
            *value = r.mul_add(weight, *value);
        }
    }
    for (lane, value) in coefficients.iter_mut().enumerate() {
        if word >> lane & 1 == 0 {
            *value = 0.0;
        }
    }
}

/// For each neuron `t` of a group, `acc[t][j] = fma(coefficients[t][i], samples[i][j],
/// acc[t][j])` for the set bits `i` of `words[t]` in increasing order; `samples` holds
/// PANEL rows of `width` values, `acc` HIDDEN_GROUP rows.
fn add_hidden_grad(
    path: SimdPath,
    words: &[u64; HIDDEN_GROUP],
    coefficients: &[[f64; PANEL]; HIDDEN_GROUP],
    samples: &[f64],
    width: usize,
    acc: &mut [f64],
) {
    debug_assert!(samples.len() == PANEL * width && width.is_multiple_of(8));
    debug_assert_eq!(acc.len(), HIDDEN_GROUP * width);
    #[cfg(target_arch = "x86_64")]
    if path == SimdPath::Avx512 && width <= 8 * x86::GROUPED_VECTORS {
        // SAFETY: `active_path` returns only supported paths; extents as checked above.
        unsafe { x86::add_hidden_grad_grouped_avx512(words, coefficients, samples, width, acc) };
        return;
    }
    for ((&word, coefficients), acc) in
        words.iter().zip(coefficients).zip(acc.chunks_exact_mut(width))
    {
        match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `active_path` returns only supported paths; `samples` holds PANEL
            // rows of `width` values and `acc` `width` values, `width` a multiple of 8.
            SimdPath::Avx512 => unsafe {
                x86::add_hidden_grad_avx512(word, coefficients, samples, width, acc)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            SimdPath::Avx2 => unsafe {
                x86::add_hidden_grad_avx2(word, coefficients, samples, width, acc)
            },
            _ => {
                let mut bits = word;
                while bits != 0 {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let c = coefficients[i];
                    for (value, &x) in acc.iter_mut().zip(&samples[i * width..(i + 1) * width]) {
                        *value = c.mul_add(x, *value);
                    }
                }
            }
        }
    }
}

/// `partials[c][l] = fma(R[i,c], relu[i], partials[c][l])` for lanes `i` of the block in
/// order, `l = i % 8`.
fn add_output_grad(path: SimdPath, relu: &[f64; PANEL], residuals: &[f64], partials: &mut [f64]) {
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active_path` returns only supported paths.
        SimdPath::Avx512 | SimdPath::Avx2 => unsafe {
            x86::add_output_grad_fma(relu, residuals, partials)
        },
        _ => add_output_grad_lanes(relu, residuals, partials),
    }
}

/// Every one of the eight partial sums on its own, so vectorising it cannot change a bit.
#[inline(always)]
fn add_output_grad_lanes(relu: &[f64; PANEL], residuals: &[f64], partials: &mut [f64]) {
    for (row, sums) in residuals.chunks_exact(PANEL).zip(partials.chunks_exact_mut(LANES)) {
        for (r, h) in row.chunks_exact(LANES).zip(relu.chunks_exact(LANES)) {
            for lane in 0..LANES {
                sums[lane] = r[lane].mul_add(h[lane], sums[lane]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
// Register arrays are indexed by lane and row: clearer than iterator chains here.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{GROUP, HIDDEN_GROUP, LANES, PANEL};

    /// The plain loops of the lane-wise helpers, compiled with FMA so that `mul_add` is one
    /// instruction (and vectorised) instead of a call to the C library's `fma`.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn add_outputs_fma(relu: &[f64; PANEL], a: &[f64], sums: &mut [f64]) {
        super::add_outputs_lanes(relu, a, sums)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn coefficients_fma(
        word: u64,
        residuals: &[f64],
        a: &[f64],
        coefficients: &mut [f64; PANEL],
    ) {
        super::coefficients_lanes(word, residuals, a, coefficients)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn add_output_grad_fma(
        relu: &[f64; PANEL],
        residuals: &[f64],
        partials: &mut [f64],
    ) {
        super::add_output_grad_lanes(relu, residuals, partials)
    }

    /// # Safety
    /// The CPU must support AVX-512 F; `residuals` holds `a.len()` rows of PANEL values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn coefficients_avx512(
        word: u64,
        residuals: &[f64],
        a: &[f64],
        coefficients: &mut [f64; PANEL],
    ) {
        const VECTORS: usize = PANEL / 8;
        debug_assert_eq!(residuals.len(), a.len() * PANEL);
        let mut acc = [_mm512_setzero_pd(); VECTORS];
        for (c, &weight) in a.iter().enumerate() {
            let weight = _mm512_set1_pd(weight);
            let row = residuals.as_ptr().add(c * PANEL);
            for v in 0..VECTORS {
                acc[v] = _mm512_fmadd_pd(_mm512_loadu_pd(row.add(8 * v)), weight, acc[v]);
            }
        }
        for v in 0..VECTORS {
            let active = (word >> (8 * v)) as u8;
            _mm512_storeu_pd(
                coefficients.as_mut_ptr().add(8 * v),
                _mm512_maskz_mov_pd(active, acc[v]),
            );
        }
    }

    /// Widths up to this many vectors go through [`add_hidden_grad_grouped_avx512`].
    pub const GROUPED_VECTORS: usize = 3;

    /// Every neuron of the group at once, over the samples active for any of them (the
    /// others have coefficient 0, which leaves a sum unchanged): HIDDEN_GROUP x 3 = 24
    /// accumulators at most, sharing each sample's loads.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F; `width` is a multiple of 8 and at most
    /// `8 * GROUPED_VECTORS`, `samples` holds PANEL rows of `width` values and `acc`
    /// HIDDEN_GROUP rows.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn add_hidden_grad_grouped_avx512(
        words: &[u64; HIDDEN_GROUP],
        coefficients: &[[f64; PANEL]; HIDDEN_GROUP],
        samples: &[f64],
        width: usize,
        acc: &mut [f64],
    ) {
        let any = words.iter().fold(0, |union, &word| union | word);
        let (x, out) = (samples.as_ptr(), acc.as_mut_ptr());
        match width / 8 {
            3 => grouped_avx512::<3>(any, coefficients, x, width, out),
            2 => grouped_avx512::<2>(any, coefficients, x, width, out),
            _ => grouped_avx512::<1>(any, coefficients, x, width, out),
        }
    }

    /// # Safety
    /// As [`add_hidden_grad_grouped_avx512`], with `width == 8 * V`.
    #[target_feature(enable = "avx512f")]
    unsafe fn grouped_avx512<const V: usize>(
        any: u64,
        coefficients: &[[f64; PANEL]; HIDDEN_GROUP],
        x: *const f64,
        width: usize,
        out: *mut f64,
    ) {
        let mut acc: [[__m512d; V]; HIDDEN_GROUP] = std::array::from_fn(|t| {
            std::array::from_fn(|v| _mm512_loadu_pd(out.add(t * width + 8 * v)))
        });
        let mut bits = any;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let row = x.add(i * width);
            let xs: [__m512d; V] = std::array::from_fn(|v| _mm512_loadu_pd(row.add(8 * v)));
            for t in 0..HIDDEN_GROUP {
                let c = _mm512_set1_pd(*coefficients[t].get_unchecked(i));
                for v in 0..V {
                    acc[t][v] = _mm512_fmadd_pd(c, xs[v], acc[t][v]);
                }
            }
        }
        for t in 0..HIDDEN_GROUP {
            for v in 0..V {
                _mm512_storeu_pd(out.add(t * width + 8 * v), acc[t][v]);
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX-512 F; `out.len()` is a multiple of 8 and `words` holds at
    /// least `out.len()` bits (the columns rounded up to a multiple of 64).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn decode_signs_avx512(words: &[u64], out: &mut [f64]) {
        let (plus, minus) = (_mm512_set1_pd(1.0), _mm512_set1_pd(-1.0));
        for (group, values) in out.chunks_exact_mut(8).enumerate() {
            let bits = (words.get_unchecked(group / 8) >> (8 * (group % 8))) as u8;
            _mm512_storeu_pd(values.as_mut_ptr(), _mm512_mask_blend_pd(bits, minus, plus));
        }
    }

    /// ReLU of the pre-activations of GROUP neurons on the first `8 * V` samples of a
    /// block, in registers (vector `v` of neuron `g` holds samples `8v .. 8v + 8`), and
    /// their activation bits (zero past those samples). The last block of samples, when
    /// short, takes a smaller `V`.
    ///
    /// Always inlined, so that the values stay in registers: it has no target features
    /// of its own (they cannot go with `inline(always)`) and takes its callers'.
    ///
    /// # Safety
    /// Only for functions compiled with AVX-512 F on a CPU that has it; `V <= PANEL / 8`;
    /// slice extents as described at `relu_block`.
    #[inline(always)]
    unsafe fn relu_vectors<const V: usize>(
        rows: &[&[f64]; GROUP],
        block: &[f64],
        d: usize,
        hidden_scale: f64,
        signs: &mut [u64; GROUP],
    ) -> [[__m512d; V]; GROUP] {
        let mut acc = [[_mm512_setzero_pd(); V]; GROUP];
        let x = block.as_ptr();
        for j in 0..d {
            // SAFETY: row j < d of the block is `block[j * PANEL..][..PANEL]`.
            let x_row = x.add(j * PANEL);
            for g in 0..GROUP {
                let w = _mm512_set1_pd(*rows[g].get_unchecked(j));
                for v in 0..V {
                    acc[g][v] = _mm512_fmadd_pd(w, _mm512_loadu_pd(x_row.add(8 * v)), acc[g][v]);
                }
            }
        }
        // Multiplying by 1.0 changes no bit, so it is skipped.
        let (scaled, scale) = (hidden_scale != 1.0, _mm512_set1_pd(hidden_scale));
        let zero = _mm512_setzero_pd();
        for g in 0..GROUP {
            let mut word = 0u64;
            for v in 0..V {
                let pre = if scaled { _mm512_mul_pd(acc[g][v], scale) } else { acc[g][v] };
                let active = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(pre, zero);
                acc[g][v] = _mm512_maskz_mov_pd(active, pre);
                word |= u64::from(active) << (8 * v);
            }
            signs[g] = word;
        }
        acc
    }

    /// [`relu_vectors`] followed by the outputs' share of the first `count` neurons,
    /// `sums[c][l] = fma(a[g][c], relu[g][l], sums[c][l])` for g in order, without the
    /// pre-activations leaving registers.
    ///
    /// Only the vectors that hold some of the first `valid` samples are computed.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F; slice extents as described at `relu_block`, every
    /// row of `a` has `k` entries and `sums` holds `k` rows of PANEL values.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn forward_avx512(
        valid: usize,
        rows: &[&[f64]; GROUP],
        count: usize,
        block: &[f64],
        d: usize,
        hidden_scale: f64,
        a: &[&[f64]; GROUP],
        sums: &mut [f64],
        signs: &mut [u64; GROUP],
    ) {
        match valid.div_ceil(8) {
            1 => forward_vectors::<1>(rows, count, block, d, hidden_scale, a, sums, signs),
            2 => forward_vectors::<2>(rows, count, block, d, hidden_scale, a, sums, signs),
            3 | 4 => forward_vectors::<4>(rows, count, block, d, hidden_scale, a, sums, signs),
            _ => forward_vectors::<8>(rows, count, block, d, hidden_scale, a, sums, signs),
        }
    }

    /// # Safety
    /// As [`forward_avx512`], with `V <= PANEL / 8`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn forward_vectors<const V: usize>(
        rows: &[&[f64]; GROUP],
        count: usize,
        block: &[f64],
        d: usize,
        hidden_scale: f64,
        a: &[&[f64]; GROUP],
        sums: &mut [f64],
        signs: &mut [u64; GROUP],
    ) {
        let relu = relu_vectors::<V>(rows, block, d, hidden_scale, signs);
        let k = a[0].len();
        debug_assert_eq!(sums.len(), k * PANEL);
        for c in 0..k {
            let out = sums.as_mut_ptr().add(c * PANEL);
            let mut sum: [__m512d; V] = std::array::from_fn(|v| _mm512_loadu_pd(out.add(8 * v)));
            for g in 0..count {
                let weight = _mm512_set1_pd(*a[g].get_unchecked(c));
                for v in 0..V {
                    sum[v] = _mm512_fmadd_pd(weight, relu[g][v], sum[v]);
                }
            }
            for v in 0..V {
                _mm512_storeu_pd(out.add(8 * v), sum[v]);
            }
        }
    }

    /// The output-weight gradients' share of one block for the first `count` neurons:
    /// [`relu_vectors`] (unscaled) followed by `add_output_grad` for each, the ReLU values
    /// staying in registers.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F; slice extents as described at `relu_block`,
    /// `residuals` holds `k` rows of PANEL values and `partials` `count * k` rows of LANES.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn output_grad_avx512(
        valid: usize,
        rows: &[&[f64]; GROUP],
        count: usize,
        block: &[f64],
        d: usize,
        residuals: &[f64],
        partials: &mut [f64],
    ) {
        // Residuals past the real samples are 0, which adds nothing to the partial sums.
        match valid.div_ceil(8) {
            1 => output_grad_vectors::<1>(rows, count, block, d, residuals, partials),
            2 => output_grad_vectors::<2>(rows, count, block, d, residuals, partials),
            3 | 4 => output_grad_vectors::<4>(rows, count, block, d, residuals, partials),
            _ => output_grad_vectors::<8>(rows, count, block, d, residuals, partials),
        }
    }

    /// # Safety
    /// As [`output_grad_avx512`], with `V <= PANEL / 8`.
    #[target_feature(enable = "avx512f")]
    unsafe fn output_grad_vectors<const V: usize>(
        rows: &[&[f64]; GROUP],
        count: usize,
        block: &[f64],
        d: usize,
        residuals: &[f64],
        partials: &mut [f64],
    ) {
        let mut signs = [0u64; GROUP];
        let relu = relu_vectors::<V>(rows, block, d, 1.0, &mut signs);
        let k = residuals.len() / PANEL;
        debug_assert_eq!(partials.len(), count * k * LANES);
        for c in 0..k {
            let r = residuals.as_ptr().add(c * PANEL);
            let r: [__m512d; V] = std::array::from_fn(|v| _mm512_loadu_pd(r.add(8 * v)));
            for g in 0..count {
                let out = partials.as_mut_ptr().add((g * k + c) * LANES);
                let mut sum = _mm512_loadu_pd(out);
                for v in 0..V {
                    sum = _mm512_fmadd_pd(r[v], relu[g][v], sum);
                }
                _mm512_storeu_pd(out, sum);
            }
        }
    }

    /// AVX2 has 16 registers, so the block is done in strips of 16 samples.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; slice extents as described at `relu_block`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn relu_block_avx2(
        rows: &[&[f64]; GROUP],
        block: &[f64],
        d: usize,
        hidden_scale: f64,
        relu: &mut [[f64; PANEL]; GROUP],
        signs: &mut [u64; GROUP],
    ) {
        const STRIP: usize = 16;
        let x = block.as_ptr();
        let (scale, zero) = (_mm256_set1_pd(hidden_scale), _mm256_setzero_pd());
        *signs = [0; GROUP];
        for strip in (0..PANEL).step_by(STRIP) {
            let mut acc = [[_mm256_setzero_pd(); STRIP / 4]; GROUP];
            for j in 0..d {
                // SAFETY: row j < d of the block is `block[j * PANEL..][..PANEL]`.
                let x_row = x.add(j * PANEL + strip);
                let xs: [__m256d; STRIP / 4] =
                    std::array::from_fn(|v| _mm256_loadu_pd(x_row.add(4 * v)));
                for g in 0..GROUP {
                    let w = _mm256_set1_pd(*rows[g].get_unchecked(j));
                    for v in 0..STRIP / 4 {
                        acc[g][v] = _mm256_fmadd_pd(w, xs[v], acc[g][v]);
                    }
                }
            }
            for g in 0..GROUP {
                for v in 0..STRIP / 4 {
                    let pre = _mm256_mul_pd(acc[g][v], scale);
                    let active = _mm256_cmp_pd::<_CMP_GE_OQ>(pre, zero);
                    // All-ones lanes keep `pre`, all-zeros lanes become +0.0.
                    _mm256_storeu_pd(
                        relu[g].as_mut_ptr().add(strip + 4 * v),
                        _mm256_and_pd(pre, active),
                    );
                    let mask = _mm256_movemask_pd(active) as u32 as u64;
                    signs[g] |= mask << (strip + 4 * v);
                }
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX-512 F; extents as described at `add_hidden_grad`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn add_hidden_grad_avx512(
        word: u64,
        coefficients: &[f64; PANEL],
        samples: &[f64],
        width: usize,
        acc: &mut [f64],
    ) {
        let mut start = 0;
        while start < width {
            let x = samples.as_ptr().add(start);
            let out = acc.as_mut_ptr().add(start);
            // Strips of up to 8 vectors: one accumulator register per vector.
            let vectors = ((width - start) / 8).min(8);
            match vectors {
                8 => strip_avx512::<8>(word, coefficients, x, width, out),
                7 => strip_avx512::<7>(word, coefficients, x, width, out),
                6 => strip_avx512::<6>(word, coefficients, x, width, out),
                5 => strip_avx512::<5>(word, coefficients, x, width, out),
                4 => strip_avx512::<4>(word, coefficients, x, width, out),
                3 => strip_avx512::<3>(word, coefficients, x, width, out),
                2 => strip_avx512::<2>(word, coefficients, x, width, out),
                _ => strip_avx512::<1>(word, coefficients, x, width, out),
            }
            start += 8 * vectors;
        }
    }

    /// # Safety
    /// The CPU must support AVX-512 F; `x` points at PANEL rows spaced `width` apart, each
    /// with `8 * V` readable values, and `out` at `8 * V` values.
    #[target_feature(enable = "avx512f")]
    unsafe fn strip_avx512<const V: usize>(
        word: u64,
        coefficients: &[f64; PANEL],
        x: *const f64,
        width: usize,
        out: *mut f64,
    ) {
        let mut acc: [__m512d; V] = std::array::from_fn(|v| _mm512_loadu_pd(out.add(8 * v)));
        let mut bits = word;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let c = _mm512_set1_pd(*coefficients.get_unchecked(i));
            let row = x.add(i * width);
            for v in 0..V {
                acc[v] = _mm512_fmadd_pd(c, _mm512_loadu_pd(row.add(8 * v)), acc[v]);
            }
        }
        for v in 0..V {
            _mm512_storeu_pd(out.add(8 * v), acc[v]);
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; extents as described at `add_hidden_grad`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn add_hidden_grad_avx2(
        word: u64,
        coefficients: &[f64; PANEL],
        samples: &[f64],
        width: usize,
        acc: &mut [f64],
    ) {
        let mut start = 0;
        while start < width {
            let x = samples.as_ptr().add(start);
            let out = acc.as_mut_ptr().add(start);
            // Strips of up to 8 vectors of 4, half the registers; `width` is a multiple
            // of 8, so the count is even.
            let vectors = ((width - start) / 4).min(8);
            match vectors {
                8 => strip_avx2::<8>(word, coefficients, x, width, out),
                6 => strip_avx2::<6>(word, coefficients, x, width, out),
                4 => strip_avx2::<4>(word, coefficients, x, width, out),
                _ => strip_avx2::<2>(word, coefficients, x, width, out),
            }
            start += 4 * vectors;
        }
    }

    /// # Safety
    /// As [`strip_avx512`] with vectors of 4 values.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn strip_avx2<const V: usize>(
        word: u64,
        coefficients: &[f64; PANEL],
        x: *const f64,
        width: usize,
        out: *mut f64,
    ) {
        let mut acc: [__m256d; V] = std::array::from_fn(|v| _mm256_loadu_pd(out.add(4 * v)));
        let mut bits = word;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let c = _mm256_set1_pd(*coefficients.get_unchecked(i));
            let row = x.add(i * width);
            for v in 0..V {
                acc[v] = _mm256_fmadd_pd(c, _mm256_loadu_pd(row.add(4 * v)), acc[v]);
            }
        }
        for v in 0..V {
            _mm256_storeu_pd(out.add(4 * v), acc[v]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::pack_signs;
    use crate::simd::{force_path, supported_paths};
    use crate::test_support::{random_matrix, PATH_LOCK};

    struct Case {
        n: usize,
        d: usize,
        m: usize,
        k: usize,
        x: Vec<f64>,
        y: Vec<f64>,
        v: Vec<f64>,
        a: Vec<f64>,
        scale: f64,
    }

    impl Case {
        /// Random data with ±1 hidden weights, and a row of zeros in X (pre-activations
        /// exactly 0, which count as active).
        fn new(n: usize, d: usize, m: usize, k: usize, seed: u64) -> Case {
            let mut x = random_matrix(n, d, seed);
            if n > 2 {
                x[d..2 * d].fill(0.0);
            }
            let signs = |values: Vec<f64>| -> Vec<f64> {
                values.into_iter().map(|w| if w >= 0.0 { 1.0 } else { -1.0 }).collect()
            };
            Case {
                n,
                d,
                m,
                k,
                x,
                y: random_matrix(n, k, seed + 1),
                v: signs(random_matrix(m, d, seed + 2)),
                a: random_matrix(m, k, seed + 3),
                scale: 1.5 / (m.max(1) as f64).sqrt(),
            }
        }

        fn matrices(&self) -> [Matrix<'_, f64>; 4] {
            [
                Matrix::contiguous(&self.x, self.n, self.d).unwrap(),
                Matrix::contiguous(&self.y, self.n, self.k).unwrap(),
                Matrix::contiguous(&self.v, self.m, self.d).unwrap(),
                Matrix::contiguous(&self.a, self.m, self.k).unwrap(),
            ]
        }

        fn step(&self, output_grad: bool) -> Step {
            let [x, y, v, a] = self.matrices();
            train_step(x, y, Hidden::Dense(v), a, self.scale, output_grad).unwrap()
        }

        /// The module documentation's definitions, one scalar operation at a time.
        fn reference(&self) -> Step {
            let (n, d, m, k) = (self.n, self.d, self.m, self.k);
            let relu = |i: usize, r: usize| -> f64 {
                let pre =
                    (0..d).fold(0.0f64, |acc, j| self.v[r * d + j].mul_add(self.x[i * d + j], acc));
                if pre >= 0.0 {
                    pre
                } else {
                    0.0
                }
            };
            let active = |i: usize, r: usize| {
                (0..d).fold(0.0f64, |acc, j| self.v[r * d + j].mul_add(self.x[i * d + j], acc))
                    >= 0.0
            };
            let mut outputs = vec![0.0; n * k];
            for i in 0..n {
                for c in 0..k {
                    let mut total = None;
                    for chunk in (0..m).step_by(NEURON_CHUNK) {
                        let sum = (chunk..m.min(chunk + NEURON_CHUNK))
                            .fold(0.0f64, |acc, r| self.a[r * k + c].mul_add(relu(i, r), acc));
                        total = Some(total.map_or(sum, |t: f64| t + sum));
                    }
                    outputs[i * k + c] = self.scale * total.unwrap_or(0.0);
                }
            }
            let residual: Vec<f64> = outputs.iter().zip(&self.y).map(|(f, y)| f - y).collect();
            let loss = residual.iter().fold(0.0f64, |acc, r| r.mul_add(*r, acc)) / (2 * n) as f64;
            let factor = self.scale / n as f64;
            let mut grad_hidden = vec![0.0; m * d];
            let mut grad_output = vec![0.0; m * k];
            for r in 0..m {
                let coefficient = |i: usize| {
                    if active(i, r) {
                        (0..k).fold(0.0f64, |acc, c| {
                            residual[i * k + c].mul_add(self.a[r * k + c], acc)
                        })
                    } else {
                        0.0
                    }
                };
                let coefficients: Vec<f64> = (0..n).map(coefficient).collect();
                for j in 0..d {
                    let sum = (0..n)
                        .fold(0.0f64, |acc, i| coefficients[i].mul_add(self.x[i * d + j], acc));
                    grad_hidden[r * d + j] = factor * sum;
                }
                for c in 0..k {
                    let mut p = [0.0f64; 8];
                    for i in 0..n {
                        p[i % 8] = residual[i * k + c].mul_add(relu(i, r), p[i % 8]);
                    }
                    let sum = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
                    grad_output[r * k + c] = factor * sum;
                }
            }
            Step { outputs, loss, grad_hidden, grad_output: Some(grad_output) }
        }
    }

    fn same_bits(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn every_path_reproduces_the_documented_order_bit_for_bit() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let shapes = [
            (1, 1, 1, 1),
            (3, 7, 5, 2),
            (64, 8, 3, 1),
            (65, 16, 130, 3),
            (130, 65, 7, 1),
            (70, 3, NEURON_CHUNK + 3, 2),
            // Last blocks of 12, 25 and 40 samples: the kernels' narrower tails.
            (76, 9, 5, 2),
            (89, 24, 6, 1),
            (104, 17, 3, 3),
            (5, 0, 4, 1),
            (4, 3, 0, 2),
            (6, 4, 5, 0),
        ];
        for (seed, &(n, d, m, k)) in shapes.iter().enumerate() {
            let case = Case::new(n, d, m, k, 40 + 4 * seed as u64);
            let expected = case.reference();
            for path in supported_paths() {
                force_path(Some(path)).unwrap();
                let got = case.step(true);
                let shape = format!("{path} n={n} d={d} m={m} k={k}");
                assert!(same_bits(&got.outputs, &expected.outputs), "outputs, {shape}");
                assert_eq!(got.loss.to_bits(), expected.loss.to_bits(), "loss, {shape}");
                assert!(same_bits(&got.grad_hidden, &expected.grad_hidden), "hidden, {shape}");
                let (got_output, expected_output) =
                    (got.grad_output.unwrap(), expected.grad_output.clone().unwrap());
                assert!(same_bits(&got_output, &expected_output), "output, {shape}");
                let without = case.step(false);
                assert_eq!(without.grad_output, None);
                assert!(same_bits(&without.grad_hidden, &expected.grad_hidden), "{shape}");
            }
            force_path(None).unwrap();
        }
    }

    #[test]
    fn packed_signs_give_the_dense_outputs_and_scale_the_pre_activations() {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let case = Case::new(150, 70, 90, 3, 7);
        let [x, _, v, a] = case.matrices();
        let packed = pack_signs(v).unwrap();
        let dense = train_step(x, case.matrices()[1], Hidden::Dense(v), a, case.scale, false)
            .unwrap()
            .outputs;
        for path in supported_paths() {
            force_path(Some(path)).unwrap();
            let net = Network {
                hidden: Hidden::Signs(packed.view()),
                hidden_scale: 1.0,
                output: a,
                scale: case.scale,
            };
            assert!(same_bits(&outputs(x, &net).unwrap(), &dense), "{path}");
            // A positive scale of the pre-activations keeps the pattern and scales relu.
            let half = Network { hidden_scale: 0.5, ..net };
            let halved = outputs(x, &half).unwrap();
            assert!(halved.iter().zip(&dense).all(|(h, f)| (h - 0.5 * f).abs() <= 1e-12));
        }
        force_path(None).unwrap();
    }

    #[test]
    fn binarized_latent_weights_give_the_bits_of_the_quantised_matrix() {
        let case = Case::new(70, 5, 37, 3, 7);
        let [x, y, v, a] = case.matrices();
        let offset = case.v.iter().sum::<f64>() / case.v.len() as f64;
        let scale = case.v.iter().map(|w| w.abs()).sum::<f64>() / case.v.len() as f64;
        for (offset, scale) in [(0.0, 1.0), (offset, scale)] {
            let quantised: Vec<f64> =
                case.v.iter().map(|&w| if w - offset >= 0.0 { scale } else { -scale }).collect();
            let dense = Matrix::contiguous(&quantised, v.rows(), v.cols()).unwrap();
            for output_grad in [false, true] {
                let expected = train_step(x, y, Hidden::Dense(dense), a, 0.3, output_grad);
                let binarized = Hidden::Binarized { latent: v, offset, scale };
                assert_eq!(train_step(x, y, binarized, a, 0.3, output_grad), expected);
            }
        }
    }

    #[test]
    fn shape_errors_name_the_arguments() {
        let case = Case::new(4, 3, 5, 2, 1);
        let [x, y, v, a] = case.matrices();
        let short = Matrix::contiguous(&case.y[..6], 3, 2).unwrap();
        let narrow = Matrix::contiguous(&case.v[..10], 5, 2).unwrap();
        let few = Matrix::contiguous(&case.a[..8], 4, 2).unwrap();
        let one = Matrix::contiguous(&case.y[..4], 4, 1).unwrap();
        let what = |result: Result<Step, Error>| match result {
            Err(Error::DimensionMismatch { what, .. }) => what,
            other => panic!("expected a dimension mismatch, got {other:?}"),
        };
        assert_eq!(what(train_step(x, short, Hidden::Dense(v), a, 1.0, false)), "rows of Y and X");
        assert_eq!(
            what(train_step(x, y, Hidden::Dense(narrow), a, 1.0, false)),
            "columns of hidden and X"
        );
        assert_eq!(
            what(train_step(x, y, Hidden::Dense(v), few, 1.0, false)),
            "rows of output and hidden"
        );
        assert_eq!(
            what(train_step(x, one, Hidden::Dense(v), a, 1.0, false)),
            "columns of Y and output"
        );
        assert!(matches!(
            train_step(x, y, Hidden::Dense(v), a, f64::NAN, false),
            Err(Error::OutOfRange(_))
        ));
        let empty = Matrix::contiguous(&case.x[..0], 0, 3).unwrap();
        let no_targets = Matrix::contiguous(&case.y[..0], 0, 2).unwrap();
        assert!(matches!(
            train_step(empty, no_targets, Hidden::Dense(v), a, 1.0, false),
            Err(Error::OutOfRange(_))
        ));
        let net = Network { hidden: Hidden::Dense(v), hidden_scale: 1.0, output: a, scale: 1.0 };
        assert_eq!(outputs(empty, &net).unwrap(), Vec::<f64>::new());
    }
}
