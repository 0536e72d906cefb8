"""Sweeps on a real Dask cluster: a scheduler and two workers on 127.0.0.1.

The cluster is started with the ``dask`` command line, as a user would, and every
process is started in its own session so that a test can kill one worker (its nanny
included) without touching anything else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from joblib import parallel_config  # noqa: E402

from pybinscale import BinaryMLPRegressor  # noqa: E402
from pybinscale.datasets import make_teacher_task  # noqa: E402
from pybinscale.scaling import ScalingSweep  # noqa: E402
from pybinscale.scaling.results import read_results  # noqa: E402
from pybinscale.scaling.sweep import _threads_for_task  # noqa: E402
from pybinscale.scaling.sweep_laws import KEY_COLUMNS, results_frame  # noqa: E402

TASK = make_teacher_task(160, 8, random_state=5)


def _dask_command() -> list[str]:
    executable = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    if executable is None:
        return [sys.executable, "-m", "distributed.cli.dask_spec"]  # pragma: no cover
    return [executable]


class Cluster:
    """A ``dask scheduler`` and ``dask worker`` processes, each in its own session."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.scheduler_file = directory / "scheduler.json"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.directory / f"process-{len(self.processes)}.log"
        self.logs.append(log)
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                [*_dask_command(), *args], stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.directory,
            )
        self.processes.append(process)
        return process

    def start(self, n_workers: int) -> None:
        self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(self.scheduler_file))
        for _ in range(n_workers):
            self.add_worker()

    def add_worker(self) -> None:
        self.workers.append(self._start(
            "worker", "--scheduler-file", str(self.scheduler_file), "--nthreads", "1",
            "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard",
            "--death-timeout", "60", "--local-directory", str(self.directory),
        ))

    @property
    def address(self) -> str:
        return str(json.loads(self.scheduler_file.read_text())["address"])

    def client(self, n_workers: int) -> distributed.Client:
        deadline = time.monotonic() + 60
        while not self.scheduler_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(self.describe())
            time.sleep(0.1)
        client = distributed.Client(scheduler_file=str(self.scheduler_file), timeout="30s")
        client.wait_for_workers(n_workers, timeout=90)
        return client

    def kill_worker(self, index: int = 0) -> None:
        """SIGKILL a worker and its nanny: the whole session, at once."""
        os.killpg(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait()

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def describe(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in self.logs
                         if log.exists())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("dask"))
    running.start(2)
    try:
        running.client(2).close()
        yield running
    finally:
        running.stop()


def _sweep(**overrides: object) -> ScalingSweep:
    settings: dict = dict(
        estimator=BinaryMLPRegressor(learning_rate=2.0),
        widths=[16, 64, 256],
        n_train=[32, 64],
        seeds=[0, 1],
        test_size=40,
        max_iter=40,
        verbose=False,
    )
    settings.update(overrides)
    return ScalingSweep(**settings)


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return (
        frame.drop(columns=["wall_time"]).sort_values(list(KEY_COLUMNS)).reset_index(drop=True)
    )


@pytest.fixture(scope="module")
def local_table() -> pd.DataFrame:
    return _sweep(n_jobs=1).run(TASK.X, TASK.y, task="teacher")


def test_cluster_run_equals_local_run(cluster: Cluster, local_table: pd.DataFrame,
                                      tmp_path: Path) -> None:
    with cluster.client(2) as client, parallel_config(backend="dask"):
        table = _sweep(out=tmp_path).run(TASK.X, TASK.y, task="teacher")
        ran_on = client.run(os.getpid)
    assert len(ran_on) == 2
    pd.testing.assert_frame_equal(_comparable(table), _comparable(local_table))
    written = results_frame(read_results(tmp_path / "results.jsonl").rows)
    pd.testing.assert_frame_equal(_comparable(written), _comparable(local_table))


def test_worker_threads_share_its_cores(cluster: Cluster) -> None:
    with cluster.client(2) as client:
        threads = client.submit(_threads_for_task, 99, pure=False).result()
    cores = len(os.sched_getaffinity(0))
    assert threads == max(1, cores // 1)  # one thread per worker: all its cores
    assert _threads_for_task(3) == 3  # outside a worker: what the parent computed


def test_sweep_survives_a_killed_worker(cluster: Cluster, local_table: pd.DataFrame,
                                        tmp_path: Path) -> None:
    """Kill one worker (and its nanny) once the first point is written: Dask reruns its
    tasks on the other worker and the sweep still returns every point."""
    results = tmp_path / "results.jsonl"
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            with cluster.client(2), parallel_config(backend="dask"):
                outcome["table"] = _sweep(out=tmp_path, widths=[16, 64, 256, 1024]).run(
                    TASK.X, TASK.y, task="teacher")
        except BaseException as error:  # reported by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and thread.is_alive():
            if results.exists() and len(results.read_bytes().splitlines()) >= 2:
                break
            time.sleep(0.02)
        assert thread.is_alive(), f"the sweep ended before a worker could be killed: {outcome}"
        cluster.kill_worker(0)
    finally:
        thread.join(timeout=300)
        cluster.add_worker()  # give later tests their two workers back
    assert "error" not in outcome, f"{outcome.get('error')!r}\n{cluster.describe()}"
    table = outcome["table"]
    assert isinstance(table, pd.DataFrame)
    assert len(table) == 4 * 2 * 2 * 2
    keys = [tuple(r[k] for k in KEY_COLUMNS) for r in read_results(results).rows]
    assert len(keys) == len(set(keys)) == len(table)
    same_grid = _comparable(table[table.width <= 256])
    pd.testing.assert_frame_equal(same_grid, _comparable(local_table))


def test_cli_on_the_cluster_resumes_after_a_kill(cluster: Cluster, tmp_path: Path) -> None:
    """``pybinscale run --scheduler-file``, killed outright mid-run, then run again."""
    cluster.client(2).close()
    out = tmp_path / "report"
    command = [sys.executable, "-m", "pybinscale", "run", "--out", str(out),
               "--scheduler-file", str(cluster.scheduler_file), "--task", "teacher",
               "--widths", "16,32,64,128,256", "--n-train", "32", "--seeds", "0,1",
               "--max-iter", "60", "--inits", "symmetric", "--resamples", "0", "--no-progress"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env)
    results = out / "results.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if results.exists() and len(results.read_bytes().splitlines()) >= 2:
                break
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = len(read_results(results, warn=False).rows)
    assert finished >= 1
    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"connected to the Dask scheduler at {cluster.address}" in rerun.stderr
    rows = read_results(results).rows
    keys = [tuple(r[k] for k in KEY_COLUMNS) for r in rows]
    assert len(keys) == len(set(keys)) == 5 * 2 * 2
    assert (out / "report.html").is_file()
