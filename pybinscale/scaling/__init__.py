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
- :mod:`~pybinscale.scaling.synthetic`: data drawn from a known law.
"""

from __future__ import annotations

from .allocation import ComputeOptimalAllocation
from .extrapolation import LeaveOutReport
from .law import ScalingLaw

__all__ = ["ScalingLaw", "ComputeOptimalAllocation", "LeaveOutReport"]
