"""BinaryMLPRegressor and BinaryMLPClassifier: the API, the twins, the fitted state."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from pybinscale import (
    BinaryMLPClassifier,
    BinaryMLPRegressor,
    TrainingDivergedError,
    generalization_difference,
    ntk_gram,
    pack_signs,
    quantize_activations,
)
from pybinscale.estimators._inputs import normalize_inputs


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture
def task(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = unit_rows(rng, 60, 12)
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    return X, y


@parametrize_with_checks(
    [
        BinaryMLPRegressor(),
        BinaryMLPRegressor(precision="full"),
        BinaryMLPRegressor(quantization="bitnet", activation_bits=4, ste="clipped"),
        BinaryMLPRegressor(train_output_layer=True, track_kernel=50),
        BinaryMLPClassifier(),
        BinaryMLPClassifier(precision="full", batch_size=32),
    ]
)
def test_scikit_learn_conformance(estimator, check):
    check(estimator)


def numpy_network(X, W, a, kappa, quantization):
    """Reference forward pass straight from DESIGN section 1."""
    if quantization == "sign":
        V = np.where(W >= 0, 1.0, -1.0)
    elif quantization == "bitnet":
        V = np.abs(W).mean() * np.where(W - W.mean() >= 0, 1.0, -1.0)
    else:
        V = W
    return kappa / np.sqrt(W.shape[0]) * (np.maximum(X @ V.T, 0.0) @ a)


def numpy_training(X, y, W, a, kappa, eta, steps, quantization, ste="identity"):
    """Reference full-batch gradient descent with the straight-through estimator."""
    n, m = len(X), W.shape[0]
    s = kappa / np.sqrt(m)
    losses = []
    for _ in range(steps):
        if quantization == "sign":
            V = np.where(W >= 0, 1.0, -1.0)
        else:
            V = W
        pre = X @ V.T
        residual = s * (np.maximum(pre, 0) @ a) - y
        losses.append(np.sum(residual**2) / (2 * n))
        gradient = (s / n) * (((residual[:, None] * a[None, :]) * (pre >= 0)).T @ X)
        if quantization is not None and ste == "clipped":
            gradient *= np.abs(W) <= 1
        W = W - eta * gradient
    return W, np.array(losses)


@pytest.mark.parametrize("precision", ["1bit", "full"])
@pytest.mark.parametrize("ste", ["identity", "clipped"])
def test_training_matches_the_numpy_reference(task, precision, ste):
    X, y = task
    model = BinaryMLPRegressor(
        width=64, precision=precision, ste=ste, learning_rate=2.0, max_iter=30, random_state=3
    ).fit(X, y)
    from pybinscale.estimators._init import initial_weights

    W0, a, _ = initial_weights(X.shape[1], 64, 1, True, 3)
    quantization = "sign" if precision == "1bit" else None
    W, losses = numpy_training(X, y, W0, a[:, 0], 1.0, 2.0, 30, quantization, ste)
    np.testing.assert_allclose(model.coef_hidden_, W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.loss_curve_[:30], losses, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(
        model.predict(X), numpy_network(X, W, a[:, 0], 1.0, quantization), rtol=1e-9, atol=1e-12
    )


def test_twins_share_initialisation_order_and_steps(task):
    X, y = task
    one_bit = BinaryMLPRegressor(width=128, batch_size=16, max_iter=20, random_state=7).fit(X, y)
    full = BinaryMLPRegressor(
        width=128, batch_size=16, max_iter=20, random_state=7, precision="full"
    ).fit(X, y)
    np.testing.assert_array_equal(one_bit.output_signs_, full.output_signs_)
    assert one_bit.n_iter_ == full.n_iter_ == 20
    # Same W(0): the first step's batch and the initial weights are shared, so the
    # initial (symmetric) functions agree and the batch losses at step 0 are equal.
    assert one_bit.loss_curve_[0] == full.loss_curve_[0]
    again = BinaryMLPRegressor(width=128, batch_size=16, max_iter=20, random_state=7).fit(X, y)
    np.testing.assert_array_equal(again.coef_hidden_, one_bit.coef_hidden_)
    zero_steps = [
        BinaryMLPRegressor(width=128, max_iter=0, random_state=7, precision=p).fit(X, y)
        for p in ("1bit", "full")
    ]
    np.testing.assert_array_equal(zero_steps[0].coef_hidden_, zero_steps[1].coef_hidden_)


def test_symmetric_init_starts_from_the_zero_function(task):
    X, y = task
    for precision in ("1bit", "full"):
        for quantization in ("sign", "bitnet"):
            model = BinaryMLPRegressor(
                width=32, max_iter=0, precision=precision, quantization=quantization
            ).fit(X, y)
            assert np.all(model.predict(X) == 0.0)
            assert model.loss_curve_[0] == pytest.approx(np.sum(y**2) / (2 * len(y)))
    plain = BinaryMLPRegressor(width=32, max_iter=0, symmetric_init=False, random_state=0)
    assert np.any(plain.fit(X, y).predict(X) != 0.0)
    with pytest.raises(ValueError, match="width"):
        BinaryMLPRegressor(width=33).fit(X, y)


def test_fitted_state_and_model_bits(task):
    X, y = task
    model = BinaryMLPRegressor(width=64, max_iter=10, random_state=0).fit(X, y)
    assert model.coef_hidden_.shape == (64, 12)
    assert model.output_signs_.shape == (64,)
    assert set(np.unique(model.output_signs_)) == {-1.0, 1.0}
    assert model.loss_curve_.shape == (11,) and model.n_iter_ == 10
    assert model.n_parameters_ == 64 * 12
    assert model.model_bits_ == 64 * 12 + 64
    assert model.packed_hidden_ == pack_signs(model.coef_hidden_)
    full = BinaryMLPRegressor(width=64, max_iter=10, precision="full").fit(X, y)
    assert full.model_bits_ == 32 * 64 * 12 + 64 and full.packed_hidden_ is None
    trained = BinaryMLPRegressor(width=64, max_iter=10, train_output_layer=True).fit(X, y)
    assert trained.n_parameters_ == 64 * 13 and trained.model_bits_ == 64 * 12 + 32 * 64
    assert not np.array_equal(trained.coef_output_, trained.output_signs_)
    bitnet = BinaryMLPRegressor(width=64, max_iter=10, quantization="bitnet").fit(X, y)
    assert bitnet.model_bits_ == 64 * 12 + 64 + 64
    assert model.training_operations_ > 0
    assert full.training_operations_ < bitnet.training_operations_


def test_final_loss_is_the_loss_of_the_fitted_model(task):
    X, y = task
    for kwargs in ({}, {"precision": "full"}, {"quantization": "bitnet"}, {"activation_bits": 3}):
        model = BinaryMLPRegressor(width=64, max_iter=15, random_state=1, **kwargs).fit(X, y)
        final = np.sum((model.predict(X) - y) ** 2) / (2 * len(y))
        assert model.loss_curve_[-1] == pytest.approx(final, rel=1e-10)
        assert model.train_loss_ == model.loss_curve_[-1]


def test_activation_bits_predict_with_integer_products(task):
    X, y = task
    model = BinaryMLPRegressor(width=64, max_iter=10, activation_bits=2, random_state=0).fit(X, y)
    values, scales = quantize_activations(normalize_inputs(X, "l2"), 2)
    inputs = values * scales[:, None]
    expected = numpy_network(inputs, model.coef_hidden_, model.coef_output_, 1.0, "sign")
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12, atol=1e-14)


def test_bitnet_forward_pass(task):
    X, y = task
    model = BinaryMLPRegressor(width=64, max_iter=10, quantization="bitnet", kappa=2.0).fit(X, y)
    expected = numpy_network(X, model.coef_hidden_, model.coef_output_, 2.0, "bitnet")
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12, atol=1e-14)


def test_kernel_tracking(task):
    X, y = task
    model = BinaryMLPRegressor(
        width=128, max_iter=20, learning_rate=5.0, track_kernel=7, random_state=0
    ).fit(X, y)
    history = model.kernel_history_
    np.testing.assert_array_equal(history["step"], [0, 7, 14, 20])
    assert history["kernel_change"][0] == 0.0 and history["kernel_change"][-1] > 0.0
    np.testing.assert_allclose(model.kernel_at_init_, ntk_gram(X, _w0(X)))
    H_end = ntk_gram(X, model.coef_hidden_)
    change = np.linalg.norm(H_end - model.kernel_at_init_) / np.linalg.norm(model.kernel_at_init_)
    assert history["kernel_change"][-1] == pytest.approx(change)
    flips = np.mean((model.coef_hidden_ >= 0) != (_w0(X) >= 0))
    assert history["sign_flip_fraction"][-1] == pytest.approx(flips)
    moved = np.linalg.norm(model.coef_hidden_ - _w0(X), axis=1).max()
    assert history["max_weight_change"][-1] == pytest.approx(moved)
    untracked = BinaryMLPRegressor(width=128, max_iter=20, random_state=0).fit(X, y)
    assert not hasattr(untracked, "kernel_history_")


def _w0(X: np.ndarray) -> np.ndarray:
    from pybinscale.estimators._init import initial_weights

    return initial_weights(X.shape[1], 128, 1, True, 0)[0]


def test_generalization_difference(task, rng):
    X, y = task
    X_test = unit_rows(rng, 30, 12)
    twins = [
        BinaryMLPRegressor(width=128, precision=p, max_iter=40, random_state=2).fit(X, y)
        for p in ("1bit", "full")
    ]
    difference = generalization_difference(*twins, X_test)
    gap = np.abs(twins[0].predict(X_test) - twins[1].predict(X_test))
    assert difference.mean == pytest.approx(gap.mean()) and difference.max == gap.max()
    Y = np.column_stack([y, -y, y**2])
    multi = [
        BinaryMLPRegressor(width=128, precision=p, max_iter=40, random_state=2).fit(X, Y)
        for p in ("1bit", "full")
    ]
    per_output = generalization_difference(*multi, X_test)
    assert per_output.mean.shape == (3,) and np.all(per_output.max >= per_output.mean)
    with pytest.raises(ValueError, match="outputs"):
        generalization_difference(twins[0], multi[1], X_test)
    with pytest.raises(TypeError, match="model_a"):
        generalization_difference(object(), twins[1], X_test)


def test_classifier_one_hot_training_and_decision(rng):
    X = unit_rows(rng, 90, 20)
    y = np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)]
    model = BinaryMLPClassifier(width=256, max_iter=300, random_state=0).fit(X, y)
    assert model.coef_output_.shape == (256, 3)
    scores = model.decision_function(X)
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(scores, axis=1)])
    assert model.score(X, y) > 0.8
    assert not hasattr(model, "predict_proba")
    binary = BinaryMLPClassifier(width=64, max_iter=50).fit(X, y == "a")
    assert binary.decision_function(X).shape == (90,)
    with pytest.raises(ValueError, match="one class"):
        BinaryMLPClassifier().fit(X, np.zeros(90))


def test_divergence_names_the_learning_rate(rng):
    X = np.abs(rng.standard_normal((40, 4)))  # all-positive inputs: a large top eigenvalue
    y = np.ones(40)
    # The first step overshoots and the next leaves every ReLU dead.
    with pytest.raises(TrainingDivergedError, match="learning_rate=1000.0: every hidden neuron"):
        BinaryMLPRegressor(width=64, learning_rate=1000.0, precision="full").fit(X, y)
    # Trained output weights let the loss explode instead.
    with pytest.raises(TrainingDivergedError, match="learning_rate=100000000.0: gradient descent div"):
        BinaryMLPRegressor(
            width=64, learning_rate=1e8, precision="full", train_output_layer=True
        ).fit(X, 1e3 * y)
    assert issubclass(TrainingDivergedError, ValueError)
    stable = BinaryMLPRegressor(
        width=64, learning_rate=1.0, precision="full", random_state=0
    ).fit(X, y)
    assert stable.loss_curve_[-1] < 1e-3 * stable.loss_curve_[0]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"width": 0}, "width"),
        ({"activation_bits": 0}, "activation_bits"),
        ({"activation_bits": 9}, "activation_bits"),
        ({"precision": "2bit"}, "precision"),
        ({"quantization": "ternary"}, "quantization"),
        ({"ste": "tanh"}, "ste"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"kappa": -1.0}, "kappa"),
        ({"input_norm": "l1"}, "input_norm"),
        ({"track_kernel": 0}, "track_kernel"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_parameters_name_themselves(task, params, match):
    X, y = task
    with pytest.raises(ValueError, match=match):
        BinaryMLPRegressor(**params).fit(X, y)


def test_bad_data(task):
    X, y = task
    for bad in (np.inf, np.nan):
        X_bad = X.copy()
        X_bad[3, 2] = bad
        with pytest.raises(ValueError, match="X"):
            BinaryMLPRegressor(width=8).fit(X_bad, y)
        y_bad = y.copy()
        y_bad[5] = bad
        with pytest.raises(ValueError, match="[Ii]nput y|y "):
            BinaryMLPRegressor(width=8).fit(X, y_bad)
    model = BinaryMLPRegressor(width=8, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :5])


def test_pipeline_search_cross_validation_and_pickle(task):
    X, y = task
    pipeline = make_pipeline(StandardScaler(), BinaryMLPRegressor(width=64, max_iter=30))
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    search = GridSearchCV(
        BinaryMLPRegressor(width=64, max_iter=30, random_state=0),
        {"precision": ["1bit", "full"], "learning_rate": [1.0, 4.0]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["precision"] in ("1bit", "full")
    for precision in ("1bit", "full"):
        model = BinaryMLPRegressor(width=64, max_iter=30, precision=precision).fit(X, y)
        restored = pickle.loads(pickle.dumps(model))
        np.testing.assert_array_equal(restored.predict(X), model.predict(X))
