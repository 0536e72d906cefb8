"""Comparing the outputs of two fitted models: the theory's generalisation difference."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["GeneralizationDifference", "generalization_difference"]


class GeneralizationDifference(NamedTuple):
    """Mean and maximum of ``|f_a(x) - f_b(x)|`` over the rows of ``X``.

    Floats for single-output models, arrays of shape (n_outputs,) otherwise.
    """

    mean: Any
    max: Any


def _outputs(model: Any, X: Any, name: str) -> np.ndarray:
    if not hasattr(model, "predict"):
        raise TypeError(f"{name}: expected a fitted estimator with predict; got {type(model)!r}")
    check_is_fitted(model)
    # Networks compare their raw outputs (a classifier's per-class scores, not labels).
    raw = getattr(model, "_raw_outputs", None)
    outputs = np.asarray(raw(X) if raw is not None else model.predict(X), dtype=np.float64)
    return outputs.reshape(len(outputs), -1)


def generalization_difference(model_a: Any, model_b: Any, X: Any) -> GeneralizationDifference:
    """How far two fitted models' outputs are apart on ``X`` (DESIGN section 1, item 3).

    For a 1-bit network and its full-precision twin this is the theory's generalisation
    difference ``|f_q(x) - f(x)|``; any two fitted regressors with the same outputs can
    be compared (e.g. a network and :class:`pybinscale.NTKRegressor`). Networks are
    compared on their raw outputs (for classifiers, every class score).

    Parameters
    ----------
    model_a, model_b : fitted estimators
        Models with the same number of features and outputs.
    X : array_like of shape (n_samples, n_features)
        Points to compare on, usually held out.

    Returns
    -------
    GeneralizationDifference
        ``mean`` and ``max`` of the absolute difference over rows: floats for one
        output, arrays of shape (n_outputs,) for several.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import BinaryMLPRegressor, generalization_difference
    >>> rng = np.random.default_rng(0)
    >>> X, X_test = rng.standard_normal((80, 6)), rng.standard_normal((40, 6))
    >>> y = X[:, 0] * X[:, 1]
    >>> twins = [BinaryMLPRegressor(width=256, precision=p, max_iter=100, random_state=1)
    ...          for p in ("1bit", "full")]
    >>> one_bit, full = [model.fit(X, y) for model in twins]
    >>> difference = generalization_difference(one_bit, full, X_test)
    >>> bool(0 <= difference.mean <= difference.max)
    True
    """
    if np.shape(X)[:1] == (0,):  # before predict, whose own message would not name X
        raise ValueError("X: has no rows; the difference needs at least one point")
    outputs_a = _outputs(model_a, X, "model_a")
    outputs_b = _outputs(model_b, X, "model_b")
    if outputs_a.shape != outputs_b.shape:
        raise ValueError(
            f"model_b: has {outputs_b.shape[1]} outputs but model_a has {outputs_a.shape[1]}; "
            "compare models fitted to the same targets"
        )
    gap = np.abs(outputs_a - outputs_b)
    mean, peak = gap.mean(axis=0), gap.max(axis=0)
    if gap.shape[1] == 1:
        return GeneralizationDifference(float(mean[0]), float(peak[0]))
    return GeneralizationDifference(mean, peak)
