"""Embedded tasks for sweeps: nothing to download.

Two regression tasks ship with the package:

- ``"teacher"``: inputs drawn uniformly on the unit sphere in 16 dimensions (the
  theory's setting, ``||x|| = 1``), targets from a fixed smooth random teacher network
  plus a little noise. Generated from a seed, so every machine gets the same data.
- ``"diabetes"``: scikit-learn's bundled diabetes data (442 patients, 10 features,
  disease progression after one year), features and target standardised. Real data,
  read from the copy installed with scikit-learn.

Targets are centred and scaled to unit variance, so a network whose output is 0 (the
symmetric initialisation) starts at a training loss ``1/(2n) sum y_i^2`` of about 0.5.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Task", "TASK_NAMES", "load_task", "make_teacher_task"]

FloatArray = NDArray[np.float64]

#: Names :func:`load_task` accepts.
TASK_NAMES = ("teacher", "diabetes")


@dataclass(frozen=True)
class Task:
    """A regression task: inputs, targets and what they are.

    Attributes
    ----------
    name : str
        The name :func:`load_task` knows it by.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    description : str
        One line, for reports.

    Examples
    --------
    >>> from pybinscale.datasets import load_task
    >>> task = load_task("diabetes")
    >>> task.X.shape, task.y.shape
    ((442, 10), (442,))
    """

    name: str
    X: FloatArray
    y: FloatArray
    description: str

    @property
    def n_samples(self) -> int:
        """Number of examples."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Input dimension."""
        return int(self.X.shape[1])

    def digest(self) -> str:
        """SHA-256 of the data (shape, dtype and bytes of X and y), for fingerprints.

        Examples
        --------
        >>> from pybinscale.datasets import load_task
        >>> load_task("teacher").digest() == load_task("teacher").digest()
        True
        """
        return data_digest(self.X, self.y)


def data_digest(X: FloatArray, y: FloatArray) -> str:
    """SHA-256 of two arrays (their shapes, dtypes and bytes), hexadecimal.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.datasets import data_digest
    >>> a = data_digest(np.zeros((2, 2)), np.zeros(2))
    >>> a == data_digest(np.zeros((2, 2)), np.ones(2)), len(a)
    (False, 64)
    """
    digest = hashlib.sha256()
    for array in (X, y):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype.str}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _standardise(values: FloatArray) -> FloatArray:
    centred = values - values.mean(axis=0)
    scale = centred.std(axis=0)
    return centred / np.where(scale > 0, scale, 1.0)


def make_teacher_task(
    n_samples: int = 1024,
    n_features: int = 16,
    *,
    n_teacher_units: int = 8,
    noise: float = 0.05,
    random_state: int = 0,
) -> Task:
    """The synthetic teacher task: unit-norm inputs, a smooth random teacher's targets.

    ``x`` is uniform on the unit sphere of ``R^d``; the target is
    ``y = sum_j b_j sin(sqrt(d) <v_j, x>) + noise``, with ``v_j`` uniform unit vectors
    and ``b_j ~ N(0, 1)`` (``j = 1..n_teacher_units``), then centred and scaled to unit
    variance. ``sqrt(d) <v_j, x>`` is about standard normal, so each unit varies
    smoothly over the sphere.

    Parameters
    ----------
    n_samples : int, default=1024
    n_features : int, default=16
    n_teacher_units : int, default=8
    noise : float, default=0.05
        Standard deviation of Gaussian label noise, relative to the clean target's.
    random_state : int, default=0

    Returns
    -------
    Task

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.datasets import make_teacher_task
    >>> task = make_teacher_task(100, 8)
    >>> bool(np.allclose(np.linalg.norm(task.X, axis=1), 1.0)), round(float(task.y.std()), 6)
    (True, 1.0)
    """
    for name, value in (
        ("n_samples", n_samples),
        ("n_features", n_features),
        ("n_teacher_units", n_teacher_units),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise ValueError(f"{name}: expected an integer >= 2, got {value!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise: expected a finite number >= 0, got {noise!r}")
    rng = np.random.RandomState(random_state)
    X = rng.standard_normal((n_samples, n_features))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    V = rng.standard_normal((n_teacher_units, n_features))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    b = rng.standard_normal(n_teacher_units)
    clean = np.sin(np.sqrt(n_features) * X @ V.T) @ b
    clean = (clean - clean.mean()) / clean.std()
    y = clean + noise * rng.standard_normal(n_samples)
    y = (y - y.mean()) / y.std()
    return Task(
        name="teacher",
        X=X,
        y=y,
        description=(
            f"synthetic teacher: {n_samples} inputs uniform on the unit sphere in "
            f"d={n_features}, targets sum of {n_teacher_units} smooth units "
            f"sin(sqrt(d) <v, x>) with {noise:g} relative noise"
        ),
    )


def _diabetes() -> Task:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = _standardise(np.asarray(X, dtype=np.float64))
    y = _standardise(np.asarray(y, dtype=np.float64))
    return Task(
        name="diabetes",
        X=np.ascontiguousarray(X),
        y=y,
        description=(
            f"scikit-learn's diabetes data (real): {X.shape[0]} patients, "
            f"{X.shape[1]} standardised features, standardised disease progression"
        ),
    )


def load_task(name: str) -> Task:
    """Load an embedded task by name; no download.

    Parameters
    ----------
    name : {"teacher", "diabetes"}

    Returns
    -------
    Task

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`TASK_NAMES`.

    Examples
    --------
    >>> from pybinscale.datasets import load_task
    >>> task = load_task("teacher")
    >>> task.name, task.X.shape
    ('teacher', (1024, 16))
    >>> load_task("mnist")
    Traceback (most recent call last):
    ...
    ValueError: task: unknown task 'mnist'; the embedded tasks are 'teacher', 'diabetes'
    """
    if name == "teacher":
        return make_teacher_task()
    if name == "diabetes":
        return _diabetes()
    known = ", ".join(repr(n) for n in TASK_NAMES)
    raise ValueError(f"task: unknown task {name!r}; the embedded tasks are {known}")
