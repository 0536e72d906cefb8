"""Bad input gets a ValueError (or TypeError) that names the argument and the problem."""

from __future__ import annotations

import numpy as np
import pytest

from pybinscale import ScalingLaw
from pybinscale.scaling.synthetic import EXAMPLE_PARAMS, make_scaling_data

GRID = {"a": [5.0], "b": [5.0], "e": [0.0], "alpha": [0.5], "beta": [0.5]}


@pytest.fixture(scope="module")
def data():
    return make_scaling_data(
        "chinchilla", EXAMPLE_PARAMS["chinchilla"], n_samples=30, random_state=0
    )


def _law(**kwargs):
    return ScalingLaw(start_grid=GRID, verbose=False, **kwargs)


@pytest.mark.parametrize(
    "column, value, message",
    [
        (0, 0.0, r"Zeros in data: variable 'N' must be positive"),
        (0, -5.0, r"Negative values in data: variable 'N' must be positive"),
        (1, -1e9, r"Negative values in data: variable 'D' must be positive"),
    ],
)
def test_non_positive_variables_are_named(data, column, value, message):
    X, loss = data
    X = X.copy()
    X[3, column] = value
    with pytest.raises(ValueError, match=message + r".*at row 3"):
        _law().fit(X, loss)


def test_non_positive_compute_is_named():
    X, loss = make_scaling_data(
        "power", EXAMPLE_PARAMS["power"], n_samples=10, random_state=0
    )
    X[0, 0] = -1.0
    with pytest.raises(ValueError, match="variable 'C' must be positive"):
        ScalingLaw(form="power", variables=["C"], verbose=False).fit(X, loss)


@pytest.mark.parametrize("value", [0.0, -0.5])
def test_non_positive_loss_is_named(data, value):
    X, loss = data
    loss = loss.copy()
    loss[2] = value
    with pytest.raises(ValueError, match=r"^y: .*the loss must be positive.*at row 2"):
        _law().fit(X, loss)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("where", ["X", "y"])
def test_nan_and_inf_are_rejected(data, bad, where):
    X, loss = data
    X, loss = X.copy(), loss.copy()
    if where == "X":
        X[1, 1] = bad
    else:
        loss[1] = bad
    with pytest.raises(ValueError, match=rf"Input {where} contains (NaN|infinity)"):
        _law().fit(X, loss)
    law = _law().fit(*data)
    if where == "X":
        with pytest.raises(ValueError, match="Input X contains"):
            law.predict(X)


def test_non_positive_variables_are_rejected_at_predict(data):
    law = _law().fit(*data)
    with pytest.raises(ValueError, match="variable 'D' must be positive"):
        law.predict([[1e9, 0.0]])


def test_fewer_points_than_parameters(data):
    X, loss = data
    with pytest.raises(ValueError, match="n_samples = 4: fewer points than parameters"):
        _law().fit(X[:4], loss[:4])


def test_chinchilla_without_d_column_is_named():
    pd = pytest.importorskip("pandas")
    X, loss = make_scaling_data(
        "chinchilla", EXAMPLE_PARAMS["chinchilla"], n_samples=20, random_state=0
    )
    frame = pd.DataFrame({"N": X[:, 0], "C": 6 * X[:, 0] * X[:, 1]})
    with pytest.raises(
        ValueError,
        match=r"needs the variables \['N', 'D'\]; X is missing \['D'\].*D = C / \(c N\)",
    ):
        _law().fit(frame, loss)


@pytest.mark.parametrize(
    "form, variables, message",
    [
        ("power", ["N", "D"], "a law in one variable"),
        ("precision", ["N", "D"], r"is missing \['P'\]"),
        ("kaplan", ["N", "P"], r"is missing \['D'\] and has unexpected \['P'\]"),
        ("chinchilla", ["N", "T"], r"variables: unknown variable name\(s\) \['T'\]"),
        ("chinchilla", ["N", "N"], "variable names repeat"),
        ("chinchilla", ["N", "D", "P"], r"variables names 3 column\(s\)"),
    ],
)
def test_wrong_variables_for_the_form(data, form, variables, message):
    X, loss = data
    with pytest.raises(ValueError, match=message):
        ScalingLaw(form=form, variables=variables, verbose=False).fit(X, loss)


def test_extra_dataframe_columns_are_named(data):
    pd = pytest.importorskip("pandas")
    X, loss = data
    frame = pd.DataFrame({"N": X[:, 0], "D": X[:, 1], "C": 6 * X[:, 0] * X[:, 1]})
    with pytest.raises(ValueError, match=r"unexpected \['C'\]; pass only those columns"):
        _law().fit(frame, loss)


def test_variables_contradicting_dataframe_columns(data):
    pd = pytest.importorskip("pandas")
    X, loss = data
    with pytest.raises(ValueError, match="contradicts the columns of the DataFrame"):
        _law(variables=["D", "N"]).fit(pd.DataFrame(X, columns=["N", "D"]), loss)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"form": "hoffmann"}, "The 'form' parameter of ScalingLaw must be a str among"),
        (
            {"delta": 0.0},
            r"The 'delta' parameter of ScalingLaw must be a float in the range \(0.0, inf\)",
        ),
        ({"delta": -1e-3}, "The 'delta' parameter"),
        ({"delta": "big"}, "The 'delta' parameter"),
        ({"max_iter": 0}, "The 'max_iter' parameter"),
        ({"tol": 2.0}, "The 'tol' parameter"),
        ({"start_grid": {"gamma": [1.0]}}, "start_grid: unknown parameter"),
    ],
)
def test_bad_parameters_are_named(data, params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ScalingLaw(verbose=False, **params).fit(*data)


def test_bad_method_arguments_are_named(data):
    law = _law().fit(*data)
    with pytest.raises(ValueError, match="n_resamples: expected an integer >= 2"):
        law.bootstrap(1)
    with pytest.raises(
        ValueError, match=r"confidence_level: expected a number in \(0, 1\)"
    ):
        law.bootstrap(10, confidence_level=95)
    with pytest.raises(ValueError, match="compute: expected positive finite budgets"):
        law.compute_optimal([1e21, -1.0])
    with pytest.raises(
        ValueError, match="flops_per_param_token: expected a positive number"
    ):
        law.compute_optimal(1e21, flops_per_param_token=0)
    with pytest.raises(ValueError, match="bits: only the precision form takes bits"):
        law.compute_optimal(1e21, bits=1)
    with pytest.raises(ValueError, match=r"fraction: expected a share in \(0, 1\)"):
        law.leave_out(1.5)
    with pytest.raises(ValueError, match="leaves 3, fewer than the 5 parameters"):
        law.leave_out(0.9)
    with pytest.raises(ValueError, match="by: the law has no variable 'C'"):
        law.leave_out(0.1, by="C")
    with pytest.raises(ValueError, match="x: the law has no variable 'P'"):
        law.plot(x="P")


def test_compute_optimal_needs_a_chinchilla_like_form():
    X, loss = make_scaling_data(
        "power", EXAMPLE_PARAMS["power"], n_samples=10, random_state=0
    )
    law = ScalingLaw(form="power", verbose=False).fit(X, loss)
    with pytest.raises(
        ValueError, match="compute_optimal needs the 'chinchilla' or 'precision' form"
    ):
        law.compute_optimal(1e21)


def test_precision_allocation_needs_bits():
    X, loss = make_scaling_data(
        "precision", EXAMPLE_PARAMS["precision"], n_samples=20, random_state=0
    )
    grid = dict(GRID, log_gamma=[1.0])
    law = ScalingLaw(form="precision", start_grid=grid, verbose=False).fit(X, loss)
    with pytest.raises(
        ValueError, match="bits: the precision form allocates compute at a fixed precision"
    ):
        law.compute_optimal(1e21)
