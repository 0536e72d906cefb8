"""The analytic derivatives of every form against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from pybinscale.scaling.fitting import HuberLogObjective
from pybinscale.scaling.forms import FORMS, get_form
from pybinscale.scaling.synthetic import EXAMPLE_PARAMS, make_scaling_data

PUBLIC = EXAMPLE_PARAMS
INTERNAL = {name: get_form(name).internal_params(params) for name, params in PUBLIC.items()}


def _batch(name: str) -> np.ndarray:
    """Three parameter vectors around the realistic one, to exercise batching."""
    rng = np.random.RandomState(1)
    theta = INTERNAL[name]
    return theta + 0.05 * np.abs(theta) * rng.standard_normal((3, theta.size))


def _objective(name: str, delta: float) -> HuberLogObjective:
    X, loss = make_scaling_data(
        name, PUBLIC[name], n_samples=40, noise=0.05, random_state=0
    )
    return HuberLogObjective(get_form(name), X, loss, delta)


def _central_difference(function, theta: np.ndarray, step: float) -> np.ndarray:
    """Derivative of ``function`` (batch in, array out) along each parameter."""
    columns = []
    for j in range(theta.shape[1]):
        shift = np.zeros_like(theta)
        shift[:, j] = step
        columns.append((function(theta + shift) - function(theta - shift)) / (2 * step))
    return np.stack(columns, axis=-1)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_public_and_internal_params_are_inverse(name):
    form = get_form(name)
    assert len(INTERNAL[name]) == form.n_params
    public = form.public_params(INTERNAL[name])
    assert tuple(public) == form.public_names
    for key, value in PUBLIC[name].items():
        assert public[key] == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_log_prediction_is_the_formula(name):
    from pybinscale.scaling.synthetic import law_loss

    form = get_form(name)
    X, _ = make_scaling_data(name, PUBLIC[name], n_samples=30, random_state=2)
    predicted = np.exp(form.log_predict(INTERNAL[name][None], form.prepare(X))[0])
    np.testing.assert_allclose(predicted, law_loss(name, PUBLIC[name], X), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_jacobian_matches_finite_differences(name):
    form = get_form(name)
    objective = _objective(name, delta=1e-3)
    theta = _batch(name)
    derivs = form.derivatives(theta, objective.data)
    numeric = _central_difference(
        lambda t: form.log_predict(t, objective.data), theta, 1e-6
    )
    np.testing.assert_allclose(form.jacobian(derivs), numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_gradient_and_hessian_match_finite_differences(name):
    # A delta larger than every residual makes the objective least squares, smooth
    # everywhere, so finite differences are exact to O(step^2) and test both the
    # Gauss-Newton and the curvature parts of the analytic Hessian.
    objective = _objective(name, delta=10.0)
    theta = _batch(name)
    _, gradient, hessian = objective.value_gradient_hessian(theta)
    numeric_gradient = _central_difference(objective.value, theta, 1e-6)
    np.testing.assert_allclose(gradient, numeric_gradient, rtol=1e-5, atol=1e-8)
    numeric_hessian = _central_difference(
        lambda t: objective.value_gradient_hessian(t)[1], theta, 1e-6
    )
    np.testing.assert_allclose(hessian, numeric_hessian, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_single_point_gradient_matches_batch(name):
    objective = _objective(name, delta=1e-3)
    theta = INTERNAL[name]
    value, gradient = objective.value_and_gradient(theta)
    batch_value, batch_gradient, _ = objective.value_gradient_hessian(theta[None])
    assert value == pytest.approx(batch_value[0], rel=1e-14)
    np.testing.assert_allclose(gradient, batch_gradient[0], rtol=1e-12)


def test_far_starts_stay_finite_in_log_space():
    # A = e^800 overflows as a number, but the log-sum-exp never forms it.
    objective = _objective("chinchilla", delta=1e-3)
    far = np.array([[800.0, 0.0, 0.0, -50.0, 0.0]])
    value, gradient, hessian = objective.value_gradient_hessian(far)
    assert np.isfinite(value).all() and np.isfinite(gradient).all()
    assert np.isfinite(hessian).all()


def test_start_grid_defaults_to_hoffmann_and_takes_overrides():
    form = get_form("chinchilla")
    assert form.start_grid().shape == (4500, 5)
    grid = form.start_grid({"alpha": [0.3], "beta": [0.3]})
    assert grid.shape == (180, 5)
    assert np.all(grid[:, 3] == 0.3)
    with pytest.raises(ValueError, match="start_grid: unknown parameter"):
        form.start_grid({"gamma": [1.0]})
    with pytest.raises(ValueError, match=r"start_grid\['a'\]"):
        form.start_grid({"a": [np.nan]})


def test_unknown_form_is_named():
    with pytest.raises(ValueError, match="unknown scaling-law form 'hoffmann'"):
        get_form("hoffmann")
