"""The optimiser: convergence relative to the loss, optima grouping, polish."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from pybinscale import ScalingLaw
from pybinscale.scaling.fitting import (
    HuberLogObjective,
    distinct_optima,
    fit_from_starts,
    newton_batch,
    polish,
)
from pybinscale.scaling.forms import get_form
from pybinscale.scaling.synthetic import EXAMPLE_PARAMS, make_scaling_data

GRID = {"a": [0.0, 5.0], "b": [5.0, 10.0], "e": [0.0], "alpha": [0.5], "beta": [0.5]}


@pytest.fixture(scope="module")
def data():
    return make_scaling_data(
        "chinchilla",
        EXAMPLE_PARAMS["chinchilla"],
        n_samples=150,
        noise=0.02,
        random_state=0,
    )


def _objective(data, scale=1.0):
    X, loss = data
    weights = np.full(len(loss), scale)
    return HuberLogObjective(get_form("chinchilla"), X, loss, 1e-3, weights=weights)


def test_convergence_does_not_depend_on_the_size_of_the_loss(data):
    # Scaling every weight by 1e-6 scales the objective and leaves its minimiser alone.
    # With tolerances relative to the loss the fit finds the same optimum; L-BFGS-B with
    # its default absolute tolerances stops almost at once on the small objective: this
    # is how published fits stopped early.
    starts = get_form("chinchilla").start_grid(GRID)
    reference = fit_from_starts(_objective(data), starts)
    tiny = fit_from_starts(_objective(data, scale=1e-6), starts)
    np.testing.assert_allclose(tiny.theta, reference.theta, rtol=1e-7)
    assert tiny.value == pytest.approx(1e-6 * reference.value, rel=1e-9)

    objective = _objective(data, scale=1e-6)
    naive = minimize(lambda t: objective.value(t[None])[0], starts[0], method="L-BFGS-B")
    assert np.max(np.abs(naive.x - reference.theta)) > 1e-2


def test_converged_starts_are_stationary_and_the_rest_still_descend(data):
    objective = _objective(data)
    starts = get_form("chinchilla").start_grid({"a": [0, 10, 20], "b": [0, 10, 20]})
    batch = newton_batch(objective, starts)
    best = batch.value.min()
    at_best = batch.value <= best * (1 + 1e-9)
    assert at_best.mean() > 0.5 and batch.converged[at_best].all()
    assert batch.converged.mean() > 0.95
    # A start that says it converged sits where the gradient vanishes, relative to its
    # scale delta * n (the gradient of Huber is at most delta per point).
    gradient = objective.value_gradient_hessian(batch.theta[batch.converged])[1]
    assert np.abs(gradient).max() < 1e-8 * objective.delta * len(objective.log_loss)
    # The few still moving at max_iter travel long valleys (a term of the law that has
    # become negligible, its exponent drifting): they have only gone down so far.
    moving = ~batch.converged
    assert np.all(batch.value[moving] < objective.value(starts[moving]))


def test_polish_never_worsens(data):
    objective = _objective(data)
    theta = get_form("chinchilla").start_grid(GRID)[0]
    start_value = objective.value(theta[None])[0]
    result = polish(objective, theta)
    assert result.value <= start_value
    assert result.value == pytest.approx(objective.value(result.theta[None])[0], rel=1e-12)


def test_distinct_optima_groups_equal_end_points():
    ends = np.array([[1.0, 2.0], [3.0, 4.0], [1.0 + 1e-7, 2.0], [8.0, 9.0]])
    values = np.array([0.5, 0.7, 0.5 + 1e-12, 0.7 * (1 + 1e-12)])
    optima, optima_values, counts, reps = distinct_optima(ends, values)
    # Points 0 and 2 share parameters; point 3 shares point 1's loss to 12 digits (a
    # flat valley), so it joins it too.
    assert optima.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert counts.tolist() == [2, 2] and reps.tolist() == [0, 1]
    np.testing.assert_array_equal(optima_values, [0.5, 0.7])


def test_distinct_optima_skips_diverged_end_points():
    ends = np.array([[np.nan, 1.0], [1.0, 1.0]])
    optima, values, counts, _ = distinct_optima(ends, np.array([0.1, np.inf]))
    assert optima.shape == (0, 2) and counts.size == 0


def test_all_starts_diverging_is_an_error(data):
    objective = _objective(data)
    with pytest.raises(RuntimeError, match="every start diverged"):
        fit_from_starts(objective, np.full((2, 5), np.nan))


def test_too_few_newton_steps_warn(data):
    X, loss = data
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        ScalingLaw(start_grid=GRID, max_iter=2, verbose=False).fit(X, loss)
