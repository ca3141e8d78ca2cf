"""Score update programs on proxy tasks, as the search does: the compile-once engine.

Contract (the search, the workers and the CLI rely on it):

* ``Evaluator(task_names, *, seeds=(0,), lr_grid=3, wide=False, max_statements=32,
  max_slots=4, schedule="constant")`` compiles one training run per task (``tasks.train.Trainer``: the VM of
  ``programs.vm``, ``vmap`` over a window of ``lr_grid`` learning rates and the seeds) lazily or
  in ``warm_up()``; after that, ``evaluate(program)`` runs without any XLA compilation (the
  rates are an argument).  Task names are registered names or ``"package.module:factory"``
  specs (``tasks.resolve``); ``tasks.Task`` objects are accepted too.  Every run, adam's
  included, trains under ``schedule`` (``tasks.schedule``).  An unknown task is a
  ``ValueError`` from the constructor; a program that does not fit the bucket (statements,
  slots) is a ``ValueError`` from ``evaluate``.
* The rate is tuned per task by ``discover.scoring.tuning``: ``wide=True`` (comparisons) covers four
  decades and extends while the best rate is at an edge; ``wide=False`` (the search's fitness)
  walks from one window centred on the parent's rate (``starts``) or adam's, extending the
  same way.  Tuned adam, the normaliser, is always tuned wide, once per evaluator, or read
  from the disk cache of ``discover.scoring.baseline_cache`` (identical numbers, no training).
* ``evaluate(program) -> Evaluation`` (``discover.records``) never raises for a bad candidate.
  Per task and seed, ``score = tasks.normalized_score(loss at the chosen rate, adam's reference
  loss, the untrained loss)`` (references: geometric means over the seeds): 0 is tuned adam, 1
  the untrained model, lower is better, within ``[-WORST_SCORE, WORST_SCORE]``; the task's
  ``score`` is the mean over seeds (``seed_scores`` keeps each), ``loss`` the mean validation
  loss at the chosen ``lr``, ``at_limit`` flags a rate at the grid's limit.  Status ``"ok"``;
  ``"nonfinite"`` when every rate diverged (score ``WORST_SCORE``, loss and lr NaN);
  ``"error"`` when the run raised (same).  ``aggregate`` is the median over tasks
  (``discover.scoring.stats``); ``interval`` the bootstrap interval of the aggregate minus adam's,
  paired by seed (None with one seed); the evaluation's status is ``"ok"`` when at least one
  task is ``"ok"`` and none is ``"error"``, else ``"failed"``.  With a ``hurdle`` the first
  task decides whether the others run (``rejected`` when it does not pass; see ``evaluate``).
* ``evaluate(program, task_names, **kwargs)`` (module function, ``discover.scoring.evaluate``) uses
  one cached ``Evaluator`` per configuration.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import programs
import tasks
from discover.records import (
    ERROR,
    FAILED,
    NONFINITE,
    OK,
    REJECTED,
    REJECTED_SCORE,
    Evaluation,
    Hurdle,
    TaskScore,
)
from discover.scoring import baseline_cache
from discover.scoring.stats import aggregate, interval
from discover.scoring.tuning import Tuning, exponent, mean_log_loss, tune
from discover.scoring.tuning import rate as tuning_rate
from programs.program import Program
from programs.vm import encode
from tasks import schedule as schedules
from tasks.base import WORST_SCORE, Task, normalized_score
from tasks.train import RunResult, Trainer

log = logging.getLogger(__name__)

BASELINE = "adam"

WARM_UP_PROGRAM = programs.parse("def diverge(g, lr):\n    u = g * 1e30\n    u = u * 1e30\n"
                                 "    return u\n")
"""Run once per task by ``warm_up``: its update overflows, every run diverges at once."""


@dataclasses.dataclass(frozen=True)
class Baseline:
    """Tuned adam on one task (wide tuning, the evaluator's seeds): its ``tuning``, the
    reference loss ``loss`` (geometric mean over seeds at the chosen rate), the untrained
    ``initial_loss`` (geometric mean over seeds) and adam's own per-seed ``seed_scores`` (the
    other side of every paired comparison)."""

    tuning: Tuning
    loss: float
    initial_loss: float
    seed_scores: np.ndarray

    @property
    def lr(self) -> float:
        return self.tuning.lr

    @property
    def exponent(self) -> int:
        return self.tuning.exponents[self.tuning.best]


def best_of_grid(result: RunResult) -> tuple[float, float]:
    """``(loss, lr)``: the lowest mean-over-seeds validation loss of one grid of runs and its
    learning rate (the lowest such lr on a tie); ``(nan, nan)`` when every lr diverged."""
    per_lr = result.valid_losses.mean(axis=1)
    finite = np.isfinite(per_lr)
    if not finite.any():
        return math.nan, math.nan
    i = int(np.argmin(np.where(finite, per_lr, np.inf)))
    return float(per_lr[i]), float(result.lrs[i])


def seed_scores(losses: np.ndarray, reference: float, initial: float) -> np.ndarray:
    """Normalised score of each seed's validation loss (``tasks.normalized_score``)."""
    return np.array([normalized_score(float(x), reference, initial) for x in losses])


def tuned_score(task_name: str, tuning: Tuning, reference: float, initial: float,
                seeds: int) -> TaskScore:
    """The :class:`TaskScore` of a tuning on ``task_name`` against the reference loss (tuned
    adam's geometric mean over seeds) and the untrained model's: the one way the search, the
    funnel, ``eval`` and ``bench`` turn losses into a score.  A tuning where every rate
    diverged scores ``WORST_SCORE`` on every seed."""
    if tuning.best is None:
        return TaskScore(task_name, WORST_SCORE, math.nan, math.nan, NONFINITE,
                         (WORST_SCORE,) * seeds, windows=tuning.windows)
    per_seed = seed_scores(tuning.best_losses, reference, initial)
    return TaskScore(task_name, float(per_seed.mean()), float(tuning.best_losses.mean()),
                     tuning.lr, OK, tuple(float(x) for x in per_seed), tuning.at_limit,
                     tuning.windows)


def _resolve(task: str | Task) -> Task:
    return task if isinstance(task, Task) else tasks.resolve(task)


class Evaluator:
    """Scores programs on a fixed set of tasks; see the module docstring for the contract."""

    def __init__(self, task_names: Sequence[str | Task], *, seeds: Sequence[int] = (0,),
                 lr_grid: int = 3, wide: bool = False, max_statements: int = 32,
                 max_slots: int = 4, schedule: str = schedules.CONSTANT):
        if isinstance(task_names, (str, Task)):
            task_names = [task_names]
        self.tasks = [_resolve(t) for t in task_names]
        if not self.tasks:
            raise ValueError("an Evaluator needs at least one task")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate task names in {names}")
        self.task_names = tuple(names)
        self.seeds = tuple(int(s) for s in seeds)
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        if lr_grid < 1:
            raise ValueError(f"lr_grid must be at least 1, got {lr_grid}")
        self.lr_grid = int(lr_grid)
        self.wide = bool(wide)
        self.max_statements = int(max_statements)
        self.max_slots = int(max_slots)
        self.schedule = schedules.check(schedule)
        self._trainers: dict[tuple[str, int, int], Trainer] = {}
        self._baselines: dict[str, Baseline] = {}

    def config(self) -> dict[str, Any]:
        """The configuration (JSON-safe): what makes two evaluators give the same scores."""
        config = {"tasks": list(self.task_names), "seeds": list(self.seeds),
                  "lr_grid": self.lr_grid, "tuning": "wide" if self.wide else "walk",
                  "max_statements": self.max_statements, "max_slots": self.max_slots}
        if self.schedule != schedules.CONSTANT:
            config["schedule"] = self.schedule
        return config

    def warm_key(self, task_name: str) -> str:
        """Text naming what :meth:`warm_task` compiles and tunes for ``task_name``: equal in
        two processes exactly when they would compile the same runs (the configuration, the
        sources and the JAX version), for ``discover.search.warm_claims``."""
        import jax

        from programs import export_cache

        config = {k: v for k, v in self.config().items() if k != "tasks"}
        return repr((task_name, config, jax.__version__, export_cache.sources_digest()))

    def trainer(self, task_name: str, program: Program | None = None) -> Trainer:
        """The compiled training run of one task (built on first use) in the evaluator's
        bucket, or in a bucket big enough for ``program`` (adam, when the bucket is small)."""
        statements, slots = self.max_statements, self.max_slots
        if program is not None:
            statements = max(statements, len(program.body))
            slots = max(slots, len(program.slots))
        key = (task_name, statements, slots)
        if key not in self._trainers:
            task = self.tasks[self.task_names.index(task_name)]
            self._trainers[key] = Trainer(task, seeds=self.seeds, lr_grid_size=self.lr_grid,
                                          max_statements=statements, max_slots=slots,
                                          schedule=self.schedule)
        return self._trainers[key]

    def tune(self, program: Program, task_name: str, *, wide: bool | None = None,
             start: int | None = None) -> Tuning:
        """Tune ``program``'s rate on one task (``discover.scoring.tuning``): wide (default: the
        evaluator's mode) or a walk from exponent ``start`` (default: adam's rate)."""
        trainer = self.trainer(task_name, program)
        encoded = trainer.encode(program)
        default_lr = trainer.task.default_lr
        wide = self.wide if wide is None else wide
        if not wide and start is None:
            start = self.baseline(task_name).exponent

        def run_window(ks):
            lrs = [tuning_rate(default_lr, k) for k in ks]
            return trainer.run(encoded, lrs=np.array(lrs, np.float32)).valid_losses

        return tune(run_window, self.lr_grid, default_lr, wide=wide, start=start or 0)

    def baseline(self, task_name: str) -> Baseline:
        """Tuned adam on ``task_name`` (wide tuning, computed once, by the same engine).
        Raises ``RuntimeError`` if adam does not improve on the untrained model: the task is
        broken, which is not a candidate's failure."""
        if task_name not in self._baselines:
            adam = programs.BASELINES[BASELINE]
            trainer = self.trainer(task_name, adam)
            initial_losses = trainer.initial_valid_losses()
            key = baseline_cache.key(trainer.task, self.seeds, self.lr_grid, str(adam),
                                     initial_losses, self.schedule)
            tuning = baseline_cache.load(key)
            if tuning is None:
                tuning = self.tune(adam, task_name, wide=True)
                baseline_cache.store(key, tuning)
            initial = float(np.exp(mean_log_loss(initial_losses)))
            loss = float(np.exp(mean_log_loss(tuning.best_losses)))
            if not (math.isfinite(loss) and loss < initial):
                raise RuntimeError(f"task {task_name!r}: tuned adam reaches {loss} from the "
                                   f"untrained {initial}; the task is broken")
            self._baselines[task_name] = Baseline(
                tuning, loss, initial, seed_scores(tuning.best_losses, loss, initial))
        return self._baselines[task_name]

    def warm_up(self) -> Evaluator:
        """Compile every task's run and compute the baselines now (else on first use); after
        it, evaluating a candidate compiles nothing."""
        for name in self.task_names:
            self.warm_task(name)
        return self

    def warm_task(self, task_name: str) -> None:
        """``warm_up`` for one task: adam's baseline, then the candidates' bucket compiled
        (adam may have run in its own, or not at all when it came from the disk cache) by a
        program that diverges at once, which stops the run after its first chunk of steps."""
        self.baseline(task_name)
        self.trainer(task_name).run(WARM_UP_PROGRAM)

    def run(self, program: Program, task_name: str, lrs=None) -> RunResult:
        """The raw runs of ``program`` on one task at ``lrs`` (default: the grid around the
        task's default rate; as many rates as ``lr_grid``), learning curves included."""
        return self.trainer(task_name, program).run(program, curves=True, lrs=lrs)

    def score_task(self, program: Program, task_name: str, *, start: int | None = None
                   ) -> TaskScore:
        """One task's :class:`TaskScore` (a run that raised is an ``error``, as data)."""
        baseline = self.baseline(task_name)
        failed = tuple([WORST_SCORE] * len(self.seeds))
        try:
            tuning = self.tune(program, task_name, start=start)
        except Exception as err:  # noqa: BLE001 (a candidate's failure is data)
            log.warning("evaluating %s on %s raised %s: %s", program.name, task_name,
                        type(err).__name__, err)
            return TaskScore(task_name, WORST_SCORE, math.nan, math.nan, ERROR, failed)
        return tuned_score(task_name, tuning, baseline.loss, baseline.initial_loss,
                           len(self.seeds))

    def evaluate(self, program: Program, *, starts: Mapping[str, float] | None = None,
                 hurdle: float | None = None, audit: bool = False) -> Evaluation:
        """Score ``program`` on every task (see the module docstring).  ``starts``: a rate
        per task where a walk starts (the parent's), instead of adam's.  ``hurdle``: the
        first task is a hurdle; a program whose score there is above it (or not ok) stops
        there, status ``rejected`` with ``REJECTED_SCORE``, unless ``audit`` (then every task
        is scored anyway); the evaluation's ``hurdle`` says what happened."""
        start_time = time.perf_counter()
        program.checked()  # ProgramError (a ValueError) if it is not a valid program
        encode(program, self.max_statements, self.max_slots)  # ValueError if it does not fit
        scores, met = [], None
        for name in self.task_names:
            default_lr = self.tasks[self.task_names.index(name)].default_lr
            start = exponent(default_lr, (starts or {}).get(name, math.nan))
            scores.append(self.score_task(program, name, start=start))
            if hurdle is not None and met is None:
                first = scores[0]
                met = Hurdle(name, first.score, hurdle,
                             first.status == OK and first.score <= hurdle, audit)
                if not met.passed and not audit:
                    return Evaluation((first,), REJECTED_SCORE, REJECTED,
                                      time.perf_counter() - start_time, hurdle=met)
        statuses = {s.status for s in scores}
        status = OK if OK in statuses and ERROR not in statuses else FAILED
        return Evaluation(tuple(scores), aggregate(s.score for s in scores), status,
                          time.perf_counter() - start_time, interval=self.interval(scores),
                          hurdle=met)

    def interval(self, scores: Sequence[TaskScore]) -> tuple[float, float] | None:
        """Bootstrap interval of the aggregate of (these scores - adam's), paired by seed."""
        differences = [np.asarray(s.seed_scores) - self.baseline(s.task).seed_scores
                       for s in scores]
        return interval(differences)


@functools.lru_cache(maxsize=16)
def _cached(task_names: tuple, seeds: tuple, lr_grid: int, wide: bool, max_statements: int,
            max_slots: int, schedule: str) -> Evaluator:
    return Evaluator(task_names, seeds=seeds, lr_grid=lr_grid, wide=wide,
                     max_statements=max_statements, max_slots=max_slots, schedule=schedule)


def cached_evaluator(task_names: Sequence[str | Task], *, seeds: Sequence[int] = (0,),
                     lr_grid: int = 3, wide: bool = False, max_statements: int = 32,
                     max_slots: int = 4, schedule: str = schedules.CONSTANT) -> Evaluator:
    """The process-wide ``Evaluator`` of this configuration (built once, then reused)."""
    if isinstance(task_names, (str, Task)):
        task_names = [task_names]
    return _cached(tuple(task_names), tuple(int(s) for s in seeds), int(lr_grid), bool(wide),
                   int(max_statements), int(max_slots), schedule)


def evaluate(program: Program, task_names: Sequence[str | Task], *, seeds: Sequence[int] = (0,),
             lr_grid: int = 3, wide: bool = False, max_statements: int = 32,
             max_slots: int = 4) -> Evaluation:
    """``Evaluator(task_names, ...).evaluate(program)`` with the evaluator cached per
    configuration (:func:`cached_evaluator`), so repeated calls compile nothing."""
    return cached_evaluator(task_names, seeds=seeds, lr_grid=lr_grid, wide=wide,
                            max_statements=max_statements, max_slots=max_slots
                            ).evaluate(program)
