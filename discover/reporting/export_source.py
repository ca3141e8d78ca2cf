"""What ``discover export`` and :func:`discover.export` export: a program file as it is, or a
run directory's best program with its provenance.

A run directory exports ``RUN_DIR/best/program.opt``, pruned (``Program.pruned``: simplified,
without state slots that never reach the update); its provenance (the run, and the search and
held-out scores of that program) comes from ``RUN_DIR/hall_of_fame.json`` when present: a JSON
list of entries, best first, each with ``program`` text and, when known, ``search_score`` and
``held_out_score`` (missing fields are left out), and the rates from ``best/rates.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import programs
from discover.errors import UserError

BEST_PROGRAM = Path("best") / "program.opt"
HALL_OF_FAME = "hall_of_fame.json"
SCORES = ("search_score", "held_out_score")


def load_source(path: Path) -> tuple[programs.Program, dict]:
    """The program at ``path`` (a file or a run directory) and its provenance."""
    if path.is_dir():
        best = path / BEST_PROGRAM
        if not best.is_file():
            raise UserError(f"{path} is a directory without {BEST_PROGRAM}: not a run directory")
        program = programs.load(best)
        scores = run_scores(path / HALL_OF_FAME, program)
        # A run's best program is exported as the optimizer it is: simplified, and without
        # the state slots a search left behind that never reach the update.
        return program.pruned(), {"run": str(path), **scores, "rates": run_rates(path)}
    if not path.exists():
        raise UserError(f"no such program file or run directory: {path}")
    return programs.load(path), {"file": str(path)}


def run_scores(path: Path, program: programs.Program) -> dict:
    """Scores of ``program`` from a hall of fame file: its entry, else the first (the best)."""
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise UserError(f"cannot read {path} ({type(err).__name__}); export "
                        f"{path.parent / BEST_PROGRAM} to leave the scores out") from None
    if not isinstance(entries, list):
        raise UserError(f"{path} is not a JSON list of hall of fame entries")
    entries = [e for e in entries if isinstance(e, dict)]
    entry = next((e for e in entries if _same_program(e.get("program"), program)),
                 entries[0] if entries else {})
    scores = {}
    for key in SCORES:
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            scores[key] = float(value)
    return scores


def run_rates(path: Path) -> dict | None:
    """``best/rates.json`` of a run (per search task, [the best program's tuned rate, tuned
    adam's]) when it is there and well formed, else None (the module then says nothing of
    rates)."""
    try:
        data = json.loads((path / "best" / "rates.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not all(
            isinstance(v, list) and len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0
                    and math.isfinite(x) for x in v) for v in data.values()):
        return None
    return data


def _same_program(text, program: programs.Program) -> bool:
    if not isinstance(text, str):
        return False
    try:
        return programs.parse(text) == program
    except programs.ProgramError:
        return False
