"""Every invalid option or combination of options of ``pybinscale`` gives one clear
line on stderr (``pybinscale: error: ...``, naming the option or the file at fault), no
traceback, nothing on stdout, and a non-zero exit status: 2 for bad usage, 1 for a
problem found while running (a missing or damaged file, an unreachable scheduler)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pybinscale.cli import main
from pybinscale.scaling.results import ResultsWriter

#: (arguments, exit status, words the one line must contain).
USAGE = [
    # the command itself
    ([], 2, ["required"]),
    (["frobnicate"], 2, ["invalid choice", "frobnicate"]),
    (["--frobnicate"], 2, ["required: COMMAND"]),  # argparse names the missing command first
    (["--version"], 2, ["required: COMMAND"]),
    (["--frobnicate", "tour"], 2, ["unrecognized", "--frobnicate"]),
    (["tour", "extra"], 2, ["unrecognized", "extra"]),
    (["tour", "--quick"], 2, ["unrecognized", "--quick"]),
    # run: values
    (["run", "--n-jobs", "0"], 2, ["--n-jobs", "'0'"]),
    (["run", "--n-jobs", "-2"], 2, ["--n-jobs"]),
    (["run", "--n-jobs", "two"], 2, ["--n-jobs", "two"]),
    (["run", "--n-jobs"], 2, ["--n-jobs", "expected one argument"]),
    (["run", "--resamples", "1"], 2, ["--resamples"]),
    (["run", "--resamples", "-1"], 2, ["--resamples"]),
    (["run", "--resamples", "many"], 2, ["--resamples"]),
    (["run", "--widths", ""], 2, ["--widths"]),
    (["run", "--widths", "64,x"], 2, ["--widths", "64,x"]),
    (["run", "--widths", "1,64"], 2, ["--widths", ">= 2"]),
    (["run", "--widths", "0"], 2, ["--widths"]),
    (["run", "--widths", "-64"], 2, ["--widths"]),
    (["run", "--widths", "64,64"], 2, ["--widths", "distinct"]),
    (["run", "--widths", "64.5"], 2, ["--widths"]),
    (["run", "--n-train", "0"], 2, ["--n-train"]),
    (["run", "--n-train", "a,b"], 2, ["--n-train"]),
    (["run", "--n-train", "32,32"], 2, ["--n-train"]),
    (["run", "--seeds", "-1"], 2, ["--seeds"]),
    (["run", "--seeds", "0,0"], 2, ["--seeds"]),
    (["run", "--max-iter", "0"], 2, ["--max-iter"]),
    (["run", "--max-iter", "1.5"], 2, ["--max-iter"]),
    (["run", "--inits", "random"], 2, ["--inits", "random"]),
    (["run", "--inits", "symmetric,symmetric"], 2, ["--inits"]),
    (["run", "--inits", ","], 2, ["--inits"]),
    (["run", "--task", "mnist"], 2, ["--task", "mnist"]),
    (["run", "--timeout", "0"], 2, ["--timeout"]),
    (["run", "--timeout", "soon"], 2, ["--timeout"]),
    (["run", "extra"], 2, ["unrecognized", "extra"]),
    (["run", "--form", "power"], 2, ["unrecognized", "--form"]),
    # run: combinations
    (["run", "--widths", "63,64"], 2, ["--widths", "even", "63"]),
    (["run", "--widths", "63", "--inits", "plain,symmetric"], 2, ["--widths", "even"]),
    (["run", "--quick", "--widths", "63"], 2, ["--widths", "even"]),
    (["run", "--scheduler", "tcp://a:1", "--scheduler-file", "f"], 2, ["not allowed"]),
    # fit
    (["fit"], 2, ["required", "RESULTS"]),
    (["fit", "x.jsonl", "--form", "cubic"], 2, ["--form", "cubic"]),
    (["fit", "x.jsonl", "--x", "Q"], 2, ["--x", "Q"]),
    (["fit", "x.jsonl", "--precision", "half"], 2, ["--precision", "half"]),
    (["fit", "x.jsonl", "--resamples", "1"], 2, ["--resamples"]),
    (["fit", "x.jsonl", "y.jsonl"], 2, ["unrecognized", "y.jsonl"]),
    (["fit", "x.jsonl", "--n-jobs", "2"], 2, ["unrecognized", "--n-jobs"]),
    # report
    (["report"], 2, ["required", "RESULTS"]),
    (["report", "x.jsonl", "--resamples", "1"], 2, ["--resamples"]),
    (["report", "x.jsonl", "--n-jobs", "0"], 2, ["--n-jobs"]),
    (["report", "x.jsonl", "--form", "power"], 2, ["unrecognized", "--form"]),
]


def one_line(capsys: pytest.CaptureFixture[str], status: int, got: int) -> str:
    captured = capsys.readouterr()
    assert got == status, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("pybinscale: error: "), lines[0]
    assert "Traceback" not in captured.err and not captured.out.strip(), captured
    return lines[0]


@pytest.mark.parametrize(("args", "status", "words"), USAGE,
                         ids=[" ".join(a) or "(nothing)" for a, _, _ in USAGE])
def test_bad_usage(args: list[str], status: int, words: list[str],
                   capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line(capsys, status, main(args))
    for word in words:
        assert word in line, line


# ------------------------------------------------------------------ files


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small results file (two precisions, one task, one init) with a CSV beside it."""
    directory = tmp_path_factory.mktemp("results")
    path = directory / "results.jsonl"
    with ResultsWriter(path, {"made": "by hand"}) as writer:
        for precision in ("1bit", "full"):
            for width in (16, 32, 64, 128, 256, 512):
                writer.append({"task": "teacher", "init": "symmetric", "precision": precision,
                               "width": width, "n_train": 32, "seed": 0, "N": 8 * width,
                               "model_bits": 8 * width, "compute": 1e3 * width,
                               "test_loss": 0.1 + 3.0 / width**0.5, "train_loss": 0.05})
    (directory / "only-n.csv").write_text("N,test_loss\n10,0.5\n20,0.4\n40,0.3\n80,0.25\n")
    return path


def _fit(results: Path, *extra: str) -> list[str]:
    return ["fit", str(results), "--resamples", "0", *extra]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--form", "chinchilla", "--x", "C"], ["--x C", "chinchilla", "one-variable"]),
        (["--form", "kaplan", "--x", "N"], ["--x N", "kaplan"]),
        (["--form", "precision", "--precision", "1bit"], ["--precision 1bit", "both"]),
        (["--form", "power", "--precision", "half-bit"], ["--precision", "half-bit"]),
        (["--task", "diabetes"], ["--task diabetes", "teacher"]),
        (["--init", "plain"], ["--init plain", "symmetric"]),
    ],
)
def test_fit_options_that_contradict_the_form_or_the_results(
    results: Path, extra: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line(capsys, 2, main(_fit(results, *extra)))
    for word in words:
        assert word in line, line


def test_fit_a_precision_the_results_lack(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path, {}) as writer:
        for width in (16, 32, 64, 128):
            writer.append({"precision": "full", "N": width, "n_train": 8, "test_loss": 1 / width})
    line = one_line(capsys, 2, main(_fit(path, "--form", "power", "--precision", "1bit")))
    assert "--precision 1bit" in line and "full" in line, line


@pytest.mark.parametrize(
    ("make", "command", "words"),
    [
        (lambda d: d / "missing.jsonl", "fit", ["does not exist"]),
        (lambda d: d, "fit", ["does not exist"]),  # a directory without results.jsonl
        (lambda d: _write(d / "empty.jsonl", b""), "fit", ["is empty"]),
        (lambda d: _write(d / "garbage.jsonl", b"\x00\xff garbage\n"), "report",
         ["not a pybinscale results file"]),
        (lambda d: _header_only(d / "header.jsonl"), "fit", ["no finished points"]),
        (lambda d: _write(d / "empty.csv", b""), "fit", ["cannot read CSV"]),
        (lambda d: _write(d / "binary.csv", bytes(range(256)) * 4), "fit", ["CSV"]),
        (lambda d: _write(d / "noloss.csv", b"N,D\n1,2\n3,4\n"), "fit", ["loss column"]),
        (lambda d: _write(d / "future.jsonl", b'{"pybinscale_results": 99}\n'), "fit",
         ["format 99"]),
        (lambda d: _write(d / "damaged.jsonl",
                          b'{"pybinscale_results": 1}\n{"N": 1}\nnot json\n{"N": 2}\n'),
         "report", ["damaged at line 3", "other 2 rows are intact"]),
    ],
    ids=["missing", "directory", "empty", "garbage", "header only", "empty csv",
         "binary csv", "csv without loss", "future format", "damaged line"],
)
def test_unusable_results_files(tmp_path: Path, make: object, command: str, words: list[str],
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    line = one_line(capsys, 1, main([command, str(path), "--resamples", "0"]))
    for word in words:
        assert word in line, line


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _header_only(path: Path) -> Path:
    with ResultsWriter(path, {}):
        pass
    return path


def test_a_form_whose_columns_the_results_lack(results: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    csv = results.parent / "only-n.csv"
    line = one_line(capsys, 1, main(_fit(csv, "--form", "chinchilla")))
    assert "lack the column(s) ['D']" in line, line


def test_a_loss_column_the_results_lack(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line(capsys, 1, main(_fit(results, "--form", "power", "--loss", "val_loss")))
    assert "val_loss" in line, line


def test_report_into_a_file(results: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line(capsys, 1, main(["report", str(results), "--out", str(blocker / "out"),
                                     "--resamples", "0"]))
    assert "cannot write to output directory" in line, line


# ------------------------------------------------------------------ run, found while running


def test_run_into_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line(capsys, 1, main(["run", "--out", str(blocker), "--task", "teacher"]))
    assert "cannot write to output directory" in line, line


def test_run_with_more_training_points_than_the_task_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line(capsys, 1, main(["run", "--out", str(tmp_path), "--task", "teacher",
                                     "--n-train", "100000", "--no-progress"]))
    assert "n_train" in line and "100000" in line, line


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["does not exist"]),
        ("not json", ["not a Dask scheduler file"]),
        (json.dumps({"port": 1}), ["not a Dask scheduler file", "address"]),
        (json.dumps([1, 2]), ["not a Dask scheduler file"]),
    ],
    ids=["missing", "not json", "no address", "a list"],
)
def test_bad_scheduler_files(tmp_path: Path, content: str | None, words: list[str],
                             capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed")
    scheduler = tmp_path / "scheduler.json"
    if content is not None:
        scheduler.write_text(content)
    line = one_line(capsys, 1, main(["run", "--out", str(tmp_path / "out"), "--task", "teacher",
                                     "--scheduler-file", str(scheduler)]))
    for word in words:
        assert word in line, line


def test_a_results_file_of_another_grid(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results.jsonl").write_text(
        json.dumps({"pybinscale_results": 1, "fingerprint": "0" * 16,
                    "configuration": {"sweep": {"max_iter": 3}}}) + "\n")
    line = one_line(capsys, 1, main(["run", "--out", str(tmp_path), "--task", "teacher",
                                     "--widths", "16", "--n-train", "8", "--seeds", "0",
                                     "--max-iter", "2", "--no-progress"]))
    assert "different configuration" in line and "max_iter: 3 -> 2" in line, line


# ------------------------------------------------------------------ as a process


@pytest.mark.parametrize(
    ("args", "status", "word"),
    [
        (["run", "--widths", "63,64"], 2, "even"),
        (["fit", "/nonexistent/results.jsonl"], 1, "does not exist"),
        (["run", "--scheduler", "tcp://127.0.0.1:9", "--timeout", "1", "--task", "teacher"], 1,
         "cannot reach the Dask scheduler"),
    ],
)
def test_as_a_process(args: list[str], status: int, word: str, tmp_path: Path) -> None:
    """The real exit status and stderr of ``python -m pybinscale``."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("PYBINSCALE_DEBUG", None)
    if args[0] == "run":
        args = [*args, "--out", str(tmp_path / "out")]
    completed = subprocess.run([sys.executable, "-m", "pybinscale", *args], capture_output=True,
                               text=True, timeout=120, env=env)
    assert completed.returncode == status, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pybinscale: error: "), completed.stderr
    assert word in lines[0] and not completed.stdout.strip()
