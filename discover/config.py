"""Campaign configuration: one frozen dataclass, read from JSON/TOML and command-line flags.

Contract:

* :class:`CampaignConfig` holds every knob of a campaign: budgets, workers, search space
  (ops, statements, state slots, mutation weights), evolution (population, tournament,
  restarts, hall of fame), the tasks searched and those held out, evaluation settings.
* :meth:`CampaignConfig.from_dict` accepts exactly the field names; an unknown key, a value of
  the wrong type or out of range is a one-line :class:`~discover.errors.UserError` that names
  the key.  ``to_dict`` / ``from_dict`` round-trip through JSON.  ``false`` turns off a
  setting whose "off" is None (TOML has no null): ``hurdle_percentile = false``.
* :meth:`CampaignConfig.from_saved` reads a run directory's ``config.json``: a key the file
  lacks (the run was made before the setting existed) takes the value that meant what the run
  did then (:data:`SAVED_ABSENT`), not today's default.
* :func:`load_config` reads a ``.json`` or ``.toml`` file (same keys, flat).

Nothing here imports JAX or Ray: the driver validates its configuration before it starts Ray,
and starts Ray before JAX runs anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import typing
from typing import Any

from discover.errors import UserError
from discover.plain_data import (
    INVALID,
    coerce,
    convert,
    did_you_mean,
    show,
    type_name,
    with_article,
)

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
    eval_timeout: float | None = 300.0
    """Seconds one evaluation may run; past it the worker is killed and replaced and the
    candidate logged as a "timeout" with the worst score.  None: no limit.  Generous: an
    evaluation of the built-in tasks takes seconds."""
    worker_memory_mb: int | None = 4096
    """Cap on each evaluation actor's private memory in MB (RLIMIT_DATA; Linux); None: none."""

    # -- tasks and evaluation -------------------------------------------------------------
    tasks: tuple[str, ...] | None = None
    """Tasks searched on; None: ``tasks.search_names()`` (tier "search")."""
    held_out_tasks: tuple[str, ...] | None = None
    """The funnel's held-out stage; None: ``tasks.held_out_names()`` (tier B, ~10x a search
    task); empty: no funnel.  Tier C (~100x) is ``discover bench``'s (docs/bench.md)."""
    eval_seeds: tuple[int, ...] = (0,)
    """Training seeds of the search tasks' evaluation (scores are averaged over them)."""
    held_out_seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds of the held-out evaluation: its interval against adam (paired by seed,
    ``discover.scoring.stats``) needs at least two."""
    promotion_seeds: tuple[int, ...] = ()
    """Promotion (successive halving one stage further): a candidate the funnel would crown
    (its held-out interval against adam below -``MIN_EFFECT``) is scored again on the held-out
    tasks over these fresh seeds (rates walked from its held-out ones) before it ranks in the
    hall of fame: promoted programs rank first, by this score, and the campaign's claim (the
    final check's "crowned") rests on its interval, not on the maximised funnel score.  Empty:
    no promotion.  Needs held-out tasks; no seed of ``held_out_seeds``."""
    schedule: str = "constant"
    """Schedule of the learning rate every contender trains under, on the search tasks and the
    held-out ones alike, adam the reference included (``tasks/schedule.py``): "constant" (the
    program as written) or "warmup_cosine" (linear warmup over a tenth of the steps, cosine
    decay to 0; the program reads ``lr`` times the schedule).  Under a schedule a program is
    not paid for decaying its own step: it is compared with adam under the same schedule."""
    lr_grid: int = 3
    """Learning rates per window of the rate tuning (``discover.scoring.tuning``): a walk from the
    parent's rate runs one window, and the next one while the best rate is at an edge."""
    held_out_threshold: float = -0.005
    """Funnel: a candidate whose search score is at most this (lower is better; the default,
    minus ``discover.scoring.stats.MIN_EFFECT``, means "beats tuned adam on the search tasks") is also
    scored on the held-out tasks; with two or more ``eval_seeds`` the upper end of the search
    score's 95% interval against adam must be at most this too."""
    held_out_margin: float | None = None
    """Funnel, adaptive: also require a search score at most this much above the best search
    score so far (a tier-B scoring costs ~20x a search-set evaluation).  None: the threshold
    alone.  Measured in results/warm_start_b (from adam): with 0.02, 12% of candidates were
    funnelled and took ~70% of the CPU; replayed on its log, 0.005 admits 3% and 0 (new
    bests only) 1%, the threshold alone 16%."""

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
    adaptive_mutation_window: int | None = None
    """Mutation weights that follow success: each kind's weight becomes its configured weight
    times (successes + 1) / (children + 2) over the last this-many children told, a success
    being a child that scores better than its parent (so structure mutations gain weight when
    constant tweaks stop paying).  None: fixed weights."""
    wired_slot_probability: float = 0.0
    """Probability that a new state slot is read at once: one later reader of the slot
    recurrence's input reads the slot instead (``programs.mutate``: momentum from sgd in one
    mutation instead of two).  0: a new slot is dead until an ``operand`` mutation reads it."""
    mutate_until_changed: bool = False
    """A child that computes what its parent computes (same fingerprint: a dead statement, a
    slot nothing reads yet) is mutated again, up to ``NEUTRAL_STEPS`` times, instead of being
    counted as a cache hit and drifting into the population (the Lion search's rule)."""
    fingerprint_cache: bool = True
    """A child whose fingerprint was already evaluated (or is being evaluated) takes its twin's
    score without an evaluation (AutoML-Zero's functional-equivalence cache).  False, for the
    ablation only: every child is evaluated and counts against ``max_evals``, repeats too
    (the log then holds a fingerprint more than once, with the same score: evaluation is
    deterministic)."""

    # -- evolution ------------------------------------------------------------------------
    population_size: int = 100
    tournament_size: int = 2
    hall_of_fame_size: int = 20
    plateau_evals: int | None = 2000
    """Restart the population from the best program after this many evaluations without a
    better search score; None: never."""
    islands: int = 1
    """Populations evolving apart (FunSearch), each ``population_size / islands`` strong;
    children are bred for each island in turn and join it; the fingerprint cache, the best
    program and the hall of fame are shared."""
    migration_every: int | None = 100
    """With islands: every this many evaluations the best ``migrants`` of each island replace
    the worst of the next one in a ring (DEAP's ``tools.migRing``); None: never."""
    migrants: int = 1
    reset_every: int | None = None
    """With islands: every this many evaluations the weaker half of the islands (by their best
    score) restart from copies of the best member of an island of the stronger half; None:
    never."""
    hurdle_percentile: float | None = 25.0
    """Hurdles (AutoML-Zero): a child is first scored on the first search task (put the
    cheapest first; the default search set begins with digits_mlp_s) and goes on to the others
    only if that score is at most this percentile (0-100, lower scores are better) of the
    first-task scores of the last ``hurdle_window`` children evaluated; else it stops there,
    status "rejected", search score 1 (no better than untrained).  25 passes about the best
    quarter; on by default since the equal-CPU comparison (docs/search-power.md: the same
    success rates, about 2-4x the evaluations in the same CPU).  A search set of one task
    has no hurdle (nothing to save).  None (``false``): no hurdle."""
    hurdle_window: int = 100
    """Recent first-task scores the hurdle is a percentile of (no hurdle until there are 20,
    or ``hurdle_window`` if fewer)."""
    hurdle_audit_every: int | None = 20
    """Every this-many-th child (by sequence number) is scored on every task whatever the
    hurdle says, and logged with the hurdle's verdict: the false rejections are counted from
    these.  None: no audit."""

    # -- the final check ------------------------------------------------------------------
    final_check: int = 3
    """At the end of a run or resume, the hall of fame's first this-many programs are benched
    on tier C beside tuned adam (``discover.scoring.final_check``: seeds 1-3, the campaign's schedule,
    ``<run>/final_check/``), and the summary says which beat it: the funnel's precision.
    0: never."""
    final_check_min_evals: int = 1000
    """A campaign of fewer evaluations than this skips the final check (it costs about 20
    minutes on 2 cores; the default two-minute run is far below)."""

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
                raise UserError(f"{source}: unknown configuration key {show(key)}"
                                f"{did_you_mean(str(key), hints)}")
            values[key] = coerce(key, value, hints[key], source)
        try:
            return cls(**values)
        except UserError as err:
            raise UserError(f"{source}: {err}") from None

    @classmethod
    def from_saved(cls, data: dict[str, Any], source: str = "configuration") -> CampaignConfig:
        """Read a run directory's saved configuration: as ``from_dict``, with each key of
        :data:`SAVED_ABSENT` the file lacks set to the value the run was made with."""
        if isinstance(data, dict):
            data = {**{k: v for k, v in SAVED_ABSENT.items() if k not in data}, **data}
        return cls.from_dict(data, source)

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


SAVED_ABSENT: dict[str, Any] = {"hurdle_percentile": None}
"""Settings whose default changed after runs without the key were saved: such a run was made
(and resumes) with this value."""


SCHEDULES = ("constant", "warmup_cosine")
"""``tasks.schedule.SCHEDULES`` (not imported: this module imports no JAX; a test keeps the two
equal)."""

MAX_CONFIG_BYTES = 1 << 20
"""A configuration file is a few hundred bytes; a larger one than this is refused unread."""
MAX_NAME_CHARS = 100
MAX_LR_GRID = 64
MAX_SEEDS = 64
MAX_WORKERS = 4096
MAX_POPULATION = 100_000
MAX_STATEMENTS = 200
MAX_SLOTS = 16
"""Upper bounds that keep a mistyped number from allocating (or compiling) without end."""


def load_config(path: str | os.PathLike) -> CampaignConfig:
    """Read a ``.toml`` or ``.json`` configuration file.  Any problem is a one-line UserError
    naming the file (and, for a syntax error, ``FILE:LINE:COLUMN``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise UserError(f"cannot read configuration {path}: it is a directory")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise UserError(f"cannot read configuration {path}: {err.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise UserError(f"{path}: configuration file larger than {MAX_CONFIG_BYTES} bytes")
    kind = "TOML" if path.endswith(".toml") else "JSON"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise UserError(f"{path}:{line}:{column}: not valid {kind}: not UTF-8 (byte "
                        f"{raw[err.start]:#04x})") from None
    try:
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}:{_toml_position(str(err), text)}: not valid TOML: "
                        f"{_toml_message(str(err))}") from None
    except RecursionError:
        raise UserError(f"{path}: not valid {kind}: nested too deeply") from None
    return CampaignConfig.from_dict(data, source=path)


_TOML_AT = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


def _toml_position(message: str, text: str) -> str:
    """``LINE:COLUMN`` of a ``tomllib`` error ("(at line L, column C)" or "(at end of
    document)": the last line)."""
    match = _TOML_AT.search(message)
    if match and match.group(1):
        return f"{match.group(1)}:{match.group(2)}"
    lines = text.split("\n")
    return f"{len(lines)}:{len(lines[-1]) + 1}"


def _toml_message(message: str) -> str:
    first = message.splitlines()[0] if message else "syntax error"
    match = _TOML_AT.search(first)
    if match is None:
        return first
    return first[: match.start()] + (" (at end of file)" if not match.group(1) else "")


# -- type checks ---------------------------------------------------------------------------
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(CampaignConfig)


def _validate(c: CampaignConfig) -> None:
    """Range checks; the message names the key."""
    hints = _hints()
    for f in dataclasses.fields(c):
        value = getattr(c, f.name)
        if convert(value, hints[f.name]) is INVALID:
            raise UserError(f"{f.name!r} must be {with_article(type_name(hints[f.name]))}, "
                            f"got {show(value)}")

    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise UserError(f"{key!r} {what}, got {show(getattr(c, key))}")

    need(c.name == "" or re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", c.name) is not None,
         "name", "must be letters, digits, '-', '_' or '.'")
    need(len(c.name) <= MAX_NAME_CHARS, "name", f"must be at most {MAX_NAME_CHARS} characters")
    need(0 <= c.seed < 2**64, "seed", "must be between 0 and 2**64 - 1")
    need(c.max_evals is None or c.max_evals >= 1, "max_evals", "must be >= 1")
    need(c.time_limit is None or c.time_limit > 0, "time_limit", "must be > 0 seconds")
    need(c.workers is None or 0 <= c.workers <= MAX_WORKERS, "workers",
         f"must be >= 0 and <= {MAX_WORKERS}")
    need(c.address is None or c.address.strip() != "", "address", "must be HOST:PORT or 'auto'")
    for key in ("tasks", "held_out_tasks", "start", "ops"):
        value = getattr(c, key)
        need(value is None or len(set(value)) == len(value), key, "must not repeat a name")
        need(value is None or all(v.strip() == v and v for v in value), key,
             "must hold non-empty names")
    need(c.tasks is None or len(c.tasks) > 0, "tasks", "must name at least one task")
    for key in ("eval_seeds", "held_out_seeds", "promotion_seeds"):
        seeds = getattr(c, key)
        least = 0 if key == "promotion_seeds" else 1
        need(least <= len(seeds) <= MAX_SEEDS and len(set(seeds)) == len(seeds), key,
             f"must hold between {least} and {MAX_SEEDS} seeds, none twice")
        need(all(0 <= s < 2**31 for s in seeds), key, "must be seeds between 0 and 2**31 - 1")
    if c.promotion_seeds:
        need(len(c.promotion_seeds) >= 2, "promotion_seeds",
             "must hold at least two seeds (its interval needs them), or none")
        need(not set(c.promotion_seeds) & set(c.held_out_seeds), "promotion_seeds",
             "must be fresh seeds: none of held_out_seeds")
        need(c.held_out_tasks is None or len(c.held_out_tasks) > 0, "promotion_seeds",
             "needs held-out tasks (held_out_tasks is empty)")
    need(c.schedule in SCHEDULES, "schedule", f"must be one of {', '.join(SCHEDULES)}")
    need(1 <= c.lr_grid <= MAX_LR_GRID, "lr_grid", f"must be >= 1 and <= {MAX_LR_GRID}")
    need(len(c.start) > 0, "start", f"must name baselines or {START_SCRATCH!r}")
    need(c.ops is None or len(c.ops) > 0, "ops", "must name at least one op")
    need(2 <= c.max_statements <= MAX_STATEMENTS, "max_statements",
         f"must be between 2 and {MAX_STATEMENTS}")
    need(0 <= c.max_slots <= MAX_SLOTS, "max_slots", f"must be between 0 and {MAX_SLOTS}")
    need(c.mutation_weights is None or (all(w >= 0 for w in c.mutation_weights.values())
                                        and sum(c.mutation_weights.values()) > 0),
         "mutation_weights", "must be >= 0 with a positive sum")
    need(0 <= c.wired_slot_probability <= 1, "wired_slot_probability", "must be in [0, 1]")
    need(1 <= c.population_size <= MAX_POPULATION, "population_size",
         f"must be >= 1 and <= {MAX_POPULATION}")
    need(1 <= c.tournament_size <= c.population_size, "tournament_size",
         "must be between 1 and population_size")
    need(1 <= c.hall_of_fame_size <= MAX_POPULATION, "hall_of_fame_size",
         f"must be >= 1 and <= {MAX_POPULATION}")
    need(c.plateau_evals is None or c.plateau_evals >= 1, "plateau_evals", "must be >= 1")
    need(1 <= c.islands <= c.population_size // 2 or c.islands == 1, "islands",
         "must be 1, or at most population_size / 2 (two members an island)")
    need(c.migration_every is None or c.migration_every >= 1, "migration_every", "must be >= 1")
    need(1 <= c.migrants <= max(1, c.population_size // c.islands - 1), "migrants",
         "must be >= 1 and below the members of an island")
    need(c.reset_every is None or c.reset_every >= 1, "reset_every", "must be >= 1")
    need(c.adaptive_mutation_window is None or c.adaptive_mutation_window >= 1,
         "adaptive_mutation_window", "must be >= 1")
    need(c.hurdle_percentile is None or 0 < c.hurdle_percentile <= 100, "hurdle_percentile",
         "must be in (0, 100]")
    need(1 <= c.hurdle_window <= MAX_POPULATION, "hurdle_window",
         f"must be >= 1 and <= {MAX_POPULATION}")
    need(c.hurdle_audit_every is None or c.hurdle_audit_every >= 1, "hurdle_audit_every",
         "must be >= 1")
    need(c.held_out_margin is None or c.held_out_margin >= 0, "held_out_margin",
         "must be >= 0")
    need(0 <= c.final_check <= 20, "final_check", "must be between 0 and 20")
    need(c.final_check_min_evals >= 0, "final_check_min_evals", "must be >= 0")
    need(c.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
    need(c.progress_seconds >= 0, "progress_seconds", "must be >= 0")
    # Fault tolerance (discover/workers.py).
    need(c.eval_timeout is None or c.eval_timeout > 0, "eval_timeout", "must be > 0 seconds")
    need(c.worker_memory_mb is None or c.worker_memory_mb >= 256, "worker_memory_mb",
         "must be >= 256")


def check_names(config: CampaignConfig, *, ops: typing.Iterable[str],
                task_names: typing.Iterable[str], baselines: typing.Iterable[str],
                mutation_kinds: typing.Iterable[str] = ()) -> None:
    """Check the names a configuration refers to against the registries (UserError)."""
    ops, task_names, baselines = set(ops), set(task_names), set(baselines)
    for key, known in (("tasks", task_names), ("held_out_tasks", task_names), ("ops", ops),
                       ("start", baselines | {START_SCRATCH}),
                       ("mutation_weights", set(mutation_kinds))):
        for name in getattr(config, key) or ():
            # "module:factory" specs and variants ("kjv_gru_s.steps4x") are resolved later
            if name not in known and not (key.endswith("tasks") and (":" in name
                                                                    or "." in name)):
                raise UserError(f"{key!r}: unknown name {show(name)} (known: "
                                f"{', '.join(sorted(known))})")
    if START_SCRATCH in config.start and len(config.start) > 1:
        raise UserError(f"'start': {START_SCRATCH!r} cannot be combined with baselines")
    both = set(config.tasks or ()) & set(config.held_out_tasks or ())
    if both:
        raise UserError(f"'held_out_tasks': {show(min(both))} is also a search task")


def parse_list(text: str) -> tuple[str, ...]:
    """``"a,b, c"`` -> ``("a", "b", "c")``; empty items dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())
