"""Score update programs on proxy tasks, as the search does: the compile-once engine.

Contract (the search, the workers and the CLI rely on it):

* ``Evaluator(task_names, *, seeds=(0,), lr_grid=3, max_statements=32, max_slots=4)``
  compiles one training run per task (``tasks.train.Trainer``: the VM of ``programs.vm``,
  ``vmap`` over the learning-rate grid and the seeds) lazily or in ``warm_up()``; after that,
  ``evaluate(program)`` runs without any XLA compilation.  Task names are registered names or
  ``"package.module:factory"`` specs (``tasks.resolve``); ``tasks.Task`` objects are accepted
  too.  An unknown task is a ``ValueError`` from the constructor; a program that does not fit
  the bucket (statements, slots) is a ``ValueError`` from ``evaluate``.
* ``evaluate(program) -> Evaluation`` (``discover.records``) never raises for a bad candidate.  Per task: the
  validation loss of each learning rate is the mean over seeds (NaN if any seed diverged, see
  ``tasks.train``); ``loss`` is the best of the grid and ``lr`` where it was reached;
  ``score = tasks.normalized_score(loss, adam's best loss on the same grid and seeds, the
  untrained loss (mean over seeds))``: 0 is tuned adam, 1 the untrained model, lower is
  better, within ``[-WORST_SCORE, WORST_SCORE]``.  Status ``"ok"``; ``"nonfinite"`` when
  every learning rate diverged
  (score ``WORST_SCORE``, loss and lr NaN); ``"error"`` when the run raised (same).
  ``aggregate`` is the mean score over tasks; the evaluation's status is ``"ok"`` when at
  least one task is ``"ok"`` and none is ``"error"``, else ``"failed"``.
* Tuned adam (``programs.BASELINES["adam"]``) is run once per evaluator by the same engine.
* ``evaluate(program, task_names, **kwargs)`` (module function, ``discover.evaluate``) uses
  one cached ``Evaluator`` per configuration.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import programs
import tasks
from discover.records import ERROR, FAILED, NONFINITE, OK, Evaluation, TaskScore
from programs.program import Program
from programs.vm import encode
from tasks.base import WORST_SCORE, Task, normalized_score
from tasks.train import RunResult, Trainer

log = logging.getLogger(__name__)

BASELINE = "adam"


@dataclasses.dataclass(frozen=True)
class Baseline:
    """Tuned adam on one task: best validation loss, its learning rate, the untrained loss."""

    loss: float
    lr: float
    initial_loss: float


def best_of_grid(result: RunResult) -> tuple[float, float]:
    """``(loss, lr)``: the lowest mean-over-seeds validation loss of the grid and its
    learning rate (the lowest such lr on a tie); ``(nan, nan)`` when every lr diverged."""
    per_lr = result.valid_losses.mean(axis=1)
    finite = np.isfinite(per_lr)
    if not finite.any():
        return math.nan, math.nan
    i = int(np.argmin(np.where(finite, per_lr, np.inf)))
    return float(per_lr[i]), float(result.lrs[i])


def _resolve(task: str | Task) -> Task:
    return task if isinstance(task, Task) else tasks.resolve(task)


class Evaluator:
    """Scores programs on a fixed set of tasks; see the module docstring for the contract."""

    def __init__(self, task_names: Sequence[str | Task], *, seeds: Sequence[int] = (0,),
                 lr_grid: int = 3, max_statements: int = 32, max_slots: int = 4):
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
        self.max_statements = int(max_statements)
        self.max_slots = int(max_slots)
        self._trainers: dict[str, Trainer] = {}
        self._baselines: dict[str, Baseline] = {}

    def config(self) -> dict[str, Any]:
        """The configuration (JSON-safe): what makes two evaluators give the same scores."""
        return {"tasks": list(self.task_names), "seeds": list(self.seeds),
                "lr_grid": self.lr_grid, "max_statements": self.max_statements,
                "max_slots": self.max_slots}

    def trainer(self, task_name: str) -> Trainer:
        """The compiled training run of one task (built on first use)."""
        if task_name not in self._trainers:
            task = self.tasks[self.task_names.index(task_name)]
            self._trainers[task_name] = Trainer(
                task, seeds=self.seeds, lr_grid_size=self.lr_grid,
                max_statements=self.max_statements, max_slots=self.max_slots)
        return self._trainers[task_name]

    def baseline(self, task_name: str) -> Baseline:
        """Tuned adam on ``task_name`` (computed once, by the same engine).  Raises
        ``RuntimeError`` if adam does not improve on the untrained model: the task or the
        grid is broken, which is not a candidate's failure."""
        if task_name not in self._baselines:
            adam = programs.BASELINES[BASELINE]
            trainer = self.trainer(task_name)
            if len(adam.body) > self.max_statements or len(adam.slots) > self.max_slots:
                trainer = Trainer(trainer.task, seeds=self.seeds, lr_grid_size=self.lr_grid,
                                  max_statements=max(self.max_statements, len(adam.body)),
                                  max_slots=max(self.max_slots, len(adam.slots)))
            result = trainer.run(adam)
            loss, lr = best_of_grid(result)
            initial = float(np.mean(result.initial_valid_losses))
            if not (math.isfinite(loss) and loss < initial):
                raise RuntimeError(f"task {task_name!r}: tuned adam reaches {loss} from the "
                                   f"untrained {initial}; the task or the lr grid is broken")
            self._baselines[task_name] = Baseline(loss, lr, initial)
        return self._baselines[task_name]

    def warm_up(self) -> Evaluator:
        """Compile every task's run and compute the baselines now (else on first use); after
        it, evaluating a candidate compiles nothing."""
        adam = programs.BASELINES[BASELINE]
        fits = len(adam.body) <= self.max_statements and len(adam.slots) <= self.max_slots
        for name in self.task_names:
            self.baseline(name)
            if not fits:  # adam ran in a bucket of its own: compile the candidates' bucket
                self.trainer(name).run(programs.BASELINES["sgd"])
        return self

    def run(self, program: Program, task_name: str) -> RunResult:
        """The raw grid of runs of ``program`` on one task (learning curves included)."""
        return self.trainer(task_name).run(program, curves=True)

    def evaluate(self, program: Program) -> Evaluation:
        """Score ``program`` on every task (see the module docstring)."""
        start = time.perf_counter()
        program.checked()  # ProgramError (a ValueError) if it is not a valid program
        encode(program, self.max_statements, self.max_slots)  # ValueError if it does not fit
        scores = []
        for name in self.task_names:
            baseline = self.baseline(name)
            try:
                result = self.trainer(name).run(program)
            except Exception as err:  # noqa: BLE001 (a candidate's failure is data)
                log.warning("evaluating %s on %s raised %s: %s", program.name, name,
                            type(err).__name__, err)
                scores.append(TaskScore(name, WORST_SCORE, math.nan, math.nan, ERROR))
                continue
            loss, lr = best_of_grid(result)
            if math.isfinite(loss):
                score = normalized_score(loss, baseline.loss, baseline.initial_loss)
                scores.append(TaskScore(name, float(score), loss, lr, OK))
            else:
                scores.append(TaskScore(name, WORST_SCORE, math.nan, math.nan, NONFINITE))
        statuses = {s.status for s in scores}
        status = OK if OK in statuses and ERROR not in statuses else FAILED
        aggregate = float(np.mean([s.score for s in scores]))  # each clipped: finite
        return Evaluation(tuple(scores), aggregate, status, time.perf_counter() - start)


@functools.lru_cache(maxsize=16)
def _cached(task_names: tuple, seeds: tuple, lr_grid: int, max_statements: int,
            max_slots: int) -> Evaluator:
    return Evaluator(task_names, seeds=seeds, lr_grid=lr_grid, max_statements=max_statements,
                     max_slots=max_slots)


def cached_evaluator(task_names: Sequence[str | Task], *, seeds: Sequence[int] = (0,),
                     lr_grid: int = 3, max_statements: int = 32, max_slots: int = 4
                     ) -> Evaluator:
    """The process-wide ``Evaluator`` of this configuration (built once, then reused)."""
    if isinstance(task_names, (str, Task)):
        task_names = [task_names]
    return _cached(tuple(task_names), tuple(int(s) for s in seeds), int(lr_grid),
                   int(max_statements), int(max_slots))


def evaluate(program: Program, task_names: Sequence[str | Task], *, seeds: Sequence[int] = (0,),
             lr_grid: int = 3, max_statements: int = 32, max_slots: int = 4) -> Evaluation:
    """``Evaluator(task_names, ...).evaluate(program)`` with the evaluator cached per
    configuration (:func:`cached_evaluator`), so repeated calls compile nothing."""
    return cached_evaluator(task_names, seeds=seeds, lr_grid=lr_grid,
                            max_statements=max_statements, max_slots=max_slots
                            ).evaluate(program)
