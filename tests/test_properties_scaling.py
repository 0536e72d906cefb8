"""Property-based tests of the scaling side (hypothesis): ScalingLaw, the results file,
ScalingSweep's parameters and the compute frontier.

- ScalingLaw: every form on random positive data of any magnitude (constant, repeated
  and degenerate columns included) fits finite parameters and predicts positive losses,
  never NaN; bad data is refused with a ValueError naming X or y.
- Results file: any configuration and rows (floats of every kind, unicode, nested
  lists, numpy scalars) read back equal; a file truncated at any byte keeps every
  complete row and drops the rest with a warning, and a writer resumes from it; a file
  edited by hand at random is either still readable (its rows are what the lines now
  say) or refused with a message naming the line, leaving the file untouched.
- ScalingSweep: random grids run to a table with one row per point, or are refused
  with a ValueError naming the parameter.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pybinscale import BinaryMLPRegressor, ScalingLaw
from pybinscale.datasets import make_teacher_task
from pybinscale.scaling import ScalingSweep
from pybinscale.scaling.forms import get_form
from pybinscale.scaling.results import (
    CorruptResultsError,
    ForeignResultsError,
    ResultsWriter,
    TruncatedLineWarning,
    configuration_fingerprint,
    read_results,
)
from pybinscale.scaling.sweep import KEY_COLUMNS
from pybinscale.scaling.sweep_laws import compute_frontier
from property_support import property_settings, report_cases

CASES: collections.Counter[str] = collections.Counter()
OUTCOMES: collections.Counter[str] = collections.Counter()
EXAMPLES = 100


def record(name: str, outcome: str) -> None:
    CASES[name] += 1
    OUTCOMES[f"{name}: {outcome}"] += 1


# --------------------------------------------------------------------------- ScalingLaw

#: One or two starts per internal parameter keep each fit to milliseconds; the default
#: grids (up to 4,500 starts) are exercised by tests/test_scaling_*.py.
SMALL_GRIDS = {
    "power": {"k": [1.0], "alpha": [0.3]},
    "power_offset": {"a": [1.0, 5.0], "e": [-1.0], "alpha": [0.3]},
    "kaplan": {"alpha_D": [0.3], "r": [1.0], "log_N_c": [10.0], "log_D_c": [10.0]},
    "chinchilla": {"a": [3.0], "b": [3.0], "e": [-1.0], "alpha": [0.3], "beta": [0.3]},
    "precision": {"a": [3.0], "b": [3.0], "e": [-1.0], "alpha": [0.3], "beta": [0.3],
                  "log_gamma": [1.0]},
}


def positive_columns(n: int, k: int) -> st.SearchStrategy[np.ndarray]:
    moderate = st.floats(1.0, 1e12)
    extreme = st.floats(1e-300, 1e300)
    return st.one_of(
        hnp.arrays(np.float64, (n, k), elements=moderate),
        hnp.arrays(np.float64, (n, k), elements=extreme),
        hnp.arrays(np.float64, (n, k), elements=st.sampled_from([1.0, 1e6, 1e9])),  # repeats
    )


@st.composite
def law_data(draw: st.DrawFn) -> tuple[str, np.ndarray, np.ndarray]:
    form = draw(st.sampled_from(sorted(SMALL_GRIDS)))
    k = len(get_form(form).variables or ("N",))
    n = draw(st.sampled_from([1, 3, 5, 8, 2, 12, 20, 6]))
    X = draw(positive_columns(n, k))
    if form == "precision":
        X[:, 2] = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([1.0, 32.0, 4.0])))
    y = draw(st.one_of(hnp.arrays(np.float64, n, elements=st.floats(0.01, 10.0)),
                       hnp.arrays(np.float64, n, elements=st.floats(1e-300, 1e300)),
                       st.just(np.full(n, 2.0))))
    bad = draw(st.sampled_from(["none", "none", "none", "X", "y"]))
    if bad != "none" and n:
        target = X if bad == "X" else y
        target.flat[draw(st.integers(0, target.size - 1))] = draw(
            st.sampled_from([0.0, -1.0, np.nan, np.inf]))
    return form, X, y


@property_settings(EXAMPLES)
@given(data=law_data(), new=st.data())
def test_scaling_law(data: tuple[str, np.ndarray, np.ndarray], new: st.DataObject) -> None:
    form, X, y = data
    law = ScalingLaw(form=form, start_grid=SMALL_GRIDS[form], max_iter=50, verbose=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on degenerate data
            law.fit(X, y)
    except ValueError as error:
        message = str(error)
        bad_values = not (np.isfinite(X).all() and (X > 0).all() and np.isfinite(y).all()
                          and (y > 0).all())
        assert bad_values or len(X) < get_form(form).n_params, message
        assert message.startswith(("X", "y", "Input", "Input y")) or "X" in message, message
        record("ScalingLaw", "refused (bad values)" if bad_values else "refused (too few points)")
        return
    record("ScalingLaw", "fitted")
    params = np.array(list(law.params_.values()))
    assert not np.isnan(params).any(), law.params_
    X_new = new.draw(positive_columns(new.draw(st.integers(1, 5)), X.shape[1]))
    if form == "precision":
        X_new[:, 2] = 1.0
    for points in (X, X_new):
        with np.errstate(all="ignore"):
            predicted = law.predict(points)
        assert predicted.shape == (len(points),)
        assert not np.isnan(predicted).any() and (predicted >= 0).all(), (law.params_, predicted)


# --------------------------------------------------------------------------- results file

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
)
_values = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
_rows = st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=6)


def _same(a: Any, b: Any) -> bool:
    """Equality that counts NaN equal to NaN (JSON round trips keep NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


def _write(path: Path, configuration: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    with ResultsWriter(path, configuration) as writer:
        for row in rows:
            writer.append(row)


@property_settings(EXAMPLES)
@given(configuration=st.dictionaries(st.text(max_size=6), _values, max_size=4),
       rows=st.lists(_rows, max_size=6), numpy_values=st.booleans())
def test_results_round_trip(configuration: dict[str, Any], rows: list[dict[str, Any]],
                            numpy_values: bool) -> None:
    CASES["results round trip"] += 1
    written = [{k: np.float64(v) if numpy_values and isinstance(v, float) else v
                for k, v in row.items()} for row in rows]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "results.jsonl"
        _write(path, configuration, written)
        contents = read_results(path)
        assert contents.fingerprint == configuration_fingerprint(configuration)
        assert _same(contents.rows, [json.loads(json.dumps(r)) for r in rows])
        reordered = dict(reversed(list(configuration.items())))
        with ResultsWriter(path, reordered) as writer:  # same configuration: resumes
            assert _same(writer.rows, contents.rows)
        with pytest.raises(ForeignResultsError, match="different configuration"):
            ResultsWriter(path, {**configuration, "extra setting": 1}).__enter__()


@property_settings(EXAMPLES)
@given(rows=st.lists(_rows, min_size=1, max_size=6), cut=st.floats(0.0, 1.0),
       at_line_end=st.booleans())
def test_truncated_results_file(rows: list[dict[str, Any]], cut: float, at_line_end: bool) -> None:
    """Cut at any byte: the complete rows stay, a partial last line is dropped with a
    warning, and a writer reopening the file appends after the last complete row."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "results.jsonl"
        _write(path, {"grid": [1, 2]}, rows)
        data = path.read_bytes()
        header_end = data.index(b"\n") + 1
        size = int(round(cut * len(data)))
        if at_line_end:  # a cut between rows: what a kill between two writes leaves
            size = data.rfind(b"\n", 0, max(size, header_end)) + 1
        path.write_bytes(data[:size])
        if size < header_end:
            outcome = "header cut"
            if size == 0:
                with pytest.raises(CorruptResultsError, match="empty"):
                    read_results(path)
            else:
                with pytest.raises(CorruptResultsError, match="not a pybinscale results file"):
                    read_results(path)
            record("truncated results file", outcome)
            return
        lines = data[:size].split(b"\n")
        complete = len(lines) - 2  # the header and the piece after the last newline
        partial = bool(lines[-1])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            contents = read_results(path)
        assert _same(contents.rows, [json.loads(json.dumps(r)) for r in rows[:complete]])
        assert any(issubclass(w.category, TruncatedLineWarning) for w in caught) == partial
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncatedLineWarning)
            with ResultsWriter(path, {"grid": [1, 2]}) as writer:
                assert len(writer.rows) == complete
                writer.append({"resumed": True})
        assert read_results(path).rows[-1] == {"resumed": True}
        assert len(read_results(path).rows) == complete + 1
        record("truncated results file", "cut mid-row" if partial else "cut between rows")


@property_settings(EXAMPLES)
@given(rows=st.lists(st.fixed_dictionaries({"width": st.integers(1, 99), "loss": st.floats(0, 1)}),
                     min_size=2, max_size=6),
       edit=st.sampled_from(["replace", "insert", "delete", "swap-lines", "blank-line",
                             "garbage-line", "duplicate-line"]),
       where=st.floats(0.0, 1.0), junk=st.binary(min_size=1, max_size=4))
def test_hand_edited_results_file(rows: list[dict[str, Any]], edit: str, where: float,
                                  junk: bytes) -> None:
    """A hand edit anywhere after the header: the rows are what the lines now hold, or
    the file is refused with a message naming every damaged line; it is never changed."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "results.jsonl"
        _write(path, {"grid": "edited"}, rows)
        data = path.read_bytes()
        header_end = data.index(b"\n") + 1
        body = bytearray(data[header_end:])
        lines = body.split(b"\n")[:-1]
        at = min(int(where * len(body)), len(body) - 1)
        line = min(int(where * len(lines)), len(lines) - 1)
        if edit == "replace":
            body[at:at + len(junk)] = junk
        elif edit == "insert":
            body[at:at] = junk
        elif edit == "delete":
            del body[at:at + len(junk)]
        elif edit == "swap-lines" and len(lines) > 1:
            lines[0], lines[-1] = lines[-1], lines[0]
            body = bytearray(b"\n".join(lines) + b"\n")
        elif edit == "blank-line":
            lines.insert(line, b"   ")
            body = bytearray(b"\n".join(lines) + b"\n")
        elif edit == "garbage-line":
            lines.insert(line, b"{" + junk.hex().encode())
            body = bytearray(b"\n".join(lines) + b"\n")
        elif edit == "duplicate-line":
            lines.insert(line, lines[line])
            body = bytearray(b"\n".join(lines) + b"\n")
        edited = data[:header_end] + bytes(body)
        path.write_bytes(edited)
        expected_rows, damaged = _parse_like_a_reader(bytes(body), _fingerprint(path))
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            if damaged:
                with pytest.raises(CorruptResultsError) as caught:
                    read_results(path)
                message = str(caught.value)
                listed = [int(n) for n in re.findall(r"(\d+) \(", message.split("damaged at")[1])]
                assert listed == damaged[:5], message
                with pytest.raises(CorruptResultsError):
                    ResultsWriter(path, {"grid": "edited"}).__enter__()
                assert path.read_bytes() == edited  # nothing lost: the file is untouched
                record("hand-edited results file", "refused, line named")
                return
            contents = read_results(path)
        assert contents.rows == expected_rows
        record("hand-edited results file", "still readable")


def _fingerprint(path: Path) -> str:
    return str(json.loads(path.read_bytes().split(b"\n")[0])["fingerprint"])


def _parse_like_a_reader(body: bytes, fingerprint: str) -> tuple[list[Any], list[int]]:
    """The documented reading of the lines after the header: JSON objects one per line,
    each sealed by the SHA-256 of the fingerprint, a newline and its other values as
    sorted compact JSON; blank lines skipped, an unreadable or cut last line dropped;
    any other unreadable line, or one whose seal fails, is damage (the 1-based line
    numbers in the file returned)."""
    pieces = body.split(b"\n")
    tail = pieces.pop()
    rows: list[Any] = []
    damaged: list[int] = []
    for index, piece in enumerate(pieces):
        if not piece.strip():
            continue
        try:
            row = json.loads(piece.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            row = None
        if not isinstance(row, dict):
            if index == len(pieces) - 1 and not tail:
                break
            damaged.append(index + 2)
            continue
        seal = row.pop("_checksum", None)
        values = json.dumps(row, sort_keys=True, separators=(",", ":"))
        if seal != hashlib.sha256(f"{fingerprint}\n{values}".encode()).hexdigest()[:16]:
            damaged.append(index + 2)
            continue
        rows.append(row)
    return rows, damaged


# --------------------------------------------------------------------------- the sweep

TASK = make_teacher_task(40, 3, random_state=0)


#: Valid and invalid values of each ScalingSweep parameter.
SWEEP_VALUES: dict[str, tuple[list[Any], list[Any]]] = {
    "widths": ([[2], [2, 4], (4,), 6], [[3], [], [2, 2], [0], ["4"], [2.5], [True], [-2]]),
    "n_train": ([[4], [4, 8], 6], [[0], [], [40], [4, 4], [1.5]]),
    "seeds": ([[0], [0, 1], 3], [[-1], [], [0, 0], ["a"]]),
    "precisions": ([["1bit", "full"], ["full"], "1bit"], [["half"], [], ["full", "full"]]),
    "inits": ([["symmetric"], ["plain"], ("symmetric", "plain")], [["random"], []]),
    "test_size": ([0.25, 8, 0.1], [0, 0.0, 1.0, 40, -3, True, "0.2"]),
    "max_iter": ([1, 2, None], [0, -1, 1.5, True]),
    "kernel_checkpoints": ([1, 3], [0, -2, 2.0]),
    "n_jobs": ([None, 1], [0, 1.5]),
}


@st.composite
def sweep_params(draw: st.DrawFn) -> dict[str, Any]:
    """Valid values, with one parameter (or none, half the time) invalid."""
    invalid = draw(st.sampled_from([None] * len(SWEEP_VALUES) + sorted(SWEEP_VALUES)))
    return {name: draw(st.sampled_from(values[1] if name == invalid else values[0]))
            for name, values in SWEEP_VALUES.items()}


@property_settings(60)
@given(params=sweep_params())
def test_sweep_parameters(params: dict[str, Any]) -> None:
    estimator = BinaryMLPRegressor(learning_rate=0.5, max_iter=2)
    sweep = ScalingSweep(estimator, verbose=False, **params)
    with tempfile.TemporaryDirectory() as directory:
        sweep.set_params(out=directory)
        try:
            table = sweep.run(TASK.X, TASK.y, task="teacher")
        except (ValueError, TypeError) as error:
            message = str(error)
            assert any(message.startswith(f"{name}:") or f"{name}" in message.split(":")[0]
                       for name in params), message
            record("ScalingSweep", "refused (" + message.split(":")[0] + ")")
            return
        record("ScalingSweep", "ran")
        assert not table.duplicated(list(KEY_COLUMNS)).any()
        rows = read_results(Path(directory) / "results.jsonl").rows
        assert len(rows) == len(table) == sweep.n_run_
        trained = table[~table["diverged"].astype(bool)]
        columns = ["N", "model_bits", "steps", "compute", "train_loss", "test_loss"]
        assert np.isfinite(trained[columns].to_numpy(dtype=float)).all()


# --------------------------------------------------------------------------- frontier


@property_settings(EXAMPLES)
@given(points=st.lists(st.tuples(st.floats(0, 1e30), st.floats(-1e30, 1e30)), max_size=30))
def test_compute_frontier(points: list[tuple[float, float]]) -> None:
    CASES["compute_frontier"] += 1
    compute = np.array([c for c, _ in points])
    loss = np.array([l_ for _, l_ in points])
    keep = compute_frontier(compute, loss)
    assert len(set(keep.tolist())) == len(keep)
    assert (np.diff(compute[keep]) >= 0).all() and (np.diff(loss[keep]) < 0).all()
    for index in set(range(len(points))) - set(keep.tolist()):
        # every point left out is matched or beaten by one at most as expensive
        assert ((compute[keep] <= compute[index]) & (loss[keep] <= loss[index])).any()


def test_cases_ran() -> None:
    report_cases(__name__, CASES, OUTCOMES, minimum=30)
