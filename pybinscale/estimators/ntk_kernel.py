"""``NTKKernel``: the infinite-width NTK as a scikit-learn Gaussian-process kernel."""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike, NDArray
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from ..kernels import ntk_limit

__all__ = ["NTKKernel"]

FloatArray = NDArray[np.float64]


def _as_rows(X: Any) -> FloatArray:
    """X as a 2-D float64 array, a single sample becoming one row (as sklearn's kernels
    do with ``np.atleast_2d``). Sparse matrices are densified: the kernel matrix they
    produce is dense anyway, and ``KernelRidge`` passes sparse inputs through."""
    if scipy.sparse.issparse(X):
        X = X.toarray()
    return np.atleast_2d(np.asarray(X, dtype=np.float64))


class NTKKernel(Kernel):
    """Infinite-width neural tangent kernel of a two-layer ReLU network.

    ``k(x, z) = kappa^2 <x, z> (pi - theta) / (2 pi)`` with ``theta`` the angle between
    ``x`` and ``z`` (:func:`pybinscale.ntk_limit`, the first layer trained); with
    ``output_layer=True`` the NNGP term of a trained output layer,
    ``kappa^2 |x| |z| (sin theta + (pi - theta) cos theta) / (2 pi)``, is added. Inputs
    are used as they are: the kernel is homogeneous of degree 2 in the norms (normalise
    rows first for the theory's unit-norm inputs). It is not stationary.

    ``kappa`` is a hyperparameter, so that
    :class:`~sklearn.gaussian_process.GaussianProcessRegressor` can fit it; since the
    kernel is proportional to ``kappa^2``, ``dk / dlog(kappa) = 2 k``.

    Parameters
    ----------
    kappa : float, default=1.0
        Output scale of the network, > 0.
    output_layer : bool, default=False
        Add the NNGP term of a trained output layer.
    kappa_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
        The range of ``kappa`` in hyperparameter tuning; "fixed" keeps it as it is.

    See Also
    --------
    pybinscale.estimators.ntk_regressor.NTKRegressor : Regression with this kernel (or
        an empirical one) and the gradient-descent trajectory.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process import GaussianProcessRegressor
    >>> from sklearn.gaussian_process.kernels import WhiteKernel
    >>> from pybinscale.estimators.ntk_kernel import NTKKernel
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    >>> NTKKernel()(X).round(4)
    array([[0.5   , 0.    , 0.2114],
           [0.    , 0.5   , 0.3181],
           [0.2114, 0.3181, 0.5   ]])
    >>> NTKKernel(kappa=2.0, output_layer=True)
    NTKKernel(kappa=2, output_layer=True)
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 3))
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> y = X[:, 0] + 0.05 * rng.standard_normal(30)
    >>> noise = WhiteKernel(0.05**2, noise_level_bounds="fixed")
    >>> gpr = GaussianProcessRegressor(kernel=NTKKernel() + noise)
    >>> mean, std = gpr.fit(X, y).predict(X[:2], return_std=True)
    >>> bool((std > 0).all())
    True
    >>> gpr.kernel_  # kappa fitted by maximising the marginal likelihood
    NTKKernel(kappa=0.432) + WhiteKernel(noise_level=0.0025)
    """

    def __init__(
        self,
        kappa: float = 1.0,
        output_layer: bool = False,
        kappa_bounds: Union[tuple[float, float], str] = (1e-5, 1e5),
    ) -> None:
        self.kappa = kappa
        self.output_layer = output_layer
        self.kappa_bounds = kappa_bounds

    @property
    def hyperparameter_kappa(self) -> Hyperparameter:
        """The hyperparameter ``kappa``, with ``kappa_bounds``.

        Examples
        --------
        >>> from pybinscale.estimators.ntk_kernel import NTKKernel
        >>> NTKKernel(kappa_bounds="fixed").hyperparameter_kappa.fixed
        True
        """
        return Hyperparameter("kappa", "numeric", self.kappa_bounds)

    def __call__(
        self, X: ArrayLike, Y: ArrayLike | None = None, eval_gradient: bool = False
    ) -> Any:
        """Return the kernel ``k(X, Y)`` and optionally its gradient.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
            Left argument.
        Y : array-like of shape (n_samples_Y, n_features), default=None
            Right argument; None (or ``X`` itself) means ``X``.
        eval_gradient : bool, default=False
            Also return the gradient with respect to the log of the hyperparameters;
            only when ``Y`` is None.

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
            Kernel values.
        K_gradient : ndarray of shape (n_samples_X, n_samples_X, n_dims)
            With ``eval_gradient``: ``dK / dlog(kappa) = 2 K`` in the last axis, which
            is empty (``n_dims = 0``) when ``kappa`` is fixed.

        Raises
        ------
        ValueError
            If ``eval_gradient`` is asked with ``Y`` given, the feature counts differ,
            or ``kappa`` is not a positive finite number.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale.estimators.ntk_kernel import NTKKernel
        >>> X = np.array([[1.0, 0.0], [0.6, 0.8]])
        >>> K, dK = NTKKernel(kappa=2.0)(X, eval_gradient=True)
        >>> dK.shape, bool(np.allclose(dK[:, :, 0], 2 * K))
        ((2, 2, 1), True)
        >>> NTKKernel()(X, [[0.0, 1.0]]).round(4)
        array([[0.    ],
               [0.3181]])
        """
        if Y is X:
            # pairwise_kernels (KernelRidge) passes X twice: use the symmetric path, which
            # computes one triangle and puts theta = 0 exactly on the diagonal.
            Y = None
        rows = _as_rows(X)
        if Y is None:
            K = ntk_limit(rows, None, kappa=self.kappa, output_layer=self.output_layer)
        else:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            K = ntk_limit(rows, _as_rows(Y), kappa=self.kappa, output_layer=self.output_layer)
        if not eval_gradient:
            return K
        if self.hyperparameter_kappa.fixed:
            return K, np.empty((K.shape[0], K.shape[0], 0))
        return K, (2.0 * K)[:, :, np.newaxis]

    def diag(self, X: ArrayLike) -> FloatArray:
        """Return ``k(x, x)`` for every row, without forming the kernel matrix.

        At ``theta = 0`` the first-layer term is ``kappa^2 |x|^2 / 2`` and the NNGP
        term adds as much again, so the diagonal is ``kappa^2 |x|^2`` times 1/2, or 1
        with ``output_layer``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Equal to ``np.diag(self(X))``.

        Examples
        --------
        >>> from pybinscale.estimators.ntk_kernel import NTKKernel
        >>> NTKKernel(kappa=2.0).diag([[3.0, 4.0], [0.0, 1.0]])
        array([50.,  2.])
        """
        rows = _as_rows(X)
        squared_norms = np.einsum("ij,ij->i", rows, rows)
        scale = float(self.kappa) ** 2 * (1.0 if self.output_layer else 0.5)
        result: FloatArray = scale * squared_norms
        return result

    def is_stationary(self) -> bool:
        """False: the kernel depends on the inputs' norms and angle, not their difference.

        Examples
        --------
        >>> from pybinscale.estimators.ntk_kernel import NTKKernel
        >>> NTKKernel().is_stationary()
        False
        """
        return False

    def __repr__(self) -> str:
        text = f"{type(self).__name__}(kappa={float(self.kappa):.3g}"
        if self.output_layer:
            text += ", output_layer=True"
        return text + ")"
