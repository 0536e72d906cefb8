"""Property-based tests of every public kernel (hypothesis).

Every call gets random shapes (0 and 1 included, and widths that cross the 64-bit words
and 512-bit rows of the packed layout), dtypes (float64, float32, float16, integers,
booleans, big-endian), memory layouts (C, Fortran, strided views, reversed views, rows
spaced apart, read-only, memory-mapped, fields of record arrays, unaligned buffers,
nested lists) and values (subnormals, huge magnitudes, signed zeros, all-equal and
duplicated rows, rows scaled by very different powers of ten), on a random SIMD path and
thread count. Each result is compared with a reference written here from the documented
rule, bit for bit where the kernel promises exact results (packing, integer products,
the fused multiply-add order of inner products), to a tolerance for the closed-form NTK;
an input outside the documented domain must raise ``ValueError``/``TypeError`` naming
the argument. Nothing may crash, hang, return NaN or a wrong shape.

The examples are derandomised (the same cases on every run); ``CASES`` counts the calls
each test made, and ``test_cases_ran`` checks and reports them (set
``PYBINSCALE_CASES_FILE`` to collect them, as scripts/reliability.py does).
"""

from __future__ import annotations

import collections
import math
import pickle
import tempfile
import weakref
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pybinscale as pb
from property_support import property_settings, report_cases

PATHS = pb.supported_simd_paths()
#: Calls made by each property test in this session, and how they ended.
CASES: collections.Counter[str] = collections.Counter()
OUTCOMES: collections.Counter[str] = collections.Counter()
#: Examples asked of hypothesis per test; the counts reported are the calls really made.
EXAMPLES = 200

SETTINGS = property_settings(EXAMPLES)

_MEMMAP_DIR = tempfile.TemporaryDirectory(prefix="pybinscale-props-")
weakref.finalize(_MEMMAP_DIR, _MEMMAP_DIR.cleanup)


# --------------------------------------------------------------------------- inputs

FLOAT_DTYPES = [np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16),
                np.dtype(">f8"), np.dtype(">f4")]
OTHER_DTYPES = [np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.int8),
                np.dtype(np.uint8), np.dtype(np.uint64), np.dtype(np.bool_)]
LAYOUTS = ["C", "F", "strided", "reversed", "spaced-rows", "readonly", "memmap",
           "record-field", "unaligned", "list"]
#: Column counts around the packed layout's boundaries (64-bit words, 512-bit rows).
WIDE = [63, 64, 65, 127, 128, 129, 511, 512, 513]


def logical(value: Any) -> np.ndarray:
    """What the kernels compute on: float64, or float32 for float32 and float16 input."""
    array = np.asarray(value)
    if array.dtype.kind == "f" and array.dtype.itemsize <= 4:
        return array.astype(np.float32)
    return array.astype(np.float64)


def laid_out(array: np.ndarray, layout: str) -> Any:
    """``array``'s values in the given memory layout (or as nested lists)."""
    rows, cols = array.shape
    if layout == "C":
        return np.ascontiguousarray(array)
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "strided":
        big = np.zeros((2 * rows, 3 * cols), dtype=array.dtype)
        big[::2, ::3] = array
        return big[::2, ::3]
    if layout == "reversed":
        return np.ascontiguousarray(array[::-1, ::-1])[::-1, ::-1]
    if layout == "spaced-rows":  # contiguous rows, spaced apart: read in place
        big = np.zeros((rows, cols + 5), dtype=array.dtype)
        big[:, :cols] = array
        return big[:, :cols]
    if layout == "readonly":
        copy = array.copy()
        copy.setflags(write=False)
        return copy
    if layout == "memmap":
        if array.size == 0:
            return array
        path = tempfile.mktemp(dir=_MEMMAP_DIR.name, suffix=".dat")
        written = np.memmap(path, dtype=array.dtype, mode="w+", shape=array.shape)
        written[:] = array
        written.flush()
        del written
        return np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)
    if layout == "record-field":  # rows 4 bytes apart from alignment, e.g. rec["x"]
        record = np.zeros(rows, dtype=[("x", array.dtype, (cols,)), ("tag", "<i4")])
        record["x"] = array
        return record["x"]
    if layout == "unaligned":  # a buffer read at an odd offset
        raw = np.zeros(array.nbytes + 1, dtype=np.uint8)
        view = np.frombuffer(raw.data, dtype=array.dtype, offset=1, count=array.size)
        view = view.reshape(array.shape)
        np.copyto(view, array)
        return view
    if layout == "list":
        return array.tolist() if rows else array  # [] would be 1-D
    raise AssertionError(layout)


@st.composite
def matrices(
    draw: st.DrawFn,
    rows: st.SearchStrategy[int] | None = None,
    cols: st.SearchStrategy[int] | int | None = None,
    floats_only: bool = False,
    dtype: np.dtype | None = None,
) -> Any:
    """A matrix with a random dtype, layout and (possibly extreme) values."""
    n_rows = draw(rows if rows is not None else st.integers(0, 5))
    if isinstance(cols, int):
        n_cols = cols
    else:
        n_cols = draw(cols if cols is not None else st.one_of(st.integers(0, 6), st.sampled_from(WIDE)))
    if dtype is None:
        dtype = draw(st.sampled_from(FLOAT_DTYPES if floats_only else FLOAT_DTYPES + OTHER_DTYPES))
    # Values of any magnitude (hypothesis favours the extremes: subnormals, the largest
    # finite values, signed zeros), or moderate ones, where most results are computed.
    elements = hnp.from_dtype(dtype, allow_nan=False, allow_infinity=False)
    if dtype.kind == "f" and draw(st.sampled_from(["moderate", "moderate", "any"])) == "moderate":
        elements = st.floats(-100.0, 100.0, width=8 * min(dtype.itemsize, 8))
    array = draw(hnp.arrays(dtype, (n_rows, n_cols), elements=elements))
    if n_rows > 1 and array.size:
        structure = draw(st.sampled_from(["none", "none", "equal-rows", "duplicate-rows",
                                          "scaled-rows"]))
        if structure == "equal-rows":
            array[:] = array[0]
        elif structure == "duplicate-rows":
            source = draw(st.integers(0, n_rows - 1))
            array[draw(st.integers(0, n_rows - 1))] = array[source]
        elif structure == "scaled-rows" and dtype.kind == "f" and dtype.itemsize >= 4:
            with np.errstate(over="ignore", under="ignore"):
                for i in range(n_rows):
                    scaled = array[i] * dtype.type(10.0 ** draw(st.integers(-30, 30)))
                    if np.isfinite(scaled).all():
                        array[i] = scaled
    return laid_out(array, draw(st.sampled_from(LAYOUTS)))


@st.composite
def runtime(draw: st.DrawFn) -> tuple[str, int]:
    """A SIMD path this CPU supports and a thread count."""
    return draw(st.sampled_from(PATHS)), draw(st.sampled_from([1, 2]))


class _Pinned:
    def __init__(self, setting: tuple[str, int]) -> None:
        self.path, self.threads = setting

    def __enter__(self) -> None:
        pb.set_simd_path(self.path)
        pb.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        pb.set_simd_path(None)
        pb.set_num_threads(None)


_current: list[str] = [""]


def count(name: str) -> None:
    CASES[name] += 1
    _current[0] = name


def refused(call: Callable[[], Any], *names: str, kind: type = ValueError) -> str:
    """``call`` must raise ``kind`` whose message names one of ``names``."""
    with pytest.raises(kind) as caught:
        call()
    message = str(caught.value)
    assert any(name in message for name in names), message
    reasons = {"overflow": "overflow", "NaN": "NaN or infinity", "no ": "empty",
               "padding": "bad padding", "cannot hold": "bad stride"}
    reason = next((label for key, label in reasons.items() if key in message), "other")
    OUTCOMES[f"{_current[0]}: {type(caught.value).__name__} ({reason})"] += 1
    return message


# --------------------------------------------------------------------------- references


def sign(values: Any) -> np.ndarray:
    return np.where(logical(values) >= 0, 1, -1).astype(np.int64)


def fma(a: float, b: float, c: float) -> float:
    """IEEE fused multiply-add of finite ``a``, ``b``: ``a * b + c`` rounded once."""
    if math.isinf(c):
        return c
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    try:
        return float(exact)  # int / int true division: correctly rounded
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def fma_dot(a: np.ndarray, b: np.ndarray) -> float:
    """The documented order: ``acc = fma(a_k, b_k, acc)`` for k = 0, 1, ... from +0.0."""
    acc = 0.0
    for x, y in zip(a.tolist(), b.tolist()):
        acc = fma(x, y, acc)
    return acc


def fma_products(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.array([[fma_dot(a, b) for b in B] for a in A], dtype=np.float64).reshape(
        len(A), len(B))


def quantize_reference(X: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """BitNet absmax as documented: ``clip(rint(x * (Q / gamma)), -Q, Q - 1)`` in f64,
    evaluated as if f64 had no exponent limit (a row below ``Q / f64.max`` gives the
    integers of the same row scaled by a power of two)."""
    x = logical(X).astype(np.float64)
    values = np.zeros(x.shape, dtype=np.int8)
    scales = np.zeros(x.shape[0])
    levels = 2.0 ** (bits - 1)
    for i, row in enumerate(x):
        gamma = float(np.max(np.abs(row))) if row.size else 0.0
        if bits == 1:
            values[i] = np.where(row >= 0, 1, -1)
            scales[i] = gamma
            continue
        if gamma == 0.0:
            continue
        with np.errstate(over="ignore"):
            shift = 1.0 if math.isfinite(levels / gamma) else 2.0**600
        factor = levels / (gamma * shift)
        values[i] = np.clip(np.rint(row * shift * factor), -levels, levels - 1).astype(np.int8)
        scales[i] = gamma / levels
    return values, scales


# --------------------------------------------------------------------------- packing


@SETTINGS
@given(A=matrices(), setting=runtime())
def test_pack_signs_and_unpack(A: Any, setting: tuple[str, int]) -> None:
    count("pack_signs")
    with _Pinned(setting):
        P = pb.pack_signs(A)
        signs = pb.unpack_signs(P, dtype=np.int8)
    expected = sign(A)
    assert P.shape == expected.shape and signs.shape == expected.shape
    np.testing.assert_array_equal(signs, expected)
    assert P.words.shape == (expected.shape[0], pb.kernels._stride_for(expected.shape[1]))
    assert pb.PackedSigns(P.words, P.shape[1]) == P  # re-validates: padding bits are zero
    assert pickle.loads(pickle.dumps(P)) == P


@SETTINGS
@given(data=st.data(), setting=runtime())
def test_packed_signs_from_words(data: st.DataObject, setting: tuple[str, int]) -> None:
    """Any uint64 words: a valid PackedSigns, or a ValueError naming ``words``."""
    count("PackedSigns")
    rows = data.draw(st.integers(0, 4))
    stride = data.draw(st.sampled_from([0, 8, 16]))
    n_cols = data.draw(st.integers(0, 64 * stride + 70))
    words = data.draw(hnp.arrays(np.uint64, (rows, stride)))
    bits = np.unpackbits(words.astype("<u8").view(np.uint8).reshape(rows, 8 * stride), axis=1,
                         bitorder="little")
    valid = n_cols <= 64 * stride and not bits[:, n_cols:].any()
    if not valid:
        refused(lambda: pb.PackedSigns(words, n_cols), "words")
        return
    with _Pinned(setting):
        P = pb.PackedSigns(words, n_cols)
        np.testing.assert_array_equal(
            P.unpack(dtype=np.int8), np.where(bits[:, :n_cols] == 1, 1, -1))


# --------------------------------------------------------------------------- products


@st.composite
def operand_pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    k = draw(st.one_of(st.integers(0, 8), st.sampled_from(WIDE)))
    A = draw(matrices(cols=k))
    B = draw(matrices(cols=k, rows=st.integers(0, 30)))
    return A, B


@SETTINGS
@given(pair=operand_pairs(), packed=st.sampled_from(["none", "A", "B", "both", "same"]),
       setting=runtime())
def test_sign_matmul(pair: tuple[Any, Any], packed: str, setting: tuple[str, int]) -> None:
    count("sign_matmul")
    A, B = pair
    expected = sign(A) @ sign(B).T if packed != "same" else sign(A) @ sign(A).T
    with _Pinned(setting):
        a = pb.pack_signs(A) if packed in ("A", "both") else A
        b = pb.pack_signs(B) if packed in ("B", "both") else B
        C = pb.sign_matmul(a, a if packed == "same" else b)
    assert C.dtype == np.int32 and C.shape == expected.shape
    np.testing.assert_array_equal(C, expected)


@SETTINGS
@given(X=matrices(), bits=st.integers(1, 8), setting=runtime())
def test_quantize_activations(X: Any, bits: int, setting: tuple[str, int]) -> None:
    count("quantize_activations")
    if logical(X).shape[1] == 0:
        refused(lambda: pb.quantize_activations(X, bits), "X")
        return
    with _Pinned(setting):
        values, scales = pb.quantize_activations(X, bits)
    expected_values, expected_scales = quantize_reference(X, bits)
    assert values.dtype == np.int8 and scales.dtype == np.float64
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(scales, expected_scales)
    assert np.isfinite(scales).all()


@SETTINGS
@given(pair=operand_pairs(), bits=st.integers(1, 8), packed=st.booleans(), setting=runtime())
def test_quantized_matmul(pair: tuple[Any, Any], bits: int, packed: bool,
                          setting: tuple[str, int]) -> None:
    count("quantized_matmul")
    X, W = pair
    if logical(X).shape[1] == 0:
        refused(lambda: pb.quantized_matmul(X, W, bits), "X")
        return
    with _Pinned(setting):
        Y = pb.quantized_matmul(X, pb.pack_signs(W) if packed else W, bits)
    values, scales = quantize_reference(X, bits)
    with np.errstate(over="ignore"):  # documented: evaluated in float64 (inf if too large)
        exact = (values.astype(np.int64) @ sign(W).T).astype(np.float64) * scales[:, None]
    expected = exact.astype(logical(X).dtype)
    assert Y.dtype == expected.dtype and Y.shape == expected.shape
    np.testing.assert_array_equal(Y, expected)


# --------------------------------------------------------------------------- patterns and NTK


@st.composite
def kernel_inputs(draw: st.DrawFn, with_weights: bool = True) -> dict[str, Any]:
    d = draw(st.sampled_from([1, 2, 3, 4, 0, 5, 1, 2, 3]))  # 0 not at an end: drawn less
    inputs: dict[str, Any] = {
        "X": draw(matrices(rows=st.integers(0, 5), cols=d, floats_only=True)),
        "Z": draw(st.one_of(st.none(), matrices(rows=st.integers(0, 4), cols=d,
                                               floats_only=True))),
        "kappa": draw(st.one_of(st.just(1.0), st.floats(1e-30, 1e30))),
    }
    if with_weights:
        m = draw(st.sampled_from([1, 2, 3, 63, 0, 64, 65, 5, 130]))
        inputs["W"] = draw(matrices(rows=st.just(m), cols=d, floats_only=True))
    return inputs


def _with_common_type(*arrays: Any) -> list[np.ndarray]:
    """As the kernels see the arrays: float64 unless all are float32 (values unchanged)."""
    converted = [logical(a) for a in arrays]
    return [c.astype(np.float64) for c in converted]


def _patterns(x: np.ndarray, w: np.ndarray, quantized: bool) -> np.ndarray:
    weights = np.where(w >= 0, 1.0, -1.0) if quantized else w
    return fma_products(x, weights) >= 0


@SETTINGS
@given(inputs=kernel_inputs(), quantized=st.booleans(), setting=runtime())
def test_activation_patterns(inputs: dict[str, Any], quantized: bool,
                             setting: tuple[str, int]) -> None:
    count("activation_patterns")
    X, W = inputs["X"], inputs["W"]
    with _Pinned(setting):
        P = pb.activation_patterns(X, W, quantized=quantized)
    x, w = _with_common_type(X, W)
    expected = _patterns(x, w, quantized)
    assert P.shape == expected.shape
    np.testing.assert_array_equal(P.unpack(dtype=np.int8) == 1, expected)


@SETTINGS
@given(data=st.data(), packed=st.booleans(), setting=runtime())
def test_coactivation_counts(data: st.DataObject, packed: bool, setting: tuple[str, int]) -> None:
    count("coactivation_counts")
    P = data.draw(matrices(floats_only=True))
    p = logical(P) >= 0
    Q = data.draw(st.one_of(st.none(), matrices(rows=st.integers(0, 30), cols=p.shape[1])))
    q = None if Q is None else logical(Q) >= 0
    with _Pinned(setting):
        if packed:
            C = pb.coactivation_counts(pb.pack_signs(P), None if Q is None else pb.pack_signs(Q))
        else:
            C = pb.coactivation_counts(p, q)
    other = p if q is None else q
    expected = p.astype(np.int64) @ other.astype(np.int64).T
    assert C.dtype == np.int32
    np.testing.assert_array_equal(C, expected)


def _overflows(message: str) -> None:
    assert "overflow" in message, message


@SETTINGS
@given(inputs=kernel_inputs(), quantized=st.booleans(), setting=runtime())
def test_ntk_gram(inputs: dict[str, Any], quantized: bool, setting: tuple[str, int]) -> None:
    """Bit for bit: ``(kappa^2 / m * <x_i, z_j>) * count`` with the fma-ordered inner
    product; an entry that overflows float64 is refused."""
    count("ntk_gram")
    X, W, Z, kappa = inputs["X"], inputs["W"], inputs["Z"], inputs["kappa"]
    x, w = _with_common_type(X, W)
    call = lambda: pb.ntk_gram(X, W, Z, kappa=kappa, quantized=quantized)  # noqa: E731
    if x.shape[1] == 0:
        refused(call, "X")
        return
    if w.shape[0] == 0:
        refused(call, "W")
        return
    z = x if Z is None else _with_common_type(Z)[0]
    dots = fma_products(x, z)
    if Z is None:  # the upper triangle is computed, the lower mirrored
        dots = np.triu(dots) + np.triu(dots, 1).T
    counts = _patterns(x, w, quantized).astype(np.int64) @ _patterns(z, w, quantized).T
    scale = kappa * kappa / w.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        expected = (scale * dots) * counts.astype(np.float64)
    if not np.isfinite(expected).all():
        with _Pinned(setting):
            _overflows(refused(call, "X"))
        return
    with _Pinned(setting):
        H = call()
    assert H.dtype == np.float64 and H.shape == expected.shape
    np.testing.assert_array_equal(H, expected)


def _limit_reference(x: np.ndarray, z: np.ndarray | None, kappa: float,
                     output_layer: bool) -> tuple[np.ndarray, np.ndarray]:
    """The arc-cosine NTK with the fma-ordered inner products and everything else in
    extended precision (no overflow or underflow of norms), and a tolerance per entry."""
    symmetric = z is None
    z = x if z is None else z
    dots = fma_products(x, z).astype(np.longdouble)
    xl, zl = x.astype(np.longdouble), z.astype(np.longdouble)
    norms_x = np.sqrt((xl * xl).sum(axis=1))
    norms_z = np.sqrt((zl * zl).sum(axis=1))
    if symmetric:
        dots[np.diag_indices_from(dots)] = norms_x * norms_x
    norms = norms_x[:, None] * norms_z[None, :]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        cosine = np.where(norms > 0, np.clip(dots / np.where(norms > 0, norms, 1), -1, 1), 0)
        theta = np.arccos(cosine)
        k2 = np.longdouble(kappa) ** 2
        value = k2 * dots * (np.pi - theta) / (2 * np.pi)
        if output_layer:
            sine = np.sqrt(np.maximum(1 - cosine * cosine, 0))
            value = value + k2 * norms * (sine + (np.pi - theta) * cosine) / (2 * np.pi)
        tolerance = 1e-8 * k2 * norms + 1e-300
    return value, tolerance


@SETTINGS
@given(inputs=kernel_inputs(with_weights=False), output_layer=st.booleans(), setting=runtime())
def test_ntk_limit(inputs: dict[str, Any], output_layer: bool, setting: tuple[str, int]) -> None:
    count("ntk_limit")
    X, Z, kappa = inputs["X"], inputs["Z"], inputs["kappa"]
    x = _with_common_type(X)[0]
    call = lambda: pb.ntk_limit(X, Z, kappa=kappa, output_layer=output_layer)  # noqa: E731
    if x.shape[1] == 0:
        refused(call, "X")
        return
    z = None if Z is None else _with_common_type(Z)[0]
    value, tolerance = _limit_reference(x, z, kappa, output_layer)
    if not (np.abs(value) <= np.finfo(np.float64).max).all():
        with _Pinned(setting):
            _overflows(refused(call, "X"))
        return
    with _Pinned(setting):
        H = call()
    assert H.dtype == np.float64 and H.shape == value.shape
    assert np.isfinite(H).all()
    error = np.abs(H.astype(np.longdouble) - value)
    worst = np.unravel_index(np.argmax(error - tolerance), error.shape) if error.size else None
    assert (error <= tolerance).all(), (worst, H[worst], value[worst])
    if Z is None:
        np.testing.assert_array_equal(H, H.T)


# --------------------------------------------------------------------------- bad values


@SETTINGS
@given(data=st.data(), bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_a_non_finite_entry_is_named(data: st.DataObject, bad: float) -> None:
    """The first NaN or infinity (in row-major order) is reported with its position."""
    count("non-finite")
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.float16]))
    rows, cols = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 70))
    array = np.ones((rows, cols), dtype=dtype)
    i, j = data.draw(st.integers(0, rows - 1)), data.draw(st.integers(0, cols - 1))
    array[i, j] = bad
    later = data.draw(st.integers(i * cols + j, rows * cols - 1))
    array.flat[later] = np.nan
    value = laid_out(array, data.draw(st.sampled_from([layout for layout in LAYOUTS
                                                       if layout != "list"])))
    ok = np.ones((2, cols))
    calls = {
        "pack_signs": lambda: pb.pack_signs(value),
        "sign_matmul": lambda: pb.sign_matmul(ok, value),
        "quantize_activations": lambda: pb.quantize_activations(value),
        "quantized_matmul": lambda: pb.quantized_matmul(value, ok),
        "activation_patterns": lambda: pb.activation_patterns(ok, value),
        "ntk_gram": lambda: pb.ntk_gram(ok, ok, value),
        "ntk_limit": lambda: pb.ntk_limit(value),
    }
    name = data.draw(st.sampled_from(sorted(calls)))
    argument = {"sign_matmul": "B", "activation_patterns": "W", "ntk_gram": "Z",
                "pack_signs": "A"}.get(name, "X")
    message = refused(calls[name], argument)
    assert f"row {i}, column {j}" in message, message


# --------------------------------------------------------------------------- regressions


def test_record_fields_and_unaligned_buffers_are_read_correctly() -> None:
    """A field of a record array has rows 28 bytes apart: it was read as if they were
    24 (garbage, NaN), and unaligned buffers were read through misaligned pointers."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal((5, 3))
    for layout in ("record-field", "unaligned"):
        X = laid_out(values, layout)
        assert not X.flags.aligned
        np.testing.assert_array_equal(pb.ntk_limit(X), pb.ntk_limit(values))
        np.testing.assert_array_equal(pb.sign_matmul(X, X), pb.sign_matmul(values, values))
        np.testing.assert_array_equal(pb.ntk_gram(X, X[:2]), pb.ntk_gram(values, values[:2]))


@pytest.mark.parametrize("output_layer", [False, True])
def test_rows_of_extreme_norms_keep_their_angle(output_layer: bool) -> None:
    """A row below ~1e-154 counted as a zero row (its squares underflowed: angle pi/2),
    rows above ~1e154 gave NaN, and kappa^2 <x, x> pi overflowed where the entry, half
    of <x, x>, does not. Parallel rows: the entry is <x, z> / 2 (<x, z> with the NNGP
    term)."""
    factor = 1.0 if output_layer else 0.5
    for x_scale, z_scale in [(1.0, 1.5e-283), (1e-200, 1.0), (1e200, 1e-200), (1e160, 1e-100)]:
        x, z = np.array([[3.0, 4.0]]) * x_scale, np.array([[6.0, 8.0]]) * z_scale
        expected = factor * 50.0 * x_scale * z_scale
        # The angle pi/2 moved the entry by 1/2; the parallel angle is exact now.
        H = pb.ntk_limit(x, z, output_layer=output_layer)
        np.testing.assert_allclose(H, [[expected]], rtol=1e-14)
        np.testing.assert_allclose(pb.ntk_limit(np.vstack([x / x_scale, z]))[0, 1],
                                   0.5 * 50.0 * z_scale, rtol=1e-14)
    H = pb.ntk_limit([[7.5e153]], output_layer=output_layer)
    np.testing.assert_allclose(H, [[factor * 7.5e153**2]], rtol=1e-12)


def test_overflowing_kernels_are_refused_not_nan() -> None:
    huge = np.array([[1e200, 1e200], [1e200, -1e200]])
    for call in (lambda: pb.ntk_limit(huge), lambda: pb.ntk_limit(huge, output_layer=True),
                 lambda: pb.ntk_gram(huge, np.ones((3, 2))),
                 lambda: pb.NTKKernel()(huge)):
        with pytest.raises(ValueError, match="X: .*overflowed"):
            call()


def test_cases_ran() -> None:
    """Every property test above ran its examples (the counts go to the report)."""
    report_cases(__name__, CASES, OUTCOMES, minimum=EXAMPLES // 2)
