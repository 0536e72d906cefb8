"""NTKKernel: values, diagonal, gradient, and use inside scikit-learn's GP and kernel
ridge, composition, cloning and pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Product, Sum, WhiteKernel
from sklearn.kernel_ridge import KernelRidge

import pybinscale.estimators.ntk_kernel as ntk_kernel_module
from pybinscale.estimators.ntk_kernel import NTKKernel
from pybinscale.estimators.ntk_regressor import NTKRegressor
from pybinscale.kernels import ntk_limit


def _inputs(n=25, d=4, seed=0, unit=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.2, 5.0, size=(n, 1))
    if unit:
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


@pytest.mark.parametrize("kappa", [1.0, 0.3, 2.5])
@pytest.mark.parametrize("output_layer", [False, True])
def test_values_are_ntk_limit(kappa, output_layer):
    X, Y = _inputs(), _inputs(n=7, seed=1)
    kernel = NTKKernel(kappa=kappa, output_layer=output_layer)
    np.testing.assert_allclose(kernel(X), ntk_limit(X, kappa=kappa, output_layer=output_layer), rtol=1e-14)
    np.testing.assert_allclose(
        kernel(X, Y), ntk_limit(X, Y, kappa=kappa, output_layer=output_layer), rtol=1e-14
    )
    assert kernel(X, Y).shape == (25, 7)
    # Y = X itself is the symmetric Gram (what pairwise_kernels passes).
    np.testing.assert_array_equal(kernel(X, X), kernel(X))
    # A single sample is one row, as in sklearn's kernels.
    np.testing.assert_allclose(kernel(X[0]), kernel(X[:1]))


def test_output_layer_adds_the_nngp_term():
    X = np.array([[1.0, 0.0], [0.0, 2.0]])  # orthogonal: NTK term 0, NNGP |x||z| / (2 pi)
    K = NTKKernel(output_layer=True)(X)
    np.testing.assert_allclose(K, [[1.0, 2.0 / (2 * np.pi)], [2.0 / (2 * np.pi), 4.0]], rtol=1e-14)


@pytest.mark.parametrize("output_layer", [False, True])
def test_diag_is_the_diagonal_without_the_matrix(output_layer, monkeypatch):
    X = np.vstack([_inputs(), np.zeros((1, 4))])
    kernel = NTKKernel(kappa=1.7, output_layer=output_layer)
    full = np.diag(kernel(X))
    monkeypatch.setattr(ntk_kernel_module, "ntk_limit", _no_matrix)
    diagonal = kernel.diag(X)
    assert diagonal.shape == (26,) and diagonal[-1] == 0.0
    np.testing.assert_allclose(diagonal, full, rtol=1e-13)


def _no_matrix(*args, **kwargs):
    raise AssertionError("diag must not form the kernel matrix")


@pytest.mark.parametrize("output_layer", [False, True])
def test_gradient_matches_finite_differences_of_log_kappa(output_layer):
    X = _inputs(n=12)
    kernel = NTKKernel(kappa=1.3, output_layer=output_layer)
    K, dK = kernel(X, eval_gradient=True)
    assert dK.shape == (12, 12, 1)
    np.testing.assert_allclose(K, kernel(X))
    h = 1e-5
    upper = kernel.clone_with_theta(kernel.theta + h)(X)
    lower = kernel.clone_with_theta(kernel.theta - h)(X)
    np.testing.assert_allclose(dK[:, :, 0], (upper - lower) / (2 * h), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(kernel.theta, [np.log(1.3)])


def test_fixed_kappa_has_no_hyperparameter_to_fit():
    kernel = NTKKernel(kappa=2.0, kappa_bounds="fixed")
    K, dK = kernel(_inputs(n=6), eval_gradient=True)
    assert dK.shape == (6, 6, 0)
    assert kernel.theta.shape == (0,) and kernel.n_dims == 0
    assert kernel.hyperparameters[0].name == "kappa" and kernel.hyperparameters[0].fixed
    free = NTKKernel(kappa_bounds=(0.1, 10.0))
    np.testing.assert_allclose(free.bounds, np.log([[0.1, 10.0]]))


def test_gradient_needs_y_none_and_kappa_must_be_positive():
    X = _inputs(n=5)
    with pytest.raises(ValueError, match="Gradient can only be evaluated when Y is None"):
        NTKKernel()(X, X.copy(), eval_gradient=True)
    with pytest.raises(ValueError, match="kappa"):
        NTKKernel(kappa=0.0)(X)
    with pytest.raises(ValueError, match="columns"):
        NTKKernel()(X, _inputs(n=3, d=5))


def test_properties():
    kernel = NTKKernel()
    assert kernel.is_stationary() is False
    assert kernel.requires_vector_input
    assert repr(kernel) == "NTKKernel(kappa=1)"
    assert repr(NTKKernel(kappa=0.25, output_layer=True)) == "NTKKernel(kappa=0.25, output_layer=True)"


# ----------------------------------------------------------------- inside scikit-learn


def _gp_data(kappa_true=3.0, noise=1e-2, n=60, seed=4):
    rng = np.random.default_rng(seed)
    X = _inputs(n=n, d=3, seed=seed, unit=True)
    covariance = ntk_limit(X, kappa=kappa_true) + noise * np.eye(n)
    y = np.linalg.cholesky(covariance) @ rng.standard_normal(n)
    return X, y


def test_gaussian_process_fits_kappa_and_predicts_with_std():
    X, y = _gp_data()
    kernel = NTKKernel() + WhiteKernel(1e-2, noise_level_bounds="fixed")
    gpr = GaussianProcessRegressor(kernel=kernel, random_state=0).fit(X, y)
    fitted_kappa = gpr.kernel_.k1.kappa
    assert 2.0 < fitted_kappa < 4.5  # drawn with kappa = 3, started from 1
    assert gpr.log_marginal_likelihood_value_ > gpr.log_marginal_likelihood(gpr.kernel.theta)
    mean, std = gpr.predict(X[:10], return_std=True)
    assert mean.shape == (10,) and std.shape == (10,) and np.all(std > 0)
    # The posterior variance at a training point is below the noise-free prior.
    assert np.all(std**2 < gpr.kernel_.k1.diag(X[:10]))
    # The analytic gradient of the log marginal likelihood agrees with finite differences.
    theta = np.array([np.log(2.0)])
    value, gradient = gpr.log_marginal_likelihood(theta, eval_gradient=True)
    h = 1e-6
    numeric = (gpr.log_marginal_likelihood(theta + h) - gpr.log_marginal_likelihood(theta - h)) / (2 * h)
    np.testing.assert_allclose(gradient, [numeric], rtol=1e-5)


def test_gaussian_process_mean_is_the_regressor_ridge():
    X = _inputs(n=30, d=5, seed=2)
    y = np.sin(X[:, 0])
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    gpr = GaussianProcessRegressor(kernel=NTKKernel(kappa_bounds="fixed"), alpha=1e-2, optimizer=None)
    gpr.fit(Xn, y)
    ridge = NTKRegressor(alpha=1e-2).fit(X, y)
    X_test = _inputs(n=8, d=5, seed=3)
    X_test_n = X_test / np.linalg.norm(X_test, axis=1, keepdims=True)
    np.testing.assert_allclose(gpr.predict(X_test_n), ridge.predict(X_test), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kappa, output_layer", [(1.0, False), (0.7, True)])
def test_kernel_ridge_with_the_kernel_object_equals_precomputed(kappa, output_layer):
    X, X_test = _inputs(n=40, seed=5), _inputs(n=9, seed=6)
    y = np.cos(X[:, 1])
    ours = KernelRidge(kernel=NTKKernel(kappa=kappa, output_layer=output_layer), alpha=0.1).fit(X, y)
    reference = KernelRidge(kernel="precomputed", alpha=0.1)
    reference.fit(ntk_limit(X, kappa=kappa, output_layer=output_layer), y)
    np.testing.assert_allclose(
        ours.predict(X_test),
        reference.predict(ntk_limit(X_test, X, kappa=kappa, output_layer=output_layer)),
        rtol=1e-10,
    )


def test_composition():
    X = _inputs(n=10)
    K = ntk_limit(X)
    with_noise = NTKKernel() + WhiteKernel(noise_level=0.3)
    assert isinstance(with_noise, Sum)
    np.testing.assert_allclose(with_noise(X), K + 0.3 * np.eye(10), rtol=1e-14)
    np.testing.assert_allclose(with_noise.diag(X), np.diag(K) + 0.3, rtol=1e-14)
    scaled = 2.0 * NTKKernel()
    assert isinstance(scaled, Product) and isinstance(scaled.k1, ConstantKernel)
    np.testing.assert_allclose(scaled(X), 2.0 * K, rtol=1e-14)
    _, gradient = scaled(X, eval_gradient=True)
    assert gradient.shape == (10, 10, 2)  # log constant, log kappa
    np.testing.assert_allclose(gradient[:, :, 1], 4.0 * K, rtol=1e-14)
    assert [h.name for h in with_noise.hyperparameters] == ["k1__kappa", "k2__noise_level"]
    assert with_noise.get_params()["k1__kappa"] == 1.0


def test_clone_params_equality_and_pickle():
    kernel = NTKKernel(kappa=0.5, output_layer=True, kappa_bounds=(1e-2, 1e2))
    assert kernel.get_params() == {"kappa": 0.5, "output_layer": True, "kappa_bounds": (1e-2, 1e2)}
    copy = clone(kernel)
    assert copy is not kernel and copy == kernel and copy.get_params() == kernel.get_params()
    assert kernel != NTKKernel(kappa=0.6, output_layer=True, kappa_bounds=(1e-2, 1e2))
    restored = pickle.loads(pickle.dumps(kernel))
    assert restored == kernel
    X = _inputs(n=6)
    np.testing.assert_array_equal(restored(X), kernel(X))
    kernel.set_params(kappa=2.0)
    np.testing.assert_allclose(kernel(X), ntk_limit(X, kappa=2.0, output_layer=True))
    fitted = clone(GaussianProcessRegressor(kernel=NTKKernel() + WhiteKernel()))
    assert fitted.kernel == NTKKernel() + WhiteKernel()
