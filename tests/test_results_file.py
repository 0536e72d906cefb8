"""The results file: atomic appends, resume, fingerprints, damage detection, locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pybinscale.scaling import results as results_module
from pybinscale.scaling.results import (
    CorruptResultsError,
    ForeignResultsError,
    ResultsLockedError,
    ResultsWriter,
    TruncatedLineWarning,
    configuration_fingerprint,
    read_results,
)

CONFIG = {"sweep": {"widths": [64, 256], "seeds": [0, 1]}, "version": "0.1.0"}


def _rows(n: int) -> list[dict]:
    return [{"width": 64 * (i + 1), "seed": 0, "loss": 1.0 / (i + 1)} for i in range(n)]


def test_round_trip_header_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.jsonl"
    with ResultsWriter(path, CONFIG, extra_header={"created": "now"}) as writer:
        assert writer.rows == []
        for row in _rows(3):
            writer.append(row)
    contents = read_results(path)
    assert contents.rows == _rows(3)
    assert contents.fingerprint == configuration_fingerprint(CONFIG)
    assert contents.configuration == CONFIG
    assert contents.header["created"] == "now"
    # One line per record, the header first.
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["pybinscale_results"] == 2
    # Each row carries its seal last; reading takes it off.
    assert all(json.loads(line)["_checksum"] for line in lines[1:])
    assert list(json.loads(lines[1]))[-1] == "_checksum"


def test_values_survive_exactly(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    row = {"loss": 0.1 + 0.2, "tiny": 5e-324, "nan": float("nan"), "curve": [1 / 3, 2 / 3]}
    with ResultsWriter(path, CONFIG) as writer:
        writer.append(row)
    (back,) = read_results(path).rows
    assert back["loss"] == row["loss"] and back["tiny"] == row["tiny"]
    assert back["curve"] == row["curve"] and back["nan"] != back["nan"]


def test_resume_returns_finished_rows_and_appends_after_them(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path, CONFIG) as writer:
        writer.append(_rows(1)[0])
    with ResultsWriter(path, CONFIG) as writer:
        assert writer.rows == _rows(1)
        writer.append(_rows(2)[1])
    assert read_results(path).rows == _rows(2)


def test_each_row_is_one_write_then_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.jsonl"
    calls: list[tuple[str, int]] = []
    real_write, real_fsync = os.write, os.fsync

    def write(fd: int, data: bytes) -> int:
        calls.append(("write", len(data)))
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        calls.append(("fsync", 0))
        real_fsync(fd)

    with ResultsWriter(path, CONFIG) as writer:
        monkeypatch.setattr(results_module.os, "write", write)
        monkeypatch.setattr(results_module.os, "fsync", fsync)
        writer.append({"width": 64, "curve": list(range(500))})
    line_length = len(path.read_bytes().splitlines(keepends=True)[1])
    assert calls == [("write", line_length), ("fsync", 0)]


def test_foreign_configuration_is_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path, CONFIG) as writer:
        writer.append(_rows(1)[0])
    other = {"sweep": {"widths": [64, 512], "seeds": [0, 1]}, "version": "0.1.0"}
    with pytest.raises(ForeignResultsError) as caught:
        ResultsWriter(path, other).__enter__()
    message = str(caught.value)
    assert configuration_fingerprint(CONFIG) in message
    assert configuration_fingerprint(other) in message
    assert "sweep.widths: [64, 256] -> [64, 512]" in message
    # Refusing did not touch the file, nor leave the directory locked.
    assert read_results(path).rows == _rows(1)
    with ResultsWriter(path, CONFIG):
        pass


def test_truncated_last_line_is_reported_dropped_and_cut(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path, CONFIG) as writer:
        for row in _rows(2):
            writer.append(row)
    whole = path.read_bytes()
    with open(path, "ab") as handle:
        handle.write(b'{"width": 192, "seed": 0, "lo')  # a write cut short
    with pytest.warns(TruncatedLineWarning, match="truncated last line"):
        contents = read_results(path)
    assert contents.rows == _rows(2) and contents.dropped_tail.startswith(b'{"width": 192')
    with pytest.warns(TruncatedLineWarning):
        with ResultsWriter(path, CONFIG) as writer:
            assert writer.rows == _rows(2)
            assert path.read_bytes() == whole  # the partial line was cut off
            writer.append(_rows(3)[2])
    assert read_results(path).rows == _rows(3)


def test_unreadable_complete_last_line_counts_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path, CONFIG) as writer:
        writer.append(_rows(1)[0])
    with open(path, "ab") as handle:
        handle.write(b"\x00\x00\x00\x00\n")  # zeros a crash can leave in an unflushed block
    with pytest.warns(TruncatedLineWarning):
        assert read_results(path).rows == _rows(1)


def test_damage_before_the_last_line_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path, CONFIG) as writer:
        for row in _rows(3):
            writer.append(row)
    lines = path.read_bytes().split(b"\n")
    lines[2] = b'{"width": 12'
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorruptResultsError, match="damaged at line 3"):
        read_results(path)
    with pytest.raises(CorruptResultsError):
        ResultsWriter(path, CONFIG).__enter__()


def _sealed_file(tmp_path: Path, n: int = 4) -> tuple[Path, list[bytes]]:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path, CONFIG) as writer:
        for row in _rows(n):
            writer.append(row)
    return path, path.read_bytes().split(b"\n")


def _edit_values(line: bytes, change: object) -> bytes:
    record = json.loads(line)
    change(record)  # type: ignore[operator]
    return json.dumps(record).encode()


def _from_another_run(tmp_path: Path) -> bytes:
    """Line 3 as a sweep of another configuration wrote it: same values, its own seal."""
    other = tmp_path / "other" / "results.jsonl"
    with ResultsWriter(other, {**CONFIG, "version": "9.9"}) as writer:
        for row in _rows(2):
            writer.append(row)
    return other.read_bytes().split(b"\n")[2]


VALID_JSON_EDITS = {
    "a number changed": lambda line, _: _edit_values(
        line, lambda r: r.update(loss=r["loss"] + 1e-12)),
    "a key removed": lambda line, _: _edit_values(line, lambda r: r.pop("seed")),
    "a key added": lambda line, _: _edit_values(line, lambda r: r.update(note="ok")),
    "the checksum removed": lambda line, _: _edit_values(line, lambda r: r.pop("_checksum")),
    "a row of another run": lambda line, tmp_path: _from_another_run(tmp_path),
}


@pytest.mark.parametrize("edit", sorted(VALID_JSON_EDITS))
def test_an_edit_that_keeps_valid_json_fails_the_checksum(tmp_path: Path, edit: str) -> None:
    path, lines = _sealed_file(tmp_path)
    lines[2] = VALID_JSON_EDITS[edit](lines[2], tmp_path)
    assert isinstance(json.loads(lines[2]), dict)  # still a valid JSON record
    edited = b"\n".join(lines)
    path.write_bytes(edited)
    problem = "checksum was removed" if edit == "the checksum removed" else "do not match"
    for attempt in (lambda: read_results(path), lambda: ResultsWriter(path, CONFIG).__enter__()):
        with pytest.raises(CorruptResultsError) as caught:
            attempt()
        message = str(caught.value)
        assert "damaged at line 3 (" in message and problem in message, message
        assert "its other 3 rows are intact" in message and "delete that line" in message
    assert path.read_bytes() == edited  # refused without touching the file
    # Deleting the line, as the message says, resumes with the other rows.
    del lines[2]
    path.write_bytes(b"\n".join(lines))
    with ResultsWriter(path, CONFIG) as writer:
        assert writer.rows == [row for i, row in enumerate(_rows(4)) if i != 1]


def test_every_damaged_line_is_named(tmp_path: Path) -> None:
    path, lines = _sealed_file(tmp_path, n=5)
    lines[1] = b"not json"
    lines[3] = _edit_values(lines[3], lambda r: r.update(width=1))
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorruptResultsError) as caught:
        read_results(path)
    message = str(caught.value)
    assert "damaged at lines 2 (not a JSON record), 4 (its values do not match" in message
    assert "its other 3 rows are intact" in message and "delete those lines" in message


def test_reordered_and_repeated_lines_keep_their_seals(tmp_path: Path) -> None:
    path, lines = _sealed_file(tmp_path)
    record = json.loads(lines[1])
    lines[1] = json.dumps(dict(reversed(list(record.items())))).encode()  # keys reordered
    lines.insert(3, lines[3])
    path.write_bytes(b"\n".join(lines))
    rows = read_results(path).rows
    assert rows == [*_rows(2), _rows(3)[2], *_rows(4)[2:]]


def test_a_row_may_not_use_the_checksum_key(tmp_path: Path) -> None:
    with ResultsWriter(tmp_path / "results.jsonl", CONFIG) as writer:
        with pytest.raises(ValueError, match="_checksum"):
            writer.append({"width": 64, "_checksum": "mine"})
        with pytest.raises(TypeError, match="row must be a mapping"):
            writer.append([("width", 64)])  # type: ignore[arg-type]
    assert read_results(tmp_path / "results.jsonl").rows == []


def test_format_1_files_without_checksums_are_still_read_and_resumed(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    header = {"pybinscale_results": 1, "fingerprint": configuration_fingerprint(CONFIG),
              "configuration": CONFIG}
    path.write_text("".join(json.dumps(r) + "\n" for r in [header, *_rows(2)]))
    assert read_results(path).rows == _rows(2)
    with ResultsWriter(path, CONFIG) as writer:
        assert writer.rows == _rows(2)
        writer.append(_rows(3)[2])
    assert read_results(path).rows == _rows(3)  # the new row is sealed and checked


def test_a_header_left_by_a_killed_run_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".results.jsonl.0123456789ab.tmp"
    stale.write_bytes(b'{"pybinscale_results": 2, "finger')  # killed before the rename
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_text("mine")
    with ResultsWriter(tmp_path / "results.jsonl", CONFIG):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp", "results.jsonl"]


def test_the_file_mode_follows_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        with ResultsWriter(tmp_path / "results.jsonl", CONFIG):
            pass
    finally:
        os.umask(previous)
    assert (tmp_path / "results.jsonl").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "content",
    [b"", b"width,loss\n64,0.5\n", b'{"width": 64}\n', b"\x89PNG\r\n\x1a\n"],
    ids=["empty", "csv", "no-header", "binary"],
)
def test_not_a_results_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(content)
    with pytest.raises(CorruptResultsError, match="results file"):
        read_results(path)


def test_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"pybinscale_results": 99, "fingerprint": "x"}) + "\n")
    with pytest.raises(CorruptResultsError, match="format 99"):
        read_results(path)


def test_second_writer_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path, CONFIG):
        with pytest.raises(ResultsLockedError, match="another pybinscale run"):
            ResultsWriter(path, CONFIG).__enter__()
    with ResultsWriter(path, CONFIG):  # released on exit
        pass


def test_fingerprint_ignores_key_order_and_sees_values() -> None:
    a = configuration_fingerprint({"a": 1, "b": [1, 2]})
    assert a == configuration_fingerprint({"b": [1, 2], "a": 1})
    assert a == configuration_fingerprint({"b": (1, 2), "a": 1})
    assert a != configuration_fingerprint({"a": 1, "b": [2, 1]})


def test_killed_writer_leaves_a_readable_file(tmp_path: Path) -> None:
    """SIGKILL a process appending rows as fast as it can: every complete row is kept
    and at most the last, partial one is dropped."""
    path = tmp_path / "results.jsonl"
    script = textwrap.dedent(
        f"""
        from pybinscale.scaling.results import ResultsWriter
        with ResultsWriter({str(path)!r}, {CONFIG!r}) as writer:
            i = 0
            while True:
                writer.append({{"i": i, "curve": list(range(i % 3000))}})
                i += 1
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size > 200_000:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with _maybe_warns():
        rows = read_results(path).rows
    assert len(rows) > 10
    assert [row["i"] for row in rows] == list(range(len(rows)))
    assert all(row["curve"] == list(range(row["i"] % 3000)) for row in rows)
    with ResultsWriter(path, CONFIG) as writer:  # and a rerun appends after them
        writer.append({"i": len(rows), "curve": []})
    assert len(read_results(path, warn=False).rows) == len(rows) + 1


class _maybe_warns:
    """Accept a TruncatedLineWarning (a kill mid-write) or none."""

    def __enter__(self) -> None:
        import warnings

        self._context = warnings.catch_warnings()
        self._context.__enter__()
        warnings.simplefilter("ignore", TruncatedLineWarning)

    def __exit__(self, *args: object) -> None:
        self._context.__exit__(*args)
