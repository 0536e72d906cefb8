"""Argument checks shared by the kernels and the estimators.

Every check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind,
wrong value) with a message that names the argument and says what was expected.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

__all__ = [
    "ResultTooLargeError",
    "as_float_matrix",
    "check_result_fits",
    "check_positive_finite",
    "check_int_in_range",
    "format_bytes",
]


class ResultTooLargeError(ValueError, MemoryError):
    """A result would not fit in the memory available, checked before allocating it.

    It is both a ``ValueError`` (the arguments ask for too much) and a ``MemoryError``
    (so code that already handles running out of memory handles it too).
    """


def format_bytes(nbytes: int) -> str:
    """Format a byte count with a binary unit, e.g. ``'1.5 GiB'``.

    Examples
    --------
    >>> format_bytes(3 * 1024**3)
    '3.0 GiB'
    >>> format_bytes(12)
    '12 B'
    """
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _available_memory() -> int | None:
    """Bytes of memory the OS says can be allocated without swapping, if it says."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_result_fits(what: str, shape: tuple[int, ...], dtype: Any, extra_bytes: int = 0) -> None:
    """Raise :class:`ResultTooLargeError` if an array of ``shape`` and ``dtype`` (plus
    ``extra_bytes`` of working memory) would not fit in the memory available now."""
    nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize + extra_bytes
    available = _available_memory()
    if available is not None and nbytes > available:
        dims = " x ".join(str(n) for n in shape)
        raise ResultTooLargeError(
            f"{what} would need {format_bytes(nbytes)} ({nbytes} bytes) for its "
            f"{dims} {np.dtype(dtype).name} result and working memory, but only "
            f"{format_bytes(available)} is available; compute it in blocks of rows instead"
        )


def as_float_matrix(value: Any, name: str) -> np.ndarray:
    """Return ``value`` as a 2-D float32 or float64 array whose rows are contiguous.

    Integer and boolean arrays become float64 and float16 becomes float32; float32 and
    float64 arrays are used as they are unless their rows are not contiguous or they are
    not aligned (e.g. a field of a record array, or a buffer read at an odd offset), the
    only cases in which they are copied.
    """
    if hasattr(value, "words") and hasattr(value, "shape") and not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a real-valued array, got {type(value).__name__}")
    if hasattr(value, "toarray") and hasattr(value, "nnz"):
        raise TypeError(f"{name}: sparse matrices are not supported; pass {name}.toarray()")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{name}: cannot be read as a numeric array ({error})") from None
    kind = array.dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"{name}: unsupported dtype {array.dtype}; expected float32 or float64 "
            "(integers and booleans are converted to float64)"
        )
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got {array.ndim}-D with shape {array.shape}")
    if kind in "biu" or array.dtype.itemsize > 8:
        array = array.astype(np.float64)
    elif array.dtype.itemsize < 4:
        array = array.astype(np.float32)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    rows, cols = array.shape
    if rows and cols:
        row_stride, col_stride = array.strides
        if (
            (cols > 1 and col_stride != array.itemsize)
            or (rows > 1 and row_stride < cols * array.itemsize)
            # The core reads elements at whole multiples of the item size from an
            # aligned start: a row stride of 20 bytes for float64 would be misread.
            or not array.flags.aligned
        ):
            array = np.ascontiguousarray(array)
    return array


def check_positive_finite(value: Any, name: str) -> float:
    """Return ``value`` as a float, requiring a real, finite, positive number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a positive real number, got {value!r}")
    result = float(value)
    if not np.isfinite(result) or result <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return result


def check_int_in_range(value: Any, name: str, low: int, high: int) -> int:
    """Return ``value`` as an int, requiring an integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer from {low} to {high}, got {value!r}")
    result = int(value)
    if not low <= result <= high:
        raise ValueError(f"{name}: expected an integer from {low} to {high}, got {result}")
    return result
