"""The random initialisation every network-based estimator shares.

One function draws the initial latent weights ``W(0)`` and output signs ``a`` so that
estimators that differ only in precision (the twins of DESIGN section 1) and
``NTKRegressor(kernel="empirical")`` with the same ``random_state`` see the very same
network. The order of the draws is part of the contract: changing it changes every
seeded result the package has ever reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["initial_weights"]


def initial_weights(
    n_features: int,
    width: int,
    n_outputs: int,
    symmetric: bool,
    random_state: Any,
) -> tuple[np.ndarray, np.ndarray, np.random.RandomState]:
    """Draw ``W(0) ~ N(0, I_d)`` per neuron and output signs ``a ~ uniform{-1, +1}``.

    With ``symmetric``, neurons come in adjacent pairs ``(2j, 2j + 1)`` with equal
    hidden weights and opposite output signs, so that the network's output is exactly
    0 at initialisation for every precision (paired neurons quantise identically).
    Only ``width // 2`` independent neurons are drawn then; ``width`` must be even.

    Parameters
    ----------
    n_features : int
        Input dimension ``d``.
    width : int
        Number of hidden neurons ``m``.
    n_outputs : int
        Number of output columns ``k``.
    symmetric : bool
        Draw neurons in mirrored pairs.
    random_state : int, RandomState instance or None
        Seed, as in scikit-learn.

    Returns
    -------
    hidden : ndarray of shape (width, n_features), float64
    output_signs : ndarray of shape (width, n_outputs), float64 with values -1 and +1
    rng : numpy.random.RandomState
        The generator after the draws; callers continue with it (e.g. mini-batch
        order), so that the twins also see the data in the same order.

    Examples
    --------
    >>> W, a, _ = initial_weights(3, 4, 1, symmetric=True, random_state=0)
    >>> bool((W[0] == W[1]).all() and (a[0] == -a[1]).all())
    True
    """
    rng = check_random_state(random_state)
    if symmetric:
        if width % 2:
            raise ValueError(
                f"width: symmetric_init pairs neurons, so width must be even; got {width}"
            )
        half = width // 2
        hidden_half = rng.standard_normal((half, n_features))
        signs_half = np.where(rng.randint(0, 2, size=(half, n_outputs)) == 1, 1.0, -1.0)
        hidden = np.repeat(hidden_half, 2, axis=0)
        output_signs = np.empty((width, n_outputs))
        output_signs[0::2] = signs_half
        output_signs[1::2] = -signs_half
    else:
        hidden = rng.standard_normal((width, n_features))
        output_signs = np.where(rng.randint(0, 2, size=(width, n_outputs)) == 1, 1.0, -1.0)
    return np.ascontiguousarray(hidden), output_signs, rng
