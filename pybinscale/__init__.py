"""pybinscale: the scaling theory of 1-bit neural networks, made runnable.

The package has three layers. :mod:`pybinscale.kernels` exposes exact SIMD bit kernels
(packed sign matrices, XNOR/AND-popcount products, NTK Gram matrices) from a Rust core;
the estimators fit 1-bit networks, NTK kernel regression and scaling laws
(:class:`ScalingLaw`) with a scikit-learn interface; the command ``pybinscale run`` runs
the whole study.
"""

from __future__ import annotations

from ._runtime import (
    get_num_threads,
    set_num_threads,
    set_simd_path,
    simd_path,
    supported_simd_paths,
)
from .estimators import (
    BinaryMLPClassifier,
    BinaryMLPRegressor,
    GeneralizationDifference,
    IllConditionedKernelWarning,
    NTKKernel,
    NTKRegressor,
    TrainingDivergedError,
    generalization_difference,
)
from .kernels import (
    PackedSigns,
    ResultTooLargeError,
    activation_patterns,
    coactivation_counts,
    ntk_gram,
    ntk_limit,
    pack_signs,
    quantize_activations,
    quantized_matmul,
    sign_matmul,
    unpack_signs,
)
from .scaling import ScalingLaw, ScalingSweep

__version__ = "0.1.0"

__all__ = [
    "BinaryMLPClassifier",
    "BinaryMLPRegressor",
    "GeneralizationDifference",
    "IllConditionedKernelWarning",
    "NTKKernel",
    "NTKRegressor",
    "TrainingDivergedError",
    "generalization_difference",
    "PackedSigns",
    "ResultTooLargeError",
    "ScalingLaw",
    "ScalingSweep",
    "activation_patterns",
    "coactivation_counts",
    "get_num_threads",
    "ntk_gram",
    "ntk_limit",
    "pack_signs",
    "quantize_activations",
    "quantized_matmul",
    "set_num_threads",
    "set_simd_path",
    "sign_matmul",
    "simd_path",
    "supported_simd_paths",
    "unpack_signs",
]
