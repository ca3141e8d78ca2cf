"""Campaign configuration: one frozen dataclass, read from JSON/TOML and command-line flags.

Contract:

* :class:`CampaignConfig` holds every knob of a campaign: budgets, workers, search space
  (ops, statements, state slots, mutation weights), evolution (population, tournament,
  restarts, hall of fame), the tasks searched and those held out, evaluation settings.
* :meth:`CampaignConfig.from_dict` accepts exactly the field names; an unknown key, a value of
  the wrong type or out of range is a one-line :class:`~discover.errors.UserError` that names
  the key.  ``to_dict`` / ``from_dict`` round-trip through JSON.
* :func:`load_config` reads a ``.json`` or ``.toml`` file (same keys, flat).

Nothing here imports JAX or Ray: the driver validates its configuration before it starts Ray,
and starts Ray before JAX runs anything.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
import types
import typing
from typing import Any

from discover.errors import UserError

START_SCRATCH = "scratch"
"""The ``start`` name of the trivial program (one gradient step), for a search from scratch."""


@dataclasses.dataclass(frozen=True)
class CampaignConfig:
    """Everything a campaign needs; saved as ``config.json`` in the run directory."""

    # -- identity and budgets -------------------------------------------------------------
    name: str = ""
    """Name of the run (the default run directory is ``runs/NAME``); empty: a timestamp."""
    seed: int = 0
    """Seeds every random stream of the search (mutation, selection)."""
    max_evals: int | None = None
    """Evaluations over the whole campaign (resume included); None: unlimited."""
    time_limit: float | None = 120.0
    """Wall-clock seconds of search per invocation (run or resume), counted once the workers
    are compiled; None: unlimited."""

    # -- workers --------------------------------------------------------------------------
    workers: int | None = None
    """Evaluation actors; None: one per CPU of the Ray cluster; 0: serial, in-process."""
    address: str | None = None
    """Ray cluster to join (HOST:PORT or "auto"); None: RAY_ADDRESS, else a local instance."""

    # -- tasks and evaluation -------------------------------------------------------------
    tasks: tuple[str, ...] | None = None
    """Tasks searched on; None: ``tasks.search_names()``."""
    held_out_tasks: tuple[str, ...] | None = None
    """Meta-validation tasks; None: ``tasks.held_out_names()``; empty: no funnel."""
    eval_seeds: tuple[int, ...] = (0,)
    """Training seeds of every evaluation (scores are averaged over them)."""
    lr_grid: int = 3
    """Learning rates tried per task (the best is kept)."""
    held_out_threshold: float = 0.0
    """Funnel: a candidate whose search score is at most this (0: as good as tuned adam on
    the search tasks; lower is better) is also scored on the held-out tasks."""

    # -- search space ---------------------------------------------------------------------
    start: tuple[str, ...] = ("adam", "sgd", "lion")
    """Baselines the population starts from, or ("scratch",) for the trivial program."""
    ops: tuple[str, ...] | None = None
    """Ops mutations may use; None: every op of the table."""
    max_statements: int = 20
    """Longest program (statements) a mutation may make and the evaluator accepts."""
    max_slots: int = 4
    """Most state slots a program may have."""
    mutation_weights: dict[str, float] | None = None
    """Relative weight of each mutation kind; None: the defaults of ``programs.mutate``."""

    # -- evolution ------------------------------------------------------------------------
    population_size: int = 100
    tournament_size: int = 2
    hall_of_fame_size: int = 20
    plateau_evals: int | None = 2000
    """Restart the population from the best program after this many evaluations without a
    better search score; None: never."""

    # -- bookkeeping ----------------------------------------------------------------------
    checkpoint_every: int = 50
    """Write state.json every this many evaluations (and always at exit)."""
    progress_seconds: float = 2.0
    """Seconds between progress lines on stderr; 0: none."""

    def __post_init__(self) -> None:
        _validate(self)

    # -- conversion -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "configuration") -> CampaignConfig:
        """Build from plain data (JSON/TOML); UserError names any unknown or mistyped key."""
        if not isinstance(data, dict):
            raise UserError(f"{source}: expected a table of settings, got {type(data).__name__}")
        hints = _hints()
        values = {}
        for key, value in data.items():
            if key not in hints:
                raise UserError(f"{source}: unknown configuration key {key!r}")
            values[key] = _coerce(key, value, hints[key], source)
        try:
            return cls(**values)
        except UserError as err:
            raise UserError(f"{source}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (tuples as lists) that ``from_dict`` reads back."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes) -> CampaignConfig:
        """A copy with fields replaced (same type checks as ``from_dict``)."""
        merged = self.to_dict()
        merged.update(changes)
        return CampaignConfig.from_dict(merged)


def load_config(path: str | os.PathLike) -> CampaignConfig:
    """Read a ``.toml`` or ``.json`` configuration file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise UserError(f"cannot read configuration {path}: {err.strerror}") from None
    try:
        if path.endswith(".toml"):
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path}: not valid {'TOML' if path.endswith('.toml') else 'JSON'}: "
                        f"{first}") from None
    return CampaignConfig.from_dict(data, source=path)


# -- type checks ---------------------------------------------------------------------------
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(CampaignConfig)


def _type_name(hint) -> str:
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    if origin is dict:
        return f"table of {_type_name(typing.get_args(hint)[1])}"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}[hint]


def _coerce(key: str, value: Any, hint, source: str) -> Any:
    """``value`` as the field's type (lists become tuples, ints become floats); else UserError."""
    result = _convert(value, hint)
    if result is _INVALID:
        raise UserError(f"{source}: {key!r} must be a {_type_name(hint)}, got {value!r}")
    return result


_INVALID = object()


def _convert(value: Any, hint) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            result = _convert(value, option)
            if result is not _INVALID:
                return result
        return _INVALID
    if hint is type(None):
        return None if value is None else _INVALID
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _INVALID
        items = [_convert(v, typing.get_args(hint)[0]) for v in value]
        return _INVALID if any(i is _INVALID for i in items) else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            return _INVALID
        items = {k: _convert(v, typing.get_args(hint)[1]) for k, v in value.items()}
        if any(not isinstance(k, str) or v is _INVALID for k, v in items.items()):
            return _INVALID
        return items
    if hint is bool:
        return value if isinstance(value, bool) else _INVALID
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if math.isfinite(value) else _INVALID
        return _INVALID
    if hint is str:
        return value if isinstance(value, str) else _INVALID
    return _INVALID


def _validate(c: CampaignConfig) -> None:
    """Range checks; the message names the key."""
    hints = _hints()
    for f in dataclasses.fields(c):
        value = getattr(c, f.name)
        if _convert(value, hints[f.name]) is _INVALID:
            raise UserError(f"{f.name!r} must be a {_type_name(hints[f.name])}, got {value!r}")

    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise UserError(f"{key!r} {what}, got {getattr(c, key)!r}")

    need(c.name == "" or re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", c.name) is not None,
         "name", "must be letters, digits, '-', '_' or '.'")
    need(c.max_evals is None or c.max_evals >= 0, "max_evals", "must be >= 0")
    need(c.time_limit is None or c.time_limit > 0, "time_limit", "must be > 0 seconds")
    need(c.workers is None or c.workers >= 0, "workers", "must be >= 0")
    need(c.address is None or c.address.strip() != "", "address", "must be HOST:PORT or 'auto'")
    for key in ("tasks", "held_out_tasks", "start", "ops"):
        value = getattr(c, key)
        need(value is None or len(set(value)) == len(value), key, "must not repeat a name")
        need(value is None or all(v.strip() == v and v for v in value), key,
             "must hold non-empty names")
    need(c.tasks is None or len(c.tasks) > 0, "tasks", "must name at least one task")
    need(len(c.eval_seeds) > 0, "eval_seeds", "must hold at least one seed")
    need(c.lr_grid >= 1, "lr_grid", "must be >= 1")
    need(len(c.start) > 0, "start", f"must name baselines or {START_SCRATCH!r}")
    need(c.ops is None or len(c.ops) > 0, "ops", "must name at least one op")
    need(2 <= c.max_statements <= 200, "max_statements", "must be between 2 and 200")
    need(0 <= c.max_slots <= 16, "max_slots", "must be between 0 and 16")
    need(c.mutation_weights is None or (all(w >= 0 for w in c.mutation_weights.values())
                                        and sum(c.mutation_weights.values()) > 0),
         "mutation_weights", "must be >= 0 with a positive sum")
    need(c.population_size >= 1, "population_size", "must be >= 1")
    need(1 <= c.tournament_size <= c.population_size, "tournament_size",
         "must be between 1 and population_size")
    need(c.hall_of_fame_size >= 1, "hall_of_fame_size", "must be >= 1")
    need(c.plateau_evals is None or c.plateau_evals >= 1, "plateau_evals", "must be >= 1")
    need(c.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
    need(c.progress_seconds >= 0, "progress_seconds", "must be >= 0")


def check_names(config: CampaignConfig, *, ops: typing.Iterable[str],
                task_names: typing.Iterable[str], baselines: typing.Iterable[str],
                mutation_kinds: typing.Iterable[str] = ()) -> None:
    """Check the names a configuration refers to against the registries (UserError)."""
    ops, task_names, baselines = set(ops), set(task_names), set(baselines)
    for key, known in (("tasks", task_names), ("held_out_tasks", task_names), ("ops", ops),
                       ("start", baselines | {START_SCRATCH}),
                       ("mutation_weights", set(mutation_kinds))):
        for name in getattr(config, key) or ():
            if name not in known and not (key.endswith("tasks") and ":" in name):
                raise UserError(f"{key!r}: unknown name {name!r} (known: "
                                f"{', '.join(sorted(known))})")
    if START_SCRATCH in config.start and len(config.start) > 1:
        raise UserError(f"'start': {START_SCRATCH!r} cannot be combined with baselines")
    both = set(config.tasks or ()) & set(config.held_out_tasks or ())
    if both:
        raise UserError(f"'held_out_tasks': {min(both)!r} is also a search task")


def parse_list(text: str) -> tuple[str, ...]:
    """``"a,b, c"`` -> ``("a", "b", "c")``; empty items dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())
