//! The one error type of the core. Every failure a caller can cause is a value of it,
//! so no input reaches a panic.

use std::fmt;

/// What went wrong in a kernel call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// An input matrix holds NaN or an infinity at (`row`, `col`).
    NonFinite { row: usize, col: usize },
    /// Two operands disagree on a dimension that must match.
    DimensionMismatch { what: &'static str, left: usize, right: usize },
    /// A buffer is too short for the shape it was said to have, or its layout is invalid.
    InvalidLayout(String),
    /// An argument is outside its allowed range.
    OutOfRange(String),
    /// The result needs more memory than can be allocated (`bytes` requested).
    TooLarge { bytes: u128 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NonFinite { row, col } => {
                write!(f, "contains NaN or infinity at row {row}, column {col}")
            }
            Error::DimensionMismatch { what, left, right } => {
                write!(f, "{what} do not match: {left} != {right}")
            }
            Error::InvalidLayout(message) | Error::OutOfRange(message) => f.write_str(message),
            Error::TooLarge { bytes } => write!(
                f,
                "the result needs {} of memory, more than can be allocated",
                human_bytes(*bytes)
            ),
        }
    }
}

impl std::error::Error for Error {}

/// `bytes` in the largest binary unit that keeps the number at or above 1.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {} ({bytes} bytes)", UNITS[unit])
    }
}

/// Types for which the all-zero byte pattern is a valid value.
///
/// # Safety
/// Implementors must be plain data whose every field is valid when all bits are zero.
pub unsafe trait Zeroable: Copy {}

// SAFETY: integers and floats are valid for every bit pattern, zero included.
unsafe impl Zeroable for u64 {}
// SAFETY: as above.
unsafe impl Zeroable for u32 {}
// SAFETY: as above.
unsafe impl Zeroable for i32 {}
// SAFETY: as above.
unsafe impl Zeroable for i8 {}
// SAFETY: as above.
unsafe impl Zeroable for f32 {}
// SAFETY: as above.
unsafe impl Zeroable for f64 {}

/// A zero-filled vector of `len` elements, or [`Error::TooLarge`] instead of aborting
/// the process when the allocation cannot be made.
///
/// Memory comes from the allocator's zeroed path (`calloc`), so large buffers are mapped
/// lazily as zero pages and first touched by the threads that fill them, instead of
/// being cleared by one thread up front.
pub fn try_zeroed<T: Zeroable>(len: usize) -> Result<Vec<T>, Error> {
    let bytes = (len as u128) * (std::mem::size_of::<T>() as u128);
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| Error::TooLarge { bytes })?;
    if layout.size() == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size, as `alloc_zeroed` requires.
    let pointer = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if pointer.is_null() {
        return Err(Error::TooLarge { bytes });
    }
    advise_huge_pages(pointer.cast(), layout.size());
    // SAFETY: `pointer` was allocated by the global allocator with the layout of
    // `[T; len]`, which is what `Vec<T>` with capacity `len` deallocates with; all `len`
    // elements are initialised, to zero bytes, which `T: Zeroable` makes valid values.
    Ok(unsafe { Vec::from_raw_parts(pointer, len, len) })
}

/// Asks Linux to back a large fresh buffer with 2 MiB pages, so that filling it takes
/// one page fault per 2 MiB instead of per 4 KiB (a measurable share of a product's time
/// when the result is hundreds of MiB). Only advice: failure changes nothing.
#[cfg(target_os = "linux")]
fn advise_huge_pages(pointer: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    const HUGE: usize = 2 << 20;
    if len < 4 * HUGE {
        return;
    }
    let start = (pointer as usize).next_multiple_of(PAGE);
    let end = (pointer as usize + len) / PAGE * PAGE;
    if end > start {
        // SAFETY: [start, end) lies inside the allocation just made and is page aligned;
        // MADV_HUGEPAGE changes how its pages are backed, never their contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_pointer: *mut u8, _len: usize) {}

/// `a * b` for sizes, or [`Error::TooLarge`] when it overflows `usize`.
pub fn checked_len(a: usize, b: usize, element_bytes: usize) -> Result<usize, Error> {
    a.checked_mul(b)
        .filter(|len| len.checked_mul(element_bytes).is_some())
        .ok_or(Error::TooLarge { bytes: (a as u128) * (b as u128) * (element_bytes as u128) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_a_readable_unit() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB (3221225472 bytes)");
    }

    #[test]
    fn impossible_allocations_are_errors_not_aborts() {
        assert!(matches!(try_zeroed::<u64>(usize::MAX / 4), Err(Error::TooLarge { .. })));
        assert!(matches!(checked_len(usize::MAX, 3, 4), Err(Error::TooLarge { .. })));
        assert_eq!(try_zeroed::<i32>(3).unwrap(), vec![0, 0, 0]);
    }
}
