"""``discover bench``: benchmark found optimizers against every tuned baseline."""

from __future__ import annotations

import argparse
import shlex
import sys

from discover.commands import (
    add_yardstick_options,
    program_path,
    schedule_option,
    yardstick_options,
)
from discover.config import parse_list
from discover.errors import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="benchmark programs (files or run directories) against tuned baselines",
        description="Tune each program's learning rate on every task of a suite on a wide "
                    "log grid, over several seeds, beside the baselines; write a markdown "
                    "and a CSV table with 95% intervals, a performance profile and the loss "
                    "against learning rate per task.  Results are cached by program, task, "
                    "rate and seed: an interrupted bench resumes.")
    p.add_argument("programs", nargs="*", metavar="PROGRAM_OR_RUN",
                   help="a program file (.opt) or a run directory (its best program)")
    p.add_argument("--tasks", metavar="a,b,...",
                   help="the suite: task names, or a tier (search, B, C) (default: tier C, "
                        "the largest held-out tasks)")
    add_yardstick_options(p)
    p.add_argument("--baselines", metavar="a,b,...",
                   help="baselines beside the programs (default: all; adam always)")
    p.add_argument("--out", default="bench", metavar="DIR",
                   help="where the tables, figures and cache go (default ./bench)")
    p.set_defaults(func=run)


def suite(text: str | None) -> list[str]:
    """``--tasks``: tier C when absent, a tier's tasks for a tier's name, else the named
    tasks (each resolved: a registered name or a ``package.module:factory`` spec)."""
    from discover.api import task_names_of

    if not text:
        return task_names_of("C")
    if "," not in text:
        return task_names_of(text)
    names = list(parse_list(text))
    if not names:
        raise UserError("--tasks names no task")
    return task_names_of(names)


def run(args: argparse.Namespace) -> int:
    import programs
    from discover import api
    from discover.scoring import bench

    contenders = {}
    for spec in args.programs:
        path, name = program_path(spec)
        if name in contenders:
            raise UserError(f"two programs are called {name!r}: rename one file")
        contenders[name] = api.check_runnable(programs.load(path), path)  # errors name the file
    baselines = list(parse_list(args.baselines)) if args.baselines else None
    seeds, lr_grid = yardstick_options(args)
    command = "discover bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    result = api.bench_programs(contenders, suite(args.tasks), seeds=seeds, out=args.out,
                       baselines=baselines, lr_grid=lr_grid, schedule=schedule_option(args),
                       progress=True, command=command if sys.argv[1:2] == ["bench"] else "")
    print(bench.markdown(result).split("Tuned learning rates:")[0].rstrip())
    print(f"\n{result.trained_windows} windows of rates trained, {result.cached_windows} "
          f"from the cache; written: {', '.join(result.paths)}")
    return 0
