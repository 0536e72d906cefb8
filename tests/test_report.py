"""The report: figures, computed readings, a self-contained page that a browser renders."""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pybinscale.report import build_report, figure_readings
from pybinscale.scaling.sweep_laws import fit_sweep_laws

WIDTHS = (64, 256, 1024, 4096)


def _table(kernel_exponent: float = -0.5, drift_exponent: float = -0.5) -> pd.DataFrame:
    """A sweep's table with known trends, two tasks and both initialisations."""
    rng = np.random.default_rng(0)
    rows = []
    steps = [0, 1, 3, 10, 30, 100]
    for task in ("teacher", "diabetes"):
        for init in ("symmetric", "plain"):
            for precision in ("1bit", "full"):
                for width in WIDTHS:
                    for n_train in (64, 128, 256):
                        for seed in (0, 1):
                            N, scale = width * 16, 1.4 if precision == "1bit" else 1.0
                            loss = 0.01 + scale * (2.0 / N**0.4 + 1.5 / n_train**0.5)
                            loss *= np.exp(0.01 * rng.standard_normal())
                            final = (0.05 if init == "plain" else 0.01) * width**-0.3
                            rows.append({
                                "task": task, "init": init, "precision": precision,
                                "width": width, "n_train": n_train, "seed": seed, "N": N,
                                "model_bits": N * (1 if precision == "1bit" else 32) + width,
                                "steps": 100, "compute": 6 * N * n_train * 100,
                                "train_loss": final, "test_loss": loss,
                                "generalization_difference_mean":
                                    0.0 if precision == "full" else 0.3 * width**-0.25,
                                "generalization_difference_max":
                                    0.0 if precision == "full" else 1.2 * width**-0.25,
                                "kernel_error_init": 2.0 * width**kernel_exponent,
                                "kernel_drift": 1.5 * width**drift_exponent,
                                "sign_flip_fraction": 0.5 * width**-0.5,
                                "ntk_train_loss": 0.004, "ntk_test_loss": 0.05,
                                "ntk_difference_mean": 0.2 * width**-0.25,
                                "curve_step": steps,
                                "loss_curve": [0.5 * np.exp(-t / 30) + final for t in steps],
                                "ntk_loss_curve": [0.5 * np.exp(-t / 25) for t in steps],
                                "diverged": False, "wall_time": 0.1, "version": "0.1.0",
                            })
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> object:
    table = _table()
    laws = {"teacher": fit_sweep_laws(table, task="teacher", n_resamples=10, n_jobs=2)}
    return build_report(table, laws, tmp_path_factory.mktemp("report"),
                        configuration={"sweep": {"widths": list(WIDTHS)}}, fingerprint="abc123")


EXPECTED = ["kernel_error", "loss_curves", "generalization_difference", "kernel_drift",
            "loss_vs_N", "loss_vs_bits", "loss_vs_D", "loss_vs_compute", "initialisation",
            "task_diabetes"]


def test_every_figure_is_written_with_a_reading(report: object) -> None:
    assert [f.name for f in report.figures] == EXPECTED
    for figure in report.figures:
        assert figure.path.is_file() and figure.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert figure.reading and "\n" not in figure.reading, figure.name
    assert report.overview is not None and report.overview.path.is_file()
    assert report.skipped == []
    assert report.laws_path.is_file()


def test_page_is_self_contained_with_every_figure_and_reading(report: object) -> None:
    page = report.html_path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(EXPECTED)
    assert [base64.b64decode(i) for i in images] == [f.png for f in report.figures]
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    for figure in report.figures:
        assert html.escape(figure.reading) in page
    assert "abc123" in page and "Fitted scaling laws" in page


def test_readings_are_computed_from_the_results() -> None:
    readings = figure_readings(_table())
    assert "m^-0.50 (theory m^-0.5)" in readings["kernel_error"]
    assert "from 0.25 at m=64 to 0.031 at m=4,096" in readings["kernel_error"]
    other = figure_readings(_table(kernel_exponent=-0.3, drift_exponent=-0.8))
    assert "m^-0.30" in other["kernel_error"]
    assert "(m^-0.80)" in other["kernel_drift"]
    assert readings["kernel_drift"] != other["kernel_drift"]
    assert "4.5e-4" not in readings["loss_curves"]
    assert "0.0040 predicted by the infinite-width NTK" in readings["loss_curves"]
    assert "(m^-0.25)" in readings["generalization_difference"]
    assert "with the symmetric initialisation" in readings["initialisation"]


def test_law_exponents_appear_in_the_readings(report: object) -> None:
    reading = {f.name: f.reading for f in report.figures}["loss_vs_N"]
    match = re.search(r"alpha = ([0-9.]+) \[([0-9.]+), ([0-9.]+)\] \(1-bit", reading)
    assert match, reading
    alpha, low, high = map(float, match.groups())
    assert low <= alpha <= high


def test_a_table_without_curves_gives_the_figures_it_can(tmp_path: Path) -> None:
    table = _table().drop(columns=["loss_curve", "curve_step", "ntk_loss_curve"])
    result = build_report(table[table.task == "teacher"], None, tmp_path)
    names = [f.name for f in result.figures]
    assert "loss_curves" not in names and "kernel_error" in names
    assert any(s.startswith("loss_curves") for s in result.skipped)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed")
def test_a_real_browser_renders_every_figure(report: object, tmp_path: Path) -> None:
    browser = _chromium()
    assert browser is not None
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    url = report.html_path.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120)
    # The page's own check: every <img> decoded by the browser (naturalWidth > 0).
    assert f'data-figures-rendered="{len(EXPECTED)}/{len(EXPECTED)}"' in dom.stdout, dom.stderr
    screenshot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1100,2400", f"--screenshot={screenshot}", url],
                   capture_output=True, timeout=120, check=True)
    import matplotlib.image

    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[0] == 2400 and pixels.shape[1] == 1100
    assert pixels[..., :3].std() > 0.05  # text and figures, not a blank page
