"""activation_patterns, ntk_gram and ntk_limit against numpy, and the convergence of
the empirical NTK to its infinite-width limit."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import sign
from pybinscale import activation_patterns, ntk_gram, ntk_limit, unpack_signs


def unit_rows(A: np.ndarray) -> np.ndarray:
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def reference_patterns(X: np.ndarray, W: np.ndarray, quantized: bool) -> np.ndarray:
    weights = sign(W).astype(np.float64) if quantized else W.astype(np.float64)
    return X.astype(np.float64) @ weights.T >= 0


def reference_gram(X, W, Z, kappa, quantized):
    Z = X if Z is None else Z
    P = reference_patterns(X, W, quantized).astype(np.float64)
    Q = reference_patterns(Z, W, quantized).astype(np.float64)
    return kappa**2 / W.shape[0] * (X.astype(np.float64) @ Z.astype(np.float64).T) * (P @ Q.T)


def reference_limit(X, Z, kappa, output_layer):
    Z = X if Z is None else Z
    dots = X @ Z.T
    norms = np.linalg.norm(X, axis=1)[:, None] * np.linalg.norm(Z, axis=1)[None, :]
    # The angle as 2 atan2(|x^ - z^|, |x^ + z^|), exact to rounding at every angle
    # (arccos of a cosine rounded near 1 is off by up to 1.5e-8); pi/2 for a zero row.
    def unit(A):
        lengths = np.linalg.norm(A, axis=1, keepdims=True)
        return np.divide(A, lengths, out=np.zeros_like(A), where=lengths > 0)

    ux, uz = unit(X)[:, None, :], unit(Z)[None, :, :]
    theta = 2 * np.arctan2(np.linalg.norm(ux - uz, axis=2), np.linalg.norm(ux + uz, axis=2))
    theta = np.where(norms > 0, theta, np.pi / 2)
    cosine = np.cos(theta)
    value = kappa**2 * dots * (np.pi - theta) / (2 * np.pi)
    if output_layer:
        value += kappa**2 * norms * (np.sin(theta) + (np.pi - theta) * cosine) / (2 * np.pi)
    return value


@pytest.mark.parametrize("quantized", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 5, 64), (7, 3, 65), (40, 16, 300), (9, 33, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_patterns_match_numpy(simd_path, rng, quantized, shape, dtype):
    n, d, m = shape
    X = rng.standard_normal((n, d)).astype(dtype)
    W = rng.standard_normal((m, d)).astype(dtype)
    patterns = activation_patterns(X, W, quantized=quantized)
    assert patterns.shape == (n, m)
    np.testing.assert_array_equal(unpack_signs(patterns, np.int8) > 0, reference_patterns(X, W, quantized))


def test_zero_preactivation_counts_as_active(simd_path):
    # <sign(w), x> = 1 - 1 = 0 exactly, so the neuron is active.
    patterns = activation_patterns(np.array([[1.0, 1.0]]), np.array([[0.5, -3.0], [-1.0, -1.0]]))
    np.testing.assert_array_equal(unpack_signs(patterns, np.int8), [[1, -1]])


def test_patterns_do_not_depend_on_the_path(rng):
    import pybinscale

    X = rng.standard_normal((50, 24))
    W = rng.standard_normal((500, 24))
    words = []
    for path in pybinscale.supported_simd_paths():
        pybinscale.set_simd_path(path)
        try:
            words.append(
                (activation_patterns(X, W, False).words.tobytes(), ntk_gram(X, W, quantized=False).tobytes())
            )
        finally:
            pybinscale.set_simd_path(None)
    assert all(w == words[0] for w in words)


@pytest.mark.parametrize("quantized", [True, False])
@pytest.mark.parametrize("with_z", [False, True])
def test_ntk_gram_matches_numpy(simd_path, rng, quantized, with_z):
    X = unit_rows(rng.standard_normal((45, 10)))
    Z = unit_rows(rng.standard_normal((13, 10))) if with_z else None
    W = rng.standard_normal((333, 10))
    H = ntk_gram(X, W, Z, kappa=1.7, quantized=quantized)
    expected = reference_gram(X, W, Z, 1.7, quantized)
    assert H.dtype == np.float64 and H.shape == expected.shape
    np.testing.assert_allclose(H, expected, rtol=1e-12, atol=1e-15)
    if not with_z:
        np.testing.assert_array_equal(H, H.T)


def test_ntk_gram_float32_inputs(rng):
    X = unit_rows(rng.standard_normal((20, 6))).astype(np.float32)
    W = rng.standard_normal((100, 6)).astype(np.float32)
    np.testing.assert_allclose(ntk_gram(X, W), reference_gram(X, W, None, 1.0, True), rtol=1e-12)


@pytest.mark.parametrize("output_layer", [False, True])
@pytest.mark.parametrize("with_z", [False, True])
def test_ntk_limit_matches_the_arccos_formula(simd_path, rng, output_layer, with_z):
    X = rng.standard_normal((30, 7))
    X[4] = 0.0  # a zero row contributes nothing
    X[5] = X[6]  # parallel rows: theta = 0
    Z = rng.standard_normal((11, 7)) if with_z else None
    if with_z:
        Z[3] = 2.5 * X[7]  # a row of X met again in Z, scaled: theta = 0
    H = ntk_limit(X, Z, kappa=0.8, output_layer=output_layer)
    # Both take near-parallel angles from the rows, not from arccos of a rounded cosine
    # (which moved theta by ~1e-8): they agree to rounding.
    np.testing.assert_allclose(H, reference_limit(X, Z, 0.8, output_layer), rtol=1e-12, atol=1e-14)
    if not with_z:
        np.testing.assert_array_equal(H, H.T)
        assert np.linalg.eigvalsh(H).min() > -1e-10  # a kernel: positive semi-definite


def relative_error(H: np.ndarray, limit: np.ndarray) -> float:
    return float(np.linalg.norm(H - limit) / np.linalg.norm(limit))


def test_wide_gaussian_gram_is_within_two_percent_of_the_limit(rng):
    X = unit_rows(rng.standard_normal((60, 16)))
    W = rng.standard_normal((2**17, 16))
    error = relative_error(ntk_gram(X, W, quantized=False), ntk_limit(X))
    assert error < 0.02


def test_gram_error_shrinks_like_inverse_square_root_of_width():
    # Average over seeds so the slope of log error against log width is stable; the
    # Monte Carlo error of an average over m neurons has standard deviation ~ m^(-1/2).
    rng = np.random.default_rng(7)
    X = unit_rows(rng.standard_normal((40, 12)))
    limit = ntk_limit(X)
    widths = 2 ** np.arange(7, 17)
    errors = [
        np.mean([relative_error(ntk_gram(X, rng.standard_normal((m, 12)), quantized=False), limit) for _ in range(6)])
        for m in widths
    ]
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert -0.6 < slope < -0.4, slope
    assert errors[-1] < errors[0] / 8


def test_empty_but_defined_shapes():
    assert ntk_gram(np.zeros((0, 3)), np.ones((5, 3))).shape == (0, 0)
    assert ntk_gram(np.ones((2, 3)), np.ones((5, 3)), np.zeros((0, 3))).shape == (2, 0)
    assert activation_patterns(np.ones((2, 3)), np.zeros((0, 3))).shape == (2, 0)
    assert ntk_limit(np.zeros((0, 4))).shape == (0, 0)
