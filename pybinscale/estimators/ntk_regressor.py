"""``NTKRegressor``: regression with the neural tangent kernel of a two-layer ReLU network.

A wide network trained by gradient descent from the symmetric initialisation (initial
output 0) behaves like kernel regression with its NTK ``H`` (DESIGN section 1): after
``t`` steps of size ``eta`` on the loss ``1/(2n) ||f(X) - y||^2`` its training outputs are

    u(t) = y - exp(-eta H t / n) y,

and at convergence it interpolates, ``f(x) = K(x, X) H^-1 y``. The estimator computes
either: the kernel is the infinite-width limit ``H*`` (closed form) or the empirical NTK
of one random network of a given width, with 1-bit or full-precision hidden weights.

Linear algebra is done in float64. The converged solution is a Cholesky solve of
``H + alpha I``; when that matrix is singular or nearly so (duplicated or parallel
inputs make the NTK singular) an eigendecomposition pseudo-inverse replaces it and an
:class:`IllConditionedKernelWarning` says so. The gradient-descent trajectory goes
through the eigendecomposition of the kernel, which is well defined even when the
kernel is singular.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Optional

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils import Tags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..kernels import ntk_gram, ntk_limit
from ._init import initial_weights
from ._inputs import normalize_inputs

__all__ = ["IllConditionedKernelWarning", "NTKRegressor", "solve_kernel_system"]

FloatArray = NDArray[np.float64]

#: Steps of inverse iteration that estimate the smallest eigenvalue after a Cholesky
#: factorisation (the first rides along with the solve for the targets). A random start
#: turns towards a (near) null direction in one step: its component grows by the ratio
#: of the eigenvalues, at least 1 / (n eps) there; the second step's Rayleigh quotient
#: then weighs it by that ratio squared.
_INVERSE_ITERATION_STEPS = 2

#: Output rows per block when :meth:`NTKRegressor.loss_at` evaluates many times at once.
_LOSS_BLOCK_ELEMENTS = 1 << 22


class IllConditionedKernelWarning(UserWarning):
    """The kernel system of a fit was singular or nearly so.

    Raised by :meth:`NTKRegressor.fit` when ``H + alpha I`` has eigenvalues within
    rounding error of zero (at most ``n * eps`` times the largest), so that a Cholesky
    solve would return noise. The fit then uses an eigendecomposition pseudo-inverse,
    which drops those eigenvalues and stays finite. Setting ``alpha > 0`` (e.g.
    ``alpha=1e-6`` or larger) regularises the system instead.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from pybinscale.estimators.ntk_regressor import (
    ...     IllConditionedKernelWarning, NTKRegressor)
    >>> X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # rows 0 and 1 are parallel
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     model = NTKRegressor().fit(X, [0.0, 1.0, 2.0])
    >>> [issubclass(w.category, IllConditionedKernelWarning) for w in caught]
    [True]
    >>> bool(np.isfinite(model.predict(X)).all())
    True
    """


@dataclass(frozen=True)
class KernelSolution:
    """The result of :func:`solve_kernel_system`.

    Attributes
    ----------
    dual_coef : ndarray of shape (n, k)
        Coefficients ``c`` with predictions ``K(x, X) c``.
    solver : {"cholesky", "eigh"}
        How the system was solved.
    eigenvalues : ndarray of shape (n,) or None
        Ascending eigenvalues of ``H + alpha I`` when an eigendecomposition was made.
    coords : ndarray of shape (n, k) or None
        The targets in that eigenbasis, ``V.T @ Y``.
    warning : str or None
        Why the system counted as singular, when it did.
    """

    dual_coef: FloatArray
    solver: str
    eigenvalues: Optional[FloatArray] = None
    coords: Optional[FloatArray] = None
    warning: Optional[str] = None


def _eigh_in_place(A: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eigendecomposition of the symmetric C-ordered ``A``, reading its lower triangle
    (in C order) and overwriting ``A``. The Fortran-ordered transpose is ``A`` itself,
    so LAPACK works on it without a copy."""
    eigenvalues, vectors = scipy.linalg.eigh(
        A.T, lower=False, overwrite_a=True, check_finite=False, driver="evd"
    )
    return eigenvalues, vectors


def solve_kernel_system(
    H: FloatArray, Y: FloatArray, alpha: float, time_scale: Optional[float] = None
) -> KernelSolution:
    """Coefficients of kernel regression with kernel matrix ``H``, overwriting ``H``.

    With ``time_scale = None`` the converged solution ``(H + alpha I)^-1 Y``: a Cholesky
    solve (in place, no copy of ``H``), checked by two steps of inverse iteration; if
    the factorisation fails or the smallest eigenvalue is at most ``n * eps`` times an
    upper bound of the largest (``||A||_F``), the eigendecomposition decides: exact
    eigenvalues at most ``n * eps`` times the largest are dropped (pseudo-inverse) and
    ``warning`` says so. With a ``time_scale`` ``s = eta * t / n`` the gradient-flow
    coefficients ``V diag(g) V.T Y`` with ``g(l) = -expm1(-l s) / l`` (``s`` at
    ``l = 0``; negative eigenvalues, rounding error, count as 0).

    This is the solve :class:`NTKRegressor` uses; it is public for benchmarks that run
    the same solve after computing the kernel another way.

    Parameters
    ----------
    H : ndarray of float64, shape (n, n), C-contiguous, symmetric
        The kernel matrix. It is overwritten.
    Y : ndarray of float64, shape (n, k)
        Targets.
    alpha : float
        Ridge added to the diagonal, >= 0.
    time_scale : float or None
        ``eta * t / n`` for the trajectory after ``t`` steps, or None for convergence.

    Returns
    -------
    KernelSolution

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> solve_kernel_system(H.copy(), np.array([[3.0], [3.0]]), 0.0).dual_coef
    array([[1.],
           [1.]])
    """
    n = H.shape[0]
    if not (H.flags.c_contiguous and H.dtype == np.float64 and H.shape == (n, n)):
        raise ValueError("H: expected a C-contiguous square float64 matrix")
    A = H
    A.flat[:: n + 1] += alpha
    if time_scale is not None:
        eigenvalues, vectors = _eigh_in_place(A)
        coords = vectors.T @ Y
        rates = np.clip(eigenvalues, 0.0, None)
        positive = rates > 0
        gains = np.where(
            positive,
            -np.expm1(-rates * time_scale) / np.where(positive, rates, 1.0),
            time_scale,
        )
        return KernelSolution(vectors @ (gains[:, None] * coords), "eigh", eigenvalues, coords)

    tolerance_factor = n * np.finfo(np.float64).eps
    diagonal = A.diagonal().copy()
    largest_bound = float(np.linalg.norm(A))  # ||A||_F >= lambda_max
    # dpotrf writes L over one triangle of the Fortran view and leaves the other, which
    # still holds A, alone: the eigendecomposition below can read it if needed.
    try:
        factor = scipy.linalg.cho_factor(A.T, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        factor = None
    if factor is not None:
        probe: FloatArray = np.random.RandomState(0).standard_normal((n,))
        probe = probe / np.linalg.norm(probe)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            solved = scipy.linalg.cho_solve(factor, np.column_stack([Y, probe]), check_finite=False)
        coef = solved[:, : Y.shape[1]]
        smallest = _smallest_eigenvalue_estimate(factor, probe, solved[:, -1])
        if smallest > tolerance_factor * largest_bound and np.isfinite(coef).all():
            return KernelSolution(np.ascontiguousarray(coef), "cholesky")
    np.fill_diagonal(A, diagonal)
    eigenvalues, vectors = _eigh_in_place(A)
    coords = vectors.T @ Y
    largest = float(np.max(np.abs(eigenvalues)))
    cutoff = tolerance_factor * largest
    keep = eigenvalues > cutoff
    inverse = np.where(keep, 1.0 / np.where(keep, eigenvalues, 1.0), 0.0)
    coef = vectors @ (inverse[:, None] * coords)
    message = None
    dropped = int(n - np.count_nonzero(keep))
    if factor is None or dropped:
        message = (
            f"the kernel matrix H + alpha*I (n={n}, alpha={alpha:g}) is singular or nearly "
            f"so: its smallest eigenvalue is {eigenvalues[0]:.3g} and its largest "
            f"{eigenvalues[-1]:.3g}. It was solved with an eigendecomposition "
            f"pseudo-inverse that drops the {dropped} eigenvalue(s) at most {cutoff:.3g} "
            "(n * eps times the largest). Duplicated or parallel rows of X (equal once "
            "input_norm='l2' normalises them) make the NTK singular; set alpha > 0 to "
            "regularise, e.g. alpha=1e-6 or larger."
        )
    return KernelSolution(coef, "eigh", eigenvalues, coords, message)


def _smallest_eigenvalue_estimate(
    factor: tuple[FloatArray, bool], start: FloatArray, image: FloatArray
) -> float:
    """An upper bound of the smallest eigenvalue of ``A = L L^T`` from inverse iteration:
    ``1 / (v^T A^-1 v)`` for the unit ``v`` reached after ``_INVERSE_ITERATION_STEPS``
    steps from the unit ``start``, whose image ``A^-1 start`` is given; 0 when the
    iteration overflows (A is singular to working precision)."""
    v, w = start, image
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step in range(_INVERSE_ITERATION_STEPS):
            if step:
                w = scipy.linalg.cho_solve(factor, v, check_finite=False)
            quotient = float(v @ w)
            norm = float(np.linalg.norm(w))
            if not (np.isfinite(norm) and np.isfinite(quotient) and norm > 0 and quotient > 0):
                return 0.0
            v = w / norm
    return 1.0 / quotient


@dataclass(frozen=True)
class _FitConfig:
    """The parameters a fit used, so that a fitted model keeps its behaviour."""

    kernel: str
    kappa: float
    quantized: bool
    input_norm: Optional[str]
    alpha: float
    learning_rate: float
    time: Optional[float]


class NTKRegressor(RegressorMixin, BaseEstimator):
    """Kernel regression with the neural tangent kernel of a two-layer ReLU network.

    The model is the wide-network limit of gradient descent on the network
    ``f(x) = kappa / sqrt(m) * sum_r a_r relu(<q(w_r), x>)`` of DESIGN section 1, whose
    first layer is trained from the symmetric initialisation (initial output 0). Its
    kernel is ``H[i, j] = kappa^2 <x_i, x_j> P(neuron active on both)``, either at
    infinite width (``kernel="limit"``, the arc-cosine formula of
    :func:`pybinscale.ntk_limit`) or for one random network of ``width`` neurons
    (``kernel="empirical"``, :func:`pybinscale.ntk_gram`, with 1-bit or real weights).

    With ``time=None`` it predicts the converged network, kernel ridge regression
    ``f(x) = K(x, X) (H + alpha I)^-1 y``; with ``time=t`` the network after ``t`` steps
    of gradient descent with learning rate ``eta``,
    ``f(x) = K(x, X) H^+ (I - exp(-eta H t / n)) y``.

    Parameters
    ----------
    kernel : {"limit", "empirical"}, default="limit"
        ``"limit"``: the infinite-width NTK ``H*`` (Gaussian weights), in closed form.
        ``"empirical"``: the NTK of a network of ``width`` neurons drawn with
        ``random_state`` (:func:`~pybinscale.estimators._init.initial_weights`, the
        same ``W(0)`` as the network estimators with that seed).
    width : int or None, default=None
        Number of hidden neurons, >= 1 (even with ``symmetric_init``); required by
        ``kernel="empirical"`` and ignored by ``"limit"``.
    quantized : bool, default=True
        For ``"empirical"``: the 1-bit network, hidden weights ``sign(W(0))``; False
        uses ``W(0)`` itself. Ignored by ``"limit"``, whose formula is the limit of the
        full-precision network.
    kappa : float, default=1.0
        Output scale of the network, > 0; the kernel is proportional to ``kappa^2``.
    alpha : float, default=0.0
        Ridge, >= 0, added to the kernel's diagonal: ``H + alpha I`` replaces ``H`` in
        the solve and, with ``time`` set, in the gradient-descent dynamics (a decay of
        the function towards 0). 0 interpolates the training data.
    time : float or None, default=None
        Number of gradient-descent steps ``t >= 0`` (real values allowed), or None for
        the converged solution.
    learning_rate : float, default=1.0
        Step size ``eta > 0`` of gradient descent on ``1/(2n) ||f(X) - y||^2``; only
        the product ``eta * t`` matters, so it has no effect with ``time=None``.
    input_norm : {"l2"} or None, default="l2"
        ``"l2"`` scales every row of X to unit norm (the theory's assumption; rows of
        zeros stay zero) in :meth:`fit` and :meth:`predict`; None uses X as it is.
    symmetric_init : bool, default=True
        For ``"empirical"``: draw the neurons in mirrored pairs, as the network
        estimators do (the network's initial output is then exactly 0, the ``u(0) = 0``
        the dynamics assume). ``width`` must be even.
    random_state : int, RandomState instance or None, default=None
        Seeds the network of ``"empirical"``.

    Attributes
    ----------
    X_fit_ : ndarray of shape (n_samples, n_features)
        The training inputs after ``input_norm``.
    dual_coef_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Coefficients ``c`` of the predictions ``K(x, X) c``: ``(H + alpha I)^-1 y`` with
        ``time=None``, ``V diag(g) V^T y`` with ``g(l) = (1 - exp(-eta l t / n)) / l``
        otherwise (``V``, ``l``: eigenvectors and eigenvalues of ``H + alpha I``).
    solver_ : {"cholesky", "eigh"}
        How the system was solved: a Cholesky factorisation, or an eigendecomposition
        (always with ``time`` set; with ``time=None`` when the kernel was singular or
        nearly so).
    hidden_weights_ : ndarray of shape (width, n_features)
        ``kernel="empirical"`` only: the latent initial weights ``W(0)`` (the kernel
        uses their signs when ``quantized``).
    lambda_min_ : float
        The smallest eigenvalue of the training kernel ``H`` (without ``alpha``), the
        rate of the slowest direction of training (DESIGN section 1). Fits that
        decompose the kernel anyway (``time`` set, or a singular kernel) know it; after
        a Cholesky fit it is computed on first access (one ``O(n^3)`` decomposition,
        about 20 s at n = 4096 on 2 cores) and kept.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :meth:`fit`, when X has string column names.

    See Also
    --------
    pybinscale.estimators.ntk_kernel.NTKKernel : ``H*`` as a kernel for
        :class:`~sklearn.gaussian_process.GaussianProcessRegressor`.
    sklearn.kernel_ridge.KernelRidge : The same converged solution given a kernel.

    Notes
    -----
    ``u(0) = 0`` holds exactly for the network with ``symmetric_init``; the random
    initial function of a plain initialisation is not modelled. With ``time`` set the
    eigendecomposition costs ``O(n^3)`` (about 20 s at n = 4096 on 2 cores), a few times
    the Cholesky factorisation of ``time=None``.

    References
    ----------
    Jacot, Gabriel and Hongler (2018), "Neural tangent kernel: convergence and
    generalization in neural networks".
    Du, Zhai, Poczos and Singh (2019), "Gradient descent provably optimizes
    over-parameterized neural networks".

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.estimators.ntk_regressor import NTKRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 5))
    >>> y = np.sin(3 * X[:, 0] / np.linalg.norm(X, axis=1))
    >>> model = NTKRegressor().fit(X, y)
    >>> bool(np.allclose(model.predict(X), y))  # the converged network interpolates
    True
    >>> early = NTKRegressor(time=100.0).fit(X, y)
    >>> losses = early.loss_at([0.0, 100.0, 1000.0])
    >>> bool(losses[0] > losses[1] > losses[2])
    True
    >>> net = NTKRegressor(kernel="empirical", width=4096, random_state=0).fit(X, y)
    >>> net.hidden_weights_.shape
    (4096, 5)
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "kernel": [StrOptions({"limit", "empirical"})],
        "width": [Interval(Integral, 1, None, closed="left"), None],
        "quantized": ["boolean"],
        "kappa": [Interval(Real, 0, np.inf, closed="neither")],
        "alpha": [Interval(Real, 0, np.inf, closed="left")],
        "time": [Interval(Real, 0, np.inf, closed="left"), None],
        "learning_rate": [Interval(Real, 0, np.inf, closed="neither")],
        "input_norm": [StrOptions({"l2"}), None],
        "symmetric_init": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        kernel: str = "limit",
        width: Optional[int] = None,
        quantized: bool = True,
        kappa: float = 1.0,
        alpha: float = 0.0,
        time: Optional[float] = None,
        learning_rate: float = 1.0,
        input_norm: Optional[str] = "l2",
        symmetric_init: bool = True,
        random_state: Any = None,
    ) -> None:
        self.kernel = kernel
        self.width = width
        self.quantized = quantized
        self.kappa = kappa
        self.alpha = alpha
        self.time = time
        self.learning_rate = learning_rate
        self.input_norm = input_norm
        self.symmetric_init = symmetric_init
        self.random_state = random_state

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    # ------------------------------------------------------------------ kernels

    def _kernel(self, X: FloatArray, Z: Optional[FloatArray] = None) -> FloatArray:
        """``K(X, Z)`` with the fitted configuration (``Z = None``: the Gram of X)."""
        config = self._config
        if config.kernel == "empirical":
            K = ntk_gram(X, self.hidden_weights_, Z=Z, kappa=config.kappa, quantized=config.quantized)
        else:
            K = ntk_limit(X, Z, kappa=config.kappa)
        if not np.isfinite(K).all():
            raise ValueError(
                "X: the kernel overflowed (its entries grow like the squared norms of the "
                f"rows, up to {np.max(np.abs(X)):.3g} per entry here); keep input_norm='l2' "
                "or scale X down"
            )
        return K

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike) -> NTKRegressor:
        """Fit the kernel model to the training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.

        Returns
        -------
        self : NTKRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            If a parameter is invalid (``kernel="empirical"`` without ``width``, an odd
            ``width`` with ``symmetric_init``), or X or y holds NaN or infinity.

        Warns
        -----
        IllConditionedKernelWarning
            With ``time=None``, when ``H + alpha I`` is singular or nearly so and a
            pseudo-inverse was used.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale.estimators.ntk_regressor import NTKRegressor
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        >>> model = NTKRegressor(alpha=0.1).fit(X, [1.0, -1.0, 0.0])
        >>> model.solver_, model.dual_coef_.shape
        ('cholesky', (3,))
        """
        if self.kernel == "empirical" and self.width is None:
            raise ValueError(
                "width: kernel='empirical' needs the number of hidden neurons, an int >= 1 "
                "(even with symmetric_init=True); got None"
            )
        X_valid, y_valid = validate_data(
            self, X, y, dtype=np.float64, multi_output=True, y_numeric=True
        )
        Y = np.asarray(y_valid, dtype=np.float64)
        n_samples = X_valid.shape[0]
        Y2 = Y.reshape(n_samples, -1)
        self._config = _FitConfig(
            kernel=self.kernel,
            kappa=float(self.kappa),
            quantized=bool(self.quantized),
            input_norm=self.input_norm,
            alpha=float(self.alpha),
            learning_rate=float(self.learning_rate),
            time=None if self.time is None else float(self.time),
        )
        X_norm = np.ascontiguousarray(normalize_inputs(X_valid, self.input_norm))
        if self.kernel == "empirical":
            assert self.width is not None  # checked above
            hidden, _, _ = initial_weights(
                X_valid.shape[1], self.width, 1, self.symmetric_init, self.random_state
            )
            self.hidden_weights_ = hidden
        else:
            self.__dict__.pop("hidden_weights_", None)
        H = self._kernel(X_norm)
        time_scale = None
        if self._config.time is not None:
            time_scale = self._config.learning_rate * self._config.time / n_samples
        solution = solve_kernel_system(H, Y2, self._config.alpha, time_scale)
        if solution.warning is not None:
            warnings.warn(solution.warning, IllConditionedKernelWarning, stacklevel=3)
        self.X_fit_ = X_norm
        self.dual_coef_ = solution.dual_coef.reshape(Y.shape)
        self.solver_ = solution.solver
        self._y_fit = Y2.copy()
        self._spectrum: Optional[tuple[FloatArray, FloatArray]] = None
        if solution.eigenvalues is not None and solution.coords is not None:
            self._spectrum = (solution.eigenvalues, solution.coords)
        return self

    # ------------------------------------------------------------------ predicting

    def predict(self, X: ArrayLike) -> FloatArray:
        """Predict with the fitted kernel model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs, with the features seen in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
            ``K(x, X_fit_) @ dual_coef_``; 1-D when ``y`` was 1-D.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale.estimators.ntk_regressor import NTKRegressor
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        >>> model = NTKRegressor().fit(X, [1.0, -1.0, 0.0])
        >>> model.predict(X).round(6)
        array([ 1., -1.,  0.])
        >>> NTKRegressor(time=0.0).fit(X, [1.0, -1.0, 0.0]).predict(X)  # u(0) = 0
        array([0., 0., 0.])
        """
        check_is_fitted(self)
        X_valid = validate_data(self, X, dtype=np.float64, reset=False)
        X_norm = normalize_inputs(X_valid, self._config.input_norm)
        result: FloatArray = self._kernel(X_norm, self.X_fit_) @ self.dual_coef_
        return result

    def _training_spectrum(self) -> tuple[FloatArray, FloatArray]:
        """Eigenvalues of ``H + alpha I`` and the targets in its eigenbasis, decomposed
        on first use after a Cholesky fit and kept."""
        check_is_fitted(self)
        if self._spectrum is None:
            A = self._kernel(self.X_fit_)
            A.flat[:: A.shape[0] + 1] += self._config.alpha
            eigenvalues, vectors = _eigh_in_place(A)
            self._spectrum = (eigenvalues, vectors.T @ self._y_fit)
        return self._spectrum

    @property
    def lambda_min_(self) -> float:
        """The smallest eigenvalue of the training kernel ``H`` (without ``alpha``).

        It sets the linear rate of the slowest direction of training: that component of
        the residual decays like ``exp(-eta lambda_min t / n)``. Rounding can make it
        slightly negative for a singular kernel.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale.estimators.ntk_regressor import NTKRegressor
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])  # orthogonal: H = I / 2
        >>> NTKRegressor().fit(X, [1.0, 2.0]).lambda_min_
        0.5
        """
        eigenvalues, _ = self._training_spectrum()
        return float(eigenvalues[0] - self._config.alpha)

    def loss_at(self, steps: ArrayLike) -> FloatArray:
        """Training loss of the kernel dynamics after ``t`` gradient-descent steps.

        ``L(t) = 1/(2n) ||exp(-eta (H + alpha I) t / n) y||^2``, summed over target
        columns: the loss of the wide network trained from ``u(0) = 0``, to compare with
        a network estimator's ``loss_curve_``. Available after any fit, whatever
        ``time`` is (after a Cholesky fit the first call decomposes the kernel).

        Parameters
        ----------
        steps : array-like of float
            Step counts ``t >= 0`` (any shape).

        Returns
        -------
        ndarray of float64, the shape of ``steps``
            The loss at each ``t``: ``||y||^2 / (2n)`` at 0, non-increasing in ``t``.

        Raises
        ------
        ValueError
            If a step count is negative, NaN or infinite.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale.estimators.ntk_regressor import NTKRegressor
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])  # H = I / 2, n = 2
        >>> model = NTKRegressor(learning_rate=4.0).fit(X, [1.0, 1.0])
        >>> model.loss_at([0.0, 1.0])  # 0.5 * exp(-2 * 4 * 0.5 * t / 2)
        array([0.5       , 0.06766764])
        """
        check_is_fitted(self)
        try:
            times = np.asarray(steps, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"steps: expected real step counts ({error})") from None
        if not np.isfinite(times).all() or (times < 0).any():
            raise ValueError("steps: expected finite step counts >= 0")
        eigenvalues, coords = self._training_spectrum()
        n_samples = coords.shape[0]
        rates = np.clip(eigenvalues, 0.0, None) * (self._config.learning_rate / n_samples)
        energy = np.einsum("ij,ij->i", coords, coords)
        flat = times.ravel()
        losses = np.empty(flat.shape[0])
        block = max(1, _LOSS_BLOCK_ELEMENTS // max(n_samples, 1))
        for start in range(0, flat.shape[0], block):
            chunk = flat[start : start + block]
            losses[start : start + block] = np.exp(-2.0 * np.outer(chunk, rates)) @ energy
        result: FloatArray = (losses / (2.0 * n_samples)).reshape(times.shape)
        return result
