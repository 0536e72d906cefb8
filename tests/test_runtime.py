"""SIMD path and thread control: environment variables, setters, independence of
results from the thread count, and release of the GIL during kernels."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pybinscale
from pybinscale import coactivation_counts, ntk_gram, pack_signs, quantized_matmul, sign_matmul


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("path", pybinscale.supported_simd_paths())
def test_environment_variable_forces_a_path(path):
    result = run_python("import pybinscale; print(pybinscale.simd_path())", PYBINSCALE_SIMD=path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == path


def test_unknown_path_in_environment_warns_and_falls_back():
    code = "import warnings; warnings.simplefilter('error');\ntry:\n import pybinscale\nexcept RuntimeWarning as w: print('warned', w)"
    result = run_python(code, PYBINSCALE_SIMD="sse9")
    assert "warned" in result.stdout and "sse9" in result.stdout


def test_default_path_is_the_fastest_supported():
    result = run_python("import pybinscale; print(pybinscale.simd_path())", PYBINSCALE_SIMD="")
    assert result.stdout.strip() == pybinscale.supported_simd_paths()[-1]


def test_set_simd_path_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown SIMD path"):
        pybinscale.set_simd_path("sse")
    with pytest.raises(TypeError, match="path"):
        pybinscale.set_simd_path(3)


def test_environment_variable_sets_the_thread_count():
    result = run_python("import pybinscale; print(pybinscale.get_num_threads())", PYBINSCALE_NUM_THREADS="3")
    assert result.stdout.strip() == "3"


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="num_threads"):
        pybinscale.set_num_threads(0)
    with pytest.raises(TypeError, match="num_threads"):
        pybinscale.set_num_threads("2")


def test_results_do_not_depend_on_the_thread_count(rng):
    A = rng.standard_normal((150, 900))
    B = rng.standard_normal((130, 900))
    X = rng.standard_normal((120, 8))
    W = rng.standard_normal((700, 8))
    outputs = []
    try:
        for threads in (1, 2, 3, 5):
            pybinscale.set_num_threads(threads)
            assert pybinscale.get_num_threads() == threads
            outputs.append(
                [
                    sign_matmul(A, B).tobytes(),
                    quantized_matmul(A, B, 6).tobytes(),
                    coactivation_counts(A > 0).tobytes(),
                    ntk_gram(X, W).tobytes(),
                ]
            )
    finally:
        pybinscale.set_num_threads(None)
    assert all(out == outputs[0] for out in outputs)


def test_kernels_release_the_gil(rng):
    """Python code keeps running in another thread while a kernel computes."""
    # Packed operands, so that the call is the product alone.
    P = pack_signs(rng.standard_normal((3000, 8000)).astype(np.float32))
    interval: list[float] = []

    def kernel() -> None:
        interval.append(time.perf_counter())
        sign_matmul(P, P)
        interval.append(time.perf_counter())

    ticks: list[float] = []
    worker = threading.Thread(target=kernel)
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0)
    worker.join()
    begin, end = interval
    margin = 0.1 * (end - begin)
    # Holding the GIL for the whole call would leave no tick strictly inside it.
    inside = [t for t in ticks if begin + margin < t < end - margin]
    assert end - begin > 0.01
    assert len(inside) > 50
