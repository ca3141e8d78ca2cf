"""``discover baselines``: list the baseline programs, or score them (``--eval``)."""

from __future__ import annotations

import argparse
import pathlib

import programs
from discover.commands import add_yardstick_options, schedule_option, yardstick_options
from discover.errors import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "baselines", help="list the baseline programs, or evaluate them",
        description="List the baseline programs of programs/library; with --eval, train "
                    "every baseline on every task (learning rate tuned per task on a wide log "
                    "grid, over several seeds) and print the leaderboard of normalised scores "
                    "(0 = tuned adam, 1 = untrained) with intervals against adam and the "
                    "tuned rates.")
    p.add_argument("--eval", action="store_true", help="train and score every baseline")
    p.add_argument("--tasks", metavar="a,b,...",
                   help="tasks to score on (default: every search and held-out task)")
    p.add_argument("--baselines", metavar="a,b,...",
                   help="baselines to score (default: all)")
    add_yardstick_options(p)
    p.add_argument("--markdown", metavar="FILE", help="also write the table as markdown")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.eval:
        if args.tasks or args.markdown or args.baselines:
            raise UserError("--tasks, --baselines and --markdown need --eval")
        width = max(len(name) for name in programs.BASELINES)
        for name, program in programs.BASELINES.items():
            slots = ", ".join(program.slots) or "-"
            n = len(program.body)
            print(f"{name:<{width}}  {n:>3} statement{'' if n == 1 else 's'}  state: {slots}")
        return 0
    from discover.config import parse_list
    from discover.scoring.leaderboard import compute

    seeds, lr_grid = yardstick_options(args)
    schedule = schedule_option(args)
    from discover.scoring.bench import progress_bar

    names = parse_list(args.baselines) if args.baselines else list(programs.BASELINES)
    bar, done = progress_bar(what="baselines"), []

    def progress(name: str) -> None:
        bar(len(done), len(names), f"tuning {name} on every task")
        done.append(name)

    try:
        board = compute(names, parse_list(args.tasks) if args.tasks else None,
                        seeds=seeds, lr_grid=lr_grid, schedule=schedule, progress=progress)
    except ValueError as err:
        raise UserError(str(err)) from None
    bar(len(names), len(names), "done")
    print(board.to_text(), end="")
    if args.markdown:
        path = pathlib.Path(args.markdown)
        try:
            path.write_text(board.to_markdown(), encoding="utf-8")
        except OSError as err:
            raise UserError(f"cannot write {path}: {err}") from None
        print(f"markdown written to {path}")
    return 0
