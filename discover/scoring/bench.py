"""``discover bench``: the benchmark a user runs on a found optimizer, beside tuned baselines.

Contract:

* :func:`run` tunes every contender's learning rate on every task of the suite on the wide
  grid (``discover.scoring.tuning``, ``wide=True``) over the seeds given, with the compile-once engine
  (one compiled trainer per task, built only when a run is missing from the cache), and scores
  it as ``discover.scoring.evaluate`` does: per seed against tuned adam (always a contender), the mean
  over seeds per task, the median over tasks, a bootstrap interval against adam paired by seed
  (``discover.scoring.stats``); and, for each user program, its difference from every baseline with
  an interval.
* Every validation loss is cached in ``<out>/cache.json`` keyed by program fingerprint, task,
  rate and seed (``null``: the run diverged), written atomically after each window of rates:
  an interrupted bench resumes where it stopped, and a second bench of the same programs
  trains nothing.  A cache that is not this format is a :class:`~discover.errors.UserError`
  naming the file (nothing is overwritten).
* :func:`write_outputs` writes ``table.md``, ``table.csv``, ``results.json``,
  ``profile.png`` (performance profile in AlgoPerf's style: the share of tasks on which an
  optimizer's validation loss is within a factor tau of the best one's, tau from 1 to 4) and
  ``lr_curves.png`` (validation loss against learning rate, one panel per task).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

import programs
import tasks
from discover.atomic import (
    read_json,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from discover.errors import UserError
from discover.records import OK, TaskScore
from discover.scoring.evaluate import BASELINE, tuned_score
from discover.scoring.stats import aggregate, format_interval, interval, short_verdict, verdict
from discover.scoring.tuning import Tuning, mean_log_loss, rate, tune
from programs.program import Program
from tasks import schedule as schedules

CACHE_FILE = "cache.json"
CACHE_VERSION = 1
TAUS = np.linspace(1.0, 4.0, 301)
COMPARISON_LEGEND = ("Each program minus each tuned baseline (median over tasks of the mean "
                     "paired difference, 95% interval; negative is better):")


@dataclasses.dataclass(frozen=True)
class Contender:
    """A program benched: its ``name`` in the tables and whether the user brought it."""

    name: str
    program: Program
    user: bool = False


class Cache:
    """Validation losses by (fingerprint, task, rate, seed), and untrained losses by
    (task, seed), in one JSON file; :meth:`save` writes it atomically.  An entry is written
    once and never replaced (see :meth:`TaskEngine.tune`)."""

    def __init__(self, path: str):
        self.path = path
        self.losses: dict[str, float | None] = {}
        if os.path.exists(path):
            try:
                data = read_json(path)
            except (ValueError, OSError) as err:
                raise UserError(f"{path}: not a bench cache: {err}") from None
            if (not isinstance(data, dict) or data.get("version") != CACHE_VERSION
                    or not isinstance(data.get("losses"), dict)
                    or not all(v is None or isinstance(v, (int, float))
                               for v in data["losses"].values())):
                raise UserError(f"{path}: not a bench cache of version {CACHE_VERSION} "
                                f"(move it away to start again)")
            self.losses = dict(data["losses"])

    @staticmethod
    def key(fingerprint: str, task: str, lr: float, seed: int) -> str:
        return f"{fingerprint}|{task}|{lr:.6g}|{seed}"

    def save(self) -> None:
        write_json_atomic(self.path, {"version": CACHE_VERSION, "losses": self.losses})


@dataclasses.dataclass
class BenchResult:
    """Tunings and scores per contender and task, the reference (adam) per task."""

    contenders: list[Contender]
    tasks: list[str]
    seeds: tuple[int, ...]
    tunings: dict[str, dict[str, Tuning]]
    scores: dict[str, dict[str, TaskScore]]
    trained_windows: int = 0
    cached_windows: int = 0
    schedule: str = schedules.CONSTANT
    paths: list[str] = dataclasses.field(default_factory=list)  # what write_outputs wrote

    def median(self, name: str) -> float:
        return aggregate(self.scores[name][t].score for t in self.tasks)

    def differences(self, name: str, reference: str) -> list[np.ndarray]:
        return [np.asarray(self.scores[name][t].seed_scores)
                - np.asarray(self.scores[reference][t].seed_scores) for t in self.tasks]

    def interval(self, name: str, reference: str = BASELINE) -> tuple[float, float] | None:
        return interval(self.differences(name, reference))

    def difference(self, name: str, reference: str) -> float:
        return aggregate(float(np.mean(d)) for d in self.differences(name, reference))


class TaskEngine:
    """One task's compiled trainer (built on first need) and the cached runs through it
    (``cache``, or the one given to :meth:`tune`)."""

    def __init__(self, task_name: str, seeds: Sequence[int], width: int,
                 max_statements: int, max_slots: int, cache: Cache,
                 schedule: str = schedules.CONSTANT):
        self.task = tasks.resolve(task_name)
        self.seeds, self.width, self.cache = tuple(seeds), width, cache
        self.schedule = schedules.check(schedule)
        self.key_task = self.task.name + schedules.key_suffix(schedule)
        self.bucket = (max_statements, max_slots)
        self._trainer = None
        self.trained = self.cached = 0

    def trainer(self):
        if self._trainer is None:
            from tasks.train import Trainer

            self._trainer = Trainer(self.task, seeds=self.seeds, lr_grid_size=self.width,
                                    max_statements=self.bucket[0], max_slots=self.bucket[1],
                                    schedule=self.schedule)
        return self._trainer

    def initial_losses(self) -> np.ndarray:
        keys = [Cache.key("untrained", self.task.name, 0.0, s) for s in self.seeds]
        if not all(k in self.cache.losses for k in keys):
            for k, x in zip(keys, self.trainer().initial_valid_losses()):
                self.cache.losses.setdefault(k, float(x))
            self.cache.save()
        return np.array([self.cache.losses[k] for k in keys], np.float64)

    def tune(self, program: Program, cache: Cache | None = None) -> Tuning:
        """The wide tuning of ``program``, from the cache where it holds the runs."""
        fingerprint = program.fingerprint()
        encoded = []
        cache = self.cache if cache is None else cache

        def run_window(ks):
            lrs = [rate(self.task.default_lr, k) for k in ks]
            keys = [[Cache.key(fingerprint, self.key_task, lr, s) for s in self.seeds]
                    for lr in lrs]
            if all(k in cache.losses for row in keys for k in row):
                self.cached += 1
            else:
                if not encoded:
                    encoded.append(self.trainer().encode(program))
                result = self.trainer().run(encoded[0], lrs=np.array(lrs, np.float32))
                for row, values in zip(keys, result.valid_losses):
                    for k, x in zip(row, values):
                        # An entry already there is kept: a seed trained beside other seeds
                        # can differ in the last float32 places (the seeds are one batch),
                        # so the first value stays the one every later judgement reads.
                        cache.losses.setdefault(k, float(x) if math.isfinite(x) else None)
                cache.save()
                self.trained += 1
            return np.array([[math.nan if cache.losses[k] is None else cache.losses[k]
                              for k in row] for row in keys], np.float64)

        return tune(run_window, self.width, self.task.default_lr, wide=True)


def task_scores(task_name: str, tunings: dict[str, Tuning], initial_losses: np.ndarray
                ) -> dict[str, TaskScore]:
    """Each tuning's :class:`TaskScore` on ``task_name``: per seed against the tuning of
    ``BASELINE`` (which ``tunings`` must hold) and the untrained losses (one per seed), as
    ``discover.scoring.evaluate`` scores; a tuning where every rate diverged scores WORST_SCORE."""
    initial = float(np.exp(mean_log_loss(np.asarray(initial_losses, np.float64))))
    reference = float(np.exp(mean_log_loss(tunings[BASELINE].best_losses)))
    return {name: tuned_score(task_name, t, reference, initial, len(initial_losses))
            for name, t in tunings.items()}


def run(contenders: Sequence[Contender], task_names: Sequence[str], seeds: Sequence[int],
        out_dir: str, *, lr_grid: int = 3, schedule: str = schedules.CONSTANT,
        progress: Callable[[int, int, str], None] | None = None) -> BenchResult:
    """Tune and score every contender on every task (see the module docstring); adam is
    added as a contender when missing (it is the reference).  ``schedule``: every
    contender trains under it (``tasks.schedule``; cached apart from constant-rate runs).
    ``progress(done, total, label)`` is called before each (contender, task)."""
    contenders = list(contenders)
    if not any(c.name == BASELINE and not c.user for c in contenders):
        contenders.insert(0, Contender(BASELINE, programs.BASELINES[BASELINE]))
    names = [c.name for c in contenders]
    if len(set(names)) != len(names):
        raise UserError(f"two contenders share a name: {names}")
    os.makedirs(out_dir, exist_ok=True)
    cache = Cache(os.path.join(out_dir, CACHE_FILE))
    statements = max([32] + [len(c.program.body) for c in contenders])
    slots = max([4] + [len(c.program.slots) for c in contenders])
    result = BenchResult(contenders, list(task_names), tuple(seeds), {}, {},
                         schedule=schedules.check(schedule))
    total, done = len(contenders) * len(task_names), 0
    for task_name in task_names:
        engine = TaskEngine(task_name, seeds, lr_grid, statements, slots, cache, schedule)
        tunings = {}
        for c in contenders:
            if progress is not None:
                progress(done, total, f"{c.name} on {task_name}")
            tunings[c.name] = engine.tune(c.program)
            done += 1
        for name, score in task_scores(task_name, tunings, engine.initial_losses()).items():
            result.tunings.setdefault(name, {})[task_name] = tunings[name]
            result.scores.setdefault(name, {})[task_name] = score
        result.trained_windows += engine.trained
        result.cached_windows += engine.cached
    if progress is not None:
        progress(total, total, "done")
    return result


# -- outputs ------------------------------------------------------------------------------

def performance_profile(result: BenchResult) -> dict[str, np.ndarray]:
    """Per contender, the share of tasks (for each tau of :data:`TAUS`) on which its
    validation loss at the tuned rate (geometric mean over seeds, the scores' scale) is
    within a factor tau of the best contender's."""
    losses = np.exp(np.array([[mean_log_loss(result.tunings[c.name][t].best_losses)
                               for t in result.tasks] for c in result.contenders], np.float64))
    losses = np.where(np.isfinite(losses), losses, np.inf)
    best = losses.min(axis=0)
    ratios = losses / best
    return {c.name: (ratios[i][None, :] <= TAUS[:, None]).mean(axis=1)
            for i, c in enumerate(result.contenders)}


def _rows(result: BenchResult) -> list[list[str]]:
    rows = [["optimizer", *result.tasks, "median", "95% interval vs adam", "vs adam"]]
    for c in result.contenders:
        cells = [c.name + (" (yours)" if c.user else "")]
        for t in result.tasks:
            s = result.scores[c.name][t]
            cells.append(f"{s.score:+.3f}" + ("" if s.status == OK else "*")
                         + ("!" if s.at_limit else ""))
        bounds = result.interval(c.name)
        cells += [f"{result.median(c.name):+.3f}", format_interval(bounds) or "-",
                  "-" if c.name == BASELINE else verdict(bounds)]
        rows.append(cells)
    return rows


def _rate_rows(result: BenchResult) -> list[list[str]]:
    rows = [["optimizer", *result.tasks]]
    for c in result.contenders:
        rows.append([c.name] + [
            "-" if not math.isfinite(result.scores[c.name][t].lr) else
            f"{result.scores[c.name][t].lr:.2g}" + ("!" if result.scores[c.name][t].at_limit
                                                      else "")
            for t in result.tasks])
    return rows


def _comparison_rows(result: BenchResult) -> list[list[str]]:
    baselines = [c.name for c in result.contenders if not c.user]
    rows = [["program", *baselines]]
    for c in result.contenders:
        if c.user:
            cells = [c.name]
            for b in baselines:
                bounds = result.interval(c.name, b)  # a bootstrap: computed once per cell
                cells.append(f"{result.difference(c.name, b):+.3f} {format_interval(bounds)} "
                             f"{short_verdict(bounds)}")
            rows.append(cells)
    return rows


def _markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]]) + "\n"


def markdown(result: BenchResult, command: str = "") -> str:
    seeds = ",".join(map(str, result.seeds))
    text = ["# discover bench", ""]
    if command:
        text += [f"`{command}`", ""]
    legend = (f"Normalised validation loss (0 = tuned adam, 1 = untrained, lower is better), "
              f"mean over seeds {seeds}, each learning rate tuned per task on a wide log grid "
              f"(x0.01..x100 of the task's default, extended while the best is at an edge, to "
              f"x1e-5..x1e3); median over tasks; interval: 95% bootstrap over seeds of the "
              f"median difference, paired by seed; `*` diverged at every rate, `!` tuned rate "
              f"at the grid's limit.")
    if result.schedule != schedules.CONSTANT:
        legend += (f" Every contender trained under the `{result.schedule}` schedule of its "
                   f"rate (`tasks/schedule.py`); the tuned rate is the schedule's peak.")
    text += [legend, "", _markdown(_rows(result))]
    if any(c.user for c in result.contenders):
        text += [COMPARISON_LEGEND, "", _markdown(_comparison_rows(result))]
    text += ["Tuned learning rates:", "", _markdown(_rate_rows(result)),
             "![performance profile](profile.png)", "",
             "![loss against learning rate](lr_curves.png)", ""]
    return "\n".join(text)


def csv_text(result: BenchResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["optimizer", "task", "score", "interval_low", "interval_high", "lr",
                     "at_limit", "status", "valid_loss", "seed_scores"])
    for c in result.contenders:
        for t in result.tasks:
            s = result.scores[c.name][t]
            writer.writerow([c.name, t, f"{s.score:.6g}", "", "", f"{s.lr:.6g}",
                             int(s.at_limit), s.status, f"{s.loss:.6g}",
                             ";".join(f"{x:.6g}" for x in s.seed_scores)])
        bounds = result.interval(c.name)
        writer.writerow([c.name, "median", f"{result.median(c.name):.6g}",
                         "" if bounds is None else f"{bounds[0]:.6g}",
                         "" if bounds is None else f"{bounds[1]:.6g}", "", "", "", "", ""])
    return buffer.getvalue()


def to_json(result: BenchResult) -> dict:
    return {"tasks": result.tasks, "seeds": list(result.seeds), "schedule": result.schedule,
            "contenders": [{"name": c.name, "user": c.user, "program": str(c.program),
                            "median": result.median(c.name),
                            "interval": result.interval(c.name),
                            "scores": {t: s.to_dict() for t, s in result.scores[c.name].items()},
                            "tunings": {t: {"lrs": list(x.lrs),
                                            "valid_losses": [[None if not math.isfinite(v)
                                                              else v for v in row]
                                                             for row in x.losses.tolist()]}
                                        for t, x in result.tunings[c.name].items()}}
                           for c in result.contenders]}


def write_outputs(result: BenchResult, out_dir: str, command: str = "") -> list[str]:
    """Write the tables and figures; returns the paths written."""
    from discover import plots

    paths = {name: os.path.join(out_dir, name) for name in
             ("table.md", "table.csv", "results.json", "profile.png", "lr_curves.png")}
    write_text_atomic(paths["table.md"], markdown(result, command))
    write_text_atomic(paths["table.csv"], csv_text(result))
    write_text_atomic(paths["results.json"], json.dumps(to_json(result), indent=1) + "\n")
    write_bytes_atomic(paths["profile.png"], plots.profile_figure(
        TAUS, performance_profile(result), [c.name for c in result.contenders if c.user]))
    curves = {t: [(c.name, np.asarray(result.tunings[c.name][t].lrs),
                   _per_rate_mean(result.tunings[c.name][t].losses),
                   result.scores[c.name][t].lr, c.user) for c in result.contenders]
              for t in result.tasks}
    write_bytes_atomic(paths["lr_curves.png"], plots.lr_curves_figure(curves))
    return list(paths.values())


def _per_rate_mean(losses: np.ndarray) -> np.ndarray:
    """Mean validation loss over seeds per rate; NaN where a seed diverged."""
    finite = np.isfinite(losses).all(axis=1)
    return np.where(finite, np.where(np.isfinite(losses), losses, 0).mean(axis=1), np.nan)


def progress_bar(stream=None, width: int = 30, what: str = "bench"
                 ) -> Callable[[int, int, str], None]:
    """A progress callback drawing ``[####----] done/total label (elapsed; about N left)`` on
    ``stream`` (stderr); rewritten in place on a terminal, one line per step elsewhere.  The
    estimate is the mean time of the steps done so far times the steps left (steps that
    come from the cache are quick, so it errs long early in a resumed run)."""
    import time

    stream = stream if stream is not None else sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    started = time.monotonic()

    def show(done: int, total: int, label: str) -> None:
        filled = int(width * done / total) if total else width
        elapsed = time.monotonic() - started
        timing = f" ({_duration(elapsed)}"
        if 0 < done < total:
            timing += f"; about {_duration(elapsed / done * (total - done))} left"
        line = (f"{what} [{'#' * filled}{'-' * (width - filled)}] {done}/{total} {label}"
                f"{timing})")
        stream.write(("\r\x1b[K" + line + ("\n" if done == total else "")) if tty
                     else line + "\n")
        stream.flush()

    return show


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
