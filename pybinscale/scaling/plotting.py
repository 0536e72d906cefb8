"""Log-log plot of a fitted scaling law: data, law, and bootstrap band."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - only for the annotations
    from .law import ScalingLaw

__all__ = ["plot_law"]


# A variable with at most this many distinct values (bits per weight, say) is held at
# values it takes, never at a quantile between them.
_MAX_DISCRETE_VALUES = 8


def _curve_levels(values: np.ndarray, n_curves: int) -> np.ndarray:
    """Values at which to hold the other variables, one row per curve.

    Their distinct combinations if few; else geometric quantiles (the variables span
    decades), each snapped to the nearest value a discrete variable takes.
    """
    distinct = np.unique(values, axis=0)
    if distinct.shape[0] <= n_curves:
        return distinct
    levels = np.exp(np.quantile(np.log(values), np.linspace(0.1, 0.9, n_curves), axis=0))
    for j in range(values.shape[1]):
        taken = np.unique(values[:, j])
        if taken.size <= _MAX_DISCRETE_VALUES:
            nearest = np.abs(np.log(levels[:, j, None]) - np.log(taken[None])).argmin(1)
            levels[:, j] = taken[nearest]
    return np.unique(levels, axis=0)


def plot_law(
    law: ScalingLaw, ax: Any = None, *, x: str | None = None, n_curves: int = 4
) -> Any:
    """Draw ``law``'s data, fitted curve(s) and band; see :meth:`ScalingLaw.plot`.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from pybinscale import ScalingLaw
    >>> from pybinscale.scaling.plotting import plot_law
    >>> N = np.logspace(6, 10, 20)
    >>> law = ScalingLaw(form="power", verbose=False).fit(N[:, None], (1e12 / N) ** 0.1)
    >>> len(plot_law(law).lines)  # the fitted curve
    1
    """
    import matplotlib.pyplot as plt

    names = law.variables_
    if x is None:
        x = "N" if "N" in names else names[0]
    if x not in names:
        raise ValueError(
            f"x: the law has no variable {x!r}; its variables are {list(names)}"
        )
    if not isinstance(n_curves, (int, np.integer)) or n_curves < 1:
        raise ValueError(f"n_curves: expected a positive integer, got {n_curves!r}")
    if ax is None:
        _, ax = plt.subplots()
    column = names.index(x)
    others = [j for j in range(len(names)) if j != column]
    data = law.X_fit_
    grid = np.geomspace(data[:, column].min(), data[:, column].max(), 200)
    levels = _curve_levels(data[:, others], n_curves) if others else np.empty((1, 0))
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, levels.shape[0]))
    if others:
        # Colour each point by the curve whose held variables are nearest in log space.
        distance = np.abs(np.log(data[:, others])[:, None, :] - np.log(levels)[None]).sum(2)
        point_colours = colours[np.argmin(distance, axis=1)]
    else:
        point_colours = colours[[0] * data.shape[0]]
    ax.scatter(data[:, column], law.y_fit_, s=12, c=point_colours, alpha=0.7, label="data")
    bootstrap = getattr(law, "bootstrap_internal_params_", None)
    for level, colour in zip(levels, colours):
        points = np.empty((grid.size, len(names)))
        points[:, column] = grid
        points[:, others] = level
        label = ", ".join(f"{names[j]}={v:.3g}" for j, v in zip(others, level)) or "fit"
        ax.plot(
            grid,
            law._predict_internal(points, law.internal_params_)[0],
            color=colour,
            label=label,
        )
        if bootstrap is not None:
            finite = bootstrap[np.all(np.isfinite(bootstrap), axis=1)]
            curves = law._predict_internal(points, finite)
            # getattr: mypy cannot type an attribute the bootstrap sets, across the cycle.
            coverage = float(getattr(law, "confidence_level_"))  # noqa: B009
            tail = 50.0 * (1.0 - coverage)
            low, high = np.percentile(curves, [tail, 100.0 - tail], axis=0)
            ax.fill_between(grid, low, high, color=colour, alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    # Losses span less than a decade: plain numbers read better than powers of ten.
    from matplotlib.ticker import ScalarFormatter

    for axis_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis_formatter(ScalarFormatter())
    ax.set_xlabel(x)
    ax.set_ylabel("loss")
    ax.set_title(f"{law.form_}: {_formula(law)}")
    ax.legend(fontsize="small")
    return ax


def _formula(law: ScalingLaw) -> str:
    from .forms import get_form

    return get_form(law.form_).formula
