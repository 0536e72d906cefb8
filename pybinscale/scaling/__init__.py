"""Scaling laws as estimators: robust fits, confidence intervals, compute allocation.

Modules, one idea each:

- :mod:`~pybinscale.scaling.forms`: the formulas in log space with analytic derivatives;
- :mod:`~pybinscale.scaling.fitting`: Huber objective, batched Newton from many starts,
  L-BFGS-B polish;
- :mod:`~pybinscale.scaling.data`: checks of the variables and losses;
- :mod:`~pybinscale.scaling.bootstrap`: parallel resampled refits and intervals;
- :mod:`~pybinscale.scaling.allocation`: compute-optimal N and D;
- :mod:`~pybinscale.scaling.extrapolation`: leave-out-the-largest check;
- :mod:`~pybinscale.scaling.plotting`: log-log plot;
- :mod:`~pybinscale.scaling.law`: the :class:`ScalingLaw` estimator that ties them up;
- :mod:`~pybinscale.scaling.reference`: the published Chinchilla points, for checks;
- :mod:`~pybinscale.scaling.synthetic`: data drawn from a known law;
- :mod:`~pybinscale.scaling.sweep`: :class:`ScalingSweep`, grids of 1-bit networks and
  their full-precision twins;
- :mod:`~pybinscale.scaling.sweep_laws`: the sweep's results table and the laws fitted
  to it;
- :mod:`~pybinscale.scaling.compute`: the arithmetic of a training step, counted;
- :mod:`~pybinscale.scaling.results`: the sweep's results file (atomic appends, resume,
  configuration fingerprint, damage detection).
"""

from __future__ import annotations

from .allocation import ComputeOptimalAllocation
from .extrapolation import LeaveOutReport
from .law import ScalingLaw
from .sweep import ScalingSweep

__all__ = ["ScalingLaw", "ScalingSweep", "ComputeOptimalAllocation", "LeaveOutReport"]
