"""NTKKernel under scikit-learn's estimator checks, through the estimators that use it.

A kernel is not an estimator, so the checks run on ``GaussianProcessRegressor`` and
``KernelRidge`` built on ``NTKKernel``: every check exercises the kernel's ``__call__``,
``diag``, hyperparameters, cloning and pickling the way scikit-learn itself does.
"""

from __future__ import annotations

from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.utils.estimator_checks import parametrize_with_checks

from pybinscale import NTKKernel


@parametrize_with_checks(
    [
        GaussianProcessRegressor(kernel=NTKKernel() + WhiteKernel(1e-2), random_state=0),
        # alpha=1 (KernelRidge's default): the sample-order check compares predictions
        # to 1e-7, which rounding in a worse-conditioned solve would miss whatever the
        # kernel.
        KernelRidge(kernel=NTKKernel(output_layer=True), alpha=1.0),
    ]
)
def test_estimators_on_ntk_kernel_pass_scikit_learn_checks(estimator, check):
    check(estimator)
