"""The run directory of a campaign: its paths, creating, reopening, checkpoints, ``best/``.

One owner for the directory (``docs/DESIGN.md``, "Run directory"); the campaign, the report
and the commands reach its files only through here.

Contract:

* :meth:`RunDir.create` makes a new run directory (refusing a non-empty one or a file) whole
  or not at all: it is filled aside (``fill(run_dir)`` writes ``config.json``, the first
  checkpoint and an empty log) and renamed into place.
* :meth:`RunDir.open` reopens one to resume it: :func:`validate_run_dir` first (a
  ``UserError`` naming the first problem, before anything is written), then the temporary
  files of atomic writes cut short by a killed process are removed and the log is opened
  (a torn last line truncated away).
* :meth:`RunDir.checkpoint` makes the log durable, then replaces ``state.json`` and
  ``hall_of_fame.json`` atomically; :meth:`RunDir.write_best` writes ``best/``;
  :meth:`RunDir.event` appends one durable line to ``events.jsonl``.
* A writable :class:`RunDir` holds an exclusive lock on its directory (``flock`` on the
  directory itself, so no file is added) until :meth:`RunDir.close`; a second campaign on
  the same directory, in this process or another, is a ``UserError`` before anything is read
  or written.  The kernel drops the lock of a killed process.
* :func:`load` reads a run directory as it is (finished, interrupted or still running) for
  the report: only a missing directory or ``config.json`` is an error; whatever else is
  missing or does not match the schema is a note.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from discover.atomic import UMASK, fsync_dir, read_json, write_text_atomic
from discover.errors import UserError
from discover.records import HallEntry, LogRecord
from discover.rundir.files import (
    BEST_DIR,
    CONFIG_FILE,
    EVENTS_FILE,
    HALL_OF_FAME_FILE,
    LOG_FILE,
    RATES_FILE,
    STATE_FILE,
    STATE_VERSION,
    EvaluationLog,
    read_log,
    read_records,
    write_json_atomic,
)
from discover.rundir.validate import validate_run_dir

__all__ = [
    "BEST_DIR", "CONFIG_FILE", "EVENTS_FILE", "HALL_OF_FAME_FILE", "LOG_FILE", "RATES_FILE",
    "STATE_FILE",
    "STATE_VERSION", "RunDir", "RunFiles", "default_path", "load", "read_json", "read_log",
    "read_records", "validate_run_dir", "write_json_atomic",
]


class RunDir:
    """An open run directory (its log open for appending until :meth:`close`)."""

    def __init__(self, path: str, *, writable: bool = True, lock: int | None = None):
        """``writable`` False: a read-only view (no log opened, nothing touched, no lock);
        ``lock``: the directory's lock, taken already (:func:`lock_directory`)."""
        self.path = path
        self._lock = (lock if lock is not None else lock_directory(path)) if writable else None
        self.log = EvaluationLog(self.file(LOG_FILE)) if writable else None
        self._events = None  # events.jsonl, opened at the first event

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    # -- creating and reopening -------------------------------------------------------------
    @classmethod
    def create(cls, path: str, fill: Callable[[RunDir], None]) -> RunDir:
        """A new run directory at ``path`` (absent or empty), filled by ``fill``."""
        if os.path.isdir(path) and os.listdir(path):
            raise UserError(f"run directory {path} is not empty (use 'discover resume "
                            f"{path}' to continue it, or choose another --out)")
        if os.path.lexists(path) and not os.path.isdir(path):
            raise UserError(f"run directory {path} exists and is not a directory")
        if os.path.islink(path):  # an empty directory behind a link: written in place
            run_dir = cls(path)
            fill(run_dir)
            return run_dir
        # Built aside and renamed into place: a driver killed meanwhile leaves no half-made
        # run directory, which neither 'run' (not empty) nor 'resume' (no state) would take.
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(path))}.",
                                   suffix=".new", dir=parent)
        try:
            os.chmod(staging, 0o777 & ~UMASK)  # mkdtemp makes it private
            aside = cls(staging)
            fill(aside)
            aside.close()
            if os.path.isdir(path):
                os.rmdir(path)  # empty (checked above)
            os.rename(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_dir(parent)
        return cls(path)

    @classmethod
    def open(cls, path: str, check: Callable[[RunDir], None] | None = None) -> RunDir:
        """Reopen ``path`` to resume it (see the module docstring).  ``check(run_dir)`` runs
        after the validation and before anything is written (a resume's own checks: its
        budget); what it raises leaves the directory untouched."""
        # Locked first: a campaign running there may be mid-write (its temporaries are live).
        lock = lock_directory(path) if os.path.isdir(path) else None
        try:
            problems = validate_run_dir(path)
            if problems:
                more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
                raise UserError(problems[0] + more)
            if check is not None:
                check(cls(path, writable=False))
            remove_stale_temporaries(path)
            return cls(path, lock=lock)
        except BaseException:
            if lock is not None:
                os.close(lock)
            raise

    # -- reading ----------------------------------------------------------------------------
    def config_data(self) -> dict:
        return read_json(self.file(CONFIG_FILE))

    def state(self) -> dict:
        return read_json(self.file(STATE_FILE))

    def records(self) -> list[LogRecord]:
        """Every logged record (the log was validated when the directory was opened)."""
        return [LogRecord.from_json(r) for r in read_log(self.file(LOG_FILE))]

    # -- writing ----------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        write_json_atomic(self.file(CONFIG_FILE), config)

    def checkpoint(self, state: dict, hall_of_fame: Sequence[HallEntry]) -> None:
        """The log made durable, then ``state.json`` (``state`` with the log's length and the
        format's version added) and ``hall_of_fame.json``, each atomically."""
        self.log.sync()
        write_json_atomic(self.file(STATE_FILE), {"version": STATE_VERSION,
                                                  "log_count": self.log.count, **state})
        write_json_atomic(self.file(HALL_OF_FAME_FILE), [e.to_json() for e in hall_of_fame])

    def write_best(self, program_text: str, modules: dict[str, str],
                   rates: dict | None = None) -> None:
        """``best/program.opt``, ``best/discovered_TARGET.py`` for each exported module and,
        when known, ``best/rates.json`` (per search task: [its tuned rate, tuned adam's])."""
        best = self.file(BEST_DIR)
        os.makedirs(best, exist_ok=True)
        write_text_atomic(os.path.join(best, "program.opt"), program_text)
        if rates:
            write_json_atomic(os.path.join(best, RATES_FILE), rates)
        for target, source in modules.items():
            write_text_atomic(os.path.join(best, f"discovered_{target}.py"), source)

    def event(self, event: dict) -> None:
        """One line of ``events.jsonl``, made durable at once (faults are rare)."""
        if self._events is None:
            self._events = open(self.file(EVENTS_FILE), "a", encoding="utf-8")  # noqa: SIM115
        self._events.write(json.dumps(event, allow_nan=False, separators=(",", ":")) + "\n")
        self._events.flush()
        os.fsync(self._events.fileno())

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None


def lock_directory(path: str) -> int:
    """A descriptor of ``path`` holding its exclusive lock; a UserError when another open
    run directory (any process) holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"run directory {path} is in use: another campaign has it open (wait "
                        f"for it to stop, or stop it, then resume)") from None
    return fd


def remove_stale_temporaries(path: str) -> None:
    """Temporary files of atomic writes cut short by a killed process (``.NAME.*.tmp``)."""
    for directory in (path, os.path.join(path, BEST_DIR)):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(directory, name))
                except OSError:
                    pass


def default_path(name: str, root: str = "runs") -> str:
    """``runs/NAME``, or ``runs/<timestamp>`` (with a suffix when it exists already) for an
    empty name."""
    base = os.path.join(root, name or time.strftime("%Y%m%d-%H%M%S"))
    path, n = base, 2
    while name == "" and os.path.exists(path):
        path, n = f"{base}-{n}", n + 1
    return path


# -- reading a run as it is (the report) -------------------------------------------------------
class RunFiles:
    """What a run directory holds, read leniently: ``config`` (a dict), ``state`` (a dict or
    None), ``log`` (the records that match the schema), ``hall`` (hall-of-fame entries, or
    None when the file is missing or unreadable) and ``notes`` (what is missing or wrong)."""

    def __init__(self, path: str, config: dict, state: dict | None, log: list[LogRecord],
                 hall: list[HallEntry] | None, notes: list[str]):
        self.path, self.config, self.state = path, config, state
        self.log, self.hall, self.notes = log, hall, notes

    @property
    def counters(self) -> dict:
        return ((self.state or {}).get("evolution") or {}).get("counters") or {}

    @property
    def logbook(self) -> list[dict]:
        return ((self.state or {}).get("evolution") or {}).get("logbook") or []


def load(path: str) -> RunFiles:
    """Read ``path`` for the report (see the module docstring)."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such run directory")
    if not os.path.isdir(path):
        raise UserError(f"{path} is not a directory (expected a campaign run directory)")
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise UserError(f"{path} is not a campaign run directory (no {CONFIG_FILE})")
    try:
        config = read_json(config_path)
    except (OSError, ValueError) as err:
        raise UserError(f"{config_path}: unreadable: {err}") from None
    if not isinstance(config, dict):
        raise UserError(f"{config_path}: expected a JSON object of settings")
    notes: list[str] = []
    state = _read_optional(path, STATE_FILE, dict, notes)
    hall_data = _read_optional(path, HALL_OF_FAME_FILE, list, notes)
    hall = None if hall_data is None else _schema_objects(hall_data, HallEntry.from_json,
                                                         HALL_OF_FAME_FILE, notes)
    log_path = os.path.join(path, LOG_FILE)
    if not os.path.isfile(log_path):
        notes.append(f"`{LOG_FILE}` is missing: no evaluations to report.")
    log = _schema_objects(read_log(log_path), LogRecord.from_json, LOG_FILE, notes)
    if os.path.isfile(log_path) and not log:
        notes.append("No evaluation has finished yet.")
    return RunFiles(path, config, state, log, hall, notes)


def _read_optional(run_dir: str, name: str, kind: type, notes: list[str]) -> Any:
    path = os.path.join(run_dir, name)
    if not os.path.isfile(path):
        notes.append(f"`{name}` is missing.")
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError) as err:
        notes.append(f"`{name}` is unreadable ({err}).")
        return None
    if not isinstance(data, kind):
        notes.append(f"`{name}` does not hold a JSON {kind.__name__}.")
        return None
    return data


def _schema_objects(items: list, read: Callable, name: str, notes: list[str]) -> list:
    """The items that ``read`` accepts; a note says how many it did not, and the first why."""
    out, bad = [], []
    for number, item in enumerate(items, start=1):
        try:
            out.append(read(item))
        except ValueError as err:
            bad.append(f"entry {number}: {err}")
    if bad:
        notes.append(f"`{name}`: {len(bad)} entr{'y' if len(bad) == 1 else 'ies'} left out, "
                     f"not of this version's schema ({bad[0]}).")
    return out
