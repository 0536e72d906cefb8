"""The ``pybinscale`` command: run the study, fit laws, rebuild reports, take the tour.

``pybinscale run`` trains 1-bit networks and their full-precision twins over a grid of
widths, training-set sizes and seeds on the embedded tasks, fits scaling laws and writes
a report; ``pybinscale fit RESULTS`` fits one law form to a results file or CSV;
``pybinscale report RESULTS`` rebuilds the report from a results file; ``pybinscale
tour`` times the kernels on this machine.

Errors a user can cause (bad option values, an unwritable output directory, an
unreachable Dask scheduler, a damaged or foreign results file) are reported as one line
``pybinscale: error: ...`` on stderr, with exit status 2 for bad usage and 1 otherwise.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .scaling.sweep_laws import SweepLaws

__all__ = ["CLIError", "STUDIES", "Study", "main", "build_parser"]

#: Errors of a write that found no room: a full disk, a quota, a file size limit.
_FULL_DISK = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}

#: Default output directory of ``pybinscale run``.
DEFAULT_OUT = "pybinscale-report"


class CLIError(Exception):
    """An error to report as one line and an exit status (2: usage, 1: runtime)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Study:
    """The grid and settings of one ``pybinscale run`` flavour.

    Attributes
    ----------
    widths, n_train, seeds : tuple of int
    inits : tuple of str
        ``"symmetric"`` (the theory's setting) and, beside it, ``"plain"``.
    max_iter : int
        Gradient steps per fit.
    learning_rate : float
        Step size; the kernel regime is stable below ``4 / kappa^2``.
    resamples : int
        Bootstrap resamples per law.
    all_task_laws : bool
        Fit laws to every task; otherwise to the first (the teacher task) only.
    """

    widths: tuple[int, ...]
    n_train: tuple[int, ...]
    seeds: tuple[int, ...]
    inits: tuple[str, ...]
    max_iter: int
    learning_rate: float
    resamples: int
    all_task_laws: bool


#: ``--quick`` and the default run.
STUDIES = {
    "quick": Study(
        widths=(64, 256, 1024),
        n_train=(64, 128, 256),
        seeds=(0, 1),
        inits=("symmetric", "plain"),
        max_iter=200,
        learning_rate=2.0,
        resamples=20,
        all_task_laws=False,
    ),
    "default": Study(
        widths=(64, 256, 1024, 4096, 16384),
        n_train=(32, 64, 128, 256),
        seeds=(0, 1, 2),
        inits=("symmetric", "plain"),
        max_iter=500,
        learning_rate=2.0,
        resamples=200,
        all_task_laws=True,
    ),
}


# ------------------------------------------------------------------- parsing


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see '{self.prog} --help')", status=2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or -1 (all cores), got {text!r}"
        ) from None
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or -1 (all cores), got {text!r}"
        )
    return value


def _resamples(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 0 or an integer >= 2, got {text!r}") from None
    if value < 0 or value == 1:
        raise argparse.ArgumentTypeError(f"expected 0 or an integer >= 2, got {text!r}")
    return value


def _int_list(minimum: int) -> Any:
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            values = ()
        if not values or min(values) < minimum or len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(
                f"expected distinct integers >= {minimum} separated by commas, got {text!r}"
            )
        return values

    return parse


def _init_list(text: str) -> tuple[str, ...]:
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    if not values or any(v not in ("symmetric", "plain") for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(
            f"expected symmetric, plain or symmetric,plain, got {text!r}"
        )
    return values


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pybinscale`` command.

    Examples
    --------
    >>> from pybinscale.cli import build_parser
    >>> args = build_parser().parse_args(["run", "--quick", "--n-jobs", "2"])
    >>> args.command, args.quick, args.n_jobs, args.out
    ('run', True, 2, 'pybinscale-report')
    """
    from .datasets import TASK_NAMES
    from .scaling.forms import FORMS

    parser = _Parser(
        prog="pybinscale",
        description="Scaling of 1-bit neural networks: run the study, fit laws, write reports.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    run = commands.add_parser(
        "run",
        help="run the whole study on the embedded tasks and write a report",
        description=(
            "Train 1-bit networks and their full-precision twins over widths, training-set "
            "sizes and seeds, fit scaling laws and write DIR/report.html. Every finished "
            "point is saved at once: rerun the same command to resume."
        ),
    )
    run.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                     help=f"output directory (default: ./{DEFAULT_OUT})")
    run.add_argument("--quick", action="store_true",
                     help="a small grid that finishes in about a minute on 2 cores")
    run.add_argument("--task", choices=TASK_NAMES, action="append", metavar="NAME",
                     help=f"run only this task ({', '.join(TASK_NAMES)}); repeatable "
                          "(default: all)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the points on an existing Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--scheduler-file", metavar="PATH",
                       help="the scheduler's JSON file (dask scheduler --scheduler-file PATH)")
    run.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N",
                     help="local worker processes (default: all cores; -1: all cores); with "
                          "a scheduler, how many points run at once (default: all its threads)")
    run.add_argument("--resamples", type=_resamples, default=None, metavar="N",
                     help="bootstrap resamples per law (default: 20 quick, 200 full; 0: none)")
    grid = run.add_argument_group(
        "grid", "override the study's grid (defaults: see --quick and the README)"
    )
    grid.add_argument("--widths", type=_int_list(2), metavar="M,M,...",
                      help="hidden widths, even (e.g. 64,256,1024)")
    grid.add_argument("--n-train", type=_int_list(1), metavar="D,D,...",
                      help="training-set sizes (e.g. 64,128,256)")
    grid.add_argument("--seeds", type=_int_list(0), metavar="S,S,...", help="seeds (e.g. 0,1)")
    grid.add_argument("--max-iter", type=_positive_int, metavar="T", help="gradient steps per fit")
    grid.add_argument("--inits", type=_init_list, metavar="INIT,...",
                      help="initialisations: symmetric, plain or both (symmetric,plain)")
    run.add_argument("--timeout", type=_positive_int, default=10, metavar="SECONDS",
                     help="how long to try to reach the scheduler (default: 10)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    fit = commands.add_parser(
        "fit",
        help="fit a scaling law to a results file or CSV and print it with intervals",
        description=(
            "Fit a ScalingLaw form to RESULTS (a results.jsonl written by 'pybinscale run', "
            "its directory, or a CSV with columns N, D or n_train, C or compute, precision "
            "and a loss column)."
        ),
    )
    fit.add_argument("results", metavar="RESULTS")
    fit.add_argument("--form", choices=sorted(FORMS), default="chinchilla",
                     help="law form (default: chinchilla)")
    fit.add_argument("--x", choices=("N", "bits", "D", "C"), default=None,
                     help="variable of a one-variable form (default: N)")
    fit.add_argument("--precision", choices=("1bit", "full"), default=None,
                     help="fit only this precision (default: each separately; the precision "
                          "form fits both together)")
    fit.add_argument("--task", default=None, help="fit only this task (default: the first)")
    fit.add_argument("--init", default="symmetric",
                     help="fit only this initialisation (default: symmetric)")
    fit.add_argument("--loss", default="test_loss",
                     help="loss column (default: test_loss; also train_loss, ...)")
    fit.add_argument("--resamples", type=_resamples, default=200, metavar="N",
                     help="bootstrap resamples (default: 200; 0: no intervals)")

    report = commands.add_parser(
        "report",
        help="rebuild the report from a results file",
        description="Fit the laws and write report.html and the figures from RESULTS.",
    )
    report.add_argument("results", metavar="RESULTS",
                        help="a results.jsonl, its directory, or a CSV")
    report.add_argument("--out", metavar="DIR", default=None,
                        help="output directory (default: the directory of RESULTS)")
    report.add_argument("--resamples", type=_resamples, default=200, metavar="N",
                        help="bootstrap resamples per law (default: 200; 0: none)")
    report.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N",
                        help="processes for the law fits (default: all cores)")

    commands.add_parser("tour", help="a one-minute tour of the kernels on this machine")
    return parser


# ------------------------------------------------------------------ helpers


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _writable_directory(path: str) -> Path:
    """Create ``path`` if needed and check that a file can be written there."""
    directory = Path(path).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".pybinscale-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or str(error)
        raise CLIError(f"cannot write to output directory {path}: {reason}") from None
    return directory


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover
        return os.cpu_count() or 1


def load_results_table(path: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a results file (or the one in a directory, or a CSV) as a table.

    Returns
    -------
    table : DataFrame
    header : dict
        The results file's header (empty for a CSV).

    Raises
    ------
    CLIError
        If the file does not exist or cannot be read.
    ResultsFileError
        If it is damaged or not a results file.
    """
    import pandas as pd

    from .scaling.results import RESULTS_FILENAME, read_results
    from .scaling.sweep_laws import results_frame

    source = Path(path).expanduser()
    if source.is_dir():
        source = source / RESULTS_FILENAME
    if not source.is_file():
        raise CLIError(f"results file {source} does not exist")
    if source.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(source)
        except (ValueError, OSError, UnicodeDecodeError) as error:
            raise CLIError(f"cannot read CSV file {source}: {error}") from None
        # List columns of a CSV exported from a results table arrive as text.
        for column in ("curve_step", "loss_curve", "ntk_loss_curve"):
            if column in table:
                try:
                    table[column] = table[column].map(json.loads)
                except (TypeError, ValueError):
                    table = table.drop(columns=column)
        return table, {}
    try:
        contents = read_results(source)
    except OSError as error:
        raise CLIError(f"cannot read results file {source}: {error.strerror or error}") from None
    if not contents.rows:
        raise CLIError(f"results file {source} holds no finished points yet")
    return results_frame(contents.rows), contents.header


def _fit_laws(
    table: pd.DataFrame, resamples: int, n_jobs: int | None, all_tasks: bool = True
) -> dict[str, SweepLaws]:
    from .scaling.sweep_laws import fit_sweep_laws

    tasks: list[str | None] = list(dict.fromkeys(table["task"])) if "task" in table else [None]
    if not all_tasks:
        tasks = tasks[:1]
    laws = {}
    for task in tasks:
        fitted = fit_sweep_laws(
            table, task=task, n_resamples=resamples, n_jobs=n_jobs, random_state=0
        )
        laws[str(fitted.task if fitted.task is not None else "custom")] = fitted
    return laws


def _format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _print_summary(table: pd.DataFrame, laws: dict[str, SweepLaws], report: Any) -> None:
    from .report import summary_rows

    headers, rows = summary_rows(table)
    keep = [h for h in headers if h in (
        "task", "init", "precision", "width", "train loss", "test loss", "gen. diff. mean",
        "kernel error at init", "kernel drift",
    )]
    index = [headers.index(h) for h in keep]
    print("\nResults (means over seeds, largest training set)")
    print(_format_table(keep, [[row[i] for i in index] for row in rows]))
    for task, fitted in laws.items():
        print(f"\nScaling laws, task '{task}' (test loss; 95% bootstrap intervals)")
        law_rows = [
            [r["law"], r["form"], r["points"], r["parameters"]] for r in fitted.summary_rows()
        ]
        print(_format_table(["law", "form", "points", "parameters"], law_rows))
    print("\nReadings")
    for figure in report.figures:
        print(f"- {figure.reading}")


@contextmanager
def _cluster(args: argparse.Namespace) -> Iterator[str | None]:
    """Connect to the Dask scheduler the options name, or do nothing."""
    if not (args.scheduler or args.scheduler_file):
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise CLIError(
            "--scheduler needs dask.distributed; install it with: pip install 'pybinscale[dask]'"
        ) from None
    if args.scheduler_file:
        path = Path(args.scheduler_file).expanduser()
        try:
            address = str(json.loads(path.read_text())["address"])
        except FileNotFoundError:
            raise CLIError(f"scheduler file {path} does not exist") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CLIError(
                f"scheduler file {path} is not a Dask scheduler file ({type(error).__name__}: "
                f"{error})"
            ) from None
    else:
        address = str(args.scheduler)
    # The client logs every failed connection attempt; the one line below says it all.
    for name in ("distributed", "distributed.client", "distributed.comm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        client = Client(address, timeout=f"{args.timeout}s", set_as_default=True)
    except (OSError, TimeoutError, ValueError, TypeError) as error:
        detail = str(error).split("\n")[0] or type(error).__name__
        raise CLIError(f"cannot reach the Dask scheduler at {address}: {detail}") from None
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        _say(f"pybinscale: connected to the Dask scheduler at {address} ({n_workers} workers)")
        yield address
    finally:
        client.close()


# ------------------------------------------------------------------ commands


def _command_run(args: argparse.Namespace) -> int:
    from joblib import parallel_config

    from . import BinaryMLPRegressor
    from .datasets import TASK_NAMES, load_task
    from .report import build_report
    from .scaling.sweep import ScalingSweep

    from dataclasses import replace

    study = STUDIES["quick" if args.quick else "default"]
    overrides = {
        name: getattr(args, name)
        for name in ("widths", "n_train", "seeds", "max_iter", "inits")
        if getattr(args, name) is not None
    }
    study = replace(study, **overrides)
    if "symmetric" in study.inits and any(w % 2 for w in study.widths):
        raise CLIError(
            f"argument --widths: the symmetric initialisation pairs neurons, so widths must be "
            f"even; got {','.join(map(str, study.widths))}",
            status=2,
        )
    out = _writable_directory(args.out)
    names = list(dict.fromkeys(args.task or TASK_NAMES))
    tasks = {name: load_task(name) for name in names}
    resamples = study.resamples if args.resamples is None else args.resamples
    started = time.perf_counter()
    with _cluster(args) as address:
        n_jobs = args.n_jobs if (args.n_jobs is not None or address) else _cores()
        sweep = ScalingSweep(
            BinaryMLPRegressor(learning_rate=study.learning_rate),
            widths=study.widths,
            n_train=study.n_train,
            seeds=study.seeds,
            inits=study.inits,
            max_iter=study.max_iter,
            out=out,
            n_jobs=n_jobs,
            verbose=not args.no_progress,
        )
        data = {name: (task.X, task.y) for name, task in tasks.items()}
        if address is not None:
            with parallel_config(backend="dask"):
                table = sweep.run_tasks(data)
        else:
            table = sweep.run_tasks(data)
    swept = time.perf_counter() - started
    if sweep.n_resumed_:
        _say(f"pybinscale: resumed: {sweep.n_resumed_} points were already in "
             f"{sweep.results_path_}, {sweep.n_run_} ran now")
    _say("pybinscale: fitting scaling laws...")
    laws = _fit_laws(
        table, resamples, args.n_jobs if args.n_jobs else _cores(), study.all_task_laws
    )
    fitted = time.perf_counter() - started - swept
    notes = [
        f"Command: pybinscale run{' --quick' if args.quick else ''}"
        + "".join(f" --task {n}" for n in (args.task or [])),
        "Tasks: " + "; ".join(task.description for task in tasks.values()),
        f"Sweep {swept:.0f} s ({sweep.n_run_} points run, {sweep.n_resumed_} resumed"
        + (f", on the Dask cluster at {address}" if address else f", n_jobs={n_jobs}")
        + f"), laws {fitted:.0f} s ({resamples} bootstrap resamples each).",
    ]
    report = build_report(
        table,
        laws,
        out,
        title="pybinscale: scaling of 1-bit networks" + (" (quick run)" if args.quick else ""),
        configuration=sweep.configuration_,
        fingerprint=sweep.fingerprint_,
        notes=notes,
    )
    _print_summary(table, laws, report)
    total = time.perf_counter() - started
    print(f"\nReport: {report.html_path}  ({total:.0f} s in all)")
    print(f"Results: {sweep.results_path_}   Laws: {report.laws_path}   "
          f"Figures: {out / 'figures'}")
    return 0


def _command_fit(args: argparse.Namespace) -> int:
    from .scaling.forms import get_form
    from .scaling.sweep_laws import (
        PRECISION_BITS,
        _fit_one,
        _LawSpec,
        _select,
        law_table,
    )

    table, _ = load_results_table(args.results)
    frame = law_table(table, args.loss)
    task = args.task
    if task is None and "task" in frame and len(frame):
        task = str(frame["task"].iloc[0])
    if task is not None and "task" in frame:
        if task not in set(frame["task"]):
            raise CLIError(f"--task {task}: the results have tasks {sorted(set(frame['task']))}",
                           status=2)
        frame = _select(frame, task=task)
    if "init" in frame and args.init is not None:
        if args.init not in set(frame["init"]):
            raise CLIError(f"--init {args.init}: the results have {sorted(set(frame['init']))}",
                           status=2)
        frame = _select(frame, init=args.init)
    form = get_form(args.form)
    # Options that contradict the form are refused rather than silently ignored.
    if form.variables is not None and args.x is not None:
        raise CLIError(f"--x {args.x}: form {args.form} is a law in {', '.join(form.variables)} "
                       "together; --x chooses the variable of a one-variable form", status=2)
    if args.form == "precision" and args.precision is not None:
        raise CLIError(f"--precision {args.precision}: form precision fits both precisions "
                       "together; drop --precision or choose another form", status=2)
    if args.precision is not None and "precision" in frame:
        if args.precision not in set(frame["precision"]):
            raise CLIError(f"--precision {args.precision}: the results have "
                           f"{sorted(set(frame['precision']))}", status=2)
    x = args.x or "N"
    if form.variables is None:
        columns = [x]
        variables = ["N"] if x == "bits" else [x]
    else:
        columns = list(form.variables)
        variables = list(form.variables)
    missing = [c for c in columns if c not in frame]
    if missing:
        raise CLIError(f"the results lack the column(s) {missing} that form {args.form} needs")
    if args.form == "precision":
        groups: list[str | None] = [None]
    elif args.precision is not None:
        groups = [args.precision]
    else:
        present = set(frame["precision"]) if "precision" in frame else set()
        groups = [p for p in PRECISION_BITS if p in present] or [None]
    print(f"{args.form}: {form.formula}   (loss = {args.loss}"
          + (f", task {task}" if task else "") + ")")
    status = 0
    for precision in groups:
        points = frame if precision is None else _select(frame, precision=precision)
        spec = _LawSpec(args.form, "", args.form, x, precision, points, variables, columns)
        law = _fit_one(spec, args.resamples, 0.95, 0)
        heading = f"\n[{precision}]" if precision else "\n[all points]"
        print(f"{heading} {len(law.points)} points")
        if law.law is None:
            print(f"  not fitted: {law.note}")
            status = 1
            continue
        intervals = getattr(law.law, "confidence_intervals_", {}) or {}
        for name, value in {**law.law.params_, **law.law.derived_}.items():
            text = f"  {name:>16} = {value:.6g}"
            if name in intervals:
                low, high = intervals[name]
                text += f"   95% interval [{low:.6g}, {high:.6g}]"
            print(text)
        if law.note:
            print(f"  note: {law.note}")
    return status


def _command_report(args: argparse.Namespace) -> int:
    from .report import build_report

    table, header = load_results_table(args.results)
    source = Path(args.results).expanduser()
    out = _writable_directory(args.out) if args.out else (source if source.is_dir() else source.parent)
    if args.out is None:
        _writable_directory(str(out))
    _say("pybinscale: fitting scaling laws...")
    laws = _fit_laws(table, args.resamples, args.n_jobs if args.n_jobs else _cores())
    report = build_report(
        table,
        laws,
        out,
        title="pybinscale: scaling of 1-bit networks",
        configuration=header.get("configuration"),
        fingerprint=header.get("fingerprint"),
        notes=[f"Rebuilt from {source} by: pybinscale report"],
    )
    _print_summary(table, laws, report)
    print(f"\nReport: {report.html_path}")
    return 0


def _best_time(call: Any, repeats: int = 4) -> float:
    """Best of back-to-back calls, after OpenBLAS's threads (which spin for about 0.1 s
    after numpy returns) have gone idle; the first call warms the cores up."""
    time.sleep(0.3)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def tour() -> int:
    """A one-minute tour of the kernels: exactness, speed beside numpy, NTK convergence."""
    import numpy as np

    import pybinscale as pb

    rng = np.random.default_rng(0)
    print(f"pybinscale {pb.__version__}: SIMD path {pb.simd_path()}, "
          f"{pb.get_num_threads()} threads")

    size = 2048
    A = rng.standard_normal((size, size)).astype(np.float32)
    B = rng.standard_normal((size, size)).astype(np.float32)
    signs_a = np.where(A >= 0, 1.0, -1.0).astype(np.float32)
    signs_b = np.where(B >= 0, 1.0, -1.0).astype(np.float32)
    exact = np.array_equal(pb.sign_matmul(A, B), (signs_a @ signs_b.T).astype(np.int32))
    ours = _best_time(lambda: pb.sign_matmul(A, B))
    reference = _best_time(lambda: signs_a @ signs_b.T)
    print(f"\n1-bit product sign(A) @ sign(B).T, {size}^3, packing included")
    print(f"  equal to numpy: {exact}   ours {ours * 1e3:.1f} ms, numpy float32 "
          f"{reference * 1e3:.1f} ms: {reference / ours:.1f}x")
    print(f"  storage: {pb.pack_signs(A).nbytes / 2**20:.2f} MiB packed vs "
          f"{A.nbytes / 2**20:.1f} MiB float32")

    X = rng.standard_normal((64, 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    limit = pb.ntk_limit(X)
    print("\nEmpirical NTK of Gaussian weights against its infinite-width limit "
          "(arc-cosine kernel)")
    print("  width     ||H - H*|| / ||H*||")
    widths = [2**k for k in range(8, 18, 3)]
    errors = []
    for width in widths:
        H = pb.ntk_gram(X, rng.standard_normal((width, 16)), quantized=False)
        errors.append(np.linalg.norm(H - limit) / np.linalg.norm(limit))
        print(f"  {width:>7}   {errors[-1]:.4f}")
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    print(f"  fitted exponent {slope:.2f} (theory: -0.5)")
    return 0


# --------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pybinscale`` command; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Examples
    --------
    >>> from pybinscale.cli import main
    >>> main(["run", "--n-jobs", "0"])
    2
    """
    from .scaling.results import ResultsFileError, TruncatedLineWarning
    from .scaling.sweep import PointFailedError

    def report_warning(message: Any, category: Any, *rest: Any, **kw: Any) -> None:
        _say(f"pybinscale: warning: {message}")

    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings():
            warnings.simplefilter("always", TruncatedLineWarning)
            warnings.showwarning = report_warning  # type: ignore[assignment]
            if args.command == "run":
                return _command_run(args)
            if args.command == "fit":
                return _command_fit(args)
            if args.command == "report":
                return _command_report(args)
            return tour()
    except CLIError as error:
        _say(f"pybinscale: error: {error}")
        return error.status
    except ResultsFileError as error:
        _say(f"pybinscale: error: {error}")
        return 1
    except PointFailedError as error:
        _say(f"pybinscale: error: {error}; the points finished before are saved, rerun to "
             "resume")
        return 1
    except KeyboardInterrupt:
        _say("pybinscale: interrupted; every finished point is saved, rerun the same command "
             "to resume")
        return 130
    except (OSError, ValueError) as error:
        if os.environ.get("PYBINSCALE_DEBUG"):
            raise
        hint = ""
        if isinstance(error, OSError) and error.errno in _FULL_DISK:
            hint = ("; the points finished before are saved: free space (or raise the file "
                    "size limit) and rerun the same command to resume")
        _say(f"pybinscale: error: {type(error).__name__}: {error}{hint}")
        return 1
    except Exception as error:  # noqa: BLE001 - never a traceback, unless asked for
        if os.environ.get("PYBINSCALE_DEBUG"):
            raise
        first_line = str(error).splitlines()[0] if str(error) else ""
        _say(f"pybinscale: internal error: {type(error).__name__}: {first_line} "
             "(set PYBINSCALE_DEBUG=1 to see the traceback)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
