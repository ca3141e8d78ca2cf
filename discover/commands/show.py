"""``discover show``: a program file's canonical, simplified text."""

from __future__ import annotations

import argparse

import programs


def register(sub) -> None:
    p = sub.add_parser("show", help="print a program's canonical, simplified text",
                       description="Parse PROGRAM_FILE (or RUN_DIR/best/program.opt) and "
                                   "print it simplified, canonical.")
    p.add_argument("program_file", metavar="PROGRAM_FILE_OR_RUN")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from discover.commands import program_path

    program = programs.load(program_path(args.program_file)[0])
    print(program.simplify(), end="")
    return 0
