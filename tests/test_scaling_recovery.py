"""Fits recover the parameters of the law that generated the data.

Noise-free data must give the parameters to 1e-6 (relative). With noise, the estimator
is, for Huber's delta far below the noise, a least-absolute-deviation fit, whose
asymptotic covariance under Gaussian noise of standard deviation sigma in log L is
``(pi / 2) sigma^2 (J^T J)^-1`` (J the Jacobian of log L in the internal parameters at
the truth). Each internal parameter must land within 5 of those standard errors: the
chance of a larger miss is below 1e-6 per parameter, so a failure means a wrong fit,
not bad luck, and the seeds are fixed besides.
"""

from __future__ import annotations

import numpy as np
import pytest

from pybinscale import ScalingLaw
from pybinscale.scaling.forms import get_form
from pybinscale.scaling.synthetic import EXAMPLE_PARAMS, make_scaling_data

TRUTH = EXAMPLE_PARAMS

# A grid around the realistic basin for the noisy fits of the two large forms: the
# default grids (4,500 and 2,916 starts) are exercised by the noise-free tests, and the
# noisy test is about the statistics of the optimum, not about finding it.
SMALL_GRIDS = {
    "chinchilla": {
        "a": [0.0, 5.0],
        "b": [5.0, 10.0],
        "e": [0.0],
        "alpha": [0.5],
        "beta": [0.5],
    },
    "precision": {
        "a": [0.0, 5.0],
        "b": [5.0, 10.0],
        "e": [0.0],
        "alpha": [0.5],
        "beta": [0.5],
        "log_gamma": [0.0, 1.0],
    },
}


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_noise_free_data_gives_the_parameters_to_1e_6(name):
    n_samples = 100 if name == "precision" else 200
    X, loss = make_scaling_data(name, TRUTH[name], n_samples=n_samples, random_state=0)
    law = ScalingLaw(form=name, verbose=False).fit(X, loss)
    for key, value in TRUTH[name].items():
        assert law.params_[key] == pytest.approx(value, rel=1e-6), key
    assert law.huber_loss_ < 1e-20


def _lad_standard_errors(name: str, X: np.ndarray, sigma: float) -> np.ndarray:
    form = get_form(name)
    theta = form.internal_params(TRUTH[name])
    jacobian = form.jacobian(form.derivatives(theta[None], form.prepare(X)))[0]
    covariance = 0.5 * np.pi * sigma**2 * np.linalg.inv(jacobian.T @ jacobian)
    return np.sqrt(np.diag(covariance))


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_noisy_data_gives_the_parameters_within_five_standard_errors(name):
    sigma = 0.02
    X, loss = make_scaling_data(
        name, TRUTH[name], n_samples=400, noise=sigma, random_state=1
    )
    law = ScalingLaw(form=name, start_grid=SMALL_GRIDS.get(name), verbose=False).fit(
        X, loss
    )
    form = get_form(name)
    errors = law.internal_params_ - form.internal_params(TRUTH[name])
    standard_errors = _lad_standard_errors(name, X, sigma)
    assert np.all(np.abs(errors) <= 5.0 * standard_errors), (
        errors / standard_errors
    ).round(2)
    # The check has teeth: every exponent is pinned to better than 20% by the data.
    for key in ("alpha", "beta", "alpha_N", "alpha_D"):
        if key in TRUTH[name]:
            assert law.params_[key] == pytest.approx(TRUTH[name][key], rel=0.2), key


def test_precision_form_says_what_a_1_bit_weight_is_worth():
    # 1-bit and 32-bit runs fitted together: the fit must find gamma, and from it the
    # worth of one 1-bit weight in 32-bit weights, (1 - e^(-1/gamma)) / (1 - e^(-32/gamma)).
    truth = dict(TRUTH["precision"], gamma=1.5)
    rng = np.random.RandomState(3)
    X, loss = make_scaling_data("precision", truth, n_samples=120, random_state=rng)
    X[:, 2] = rng.choice([1.0, 32.0], size=120)
    loss = truth["E"] + truth["A"] / (X[:, 0] * -np.expm1(-X[:, 2] / 1.5)) ** 0.34
    loss += truth["B"] / X[:, 1] ** 0.28
    law = ScalingLaw(form="precision", verbose=False).fit(X, loss)
    assert law.params_["gamma"] == pytest.approx(1.5, rel=1e-6)
    expected = (1 - np.exp(-1 / 1.5)) / (1 - np.exp(-32 / 1.5))
    assert law.derived_["one_bit_worth"] == pytest.approx(expected, rel=1e-6)
    assert law.derived_["N_opt_exponent"] == pytest.approx(0.28 / 0.62, rel=1e-6)


def test_dataframe_and_array_give_the_same_fit():
    pd = pytest.importorskip("pandas")
    X, loss = make_scaling_data("kaplan", TRUTH["kaplan"], n_samples=60, random_state=4)
    from_array = ScalingLaw(form="kaplan", verbose=False).fit(X, loss)
    frame = pd.DataFrame({"D": X[:, 1], "N": X[:, 0]})  # columns in another order
    from_frame = ScalingLaw(form="kaplan", verbose=False).fit(frame, loss)
    assert from_frame.variables_ == ("D", "N")
    for key, value in from_array.params_.items():
        assert from_frame.params_[key] == pytest.approx(value, rel=1e-9)
    np.testing.assert_allclose(from_frame.predict(frame), from_array.predict(X), rtol=1e-9)
