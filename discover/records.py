"""The record schema: what an evaluation produces, from the actor to the report, in one place.

Contract (``docs/DESIGN.md``, "Records"):

* :class:`TaskScore` and :class:`Evaluation`: one program scored on a set of tasks
  (``discover.scoring.evaluate.Evaluator.evaluate``); a failure is data (``status``, the worst score,
  ``error``), never an exception.
* :class:`JobResult`: what a worker returns for one job (the search-task evaluation, the
  held-out one when the funnel passed it, seconds, CPU seconds, the worker's name).
* :class:`LogRecord`: one line of ``evaluations.jsonl``, made from a child and its
  :class:`JobResult` (:meth:`LogRecord.from_result`); ``to_json`` gives the line's object and
  ``from_json`` reads one back, raising :class:`SchemaError` (a ``ValueError``) that names the
  first missing or mistyped field.
* :class:`HallEntry`: one entry of ``hall_of_fame.json`` (best first), made from a logged
  record and the program's pruned text.

Every dataclass is frozen.  The JSON forms are the run directory's format: changing a field
changes :data:`SCHEMA_VERSION` (``tests/test_records.py`` pins them).  JSON numbers are
finite: a NaN or infinite loss, learning rate or score is written as ``null``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from tasks.base import WORST_SCORE

SCHEMA_VERSION = 4
"""Version of the JSON forms of :class:`LogRecord` and :class:`HallEntry` (the log and the
hall of fame of a run directory).  4 added the promotion fields (absent: not promoted)."""

OK, NONFINITE, ERROR, FAILED, TIMEOUT = "ok", "nonfinite", "error", "failed", "timeout"
REJECTED = "rejected"
"""Statuses: a task is ``ok``, ``nonfinite`` (every learning rate diverged) or ``error`` (the
run raised); an evaluation is ``ok`` (a task ok, none an error), ``failed``, ``timeout`` or
``rejected`` (stopped at the hurdle: scored on the first task only, :data:`REJECTED_SCORE`)."""

REJECTED_SCORE = 1.0
"""The search score of a child stopped at the hurdle: no better than the untrained model."""


class SchemaError(ValueError):
    """A JSON object that is not a record of this schema; the message names the field."""


def finite_or_none(x) -> float | None:
    """``x`` as a float, or None when it is None, NaN or infinite (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _nan_if_none(x) -> float:
    return math.nan if x is None else float(x)


@dataclasses.dataclass(frozen=True)
class TaskScore:
    """One task's result: normalised ``score`` (finite; the mean of ``seed_scores``, one per
    training seed), best validation ``loss`` and the ``lr`` reaching it (NaN unless
    ``status == "ok"``), ``status`` ok | nonfinite | error, ``at_limit`` when the tuned rate is
    at the grid's limit, ``windows`` of rates the tuning ran (its cost)."""

    task: str
    score: float
    loss: float
    lr: float
    status: str
    seed_scores: tuple[float, ...] = ()
    at_limit: bool = False
    windows: int = 0

    def to_dict(self) -> dict:
        return {"task": self.task, "score": float(self.score),
                "loss": finite_or_none(self.loss), "lr": finite_or_none(self.lr),
                "status": self.status, "seed_scores": [float(x) for x in self.seed_scores],
                "at_limit": bool(self.at_limit), "windows": int(self.windows)}

    @classmethod
    def from_dict(cls, d: dict) -> TaskScore:
        return cls(d["task"], float(d["score"]), _nan_if_none(d.get("loss")),
                   _nan_if_none(d.get("lr")), d["status"],
                   tuple(float(x) for x in d.get("seed_scores") or ()),
                   bool(d.get("at_limit", False)), int(d.get("windows", 0)))


@dataclasses.dataclass(frozen=True)
class Hurdle:
    """The hurdle a child met (``discover.scoring.evaluate``): its ``score`` on the first search task
    ``task`` against the ``threshold`` (lower is better), whether it ``passed``, and whether
    it was an ``audit`` (evaluated on every task whatever the outcome, to count false
    rejections)."""

    task: str
    score: float
    threshold: float
    passed: bool
    audit: bool = False

    def to_dict(self) -> dict:
        return {"task": self.task, "score": finite_or_none(self.score),
                "threshold": float(self.threshold), "passed": bool(self.passed),
                "audit": bool(self.audit)}


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Scores of one program on every task of an evaluator, their median (``aggregate``; NaN
    when nothing was scored), the overall ``status`` (ok | failed | timeout), the wall-clock
    ``seconds`` spent, for a failure that is not a task's the ``error``, and the bootstrap
    ``interval`` of (aggregate - adam's) paired by seed (None with one seed;
    ``discover.scoring.stats``), and the ``hurdle`` met (None when there was none)."""

    scores: tuple[TaskScore, ...]
    aggregate: float
    status: str
    seconds: float
    error: str | None = None
    interval: tuple[float, float] | None = None
    hurdle: Hurdle | None = None

    @classmethod
    def failed(cls, error: str, status: str = FAILED, seconds: float = 0.0,
               aggregate: float = math.nan) -> Evaluation:
        """An evaluation that scored no task (the program does not parse or fit the
        evaluator's bucket, the worker raised, or the job timed out)."""
        return cls((), aggregate, status, seconds, error)

    def by_task(self) -> dict[str, TaskScore]:
        return {s.task: s for s in self.scores}

    def to_dict(self) -> dict:
        """JSON-safe: every float finite (non-finite loss or lr become None)."""
        out = {"scores": [s.to_dict() for s in self.scores],
               "aggregate": finite_or_none(self.aggregate), "status": self.status,
               "seconds": float(self.seconds)}
        if self.error is not None:
            out["error"] = self.error
        if self.interval is not None:
            out["interval"] = [float(x) for x in self.interval]
        if self.hurdle is not None:
            out["hurdle"] = self.hurdle.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Evaluation:
        bounds, hurdle = d.get("interval"), d.get("hurdle")
        return cls(tuple(TaskScore.from_dict(s) for s in d["scores"]),
                   _nan_if_none(d["aggregate"]), d["status"], float(d["seconds"]),
                   d.get("error"), None if bounds is None else (float(bounds[0]),
                                                                float(bounds[1])),
                   None if hurdle is None else Hurdle(
                       hurdle["task"], _nan_if_none(hurdle["score"]),
                       float(hurdle["threshold"]), bool(hurdle["passed"]),
                       bool(hurdle.get("audit", False))))


@dataclasses.dataclass(frozen=True)
class JobResult:
    """A worker's answer to one job: ``search`` (the search tasks), ``held_out`` (None unless
    the funnel passed the candidate), ``seconds`` and ``cpu_seconds`` spent in the worker
    (CPU below wall clock: the worker shared its core), ``worker`` (its name), ``promotion``
    (the held-out tasks again over the promotion seeds; None unless it would crown)."""

    search: Evaluation
    held_out: Evaluation | None
    seconds: float
    cpu_seconds: float
    worker: str
    promotion: Evaluation | None = None

    @classmethod
    def failed(cls, error: str, worker: str) -> JobResult:
        """A job that could not be evaluated (its evaluation raised twice): failed, as data."""
        return cls(Evaluation.failed(error), None, 0.0, 0.0, worker)

    @classmethod
    def timeout(cls, seconds: float, limit: float, worker: str) -> JobResult:
        """A job cancelled after ``limit`` seconds: status ``timeout``, the worst score (as a
        run that diverged gets), no per-task scores."""
        error = f"cancelled after {seconds:.1f} s (eval_timeout {limit:g} s)"
        return cls(Evaluation.failed(error, TIMEOUT, seconds, WORST_SCORE), None, seconds,
                   0.0, worker)


def _bounds(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [float(interval[0]), float(interval[1])]


TIMING_FIELDS = ("seconds", "worker", "time")
"""Fields of a log record that depend on timing and placement, not on the search."""


@dataclasses.dataclass(frozen=True)
class LogRecord:
    """One line of ``evaluations.jsonl``: the child (``seq``, ``program`` text,
    ``fingerprint``, ``parent`` fingerprint, ``mutation``), its search-task result (``status``,
    ``score``, per task ``scores``, ``lr``, ``losses``, ``task_status``), its held-out result
    (None unless the funnel passed it), where and how long (``seconds``, ``worker``,
    ``time``: :data:`TIMING_FIELDS`), the hurdle it met (``Hurdle.to_dict``) and, in a
    campaign with islands, its ``island`` (both schema 3), and its promotion (the held-out
    tasks over the promotion seeds: ``promotion_score``, ``promotion_scores``,
    ``promotion_lr``, ``promotion_interval``; only when it ran)."""

    seq: int
    program: str
    fingerprint: str
    parent: str | None
    mutation: dict
    status: str
    score: float | None
    scores: dict[str, float | None]
    lr: dict[str, float | None]
    losses: dict[str, float | None]
    task_status: dict[str, str]
    held_out_score: float | None
    held_out_scores: dict[str, float | None] | None
    held_out_lr: dict[str, float | None] | None
    seconds: float
    worker: str
    time: float
    error: str | None = None
    held_out_status: str | None = None
    interval: list[float] | None = None
    held_out_interval: list[float] | None = None
    hurdle: dict | None = None
    island: int | None = None
    promotion_score: float | None = None
    promotion_scores: dict[str, float | None] | None = None
    promotion_lr: dict[str, float | None] | None = None
    promotion_interval: list[float] | None = None

    @property
    def search_score(self) -> float:
        """The fitness the search uses: ``score``, or the worst score when there is none."""
        return WORST_SCORE if self.score is None else self.score

    @classmethod
    def from_result(cls, seq: int, program: str, fingerprint: str, parent: str | None,
                    mutation: dict, result: JobResult, time: float,
                    island: int | None = None) -> LogRecord:
        search, held, promoted = result.search, result.held_out, result.promotion
        tasks = search.scores
        return cls(
            seq=seq, program=program, fingerprint=fingerprint, parent=parent,
            mutation=dict(mutation), status=search.status,
            score=finite_or_none(search.aggregate),
            scores={s.task: finite_or_none(s.score) for s in tasks},
            lr={s.task: finite_or_none(s.lr) for s in tasks},
            losses={s.task: finite_or_none(s.loss) for s in tasks},
            task_status={s.task: s.status for s in tasks},
            held_out_score=finite_or_none(held.aggregate) if held else None,
            held_out_scores=({s.task: finite_or_none(s.score) for s in held.scores}
                             if held else None),
            held_out_lr={s.task: finite_or_none(s.lr) for s in held.scores} if held else None,
            seconds=round(result.seconds, 4), worker=result.worker, time=round(time, 3),
            error=search.error,
            held_out_status=held.status if held is not None and held.status != OK else None,
            interval=_bounds(search.interval),
            held_out_interval=_bounds(held.interval) if held is not None else None,
            hurdle=search.hurdle.to_dict() if search.hurdle is not None else None,
            island=island,
            promotion_score=finite_or_none(promoted.aggregate) if promoted else None,
            promotion_scores=({s.task: finite_or_none(s.score) for s in promoted.scores}
                              if promoted else None),
            promotion_lr=({s.task: finite_or_none(s.lr) for s in promoted.scores}
                          if promoted else None),
            promotion_interval=_bounds(promoted.interval) if promoted is not None else None)

    def to_json(self) -> dict:
        """The object of the log line (``error``, ``held_out_status``, the intervals, the
        ``hurdle``, the ``island`` and the promotion only when set).  Shallow: the nested
        values are the record's own (plain JSON data), not copies."""
        out = _fields_of(self)
        for key in ("error", "held_out_status", "interval", "held_out_interval", "hurdle",
                    "island", "promotion_score", "promotion_scores", "promotion_lr",
                    "promotion_interval"):
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_json(cls, data: Any) -> LogRecord:
        """Read a log line's object back; :class:`SchemaError` names the first bad field."""
        _check(data, _LOG_FIELDS, "record")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclasses.dataclass(frozen=True)
class HallEntry:
    """One entry of ``hall_of_fame.json``: ``rank`` (1 = best), ``program`` (pruned text),
    ``original_program`` (as evaluated), both scores, per-task scores and learning rates,
    lineage (``seq``, ``parent``, ``mutation``), and its promotion score and interval (None
    unless it was promoted)."""

    rank: int
    program: str
    original_program: str
    fingerprint: str
    search_score: float
    held_out_score: float | None
    scores: dict[str, float | None]
    held_out_scores: dict[str, float | None] | None
    lr: dict[str, float | None]
    held_out_lr: dict[str, float | None] | None
    seq: int
    parent: str | None
    mutation: dict
    held_out_interval: list[float] | None = None
    promotion_score: float | None = None
    promotion_interval: list[float] | None = None

    @classmethod
    def from_record(cls, rank: int, record: LogRecord, pruned_text: str) -> HallEntry:
        return cls(rank=rank, program=pruned_text, original_program=record.program,
                   fingerprint=record.fingerprint, search_score=record.search_score,
                   held_out_score=record.held_out_score, scores=record.scores,
                   held_out_scores=record.held_out_scores, lr=record.lr,
                   held_out_lr=record.held_out_lr, seq=record.seq, parent=record.parent,
                   mutation=record.mutation, held_out_interval=record.held_out_interval,
                   promotion_score=record.promotion_score,
                   promotion_interval=record.promotion_interval)

    def to_json(self) -> dict:
        """The entry's object (shallow, as :meth:`LogRecord.to_json`)."""
        return _fields_of(self)

    @classmethod
    def from_json(cls, data: Any) -> HallEntry:
        _check(data, _HALL_FIELDS, "hall-of-fame entry")
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def _fields_of(record) -> dict:
    """A dataclass's fields as a dict, without ``dataclasses.asdict``'s deep copy (the values
    are plain JSON data the caller serialises; a driver writes one a child)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
_SCORES = (dict,)
_OPTIONAL_SCORES = (dict, type(None))
_LOG_FIELDS: dict[str, tuple[type, ...]] = {
    "seq": (int,), "program": (str,), "fingerprint": (str,), "parent": (str, type(None)),
    "mutation": (dict,), "status": (str,), "score": _OPTIONAL_NUMBER, "scores": _SCORES,
    "lr": _SCORES, "losses": _SCORES, "task_status": _SCORES,
    "held_out_score": _OPTIONAL_NUMBER, "held_out_scores": _OPTIONAL_SCORES,
    "held_out_lr": _OPTIONAL_SCORES, "seconds": _NUMBER, "worker": (str,), "time": _NUMBER,
}
_HALL_FIELDS: dict[str, tuple[type, ...]] = {
    "rank": (int,), "program": (str,), "original_program": (str,), "fingerprint": (str,),
    "search_score": _NUMBER, "held_out_score": _OPTIONAL_NUMBER, "scores": _SCORES,
    "held_out_scores": _OPTIONAL_SCORES, "lr": _SCORES, "held_out_lr": _OPTIONAL_SCORES,
    "seq": (int,), "parent": (str, type(None)), "mutation": (dict,),
}
_JSON_NAMES = {int: "an integer", float: "a number", str: "a string", dict: "an object",
               list: "a list", type(None): "null", bool: "a boolean"}


def _check(data: Any, fields: Mapping[str, tuple[type, ...]], what: str) -> None:
    if not isinstance(data, dict):
        raise SchemaError(f"{what} is a JSON {type(data).__name__}, not an object")
    for key, kinds in fields.items():
        problem = field_problem(data, key, kinds, what)
        if problem:
            raise SchemaError(problem)


def field_problem(data: dict, key: str, kinds, where: str = "") -> str | None:
    """Why ``data[key]`` is not a JSON value of ``kinds`` (a type or a tuple), or None."""
    name = f"{where}.{key}" if where else repr(key)
    if key not in data:
        return f"{name} is missing"
    value = data[key]
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) or not isinstance(value, kinds):  # JSON true is no number
        return f"{name} is {short(value)}, expected " + " or ".join(_JSON_NAMES[k] for k in kinds)
    return None


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."
