"""The pieces a program is made of, and the analyses that need nothing but its dataflow.

Contract: :class:`Statement` is ``target = op(*args)`` (args: names or float constants);
``format_*`` give the canonical text of constants, operands and right-hand sides (what
``str(program)`` prints); :func:`live_statements` is the statements that reach an output.
:class:`ProgramLike` is the shape every analysis below ``programs.program`` accepts
(``programs.Program`` has it): the analyses (``bounds``, ``simplify``, ``vm``,
``fingerprint``) import this module, never ``programs.program``, so that ``Program`` can offer
them as methods without an import circle.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from programs.ops import OPS

INPUTS: tuple[str, ...] = ("w", "g", "lr", "t", "T")
SCALAR_INPUTS = frozenset({"lr", "t", "T"})
"""The inputs that are one number for every tensor (``w`` and ``g`` are tensors)."""
Operand = str | float


@dataclasses.dataclass(frozen=True)
class Statement:
    """``target = op(*args)``; args are names (str) or constants (float)."""

    target: str
    op: str
    args: tuple[Operand, ...]

    def names(self) -> tuple[str, ...]:
        """The names this statement reads, in order (constants left out)."""
        return tuple(a for a in self.args if isinstance(a, str))


def format_constant(value: float) -> str:
    """The shortest text that reads back as exactly ``value`` (``repr`` of the float)."""
    return repr(float(value))


def _is_negative_constant(operand: Operand) -> bool:
    return not isinstance(operand, str) and (operand < 0 or str(operand).startswith("-"))


def format_operand(operand: Operand) -> str:
    return operand if isinstance(operand, str) else format_constant(operand)


def format_expression(stmt: Statement) -> str:
    """The right-hand side of a statement, as canonical text."""
    op = OPS[stmt.op]
    args = [format_operand(a) for a in stmt.args]
    if op.symbol and op.arity == 2 and not (op.name == "power" and _is_negative_constant(stmt.args[0])):
        return f"{args[0]} {op.symbol} {args[1]}"
    if op.symbol and op.arity == 1 and isinstance(stmt.args[0], str):
        return f"{op.symbol}{args[0]}"
    return f"{op.name}({', '.join(args)})"



class ProgramLike(Protocol):
    """What the analyses read of a program (``programs.Program`` is one): ``name``,
    ``params`` (inputs of :data:`INPUTS` and state slots, in header order), ``body``,
    ``outputs`` (the update, then each slot's new value) and ``slots``."""

    name: str
    params: tuple[str, ...]
    body: tuple[Statement, ...]
    outputs: tuple[str, ...]

    @property
    def slots(self) -> tuple[str, ...]: ...

    def checked(self) -> ProgramLike: ...


def live_statements(program: ProgramLike) -> tuple[Statement, ...]:
    """The statements that reach an output (transitively), in program order."""
    needed = set(program.outputs)
    kept = []
    for s in reversed(program.body):
        if s.target in needed:
            kept.append(s)
            needed.discard(s.target)
            needed.update(s.names())
    return tuple(reversed(kept))
