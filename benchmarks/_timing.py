"""Side-by-side timing shared by the benchmarks: a row of the ratio table, the
alternating warm blocks both scripts time with, and the line that says on what."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import pybinscale as pb

#: Calls per block of one side.
CALLS_PER_BLOCK = 4
#: Pause before each block of ours: after numpy returns, OpenBLAS's threads keep spinning
#: for about 0.1 s and would share the cores with whatever runs next.
OPENBLAS_SPIN_SECONDS = 0.3


@dataclass
class Row:
    case: str
    ours: float
    baseline: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.baseline / self.ours


def side_by_side(
    ours: Callable[[], object],
    baseline: Callable[[], object],
    rounds: int,
    calls: int = CALLS_PER_BLOCK,
) -> tuple[float, float]:
    """Best warm wall time of each side.

    The two sides alternate in blocks of ``calls`` back-to-back calls, so both see the
    same machine state over the run, and only the best call of each counts. Two effects
    shape this. After numpy returns, OpenBLAS's threads keep spinning for about 2**28
    cycles (0.1 s), sharing the cores with whatever runs next, so each block of ours
    starts after a pause that outlasts them. And an idle pause lets the cores clock down
    (a 2048^3 sign_matmul took 7.5 ms back to back but 19 ms after 0.5 s idle), so the
    first call of each block only warms up and the best of the block is taken.
    """
    best_ours = best_baseline = float("inf")
    for _ in range(rounds):
        time.sleep(OPENBLAS_SPIN_SECONDS)
        for _ in range(calls):
            start = time.perf_counter()
            ours()
            best_ours = min(best_ours, time.perf_counter() - start)
        for _ in range(calls):
            start = time.perf_counter()
            baseline()
            best_baseline = min(best_baseline, time.perf_counter() - start)
    return best_ours, best_baseline


def best_time(call: Callable[[], object], calls: int) -> float:
    """Best wall time of ``calls`` back-to-back calls, after the OpenBLAS pause."""
    time.sleep(OPENBLAS_SPIN_SECONDS)
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def load_average() -> str:
    """The one-minute load average, or "unknown" where /proc is not there."""
    try:
        with open("/proc/loadavg", encoding="ascii") as loadavg:
            return loadavg.read().split()[0]
    except OSError:
        return "unknown"


def machine_line() -> str:
    """CPU model and count, numpy version, pybinscale's SIMD path and threads, load."""
    model = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"machine: {model}, {os.cpu_count()} CPUs; numpy {np.__version__}; "
        f"pybinscale SIMD path {pb.simd_path()}, {pb.get_num_threads()} threads; "
        f"load average {load_average()}"
    )
