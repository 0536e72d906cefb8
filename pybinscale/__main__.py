"""``python -m pybinscale``: the ``pybinscale`` command (see :mod:`pybinscale.cli`).

``python -m pybinscale run --quick`` runs the study; ``python -m pybinscale tour`` is the
one-minute tour of the kernels on this machine.
"""

from __future__ import annotations

import sys

from pybinscale.cli import main

if __name__ == "__main__":
    sys.exit(main())
