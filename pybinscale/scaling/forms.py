"""The scaling-law formulas, in log space, with analytic first and second derivatives.

Every form predicts the log of the loss, ``s = log L``, from a vector ``theta`` of
*internal* parameters chosen so that the optimiser works on an unconstrained,
well-scaled space (for example ``a = log A`` instead of ``A``, as Hoffmann et al. did).
The *public* parameters (``E``, ``A``, ``alpha``, ...) are the names in the formulas of
DESIGN.md section 1 and are what :class:`~pybinscale.ScalingLaw` reports.

All forms but ``"power"`` are a log-sum-exp of a few terms, ``s = LSE_k(u_k(theta))``
(Kaplan's form is a multiple of one). The derivatives of a log-sum-exp follow from the
softmax weights ``p_k``: ``grad s = sum_k p_k grad u_k`` and
``hess s = sum_k p_k (grad u_k grad u_k^T + hess u_k) - grad s grad s^T``. Forms
evaluate many parameter vectors at once (a batch of ``S`` starts): ``theta`` has shape
``(S, p)``, log predictions ``(S, n)``, Jacobians ``(S, n, p)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ScalingForm",
    "FORMS",
    "VARIABLE_NAMES",
    "get_form",
]

#: Column names a scaling law understands: parameters, data, compute, bits per weight.
VARIABLE_NAMES = ("N", "D", "C", "P")

FloatArray = NDArray[np.float64]


@dataclass
class Derivatives:
    """Log predictions of a batch with what their Hessians need.

    Attributes
    ----------
    log_loss : ndarray of shape (S, n)
    jacobian : ndarray of shape (S, n, p) or None
        Built only by forms whose gradient rows depend on the parameters; the others
        contract their data-only rows directly (see :meth:`ScalingForm.gradient_sum`).
    cache : dict
        Form-specific intermediate arrays for the sums of derivatives.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.forms import get_form
    >>> form = get_form("chinchilla")
    >>> data = form.prepare(np.array([[1e9, 2e10], [1e8, 1e9]]))
    >>> derivs = form.derivatives(np.array([[6.0, 6.0, 0.5, 0.34, 0.28]]), data)
    >>> derivs.log_loss.shape, form.jacobian(derivs).shape
    ((1, 2), (1, 2, 5))
    """

    log_loss: FloatArray
    jacobian: FloatArray | None
    cache: dict[str, Any]


def _log_sum_exp(
    terms: list[FloatArray], with_weights: bool = True
) -> tuple[FloatArray, list[FloatArray]]:
    """Return ``log(sum_k exp(terms[k]))`` and the softmax weights, without overflow."""
    largest = np.maximum.reduce(terms) if len(terms) > 1 else terms[0].copy()
    # A start far from the data can make every term -inf; keep the shift finite.
    largest[~np.isfinite(largest)] = 0.0
    # The batch is the hot loop of every fit: work in place on fresh arrays.
    exps = [np.subtract(term, largest) for term in terms]
    total = np.zeros_like(largest)
    for shifted in exps:
        np.exp(shifted, out=shifted)
        total += shifted
    with np.errstate(divide="ignore"):
        log_total = np.log(total)
    log_total += largest
    if not with_weights:
        return log_total, []
    inverse = np.reciprocal(total, out=total)
    for shifted in exps:
        shifted *= inverse
    return log_total, exps


def _weighted_outer_sum(
    weights: FloatArray, rows: FloatArray, other_rows: FloatArray | None = None
) -> FloatArray:
    """Return ``sum_i weights[s, i] * rows[s, i] other_rows[s, i]^T``, shape (S, p, p).

    ``rows`` of shape (1, n, p) are shared by the whole batch (they depend on the data
    only); the sum is then one matrix product with the stacked outer products, which is
    much faster than a batched product.
    """
    other_rows = rows if other_rows is None else other_rows
    n_starts = weights.shape[0]
    if rows.shape[0] == 1 and other_rows.shape[0] == 1:
        n_params = rows.shape[2]
        outer = (rows[0][:, :, None] * other_rows[0][:, None, :]).reshape(-1, n_params**2)
        # Rows are sparse (a term involves two or three parameters): skip the entries
        # of the outer products that vanish at every point.
        nonzero = np.flatnonzero(np.any(outer != 0.0, axis=0))
        total = np.zeros((n_starts, n_params**2))
        total[:, nonzero] = weights @ outer[:, nonzero]
        return total.reshape(n_starts, n_params, n_params)
    weighted = np.broadcast_to(rows, (n_starts, *rows.shape[1:])) * weights[:, :, None]
    return np.swapaxes(weighted, 1, 2) @ np.broadcast_to(
        other_rows, (n_starts, *other_rows.shape[1:])
    )


class ScalingForm(ABC):
    """One scaling-law formula: its variables, parameters and derivatives.

    Attributes
    ----------
    name : str
        The name users pass as ``ScalingLaw(form=name)``.
    variables : tuple of str or None
        The variables the form needs, in the order of the columns it reads; ``None``
        for a single-variable form, which accepts any one of :data:`VARIABLE_NAMES`.
    internal_names : tuple of str
        Names of the optimiser's parameters, in the order of ``theta``; the keys of a
        start grid.
    public_names : tuple of str
        Names of the fitted parameters in the formula.
    formula : str
        The law, for messages and plots.

    Examples
    --------
    >>> import numpy as np
    >>> from pybinscale.scaling.forms import get_form
    >>> form = get_form("power_offset")
    >>> theta = form.internal_params({"E": 1.5, "A": 100.0, "alpha": 0.5})
    >>> data = form.prepare(np.array([[1e4]]))
    >>> float(np.exp(form.log_predict(theta[None], data))[0, 0])  # 1.5 + 100 / 100
    2.5
    """

    name: str
    variables: tuple[str, ...] | None
    internal_names: tuple[str, ...]
    public_names: tuple[str, ...]
    formula: str

    @property
    def n_variables(self) -> int:
        """How many variables (columns of X) the form reads."""
        return 1 if self.variables is None else len(self.variables)

    @property
    def n_params(self) -> int:
        """How many parameters the form fits."""
        return len(self.internal_names)

    @abstractmethod
    def default_start_grid(self) -> dict[str, FloatArray]:
        """Values of each internal parameter whose Cartesian product gives the starts."""

    @abstractmethod
    def prepare(self, variables: FloatArray) -> dict[str, FloatArray]:
        """Precompute what the form needs from positive variables of shape (n, k)."""

    @abstractmethod
    def derivatives(self, theta: FloatArray, data: dict[str, FloatArray]) -> Derivatives:
        """Log predictions and their Jacobian for a batch ``theta`` of shape (S, p)."""

    def gradient_sum(self, derivs: Derivatives, weights: FloatArray) -> FloatArray:
        """Return ``sum_i w_i grad s_i`` for weights ``w`` of shape (S, n): (S, p)."""
        return np.einsum("sn,snp->sp", weights, self.jacobian(derivs))

    def jacobian(self, derivs: Derivatives) -> FloatArray:
        """The Jacobian of the log predictions, shape (S, n, p)."""
        if derivs.jacobian is None:
            raise NotImplementedError(
                f"form {self.name!r} builds no Jacobian array; it must override "
                "jacobian and gradient_sum"
            )
        return derivs.jacobian

    @abstractmethod
    def hessian_sum(
        self, derivs: Derivatives, outer_weights: FloatArray, curvature_weights: FloatArray
    ) -> FloatArray:
        """Return ``sum_i a_i J_i J_i^T + c_i hess s_i`` for weights ``a``, ``c`` (S, n).

        A robust loss ``sum_i rho(s_i - log y_i)`` has Hessian
        ``sum_i rho''_i J_i J_i^T + rho'_i hess s_i``: this is that sum, shape (S, p, p).
        """

    @abstractmethod
    def public_params(self, theta: FloatArray) -> dict[str, FloatArray]:
        """Map internal parameters (..., p) to the public ones, each of shape (...)."""

    @abstractmethod
    def internal_params(self, params: Mapping[str, float]) -> FloatArray:
        """Map public parameters to the internal vector (p,); inverse of public_params."""

    def log_predict(self, theta: FloatArray, data: dict[str, FloatArray]) -> FloatArray:
        """Log predicted loss for a batch ``theta`` (S, p): shape (S, n)."""
        return self.derivatives(theta, data).log_loss

    def derived_quantities(self, params: Mapping[str, ArrayLike]) -> dict[str, FloatArray]:
        """Quantities computed from the fitted parameters (none unless a form says so)."""
        return {}

    def start_grid(self, grid: dict[str, Any] | None = None) -> FloatArray:
        """Return the Cartesian product of a start grid as an array (S, p).

        Parameters
        ----------
        grid : dict or None
            Values for each internal parameter; ``None`` takes the form's default grid.
            Missing keys take their default values.
        """
        values = self.default_start_grid()
        if grid is not None:
            unknown = sorted(set(grid) - set(self.internal_names))
            if unknown:
                raise ValueError(
                    f"start_grid: unknown parameter(s) {unknown} for form {self.name!r}; "
                    f"its internal parameters are {list(self.internal_names)}"
                )
            for key, value in grid.items():
                column = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
                if column.size == 0 or not np.all(np.isfinite(column)):
                    raise ValueError(
                        f"start_grid[{key!r}]: expected a non-empty list of finite "
                        f"numbers, got {value!r}"
                    )
                values[key] = column
        mesh = np.meshgrid(*(values[k] for k in self.internal_names), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)


def _hoffmann_grid() -> dict[str, FloatArray]:
    """Hoffmann et al.'s starting grid for (a, b, e, alpha, beta): 4,500 starts."""
    return {
        "a": np.arange(0.0, 30.0, 5.0),
        "b": np.arange(0.0, 30.0, 5.0),
        "e": np.arange(-1.0, 1.5, 0.5),
        "alpha": np.arange(0.0, 2.5, 0.5),
        "beta": np.arange(0.0, 2.5, 0.5),
    }


class PowerForm(ScalingForm):
    """``L = (X_c / X)^alpha``: a straight line in log-log space.

    Internally ``log L = k - alpha log X`` with ``k = alpha log X_c``, which is linear in
    the parameters, so the robust fit is convex.
    """

    name = "power"
    variables = None
    internal_names = ("k", "alpha")
    public_names = ("X_c", "alpha")
    formula = "L = (X_c / X)^alpha"

    def default_start_grid(self) -> dict[str, FloatArray]:
        # The objective is convex in (k, alpha): a few starts only guard against a
        # start so far off that the Huber slope is flat everywhere.
        return {"k": np.array([0.0, 5.0]), "alpha": np.array([0.1, 0.5, 1.0])}

    def prepare(self, variables: FloatArray) -> dict[str, FloatArray]:
        log_x = np.log(variables[:, 0])
        return {"rows": np.stack([np.ones_like(log_x), -log_x], axis=1)[None]}

    def derivatives(self, theta: FloatArray, data: dict[str, FloatArray]) -> Derivatives:
        rows = data["rows"]
        log_loss = theta @ rows[0].T
        jacobian = np.broadcast_to(rows, (theta.shape[0], *rows.shape[1:]))
        return Derivatives(log_loss, jacobian, {"rows": rows})

    def gradient_sum(self, derivs: Derivatives, weights: FloatArray) -> FloatArray:
        return weights @ derivs.cache["rows"][0]

    def hessian_sum(
        self, derivs: Derivatives, outer_weights: FloatArray, curvature_weights: FloatArray
    ) -> FloatArray:
        # The log prediction is linear in theta: no curvature term.
        return _weighted_outer_sum(outer_weights, derivs.cache["rows"])

    def public_params(self, theta: FloatArray) -> dict[str, FloatArray]:
        k, alpha = theta[..., 0], theta[..., 1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return {"X_c": np.exp(k / alpha), "alpha": alpha}

    def internal_params(self, params: Mapping[str, float]) -> FloatArray:
        return np.array([params["alpha"] * np.log(params["X_c"]), params["alpha"]])


class _LinearLogSumExpForm(ScalingForm):
    """A log-sum-exp of terms that are linear in theta: ``u_k = theta . m_k(data)``.

    Subclasses give, in :meth:`term_rows`, the rows ``m_k`` for each point. Because they
    depend on the data only, every Hessian sum is a few plain matrix products.
    """

    @abstractmethod
    def term_rows(self, log_variables: FloatArray) -> list[FloatArray]:
        """Rows ``m_k`` of shape (n, p), one array per term."""

    def prepare(self, variables: FloatArray) -> dict[str, FloatArray]:
        rows = self.term_rows(np.log(variables))
        return {"rows": np.stack(rows)}  # (K, n, p)

    def log_predict(self, theta: FloatArray, data: dict[str, FloatArray]) -> FloatArray:
        return _log_sum_exp([theta @ m.T for m in data["rows"]], with_weights=False)[0]

    def derivatives(self, theta: FloatArray, data: dict[str, FloatArray]) -> Derivatives:
        rows = data["rows"]
        log_loss, probs = _log_sum_exp([theta @ m.T for m in rows])
        return Derivatives(log_loss, None, {"probs": probs, "rows": rows})

    def gradient_sum(self, derivs: Derivatives, weights: FloatArray) -> FloatArray:
        # grad s_i = sum_k p_ik m_ik with data-only rows m_k: one product per term.
        probs, rows = derivs.cache["probs"], derivs.cache["rows"]
        return sum((weights * p) @ m for p, m in zip(probs, rows))

    def jacobian(self, derivs: Derivatives) -> FloatArray:
        probs, rows = derivs.cache["probs"], derivs.cache["rows"]
        return sum(p[:, :, None] * m[None] for p, m in zip(probs, rows))

    def hessian_sum(
        self, derivs: Derivatives, outer_weights: FloatArray, curvature_weights: FloatArray
    ) -> FloatArray:
        probs, rows = derivs.cache["probs"], derivs.cache["rows"]
        # hess s_i = sum_k p_ik m_ik m_ik^T - J_i J_i^T, and J_i = sum_k p_ik m_ik.
        # Expanding J_i J_i^T over pairs of terms keeps every product data-only.
        total = _weighted_outer_sum(curvature_weights * probs[0], rows[0][None])
        for p, m in zip(probs[1:], rows[1:]):
            total += _weighted_outer_sum(curvature_weights * p, m[None])
        jj_weights = outer_weights - curvature_weights
        for k, (p_k, m_k) in enumerate(zip(probs, rows)):
            for l_index in range(k, len(rows)):
                pair = _weighted_outer_sum(
                    jj_weights * p_k * probs[l_index], m_k[None], rows[l_index][None]
                )
                total += pair if l_index == k else pair + np.swapaxes(pair, 1, 2)
        return total


class PowerOffsetForm(_LinearLogSumExpForm):
    """``L = E + A / X^alpha``, fitted as ``log L = LSE(e, a - alpha log X)``."""

    name = "power_offset"
    variables = None
    internal_names = ("a", "e", "alpha")
    public_names = ("E", "A", "alpha")
    formula = "L = E + A / X^alpha"

    def default_start_grid(self) -> dict[str, FloatArray]:
        grid = _hoffmann_grid()
        return {"a": grid["a"], "e": grid["e"], "alpha": grid["alpha"]}

    def term_rows(self, log_variables: FloatArray) -> list[FloatArray]:
        log_x = log_variables[:, 0]
        one, zero = np.ones_like(log_x), np.zeros_like(log_x)
        return [
            np.stack([one, zero, -log_x], axis=1),  # a - alpha log X
            np.stack([zero, one, zero], axis=1),  # e
        ]

    def public_params(self, theta: FloatArray) -> dict[str, FloatArray]:
        with np.errstate(over="ignore"):
            return {
                "E": np.exp(theta[..., 1]),
                "A": np.exp(theta[..., 0]),
                "alpha": theta[..., 2],
            }

    def internal_params(self, params: Mapping[str, float]) -> FloatArray:
        return np.array([np.log(params["A"]), np.log(params["E"]), params["alpha"]])


def _compute_optimal_exponents(params: Mapping[str, ArrayLike]) -> dict[str, FloatArray]:
    """Exponents of N_opt ∝ C^a and D_opt ∝ C^b under C ∝ N D (Hoffmann et al.)."""
    alpha = np.asarray(params["alpha"], dtype=float)
    beta = np.asarray(params["beta"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "N_opt_exponent": beta / (alpha + beta),
            "D_opt_exponent": alpha / (alpha + beta),
        }


class ChinchillaForm(_LinearLogSumExpForm):
    """``L = E + A / N^alpha + B / D^beta`` (Hoffmann et al. 2022, approach 3).

    Fitted as ``log L = LSE(a - alpha log N, b - beta log D, e)`` with ``A = e^a``,
    ``B = e^b``, ``E = e^e``; the default starts are Hoffmann et al.'s grid.
    """

    name = "chinchilla"
    variables = ("N", "D")
    internal_names = ("a", "b", "e", "alpha", "beta")
    public_names = ("E", "A", "B", "alpha", "beta")
    formula = "L = E + A / N^alpha + B / D^beta"

    def default_start_grid(self) -> dict[str, FloatArray]:
        return _hoffmann_grid()

    def term_rows(self, log_variables: FloatArray) -> list[FloatArray]:
        log_n, log_d = log_variables[:, 0], log_variables[:, 1]
        one, zero = np.ones_like(log_n), np.zeros_like(log_n)
        return [
            np.stack([one, zero, zero, -log_n, zero], axis=1),
            np.stack([zero, one, zero, zero, -log_d], axis=1),
            np.stack([zero, zero, one, zero, zero], axis=1),
        ]

    def public_params(self, theta: FloatArray) -> dict[str, FloatArray]:
        with np.errstate(over="ignore"):
            return {
                "E": np.exp(theta[..., 2]),
                "A": np.exp(theta[..., 0]),
                "B": np.exp(theta[..., 1]),
                "alpha": theta[..., 3],
                "beta": theta[..., 4],
            }

    def internal_params(self, params: Mapping[str, float]) -> FloatArray:
        logs = np.log([params["A"], params["B"], params["E"]])
        return np.array([*logs, params["alpha"], params["beta"]])

    def derived_quantities(self, params: Mapping[str, ArrayLike]) -> dict[str, FloatArray]:
        return _compute_optimal_exponents(params)


class KaplanForm(ScalingForm):
    """``L = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D`` (Kaplan et al. 2020).

    Fitted as ``log L = alpha_D * LSE(r (log N_c - log N), log D_c - log D)`` with
    ``r = alpha_N / alpha_D``, so that no parameter divides another.
    """

    name = "kaplan"
    variables = ("N", "D")
    internal_names = ("alpha_D", "r", "log_N_c", "log_D_c")
    public_names = ("N_c", "D_c", "alpha_N", "alpha_D")
    formula = "L = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D"

    def default_start_grid(self) -> dict[str, FloatArray]:
        # Spans Kaplan et al.'s fit (alpha_D = 0.095, r = 0.8, log N_c = 32.1,
        # log D_c = 31.6) by an order of magnitude or more each way: 192 starts.
        return {
            "alpha_D": np.array([0.05, 0.1, 0.3, 1.0]),
            "r": np.array([0.5, 1.0, 2.0]),
            "log_N_c": np.array([10.0, 20.0, 30.0, 40.0]),
            "log_D_c": np.array([10.0, 20.0, 30.0, 40.0]),
        }

    def prepare(self, variables: FloatArray) -> dict[str, FloatArray]:
        return {"log_n": np.log(variables[:, 0]), "log_d": np.log(variables[:, 1])}

    def derivatives(self, theta: FloatArray, data: dict[str, FloatArray]) -> Derivatives:
        alpha_d, r, log_nc, log_dc = (theta[:, j : j + 1] for j in range(4))
        gap_n = log_nc - data["log_n"][None]  # (S, n)
        inner, (p_n, p_d) = _log_sum_exp([r * gap_n, log_dc - data["log_d"][None]])
        zero = np.zeros_like(inner)
        # Gradient of the inner log-sum-exp with respect to (r, log_N_c, log_D_c).
        inner_grad = np.stack([p_n * gap_n, p_n * r, p_d], axis=2)
        jacobian = np.concatenate([inner[:, :, None], alpha_d[:, :, None] * inner_grad], 2)
        term_n = np.stack([zero, gap_n, np.broadcast_to(r, gap_n.shape), zero], axis=2)
        term_d = np.stack([zero, zero, zero, np.ones_like(zero)], axis=2)
        cache = {
            "alpha_d": alpha_d[:, 0],
            "p_n": p_n,
            "p_d": p_d,
            "inner_jac": np.concatenate([zero[:, :, None], inner_grad], 2),
            "term_n": term_n,
            "term_d": term_d,
        }
        return Derivatives(alpha_d * inner, jacobian, cache)

    def hessian_sum(
        self, derivs: Derivatives, outer_weights: FloatArray, curvature_weights: FloatArray
    ) -> FloatArray:
        c = derivs.cache
        alpha_d = c["alpha_d"]
        # s = alpha_D * T: hess s = alpha_D hess T plus the cross terms d2s/dalpha_D dphi
        # = dT/dphi; hess T = sum_k p_k (m_k m_k^T + hess u_k) - grad T grad T^T with
        # the only second derivative of a term d2 u_N / dr dlog_N_c = 1.
        scaled = curvature_weights * alpha_d[:, None]
        inner_hess = (
            _weighted_outer_sum(scaled * c["p_n"], c["term_n"])
            + _weighted_outer_sum(scaled * c["p_d"], c["term_d"][:1])
            - _weighted_outer_sum(scaled, c["inner_jac"])
        )
        cross = np.einsum("sn,snp->sp", curvature_weights, c["inner_jac"])
        mixed = (scaled * c["p_n"]).sum(axis=1)
        inner_hess[:, 1, 2] += mixed
        inner_hess[:, 2, 1] += mixed
        inner_hess[:, 0, :] += cross
        inner_hess[:, :, 0] += cross
        return inner_hess + _weighted_outer_sum(outer_weights, self.jacobian(derivs))

    def public_params(self, theta: FloatArray) -> dict[str, FloatArray]:
        with np.errstate(over="ignore"):
            return {
                "N_c": np.exp(theta[..., 2]),
                "D_c": np.exp(theta[..., 3]),
                "alpha_N": theta[..., 1] * theta[..., 0],
                "alpha_D": theta[..., 0],
            }

    def internal_params(self, params: Mapping[str, float]) -> FloatArray:
        alpha_d = params["alpha_D"]
        ratio = params["alpha_N"] / alpha_d
        return np.array([alpha_d, ratio, np.log(params["N_c"]), np.log(params["D_c"])])


def effective_size_factor(bits: ArrayLike, gamma: ArrayLike) -> FloatArray:
    """The fraction ``1 - exp(-P / gamma)`` of a weight that ``P`` bits are worth.

    Examples
    --------
    >>> from pybinscale.scaling.forms import effective_size_factor
    >>> round(float(effective_size_factor(32.0, 2.0)), 6)
    1.0
    """
    return -np.expm1(-np.asarray(bits, dtype=float) / np.asarray(gamma, dtype=float))


def one_bit_worth(gamma: ArrayLike) -> FloatArray:
    """How many 32-bit weights one 1-bit weight is worth: N_eff(P=1) / N_eff(P=32).

    Examples
    --------
    >>> from pybinscale.scaling.forms import one_bit_worth
    >>> round(float(one_bit_worth(1.0)), 4)  # 1 - exp(-1)
    0.6321
    """
    return effective_size_factor(1.0, gamma) / effective_size_factor(32.0, gamma)


class PrecisionForm(ScalingForm):
    """Chinchilla with an effective size ``N (1 - exp(-P / gamma))`` for P-bit weights.

    Fitted as ``log L = LSE(a - alpha (log N + h), b - beta log D, e)`` with
    ``h = log(1 - exp(-P / gamma))`` and ``g = log gamma`` (so ``gamma > 0``).
    """

    name = "precision"
    variables = ("N", "D", "P")
    internal_names = ("a", "b", "e", "alpha", "beta", "log_gamma")
    public_names = ("E", "A", "B", "alpha", "beta", "gamma")
    formula = "L = E + A / (N (1 - exp(-P / gamma)))^alpha + B / D^beta"

    def default_start_grid(self) -> dict[str, FloatArray]:
        # Hoffmann's grid, thinned in e, alpha and beta and crossed with three gammas:
        # 2,916 starts, as a sixth parameter would make the full grid 13,500 or more.
        grid = _hoffmann_grid()
        return {
            "a": grid["a"],
            "b": grid["b"],
            "e": np.array([-1.0, 0.0, 1.0]),
            "alpha": np.array([0.0, 0.5, 1.0]),
            "beta": np.array([0.0, 0.5, 1.0]),
            "log_gamma": np.log([0.5, 2.0, 8.0]),
        }

    def prepare(self, variables: FloatArray) -> dict[str, FloatArray]:
        return {
            "log_n": np.log(variables[:, 0]),
            "log_d": np.log(variables[:, 1]),
            "bits": variables[:, 2],
        }

    def derivatives(self, theta: FloatArray, data: dict[str, FloatArray]) -> Derivatives:
        a, b, e, alpha, beta, log_gamma = (theta[:, j : j + 1] for j in range(6))
        with np.errstate(over="ignore"):
            z = data["bits"][None] * np.exp(-log_gamma)  # P / gamma, (S, n)
        z_safe = np.minimum(z, 700.0)
        em1 = np.expm1(z_safe)
        with np.errstate(divide="ignore"):
            h = np.log(-np.expm1(-z))
        # dh/dg = -z / (e^z - 1) and d2h/dg2 = z (e^z - 1 - z e^z) / (e^z - 1)^2; both
        # vanish as z grows, where e^z would overflow.
        big = z > 700.0
        h_g = np.where(big, 0.0, -z_safe / em1)
        h_gg = np.where(big, 0.0, z_safe * (em1 - z_safe * (em1 + 1.0)) / em1**2)
        log_n_eff = data["log_n"][None] + h
        log_d = np.broadcast_to(data["log_d"][None], log_n_eff.shape)
        terms = [a - alpha * log_n_eff, b - beta * log_d, np.broadcast_to(e, h.shape)]
        log_loss, (p_n, p_d, p_e) = _log_sum_exp(terms)
        one, zero = np.ones_like(h), np.zeros_like(h)
        term_n = np.stack([one, zero, zero, -log_n_eff, zero, -alpha * h_g], axis=2)
        term_d = np.stack([zero, one, zero, zero, -log_d, zero], axis=2)
        term_e = np.stack([zero, zero, one, zero, zero, zero], axis=2)
        jacobian = p_n[:, :, None] * term_n + p_d[:, :, None] * term_d
        jacobian[:, :, 2] += p_e
        cache = {
            "probs": (p_n, p_d, p_e),
            "terms": (term_n, term_d, term_e[:1]),
            "h_g": h_g,
            "h_gg": h_gg,
            "alpha": alpha,
        }
        return Derivatives(log_loss, jacobian, cache)

    def hessian_sum(
        self, derivs: Derivatives, outer_weights: FloatArray, curvature_weights: FloatArray
    ) -> FloatArray:
        c = derivs.cache
        p_n = c["probs"][0]
        total = _weighted_outer_sum(
            outer_weights - curvature_weights, self.jacobian(derivs)
        )
        for p, m in zip(c["probs"], c["terms"]):
            total += _weighted_outer_sum(curvature_weights * p, m)
        # Second derivatives of the N term: d2/dalpha dg = -h_g, d2/dg2 = -alpha h_gg.
        weighted = curvature_weights * p_n
        mixed = -(weighted * c["h_g"]).sum(axis=1)
        total[:, 3, 5] += mixed
        total[:, 5, 3] += mixed
        total[:, 5, 5] -= (weighted * c["alpha"] * c["h_gg"]).sum(axis=1)
        return total

    def public_params(self, theta: FloatArray) -> dict[str, FloatArray]:
        params = FORMS["chinchilla"].public_params(theta[..., :5])
        params["gamma"] = np.exp(theta[..., 5])
        return params

    def internal_params(self, params: Mapping[str, float]) -> FloatArray:
        chinchilla = FORMS["chinchilla"].internal_params(params)
        return np.append(chinchilla, np.log(params["gamma"]))

    def derived_quantities(self, params: Mapping[str, ArrayLike]) -> dict[str, FloatArray]:
        derived = _compute_optimal_exponents(params)
        derived["one_bit_worth"] = one_bit_worth(params["gamma"])
        return derived


#: Every form by the name users pass.
FORMS: dict[str, ScalingForm] = {
    form.name: form
    for form in (
        PowerForm(),
        PowerOffsetForm(),
        KaplanForm(),
        ChinchillaForm(),
        PrecisionForm(),
    )
}


def get_form(name: str) -> ScalingForm:
    """Return the form called ``name``.

    Parameters
    ----------
    name : str
        One of ``"power"``, ``"power_offset"``, ``"kaplan"``, ``"chinchilla"``,
        ``"precision"``.

    Raises
    ------
    ValueError
        If no form has that name.

    Examples
    --------
    >>> from pybinscale.scaling.forms import get_form
    >>> get_form("chinchilla").public_names
    ('E', 'A', 'B', 'alpha', 'beta')
    """
    try:
        return FORMS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"form: unknown scaling-law form {name!r}; expected one of {sorted(FORMS)}"
        ) from None
