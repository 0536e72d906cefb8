"""The ``ScalingLaw`` estimator: a scaling law fitted like any scikit-learn regressor."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Tags, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .allocation import ComputeOptimalAllocation, chinchilla_allocation
from .bootstrap import (
    RefitProblem,
    bootstrap_starts,
    bootstrap_weights,
    percentile_intervals,
    refit_resamples,
)
from .data import (
    check_enough_points,
    check_positive,
    column_labels,
    default_variables,
    resolve_variables,
)
from .extrapolation import LeaveOutReport, leave_out_largest
from .fitting import HuberLogObjective, fit_from_starts
from .forms import FORMS, ScalingForm, effective_size_factor, get_form
from .plotting import plot_law

__all__ = ["ScalingLaw"]

FloatArray = NDArray[np.float64]


class ScalingLaw(RegressorMixin, BaseEstimator):
    """A scaling law, loss as a power law of model size, data and compute.

    The law is fitted in log space with a Huber loss, from a grid of starting points,
    keeping the best optimum (Hoffmann et al. 2022, approach 3). Every start is advanced
    at once by damped Newton steps with analytic derivatives, and the best optima are
    polished with L-BFGS-B under tolerances relative to the loss, so the fit stops at the
    optimum and not where an absolute tolerance happened to be met.

    Parameters
    ----------
    form : {"power", "power_offset", "kaplan", "chinchilla", "precision"}, \
            default="chinchilla"
        The law, with L the loss, N the number of parameters, D the number of training
        tokens, C the training compute, P the bits per weight:

        - ``"power"``: ``L = (X_c / X)^alpha`` in one variable X (N, D, C or P);
        - ``"power_offset"``: ``L = E + A / X^alpha`` in one variable;
        - ``"kaplan"``: ``L = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D``;
        - ``"chinchilla"``: ``L = E + A / N^alpha + B / D^beta``;
        - ``"precision"``: Chinchilla with N replaced by the effective size
          ``N (1 - exp(-P / gamma))``, so that runs at several precisions (e.g. 1-bit
          and 32-bit) are fitted together.

    variables : list of str, default=None
        Names of the columns of an array X, from ``"N"``, ``"D"``, ``"C"``, ``"P"``.
        None takes the form's variables in the order above (``["N"]`` for the
        single-variable forms). A DataFrame X names its columns itself.
    delta : float, default=1e-3
        Huber threshold on the residuals ``log L_hat - log L``.
    start_grid : dict of str to list of float, default=None
        Starting values for the form's internal parameters (see Notes); the starts
        are their Cartesian product. Missing keys keep their defaults.
    max_iter : int, default=500
        Most Newton iterations per start.
    tol : float, default=1e-12
        Relative tolerance on the objective: a start stops when a step lowers it by
        less than ``tol`` times its value.
    random_state : int, RandomState instance or None, default=None
        Seeds the resampling of :meth:`bootstrap` (the fit itself is deterministic).
    n_jobs : int, default=None
        Processes for :meth:`bootstrap`; None means 1, -1 all CPUs.
    verbose : bool, default=True
        Show progress bars for work that takes more than two seconds.

    Attributes
    ----------
    params_ : dict of str to float
        The fitted parameters, keyed by their names in the formula.
    derived_ : dict of str to float
        Quantities derived from them: for ``"chinchilla"`` and ``"precision"``,
        ``N_opt_exponent = beta / (alpha + beta)`` and
        ``D_opt_exponent = alpha / (alpha + beta)`` (N_opt ∝ C^a, D_opt ∝ C^b); for
        ``"precision"`` also ``one_bit_worth``, how many 32-bit weights one 1-bit
        weight is worth, ``(1 - exp(-1 / gamma)) / (1 - exp(-32 / gamma))``.
    internal_params_ : ndarray of shape (n_params,)
        The optimum in the optimiser's parameters (see Notes).
    huber_loss_ : float
        The minimised objective, ``sum_i Huber_delta(log L_hat_i - log L_i)``.
    n_iter_ : int
        Iterations of the run that gave the optimum (Newton plus L-BFGS-B polish). A
        ``ConvergenceWarning`` says when its Newton run reached ``max_iter``.
    n_starts_ : int
        Number of starting points.
    local_optima_ : list of dict
        The distinct optima the starts reached, best first: ``params``,
        ``huber_loss`` and ``n_starts`` (how many starts ended there).
    form_ : str
        The form that was fitted.
    delta_ : float
        The Huber threshold of the fit, kept for :meth:`bootstrap`.
    variables_ : tuple of str
        The variable of each column of X.
    X_fit_ : ndarray of shape (n_samples, n_features)
        The training variables, kept for :meth:`bootstrap`, :meth:`leave_out` and
        :meth:`plot`.
    y_fit_ : ndarray of shape (n_samples,)
        The training losses.
    n_features_in_ : int
        Number of columns of X.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of X, when X was a DataFrame with string column names.
    confidence_intervals_ : dict of str to (float, float)
        After :meth:`bootstrap`: equal-tailed intervals of every parameter and derived
        quantity.
    bootstrap_params_ : dict of str to ndarray of shape (n_resamples,)
        After :meth:`bootstrap`: the refitted parameters and derived quantities.
    bootstrap_internal_params_ : ndarray of shape (n_resamples, n_params)
        After :meth:`bootstrap`: the refits in internal parameters.
    confidence_level_ : float
        After :meth:`bootstrap`: the level of the intervals.

    See Also
    --------
    pybinscale.scaling.forms : the formulas and their derivatives.

    Notes
    -----
    Internal parameters, the keys of ``start_grid``: ``"power"`` (k, alpha) with
    ``k = alpha log X_c``; ``"power_offset"`` (a, e, alpha); ``"chinchilla"``
    (a, b, e, alpha, beta) with ``A = e^a``, ``B = e^b``, ``E = e^e``; ``"kaplan"``
    (alpha_D, r, log_N_c, log_D_c) with ``r = alpha_N / alpha_D``; ``"precision"``
    the Chinchilla ones and ``log_gamma``. The default Chinchilla grid is Hoffmann
    et al.'s: alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in
    {0, 5, ..., 25}, 4,500 starts.

    References
    ----------
    Hoffmann et al. (2022), "Training compute-optimal large language models".
    Besiroglu et al. (2024), "Chinchilla scaling: a replication attempt".
    Kaplan et al. (2020), "Scaling laws for neural language models".

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale import ScalingLaw
    >>> N = np.array([1e7, 1e7, 1e8, 1e8, 1e9, 1e9, 3e9, 1e10])
    >>> D = np.array([1e9, 1e10, 1e9, 1e11, 1e10, 1e11, 1e11, 1e12])
    >>> loss = 1.7 + 400.0 / N**0.34 + 410.0 / D**0.28
    >>> law = ScalingLaw(form="chinchilla", verbose=False).fit(np.c_[N, D], loss)
    >>> {name: round(value, 3) for name, value in law.params_.items()}
    {'E': 1.7, 'A': 400.0, 'B': 410.0, 'alpha': 0.34, 'beta': 0.28}
    >>> float(law.predict([[1e11, 2e12]])[0]) < 2.0
    True
    """

    _parameter_constraints: dict = {
        "form": [StrOptions(set(FORMS))],
        "variables": [list, tuple, None],
        "delta": [Interval(Real, 0, None, closed="neither")],
        "start_grid": [dict, None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["boolean"],
    }

    def __init__(
        self,
        form: str = "chinchilla",
        *,
        variables: list[str] | tuple[str, ...] | None = None,
        delta: float = 1e-3,
        start_grid: dict[str, Any] | None = None,
        max_iter: int = 500,
        tol: float = 1e-12,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
        verbose: bool = True,
    ) -> None:
        self.form = form
        self.variables = variables
        self.delta = delta
        self.start_grid = start_grid
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        # A power law lives in log space: every variable and every loss must be > 0.
        tags.input_tags.positive_only = True
        tags.target_tags.positive_only = True
        return tags

    # ------------------------------------------------------------------ fitting

    def _form_columns(self, X: FloatArray) -> FloatArray:
        """The columns of validated X in the order the fitted form reads them."""
        form = get_form(self.form_)
        if form.variables is None:
            return X
        return X[:, [self.variables_.index(v) for v in form.variables]]

    def _objective(self, weights: FloatArray | None = None) -> HuberLogObjective:
        return HuberLogObjective(
            get_form(self.form_),
            self._form_columns(self.X_fit_),
            self.y_fit_,
            self.delta_,
            weights=weights,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike) -> ScalingLaw:
        """Fit the law to losses ``y`` at the variables ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_variables)
            Positive variables: a DataFrame with columns named ``N``, ``D``, ``C``,
            ``P``, or an array whose columns ``variables`` names.
        y : array-like of shape (n_samples,)
            Positive losses.

        Returns
        -------
        self : ScalingLaw
            The fitted estimator.

        Raises
        ------
        ValueError
            If X or y holds NaN, inf or values <= 0, if there are fewer points than
            parameters, or if X's variables are not the ones the form needs.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale import ScalingLaw
        >>> C = np.logspace(18, 22, 12)
        >>> law = ScalingLaw(form="power", variables=["C"], verbose=False)
        >>> law.fit(C[:, None], (2.3e8 / C) ** 0.05).variables_
        ('C',)
        >>> round(law.params_["alpha"], 6)
        0.05
        """
        form = get_form(self.form)
        X_valid, y_valid = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        check_enough_points(form, X_valid.shape[0])
        names = getattr(self, "feature_names_in_", None)
        names = None if names is None else list(names)
        # Values first: a bad number is the more useful message when both are wrong.
        labels = column_labels(
            names, X_valid.shape[1], self.variables, default=default_variables(form)
        )
        check_positive(X_valid, "X", labels)
        check_positive(y_valid, "y", ["the loss"])
        self.variables_ = resolve_variables(form, names, X_valid.shape[1], self.variables)

        self.form_ = form.name
        self.delta_ = float(self.delta)
        self.X_fit_, self.y_fit_ = X_valid, y_valid
        starts = form.start_grid(self.start_grid)
        result = fit_from_starts(
            self._objective(),
            starts,
            max_iter=self.max_iter,
            rtol=self.tol,
            progress=self.verbose,
        )
        if not result.converged:
            warnings.warn(
                f"the best start had not converged after max_iter={self.max_iter} Newton "
                "steps (L-BFGS-B then polished it); increase max_iter",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.internal_params_ = result.theta
        self.params_ = _to_floats(form.public_params(result.theta))
        self.derived_ = _to_floats(form.derived_quantities(self.params_))
        self.huber_loss_ = result.value
        self.n_iter_ = result.n_iter
        self.n_starts_ = starts.shape[0]
        self.local_optima_ = [
            {
                "params": _to_floats(form.public_params(theta)),
                "huber_loss": float(v),
                "n_starts": int(c),
            }
            for theta, v, c in zip(
                result.optima, result.optima_values, result.optima_counts
            )
        ]
        self._local_optima_internal = result.optima
        for attribute in (
            "confidence_intervals_",
            "bootstrap_params_",
            "bootstrap_internal_params_",
            "confidence_level_",
        ):
            self.__dict__.pop(attribute, None)  # a refit invalidates an old bootstrap
        return self

    def _validated_variables(self, X: ArrayLike) -> FloatArray:
        check_is_fitted(self)
        X_valid = validate_data(self, X, dtype=np.float64, reset=False)
        check_positive(X_valid, "X", column_labels(self.variables_, X_valid.shape[1], None))
        return X_valid

    def _predict_internal(self, X_valid: FloatArray, thetas: FloatArray) -> FloatArray:
        form = get_form(self.form_)
        data = form.prepare(self._form_columns(X_valid))
        with np.errstate(over="ignore"):
            return np.exp(form.log_predict(np.atleast_2d(thetas), data))

    def predict(self, X: ArrayLike) -> FloatArray:
        """Predict the loss at the variables ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_variables)
            Positive variables, with the columns seen in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predicted losses.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale import ScalingLaw
        >>> N = np.logspace(6, 10, 12)
        >>> law = ScalingLaw(form="power_offset", verbose=False)
        >>> law = law.fit(N[:, None], 1.5 + 1e3 / N**0.5)
        >>> np.round(law.predict([[1e12]]), 6)  # 1.5 + 1e3 / 1e6
        array([1.501])
        """
        X_valid = self._validated_variables(X)
        return self._predict_internal(X_valid, self.internal_params_)[0]

    # ------------------------------------------------------------- uncertainty

    def bootstrap(
        self,
        n_resamples: int = 1000,
        *,
        confidence_level: float = 0.95,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
    ) -> ScalingLaw:
        """Refit on resampled points to give confidence intervals.

        Each resample draws the n training points with replacement and refits the law
        starting from the full-data optimum and the other local optima the full grid
        found that are nearly as good (see :mod:`pybinscale.scaling.bootstrap`).

        Parameters
        ----------
        n_resamples : int, default=1000
            Number of resamples.
        confidence_level : float, default=0.95
            Coverage of the equal-tailed percentile intervals.
        random_state : int, RandomState instance or None, default=None
            Seeds the resampling; None uses the estimator's ``random_state``.
        n_jobs : int or None, default=None
            Processes; None uses the estimator's ``n_jobs``.

        Returns
        -------
        self : ScalingLaw
            With ``confidence_intervals_``, ``bootstrap_params_``,
            ``bootstrap_internal_params_`` and ``confidence_level_`` set.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale import ScalingLaw
        >>> rng = np.random.RandomState(0)
        >>> N = np.logspace(6, 10, 30)
        >>> loss = (1e12 / N) ** 0.08 * np.exp(0.01 * rng.standard_normal(30))
        >>> law = ScalingLaw(form="power", verbose=False).fit(N[:, None], loss)
        >>> low, high = law.bootstrap(200, random_state=0).confidence_intervals_["alpha"]
        >>> bool(low < law.params_["alpha"] < high), bool(high - low < 0.01)
        (True, True)
        """
        check_is_fitted(self)
        if (
            not isinstance(n_resamples, Integral)
            or isinstance(n_resamples, bool)
            or n_resamples < 2
        ):
            raise ValueError(f"n_resamples: expected an integer >= 2, got {n_resamples!r}")
        if not isinstance(confidence_level, Real) or not 0.0 < confidence_level < 1.0:
            raise ValueError(
                f"confidence_level: expected a number in (0, 1), got {confidence_level!r}"
            )
        rng = check_random_state(
            self.random_state if random_state is None else random_state
        )
        form = get_form(self.form_)
        weights = bootstrap_weights(self.y_fit_.shape[0], int(n_resamples), rng)
        problem = RefitProblem(
            form,
            self._form_columns(self.X_fit_),
            self.y_fit_,
            self.delta_,
            starts=bootstrap_starts(
                self._local_optima_internal,
                np.array([o["huber_loss"] for o in self.local_optima_]),
            ),
            max_iter=self.max_iter,
            rtol=self.tol,
        )
        thetas, _ = refit_resamples(
            problem,
            weights,
            n_jobs=self.n_jobs if n_jobs is None else n_jobs,
            progress=self.verbose,
        )
        n_failed = int(np.sum(~np.all(np.isfinite(thetas), axis=1)))
        if n_failed:
            warnings.warn(
                f"{n_failed} of {n_resamples} bootstrap refits overflowed from every "
                "start and were left out of the intervals",
                RuntimeWarning,
                stacklevel=2,
            )
        samples = form.public_params(thetas)
        samples.update(form.derived_quantities(samples))
        self.bootstrap_internal_params_ = thetas
        self.bootstrap_params_ = samples
        self.confidence_level_ = float(confidence_level)
        self.confidence_intervals_ = percentile_intervals(samples, confidence_level)
        return self

    def leave_out(self, fraction: float = 0.1, *, by: str | None = None) -> LeaveOutReport:
        """Check extrapolation: refit on the smaller runs, predict the largest ones.

        Parameters
        ----------
        fraction : float, default=0.1
            Share of the training points held out, the largest first.
        by : str or None, default=None
            Variable that orders the runs by size. None orders by ``N * D`` (compute,
            up to a constant) when the law has both, else by its one variable.

        Returns
        -------
        LeaveOutReport
            The held-out points, their observed and predicted losses and the errors.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale import ScalingLaw
        >>> N = np.logspace(6, 10, 20)
        >>> law = ScalingLaw(form="power_offset", verbose=False)
        >>> law = law.fit(N[:, None], 1.5 + 30.0 / N**0.3)
        >>> report = law.leave_out(0.2)
        >>> report.n_held_out, bool(report.max_abs_relative_error < 1e-6)
        (4, True)
        """
        check_is_fitted(self)
        return leave_out_largest(self, fraction, by)

    # ------------------------------------------------------- compute allocation

    def compute_optimal(
        self,
        compute: ArrayLike,
        flops_per_param_token: float = 6.0,
        *,
        bits: float | None = None,
    ) -> ComputeOptimalAllocation:
        """Compute-optimal model and data size for training budgets C.

        Minimises the fitted law under ``C = c N D`` in closed form:
        ``N_opt = G (C / c)^(beta / (alpha + beta))`` with
        ``G = (alpha A / (beta B))^(1 / (alpha + beta))`` and ``D_opt = C / (c N_opt)``.
        For the precision form, at a fixed precision ``P`` the law is Chinchilla's with
        ``A`` replaced by ``A (1 - exp(-P / gamma))^(-alpha)``.

        Parameters
        ----------
        compute : float or array-like of shape (m,)
            Budgets C in FLOPs, positive.
        flops_per_param_token : float, default=6
            The constant c (6 for a dense forward and backward pass).
        bits : float, default=None
            Bits per weight P; required by the precision form, refused by the others.

        Returns
        -------
        ComputeOptimalAllocation
            ``N_opt``, ``D_opt`` and the predicted ``loss``, with bootstrap intervals
            if :meth:`bootstrap` was run.

        Examples
        --------
        >>> import numpy as np
        >>> from pybinscale import ScalingLaw
        >>> N = np.array([1e7, 1e7, 1e8, 1e8, 1e9, 1e9, 3e9, 1e10])
        >>> D = np.array([1e9, 1e10, 1e9, 1e11, 1e10, 1e11, 1e11, 1e12])
        >>> loss = 1.7 + 400.0 / N**0.34 + 410.0 / D**0.28
        >>> law = ScalingLaw(verbose=False).fit(np.c_[N, D], loss)
        >>> plan = law.compute_optimal([1e21, 1e23])
        >>> np.round(plan.N_opt[1] / plan.N_opt[0], 2)  # 100 ** (0.28 / 0.62)
        np.float64(8.0)
        """
        check_is_fitted(self)
        form = get_form(self.form_)
        if "beta" not in form.public_names:
            raise ValueError(
                f"compute_optimal needs the 'chinchilla' or 'precision' form; this law "
                f"is {form.name!r}"
            )
        budgets = np.atleast_1d(np.asarray(compute, dtype=float))
        if budgets.ndim != 1 or not np.all(np.isfinite(budgets)) or np.any(budgets <= 0):
            raise ValueError(f"compute: expected positive finite budgets, got {compute!r}")
        if not isinstance(flops_per_param_token, Real) or not (
            np.isfinite(flops_per_param_token) and flops_per_param_token > 0
        ):
            raise ValueError(
                "flops_per_param_token: expected a positive number, got "
                f"{flops_per_param_token!r}"
            )
        bits = _check_bits(form, bits)

        def allocate(params: dict[str, Any], column: bool) -> tuple[FloatArray, ...]:
            shape = (-1, 1) if column else (1,)
            p = {k: np.reshape(np.asarray(v, float), shape) for k, v in params.items()}
            amplitude = p["A"]
            if bits is not None:
                amplitude = (
                    amplitude * effective_size_factor(bits, p["gamma"]) ** -p["alpha"]
                )
            return chinchilla_allocation(
                budgets,
                p["E"],
                amplitude,
                p["B"],
                p["alpha"],
                p["beta"],
                flops_per_param_token,
            )

        n_opt, d_opt, loss = allocate(self.params_, column=False)
        intervals = None
        if hasattr(self, "bootstrap_params_"):
            samples = allocate(self.bootstrap_params_, column=True)
            tail = 50.0 * (1.0 - self.confidence_level_)
            intervals = {
                name: np.nanpercentile(s, [tail, 100.0 - tail], axis=0).T
                for name, s in zip(("N_opt", "D_opt", "loss"), samples)
            }
        return ComputeOptimalAllocation(
            compute=budgets,
            N_opt=n_opt,
            D_opt=d_opt,
            loss=loss,
            intervals=intervals,
            confidence_level=getattr(self, "confidence_level_", None),
        )

    # ----------------------------------------------------------------- plotting

    def plot(self, ax: Any = None, *, x: str | None = None, n_curves: int = 4) -> Any:
        """Draw the data, the fitted law and its bootstrap band on log-log axes.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.
        x : str, default=None
            Variable on the horizontal axis; None takes ``N`` if the law has it, else
            its one variable. The law's other variables are held at ``n_curves`` of
            their quantiles, one curve each, and the points are coloured by them.
        n_curves : int, default=4
            Curves for laws in more than one variable.

        Returns
        -------
        matplotlib Axes

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> from pybinscale import ScalingLaw
        >>> N = np.logspace(6, 10, 20)
        >>> law = ScalingLaw(form="power", verbose=False).fit(N[:, None], (1e12 / N) ** 0.1)
        >>> ax = law.plot()
        >>> ax.get_xscale(), ax.get_yscale()
        ('log', 'log')
        """
        check_is_fitted(self)
        return plot_law(self, ax=ax, x=x, n_curves=n_curves)


def _check_bits(form: ScalingForm, bits: float | None) -> float | None:
    if form.name == "precision":
        if (
            bits is None
            or not isinstance(bits, Real)
            or not (np.isfinite(bits) and bits > 0)
        ):
            raise ValueError(
                "bits: the precision form allocates compute at a fixed precision; pass "
                f"bits=P > 0 (bits per weight), got {bits!r}"
            )
        return float(bits)
    if bits is not None:
        raise ValueError(
            f"bits: only the precision form takes bits; this law is {form.name!r}"
        )
    return None


def _to_floats(values: dict[str, Any]) -> dict[str, float]:
    return {name: float(value) for name, value in values.items()}
