"""Reproducibility: the same ``random_state`` gives bitwise-identical fitted models and
results tables across kernel thread counts (1 and 2), SIMD paths, local and Dask runs
and worker processes; pickled models load and predict the same bits in a fresh
Python process."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import pybinscale as pb
from pybinscale import (
    BinaryMLPClassifier,
    BinaryMLPRegressor,
    NTKRegressor,
    ScalingLaw,
)
from pybinscale.datasets import make_teacher_task
from pybinscale.scaling import ScalingSweep
from pybinscale.scaling.results import read_results
from pybinscale.scaling.sweep import KEY_COLUMNS, results_frame

PATHS = pb.supported_simd_paths()
SETTINGS = [(path, threads) for path in PATHS for threads in (1, 2)]


@pytest.fixture
def pinned() -> Iterator[Any]:
    """Pin a SIMD path and a thread count for part of a test; reset afterwards."""

    def pin(path: str, threads: int) -> None:
        pb.set_simd_path(path)
        pb.set_num_threads(threads)

    try:
        yield pin
    finally:
        pb.set_simd_path(None)
        pb.set_num_threads(None)


def fitted_state(model: Any) -> dict[str, bytes]:
    """Every fitted attribute of a model as bytes (arrays, floats, nested dicts)."""
    state: dict[str, bytes] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                add(f"{name}.{key}", item)
        elif isinstance(value, pb.PackedSigns):
            state[name] = value.words.tobytes() + str(value.shape).encode()
        elif isinstance(value, (np.ndarray, float, int, np.floating, np.integer)):
            array = np.asarray(value)
            state[name] = array.tobytes() + str((array.dtype, array.shape)).encode()

    for name, value in vars(model).items():
        if name.endswith("_") and not name.startswith("__"):
            add(name, value)
    return state


rng = np.random.default_rng(2024)
X = rng.standard_normal((150, 10))
X_TEST = rng.standard_normal((400, 10))
Y = np.sin(2 * X[:, 0] / np.linalg.norm(X, axis=1)) + 0.1 * X[:, 1]
LABELS = np.digitize(X[:, 2], [-0.5, 0.5])

MODELS = {
    "1bit": lambda: BinaryMLPRegressor(width=1024, max_iter=40, learning_rate=4.0,
                                       track_kernel=10, random_state=3),
    "1bit mini-batch clipped": lambda: BinaryMLPRegressor(width=256, max_iter=40, batch_size=32,
                                                          ste="clipped", random_state=3),
    "bitnet 4-bit activations": lambda: BinaryMLPRegressor(
        width=512, max_iter=30, quantization="bitnet", activation_bits=4,
        train_output_layer=True, learning_rate=0.5, random_state=3),
    "full plain init": lambda: BinaryMLPRegressor(width=512, precision="full", max_iter=40,
                                                  symmetric_init=False, random_state=3),
    "classifier": lambda: BinaryMLPClassifier(width=256, max_iter=40, random_state=3),
    "ntk limit": lambda: NTKRegressor(alpha=1e-4),
    "ntk empirical 1bit at t": lambda: NTKRegressor(kernel="empirical", width=2048, time=80.0,
                                                    random_state=3),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fitted_models_are_bitwise_identical_on_every_path_and_thread_count(
    name: str, pinned: Any
) -> None:
    target = LABELS if name == "classifier" else Y
    reference: dict[str, bytes] | None = None
    predictions: bytes | None = None
    for path, threads in SETTINGS:
        pinned(path, threads)
        model = MODELS[name]().fit(X, target)
        state = fitted_state(model)
        output = np.asarray(model.predict(X_TEST)).tobytes()
        if reference is None:
            reference, predictions = state, output
            assert state, "no fitted attributes found"
            continue
        differing = sorted(k for k in reference if reference[k] != state.get(k))
        assert not differing and state.keys() == reference.keys(), (path, threads, differing)
        assert output == predictions, (path, threads)


def test_scaling_law_fits_and_bootstraps_identically(pinned: Any) -> None:
    """The law's fit is deterministic and its bootstrap is seeded: the same parameters
    and intervals whatever the kernel settings and the number of processes."""
    from pybinscale.scaling.synthetic import EXAMPLE_PARAMS, make_scaling_data

    data, loss = make_scaling_data("chinchilla", EXAMPLE_PARAMS["chinchilla"], noise=0.01,
                                   n_samples=60, random_state=0)
    grid = {"a": [3.0, 6.0], "b": [3.0, 6.0], "e": [0.0], "alpha": [0.3], "beta": [0.3]}
    outcomes = []
    for (path, threads), n_jobs in zip(SETTINGS[:2] + SETTINGS[-1:], (None, 2, None)):
        pinned(path, threads)
        law = ScalingLaw(form="chinchilla", start_grid=grid, random_state=0, n_jobs=n_jobs,
                         verbose=False).fit(data, loss)
        law.bootstrap(n_resamples=16)
        outcomes.append((law.params_, law.confidence_intervals_))
    assert all(outcome == outcomes[0] for outcome in outcomes[1:])


# ------------------------------------------------------------------ sweeps

TASK = make_teacher_task(120, 8, random_state=9)
GRID = dict(widths=[16, 64], n_train=[24], seeds=[0, 1], test_size=30, max_iter=25,
            inits=["symmetric", "plain"], verbose=False)


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["wall_time"]).sort_values(list(KEY_COLUMNS)).reset_index(drop=True)


@pytest.fixture(scope="module")
def local_table() -> pd.DataFrame:
    sweep = ScalingSweep(BinaryMLPRegressor(learning_rate=2.0), n_jobs=1, **GRID)
    return comparable(sweep.run(TASK.X, TASK.y, task="teacher"))


@pytest.mark.parametrize("path", PATHS)
def test_sweep_tables_are_identical_on_every_path(path: str, local_table: pd.DataFrame,
                                                  tmp_path: Path) -> None:
    pb.set_simd_path(path)
    try:
        sweep = ScalingSweep(BinaryMLPRegressor(learning_rate=2.0), n_jobs=1, out=tmp_path,
                             **GRID)
        table = comparable(sweep.run(TASK.X, TASK.y, task="teacher"))
    finally:
        pb.set_simd_path(None)
    pd.testing.assert_frame_equal(table, local_table, check_exact=True)
    written = comparable(results_frame(read_results(tmp_path / "results.jsonl").rows))
    pd.testing.assert_frame_equal(written, local_table, check_exact=True)


def test_sweep_tables_are_identical_across_worker_processes_and_threads(
    local_table: pd.DataFrame,
) -> None:
    """n_jobs=2 runs the points in two loky processes, each with one kernel thread (the
    in-process run above used two); the portable path is pinned in the workers through
    the environment, as PYBINSCALE_SIMD documents."""
    previous = os.environ.get("PYBINSCALE_SIMD")
    os.environ["PYBINSCALE_SIMD"] = "portable"
    try:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)  # fresh workers read the variable
        sweep = ScalingSweep(BinaryMLPRegressor(learning_rate=2.0), n_jobs=2, **GRID)
        table = comparable(sweep.run(TASK.X, TASK.y, task="teacher"))
    finally:
        if previous is None:
            os.environ.pop("PYBINSCALE_SIMD", None)
        else:
            os.environ["PYBINSCALE_SIMD"] = previous
        get_reusable_executor().shutdown(wait=True)
    pd.testing.assert_frame_equal(table, local_table, check_exact=True)


def test_sweep_on_a_dask_cluster_equals_the_local_run(local_table: pd.DataFrame,
                                                      tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as client, parallel_config(backend="dask"):
        sweep = ScalingSweep(BinaryMLPRegressor(learning_rate=2.0), out=tmp_path, **GRID)
        table = comparable(sweep.run(TASK.X, TASK.y, task="teacher"))
        assert len(client.scheduler_info()["workers"]) == 2
    pd.testing.assert_frame_equal(table, local_table, check_exact=True)
    written = comparable(results_frame(read_results(tmp_path / "results.jsonl").rows))
    pd.testing.assert_frame_equal(written, local_table, check_exact=True)


# ------------------------------------------------------------------ pickles

FRESH_PROCESS = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    with open(sys.argv[1], "rb") as handle:
        models, X, X_test = pickle.load(handle)
    out = {}
    for name, model in models.items():
        if name == "packed":
            out[name] = model.unpack(dtype=np.int8)
        elif name == "law":
            out[name] = model.predict(np.array([[1e9, 1e10], [1e11, 1e12]]))
        else:
            out[name] = np.asarray(model.predict(X_test))
    with open(sys.argv[2], "wb") as handle:
        pickle.dump(out, handle)
    """
)


@pytest.mark.parametrize("simd", [None, "portable"])
def test_pickled_models_predict_identically_in_a_fresh_process(tmp_path: Path,
                                                               simd: str | None) -> None:
    from pybinscale.scaling.synthetic import EXAMPLE_PARAMS, make_scaling_data

    models: dict[str, Any] = {name: make().fit(X, LABELS if name == "classifier" else Y)
                              for name, make in MODELS.items()}
    data, loss = make_scaling_data("chinchilla", EXAMPLE_PARAMS["chinchilla"], noise=0.01,
                                   n_samples=40, random_state=1)
    models["law"] = ScalingLaw(form="chinchilla", verbose=False,
                               start_grid={"a": [5.0], "b": [5.0], "e": [0.0], "alpha": [0.3],
                                           "beta": [0.3]}).fit(data, loss)
    models["packed"] = pb.pack_signs(X)
    expected = {name: (model.unpack(dtype=np.int8) if name == "packed" else
                       model.predict(np.array([[1e9, 1e10], [1e11, 1e12]])) if name == "law"
                       else np.asarray(model.predict(X_TEST)))
                for name, model in models.items()}
    source, result = tmp_path / "models.pkl", tmp_path / "predictions.pkl"
    source.write_bytes(pickle.dumps((models, X, X_TEST)))
    env = {k: v for k, v in os.environ.items() if k != "PYBINSCALE_SIMD"}
    if simd:
        env["PYBINSCALE_SIMD"] = simd
    completed = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(source), str(result)],
                               capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr
    fresh = pickle.loads(result.read_bytes())
    assert fresh.keys() == expected.keys()
    for name in expected:
        assert fresh[name].dtype == expected[name].dtype, name
        assert fresh[name].tobytes() == expected[name].tobytes(), name
