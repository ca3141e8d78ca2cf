"""``discover eval``: score one program file against the tuned baselines."""

from __future__ import annotations

import argparse

from discover.commands import add_yardstick_options, schedule_option, yardstick_options
from discover.config import (
    MAX_SLOTS,
    MAX_STATEMENTS,
    CampaignConfig,
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


def run(args: argparse.Namespace) -> int:
    import programs
    import tasks
    from discover.evaluate import cached_evaluator
    from discover.stats import format_interval, verdict

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
    candidates = [("program", program)] + [(n, programs.BASELINES[n]) for n in compare]
    # The campaign's default bucket unless a program needs more: the bucket changes the
    # compiled size, not the scores.
    defaults = CampaignConfig()
    evaluator = cached_evaluator(
        task_names, seeds=seeds, lr_grid=lr_grid, wide=True,
        max_statements=max(defaults.max_statements, *(len(p.body) for _, p in candidates)),
        max_slots=max(defaults.max_slots, *(len(p.slots) for _, p in candidates)),
        schedule=schedule)
    evaluator.warm_up()
    results = {name: evaluator.evaluate(p) for name, p in candidates}
    by_task = {name: _by_task(ev) for name, ev in results.items()}
    names = [name for name, _ in candidates]
    width = max(len(t) for t in task_names + ["aggregate"])
    intervals = {n: format_interval(results[n].interval) or "-" for n in names}
    column = max([10] + [len(n) for n in names] + [len(i) for i in intervals.values()])
    print(f"{'task':<{width}}  " + "  ".join(f"{n:>{column}}" for n in names)
          + "  lr (program)")
    for task in task_names:
        row = [by_task[n].get(task) for n in names]
        cells = "  ".join(f"{signed(s.score):>{column}}" if s else f"{'-':>{column}}"
                          for s in row)
        mine = by_task["program"].get(task)
        extra = f"  {mine.lr:.3g}" + (" (at the grid's limit)" if mine.at_limit else "") + (
            "" if mine.status == "ok" else f" ({mine.status})")
        print(f"{task:<{width}}  {cells}{extra if mine else ''}")
    print(f"{'median':<{width}}  " + "  ".join(f"{signed(results[n].aggregate):>{column}}"
                                                for n in names))
    print(f"{'interval':<{width}}  " + "  ".join(f"{intervals[n]:>{column}}" for n in names))
    mine = results["program"]
    print(f"program: median {signed(mine.aggregate)} {format_interval(mine.interval)}: "
          f"{verdict(mine.interval)}; status {mine.status}; {mine.seconds:.2f} s")
    print("scores: 0 = tuned adam, 1 = untrained, lower is better, mean over seeds "
          f"{','.join(map(str, seeds))}; median over tasks; interval: 95% bootstrap over "
          "seeds of the median minus adam's, paired by seed")
    return 0


def signed(x: float) -> str:
    """``x`` to four places with its sign, and a value that rounds to zero as ``+0.0000``
    (never ``-0.0000``)."""
    value = round(float(x), 4)
    return f"{value + 0.0 if value != 0 else 0.0:+.4f}"


def _by_task(evaluation) -> dict:
    scores = evaluation.scores
    items = scores.values() if isinstance(scores, dict) else scores
    return {s.task: s for s in items}
