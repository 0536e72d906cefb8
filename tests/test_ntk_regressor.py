"""NTKRegressor: scikit-learn conformance, the numbers against independent references,
the gradient-descent trajectory, the singular-kernel fallback and parameter errors."""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.linalg
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from pybinscale.estimators._init import initial_weights
from pybinscale.estimators._inputs import normalize_inputs
from pybinscale.estimators.ntk_regressor import (
    IllConditionedKernelWarning,
    NTKRegressor,
    solve_kernel_system,
)
from pybinscale.kernels import ntk_gram, ntk_limit


# sklearn's test data include singular NTKs (one feature: every normalised row is +-1;
# 1-bit networks in 2-3 dimensions have at most 8 distinct neurons): those fits warn, as
# they should, and pass the checks on the pseudo-inverse.
@pytest.mark.filterwarnings("ignore::pybinscale.estimators.ntk_regressor.IllConditionedKernelWarning")
@parametrize_with_checks(
    [
        NTKRegressor(),
        NTKRegressor(kernel="empirical", width=256, random_state=0),
        NTKRegressor(time=50.0),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _data(n=40, d=6, seed=3, k=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, size=(n, 1))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    y = np.sin(2 * Xn[:, 0]) + Xn[:, 1] ** 2
    if k is not None:
        y = np.column_stack([y] + [np.cos(j * Xn[:, j % d]) for j in range(1, k)])
    return X, Xn, y


@pytest.fixture
def no_singular_warning():
    """Turn the singular-kernel warning into an error: the data here is well conditioned."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", IllConditionedKernelWarning)
        yield


# ----------------------------------------------------------------- the converged solution


@pytest.mark.parametrize("alpha", [0.0, 1e-3, 0.5])
def test_limit_ridge_equals_kernel_ridge_on_precomputed_ntk(alpha, no_singular_warning):
    X, Xn, y = _data()
    X_test = np.random.default_rng(9).standard_normal((15, X.shape[1]))
    X_test_n = X_test / np.linalg.norm(X_test, axis=1, keepdims=True)
    ours = NTKRegressor(alpha=alpha).fit(X, y)
    # KernelRidge treats alpha = 0 with a warning-free lstsq only if > 0; use a tiny one then.
    reference = KernelRidge(kernel="precomputed", alpha=alpha or 1e-300).fit(ntk_limit(Xn), y)
    np.testing.assert_allclose(
        ours.predict(X_test), reference.predict(ntk_limit(X_test_n, Xn)), rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(ours.dual_coef_, reference.dual_coef_, rtol=1e-7, atol=1e-9)
    assert ours.solver_ == "cholesky"
    np.testing.assert_allclose(ours.X_fit_, Xn, rtol=1e-15)


def test_interpolates_training_data_at_alpha_zero(no_singular_warning):
    X, _, y = _data()
    np.testing.assert_allclose(NTKRegressor().fit(X, y).predict(X), y, atol=1e-9)


def test_multi_output_equals_one_fit_per_column(no_singular_warning):
    X, _, Y = _data(k=3)
    joint = NTKRegressor(alpha=1e-3).fit(X, Y)
    assert joint.predict(X[:5]).shape == (5, 3)
    assert joint.dual_coef_.shape == (X.shape[0], 3)
    for j in range(3):
        single = NTKRegressor(alpha=1e-3).fit(X, Y[:, j])
        assert single.predict(X[:5]).shape == (5,)
        np.testing.assert_allclose(joint.predict(X[:5])[:, j], single.predict(X[:5]), rtol=1e-12)


def test_kappa_acts_as_a_rescaled_ridge(no_singular_warning):
    # H scales with kappa^2, so kappa = 2 with alpha = 0.4 is kappa = 1 with alpha = 0.1.
    X, _, y = _data()
    a = NTKRegressor(kappa=2.0, alpha=0.4).fit(X, y).predict(X)
    b = NTKRegressor(kappa=1.0, alpha=0.1).fit(X, y).predict(X)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert not np.allclose(a, NTKRegressor(kappa=1.0, alpha=0.4).fit(X, y).predict(X))


def test_input_norm_none_uses_raw_inputs(no_singular_warning):
    X, Xn, y = _data()
    ours = NTKRegressor(input_norm=None, alpha=0.1).fit(X, y)
    reference = KernelRidge(kernel="precomputed", alpha=0.1).fit(ntk_limit(X), y)
    np.testing.assert_allclose(ours.predict(X[:7]), reference.predict(ntk_limit(X[:7], X)), rtol=1e-9)
    np.testing.assert_array_equal(ours.X_fit_, X)
    normalised = NTKRegressor(alpha=0.1).fit(X, y)
    assert not np.allclose(ours.predict(X[:7]), normalised.predict(X[:7]))


def test_lambda_min_is_the_smallest_eigenvalue_of_H(no_singular_warning):
    X, Xn, y = _data()
    expected = np.linalg.eigvalsh(ntk_limit(Xn))[0]
    for model in (NTKRegressor(), NTKRegressor(alpha=0.3), NTKRegressor(time=10.0, alpha=0.3)):
        model.fit(X, y)
        assert model.lambda_min_ == pytest.approx(expected, rel=1e-9)
    with pytest.raises(NotFittedError):
        NTKRegressor().lambda_min_


# ----------------------------------------------------------------- the empirical kernel


@pytest.mark.parametrize("quantized", [True, False])
def test_empirical_kernel_is_ntk_gram_of_the_seeded_network(quantized, no_singular_warning):
    X, Xn, y = _data(n=30, d=8)
    width, seed = 512, 7
    model = NTKRegressor(kernel="empirical", width=width, quantized=quantized, alpha=1e-2, random_state=seed)
    model.fit(X, y)
    W0, _, _ = initial_weights(8, width, 1, True, seed)
    np.testing.assert_array_equal(model.hidden_weights_, W0)
    H = ntk_gram(Xn, W0, quantized=quantized)
    coef = np.linalg.solve(H + 1e-2 * np.eye(30), y)
    X_test = np.random.default_rng(1).standard_normal((6, 8))
    X_test_n = normalize_inputs(X_test, "l2")
    np.testing.assert_allclose(model.dual_coef_, coef, rtol=1e-8)
    np.testing.assert_allclose(
        model.predict(X_test), ntk_gram(X_test_n, W0, Z=Xn, quantized=quantized) @ coef, rtol=1e-8
    )
    # The 1-bit and the real network differ, and the flag reaches the kernel.
    other = clone(model).set_params(quantized=not quantized).fit(X, y)
    assert not np.allclose(other.predict(X_test), model.predict(X_test))


def test_empirical_weights_follow_the_shared_initialisation():
    X, _, y = _data(n=20, d=5)
    plain = NTKRegressor(kernel="empirical", width=64, symmetric_init=False, random_state=3).fit(X, y)
    np.testing.assert_array_equal(plain.hidden_weights_, initial_weights(5, 64, 1, False, 3)[0])
    paired = NTKRegressor(kernel="empirical", width=64, random_state=3).fit(X, y)
    np.testing.assert_array_equal(paired.hidden_weights_[0::2], paired.hidden_weights_[1::2])
    again = NTKRegressor(kernel="empirical", width=64, random_state=3).fit(X, y)
    np.testing.assert_array_equal(again.predict(X), paired.predict(X))


@pytest.mark.parametrize("quantized", [False, True])
def test_empirical_converges_to_the_limit_as_width_grows(quantized):
    X, Xn, y = _data(n=40, d=32, seed=5)
    X_test = np.random.default_rng(2).standard_normal((20, 32))
    limit = NTKRegressor(alpha=0.05).fit(X, y)
    H_limit = ntk_limit(Xn)
    kernel_errors, prediction_errors = [], []
    for width in (256, 4096, 65536):
        model = NTKRegressor(kernel="empirical", width=width, quantized=quantized, alpha=0.05, random_state=0)
        model.fit(X, y)
        H = ntk_gram(Xn, model.hidden_weights_, quantized=quantized)
        kernel_errors.append(np.linalg.norm(H - H_limit) / np.linalg.norm(H_limit))
        prediction_errors.append(np.max(np.abs(model.predict(X_test) - limit.predict(X_test))))
    # 16x the width: the Monte Carlo error shrinks about 4x at each step (m^-1/2).
    assert kernel_errors[0] > 2.5 * kernel_errors[1] > 6 * kernel_errors[2]
    assert prediction_errors[0] > prediction_errors[1] > prediction_errors[2]
    assert kernel_errors[2] < 0.02 and prediction_errors[2] < 0.05


def test_refit_as_limit_drops_the_network():
    X, _, y = _data(n=20, d=5)
    model = NTKRegressor(kernel="empirical", width=32, random_state=0).fit(X, y)
    assert hasattr(model, "hidden_weights_")
    model.set_params(kernel="limit").fit(X, y)
    assert not hasattr(model, "hidden_weights_")


# ----------------------------------------------------------------- the trajectory


def test_time_zero_predicts_zero():
    X, _, y = _data()
    model = NTKRegressor(time=0.0).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), np.zeros_like(y))
    assert model.solver_ == "eigh"


def test_long_time_reaches_the_converged_solution(no_singular_warning):
    X, _, y = _data()
    X_test = np.random.default_rng(4).standard_normal((10, X.shape[1]))
    converged = NTKRegressor().fit(X, y).predict(X_test)
    # lambda_min ~ 0.06 and n = 40: exp(-0.06 * 1e6 / 40) underflows.
    late = NTKRegressor(time=1e6).fit(X, y).predict(X_test)
    np.testing.assert_allclose(late, converged, rtol=1e-7, atol=1e-9)
    early = NTKRegressor(time=10.0).fit(X, y).predict(X_test)
    assert np.max(np.abs(early - converged)) > 0.1


@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_trajectory_matches_the_matrix_exponential(alpha):
    X, Xn, y = _data()
    n, eta, t = X.shape[0], 0.7, 35.5
    H = ntk_limit(Xn)
    A = H + alpha * np.eye(n)
    decay = scipy.linalg.expm(-eta * A * t / n)
    model = NTKRegressor(time=t, learning_rate=eta, alpha=alpha).fit(X, y)
    # Training outputs: H A^-1 (I - exp(-eta A t / n)) y, which is u(t) at alpha = 0.
    expected_train = H @ np.linalg.solve(A, y - decay @ y)
    np.testing.assert_allclose(model.predict(X), expected_train, rtol=1e-8, atol=1e-10)
    if alpha == 0.0:
        np.testing.assert_allclose(model.predict(X), y - decay @ y, rtol=1e-8, atol=1e-10)
    X_test = np.random.default_rng(6).standard_normal((8, X.shape[1]))
    K = ntk_limit(normalize_inputs(X_test, "l2"), Xn)
    np.testing.assert_allclose(
        model.predict(X_test), K @ np.linalg.solve(A, y - decay @ y), rtol=1e-8, atol=1e-10
    )
    # Only eta * t matters.
    same = NTKRegressor(time=2 * t, learning_rate=eta / 2, alpha=alpha).fit(X, y)
    np.testing.assert_allclose(same.predict(X_test), model.predict(X_test), rtol=1e-10)


def test_loss_at_starts_at_half_mean_square_and_never_increases():
    X, _, Y = _data(k=2)
    n = X.shape[0]
    for model in (NTKRegressor(), NTKRegressor(time=20.0), NTKRegressor(alpha=0.1)):
        model.fit(X, Y)
        steps = np.concatenate([[0.0], np.logspace(-2, 6, 200)])
        losses = model.loss_at(steps)
        assert losses.shape == steps.shape
        assert losses[0] == pytest.approx(np.sum(Y**2) / (2 * n), rel=1e-12)
        assert np.all(np.diff(losses) <= 1e-15)
        assert losses[-1] < 1e-6 * losses[0]
    assert model.loss_at(np.zeros((2, 3))).shape == (2, 3)
    assert model.loss_at(5.0).shape == ()


def test_loss_at_does_not_depend_on_how_the_fit_solved():
    X, _, y = _data()
    steps = [0.0, 3.0, 30.0, 300.0]
    reference = NTKRegressor().fit(X, y).loss_at(steps)
    np.testing.assert_allclose(NTKRegressor(time=7.0).fit(X, y).loss_at(steps), reference, rtol=1e-10)


@pytest.mark.parametrize("eta", [1.0, 0.1])
def test_loss_at_matches_discrete_gradient_descent(eta):
    X, Xn, y = _data()
    n = X.shape[0]
    H = ntk_limit(Xn)
    n_steps = 2000
    u = np.zeros(n)
    simulated = np.empty(n_steps)
    for step in range(n_steps):
        simulated[step] = np.sum((u - y) ** 2) / (2 * n)
        u = u - (eta / n) * H @ (u - y)
    model = NTKRegressor(learning_rate=eta).fit(X, y)
    predicted = model.loss_at(np.arange(n_steps))
    # Per eigen-direction (1 - x)^(2s) against exp(-2 x s), x = eta * lambda / n: the gap
    # is at most about x / (2e) of that direction's starting loss.
    x_max = eta * np.linalg.eigvalsh(H)[-1] / n
    gap = np.max(np.abs(predicted - simulated))
    assert gap <= 0.2 * x_max * simulated[0]
    assert gap > 1e-3 * x_max * simulated[0]  # the discretisation error is really there
    # The network outputs after s steps match the trajectory's predictions too.
    after = NTKRegressor(time=float(n_steps), learning_rate=eta).fit(X, y).predict(X)
    assert np.max(np.abs(after - u)) <= 0.5 * x_max * np.max(np.abs(y))


def test_loss_at_rejects_bad_steps():
    X, _, y = _data()
    model = NTKRegressor().fit(X, y)
    for bad in ([-1.0], [np.nan], [np.inf]):
        with pytest.raises(ValueError, match="steps"):
            model.loss_at(bad)
    with pytest.raises(TypeError, match="steps"):
        model.loss_at(["a"])
    with pytest.raises(NotFittedError):
        NTKRegressor().loss_at([1.0])


# ----------------------------------------------------------------- singular kernels


def _duplicated_data():
    X, _, y = _data(n=20)
    X = np.vstack([X, X[:4], 3.0 * X[4:6]])  # copies and parallel rows: equal once normalised
    y = np.concatenate([y, y[:4], y[4:6]])
    return X, y


def test_singular_kernel_warns_names_the_eigenvalue_and_stays_finite():
    X, y = _duplicated_data()
    with pytest.warns(IllConditionedKernelWarning) as record:
        model = NTKRegressor().fit(X, y)
    message = str(record[0].message)
    assert "smallest eigenvalue" in message and "alpha=1e-6" in message
    smallest = re.search(r"smallest eigenvalue is (\S+) ", message).group(1)
    assert abs(float(smallest)) < 1e-12
    assert issubclass(IllConditionedKernelWarning, UserWarning)
    assert model.solver_ == "eigh"
    prediction = model.predict(X)
    assert np.isfinite(prediction).all() and np.isfinite(model.dual_coef_).all()
    # Consistent duplicates: the pseudo-inverse still interpolates.
    np.testing.assert_allclose(prediction, y, atol=1e-8)
    assert np.isfinite(model.loss_at([0.0, 1e3])).all()


def test_singular_kernel_with_conflicting_targets_gives_the_least_squares_fit():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    y = np.array([0.0, 2.0, 5.0, 1.0])
    with pytest.warns(IllConditionedKernelWarning):
        model = NTKRegressor().fit(X, y)
    np.testing.assert_allclose(model.predict(X), [1.0, 1.0, 5.0, 1.0], atol=1e-10)
    # The minimum-norm coefficients: the null direction of the copies is dropped.
    expected = np.linalg.pinv(ntk_limit(X), hermitian=True) @ y
    np.testing.assert_allclose(model.dual_coef_, expected, rtol=1e-9, atol=1e-9)
    # Training can only reach the least-squares floor: (1^2 + 1^2) / (2n).
    losses = model.loss_at([0.0, 1e2, 1e4, 1e8])
    assert np.all(np.diff(losses) <= 0)
    assert losses[-1] == pytest.approx(2.0 / 8.0, rel=1e-9)


def test_solver_pseudo_inverse_drops_eigenvalues_within_rounding_of_zero():
    H = np.diag([2.0, 1e-3, 1e-19, -1e-18])
    solution = solve_kernel_system(H.copy(), np.ones((4, 1)), 0.0)
    assert solution.solver == "eigh" and "drops the 2 eigenvalue(s)" in solution.warning
    np.testing.assert_allclose(solution.dual_coef[:, 0], [0.5, 1e3, 0.0, 0.0], rtol=1e-12)
    # Positive but within rounding of zero: Cholesky succeeds, the inverse-iteration
    # check still sends it to the pseudo-inverse.
    tiny = np.diag([1.0, 0.3, 1e-18])
    assert np.all(np.isfinite(scipy.linalg.cho_factor(tiny)[0]))
    caught = solve_kernel_system(tiny.copy(), np.ones((3, 2)), 0.0)
    assert caught.solver == "eigh" and "drops the 1 eigenvalue(s)" in caught.warning
    np.testing.assert_allclose(caught.dual_coef, [[1.0, 1.0], [1 / 0.3, 1 / 0.3], [0.0, 0.0]])
    # A ridge makes it regular: Cholesky, no warning.
    ridge = solve_kernel_system(H.copy(), np.ones((4, 1)), 1e-6)
    assert ridge.solver == "cholesky" and ridge.warning is None
    np.testing.assert_allclose(ridge.dual_coef[:, 0], 1.0 / (np.diag(H) + 1e-6), rtol=1e-9)


def test_solver_trajectory_gains_with_zero_and_rounding_negative_eigenvalues():
    # g(l) = (1 - exp(-l s)) / l, its limit s at l = 0; negative (rounding) counts as 0.
    H = np.diag([2.0, 0.0, -1e-3])
    s = 1.5
    solution = solve_kernel_system(H.copy(), np.ones((3, 1)), 0.0, time_scale=s)
    gains = np.sort(solution.dual_coef[:, 0])
    np.testing.assert_allclose(gains, np.sort([-np.expm1(-3.0) / 2.0, s, s]), rtol=1e-13)
    assert solution.warning is None


def test_a_ridge_or_the_trajectory_needs_no_warning(no_singular_warning):
    X, y = _duplicated_data()
    ridge = NTKRegressor(alpha=1e-6).fit(X, y)
    assert ridge.solver_ == "cholesky" and np.isfinite(ridge.predict(X)).all()
    trajectory = NTKRegressor(time=1e4).fit(X, y)
    assert np.isfinite(trajectory.predict(X)).all()


def test_zero_kernel_is_handled():
    X = np.zeros((4, 3))
    with pytest.warns(IllConditionedKernelWarning):
        model = NTKRegressor().fit(X, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(model.predict(X), np.zeros(4))


def test_solve_kernel_system_checks_its_matrix():
    with pytest.raises(ValueError, match="H"):
        solve_kernel_system(np.eye(3)[:, :2], np.ones((3, 1)), 0.0)


def test_overflowing_kernel_is_an_error_not_nan():
    X = np.array([[1e200, 0.0], [0.0, 1e200]])
    with pytest.raises(ValueError, match="overflowed"):
        NTKRegressor(input_norm=None).fit(X, [1.0, 2.0])
    assert np.isfinite(NTKRegressor().fit(X, [1.0, 2.0]).predict(X)).all()


# ----------------------------------------------------------------- parameters and inputs


@pytest.mark.parametrize(
    "params, name",
    [
        ({"kernel": "foo"}, "kernel"),
        ({"kernel": "empirical", "width": 0}, "width"),
        ({"kernel": "empirical", "width": 2.5}, "width"),
        ({"alpha": -1.0}, "alpha"),
        ({"time": -1.0}, "time"),
        ({"time": np.inf}, "time"),
        ({"kappa": 0.0}, "kappa"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"input_norm": "l1"}, "input_norm"),
        ({"quantized": "yes"}, "quantized"),
        ({"kernel": "empirical"}, "width"),
        ({"kernel": "empirical", "width": 7}, "width"),  # odd: symmetric pairs
    ],
)
def test_bad_parameters_raise_naming_the_parameter(params, name):
    X, _, y = _data(n=10)
    with pytest.raises(ValueError, match=name):
        NTKRegressor(**params).fit(X, y)


def test_non_finite_inputs_and_wrong_feature_count_raise():
    X, _, y = _data(n=10)
    for bad_X in (np.where(np.eye(10, 6) == 1, np.nan, X), np.where(np.eye(10, 6) == 1, np.inf, X)):
        with pytest.raises(ValueError):
            NTKRegressor().fit(bad_X, y)
    with pytest.raises(ValueError):
        NTKRegressor().fit(X, np.where(np.arange(10) == 3, np.nan, y))
    model = NTKRegressor().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :5])


# ----------------------------------------------------------------- scikit-learn tools


def test_pipeline_grid_search_and_cross_validation():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4)) + 2.0
    y = np.tanh(X[:, 0] - 2.0) + 0.1 * rng.standard_normal(80)
    pipe = make_pipeline(StandardScaler(), NTKRegressor(alpha=1e-2)).fit(X, y)
    assert pipe.score(X, y) > 0.9
    search = GridSearchCV(NTKRegressor(), {"alpha": [1e-4, 1e-1, 1e3]}, cv=3).fit(X - 2.0, y)
    assert search.best_params_["alpha"] != 1e3
    assert search.best_estimator_.alpha == search.best_params_["alpha"]
    scores = cross_val_score(NTKRegressor(alpha=0.1), X - 2.0, y, cv=4)
    assert scores.shape == (4,) and np.all(scores > 0.5)


@pytest.mark.parametrize(
    "model",
    [
        NTKRegressor(alpha=0.01),
        NTKRegressor(kernel="empirical", width=128, random_state=1),
        NTKRegressor(time=5.0),
    ],
)
def test_pickle_round_trip_gives_identical_predictions(model):
    X, _, y = _data()
    model.fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    np.testing.assert_array_equal(restored.loss_at([1.0, 10.0]), model.loss_at([1.0, 10.0]))
    assert restored.lambda_min_ == model.lambda_min_


def test_parameters_changed_after_fit_do_not_change_the_fitted_model():
    X, _, y = _data()
    model = NTKRegressor(alpha=0.1).fit(X, y)
    before = model.predict(X), model.loss_at([2.0])
    model.set_params(kappa=5.0, alpha=3.0, learning_rate=9.0, input_norm=None)
    np.testing.assert_array_equal(model.predict(X), before[0])
    np.testing.assert_array_equal(model.loss_at([2.0]), before[1])
