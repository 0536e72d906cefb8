"""Bootstrap refits of a scaling law, in parallel.

A resample draws n points with replacement; drawing them is the same as giving each
point a multinomial count as its weight in the Huber objective, which is what is done
here (no copied arrays). Each refit starts from the full-data optimum and from the other
distinct local optima the full grid found whose loss is within a factor
``loss_ratio`` (2) of the best (:func:`bootstrap_starts`): a resample moves the objective
by a few percent, so the basin that held the full-data optimum holds the resample's, and
a rival basin could only overtake it if it was nearly as good on all the data. Optima
far worse than the best (a law reduced to its constant E, say) cannot win on a resample
and would only cost time. The tests check on resamples of the Chinchilla data that this
reaches the same optimum as the full 4,500-start grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from numpy.typing import NDArray

from ._progress import progress_bar
from .fitting import HuberLogObjective, fit_from_starts
from .forms import ScalingForm

__all__ = [
    "RefitProblem",
    "bootstrap_starts",
    "bootstrap_weights",
    "refit_resamples",
    "percentile_intervals",
]

FloatArray = NDArray[np.float64]

# Resamples per joblib task: enough to hide the task overhead, few enough to balance.
_RESAMPLES_PER_TASK = 20


def bootstrap_starts(
    optima: FloatArray, values: FloatArray, *, loss_ratio: float = 2.0, max_starts: int = 10
) -> FloatArray:
    """The local optima a resample's refit starts from: those near the best in loss.

    Parameters
    ----------
    optima : ndarray of shape (k, p)
        Distinct optima of the full-data fit, best first.
    values : ndarray of shape (k,)
        Their objectives.
    loss_ratio : float, default=2
        Keep optima whose objective is at most ``loss_ratio`` times the best.
    max_starts : int, default=10
        Keep at most this many.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.bootstrap import bootstrap_starts
    >>> bootstrap_starts(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 1.5, 30.0]))
    array([[0.],
           [1.]])
    """
    keep = values <= loss_ratio * values[0]
    keep[0] = True  # the best optimum, even if its objective is zero
    return optima[keep][:max_starts]


def bootstrap_weights(
    n_points: int, n_resamples: int, rng: np.random.RandomState
) -> NDArray[np.int64]:
    """Multinomial counts, one row a resample: how often each point was drawn.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.bootstrap import bootstrap_weights
    >>> w = bootstrap_weights(5, 3, np.random.RandomState(0))
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 5), [5, 5, 5])
    """
    return rng.multinomial(n_points, np.full(n_points, 1.0 / n_points), size=n_resamples)


@dataclass(frozen=True)
class RefitProblem:
    """What every bootstrap refit shares: the law, the data and the optimiser settings.

    Attributes
    ----------
    form : ScalingForm
    variables : ndarray of shape (n, k)
        Positive variables in the order the form reads them.
    loss : ndarray of shape (n,)
    delta : float
        Huber threshold.
    starts : ndarray of shape (S, p)
        Internal parameters every refit starts from.
    max_iter, rtol : int, float
        See :func:`~pybinscale.scaling.fitting.fit_from_starts`.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.bootstrap import RefitProblem
    >>> from pybinscale.scaling.forms import get_form
    >>> x = np.logspace(6, 9, 12)[:, None]
    >>> problem = RefitProblem(get_form("power"), x, 2.0 * x[:, 0] ** -0.1, 1e-3,
    ...                        starts=np.zeros((1, 2)))
    >>> thetas, values = problem.refit(np.ones((1, 12), dtype=int))
    >>> round(float(thetas[0, 1]), 6)
    0.1
    """

    form: ScalingForm
    variables: FloatArray
    loss: FloatArray
    delta: float
    starts: FloatArray
    max_iter: int = 500
    rtol: float = 1e-12

    def refit(self, weights: NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
        """Refit once per row of ``weights``; NaN where every start overflowed."""
        thetas = np.full((weights.shape[0], self.form.n_params), np.nan)
        values = np.full(weights.shape[0], np.nan)
        for r, w in enumerate(weights):
            objective = HuberLogObjective(
                self.form, self.variables, self.loss, self.delta, weights=w
            )
            try:
                result = fit_from_starts(
                    objective,
                    self.starts,
                    max_iter=self.max_iter,
                    rtol=self.rtol,
                    n_polish=1,
                )
            except RuntimeError:
                continue  # the resample stays NaN and the caller reports it
            thetas[r], values[r] = result.theta, result.value
        return thetas, values


def refit_resamples(
    problem: RefitProblem,
    weights: NDArray[np.int64],
    *,
    n_jobs: int | None = None,
    progress: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Refit the law once per row of ``weights``, in parallel.

    Parameters
    ----------
    problem : RefitProblem
    weights : ndarray of shape (R, n)
        Bootstrap counts, see :func:`bootstrap_weights`.
    n_jobs : int or None
        Processes for joblib; None means 1.
    progress : bool
        Show a progress bar of finished resamples.

    Returns
    -------
    thetas : ndarray of shape (R, p)
        Internal parameters per resample; NaN rows where every start overflowed.
    values : ndarray of shape (R,)
        The objective at each refit.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.bootstrap import (
    ...     RefitProblem, bootstrap_weights, refit_resamples)
    >>> from pybinscale.scaling.forms import get_form
    >>> x = np.logspace(6, 9, 12)[:, None]
    >>> problem = RefitProblem(get_form("power"), x, 2.0 * x[:, 0] ** -0.1, 1e-3,
    ...                        starts=np.zeros((1, 2)))
    >>> w = bootstrap_weights(12, 4, np.random.RandomState(0))
    >>> thetas, _ = refit_resamples(problem, w)
    >>> np.round(thetas[:, 1], 6).tolist()  # noise-free: every resample finds alpha
    [0.1, 0.1, 0.1, 0.1]
    """
    tasks = [
        weights[begin : begin + _RESAMPLES_PER_TASK]
        for begin in range(0, weights.shape[0], _RESAMPLES_PER_TASK)
    ]
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    outputs: Iterator[tuple[FloatArray, FloatArray]] = parallel(
        delayed(problem.refit)(w) for w in tasks
    )
    thetas, values = [], []
    description = f"bootstrap {problem.form.name}"
    with progress_bar(weights.shape[0], description, "resample", progress) as bar:
        for (theta_chunk, value_chunk), w in zip(outputs, tasks):
            thetas.append(theta_chunk)
            values.append(value_chunk)
            bar.update(w.shape[0])
    return np.concatenate(thetas), np.concatenate(values)


def percentile_intervals(
    samples: dict[str, FloatArray], confidence_level: float
) -> dict[str, tuple[float, float]]:
    """Equal-tailed percentile intervals of each named sample, ignoring NaNs.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.bootstrap import percentile_intervals
    >>> percentile_intervals({"alpha": np.arange(101.0)}, 0.5)
    {'alpha': (25.0, 75.0)}
    >>> percentile_intervals({"alpha": np.array([np.nan, 1.0, 3.0])}, 0.5)
    {'alpha': (1.5, 2.5)}
    """
    tail = 50.0 * (1.0 - confidence_level)
    intervals = {}
    for name, values in samples.items():
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            intervals[name] = (np.nan, np.nan)
            continue
        low, high = np.percentile(finite, [tail, 100.0 - tail])
        intervals[name] = (float(low), float(high))
    return intervals
