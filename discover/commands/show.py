"""``discover show``: a program file's canonical, simplified text."""

from __future__ import annotations

import argparse

import programs


def register(sub) -> None:
    p = sub.add_parser("show", help="print a program file's canonical, simplified text",
                       description="Parse PROGRAM_FILE and print it simplified, canonical.")
    p.add_argument("program_file", metavar="PROGRAM_FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    program = programs.load(args.program_file)
    print(program.simplify(), end="")
    return 0
