"""The fused network passes against numpy, across thread counts, SIMD paths and storage."""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator

import numpy as np
import pytest

import pybinscale
from pybinscale import _core, pack_signs
from pybinscale._network import network_outputs, train_step

RTOL = 1e-12


def reference(X, Y, V, A, s, hidden_scale=1.0):
    """The formulas in plain numpy, and the same sums of magnitudes (error scales)."""
    n = X.shape[0]
    pre = hidden_scale * (X @ V.T)
    relu = np.maximum(pre, 0.0)
    active = pre >= 0
    F = s * relu @ A
    R = F - Y
    loss = float(np.sum(R * R)) / (2 * n)
    grad_hidden = (s / n) * ((R @ A.T) * active).T @ X
    grad_output = (s / n) * relu.T @ R
    scales = {
        "F": abs(s) * np.abs(relu) @ np.abs(A),
        "grad_hidden": abs(s) / n * ((np.abs(R) @ np.abs(A).T) * active).T @ np.abs(X),
        "grad_output": abs(s) / n * np.abs(relu).T @ np.abs(R),
    }
    return F, loss, grad_hidden, grad_output, scales


def assert_close(got, expected, scale, what):
    """|got - expected| within RTOL of the sum of magnitudes that produced each entry."""
    assert got.shape == expected.shape, what
    assert np.all(np.abs(got - expected) <= RTOL * (scale + np.abs(expected))), what


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(
        np.ascontiguousarray(a).view(np.uint64), np.ascontiguousarray(b).view(np.uint64)
    )


def problem(rng, n, d, m, k, signs=True):
    X = rng.standard_normal((n, d))
    if n > 2:
        X[1] = 0.0  # pre-activations exactly 0: active
    Y = rng.standard_normal((n, k))
    W = rng.standard_normal((m, d))
    V = np.where(W >= 0, 1.0, -1.0) if signs else W
    A = rng.standard_normal((m, k))
    return X, Y, V, A, 1.3 / np.sqrt(m)


SHAPES = [
    (1, 1, 1, 1),
    (2, 3, 2, 1),
    (3, 7, 3, 2),
    (14, 5, 9, 2),
    (89, 24, 6, 1),
    (7, 2, 64, 3),
    (64, 16, 65, 1),
    (65, 64, 7, 10),
    (130, 65, 130, 2),
    (200, 10, 1030, 1),  # more than one chunk of neurons
    (5, 130, 3, 1),  # features past one strip of 64
]


@pytest.mark.parametrize("n, d, m, k", SHAPES)
def test_train_step_matches_numpy(simd_path, rng, n, d, m, k):
    X, Y, V, A, s = problem(rng, n, d, m, k, signs=(n + m) % 2 == 0)
    F, loss, grad_hidden, grad_output = train_step(X, Y, V, A, s, output_grad=True)
    F_ref, loss_ref, gh_ref, go_ref, scales = reference(X, Y, V, A, s)
    assert_close(F, F_ref, scales["F"], "F")
    assert loss == pytest.approx(loss_ref, rel=RTOL * 10)
    assert_close(grad_hidden, gh_ref, scales["grad_hidden"], "grad_hidden")
    assert_close(grad_output, go_ref, scales["grad_output"], "grad_output")
    assert all(a.dtype == np.float64 for a in (F, grad_hidden, grad_output))


def test_output_gradient_only_when_asked(rng):
    X, Y, V, A, s = problem(rng, 20, 5, 30, 2)
    F, loss, grad_hidden, grad_output = train_step(X, Y, V, A, s)
    assert grad_output is None
    with_output = train_step(X, Y, V, A, s, output_grad=True)
    assert same_bits(F, with_output[0]) and same_bits(grad_hidden, with_output[2])
    assert loss == with_output[1]


def test_zero_pre_activation_is_active(simd_path):
    # <v, x> = 1 - 1 = 0 exactly: the neuron counts as active (sign(0) = +1), so the
    # gradient reaches it; relu(0) = 0 adds nothing to the output.
    X, Y = np.array([[1.0, 1.0]]), np.array([[1.0]])
    V, A = np.array([[1.0, -1.0], [-1.0, -1.0]]), np.array([[1.0], [1.0]])
    F, loss, grad_hidden, grad_output = train_step(X, Y, V, A, 1.0, output_grad=True)
    assert F.tolist() == [[0.0]] and loss == 0.5
    assert grad_hidden.tolist() == [[-1.0, -1.0], [0.0, 0.0]]
    assert grad_output.tolist() == [[0.0], [0.0]]


def test_integer_data_with_many_exact_zeros(simd_path, rng):
    # Small integers keep every pre-activation exact, many of them exactly 0, so numpy and
    # the core must agree on every activation bit.
    X = rng.integers(-1, 2, size=(150, 4)).astype(np.float64)
    V = np.where(rng.standard_normal((90, 4)) >= 0, 1.0, -1.0)
    A, Y = rng.integers(-3, 4, size=(90, 2)).astype(np.float64), rng.standard_normal((150, 2))
    assert np.mean(X @ V.T == 0) > 0.1
    F, loss, grad_hidden, grad_output = train_step(X, Y, V, A, 0.5, output_grad=True)
    F_ref, loss_ref, gh_ref, go_ref, scales = reference(X, Y, V, A, 0.5)
    assert np.array_equal(F, F_ref)  # integer sums: exact
    assert_close(grad_hidden, gh_ref, scales["grad_hidden"], "grad_hidden")
    assert_close(grad_output, go_ref, scales["grad_output"], "grad_output")


@pytest.mark.parametrize("hidden_scale", [1.0, 0.37, -2.0])
def test_network_outputs_match_numpy(simd_path, rng, hidden_scale):
    X, _, V, A, s = problem(rng, 97, 19, 300, 3, signs=False)
    F = network_outputs(X, V, A, s, hidden_scale=hidden_scale)
    F_ref, *_, scales = reference(X, np.zeros((97, 3)), V, A, s, hidden_scale)
    assert_close(F, F_ref, scales["F"] * abs(hidden_scale), "F")
    signs = np.where(V >= 0, 1.0, -1.0)
    F_packed = network_outputs(X, pack_signs(V), A, s, hidden_scale=hidden_scale)
    F_ref, *_, scales = reference(X, np.zeros((97, 3)), signs, A, s, hidden_scale)
    assert_close(F_packed, F_ref, scales["F"] * abs(hidden_scale), "packed F")


@pytest.mark.parametrize(
    "n, d, m, k", [(1, 1, 1, 1), (70, 63, 129, 2), (130, 9, 1030, 3), (3, 200, 5, 1)]
)
def test_packed_signs_give_the_bits_of_train_step(simd_path, rng, n, d, m, k):
    X, Y, W, A, s = problem(rng, n, d, m, k, signs=False)
    P = pack_signs(W)
    F_train = train_step(X, Y, P.unpack(dtype=np.float64), A, s)[0]
    assert same_bits(network_outputs(X, P, A, s), F_train)
    assert same_bits(network_outputs(X, P.unpack(dtype=np.float64), A, s), F_train)


def test_outputs_of_a_row_do_not_depend_on_the_other_rows(rng):
    X, _, V, A, s = problem(rng, 300, 12, 2100, 2)
    F = network_outputs(X, V, A, s)
    assert same_bits(network_outputs(X[123:190], V, A, s), F[123:190])
    assert same_bits(network_outputs(X[-1:], pack_signs(V), A, s), F[-1:])


@pytest.fixture
def restore_threads() -> Iterator[None]:
    before = pybinscale.get_num_threads()
    try:
        yield
    finally:
        pybinscale.set_num_threads(before)


def test_results_do_not_depend_on_the_thread_count(rng, restore_threads):
    X, Y, V, A, s = problem(rng, 300, 20, 1100, 3)
    P = pack_signs(rng.standard_normal((1100, 20)))
    results = []
    for threads in (1, 2, 3, 5):
        pybinscale.set_num_threads(threads)
        step = train_step(X, Y, V, A, s, output_grad=True)
        results.append((*step, network_outputs(X, P, A, s, hidden_scale=0.7)))
    for other in results[1:]:
        for got, expected in zip(other, results[0]):
            assert same_bits(np.asarray(got), np.asarray(expected))


def test_results_do_not_depend_on_the_simd_path(rng):
    X, Y, V, A, s = problem(rng, 150, 70, 300, 2)
    P = pack_signs(rng.standard_normal((300, 70)))
    results = []
    for path in pybinscale.supported_simd_paths():
        pybinscale.set_simd_path(path)
        try:
            step = train_step(X, Y, V, A, s, output_grad=True)
            results.append((*step, network_outputs(X, P, A, s, hidden_scale=1.5)))
        finally:
            pybinscale.set_simd_path(None)
    for other in results[1:]:
        for got, expected in zip(other, results[0]):
            assert same_bits(np.asarray(got), np.asarray(expected))


def test_inputs_of_any_layout_and_float_type(rng):
    X, Y, V, _, s = problem(rng, 40, 6, 50, 2)
    A = rng.choice([-1.0, 1.0], size=(50, 2))
    expected = train_step(X, Y, V, A, s, output_grad=True)
    strided_V = np.repeat(V, 2, axis=1)[:, ::2]
    got = train_step(np.asfortranarray(X), Y.tolist(), strided_V, A.astype(np.float32), s, True)
    for a, b in zip(got, expected):
        assert same_bits(np.asarray(a), np.asarray(b))
    assert same_bits(network_outputs(np.asfortranarray(X), V[::1], A, s), expected[0])


BAD_SHAPES = [
    ("Y", dict(Y=np.zeros((9, 2)))),
    ("Y", dict(Y=np.zeros((10, 3)))),
    ("Y", dict(Y=np.zeros(10))),
    ("hidden", dict(hidden=np.zeros((5, 4)))),
    ("hidden", dict(hidden=np.zeros(15))),
    ("output", dict(output=np.zeros((6, 2)))),
    ("output", dict(output=np.zeros((5, 2, 1)))),
    ("X", dict(X=np.zeros((10, 3, 1)))),
    ("X", dict(X=np.zeros((0, 3)), Y=np.zeros((0, 2)))),
    ("scale", dict(scale=np.inf)),
]


@pytest.mark.parametrize("name, change", BAD_SHAPES)
def test_bad_shapes_are_value_errors_naming_the_argument(name, change):
    args = dict(
        X=np.zeros((10, 3)), Y=np.zeros((10, 2)), hidden=np.ones((5, 3)), output=np.ones((5, 2)), scale=1.0
    )
    args.update(change)
    with pytest.raises(ValueError, match=f"^{name}: "):
        train_step(**args)
    # The compiled binding checks on its own: callers other than this wrapper get the same.
    with pytest.raises(ValueError, match=f"^{name}: "):
        arrays = (np.asarray(args[key], dtype=np.float64) for key in ("X", "Y", "hidden", "output"))
        _core.train_step(*arrays, float(args["scale"]), False)


@pytest.mark.parametrize(
    "name, change",
    [
        ("hidden", dict(hidden=np.ones((5, 4)))),
        ("hidden", dict(hidden=pack_signs(np.ones((5, 4))))),
        ("output", dict(output=np.ones((4, 2)))),
        ("output", dict(hidden=pack_signs(np.ones((5, 3))), output=np.ones(5))),
        ("X", dict(X=np.ones(3))),
        ("hidden_scale", dict(hidden_scale=np.nan)),
        ("scale", dict(scale=-np.inf)),
    ],
)
def test_bad_network_arguments_are_value_errors_naming_the_argument(name, change):
    args = dict(
        X=np.zeros((10, 3)), hidden=np.ones((5, 3)), output=np.ones((5, 2)), scale=1.0, hidden_scale=1.0
    )
    args.update(change)
    with pytest.raises(ValueError, match=f"^{name}: "):
        network_outputs(**args)


def test_non_finite_inputs_are_reported(rng):
    X, Y, V, A, s = problem(rng, 10, 3, 5, 2)
    X[4, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinity at row 4, column 2"):
        train_step(X, Y, V, A, s)
    A[1, 0] = np.inf
    with pytest.raises(ValueError, match="output contains NaN"):
        network_outputs(np.zeros((2, 3)), V, A, s)


def test_empty_dimensions(rng):
    X, Y, V, A, s = problem(rng, 6, 0, 4, 2)
    F, loss, grad_hidden, grad_output = train_step(X, Y, V, A, s, output_grad=True)
    assert np.array_equal(F, np.zeros((6, 2))) and grad_hidden.shape == (4, 0)
    assert loss == pytest.approx(np.sum(Y**2) / 12)
    assert np.array_equal(grad_output, np.zeros((4, 2)))
    no_neurons = (np.zeros((0, 2)), np.zeros((0, 1)))
    F, loss, grad_hidden, _ = train_step(rng.standard_normal((3, 2)), np.ones((3, 1)), *no_neurons, 1.0)
    assert np.array_equal(F, np.zeros((3, 1))) and loss == 0.5 and grad_hidden.shape == (0, 2)
    no_rows = network_outputs(np.zeros((0, 2)), pack_signs(np.ones((3, 2))), np.ones((3, 4)), 1.0)
    assert no_rows.shape == (0, 4)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_prediction_works_in_blocks_without_an_n_by_m_matrix(rng):
    n, d, m = 20_000, 8, 8192  # relu(X @ V.T) alone would take 1.3 GB
    X, A = rng.standard_normal((n, d)), rng.choice([-1.0, 1.0], size=(m, 1))
    P = pack_signs(rng.standard_normal((m, d)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    F = network_outputs(X, P, A, 1 / np.sqrt(m))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert F.shape == (n, 1) and grown_mib < 100
    rows = slice(0, n, 997)
    F_ref, *_ = reference(X[rows], np.zeros((21, 1)), P.unpack(dtype=np.float64), A, 1 / np.sqrt(m))
    assert np.allclose(F[rows], F_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("output_grad", [False, True])
def test_binarize_gives_the_bits_of_the_quantised_weights(simd_path, output_grad):
    rng = np.random.default_rng(11)
    X, Y = rng.standard_normal((130, 7)), rng.standard_normal((130, 3))
    W, A = rng.standard_normal((67, 7)), rng.standard_normal((67, 3))
    W[0, 0] = 0.0  # sign(0) = +1
    for offset, beta in [(0.0, 1.0), (W.mean(), np.abs(W).mean())]:
        V = np.where(W - offset >= 0, beta, -beta)
        expected = train_step(X, Y, V, A, 0.2, output_grad=output_grad)
        got = train_step(X, Y, W, A, 0.2, output_grad=output_grad, binarize=(offset, beta))
        for left, right in zip(got, expected):
            np.testing.assert_array_equal(left, right)
        outputs = network_outputs(X, W, A, 0.2, binarize=(offset, beta))
        np.testing.assert_array_equal(outputs, expected[0])
    with pytest.raises(ValueError, match="binarize"):
        train_step(X, Y, W, A, 0.2, binarize=(np.nan, 1.0))
    with pytest.raises(ValueError, match="binarize"):
        network_outputs(X, pack_signs(W), A, 0.2, binarize=(0.0, 1.0))
