"""What the property-based test files share: hypothesis's settings and the case report.

Every ``tests/test_properties_*.py`` runs its properties under :func:`property_settings`
(derandomised, so CI draws the same cases every run), counts its cases and outcomes, and
ends with a ``test_cases_ran`` that calls :func:`report_cases`: it prints the counts,
appends them as one JSON line to ``PYBINSCALE_CASES_FILE`` when set
(scripts/reliability.py collects them for RELIABILITY.md), and fails if a property ran
fewer cases than it should.
"""

from __future__ import annotations

import collections
import json
import os

from hypothesis import HealthCheck, settings


def property_settings(examples: int) -> settings:
    """``examples`` cases per property, derandomised, without deadline or database."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


def report_cases(
    module: str,
    cases: collections.Counter[str],
    outcomes: collections.Counter[str],
    minimum: int,
) -> None:
    """Print and record the counts of ``module``; assert each property ran ``minimum``."""
    ran = {name: n for name, n in cases.items() if n}
    path = os.environ.get("PYBINSCALE_CASES_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            record = {"file": module, "cases": ran, "outcomes": dict(outcomes)}
            handle.write(json.dumps(record) + "\n")
    print(f"\n{module}: {sum(ran.values())} cases: {dict(sorted(ran.items()))}")
    print(f"outcomes: {dict(sorted(outcomes.items()))}")
    for name, n in ran.items():
        assert n >= minimum, f"{name} ran only {n} cases"
