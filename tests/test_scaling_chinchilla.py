"""Hoffmann et al.'s procedure on the published Chinchilla points.

Besiroglu et al. (2024) extracted 245 runs from Hoffmann et al.'s Figure 4; dropping
the 5 with the highest loss and fitting ``E + A / N^alpha + B / D^beta`` by Hoffmann's
procedure (Huber loss with delta = 1e-3 on log L, L-BFGS from the 4,500-start grid)
they report E = 1.82, A = 478, B = 2144, alpha = 0.347, beta = 0.367, and a 95% interval
of 0.317 to 0.373 for alpha in their preferred fit. These tests reproduce those numbers.

The data file is not part of the repository; set PYBINSCALE_CHINCHILLA_CSV to it, or
keep it at ../shared/data/chinchilla_svg_extracted.csv from the repository root.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from pybinscale import ScalingLaw
from pybinscale.scaling.bootstrap import RefitProblem, bootstrap_starts, bootstrap_weights
from pybinscale.scaling.fitting import HuberLogObjective, fit_from_starts
from pybinscale.scaling.forms import get_form
from pybinscale.scaling.reference import (
    BESIROGLU_ALPHA_INTERVAL,
    BESIROGLU_HOFFMANN_FIT,
    CHINCHILLA_CSV_ENV,
    chinchilla_csv_path,
    load_chinchilla_points,
)

pytestmark = pytest.mark.skipif(
    not chinchilla_csv_path().is_file(),
    reason=(
        f"the Chinchilla points of Besiroglu et al. are not at {chinchilla_csv_path()}; "
        f"set {CHINCHILLA_CSV_ENV} to the CSV to run these tests"
    ),
)


@pytest.fixture(scope="module")
def points():
    return load_chinchilla_points()


@pytest.fixture(scope="module")
def law(points):
    X, loss = points
    return ScalingLaw(form="chinchilla", verbose=False).fit(X, loss)


def test_the_data_are_the_240_points(points):
    X, loss = points
    assert X.shape == (240, 2)
    assert loss.max() < 5.0  # the 5 highest-loss runs (above 5) are gone


def test_hoffmann_procedure_gives_besiroglu_et_al_values(law):
    # Besiroglu et al. give E, alpha and beta to 3 significant digits and A, B to the
    # unit: the fit must agree to that rounding (E = 1.817, A = 477.8, B = 2143.4,
    # alpha = 0.3473, beta = 0.3672 here).
    fitted = law.params_
    assert fitted["E"] == pytest.approx(BESIROGLU_HOFFMANN_FIT["E"], abs=0.005)
    assert fitted["A"] == pytest.approx(BESIROGLU_HOFFMANN_FIT["A"], abs=0.5)
    assert fitted["B"] == pytest.approx(BESIROGLU_HOFFMANN_FIT["B"], abs=1.0)
    assert fitted["alpha"] == pytest.approx(BESIROGLU_HOFFMANN_FIT["alpha"], abs=5e-4)
    assert fitted["beta"] == pytest.approx(BESIROGLU_HOFFMANN_FIT["beta"], abs=5e-4)
    assert law.n_starts_ == 4500
    # Most starts find this optimum: it is the clear global one.
    assert law.local_optima_[0]["n_starts"] > 2000


def test_the_fit_is_converged(law, points):
    # A plain L-BFGS-B started at our optimum, with tolerances far tighter than its
    # defaults, cannot lower the objective by more than round-off.
    X, loss = points
    objective = HuberLogObjective(get_form("chinchilla"), X, loss, 1e-3)
    result = minimize(
        lambda t: objective.value(t[None])[0],
        law.internal_params_,
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-14, "maxiter": 10_000},
    )
    assert result.fun >= law.huber_loss_ * (1 - 1e-9)


@pytest.fixture(scope="module")
def bootstrapped(points):
    X, loss = points
    law = ScalingLaw(form="chinchilla", random_state=0, n_jobs=2, verbose=False)
    return law.fit(X, loss).bootstrap(n_resamples=300)


def test_bootstrap_interval_for_alpha_is_as_wide_as_besiroglu_et_al(bootstrapped):
    low, high = bootstrapped.confidence_intervals_["alpha"]
    assert low < bootstrapped.params_["alpha"] < high
    published = BESIROGLU_ALPHA_INTERVAL[1] - BESIROGLU_ALPHA_INTERVAL[0]
    # 300 resamples pin the 2.5% and 97.5% quantiles to a few percent of the width.
    assert high - low == pytest.approx(published, rel=0.25)
    assert bootstrapped.bootstrap_internal_params_.shape == (300, 5)
    assert np.isfinite(bootstrapped.bootstrap_internal_params_).all()


def test_bootstrap_gives_intervals_for_derived_quantities(bootstrapped):
    intervals = bootstrapped.confidence_intervals_
    for name in ("E", "A", "B", "alpha", "beta", "N_opt_exponent", "D_opt_exponent"):
        low, high = intervals[name]
        value = {**bootstrapped.params_, **bootstrapped.derived_}[name]
        assert low < value < high, name
    # a + b = 1 for the compute-optimal exponents, sample by sample.
    samples = bootstrapped.bootstrap_params_
    np.testing.assert_allclose(samples["N_opt_exponent"] + samples["D_opt_exponent"], 1.0)


def test_compute_optimal_allocation_has_bootstrap_intervals(bootstrapped):
    plan = bootstrapped.compute_optimal([5.76e23])  # Chinchilla's own budget
    assert plan.N_opt.shape == (1,) and plan.confidence_level == 0.95
    low, high = plan.intervals["N_opt"][0]
    assert low < plan.N_opt[0] < high
    np.testing.assert_allclose(6 * plan.N_opt * plan.D_opt, 5.76e23)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bootstrap_refit_reaches_the_full_grid_optimum(law, points, seed):
    # The refit of a resample starts from the full-data optima only; the full 4,500-start
    # grid on the same resample must find nothing better.
    X, loss = points
    weights = bootstrap_weights(len(loss), 1, np.random.RandomState(seed))[0]
    objective = HuberLogObjective(get_form("chinchilla"), X, loss, 1e-3, weights=weights)
    full = fit_from_starts(objective, get_form("chinchilla").start_grid())
    optima_losses = np.array([optimum["huber_loss"] for optimum in law.local_optima_])
    starts = bootstrap_starts(law._local_optima_internal, optima_losses)
    problem = RefitProblem(get_form("chinchilla"), X, loss, 1e-3, starts=starts)
    thetas, values = problem.refit(weights[None])
    assert values[0] == pytest.approx(full.value, rel=1e-9)
    np.testing.assert_allclose(thetas[0], full.theta, rtol=1e-5)


def test_leave_out_the_largest_runs(law):
    report = law.leave_out(0.1)
    assert report.n_held_out == 24 and report.by == "N * D"
    # The held-out runs are the largest by compute.
    size = law.X_fit_[:, 0] * law.X_fit_[:, 1]
    assert size[report.held_out].min() >= size[~report.held_out].max()
    # Fitted on the smaller 90%, the law predicts the largest runs' loss to 1.0% on
    # average and 2.8% at worst.
    assert report.mean_abs_relative_error < 0.015
    assert report.max_abs_relative_error < 0.035
