"""Side-by-side timings of the estimators against plain numpy, printed as ratios.

Each section times one estimator against a numpy implementation of the same computation,
in the same process, alternating blocks of back-to-back calls, and reports the best time
of each side (noise on a shared machine only ever adds time) and the ratio numpy / ours.
Every section is a function returning table rows; ``main`` runs them all. Run from the
repository root:

    python benchmarks/bench_estimators.py            # the full sizes
    python benchmarks/bench_estimators.py --quick    # small sizes, a smoke test
    python benchmarks/bench_estimators.py --only ntk # one section
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import pybinscale as pb
from _timing import Row, best_time, load_average, machine_line, side_by_side
from pybinscale.estimators._init import initial_weights
from pybinscale.estimators.ntk_regressor import NTKRegressor, solve_kernel_system

# --------------------------------------------------------------------- NTKRegressor


def ntk_regressor_section(quick: bool, rounds: int) -> list[Row]:
    """``NTKRegressor(kernel="empirical")`` fit against the same kernel in dense numpy.

    Both sides draw the same network (``initial_weights``), build the 1-bit empirical NTK
    ``H = kappa^2 / m (X X^T) * (P P^T)`` of unit-norm rows (ours: packed patterns and
    AND-popcount in the Rust core; numpy: ``P = (X sign(W)^T >= 0)`` as float32 and a
    float32 ``P @ P.T``, exact for these counts) and then run the very same float64 solve
    (:func:`solve_kernel_system`: in-place Cholesky and its conditioning check). The
    solve is shared work, so it bounds the end-to-end ratio (Amdahl); the kernel-only row
    shows the part the core accelerates.
    """
    n, d, width = (1024, 64, 4096) if quick else (4096, 64, 16384)
    kappa, alpha, seed = 1.0, 0.0, 0
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.sin(3.0 * X[:, 0]) + X[:, 1] * X[:, 2]

    def numpy_kernel() -> np.ndarray:
        W, _, _ = initial_weights(d, width, 1, True, seed)
        signs = np.where(W >= 0, 1.0, -1.0)
        patterns = (X @ signs.T >= 0).astype(np.float32)
        counts = patterns @ patterns.T
        return (X @ X.T) * counts * (kappa**2 / width)

    def ours_kernel() -> np.ndarray:
        W, _, _ = initial_weights(d, width, 1, True, seed)
        return pb.ntk_gram(X, W, kappa=kappa, quantized=True)

    def numpy_fit() -> np.ndarray:
        return solve_kernel_system(numpy_kernel(), y[:, None], alpha).dual_coef[:, 0]

    model = NTKRegressor(kernel="empirical", width=width, kappa=kappa, alpha=alpha, random_state=seed)

    def ours_fit() -> NTKRegressor:
        return model.fit(X, y)

    # Same answer before any timing: same kernel, same coefficients.
    reference_kernel = numpy_kernel()
    assert np.allclose(ours_kernel(), reference_kernel, rtol=1e-12, atol=1e-15)
    del reference_kernel
    ours_fit()
    assert model.solver_ == "cholesky"
    assert np.allclose(model.dual_coef_, numpy_fit(), rtol=1e-6, atol=1e-9)

    calls = 2
    fit_ours, fit_numpy = side_by_side(ours_fit, numpy_fit, rounds, calls)
    kernel_ours, kernel_numpy = side_by_side(ours_kernel, numpy_kernel, rounds, calls)

    def solve_only() -> np.ndarray:
        return solve_kernel_system(H.copy(), y[:, None], alpha).dual_coef

    H = ours_kernel()
    solve = best_time(solve_only, rounds * calls)  # includes a copy of H (~0.03 s at n = 4096)
    size = f"n={n}, d={d}, width={width}"
    return [
        Row(
            f"NTKRegressor(kernel='empirical').fit, 1-bit, {size}",
            fit_ours,
            fit_numpy,
            f"numpy: dense kernel, then the same float64 solve (in-place Cholesky and "
            f"its check; {solve:.2f} s alone, best of {rounds * calls}, on both sides)",
        ),
        Row(
            f"  of which the empirical NTK alone, {size}",
            kernel_ours,
            kernel_numpy,
            "ntk_gram vs numpy float32 P @ P.T and float64 X @ X.T, same W(0)",
        ),
    ]


# --------------------------------------------------------------------- BinaryMLPRegressor


def binary_mlp_section(quick: bool, rounds: int) -> list[Row]:
    """``BinaryMLPRegressor`` fit (1-bit, full-batch gradient descent) against (a) the same
    algorithm in plain numpy and (b) scikit-learn's ``MLPRegressor`` with full-batch SGD.

    (a) runs the same steps as ours from the same ``W(0)`` and output signs: forward
    ``X sign(W)^T``, ReLU, outputs, residual, the straight-through gradient as two float64
    GEMMs, the update; its losses must equal ours. (b) is scikit-learn's network of the
    same width with ``solver="sgd"``, ``batch_size=n`` and ``max_iter`` steps (it also
    trains biases and the output layer, with momentum), early stopping off.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    n, d, width, steps = (1024, 64, 1024, 50) if quick else (4096, 64, 4096, 200)
    rate, seed = 1.0, 0
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.sin(3.0 * X[:, 0]) + X[:, 1] * X[:, 2]

    ours_model = pb.BinaryMLPRegressor(width=width, max_iter=steps, learning_rate=rate, random_state=seed)

    def ours() -> np.ndarray:
        return ours_model.fit(X, y).loss_curve_

    def numpy_fit() -> np.ndarray:
        W, a, _ = initial_weights(d, width, 1, True, seed)
        a = a[:, 0]
        scale = 1.0 / np.sqrt(width)
        losses = []
        for _ in range(steps):
            pre = X @ np.where(W >= 0, 1.0, -1.0).T
            active = pre >= 0
            np.maximum(pre, 0.0, out=pre)
            residual = scale * (pre @ a) - y
            losses.append(residual @ residual / (2 * n))
            coefficients = active * (residual[:, None] * a[None, :])
            W -= (rate * scale / n) * (coefficients.T @ X)
        pre = np.maximum(X @ np.where(W >= 0, 1.0, -1.0).T, 0.0)
        residual = scale * (pre @ a) - y
        losses.append(residual @ residual / (2 * n))
        return np.asarray(losses)

    sklearn_model = MLPRegressor(
        hidden_layer_sizes=(width,),
        solver="sgd",
        batch_size=n,
        max_iter=steps,
        tol=0.0,
        n_iter_no_change=steps + 1,
        shuffle=False,
        random_state=seed,
    )

    def sklearn_fit() -> MLPRegressor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return sklearn_model.fit(X, y)

    # Same algorithm, same answer, before any timing.
    assert np.allclose(ours(), numpy_fit(), rtol=1e-9, atol=1e-12)
    ours_numpy, numpy_time = side_by_side(ours, numpy_fit, rounds, 1)
    ours_sklearn, sklearn_time = side_by_side(ours, sklearn_fit, rounds, 1)
    assert sklearn_model.n_iter_ == steps
    size = f"width={width}, n={n}, d={d}, {steps} full-batch steps"
    return [
        Row(
            f"BinaryMLPRegressor.fit (1-bit) vs numpy, {size}",
            ours_numpy,
            numpy_time,
            "numpy: the same steps (two float64 GEMMs per step), losses checked equal",
        ),
        Row(
            f"BinaryMLPRegressor.fit (1-bit) vs sklearn MLPRegressor(sgd), {size}",
            ours_sklearn,
            sklearn_time,
            "sklearn: hidden_layer_sizes=(width,), solver='sgd', batch_size=n",
        ),
    ]

# --------------------------------------------------------------------- running

#: name -> section; each returns rows for the table.
SECTIONS: dict[str, Callable[[bool, int], list[Row]]] = {
    "binary_mlp": binary_mlp_section,
    "ntk": ntk_regressor_section,
}




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--rounds", type=int, default=2, help="blocks of calls per side")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="run only these sections")
    args = parser.parse_args()

    print(machine_line() + "\n")
    rows: list[Row] = []
    for name in args.only or SECTIONS:
        started = time.perf_counter()
        rows.extend(SECTIONS[name](args.quick, args.rounds))
        print(f"section {name}: {time.perf_counter() - started:.0f} s, load average now {load_average()}")
    print("\n| case | ours (s) | numpy (s) | numpy / ours | note |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.case} | {row.ours:.3f} | {row.baseline:.3f} | **{row.ratio:.1f}x** | {row.note} |")


if __name__ == "__main__":
    main()
