"""The program language: optimizers as small straight-line update programs.

Public API (contract, see docs/DESIGN.md): ``parse``, ``load``, ``Program``, ``ProgramError``,
``BASELINES``, ``as_optax``, ``export``, ``OPS``.
"""

from programs.errors import ProgramError
from programs.exporters import TARGETS as EXPORT_TARGETS
from programs.exporters import export
from programs.interpreter import ProgramState, as_optax, step_tensor
from programs.library import load_library
from programs.ops import OP_CODES, OP_NAMES, OPS, Op
from programs.parser import load, parse
from programs.program import INPUTS, Program, Statement

BASELINES: dict[str, Program] = load_library()



__all__ = [
    "BASELINES", "EXPORT_TARGETS", "INPUTS", "OPS", "OP_CODES", "OP_NAMES", "Op", "Program",
    "ProgramError", "ProgramState", "Statement", "as_optax", "export", "load", "parse",
    "step_tensor",
]
