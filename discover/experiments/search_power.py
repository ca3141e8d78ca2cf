"""Search power: how often a search configuration reaches a stated target, and how fast.

AutoML-Zero's way of judging a search feature: run K independent searches (seeds) with the
same budget from the same start, judge each against a target, and report the success rate
with its interval and the evaluations (and CPU seconds) to success.  ``scripts/bench_search.py``
is the command; this module is the library it drives.

Contract:

* A :class:`Target` names the start of the searches and what counts as success: a program that
  beats every one of its ``references`` (tuned baselines) by more than ``MIN_EFFECT`` beyond
  the 95% interval on the judge's tasks (``discover.scoring.stats.verdict``), and, when ``stateful``,
  keeps state that carries the gradients' history to its update (:func:`stateful`: after
  simplification, a slot read by the update whose recurrence reads ``g`` or ``w``, and a
  gradient or weight changed at one step changes a later update; a schedule of the rate,
  such as a warm-up slot, does not count, nor a slot read only where it cannot matter).
  Its ``exemplars`` (baselines of the class a success belongs to) are compared with every
  judged program, never required: :func:`bar_check` judges them by the target's rule, and
  :func:`parity_table` counts the searches whose judged program is not worse than one of
  them beyond ``MIN_EFFECT`` at 95% (non-inferiority).
* A :class:`Variant` is a set of :class:`~discover.config.CampaignConfig` changes (a feature
  on or off).  :func:`campaign_config` is the one configuration of a (target, variant, seed):
  serial evaluation in this process (``workers`` 0), no funnel (the search set alone), no
  time limit, ``max_evals`` the budget, and :data:`BENCH_BASE` (the benchmark's own base:
  no hurdle, as the campaign default was when the tables were measured; ``hurdles`` turns
  it on), so a change of the campaign defaults neither relabels a committed run nor
  refuses to resume it.
* :func:`search` runs one such campaign in ``<out>/runs/<target>/<variant>/seed<k>``, a real
  run directory: killed at any point it resumes where it stopped (``Campaign.open``); a
  finished one is left alone; one made with another configuration is a ``UserError`` (move
  it away), never overwritten.
* :class:`Judge` scores programs with the yardstick (``discover.scoring.bench``: every rate tuned on
  the wide grid, the judge's seeds, scores against tuned adam), every run cached in one
  ``discover.scoring.bench.Cache`` file, so a second judgement trains nothing.
* :func:`first_success` finds a run's first success among the programs that improved the
  run's best search score (in evaluation order; with ``stateful``, among stateful programs
  only).  It judges the last such program first: if it fails, the run failed (an earlier
  program scored worse on the search tasks); if it passes, a bisection finds the first that
  passes, assuming that success is monotone along the improvements (stated in the report:
  at most ``log2(n) + 1`` judgements a run instead of ``n``).
* :func:`summarize` gives per (target, variant) the success count, rate and its 95%
  Clopper-Pearson interval (``scipy.stats.binomtest``), and the median evaluations and CPU
  seconds (the evaluations' own ``seconds``) to success over the runs that succeeded.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from discover.config import START_SCRATCH, CampaignConfig
from discover.errors import UserError
from discover.records import OK, LogRecord
from discover.scoring.stats import MIN_EFFECT, aggregate, interval

RUNS_DIR = "runs"
FIRST_CHUNK = 50
"""Evaluations a CPU-budgeted search runs before it sizes the rest (``search_for_cpu``)."""
JUDGE_CACHE = "judge_cache.json"
JUDGE_BUCKET = (32, 4)
"""Statements and slots of the judge's compiled engine (every baseline and every program a
search may make, ``max_statements`` <= 32, fits)."""


@dataclasses.dataclass(frozen=True)
class Target:
    """Where the searches start and what a success is (see the module docstring)."""

    name: str
    start: tuple[str, ...]
    references: tuple[str, ...]
    stateful: bool
    description: str
    exemplars: tuple[str, ...] = ()
    """Baselines of the class a success belongs to, judged by the same rule (the bar check:
    can the target's own class meet it on the judge's tasks and seeds?)."""


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("momentum", (START_SCRATCH,), ("sgd", "signsgd"), True,
           "from `u = g * lr`: a program whose state carries the gradients' history (not a "
           "schedule) and that beats tuned sgd and tuned "
           "signsgd beyond the interval", ("momentum", "nesterov")),
    Target("adam", ("adam",), ("adam",), False,
           "from adam: a program that beats tuned adam beyond the interval", ("lookahead",)),
)}


@dataclasses.dataclass(frozen=True)
class Variant:
    """A search configuration: ``changes`` to the campaign configuration."""

    name: str
    changes: Mapping[str, object]
    description: str


BENCH_BASE: Mapping[str, object] = {"hurdle_percentile": None}
"""Settings every search of the benchmark starts from, before ``--base`` and the variant."""

VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("default", {}, "the campaign defaults without a hurdle (the benchmark's base)"),
    Variant("random", {"tournament_size": 1, "plateau_evals": None},
            "no selection (AutoML-Zero's random-search control): each parent is drawn "
            "uniformly from the population, and no restart from the best; same start, same "
            "budget"),
    Variant("population20", {"population_size": 20},
            "a population of 20 instead of 100 (stronger selection for small budgets)"),
    Variant("population20_tournament5", {"population_size": 20, "tournament_size": 5},
            "a population of 20 and tournaments of 5"),
    Variant("no_cache", {"fingerprint_cache": False},
            "no fingerprint cache: a child computing a known function is evaluated again, "
            "at the cost of an evaluation"),
    Variant("restarts", {"plateau_evals": 100},
            "restart from the best after 100 evaluations without improvement"),
    Variant("until_changed", {"mutate_until_changed": True},
            "a child with its parent's fingerprint is mutated again"),
    Variant("wired_slots", {"wired_slot_probability": 1.0},
            "a new state slot is read at once by a later reader of its recurrence's input"),
    Variant("structure", {"mutate_until_changed": True, "wired_slot_probability": 1.0,
                          "mutation_weights": {"slot": 1.0}},
            "structure first: until_changed, wired slots and the slot mutation at weight 1 "
            "(0.3 by default)"),
    Variant("resample", {"mutation_weights": {"resample": 1.0}},
            "constants are also resampled from the vocabulary (weight 1, as a perturbation)"),
    Variant("hurdles", {"hurdle_percentile": 25.0},
            "hurdle on the first search task at the 25th percentile of recent scores "
            "(AutoML-Zero's: about the best quarter goes on)"),
    Variant("hurdles50", {"hurdle_percentile": 50.0},
            "hurdle at the median of recent first-task scores"),
    Variant("adaptive", {"adaptive_mutation_window": 100},
            "mutation weights follow each kind's success over the last 100 children"),
    Variant("islands", {"islands": 4, "migration_every": 50, "reset_every": 200},
            "4 islands, ring migration of the best every 50 evaluations, the weaker half "
            "reset from the stronger every 200"),
)}


def campaign_config(target: Target, variant: Variant, seed: int, budget: int,
                    task_names: Sequence[str] | None = None,
                    base: Mapping[str, object] | None = None) -> CampaignConfig:
    """The configuration of one search of the benchmark (see the module docstring)."""
    config = CampaignConfig(
        name=f"{target.name}-{variant.name}-seed{seed}", seed=seed, max_evals=budget,
        time_limit=None, workers=0, tasks=None if task_names is None else tuple(task_names),
        held_out_tasks=(), start=target.start, progress_seconds=0.0)
    return config.replace(**{**BENCH_BASE, **dict(base or {}), **dict(variant.changes)})


def run_path(out_dir: str, target: str, variant: str, seed: int) -> str:
    return os.path.join(out_dir, RUNS_DIR, target, variant, f"seed{seed}")


_POOLS: dict = {}


def _pool(spec):
    """One serial pool per spec and process: its tasks compile once for all the searches a
    process runs."""
    from discover.search.pool import SerialPool

    if spec not in _POOLS:
        _POOLS[spec] = SerialPool(spec)
    return _POOLS[spec]


def search(path: str, config: CampaignConfig) -> int:
    """Run (or resume) the campaign of ``config`` in ``path`` to its budget; returns the
    evaluations logged.  A directory made with another configuration is a UserError."""
    from discover.atomic import read_json
    from discover.campaign import Campaign
    from discover.resolve import resolve_tasks
    from discover.rundir import CONFIG_FILE, load
    from discover.scoring import compile_cache
    from discover.search.pool import WorkerSpec

    config = resolve_tasks(config)
    compile_cache.enable()
    if os.path.exists(os.path.join(path, CONFIG_FILE)):
        # settings added since the run was made read as their defaults
        saved = CampaignConfig.from_saved(read_json(os.path.join(path, CONFIG_FILE))).to_dict()
        wanted = config.to_dict()
        differs = sorted(k for k in wanted if k != "max_evals" and saved.get(k) != wanted[k])
        if differs:
            raise UserError(f"{path}: made with another configuration ({', '.join(differs)} "
                            f"differ); move it away to run this one")
        done = len(load(path).log)
        if done >= config.max_evals:
            return done
        campaign = Campaign.open(path, max_evals=config.max_evals)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        campaign = Campaign.create(config, path)
    try:
        campaign.run(_pool(WorkerSpec.from_config(campaign.config)), progress=False)
    finally:
        campaign.close()
    return len(load(path).log)


def search_scores(config: CampaignConfig, names: Sequence[str]) -> dict[str, float]:
    """The search score of each named baseline as the searches of ``config`` score a program
    (their tasks, seeds and rate grid, tuning walks from adam's rates): the level a curve of
    best search score so far must pass, on the curve's own footing."""
    import programs
    from discover.resolve import resolve_tasks
    from discover.scoring import compile_cache
    from discover.search.pool import Job, WorkerSpec

    compile_cache.enable()
    pool = _pool(WorkerSpec.from_config(resolve_tasks(config)))
    out = {}
    for i, name in enumerate(names):
        pool.submit(Job(i, str(programs.BASELINES[name])))
        [(_, result)] = pool.wait()
        out[name] = float(result.search.aggregate)
    return out


# -- judging ----------------------------------------------------------------------------------

def stateful(program) -> bool:
    """Whether the history of the gradients (or weights) reaches the update, read and
    measured: after simplification, a slot that the update reads (transitively) carries it
    (``programs.simplify.history_slots``), and changing the gradient or the weights at one
    step changes a later update (``programs.impulse.history_reaches_update``).  A slot that
    holds a schedule (never written, or written from ``lr``, ``t`` and constants alone: a
    warm-up, a counter) is not state of the momentum class, nor is one that the update reads
    only where its value cannot matter (the condition of a ``where`` that is true at every
    step after the first)."""
    from programs.impulse import history_reaches_update
    from programs.simplify import history_slots, simplify, without_unread_slots

    simple = without_unread_slots(simplify(program))
    return len(history_slots(simple)) > 0 and history_reaches_update(simple)


def cpu_seconds_logged(path: str) -> tuple[int, float]:
    """The evaluations logged in run directory ``path`` and their summed seconds."""
    from discover.rundir import load

    log = load(path).log
    return len(log), float(sum(r.seconds for r in log))


def search_for_cpu(path: str, config: CampaignConfig, cpu_seconds: float) -> int:
    """Run (or resume) the campaign of ``config`` in ``path`` until its evaluations have
    taken ``cpu_seconds`` (summed per-evaluation seconds: one thread, so CPU time) or it
    reaches ``config.max_evals``; returns the evaluations logged.  The budget is reached in
    a few extensions of one search (``search`` to a larger budget continues it as if it
    had never stopped), each sized from the mean seconds an evaluation so far."""
    done = search(path, config.replace(max_evals=min(config.max_evals, FIRST_CHUNK)))
    while done < config.max_evals:
        done, used = cpu_seconds_logged(path)
        if used >= cpu_seconds:
            break
        more = math.ceil((cpu_seconds - used) / max(used / max(done, 1), 1e-3)) + 1
        done = search(path, config.replace(max_evals=min(config.max_evals, done + more)))
    return done


def within_cpu(log: Sequence[LogRecord], cpu_seconds: float | None) -> list[LogRecord]:
    """The records in evaluation (``seq``) order up to the last whose summed seconds are
    at most ``cpu_seconds`` (all of them when None)."""
    ordered = sorted(log, key=lambda r: r.seq)
    if cpu_seconds is None:
        return ordered
    total = np.cumsum([r.seconds for r in ordered])
    return ordered[:int(np.searchsorted(total, cpu_seconds, side="right"))]


@dataclasses.dataclass(frozen=True)
class Judgement:
    """A program against a target's references (and, for information, its exemplars): per
    baseline the median over tasks of the mean paired difference (program minus baseline,
    lower is better) and its 95% interval; ``success`` when every reference's interval has
    its upper end below ``-MIN_EFFECT`` (and the program is stateful where the target asks
    it)."""

    fingerprint: str
    differences: dict[str, float]
    intervals: dict[str, tuple[float, float] | None]
    stateful: bool
    success: bool

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Judge:
    """The yardstick on a fixed suite, engines compiled on first need, every run cached in
    ``cache_path`` (see the module docstring)."""

    def __init__(self, task_names: Sequence[str], seeds: Sequence[int], cache_path: str,
                 lr_grid: int = 3):
        from discover.scoring.bench import Cache, TaskEngine

        self.task_names, self.seeds = list(task_names), tuple(seeds)
        self.cache = Cache(cache_path)
        self.engines = {t: TaskEngine(t, self.seeds, lr_grid, *JUDGE_BUCKET, self.cache)
                        for t in self.task_names}
        self._seed_scores: dict[str, list[np.ndarray]] = {}
        self._at_limit: dict[str, list[str]] = {}

    def seed_scores(self, program) -> list[np.ndarray]:
        """Per task, the program's per-seed scores against tuned adam (wide tuning)."""
        import programs
        from discover.scoring.bench import task_scores
        from discover.scoring.evaluate import BASELINE

        fingerprint = program.fingerprint()
        if fingerprint not in self._seed_scores:
            out, limited = [], []
            for name, engine in self.engines.items():
                tunings = {BASELINE: engine.tune(programs.BASELINES[BASELINE]),
                           "program": engine.tune(program)}
                score = task_scores(name, tunings, engine.initial_losses())["program"]
                out.append(np.asarray(score.seed_scores, np.float64))
                limited += [name] if score.at_limit else []
            self._seed_scores[fingerprint], self._at_limit[fingerprint] = out, limited
        return self._seed_scores[fingerprint]

    def at_limit(self, program) -> list[str]:
        """The tasks where ``program``'s best rate is at the limit of the wide grid (the
        tuning could not bracket it, so its score there may be too pessimistic)."""
        self.seed_scores(program)
        return self._at_limit[program.fingerprint()]

    def judge(self, program, target: Target) -> Judgement:
        import programs

        mine = self.seed_scores(program)
        differences, intervals = {}, {}
        for name in (*target.references, *target.exemplars):
            theirs = self.seed_scores(programs.BASELINES[name])
            paired = [a - b for a, b in zip(mine, theirs)]
            differences[name] = aggregate(float(np.mean(d)) for d in paired)
            intervals[name] = interval(paired)
        live = stateful(program)
        beats = all(intervals[r] is not None and intervals[r][1] < -MIN_EFFECT
                    for r in target.references)
        return Judgement(program.fingerprint(), differences, intervals, live,
                         beats and (live or not target.stateful))


def improvements(log: Sequence[LogRecord], eligible: Callable[[LogRecord], bool]
                 ) -> list[tuple[int, LogRecord]]:
    """``(evaluations so far, record)`` for each record, in evaluation (``seq``) order, whose
    search score is better than every eligible record's before it (eligible, status OK)."""
    best, out = math.inf, []
    for count, record in enumerate(sorted(log, key=lambda r: r.seq), 1):
        if record.status == OK and record.search_score < best and eligible(record):
            best = record.search_score
            out.append((count, record))
    return out


def first_success(candidates: Sequence, passes: Callable[[object], bool]) -> int | None:
    """Index of the first candidate that passes, by the rule of the module docstring: the last
    is judged first (None if it fails), then a bisection (success assumed monotone)."""
    if not candidates or not passes(candidates[-1]):
        return None
    low, high = 0, len(candidates) - 1  # high passes; every index below low is taken to fail
    while low < high:
        middle = (low + high) // 2
        if passes(candidates[middle]):
            high = middle
        else:
            low = middle + 1
    return high


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """One search judged: its evaluations and CPU seconds, its best search score, and the
    first success (evaluations and CPU seconds up to it, its program), or none."""

    target: str
    variant: str
    seed: int
    evaluations: int
    cpu_seconds: float
    best_search_score: float
    success: bool
    evaluations_to_success: int | None
    cpu_seconds_to_success: float | None
    program: str | None
    judgement: dict | None
    judged: int
    best_is_stateful: bool = False
    counters: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def judge_run(path: str, target: Target, variant: str, seed: int, judge: Judge,
              cpu_seconds: float | None = None) -> RunOutcome:
    """Read the run directory ``path`` and judge it (see :func:`first_success`), on its
    evaluations within ``cpu_seconds`` if given (:func:`within_cpu`)."""
    import programs
    from discover.rundir import load

    files = load(path)
    log = within_cpu(files.log, cpu_seconds)
    parsed: dict[str, object] = {}

    def program(record: LogRecord):
        if record.program not in parsed:
            parsed[record.program] = programs.parse(record.program)
        return parsed[record.program]

    eligible = (lambda r: stateful(program(r))) if target.stateful else (lambda r: True)
    candidates = improvements(log, eligible)
    judgements: dict[str, Judgement] = {}

    def passes(candidate) -> bool:
        record = candidate[1]
        if record.fingerprint not in judgements:
            judgements[record.fingerprint] = judge.judge(program(record), target)
        return judgements[record.fingerprint].success

    index = first_success(candidates, passes)
    seconds = np.cumsum([r.seconds for r in log]) if log else np.zeros(0)
    ok = [r for r in log if r.status == OK]
    best = min(ok, key=lambda r: r.search_score) if ok else None
    common = {"target": target.name, "variant": variant, "seed": seed, "evaluations": len(log),
              "cpu_seconds": float(seconds[-1]) if len(seconds) else 0.0,
              "best_search_score": best.search_score if best else math.nan,
              "judged": len(judgements),
              "best_is_stateful": best is not None and stateful(program(best)),
              "counters": {k: v for k, v in files.counters.items() if isinstance(v, int)}}
    if index is None:
        last = candidates[-1][1] if candidates else None
        verdict = judgements.get(last.fingerprint) if last is not None else None
        return RunOutcome(**common, success=False, evaluations_to_success=None,
                          cpu_seconds_to_success=None,
                          program=last.program if last is not None else None,
                          judgement=verdict.to_dict() if verdict else None)
    count, record = candidates[index]
    return RunOutcome(**common, success=True, evaluations_to_success=count,
                      cpu_seconds_to_success=float(seconds[count - 1]), program=record.program,
                      judgement=judgements[record.fingerprint].to_dict())


def best_so_far(path: str, budget: int, cpu_seconds: float | None = None) -> np.ndarray:
    """The run's best search score after each of its first ``budget`` evaluations (NaN before
    the first that succeeded, and past the end of the log or of ``cpu_seconds``)."""
    from discover.rundir import load

    log = within_cpu(load(path).log, cpu_seconds)[:budget]
    out = np.full(budget, math.nan)
    best = math.inf
    for i, record in enumerate(log):
        if record.status == OK:
            best = min(best, record.search_score)
        out[i] = best if math.isfinite(best) else math.nan
    return out
