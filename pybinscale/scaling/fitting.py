"""Robust fitting of a scaling-law form: Huber loss in log space, many starts.

The objective is Hoffmann et al.'s: ``sum_i w_i Huber_delta(log L_hat_i - log L_i)``.
With ``delta = 1e-3`` it is tiny near the optimum (of order ``delta * n * |residual|``),
which is how optimisers run with default, absolute tolerances stop early. Two stages:

1. :func:`newton_batch` advances every start at once: a damped Newton
   (Levenberg-Marquardt) step with the analytic gradient and Hessian, solved through a
   batched eigendecomposition so that indefinite Hessians are shifted to positive
   definite ones, and a trust-region ratio test per start. Far from the optimum, where
   most residuals lie beyond delta and Huber's curvature is zero, a start uses the
   curvature ``delta / |r|`` of the quadratic that majorises Huber (as iteratively
   reweighted least squares does); once its steps gain less than 1e-4 of the loss it
   switches to the exact Hessian, which converges quadratically. On the Chinchilla
   data this halves the Newton steps a start takes. Starts that have converged leave
   the batch.
2. :func:`polish` takes the best distinct optima and runs scipy's L-BFGS-B on them with
   the analytic gradient, on the objective divided by its value at the start so that the
   tolerances are relative to the loss, not absolute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from tqdm.auto import tqdm

from ._progress import progress_bar
from .forms import ScalingForm

__all__ = ["HuberLogObjective", "FitResult", "newton_batch", "polish", "fit_from_starts"]

FloatArray = NDArray[np.float64]

# Starts are advanced in chunks so that the (S, n, p) Jacobians stay a few tens of MB.
_MAX_BATCH_ELEMENTS = 4_000_000
# Relative gain per step below which a start leaves the IRLS phase for exact Newton.
_SWITCH_TO_EXACT = 1e-4
_INITIAL_DAMPING = 1e-3
_DAMPING_UP = 4.0
_DAMPING_DOWN = 3.0


def huber(residuals: FloatArray, delta: float) -> FloatArray:
    """Huber loss: ``r^2 / 2`` for ``|r| <= delta``, ``delta (|r| - delta / 2)`` beyond.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.fitting import huber
    >>> huber(np.array([0.0, 0.5, 3.0]), delta=1.0)
    array([0.   , 0.125, 2.5  ])
    """
    magnitude = np.abs(residuals)
    return np.where(
        magnitude <= delta, 0.5 * residuals**2, delta * (magnitude - 0.5 * delta)
    )


class HuberLogObjective:
    """``f(theta) = sum_i w_i Huber_delta(s_i(theta) - log y_i)`` for one data set.

    Parameters
    ----------
    form : ScalingForm
        The law being fitted.
    variables : ndarray of shape (n, k)
        Positive variables, columns in the order the form reads them.
    loss : ndarray of shape (n,)
        Positive observed losses.
    delta : float
        Huber threshold on log residuals.
    weights : ndarray of shape (n,), optional
        Point weights, e.g. bootstrap counts; ones by default.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.forms import get_form
    >>> from pybinscale.scaling.fitting import HuberLogObjective
    >>> n = np.array([[1e6], [1e7], [1e8]])
    >>> objective = HuberLogObjective(get_form("power"), n, (1e9 / n[:, 0]) ** 0.5, 1e-3)
    >>> k = 0.5 * np.log(1e9)  # the exact parameters: alpha log X_c, alpha
    >>> float(objective.value(np.array([[k, 0.5]]))[0]) < 1e-20
    True
    """

    def __init__(
        self,
        form: ScalingForm,
        variables: FloatArray,
        loss: FloatArray,
        delta: float,
        weights: FloatArray | None = None,
    ) -> None:
        self.form = form
        self.data = form.prepare(np.asarray(variables, dtype=float))
        self.log_loss = np.log(np.asarray(loss, dtype=float))
        self.delta = float(delta)
        n_points = self.log_loss.shape[0]
        self.weights = np.ones(n_points) if weights is None else np.asarray(weights, float)

    def value(self, theta: FloatArray) -> FloatArray:
        """Objective for a batch ``theta`` (S, p), shape (S,); inf where it overflows."""
        with np.errstate(over="ignore", invalid="ignore"):
            residuals = self.form.log_predict(theta, self.data) - self.log_loss
            values = huber(residuals, self.delta) @ self.weights
        return np.where(np.isfinite(values), values, np.inf)

    def value_gradient_hessian(
        self, theta: FloatArray, exact: NDArray[np.bool_] | bool = True
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Objective (S,), gradient (S, p) and Hessian (S, p, p) for a batch.

        Where ``exact`` is False (per start), points beyond the Huber threshold get the
        curvature ``delta / |r|`` of the quadratic that majorises Huber at ``r``
        (iteratively reweighted least squares) instead of Huber's zero: far from the
        optimum, where most residuals are large, this makes Newton steps land near the
        right scale at once instead of growing a trust region step by step.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            derivs = self.form.derivatives(theta, self.data)
            residuals = derivs.log_loss - self.log_loss
            values = huber(residuals, self.delta) @ self.weights
            # The objective's gradient weighs each point by Huber's slope, its Hessian by
            # Huber's curvature (or the majorising one, see above).
            slope = np.clip(residuals, -self.delta, self.delta) * self.weights
            magnitude = np.abs(residuals)
            majorising = np.minimum(1.0, self.delta / np.maximum(magnitude, 1e-300))
            exact_curvature = (magnitude <= self.delta).astype(float)
            curvature = (
                np.where(np.reshape(exact, (-1, 1)), exact_curvature, majorising)
                * self.weights
            )
            gradient = self.form.gradient_sum(derivs, slope)
            hessian = self.form.hessian_sum(
                derivs, outer_weights=curvature, curvature_weights=slope
            )
        return values, gradient, hessian

    def value_and_gradient(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """Objective and gradient at one parameter vector (p,), for scipy."""
        with np.errstate(over="ignore", invalid="ignore"):
            derivs = self.form.derivatives(theta[None], self.data)
            residuals = derivs.log_loss[0] - self.log_loss
            value = float(huber(residuals, self.delta) @ self.weights)
            slope = np.clip(residuals, -self.delta, self.delta) * self.weights
            gradient = self.form.gradient_sum(derivs, slope[None])[0]
        return value, gradient


@dataclass
class BatchResult:
    """Where each start of :func:`newton_batch` ended.

    Attributes
    ----------
    theta : ndarray of shape (S, p)
        End points.
    value : ndarray of shape (S,)
        Objective at each end point.
    n_iter : ndarray of shape (S,)
        Newton iterations each start took.
    converged : ndarray of shape (S,)
        Whether each start met the tolerance before ``max_iter``.

    Examples
    --------
    See :func:`newton_batch`.
    """

    theta: FloatArray
    value: FloatArray
    n_iter: NDArray[np.int64]
    converged: NDArray[np.bool_]


def _newton_chunk(
    objective: HuberLogObjective,
    theta: FloatArray,
    max_iter: int,
    rtol: float,
    bar: tqdm,
) -> BatchResult:
    """Run :func:`newton_batch` on one chunk of starts; count finished ones on ``bar``."""
    n_starts = theta.shape[0]
    theta = theta.copy()
    # Each start begins with the majorising (IRLS) curvature and switches to the exact
    # Hessian for good once its steps gain little, for fast final convergence.
    exact = np.zeros(n_starts, dtype=bool)
    value, gradient, hessian = objective.value_gradient_hessian(theta, exact)
    damping = np.full(n_starts, _INITIAL_DAMPING)
    n_iter = np.zeros(n_starts, dtype=np.int64)
    converged = np.zeros(n_starts, dtype=bool)
    active = np.isfinite(value) & np.all(np.isfinite(gradient), axis=1)
    bar.update(int(n_starts - active.sum()))
    for iteration in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        # Far starts take tens of steps before any finishes: show that work goes on.
        bar.set_postfix_str(
            f"Newton step {iteration + 1}, {idx.size} running", refresh=False
        )
        n_iter[idx] += 1
        h = hessian[idx]
        h = np.where(np.isfinite(h), h, 0.0)
        eigvals, eigvecs = np.linalg.eigh(0.5 * (h + np.swapaxes(h, 1, 2)))
        # Damping is relative to the Hessian's largest eigenvalue, or to the gradient
        # where the Hessian vanishes (then a step is at most 1 / damping long).
        scale = np.maximum(
            np.abs(eigvals).max(axis=1), np.linalg.norm(gradient[idx], axis=1)
        )
        scale = np.maximum(scale, 1e-300)
        # Shift an indefinite Hessian to a positive definite one, then damp relative to
        # its largest eigenvalue (Levenberg-Marquardt in the eigenbasis).
        shift = np.maximum(-eigvals.min(axis=1), 0.0) + damping[idx] * scale
        grad_rot = np.einsum("spq,sp->sq", eigvecs, gradient[idx])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            coeffs = grad_rot / (eigvals + shift[:, None])
            step = -np.einsum("spq,sq->sp", eigvecs, coeffs)
            predicted = np.sum(coeffs**2 * (0.5 * eigvals + shift[:, None]), axis=1)
        candidate = theta[idx] + step
        new_value = objective.value(candidate)
        decrease = value[idx] - new_value
        accepted = decrease > 0
        with np.errstate(over="ignore", invalid="ignore"):
            ratio = np.where(predicted > 0, decrease / np.maximum(predicted, 1e-300), 0.0)
        accepted &= np.all(np.isfinite(candidate), axis=1)
        damping[idx] = np.where(
            ~accepted | (ratio < 0.25),
            damping[idx] * _DAMPING_UP,
            np.where(ratio > 0.75, damping[idx] / _DAMPING_DOWN, damping[idx]),
        )
        damping[idx] = np.clip(damping[idx], 1e-12, None)
        # Converged: an accepted step that no longer lowers the loss by more than rtol of
        # it, or damping so large that no step can (the start sits at a stationary point).
        floor = rtol * np.maximum(new_value, 1e-300)
        small_gain = accepted & (decrease <= floor) & (damping[idx] <= 1.0)
        stuck = damping[idx] > 1e10
        switch = idx[accepted & (decrease <= _SWITCH_TO_EXACT * value[idx]) & ~exact[idx]]
        exact[switch] = True
        moved = np.union1d(idx[accepted], switch)
        theta[idx[accepted]] = candidate[accepted]
        if moved.size:
            value[moved], gradient[moved], hessian[moved] = (
                objective.value_gradient_hessian(theta[moved], exact[moved])
            )
        small_gain &= exact[idx]
        done = idx[small_gain | stuck]
        converged[done] = True
        active[done] = False
        bar.update(int(done.size))
    return BatchResult(theta, value, n_iter, converged)


def newton_batch(
    objective: HuberLogObjective,
    starts: FloatArray,
    *,
    max_iter: int = 500,
    rtol: float = 1e-12,
    progress: bool = False,
) -> BatchResult:
    """Minimise the objective from every start at once with damped Newton steps.

    Parameters
    ----------
    objective : HuberLogObjective
    starts : ndarray of shape (S, p)
    max_iter : int
        Most Newton iterations per start.
    rtol : float
        A start has converged when an accepted step lowers the objective by at most
        ``rtol`` times its value.
    progress : bool
        Show a progress bar of finished starts.

    Returns
    -------
    BatchResult
        Final parameters, objective values, iterations and convergence flags per start.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.forms import get_form
    >>> from pybinscale.scaling.fitting import HuberLogObjective, newton_batch
    >>> form = get_form("power_offset")
    >>> x = np.logspace(6, 10, 20)[:, None]
    >>> objective = HuberLogObjective(form, x, 1.7 + 400.0 / x[:, 0] ** 0.3, 1e-3)
    >>> result = newton_batch(objective, form.start_grid())
    >>> best = result.theta[np.argmin(result.value)]
    >>> {k: round(float(v), 4) for k, v in form.public_params(best).items()}
    {'E': 1.7, 'A': 400.0, 'alpha': 0.3}
    """
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    n_points = objective.log_loss.shape[0]
    chunk = max(1, _MAX_BATCH_ELEMENTS // max(1, n_points * starts.shape[1]))
    results = []
    description = f"fitting {objective.form.name} from {starts.shape[0]} starts"
    with progress_bar(starts.shape[0], description, "start", progress) as bar:
        for begin in range(0, starts.shape[0], chunk):
            results.append(
                _newton_chunk(objective, starts[begin : begin + chunk], max_iter, rtol, bar)
            )
    return BatchResult(
        np.concatenate([r.theta for r in results]),
        np.concatenate([r.value for r in results]),
        np.concatenate([r.n_iter for r in results]),
        np.concatenate([r.converged for r in results]),
    )


@dataclass
class PolishResult:
    """The outcome of :func:`polish`: end point, objective and L-BFGS-B iterations.

    Examples
    --------
    See :func:`polish`.
    """

    theta: FloatArray
    value: float
    n_iter: int


def polish(
    objective: HuberLogObjective, theta: FloatArray, *, rtol: float = 1e-12
) -> PolishResult:
    """Refine one optimum with L-BFGS-B, analytic gradients and loss-relative tolerances.

    The objective is divided by its value at ``theta`` so that L-BFGS-B's tolerances,
    which are absolute once the objective falls below 1, become relative to the loss.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.forms import get_form
    >>> from pybinscale.scaling.fitting import HuberLogObjective, polish
    >>> x = np.logspace(6, 10, 20)[:, None]
    >>> objective = HuberLogObjective(get_form("power"), x, 3.0 * x[:, 0] ** -0.2, 1e-3)
    >>> result = polish(objective, np.array([0.0, 0.1]))
    >>> round(float(result.theta[1]), 6)
    0.2
    """
    theta = np.asarray(theta, dtype=float)
    start_value, _ = objective.value_and_gradient(theta)
    scale = start_value if np.isfinite(start_value) and start_value > 0 else 1.0

    def scaled(t: FloatArray) -> tuple[float, FloatArray]:
        value, gradient = objective.value_and_gradient(t)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return np.inf, np.zeros_like(t)
        return value / scale, gradient / scale

    result = minimize(
        scaled,
        theta,
        jac=True,
        method="L-BFGS-B",
        options={"ftol": rtol, "gtol": rtol, "maxiter": 20_000, "maxcor": 20, "maxls": 50},
    )
    final_value = result.fun * scale
    if not np.isfinite(final_value) or final_value > start_value:
        return PolishResult(theta, float(start_value), int(result.nit))
    return PolishResult(np.asarray(result.x, float), float(final_value), int(result.nit))


@dataclass
class FitResult:
    """The best optimum over all starts, and the distinct optima the starts found.

    Attributes
    ----------
    theta : ndarray of shape (p,)
    value : float
        Objective at ``theta``.
    n_iter : int
        Newton iterations of the winning start plus L-BFGS-B iterations polishing it.
    optima : ndarray of shape (k, p)
        Distinct local optima, best first.
    optima_values : ndarray of shape (k,)
    optima_counts : ndarray of shape (k,)
        How many starts ended at each optimum.
    n_converged : int
        Starts whose Newton run met its tolerance.
    converged : bool
        Whether the Newton run of the winning start met its tolerance before
        ``max_iter`` (the L-BFGS-B polish runs either way).

    Examples
    --------
    See :func:`fit_from_starts`.
    """

    theta: FloatArray
    value: float
    n_iter: int
    optima: FloatArray
    optima_values: FloatArray
    optima_counts: NDArray[np.int64]
    n_converged: int = field(default=0)
    converged: bool = field(default=True)


def distinct_optima(
    theta: FloatArray,
    values: FloatArray,
    *,
    rtol: float = 1e-4,
    value_rtol: float = 1e-9,
    max_optima: int = 20,
) -> tuple[FloatArray, FloatArray, NDArray[np.int64], NDArray[np.int64]]:
    """Group end points that are the same optimum; return them best first.

    Two end points are one optimum when their parameters agree to ``rtol`` (relative,
    with a floor of 1 on the scale), or when their objectives agree to ``value_rtol``:
    end points spread along a flat valley (a term of the law too small to matter, its
    amplitude and exponent trading off) are one optimum, and distinct basins do not
    reach equal losses to nine digits by chance. On noise-free data every objective is
    near zero, where relative differences mean nothing, and only the parameters count.

    Returns
    -------
    optima : ndarray of shape (k, p)
    optima_values : ndarray of shape (k,)
    counts : ndarray of shape (k,)
        End points in each group.
    representative_indices : ndarray of shape (k,)
        Index of the best end point of each group.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.fitting import distinct_optima
    >>> ends = np.array([[1.0, 2.0], [5.0, 0.0], [1.0, 2.0 + 1e-9]])
    >>> optima, values, counts, _ = distinct_optima(ends, np.array([0.1, 0.3, 0.1]))
    >>> optima.tolist(), counts.tolist()
    ([[1.0, 2.0], [5.0, 0.0]], [2, 1])
    """
    finite = np.flatnonzero(np.isfinite(values) & np.all(np.isfinite(theta), axis=1))
    order = finite[np.argsort(values[finite], kind="stable")]
    reps: list[int] = []
    counts: list[int] = []
    for i in order:
        if reps:
            gaps = np.abs(theta[reps] - theta[i]) / np.maximum(1.0, np.abs(theta[reps]))
            same_value = np.abs(values[reps] - values[i]) <= value_rtol * np.abs(values[i])
            same = np.flatnonzero(np.all(gaps <= rtol, axis=1) | same_value)
            if same.size:
                counts[same[0]] += 1
                continue
        if len(reps) < max_optima:
            reps.append(int(i))
            counts.append(1)
    rep_idx = np.array(reps, dtype=np.int64)
    return theta[rep_idx], values[rep_idx], np.array(counts, dtype=np.int64), rep_idx


def fit_from_starts(
    objective: HuberLogObjective,
    starts: FloatArray,
    *,
    max_iter: int = 500,
    rtol: float = 1e-12,
    n_polish: int = 3,
    progress: bool = False,
) -> FitResult:
    """Run :func:`newton_batch` from every start, polish the best distinct optima.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.forms import get_form
    >>> from pybinscale.scaling.fitting import HuberLogObjective, fit_from_starts
    >>> form = get_form("power")
    >>> x = np.logspace(6, 10, 20)[:, None]
    >>> objective = HuberLogObjective(form, x, (1e8 / x[:, 0]) ** 0.25, 1e-3)
    >>> result = fit_from_starts(objective, form.start_grid())
    >>> {k: round(float(v), 6) for k, v in form.public_params(result.theta).items()}
    {'X_c': 100000000.0, 'alpha': 0.25}
    """
    batch = newton_batch(objective, starts, max_iter=max_iter, rtol=rtol, progress=progress)
    optima, values, counts, reps = distinct_optima(batch.theta, batch.value)
    if optima.shape[0] == 0:
        raise RuntimeError(
            "every start diverged: the objective overflowed from all of them; "
            "pass a start_grid nearer the data"
        )
    best_theta, best_value, best_rep = optima[0], values[0], reps[0]
    best_iter = int(batch.n_iter[best_rep])
    for k in range(min(n_polish, optima.shape[0])):
        polished = polish(objective, optima[k], rtol=rtol)
        if polished.value < best_value:
            best_theta, best_value, best_rep = polished.theta, polished.value, reps[k]
            best_iter = int(batch.n_iter[best_rep]) + polished.n_iter
    return FitResult(
        theta=best_theta,
        value=float(best_value),
        n_iter=best_iter,
        optima=optima,
        optima_values=values,
        optima_counts=counts,
        n_converged=int(batch.converged.sum()),
        converged=bool(batch.converged[best_rep]),
    )
