"""Estimators with a scikit-learn interface: 1-bit networks, their twins, NTK regression."""

from __future__ import annotations

from .binary_mlp import BinaryMLPClassifier, BinaryMLPRegressor, TrainingDivergedError
from .comparison import GeneralizationDifference, generalization_difference
from .ntk_kernel import NTKKernel
from .ntk_regressor import IllConditionedKernelWarning, NTKRegressor

__all__ = [
    "BinaryMLPClassifier",
    "BinaryMLPRegressor",
    "GeneralizationDifference",
    "IllConditionedKernelWarning",
    "NTKKernel",
    "NTKRegressor",
    "TrainingDivergedError",
    "generalization_difference",
]
