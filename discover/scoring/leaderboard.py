"""The tuned leaderboard: every baseline program on every task, as comparisons score them.

Contract: :func:`compute` evaluates each baseline of ``programs.BASELINES`` (or the ones
named) with :class:`discover.scoring.evaluate.Evaluator` on the search and held-out tasks (or the
ones named), the learning rate tuned on the wide grid (``discover.scoring.tuning``) over the seeds
given (default 0, 1, 2); the scores are exactly those of ``discover.scoring.evaluate`` for the same
configuration (0 = tuned adam, 1 = untrained, lower is better, ``WORST_SCORE`` when every
learning rate diverged).  :class:`Leaderboard` renders them as a text table or markdown: rows
optimizers, columns tasks, then per group (search, held-out) the median over tasks, its
bootstrap interval against adam (paired by seed) and what it supports (``discover.scoring.stats``);
then the tuned learning rates, each flagged when it is at the grid's limit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import programs
import tasks
from discover.scoring.evaluate import OK, TaskScore, cached_evaluator
from discover.scoring.stats import aggregate, format_interval, short_verdict

NOT_OK_MARK = "*"
LIMIT_MARK = "!"


@dataclasses.dataclass(frozen=True)
class Leaderboard:
    """``scores[optimizer][task]`` for every optimizer and task named, and per optimizer and
    group of tasks the ``intervals`` against adam (None with one seed)."""

    optimizers: tuple[str, ...]
    search_tasks: tuple[str, ...]
    held_out_tasks: tuple[str, ...]
    scores: dict[str, dict[str, TaskScore]]
    config: dict
    intervals: dict[str, dict[str, tuple[float, float] | None]]

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.search_tasks + self.held_out_tasks

    def groups(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(g, t) for g, t in (("search", self.search_tasks),
                                    ("held-out", self.held_out_tasks)) if t]

    def median(self, optimizer: str, task_names: Sequence[str]) -> float:
        """Median score of ``optimizer`` over ``task_names`` (NaN for no task)."""
        return aggregate(self.scores[optimizer][t].score for t in task_names)

    def rows(self) -> list[list[str]]:
        """Header then one row per optimizer, cells formatted."""
        header = ["optimizer", *self.tasks]
        for group, _ in self.groups():
            header += [f"{group} median", "95% interval", "vs adam"]
        rows = [header]
        for name in self.optimizers:
            cells = [name]
            for t in self.tasks:
                s = self.scores[name][t]
                cells.append(f"{s.score:+.3f}" + ("" if s.status == OK else NOT_OK_MARK))
            for group, task_names in self.groups():
                bounds = self.intervals[name][group]
                cells += [f"{self.median(name, task_names):+.3f}",
                          format_interval(bounds) or "-",
                          "-" if name == "adam" else short_verdict(bounds)]
            rows.append(cells)
        return rows

    def rate_rows(self) -> list[list[str]]:
        """Header then the tuned learning rate of each optimizer on each task."""
        rows = [["optimizer", *self.tasks]]
        for name in self.optimizers:
            cells = [name]
            for t in self.tasks:
                s = self.scores[name][t]
                cells.append("-" if not math.isfinite(s.lr) else
                             f"{s.lr:.2g}" + (LIMIT_MARK if s.at_limit else ""))
            rows.append(cells)
        return rows

    def _legend(self) -> str:
        return (f"normalised validation loss, mean over seeds {self.config['seeds']}, the "
                f"learning rate tuned per task on a wide log grid (x0.01..x100 of the task's "
                f"default, extended while the best is at an edge, to x1e-5..x1e3): 0 = tuned "
                f"adam, 1 = untrained, lower is better; medians over tasks; intervals: 95% "
                f"bootstrap over seeds of the median minus adam's, paired by seed; "
                f"{NOT_OK_MARK} = diverged at every learning rate (worst score); "
                f"{LIMIT_MARK} = tuned rate at the grid's limit")

    @staticmethod
    def _text(rows: list[list[str]]) -> list[str]:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return lines

    @staticmethod
    def _markdown(rows: list[list[str]]) -> list[str]:
        lines = ["| " + " | ".join(rows[0]) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|"]
        return lines + ["| " + " | ".join(r) + " |" for r in rows[1:]]

    def to_text(self) -> str:
        return "\n".join(self._text(self.rows()) + ["", "tuned learning rates:"]
                         + self._text(self.rate_rows()) + ["", self._legend()]) + "\n"

    def to_markdown(self) -> str:
        return "\n".join(self._markdown(self.rows()) + ["", "Tuned learning rates:", ""]
                         + self._markdown(self.rate_rows()) + ["", self._legend()]) + "\n"

    def to_dict(self) -> dict:
        return {"optimizers": list(self.optimizers), "search_tasks": list(self.search_tasks),
                "held_out_tasks": list(self.held_out_tasks), "config": self.config,
                "scores": {o: {t: s.to_dict() for t, s in by_task.items()}
                           for o, by_task in self.scores.items()},
                "intervals": {o: {g: None if b is None else list(b) for g, b in by.items()}
                              for o, by in self.intervals.items()}}


def compute(baselines: Sequence[str] | None = None, task_names: Sequence[str] | None = None,
            *, seeds: Sequence[int] = (0, 1, 2), lr_grid: int = 3, schedule: str = "constant",
            progress: Callable[[str], None] | None = None) -> Leaderboard:
    """Score ``baselines`` (default: all of ``programs.BASELINES``) on ``task_names``
    (default: ``tasks.search_names() + tasks.held_out_names()``), rates tuned wide.  A name
    that is not a baseline or a task is a ``ValueError``.  Every baseline trains under
    ``schedule`` (``tasks.schedule``).  ``progress(name)`` is called
    before each baseline."""
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
        list(task_names), seeds=seeds, lr_grid=lr_grid, wide=True,
        max_statements=max([32] + [len(p.body) for p in chosen]),
        max_slots=max([4] + [len(p.slots) for p in chosen]), schedule=schedule)
    search = tuple(t.name for t in resolved if not t.held_out)
    held = tuple(t.name for t in resolved if t.held_out)
    scores, intervals = {}, {}
    for name, program in zip(names, chosen):
        if progress is not None:
            progress(name)
        scores[name] = evaluator.evaluate(program).by_task()
        intervals[name] = {group: evaluator.interval([scores[name][t] for t in group_tasks])
                           for group, group_tasks in (("search", search), ("held-out", held))
                           if group_tasks}
    return Leaderboard(optimizers=tuple(names), search_tasks=search, held_out_tasks=held,
                       scores=scores, config=evaluator.config(), intervals=intervals)
