"""sign_matmul, quantize_activations, quantized_matmul and coactivation_counts against
plain numpy references, under every SIMD path."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import sign
from pybinscale import (
    coactivation_counts,
    pack_signs,
    quantize_activations,
    quantized_matmul,
    sign_matmul,
)

# (n, K, m): one row, one column, K around word and vector boundaries, and large K.
PRODUCT_SHAPES = [
    (1, 1, 1),
    (1, 7, 9),
    (9, 1, 1),
    (4, 63, 5),
    (9, 64, 25),
    (17, 65, 24),
    (8, 511, 49),
    (33, 1000, 70),
    (2, 100_003, 3),
]


@pytest.mark.parametrize("shape", PRODUCT_SHAPES)
def test_sign_matmul_is_exact(simd_path, rng, shape):
    n, k, m = shape
    A = rng.standard_normal((n, k)).astype(np.float32)
    B = rng.standard_normal((m, k))
    A[:, ::5] = 0.0
    expected = sign(A) @ sign(B).T
    result = sign_matmul(A, B)
    assert result.dtype == np.int32 and result.shape == (n, m)
    np.testing.assert_array_equal(result, expected)
    # Packed operands, in any combination, give the same product.
    np.testing.assert_array_equal(sign_matmul(pack_signs(A), B), expected)
    np.testing.assert_array_equal(sign_matmul(pack_signs(A), pack_signs(B)), expected)


def test_sign_matmul_of_a_matrix_with_itself(rng):
    A = rng.standard_normal((30, 77))
    np.testing.assert_array_equal(sign_matmul(A, A), sign(A) @ sign(A).T)


def test_sign_matmul_empty_shapes_are_well_defined():
    assert sign_matmul(np.zeros((0, 5)), np.zeros((3, 5))).shape == (0, 3)
    np.testing.assert_array_equal(sign_matmul(np.zeros((2, 0)), np.zeros((3, 0))), np.zeros((2, 3)))


def reference_quantize(X: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """BitNet absmax quantisation written directly in numpy (float64)."""
    X = X.astype(np.float64)
    gamma = np.abs(X).max(axis=1)
    if bits == 1:
        return np.where(X >= 0, 1, -1), gamma
    levels = 2.0 ** (bits - 1)
    safe = np.where(gamma > 0, gamma, 1.0)
    values = np.clip(np.rint(X * (levels / safe)[:, None]), -levels, levels - 1)
    values[gamma == 0] = 0
    return values.astype(np.int64), gamma / levels


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_activations_follows_the_absmax_rule(rng, bits, dtype):
    X = (rng.standard_normal((20, 77)) * rng.uniform(0.1, 10, (20, 1))).astype(dtype)
    X[3] = 0.0
    X[4, :] = 1.0  # every value at the top of the range
    values, scales = quantize_activations(X, activation_bits=bits)
    expected_values, expected_scales = reference_quantize(X, bits)
    assert values.dtype == np.int8 and scales.dtype == np.float64
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(scales, expected_scales)


def test_quantisation_rounds_ties_to_even():
    # gamma = 4, Q = 4 (3 bits): x * Q / gamma = x, so 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2
    values, _ = quantize_activations([[0.5, 1.5, 2.5, -2.5, 4.0]], activation_bits=3)
    np.testing.assert_array_equal(values, [[0, 2, 2, -2, 3]])


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 63, 7), (13, 200, 27), (3, 4100, 9)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantized_matmul_is_exact_on_the_quantised_integers(simd_path, rng, bits, shape, dtype):
    n, k, m = shape
    X = rng.standard_normal((n, k)).astype(dtype)
    W = rng.standard_normal((m, k)).astype(dtype)
    values, scales = quantize_activations(X, activation_bits=bits)
    integer_product = values.astype(np.int64) @ sign(W).T
    expected = (integer_product.astype(np.float64) * scales[:, None]).astype(dtype)
    result = quantized_matmul(X, W, activation_bits=bits)
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(quantized_matmul(X, pack_signs(W), activation_bits=bits), expected)


def test_eight_bit_product_approximates_the_real_product(rng):
    X = rng.standard_normal((50, 256))
    W = rng.standard_normal((40, 256))
    exact = X @ sign(W).T
    error = np.abs(quantized_matmul(X, W, 8) - exact).max() / np.abs(exact).max()
    assert error < 0.01


@pytest.mark.parametrize("shape", PRODUCT_SHAPES)
def test_coactivation_counts_match_numpy(simd_path, rng, shape):
    n, k, m = shape
    P = rng.random((n, k)) < 0.4
    Q = rng.random((m, k)) < 0.6
    np.testing.assert_array_equal(coactivation_counts(P, Q), P.astype(np.int64) @ Q.astype(np.int64).T)
    np.testing.assert_array_equal(coactivation_counts(P), P.astype(np.int64) @ P.astype(np.int64).T)


def test_symmetric_counts_over_many_tiles(rng):
    P = rng.random((301, 700)) < 0.5
    counts = coactivation_counts(P)
    np.testing.assert_array_equal(counts, counts.T)
    np.testing.assert_array_equal(counts, P.astype(np.int64) @ P.astype(np.int64).T)


def test_results_are_identical_on_every_path(rng):
    import pybinscale

    A = rng.standard_normal((37, 333))
    B = rng.standard_normal((29, 333))
    results = []
    for path in pybinscale.supported_simd_paths():
        pybinscale.set_simd_path(path)
        try:
            results.append(
                (sign_matmul(A, B), quantized_matmul(A, B, 5), coactivation_counts(A > 0, B > 0))
            )
        finally:
            pybinscale.set_simd_path(None)
    for other in results[1:]:
        for expected, got in zip(results[0], other):
            assert expected.tobytes() == got.tobytes()
