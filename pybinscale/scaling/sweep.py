"""``ScalingSweep``: train a grid of 1-bit networks and their twins, fit scaling laws.

A *point* is one fitted model, identified by (task, init, precision, width, n_train,
seed). Points that differ only in precision are *twins*: same initial weights, same
data, same steps. A sweep runs the twins of one (task, init, width, n_train, seed)
together in one joblib task, so that every row can carry the generalisation difference
against its full-precision twin, and writes each row to the results file (see
:mod:`pybinscale.scaling.results`) as soon as its task returns. Tasks run through
scikit-learn's ``Parallel``/``delayed``: ``n_jobs`` spreads them over local processes,
and ``joblib.parallel_config(backend="dask")`` over the workers of a Dask cluster.

What each row records (one fitted model):

========================================  ==============================================
column                                    meaning
========================================  ==============================================
task, init, precision, width, n_train,    the point (init: ``"symmetric"`` or
seed                                      ``"plain"``; precision: ``"1bit"``/``"full"``)
N, model_bits, bits_per_weight            trained parameters, storage in bits, bits/N
steps, compute                            gradient steps taken; arithmetic operations
                                          of training, counted by the estimator
train_loss, test_loss                     ``1/(2n) sum (f(x) - y)^2`` on the training
                                          set after the last step, and on the test set
generalization_difference_mean, _max      ``|f(x) - f_full(x)|`` on the test inputs,
                                          against the full-precision twin
kernel_error_init                         ``||H(0) - H*||_F / ||H*||_F`` on the
                                          training inputs, ``H*`` the infinite-width NTK
kernel_drift, kernel_drift_max            ``||H(T) - H(0)||_F / ||H(0)||_F`` at the end
                                          and the largest over the tracked steps
sign_flip_fraction                        hidden weights whose sign changed in training
ntk_train_loss, ntk_test_loss             the same losses for the NTK prediction:
                                          gradient descent on the linearised network
                                          with ``H*``, same step size and steps
ntk_difference_mean                       ``|f(x) - f_NTK(x)|`` on the test inputs
curve_step, loss_curve, ntk_loss_curve    the training loss at up to 40 steps, and the
                                          NTK prediction at the same steps
wall_time, version                        seconds to fit and evaluate; pybinscale version
========================================  ==============================================
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, clone

from .results import RESULTS_FILENAME, ResultsWriter, row_key
from .sweep_laws import KEY_COLUMNS, PRECISION_BITS, SweepLaws, fit_sweep_laws, results_frame

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PointFailedError", "ScalingSweep"]

FloatArray = NDArray[np.float64]

_INITS = ("symmetric", "plain")
# The training loss is recorded at about this many steps, spaced geometrically.
_CURVE_POINTS = 40
# The split of every task into a training pool and a test set does not depend on the
# seeds of the sweep, so that all points are scored on the same test set.
_SPLIT_SEED = 0


class PointFailedError(RuntimeError):
    """Fitting one point of a sweep raised; the message names the point and the error."""


# ------------------------------------------------------------------ validation


def _check_int_list(values: Any, name: str, minimum: int) -> list[int]:
    if isinstance(values, (Integral, str)) or not isinstance(values, Iterable):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"{name}: expected at least one value, got none")
    checked = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
            raise ValueError(f"{name}: expected integers >= {minimum}, got {value!r}")
        checked.append(int(value))
    if len(set(checked)) != len(checked):
        raise ValueError(f"{name}: values repeat: {checked}")
    return checked


def _check_choices(values: Any, name: str, allowed: Sequence[str]) -> list[str]:
    if isinstance(values, str):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"{name}: expected at least one of {list(allowed)}, got none")
    for value in values:
        if value not in allowed:
            raise ValueError(f"{name}: expected values from {list(allowed)}, got {value!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name}: values repeat: {values}")
    return [str(v) for v in values]


def _test_count(test_size: Any, n_samples: int) -> int:
    if isinstance(test_size, bool):
        raise ValueError(f"test_size: expected a fraction in (0, 1) or a count, got {test_size!r}")
    if isinstance(test_size, Integral):
        count = int(test_size)
    elif isinstance(test_size, Real) and 0.0 < float(test_size) < 1.0:
        count = int(math.ceil(float(test_size) * n_samples))
    else:
        raise ValueError(f"test_size: expected a fraction in (0, 1) or a count, got {test_size!r}")
    if not 1 <= count < n_samples:
        raise ValueError(
            f"test_size: {test_size!r} leaves {count} of {n_samples} samples for testing; "
            "expected at least 1 and fewer than all"
        )
    return count


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------- one point


@dataclass(frozen=True)
class _Group:
    """Twins of one (task, init, width, n_train, seed), run in one joblib task."""

    task: str
    init: str
    width: int
    n_train: int
    seed: int


@dataclass
class _TaskData:
    X_pool: FloatArray
    y_pool: FloatArray
    X_test: FloatArray
    y_test: FloatArray
    digest: str


def _threads_for_task(default: int) -> int:
    """Kernel threads for this task: the cores of this Dask worker shared among its
    threads, or ``default`` (computed by the parent from ``n_jobs``) elsewhere."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return default
    state = getattr(worker, "state", worker)
    nthreads = int(getattr(state, "nthreads", getattr(worker, "nthreads", 1)) or 1)
    return max(1, _available_cores() // nthreads)


def _curve_steps(n_steps: int) -> NDArray[np.int64]:
    if n_steps <= 0:
        return np.zeros(1, dtype=np.int64)
    steps = np.unique(np.round(np.geomspace(1, n_steps, _CURVE_POINTS)).astype(np.int64))
    return np.concatenate([[0], steps])


def _kernel_prediction(
    X_train: FloatArray, y_train: FloatArray, X_test: FloatArray, params: Mapping[str, Any],
    steps: int, curve_steps: NDArray[np.int64],
) -> tuple[FloatArray, FloatArray, float]:
    """The infinite-width NTK's prediction for a network trained ``steps`` steps:
    its outputs on ``X_test``, its training loss at ``curve_steps`` and at ``steps``."""
    from pybinscale.estimators.ntk_regressor import NTKRegressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an ill-conditioned kernel is expected here
        kernel = NTKRegressor(
            kernel="limit",
            kappa=float(params.get("kappa", 1.0)),
            learning_rate=float(params.get("learning_rate", 1.0)),
            time=float(steps),
            input_norm=params.get("input_norm", "l2"),
        ).fit(X_train, y_train)
        return (
            np.asarray(kernel.predict(X_test), dtype=np.float64),
            np.asarray(kernel.loss_at(curve_steps.astype(np.float64)), dtype=np.float64),
            float(kernel.loss_at(float(steps))),
        )


def _half_mse(prediction: FloatArray, target: FloatArray) -> float:
    return float(0.5 * np.mean((np.ravel(prediction) - np.ravel(target)) ** 2))


def _diverged_error() -> tuple[type[BaseException], ...]:
    try:
        from pybinscale.estimators.binary_mlp import TrainingDivergedError
    except ImportError:  # pragma: no cover - an estimator without the error
        return ()
    return (TrainingDivergedError,)


def _run_group(
    estimator: BaseEstimator,
    group: _Group,
    precisions: Sequence[str],
    max_iter: int,
    kernel_interval: int,
    data: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    threads: int,
    version: str,
) -> list[dict[str, Any]]:
    """Fit the twins of one group and return their rows (runs in a joblib worker).

    ``data`` is ``(X_train, y_train, X_test, y_test)`` in a tuple on purpose: joblib's
    Dask backend scatters large array arguments to one worker and cannot recover them
    if that worker dies, while a tuple travels inside the task, which Dask can rerun
    anywhere.
    """
    import pybinscale
    from pybinscale.estimators._inputs import normalize_inputs

    X_train, y_train, X_test, y_test = data

    previous_threads = pybinscale.get_num_threads()
    pybinscale.set_num_threads(_threads_for_task(threads))
    try:
        params = estimator.get_params()
        kappa = float(params.get("kappa", 1.0))
        output_layer = bool(params.get("train_output_layer", False))
        train_n = normalize_inputs(np.asarray(X_train, dtype=np.float64), params.get("input_norm", "l2"))
        limit = pybinscale.ntk_limit(train_n, kappa=kappa, output_layer=output_layer)
        diverged_errors = _diverged_error()
        # The full-precision twin first, so that the 1-bit row can be compared with it.
        fitted: dict[str, _Fit] = {}
        for precision in sorted(precisions, key=lambda p: p != "full"):
            model = clone(estimator).set_params(
                width=group.width,
                precision=precision,
                random_state=group.seed,
                symmetric_init=group.init == "symmetric",
                track_kernel=kernel_interval,
                max_iter=max_iter,
            )
            start = time.perf_counter()
            try:
                model.fit(X_train, y_train)
                prediction = np.asarray(model.predict(X_test), dtype=np.float64)
                fitted[precision] = _Fit(model, prediction, time.perf_counter() - start)
            except diverged_errors as error:
                fitted[precision] = _Fit(None, None, time.perf_counter() - start, str(error))
            except Exception as error:
                raise PointFailedError(
                    f"point task={group.task} init={group.init} precision={precision} "
                    f"width={group.width} n_train={group.n_train} seed={group.seed} "
                    f"failed: {type(error).__name__}: {error}"
                ) from error
        steps = {f.model.n_iter_ for f in fitted.values() if f.model is not None}
        curve_steps = _curve_steps(max(steps) if steps else max_iter)
        ntk_predictions = {
            n: _kernel_prediction(X_train, y_train, X_test, params, n, curve_steps)
            for n in steps
        }
        return [
            _row(group, precision, fitted[precision], fitted.get("full"), limit,
                 ntk_predictions, curve_steps, y_test, version)
            for precision in precisions
        ]
    finally:
        pybinscale.set_num_threads(previous_threads)


@dataclass
class _Fit:
    model: Any
    prediction: FloatArray | None
    wall_time: float
    diverged: str = ""


def _row(
    group: _Group,
    precision: str,
    fit: _Fit,
    twin: _Fit | None,
    limit: FloatArray,
    ntk_predictions: Mapping[int, tuple[FloatArray, FloatArray, float]],
    curve_steps: NDArray[np.int64],
    y_test: FloatArray,
    version: str,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "task": group.task,
        "init": group.init,
        "precision": precision,
        "width": group.width,
        "n_train": group.n_train,
        "seed": group.seed,
    }
    model = fit.model
    if model is None:  # training diverged: a row that says so, with no numbers
        nan = math.nan
        row.update(
            {name: nan for name in _NUMBER_COLUMNS}
            | {"curve_step": [], "loss_curve": [], "ntk_loss_curve": []}
        )
        row.update(diverged=True, note=fit.diverged, wall_time=fit.wall_time, version=version)
        return row
    assert fit.prediction is not None
    curve = np.asarray(model.loss_curve_, dtype=np.float64)
    steps = int(model.n_iter_)
    history = getattr(model, "kernel_history_", None) or {}
    change = np.asarray(history.get("kernel_change", [math.nan]), dtype=np.float64)
    flips = np.asarray(history.get("sign_flip_fraction", [math.nan]), dtype=np.float64)
    initial = getattr(model, "kernel_at_init_", None)
    limit_norm = float(np.linalg.norm(limit))
    kernel_error = (
        float(np.linalg.norm(np.asarray(initial) - limit) / limit_norm)
        if initial is not None and limit_norm > 0
        else math.nan
    )
    if twin is not None and twin.prediction is not None:
        difference = np.abs(fit.prediction - twin.prediction)
        difference_mean, difference_max = float(difference.mean()), float(difference.max())
    else:
        difference_mean = difference_max = math.nan
    ntk_outputs, ntk_curve, ntk_final = ntk_predictions[steps]
    sampled = curve_steps[curve_steps <= steps]
    row.update(
        {
            "N": int(model.n_parameters_),
            "model_bits": int(model.model_bits_),
            "bits_per_weight": int(model.model_bits_) / int(model.n_parameters_),
            "steps": steps,
            "compute": int(model.training_operations_),
            "train_loss": float(getattr(model, "train_loss_", curve[-1])),
            "test_loss": _half_mse(fit.prediction, y_test),
            "generalization_difference_mean": difference_mean,
            "generalization_difference_max": difference_max,
            "kernel_error_init": kernel_error,
            "kernel_drift": float(change[-1]),
            "kernel_drift_max": float(np.nanmax(change)) if np.isfinite(change).any() else math.nan,
            "sign_flip_fraction": float(flips[-1]),
            "ntk_train_loss": ntk_final,
            "ntk_test_loss": _half_mse(ntk_outputs, y_test),
            "ntk_difference_mean": float(np.mean(np.abs(fit.prediction - ntk_outputs))),
            "curve_step": sampled.tolist(),
            "loss_curve": curve[sampled].tolist(),
            "ntk_loss_curve": ntk_curve[: sampled.size].tolist(),
            "diverged": False,
            "note": "",
            "wall_time": float(fit.wall_time),
            "version": version,
        }
    )
    return row


#: The numeric columns of a row, NaN in the row of a fit that diverged.
_NUMBER_COLUMNS = (
    "N", "model_bits", "bits_per_weight", "steps", "compute", "train_loss", "test_loss",
    "generalization_difference_mean", "generalization_difference_max",
    "kernel_error_init", "kernel_drift", "kernel_drift_max", "sign_flip_fraction",
    "ntk_train_loss", "ntk_test_loss", "ntk_difference_mean",
)


# ----------------------------------------------------------------- the sweep


class ScalingSweep(BaseEstimator):
    """Train a grid of 1-bit networks and their full-precision twins, resumably.

    Every combination of ``widths``, ``n_train`` (training-set sizes) and ``seeds``
    trains one network per precision and per initialisation; each finished point is
    appended to ``out/results.jsonl`` at once (see :mod:`pybinscale.scaling.results`),
    so a killed run loses nothing it finished, and running again resumes.

    Parameters
    ----------
    estimator : estimator, default=None
        The template network, cloned for every point with its ``width``,
        ``precision``, ``random_state`` (the seed), ``symmetric_init``,
        ``track_kernel`` and ``max_iter`` set by the sweep; its other parameters
        (learning rate, kappa, ...) are kept. None means
        ``pybinscale.BinaryMLPRegressor()``.
    widths : sequence of int, default=(64, 256, 1024, 4096)
        Hidden widths m (even, for the symmetric initialisation).
    n_train : sequence of int, default=(64, 128, 256)
        Training-set sizes D, drawn from the training pool without replacement; the
        sets of one seed are nested.
    seeds : sequence of int, default=(0, 1)
        Seeds of the initial weights and of the training subsets.
    precisions : sequence of {"1bit", "full"}, default=("1bit", "full")
        Precisions to train; with ``"full"``, every row carries the generalisation
        difference against its full-precision twin.
    inits : sequence of {"symmetric", "plain"}, default=("symmetric",)
        Initialisations: ``"symmetric"`` (mirrored neuron pairs, output 0 at the
        start; the theory's setting) and ``"plain"`` (independent neurons).
    test_size : float or int, default=0.25
        Fraction (or count) of each task held out as the common test set; the split
        does not depend on the seeds.
    max_iter : int, default=None
        Gradient steps per fit; None keeps the estimator's.
    kernel_checkpoints : int, default=10
        How many times during training the empirical NTK is compared with its
        initial value (for the kernel drift).
    out : str or path-like, default=None
        Output directory for the results file; None keeps results in memory only.
    n_jobs : int, default=None
        Joblib workers; None means 1 unless in a ``joblib.parallel_config`` context,
        -1 all CPUs. Under ``parallel_config(backend="dask")`` the points run on the
        cluster's workers.
    verbose : bool, default=True
        Show a progress bar over points.

    Attributes
    ----------
    results_ : pandas.DataFrame
        One row per point (columns: see :mod:`pybinscale.scaling.sweep`), in grid order.
    results_path_ : Path or None
        The results file.
    fingerprint_ : str
        Hash of the configuration (sweep, estimator, task data, package version).
    configuration_ : dict
        The configuration that was hashed.
    n_resumed_ : int
        Points found finished in the results file and not run again.
    n_run_ : int
        Points run by the last :meth:`run`.

    See Also
    --------
    pybinscale.ScalingLaw : the laws :meth:`fit_laws` fits.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import BinaryMLPRegressor
    >>> from pybinscale.scaling import ScalingSweep
    >>> from pybinscale.datasets import load_task
    >>> task = load_task("teacher")
    >>> sweep = ScalingSweep(
    ...     BinaryMLPRegressor(learning_rate=4.0), widths=[64, 256], n_train=[64],
    ...     seeds=[0], max_iter=50, verbose=False,
    ... )
    >>> table = sweep.run(task.X, task.y, task="teacher")
    >>> len(table), sorted(set(table.precision))
    (4, ['1bit', 'full'])
    >>> bool((table.kernel_error_init > 0).all())
    True
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        widths: Sequence[int] = (64, 256, 1024, 4096),
        n_train: Sequence[int] = (64, 128, 256),
        seeds: Sequence[int] = (0, 1),
        precisions: Sequence[str] = ("1bit", "full"),
        *,
        inits: Sequence[str] = ("symmetric",),
        test_size: float | int = 0.25,
        max_iter: int | None = None,
        kernel_checkpoints: int = 10,
        out: str | os.PathLike[str] | None = None,
        n_jobs: int | None = None,
        verbose: bool = True,
    ) -> None:
        self.estimator = estimator
        self.widths = widths
        self.n_train = n_train
        self.seeds = seeds
        self.precisions = precisions
        self.inits = inits
        self.test_size = test_size
        self.max_iter = max_iter
        self.kernel_checkpoints = kernel_checkpoints
        self.out = out
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------ configuration

    def _template(self) -> BaseEstimator:
        if self.estimator is not None:
            template = self.estimator
        else:
            from pybinscale import BinaryMLPRegressor

            template = BinaryMLPRegressor()
        params = template.get_params()
        needed = ("width", "precision", "random_state", "symmetric_init", "track_kernel", "max_iter")
        missing = [name for name in needed if name not in params]
        if missing:
            raise TypeError(
                f"estimator: {type(template).__name__} lacks the parameters {missing}; "
                "a sweep needs a network estimator such as BinaryMLPRegressor"
            )
        return template

    def _validated(self) -> dict[str, Any]:
        template = self._template()
        widths = _check_int_list(self.widths, "widths", 2)
        inits = _check_choices(self.inits, "inits", _INITS)
        if "symmetric" in inits and any(w % 2 for w in widths):
            odd = [w for w in widths if w % 2]
            raise ValueError(
                f"widths: the symmetric initialisation pairs neurons, so widths must be "
                f"even; got {odd}"
            )
        max_iter = self.max_iter if self.max_iter is not None else template.get_params()["max_iter"]
        if isinstance(max_iter, bool) or not isinstance(max_iter, Integral) or max_iter < 1:
            raise ValueError(f"max_iter: expected an integer >= 1, got {max_iter!r}")
        checkpoints = self.kernel_checkpoints
        if isinstance(checkpoints, bool) or not isinstance(checkpoints, Integral) or checkpoints < 1:
            raise ValueError(f"kernel_checkpoints: expected an integer >= 1, got {checkpoints!r}")
        if self.n_jobs is not None and (
            isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, Integral) or self.n_jobs == 0
        ):
            raise ValueError(f"n_jobs: expected a nonzero integer or None, got {self.n_jobs!r}")
        return {
            "template": template,
            "widths": widths,
            "n_train": _check_int_list(self.n_train, "n_train", 1),
            "seeds": _check_int_list(self.seeds, "seeds", 0),
            "precisions": _check_choices(self.precisions, "precisions", tuple(PRECISION_BITS)),
            "inits": inits,
            "max_iter": int(max_iter),
            "kernel_interval": max(1, math.ceil(int(max_iter) / int(checkpoints))),
        }

    def _configuration(
        self, settings: Mapping[str, Any], tasks: Mapping[str, _TaskData]
    ) -> dict[str, Any]:
        import pybinscale

        template = settings["template"]
        swept = {"width", "precision", "random_state", "symmetric_init", "track_kernel", "max_iter"}
        estimator_params = {
            k: v for k, v in template.get_params(deep=False).items() if k not in swept
        }
        return {
            "sweep": {
                "widths": settings["widths"],
                "n_train": settings["n_train"],
                "seeds": settings["seeds"],
                "precisions": settings["precisions"],
                "inits": settings["inits"],
                "test_size": self.test_size,
                "max_iter": settings["max_iter"],
                "kernel_checkpoints": int(self.kernel_checkpoints),
            },
            "estimator": {
                "class": f"{type(template).__module__}.{type(template).__qualname__}",
                "params": estimator_params,
            },
            "tasks": {
                name: {
                    "n_pool": int(data.X_pool.shape[0]),
                    "n_test": int(data.X_test.shape[0]),
                    "n_features": int(data.X_pool.shape[1]),
                    "sha256": data.digest,
                }
                for name, data in tasks.items()
            },
            "version": pybinscale.__version__,
        }

    def _split(self, X: ArrayLike, y: ArrayLike, name: str, n_train: Sequence[int]) -> _TaskData:
        from sklearn.utils.validation import check_X_y

        from pybinscale.datasets import data_digest

        X_valid, y_valid = check_X_y(X, y, dtype=np.float64, y_numeric=True)
        n_samples = X_valid.shape[0]
        n_test = _test_count(self.test_size, n_samples)
        order = np.random.RandomState(_SPLIT_SEED).permutation(n_samples)
        test, pool = order[:n_test], order[n_test:]
        largest = max(n_train)
        if largest > pool.size:
            raise ValueError(
                f"n_train: {largest} training points asked for task {name!r}, but it has "
                f"{n_samples} samples of which {n_test} are held out for testing "
                f"(test_size={self.test_size!r}), leaving {pool.size}"
            )
        return _TaskData(
            X_pool=X_valid[pool],
            y_pool=y_valid[pool],
            X_test=X_valid[test],
            y_test=y_valid[test],
            digest=data_digest(X_valid, y_valid),
        )

    # --------------------------------------------------------------------- run

    def run(self, X: ArrayLike, y: ArrayLike, *, task: str = "custom") -> pd.DataFrame:
        """Run every point not yet in the results file and return the whole table.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            All the task's inputs; ``test_size`` of them are held out.
        y : array-like of shape (n_samples,)
        task : str, default="custom"
            Name of the task, recorded in every row.

        Returns
        -------
        pandas.DataFrame
            One row per point (also kept as ``results_``).

        Raises
        ------
        ForeignResultsError
            If ``out`` holds results of a different configuration.
        CorruptResultsError
            If ``out`` holds a damaged results file.
        PointFailedError
            If fitting a point raised; the points finished before are kept.
        """
        return self.run_tasks({task: (X, y)})

    def run_tasks(self, tasks: Mapping[str, tuple[ArrayLike, ArrayLike]]) -> pd.DataFrame:
        """Run the sweep on several tasks into one results file.

        Parameters
        ----------
        tasks : mapping of str to (X, y)
            Each task's name and data, in the order their rows are listed.

        Returns
        -------
        pandas.DataFrame
            One row per point of every task (also kept as ``results_``).

        Examples
        --------
        >>> from pybinscale import BinaryMLPRegressor
    >>> from pybinscale.scaling import ScalingSweep
        >>> from pybinscale.datasets import load_task
        >>> tasks = {name: (t.X, t.y) for name in ("teacher", "diabetes")
        ...          for t in [load_task(name)]}
        >>> sweep = ScalingSweep(BinaryMLPRegressor(learning_rate=4.0), widths=[64],
        ...                      n_train=[64], seeds=[0], max_iter=20, verbose=False)
        >>> sweep.run_tasks(tasks).groupby("task").size().to_dict()
        {'diabetes': 2, 'teacher': 2}
        """
        import pybinscale
        from joblib import effective_n_jobs
        from sklearn.utils.parallel import Parallel, delayed
        from tqdm.auto import tqdm

        if not isinstance(tasks, Mapping) or not tasks:
            raise ValueError("tasks: expected a non-empty mapping of name to (X, y)")
        settings = self._validated()
        data = {
            str(name): self._split(X, y, str(name), settings["n_train"])
            for name, (X, y) in tasks.items()
        }
        configuration = self._configuration(settings, data)
        groups = [
            _Group(task, init, width, n, seed)
            for task in data
            for init in settings["inits"]
            for width in settings["widths"]
            for n in settings["n_train"]
            for seed in settings["seeds"]
        ]
        precisions = settings["precisions"]
        keys = [
            (g.task, g.init, p, g.width, g.n_train, g.seed) for g in groups for p in precisions
        ]
        writer = (
            ResultsWriter(
                Path(self.out) / RESULTS_FILENAME,
                configuration,
                extra_header={"created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            )
            if self.out is not None
            else None
        )
        self.configuration_ = configuration
        self.fingerprint_ = (
            writer.fingerprint if writer is not None else _fingerprint(configuration)
        )
        self.results_path_ = writer.path if writer is not None else None
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        with writer if writer is not None else _NullContext():
            if writer is not None:
                for row in writer.rows:
                    found.setdefault(row_key(row, KEY_COLUMNS), row)
            wanted = set(keys)
            done = {key for key in found if key in wanted}
            pending = [
                g for g in groups
                if any((g.task, g.init, p, g.width, g.n_train, g.seed) not in done for p in precisions)
            ]
            self.n_resumed_ = len(done)
            self.n_run_ = 0
            n_jobs = effective_n_jobs(self.n_jobs)
            threads = max(1, _available_cores() // max(1, min(n_jobs, len(pending) or 1)))
            template = settings["template"]
            with tqdm(
                total=len(keys),
                initial=len(done),
                desc="sweep",
                unit="point",
                disable=not self.verbose,
                dynamic_ncols=True,
            ) as bar:
                if pending:
                    calls = (
                        delayed(_run_group)(
                            template,
                            group,
                            precisions,
                            settings["max_iter"],
                            settings["kernel_interval"],
                            (
                                *self._training_set(data[group.task], group),
                                data[group.task].X_test,
                                data[group.task].y_test,
                            ),
                            threads,
                            pybinscale.__version__,
                        )
                        for group in pending
                    )
                    results = Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")(calls)
                    for rows in results:
                        for row in rows:
                            key = row_key(row, KEY_COLUMNS)
                            if key in done:
                                continue
                            if writer is not None:
                                writer.append(row)
                            found[key] = row
                            done.add(key)
                            self.n_run_ += 1
                            bar.update(1)
        self.results_ = results_frame([found[key] for key in keys])
        return self.results_

    @staticmethod
    def _training_set(data: _TaskData, group: _Group) -> tuple[FloatArray, FloatArray]:
        order = np.random.RandomState(group.seed).permutation(data.X_pool.shape[0])
        chosen = order[: group.n_train]
        return data.X_pool[chosen], data.y_pool[chosen]

    # -------------------------------------------------------------------- laws

    def fit_laws(
        self,
        table: pd.DataFrame | None = None,
        *,
        task: str | None = None,
        init: str = "symmetric",
        loss: str = "test_loss",
        n_resamples: int = 200,
        confidence_level: float = 0.95,
        random_state: int = 0,
        n_jobs: int | None = None,
    ) -> SweepLaws:
        """Fit scaling laws to the results, with bootstrap intervals.

        See :func:`fit_sweep_laws` for the laws and the parameters.

        Parameters
        ----------
        table : DataFrame, default=None
            Results to fit; None takes ``results_`` from the last :meth:`run`.
        task, init, loss, n_resamples, confidence_level, random_state, n_jobs
            As in :func:`fit_sweep_laws`.

        Returns
        -------
        SweepLaws
        """
        if table is None:
            if not hasattr(self, "results_"):
                raise ValueError("fit_laws: no results yet; call run() first or pass table")
            table = self.results_
        return fit_sweep_laws(
            table,
            task=task,
            init=init,
            loss=loss,
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            random_state=random_state,
            n_jobs=n_jobs,
        )


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def _fingerprint(configuration: Mapping[str, Any]) -> str:
    from .results import configuration_fingerprint

    return configuration_fingerprint(configuration)
