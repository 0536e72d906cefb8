"""The results table of a sweep and the scaling laws fitted to it.

A sweep's rows (see :mod:`pybinscale.scaling.sweep` for the columns) become a DataFrame
(:func:`results_frame`); :func:`fit_sweep_laws` fits :class:`ScalingLaw` forms to it
(loss against parameters, model bits, data and compute, the joint Chinchilla law and the
precision law) with bootstrap intervals, and :class:`SweepLaws` holds the results for
the report and the command line.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .law import ScalingLaw

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "KEY_COLUMNS",
    "PRECISION_BITS",
    "SweepLaw",
    "SweepLaws",
    "compute_frontier",
    "fit_sweep_laws",
    "law_table",
    "results_frame",
]

FloatArray = NDArray[np.float64]

#: Columns that identify a point; a results file holds each combination once.
KEY_COLUMNS = ("task", "init", "precision", "width", "n_train", "seed")

#: Bits per weight of each precision, the variable P of the precision law.
PRECISION_BITS = {"1bit": 1.0, "full": 32.0}

def results_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A results table from rows: the key columns first, then the rest in row order.

    Examples
    --------
    >>> from pybinscale.scaling.sweep_laws import results_frame
    >>> results_frame([{"loss": 0.5, "width": 64, "task": "t"}]).columns[:2].tolist()
    ['task', 'width']
    """
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    first = [c for c in KEY_COLUMNS if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def law_table(table: pd.DataFrame, loss: str = "test_loss") -> pd.DataFrame:
    """The columns a scaling law reads, from a sweep's table or any compatible CSV.

    Recognised columns: ``N``; ``D`` or ``n_train``; ``C`` or ``compute``; ``P`` or
    ``precision`` (``"1bit"`` = 1, ``"full"`` = 32) or ``bits_per_weight``;
    ``model_bits`` (else ``N * P``); the loss column ``loss`` (or the one named).

    Parameters
    ----------
    table : DataFrame
    loss : str, default="test_loss"
        Column holding the loss; ``"loss"`` is used if this one is absent.

    Returns
    -------
    DataFrame
        Columns ``N, D, C, P, bits, loss`` where available, plus ``precision``,
        ``task``, ``init``, ``width``, ``seed`` when present.

    Raises
    ------
    ValueError
        If neither the loss column nor ``loss`` is present.

    Examples
    --------
    >>> import pandas as pd
    >>> from pybinscale.scaling.sweep_laws import law_table
    >>> t = pd.DataFrame({"N": [10, 20], "n_train": [5, 5], "precision": ["1bit", "full"],
    ...                   "test_loss": [0.3, 0.2]})
    >>> law_table(t)[["N", "D", "P", "bits", "loss"]].values.tolist()
    [[10.0, 5.0, 1.0, 10.0, 0.3], [20.0, 5.0, 32.0, 640.0, 0.2]]
    """
    import pandas as pd

    columns = {str(c) for c in table.columns}
    out = pd.DataFrame(index=table.index)
    if loss in columns:
        out["loss"] = pd.to_numeric(table[loss], errors="coerce")
    elif "loss" in columns:
        out["loss"] = pd.to_numeric(table["loss"], errors="coerce")
    else:
        raise ValueError(
            f"the table has no loss column {loss!r} (nor 'loss'); its columns are "
            f"{sorted(columns)}"
        )
    for name, sources in (("N", ("N",)), ("D", ("D", "n_train")), ("C", ("C", "compute"))):
        for source in sources:
            if source in columns:
                out[name] = pd.to_numeric(table[source], errors="coerce")
                break
    # P is the precision of the trained weights (1 or 32 bits); bits_per_weight also
    # counts the fixed output signs, so it is only the fallback.
    if "P" in columns:
        out["P"] = pd.to_numeric(table["P"], errors="coerce")
    elif "precision" in columns:
        out["P"] = table["precision"].map(PRECISION_BITS)
    elif "bits_per_weight" in columns:
        out["P"] = pd.to_numeric(table["bits_per_weight"], errors="coerce")
    if "model_bits" in columns:
        out["bits"] = pd.to_numeric(table["model_bits"], errors="coerce")
    elif "N" in out and "P" in out:
        out["bits"] = out["N"] * out["P"]
    for name in ("precision", "task", "init", "width", "seed"):
        if name in columns:
            out[name] = table[name]
    if "precision" not in out and "P" in out:
        out["precision"] = np.where(out["P"] <= 1.0, "1bit", "full")
    return out


def compute_frontier(compute: ArrayLike, loss: ArrayLike) -> NDArray[np.intp]:
    """Indices of the compute-efficient points: lower loss than any cheaper point.

    Parameters
    ----------
    compute, loss : array-like of shape (n,)

    Returns
    -------
    ndarray of int
        Indices into the inputs, by increasing compute.

    Examples
    --------
    >>> from pybinscale.scaling.sweep_laws import compute_frontier
    >>> compute_frontier([1, 2, 3, 4], [0.5, 0.6, 0.4, 0.1]).tolist()
    [0, 2, 3]
    """
    c = np.asarray(compute, dtype=np.float64)
    l_ = np.asarray(loss, dtype=np.float64)
    order = np.lexsort((l_, c))
    best = math.inf
    keep = []
    for index in order:
        if l_[index] < best:
            keep.append(int(index))
            best = float(l_[index])
    return np.asarray(keep, dtype=np.intp)


@dataclass
class SweepLaw:
    """One law fitted to a selection of a sweep's points.

    Attributes
    ----------
    name : str
        E.g. ``"loss_vs_N[1bit]"``.
    description : str
        What was fitted to what, in words.
    form : str
        The ScalingLaw form.
    x : str
        The table column on the horizontal axis (``N``, ``bits``, ``D``, ``C``).
    precision : str or None
        The precision of the points, or None for laws fitted to both.
    law : ScalingLaw or None
        The fitted law; None if it could not be fitted (see ``note``).
    points : DataFrame
        The points it was fitted to (law-table columns).
    note : str
        Warnings from the fit, or why it was not fitted.
    """

    name: str
    description: str
    form: str
    x: str
    precision: str | None
    law: ScalingLaw | None
    points: Any
    note: str = ""

    @property
    def fitted(self) -> bool:
        """Whether the law was fitted."""
        return self.law is not None

    def to_dict(self) -> dict[str, Any]:
        """The law as JSON-ready data: form, parameters, intervals, points used."""
        result: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "form": self.form,
            "x": self.x,
            "precision": self.precision,
            "n_points": int(len(self.points)),
            "note": self.note,
        }
        if self.law is not None:
            from .forms import get_form

            result["formula"] = get_form(self.law.form_).formula
            result["variables"] = list(self.law.variables_)
            result["params"] = dict(self.law.params_)
            result["derived"] = dict(self.law.derived_)
            intervals = getattr(self.law, "confidence_intervals_", None)
            if intervals is not None:
                # getattr: the bootstrap sets it; mypy cannot see that.
                result["confidence_level"] = float(getattr(self.law, "confidence_level_"))  # noqa: B009
                result["intervals"] = {k: [float(a), float(b)] for k, (a, b) in intervals.items()}
        return result

    def interval(self, name: str) -> tuple[float, float] | None:
        """The bootstrap interval of a parameter, or None."""
        intervals = getattr(self.law, "confidence_intervals_", None) or {}
        value = intervals.get(name)
        return None if value is None else (float(value[0]), float(value[1]))


@dataclass
class SweepLaws:
    """The laws :func:`fit_sweep_laws` fitted, by name.

    Attributes
    ----------
    laws : dict of str to SweepLaw
    task : str or None
    init : str or None
    loss : str
        The loss column the laws were fitted to.
    """

    laws: dict[str, SweepLaw] = field(default_factory=dict)
    task: str | None = None
    init: str | None = None
    loss: str = "test_loss"

    def __getitem__(self, name: str) -> SweepLaw:
        return self.laws[name]

    def __contains__(self, name: object) -> bool:
        return name in self.laws

    def __iter__(self) -> Any:
        return iter(self.laws)

    def __len__(self) -> int:
        return len(self.laws)

    def get(self, name: str) -> SweepLaw | None:
        """The law called ``name``, or None."""
        return self.laws.get(name)

    def to_dict(self) -> dict[str, Any]:
        """All laws as JSON-ready data."""
        return {
            "task": self.task,
            "init": self.init,
            "loss": self.loss,
            "laws": {name: law.to_dict() for name, law in self.laws.items()},
        }

    def summary_rows(self) -> list[dict[str, str]]:
        """One row per law for a printed table: name, form, points, parameters."""
        rows = []
        for name, law in self.laws.items():
            rows.append(
                {
                    "law": name,
                    "form": law.form,
                    "points": str(len(law.points)),
                    "parameters": format_params(law) if law.fitted else f"not fitted: {law.note}",
                }
            )
        return rows


def format_params(law: SweepLaw, *, names: Sequence[str] | None = None) -> str:
    """``alpha=0.31 [0.28, 0.35], E=0.012 [...]``: parameters with their intervals."""
    if law.law is None:
        return ""
    parts = []
    params = dict(law.law.params_)
    if names is None:
        names = list(params)
    for name in names:
        if name not in params:
            continue
        text = f"{name}={params[name]:.3g}"
        interval = law.interval(name)
        if interval is not None:
            text += f" [{interval[0]:.3g}, {interval[1]:.3g}]"
        parts.append(text)
    return ", ".join(parts)


def _select(frame: pd.DataFrame, **equal: Any) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in equal.items():
        if value is not None and column in frame:
            mask &= (frame[column] == value).to_numpy()
    return frame[mask]


# Start grids for losses between about 1e-4 and 1 (Hoffmann et al.'s grid is centred
# on language-model losses near 2, with E = e^e in [0.37, 2.7]).
_START_GRIDS: dict[str, dict[str, list[float]]] = {
    "power_offset": {
        "a": [0.0, 3.0, 6.0, 10.0],
        "e": [-6.0, -4.0, -2.0, 0.0],
        "alpha": [0.2, 0.5, 1.0],
    },
    "chinchilla": {
        "a": [0.0, 3.0, 6.0, 10.0],
        "b": [0.0, 3.0, 6.0, 10.0],
        "e": [-6.0, -4.0, -2.0, 0.0],
        "alpha": [0.2, 0.5, 1.0],
        "beta": [0.2, 0.5, 1.0],
    },
    "precision": {
        "a": [0.0, 4.0, 8.0],
        "b": [0.0, 4.0, 8.0],
        "e": [-6.0, -3.0, 0.0],
        "alpha": [0.25, 0.75],
        "beta": [0.25, 0.75],
        "log_gamma": [float(np.log(0.5)), float(np.log(2.0)), float(np.log(8.0))],
    },
}


@dataclass
class _LawSpec:
    name: str
    description: str
    form: str
    x: str
    precision: str | None
    points: Any
    variables: list[str]
    columns: list[str]


def _fit_one(
    spec: _LawSpec,
    n_resamples: int,
    confidence_level: float,
    random_state: int,
) -> SweepLaw:
    from .forms import get_form

    columns = spec.columns
    valid = spec.points.replace([np.inf, -np.inf], np.nan).dropna(subset=[*columns, "loss"])
    valid = valid[(valid[columns] > 0).all(axis=1) & (valid["loss"] > 0)]
    result = SweepLaw(spec.name, spec.description, spec.form, spec.x, spec.precision, None, valid)
    needed = get_form(spec.form).n_params
    distinct = len(valid[columns].drop_duplicates())
    if distinct < max(needed, 2) or len(valid) <= needed:
        result.note = (
            f"{len(valid)} usable points at {distinct} distinct values; the form has "
            f"{needed} parameters"
        )
        return result
    law = ScalingLaw(
        form=spec.form,
        variables=spec.variables,
        start_grid=_START_GRIDS.get(spec.form),
        # A hundred Newton steps reach the optimum on a sweep's few dozen points (the
        # L-BFGS-B polish finishes it); more only slow the degenerate resamples.
        max_iter=100,
        random_state=random_state,
        verbose=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            law.fit(valid[columns].to_numpy(dtype=np.float64), valid["loss"].to_numpy())
            if n_resamples >= 2:
                law.bootstrap(n_resamples, confidence_level=confidence_level)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as error:
            result.note = f"fit failed: {error}"
            return result
    result.law = law
    from sklearn.exceptions import ConvergenceWarning

    # Newton's step limit is expected here (see max_iter above); other warnings are kept.
    kept = [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
    result.note = "; ".join(sorted({str(w.message).split(";")[0] for w in kept}))
    return result


def fit_sweep_laws(
    table: pd.DataFrame,
    *,
    task: str | None = None,
    init: str | None = "symmetric",
    loss: str = "test_loss",
    n_resamples: int = 200,
    confidence_level: float = 0.95,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> SweepLaws:
    """Fit the study's scaling laws to a sweep's results, with bootstrap intervals.

    For each precision (``p`` = ``1bit``, ``full``):

    - ``loss_vs_N[p]``: ``L = E + A / N^alpha`` over widths, at the largest training
      set (every seed a point);
    - ``loss_vs_bits[p]``: the same in model bits;
    - ``loss_vs_D[p]``: ``L = E + A / D^alpha`` over training-set sizes, at the largest
      width;
    - ``loss_vs_C[p]``: ``L = (C_c / C)^alpha`` on the compute frontier (the points
      with a lower loss than every cheaper point);
    - ``joint[p]``: Chinchilla's ``L = E + A / N^alpha + B / D^beta`` on all points;

    and ``precision``: the precision law ``E + A / N_eff^alpha + B / D^beta``,
    ``N_eff = N (1 - exp(-P / gamma))``, on the points of both precisions.

    Parameters
    ----------
    table : DataFrame
        A sweep's results (or a CSV with the columns :func:`law_table` reads).
    task : str, default=None
        The task whose points are fitted; None takes the first task of the table.
    init : str or None, default="symmetric"
        The initialisation whose points are fitted; None uses all.
    loss : str, default="test_loss"
        The loss column.
    n_resamples : int, default=200
        Bootstrap resamples per law; 0 or 1 skips the intervals.
    confidence_level : float, default=0.95
    random_state : int, default=0
        Seeds the bootstrap.
    n_jobs : int, default=None
        Processes to fit the laws in (one law per task); None means 1.

    Returns
    -------
    SweepLaws
        Laws that could not be fitted (too few distinct points) are kept with
        ``law=None`` and a note saying why.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from pybinscale.scaling.sweep_laws import fit_sweep_laws
    >>> N = np.repeat([1e3, 4e3, 1.6e4, 6.4e4], 2)
    >>> table = pd.DataFrame({"N": N, "n_train": 256, "compute": N * 256.0,
    ...                       "precision": "1bit", "test_loss": 0.1 + 20 / N**0.5})
    >>> laws = fit_sweep_laws(table, n_resamples=0)
    >>> round(laws["loss_vs_N[1bit]"].law.params_["alpha"], 3)
    0.5
    """
    from sklearn.utils.parallel import Parallel, delayed

    frame = law_table(table, loss)
    if task is None and "task" in frame and len(frame):
        task = str(frame["task"].iloc[0])
    frame = _select(frame, task=task, init=init)
    specs: list[_LawSpec] = []
    precisions = [
        p for p in PRECISION_BITS if "precision" in frame and (frame["precision"] == p).any()
    ]
    for p in precisions:
        points = _select(frame, precision=p)
        if "N" in points and "D" in points:
            largest_d = _select(points, D=points["D"].max())
            specs.append(_LawSpec(
                f"loss_vs_N[{p}]", "test loss against parameters N at the largest training "
                "set", "power_offset", "N", p, largest_d, ["N"], ["N"]))
            if "bits" in points:
                specs.append(_LawSpec(
                    f"loss_vs_bits[{p}]", "test loss against model bits at the largest "
                    "training set", "power_offset", "bits", p, largest_d, ["N"], ["bits"]))
            specs.append(_LawSpec(
                f"loss_vs_D[{p}]", "test loss against training-set size D at the largest "
                "width", "power_offset", "D", p, _select(points, N=points["N"].max()),
                ["D"], ["D"]))
        if "C" in points:
            usable = points.replace([np.inf, -np.inf], np.nan).dropna(subset=["C", "loss"])
            frontier = usable.iloc[compute_frontier(usable["C"], usable["loss"])]
            specs.append(_LawSpec(
                f"loss_vs_C[{p}]", "test loss against training compute C on the compute "
                "frontier", "power", "C", p, frontier, ["C"], ["C"]))
        if "N" in points and "D" in points:
            specs.append(_LawSpec(
                f"joint[{p}]", "Chinchilla law in N and D on all points", "chinchilla", "N",
                p, points, ["N", "D"], ["N", "D"]))
    if len(precisions) > 1 and all(c in frame for c in ("N", "D", "P")):
        specs.append(_LawSpec(
            "precision", "precision law in N, D and bits per weight P on both precisions",
            "precision", "N", None, frame, ["N", "D", "P"], ["N", "D", "P"]))
    # The slowest fits (joint, precision) first, so that the workers finish together.
    slow_first = sorted(range(len(specs)), key=lambda i: specs[i].form not in ("chinchilla", "precision"))
    fitted = Parallel(n_jobs=n_jobs)(
        delayed(_fit_one)(specs[i], n_resamples, confidence_level, random_state)
        for i in slow_first
    )
    by_name = {law.name: law for law in fitted}
    return SweepLaws(
        laws={spec.name: by_name[spec.name] for spec in specs}, task=task, init=init, loss=loss
    )
