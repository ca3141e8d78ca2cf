"""The tuned leaderboard: every baseline program on every task, as the search scores them.

Contract: :func:`compute` evaluates each baseline of ``programs.BASELINES`` (or the ones
named) with :class:`discover.evaluate.Evaluator` on the search and held-out tasks (or the
ones named), the learning rate tuned on the evaluator's grid; the scores are exactly those
of ``discover.evaluate`` for the same configuration (0 = tuned adam, 1 = untrained, lower is
better, ``WORST_SCORE`` when every learning rate diverged).  :class:`Leaderboard` renders
them as a text table or markdown: rows optimizers, columns tasks, then the mean score over
the search tasks and over the held-out tasks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

import programs
import tasks
from discover.evaluate import OK, TaskScore, cached_evaluator

NOT_OK_MARK = "*"


@dataclasses.dataclass(frozen=True)
class Leaderboard:
    """``scores[optimizer][task]`` for every optimizer and task named."""

    optimizers: tuple[str, ...]
    search_tasks: tuple[str, ...]
    held_out_tasks: tuple[str, ...]
    scores: dict[str, dict[str, TaskScore]]
    config: dict

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.search_tasks + self.held_out_tasks

    def mean(self, optimizer: str, task_names: Sequence[str]) -> float:
        """Mean score of ``optimizer`` over ``task_names`` (NaN for no task)."""
        values = [self.scores[optimizer][t].score for t in task_names]
        return float(np.mean(values)) if values else math.nan

    def rows(self) -> list[list[str]]:
        """Header then one row per optimizer, cells formatted."""
        header = ["optimizer", *self.tasks, "search mean", "held-out mean"]
        rows = [header]
        for name in self.optimizers:
            cells = [name]
            for t in self.tasks:
                s = self.scores[name][t]
                cells.append(f"{s.score:+.3f}" + ("" if s.status == OK else NOT_OK_MARK))
            for group in (self.search_tasks, self.held_out_tasks):
                m = self.mean(name, group)
                cells.append(f"{m:+.3f}" if math.isfinite(m) else "-")
            rows.append(cells)
        return rows

    def _legend(self) -> str:
        return (f"normalised validation loss, lr tuned on a {self.config['lr_grid']}-point grid "
                f"(seeds {self.config['seeds']}): 0 = tuned adam, 1 = untrained, lower is "
                f"better; {NOT_OK_MARK} = diverged at every learning rate (worst score)")

    def to_text(self) -> str:
        rows = self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines + ["", self._legend()]) + "\n"

    def to_markdown(self) -> str:
        rows = self.rows()
        lines = ["| " + " | ".join(rows[0]) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines + ["", self._legend()]) + "\n"

    def to_dict(self) -> dict:
        return {"optimizers": list(self.optimizers), "search_tasks": list(self.search_tasks),
                "held_out_tasks": list(self.held_out_tasks), "config": self.config,
                "scores": {o: {t: s.to_dict() for t, s in by_task.items()}
                           for o, by_task in self.scores.items()}}


def compute(baselines: Sequence[str] | None = None, task_names: Sequence[str] | None = None,
            *, seeds: Sequence[int] = (0,), lr_grid: int = 3) -> Leaderboard:
    """Score ``baselines`` (default: all of ``programs.BASELINES``) on ``task_names``
    (default: ``tasks.search_names() + tasks.held_out_names()``).  A name that is not a
    baseline or a task is a ``ValueError``."""
    names = list(programs.BASELINES) if baselines is None else list(baselines)
    unknown = [n for n in names if n not in programs.BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {', '.join(unknown)} "
                         f"(known: {', '.join(programs.BASELINES)})")
    if task_names is None:
        task_names = tasks.search_names() + tasks.held_out_names()
    resolved = [tasks.resolve(t) for t in task_names]
    chosen = [programs.BASELINES[n] for n in names]
    # One bucket for all: the default (shared with the search's compilations) or larger.
    evaluator = cached_evaluator(
        list(task_names), seeds=seeds, lr_grid=lr_grid,
        max_statements=max([32] + [len(p.body) for p in chosen]),
        max_slots=max([4] + [len(p.slots) for p in chosen]))
    scores = {n: evaluator.evaluate(p).by_task() for n, p in zip(names, chosen)}
    return Leaderboard(
        optimizers=tuple(names),
        search_tasks=tuple(t.name for t in resolved if not t.held_out),
        held_out_tasks=tuple(t.name for t in resolved if t.held_out),
        scores=scores, config=evaluator.config())
