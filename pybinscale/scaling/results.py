"""The results file of a sweep: one JSON line per finished point, safe to kill at any time.

Layout (JSON lines, UTF-8)::

    {"pybinscale_results": 2, "fingerprint": "3f2a...", "configuration": {...}, ...}
    {"task": "teacher", "precision": "1bit", ..., "test_loss": 0.21, "_checksum": "9c41..."}
    {"task": "teacher", "precision": "full", ..., "test_loss": 0.19, "_checksum": "07be..."}

The first line is a header with the configuration that produced the rows and its
*fingerprint*, a hash of that configuration (sweep parameters, estimator parameters,
task data and package version). Each following line is one finished point, sealed with
a checksum of its values and the file's fingerprint (:func:`row_checksum`).

Guarantees:

- The file is created atomically (written to a temporary file, then renamed), so it
  either does not exist or has a complete header.
- Each row is appended with one ``os.write`` of the whole line, then flushed to disk
  (``fsync``) before the next point is reported finished. A process killed at any
  moment leaves at most a truncated last line; :func:`read_results` detects it, warns,
  and drops it (its point is simply run again), and :class:`ResultsWriter` cuts it off
  before appending.
- A run whose configuration differs from the file's is refused
  (:class:`ForeignResultsError`, naming both fingerprints and the differing settings),
  and so is a file that is not a results file or is damaged before its last line
  (:class:`CorruptResultsError`, naming every damaged line and counting the intact rows;
  the file is left as it was). A row whose values no longer match its checksum is
  damage too: an edit that keeps the line valid JSON (a changed number, a removed key)
  or a row pasted from another results file is caught, not silently fitted.
- Files of format 1 (pybinscale 0.1, rows without checksums) are still read; their rows
  cannot be checked.
- Only one process writes a file at a time: :class:`ResultsWriter` holds an exclusive
  lock on its directory and refuses to start while another run holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

try:  # POSIX only; elsewhere runs are not protected against a concurrent writer.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FORMAT_KEY",
    "FORMAT_VERSION",
    "RESULTS_FILENAME",
    "ResultsFileError",
    "CorruptResultsError",
    "ForeignResultsError",
    "ResultsLockedError",
    "TruncatedLineWarning",
    "ResultsContents",
    "ResultsWriter",
    "canonical_json",
    "configuration_fingerprint",
    "iter_rows",
    "read_results",
    "row_checksum",
    "row_key",
]

#: Key of the header record that marks a pybinscale results file; its value is the
#: format version.
FORMAT_KEY = "pybinscale_results"
FORMAT_VERSION = 2
#: Formats this version reads; format 1 has no row checksums.
READABLE_FORMATS = (1, 2)
#: Key under which each row carries its checksum; rows may not use it themselves.
CHECKSUM_KEY = "_checksum"
#: Name of the results file inside a sweep's output directory.
RESULTS_FILENAME = "results.jsonl"

# What can be wrong with a line after the header, as the damage message says it.
_NOT_A_RECORD = "not a JSON record"
_CHECKSUM_REMOVED = "its checksum was removed"
_CHECKSUM_FAILS = "its values do not match its checksum"


class ResultsFileError(ValueError):
    """A results file cannot be used; the message says which file and why."""


class CorruptResultsError(ResultsFileError):
    """The file is not a pybinscale results file, or a line before the last is damaged."""


class ForeignResultsError(ResultsFileError):
    """The file was written by a sweep with a different configuration."""


class ResultsLockedError(ResultsFileError):
    """Another process is writing to the same output directory."""


class TruncatedLineWarning(UserWarning):
    """The last line of a results file was cut short by an interrupted write."""


def canonical_json(value: Any) -> str:
    """Serialise ``value`` as JSON with sorted keys and no spaces, for hashing.

    Values JSON cannot hold (numpy scalars, tuples, other objects) are converted:
    numpy scalars and arrays to Python numbers and lists, tuples to lists, anything
    else to its ``repr``.

    Examples
    --------
    >>> from pybinscale.scaling.results import canonical_json
    >>> canonical_json({"b": (1, 2), "a": None})
    '{"a":null,"b":[1,2]}'
    """
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """Convert ``value`` into JSON-native types (recursively)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _plain(tolist())
    return repr(value)


def configuration_fingerprint(configuration: Mapping[str, Any]) -> str:
    """A short hash of a configuration: equal configurations, equal fingerprints.

    Parameters
    ----------
    configuration : mapping
        JSON-serialisable settings (see :func:`canonical_json`).

    Returns
    -------
    str
        16 hexadecimal digits of the SHA-256 of the canonical JSON.

    Examples
    --------
    >>> from pybinscale.scaling.results import configuration_fingerprint
    >>> a = configuration_fingerprint({"widths": [64, 256], "seeds": [0]})
    >>> a == configuration_fingerprint({"seeds": [0], "widths": [64, 256]})
    True
    >>> a == configuration_fingerprint({"widths": [64, 512], "seeds": [0]})
    False
    >>> len(a)
    16
    """
    return hashlib.sha256(canonical_json(configuration).encode()).hexdigest()[:16]


def row_checksum(row: Mapping[str, Any], fingerprint: str) -> str:
    """The seal of one row: a hash of its values and of the file's fingerprint.

    Binding the fingerprint in means a row copied from another sweep's results file
    fails the check even if its values are intact.

    Parameters
    ----------
    row : mapping
        The row without its checksum (see :func:`canonical_json`; key order is ignored).
    fingerprint : str
        The :func:`configuration_fingerprint` in the file's header.

    Returns
    -------
    str
        16 hexadecimal digits of the SHA-256 of the fingerprint and the canonical row.

    Examples
    --------
    >>> from pybinscale.scaling.results import row_checksum
    >>> seal = row_checksum({"width": 64, "loss": 0.5}, "3f2a9c0d1e2b4a6f")
    >>> seal == row_checksum({"loss": 0.5, "width": 64}, "3f2a9c0d1e2b4a6f")
    True
    >>> seal == row_checksum({"width": 64, "loss": 0.51}, "3f2a9c0d1e2b4a6f")
    False
    """
    sealed = f"{fingerprint}\n{canonical_json(row)}"
    return hashlib.sha256(sealed.encode()).hexdigest()[:16]


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ between two configurations."""
    if isinstance(old, dict) and isinstance(new, dict):
        names: list[str] = []
        for key in sorted(set(old) | set(new)):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                names.append(name)
            else:
                names.extend(_differences(old[key], new[key], name))
        return names
    return [] if old == new else [prefix or "(whole configuration)"]


def _describe_differences(old: Any, new: Any, limit: int = 4) -> str:
    names = _differences(old, new)
    shown = []
    for name in names[:limit]:
        before, after = _lookup(old, name), _lookup(new, name)
        shown.append(f"{name}: {_short(before)} -> {_short(after)}")
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return "; ".join(shown) + more


_MISSING = object()


def _lookup(configuration: Any, dotted: str) -> Any:
    value = configuration
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _short(value: Any, width: int = 40) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class ResultsContents:
    """What :func:`read_results` found in a results file.

    Attributes
    ----------
    path : Path
    header : dict
        The first record: format version, fingerprint, configuration.
    rows : list of dict
        The finished points, in the order they were written.
    good_size : int
        Bytes up to the end of the last complete line; a writer cuts the file there.
    dropped_tail : bytes
        The truncated last line that was dropped (empty if none).
    """

    path: Path
    header: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    good_size: int = 0
    dropped_tail: bytes = b""

    @property
    def fingerprint(self) -> str:
        """The fingerprint recorded in the header."""
        return str(self.header.get("fingerprint", ""))

    @property
    def configuration(self) -> dict[str, Any]:
        """The configuration recorded in the header."""
        configuration = self.header.get("configuration", {})
        return configuration if isinstance(configuration, dict) else {}


def _parse_line(line: bytes) -> Any:
    return json.loads(line.decode("utf-8"))


def read_results(path: str | os.PathLike[str], *, warn: bool = True) -> ResultsContents:
    """Read a results file, dropping (and reporting) a truncated last line.

    Parameters
    ----------
    path : str or path-like
        A file written by :class:`ResultsWriter`.
    warn : bool, default=True
        Issue a :class:`TruncatedLineWarning` when a truncated last line is dropped.

    Returns
    -------
    ResultsContents

    Raises
    ------
    CorruptResultsError
        If the file has no valid header (it is not a pybinscale results file), or a
        line other than the last cannot be read.
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> import os, tempfile, warnings
    >>> from pybinscale.scaling.results import ResultsWriter, read_results
    >>> path = os.path.join(tempfile.mkdtemp(), "results.jsonl")
    >>> with ResultsWriter(path, {"widths": [64]}) as writer:
    ...     writer.append({"width": 64, "loss": 0.5})
    >>> with open(path, "ab") as f:  # a write cut short by a crash
    ...     _ = f.write(b'{"width": 12')
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     contents = read_results(path)
    >>> contents.rows, len(caught)
    ([{'width': 64, 'loss': 0.5}], 1)
    """
    path = Path(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    # The piece after the last newline is empty for a file whose writes all finished.
    tail = lines.pop()
    if not lines:
        if not tail.strip():
            raise CorruptResultsError(f"results file {path} is empty")
        lines, tail = [tail], b""  # a header without its newline: let it be checked
    try:
        header = _parse_line(lines[0])
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or FORMAT_KEY not in header:
        raise CorruptResultsError(
            f"{path} is not a pybinscale results file (its first line is not a "
            "pybinscale results header)"
        )
    version = header[FORMAT_KEY]
    if version not in READABLE_FORMATS:
        raise CorruptResultsError(
            f"{path} has results format {version!r}; this version of pybinscale reads "
            f"formats {', '.join(map(str, READABLE_FORMATS))}"
        )
    fingerprint = str(header.get("fingerprint", ""))
    rows: list[dict[str, Any]] = []
    damaged: list[tuple[int, str]] = []
    good_size = len(lines[0]) + 1
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            good_size += len(line) + 1
            continue
        try:
            row = _parse_line(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            row = None
        if not isinstance(row, dict):
            if number == len(lines) and not tail:
                # A complete but unreadable last line: also the trace of a crash
                # (a file system can leave zeros in a block it had not flushed).
                tail = line
                break
            damaged.append((number, _NOT_A_RECORD))
            continue
        problem = _seal_problem(row, fingerprint, version)
        if problem:
            damaged.append((number, problem))
            continue
        rows.append(row)
        good_size += len(line) + 1
    if damaged:
        raise CorruptResultsError(_damage_message(path, damaged, len(rows)))
    if tail and warn:
        warnings.warn(
            f"results file {path}: dropped a truncated last line ({len(tail)} bytes, "
            "from an interrupted write); its point will run again",
            TruncatedLineWarning,
            stacklevel=2,
        )
    return ResultsContents(
        path=path, header=header, rows=rows, good_size=good_size, dropped_tail=tail
    )


def _seal_problem(row: dict[str, Any], fingerprint: str, version: int) -> str:
    """Remove ``row``'s checksum and say what is wrong with it ("" if nothing is)."""
    written = row.pop(CHECKSUM_KEY, None)
    if written is None:
        return "" if version < 2 else _CHECKSUM_REMOVED
    if written != row_checksum(row, fingerprint):
        return _CHECKSUM_FAILS
    return ""


def _damage_message(path: Path, damaged: list[tuple[int, str]], intact: int, shown: int = 5
                    ) -> str:
    listed = ", ".join(f"{number} ({problem})" for number, problem in damaged[:shown])
    if len(damaged) > shown:
        listed += f" and {len(damaged) - shown} more"
    where = f"line {listed}" if len(damaged) == 1 else f"lines {listed}"
    why = ""
    if any(problem != _NOT_A_RECORD for _, problem in damaged):
        why = ("; a row whose checksum fails was changed after it was written or copied "
               "from another results file, so its values cannot be trusted")
    them = "that line" if len(damaged) == 1 else "those lines"
    points = "its point runs" if len(damaged) == 1 else "their points run"
    return (
        f"results file {path} is damaged at {where}{why}; its other {intact} rows are "
        f"intact: delete {them} to resume with them ({points} again), or move the file "
        "away to start afresh"
    )


def _write_all(fd: int, payload: bytes) -> None:
    """``os.write`` until every byte is out (one call for any line of a results file)."""
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot sync a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _json_line(record: Mapping[str, Any]) -> bytes:
    text = json.dumps(_plain(record), allow_nan=True, separators=(",", ":"))
    if "\n" in text:  # json.dumps escapes newlines in strings; never expected
        raise ValueError("a results record must serialise to a single line")
    return (text + "\n").encode("utf-8")


def _sealed_line(row: Mapping[str, Any], fingerprint: str) -> bytes:
    """``row`` as one line, its checksum last."""
    if not isinstance(row, Mapping):
        raise TypeError(f"row must be a mapping, got {type(row).__name__}")
    plain = _plain(row)
    if CHECKSUM_KEY in plain:
        raise ValueError(f"row must not have a {CHECKSUM_KEY!r} key: the results file "
                         "writes each row's checksum under it")
    return _json_line({**plain, CHECKSUM_KEY: row_checksum(plain, fingerprint)})


class ResultsWriter:
    """Open a results file for a sweep: check it, lock it, append rows atomically.

    On entering, the output directory is created if needed and locked; a temporary
    header left by a run killed while creating the file is removed; an existing file
    is read (a truncated last line is dropped and cut off), and refused if its
    fingerprint differs from this configuration's or a row fails its checksum; a
    missing file is created with the header. :meth:`append` then writes each row, sealed
    with its checksum, with a single ``os.write`` followed by ``fsync``.

    Parameters
    ----------
    path : str or path-like
        The results file.
    configuration : mapping
        The sweep's configuration; its :func:`configuration_fingerprint` is recorded
        in the header and compared with an existing file's.
    extra_header : mapping, optional
        More fields for a new file's header (e.g. creation time); not compared.

    Attributes
    ----------
    fingerprint : str
    rows : list of dict
        Rows already in the file when it was opened.
    dropped_tail : bytes
        A truncated last line that was found and removed on opening.

    Raises
    ------
    ForeignResultsError
        If the existing file was written by a different configuration.
    CorruptResultsError
        If the existing file is not a results file or is damaged before its last line.
    ResultsLockedError
        If another process holds the lock on the directory.
    OSError
        If the directory cannot be created or written.

    Examples
    --------
    >>> import os, tempfile
    >>> from pybinscale.scaling.results import ResultsWriter, read_results
    >>> path = os.path.join(tempfile.mkdtemp(), "results.jsonl")
    >>> with ResultsWriter(path, {"widths": [64, 256]}) as writer:
    ...     writer.append({"width": 64, "loss": 0.5})
    >>> with ResultsWriter(path, {"widths": [64, 256]}) as writer:  # resume
    ...     [row["width"] for row in writer.rows]
    [64]
    >>> ResultsWriter(path, {"widths": [64, 512]}).__enter__()
    Traceback (most recent call last):
    ...
    pybinscale.scaling.results.ForeignResultsError: ...
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        configuration: Mapping[str, Any],
        *,
        extra_header: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.configuration = json.loads(canonical_json(configuration))
        self.fingerprint = configuration_fingerprint(configuration)
        self.extra_header = dict(extra_header or {})
        self.rows: list[dict[str, Any]] = []
        self.dropped_tail = b""
        self._fd: int | None = None
        self._lock_fd: int | None = None

    # -------------------------------------------------------------- lifecycle

    def __enter__(self) -> ResultsWriter:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        self._lock(directory)
        try:
            self._remove_stale_headers()
            if self.path.exists() and self.path.stat().st_size > 0:
                self._open_existing()
            else:
                self._create()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file and release the directory lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._unlock()

    def _lock(self, directory: Path) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            return
        fd = os.open(directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ResultsLockedError(
                f"another pybinscale run is writing to {directory}; wait for it to "
                "finish or use another output directory"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _temporary_prefix(self) -> str:
        return f".{self.path.name}."

    def _remove_stale_headers(self) -> None:
        # Holding the directory lock, no other writer is creating a header here: a
        # temporary header is what a run killed before its rename left behind.
        for stale in self.path.parent.glob(f"{self._temporary_prefix()}*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def _create(self) -> None:
        header = {
            FORMAT_KEY: FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "configuration": self.configuration,
            **self.extra_header,
        }
        # Not mkstemp: its mode 0600 would survive the rename, and a results file
        # should be as readable as any other file the user creates (0666 less umask).
        temporary = str(
            self.path.parent / f"{self._temporary_prefix()}{secrets.token_hex(6)}.tmp"
        )
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            try:
                _write_all(fd, _json_line(header))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
        except BaseException as error:
            # A full disk fails the write: leave no temporary file behind.
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(error, OSError) and error.filename is None:
                raise OSError(
                    error.errno, f"cannot create the results file: {error.strerror}",
                    str(self.path),
                ) from error
            raise
        _fsync_directory(self.path.parent)

    def _open_existing(self) -> None:
        contents = read_results(self.path, warn=False)
        if contents.fingerprint != self.fingerprint:
            differences = _describe_differences(contents.configuration, self.configuration)
            raise ForeignResultsError(
                f"results file {self.path} was written by a different configuration "
                f"(fingerprint {contents.fingerprint}, this run's is {self.fingerprint}"
                + (f"; {differences}" if differences else "")
                + "); use another output directory or remove the file"
            )
        if contents.dropped_tail:
            warnings.warn(
                f"results file {self.path}: removed a truncated last line "
                f"({len(contents.dropped_tail)} bytes, from an interrupted write); its "
                "point will run again",
                TruncatedLineWarning,
                stacklevel=3,
            )
            with open(self.path, "r+b") as handle:
                handle.truncate(contents.good_size)
                handle.flush()
                os.fsync(handle.fileno())
        self.rows = contents.rows
        self.dropped_tail = contents.dropped_tail

    # ----------------------------------------------------------------- writing

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row as a single line, written in one call and synced to disk.

        Parameters
        ----------
        row : mapping
            The record; numpy values are converted to JSON numbers and lists. Its
            checksum is added under ``"_checksum"``, a key the row may not use.

        Raises
        ------
        ValueError
            If ``row`` uses the checksum key or cannot be written as one line.
        OSError
            If the line cannot be written (a full disk, a file size limit); the file
            is cut back to its last complete row and the error names it.
        """
        if self._fd is None:
            raise RuntimeError("ResultsWriter.append: use the writer in a with block")
        line = _sealed_line(row, self.fingerprint)
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            _write_all(self._fd, line)
            os.fsync(self._fd)
        except OSError as error:
            # A full disk (or a file size limit) can take part of the line: cut it off,
            # so the file ends with the last finished row, and name the file.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, end)
            raise OSError(
                error.errno, f"cannot append to the results file: {error.strerror}",
                str(self.path),
            ) from error


def row_key(row: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    """The identity of a row: its values at ``names`` (floats compared exactly).

    Examples
    --------
    >>> from pybinscale.scaling.results import row_key
    >>> row_key({"width": 64, "seed": 0, "loss": 0.1}, ["width", "seed"])
    (64, 0)
    """
    return tuple(_key_value(row.get(name)) for name in names)


def _key_value(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def iter_rows(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The rows of a results file (header excluded), dropping a truncated last line.

    Examples
    --------
    >>> import os, tempfile
    >>> from pybinscale.scaling.results import ResultsWriter, iter_rows
    >>> path = os.path.join(tempfile.mkdtemp(), "results.jsonl")
    >>> with ResultsWriter(path, {}) as writer:
    ...     writer.append({"width": 64})
    >>> list(iter_rows(path))
    [{'width': 64}]
    """
    yield from read_results(path).rows
