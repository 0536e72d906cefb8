"""Checks that the data handed to a scaling law is what the law can fit.

Each check raises a ``ValueError`` that names the argument and the problem, so that a
bad column is reported before any optimiser produces a silent NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .forms import VARIABLE_NAMES, ScalingForm

__all__ = [
    "resolve_variables",
    "default_variables",
    "column_labels",
    "check_positive",
    "check_enough_points",
]


def _check_names(names: Sequence[object], argument: str) -> tuple[str, ...]:
    names = tuple(names)
    unknown = [n for n in names if n not in VARIABLE_NAMES]
    if unknown:
        raise ValueError(
            f"{argument}: unknown variable name(s) {unknown}; a scaling law reads columns "
            f"named {list(VARIABLE_NAMES)} (N parameters, D data, C compute, P bits "
            "per weight)"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"{argument}: variable names repeat: {list(names)}")
    return tuple(str(n) for n in names)


def resolve_variables(
    form: ScalingForm,
    column_names: Sequence[str] | None,
    n_columns: int,
    variables: Sequence[str] | None,
) -> tuple[str, ...]:
    """Name the columns of X and put them in the order the form reads them.

    Parameters
    ----------
    form : ScalingForm
    column_names : sequence of str or None
        Column names of a DataFrame X, or None for an array.
    n_columns : int
        Number of columns of X.
    variables : sequence of str or None
        The estimator's ``variables`` parameter: names of the columns of an array X.
        ``None`` means the form's own variables in its order (for a single-variable
        form, ``("N",)``).

    Returns
    -------
    tuple of str
        The names of X's columns, as given (its column order).

    Raises
    ------
    ValueError
        If a name is unknown or repeated, if ``variables`` contradicts a DataFrame's
        columns, or if the columns are not exactly the variables the form needs.

    Examples
    --------
    >>> from pybinscale.scaling.data import resolve_variables
    >>> from pybinscale.scaling.forms import get_form
    >>> resolve_variables(get_form("chinchilla"), ["D", "N"], 2, None)
    ('D', 'N')
    >>> resolve_variables(get_form("power"), None, 1, ["C"])
    ('C',)
    """
    if column_names is not None:
        names = _check_names(column_names, "X (column names)")
        if variables is not None and tuple(variables) != names:
            raise ValueError(
                f"variables={list(variables)} contradicts the columns of the DataFrame X, "
                f"{list(names)}; pass variables=None to use the column names"
            )
    elif variables is not None:
        names = _check_names(variables, "variables")
        if len(names) != n_columns:
            raise ValueError(
                f"variables names {len(names)} column(s) {list(names)} but X has "
                f"{n_columns} column(s)"
            )
    else:
        names = default_variables(form)
        if len(names) != n_columns:
            raise ValueError(
                f"X has n_features = {n_columns} but form {form.name!r} ({form.formula}) "
                f"reads {len(names)} variable(s), {list(names)}; pass a DataFrame with "
                "those columns or name the columns with variables="
            )
    if form.variables is None:
        if len(names) != 1:
            raise ValueError(
                f"form {form.name!r} ({form.formula}) is a law in one variable, but X has "
                f"the columns {list(names)}; select one of them"
            )
        return names
    missing = [v for v in form.variables if v not in names]
    extra = [v for v in names if v not in form.variables]
    if missing or extra:
        hint = ""
        if "D" in missing and "C" in names:
            hint = "; with compute C and C = c N D, the data size is D = C / (c N)"
        elif not missing:
            hint = f"; pass only those columns, e.g. X[{list(form.variables)}]"
        problems = [f"is missing {missing}"] if missing else []
        problems += [f"has unexpected {extra}"] if extra else []
        raise ValueError(
            f"form {form.name!r} ({form.formula}) needs the variables "
            f"{list(form.variables)}; X {' and '.join(problems)}{hint}"
        )
    return names


def default_variables(form: ScalingForm) -> tuple[str, ...]:
    """The variables an array X holds when ``variables=None``: the form's, or ``N``.

    Examples
    --------
    >>> from pybinscale.scaling.data import default_variables
    >>> from pybinscale.scaling.forms import get_form
    >>> default_variables(get_form("power")), default_variables(get_form("precision"))
    (('N',), ('N', 'D', 'P'))
    """
    return form.variables if form.variables is not None else ("N",)


def column_labels(
    column_names: Sequence[str] | None,
    n_columns: int,
    variables: Sequence[str] | None,
    default: Sequence[str] | None = None,
) -> list[str]:
    """Best-effort names of X's columns for messages, before they are checked.

    The first of the DataFrame's names, ``variables`` and ``default`` that has one name
    per column, else the column numbers.

    Examples
    --------
    >>> from pybinscale.scaling.data import column_labels
    >>> column_labels(None, 2, None)
    ['column 0', 'column 1']
    >>> column_labels(None, 2, None, default=("N", "D"))
    ["variable 'N'", "variable 'D'"]
    """
    for names in (column_names, variables, default):
        if names is not None and len(names) == n_columns:
            return [f"variable {n!r}" for n in names]
    return [f"column {j}" for j in range(n_columns)]


def check_positive(
    values: NDArray[np.float64], argument: str, names: Sequence[str]
) -> None:
    """Raise a ValueError naming the column if any value is not strictly positive.

    Parameters
    ----------
    values : ndarray of shape (n,) or (n, k)
    argument : str
        ``"X"`` or ``"y"``, for the message.
    names : sequence of str
        How to call each column in the message (one name for a 1-D array).

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.data import check_positive
    >>> check_positive(np.array([[1.0, -2.0]]), "X", ["variable 'N'", "variable 'D'"])
    Traceback (most recent call last):
    ...
    ValueError: X: Negative values in data: variable 'D' must be positive (a power law is fitted in log space); found 1 value(s) <= 0, the first -2.0 at row 0
    """
    table = values.reshape(values.shape[0], -1)
    for j, name in enumerate(names):
        bad = np.flatnonzero(~(table[:, j] > 0))
        if bad.size:
            kind = "Negative values" if np.any(table[bad, j] < 0) else "Zeros"
            raise ValueError(
                f"{argument}: {kind} in data: {name} must be positive (a power law is "
                f"fitted in log space); found {bad.size} value(s) <= 0, the first "
                f"{float(table[bad[0], j])!r} at row {bad[0]}"
            )


def check_enough_points(form: ScalingForm, n_points: int) -> None:
    """Raise a ValueError if there are fewer points than the form has parameters.

    Examples
    --------
    >>> from pybinscale.scaling.data import check_enough_points
    >>> from pybinscale.scaling.forms import get_form
    >>> check_enough_points(get_form("chinchilla"), 3)
    Traceback (most recent call last):
    ...
    ValueError: X has n_samples = 3: fewer points than parameters; form 'chinchilla' fits 5 parameters ['E', 'A', 'B', 'alpha', 'beta'] and needs at least 5 points
    """
    if n_points < form.n_params:
        raise ValueError(
            f"X has n_samples = {n_points}: fewer points than parameters; form "
            f"{form.name!r} fits {form.n_params} parameters {list(form.public_names)} "
            f"and needs at least {form.n_params} points"
        )
