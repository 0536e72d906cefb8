"""Side-by-side timings of the bit kernels against numpy, printed as ratios.

Each case runs ours and the numpy baseline in the same process, alternating blocks of
back-to-back calls, and reports the best time of each (noise on a shared machine
only ever adds time) and the ratio numpy / ours. Run from the repository root:

    python benchmarks/bench_kernels.py            # the full sizes recorded in BENCHMARKS.md
    python benchmarks/bench_kernels.py --quick    # small sizes, a smoke test
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pybinscale as pb
from _timing import Row, machine_line, side_by_side


def signs_f32(A: np.ndarray) -> np.ndarray:
    return np.where(A >= 0, np.float32(1), np.float32(-1))


def bench_sign_matmul(size: int, repeats: int, rng: np.random.Generator) -> Row:
    A = rng.standard_normal((size, size), dtype=np.float32)
    B = rng.standard_normal((size, size), dtype=np.float32)
    SA, SB = signs_f32(A), signs_f32(B)
    assert np.array_equal(pb.sign_matmul(A, B), (SA @ SB.T).astype(np.int32))
    ours, numpy = side_by_side(lambda: pb.sign_matmul(A, B), lambda: SA @ SB.T, repeats)
    gflops = 2 * size**3 / numpy / 1e9
    bitops = size**3 / ours / 1e12
    return Row(
        f"sign_matmul {size}x{size}x{size}, packing included",
        ours,
        numpy,
        f"numpy {gflops:.0f} GFLOP/s; ours {bitops:.2f} T bit-products/s",
    )


def kernel_peak(rng: np.random.Generator) -> float:
    """Bit-products per second of the XNOR-popcount tile kernel at its best: 96 rows of
    2**16 bits (768 KiB, kept in L2) against 8,192 rows streamed past them, so that
    nothing but the kernel's own instructions (XOR, VPOPCNTQ and an add per 512 bits of
    each pair) limits the rate. Best of back-to-back calls, so the cores are awake."""
    P = pb.pack_signs(rng.standard_normal((8192, 2**16), dtype=np.float32))
    Q = pb.pack_signs(rng.standard_normal((96, 2**16), dtype=np.float32))
    best = float("inf")
    for _ in range(8):
        start = time.perf_counter()
        pb.sign_matmul(P, Q)
        best = min(best, time.perf_counter() - start)
    return 8192 * 96 * 2**16 / best


def bench_coactivation(n: int, m: int, repeats: int, rng: np.random.Generator) -> Row:
    ones = rng.random((n, m)) < 0.5
    packed = _pack_bool(ones)
    dense = ones.astype(np.float32)
    del ones
    ours, numpy = side_by_side(lambda: pb.coactivation_counts(packed), lambda: dense @ dense.T, repeats)
    return Row(
        f"AND-popcount Gram, n={n} samples x m={m} neurons, full symmetric output",
        ours,
        numpy,
        f"numpy float32 P @ P.T on the 0/1 matrix; {n * n * m / 2 / ours / 1e12:.2f} T bit-products/s (one triangle)",
    )


def _pack_bool(ones: np.ndarray) -> pb.PackedSigns:
    return pb.pack_signs(np.where(ones, np.float32(1), np.float32(-1)))


def bench_ntk_gram(n: int, m: int, d: int, repeats: int, rng: np.random.Generator) -> Row:
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    W = rng.standard_normal((m, d))

    def plain_numpy() -> np.ndarray:
        signs = np.where(W >= 0, 1.0, -1.0)
        patterns = (X @ signs.T >= 0).astype(np.float32)
        counts = patterns @ patterns.T
        return (1.0 / m) * (X @ X.T) * counts

    reference = plain_numpy()
    assert np.allclose(pb.ntk_gram(X, W), reference, rtol=1e-6, atol=1e-9)
    del reference
    ours, numpy = side_by_side(lambda: pb.ntk_gram(X, W), plain_numpy, repeats)
    return Row(f"ntk_gram end to end, n={n}, m={m}, d={d}", ours, numpy, "numpy: patterns, float32 P @ P.T, X @ X.T, product")


def bench_quantized(size: int, bits: int, repeats: int, rng: np.random.Generator) -> Row:
    X = rng.standard_normal((size, size), dtype=np.float32)
    W = rng.standard_normal((size, size), dtype=np.float32)
    ours, numpy = side_by_side(lambda: pb.quantized_matmul(X, W, bits), lambda: X @ W.T, repeats)
    return Row(f"quantized_matmul {size}^3, {bits}-bit activations", ours, numpy, "numpy float32 X @ W.T, same shape")


def path_rows(size: int, repeats: int, rng: np.random.Generator) -> list[str]:
    """sign_matmul and ntk_gram on every SIMD path this CPU supports, beside numpy."""
    A = rng.standard_normal((size, size), dtype=np.float32)
    B = rng.standard_normal((size, size), dtype=np.float32)
    SA, SB = signs_f32(A), signs_f32(B)
    X = rng.standard_normal((size // 2, 32))
    W = rng.standard_normal((4 * size, 32))
    rows = []
    try:
        for path in pb.supported_simd_paths():
            pb.set_simd_path(path)
            ours, numpy = side_by_side(lambda: pb.sign_matmul(A, B), lambda: SA @ SB.T, repeats)
            gram = side_by_side(lambda: pb.ntk_gram(X, W), lambda: None, repeats)[0]
            rows.append(f"| {path} | {ours:.4f} | {numpy / ours:.1f}x | {gram:.4f} |")
    finally:
        pb.set_simd_path(None)
    return rows



def storage_rows(size: int, rng: np.random.Generator) -> list[str]:
    rows = []
    for cols in (size, size + 1, 100):
        A = rng.standard_normal((64, cols), dtype=np.float32)
        packed = pb.pack_signs(A)
        rows.append(f"| 64 x {cols} | {A.nbytes} | {packed.nbytes} | {A.nbytes / packed.nbytes:.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--rounds", type=int, default=2, help="blocks of calls per side")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    size, n_gram, m_gram = (1024, 1024, 2048) if args.quick else (4096, 8192, 16384)

    print(machine_line() + "\n")
    rows = [bench_sign_matmul(size, args.rounds, rng)]
    rows.append(bench_coactivation(n_gram, m_gram, args.rounds, rng))
    rows.append(bench_ntk_gram(n_gram, m_gram, 32, args.rounds, rng))
    rows.extend(bench_quantized(size, bits, args.rounds, rng) for bits in (1, 2, 4, 8))

    peak = kernel_peak(rng)
    numpy_flops = 2 * size**3 / rows[0].baseline
    print(
        f"kernel peak: {peak / 1e12:.2f} T bit-products/s (XNOR-popcount, in cache); numpy float32 in "
        f"this run: {numpy_flops / 1e9:.0f} GFLOP/s, i.e. {numpy_flops / 2e9:.0f} G multiply-adds/s; "
        f"so no XNOR-popcount product can beat numpy by more than {peak / (numpy_flops / 2):.1f}x here\n"
    )
    print("| case | ours (s) | numpy (s) | numpy / ours | note |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.case} | {row.ours:.4f} | {row.baseline:.4f} | **{row.ratio:.1f}x** | {row.note} |")
    path_size = 512 if args.quick else 2048
    print(f"\n| SIMD path | sign_matmul {path_size}^3 (s) | numpy / ours | ntk_gram n={path_size // 2}, m={4 * path_size}, d=32 (s) |")
    print("|---|---|---|---|")
    for line in path_rows(path_size, args.rounds, rng):
        print(line)
    print("\n| packed storage | float32 bytes | packed bytes | ratio |")
    print("|---|---|---|---|")
    for line in storage_rows(size, rng):
        print(line)


if __name__ == "__main__":
    main()
