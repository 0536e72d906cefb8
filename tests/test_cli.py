"""The ``pybinscale`` command: run, resume after a kill, fit, report, and its errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pybinscale.cli import build_parser, main
from pybinscale.scaling.results import read_results
from pybinscale.scaling.sweep_laws import KEY_COLUMNS, results_frame

# A small grid: 4 widths x 1 size x 3 seeds x 2 precisions = 24 points of the teacher task.
SMALL = ["--task", "teacher", "--widths", "16,32,64,128", "--n-train", "32", "--seeds",
         "0,1,2", "--max-iter", "40", "--inits", "symmetric", "--resamples", "0",
         "--no-progress"]


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pybinscale`` in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("PYBINSCALE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "pybinscale", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def _one_error_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pybinscale: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def _table(directory: Path) -> pd.DataFrame:
    rows = read_results(directory / "results.jsonl", warn=False).rows
    return (
        results_frame(rows).drop(columns=["wall_time"])
        .sort_values(list(KEY_COLUMNS)).reset_index(drop=True)
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    result = _cli("run", "--out", str(out), "--n-jobs", "1", *SMALL)
    assert result.returncode == 0, result.stderr
    return out


def test_run_writes_the_report_files(uninterrupted: Path) -> None:
    for name in ("report.html", "results.jsonl", "laws.json"):
        assert (uninterrupted / name).is_file(), name
    figures = sorted(p.stem for p in (uninterrupted / "figures").glob("*.png"))
    for name in ("kernel_error", "loss_curves", "generalization_difference", "loss_vs_N",
                 "loss_vs_bits", "loss_vs_D", "loss_vs_compute", "overview"):
        if name != "loss_vs_D":  # one training-set size: no D figure in this small grid
            assert name in figures, figures
    page = (uninterrupted / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(figures) - 1  # all but the overview
    assert "<script src" not in page and "<link" not in page  # self-contained
    assert len(_table(uninterrupted)) == 24
    laws = json.loads((uninterrupted / "laws.json").read_text())
    assert "loss_vs_N[1bit]" in laws["teacher"]["laws"]


def test_killed_run_resumes_and_equals_an_uninterrupted_one(
    uninterrupted: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pybinscale", "run", "--out", str(out), "--n-jobs", "1", *SMALL],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    results = out / "results.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if results.exists() and len(results.read_bytes().splitlines()) >= 2:
                break  # the header and a first finished point
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.01)
        else:
            pytest.fail("no point was written within two minutes")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = len(read_results(results, warn=False).rows)
    assert 1 <= finished < 24
    resumed = _cli("run", "--out", str(out), "--n-jobs", "1", *SMALL)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{finished} points were already in" in resumed.stderr
    table = _table(out)
    assert not table.duplicated(list(KEY_COLUMNS)).any()
    pd.testing.assert_frame_equal(table, _table(uninterrupted))


def test_fit_prints_the_law_with_intervals(uninterrupted: Path) -> None:
    result = _cli("fit", str(uninterrupted / "results.jsonl"), "--form", "power_offset",
                  "--x", "N", "--resamples", "10")
    assert result.returncode == 0, result.stderr
    assert "[1bit]" in result.stdout and "[full]" in result.stdout
    assert "alpha =" in result.stdout and "95% interval [" in result.stdout


def test_fit_reads_a_csv(tmp_path: Path, uninterrupted: Path) -> None:
    table = results_frame(read_results(uninterrupted / "results.jsonl").rows)
    csv = tmp_path / "runs.csv"
    table[["precision", "N", "n_train", "compute", "test_loss"]].to_csv(csv, index=False)
    result = _cli("fit", str(csv), "--form", "power", "--x", "C", "--precision", "1bit",
                  "--resamples", "0")
    assert result.returncode == 0, result.stderr
    assert "X_c =" in result.stdout and "[1bit]" in result.stdout


def test_report_regenerates_the_page(tmp_path: Path, uninterrupted: Path) -> None:
    result = _cli("report", str(uninterrupted / "results.jsonl"), "--out", str(tmp_path),
                  "--resamples", "0")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "report.html").is_file() and (tmp_path / "figures" / "overview.png").is_file()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--n-jobs", "0"], "--n-jobs"),
        (["run", "--n-jobs", "two"], "--n-jobs"),
        (["run", "--task", "mnist"], "--task"),
        (["run", "--widths", "64,x"], "--widths"),
        (["run", "--widths", "63,64"], "even"),
        (["run", "--resamples", "1"], "--resamples"),
        (["run", "--scheduler", "tcp://a:1", "--scheduler-file", "f"], "not allowed"),
        (["fit", "x.jsonl", "--form", "cubic"], "--form"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_options_are_one_line_and_status_2(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("pybinscale: error: ")
    assert fragment in error


def test_unwritable_output_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    line = _one_error_line(_cli("run", "--out", str(blocker / "report"), *SMALL), 1)
    assert f"cannot write to output directory {blocker / 'report'}" in line


def test_unreachable_scheduler_names_the_address() -> None:
    line = _one_error_line(
        _cli("run", "--out", "/tmp/pybinscale-never", "--scheduler", "tcp://127.0.0.1:9",
             "--timeout", "2", *SMALL), 1)
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in line


def test_missing_scheduler_file(tmp_path: Path) -> None:
    line = _one_error_line(
        _cli("run", "--out", str(tmp_path), "--scheduler-file", str(tmp_path / "none.json"),
             *SMALL), 1)
    assert "scheduler file" in line and "does not exist" in line


def test_foreign_results_file_is_refused(tmp_path: Path, uninterrupted: Path) -> None:
    out = tmp_path / "other"
    out.mkdir()
    (out / "results.jsonl").write_bytes((uninterrupted / "results.jsonl").read_bytes())
    other_grid = [a if a != "40" else "41" for a in SMALL]  # another max-iter
    line = _one_error_line(_cli("run", "--out", str(out), *other_grid), 1)
    assert "different configuration" in line and "max_iter: 40 -> 41" in line


@pytest.mark.parametrize("content", [b"garbage\n", b'{"width": 64}\n', b""],
                         ids=["garbage", "no-header", "empty"])
def test_corrupt_results_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "results.jsonl").write_bytes(content)
    line = _one_error_line(_cli("report", str(tmp_path / "results.jsonl")), 1)
    assert "results file" in line
    if content:  # an empty file holds nothing to protect: run starts afresh in it
        line = _one_error_line(_cli("run", "--out", str(tmp_path), *SMALL), 1)
        assert "is not a pybinscale results file" in line


def test_missing_results_file(tmp_path: Path) -> None:
    line = _one_error_line(_cli("fit", str(tmp_path / "nothing.jsonl")), 1)
    assert "does not exist" in line


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["run"])
    assert args.out == "pybinscale-report" and not args.quick and args.scheduler is None
