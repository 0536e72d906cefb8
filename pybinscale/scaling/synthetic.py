"""Data drawn from a known scaling law, for tests, examples and studies of the fit.

The losses are computed from the formulas as written (DESIGN.md section 1), not from the
log-space parameterisation the fit uses, so that a fit recovering the parameters checks
the fitting machinery against an independent statement of the law.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from sklearn.utils import check_random_state

from .forms import get_form

__all__ = ["EXAMPLE_PARAMS", "law_loss", "make_scaling_data"]

FloatArray = NDArray[np.float64]

#: Realistic parameters for each form: Kaplan et al.'s (2020) L(N) and L(N, D) fits,
#: Hoffmann et al.'s (2022) Chinchilla fit, its N term with E for ``power_offset``, and
#: an illustrative ``gamma`` for the precision form.
EXAMPLE_PARAMS: dict[str, dict[str, float]] = {
    "power": {"X_c": 8.8e13, "alpha": 0.076},
    "power_offset": {"E": 1.69, "A": 406.4, "alpha": 0.34},
    "kaplan": {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095},
    "chinchilla": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    "precision": {
        "E": 1.69,
        "A": 406.4,
        "B": 410.7,
        "alpha": 0.34,
        "beta": 0.28,
        "gamma": 2.5,
    },
}

# Ranges the variables are drawn from, log-uniformly: a few decades, like real sweeps.
_RANGES = {"N": (1e6, 1e10), "D": (1e8, 1e12), "C": (1e15, 1e21)}
_BITS = (1.0, 2.0, 4.0, 8.0, 32.0)


def law_loss(form: str, params: Mapping[str, float], X: FloatArray) -> FloatArray:
    """The loss a law predicts, straight from its formula.

    Parameters
    ----------
    form : str
        A form name (see :class:`~pybinscale.ScalingLaw`).
    params : mapping of str to float
        Its public parameters.
    X : ndarray of shape (n, k)
        The form's variables in its order (``N, D`` or ``N, D, P``; one column for the
        single-variable forms).

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.synthetic import law_loss
    >>> p = {"E": 1.0, "A": 10.0, "B": 100.0, "alpha": 1.0, "beta": 1.0}
    >>> law_loss("chinchilla", p, np.array([[10.0, 100.0]])).tolist()
    [3.0]
    """
    X = np.asarray(X, dtype=float)
    p = dict(params)
    if form == "power":
        return (p["X_c"] / X[:, 0]) ** p["alpha"]
    if form == "power_offset":
        return p["E"] + p["A"] / X[:, 0] ** p["alpha"]
    if form == "kaplan":
        n, d = X[:, 0], X[:, 1]
        return ((p["N_c"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / d) ** p[
            "alpha_D"
        ]
    if form == "chinchilla":
        return p["E"] + p["A"] / X[:, 0] ** p["alpha"] + p["B"] / X[:, 1] ** p["beta"]
    if form == "precision":
        n_eff = X[:, 0] * (1.0 - np.exp(-X[:, 2] / p["gamma"]))
        return p["E"] + p["A"] / n_eff ** p["alpha"] + p["B"] / X[:, 1] ** p["beta"]
    get_form(form)  # raises the usual error for an unknown name
    raise AssertionError(f"no formula written for form {form!r}")  # pragma: no cover


def make_scaling_data(
    form: str,
    params: Mapping[str, float],
    *,
    n_samples: int = 200,
    noise: float = 0.0,
    variable: str = "N",
    random_state: int | np.random.RandomState | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Draw runs log-uniformly and their losses from a law, with log-normal noise.

    Parameters
    ----------
    form : str
        A form name.
    params : mapping of str to float
        Its public parameters.
    n_samples : int, default=200
        Number of runs.
    noise : float, default=0
        Standard deviation of the Gaussian noise added to ``log L``.
    variable : str, default="N"
        The variable of a single-variable form.
    random_state : int, RandomState instance or None
        Seeds the draw.

    Returns
    -------
    X : ndarray of shape (n_samples, k)
        The form's variables in its order (precision bits from {1, 2, 4, 8, 32}).
    loss : ndarray of shape (n_samples,)

    Examples
    --------
    >>> from pybinscale.scaling.synthetic import make_scaling_data
    >>> X, loss = make_scaling_data("power", {"X_c": 1e12, "alpha": 0.1}, n_samples=5,
    ...                             random_state=0)
    >>> X.shape, bool((loss > 1).all())
    ((5, 1), True)
    """
    rng = check_random_state(random_state)
    spec = get_form(form)
    names = spec.variables if spec.variables is not None else (variable,)
    columns = []
    for name in names:
        if name == "P":
            columns.append(rng.choice(_BITS, size=n_samples))
        else:
            low, high = _RANGES[name]
            columns.append(np.exp(rng.uniform(np.log(low), np.log(high), n_samples)))
    X = np.column_stack(columns)
    loss = law_loss(form, params, X) * np.exp(noise * rng.standard_normal(n_samples))
    return X, loss
