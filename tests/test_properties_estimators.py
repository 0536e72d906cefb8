"""Property-based tests of the estimators and generalization_difference (hypothesis).

Random parameters and random data: shapes from one row and one feature up (and 0 rows
or features, which must be refused), every dtype and memory layout of
test_properties_kernels, extreme magnitudes, all-equal, duplicated and parallel rows
(singular NTKs), constant and one-class targets. A fit either succeeds, and then
``predict`` gives finite values of the right shape whatever the layout of the input
(bit for bit), and a pickled copy predicts the same bits; or it raises ``ValueError`` /
``TypeError`` (``TrainingDivergedError`` is a ``ValueError``) with a message naming the
argument at fault. ``CASES`` counts the cases run; ``test_cases_ran`` reports them.
"""

from __future__ import annotations

import collections
import pickle
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pybinscale import (
    BinaryMLPClassifier,
    BinaryMLPRegressor,
    IllConditionedKernelWarning,
    NTKKernel,
    NTKRegressor,
    TrainingDivergedError,
    generalization_difference,
)

from test_properties_kernels import LAYOUTS, laid_out
from property_support import property_settings, report_cases

CASES: collections.Counter[str] = collections.Counter()
OUTCOMES: collections.Counter[str] = collections.Counter()
EXAMPLES = 200

SETTINGS = property_settings(EXAMPLES)

DTYPES = [np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16), np.dtype(">f8"),
          np.dtype(np.int64), np.dtype(np.int8), np.dtype(np.bool_)]


# --------------------------------------------------------------------------- data


@st.composite
def feature_matrices(draw: st.DrawFn, n_rows: int, n_cols: int, bound: float = 1e300) -> np.ndarray:
    """Values (C-ordered, in one of DTYPES) with a structure that stresses the fit."""
    dtype = draw(st.sampled_from(DTYPES))
    if dtype.kind == "f":
        magnitude = draw(st.sampled_from(["moderate", "moderate", "any"]))
        width = 8 * min(dtype.itemsize, 8)
        limit = min(bound, float(np.finfo(dtype).max))
        elements = (st.floats(-10.0, 10.0, width=width) if magnitude == "moderate"
                    else st.floats(-limit, limit, width=width, allow_subnormal=True))
    else:
        elements = hnp.from_dtype(dtype)
    X = draw(hnp.arrays(dtype, (n_rows, n_cols), elements=elements))
    if n_rows > 1 and X.size:
        structure = draw(st.sampled_from(["none", "none", "equal-rows", "duplicates",
                                          "parallel", "zeros"]))
        if structure == "equal-rows":
            X[:] = X[0]
        elif structure == "duplicates":
            X[draw(st.integers(0, n_rows - 1))] = X[draw(st.integers(0, n_rows - 1))]
        elif structure == "parallel" and dtype.kind == "f":
            with np.errstate(over="ignore"):
                scaled = X[0] * dtype.type(draw(st.sampled_from([2.0, 0.5, 1e-3])))
            if np.isfinite(scaled).all():
                X[-1] = scaled
        elif structure == "zeros":
            X[: draw(st.integers(1, n_rows))] = 0
    return X


@st.composite
def regression_data(draw: st.DrawFn, bound: float = 1e300) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.sampled_from([1, 2, 3, 5, 0, 8, 12, 4]))  # 0 not at an end: drawn less
    d = draw(st.sampled_from([1, 2, 3, 0, 5, 2, 1, 3]))
    X = draw(feature_matrices(n, d, bound))
    outputs = draw(st.sampled_from([None, None, 1, 2]))
    shape = (n,) if outputs is None else (n, outputs)
    y = draw(hnp.arrays(np.float64, shape, elements=st.one_of(
        st.floats(-10.0, 10.0), st.floats(-1e100, 1e100))))
    if n > 1 and draw(st.booleans()):
        y[:] = y[0]  # constant targets
    return X, y


def named(error: BaseException, *names: str) -> None:
    message = str(error)
    assert isinstance(error, (ValueError, TypeError)), repr(error)
    assert message and any(name in message for name in names), message


def predictions_agree(model: Any, X: np.ndarray, layout: str, method: str = "predict") -> np.ndarray:
    """``method`` on X, on X in ``layout``, and on a pickled copy: the same bits, finite."""
    predict = getattr(model, method)
    expected = predict(X)
    np.testing.assert_array_equal(predict(laid_out(X, layout)), expected)
    np.testing.assert_array_equal(getattr(pickle.loads(pickle.dumps(model)), method)(X), expected)
    if expected.dtype.kind == "f":
        assert np.isfinite(expected).all(), expected
    return expected


def predicts_new_inputs(model: Any, data: st.DataObject, n_features: int,
                        method: str = "predict") -> None:
    """On other inputs of any magnitude: finite values, or a ValueError naming X."""
    X_new = data.draw(feature_matrices(data.draw(st.integers(1, 4)), n_features))
    try:
        values = getattr(model, method)(X_new)
    except ValueError as error:
        named(error, "X")
        assert "overflow" in str(error), error
        OUTCOMES[f"{type(model).__name__}.{method}(new X): refused (overflow)"] += 1
        return
    assert len(values) == len(X_new)
    if values.dtype.kind == "f":
        assert np.isfinite(values).all(), (X_new, values)


def record(name: str, outcome: str) -> None:
    CASES[name] += 1
    OUTCOMES[f"{name}: {outcome}"] += 1


# --------------------------------------------------------------------------- networks


@st.composite
def network_params(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "width": draw(st.sampled_from([2, 4, 3, 16, 64])),
        "precision": draw(st.sampled_from(["1bit", "full"])),
        "quantization": draw(st.sampled_from(["sign", "bitnet"])),
        "activation_bits": draw(st.sampled_from([None, None, 1, 2, 8])),
        "ste": draw(st.sampled_from(["identity", "clipped"])),
        "kappa": draw(st.sampled_from([1.0, 0.5, 2.0])),
        "learning_rate": draw(st.sampled_from([0.1, 0.5, 1.0])),
        "max_iter": draw(st.sampled_from([0, 1, 5, 15])),
        "batch_size": draw(st.sampled_from([None, None, 1, 4])),
        "train_output_layer": draw(st.booleans()),
        "input_norm": draw(st.sampled_from(["l2", "l2", None])),
        "track_kernel": draw(st.sampled_from([False, True, 3])),
        "symmetric_init": draw(st.sampled_from([True, True, False])),
        "random_state": draw(st.integers(0, 2**31 - 1)),
    }


def _network_refusal(error: Exception, params: dict[str, Any], X: np.ndarray) -> str:
    """Why a network fit may be refused, checked against the inputs; the outcome label."""
    n, d = X.shape
    if n == 0 or d == 0:
        named(error, "sample", "feature", "X")
        return "refused (empty X)"
    if params["symmetric_init"] and params["width"] % 2:
        named(error, "width")
        return "refused (odd width with symmetric_init)"
    if params["input_norm"] is None and params["track_kernel"] and "overflow" in str(error):
        named(error, "X")  # the empirical NTK of raw huge inputs, tracked
        return "refused (tracked kernel overflow: input_norm=None)"
    if isinstance(error, TrainingDivergedError):
        # Documented for steps too large for the data. The full-precision net with fixed
        # output signs on unit-norm rows (input_norm "l2") is stable below learning_rate
        # 4 / kappa^2 (the kernel regime's bound, a quarter of it here): it may not be
        # reported as diverged. 1-bit nets, whose sign flips move pre-activations at once,
        # and trained output layers (a product of two trained layers) may diverge.
        stable = (params["precision"] == "full" and not params["train_output_layer"]
                  and params["input_norm"] == "l2"
                  and params["learning_rate"] * params["kappa"] ** 2 <= 1)
        assert not stable, error
        named(error, "learning_rate")
        return "refused (diverged)"
    raise error


@SETTINGS
@given(params=network_params(), data=regression_data(), layout=st.sampled_from(LAYOUTS),
       new=st.data())
def test_binary_mlp_regressor(params: dict[str, Any], data: tuple[np.ndarray, np.ndarray],
                              layout: str, new: st.DataObject) -> None:
    X, y = data
    model = BinaryMLPRegressor(**params)
    try:
        model.fit(laid_out(X, layout), y)
    except (ValueError, TypeError) as error:
        record("BinaryMLPRegressor", _network_refusal(error, params, X))
        return
    record("BinaryMLPRegressor", "fitted")
    prediction = predictions_agree(model, X, layout)
    assert prediction.shape == y.shape
    assert np.isfinite(model.loss_curve_).all() and len(model.loss_curve_) == model.n_iter_ + 1
    assert model.coef_hidden_.shape == (params["width"], X.shape[1])
    predicts_new_inputs(model, new, X.shape[1])


@st.composite
def classification_data(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    X, _ = draw(regression_data())
    labels = draw(st.sampled_from([[0, 1], [3, -1, 7], ["cat", "dog"], [2.5], [True, False],
                                   [0, 1]]))
    y = np.array(draw(st.lists(st.sampled_from(labels), min_size=len(X), max_size=len(X))))
    if len(X) >= 2 and len(labels) >= 2 and draw(st.booleans()):
        y[:2] = labels[:2]  # at least two classes
    return X, y


@SETTINGS
@given(params=network_params(), data=classification_data(), layout=st.sampled_from(LAYOUTS),
       new=st.data())
def test_binary_mlp_classifier(params: dict[str, Any], data: tuple[np.ndarray, np.ndarray],
                               layout: str, new: st.DataObject) -> None:
    X, y = data
    model = BinaryMLPClassifier(**params)
    try:
        model.fit(laid_out(X, layout), y)
    except (ValueError, TypeError) as error:
        if len(X) and X.shape[1] and len(np.unique(y)) < 2:
            named(error, "y", "class")
            record("BinaryMLPClassifier", "refused (one class)")
            return
        record("BinaryMLPClassifier", _network_refusal(error, params, X))
        return
    record("BinaryMLPClassifier", "fitted")
    labels = predictions_agree(model, X, layout)
    assert labels.shape == y.shape and set(labels) <= set(model.classes_)
    scores = predictions_agree(model, X, layout, "decision_function")
    assert scores.shape == ((len(X),) if len(model.classes_) == 2 else (len(X), len(model.classes_)))
    predicts_new_inputs(model, new, X.shape[1], "decision_function")


# --------------------------------------------------------------------------- NTK


@st.composite
def ntk_params(draw: st.DrawFn) -> dict[str, Any]:
    kernel = draw(st.sampled_from(["limit", "empirical"]))
    return {
        "kernel": kernel,
        "width": draw(st.sampled_from([2, 64, 130, 3])) if kernel == "empirical" else None,
        "quantized": draw(st.booleans()),
        "kappa": draw(st.sampled_from([1.0, 0.3, 3.0])),
        "alpha": draw(st.sampled_from([0.0, 0.0, 1e-6, 1.0])),
        "time": draw(st.sampled_from([None, None, 0.0, 10.0, 1e6])),
        "learning_rate": draw(st.sampled_from([1.0, 0.1])),
        "input_norm": draw(st.sampled_from(["l2", "l2", None])),
        "symmetric_init": draw(st.booleans()),
        "random_state": draw(st.integers(0, 2**31 - 1)),
    }


@SETTINGS
@given(params=ntk_params(), data=regression_data(), layout=st.sampled_from(LAYOUTS),
       steps=hnp.arrays(np.float64, st.integers(0, 4), elements=st.floats(0, 1e12)),
       new=st.data())
def test_ntk_regressor(params: dict[str, Any], data: tuple[np.ndarray, np.ndarray], layout: str,
                       steps: np.ndarray, new: st.DataObject) -> None:
    X, y = data
    model = NTKRegressor(**params)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(laid_out(X, layout), y)
    except (ValueError, TypeError) as error:
        n, d = X.shape
        if n == 0 or d == 0:
            named(error, "sample", "feature", "X")
            record("NTKRegressor", "refused (empty X)")
        elif params["kernel"] == "empirical" and params["symmetric_init"] and params["width"] % 2:
            named(error, "width")
            record("NTKRegressor", "refused (odd width with symmetric_init)")
        else:
            # Only raw (un-normalised) inputs can make the kernel overflow.
            assert params["input_norm"] is None, error
            named(error, "X")
            assert "overflow" in str(error)
            record("NTKRegressor", "refused (kernel overflow: input_norm=None)")
        return
    unexpected = [w for w in caught if not issubclass(w.category, IllConditionedKernelWarning)]
    assert not unexpected, [str(w.message) for w in unexpected]
    record("NTKRegressor", "fitted" + (" (ill-conditioned warning)" if caught else ""))
    try:
        prediction = predictions_agree(model, X, layout)
    except ValueError as error:  # the same raw inputs: the same overflow in the kernel
        assert params["input_norm"] is None and "overflow" in str(error), error
        return
    assert prediction.shape == y.shape
    losses = model.loss_at(steps)
    assert losses.shape == steps.shape and np.isfinite(losses).all() and (losses >= 0).all()
    ordered = model.loss_at(np.sort(steps))
    assert (np.diff(ordered) <= 1e-9 * max(1.0, float(ordered.max(initial=0)))).all()
    predicts_new_inputs(model, new, X.shape[1])


@SETTINGS
@given(data=regression_data(), kappa=st.floats(1e-3, 1e3), output_layer=st.booleans(),
       layout=st.sampled_from(LAYOUTS))
def test_ntk_kernel(data: tuple[np.ndarray, np.ndarray], kappa: float, output_layer: bool,
                    layout: str) -> None:
    X = data[0].astype(np.float64)
    kernel = NTKKernel(kappa=kappa, output_layer=output_layer)
    try:
        K, gradient = kernel(laid_out(X, layout), eval_gradient=True)
    except ValueError as error:
        named(error, "X")
        record("NTKKernel", "refused (no features)" if X.shape[1] == 0 else "refused (overflow)")
        assert X.shape[1] == 0 or "overflow" in str(error)
        return
    record("NTKKernel", "computed")
    assert K.shape == (len(X), len(X)) and gradient.shape == (len(X), len(X), 1)
    assert np.isfinite(K).all()
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_allclose(kernel.diag(X), np.diag(K), rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(kernel(X, X), K)


@SETTINGS
@given(data=regression_data(bound=1e100), width=st.sampled_from([2, 16]),
       precision=st.sampled_from(["1bit", "full"]), held_out=st.sampled_from([1, 2, 0, 3, 4]))
def test_generalization_difference(data: tuple[np.ndarray, np.ndarray], width: int,
                                   precision: str, held_out: int) -> None:
    X, y = data
    if X.size == 0:
        record("generalization_difference", "skipped (no data to fit)")
        return
    one = BinaryMLPRegressor(width=width, max_iter=3, random_state=0).fit(X, y)
    other = NTKRegressor(alpha=1e-3).fit(X, y)
    points = X[:held_out]
    try:
        difference = generalization_difference(one, other, points)
    except ValueError as error:
        named(error, "X")
        record("generalization_difference", "refused (no rows)")
        assert held_out == 0
        return
    record("generalization_difference", "computed")
    mean, peak = np.asarray(difference.mean), np.asarray(difference.max)
    assert np.isfinite(mean).all() and (0 <= mean).all() and (mean <= peak * (1 + 1e-12)).all()
    if y.ndim == 2 and y.shape[1] > 1:
        assert mean.shape == (y.shape[1],)
        single = BinaryMLPRegressor(width=width, max_iter=3, random_state=0).fit(X, y[:, 0])
        with pytest.raises(ValueError, match="model_b"):
            generalization_difference(single, other, X)


# --------------------------------------------------------------------------- regressions


@pytest.mark.parametrize("precision", ["1bit", "full"])
@pytest.mark.parametrize("quantization", ["sign", "bitnet"])
def test_a_stationary_point_is_not_reported_as_dead_relus(precision: str, quantization: str) -> None:
    """Duplicated rows with opposite targets start at their mean (zero gradient), and rows
    of zeros have zero gradients: both raised TrainingDivergedError blaming the learning
    rate for dead ReLUs. Gradient descent stays where it is, as it should."""
    X = np.array([[1.0, 0.0], [1.0, 0.0]])
    model = BinaryMLPRegressor(width=16, max_iter=5, precision=precision,
                               quantization=quantization, random_state=0).fit(X, [1.0, -1.0])
    np.testing.assert_array_equal(model.predict(X), [0.0, 0.0])
    assert model.n_iter_ == 5 and (model.loss_curve_ == 0.5).all()
    zeros = BinaryMLPRegressor(width=16, max_iter=5, precision=precision,
                               quantization=quantization).fit(np.zeros((4, 3)), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(zeros.predict(np.ones((2, 3))), [0.0, 0.0])
    classes = BinaryMLPClassifier(width=16, max_iter=50, precision=precision,
                                  quantization=quantization, random_state=0).fit(X, [0, 1])
    assert np.isfinite(classes.decision_function(X)).all()
    # A width-2 network whose one neuron pair is inactive on the data from the start
    # (the sign of its weight is -1 for x = 1 here) predicts 0, the fixed point.
    for seed in range(8):
        tiny = BinaryMLPRegressor(width=2, max_iter=3, random_state=seed).fit([[1.0]], [1.0])
        assert np.isfinite(tiny.predict([[1.0]])).all()
    # Dead ReLUs are still reported.
    with pytest.raises(TrainingDivergedError, match="every hidden neuron"):
        BinaryMLPRegressor(width=64, learning_rate=1000.0, precision="full").fit(
            np.abs(np.random.default_rng(0).standard_normal((40, 4))), np.ones(40))


def test_mini_batches_of_different_target_scales_are_not_divergence() -> None:
    """With mini-batches the loss of each batch was compared with the first batch's: a
    first batch of tiny targets (1e-5 here) made the next batch's ordinary loss look a
    million times larger, and the fit raised TrainingDivergedError at step 1."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((50, 4)), rng.standard_normal(50)
    y[:10] = 1e-5
    for seed in range(20):
        model = BinaryMLPRegressor(width=256, batch_size=1, max_iter=100, learning_rate=0.5,
                                   random_state=seed).fit(X, y)
        assert np.isfinite(model.predict(X)).all()
    with pytest.raises(TrainingDivergedError, match="initially .* on the worst row"):
        BinaryMLPRegressor(width=64, batch_size=8, learning_rate=1e8, precision="full",
                           train_output_layer=True).fit(X, 1e3 * y)


def test_no_rows_to_compare_names_x() -> None:
    """The check for an empty X came after the models' predict, whose scikit-learn
    message ("Found array with 0 sample(s)") does not name the argument."""
    X, y = np.eye(3), np.arange(3.0)
    one = BinaryMLPRegressor(width=4, max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="^X: has no rows"):
        generalization_difference(one, NTKRegressor().fit(X, y), X[:0])


def test_cases_ran() -> None:
    report_cases(__name__, CASES, OUTCOMES, minimum=EXAMPLES // 2)
