"""Every kernel refuses bad input with a clear ValueError or TypeError naming the
argument, and never crashes the interpreter: the battery runs in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bad_inputs import CASES

BATTERY = Path(__file__).with_name("bad_inputs.py")


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict]:
    result = subprocess.run(
        [sys.executable, str(BATTERY)], capture_output=True, text=True, timeout=600
    )
    # A Rust panic that aborted, or a segfault, ends the child with a non-zero status.
    assert result.returncode == 0, f"the battery crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {line["case"]: line for line in lines}


def test_every_case_ran(outcomes):
    assert set(outcomes) == {name for name, *_ in CASES}


@pytest.mark.parametrize("name", [name for name, *_ in CASES])
def test_bad_input_is_refused_clearly(outcomes, name):
    outcome = outcomes[name]
    assert outcome["ok"], (
        f"{name}: expected {outcome['expected']} mentioning {outcome['missing']}, "
        f"got {outcome['raised']}: {outcome['message']}"
    )
