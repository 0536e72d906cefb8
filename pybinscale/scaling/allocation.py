"""Compute-optimal allocation of a compute budget between model size and data.

Under ``C = c N D`` (``c`` FLOPs per parameter per token, 6 for dense training),
minimising ``E + A / N^alpha + B / D^beta`` gives (Hoffmann et al. 2022, appendix D.2)

    N_opt = G (C / c)^(beta / (alpha + beta)),   D_opt = (C / c) / N_opt,
    G = (alpha A / (beta B))^(1 / (alpha + beta)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ComputeOptimalAllocation", "chinchilla_allocation"]

FloatArray = NDArray[np.float64]


def chinchilla_allocation(
    compute: ArrayLike,
    E: ArrayLike,
    A: ArrayLike,
    B: ArrayLike,
    alpha: ArrayLike,
    beta: ArrayLike,
    flops_per_param_token: float = 6.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Closed-form compute-optimal N, D and loss of the Chinchilla law.

    Parameters broadcast against each other, so a column of bootstrap samples against a
    row of budgets gives a table of allocations.

    Parameters
    ----------
    compute : array-like
        Training compute budgets C in FLOPs.
    E, A, B, alpha, beta : array-like
        Parameters of ``L = E + A / N^alpha + B / D^beta``.
    flops_per_param_token : float, default=6
        The constant c in ``C = c N D``.

    Returns
    -------
    N_opt, D_opt, loss : ndarray

    Examples
    --------
    >>> from pybinscale.scaling.allocation import chinchilla_allocation
    >>> n_opt, d_opt, loss = chinchilla_allocation(6e20, 1.0, 1.0, 1.0, 0.5, 0.5)
    >>> float(n_opt), float(d_opt), round(float(loss), 8)  # equal exponents: N = D
    (10000000000.0, 10000000000.0, 1.00002)
    """
    compute, E, A, B, alpha, beta = (
        np.asarray(v, dtype=float) for v in (compute, E, A, B, alpha, beta)
    )
    budget = compute / flops_per_param_token  # N * D
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
        n_opt = scale * budget ** (beta / (alpha + beta))
        d_opt = budget / n_opt
        loss = E + A / n_opt**alpha + B / d_opt**beta
    return n_opt, d_opt, loss


@dataclass
class ComputeOptimalAllocation:
    """Compute-optimal model size, data size and loss for a set of budgets.

    Attributes
    ----------
    compute : ndarray of shape (m,)
        The budgets C in FLOPs.
    N_opt, D_opt, loss : ndarray of shape (m,)
        The point estimates from the fitted law.
    intervals : dict of str to ndarray of shape (m, 2), or None
        Bootstrap confidence intervals (low, high) of ``"N_opt"``, ``"D_opt"`` and
        ``"loss"``; None if the law was not bootstrapped.
    confidence_level : float or None
        The level of the intervals.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.allocation import ComputeOptimalAllocation
    >>> plan = ComputeOptimalAllocation(np.array([6e20]), np.array([1e10]),
    ...                                 np.array([1e10]), np.array([2.0]))
    >>> plan.intervals is None
    True
    """

    compute: FloatArray
    N_opt: FloatArray
    D_opt: FloatArray
    loss: FloatArray
    intervals: dict[str, FloatArray] | None = None
    confidence_level: float | None = None
