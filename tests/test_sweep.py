"""ScalingSweep: what each row records, twins, resume, refusal, parallel runs, laws."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pybinscale
from pybinscale import BinaryMLPRegressor
from pybinscale.datasets import load_task, make_teacher_task
from pybinscale.estimators._inputs import normalize_inputs
from pybinscale.scaling import ScalingSweep
from pybinscale.scaling.results import ForeignResultsError, read_results
from pybinscale.scaling.sweep_laws import (
    KEY_COLUMNS,
    compute_frontier,
    fit_sweep_laws,
    law_table,
)

TASK = make_teacher_task(120, 6, random_state=3)
# Columns that legitimately differ between two runs of the same point.
VOLATILE = ["wall_time"]


def _sweep(**overrides: object) -> ScalingSweep:
    settings: dict = dict(
        estimator=BinaryMLPRegressor(learning_rate=2.0),
        widths=[16, 64],
        n_train=[24, 48],
        seeds=[0, 1],
        test_size=40,
        max_iter=30,
        verbose=False,
    )
    settings.update(overrides)
    return ScalingSweep(**settings)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _sweep().run(TASK.X, TASK.y, task="teacher")


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=VOLATILE).sort_values(list(KEY_COLUMNS)).reset_index(drop=True)


def test_one_row_per_point_with_the_promised_columns(table: pd.DataFrame) -> None:
    assert len(table) == 2 * 2 * 2 * 2  # widths x n_train x seeds x precisions
    assert not table.duplicated(list(KEY_COLUMNS)).any()
    for column in (
        "precision", "width", "N", "model_bits", "n_train", "seed", "steps", "compute",
        "train_loss", "test_loss", "generalization_difference_mean",
        "generalization_difference_max", "kernel_drift", "kernel_error_init", "wall_time",
        "version",
    ):
        assert column in table, column
    assert (table["version"] == pybinscale.__version__).all()
    assert (table["steps"] == 30).all()
    assert (table["N"] == table["width"] * 6).all()
    bits = np.where(table["precision"] == "1bit", 1, 32) * table["N"] + table["width"]
    assert (table["model_bits"] == bits).all()  # + one bit per fixed output sign
    assert (table["wall_time"] > 0).all()


def test_row_matches_the_estimator_fitted_directly(table: pd.DataFrame) -> None:
    """Same split, same seed, same settings: the row is the estimator's own numbers."""
    row = table[(table.precision == "1bit") & (table.width == 64) & (table.n_train == 48)
                & (table.seed == 1)].iloc[0]
    order = np.random.RandomState(0).permutation(len(TASK.y))
    test, pool = order[:40], order[40:]
    chosen = pool[np.random.RandomState(1).permutation(pool.size)[:48]]
    model = BinaryMLPRegressor(width=64, learning_rate=2.0, max_iter=30, random_state=1,
                               track_kernel=3).fit(TASK.X[chosen], TASK.y[chosen])
    assert row["compute"] == model.training_operations_  # counted by the estimator
    assert row["train_loss"] == model.train_loss_
    prediction = model.predict(TASK.X[test])
    assert row["test_loss"] == pytest.approx(0.5 * np.mean((prediction - TASK.y[test]) ** 2))
    assert row["kernel_drift"] == pytest.approx(model.kernel_history_["kernel_change"][-1])
    limit = pybinscale.ntk_limit(normalize_inputs(TASK.X[chosen], "l2"))
    error = np.linalg.norm(model.kernel_at_init_ - limit) / np.linalg.norm(limit)
    assert row["kernel_error_init"] == pytest.approx(error)
    full = BinaryMLPRegressor(width=64, precision="full", learning_rate=2.0, max_iter=30,
                              random_state=1).fit(TASK.X[chosen], TASK.y[chosen])
    difference = np.abs(prediction - full.predict(TASK.X[test]))
    assert row["generalization_difference_mean"] == pytest.approx(difference.mean())
    assert row["generalization_difference_max"] == pytest.approx(difference.max())


def test_twins_and_kernel_quantities(table: pd.DataFrame) -> None:
    full = table[table.precision == "full"]
    one_bit = table[table.precision == "1bit"]
    assert (full["generalization_difference_mean"] == 0).all()
    assert (one_bit["generalization_difference_mean"] > 0).all()
    assert (one_bit["generalization_difference_max"]
            >= one_bit["generalization_difference_mean"]).all()
    assert (table["kernel_error_init"] > 0).all() and (table["kernel_drift"] >= 0).all()
    # Wider networks start nearer the limit (averaged over seeds and training sets).
    by_width = one_bit.groupby("width")["kernel_error_init"].mean()
    assert by_width[64] < by_width[16]
    # The NTK curve starts where the symmetric network starts, at ||y||^2 / (2n).
    for _, row in one_bit.iterrows():
        assert row["curve_step"][0] == 0 and row["curve_step"][-1] == 30
        assert row["ntk_loss_curve"][0] == pytest.approx(row["loss_curve"][0])


def test_results_file_holds_every_row_and_resume_runs_nothing(tmp_path: Path) -> None:
    first = _sweep(widths=[16], out=tmp_path)
    table = first.run(TASK.X, TASK.y)
    assert first.n_run_ == len(table) == 8 and first.n_resumed_ == 0
    rows = read_results(tmp_path / "results.jsonl").rows
    assert len(rows) == 8
    again = _sweep(widths=[16], out=tmp_path)
    resumed = again.run(TASK.X, TASK.y)
    assert again.n_run_ == 0 and again.n_resumed_ == 8
    pd.testing.assert_frame_equal(resumed, table)


def test_resume_after_losing_rows_reruns_only_those(tmp_path: Path) -> None:
    sweep = _sweep(widths=[16], out=tmp_path)
    complete = sweep.run(TASK.X, TASK.y)
    path = tmp_path / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    # Keep the header, 5 rows and half of the sixth (a crash in the middle of a write).
    path.write_bytes(b"".join(lines[:6]) + lines[6][:20])
    resumed = _sweep(widths=[16], out=tmp_path)
    with pytest.warns(UserWarning, match="truncated"):
        table = resumed.run(TASK.X, TASK.y)
    assert resumed.n_resumed_ == 5 and resumed.n_run_ == 3
    pd.testing.assert_frame_equal(_comparable(table), _comparable(complete))
    keys = [tuple(r[k] for k in KEY_COLUMNS) for r in read_results(path).rows]
    assert len(keys) == len(set(keys)) == 8


def test_other_configuration_is_refused(tmp_path: Path) -> None:
    _sweep(widths=[16], seeds=[0], out=tmp_path).run(TASK.X, TASK.y)
    with pytest.raises(ForeignResultsError, match=r"sweep\.max_iter: 30 -> 31"):
        _sweep(widths=[16], seeds=[0], max_iter=31, out=tmp_path).run(TASK.X, TASK.y)
    with pytest.raises(ForeignResultsError, match="learning_rate"):
        _sweep(estimator=BinaryMLPRegressor(learning_rate=1.0), widths=[16], seeds=[0],
               out=tmp_path).run(TASK.X, TASK.y)
    other = make_teacher_task(120, 6, random_state=4)
    with pytest.raises(ForeignResultsError, match="sha256"):
        _sweep(widths=[16], seeds=[0], out=tmp_path).run(other.X, other.y)


def test_two_processes_give_the_same_table(table: pd.DataFrame) -> None:
    parallel = _sweep(n_jobs=2).run(TASK.X, TASK.y, task="teacher")
    pd.testing.assert_frame_equal(_comparable(parallel), _comparable(table))


def test_kernel_threads_are_restored_after_a_local_run() -> None:
    pybinscale.set_num_threads(1)
    try:
        _sweep(widths=[16], n_train=[24], seeds=[0]).run(TASK.X, TASK.y)
        assert pybinscale.get_num_threads() == 1
    finally:
        pybinscale.set_num_threads(None)


def test_several_tasks_in_one_file(tmp_path: Path) -> None:
    diabetes = load_task("diabetes")
    sweep = _sweep(widths=[16], n_train=[24], seeds=[0], out=tmp_path)
    table = sweep.run_tasks({"teacher": (TASK.X, TASK.y), "diabetes": (diabetes.X, diabetes.y)})
    assert table.groupby("task").size().to_dict() == {"diabetes": 2, "teacher": 2}
    header = read_results(tmp_path / "results.jsonl").header
    assert set(header["configuration"]["tasks"]) == {"teacher", "diabetes"}


def test_plain_initialisation_rows_and_divergence_recorded() -> None:
    sweep = _sweep(widths=[16], n_train=[24], seeds=[0], inits=["symmetric", "plain"])
    table = sweep.run(TASK.X, TASK.y)
    assert set(table["init"]) == {"symmetric", "plain"}
    exploding = _sweep(estimator=BinaryMLPRegressor(learning_rate=1e6), widths=[16],
                       n_train=[24], seeds=[0], max_iter=50)
    rows = exploding.run(TASK.X, TASK.y).set_index("precision")
    # The real weights blow up; the 1-bit net's forward weights stay +-1, so its loss
    # stays bounded: its row has numbers, but no twin to compare with.
    assert rows.loc["full", "diverged"] and np.isnan(rows.loc["full", "test_loss"])
    assert "diverged" in rows.loc["full", "note"]
    assert not rows.loc["1bit", "diverged"] and np.isfinite(rows.loc["1bit", "test_loss"])
    assert np.isnan(rows.loc["1bit", "generalization_difference_mean"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"widths": [15]}, "widths must be even"),
        ({"widths": []}, "at least one"),
        ({"n_train": [500]}, "leaving 80"),
        ({"precisions": ["2bit"]}, "precisions"),
        ({"inits": ["zeros"]}, "inits"),
        ({"test_size": 1.5}, "test_size"),
        ({"seeds": [0, 0]}, "repeat"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_bad_settings_are_named(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _sweep(**overrides).run(TASK.X, TASK.y)


def test_an_estimator_without_the_swept_parameters_is_refused() -> None:
    from sklearn.linear_model import Ridge

    with pytest.raises(TypeError, match="lacks the parameters"):
        _sweep(estimator=Ridge()).run(TASK.X, TASK.y)


def _synthetic_table(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for precision, scale in (("1bit", 1.5), ("full", 1.0)):
        for width in (64, 256, 1024, 4096):
            for n_train in (64, 128, 256, 512):
                for seed in (0, 1):
                    N, D = width * 16, n_train
                    loss = 0.01 + scale * (3.0 / N**0.4 + 2.0 / D**0.5)
                    rows.append({
                        "task": "t", "init": "symmetric", "precision": precision,
                        "width": width, "n_train": D, "seed": seed, "N": N,
                        "model_bits": N * (1 if precision == "1bit" else 32),
                        "compute": 6.0 * N * D,
                        "test_loss": loss * np.exp(0.01 * rng.standard_normal()),
                    })
    return pd.DataFrame(rows)


def test_fit_laws_recovers_known_exponents_with_intervals() -> None:
    table = _synthetic_table(np.random.default_rng(0))
    laws = fit_sweep_laws(table, n_resamples=10, n_jobs=2)
    assert set(laws) == {
        f"{kind}[{p}]" for kind in ("loss_vs_N", "loss_vs_bits", "loss_vs_D", "loss_vs_C",
                                    "joint") for p in ("1bit", "full")
    } | {"precision"}
    joint = laws["joint[full]"].law
    assert joint is not None
    assert joint.params_["alpha"] == pytest.approx(0.4, abs=0.1)
    assert joint.params_["beta"] == pytest.approx(0.5, abs=0.1)
    low, high = laws["joint[full]"].interval("alpha")
    assert low < joint.params_["alpha"] < high
    # The bits law is the N law with N measured in bits: same exponent.
    assert laws["loss_vs_bits[1bit]"].law.params_["alpha"] == pytest.approx(
        laws["loss_vs_N[1bit]"].law.params_["alpha"], rel=1e-3)
    data = json.loads(json.dumps(laws.to_dict()))
    assert data["laws"]["precision"]["intervals"]["gamma"][0] > 0


def test_fit_laws_keeps_laws_it_cannot_fit_with_a_reason() -> None:
    table = _synthetic_table(np.random.default_rng(1))
    table = table[table.n_train == 64]  # one training-set size: no D law
    laws = fit_sweep_laws(table, n_resamples=0)
    assert not laws["loss_vs_D[1bit]"].fitted
    assert "distinct values" in laws["loss_vs_D[1bit]"].note
    assert laws["loss_vs_N[1bit]"].fitted


def test_law_table_reads_csv_style_columns() -> None:
    table = pd.DataFrame({"N": [10, 20], "D": [5, 5], "C": [1e3, 2e3], "loss": [0.3, 0.2]})
    frame = law_table(table)
    assert list(frame.columns[:4]) == ["loss", "N", "D", "C"]
    with pytest.raises(ValueError, match="no loss column"):
        law_table(pd.DataFrame({"N": [1]}))


def test_compute_frontier() -> None:
    assert compute_frontier([3, 1, 2, 4], [0.1, 0.5, 0.6, 0.05]).tolist() == [1, 0, 3]
