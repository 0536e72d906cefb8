"""Faults in long runs, injected on purpose.

- A sweep killed with SIGKILL at random moments (seeded), again and again, resumes and
  ends with exactly the points of an uninterrupted run: no duplicates, no corrupt rows,
  the same values.
- A results file truncated mid-row resumes (the cut point runs again); one edited by
  hand is refused with a message naming the damaged line and how many rows are intact,
  and the file is left as it was; once the line is deleted the run resumes with them.
  That holds for edits that keep the line valid JSON too (a changed number, a removed
  key or checksum): every row is sealed with a checksum.
- A full disk, simulated with a file size limit (``RLIMIT_FSIZE``, ``SIGXFSZ`` ignored so
  that writes fail with ``EFBIG``) and, when this user may mount one, a small tmpfs
  (``ENOSPC``), ends the run with one clear line; every finished point stays, the file
  ends with a complete row, and a rerun completes the sweep.
- A Dask worker killed while it computes a point loses and duplicates nothing.

``FAULTS`` counts the faults injected and the points lost (always 0 when the tests
pass); ``test_faults_reported`` writes them to ``PYBINSCALE_FAULTS_FILE`` if set (see
scripts/reliability.py, which runs the same campaigns at larger sizes).
"""

from __future__ import annotations

import collections
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pybinscale import BinaryMLPRegressor
from pybinscale.datasets import load_task
from pybinscale.scaling import ScalingSweep
from pybinscale.scaling.results import (
    CorruptResultsError,
    TruncatedLineWarning,
    read_results,
)
from pybinscale.scaling.sweep import KEY_COLUMNS, results_frame

#: Faults injected and points lost, by campaign.
FAULTS: collections.Counter[str] = collections.Counter()

#: How many SIGKILLs the kill campaign sends (scripts/reliability.py sends more).
KILLS = int(os.environ.get("PYBINSCALE_FAULT_KILLS", "8"))
SEED = int(os.environ.get("PYBINSCALE_FAULT_SEED", "20251204"))

GRID = dict(widths=[16, 32, 64, 128], n_train=[32, 64], seeds=[0, 1, 2], max_iter=40)
N_POINTS = 4 * 2 * 3 * 2  # widths x n_train x seeds x precisions

CHILD = """
import sys
from pybinscale import BinaryMLPRegressor
from pybinscale.datasets import load_task
from pybinscale.scaling import ScalingSweep
task = load_task("teacher")
grid = {grid!r}
ScalingSweep(BinaryMLPRegressor(learning_rate=2.0), out=sys.argv[1], n_jobs=1,
             verbose=False, **grid).run(task.X, task.y, task="teacher")
""".format(grid=GRID)

CLI_GRID = ["--task", "teacher", "--widths", "16,32,64", "--n-train", "32", "--seeds", "0,1",
            "--max-iter", "30", "--inits", "symmetric", "--resamples", "0", "--no-progress",
            "--n-jobs", "1"]


def sweep(out: Path | None = None, **overrides: Any) -> ScalingSweep:
    settings = {**GRID, **overrides}
    return ScalingSweep(BinaryMLPRegressor(learning_rate=2.0), out=out, n_jobs=1,
                        verbose=False, **settings)


def comparable(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    table = rows if isinstance(rows, pd.DataFrame) else results_frame(rows)
    return (table.drop(columns=["wall_time"]).sort_values(list(KEY_COLUMNS))
            .reset_index(drop=True))


def keys(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(row.get(k) for k in KEY_COLUMNS) for row in rows]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """The table of an uninterrupted run, in memory."""
    task = load_task("teacher")
    return comparable(sweep().run(task.X, task.y, task="teacher"))


def check_rows(rows: list[dict[str, Any]], reference: pd.DataFrame) -> None:
    """No duplicates, and every row is the uninterrupted run's row for its point."""
    found = keys(rows)
    assert len(found) == len(set(found)), "duplicated points"
    if rows:
        table = comparable(rows)
        expected = reference.merge(table[list(KEY_COLUMNS)], on=list(KEY_COLUMNS))
        pd.testing.assert_frame_equal(table, expected, check_exact=True)


def lost(rows_before: list[dict[str, Any]], rows_after: list[dict[str, Any]]) -> int:
    """Points finished before a fault and missing after it."""
    return len(set(keys(rows_before)) - set(keys(rows_after)))


# ------------------------------------------------------------------ SIGKILL


def _rows_now(results: Path) -> int:
    try:
        return results.read_bytes().count(b"\n") - 1
    except FileNotFoundError:
        return -1


def _kill_campaign(out: Path, budget: int, chance: random.Random,
                  reference: pd.DataFrame) -> list[str]:
    """Run the sweep into ``out``, killing it up to ``budget`` times, then let it finish;
    check the file after every kill and at the end. Returns the kill moments."""
    results = out / "results.jsonl"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    finished: list[dict[str, Any]] = []
    moments: list[str] = []
    while len(moments) < budget:
        before = max(_rows_now(results), 0)
        process = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if chance.random() < 0.3:
            seconds = chance.uniform(0.05, 2.0)
            moment = f"at {seconds:.2f} s"
            time.sleep(seconds)
        else:
            wanted = chance.randint(0, 3)
            moment = f"{wanted} rows in"
            deadline = time.monotonic() + 120
            while _rows_now(results) < before + wanted and process.poll() is None:
                assert time.monotonic() < deadline, "no progress"
                time.sleep(0.002)
            time.sleep(chance.uniform(0, 0.03))
        process.send_signal(signal.SIGKILL)
        process.wait()
        stderr = process.stderr.read().decode()
        process.stderr.close()
        if process.returncode != -signal.SIGKILL:
            assert process.returncode == 0, stderr[-2000:]
            break  # the sweep finished before this kill
        moments.append(moment)
        FAULTS["SIGKILL: faults injected"] += 1
        if results.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TruncatedLineWarning)
                rows = read_results(results).rows
            check_rows(rows, reference)
            FAULTS["SIGKILL: points lost"] += lost(finished, rows)
            finished = rows
    completed = subprocess.run([sys.executable, "-c", CHILD, str(out)], env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    rows = read_results(results).rows
    FAULTS["SIGKILL: points lost"] += lost(finished, rows)
    assert len(rows) == N_POINTS, moments
    pd.testing.assert_frame_equal(comparable(rows), reference, check_exact=True)
    leftovers = [p.name for p in out.iterdir() if p.name != "results.jsonl"]
    # A kill between the header's write and its rename leaves its temporary file; the
    # next run removes it.
    assert not leftovers, leftovers
    return moments


def test_sigkill_at_random_moments_resumes_to_the_uninterrupted_table(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    """Each kill lands either at a random time (often during start-up or the header's
    creation) or a random few milliseconds after a random number of new rows (mid-point,
    mid-write); the moments come from a seeded generator. When a sweep finishes before
    all the kills are spent, the next kills go to a fresh sweep."""
    chance = random.Random(SEED)
    moments: list[str] = []
    for campaign in range(2 * KILLS):
        if len(moments) >= KILLS:
            break
        moments += _kill_campaign(tmp_path / f"sweep-{campaign}", KILLS - len(moments),
                                  chance, reference)
    assert len(moments) == KILLS, moments
    assert FAULTS["SIGKILL: points lost"] == 0


# ------------------------------------------------------------------ damaged files


@pytest.fixture
def finished_file(reference: pd.DataFrame, tmp_path: Path) -> Path:
    task = load_task("teacher")
    sweep(tmp_path).run(task.X, task.y, task="teacher")
    return tmp_path / "results.jsonl"


def resume(directory: Path) -> ScalingSweep:
    task = load_task("teacher")
    resumed = sweep(directory)
    resumed.run(task.X, task.y, task="teacher")
    return resumed


@pytest.mark.parametrize("fraction", [0.05, 0.37, 0.5, 0.93, 0.999])
def test_truncated_mid_row_resumes_with_every_complete_row(
    finished_file: Path, reference: pd.DataFrame, fraction: float
) -> None:
    data = finished_file.read_bytes()
    header_end = data.index(b"\n") + 1
    cut = header_end + int(fraction * (len(data) - header_end))
    if data[cut - 1:cut] == b"\n":
        cut -= 1  # always mid-row
    finished_file.write_bytes(data[:cut])
    complete = data[:cut].count(b"\n") - 1
    with pytest.warns(TruncatedLineWarning, match="truncated last line"):
        contents = read_results(finished_file)
    assert len(contents.rows) == complete
    with pytest.warns(TruncatedLineWarning, match="removed a truncated last line"):
        resumed = resume(finished_file.parent)
    FAULTS["truncated mid-row: faults injected"] += 1
    assert resumed.n_resumed_ == complete and resumed.n_run_ == N_POINTS - complete
    rows = read_results(finished_file).rows
    FAULTS["truncated mid-row: points lost"] += lost(contents.rows, rows)
    pd.testing.assert_frame_equal(comparable(rows), reference, check_exact=True)


def _changed(line: bytes, change: Any) -> bytes:
    record = json.loads(line)
    change(record)
    return json.dumps(record).encode()


EDITS = {
    "a colon replaced": lambda line: line.replace(b":", b"#", 1),
    "a brace removed": lambda line: line[1:],
    "cut short": lambda line: line[: len(line) // 2],
    "zeros from an unflushed block": lambda line: b"\0" * len(line),
    "not an object": lambda line: b"[1, 2, 3]",
    # Edits that keep the line a valid JSON record: only the row's checksum sees them.
    "a loss nudged": lambda line: _changed(
        line, lambda r: r.update(test_loss=r["test_loss"] * (1 + 1e-9))),
    "a key column removed": lambda line: _changed(line, lambda r: r.pop("width")),
    "the checksum removed": lambda line: _changed(line, lambda r: r.pop("_checksum")),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_hand_edited_row_is_named_and_the_other_rows_are_kept(
    finished_file: Path, reference: pd.DataFrame, edit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = finished_file.read_bytes().split(b"\n")
    number = 7  # a row in the middle (line 1 is the header)
    lines[number - 1] = EDITS[edit](lines[number - 1])
    edited = b"\n".join(lines)
    finished_file.write_bytes(edited)
    try:
        valid_json = isinstance(json.loads(lines[number - 1]), dict)
    except ValueError:
        valid_json = False
    campaign = "valid-JSON hand edit" if valid_json else "hand-edited row"
    FAULTS[f"{campaign}: faults injected"] += 1
    with pytest.raises(CorruptResultsError) as caught:
        resume(finished_file.parent)
    message = str(caught.value)
    assert f"damaged at line {number}" in message, message
    assert f"its other {N_POINTS - 1} rows are intact" in message, message
    assert finished_file.read_bytes() == edited, "the damaged file was changed"
    # The CLI says the same in one line.
    from pybinscale.cli import main

    assert main(["report", str(finished_file), "--resamples", "0"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"damaged at line {number}" in error[0], error
    # Deleting the line, as the message says, resumes with every other row.
    del lines[number - 1]
    finished_file.write_bytes(b"\n".join(lines))
    intact = read_results(finished_file).rows
    resumed = resume(finished_file.parent)
    assert resumed.n_resumed_ == N_POINTS - 1 and resumed.n_run_ == 1
    rows = read_results(finished_file).rows
    FAULTS[f"{campaign}: points lost"] += lost(intact, rows)
    pd.testing.assert_frame_equal(comparable(rows), reference, check_exact=True)


def test_a_repeated_row_is_read_once(finished_file: Path, reference: pd.DataFrame) -> None:
    """A line pasted twice is intact data (its checksum holds): the point counts once."""
    lines = finished_file.read_bytes().split(b"\n")
    lines.insert(8, lines[3])
    finished_file.write_bytes(b"\n".join(lines))
    FAULTS["repeated row: faults injected"] += 1
    intact = read_results(finished_file).rows
    assert len(intact) == N_POINTS + 1
    resumed = resume(finished_file.parent)
    FAULTS["repeated row: points lost"] += lost(intact, read_results(finished_file).rows)
    assert resumed.n_resumed_ == N_POINTS and resumed.n_run_ == 0
    pd.testing.assert_frame_equal(comparable(resumed.results_), reference, check_exact=True)


# ------------------------------------------------------------------ full disk


def _file_size_limit(limit: int) -> Any:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond it fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _cli(out: Path, preexec: Any = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("PYBINSCALE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "pybinscale", "run", "--out", str(out),
                           *CLI_GRID], preexec_fn=preexec, capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("cli-reference")
    completed = _cli(out)
    assert completed.returncode == 0, completed.stderr
    return read_results(out / "results.jsonl").rows


def _subset_of(rows: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    assert len(keys(rows)) == len(set(keys(rows)))
    if rows:
        table, expected = comparable(rows), comparable(reference)
        expected = expected.merge(table[list(KEY_COLUMNS)], on=list(KEY_COLUMNS))
        pd.testing.assert_frame_equal(table, expected, check_exact=True)


def _one_line(completed: subprocess.CompletedProcess[str]) -> str:
    assert completed.returncode == 1, completed.stderr
    lines = [line for line in completed.stderr.strip().splitlines()
             if not line.startswith("pybinscale: fitting")]
    assert len(lines) == 1 and lines[0].startswith("pybinscale: error: "), completed.stderr
    assert "Traceback" not in completed.stderr
    return lines[0]


@pytest.mark.parametrize("rows_that_fit", [0, 2.5, 9.7])
def test_a_file_size_limit_ends_the_run_clearly_and_loses_no_point(
    cli_reference: list[dict[str, Any]], tmp_path: Path, rows_that_fit: float
) -> None:
    data_line = len(json.dumps(cli_reference[0])) + 1
    # The CLI's header holds the whole configuration: a few KiB. With 0 rows that fit,
    # not even the header does.
    header = 3 * data_line if rows_that_fit else 100
    limit = int(header + rows_that_fit * data_line)
    out = tmp_path / "limited"
    line = _one_line(_cli(out, _file_size_limit(limit)))
    FAULTS["file size limit (EFBIG): faults injected"] += 1
    assert "File too large" in line and "rerun the same command to resume" in line, line
    results = out / "results.jsonl"
    leftovers = [p.name for p in out.iterdir() if p.name not in ("results.jsonl", "figures")]
    assert not leftovers, leftovers  # no temporary header file left behind
    before: list[dict[str, Any]] = []
    if results.exists():
        data = results.read_bytes()
        assert data.endswith(b"\n"), "the file must end with a complete row"
        with warnings.catch_warnings():
            warnings.simplefilter("error", TruncatedLineWarning)  # nothing to drop
            before = read_results(results).rows
        _subset_of(before, cli_reference)
        if len(before) < len(cli_reference):  # else the report's figures hit the limit
            assert "results.jsonl" in line, line
    else:
        assert "results file" in line, line
    completed = _cli(out)
    assert completed.returncode == 0, completed.stderr
    after = read_results(results).rows
    FAULTS["file size limit (EFBIG): points lost"] += lost(before, after)
    assert lost(before, after) == 0
    check = comparable(after)
    pd.testing.assert_frame_equal(check, comparable(cli_reference), check_exact=True)


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pybinscale-full-disk-"))
    if not _mount_tmpfs(path, "40k"):
        path.rmdir()
        pytest.skip("cannot mount a tmpfs here (needs root); the file size limit test covers it")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)
        path.rmdir()


def test_a_full_tmpfs_ends_the_run_clearly_and_loses_no_point(
    cli_reference: list[dict[str, Any]], small_tmpfs: Path
) -> None:
    out = small_tmpfs / "report"
    line = _one_line(_cli(out))
    FAULTS["full tmpfs (ENOSPC): faults injected"] += 1
    assert "No space left on device" in line and "rerun the same command" in line, line
    before = read_results(out / "results.jsonl").rows
    assert (out / "results.jsonl").read_bytes().endswith(b"\n")
    # Make room elsewhere, as a user would: move the run to a disk with space.
    moved = Path(tempfile.mkdtemp(prefix="pybinscale-moved-")) / "report"
    try:
        shutil.copytree(out, moved)
        completed = _cli(moved)
        assert completed.returncode == 0, completed.stderr
        after = read_results(moved / "results.jsonl").rows
    finally:
        shutil.rmtree(moved.parent)
    FAULTS["full tmpfs (ENOSPC): points lost"] += lost(before, after)
    assert lost(before, after) == 0
    pd.testing.assert_frame_equal(comparable(after), comparable(cli_reference), check_exact=True)


# ------------------------------------------------------------------ Dask


def test_a_dask_worker_killed_mid_point_loses_and_duplicates_nothing(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    task = load_task("teacher")
    outcome: dict[str, Any] = {}
    killed = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as client:

        def run() -> None:
            try:
                with parallel_config(backend="dask"):
                    # Wider points take long enough to be caught computing.
                    outcome["table"] = sweep(tmp_path, widths=[16, 32, 64, 2048]).run(
                        task.X, task.y, task="teacher")
            except BaseException as error:  # reported below
                outcome["error"] = error

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 120
        while len(killed) < 2 and thread.is_alive() and time.monotonic() < deadline:
            busy = client.run(lambda dask_worker: (os.getpid(), len(dask_worker.state.executing)))
            computing = [pid for pid, executing in busy.values() if executing]
            if computing:
                os.kill(computing[0], signal.SIGKILL)  # mid-point; its nanny restarts it
                killed.append(computing[0])
                FAULTS["Dask worker SIGKILL mid-point: faults injected"] += 1
                time.sleep(1.0)
            time.sleep(0.05)
        thread.join(timeout=600)
    assert killed, "no worker was caught computing a point"
    assert "error" not in outcome, repr(outcome.get("error"))
    rows = read_results(tmp_path / "results.jsonl").rows
    assert len(rows) == len(set(keys(rows))) == N_POINTS
    FAULTS["Dask worker SIGKILL mid-point: points lost"] += N_POINTS - len(rows)
    check_rows([r for r in rows if r["width"] != 2048], reference)
    assert len(outcome["table"]) == len(rows)


def test_faults_reported() -> None:
    path = os.environ.get("PYBINSCALE_FAULTS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"file": __name__, "faults": dict(FAULTS)}) + "\n")
    print(f"\n{__name__}: {dict(sorted(FAULTS.items()))}")
    assert all(n == 0 for name, n in FAULTS.items() if name.endswith("points lost"))
