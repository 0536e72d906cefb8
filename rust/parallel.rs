//! The thread pool every kernel runs on.
//!
//! rayon's global pool cannot be resized once built, so the crate keeps its own pool and
//! replaces it when the thread count changes. Kernels split work into pieces whose results
//! do not depend on how many threads run them, so the thread count never changes a result.

use std::sync::{Arc, OnceLock, RwLock};

use rayon::{ThreadPool, ThreadPoolBuildError, ThreadPoolBuilder};

static POOL: OnceLock<RwLock<Arc<ThreadPool>>> = OnceLock::new();

fn build_pool(num_threads: usize) -> Result<Arc<ThreadPool>, ThreadPoolBuildError> {
    ThreadPoolBuilder::new()
        .num_threads(num_threads)
        .thread_name(|index| format!("pybinscale-{index}"))
        .build()
        .map(Arc::new)
}

/// The default thread count: `PYBINSCALE_NUM_THREADS` if set to a positive integer,
/// otherwise the number of CPUs this process may use.
pub fn default_num_threads() -> usize {
    std::env::var("PYBINSCALE_NUM_THREADS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn pool_cell() -> &'static RwLock<Arc<ThreadPool>> {
    POOL.get_or_init(|| {
        let pool = build_pool(default_num_threads())
            .or_else(|_| build_pool(1))
            .expect("a one-thread pool can always be built");
        RwLock::new(pool)
    })
}

fn current_pool() -> Arc<ThreadPool> {
    // A poisoned lock only means another thread panicked while swapping pools; the Arc
    // inside is still a valid pool.
    let guard = pool_cell().read().unwrap_or_else(|poisoned| poisoned.into_inner());
    Arc::clone(&guard)
}

/// Sets how many threads later kernel calls use (`0` means the default).
pub fn set_num_threads(num_threads: usize) -> Result<(), ThreadPoolBuildError> {
    let wanted = if num_threads == 0 { default_num_threads() } else { num_threads };
    let pool = build_pool(wanted)?;
    let mut guard = pool_cell().write().unwrap_or_else(|poisoned| poisoned.into_inner());
    *guard = pool;
    Ok(())
}

/// How many threads kernel calls use.
pub fn num_threads() -> usize {
    current_pool().current_num_threads()
}

/// Runs `work` inside the crate's pool, so rayon calls in it use that pool's threads.
pub fn install<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    current_pool().install(work)
}

/// Runs `work(first_row, rows)` in the pool on consecutive blocks of `rows_per_chunk` rows
/// of the row-major `out` (rows of `row_len` elements), each block on one thread.
///
/// Every output row belongs to exactly one block, so blocks can be filled without locks,
/// and a row's value never depends on which thread or block computed it.
pub fn for_each_row_chunk<O: Send>(
    out: &mut [O],
    row_len: usize,
    rows_per_chunk: usize,
    work: impl Fn(usize, &mut [O]) + Sync,
) {
    if out.is_empty() || row_len == 0 {
        return;
    }
    let rows_per_chunk = rows_per_chunk.max(1);
    install(|| {
        use rayon::prelude::*;
        out.par_chunks_mut(rows_per_chunk * row_len)
            .enumerate()
            .for_each(|(index, rows)| work(index * rows_per_chunk, rows))
    });
}
