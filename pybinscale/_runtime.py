"""Which SIMD path the kernels take and how many threads they use.

Both are process-wide. The environment variables ``PYBINSCALE_SIMD`` (``portable``,
``avx2`` or ``avx512``) and ``PYBINSCALE_NUM_THREADS`` set them at import; the functions
here change them later.
"""

from __future__ import annotations

import os
import warnings

from . import _core

__all__ = [
    "simd_path",
    "supported_simd_paths",
    "set_simd_path",
    "set_num_threads",
    "get_num_threads",
]


def simd_path() -> str:
    """Name the instruction-set path the kernels take on this machine.

    Returns
    -------
    str
        ``"avx512"`` (AVX-512 with VPOPCNTDQ), ``"avx2"`` or ``"portable"``: the fastest
        path the CPU supports, unless :func:`set_simd_path` or the ``PYBINSCALE_SIMD``
        environment variable pinned another.

    Examples
    --------
    >>> import pybinscale
    >>> pybinscale.simd_path() in pybinscale.supported_simd_paths()
    True
    """
    return _core.simd_path()


def supported_simd_paths() -> list[str]:
    """List the SIMD paths this CPU can run, slowest first.

    Examples
    --------
    >>> import pybinscale
    >>> pybinscale.supported_simd_paths()[0]
    'portable'
    """
    return list(_core.supported_simd_paths())


def set_simd_path(path: str | None) -> None:
    """Pin the kernels to one SIMD path, or return to automatic choice.

    All paths give bitwise-identical results; pinning one is for testing and for
    comparing their speed.

    Parameters
    ----------
    path : {"portable", "avx2", "avx512"} or None
        The path to use from now on; ``None`` picks the fastest the CPU supports.

    Raises
    ------
    ValueError
        If ``path`` is not a known path or this CPU cannot run it.

    Examples
    --------
    >>> import pybinscale
    >>> pybinscale.set_simd_path("portable")
    >>> pybinscale.simd_path()
    'portable'
    >>> pybinscale.set_simd_path(None)
    """
    if path is not None and not isinstance(path, str):
        raise TypeError(f"path: expected a str or None, got {type(path).__name__}")
    _core.set_simd_path(path)


def set_num_threads(num_threads: int | None) -> None:
    """Set how many threads the kernels use.

    Results never depend on the thread count; only the speed does.

    Parameters
    ----------
    num_threads : int or None
        A positive count, or ``None`` for the default: ``PYBINSCALE_NUM_THREADS`` if set,
        otherwise the number of CPUs available to this process.

    Raises
    ------
    ValueError
        If ``num_threads`` is not a positive integer.

    Examples
    --------
    >>> import pybinscale
    >>> pybinscale.set_num_threads(1)
    >>> pybinscale.get_num_threads()
    1
    >>> pybinscale.set_num_threads(None)
    """
    if num_threads is None:
        _core.set_num_threads(0)
        return
    if isinstance(num_threads, bool) or not isinstance(num_threads, int):
        raise TypeError(f"num_threads: expected a positive int or None, got {num_threads!r}")
    if num_threads < 1:
        raise ValueError(f"num_threads: expected a positive int or None, got {num_threads}")
    _core.set_num_threads(num_threads)


def get_num_threads() -> int:
    """Return how many threads the kernels use.

    Examples
    --------
    >>> import pybinscale
    >>> pybinscale.get_num_threads() >= 1
    True
    """
    return int(_core.get_num_threads())


def _apply_environment() -> None:
    """Honour ``PYBINSCALE_SIMD`` at import; a bad value warns rather than breaking import."""
    requested = os.environ.get("PYBINSCALE_SIMD", "").strip()
    if not requested or requested.lower() == "auto":
        return
    try:
        _core.set_simd_path(requested)
    except ValueError as error:
        warnings.warn(
            f"PYBINSCALE_SIMD={requested!r} ignored ({error}); using {_core.simd_path()!r}",
            RuntimeWarning,
            stacklevel=3,
        )


_apply_environment()
