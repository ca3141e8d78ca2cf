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
from discover.config import MAX_SLOTS, MAX_STATEMENTS, parse_list
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


def _contender(spec: str):
    import programs
    from discover.bench import Contender

    path, name = program_path(spec)
    program = programs.load(path)  # ProgramError names the file, line and problem
    if len(program.body) > MAX_STATEMENTS or len(program.slots) > MAX_SLOTS:
        raise UserError(f"{path}: {len(program.body)} statements and {len(program.slots)} "
                        f"state slots; at most {MAX_STATEMENTS} and {MAX_SLOTS} can be run")
    return Contender(name, program, user=True)


def suite(text: str | None) -> list[str]:
    """``--tasks``: tier C when absent, a tier's tasks for a tier's name, else the named
    tasks (each resolved: a registered name or a ``package.module:factory`` spec)."""
    import tasks

    if not text:
        return tasks.tier_c_names()
    if text in tasks.TIERS:
        return tasks.names(text)
    task_names = list(parse_list(text))
    if not task_names:
        raise UserError("--tasks names no task")
    for name in task_names:
        try:
            tasks.resolve(name)
        except ValueError as err:
            raise UserError(str(err)) from None
    return task_names


def run(args: argparse.Namespace) -> int:
    import programs
    from discover import bench

    contenders = [_contender(spec) for spec in args.programs]
    names = list(parse_list(args.baselines)) if args.baselines else list(programs.BASELINES)
    for name in names:
        if name not in programs.BASELINES:
            raise UserError(f"unknown baseline {name!r} (known: {', '.join(programs.BASELINES)})")
    taken = {c.name for c in contenders}
    for name in names:
        if name in taken:
            raise UserError(f"a program is called {name!r}, as a baseline: rename its file")
    contenders += [bench.Contender(n, programs.BASELINES[n]) for n in names]
    task_names = suite(args.tasks)
    seeds, lr_grid = yardstick_options(args)
    schedule = schedule_option(args)
    from discover import compile_cache

    compile_cache.enable()
    result = bench.run(contenders, task_names, seeds, args.out, lr_grid=lr_grid,
                       schedule=schedule, progress=bench.progress_bar())
    command = "discover bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    paths = bench.write_outputs(result, args.out, command if sys.argv[1:2] == ["bench"] else "")
    print(bench.markdown(result).split("Tuned learning rates:")[0].rstrip())
    print(f"\n{result.trained_windows} windows of rates trained, {result.cached_windows} "
          f"from the cache; written: {', '.join(paths)}")
    return 0
