"""Exact bit kernels for 1-bit networks, backed by the Rust core.

Signs are packed one bit per entry (a set bit is +1, and ``sign(0) = +1``), so a matrix
of 1-bit weights takes 1/32 of the memory of float32 and its products are computed with
XNOR/AND and popcount instructions, exactly in integers. The functions here validate
their arguments, release the GIL and call :mod:`pybinscale._core`; results never depend
on the SIMD path (:func:`pybinscale.simd_path`) or the thread count.

Notation: ``sign(A)`` is ``np.where(A >= 0, 1, -1)``.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from . import _core
from ._validation import (
    ResultTooLargeError,
    as_float_matrix,
    check_int_in_range,
    check_positive_finite,
    check_result_fits,
)

__all__ = [
    "PackedSigns",
    "ResultTooLargeError",
    "pack_signs",
    "unpack_signs",
    "sign_matmul",
    "quantize_activations",
    "quantized_matmul",
    "activation_patterns",
    "coactivation_counts",
    "ntk_gram",
    "ntk_limit",
]

WORD_BITS: int = _core.WORD_BITS
ROW_ALIGN_WORDS: int = _core.ROW_ALIGN_WORDS
MAX_ACTIVATION_BITS: int = _core.MAX_ACTIVATION_BITS


def _stride_for(n_cols: int) -> int:
    words = -(-n_cols // WORD_BITS)
    return -(-words // ROW_ALIGN_WORDS) * ROW_ALIGN_WORDS


class PackedSigns:
    """A matrix of signs (or 0/1 indicators) packed one bit per entry.

    Row ``i`` is ``words[i]``; column ``j`` is bit ``j % 64`` of word ``j // 64``. Rows
    are padded to a multiple of 8 words (512 bits, one AVX-512 register) and every
    padding bit is zero. A set bit means +1 for signs (``sign(0) = +1``) and "active"
    for activation patterns. Instances are immutable and picklable.

    Parameters
    ----------
    words : ndarray of uint64, shape (n_rows, stride)
        The packed rows; ``stride`` is a multiple of 8 and holds at least ``n_cols``
        bits. The array is copied.
    n_cols : int
        The number of meaningful bits per row.

    Attributes
    ----------
    shape : tuple of int
        ``(n_rows, n_cols)``, the shape of the matrix the bits stand for.
    words : ndarray of uint64
        The storage, read-only.
    nbytes : int
        Bytes of storage.

    See Also
    --------
    pack_signs : Build one from a real matrix.
    unpack_signs : Recover the ±1 matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import pack_signs
    >>> P = pack_signs(np.array([[0.5, -2.0, 0.0]]))
    >>> P.shape
    (1, 3)
    >>> int(P.words[0, 0])  # bits 0 and 2 set: 0.5 >= 0 and 0.0 >= 0
    5
    """

    __slots__ = ("_words", "_n_cols")

    def __init__(self, words: Any, n_cols: int) -> None:
        n_cols = check_int_in_range(n_cols, "n_cols", 0, np.iinfo(np.int64).max)
        array = np.asarray(words)
        if array.dtype != np.uint64:
            raise TypeError(f"words: expected a uint64 array, got dtype {array.dtype}")
        if array.ndim != 2:
            raise ValueError(f"words: expected a 2-D array, got shape {array.shape}")
        array = np.array(array, dtype=np.uint64, order="C", copy=True)
        if array.shape[1] % ROW_ALIGN_WORDS:
            raise ValueError(
                f"words: the row stride {array.shape[1]} must be a multiple of {ROW_ALIGN_WORDS}"
            )
        _core.check_packed(array, n_cols, "words")
        self._set(array, n_cols)

    def _set(self, words: np.ndarray, n_cols: int) -> None:
        words.setflags(write=False)
        self._words = words
        self._n_cols = n_cols

    @classmethod
    def _from_core(cls, words: np.ndarray, n_cols: int) -> PackedSigns:
        """Wrap words the core produced (already valid) without copying."""
        packed = cls.__new__(cls)
        packed._set(words, n_cols)
        return packed

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self._words.shape[0]), self._n_cols)

    @property
    def words(self) -> np.ndarray:
        return self._words

    @property
    def nbytes(self) -> int:
        return int(self._words.nbytes)

    def unpack(self, dtype: Any = np.float32) -> np.ndarray:
        """Return the ±1 matrix; see :func:`unpack_signs`."""
        return unpack_signs(self, dtype=dtype)

    def __reduce__(self) -> tuple[Any, ...]:
        return (PackedSigns, (self._words, self._n_cols))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedSigns):
            return NotImplemented
        return self.shape == other.shape and np.array_equal(self._words, other._words)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        rows, cols = self.shape
        return f"PackedSigns(shape=({rows}, {cols}), stride={self._words.shape[1]} words, nbytes={self.nbytes})"


SignInput = Union[np.ndarray, PackedSigns, Any]


def pack_signs(A: Any) -> PackedSigns:
    """Pack the signs of a real matrix, one bit per entry.

    Parameters
    ----------
    A : array_like of shape (n_rows, n_cols)
        Real values; float32 and float64 are read in place (integers and booleans are
        converted to float64).

    Returns
    -------
    PackedSigns
        Bit ``(i, j)`` is set when ``A[i, j] >= 0``.

    Raises
    ------
    ValueError
        If ``A`` is not 2-D or holds NaN or infinity.
    TypeError
        If ``A`` is not real-valued (complex, object, strings).

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import pack_signs
    >>> A = np.random.default_rng(0).standard_normal((4, 4096)).astype(np.float32)
    >>> P = pack_signs(A)
    >>> P.shape, P.nbytes, A.nbytes // P.nbytes
    ((4, 4096), 2048, 32)
    """
    array = as_float_matrix(A, "A")
    check_result_fits("pack_signs", (array.shape[0], _stride_for(array.shape[1])), np.uint64)
    return PackedSigns._from_core(_core.pack_signs(array, "A"), array.shape[1])


def unpack_signs(P: PackedSigns, dtype: Any = np.float32) -> np.ndarray:
    """Recover the ±1 matrix from packed signs.

    Parameters
    ----------
    P : PackedSigns
        Packed signs, as from :func:`pack_signs`.
    dtype : numpy dtype, default float32
        The type of the result (any numeric type that holds -1 and +1).

    Returns
    -------
    ndarray of shape P.shape
        +1 where the bit is set, -1 elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import pack_signs, unpack_signs
    >>> unpack_signs(pack_signs([[0.5, -2.0, 0.0]]))
    array([[ 1., -1.,  1.]], dtype=float32)
    """
    _require_packed(P, "P")
    target = np.dtype(dtype)
    if target.kind not in "iuf" or target.kind == "u":
        raise TypeError(f"dtype: expected a signed integer or float dtype that holds -1, got {target}")
    check_result_fits("unpack_signs", P.shape, np.int8)
    signs = _core.unpack_signs(P.words, P.shape[1])
    return signs if target == np.int8 else signs.astype(target)


def _require_packed(P: Any, name: str) -> None:
    if not isinstance(P, PackedSigns):
        raise TypeError(f"{name}: expected PackedSigns, got {type(P).__name__}")


def _packed_operand(value: SignInput, name: str) -> PackedSigns:
    """``value`` as packed signs, packing a real array on the way."""
    if isinstance(value, PackedSigns):
        return value
    array = as_float_matrix(value, name)
    return PackedSigns._from_core(_core.pack_signs(array, name), array.shape[1])


def _check_inner(name_a: str, cols_a: int, name_b: str, cols_b: int) -> None:
    if cols_a != cols_b:
        raise ValueError(
            f"{name_a} has {cols_a} columns but {name_b} has {cols_b}: the inner dimensions must match"
        )


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {value!r}")
    return bool(value)


def sign_matmul(A: SignInput, B: SignInput) -> np.ndarray:
    """Exact product of sign matrices, ``sign(A) @ sign(B).T``, by XNOR-popcount.

    Each entry is ``K - 2 * popcount(a_i XOR b_j)`` over the packed rows, where ``K`` is
    the number of columns: exact in integers for any ``K`` below 2**31.

    Parameters
    ----------
    A : array_like of shape (n, K) or PackedSigns
        Real values (only their signs matter) or signs packed by :func:`pack_signs`.
    B : array_like of shape (m, K) or PackedSigns
        The same for the second operand; note the product is with ``B``'s transpose.

    Returns
    -------
    ndarray of int32, shape (n, m)

    Raises
    ------
    ValueError
        If the inner dimensions differ, an input holds NaN or infinity, or the result
        would not fit in memory.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import sign_matmul
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.standard_normal((5, 300)), rng.standard_normal((7, 300))
    >>> C = sign_matmul(A, B)
    >>> C.dtype, C.shape
    (dtype('int32'), (5, 7))
    >>> bool(np.array_equal(C, np.where(A >= 0, 1, -1) @ np.where(B >= 0, 1, -1).T))
    True
    """
    a_rows, a_cols = _shape_of(A, "A")
    b_rows, b_cols = _shape_of(B, "B")
    _check_inner("A", a_cols, "B", b_cols)
    check_result_fits("sign_matmul", (a_rows, b_rows), np.int32)
    packed_a = _packed_operand(A, "A")
    packed_b = packed_a if B is A else _packed_operand(B, "B")
    return _core.sign_matmul(packed_a.words, packed_b.words, a_cols)


def _shape_of(value: SignInput, name: str) -> tuple[int, int]:
    """The matrix shape of a sign operand, validating a real array on the way."""
    if isinstance(value, PackedSigns):
        return value.shape
    rows, cols = as_float_matrix(value, name).shape
    return rows, cols


def quantize_activations(X: Any, activation_bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Quantise rows of activations with BitNet's absmax rule.

    For row ``x`` with ``gamma = max |x|`` and ``Q = 2**(b - 1)`` for ``b`` bits, the
    integers are ``round(x * (Q / gamma))`` (in float64, to nearest with ties to even;
    BitNet multiplies by the factor ``Q / gamma``) clipped to ``[-Q, Q - 1]``, the range
    of a ``b``-bit two's complement integer (BitNet's clip to ``±(Q - eps)`` once stored
    in ``b`` bits). With one bit the integers are ``sign(x)`` in {-1, +1}. The
    row's scale is ``gamma / Q``, so ``values * scales[:, None]`` approximates ``X``.
    A row of zeros gets integers 0 (+1 for one bit) and scale 0.

    Parameters
    ----------
    X : array_like of shape (n, K)
        Real activations; K must be at least 1.
    activation_bits : int, default 8
        Bits per activation, from 1 to 8.

    Returns
    -------
    values : ndarray of int8, shape (n, K)
    scales : ndarray of float64, shape (n,)

    Examples
    --------
    >>> from pybinscale import quantize_activations
    >>> values, scales = quantize_activations([[0.5, -1.0, 0.25]], activation_bits=8)
    >>> values
    array([[  64, -128,   32]], dtype=int8)
    >>> scales
    array([0.0078125])
    """
    array = as_float_matrix(X, "X")
    bits = check_int_in_range(activation_bits, "activation_bits", 1, MAX_ACTIVATION_BITS)
    if array.shape[1] == 0:
        raise ValueError("X: has no columns; absmax quantisation needs at least one value per row")
    check_result_fits("quantize_activations", array.shape, np.int8)
    return _core.quantize_activations(array, bits)


def quantized_matmul(X: Any, W: SignInput, activation_bits: int = 8) -> np.ndarray:
    """Product of ``b``-bit activations with 1-bit weights, exact in integers.

    Rows of ``X`` are quantised as in :func:`quantize_activations`, multiplied by
    ``sign(W).T`` exactly in integers, one bit plane of the activations at a time with
    AND-popcount (bit-serial), and each row is rescaled by its ``gamma / Q``. The result
    equals ``(values @ sign(W).T) * scales[:, None]`` with the integers and scales of
    :func:`quantize_activations`, evaluated in float64 and then cast to ``X``'s dtype.

    Parameters
    ----------
    X : array_like of shape (n, K)
        Real activations (float32 results for float32 input, float64 otherwise).
    W : array_like of shape (m, K) or PackedSigns
        Weights; only their signs are used.
    activation_bits : int, default 8
        Bits per activation, from 1 to 8; the cost grows linearly with it.

    Returns
    -------
    ndarray of shape (n, m)

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import quantized_matmul, quantize_activations
    >>> rng = np.random.default_rng(0)
    >>> X, W = rng.standard_normal((3, 100)), rng.standard_normal((4, 100))
    >>> Y = quantized_matmul(X, W, activation_bits=4)
    >>> values, scales = quantize_activations(X, activation_bits=4)
    >>> exact = (values.astype(np.int64) @ np.where(W >= 0, 1, -1).T) * scales[:, None]
    >>> bool(np.array_equal(Y, exact))
    True
    """
    array = as_float_matrix(X, "X")
    bits = check_int_in_range(activation_bits, "activation_bits", 1, MAX_ACTIVATION_BITS)
    w_rows, w_cols = _shape_of(W, "W")
    _check_inner("X", array.shape[1], "W", w_cols)
    if array.shape[1] == 0:
        raise ValueError("X: has no columns; absmax quantisation needs at least one value per row")
    planes_bytes = array.shape[0] * bits * _stride_for(array.shape[1]) * 8
    check_result_fits("quantized_matmul", (array.shape[0], w_rows), array.dtype, planes_bytes)
    packed_w = _packed_operand(W, "W")
    return _core.quantized_matmul(array, packed_w.words, w_cols, bits)


def _common_float_type(*arrays: np.ndarray | None) -> np.dtype:
    """The float type all the arrays fit in (float64 if any is float64)."""
    return np.result_type(*[a for a in arrays if a is not None])


def _with_type(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return array if array.dtype == dtype else array.astype(dtype)


def activation_patterns(X: Any, W: Any, quantized: bool = True) -> PackedSigns:
    """Packed ReLU activation patterns of a hidden layer.

    Bit ``(i, r)`` is set when neuron ``r`` is active on sample ``i``:
    ``<q(w_r), x_i> >= 0`` with ``q = sign`` when ``quantized`` (1-bit weights) and
    the identity otherwise. Inner products are accumulated in float64 with fused
    multiply-adds in a fixed order, so the bits are the same on every machine.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs, one per row.
    W : array_like of shape (m, d)
        Hidden weights, one neuron per row.
    quantized : bool, default True
        Use the signs of ``W`` (the 1-bit network) rather than ``W`` itself.

    Returns
    -------
    PackedSigns of shape (n, m)

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import activation_patterns
    >>> X = np.array([[1.0, 0.0], [0.0, -1.0]])
    >>> W = np.array([[0.3, -0.2], [-1.0, 0.1], [0.0, 2.0]])
    >>> activation_patterns(X, W).unpack(dtype=np.int8)  # +1 active, -1 inactive
    array([[ 1, -1,  1],
           [ 1, -1, -1]], dtype=int8)
    """
    x = as_float_matrix(X, "X")
    w = as_float_matrix(W, "W")
    _check_inner("X", x.shape[1], "W", w.shape[1])
    quantized = _check_flag(quantized, "quantized")
    check_result_fits("activation_patterns", (x.shape[0], _stride_for(w.shape[0])), np.uint64)
    dtype = _common_float_type(x, w)
    words = _core.activation_patterns(_with_type(x, dtype), _with_type(w, dtype), quantized)
    return PackedSigns._from_core(words, w.shape[0])


def _packed_indicators(value: Any, name: str) -> PackedSigns:
    """0/1 patterns as packed bits: PackedSigns as they are, boolean arrays packed."""
    if isinstance(value, PackedSigns):
        return value
    array = np.asarray(value)
    if array.dtype != np.bool_:
        raise TypeError(
            f"{name}: expected PackedSigns (e.g. from activation_patterns) or a boolean array, "
            f"got {type(value).__name__} of dtype {getattr(array, 'dtype', None)}"
        )
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got {array.ndim}-D with shape {array.shape}")
    rows, cols = array.shape
    stride = _stride_for(cols)
    padded = np.zeros((rows, stride * WORD_BITS), dtype=np.bool_)
    padded[:, :cols] = array
    # Little-endian bit order within little-endian bytes puts column j at bit j % 64 of
    # word j // 64, the core's layout.
    words = np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64, copy=False)
    return PackedSigns._from_core(np.ascontiguousarray(words), cols)


def coactivation_counts(P: Any, Q: Any = None) -> np.ndarray:
    """Count, for every pair of rows, the bits set in both: ``popcount(P_i AND Q_j)``.

    For activation patterns this is the number of neurons active on both samples, the
    integer core of the empirical NTK. With ``Q=None`` the symmetric matrix of ``P``
    with itself is computed on one triangle and mirrored.

    Parameters
    ----------
    P : PackedSigns or bool array of shape (n, m)
    Q : PackedSigns or bool array of shape (n_q, m), optional

    Returns
    -------
    ndarray of int32, shape (n, n_q)
        Equal to ``P.astype(int) @ Q.astype(int).T`` for boolean ``P``, ``Q``.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import coactivation_counts
    >>> P = np.array([[True, True, False], [False, True, True]])
    >>> coactivation_counts(P)
    array([[2, 1],
           [1, 2]], dtype=int32)
    """
    packed_p = _packed_indicators(P, "P")
    packed_q = None if Q is None else _packed_indicators(Q, "Q")
    if packed_q is not None:
        _check_inner("P", packed_p.shape[1], "Q", packed_q.shape[1])
    n_q = packed_p.shape[0] if packed_q is None else packed_q.shape[0]
    check_result_fits("coactivation_counts", (packed_p.shape[0], n_q), np.int32)
    return _core.coactivation_counts(
        packed_p.words, None if packed_q is None else packed_q.words, packed_p.shape[1]
    )


def _check_no_overflow(K: np.ndarray, what: str) -> np.ndarray:
    """Refuse a kernel matrix with an infinite or NaN entry: for finite inputs that is
    an overflow of float64 (two passes over ``K``, nothing allocated)."""
    if K.size and not (np.isfinite(K.min()) and np.isfinite(K.max())):
        raise ValueError(
            f"X: {what} overflowed float64 (its entries grow like kappa**2 times the "
            "inner products of the rows); scale the rows of X (and Z) down, e.g. to unit norm"
        )
    return K


def ntk_gram(
    X: Any, W: Any, Z: Any = None, kappa: float = 1.0, quantized: bool = True
) -> np.ndarray:
    """Empirical first-layer NTK Gram matrix of a two-layer ReLU network.

    ``H[i, j] = kappa**2 / m * <x_i, z_j> * #{r : <q(w_r), x_i> >= 0 and <q(w_r), z_j> >= 0}``
    with ``m`` the number of neurons (rows of ``W``) and ``q`` as in
    :func:`activation_patterns`. The count is an AND-popcount over packed patterns.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs (the theory assumes unit-norm rows; no normalisation is done here).
    W : array_like of shape (m, d)
        Hidden weights; ``m >= 1``.
    Z : array_like of shape (n_z, d), optional
        Second set of inputs; ``None`` means ``X``, and then only one triangle is
        computed and mirrored.
    kappa : float, default 1.0
        Output scale of the network.
    quantized : bool, default True
        Use the 1-bit weights ``sign(W)``.

    Returns
    -------
    ndarray of float64, shape (n, n_z)

    Raises
    ------
    ValueError
        If an input holds NaN or infinity, has no features (or ``W`` no rows), or an
        inner product ``<x_i, z_j>`` (in the fused multiply-add order) or an entry
        overflows float64.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import ntk_gram
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((4, 8))
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> W = rng.standard_normal((1000, 8))
    >>> H = ntk_gram(X, W)
    >>> H.shape, bool(np.allclose(H, H.T))
    ((4, 4), True)
    >>> P = (X @ np.where(W >= 0, 1.0, -1.0).T >= 0).astype(float)
    >>> bool(np.allclose(H, (X @ X.T) * (P @ P.T) / 1000))
    True
    """
    x, z, w = _kernel_inputs(X, Z, W)
    assert w is not None  # W was given
    kappa = check_positive_finite(kappa, "kappa")
    quantized = _check_flag(quantized, "quantized")
    n_z = x.shape[0] if z is None else z.shape[0]
    pattern_bytes = (x.shape[0] + n_z) * 2 * _stride_for(w.shape[0]) * 8
    check_result_fits("ntk_gram", (x.shape[0], n_z), np.float64, pattern_bytes)
    return _check_no_overflow(_core.ntk_gram(x, w, z, kappa, quantized), "the empirical NTK")


def _kernel_inputs(
    X: Any, Z: Any, W: Any = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate the inputs of the NTK functions and cast them to one float type."""
    x = as_float_matrix(X, "X")
    if x.shape[1] == 0:
        raise ValueError("X: has no features (0 columns); the NTK needs at least one")
    z = None if Z is None else as_float_matrix(Z, "Z")
    if z is not None:
        _check_inner("X", x.shape[1], "Z", z.shape[1])
    w = None if W is None else as_float_matrix(W, "W")
    if w is not None:
        _check_inner("X", x.shape[1], "W", w.shape[1])
        if w.shape[0] == 0:
            raise ValueError("W: has no rows; the NTK averages over neurons and needs at least one")
    dtype = _common_float_type(x, z, w)
    return (
        _with_type(x, dtype),
        None if z is None else _with_type(z, dtype),
        None if w is None else _with_type(w, dtype),
    )


def ntk_limit(X: Any, Z: Any = None, kappa: float = 1.0, output_layer: bool = False) -> np.ndarray:
    """Closed-form infinite-width NTK of a two-layer ReLU network (arc-cosine kernels).

    ``H*[i, j] = kappa**2 * <x_i, z_j> * (pi - theta_ij) / (2 pi)`` with ``theta_ij`` the
    angle between ``x_i`` and ``z_j``: the limit of :func:`ntk_gram` with
    ``quantized=False`` and Gaussian weights as the width grows. With ``output_layer``
    the NNGP term of a trained output layer is added,
    ``kappa**2 * |x_i| |z_j| * (sin theta + (pi - theta) cos theta) / (2 pi)``. Rows of
    zeros have no angle; both terms are 0 there.

    Parameters
    ----------
    X : array_like of shape (n, d)
    Z : array_like of shape (n_z, d), optional
        ``None`` means ``X`` (one triangle computed and mirrored).
    kappa : float, default 1.0
    output_layer : bool, default False

    Returns
    -------
    ndarray of float64, shape (n, n_z)

    Raises
    ------
    ValueError
        If an input holds NaN or infinity or has no features, or an entry (or the inner
        product it needs) overflows float64.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import ntk_limit
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    >>> ntk_limit(X).round(4)  # parallel: <x, x> / 2; orthogonal: 0
    array([[0.5   , 0.    , 0.2114],
           [0.    , 0.5   , 0.3181],
           [0.2114, 0.3181, 0.5   ]])
    """
    x, z, _ = _kernel_inputs(X, Z)
    kappa = check_positive_finite(kappa, "kappa")
    output_layer = _check_flag(output_layer, "output_layer")
    n_z = x.shape[0] if z is None else z.shape[0]
    check_result_fits("ntk_limit", (x.shape[0], n_z), np.float64)
    return _check_no_overflow(_core.ntk_limit(x, z, kappa, output_layer), "the NTK")
