"""Input preprocessing shared by the network and kernel estimators."""

from __future__ import annotations

import numpy as np

__all__ = ["INPUT_NORMS", "normalize_inputs"]

#: Values the ``input_norm`` parameter accepts.
INPUT_NORMS = ("l2", None)


def normalize_inputs(X: np.ndarray, input_norm: str | None) -> np.ndarray:
    """Return ``X`` with unit-norm rows (``"l2"``) or unchanged (``None``).

    The theory assumes ``||x_i|| = 1``. Rows of zeros have no direction and stay zero
    (their network output is 0 and their kernel rows are 0), as in
    :func:`sklearn.preprocessing.normalize`.

    Examples
    --------
    >>> normalize_inputs(np.array([[3.0, 4.0], [0.0, 0.0]]), "l2")
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    if input_norm is None:
        return X
    # Scale by the largest entry first so that squaring cannot overflow or underflow.
    peak = np.max(np.abs(X), axis=1, keepdims=True)
    safe_peak = np.where(peak > 0, peak, 1.0)
    scaled = X / safe_peak
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)
    return scaled / np.where(norms > 0, norms, 1.0)
