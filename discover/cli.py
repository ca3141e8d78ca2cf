"""The ``discover`` command line.

Contract (docs/DESIGN.md, "Command line"): every subcommand has ``--help``; an error prints one line
to stderr (no traceback unless ``--debug``) and exits non-zero.  Subcommands live one per
module in ``discover.commands`` and are found there by name.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import programs
from discover import commands
from discover.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="discover", description="Discover neural-network optimizers by symbolic search.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"discover.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, programs.ProgramError) as err:
        if args.debug:
            raise
        print(f"discover: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("discover: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `discover tasks | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
