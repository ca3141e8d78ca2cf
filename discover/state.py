"""The run directory on disk: atomic JSON files and the append-only evaluation log.

Contract (DESIGN.md "Run directory"):

* ``config.json``, ``state.json`` and ``hall_of_fame.json`` are written by
  :func:`write_json_atomic`: a temporary file in the same directory, ``fsync``, ``rename``,
  then ``fsync`` of the directory, so a crash leaves the old file or the new one, never half.
* ``evaluations.jsonl`` holds one JSON object per evaluation, each with a unique ``seq``
  (sequence number, counting from 0 in the order children were bred).  Lines are appended and
  flushed as results arrive; :meth:`EvaluationLog.sync` ``fsync``s them before a checkpoint
  records how many there are.  A crash can leave a torn last line; :func:`read_log` drops it
  (and ``EvaluationLog`` truncates it away when the log is reopened).  A bad line with more
  lines after it is corruption, not a crash: reading the log is then a one-line
  :class:`~discover.errors.UserError` naming the file and line, and nothing is truncated.
* :func:`validate_run_dir` lists what keeps a directory from being resumed (missing files,
  invalid JSON, another state version, a checkpoint of the wrong structure, a corrupted log),
  each problem one line naming the file; it only reads.
* Everything is JSON: no pickle anywhere.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from discover.errors import UserError

STATE_VERSION = 1
"""Version of the ``state.json`` format; a checkpoint of another version is not resumed."""
CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
LOG_FILE = "evaluations.jsonl"
HALL_OF_FAME_FILE = "hall_of_fame.json"
BEST_DIR = "best"


COMPACT_FILES = frozenset({STATE_FILE})
"""Files written as compact JSON.  ``state.json`` grows with the campaign (the fitness cache:
about 4 MB at 30,000 evaluations) and is rewritten at every checkpoint; indented, it goes
through the pure-Python encoder, whose list of small chunks costs time and leaves a fragmented
heap (a 30,000-entry cache: 255 ms and 10 MB of RSS kept, against 66 ms and 1.6 MB compact).
The files people read stay indented."""


def write_json_atomic(path: str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see the old or the new file."""
    if os.path.basename(path) in COMPACT_FILES:
        text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    else:
        text = json.dumps(data, indent=1, allow_nan=False)
    write_text_atomic(path, text + "\n")


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, as :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path``: temporary file, fsync, rename, fsync of the directory.
    Readers see the old file or the new one, never half; on failure the temporary file is
    removed and the old file is untouched."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()
"""This process's umask (read once: os.umask can only be read by setting it)."""


def fsync_dir(directory: str) -> None:
    """fsync a directory (a rename in it is then durable); a no-op where unsupported."""
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
    """The JSON data of ``path``; ValueError (also for nesting too deep to decode) or
    OSError."""
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except RecursionError:
            raise ValueError("nested too deeply") from None


def read_log(path: str) -> list[dict]:
    """Every complete record of an evaluation log (a torn last line is left out); UserError
    when a line before the last is not a record (corruption)."""
    return [record for record, _ in _records(path)]


def _records(path: str) -> Iterator[tuple[dict, int]]:
    """(record, byte offset just past its line) for every complete, valid line.  The last
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


# -- validation before a resume -------------------------------------------------------------
RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "seq": (int,), "program": (str,), "fingerprint": (str,), "parent": (str, type(None)),
    "mutation": (dict,), "status": (str,), "score": (int, float, type(None)),
    "held_out_score": (int, float, type(None)),
}
"""Fields of a log record that a resume reads back, and their JSON types."""

INDIVIDUAL_FIELDS: dict[str, tuple[type, ...]] = {
    "program": (str,), "fingerprint": (str,), "seq": (int, type(None)),
    "parent": (str, type(None)), "mutation": (dict,), "score": (int, float, type(None)),
}
EVOLUTION_FIELDS: dict[str, type | tuple[type, ...]] = {
    "next_seq": int, "counters": dict, "population": list, "pending": list, "waiting": dict,
    "starts": dict, "cache": dict, "hall_of_fame": list, "best": (dict, type(None)),
    "logbook": list, "rng": dict,
}


def validate_run_dir(path: str) -> list[str]:
    """What keeps ``path`` from being resumed, one line per problem naming its file; empty
    when it can be resumed.  Only reads: nothing is created, written or truncated.

    Checked: the directory and its ``config.json`` and ``state.json`` exist; both are JSON;
    the configuration is valid (keys, types, ranges, registered names); ``state.json`` is of
    version :data:`STATE_VERSION` and has the structure a resume restores (a dry run of it);
    every line of ``evaluations.jsonl`` but a torn last one is a record, with unique ``seq``;
    the log holds at least the evaluations the checkpoint counts, and the programs of those
    after it parse.  Stops at the first problem of ``config.json`` or ``state.json`` (what
    follows would be noise)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return [f"{path}: no such run directory"]
    if not os.path.isdir(path):
        return [f"{path} is not a directory (expected a campaign run directory)"]
    config_path, state_path = (os.path.join(path, CONFIG_FILE), os.path.join(path, STATE_FILE))
    for file in (config_path, state_path):
        if not os.path.isfile(file):
            return [f"{path} is not a campaign run directory (no {os.path.basename(file)})"]
    data, problem = _load_json(config_path)
    if problem:
        return [problem]
    config, problem = _config(data, config_path)
    if problem:
        return [problem]
    saved, problem = _load_json(state_path)
    if problem:
        return [problem]
    problem = _check_state(saved, state_path, config)
    if problem:
        return [problem]
    return _check_log(os.path.join(path, LOG_FILE), saved["log_count"], state_path)


def _load_json(path: str) -> tuple[Any, str | None]:
    try:
        if os.path.getsize(path) == 0:
            return None, f"{path}: empty file (truncated?)"
        return read_json(path), None
    except OSError as err:
        return None, f"{path}: cannot read: {err.strerror}"
    except UnicodeDecodeError as err:
        return None, f"{path}: not UTF-8 (byte {err.start})"
    except json.JSONDecodeError as err:
        return None, (f"{path}:{err.lineno}:{err.colno}: not valid JSON: {err.msg} "
                      f"(truncated or corrupted?)")
    except ValueError as err:
        return None, f"{path}: not valid JSON: {err}"


def _config(data: Any, path: str):
    from discover.config import CampaignConfig, check_names

    try:
        config = CampaignConfig.from_dict(data, source=path)
        if config.tasks is None or config.held_out_tasks is None:
            return None, f"{path}: task lists not resolved: not written by a campaign"
        import programs
        import tasks
        from programs import mutate

        check_names(config, ops=programs.OPS, task_names=tasks.names(),
                    baselines=programs.BASELINES, mutation_kinds=mutate.KINDS)
    except UserError as err:
        message = str(err)
        return None, message if message.startswith(path) else f"{path}: {message}"
    return config, None


def _check_state(saved: Any, path: str, config) -> str | None:
    if not isinstance(saved, dict):
        return f"{path}: expected a JSON object, got a JSON {type(saved).__name__}"
    if "version" not in saved:
        return f"{path}: no 'version' field: not a checkpoint of this program"
    if saved["version"] != STATE_VERSION:
        return (f"{path}: state version {_short(saved['version'])} is not supported (this "
                f"version of discover reads version {STATE_VERSION})")
    for key, kind in (("log_count", int), ("invocations", int),
                      ("elapsed_seconds", (int, float)), ("evolution", dict)):
        problem = _field(saved, key, kind)
        if problem:
            return f"{path}: wrong structure: {problem}"
    if saved["log_count"] < 0:
        return f"{path}: wrong structure: 'log_count' is negative"
    evolution = saved["evolution"]
    problem = next((p for p in (_field(evolution, key, kind, "evolution")
                                for key, kind in EVOLUTION_FIELDS.items()) if p), None)
    if problem:
        return f"{path}: wrong structure: {problem}"
    individuals = [("population", ind) for ind in evolution["population"]]
    individuals += [("pending", ind) for ind in evolution["pending"]]
    individuals += [("best", evolution["best"])] if evolution["best"] is not None else []
    for name, twins in evolution["waiting"].items():
        individuals += [(f"waiting[{_short(name)}]", t)
                        for t in (twins if isinstance(twins, list) else [twins])]
    problems = [_fields(ind, INDIVIDUAL_FIELDS, f"evolution.{where}")
                for where, ind in individuals]
    problems += [_fields(entry, {"score": (int, float)}, f"evolution.cache[{_short(fp)}]")
                 for fp, entry in evolution["cache"].items()]
    problems += [_field(evolution["counters"], key, int, "evolution.counters")
                 for key in evolution["counters"]]
    problem = next((p for p in problems if p), None)
    if problem:
        return f"{path}: wrong structure: {problem}"
    # A dry run of what a resume does with it (in memory only).
    from discover.evolution import AgingEvolution

    try:
        AgingEvolution(config, funnel=bool(config.held_out_tasks)).load_state_dict(evolution)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as err:
        detail = str(err).splitlines()[0] if str(err).strip() else ""
        return (f"{path}: wrong structure: the evolution state does not load "
                f"({type(err).__name__}{': ' + _short(detail, 100) if detail else ''})")
    return None


def _check_log(path: str, log_count: int, state_path: str) -> list[str]:
    import programs

    count, seqs = 0, set()
    try:
        for count, (record, _) in enumerate(_records(path), start=1):
            problem = _fields(record, RECORD_FIELDS, "record")
            if problem is None and record["seq"] in seqs:
                problem = f"'seq' {record['seq']} appears twice"
            if problem:
                return [f"{path}:{count}: corrupted record: {problem}"]
            seqs.add(record["seq"])
            if count > log_count:  # told to the evolution again on resume: must parse
                try:
                    programs.parse(record["program"])
                except programs.ProgramError as err:
                    return [(f"{path}:{count}: corrupted record: its program does not "
                             f"parse (line {err.line}: {err.message})")]
    except UserError as err:
        return [str(err)]
    except OSError as err:
        return [f"{path}: cannot read: {err.strerror}"]
    if count < log_count:
        return [(f"{path}: holds {count} evaluations but {state_path} counts {log_count} "
                 f"(evaluations lost or the log replaced)")]
    return []


def _fields(data: Any, fields: dict, where: str) -> str | None:
    if not isinstance(data, dict):
        return f"{where} is a JSON {type(data).__name__}, not an object"
    for key, kind in fields.items():
        problem = _field(data, key, kind, where)
        if problem:
            return problem
    return None


def _field(data: dict, key: str, kind, where: str = "") -> str | None:
    name = f"{where}.{key}" if where else repr(key)
    if key not in data:
        return f"{name} is missing"
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) or not isinstance(value, kinds):  # JSON true is no number
        return f"{name} is {_short(value)}, expected " + " or ".join(
            _JSON_NAMES[k] for k in kinds)
    return None


_JSON_NAMES = {int: "an integer", float: "a number", str: "a string", dict: "an object",
               list: "a list", type(None): "null", bool: "a boolean"}


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."
