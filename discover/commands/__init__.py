"""One module per ``discover`` subcommand.

Contract: each module defines ``register(subparsers)``, which adds its subparser with
``set_defaults(func=...)``; ``func(args) -> int`` is the exit status.  ``discover.cli`` finds
the modules here by name, so a new command needs no edit elsewhere.
"""

from __future__ import annotations

import argparse
import os

from discover.errors import UserError

BEST_PROGRAM = os.path.join("best", "program.opt")


def program_path(spec: str) -> tuple[str, str]:
    """``(path, name)`` of a program given as a file, or as a run directory (its
    ``best/program.opt``, named after the directory) or its ``best/`` folder; a ``UserError``
    naming ``spec`` when it is none of these (show, bench and export accept them all)."""
    beside = os.path.join(spec, os.path.basename(BEST_PROGRAM))
    if os.path.isdir(spec) and os.path.isfile(beside) and not os.path.isfile(
            os.path.join(spec, BEST_PROGRAM)):  # RUN_DIR/best itself
        return beside, os.path.basename(os.path.dirname(os.path.abspath(spec)))
    if os.path.isdir(spec):
        path = os.path.join(spec, BEST_PROGRAM)
        if not os.path.isfile(path):
            raise UserError(f"{spec}: a directory without {BEST_PROGRAM} (not a run directory "
                            f"with a best program)")
        return path, os.path.basename(os.path.normpath(spec))
    if not os.path.isfile(spec):
        raise UserError(f"{spec}: no such program file or run directory")
    return spec, os.path.splitext(os.path.basename(spec))[0]


def add_yardstick_options(parser: argparse.ArgumentParser) -> None:
    """``--seeds``, ``--lr-grid`` and ``--schedule`` of the commands that compare programs (eval, bench,
    baselines); :func:`yardstick_options` reads them back."""
    parser.add_argument("--seeds", default="0,1,2", metavar="0,1,...",
                        help="training seeds (default 0,1,2; the intervals need two or more)")
    parser.add_argument("--lr-grid", type=int, default=3, metavar="N",
                        help="learning rates per compiled window of the tuning (default 3)")
    parser.add_argument("--schedule", default="constant", metavar="NAME",
                        help="train every program, adam included, under this schedule of its "
                             "rate: constant (default) or warmup_cosine (linear warmup over a "
                             "tenth of the steps, cosine decay to 0); the tuned rate is the peak")


def yardstick_options(args: argparse.Namespace) -> tuple[tuple[int, ...], int]:
    """``(seeds, lr_grid)`` from :func:`add_yardstick_options`'s flags; a ``UserError`` saying
    which flag is wrong."""
    from discover.config import MAX_LR_GRID, MAX_SEEDS, parse_list
    from discover.errors import UserError

    try:
        seeds = tuple(int(s) for s in parse_list(args.seeds))
    except ValueError:
        raise UserError(f"--seeds must be integers separated by commas, got {args.seeds!r}")
    if not 0 < len(seeds) <= MAX_SEEDS or not all(0 <= s < 2**31 for s in seeds):
        raise UserError(f"--seeds must name 1 to {MAX_SEEDS} seeds between 0 and 2**31 - 1")
    if not 1 <= args.lr_grid <= MAX_LR_GRID:
        raise UserError(f"--lr-grid must be between 1 and {MAX_LR_GRID}, got {args.lr_grid}")
    return seeds, args.lr_grid


def schedule_option(args: argparse.Namespace) -> str:
    """``--schedule`` of :func:`add_yardstick_options`, checked (a ``UserError`` listing the
    schedules)."""
    from discover.config import SCHEDULES
    from discover.errors import UserError

    if args.schedule not in SCHEDULES:
        raise UserError(f"--schedule: unknown schedule {args.schedule!r}; schedules: "
                        f"{', '.join(SCHEDULES)}")
    return args.schedule
