"""Concurrent callers: every kernel and every estimator's predict, called from 8 Python
threads at once (a barrier lines them up; the kernels release the GIL, so they really
overlap), give the bits of serial calls; fitting in one thread while another predicts
with another estimator is safe; changing the SIMD path and the thread count while
kernels run changes no result."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import pybinscale as pb
from pybinscale import (
    BinaryMLPClassifier,
    BinaryMLPRegressor,
    NTKKernel,
    NTKRegressor,
)

THREADS = 8
ROUNDS = 4


def run_together(calls: list[Callable[[], Any]], rounds: int = ROUNDS) -> list[list[Any]]:
    """Run ``calls[i]`` in thread ``i``, ``rounds`` times each, every round started at
    once by a barrier; returns each thread's results. An exception in a thread fails."""
    barrier = threading.Barrier(len(calls))
    results: list[list[Any]] = [[] for _ in calls]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(rounds):
                barrier.wait(timeout=60)
                results[index].append(calls[index]())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    return results


def same(a: Any, b: Any) -> bool:
    """Bitwise equality of results (arrays, PackedSigns, tuples of arrays)."""
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, pb.PackedSigns):
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_against_serial(calls: list[Callable[[], Any]]) -> None:
    serial = [call() for call in calls]
    for index, outputs in enumerate(run_together(calls)):
        for output in outputs:
            assert same(output, serial[index]), f"thread {index} differs from its serial call"


def _data(seed: int, n: int = 300, d: int = 700) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Xs = rng.standard_normal((n, 16))
    Xs /= np.linalg.norm(Xs, axis=1, keepdims=True)
    return {
        "A": X,
        "B": rng.standard_normal((n // 2, d)).astype(np.float32),
        "X": Xs,
        "W": rng.standard_normal((2048, 16)),
        "P": rng.standard_normal((n, 1000)) >= 0,
    }


KERNELS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "pack_signs": lambda d: pb.pack_signs(d["A"]),
    "sign_matmul": lambda d: pb.sign_matmul(d["A"], d["A"][: len(d["B"])]),
    "quantize_activations": lambda d: pb.quantize_activations(d["B"], 4),
    "quantized_matmul": lambda d: pb.quantized_matmul(d["B"], d["A"], 3),
    "activation_patterns": lambda d: pb.activation_patterns(d["X"], d["W"]),
    "coactivation_counts": lambda d: pb.coactivation_counts(d["P"]),
    "ntk_gram": lambda d: pb.ntk_gram(d["X"], d["W"], quantized=False),
    "ntk_limit": lambda d: pb.ntk_limit(d["X"], d["X"][:50], output_layer=True),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_one_kernel_from_eight_threads(name: str) -> None:
    """The same kernel in 8 threads at once, each on its own data."""
    kernel = KERNELS[name]
    check_against_serial([lambda d=_data(seed): kernel(d) for seed in range(THREADS)])


def test_every_kernel_at_once_on_shared_inputs() -> None:
    """Eight different kernels at once, all reading the same arrays."""
    shared = _data(99)
    names = sorted(KERNELS)
    assert len(names) == THREADS
    check_against_serial([lambda name=name: KERNELS[name](shared) for name in names])


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 12))
    y = np.sin(3 * X[:, 0] / np.linalg.norm(X, axis=1))
    labels = (X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    common = {"width": 512, "max_iter": 30, "random_state": 0}
    models = {
        "1bit": BinaryMLPRegressor(**common).fit(X, y),
        "full": BinaryMLPRegressor(precision="full", **common).fit(X, y),
        "bitnet-4bit": BinaryMLPRegressor(quantization="bitnet", activation_bits=4, **common).fit(X, y),
        "classifier": BinaryMLPClassifier(**common).fit(X, labels),
        "ntk-limit": NTKRegressor(alpha=1e-3).fit(X, y),
        "ntk-empirical": NTKRegressor(kernel="empirical", width=1024, time=50.0,
                                      random_state=0).fit(X, y),
    }
    return {"X": X, "y": y, "labels": labels, "models": models, "common": common}


def test_predict_from_eight_threads(fitted: dict[str, Any]) -> None:
    """Each estimator's predict from 8 threads at once, on different rows."""
    rng = np.random.default_rng(11)
    for name, model in fitted["models"].items():
        inputs = [rng.standard_normal((2000, 12)) for _ in range(THREADS)]
        check_against_serial([lambda X=X, model=model: model.predict(X) for X in inputs])


def test_all_estimators_predict_at_once(fitted: dict[str, Any]) -> None:
    rng = np.random.default_rng(12)
    X = rng.standard_normal((3000, 12))
    models = list(fitted["models"].values())
    calls = [lambda m=m: m.predict(X) for m in models]
    calls += [lambda: fitted["models"]["classifier"].decision_function(X),
              lambda: NTKKernel(kappa=2.0)(X[:500] / 10)]
    check_against_serial(calls)


def test_fitting_while_another_estimator_predicts(fitted: dict[str, Any]) -> None:
    """Threads that fit new models while others predict with fitted ones: the fits give
    the serial fit's bits, the predictions the serial predictions'."""
    X, y, common = fitted["X"], fitted["y"], fitted["common"]
    rng = np.random.default_rng(13)
    X_new = rng.standard_normal((4000, 12))

    def fit(precision: str) -> np.ndarray:
        model = BinaryMLPRegressor(precision=precision, **common).fit(X, y)
        return np.concatenate([model.coef_hidden_.ravel(), model.loss_curve_, model.predict(X_new)])

    def fit_ntk() -> np.ndarray:
        return NTKRegressor(kernel="empirical", width=512, random_state=3, alpha=1e-3).fit(
            X, y).predict(X_new)

    calls: list[Callable[[], Any]] = [lambda: fit("1bit"), lambda: fit("full"), fit_ntk,
                                      lambda: BinaryMLPClassifier(**common).fit(
                                          X, fitted["labels"]).predict(X_new)]
    calls += [lambda m=m: m.predict(X_new) for m in list(fitted["models"].values())[:4]]
    assert len(calls) == THREADS
    check_against_serial(calls)


def test_changing_paths_and_threads_while_kernels_run() -> None:
    """One thread switches the SIMD path and the thread count (rebuilding the pool) over
    and over while seven compute: every result keeps its bits."""
    shared = _data(7)
    names = sorted(KERNELS)[:THREADS - 1]
    paths = pb.supported_simd_paths()
    serial = {name: KERNELS[name](shared) for name in names}
    stop = threading.Event()
    switches = [0]

    def switch() -> None:
        try:
            while not stop.is_set():
                for path in paths:
                    pb.set_simd_path(path)
                    pb.set_num_threads(1 + switches[0] % 3)
                    switches[0] += 1
        finally:
            pb.set_simd_path(None)
            pb.set_num_threads(None)

    switcher = threading.Thread(target=switch)
    switcher.start()
    try:
        results = run_together([lambda name=name: KERNELS[name](shared) for name in names],
                               rounds=6)
    finally:
        stop.set()
        switcher.join(timeout=60)
    assert switches[0] > len(paths), "the switching thread did not run alongside"
    for name, outputs in zip(names, results):
        for output in outputs:
            assert same(output, serial[name]), name
