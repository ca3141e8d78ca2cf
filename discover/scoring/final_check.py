"""A campaign's final check: its top programs benched on tier C, the funnel's precision.

A campaign crowns programs by its own fitness (the search score, then the funnel's held-out
score); whether they are wins that transfer is for a yardstick they were not chosen by.  The
final check benches the hall of fame's first ``n`` programs with ``discover bench``'s
yardstick (each rate tuned on the wide grid per task, seeds the campaign never trained on,
tier C by default, the campaign's schedule) and says of each whether it beats tuned adam
beyond the interval.  The share that do, among those the campaign crowned, is the funnel's
precision (``crowned`` below: the held-out interval against adam, or without a funnel the
search score, excludes 0 by ``discover.scoring.stats.MIN_EFFECT``; a start program, one of the
baselines the search began from, unchanged, is checked but never crowned: it is not a find).

Contract:

* :func:`run_check` writes ``<run_dir>/final_check/`` (the bench's ``cache.json``, tables and
  figures: an interrupted check resumes, a repeated one trains nothing) and returns a
  :class:`FinalCheck`; :meth:`FinalCheck.lines` is what the summary prints and
  ``final_check/check.json`` keeps for ``discover report``.
* :func:`due` says whether a campaign's configuration asks for it after ``evaluations``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence

from discover.scoring.stats import MIN_EFFECT, beats, format_interval, verdict

DIRECTORY = "final_check"
RESULT_FILE = "check.json"
SEEDS = (1, 2, 3)
"""Training seeds of the check: a campaign trains its search tasks on seed 0 by default."""


@dataclasses.dataclass(frozen=True)
class Checked:
    """One program of the check: its hall-of-fame ``rank``, whether the campaign ``crowned``
    it, its median ``difference`` from tuned adam over the check's tasks, the ``interval``
    and the ``verdict``; ``start``: the baseline's name when the program is a start program
    (unchanged), else None."""

    rank: int
    crowned: bool
    difference: float
    interval: tuple[float, float] | None
    verdict: str
    start: str | None = None


@dataclasses.dataclass(frozen=True)
class FinalCheck:
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    schedule: str
    programs: tuple[Checked, ...]

    @property
    def precision(self) -> tuple[int, int]:
        """(crowned programs that beat tuned adam here, crowned programs)."""
        crowned = [p for p in self.programs if p.crowned]
        return sum(p.verdict.startswith("beats") for p in crowned), len(crowned)

    def lines(self) -> list[str]:
        hits, crowned = self.precision
        out = [(f"final check ({', '.join(self.tasks)}; seeds "
               f"{','.join(map(str, self.seeds))}; {self.schedule} rate): of the "
               f"{crowned} crowned program(s) among the top {len(self.programs)}, {hits} beat "
               f"tuned adam")]
        for p in self.programs:
            label = (" (crowned)" if p.crowned else
                     f" (start program {p.start}, not a find)" if p.start else "")
            out.append(f"  rank {p.rank}{label}: "
                       f"{p.difference:+.4f} {format_interval(p.interval)}: {p.verdict}")
        return out

    def to_json(self) -> dict:
        return {"tasks": list(self.tasks), "seeds": list(self.seeds),
                "schedule": self.schedule,
                "programs": [dataclasses.asdict(p) for p in self.programs]}


def due(config, evaluations: int) -> bool:
    """Whether a campaign with ``config`` checks its top programs after ``evaluations``."""
    return config.final_check > 0 and evaluations >= config.final_check_min_evals


def start_name(entry) -> str | None:
    """The baseline a hall-of-fame entry is, when it is a start program the search did not
    change (its mutation is the start itself)."""
    if entry.mutation.get("kind") == "start":
        return str(entry.mutation.get("detail", "")) or "?"
    return None


def crowned(entry) -> bool:
    """The campaign's own claim for a hall-of-fame entry it found: its promotion interval
    against adam when it was promoted, else its held-out interval (or, without one, its
    search score), below ``-MIN_EFFECT``; never a start program."""
    if start_name(entry) is not None:
        return False
    if entry.promotion_score is not None:
        return beats(entry.promotion_interval)
    if entry.held_out_interval is not None:
        return beats(entry.held_out_interval)
    if entry.held_out_score is not None:
        return False  # one held-out seed: no claim
    return entry.search_score < -MIN_EFFECT


def run_check(run_dir: str, config, *, task_names: Sequence[str] | None = None,
              seeds: Sequence[int] = SEEDS,
              progress: Callable[[int, int, str], None] | None = None) -> FinalCheck | None:
    """Bench the first ``config.final_check`` programs of ``run_dir``'s hall of fame beside
    tuned adam on ``task_names`` (default tier C); None when the hall of fame is empty."""
    import programs
    import tasks
    from discover.atomic import read_json, write_json_atomic
    from discover.records import HallEntry
    from discover.scoring import bench

    entries = [HallEntry.from_json(e) for e in read_json(os.path.join(run_dir,
                                                                        "hall_of_fame.json"))]
    entries = entries[: config.final_check]
    if not entries:
        return None
    names = list(task_names) if task_names is not None else tasks.tier_c_names()
    contenders = [bench.Contender(f"rank{e.rank}", programs.parse(e.program), user=True)
                  for e in entries]
    out = os.path.join(run_dir, DIRECTORY)
    result = bench.run(contenders, names, tuple(seeds), out, schedule=config.schedule,
                       progress=progress)
    bench.write_outputs(result, out)
    checked = []
    for entry, contender in zip(entries, contenders):
        bounds = result.interval(contender.name)
        checked.append(Checked(entry.rank, crowned(entry),
                               result.difference(contender.name, "adam"), bounds,
                               verdict(bounds), start_name(entry)))
    check = FinalCheck(tuple(names), tuple(seeds), config.schedule, tuple(checked))
    write_json_atomic(os.path.join(out, RESULT_FILE), check.to_json())
    return check


def load(run_dir: str) -> FinalCheck | None:
    """The check saved in ``run_dir`` (None if there is none or it cannot be read)."""
    path = os.path.join(run_dir, DIRECTORY, RESULT_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return FinalCheck(tuple(data["tasks"]), tuple(data["seeds"]), data["schedule"],
                          tuple(Checked(p["rank"], p["crowned"], p["difference"],
                                        None if p["interval"] is None else tuple(p["interval"]),
                                        p["verdict"], p.get("start"))
                                for p in data["programs"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def after_campaign(run_dir: str, config, evaluations: int, stopped: str,
                   quiet: bool = False) -> list[str]:
    """The final check when it is :func:`due` and the run was not interrupted: announced on
    stderr with the bench's progress bar; returns the summary's lines (none when skipped)."""
    import sys

    from discover.scoring import bench

    if stopped == "interrupted" or not due(config, evaluations):
        return []
    if not quiet:
        print(f"discover: final check: the top {config.final_check} program(s) on tier C "
              f"beside tuned adam (seeds {','.join(map(str, SEEDS))}; cached in "
              f"{os.path.join(run_dir, DIRECTORY)}; 'final_check = 0' turns it off) ...",
              file=sys.stderr, flush=True)
    check = run_check(run_dir, config, progress=None if quiet else bench.progress_bar())
    return [] if check is None else check.lines()
