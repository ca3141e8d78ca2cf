"""Whether a run directory can be resumed, checked before anything in it is written.

Contract of :func:`validate_run_dir`: the list of what keeps a directory from being resumed,
one line per problem naming its file (and line), empty when it can be resumed; it only reads
(nothing is created, written or truncated).  Checked: the directory and its ``config.json``
and ``state.json`` exist; both are JSON; the configuration is valid (keys, types, ranges,
registered names); ``state.json`` is of a readable version (``READABLE_STATE_VERSIONS``), was made with this version of the
fingerprint (``programs.fingerprint.VERSION``: another version's cache would silently never
hit) and has the structure a resume restores (a dry run of it); every line of
``evaluations.jsonl`` but a torn last one is a record of the schema
(``discover.records.LogRecord``), with unique ``seq``; the log holds at least the evaluations
the checkpoint counts, and the programs of those after it parse.  It stops at the first
problem of ``config.json`` or ``state.json`` (what follows would be noise).
"""

from __future__ import annotations

import json
import os
from typing import Any

import programs
import tasks
from discover.atomic import read_json
from discover.config import CampaignConfig, check_names
from discover.errors import UserError
from discover.records import LogRecord, field_problem, short
from discover.rundir.files import (
    CONFIG_FILE,
    LOG_FILE,
    READABLE_STATE_VERSIONS,
    STATE_FILE,
    log_lines,
)
from discover.search.evolution import AgingEvolution
from programs import mutate
from programs.fingerprint import VERSION as FINGERPRINT_VERSION

INDIVIDUAL_FIELDS: dict[str, tuple[type, ...]] = {
    "program": (str,), "fingerprint": (str,), "seq": (int, type(None)),
    "parent": (str, type(None)), "mutation": (dict,), "score": (int, float, type(None)),
}
EVOLUTION_FIELDS: dict[str, type | tuple[type, ...]] = {
    "next_seq": int, "counters": dict, "population": list, "pending": list, "waiting": dict,
    "starts": dict, "hall_of_fame": list, "best": (dict, type(None)),
    "logbook": list, "rng": dict,
}


def validate_run_dir(path: str) -> list[str]:
    """What keeps ``path`` from being resumed (see the module docstring)."""
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
    try:
        config = CampaignConfig.from_saved(data, source=path)
        if config.tasks is None or config.held_out_tasks is None:
            return None, f"{path}: task lists not resolved: not written by a campaign"
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
    if saved["version"] == 1:
        return (f"{path}: made by an older discover (state version 1, fingerprints of "
                f"version fp1); this one computes {FINGERPRINT_VERSION}, so the run's cache "
                f"of scores would never hit: start a new campaign (discover report still "
                f"reads this one)")
    if saved["version"] == 2:
        return (f"{path}: made by an older discover (state version 2: scores of a 3-point "
                f"learning-rate grid averaged over tasks); this one tunes rates on a wide "
                f"grid and takes the median over tasks, so the run's scores would not compare "
                f"with new ones: start a new campaign (discover report still reads this one)")
    if saved["version"] not in READABLE_STATE_VERSIONS:
        return (f"{path}: state version {short(saved['version'])} is not supported (this "
                f"version of discover reads versions "
                f"{', '.join(map(str, READABLE_STATE_VERSIONS))})")
    if saved.get("fingerprint_version") != FINGERPRINT_VERSION:
        return (f"{path}: fingerprints of version {short(saved.get('fingerprint_version'))}; "
                f"this discover computes {FINGERPRINT_VERSION}, so the run's cache of scores "
                f"would never hit: start a new campaign")
    for key, kind in (("log_count", int), ("invocations", int),
                      ("elapsed_seconds", (int, float)), ("evolution", dict)):
        problem = field_problem(saved, key, kind)
        if problem:
            return f"{path}: wrong structure: {problem}"
    if saved["log_count"] < 0:
        return f"{path}: wrong structure: 'log_count' is negative"
    evolution = saved["evolution"]
    problem = next((p for p in (field_problem(evolution, key, kind, "evolution")
                                for key, kind in EVOLUTION_FIELDS.items()) if p), None)
    if problem:
        return f"{path}: wrong structure: {problem}"
    individuals = [("population", ind) for ind in evolution["population"]]
    individuals += [("pending", ind) for ind in evolution["pending"]]
    individuals += [("best", evolution["best"])] if evolution["best"] is not None else []
    for name, twins in evolution["waiting"].items():
        individuals += [(f"waiting[{short(name)}]", t)
                        for t in (twins if isinstance(twins, list) else [twins])]
    problems = [_fields(ind, INDIVIDUAL_FIELDS, f"evolution.{where}")
                for where, ind in individuals]
    if saved["version"] == 3:  # the cache copied into the checkpoint
        problem = field_problem(evolution, "cache", dict, "evolution")
        if problem:
            return f"{path}: wrong structure: {problem}"
        problems += [_fields(entry, {"score": (int, float)}, f"evolution.cache[{short(fp)}]")
                     for fp, entry in evolution["cache"].items()]
    problems += [field_problem(evolution["counters"], key, int, "evolution.counters")
                 for key in evolution["counters"]]
    problem = next((p for p in problems if p), None)
    if problem:
        return f"{path}: wrong structure: {problem}"
    # A dry run of what a resume does with it (in memory only).
    try:
        AgingEvolution(config, funnel=bool(config.held_out_tasks)).load_state_dict(evolution,
                                                                                   told=())
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as err:
        detail = str(err).splitlines()[0] if str(err).strip() else ""
        return (f"{path}: wrong structure: the evolution state does not load "
                f"({type(err).__name__}{': ' + short(detail, 100) if detail else ''})")
    return None


def _check_log(path: str, log_count: int, state_path: str) -> list[str]:
    count, seqs = 0, set()
    try:
        for count, (record, _) in enumerate(log_lines(path), start=1):
            try:
                problem = None
                LogRecord.from_json(record)
            except ValueError as err:
                problem = str(err)
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
        problem = field_problem(data, key, kind, where)
        if problem:
            return problem
    return None
