"""``discover export``: a program file, or a run's best program, as a standalone module.

``discover export PROGRAM_FILE_OR_RUN_DIR --to optax|torch|numpy [-o FILE] [--force]``

A run directory exports ``RUN_DIR/best/program.opt``, pruned (``Program.pruned``: simplified,
without state slots that never reach the update); its provenance (the run, and the search
and held-out scores of that program) comes from ``RUN_DIR/hall_of_fame.json`` when present: a
JSON list of entries, best first, each with ``program`` text and, when known,
``search_score`` and ``held_out_score`` (missing fields are left out).  Without ``-o`` the
module goes to stdout; with ``-o`` it is written atomically (a temporary file in the same
directory, then renamed), and an existing file is replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import programs
from discover.atomic import write_text_atomic
from discover.errors import UserError
from discover.reporting.export_source import load_source
from programs.exporters import TARGETS
from programs.exporters.layout import rate_factor, usage_rate


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="write a program, or a run's best program, as an optax/torch/numpy module",
        description="Export PROGRAM_FILE, or RUN_DIR/best/program.opt with its provenance, as "
                    "a standalone Python module that imports only its framework.")
    p.add_argument("source", metavar="PROGRAM_FILE_OR_RUN_DIR")
    p.add_argument("--to", required=True, choices=TARGETS, dest="target",
                   help="the framework of the module")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of to stdout")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.add_argument("--fast", action="store_true",
                   help="no saturation of results (an overflow gives Inf, as in the "
                        "libraries): the libraries' speed, the same numbers wherever nothing "
                        "overflows")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    program, provenance = load_source(Path(args.source))
    source = programs.export(program, args.target, fast=args.fast, **provenance)
    factor = rate_factor(provenance)
    if factor is not None:
        print(f"discover export: the search tuned this program's rate at about {factor:.3g}x "
              f"tuned adam's; the module's usage example starts from "
              f"{usage_rate(provenance)} (adam's 1e-3 x {factor:.3g})", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(source)
    else:
        write_atomically(Path(args.output), source, force=args.force)
    return 0


def write_atomically(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` through :mod:`discover.atomic`; never replace an existing
    file unless ``force`` (without it, the final step is a hard link, which fails if ``path``
    appeared in the meantime)."""
    if path.is_dir():
        raise UserError(f"{path} is a directory")
    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"no such directory: {parent}")
    try:
        write_text_atomic(str(path), text, replace=force)
    except FileExistsError:
        raise UserError(f"{path} exists; pass --force to replace it") from None
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror}") from None
