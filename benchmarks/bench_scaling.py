"""Benchmark: Hoffmann et al.'s fit of the Chinchilla law, ours against plain scipy.

Both sides fit ``L = E + A / N^alpha + B / D^beta`` to the 240 Chinchilla points of
Besiroglu et al. (2024) by Hoffmann et al.'s procedure: Huber loss (delta = 1e-3) on
log L, from each of the 4,500 starts of Hoffmann's grid, keeping the best optimum.

- baseline: the plain scipy implementation, ``scipy.optimize.minimize`` with L-BFGS-B,
  numerical (finite-difference) gradients and default tolerances from every start, as
  Besiroglu et al.'s replication code does it;
- ours: ``pybinscale.ScalingLaw(form="chinchilla").fit`` (batched Newton over all
  starts with analytic derivatives, L-BFGS-B polish with loss-relative tolerances), on
  one thread like the baseline (BLAS limited to one thread).

Both run in this process, one after the other, and the ratio of their times is
printed, with the optima they reach. Then a 1,000-resample bootstrap of our fit is
timed. Run from the repository root::

    python benchmarks/bench_scaling.py                  # the full comparison
    python benchmarks/bench_scaling.py --baseline-every 30   # quick: 1 start in 30

With ``--baseline-every k`` the baseline runs every k-th start only and its time is
also shown scaled up to 4,500 starts (marked as an estimate).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from pybinscale import ScalingLaw
from pybinscale.scaling.forms import get_form
from pybinscale.scaling.reference import (
    BESIROGLU_ALPHA_INTERVAL,
    BESIROGLU_HOFFMANN_FIT,
    CHINCHILLA_CSV_ENV,
    chinchilla_csv_path,
    load_chinchilla_points,
)

DELTA = 1e-3


def baseline_fit(
    X: np.ndarray, loss: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, float]:
    """Plain scipy: L-BFGS-B with finite-difference gradients from every start."""
    log_n, log_d, log_loss = np.log(X[:, 0]), np.log(X[:, 1]), np.log(loss)

    def objective(theta: np.ndarray) -> float:
        a, b, e, alpha, beta = theta
        terms = [a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)]
        return float(np.sum(huber(DELTA, logsumexp(terms, axis=0) - log_loss)))

    best_theta, best_value = starts[0], np.inf
    for start in tqdm(starts, desc="baseline (scipy, numerical gradients)", unit="start"):
        result = minimize(objective, start, method="L-BFGS-B")
        if result.fun < best_value:
            best_theta, best_value = result.x, float(result.fun)
    return best_theta, best_value


def time_ours(
    X: np.ndarray, loss: np.ndarray, repeats: int
) -> tuple[ScalingLaw, list[float]]:
    """Time our fit on one core, like the baseline: BLAS may use one thread only."""
    times = []
    with threadpool_limits(limits=1):
        for _ in range(repeats):
            begin = time.perf_counter()
            law = ScalingLaw(form="chinchilla", verbose=False).fit(X, loss)
            times.append(time.perf_counter() - begin)
    return law, times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--baseline-every",
        type=int,
        default=1,
        help="run the baseline from every k-th grid start only (default 1: all 4,500)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of our fit")
    parser.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--n-jobs", type=int, default=2, help="processes for the bootstrap")
    args = parser.parse_args(argv)

    path = chinchilla_csv_path()
    if not path.is_file():
        print(f"no Chinchilla points at {path}; set {CHINCHILLA_CSV_ENV} to the CSV file")
        return 1
    X, loss = load_chinchilla_points(path)
    grid = get_form("chinchilla").start_grid()
    starts = grid[:: args.baseline_every]
    print(
        f"{len(loss)} points, {len(grid)} grid starts; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
    )

    law, ours_before = time_ours(X, loss, args.repeats)
    begin = time.perf_counter()
    base_theta, base_value = baseline_fit(X, loss, starts)
    baseline_time = time.perf_counter() - begin
    _, ours_after = time_ours(X, loss, args.repeats)
    ours_times = ours_before + ours_after
    ours_median = statistics.median(ours_times)

    full_baseline = baseline_time * len(grid) / len(starts)
    estimate = "" if len(starts) == len(grid) else " (estimate, scaled from a subset)"
    base_params = get_form("chinchilla").public_params(base_theta)

    print("\n| fit of the 240 points, 4,500 starts | time (s) | vs baseline |")
    print("|---|---|---|")
    print(
        f"| baseline: scipy L-BFGS-B, numerical gradients, {len(starts)} starts "
        f"| {baseline_time:.1f} | 1 |"
    )
    if estimate:
        print(f"| baseline scaled to 4,500 starts{estimate} | {full_baseline:.1f} | 1 |")
    print(
        f"| ours: ScalingLaw.fit, median of {len(ours_times)} (min {min(ours_times):.2f}, "
        f"max {max(ours_times):.2f}) | {ours_median:.2f} | "
        f"{full_baseline / ours_median:.1f}x faster{estimate} |"
    )

    print("\n| optimum | E | A | B | alpha | beta | Huber objective |")
    print("|---|---|---|---|---|---|---|")
    rows = {
        "Besiroglu et al. (reported)": (BESIROGLU_HOFFMANN_FIT, None),
        "baseline": (base_params, base_value),
        "ours": (law.params_, law.huber_loss_),
    }
    for name, (p, value) in rows.items():
        objective = "" if value is None else f"{value:.10g}"
        print(
            f"| {name} | {float(p['E']):.4f} | {float(p['A']):.2f} | {float(p['B']):.1f} "
            f"| {float(p['alpha']):.5f} | {float(p['beta']):.5f} | {objective} |"
        )
    gap = (base_value - law.huber_loss_) / law.huber_loss_
    print(f"\nbaseline objective minus ours, relative to ours: {gap:.2e}")
    print(
        "largest relative parameter difference, baseline vs ours: "
        f"{max(abs(float(base_params[k]) / v - 1) for k, v in law.params_.items()):.2e}"
    )

    begin = time.perf_counter()
    law.set_params(random_state=0, n_jobs=args.n_jobs, verbose=True)
    law.bootstrap(args.n_resamples)
    bootstrap_time = time.perf_counter() - begin
    low, high = law.confidence_intervals_["alpha"]
    print(
        "\n| bootstrap | resamples | n_jobs | time (s) | alpha 95% interval | "
        "Besiroglu et al. |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| ScalingLaw.bootstrap | {args.n_resamples} | {args.n_jobs} | "
        f"{bootstrap_time:.1f} | {low:.3f} to {high:.3f} | "
        f"{BESIROGLU_ALPHA_INTERVAL[0]} to {BESIROGLU_ALPHA_INTERVAL[1]} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
