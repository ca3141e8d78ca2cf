"""How far apart two programs are in mutations: an edit distance over their statements.

Contract: :func:`edit_distance(a, b)` is the Levenshtein distance between the statement lists
of the two simplified programs (``programs.simplify.simplify``), a statement being its target
and its op applied to its operands, every name but the inputs and the state slots written as
``_`` (the simplifier numbers its temporaries, so an inserted statement would rename every
later one; and what a value is called does not change what the program computes).  Each mutation
of ``programs.mutate`` inserts, deletes or changes one statement, so the distance estimates
the fewest mutations from one program to the other.  It can overcount: a ``slot`` mutation
writes a recurrence as one ``interp`` statement where a program file may spell it in three,
and a ``constant`` or ``resample`` mutation may need several tries to hit a given value.
Symmetric, zero for programs that simplify to the same text.
"""

from __future__ import annotations

from programs.program import INPUTS, Program
from programs.simplify import simplify


def statement_keys(program: Program) -> list[str]:
    """The simplified program's statements as comparable strings (names other than inputs
    and slots anonymised)."""
    simple = simplify(program)
    kept = set(INPUTS) | set(simple.slots)
    show = lambda name: name if name in kept else "_"
    keys = []
    for s in simple.body:
        args = ", ".join(show(a) if isinstance(a, str) else repr(float(a)) for a in s.args)
        keys.append(f"{show(s.target)} = {s.op}({args})")
    return keys


def edit_distance(a: Program, b: Program) -> int:
    """Insertions, deletions and substitutions of statements from ``a`` to ``b``."""
    x, y = statement_keys(a), statement_keys(b)
    previous = list(range(len(y) + 1))
    for i, xi in enumerate(x, 1):
        current = [i]
        for j, yj in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (xi != yj)))
        previous = current
    return previous[-1]
