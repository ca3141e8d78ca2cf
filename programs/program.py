"""The ``Program`` value: a straight-line update program in three-address form.

Contract:

* Parameters: the inputs ``w g lr t T`` (each optional) and state slots (every other
  parameter), in header order.  A slot is a tensor shaped like ``w``, zero at step 1.
* ``body`` is a tuple of :class:`Statement`; each applies one op of ``programs.ops.OPS`` to
  operands that are names (str) defined earlier or float constants.
* ``outputs`` names the update and then the new value of every slot, in header order.
* ``str(p)`` is the canonical text and ``parse(str(p)) == p``.
* Equality and hashing ignore the function's name and how temporaries are named: two programs
  are equal when they have the same parameters and the same dataflow graph, statement by
  statement.  ``fingerprint()`` is the coarser, functional equivalence.
"""

from __future__ import annotations

import dataclasses
import keyword
import math

from programs.errors import ProgramError
from programs.fingerprint import Probe
from programs.fingerprint import fingerprint as _fingerprint
from programs.ops import OPS
from programs.simplify import simplify as _simplify
from programs.simplify import without_unread_slots
from programs.statement import (  # noqa: F401 -- re-exported: part of this module's API
    INPUTS,
    Operand,
    Statement,
    format_constant,
    format_expression,
    format_operand,
    live_statements,
)


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    """An update program.  Build one with :func:`programs.parse` or :meth:`checked`."""

    name: str
    params: tuple[str, ...]
    body: tuple[Statement, ...]
    outputs: tuple[str, ...]

    # -- structure -------------------------------------------------------------------------
    @property
    def slots(self) -> tuple[str, ...]:
        """The state slots, in header order."""
        return tuple(p for p in self.params if p not in INPUTS)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The inputs (of ``w g lr t T``) the header names, in header order."""
        return tuple(p for p in self.params if p in INPUTS)

    @property
    def update(self) -> str:
        return self.outputs[0]

    def constants(self) -> tuple[float, ...]:
        """Every constant operand, in statement order."""
        return tuple(a for s in self.body for a in s.args if not isinstance(a, str))

    def replace(self, **changes) -> Program:
        """A copy with fields replaced, validated (raises ProgramError)."""
        return dataclasses.replace(self, **changes).checked()

    def checked(self) -> Program:
        """Return self after checking every structural rule; ProgramError names the problem.

        Statement ``i`` is reported as line ``i + 2`` (the header is line 1), which is where it
        stands in ``str(self)``.  A program that passed is remembered as such (it is
        immutable): the search checks each child more than once.
        """
        if self.__dict__.get("_checked"):
            return self
        if not self.name.isidentifier() or keyword.iskeyword(self.name):
            raise ProgramError(f"invalid program name {self.name!r}", 1, 1)
        seen: set[str] = set()
        for p in self.params:
            _check_name(p, 1, "parameter")
            if p in seen:
                raise ProgramError(f"duplicate parameter {p!r}", 1, 1)
            seen.add(p)
        defined = set(self.params)
        for i, s in enumerate(self.body):
            line = i + 2
            if s.op not in OPS:
                raise ProgramError(f"unknown op {s.op!r}", line, 1)
            if len(s.args) != OPS[s.op].arity:
                raise ProgramError(
                    f"{s.op} takes {OPS[s.op].arity} operand(s), got {len(s.args)}", line, 1)
            for a in s.args:
                if isinstance(a, str):
                    if a not in defined:
                        raise ProgramError(f"name {a!r} is used before it is assigned", line, 1)
                elif not isinstance(a, float) or not math.isfinite(a):
                    raise ProgramError(f"constant {a!r} is not a finite float", line, 1)
            _check_name(s.target, line, "assignment target")
            if s.target in INPUTS:
                raise ProgramError(f"cannot assign to the input {s.target!r}", line, 1)
            defined.add(s.target)
        line = len(self.body) + 2
        if len(self.outputs) != 1 + len(self.slots):
            raise ProgramError(
                f"return has {len(self.outputs)} value(s); expected the update and "
                f"{len(self.slots)} state slot(s) ({', '.join(self.slots) or 'none'})", line, 5)
        for o in self.outputs:
            if o not in defined:
                raise ProgramError(f"returned name {o!r} is not defined", line, 5)
        object.__setattr__(self, "_checked", True)
        return self

    # -- text ------------------------------------------------------------------------------
    def __str__(self) -> str:
        lines = [f"def {self.name}({', '.join(self.params)}):"]
        lines += [f"    {s.target} = {format_expression(s)}" for s in self.body]
        lines.append(f"    return {', '.join(self.outputs)}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"Program({str(self)!r})"

    # -- identity --------------------------------------------------------------------------
    def key(self) -> tuple:
        """Canonical dataflow form: names of temporaries replaced by statement indices
        (computed once: a program is immutable; equality and hashing read it)."""
        cached = self.__dict__.get("_key")
        if cached is None:
            cached = self._dataflow_key()
            object.__setattr__(self, "_key", cached)
        return cached

    def _dataflow_key(self) -> tuple:
        ref: dict[str, tuple] = {p: ("in", p) for p in self.params}

        def operand(a: Operand) -> tuple:
            return ref[a] if isinstance(a, str) else ("c", float(a))

        body = []
        for i, s in enumerate(self.body):
            body.append((s.op,) + tuple(operand(a) for a in s.args))
            ref[s.target] = ("s", i)
        return (self.params, tuple(body), tuple(ref[o] for o in self.outputs))

    def __eq__(self, other) -> bool:
        return isinstance(other, Program) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    # -- analyses (implemented in their own modules) ---------------------------------------
    def simplify(self) -> Program:
        """Dead code out, constant arithmetic folded (see ``programs.simplify``)."""
        return _simplify(self)

    def pruned(self) -> Program:
        """Simplified, and without the state slots that never reach the update (see
        ``programs.simplify.without_unread_slots``): the optimizer as a reader should see it."""
        return _simplify(without_unread_slots(self))

    def fingerprint(self, probed: Probe | None = None) -> str:
        """Functional-equivalence hash (see ``programs.fingerprint``); ``probed``: this
        program's ``programs.fingerprint.probe`` when the caller has it already."""
        return _fingerprint(self, probed)


def _check_name(name: str, line: int, what: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ProgramError(f"invalid {what} name {name!r}", line, 1)
    if name in OPS:
        raise ProgramError(f"{what} {name!r} has the name of an op", line, 1)
