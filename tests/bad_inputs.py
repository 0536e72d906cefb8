"""A battery of bad inputs for every public kernel, run in a child process by
test_bad_inputs.py so that a crash (Rust panic, abort, segfault) fails the test instead
of the test runner. Run as a script it prints one JSON line per case."""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

import pybinscale as pb

OK = np.ones((3, 4))
HUGE_ROWS = np.zeros((2**21, 1))  # 2**21 x 2**21 results need 16 TiB and more


def with_value(value: float, shape: tuple[int, int] = (3, 4), at: tuple[int, int] = (1, 2)) -> np.ndarray:
    array = np.ones(shape)
    array[at] = value
    return array


def dirty_words() -> np.ndarray:
    words = pb.pack_signs(OK).words.copy()
    words[0, 0] |= np.uint64(1) << np.uint64(40)
    return words


# (case id, call, expected exception type, words the message must contain)
Case = tuple[str, Callable[[], Any], type, list[str]]
CASES: list[Case] = []


def case(name: str, call: Callable[[], Any], expected: type, *words: str) -> None:
    CASES.append((name, call, expected, list(words)))


for bad_name, bad in [("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)]:
    case(f"pack_signs {bad_name}", lambda bad=bad: pb.pack_signs(with_value(bad)), ValueError, "A", "NaN or infinity", "row 1, column 2")
    case(f"pack_signs float32 {bad_name}", lambda bad=bad: pb.pack_signs(with_value(bad).astype(np.float32)), ValueError, "A", "row 1, column 2")
    case(f"sign_matmul {bad_name} in A", lambda bad=bad: pb.sign_matmul(with_value(bad), OK), ValueError, "A", "NaN")
    case(f"sign_matmul {bad_name} in B", lambda bad=bad: pb.sign_matmul(OK, with_value(bad)), ValueError, "B", "NaN")
    case(f"quantize {bad_name}", lambda bad=bad: pb.quantize_activations(with_value(bad)), ValueError, "X", "NaN")
    case(f"quantized_matmul {bad_name} in X", lambda bad=bad: pb.quantized_matmul(with_value(bad), OK), ValueError, "X", "NaN")
    case(f"quantized_matmul {bad_name} in W", lambda bad=bad: pb.quantized_matmul(OK, with_value(bad)), ValueError, "W", "NaN")
    case(f"activation_patterns {bad_name} in X", lambda bad=bad: pb.activation_patterns(with_value(bad), OK), ValueError, "X", "NaN")
    case(f"activation_patterns {bad_name} in W", lambda bad=bad: pb.activation_patterns(OK, with_value(bad)), ValueError, "W", "NaN")
    case(f"ntk_gram {bad_name} in X", lambda bad=bad: pb.ntk_gram(with_value(bad), OK), ValueError, "X", "NaN")
    case(f"ntk_gram {bad_name} in W", lambda bad=bad: pb.ntk_gram(OK, with_value(bad)), ValueError, "W", "NaN")
    case(f"ntk_gram {bad_name} in Z", lambda bad=bad: pb.ntk_gram(OK, OK, with_value(bad)), ValueError, "Z", "NaN")
    case(f"ntk_limit {bad_name} in X", lambda bad=bad: pb.ntk_limit(with_value(bad)), ValueError, "X", "NaN")
    case(f"ntk_limit {bad_name} in Z", lambda bad=bad: pb.ntk_limit(OK, with_value(bad)), ValueError, "Z", "NaN")
    case(f"ntk_gram kappa {bad_name}", lambda bad=bad: pb.ntk_gram(OK, OK, kappa=bad), ValueError, "kappa")

# Mismatched inner dimensions.
ROWS_OF_5 = np.ones((2, 5))
case("sign_matmul inner", lambda: pb.sign_matmul(OK, ROWS_OF_5), ValueError, "A", "B", "4", "5")
case("sign_matmul packed inner", lambda: pb.sign_matmul(pb.pack_signs(OK), pb.pack_signs(ROWS_OF_5)), ValueError, "A", "B")
case("quantized_matmul inner", lambda: pb.quantized_matmul(OK, ROWS_OF_5), ValueError, "X", "W")
case("activation_patterns inner", lambda: pb.activation_patterns(OK, ROWS_OF_5), ValueError, "X", "W")
case("coactivation_counts inner", lambda: pb.coactivation_counts(OK > 0, ROWS_OF_5 > 0), ValueError, "P", "Q")
case("ntk_gram W inner", lambda: pb.ntk_gram(OK, ROWS_OF_5), ValueError, "X", "W")
case("ntk_gram Z inner", lambda: pb.ntk_gram(OK, OK, ROWS_OF_5), ValueError, "X", "Z")
case("ntk_limit Z inner", lambda: pb.ntk_limit(OK, ROWS_OF_5), ValueError, "X", "Z")

# Wrong number of dimensions.
for label, shaped in [("1-D", np.ones(4)), ("3-D", np.ones((2, 2, 2))), ("scalar", np.float64(1.0))]:
    case(f"pack_signs {label}", lambda shaped=shaped: pb.pack_signs(shaped), ValueError, "A", "2-D")
    case(f"sign_matmul {label} B", lambda shaped=shaped: pb.sign_matmul(OK, shaped), ValueError, "B", "2-D")
    case(f"quantized_matmul {label} X", lambda shaped=shaped: pb.quantized_matmul(shaped, OK), ValueError, "X", "2-D")
    case(f"ntk_gram {label} W", lambda shaped=shaped: pb.ntk_gram(OK, shaped), ValueError, "W", "2-D")
    case(f"ntk_limit {label} X", lambda shaped=shaped: pb.ntk_limit(shaped), ValueError, "X", "2-D")
    case(f"coactivation_counts {label}", lambda shaped=shaped: pb.coactivation_counts(shaped > 0), ValueError, "P", "2-D")

# Unsupported dtypes and types.
for label, value in [
    ("object", np.array([[1.0, "a"]], dtype=object)),
    ("complex", np.ones((2, 2), dtype=complex)),
    ("strings", np.array([["a", "b"]])),
    ("None", None),
    ("dict", {"a": 1}),
]:
    case(f"pack_signs {label}", lambda value=value: pb.pack_signs(value), TypeError, "A")
    case(f"sign_matmul {label} A", lambda value=value: pb.sign_matmul(value, OK), TypeError, "A")
    case(f"quantize {label}", lambda value=value: pb.quantize_activations(value), TypeError, "X")
    case(f"activation_patterns {label} W", lambda value=value: pb.activation_patterns(OK, value), TypeError, "W")
    if value is not None:  # Z=None is the documented default (Z = X)
        case(f"ntk_gram {label} Z", lambda value=value: pb.ntk_gram(OK, OK, value), TypeError, "Z")
    case(f"ntk_limit {label}", lambda value=value: pb.ntk_limit(value), TypeError, "X")
case("coactivation_counts floats", lambda: pb.coactivation_counts(OK), TypeError, "P", "PackedSigns")
case("unpack_signs array", lambda: pb.unpack_signs(OK), TypeError, "P", "PackedSigns")
case("sparse", lambda: pb.pack_signs(__import__("scipy.sparse").sparse.csr_matrix(OK)), TypeError, "A", "sparse")

# Empty inputs where the result is undefined.
case("quantize no columns", lambda: pb.quantize_activations(np.ones((3, 0))), ValueError, "X", "no columns")
case("quantized_matmul no columns", lambda: pb.quantized_matmul(np.ones((3, 0)), np.ones((2, 0))), ValueError, "X", "no columns")
case("ntk_gram no neurons", lambda: pb.ntk_gram(OK, np.ones((0, 4))), ValueError, "W", "no rows")
case("ntk_gram no features", lambda: pb.ntk_gram(np.ones((3, 0)), np.ones((2, 0))), ValueError, "X", "no features")
case("ntk_limit no features", lambda: pb.ntk_limit(np.ones((3, 0))), ValueError, "X", "no features")

# activation_bits out of range or of the wrong type.
for bits, expected in [(0, ValueError), (9, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError), ("8", TypeError)]:
    case(f"quantized_matmul bits={bits!r}", lambda bits=bits: pb.quantized_matmul(OK, OK, activation_bits=bits), expected, "activation_bits")
    case(f"quantize bits={bits!r}", lambda bits=bits: pb.quantize_activations(OK, activation_bits=bits), expected, "activation_bits")

# Other scalar arguments.
case("kappa zero", lambda: pb.ntk_gram(OK, OK, kappa=0.0), ValueError, "kappa")
case("kappa negative", lambda: pb.ntk_limit(OK, kappa=-1.0), ValueError, "kappa")
case("kappa string", lambda: pb.ntk_limit(OK, kappa="1"), TypeError, "kappa")
case("quantized string", lambda: pb.ntk_gram(OK, OK, quantized="yes"), TypeError, "quantized")
case("output_layer int", lambda: pb.ntk_limit(OK, output_layer=2), TypeError, "output_layer")
case("threads zero", lambda: pb.set_num_threads(0), ValueError, "num_threads")
case("threads float", lambda: pb.set_num_threads(1.5), TypeError, "num_threads")
case("simd unknown", lambda: pb.set_simd_path("neon"), ValueError, "path", "neon")

# Packed words that break the layout.
case("PackedSigns dirty padding", lambda: pb.PackedSigns(dirty_words(), 4), ValueError, "words", "padding")
case("PackedSigns dtype", lambda: pb.PackedSigns(np.zeros((2, 8)), 4), TypeError, "words", "uint64")
case("PackedSigns stride", lambda: pb.PackedSigns(np.zeros((2, 5), dtype=np.uint64), 4), ValueError, "words", "stride")
case("PackedSigns too narrow", lambda: pb.PackedSigns(np.zeros((2, 8), dtype=np.uint64), 513), ValueError, "words", "513")
case("PackedSigns negative cols", lambda: pb.PackedSigns(np.zeros((2, 8), dtype=np.uint64), -1), ValueError, "n_cols")
case("PackedSigns 1-D", lambda: pb.PackedSigns(np.zeros(8, dtype=np.uint64), 4), ValueError, "words", "2-D")

# Results that cannot fit in memory, refused before anything is allocated.
case("sign_matmul too large", lambda: pb.sign_matmul(HUGE_ROWS, HUGE_ROWS), ValueError, "sign_matmul", "TiB")
case("quantized_matmul too large", lambda: pb.quantized_matmul(HUGE_ROWS + 1, HUGE_ROWS), ValueError, "quantized_matmul", "TiB")
case("coactivation_counts too large", lambda: pb.coactivation_counts(HUGE_ROWS == 0), ValueError, "coactivation_counts", "TiB")
case("ntk_gram too large", lambda: pb.ntk_gram(HUGE_ROWS + 1, np.ones((1, 1))), ValueError, "ntk_gram", "TiB")
case("ntk_limit too large", lambda: pb.ntk_limit(HUGE_ROWS + 1), ValueError, "ntk_limit", "TiB")


def run_case(call: Callable[[], Any], expected: type, words: list[str]) -> dict[str, Any]:
    try:
        call()
    except BaseException as error:  # noqa: BLE001 - a panic is a BaseException
        message = str(error)
        missing = [w for w in words if w not in message]
        ok = isinstance(error, expected) and not missing
        return {"ok": ok, "raised": type(error).__name__, "message": message, "missing": missing}
    return {"ok": False, "raised": None, "message": "no exception", "missing": words}


if __name__ == "__main__":
    for name, call, expected, words in CASES:
        print(json.dumps({"case": name, "expected": expected.__name__, **run_case(call, expected, words)}), flush=True)
