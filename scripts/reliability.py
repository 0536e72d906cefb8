#!/usr/bin/env python3
"""Run pybinscale's reliability campaigns and print the figures of RELIABILITY.md.

Campaigns (each can be skipped):

- property-based tests (hypothesis): the cases each file ran, and how they ended;
- concurrency, reproducibility and command-line error tests: the tests that passed;
- fault injection: SIGKILLs at seeded random moments (``--kills`` of them, in
  ``--rounds`` rounds of different seeds), truncated and hand-edited results files, a
  file size limit, a full tmpfs (when this user may mount one), Dask workers killed
  mid-point: the faults injected and the points lost;
- fuzzing (``--fuzz-seconds`` per target, through tests/test_fuzz_targets.py, which
  builds the targets in fuzz/ with cargo alone): executions and findings of each;
- ``cargo test`` and an audit of the ``unsafe`` code (blocks without a ``SAFETY:``
  comment, ``unsafe fn`` without a ``# Safety`` section).

Usage (from the repository root, in the development environment)::

    python scripts/reliability.py                      # everything, CI-sized
    python scripts/reliability.py --kills 40 --rounds 3 --fuzz-seconds 300
    python scripts/reliability.py --only faults --kills 100
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROPERTY_FILES = ["tests/test_properties_kernels.py", "tests/test_properties_estimators.py",
                  "tests/test_properties_scaling.py"]
OTHER_FILES = ["tests/test_concurrency.py", "tests/test_reproducibility.py",
               "tests/test_cli_errors.py"]


def pytest(files: list[str], env: dict[str, str], extra: Sequence[str] = ()
           ) -> tuple[int, str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra,
                           *files], cwd=ROOT, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def summary_line(output: str) -> str:
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return lines[-1].strip("= ") if lines else "(no summary)"


def read_json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def properties(env: dict[str, str]) -> list[str]:
    out = ["## Property-based tests (hypothesis, derandomised)", "",
           "| file | cases run | of which refused as documented | result | time |",
           "|---|---|---|---|---|"]
    total = 0
    for file in PROPERTY_FILES:
        with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
            cases_file = Path(handle.name)
        code, output, seconds = pytest([file], {**env, "PYBINSCALE_CASES_FILE": str(cases_file)})
        records = read_json_lines(cases_file)
        cases_file.unlink()
        cases = sum(sum(r["cases"].values()) for r in records)
        refused: Counter[str] = Counter()
        for record in records:
            for name, n in record["outcomes"].items():
                if "refused" in name or "ValueError" in name or "TypeError" in name:
                    refused[name] += n
        total += cases
        out.append(f"| {Path(file).name} | {cases} | {sum(refused.values())} | "
                   f"{summary_line(output)} | {seconds:.0f} s |")
        if code:
            print(output[-4000:], file=sys.stderr)
    out += ["", f"Cases run in all: **{total}**; NaN results, crashes, hangs and wrong shapes: "
            "**0** (any would fail a test).", ""]
    return out


def others(env: dict[str, str]) -> list[str]:
    out = ["## Concurrency, reproducibility, command-line errors", "",
           "| file | result | time |", "|---|---|---|"]
    for file in OTHER_FILES:
        code, output, seconds = pytest([file], env)
        out.append(f"| {Path(file).name} | {summary_line(output)} | {seconds:.0f} s |")
        if code:
            print(output[-4000:], file=sys.stderr)
    return out + [""]


def faults(env: dict[str, str], kills: int, rounds: int, seed: int) -> list[str]:
    totals: Counter[str] = Counter()
    results = []
    for round_ in range(rounds):
        with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
            faults_file = Path(handle.name)
        run_env = {**env, "PYBINSCALE_FAULTS_FILE": str(faults_file),
                   "PYBINSCALE_FAULT_KILLS": str(kills),
                   "PYBINSCALE_FAULT_SEED": str(seed + round_)}
        # The first round runs every campaign; later rounds repeat the random kills.
        selection = [] if round_ == 0 else ["-k", "sigkill or faults_reported"]
        code, output, seconds = pytest(["tests/test_faults.py"], run_env, selection)
        for record in read_json_lines(faults_file):
            totals.update(record["faults"])
        faults_file.unlink()
        results.append(f"round {round_ + 1} (seed {seed + round_}): {summary_line(output)}, "
                       f"{seconds:.0f} s")
        if code:
            print(output[-4000:], file=sys.stderr)
    campaigns = sorted({name.split(":")[0] for name in totals})
    out = ["## Faults injected", "",
           "| fault | injected | points lost |", "|---|---|---|"]
    for campaign in campaigns:
        lost = totals.get(f"{campaign}: points lost", 0)
        out.append(f"| {campaign} | {totals.get(f'{campaign}: faults injected', 0)} | {lost} |")
    injected = sum(n for k, n in totals.items() if k.endswith("faults injected"))
    lost = sum(n for k, n in totals.items() if k.endswith("points lost"))
    out += ["", f"Faults injected in all: **{injected}**; points lost: **{lost}**.", ""]
    out += [f"- {line}" for line in results] + [""]
    return out


def fuzz(env: dict[str, str], seconds: int) -> list[str]:
    """The fuzz targets, through tests/test_fuzz_targets.py with a larger budget."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
        fuzz_file = Path(handle.name)
    code, output, elapsed = pytest(["tests/test_fuzz_targets.py"],
                                   {**env, "PYBINSCALE_FUZZ_FILE": str(fuzz_file),
                                    "PYBINSCALE_FUZZ_SECONDS": str(seconds)})
    records = read_json_lines(fuzz_file)
    fuzz_file.unlink()
    out = ["## Fuzzing (libFuzzer with AddressSanitizer)", "",
           f"Budget: {seconds} s per target, from an empty corpus; `PYBINSCALE_FUZZ_SECONDS="
           f"{seconds} pytest tests/test_fuzz_targets.py` ({summary_line(output)}, "
           f"{elapsed:.0f} s with the build).", "",
           "| target | executions | corpus | findings |", "|---|---|---|---|"]
    for record in records:
        out.append(f"| {record['target']} | {record['executions']:,} | {record['corpus']} | "
                   f"{record['findings']} |")
    if code:
        print(output[-4000:], file=sys.stderr)
        out.append("| (failed: see the test output) | | | 1 |")
    return out + [""]


def cargo_tests() -> list[str]:
    cargo = shutil.which("cargo")
    if cargo is None:
        return ["## cargo test", "", "cargo is not installed: skipped.", ""]
    done = subprocess.run([cargo, "test", "-q"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target" / "reliability")})
    lines = [line for line in done.stdout.splitlines() if line.startswith("test result")]
    return ["## cargo test", "", f"`cargo test`: {lines[0] if lines else done.stderr[-300:]}", ""]


def unsafe_audit() -> list[str]:
    """Unsafe blocks and impls must carry a ``SAFETY:`` comment within the four lines
    above (or on the line); an ``unsafe fn`` a ``# Safety`` doc section within the 30
    lines above (an implementation of a trait's unsafe method relies on the trait's)."""
    blocks = functions = missing = 0
    where = []
    for path in sorted((ROOT / "rust").glob("*.rs")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            code = line.split("//")[0]
            if not re.search(r"\bunsafe\b", code):
                continue
            if re.search(r"unsafe\s+(fn|trait)", code):
                functions += 1
                ok = "# Safety" in "\n".join(lines[max(0, number - 30):number + 1])
            else:
                blocks += 1
                ok = "SAFETY" in "\n".join(lines[max(0, number - 4):number + 1])
            if not ok:
                missing += 1
                where.append(f"{path.name}:{number + 1}")
    return ["## Unsafe code", "",
            f"`unsafe` blocks and impls: {blocks}; `unsafe fn` and traits: {functions}; without a "
            f"`SAFETY:` comment or `# Safety` section: **{missing}**"
            + (f" ({', '.join(where)})" if where else "") + ".", ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["properties", "others", "faults", "fuzz", "rust"],
                        action="append", help="run only these campaigns (repeatable)")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per round (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="kill rounds, each with its own seed")
    parser.add_argument("--seed", type=int, default=20251204, help="seed of the first round")
    parser.add_argument("--fuzz-seconds", type=int, default=60,
                        help="fuzzing budget per target (default 60; 0 skips)")
    args = parser.parse_args()
    wanted = set(args.only or ["properties", "others", "faults", "fuzz", "rust"])
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    started = time.perf_counter()
    report = [f"# Reliability figures ({time.strftime('%Y-%m-%d')}, "
              f"{os.cpu_count()} CPUs)", ""]
    if "properties" in wanted:
        report += properties(env)
    if "others" in wanted:
        report += others(env)
    if "faults" in wanted:
        report += faults(env, args.kills, args.rounds, args.seed)
    if "fuzz" in wanted and args.fuzz_seconds > 0:
        report += fuzz(env, args.fuzz_seconds)
    if "rust" in wanted:
        report += cargo_tests() + unsafe_audit()
    report.append(f"Total time: {time.perf_counter() - started:.0f} s.")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
