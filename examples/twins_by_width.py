"""How far a 1-bit network's outputs are from its full-precision twin's, by width.

The teacher task of DESIGN section 1 (n = 200 unit-norm inputs in d = 16, a smooth
single-index target, seeds fixed), both initialisations: symmetric pairs (the
network starts at f = 0, learning rate 20) and plain random neurons (learning rate 1,
the largest at which DESIGN's prototype stayed stable). For each width the 1-bit net and
its twin train for the same 1,000 full-batch steps from the same weights; the table
gives the mean and maximum of |f_q(x) - f(x)| over 200 held-out points, averaged over
two seeds, the final training losses, and the same gap between the full-precision net
and kernel regression with the infinite-width NTK at the same time (NTKRegressor).

Run: ``python examples/twins_by_width.py`` (a few minutes on two cores). It prints the
Markdown table the README shows.
"""

from __future__ import annotations

import numpy as np

from pybinscale import BinaryMLPRegressor, NTKRegressor, generalization_difference

WIDTHS = (256, 1024, 4096, 16384)
SEEDS = (0, 1)
STEPS = 1000


def teacher_task() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2025)
    X = rng.standard_normal((400, 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    direction = rng.standard_normal(16)
    direction /= np.linalg.norm(direction)
    projection = X @ direction
    y = np.sin(2 * projection) + 0.5 * projection**2
    return X[:200], y[:200], X[200:]


def main() -> None:
    X, y, X_test = teacher_task()
    print(
        "| init (rate) | width | gap mean | gap max | 1-bit train loss | full train loss "
        "| full vs NTK gap mean |"
    )
    print("|---|---|---|---|---|---|---|")
    for symmetric, rate in ((True, 20.0), (False, 1.0)):
        kernel = NTKRegressor(kernel="limit", learning_rate=rate, time=STEPS).fit(X, y)
        for width in WIDTHS:
            rows = []
            for seed in SEEDS:
                twins = [
                    BinaryMLPRegressor(
                        width=width,
                        precision=precision,
                        learning_rate=rate,
                        max_iter=STEPS,
                        symmetric_init=symmetric,
                        random_state=seed,
                    ).fit(X, y)
                    for precision in ("1bit", "full")
                ]
                gap = generalization_difference(*twins, X_test)
                to_kernel = generalization_difference(twins[1], kernel, X_test)
                rows.append(
                    (gap.mean, gap.max, twins[0].train_loss_, twins[1].train_loss_, to_kernel.mean)
                )
            mean = np.mean(rows, axis=0)
            label = "symmetric (20)" if symmetric else "plain (1)"
            print(
                f"| {label} | {width} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.2e} "
                f"| {mean[3]:.2e} | {mean[4]:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
