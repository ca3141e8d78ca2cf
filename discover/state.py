"""The run directory on disk: atomic JSON files and the append-only evaluation log.

Contract (DESIGN.md "Run directory"):

* ``config.json``, ``state.json`` and ``hall_of_fame.json`` are written by
  :func:`write_json_atomic`: a temporary file in the same directory, ``fsync``, ``rename``,
  then ``fsync`` of the directory, so a crash leaves the old file or the new one, never half.
* ``evaluations.jsonl`` holds one JSON object per evaluation, each with a unique ``seq``
  (sequence number, counting from 0 in the order children were bred).  Lines are appended and
  flushed as results arrive; :meth:`EvaluationLog.sync` ``fsync``s them before a checkpoint
  records how many there are.  A crash can leave a torn last line; :func:`read_log` drops it
  (and ``EvaluationLog`` truncates it away when the log is reopened).
* Everything is JSON: no pickle anywhere.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
LOG_FILE = "evaluations.jsonl"
HALL_OF_FAME_FILE = "hall_of_fame.json"
BEST_DIR = "best"


def write_json_atomic(path: str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see the old or the new file."""
    write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path``: temporary file, fsync, rename, fsync of the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not support fsync on a directory
    finally:
        os.close(fd)


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_log(path: str) -> list[dict]:
    """Every complete record of an evaluation log (a torn last line is left out)."""
    return [record for record, _ in _records(path)]


def _records(path: str) -> Iterator[tuple[dict, int]]:
    """(record, byte offset just past its line) for every complete, valid line."""
    if not os.path.exists(path):
        return
    offset = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return  # torn write: the process died in the middle of this line
            try:
                record = json.loads(line)
            except ValueError:
                return
            offset += len(line)
            yield record, offset


class EvaluationLog:
    """Append-only ``evaluations.jsonl``."""

    def __init__(self, path: str):
        self.path = path
        end = 0
        self.count = 0
        for _, end in _records(path):
            self.count += 1
        if os.path.exists(path) and os.path.getsize(path) != end:
            with open(path, "r+b") as f:  # drop a torn last line before appending
                f.truncate(end)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 -- open until close()

    def append(self, record: dict) -> None:
        self._file.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
        self._file.flush()
        self.count += 1

    def sync(self) -> None:
        """Make every appended line durable (before a checkpoint counts them)."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()
