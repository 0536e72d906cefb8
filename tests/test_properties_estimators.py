"""Regression tests of the estimators (the property-based tests follow)."""

from __future__ import annotations

import numpy as np
import pytest

from pybinscale import (
    BinaryMLPClassifier,
    BinaryMLPRegressor,
    NTKRegressor,
    TrainingDivergedError,
    generalization_difference,
)


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
