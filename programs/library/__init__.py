"""The baseline programs, one ``NAME.opt`` file each (see ``programs.BASELINES``)."""

from __future__ import annotations

from importlib import resources

from programs.parser import parse
from programs.program import Program


def load_library() -> dict[str, Program]:
    """Parse every ``*.opt`` file of this package, keyed by file stem, sorted by name.

    Contract: the ``def`` name of each file equals its stem (checked here).
    """
    baselines: dict[str, Program] = {}
    files = sorted(resources.files(__name__).iterdir(), key=lambda f: f.name)
    for f in files:
        if not f.name.endswith(".opt"):
            continue
        stem = f.name[: -len(".opt")]
        program = parse(f.read_text(encoding="utf-8"), source=f.name)
        if program.name != stem:
            raise ValueError(f"{f.name}: program is named {program.name!r}, expected {stem!r}")
        baselines[stem] = program
    return baselines
