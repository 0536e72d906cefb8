"""Bootstrap intervals, compute-optimal allocation, extrapolation check and plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402

from pybinscale import ScalingLaw  # noqa: E402
from pybinscale.scaling.synthetic import EXAMPLE_PARAMS, law_loss, make_scaling_data  # noqa: E402

GRID = {"a": [5.0], "b": [5.0], "e": [0.0], "alpha": [0.5], "beta": [0.5]}


@pytest.fixture(scope="module")
def power_data():
    return make_scaling_data(
        "power", EXAMPLE_PARAMS["power"], n_samples=400, noise=0.02, random_state=5
    )


def test_bootstrap_is_reproducible_and_independent_of_n_jobs(power_data):
    X, loss = power_data
    law = ScalingLaw(form="power", random_state=7, verbose=False).fit(X, loss)
    serial = law.bootstrap(60, n_jobs=1).bootstrap_internal_params_.copy()
    parallel = law.bootstrap(60, n_jobs=2).bootstrap_internal_params_
    np.testing.assert_array_equal(serial, parallel)
    other_seed = law.bootstrap(60, random_state=8).bootstrap_internal_params_
    assert not np.array_equal(serial, other_seed)


def test_bootstrap_spread_matches_the_asymptotic_standard_error(power_data):
    # For a least-absolute-deviation fit under Gaussian noise sigma the standard error
    # of the parameters is sqrt(pi / 2) sigma sqrt(diag((J^T J)^-1)). The bootstrap
    # standard deviation estimates the same quantity: with 400 points and 400 resamples
    # the two agree to within 25% (the estimate of a standard deviation from 400 draws
    # alone is good to about 4%, the LAD bootstrap adds its own roughness).
    X, loss = power_data
    law = ScalingLaw(form="power", random_state=0, verbose=False).fit(X, loss)
    law.bootstrap(400)
    log_x = np.log(X[:, 0])
    jacobian = np.column_stack([np.ones_like(log_x), -log_x])
    covariance = 0.5 * np.pi * 0.02**2 * np.linalg.inv(jacobian.T @ jacobian)
    asymptotic = np.sqrt(covariance[1, 1])
    bootstrap = law.bootstrap_params_["alpha"].std()
    assert bootstrap == pytest.approx(asymptotic, rel=0.25)
    low, high = law.confidence_intervals_["alpha"]
    assert low < EXAMPLE_PARAMS["power"]["alpha"] < high


def test_refit_drops_an_old_bootstrap(power_data):
    X, loss = power_data
    law = ScalingLaw(form="power", random_state=0, verbose=False).fit(X, loss)
    law.bootstrap(20)
    law.fit(X[:100], loss[:100])
    assert not hasattr(law, "confidence_intervals_")
    assert not hasattr(law, "bootstrap_internal_params_")
    assert law.y_fit_.shape == (100,)


@pytest.fixture(scope="module")
def chinchilla_law():
    X, loss = make_scaling_data(
        "chinchilla", EXAMPLE_PARAMS["chinchilla"], n_samples=80, noise=0.01, random_state=2
    )
    return ScalingLaw(start_grid=GRID, random_state=0, verbose=False).fit(X, loss)


def _numerical_optimum(loss_at, compute):
    """Minimise loss_at(N, D) on C = 6 N D over log N."""
    result = minimize_scalar(
        lambda log_n: loss_at(np.exp(log_n), compute / (6 * np.exp(log_n))),
        bounds=(np.log(1e3), np.log(compute / 6 / 1e3)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return np.exp(result.x)


def test_compute_optimal_is_the_minimum_on_the_budget(chinchilla_law):
    budgets = np.array([1e19, 1e21, 1e24])
    plan = chinchilla_law.compute_optimal(budgets)
    np.testing.assert_allclose(6 * plan.N_opt * plan.D_opt, budgets, rtol=1e-12)
    for budget, n_opt, loss in zip(budgets, plan.N_opt, plan.loss):

        def loss_at(n, d):
            return law_loss("chinchilla", chinchilla_law.params_, np.array([[n, d]]))[0]

        assert _numerical_optimum(loss_at, budget) == pytest.approx(n_opt, rel=1e-6)
        assert loss == pytest.approx(loss_at(n_opt, budget / (6 * n_opt)), rel=1e-12)
    # N_opt grows as C^a with a = beta / (alpha + beta).
    slope = np.diff(np.log(plan.N_opt)) / np.diff(np.log(budgets))
    np.testing.assert_allclose(slope, chinchilla_law.derived_["N_opt_exponent"], rtol=1e-10)
    assert plan.intervals is None


def test_compute_optimal_other_flops_constant(chinchilla_law):
    six = chinchilla_law.compute_optimal(1e21)
    eight = chinchilla_law.compute_optimal(8e21 / 6, flops_per_param_token=8)
    np.testing.assert_allclose(eight.N_opt, six.N_opt, rtol=1e-12)


def test_precision_allocation_at_one_bit():
    params = EXAMPLE_PARAMS["precision"]
    X, loss = make_scaling_data("precision", params, n_samples=60, random_state=3)
    grid = dict(GRID, log_gamma=[1.0])
    law = ScalingLaw(form="precision", start_grid=grid, verbose=False).fit(X, loss)
    plan = law.compute_optimal(1e22, bits=1)

    def loss_at(n, d):
        return law_loss("precision", law.params_, np.array([[n, d, 1.0]]))[0]

    assert _numerical_optimum(loss_at, 1e22) == pytest.approx(plan.N_opt[0], rel=1e-6)
    # At 1 bit a weight is worth less, so the optimum puts more of them in the model.
    assert plan.N_opt[0] > law.compute_optimal(1e22, bits=32).N_opt[0]


def test_leave_out_is_exact_on_noise_free_data():
    X, loss = make_scaling_data(
        "kaplan", EXAMPLE_PARAMS["kaplan"], n_samples=50, random_state=0
    )
    law = ScalingLaw(form="kaplan", verbose=False).fit(X, loss)
    report = law.leave_out(0.2, by="N")
    assert report.n_held_out == 10 and report.by == "N"
    assert X[report.held_out, 0].min() >= X[~report.held_out, 0].max()
    assert report.max_abs_relative_error < 1e-8
    assert report.law.n_features_in_ == 2


def test_plot_draws_data_law_and_band(chinchilla_law, tmp_path):
    law = ScalingLaw(start_grid=GRID, random_state=0, verbose=False)
    law.fit(chinchilla_law.X_fit_, chinchilla_law.y_fit_)
    ax = law.plot(n_curves=3)
    assert (ax.get_xscale(), ax.get_yscale(), ax.get_xlabel()) == ("log", "log", "N")
    assert len(ax.lines) == 3 and len(ax.collections) == 1  # 3 curves, the points
    law.bootstrap(30)
    fig, ax = plt.subplots()
    assert law.plot(ax=ax, x="D", n_curves=2) is ax
    assert len(ax.collections) == 1 + 2  # the points and one band per curve
    # The band brackets its curve.
    band = ax.collections[1].get_paths()[0].vertices
    curve = ax.lines[0].get_ydata()
    assert band[:, 1].min() <= curve.min() and band[:, 1].max() >= curve.max()
    fig.savefig(tmp_path / "law.png")
    assert (tmp_path / "law.png").stat().st_size > 0
    plt.close("all")


@pytest.fixture(scope="module")
def precision_law():
    params = EXAMPLE_PARAMS["precision"]
    X, loss = make_scaling_data(
        "precision", params, n_samples=120, noise=0.01, random_state=6
    )
    grid = dict(GRID, log_gamma=[1.0])
    law = ScalingLaw(form="precision", start_grid=grid, random_state=0, verbose=False)
    return law.fit(X, loss).bootstrap(60)


def test_precision_bootstrap_gives_the_worth_of_a_1_bit_weight(precision_law):
    low, high = precision_law.confidence_intervals_["one_bit_worth"]
    assert low < precision_law.derived_["one_bit_worth"] < high
    # Derived sample by sample from the refitted gamma.
    gamma = precision_law.bootstrap_params_["gamma"]
    expected = -np.expm1(-1 / gamma) / -np.expm1(-32 / gamma)
    np.testing.assert_allclose(precision_law.bootstrap_params_["one_bit_worth"], expected)
    plan = precision_law.compute_optimal([1e21], bits=1)
    assert plan.intervals["N_opt"][0, 0] < plan.N_opt[0] < plan.intervals["N_opt"][0, 1]


def test_plot_holds_bits_per_weight_at_values_the_runs_have(precision_law):
    ax = precision_law.plot(n_curves=3)
    labels = [line.get_label() for line in ax.lines]
    bits = {float(label.split("P=")[1]) for label in labels}
    assert bits <= {1.0, 2.0, 4.0, 8.0, 32.0}
    assert len(ax.collections) == 1 + len(ax.lines)  # the points and a band per curve
    plt.close("all")
