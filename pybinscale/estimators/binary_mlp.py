"""Two-layer ReLU networks with 1-bit hidden weights and their full-precision twins.

The network of DESIGN section 1::

    f(x) = kappa / sqrt(m) * sum_r a_r * relu(<q(w_r), x>)

trained by gradient descent on the latent real weights ``W`` with the squared loss
``1/(2n) sum_i |f(x_i) - y_i|^2``; ``q`` is the identity for ``precision="full"`` and a
1-bit quantiser otherwise, differentiated with the straight-through estimator. The
gradient steps run in the Rust core (``pybinscale._network``), fused so that no
``n x m`` matrix is formed; the fitted 1-bit model predicts from packed sign bits.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import _network
from ..kernels import (
    PackedSigns,
    activation_patterns,
    ntk_gram,
    pack_signs,
    quantize_activations,
    quantized_matmul,
)
from ..scaling.compute import training_step_operations
from ._init import initial_weights
from ._inputs import normalize_inputs

__all__ = ["BinaryMLPClassifier", "BinaryMLPRegressor", "TrainingDivergedError"]

# A loss this many times the initial one means the steps are no longer descending.
_DIVERGENCE_FACTOR = 1e6


class TrainingDivergedError(ValueError):
    """Gradient descent diverged (non-finite or exploding loss); the step is too large."""


def _quantization_of(precision: str, quantization: str) -> str | None:
    return None if precision == "full" else quantization


def _binarization(hidden: np.ndarray, quantization: str | None) -> tuple[float, float] | None:
    """``(offset, beta)`` of the 1-bit quantiser ``q(W) = beta * sign(W - offset)``
    (DESIGN section 1), which the core applies as it reads ``W``; None when full."""
    if quantization is None:
        return None
    if quantization == "sign":
        return 0.0, 1.0
    return float(hidden.mean()), float(np.abs(hidden).mean())


class _BinaryMLPBase(BaseEstimator):
    """Shared fitting and prediction of the regressor and the classifier."""

    _parameter_constraints: dict[str, list[Any]] = {
        "width": [Interval(numbers.Integral, 1, None, closed="left")],
        "precision": [StrOptions({"1bit", "full"})],
        "quantization": [StrOptions({"sign", "bitnet"})],
        "activation_bits": [None, Interval(numbers.Integral, 1, 8, closed="both")],
        "ste": [StrOptions({"identity", "clipped"})],
        "kappa": [Interval(numbers.Real, 0, None, closed="neither")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "train_output_layer": ["boolean"],
        "input_norm": [None, StrOptions({"l2"})],
        "track_kernel": ["boolean", Interval(numbers.Integral, 1, None, closed="left")],
        "symmetric_init": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        width: int = 1024,
        *,
        precision: str = "1bit",
        quantization: str = "sign",
        activation_bits: int | None = None,
        ste: str = "identity",
        kappa: float = 1.0,
        learning_rate: float = 1.0,
        max_iter: int = 500,
        tol: float = 0.0,
        batch_size: int | None = None,
        train_output_layer: bool = False,
        input_norm: str | None = "l2",
        track_kernel: bool | int = False,
        symmetric_init: bool = True,
        random_state: Any = None,
    ) -> None:
        self.width = width
        self.precision = precision
        self.quantization = quantization
        self.activation_bits = activation_bits
        self.ste = ste
        self.kappa = kappa
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.train_output_layer = train_output_layer
        self.input_norm = input_norm
        self.track_kernel = track_kernel
        self.symmetric_init = symmetric_init
        self.random_state = random_state

    # ------------------------------------------------------------------ inputs
    def _network_inputs(self, X: np.ndarray) -> np.ndarray:
        """Normalised and, with ``activation_bits``, absmax-quantised inputs as floats."""
        inputs = normalize_inputs(X, self.input_norm)
        if self.activation_bits is not None:
            values, scales = quantize_activations(inputs, self.activation_bits)
            inputs = values * scales[:, None]
        return np.ascontiguousarray(inputs, dtype=np.float64)

    # ------------------------------------------------------------------ training
    def _fit_outputs(self, X: np.ndarray, targets: np.ndarray) -> None:
        """Train on ``targets`` of shape (n, k); sets every fitted attribute."""
        n_samples, n_features = X.shape
        n_outputs = targets.shape[1]
        quantization = _quantization_of(self.precision, self.quantization)
        inputs = self._network_inputs(X)
        hidden, output_signs, rng = initial_weights(
            n_features, self.width, n_outputs, self.symmetric_init, self.random_state
        )
        output = output_signs.copy()
        scale = self.kappa / np.sqrt(self.width)
        batch = n_samples if self.batch_size is None else min(self.batch_size, n_samples)
        step_operations = training_step_operations(
            batch,
            self.width,
            n_features,
            n_outputs,
            quantization=quantization,
            train_output_layer=self.train_output_layer,
        )
        tracker = _KernelTracker(self, inputs, hidden, quantization) if self.track_kernel else None
        order = np.arange(n_samples)
        cursor = n_samples  # forces a fresh permutation at the first mini-batch
        losses: list[float] = []
        moved = False  # whether a step has changed the weights yet
        # Batches differ in their targets: a batch's loss is measured against the largest
        # initial loss of one row, which bounds every batch's initial loss, rather than
        # the first batch's (a first batch of tiny targets made later ones look diverged).
        reference = None
        if batch < n_samples:
            reference = self._largest_row_loss(inputs, targets, hidden, output, scale, quantization)
        for step in range(self.max_iter + 1):
            if tracker is not None and (step % tracker.interval == 0 or step == self.max_iter):
                tracker.record(step, hidden)
            if self.batch_size is None:
                rows = None
            else:
                if cursor + batch > n_samples:
                    order = rng.permutation(n_samples)
                    cursor = 0
                rows = order[cursor : cursor + batch]
                cursor += batch
            batch_inputs = inputs if rows is None else np.ascontiguousarray(inputs[rows])
            batch_targets = targets if rows is None else np.ascontiguousarray(targets[rows])
            binarize = _binarization(hidden, quantization)
            if step == self.max_iter:
                # After the last step only the loss is needed, not another gradient.
                outputs = _network.network_outputs(
                    batch_inputs, hidden, output, scale, binarize=binarize
                )
                loss = float(np.sum((outputs - batch_targets) ** 2) / (2 * len(batch_targets)))
                self._check_loss(loss, losses, step, reference)
                losses.append(loss)
                break
            _, loss, grad_hidden, grad_output = _network.train_step(
                batch_inputs,
                batch_targets,
                hidden,
                output,
                scale,
                output_grad=self.train_output_layer,
                binarize=binarize,
            )
            self._check_loss(loss, losses, step, reference)
            losses.append(loss)
            if loss <= self.tol:
                break
            still = not grad_hidden.any() and (grad_output is None or not grad_output.any())
            # A zero step is an error only if earlier steps left every neuron inactive on
            # every row (dead ReLUs). Otherwise it is a stationary point (duplicated rows
            # with opposite targets at their mean, rows of zeros, a tiny network with no
            # neuron active on the data from the start), where gradient descent goes on
            # as it would: every later step the same.
            # Dead ReLUs count as divergence only after an overshoot (the loss rose above
            # where it started): small steps can also retire every neuron of a tiny
            # network one by one while the loss falls, which is a stationary point too.
            initial = losses[0] if reference is None else reference
            if still and moved and max(losses) > initial:
                weights = hidden if binarize is None else hidden - binarize[0]
                if not activation_patterns(batch_inputs, weights, binarize is not None).words.any():
                    self._raise_stalled(losses, step)
            moved = moved or not still
            if quantization is not None and self.ste == "clipped":
                grad_hidden *= np.abs(hidden) <= 1.0
            # In place: at large widths fresh arrays each step cost more in page faults
            # than the arithmetic.
            grad_hidden *= self.learning_rate
            hidden -= grad_hidden
            if grad_output is not None:
                grad_output *= self.learning_rate
                output -= grad_output
        n_iter = len(losses) - 1
        if tracker is not None and tracker.steps[-1] != n_iter:
            tracker.record(n_iter, hidden)

        self.coef_hidden_ = hidden
        self.output_signs_ = output_signs
        self.coef_output_ = output
        # The kernels take (m, k) output weights; single-output regressors show 1-D ones.
        self._output_weights = output
        self._set_prediction_state(quantization)
        self.n_iter_ = n_iter
        self.loss_curve_ = np.asarray(losses)
        self.train_loss_ = (
            float(losses[-1]) if self.batch_size is None else self._loss_on(inputs, targets)
        )
        self.n_parameters_ = self.width * n_features + (
            self.width * n_outputs if self.train_output_layer else 0
        )
        self.model_bits_ = self._count_model_bits(n_features, n_outputs, quantization)
        self.training_operations_ = step_operations * n_iter
        if tracker is not None:
            self.kernel_history_ = tracker.history()
            self.kernel_at_init_ = tracker.kernel_at_init

    _ADVICE = (
        "use a smaller learning_rate (for unit-norm inputs gradient descent is stable "
        "in the kernel regime below about 4 / kappa**2)"
    )

    def _check_loss(
        self, loss: float, losses: list[float], step: int, reference: float | None = None
    ) -> None:
        initial = reference if reference is not None else (losses[0] if losses else loss)
        if not np.isfinite(loss) or loss > _DIVERGENCE_FACTOR * max(initial, 1e-300):
            raise TrainingDivergedError(
                f"learning_rate={self.learning_rate!r}: gradient descent diverged at step "
                f"{step} (training loss {loss:.3g}, initially {initial:.3g}"
                + (" on the worst row" if reference is not None else "")
                + f"); {self._ADVICE}"
            )

    @staticmethod
    def _largest_row_loss(
        inputs: np.ndarray,
        targets: np.ndarray,
        hidden: np.ndarray,
        output: np.ndarray,
        scale: float,
        quantization: str | None,
    ) -> float:
        """The largest loss ``|f(x_i) - y_i|^2 / 2`` of one row under the weights given."""
        effective = hidden
        binarize = _binarization(hidden, quantization)
        if binarize is not None:
            offset, beta = binarize
            effective = np.where(hidden - offset >= 0, beta, -beta)
        outputs = _network.network_outputs(inputs, effective, output, scale)
        return float(np.max(np.sum((outputs - targets) ** 2, axis=1)) / 2)

    def _raise_stalled(self, losses: list[float], step: int) -> None:
        # Every hidden neuron is inactive on every row after the loss rose above its
        # start: the gradient is exactly zero and no later step can change anything; an
        # overshooting step pushed the pre-activations below zero.
        peak = max(losses)
        raise TrainingDivergedError(
            f"learning_rate={self.learning_rate!r}: every hidden neuron became inactive "
            f"(dead ReLUs) at step {step}, so training stalled at loss {losses[-1]:.3g} "
            f"after the loss peaked at {peak:.3g} (initially {losses[0]:.3g}); "
            f"{self._ADVICE}"
        )

    def _loss_on(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        outputs = self._outputs_from_inputs(inputs)
        return float(np.sum((outputs - targets) ** 2) / (2 * len(targets)))

    def _count_model_bits(self, n_features: int, n_outputs: int, quantization: str | None) -> int:
        hidden_bits = self.width * n_features * (32 if quantization is None else 1)
        if quantization == "bitnet":
            hidden_bits += 2 * 32  # the shift alpha and the scale beta
        # Fixed output signs are 1-bit weights in both precisions; trained ones are real.
        output_bits = self.width * n_outputs * (32 if self.train_output_layer else 1)
        return hidden_bits + output_bits

    def _set_prediction_state(self, quantization: str | None) -> None:
        binarize = _binarization(self.coef_hidden_, quantization)
        if binarize is None:
            self.packed_hidden_: PackedSigns | None = None
            self.hidden_scale_ = 1.0
            return
        offset, beta = binarize
        self.packed_hidden_ = pack_signs(self.coef_hidden_ - offset)
        self.hidden_scale_ = beta

    # ------------------------------------------------------------------ prediction
    def _outputs_from_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Network outputs (n, k) for already normalised (and quantised) inputs."""
        scale = self.kappa / np.sqrt(self.width)
        if self.packed_hidden_ is None:
            return _network.network_outputs(
                inputs, self.coef_hidden_, self._output_weights, scale
            )
        return _network.network_outputs(
            inputs,
            self.packed_hidden_,
            self._output_weights,
            scale,
            hidden_scale=self.hidden_scale_,
        )

    def _raw_outputs(self, X: Any) -> np.ndarray:
        """Validated network outputs ``f(X)`` of shape (n, k)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if self.packed_hidden_ is not None and self.activation_bits is not None:
            # The integer path: b-bit activations times packed 1-bit weights, bit-serial.
            inputs = normalize_inputs(X, self.input_norm)
            pre = quantized_matmul(inputs, self.packed_hidden_, self.activation_bits)
            pre *= self.hidden_scale_
            np.maximum(pre, 0.0, out=pre)
            return (self.kappa / np.sqrt(self.width)) * (pre @ self._output_weights)
        return self._outputs_from_inputs(self._network_inputs(X))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class _KernelTracker:
    """Records how far the empirical NTK and the weights move during training."""

    def __init__(
        self,
        estimator: _BinaryMLPBase,
        inputs: np.ndarray,
        hidden: np.ndarray,
        quantization: str | None,
    ) -> None:
        track = estimator.track_kernel
        self.interval = estimator.max_iter + 1 if track is True else int(track)
        self.inputs = inputs
        self.kappa = estimator.kappa
        self.quantization = quantization
        self.initial_hidden = hidden.copy()
        self.initial_signs = self._signs(hidden)
        self.kernel_at_init = self._kernel(hidden)
        self.initial_norm = float(np.linalg.norm(self.kernel_at_init))
        self.steps: list[int] = []
        self.kernel_change: list[float] = []
        self.flip_fraction: list[float] = []
        self.weight_change: list[float] = []

    def _pattern_weights(self, hidden: np.ndarray) -> np.ndarray:
        # BitNet's positive scale beta does not change which neurons are active.
        return hidden - hidden.mean() if self.quantization == "bitnet" else hidden

    def _signs(self, hidden: np.ndarray) -> np.ndarray:
        return self._pattern_weights(hidden) >= 0

    def _kernel(self, hidden: np.ndarray) -> np.ndarray:
        return ntk_gram(
            self.inputs,
            self._pattern_weights(hidden),
            kappa=self.kappa,
            quantized=self.quantization is not None,
        )

    def record(self, step: int, hidden: np.ndarray) -> None:
        kernel = self.kernel_at_init if step == 0 else self._kernel(hidden)
        change = np.linalg.norm(kernel - self.kernel_at_init)
        self.steps.append(step)
        self.kernel_change.append(float(change / self.initial_norm) if self.initial_norm else 0.0)
        self.flip_fraction.append(float(np.mean(self._signs(hidden) != self.initial_signs)))
        moved = np.linalg.norm(hidden - self.initial_hidden, axis=1)
        self.weight_change.append(float(moved.max()))

    def history(self) -> dict[str, np.ndarray]:
        return {
            "step": np.asarray(self.steps),
            "kernel_change": np.asarray(self.kernel_change),
            "sign_flip_fraction": np.asarray(self.flip_fraction),
            "max_weight_change": np.asarray(self.weight_change),
        }


_PARAMETERS_DOC = """
    Parameters
    ----------
    width : int, default 1024
        Number of hidden neurons ``m``; even when ``symmetric_init``.
    precision : {"1bit", "full"}, default "1bit"
        ``"1bit"`` quantises the hidden weights in the forward pass; ``"full"`` is the
        full-precision twin.
    quantization : {"sign", "bitnet"}, default "sign"
        The 1-bit quantiser: ``sign(w)`` entrywise (sign(0) = +1), or BitNet's
        ``beta * sign(W - alpha)`` with ``alpha = mean(W)``, ``beta = mean(|W|)``.
        Ignored when ``precision="full"``.
    activation_bits : int from 1 to 8 or None, default None
        Quantise the (normalised) inputs of the hidden layer with BitNet's absmax rule
        to this many bits, in training and prediction, for both precisions. A 1-bit
        model then predicts with exact integer bit-serial products.
    ste : {"identity", "clipped"}, default "identity"
        Straight-through estimator of the 1-bit net: ``dq/dw = 1``, or ``1`` only where
        ``|w| <= 1``. Ignored when ``precision="full"``.
    kappa : float, default 1.0
        Output scale; the network is ``kappa / sqrt(m) * sum_r a_r relu(<q(w_r), x>)``.
    learning_rate : float, default 1.0
        Step size ``eta`` of gradient descent on ``1/(2n) sum |f(x_i) - y_i|^2``. In the
        kernel regime steps are stable while ``eta * lambda_max(H) / n < 2``; for
        unit-norm inputs ``lambda_max(H) / n <= kappa**2 / 2``.
    max_iter : int, default 500
        Number of gradient steps (each on one batch).
    tol : float, default 0.0
        Stop as soon as the training (batch) loss is at most ``tol``.
    batch_size : int or None, default None
        ``None`` is full-batch gradient descent; otherwise each step takes the next
        ``batch_size`` rows of a permutation drawn afresh each epoch.
    train_output_layer : bool, default False
        Also train the output weights (which start at the signs ``a``).
    input_norm : {"l2"} or None, default "l2"
        Scale each input row to unit norm, as the theory assumes.
    track_kernel : bool or int, default False
        Record the empirical NTK's drift and the weights' movement: ``True`` at the
        start and the end, an integer ``T`` every ``T`` steps and at the end.
    symmetric_init : bool, default True
        Draw neurons in pairs with equal hidden weights and opposite output signs, so
        that ``f(x) = 0`` at initialisation for both precisions (the usual way NTK
        analyses remove the random initial function).
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights, the output signs and the mini-batch order.

    Notes
    -----
    **Twins.** Two estimators that differ only in ``precision`` draw the same initial
    latent weights ``W(0)`` and output signs ``a`` from the same ``random_state``, see
    the same rows in the same order, and take the same number of steps with the same
    learning rate; compare them with :func:`pybinscale.generalization_difference`.
    (Only the weights the forward pass uses differ, and hence the steps' values.)

    **Storage.** ``model_bits_`` counts 1 bit per quantised hidden weight and 32 per
    real one, plus 64 bits for BitNet's ``alpha`` and ``beta``; fixed output signs are
    1 bit each, trained output weights 32.
"""

_ATTRIBUTES_DOC = """
    coef_hidden_ : ndarray of shape (width, n_features_in_)
        The latent real hidden weights ``W`` after training.
    output_signs_ : ndarray of shape (width, n_outputs)
        The output signs ``a`` drawn at initialisation (values -1 and +1).
    coef_output_ : ndarray of shape (width, n_outputs)
        The output weights after training (equal to ``output_signs_`` unless
        ``train_output_layer``).
    loss_curve_ : ndarray of shape (n_iter_ + 1,)
        ``loss_curve_[t]`` is the training loss after ``t`` steps (of the step's batch
        when ``batch_size`` is set); ``loss_curve_[0]`` is at initialisation.
    train_loss_ : float
        Training loss of the fitted model on all training rows.
    n_iter_ : int
        Number of gradient steps taken.
    n_parameters_ : int
        Trained parameters ``N``: ``width * n_features_in_`` (+ the output weights when
        trained).
    model_bits_ : int
        Storage of the model in bits (see Notes).
    training_operations_ : int
        Arithmetic operations of training, counted term by term
        (:func:`pybinscale.scaling.compute.training_step_operations` per step).
    packed_hidden_ : PackedSigns or None
        The 1-bit model's hidden sign bits, used by ``predict``; ``None`` when full.
    hidden_scale_ : float
        BitNet's ``beta`` (1.0 otherwise).
    kernel_history_ : dict of ndarray
        Only with ``track_kernel``: at each recorded ``"step"``, ``"kernel_change"``
        ``= ||H(t) - H(0)||_F / ||H(0)||_F`` on the training inputs,
        ``"sign_flip_fraction"`` (hidden weights whose sign differs from the start)
        and ``"max_weight_change"`` ``= max_r ||w_r(t) - w_r(0)||``.
    kernel_at_init_ : ndarray of shape (n_samples, n_samples)
        Only with ``track_kernel``: the empirical NTK ``H(0)`` on the training inputs.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Names of the features, when ``X`` had string column names.
"""


class BinaryMLPRegressor(RegressorMixin, _BinaryMLPBase):
    __doc__ = (
        """Two-layer ReLU network with 1-bit hidden weights, trained by gradient descent.

    The network of DESIGN section 1, ``f(x) = kappa / sqrt(m) * sum_r a_r *
    relu(<q(w_r), x>)``, fitted to real targets (one or several columns) with the
    squared loss and the straight-through estimator. As ``width`` grows its training
    follows kernel regression with the neural tangent kernel (see
    :class:`pybinscale.NTKRegressor`).
"""
        + _PARAMETERS_DOC
        + """
    Attributes
    ----------"""
        + _ATTRIBUTES_DOC
        + """
    See Also
    --------
    BinaryMLPClassifier : The same network on one-hot class targets.
    NTKRegressor : Its infinite-width kernel limit.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import BinaryMLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 16))
    >>> y = np.sin(2 * X[:, 0] / np.linalg.norm(X, axis=1))  # a function of the direction
    >>> model = BinaryMLPRegressor(width=1024, learning_rate=10, max_iter=100, random_state=0)
    >>> model = model.fit(X, y)
    >>> bool(model.loss_curve_[-1] < 0.1 * model.loss_curve_[0])
    True
    >>> model.model_bits_  # 1024 * 16 one-bit hidden weights and 1024 output signs
    17408
"""
    )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> BinaryMLPRegressor:
        """Train the network on ``X`` and real targets ``y``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : array_like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self : BinaryMLPRegressor
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        targets = np.asarray(y, dtype=np.float64)
        self._single_output = targets.ndim == 1
        self._fit_outputs(X, np.ascontiguousarray(targets.reshape(len(targets), -1)))
        if self._single_output:
            self.output_signs_ = self.output_signs_[:, 0]
            self.coef_output_ = self.coef_output_[:, 0]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Network outputs ``f(X)``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        outputs = self._raw_outputs(X)
        return outputs[:, 0] if self._single_output else outputs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class BinaryMLPClassifier(ClassifierMixin, _BinaryMLPBase):
    __doc__ = (
        """Two-layer ReLU network with 1-bit hidden weights for classification.

    The network of :class:`BinaryMLPRegressor` with one output per class, trained with
    the squared loss on one-hot targets (the setting of the NTK theory), predicting
    the class of the largest output. It has no ``predict_proba``: squared-loss outputs
    are not probabilities (they need not lie in [0, 1] nor sum to 1), and calibrating
    them is a separate model (:class:`sklearn.calibration.CalibratedClassifierCV`).
"""
        + _PARAMETERS_DOC
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels; output column ``c`` is the one-hot target of ``classes_[c]``."""
        + _ATTRIBUTES_DOC
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from pybinscale import BinaryMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = BinaryMLPClassifier(width=512, max_iter=300, random_state=0).fit(X, y)
    >>> model.classes_
    array([0, 1, 2])
    >>> bool(model.score(X, y) > 0.8)
    True
"""
    )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> BinaryMLPClassifier:
        """Train the network on ``X`` and class labels ``y`` (one-hot targets).

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : array_like of shape (n_samples,)

        Returns
        -------
        self : BinaryMLPClassifier
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y: has one class only ({self.classes_[0]!r}); a classifier needs samples "
                "of at least 2 classes"
            )
        targets = np.zeros((len(encoded), len(self.classes_)))
        targets[np.arange(len(encoded)), encoded] = 1.0
        self._fit_outputs(X, targets)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Network outputs; for two classes the difference ``f_1(x) - f_0(x)``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) for two classes, else (n_samples, n_classes)
        """
        outputs = self._raw_outputs(X)
        if outputs.shape[1] == 2:
            return outputs[:, 1] - outputs[:, 0]
        return outputs

    def predict(self, X: Any) -> np.ndarray:
        """The class of the largest output.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        outputs = self._raw_outputs(X)
        return self.classes_[np.argmax(outputs, axis=1)]
