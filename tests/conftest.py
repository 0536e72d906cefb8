"""Shared fixtures: run kernel tests once per SIMD path this CPU supports."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import pybinscale

SUPPORTED_PATHS = pybinscale.supported_simd_paths()


@pytest.fixture(params=SUPPORTED_PATHS)
def simd_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Pin the kernels to one SIMD path for the test, then return to automatic choice."""
    pybinscale.set_simd_path(request.param)
    try:
        yield request.param
    finally:
        pybinscale.set_simd_path(None)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20251204)


def sign(A: np.ndarray) -> np.ndarray:
    """The reference sign rule: +1 where A >= 0 (sign(0) = +1), -1 elsewhere."""
    return np.where(np.asarray(A) >= 0, 1, -1).astype(np.int64)
