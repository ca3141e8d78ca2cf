"""``discover baselines``: list the baseline programs."""

from __future__ import annotations

import argparse

import programs
from discover.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("baselines", help="list the baseline programs, or evaluate them",
                       description="List the baseline programs of programs/library.")
    p.add_argument("--eval", action="store_true", help="train and score every baseline")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.eval:
        raise UserError("'discover baselines --eval' needs the evaluation engine (not built yet)")
    width = max(len(name) for name in programs.BASELINES)
    for name, program in programs.BASELINES.items():
        slots = ", ".join(program.slots) or "-"
        print(f"{name:<{width}}  {len(program.body):>3} statements  state: {slots}")
    return 0
