"""Which saturations and denominator protections of a program are the identity.

Every op of :mod:`programs.ops` clips its result to the dtype's finite range and protects
denominators below ``TINY``.  For finite inputs (the ops table's contract) the clip is the
identity where the result provably cannot overflow, and the protection is the identity where
the denominator is provably at least ``TINY``; leaving those out changes no value in any float
dtype.  The rules are deliberately few; the export tests check them against the interpreter on
saturating inputs.

Contract: :func:`statement_facts` returns one :class:`StatementFacts` per statement.  Both the
reference interpreter (``programs.interpreter``) and the exporters leave out exactly the
saturations these facts call unneeded, so that under ``jax.jit`` the two build the same
arithmetic (XLA fuses ``a * b + c`` into one FMA unless a clip stands between: the same
graph, the same fusions, the same bits).  ``unit_interp`` marks ``interp(a, b, c)`` with a
constant ``0 <= c <= 1``, computed as ``saturate(a * (1 - c) + b * c)`` (neither product can
overflow).

A saturation is also left out, though not the identity, where nothing can see it: the value is
not returned and every statement that reads it does so at a blind position (``Op.blind``), where
``+-Inf`` and ``+-MAX`` give the same result (``sign``, ``tanh``, ops that clip that operand
first, ``where``'s condition): lion's ``sign(0.1 * g + 0.9 * m)``.

``stored`` marks the statement that writes a slot's new value (the one returned) when a later
statement reads it.  The interpreter and the optax exporter alike pass its result through
:func:`programs.ops.saturate_stored` (its saturation, if it needs one; the identity on the
finite values of the others, and in a fast export a select that saturates nothing): XLA's CPU
fusion copies an op of one operand (a clamp, abs, neg) into every reader, and with it the sum
or product under it, so the new value would be computed again in each reader (and, when the
caller donates the old state, the old value copied first); two selects it stores once.
"""

from __future__ import annotations

import dataclasses

from programs.ops import OPS, TINY
from programs.statement import ProgramLike


@dataclasses.dataclass(frozen=True)
class StatementFacts:
    """What one statement needs: ``saturate`` (clip the result), ``protect`` (guard the
    denominator, a name), ``unit_interp`` and ``stored`` (see the module docstring) and
    ``nonnegative`` (operand 0 is >= 0, so sqrt needs no abs)."""

    saturate: bool
    protect: bool
    unit_interp: bool
    nonnegative: bool
    stored: bool = False


def statement_facts(program: ProgramLike) -> tuple[StatementFacts, ...]:
    """The facts of every statement of ``program``, in order (see the module docstring)."""
    unit = {n: False for n in program.params}
    low: dict[str, float | None] = {n: None for n in program.params}
    low.update({n: 1.0 for n in ("t", "T") if n in program.params})
    stored = _stored_slot_writes(program)
    unread_overflow = _read_only_blind(program)
    out = []
    for i, s in enumerate(program.body):
        u = [unit[a] if isinstance(a, str) else abs(a) <= 1.0 for a in s.args]
        lo = [low[a] if isinstance(a, str) else a for a in s.args]
        saturate, protect = _needs(s.op, s.args, u, lo)
        saturate = saturate and i not in unread_overflow
        unit_interp = (s.op == "interp" and not isinstance(s.args[2], str)
                       and 0.0 <= s.args[2] <= 1.0)
        out.append(StatementFacts(saturate, protect, unit_interp,
                                  lo[0] is not None and lo[0] >= 0, i in stored))
        unit[s.target] = _unit(s.op, u)
        low[s.target] = _low(s.op, lo)
    return tuple(out)


def last_writes(program: ProgramLike) -> dict[str, int]:
    """Each name a statement assigns -> the index of its last assignment (the value that an
    output of that name returns)."""
    return {s.target: i for i, s in enumerate(program.body)}


def _read_only_blind(program: ProgramLike) -> set[int]:
    """Statements whose result is not returned and is read only at blind position (``Op.blind``)s:
    their saturation changes nothing downstream (lion's ``sign(interp(...))``)."""
    last = last_writes(program)
    returned = {last[name] for name in program.outputs if name in last}
    out = set()
    for i, s in enumerate(program.body):
        if i in returned:
            continue
        blind = True
        for later in program.body[i + 1:]:
            for position, a in enumerate(later.args):
                if a == s.target and position not in OPS[later.op].blind:
                    blind = False
            if later.target == s.target:  # rebound: later statements read another value
                break
        if blind:
            out.add(i)
    return out


def _stored_slot_writes(program: ProgramLike) -> set[int]:
    """Indices of the statements that write a slot's returned value read by a later one."""
    last = last_writes(program)
    out = set()
    for name in program.outputs[1:]:
        i = last.get(name)
        if i is not None and any(name in s.names() for s in program.body[i + 1:]):
            out.add(i)
    return out


def _needs(op, args, unit, low) -> tuple[bool, bool]:
    """(saturate, protect) for one statement; see the module docstring."""
    protect = False
    d = OPS[op].denominator
    if d is not None and isinstance(args[d], str):
        protect = not (low[d] is not None and low[d] >= 2 * TINY)
    if OPS[op].closed or OPS[op].self_saturating:
        return False, protect
    if op in ("add", "sub", "mul"):
        # |a * b| <= |a| and |a + b| <= MAX + 1 (rounds to MAX) when |b| <= 1
        return not (unit[0] or unit[1]), protect
    if op == "div":
        den = args[1]
        big_den = (abs(den) >= 1.0) if not isinstance(den, str) else (
            low[1] is not None and low[1] >= 1.0)
        return not big_den, protect
    return True, protect


def _unit(op, unit) -> bool:
    if OPS[op].unit:
        return True
    if op in ("abs", "neg", "relu", "sqrt", "max_abs"):
        return unit[0]
    if op in ("mul", "max", "min"):
        return unit[0] and unit[1]
    if op == "clip":
        return unit[0] or unit[1]
    if op == "where":
        return unit[1] and unit[2]
    return False


def _low(op, low) -> float | None:
    """A lower bound of the result, or None.  Sums and products of bounds are exact-real
    bounds; IEEE rounding is monotone, so the rounded result stays above the rounded bound."""
    if op == "add" and low[0] is not None and low[1] is not None:
        return low[0] + low[1]
    if op == "mul" and low[0] is not None and low[1] is not None and min(low) >= 0:
        return low[0] * low[1]
    if op == "max":
        known = [v for v in low if v is not None]
        return max(known) if known else None
    if op == "where" and low[1] is not None and low[2] is not None:
        return min(low[1], low[2])
    if op == "cosh":
        return 1.0
    if OPS[op].nonnegative:
        return 0.0
    return None
