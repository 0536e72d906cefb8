"""Fused forward and backward passes of the two-layer ReLU network (private).

The estimators call these at every gradient step and in ``predict``. For inputs ``X``
(n x d), effective hidden weights ``V`` (m x d, already quantised by the caller: ``sign(W)``,
``beta * sign(W - alpha)`` or ``W`` itself), output weights ``A`` (m x k) and the output
scale ``s = kappa / sqrt(m)``::

    pre    = X @ V.T                      active = pre >= 0   (sign(0) counts as active)
    F      = s * relu(pre) @ A            R = F - Y
    loss   = sum(R**2) / (2 n)
    grad_hidden = (s / n) * ((R @ A.T) * active).T @ X
    grad_output = (s / n) * relu(pre).T @ R

The Rust core never forms an n x m matrix: it keeps one activation bit per sample and
neuron, and sums in a fixed order, so results are the same bits for every thread count
and SIMD path (see ``rust/network.rs`` for the order). The estimators validate their
inputs; these wrappers only make the arrays contiguous float64, and the core still
rejects wrong shapes with a ``ValueError`` naming the argument.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core
from .kernels import PackedSigns
from ._validation import check_result_fits

__all__ = ["train_step", "network_outputs"]


def _float64(value: Any) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.float64)


def train_step(
    X: Any,
    Y: Any,
    hidden: Any,
    output: Any,
    scale: float,
    output_grad: bool = False,
    binarize: Optional[tuple[float, float]] = None,
) -> tuple[np.ndarray, float, np.ndarray, Optional[np.ndarray]]:
    """Outputs, loss and gradients of the two-layer ReLU network in one fused pass.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs, one per row; ``n >= 1``.
    Y : array_like of shape (n, k)
        Targets.
    hidden : array_like of shape (m, d)
        Effective hidden weights ``V``, one neuron per row; with ``binarize``, the latent
        weights ``W`` they are computed from.
    output : array_like of shape (m, k)
        Output weights ``A``.
    scale : float
        The output scale ``s``, usually ``kappa / sqrt(m)``.
    output_grad : bool, default False
        Also compute the gradient with respect to ``output`` (costs one more pass over
        the hidden layer).
    binarize : (offset, beta) or None, default None
        Quantise ``hidden`` as it is read: ``V = beta * sign(W - offset)`` with
        sign(0) = +1 (``(0, 1)`` is the plain sign, ``(mean(W), mean(|W|))`` BitNet's
        quantiser). The results have the bits of passing that ``V`` itself, without
        writing it at every step; the gradient is still with respect to ``V``.

    Returns
    -------
    F : ndarray of shape (n, k)
        ``s * relu(X @ V.T) @ A``.
    loss : float
        ``sum((F - Y)**2) / (2 n)``.
    grad_hidden : ndarray of shape (m, d)
        Gradient of the loss with respect to ``V``:
        ``(s / n) * (((F - Y) @ A.T) * (X @ V.T >= 0)).T @ X``.
    grad_output : ndarray of shape (m, k) or None
        ``(s / n) * relu(X @ V.T).T @ (F - Y)`` when ``output_grad``, else ``None``.

    Raises
    ------
    ValueError
        If the shapes do not fit together (the message names the argument), an array
        holds NaN or infinity, or ``scale`` is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale._network import train_step
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 1))
    >>> V = np.where(rng.standard_normal((256, 8)) >= 0, 1.0, -1.0)
    >>> A = rng.choice([-1.0, 1.0], size=(256, 1))
    >>> F, loss, grad_V, grad_A = train_step(X, Y, V, A, 1 / np.sqrt(256))
    >>> F.shape, grad_V.shape, grad_A is None
    ((50, 1), (256, 8), True)
    >>> pre = X @ V.T
    >>> bool(np.allclose(F, np.maximum(pre, 0) @ A / 16))
    True
    >>> bool(np.isclose(loss, np.sum((F - Y) ** 2) / 100))
    True
    """
    x, y, v, a = _float64(X), _float64(Y), _float64(hidden), _float64(output)
    if x.ndim == 2 and a.ndim == 2:  # otherwise the core names the argument at fault
        n, d = x.shape
        m, k = a.shape
        # Per block of 64 samples: a word of activation bits per neuron, two padded
        # copies of its rows of X, its residuals.
        blocks = -(-n // 64)
        working = blocks * 8 * (m + 64 * (2 * (d + 8) + k))
        check_result_fits("train_step", (m, d + 2 * k), np.float64, working)
    if binarize is not None:
        offset, beta = binarize
        binarize = (float(offset), float(beta))
    return _core.train_step(x, y, v, a, float(scale), bool(output_grad), binarize)


def network_outputs(
    X: Any,
    hidden: Any,
    output: Any,
    scale: float,
    hidden_scale: float = 1.0,
    binarize: Optional[tuple[float, float]] = None,
) -> np.ndarray:
    """Outputs of the two-layer ReLU network, computed in blocks (the predict path).

    ``F = scale * relu(hidden_scale * X @ V.T) @ output`` where ``V`` is ``hidden``, or
    the ±1 matrix that packed signs stand for. No n x m matrix is formed, so wide
    networks predict on many rows in little memory. With packed signs and
    ``hidden_scale=1`` the result has the same bits as :func:`train_step`'s ``F`` with
    ``hidden = unpack_signs(P, dtype=np.float64)``.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs, one per row.
    hidden : array_like of shape (m, d) or PackedSigns of shape (m, d)
        Effective hidden weights, or 1-bit weights as packed signs.
    output : array_like of shape (m, k)
        Output weights.
    scale : float
        The output scale, usually ``kappa / sqrt(m)``.
    hidden_scale : float, default 1.0
        Multiplies every pre-activation (e.g. BitNet's ``beta`` with packed signs).
    binarize : (offset, beta) or None, default None
        With a dense ``hidden``, quantise it as it is read, as in :func:`train_step`:
        the outputs have the bits of :func:`train_step`'s with the same ``binarize``.

    Returns
    -------
    ndarray of shape (n, k)

    Raises
    ------
    ValueError
        If the shapes do not fit together (the message names the argument), an array
        holds NaN or infinity, or a scale is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import pack_signs
    >>> from pybinscale._network import network_outputs
    >>> rng = np.random.default_rng(0)
    >>> X, W = rng.standard_normal((1000, 16)), rng.standard_normal((4096, 16))
    >>> A = rng.choice([-1.0, 1.0], size=(4096, 2))
    >>> F = network_outputs(X, pack_signs(W), A, 1 / 64)
    >>> V = np.where(W >= 0, 1.0, -1.0)
    >>> F.shape, bool(np.allclose(F, np.maximum(X @ V.T, 0) @ A / 64))
    ((1000, 2), True)
    >>> bool(np.array_equal(F, network_outputs(X, V, A, 1 / 64)))
    True
    """
    x, a = _float64(X), _float64(output)
    if x.ndim == 2 and a.ndim == 2:
        check_result_fits("network_outputs", (x.shape[0], a.shape[1]), np.float64)
    if isinstance(hidden, PackedSigns):
        if binarize is not None:
            raise ValueError(
                "binarize: only applies to dense hidden weights; packed signs are binary already"
            )
        return _core.packed_network_outputs(
            x, hidden.words, hidden.shape[1], a, float(scale), float(hidden_scale)
        )
    if binarize is not None:
        offset, beta = binarize
        binarize = (float(offset), float(beta))
    return _core.network_outputs(
        x, _float64(hidden), a, float(scale), float(hidden_scale), binarize
    )
