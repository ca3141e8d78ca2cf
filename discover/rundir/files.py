"""The run directory's files: their names, the append-only log, JSON writes.

Contract:

* Every file of a run directory, ``best/`` and the report is written through
  :mod:`discover.atomic` (a crash leaves the old file or the new one, never half);
  :func:`write_json_atomic` writes the files of :data:`COMPACT_FILES` compact.
* ``evaluations.jsonl`` holds one JSON object per evaluation (``discover.records.LogRecord``),
  each with a unique ``seq``.  Lines are appended and flushed as results arrive;
  :meth:`EvaluationLog.sync` ``fsync``s them before a checkpoint records how many there are.
  A crash can leave a torn last line; :func:`read_log` drops it (and ``EvaluationLog``
  truncates it away when the log is reopened).  A bad line with more lines after it is
  corruption, not a crash: reading the log is then a one-line
  :class:`~discover.errors.UserError` naming the file and line, and nothing is truncated.
* Everything is JSON: no pickle anywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from discover import atomic
from discover.errors import UserError
from discover.records import LogRecord

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
LOG_FILE = "evaluations.jsonl"
HALL_OF_FAME_FILE = "hall_of_fame.json"
EVENTS_FILE = "events.jsonl"
"""Faults of the workers, one JSON object a line; absent while there has been none."""
BEST_DIR = "best"
RATES_FILE = "rates.json"  # in BEST_DIR: per search task, [the tuned rate, adam's]
STATE_VERSION = 4
"""Version of the ``state.json`` format; a checkpoint of another version is not resumed
(but version 3's, whose only difference is the copy of the cache it carries).
1: fingerprints of ``fp1``; 2: ``fp2`` (the engine's probe), ``fingerprint_version`` recorded,
the hall of fame kept as log records; 3: scores of the wide-grid yardstick (rates tuned by
``discover.scoring.tuning``, the median over tasks, held-out intervals), the cache keeps each
program's rates; 4: no copy of the fitness cache (rebuilt from the log's records told before the
checkpoint), so a checkpoint's size and time do not grow with the campaign."""
READABLE_STATE_VERSIONS = (3, 4)


COMPACT_FILES = frozenset({STATE_FILE})
"""Files written as compact JSON.  ``state.json`` is rewritten at every checkpoint (it grew
with the campaign up to state version 3, which carried the fitness cache: about 4 MB at 30,000
evaluations); indented, it goes through the pure-Python encoder, whose list of small chunks
costs time and leaves a fragmented heap.  The files people read stay indented."""


def write_json_atomic(path: str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see the old or the new file
    (:mod:`discover.atomic`), compact for the files in :data:`COMPACT_FILES`."""
    atomic.write_json_atomic(path, data, compact=os.path.basename(path) in COMPACT_FILES)


def read_log(path: str) -> list[dict]:
    """Every complete line of an evaluation log as a JSON object (a torn last line is left
    out); UserError when a line before the last is not a JSON object (corruption).  Objects
    are not checked against the record schema: see :func:`read_records`."""
    return [record for record, _ in log_lines(path)]


def read_records(path: str) -> list[LogRecord]:
    """:func:`read_log` as :class:`~discover.records.LogRecord` objects; UserError naming the
    file and line of the first object that is not a record of the schema."""
    out = []
    for number, record in enumerate(read_log(path), start=1):
        try:
            out.append(LogRecord.from_json(record))
        except ValueError as err:
            raise UserError(f"{path}:{number}: corrupted record: {err}") from None
    return out


def log_lines(path: str) -> Iterator[tuple[dict, int]]:
    """(JSON object, byte offset just past its line) for every complete, valid line.  The last
    line may be torn (no newline, or not a JSON object: the process died writing it) and is
    left out; a bad line with lines after it raises UserError."""
    if not os.path.exists(path):
        return
    offset = 0
    with open(path, "rb") as f:
        number, line = 1, f.readline()
        while line:
            following = f.readline()
            record = _decode(line) if line.endswith(b"\n") else None
            if record is None:
                if following:
                    raise UserError(f"{path}:{number}: corrupted record in the middle of the "
                                    f"log ({_line_problem(line)}); only a torn last line is "
                                    f"repaired")
                return  # torn write: the process died in the middle of this line
            offset += len(line)
            yield record, offset
            number, line = number + 1, following


def _decode(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _line_problem(line: bytes) -> str:
    try:
        record = json.loads(line)
    except UnicodeDecodeError:
        return "not UTF-8"
    except json.JSONDecodeError as err:
        return f"not JSON: {err.msg} (column {err.colno})"
    except (ValueError, RecursionError):
        return "not JSON"
    return f"a JSON {type(record).__name__}, not an object"


class EvaluationLog:
    """Append-only ``evaluations.jsonl``."""

    def __init__(self, path: str):
        self.path = path
        end = 0
        self.count = 0
        for _, end in log_lines(path):
            self.count += 1
        if os.path.exists(path) and os.path.getsize(path) != end:
            with open(path, "r+b") as f:  # drop a torn last line before appending
                f.truncate(end)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 -- open until close()

    def append(self, record: LogRecord) -> None:
        self._file.write(json.dumps(record.to_json(), allow_nan=False, separators=(",", ":"))
                         + "\n")
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
