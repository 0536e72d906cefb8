"""1-bit networks and their full-precision twins on scikit-learn's bundled data sets.

Regression on ``load_diabetes`` (test R^2) and classification on ``load_digits`` (test
accuracy), for several widths and both precisions, beside scikit-learn's
``MLPRegressor``/``MLPClassifier`` and ``KernelRidge`` with the infinite-width NTK
(``NTKKernel``). Every model sees the same standardised features and the same split;
the regressors' targets are standardised as well (``TransformedTargetRegressor``),
because the networks have no bias and start from the zero function.

Run: ``python examples/real_data.py`` (about a minute on two cores). It prints the
Markdown table the README shows.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pybinscale import BinaryMLPClassifier, BinaryMLPRegressor, NTKKernel

WIDTHS = (256, 1024, 4096)
SEED = 0


class OneHotKernelRidge(ClassifierMixin, BaseEstimator):
    """KernelRidge with the NTK on one-hot targets, predicting the arg-max: the kernel
    limit of BinaryMLPClassifier's squared-loss training."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: Any, y: Any) -> OneHotKernelRidge:
        self.classes_, encoded = np.unique(y, return_inverse=True)
        targets = np.eye(len(self.classes_))[encoded]
        self.ridge_ = KernelRidge(kernel=NTKKernel(), alpha=self.alpha).fit(X, targets)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.ridge_.predict(X), axis=1)]


def regressor(model: Any) -> Any:
    """Standardise features and targets around ``model``."""
    return TransformedTargetRegressor(
        regressor=make_pipeline(StandardScaler(), model), transformer=StandardScaler()
    )


def classifier(model: Any) -> Any:
    return make_pipeline(StandardScaler(), model)


def candidates(
    task: str,
) -> list[tuple[str, Callable[[], Any]]]:
    """(label, factory) pairs for one task, in the order of the table."""
    if task == "diabetes":
        network, mlp, wrap = BinaryMLPRegressor, MLPRegressor, regressor
        kernel_ridge = lambda: wrap(KernelRidge(kernel=NTKKernel(), alpha=1.0))  # noqa: E731
    else:
        network, mlp, wrap = BinaryMLPClassifier, MLPClassifier, classifier
        kernel_ridge = lambda: wrap(OneHotKernelRidge(alpha=1.0))  # noqa: E731
    rows: list[tuple[str, Callable[[], Any]]] = []
    for width in WIDTHS:
        for precision in ("1bit", "full"):
            rows.append(
                (
                    f"BinaryMLP {precision}, width {width}",
                    lambda w=width, p=precision: wrap(
                        network(width=w, precision=p, learning_rate=1.0, max_iter=500,
                                random_state=SEED)
                    ),
                )
            )
    for width in WIDTHS:
        rows.append(
            (
                f"sklearn MLP (adam), width {width}",
                lambda w=width: wrap(mlp(hidden_layer_sizes=(w,), max_iter=500,
                                         random_state=SEED)),
            )
        )
    rows.append(("KernelRidge(NTKKernel(), alpha=1)", kernel_ridge))
    return rows


def main() -> None:
    data = {"diabetes": load_diabetes(return_X_y=True), "digits": load_digits(return_X_y=True)}
    print("| data set | model | test score | fit time |")
    print("|---|---|---|---|")
    for task, (X, y) in data.items():
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=SEED
        )
        metric = "R^2" if task == "diabetes" else "accuracy"
        for label, factory in candidates(task):
            model = factory()
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train, y_train)
            elapsed = time.perf_counter() - start
            score = model.score(X_test, y_test)
            print(f"| {task} | {label} | {metric} {score:.3f} | {elapsed:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
