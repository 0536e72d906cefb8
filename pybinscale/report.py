"""The report of a sweep: figures as PNG and one self-contained HTML page.

Every figure comes with a one-line *reading* computed from the results, which says what
the figure shows in numbers (a fitted exponent, the values at the smallest and largest
width, ...). The figures:

- ``kernel_error``: ``||H(0) - H*|| / ||H*||`` against width, with the ``m^-1/2`` line;
- ``kernel_drift``: ``||H(T) - H(0)|| / ||H(0)||`` against width (lazy training);
- ``loss_curves``: 1-bit training loss against step for several widths, and the
  infinite-width NTK's prediction;
- ``generalization_difference``: ``|f_1bit - f_full|`` on held-out inputs against width;
- ``loss_vs_N``, ``loss_vs_bits``: test loss against parameters and against model bits,
  both precisions, with the fitted laws and their bootstrap bands;
- ``loss_vs_D``: test loss against training-set size;
- ``loss_vs_compute``: test loss against counted training operations, with the law
  fitted to the compute frontier;
- ``initialisation`` (when the sweep ran both): symmetric against plain initialisation;
- ``task_<name>``: the other tasks of the sweep (e.g. the real data set);
- ``overview``: six of them on one page, for a README.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .scaling.sweep_laws import PRECISION_BITS, SweepLaw, SweepLaws, format_params, law_table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Figure", "Report", "build_report", "figure_readings"]

_COLOURS = {"1bit": "#c0392b", "full": "#2e6da4"}
_LABELS = {"1bit": "1-bit", "full": "full precision"}
_DPI = 110


@dataclass
class Figure:
    """One figure of the report.

    Attributes
    ----------
    name : str
        File stem, e.g. ``"kernel_error"``.
    title : str
    reading : str
        One line computed from the results: what the figure shows.
    png : bytes
        The image.
    path : Path or None
        Where the PNG was written.
    """

    name: str
    title: str
    reading: str
    png: bytes
    path: Path | None = None


@dataclass
class Report:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    html_path : Path
    figures : list of Figure
        The figures of the page, in order (the overview is separate).
    overview : Figure or None
    laws_path : Path or None
        The fitted laws as JSON.
    skipped : list of str
        Figures that were left out, and why (e.g. a CSV without loss curves).
    """

    html_path: Path
    figures: list[Figure] = field(default_factory=list)
    overview: Figure | None = None
    laws_path: Path | None = None
    skipped: list[str] = field(default_factory=list)


# ------------------------------------------------------------------- helpers


def _g(value: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, plain when that reads better."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if -3 <= magnitude < 6:
        decimals = max(0, digits - 1 - magnitude)
        return f"{value:.{decimals}f}"
    return f"{value:.{digits - 1}e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def _count(value: float) -> str:
    """An integer with thousands separators, or 3 significant digits if huge."""
    if not np.isfinite(value):
        return "n/a"
    return f"{int(round(value)):,}" if abs(value) < 1e7 else _g(value)


def _slope(x: Any, y: Any) -> float:
    """Least-squares slope of log y against log x (NaN with fewer than 2 points)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys) & (xs > 0) & (ys > 0)
    if keep.sum() < 2 or np.unique(xs[keep]).size < 2:
        return math.nan
    return float(np.polyfit(np.log(xs[keep]), np.log(ys[keep]), 1)[0])


def _exponent(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:+.2f}".replace("+", "")


def _by(frame: pd.DataFrame, key: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``column`` over seeds at each value of ``key`` (finite values only)."""
    usable = frame[np.isfinite(frame[column].astype(float))]
    if usable.empty:
        return np.array([]), np.array([])
    grouped = usable.groupby(key)[column].mean()
    return grouped.index.to_numpy(dtype=float), grouped.to_numpy(dtype=float)


def _select(frame: pd.DataFrame, **equal: Any) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in equal.items():
        mask &= (frame[column] == value).to_numpy()
    return frame[mask]


def _log_axes(ax: Any, xlabel: str, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def _law_curve(law: SweepLaw, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The law on ``grid`` and, when bootstrapped, its band (2, len(grid))."""
    assert law.law is not None
    centre = law.law.predict(grid[:, None])
    samples = getattr(law.law, "bootstrap_params_", None)
    if samples is None:
        return centre, None
    x = grid[None, :]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if law.form == "power_offset":
            curves = samples["E"][:, None] + samples["A"][:, None] / x ** samples["alpha"][:, None]
        elif law.form == "power":
            curves = (samples["X_c"][:, None] / x) ** samples["alpha"][:, None]
        else:
            return centre, None
    curves = curves[np.all(np.isfinite(curves), axis=1)]
    if curves.shape[0] < 2:
        return centre, None
    tail = 50.0 * (1.0 - float(getattr(law.law, "confidence_level_")))  # noqa: B009
    return centre, np.percentile(curves, [tail, 100.0 - tail], axis=0)


def _draw_law(ax: Any, law: SweepLaw | None, xs: np.ndarray, colour: str) -> None:
    if law is None or law.law is None or xs.size == 0:
        return
    grid = np.geomspace(xs.min(), xs.max(), 100)
    centre, band = _law_curve(law, grid)
    ax.plot(grid, centre, color=colour, linewidth=1.5)
    if band is not None:
        ax.fill_between(grid, band[0], band[1], color=colour, alpha=0.15, linewidth=0)


def _alpha_text(law: SweepLaw | None, name: str = "alpha") -> str:
    if law is None or law.law is None:
        return "n/a (not fitted)"
    text = _g(law.law.params_[name], 2)
    interval = law.interval(name)
    if interval is not None:
        text += f" [{_g(interval[0], 2)}, {_g(interval[1], 2)}]"
    return text


# -------------------------------------------------------------- the figures


@dataclass
class _Context:
    """The data a figure draws from: the main task, symmetric initialisation."""

    frame: pd.DataFrame  # main task, main init, finite rows
    everything: pd.DataFrame  # every row of the results
    laws: SweepLaws | None
    task: str
    init: str

    def law(self, name: str) -> SweepLaw | None:
        return None if self.laws is None else self.laws.get(name)

    @property
    def precisions(self) -> list[str]:
        present = set(self.frame["precision"]) if "precision" in self.frame else set()
        return [p for p in PRECISION_BITS if p in present]

    def largest(self, column: str) -> Any:
        return self.frame[column].max()


def _draw_kernel_error(ax: Any, c: _Context) -> str | None:
    frame = _select(c.frame, n_train=c.largest("n_train"))
    summary = {}
    for precision in c.precisions:
        widths, error = _by(_select(frame, precision=precision), "width", "kernel_error_init")
        if widths.size == 0:
            continue
        summary[precision] = (widths, error, _slope(widths, error))
        ax.plot(widths, error, "o-", color=_COLOURS[precision],
                label=f"{_LABELS[precision]} (slope {_exponent(summary[precision][2])})")
    if not summary:
        return None
    widths, error, _ = summary.get("1bit", next(iter(summary.values())))
    ax.plot(widths, error[0] * (widths / widths[0]) ** -0.5, "k--", linewidth=1, label="m^-1/2")
    _log_axes(ax, "width m", "||H(0) - H*|| / ||H*||")
    ax.legend(fontsize="small")
    precision = "1bit" if "1bit" in summary else next(iter(summary))
    widths, error, slope = summary[precision]
    reading = (
        f"{_LABELS[precision].capitalize()} kernel error at initialisation falls as "
        f"m^{_exponent(slope)} (theory m^-0.5), from {_g(error[0], 2)} at m={_count(widths[0])} "
        f"to {_g(error[-1], 2)} at m={_count(widths[-1])}"
    )
    if "full" in summary and precision != "full":
        reading += f"; full precision falls as m^{_exponent(summary['full'][2])}"
    return reading + "."


def _draw_kernel_drift(ax: Any, c: _Context) -> str | None:
    frame = _select(c.frame, n_train=c.largest("n_train"))
    summary = {}
    for precision in c.precisions:
        part = _select(frame, precision=precision)
        widths, drift = _by(part, "width", "kernel_drift")
        if widths.size == 0:
            continue
        _, flips = _by(part, "width", "sign_flip_fraction")
        summary[precision] = (widths, drift, flips)
        ax.plot(widths, drift, "o-", color=_COLOURS[precision], label=_LABELS[precision])
    if not summary:
        return None
    _log_axes(ax, "width m", "||H(T) - H(0)|| / ||H(0)||")
    ax.legend(fontsize="small")
    precision = "1bit" if "1bit" in summary else next(iter(summary))
    widths, drift, flips = summary[precision]
    steps = int(c.frame["steps"].max())
    reading = (
        f"Over {steps} steps the {_LABELS[precision]} kernel moves by {_g(drift[0], 2)} at "
        f"m={_count(widths[0])} and by {_g(drift[-1], 2)} at m={_count(widths[-1])} "
        f"(m^{_exponent(_slope(widths, drift))}): wider networks train lazily"
    )
    if flips.size == widths.size and np.all(np.isfinite(flips)):
        reading += (
            f"; {_g(100 * flips[0], 2)}% of hidden signs flip at m={_count(widths[0])}, "
            f"{_g(100 * flips[-1], 2)}% at m={_count(widths[-1])}"
        )
    return reading + "."


def _curve_rows(c: _Context) -> pd.DataFrame:
    frame = _select(c.frame, n_train=c.largest("n_train"))
    return _select(frame, seed=frame["seed"].min()) if not frame.empty else frame


def _draw_loss_curves(ax: Any, c: _Context) -> str | None:
    import matplotlib.pyplot as plt

    if "loss_curve" not in c.frame:
        return None
    rows = _curve_rows(c)
    one_bit = _select(rows, precision="1bit") if "1bit" in c.precisions else rows
    one_bit = one_bit.sort_values("width")
    if one_bit.empty:
        return None
    widths = one_bit["width"].to_numpy()
    if widths.size > 4:  # four widths spread over the range read best
        keep = np.unique(np.round(np.linspace(0, widths.size - 1, 4)).astype(int))
        one_bit = one_bit.iloc[keep]
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(one_bit)))
    label = _LABELS.get(str(one_bit["precision"].iloc[0]), "")
    for (_, row), colour in zip(one_bit.iterrows(), colours):
        steps = np.asarray(row["curve_step"], dtype=float)
        ax.plot(np.maximum(steps, 0.5), row["loss_curve"], color=colour,
                label=f"{label} m={_count(row['width'])}")
    last = one_bit.iloc[-1]
    steps = np.asarray(last["curve_step"], dtype=float)
    ax.plot(np.maximum(steps, 0.5), last["ntk_loss_curve"], "k--", linewidth=1.5,
            label="NTK prediction (m = inf)")
    full = _select(_select(rows, precision="full"), width=last["width"])
    if not full.empty:
        ax.plot(np.maximum(np.asarray(full.iloc[0]["curve_step"], dtype=float), 0.5),
                full.iloc[0]["loss_curve"], ":", color=_COLOURS["full"],
                label=f"full m={_count(last['width'])}")
    _log_axes(ax, "step", "training loss")
    ax.legend(fontsize="small")
    first = one_bit.iloc[0]
    reading = (
        f"After {int(last['steps'])} steps (n={int(last['n_train'])}) the {label} training "
        f"loss is {_g(first['train_loss'], 2)} at m={_count(first['width'])} and "
        f"{_g(last['train_loss'], 2)} at m={_count(last['width'])}, against "
        f"{_g(last['ntk_train_loss'], 2)} predicted by the infinite-width NTK"
    )
    if not full.empty:
        reading += f" ({_g(full.iloc[0]['train_loss'], 2)} for the full-precision twin)"
    return reading + "."


def _draw_generalization(ax: Any, c: _Context) -> str | None:
    frame = _select(_select(c.frame, n_train=c.largest("n_train")), precision="1bit")
    widths, mean = _by(frame, "width", "generalization_difference_mean")
    if widths.size == 0:
        return None
    _, largest = _by(frame, "width", "generalization_difference_max")
    ax.plot(widths, mean, "o-", color=_COLOURS["1bit"], label="mean |f_1bit - f_full|")
    ax.plot(widths, largest, "s--", color=_COLOURS["1bit"], alpha=0.6,
            label="max |f_1bit - f_full|")
    ntk_widths, ntk = _by(frame, "width", "ntk_difference_mean")
    if ntk_widths.size:
        ax.plot(ntk_widths, ntk, "^:", color="0.3", label="mean |f_1bit - f_NTK|")
    _log_axes(ax, "width m", "output difference on test inputs")
    ax.legend(fontsize="small")
    return (
        f"On held-out inputs the 1-bit outputs differ from their full-precision twins by "
        f"{_g(mean[0], 2)} on average at m={_count(widths[0])} and {_g(mean[-1], 2)} at "
        f"m={_count(widths[-1])} (m^{_exponent(_slope(widths, mean))}); the largest "
        f"difference goes from {_g(largest[0], 2)} to {_g(largest[-1], 2)}."
    )


def _draw_loss_against(
    ax: Any, c: _Context, column: str, law_prefix: str, xlabel: str, fixed: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    table = law_table(c.frame)
    if fixed == "D":
        table = _select(table, D=table["D"].max())
    elif fixed == "N":
        table = _select(table, N=table["N"].max())
    found = {}
    for precision in c.precisions:
        part = _select(table, precision=precision)
        xs, ys = part[column].to_numpy(dtype=float), part["loss"].to_numpy(dtype=float)
        keep = np.isfinite(xs) & np.isfinite(ys) & (ys > 0)
        if not keep.any():
            continue
        law = c.law(f"{law_prefix}[{precision}]")
        fitted = law is not None and law.law is not None
        ax.scatter(xs[keep], ys[keep], s=16, color=_COLOURS[precision], alpha=0.7,
                   label=f"{_LABELS[precision]}" + (f", alpha={_g(law.law.params_['alpha'], 2)}"
                                                    if fitted and law is not None and law.law is not None else ""))
        _draw_law(ax, law, xs[keep], _COLOURS[precision])
        found[precision] = _by(part[keep], column, "loss")
    if found:
        _log_axes(ax, xlabel, "test loss")
        if column == "D":  # a few sizes within a decade or two: label them plainly
            from matplotlib.ticker import NullFormatter

            sizes = np.unique(np.concatenate([d for d, _ in found.values()]))
            ax.set_xticks(sizes, [_count(v) for v in sizes])
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize="small")
    return found


def _draw_loss_vs_n(ax: Any, c: _Context) -> str | None:
    found = _draw_loss_against(ax, c, "N", "loss_vs_N", "trained parameters N", "D")
    if not found:
        return None
    parts = []
    for precision in found:
        law = c.law(f"loss_vs_N[{precision}]")
        text = f"alpha = {_alpha_text(law)} ({_LABELS[precision]}"
        if law is not None and law.law is not None:
            text += f", floor E = {_g(law.law.params_['E'], 2)}"
        parts.append(text + ")")
    reading = "Test loss falls as E + A / N^alpha with " + " and ".join(parts)
    if "1bit" in found and "full" in found:
        n1, l1 = found["1bit"]
        n2, l2 = found["full"]
        reading += (
            f"; at the largest N = {_count(n1[-1])} the 1-bit loss is "
            f"{_g(l1[-1] / l2[-1])} times the full-precision one"
        )
    banded = any(
        (law := c.law(f"loss_vs_N[{p}]")) is not None and law.interval("alpha") is not None
        for p in found
    )
    bands = ", 95% bootstrap bands" if banded else ""
    return reading + f" (n_train = {int(c.largest('n_train'))}{bands})."


def _draw_loss_vs_bits(ax: Any, c: _Context) -> str | None:
    found = _draw_loss_against(ax, c, "bits", "loss_vs_bits", "model size (bits)", "D")
    if not found:
        return None
    if "1bit" in found and "full" in found:
        bits1, loss1 = found["1bit"]
        bits2, loss2 = found["full"]
        budget = bits1[-1]
        affordable = bits2 <= budget
        if affordable.any():
            best = int(np.argmin(np.where(affordable, loss2, np.inf)))
            change = 100.0 * (loss1[-1] / loss2[best] - 1.0)
            verdict = "lower" if change < 0 else "higher"
            return (
                f"Within {_count(budget)} bits (the largest 1-bit net) the 1-bit net reaches "
                f"a test loss of {_g(loss1[-1])}, {_g(abs(change), 2)}% {verdict} than the "
                f"best full-precision net of at most that size ({_g(loss2[best])} with "
                f"{_count(bits2[best])} bits): per bit of storage, 1-bit weights "
                + ("win." if verdict == "lower" else "lose.")
            )
        return (
            f"The largest 1-bit net ({_count(budget)} bits) reaches a test loss of "
            f"{_g(loss1[-1], 2)}; the smallest full-precision net already needs "
            f"{_count(bits2[0])} bits (loss {_g(loss2[0], 2)})."
        )
    precision = next(iter(found))
    bits, loss = found[precision]
    return (
        f"{_LABELS[precision].capitalize()} test loss goes from {_g(loss[0], 2)} at "
        f"{_count(bits[0])} bits to {_g(loss[-1], 2)} at {_count(bits[-1])} bits."
    )


def _draw_loss_vs_d(ax: Any, c: _Context) -> str | None:
    found = _draw_loss_against(ax, c, "D", "loss_vs_D", "training examples D", "N")
    if not found:
        return None
    parts = []
    for precision, (d, loss) in found.items():
        law = c.law(f"loss_vs_D[{precision}]")
        parts.append(
            f"{_LABELS[precision]} from {_g(loss[0], 2)} at D={_count(d[0])} to "
            f"{_g(loss[-1], 2)} at D={_count(d[-1])} (alpha = {_alpha_text(law)})"
        )
    return (
        f"At the largest width m={_count(c.largest('width'))}, more data lowers the test "
        "loss: " + "; ".join(parts) + "."
    )


def _draw_loss_vs_compute(ax: Any, c: _Context) -> str | None:
    from .scaling.sweep_laws import compute_frontier

    table = law_table(c.frame)
    parts = []
    for precision in c.precisions:
        part = _select(table, precision=precision)
        part = part[np.isfinite(part["C"]) & np.isfinite(part["loss"]) & (part["loss"] > 0)]
        if part.empty:
            continue
        law = c.law(f"loss_vs_C[{precision}]")
        ax.scatter(part["C"], part["loss"], s=12, color=_COLOURS[precision], alpha=0.35)
        frontier = part.iloc[compute_frontier(part["C"], part["loss"])]
        ax.plot(frontier["C"], frontier["loss"], "o", color=_COLOURS[precision],
                markerfacecolor="none", label=f"{_LABELS[precision]} frontier")
        _draw_law(ax, law, frontier["C"].to_numpy(dtype=float), _COLOURS[precision])
        best = part.loc[part["loss"].idxmin()]
        parts.append(
            f"{_LABELS[precision]} C^-{_alpha_text(law)}, best loss {_g(best['loss'], 2)} "
            f"for {_g(best['C'], 2)} operations"
        )
    if not parts:
        return None
    _log_axes(ax, "training compute C (operations, counted)", "test loss")
    ax.legend(fontsize="small")
    return "On the compute frontier the test loss falls as " + "; ".join(parts) + "."


def _draw_initialisation(ax: Any, c: _Context) -> str | None:
    everything = _select(c.everything, task=c.task)
    if "init" not in everything or set(everything["init"]) != {"symmetric", "plain"}:
        return None
    everything = _select(everything, n_train=everything["n_train"].max())
    summary = {}
    for init, style in (("symmetric", "o-"), ("plain", "s--")):
        part = _select(_select(everything, init=init), precision="1bit")
        finite = part[np.isfinite(part["train_loss"].astype(float))]
        widths, loss = _by(finite, "width", "train_loss")
        if widths.size:
            ax.plot(widths, loss, style, color=_COLOURS["1bit"] if init == "symmetric" else "0.35",
                    label=f"1-bit, {init} init")
        failed = sum(
            1
            for _, row in part.iterrows()
            if bool(row.get("diverged", False))
            or (len(row["loss_curve"]) > 1 and row["loss_curve"][-1] > row["loss_curve"][0])
        )
        summary[init] = (widths, loss, failed, len(part))
    if not all(summary[k][0].size for k in summary):
        return None
    _log_axes(ax, "width m", "1-bit training loss after T steps")
    ax.legend(fontsize="small")
    (w_s, l_s, f_s, n_s), (_, l_p, f_p, n_p) = summary["symmetric"], summary["plain"]
    return (
        f"At m={_count(w_s[-1])} the 1-bit training loss is {_g(l_s[-1], 2)} with the symmetric "
        f"initialisation and {_g(l_p[-1], 2)} with the plain one; {f_p} of {n_p} plain 1-bit fits "
        f"diverged or ended above their starting loss ({f_s} of {n_s} symmetric ones): "
        "the random initial function makes the 1-bit net's steps unstable."
    )


def _draw_task(ax: Any, c: _Context, task: str) -> str | None:
    frame = _select(c.everything, task=task)
    if "init" in frame:
        frame = _select(frame, init=frame["init"].iloc[0])
    frame = _select(frame, n_train=frame["n_train"].max())
    lines = []
    for precision in [p for p in PRECISION_BITS if p in set(frame["precision"])]:
        widths, loss = _by(_select(frame, precision=precision), "width", "test_loss")
        if widths.size:
            ax.plot(widths, loss, "o-", color=_COLOURS[precision], label=f"{_LABELS[precision]} test loss")
            lines.append(f"{_LABELS[precision]} {_g(loss[0], 2)} -> {_g(loss[-1], 2)}")
    widths, ntk = _by(frame, "width", "ntk_test_loss")
    if not lines:
        return None
    if widths.size:
        ax.axhline(float(np.mean(ntk)), color="k", linestyle="--", linewidth=1,
                   label="NTK (m = inf) test loss")
    gd_w, gd = _by(_select(frame, precision="1bit"), "width", "generalization_difference_mean")
    _log_axes(ax, "width m", "test loss")
    ax.legend(fontsize="small")
    reading = (
        f"On '{task}' (n_train={int(frame['n_train'].max())}), test loss from "
        f"m={_count(frame['width'].min())} to m={_count(frame['width'].max())}: "
        + ", ".join(lines)
    )
    if widths.size:
        reading += f"; the infinite-width NTK reaches {_g(float(np.mean(ntk)), 2)}"
    if gd_w.size:
        reading += f"; mean 1-bit vs full difference {_g(gd[0], 2)} -> {_g(gd[-1], 2)}"
    return reading + "."


_FIGURES: list[tuple[str, str, Callable[[Any, _Context], str | None]]] = [
    ("kernel_error", "Kernel at initialisation against its infinite-width limit", _draw_kernel_error),
    ("loss_curves", "Training loss against step, and the NTK prediction", _draw_loss_curves),
    ("generalization_difference", "1-bit against full-precision outputs on held-out inputs",
     _draw_generalization),
    ("kernel_drift", "How far the kernel moves during training", _draw_kernel_drift),
    ("loss_vs_N", "Test loss against parameters", _draw_loss_vs_n),
    ("loss_vs_bits", "Test loss against model size in bits", _draw_loss_vs_bits),
    ("loss_vs_D", "Test loss against training-set size", _draw_loss_vs_d),
    ("loss_vs_compute", "Test loss against training compute", _draw_loss_vs_compute),
    ("initialisation", "Symmetric against plain initialisation (1-bit)", _draw_initialisation),
]
_OVERVIEW = ("kernel_error", "loss_curves", "generalization_difference", "loss_vs_N",
             "loss_vs_D", "loss_vs_compute")


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _contexts(table: pd.DataFrame, laws: Mapping[str, SweepLaws] | None) -> tuple[_Context, list[str]]:
    frame = table.copy()
    for column in ("init", "diverged"):
        if column not in frame:
            frame[column] = "symmetric" if column == "init" else False
    if "task" not in frame:
        frame["task"] = "custom"
    tasks = list(dict.fromkeys(frame["task"]))
    task = tasks[0]
    inits = list(dict.fromkeys(_select(frame, task=task)["init"]))
    init = "symmetric" if "symmetric" in inits else inits[0]
    main = _select(_select(frame, task=task), init=init)
    main = main[~main["diverged"].fillna(False).astype(bool)]
    return _Context(main, frame, (laws or {}).get(task), task, init), tasks[1:]


def figure_readings(
    table: pd.DataFrame, laws: Mapping[str, SweepLaws] | None = None
) -> dict[str, str]:
    """The one-line reading of every figure the table supports, by figure name.

    Parameters
    ----------
    table : DataFrame
        A sweep's results.
    laws : mapping of task name to SweepLaws, optional

    Returns
    -------
    dict of str to str

    Examples
    --------
    >>> import pandas as pd
    >>> from pybinscale.report import figure_readings
    >>> table = pd.DataFrame({"task": "t", "init": "symmetric", "precision": "1bit",
    ...     "width": [64, 256, 1024], "n_train": 100, "seed": 0, "steps": 100,
    ...     "kernel_error_init": [0.2, 0.1, 0.05]})
    >>> figure_readings(table)["kernel_error"]
    '1-bit kernel error at initialisation falls as m^-0.50 (theory m^-0.5), from 0.20 at m=64 to 0.050 at m=1,024.'
    """
    figures, _ = _draw_all(table, laws, keep_png=False)
    return {f.name: f.reading for f in figures}


def _draw_all(
    table: pd.DataFrame, laws: Mapping[str, SweepLaws] | None, keep_png: bool = True
) -> tuple[list[Figure], list[str]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    context, other_tasks = _contexts(table, laws)
    figures: list[Figure] = []
    skipped: list[str] = []
    drawers = list(_FIGURES) + [
        (f"task_{task}", f"Real data: '{task}'", lambda ax, c, t=task: _draw_task(ax, c, t))
        for task in other_tasks
    ]
    for name, title, draw in drawers:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        try:
            reading = draw(ax, context)
        except (KeyError, ValueError, TypeError, IndexError) as error:
            reading = None
            skipped.append(f"{name}: {type(error).__name__}: {error}")
        if reading is None:
            if not skipped or not skipped[-1].startswith(name):
                skipped.append(f"{name}: the results lack the columns or points it needs")
            plt.close(fig)
            continue
        figures.append(Figure(name, title, reading, _png(fig) if keep_png else b""))
        plt.close(fig)
    return figures, skipped


def _overview(table: pd.DataFrame, laws: Mapping[str, SweepLaws] | None, names: Sequence[str]) -> Figure | None:
    import matplotlib.pyplot as plt

    context, _ = _contexts(table, laws)
    chosen = [entry for entry in _FIGURES if entry[0] in _OVERVIEW and entry[0] in names]
    if not chosen:
        return None
    columns = 3
    rows = math.ceil(len(chosen) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(15, 4.3 * rows), squeeze=False)
    for ax, (_, title, draw) in zip(axes.ravel(), chosen):
        draw(ax, context)
        ax.set_title(title, fontsize="medium")
    for ax in axes.ravel()[len(chosen):]:
        ax.set_visible(False)
    fig.suptitle(
        f"pybinscale: 1-bit networks against their full-precision twins and the NTK "
        f"(task '{context.task}', {context.init} initialisation)",
        fontsize="large",
    )
    fig.tight_layout()
    figure = Figure("overview", "Overview", "", _png(fig))
    plt.close(fig)
    return figure


# ------------------------------------------------------------------- the page


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 2em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.meta { color: #666; font-size: 0.9em; }
figure { margin: 0 0 28px; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.95em; background: #f3f6fa; border-left: 3px solid #2e6da4;
             padding: 6px 10px; margin-top: 4px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; }
td.l, th.l { text-align: left; }
pre { background: #f6f6f6; padding: 10px; font-size: 0.8em; overflow-x: auto; }
ul.readings li { margin-bottom: 4px; }
"""


# Marks the page with how many figures the browser decoded, e.g.
# <body data-figures-rendered="9/9">, so that a headless browser can check the page.
_CHECK_SCRIPT = (
    "<script>window.addEventListener('load',function(){var im=document.images,k=0;"
    "for(var j=0;j<im.length;j++){if(im[j].complete&&im[j].naturalWidth>0){k++;}}"
    "document.body.setAttribute('data-figures-rendered',k+'/'+im.length);});</script>"
)


def _table_html(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    head = "".join(
        f'<th class="l">{html.escape(h)}</th>' if i < left else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="l">{html.escape(v)}</td>' if i < left else f"<td>{html.escape(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Per task, init, precision and width, at the largest training set: means over seeds.

    Returns
    -------
    headers : list of str
    rows : list of list of str

    Examples
    --------
    >>> import pandas as pd
    >>> from pybinscale.report import summary_rows
    >>> t = pd.DataFrame({"task": "t", "init": "symmetric", "precision": "1bit", "width": 64,
    ...                   "n_train": 10, "seed": [0, 1], "train_loss": [0.1, 0.3]})
    >>> summary_rows(t)[1][0][:5]
    ['t', 'symmetric', '1bit', '64', '10']
    """
    columns = [
        ("train_loss", "train loss"),
        ("test_loss", "test loss"),
        ("ntk_test_loss", "NTK test loss"),
        ("generalization_difference_mean", "gen. diff. mean"),
        ("generalization_difference_max", "gen. diff. max"),
        ("kernel_error_init", "kernel error at init"),
        ("kernel_drift", "kernel drift"),
        ("compute", "compute"),
    ]
    present = [(c, label) for c, label in columns if c in table]
    keys = [k for k in ("task", "init", "precision", "width") if k in table]
    frame = table.copy()
    if "n_train" in frame:
        largest = frame.groupby(keys[:-1] or ["width"])["n_train"].transform("max") if keys[:-1] else frame["n_train"].max()
        frame = frame[frame["n_train"] == largest]
    numeric = frame[[c for c, _ in present]].apply(lambda s: s.astype(float))
    numeric[keys] = frame[keys]
    if "n_train" in frame:
        numeric["n_train"] = frame["n_train"]
    group_keys = keys + (["n_train"] if "n_train" in frame else [])
    means = numeric.groupby(group_keys, sort=False).mean()
    counts = numeric.groupby(group_keys, sort=False).size()
    headers = group_keys + ["seeds"] + [label for _, label in present]
    rows = []
    for index, values in means.iterrows():
        index = index if isinstance(index, tuple) else (index,)
        rows.append(
            [str(v) for v in index]
            + [str(int(counts.loc[index]))]
            + [_count(values[c]) if c == "compute" else _g(values[c], 3) for c, _ in present]
        )
    return headers, rows


def _laws_html(laws: Mapping[str, SweepLaws]) -> str:
    parts = []
    for task, fitted in laws.items():
        rows = []
        for name, law in fitted.laws.items():
            from .scaling.forms import get_form

            rows.append([
                name,
                get_form(law.form).formula if law.form else "",
                str(len(law.points)),
                format_params(law) if law.fitted else f"not fitted: {law.note}",
            ])
        parts.append(
            f"<h3>Task '{html.escape(task)}' ({html.escape(str(fitted.init))} initialisation, "
            f"loss = {html.escape(fitted.loss)})</h3>"
            + _table_html(["law", "formula", "points", "parameters [95% bootstrap interval]"], rows, left=4)
        )
    return "".join(parts)


def build_report(
    table: pd.DataFrame,
    laws: Mapping[str, SweepLaws] | None,
    out_dir: str | Path,
    *,
    title: str = "pybinscale report",
    configuration: Mapping[str, Any] | None = None,
    fingerprint: str | None = None,
    notes: Sequence[str] = (),
    figures_dir: str = "figures",
) -> Report:
    """Draw the figures, write them as PNG, the laws as JSON and ``report.html``.

    Parameters
    ----------
    table : DataFrame
        A sweep's results (see :mod:`pybinscale.scaling.sweep` for the columns); a
        table missing some columns gives the figures it can.
    laws : mapping of task name to SweepLaws, or None
        The fitted laws, drawn on the loss figures and listed in a table.
    out_dir : str or Path
        Where to write ``report.html``, ``laws.json`` and ``figures/*.png``.
    title : str, default="pybinscale report"
    configuration : mapping, optional
        The sweep's configuration, shown at the end of the page.
    fingerprint : str, optional
        The results file's fingerprint, shown in the header.
    notes : sequence of str
        Extra lines for the header (e.g. how long the run took).
    figures_dir : str, default="figures"
        Sub-directory of ``out_dir`` for the PNG files.

    Returns
    -------
    Report

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from pybinscale.report import build_report
    >>> table = pd.DataFrame({"task": "t", "init": "symmetric", "precision": "1bit",
    ...     "width": [64, 256, 1024], "n_train": 100, "seed": 0, "steps": 100,
    ...     "kernel_error_init": [0.2, 0.1, 0.05]})
    >>> report = build_report(table, None, tempfile.mkdtemp())
    >>> [figure.name for figure in report.figures], report.html_path.name
    (['kernel_error'], 'report.html')
    """
    import pybinscale

    out = Path(out_dir)
    figure_path = out / figures_dir
    figure_path.mkdir(parents=True, exist_ok=True)
    figures, skipped = _draw_all(table, laws)
    overview = _overview(table, laws, [f.name for f in figures])
    for figure in figures + ([overview] if overview is not None else []):
        figure.path = figure_path / f"{figure.name}.png"
        figure.path.write_bytes(figure.png)
    laws_path = None
    if laws:
        laws_path = out / "laws.json"
        laws_path.write_text(
            json.dumps({task: fitted.to_dict() for task, fitted in laws.items()}, indent=2,
                       default=float) + "\n"
        )
    headers, rows = summary_rows(table)
    tasks = list(dict.fromkeys(table["task"])) if "task" in table else ["custom"]
    meta = [
        f"pybinscale {pybinscale.__version__}",
        time.strftime("%Y-%m-%d %H:%M"),
        f"{len(table)} fitted models",
        "tasks: " + ", ".join(tasks),
    ]
    if fingerprint:
        meta.append(f"configuration fingerprint {fingerprint}")
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(" · ".join(meta))}</p>',
    ]
    body += [f'<p class="meta">{html.escape(note)}</p>' for note in notes]
    body.append("<h2>What the run shows</h2><ul class=\"readings\">")
    body += [f"<li><b>{html.escape(f.title)}.</b> {html.escape(f.reading)}</li>" for f in figures]
    body.append("</ul>")
    body.append("<h2>Figures</h2>")
    for figure in figures:
        encoded = base64.b64encode(figure.png).decode("ascii")
        body.append(
            f'<figure id="{html.escape(figure.name)}"><h3>{html.escape(figure.title)}</h3>'
            f'<img alt="{html.escape(figure.title)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{html.escape(figure.reading)}</figcaption></figure>"
        )
    if laws:
        body.append("<h2>Fitted scaling laws</h2>")
        body.append(_laws_html(laws))
    body.append("<h2>Results (means over seeds, largest training set)</h2>")
    body.append(_table_html(headers, rows, left=4))
    if skipped:
        body.append("<h2>Figures left out</h2><ul>")
        body += [f"<li>{html.escape(s)}</li>" for s in skipped]
        body.append("</ul>")
    if configuration:
        body.append("<h2>Configuration</h2>")
        body.append(f"<pre>{html.escape(json.dumps(configuration, indent=2, default=str))}</pre>")
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main>{_CHECK_SCRIPT}</body></html>\n"
    )
    html_path = out / "report.html"
    temporary = html_path.with_name(".report.html.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(html_path)
    return Report(html_path, figures, overview, laws_path, skipped)
