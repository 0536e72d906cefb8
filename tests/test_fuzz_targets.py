"""The cargo-fuzz targets in fuzz/, fuzzed for a CI-sized budget: no findings allowed.

Each target runs a kernel on every SIMD path this CPU supports and compares the result,
bit for bit, with a scalar reference (fuzz/src/lib.rs); a mismatch, a panic or an
AddressSanitizer report ends the run with a non-zero status and a crashing input.

The targets are built here as cargo-fuzz builds them (libFuzzer, sanitizer coverage,
AddressSanitizer, debug assertions), with cargo alone: cargo-fuzz need not be installed,
and ``RUSTC_BOOTSTRAP=1`` lets a stable rustc take the sanitizer flag. Each target then
fuzzes from an empty corpus with a fixed seed for a fixed number of inputs (``RUNS``,
about 15 s each here), so that every run of the test tries the same inputs; with
``PYBINSCALE_FUZZ_SECONDS`` set it fuzzes for that many seconds instead.
``PYBINSCALE_FUZZ_FILE``, if set, receives one JSON line per target with its executions
(scripts/reliability.py runs the same test with larger budgets).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "fuzz"
TARGETS = ["pack_signs", "products", "quantized_product", "dense_gram"]
#: Inputs per target in the default, deterministic run (the targets differ in speed).
RUNS = {"pack_signs": 10_000, "products": 2_500, "quantized_product": 6_000, "dense_gram": 1_000}
SECONDS = int(os.environ["PYBINSCALE_FUZZ_SECONDS"]) if "PYBINSCALE_FUZZ_SECONDS" in os.environ else None
#: Fewer executions than this in a timed run means the target hardly ran: a failure.
MINIMUM_EXECUTIONS = 100

#: What cargo-fuzz passes to rustc for `cargo fuzz build -O` with AddressSanitizer.
RUSTFLAGS = " ".join([
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg fuzzing",
    "-Zsanitizer=address",
    "-Cdebug-assertions",
    "-Coverflow-checks",
])


def _host_triple(cargo: str) -> str:
    rustc = shutil.which("rustc") or str(Path(cargo).with_name("rustc"))
    version = subprocess.run([rustc, "-vV"], capture_output=True, text=True, check=True).stdout
    return re.search(r"^host: (\S+)$", version, re.MULTILINE).group(1)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def fuzz_binaries() -> Path:
    """Build every target once; returns the directory of the binaries."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("cargo is not on PATH: install Rust (https://rustup.rs) to run the fuzz targets")
    triple = _host_triple(cargo)
    if not triple.startswith("x86_64-unknown-linux"):
        pytest.skip(f"AddressSanitizer builds are set up for x86-64 Linux, not {triple}")
    target_dir = ROOT / "target" / "fuzz"
    # --target keeps the sanitizer flags off build scripts, as cargo-fuzz does.
    built = subprocess.run(
        [cargo, "build", "--release", "--bins", "--manifest-path", str(FUZZ / "Cargo.toml"),
         "--target", triple],
        env={**os.environ, "RUSTFLAGS": RUSTFLAGS, "RUSTC_BOOTSTRAP": "1",
             "CARGO_TARGET_DIR": str(target_dir)},
        capture_output=True, text=True,
    )
    assert built.returncode == 0, (
        "building the fuzz targets failed (libFuzzer needs a C++ compiler, e.g. g++):\n"
        + built.stderr[-4000:]
    )
    return target_dir / triple / "release"


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_finds_nothing(fuzz_binaries: Path, target: str, tmp_path: Path) -> None:
    corpus, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    corpus.mkdir()
    artifacts.mkdir()
    budget = f"-runs={RUNS[target]}" if SECONDS is None else f"-max_total_time={SECONDS}"
    run = subprocess.run(
        [str(fuzz_binaries / target), budget, "-seed=20251204", "-print_final_stats=1",
         "-rss_limit_mb=4096", f"-artifact_prefix={artifacts}/", str(corpus)],
        capture_output=True, text=True, timeout=(SECONDS or 120) + 600,
    )
    log = run.stdout + run.stderr
    findings = sorted(p.name for p in artifacts.iterdir())
    reproduce = " ".join([str(fuzz_binaries / target), *(str(artifacts / f) for f in findings)])
    assert run.returncode == 0 and not findings, (
        f"{target} found {findings or 'a failure'}; reproduce with `{reproduce}`:\n{log[-4000:]}"
    )
    executions = int(re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)[-1])
    wanted = RUNS[target] if SECONDS is None else MINIMUM_EXECUTIONS
    assert executions >= wanted, f"{target} ran only {executions} inputs:\n{log[-2000:]}"
    record = os.environ.get("PYBINSCALE_FUZZ_FILE")
    if record:
        with open(record, "a") as handle:
            handle.write(json.dumps({"target": target, "executions": executions,
                                     "budget": budget, "corpus": len(list(corpus.iterdir())),
                                     "findings": len(findings)}) + "\n")
