"""Forward and backward passes of the two-layer network (numpy stand-in for the Rust kernel)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .kernels import PackedSigns


def train_step(
    X: np.ndarray,
    Y: np.ndarray,
    hidden: np.ndarray,
    output: np.ndarray,
    scale: float,
    output_grad: bool = False,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray | None]:
    pre = X @ hidden.T
    act = np.maximum(pre, 0.0)
    F = scale * (act @ output)
    R = F - Y
    n = X.shape[0]
    loss = float(np.sum(R * R) / (2 * n))
    coef = (R @ output.T) * (pre >= 0)
    grad_hidden = (scale / n) * (coef.T @ X)
    grad_output = (scale / n) * (act.T @ R) if output_grad else None
    return F, loss, grad_hidden, grad_output


def network_outputs(
    X: np.ndarray, hidden: Any, output: np.ndarray, scale: float, hidden_scale: float = 1.0
) -> np.ndarray:
    if isinstance(hidden, PackedSigns):
        hidden = hidden.unpack(np.float64) * hidden_scale
    return scale * (np.maximum(X @ hidden.T, 0.0) @ output)
