"""Extrapolation check: fit on the small runs, compare with the largest ones.

A scaling law is used to predict runs larger than any it was fitted on, so the honest
test of a fit is the same extrapolation on data one has: hold out the largest runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone

if TYPE_CHECKING:  # pragma: no cover - only for the annotations
    from .law import ScalingLaw

__all__ = ["LeaveOutReport", "leave_out_largest", "run_size"]

FloatArray = NDArray[np.float64]


@dataclass
class LeaveOutReport:
    """The outcome of :meth:`ScalingLaw.leave_out`.

    Attributes
    ----------
    law : ScalingLaw
        The law refitted on the smaller runs only.
    held_out : ndarray of bool, shape (n_samples,)
        Which training points were held out (the largest).
    by : str
        What ordered the runs by size.
    observed, predicted : ndarray of shape (n_held_out,)
        Losses of the held-out runs and the refitted law's predictions.
    relative_error : ndarray of shape (n_held_out,)
        ``predicted / observed - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import ScalingLaw
    >>> N = np.logspace(6, 10, 10)
    >>> law = ScalingLaw(form="power", verbose=False).fit(N[:, None], (1e13 / N) ** 0.07)
    >>> report = law.leave_out(0.2)
    >>> report.by, report.n_held_out, bool(report.log_rmse < 1e-9)
    ('N', 2, True)
    """

    law: ScalingLaw
    held_out: NDArray[np.bool_]
    by: str
    observed: FloatArray
    predicted: FloatArray
    relative_error: FloatArray

    @property
    def n_held_out(self) -> int:
        """Number of held-out runs."""
        return int(self.held_out.sum())

    @property
    def mean_abs_relative_error(self) -> float:
        """Mean of ``|predicted / observed - 1|`` over the held-out runs."""
        return float(np.mean(np.abs(self.relative_error)))

    @property
    def max_abs_relative_error(self) -> float:
        """Largest ``|predicted / observed - 1|`` over the held-out runs."""
        return float(np.max(np.abs(self.relative_error)))

    @property
    def log_rmse(self) -> float:
        """Root mean square of ``log predicted - log observed``."""
        return float(np.sqrt(np.mean(np.log(self.predicted / self.observed) ** 2)))


def run_size(
    variables: FloatArray, names: tuple[str, ...], by: str | None
) -> tuple[FloatArray, str]:
    """Size of each run: the variable ``by``, or ``N * D`` (compute up to a constant).

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.extrapolation import run_size
    >>> run_size(np.array([[2.0, 3.0]]), ("N", "D"), None)
    (array([6.]), 'N * D')
    """
    if by is not None:
        if by not in names:
            raise ValueError(
                f"by: the law has no variable {by!r}; its variables are {list(names)}"
            )
        return variables[:, names.index(by)], by
    if "N" in names and "D" in names:
        return variables[:, names.index("N")] * variables[:, names.index("D")], "N * D"
    return variables[:, 0], names[0]


def leave_out_largest(law: ScalingLaw, fraction: float, by: str | None) -> LeaveOutReport:
    """Refit ``law`` without its largest runs and predict them.

    See :meth:`~pybinscale.ScalingLaw.leave_out`.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import ScalingLaw
    >>> from pybinscale.scaling.extrapolation import leave_out_largest
    >>> N = np.logspace(6, 10, 10)
    >>> law = ScalingLaw(form="power", verbose=False).fit(N[:, None], (1e13 / N) ** 0.07)
    >>> leave_out_largest(law, 0.3, None).held_out.tolist()[-4:]
    [False, True, True, True]
    """
    if not isinstance(fraction, Real) or not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction: expected a share in (0, 1), got {fraction!r}")
    size, by_name = run_size(law.X_fit_, law.variables_, by)
    n_points = size.shape[0]
    n_held_out = math.ceil(fraction * n_points)
    n_params = len(law.params_)
    if n_points - n_held_out < n_params:
        raise ValueError(
            f"fraction: holding out {n_held_out} of {n_points} points leaves "
            f"{n_points - n_held_out}, fewer than the {n_params} parameters of the law"
        )
    held_out = np.zeros(n_points, dtype=bool)
    held_out[np.argsort(size, kind="stable")[n_points - n_held_out :]] = True
    small_law = clone(law).set_params(variables=list(law.variables_))
    small_law.fit(law.X_fit_[~held_out], law.y_fit_[~held_out])
    observed = law.y_fit_[held_out]
    predicted = small_law.predict(law.X_fit_[held_out])
    return LeaveOutReport(
        law=small_law,
        held_out=held_out,
        by=by_name,
        observed=observed,
        predicted=predicted,
        relative_error=predicted / observed - 1.0,
    )
