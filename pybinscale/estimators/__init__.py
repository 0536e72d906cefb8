"""Estimators with a scikit-learn interface: 1-bit networks, their twins, NTK regression."""

from __future__ import annotations

from .binary_mlp import BinaryMLPClassifier, BinaryMLPRegressor, TrainingDivergedError
from .comparison import GeneralizationDifference, generalization_difference

__all__ = [
    "BinaryMLPClassifier",
    "BinaryMLPRegressor",
    "GeneralizationDifference",
    "TrainingDivergedError",
    "generalization_difference",
]
