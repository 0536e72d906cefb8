"""The published Chinchilla data points, for checking fits against the literature.

Besiroglu et al. (2024) extracted from Hoffmann et al.'s (2022) Figure 4 the model size
N, training compute C and final loss of 245 runs. The file is not shipped with
pybinscale; :func:`chinchilla_csv_path` says where it is looked for.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CHINCHILLA_CSV_ENV",
    "BESIROGLU_HOFFMANN_FIT",
    "BESIROGLU_ALPHA_INTERVAL",
    "chinchilla_csv_path",
    "load_chinchilla_points",
]

#: Environment variable that overrides where the extracted points are read from.
CHINCHILLA_CSV_ENV = "PYBINSCALE_CHINCHILLA_CSV"

#: The optimum of Hoffmann et al.'s procedure on the 240 points, as reported by
#: Besiroglu et al. (2024).
BESIROGLU_HOFFMANN_FIT = {"E": 1.82, "A": 478.0, "B": 2144.0, "alpha": 0.347, "beta": 0.367}

#: Besiroglu et al.'s 95% interval for alpha (their preferred fit).
BESIROGLU_ALPHA_INTERVAL = (0.317, 0.373)


def chinchilla_csv_path() -> Path:
    """Where the extracted points are: ``$PYBINSCALE_CHINCHILLA_CSV`` if set, else
    ``../shared/data/chinchilla_svg_extracted.csv`` from the repository root.

    Examples
    --------
    >>> import os
    >>> from pybinscale.scaling.reference import CHINCHILLA_CSV_ENV, chinchilla_csv_path
    >>> saved = os.environ.pop(CHINCHILLA_CSV_ENV, None)
    >>> chinchilla_csv_path().name
    'chinchilla_svg_extracted.csv'
    >>> os.environ[CHINCHILLA_CSV_ENV] = "/data/points.csv"
    >>> str(chinchilla_csv_path())
    '/data/points.csv'
    >>> _ = os.environ.pop(CHINCHILLA_CSV_ENV)
    >>> if saved is not None:
    ...     os.environ[CHINCHILLA_CSV_ENV] = saved
    """
    override = os.environ.get(CHINCHILLA_CSV_ENV)
    if override:
        return Path(override)
    repository_root = Path(__file__).resolve().parents[2]
    return repository_root.parent / "shared" / "data" / "chinchilla_svg_extracted.csv"


def load_chinchilla_points(
    path: str | os.PathLike[str] | None = None,
    *,
    n_drop_highest_loss: int = 5,
    flops_per_param_token: float = 6.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Read the extracted Chinchilla runs as ``X = [N, D]`` and the losses.

    Parameters
    ----------
    path : path-like, default=None
        The CSV (columns ``Model Size``, ``Training FLOP``, ``loss``); None uses
        :func:`chinchilla_csv_path`.
    n_drop_highest_loss : int, default=5
        Besiroglu et al. drop the 5 runs with the highest loss (outliers of the
        extraction), leaving 240.
    flops_per_param_token : float, default=6
        D is recovered from the compute as ``D = C / (6 N)``.

    Returns
    -------
    X : ndarray of shape (n, 2)
        Columns N (parameters) and D (tokens).
    loss : ndarray of shape (n,)

    Raises
    ------
    FileNotFoundError
        If the file is absent.

    Examples
    --------
    >>> import pytest
    >>> from pybinscale.scaling.reference import chinchilla_csv_path, load_chinchilla_points
    >>> if not chinchilla_csv_path().is_file():
    ...     pytest.skip("the extracted Chinchilla points are not on this machine")
    >>> X, loss = load_chinchilla_points()
    >>> X.shape, loss.shape
    ((240, 2), (240,))
    """
    path = chinchilla_csv_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no Chinchilla points at {path}; set {CHINCHILLA_CSV_ENV} to the CSV file"
        )
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    model_size = np.array([float(r["Model Size"]) for r in rows])
    compute = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = np.argsort(loss, kind="stable")[: loss.size - n_drop_highest_loss]
    keep.sort()  # keep the file's order
    n, c = model_size[keep], compute[keep]
    return np.column_stack([n, c / (flops_per_param_token * n)]), loss[keep]
