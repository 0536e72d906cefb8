"""Type stub for the compiled Rust module (private; use pybinscale.kernels)."""

from typing import Optional

import numpy as np
import numpy.typing as npt

WORD_BITS: int
ROW_ALIGN_WORDS: int
MAX_ACTIVATION_BITS: int

_Real = npt.NDArray[np.floating]

def pack_signs(a: _Real, name: str) -> npt.NDArray[np.uint64]: ...
def check_packed(words: npt.NDArray[np.uint64], cols: int, name: str) -> None: ...
def unpack_signs(words: npt.NDArray[np.uint64], cols: int) -> npt.NDArray[np.int8]: ...
def sign_matmul(
    a_words: npt.NDArray[np.uint64], b_words: npt.NDArray[np.uint64], cols: int
) -> npt.NDArray[np.int32]: ...
def coactivation_counts(
    p_words: npt.NDArray[np.uint64], q_words: Optional[npt.NDArray[np.uint64]], cols: int
) -> npt.NDArray[np.int32]: ...
def quantize_activations(
    x: _Real, bits: int
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]: ...
def quantized_matmul(x: _Real, w_words: npt.NDArray[np.uint64], cols: int, bits: int) -> _Real: ...
def activation_patterns(x: _Real, w: _Real, quantized: bool) -> npt.NDArray[np.uint64]: ...
def ntk_gram(
    x: _Real, w: _Real, z: Optional[_Real], kappa: float, quantized: bool
) -> npt.NDArray[np.float64]: ...
def ntk_limit(
    x: _Real, z: Optional[_Real], kappa: float, output_layer: bool
) -> npt.NDArray[np.float64]: ...
def simd_path() -> str: ...
def supported_simd_paths() -> list[str]: ...
def set_simd_path(path: Optional[str] = None) -> None: ...
def set_num_threads(num_threads: int) -> None: ...
def get_num_threads() -> int: ...
def train_step(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    hidden: npt.NDArray[np.float64],
    output: npt.NDArray[np.float64],
    scale: float,
    output_grad: bool,
    binarize: Optional[tuple[float, float]] = None,
) -> tuple[
    npt.NDArray[np.float64],
    float,
    npt.NDArray[np.float64],
    Optional[npt.NDArray[np.float64]],
]: ...
def network_outputs(
    x: npt.NDArray[np.float64],
    hidden: npt.NDArray[np.float64],
    output: npt.NDArray[np.float64],
    scale: float,
    hidden_scale: float,
    binarize: Optional[tuple[float, float]] = None,
) -> npt.NDArray[np.float64]: ...
def packed_network_outputs(
    x: npt.NDArray[np.float64],
    hidden_words: npt.NDArray[np.uint64],
    hidden_cols: int,
    output: npt.NDArray[np.float64],
    scale: float,
    hidden_scale: float,
) -> npt.NDArray[np.float64]: ...
