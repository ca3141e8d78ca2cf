"""``discover eval``: score one program file against the tuned baselines."""

from __future__ import annotations

import argparse
import sys

from discover.commands import add_yardstick_options, schedule_option, yardstick_options
from discover.config import (
    MAX_SLOTS,
    MAX_STATEMENTS,
    parse_list,
)
from discover.errors import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="score a program file against the tuned baselines",
        description="Train every task with PROGRAM_FILE (learning rate tuned per task on a "
                    "wide log grid, several seeds) and print its normalised scores beside "
                    "those of baselines: 0 is tuned adam, 1 the untrained model, lower is "
                    "better; the median over tasks with its 95% interval against adam.")
    p.add_argument("program_file", metavar="PROGRAM_FILE")
    p.add_argument("--tasks", metavar="a,b,...",
                   help="tasks to score on (default: the search set and tier B)")
    p.add_argument("--baselines", default="adam,lion,sgd", metavar="a,b,...",
                   help="baselines to compare with (default adam,lion,sgd; '' for none)")
    add_yardstick_options(p)
    p.set_defaults(func=run)


EVAL_CACHE_ENV = "DISCOVER_EVAL_CACHE"


def run(args: argparse.Namespace) -> int:
    import time

    import programs
    import tasks
    from discover.scoring import bench
    from discover.scoring.cache_dirs import cache_directory
    from discover.scoring.stats import format_interval, signed, verdict

    started = time.monotonic()
    program = programs.load(args.program_file)
    # The bound of a campaign's configuration: a larger bucket would compile for minutes.
    if len(program.body) > MAX_STATEMENTS or len(program.slots) > MAX_SLOTS:
        raise UserError(f"{args.program_file}: {len(program.body)} statements and "
                        f"{len(program.slots)} state slots; at most {MAX_STATEMENTS} and "
                        f"{MAX_SLOTS} can be evaluated")
    task_names = (list(parse_list(args.tasks)) if args.tasks
                  else tasks.search_names() + tasks.held_out_names())
    for name in task_names:
        try:
            tasks.resolve(name)
        except ValueError as err:
            raise UserError(str(err)) from None
    compare = list(parse_list(args.baselines))
    for name in compare:
        if name not in programs.BASELINES:
            raise UserError(f"unknown baseline {name!r} (known: {', '.join(programs.BASELINES)})")
    seeds, lr_grid = yardstick_options(args)
    schedule = schedule_option(args)
    contenders = [bench.Contender("program", program, user=True)] + [
        bench.Contender(n, programs.BASELINES[n]) for n in compare]
    # Every run is kept in one cache (the bench's format and keys): an interrupted eval
    # resumes, a repeated one trains nothing, and a program evaluated before costs nothing.
    folder = cache_directory(EVAL_CACHE_ENV, "eval")
    if folder is None:
        import tempfile

        folder = tempfile.mkdtemp(prefix="discover-eval-")
    cached, total = _cached_tunings(contenders, task_names, seeds, folder, schedule)
    print(f"discover eval: {len(contenders)} program(s) x {len(task_names)} task(s) x "
          f"{len(seeds)} seed(s): {total - cached} of {total} rate tunings to train, "
          f"{cached} from the cache ({folder}); a search-set tuning takes seconds, a tier-B "
          f"one about a minute on one core", file=sys.stderr, flush=True)
    from discover.scoring import compile_cache

    compile_cache.enable()
    result = bench.run(contenders, task_names, seeds, folder, lr_grid=lr_grid,
                       schedule=schedule, progress=bench.progress_bar(what="eval"))
    names = ["program", *compare]
    width = max(len(t) for t in task_names + ["aggregate"])
    intervals = {n: format_interval(result.interval(n)) or "-" for n in names}
    column = max([10] + [len(n) for n in names] + [len(i) for i in intervals.values()])
    print(f"{'task':<{width}}  " + "  ".join(f"{n:>{column}}" for n in names)
          + "  lr (program)")
    for task in task_names:
        cells = "  ".join(f"{signed(result.scores[n][task].score):>{column}}" for n in names)
        mine = result.scores["program"][task]
        extra = f"  {mine.lr:.3g}" + (" (at the grid's limit)" if mine.at_limit else "") + (
            "" if mine.status == "ok" else f" ({mine.status})")
        print(f"{task:<{width}}  {cells}{extra}")
    print(f"{'median':<{width}}  " + "  ".join(f"{signed(result.median(n)):>{column}}"
                                                for n in names))
    print(f"{'interval':<{width}}  " + "  ".join(f"{intervals[n]:>{column}}" for n in names))
    bounds = result.interval("program")
    statuses = {result.scores["program"][t].status for t in task_names}
    status = "ok" if statuses == {"ok"} else ", ".join(sorted(statuses))
    print(f"program: median {signed(result.median('program'))} {format_interval(bounds)}: "
          f"{verdict(bounds)}; status {status}; {time.monotonic() - started:.2f} s "
          f"({result.trained_windows} windows trained, {result.cached_windows} cached)")
    print("scores: 0 = tuned adam, 1 = untrained, lower is better, mean over seeds "
          f"{','.join(map(str, seeds))}; median over tasks; interval: 95% bootstrap over "
          "seeds of the median minus adam's, paired by seed"
          + ("" if schedule == "constant" else f"; every program under the {schedule} "
             "schedule of its rate"))
    return 0


def _cached_tunings(contenders, task_names, seeds, folder: str, schedule: str
                    ) -> tuple[int, int]:
    """(tunings the cache holds a run of every seed for, at some rate; all tunings): what
    the eval will not have to train, roughly (a tuning may still extend its grid)."""
    import os

    from discover.scoring.bench import CACHE_FILE, Cache
    from tasks import schedule as schedules

    path = os.path.join(folder, CACHE_FILE)
    cache = Cache(path)
    total = len(contenders) * len(task_names)
    prefixes = set()
    for key in cache.losses:
        fingerprint, task, _, seed = key.split("|")
        prefixes.add((fingerprint, task, int(seed)))
    cached = sum(all((c.program.fingerprint(), t + schedules.key_suffix(schedule), s)
                     in prefixes for s in seeds) for c in contenders for t in task_names)
    return cached, total


