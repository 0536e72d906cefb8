"""Counting the arithmetic of training, so that compute is a measured quantity.

Scaling laws in compute need C for every fitted model. Wall time depends on the machine;
the count of arithmetic operations does not. The count follows the network's formulas
(DESIGN section 1) term by term: one multiply-add counts as two operations, a
comparison or a sign as one.
"""

from __future__ import annotations

__all__ = ["training_step_operations"]


def training_step_operations(
    batch_size: int,
    width: int,
    n_features: int,
    n_outputs: int,
    *,
    quantization: str | None,
    train_output_layer: bool,
) -> int:
    """Arithmetic operations of one gradient step of the two-layer network.

    Parameters
    ----------
    batch_size : int
        Rows in the step's batch ``b``.
    width : int
        Hidden neurons ``m``.
    n_features : int
        Input dimension ``d``.
    n_outputs : int
        Output columns ``k``.
    quantization : {"sign", "bitnet"} or None
        Weight quantiser, or ``None`` for the full-precision network.
    train_output_layer : bool
        Whether the output weights are trained as well.

    Returns
    -------
    int
        Operations: quantising the weights (``m d`` for a sign, ``4 m d`` for BitNet's
        mean, absolute mean, shift and sign), the forward pass (``2 b m d`` for the
        pre-activations, ``b m`` for the ReLU, ``2 b m k`` for the outputs), the loss
        (``3 b k``), the backward pass (``2 b m k + b m`` for the back-propagated
        coefficients, ``2 b m d`` for the hidden gradient, ``2 b m k`` more for the
        output gradient) and the update (``2 m d``, plus ``2 m k``).

    Examples
    --------
    >>> training_step_operations(1, 1, 1, 1, quantization=None, train_output_layer=False)
    15
    >>> training_step_operations(100, 1024, 16, 1, quantization="sign", train_output_layer=False)
    7217452
    """
    b, m, d, k = batch_size, width, n_features, n_outputs
    quantize = {None: 0, "sign": m * d, "bitnet": 4 * m * d}[quantization]
    forward = 2 * b * m * d + b * m + 2 * b * m * k
    loss = 3 * b * k
    backward = 2 * b * m * k + b * m + 2 * b * m * d
    update = 2 * m * d
    if train_output_layer:
        backward += 2 * b * m * k
        update += 2 * m * k
    return quantize + forward + loss + backward + update
