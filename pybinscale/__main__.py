"""``python -m pybinscale``: a one-minute tour of the kernels on this machine.

It checks the exactness of the 1-bit products against numpy, times them side by side,
and shows the empirical NTK approaching its infinite-width limit as the width grows.
"""

from __future__ import annotations

import time

import numpy as np

import pybinscale as pb


def _best_time(call, repeats: int = 4) -> float:
    """Best of back-to-back calls, after OpenBLAS's threads (which spin for about 0.1 s
    after numpy returns) have gone idle; the first call warms the cores up."""
    time.sleep(0.3)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"pybinscale {pb.__version__}: SIMD path {pb.simd_path()}, {pb.get_num_threads()} threads")

    size = 2048
    A = rng.standard_normal((size, size)).astype(np.float32)
    B = rng.standard_normal((size, size)).astype(np.float32)
    signs_a, signs_b = np.where(A >= 0, 1.0, -1.0).astype(np.float32), np.where(B >= 0, 1.0, -1.0).astype(np.float32)
    exact = np.array_equal(pb.sign_matmul(A, B), (signs_a @ signs_b.T).astype(np.int32))
    ours = _best_time(lambda: pb.sign_matmul(A, B))
    numpy = _best_time(lambda: signs_a @ signs_b.T)
    print(f"\n1-bit product sign(A) @ sign(B).T, {size}^3, packing included")
    print(f"  equal to numpy: {exact}   ours {ours * 1e3:.1f} ms, numpy float32 {numpy * 1e3:.1f} ms: {numpy / ours:.1f}x")
    print(f"  storage: {pb.pack_signs(A).nbytes / 2**20:.2f} MiB packed vs {A.nbytes / 2**20:.1f} MiB float32")

    X = rng.standard_normal((64, 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    limit = pb.ntk_limit(X)
    print("\nEmpirical NTK of Gaussian weights against its infinite-width limit (arc-cosine kernel)")
    print("  width     ||H - H*|| / ||H*||")
    widths = [2**k for k in range(8, 18, 3)]
    errors = []
    for width in widths:
        H = pb.ntk_gram(X, rng.standard_normal((width, 16)), quantized=False)
        errors.append(np.linalg.norm(H - limit) / np.linalg.norm(limit))
        print(f"  {width:>7}   {errors[-1]:.4f}")
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    print(f"  fitted exponent {slope:.2f} (theory: -0.5)")


if __name__ == "__main__":
    main()
