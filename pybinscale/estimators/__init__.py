"""Estimators with a scikit-learn interface: 1-bit networks, their twins, NTK regression."""

from __future__ import annotations

__all__: list[str] = []
