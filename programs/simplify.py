"""Simplification of a program that keeps what it computes.

Contract of :func:`simplify`: the result has the same name, parameters and number of outputs,
keeps the user's variable names (a statement is renamed ``NAME_1``, ``NAME_2``, ... only where
a rewrite would otherwise make it overwrite a value still needed), keeps the surviving
statements in their order, and is a fixed point (``simplify(simplify(p)) == simplify(p)``,
text included).  It computes the same float32 values as the input for every finite input, up
to the sign of zero (no op turns ``-0.0`` and ``0.0`` into different nonzero values: divisions
and ``log`` protect both the same way).

The simplifications:

* dead code: statements that do not reach an output, transitively, are removed;
* constant folding: a statement whose operands are all constants becomes a constant,
  computed with the op's own JAX definition in float32 (stored as the shortest decimal that
  reads back as that float32 value), substituted into its users;
* exact identities, for finite ``x`` (every op maps finite inputs to finite outputs):
  ``x * 1``, ``1 * x``, ``x / 1``, ``x + 0``, ``0 + x``, ``x - 0``, ``max(x, x)``,
  ``min(x, x)``, ``--x`` give ``x``; ``x * -1``, ``-1 * x``, ``x / -1``, ``0 - x`` give
  ``-x``; ``x * 0``, ``0 * x``, ``x - x`` give ``0``; ``abs(-x)``, ``abs(abs(x))`` give
  ``abs(x)``; ``sign(sign(x))`` gives ``sign(x)``; ``interp(a, b, 0)`` gives ``a``,
  ``interp(a, b, 1)`` gives ``b``, ``where(c, a, b)`` with a constant ``c`` gives ``a`` or
  ``b``, and ``where(c, a, a)`` gives ``a``: these last four only when the kept operand has
  the statement's shape (a scalar standing for a tensor would change a later reduction);
* common subexpressions: a statement applying the same op to the same values as an earlier
  one (operands in either order for ``+ * max min eq``) is replaced by it.

Constants are compared as float32, the precision programs run in.  An output that becomes a
constant ``c`` is produced by a last statement ``NAME = c * 1.0`` (outputs are names).

:func:`without_unread_slots` goes one step further and changes the header: it drops the
state slots whose values never reach the update, at any later step (a search leaves such
slots behind), so that the program is shown as the optimizer it is.
"""

from __future__ import annotations

import dataclasses
import functools
import keyword

import jax.numpy as jnp
import numpy as np

from programs.ops import CENTER, OPS, REDUCTION
from programs.statement import SCALAR_INPUTS, ProgramLike, Statement, live_statements


def _entry_reads(program: ProgramLike, names) -> set[str]:
    """Parameters whose values at entry the statements computing ``names`` read."""
    needed = set(names)
    for s in reversed(program.body):
        if s.target in needed:
            needed.discard(s.target)
            needed.update(s.names())
    return needed


def without_unread_slots(program: ProgramLike) -> ProgramLike:
    """``program`` without the state slots that never influence the update: a slot is kept
    when the update reads it, or a kept slot's next value does (transitively).  Dropped slots
    leave the header, the outputs and, with their statements, the body.  Every update is the
    same at every step (the slots dropped only fed each other)."""
    new_value = dict(zip(program.slots, program.outputs[1:]))
    kept: set[str] = set()
    frontier = _entry_reads(program, [program.update]) & set(program.slots)
    while frontier:
        kept |= frontier
        frontier = _entry_reads(program, [new_value[s] for s in frontier]) & set(
            program.slots) - kept
    if len(kept) == len(program.slots):
        return program
    slots = [s for s in program.slots if s in kept]
    params = tuple(p for p in program.params if p not in program.slots or p in kept)
    outputs = (program.update, *(new_value[s] for s in slots))
    trimmed = dataclasses.replace(program, params=params, outputs=outputs)
    return dataclasses.replace(trimmed, body=live_statements(trimmed)).checked()


HISTORY_INPUTS = frozenset({"g", "w"})
"""The inputs that differ from run to run: a slot that never reads them (transitively) holds
the same sequence in every run."""


def history_slots(program: ProgramLike) -> tuple[str, ...]:
    """The state slots of ``program`` that carry the history of the gradients or weights: a
    slot whose next value reads ``g`` or ``w``, or reads at entry a slot that does
    (transitively); returned in slot order.  The others hold a schedule, the same sequence in every run (a slot never
    written stays zeros; ``m = interp(lr, m, 0.9)`` is a warm-up of the rate; ``m = m + 1``
    counts steps).  Apply it to a simplified program (:func:`simplify`,
    :func:`without_unread_slots`) to ask what reaches the update."""
    new_value = dict(zip(program.slots, program.outputs[1:]))
    reads = {s: _entry_reads(program, [new_value[s]]) for s in program.slots}
    carrying: set[str] = set()
    grew = True
    while grew:
        grew = False
        for slot in program.slots:
            if slot not in carrying and reads[slot] & (HISTORY_INPUTS | carrying):
                carrying.add(slot)
                grew = True
    return tuple(s for s in program.slots if s in carrying)


@functools.lru_cache(maxsize=4096)  # eager JAX calls cost ~0.1 ms; searches repeat constants
def fold(op: str, args: tuple[float, ...]) -> float:
    """``op`` applied to constant operands with its JAX definition in float32, as the shortest
    Python float that reads back as the same float32 value."""
    value = np.float32(OPS[op].fn(*[jnp.float32(a) for a in args]))
    return _float32_constant(value)


def _float32_constant(value: np.float32) -> float:
    short = float(str(value))  # NumPy prints the shortest digits that identify the float32
    return short if np.float32(short) == value else float(value)


# -- values of the dataflow graph ---------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Param:
    name: str


@dataclasses.dataclass(frozen=True)
class _Const:
    value: float

    @property
    def f32(self) -> float:
        return float(np.float32(self.value))


@dataclasses.dataclass(frozen=True)
class _Node:
    index: int   # creation order


_Value = _Param | _Const | _Node


@dataclasses.dataclass
class _NodeInfo:
    op: str
    args: tuple[_Value, ...]
    origin: int          # position of the statement it comes from (len(body) + k: synthetic)
    target: str
    scalar: bool


class _Graph:
    """Forward pass building the simplified dataflow graph."""

    def __init__(self):
        self.nodes: list[_NodeInfo] = []
        self.cse: dict[tuple, _Node] = {}

    def is_scalar(self, v: _Value) -> bool:
        if isinstance(v, _Const):
            return True
        if isinstance(v, _Param):
            return v.name in SCALAR_INPUTS
        return self.nodes[v.index].scalar

    def result_scalar(self, op: str, args: tuple[_Value, ...]) -> bool:
        kind = OPS[op].kind
        if kind == REDUCTION:
            return True
        if kind == CENTER:
            return self.is_scalar(args[0])
        return all(self.is_scalar(a) for a in args)

    def node_of(self, v: _Value) -> _NodeInfo | None:
        return self.nodes[v.index] if isinstance(v, _Node) else None

    def apply(self, op: str, args: tuple[_Value, ...], origin: int, target: str) -> _Value:
        """The value of ``op(*args)`` after folding, identities and CSE."""
        if all(isinstance(a, _Const) for a in args):
            return _Const(fold(op, tuple(a.value for a in args)))
        rewritten = self._identity(op, args)
        if rewritten is not None:
            if isinstance(rewritten, tuple):
                return self.apply(rewritten[0], rewritten[1], origin, target)
            return rewritten
        key = self._key(op, args)
        if key in self.cse:
            return self.cse[key]
        node = _Node(len(self.nodes))
        self.nodes.append(_NodeInfo(op, args, origin, target, self.result_scalar(op, args)))
        self.cse[key] = node
        return node

    @staticmethod
    def _key(op: str, args: tuple[_Value, ...]) -> tuple:
        parts = tuple(("c", a.f32) if isinstance(a, _Const) else a for a in args)
        if OPS[op].commutative:
            parts = tuple(sorted(parts, key=repr))
        return (op,) + parts

    def _identity(self, op: str, args: tuple[_Value, ...]):
        """A simpler equivalent of ``op(*args)``: a value, ``(op, args)`` to apply, or None."""

        def const(v: _Value, c: float) -> bool:
            return isinstance(v, _Const) and v.f32 == c

        def inner(v: _Value, name: str) -> _Value | None:
            info = self.node_of(v)
            return info.args[0] if info is not None and info.op == name else None

        zero = _Const(0.0)
        if op == "mul":
            a, b = args
            for x, c in ((a, b), (b, a)):
                if const(c, 1.0):
                    return x
                if const(c, -1.0):
                    return ("neg", (x,))
                if const(c, 0.0):
                    return zero
        elif op == "div":
            a, b = args
            if const(b, 1.0):
                return a
            if const(b, -1.0):
                return ("neg", (a,))
        elif op == "add":
            a, b = args
            if const(b, 0.0):
                return a
            if const(a, 0.0):
                return b
        elif op == "sub":
            a, b = args
            if const(b, 0.0):
                return a
            if const(a, 0.0):
                return ("neg", (b,))
            if a == b:
                return zero
        elif op in ("max", "min"):
            if args[0] == args[1]:
                return args[0]
        elif op == "neg":
            x = inner(args[0], "neg")
            if x is not None:
                return x
        elif op == "abs":
            x = inner(args[0], "neg")
            if x is not None:
                return ("abs", (x,))
            if inner(args[0], "abs") is not None:
                return args[0]
        elif op == "sign":
            if inner(args[0], "sign") is not None:
                return args[0]
        elif op == "interp":
            a, b, c = args
            keep = a if const(c, 0.0) else b if const(c, 1.0) else None
            if keep is not None and self.is_scalar(keep) == self.result_scalar(op, args):
                return keep
        elif op == "where":
            c, a, b = args
            keep = None
            if isinstance(c, _Const):
                keep = a if c.f32 > 0 else b
            elif a == b:
                keep = a
            if keep is not None and self.is_scalar(keep) == self.result_scalar(op, args):
                return keep
        return None


def simplify(program: ProgramLike) -> ProgramLike:
    """The simplified program (see the module docstring for what is rewritten)."""
    graph = _Graph()
    env: dict[str, _Value] = {p: _Param(p) for p in program.params}
    for i, s in enumerate(program.body):
        args = tuple(env[a] if isinstance(a, str) else _Const(float(a)) for a in s.args)
        env[s.target] = graph.apply(s.op, args, i, s.target)
    outputs = [env[o] for o in program.outputs]
    # Outputs are names: each distinct constant output gets a last statement `NAME = c * 1.0`.
    constant_nodes: dict[_Const, _Node] = {}
    for k, (name, value) in enumerate(zip(program.outputs, list(outputs))):
        if isinstance(value, _Const):
            if value not in constant_nodes:
                constant_nodes[value] = _Node(len(graph.nodes))
                graph.nodes.append(_NodeInfo("mul", (value, _Const(1.0)),
                                             len(program.body) + k, name, True))
            outputs[k] = constant_nodes[value]
    return _emit(program, graph, outputs)


def _live_nodes(graph: _Graph, outputs: list[_Value]) -> list[int]:
    live: set[int] = set()
    stack = [v.index for v in outputs if isinstance(v, _Node)]
    while stack:
        i = stack.pop()
        if i in live:
            continue
        live.add(i)
        stack.extend(a.index for a in graph.nodes[i].args if isinstance(a, _Node))
    return sorted(live, key=lambda i: (graph.nodes[i].origin, i))


def _emit(program: ProgramLike, graph: _Graph, outputs: list[_Value]) -> ProgramLike:
    """Statements for the live nodes, in program order, named after their statements."""
    order = _live_nodes(graph, outputs)
    last_use: dict[_Value, int] = {}
    for j, i in enumerate(order):
        for a in graph.nodes[i].args:
            if not isinstance(a, _Const):
                last_use[a] = j
    for v in outputs:
        last_use[v] = len(order)
    taken = set(program.params) | {s.target for s in program.body} | set(program.outputs)
    holder: dict[str, _Value] = {p: _Param(p) for p in program.params}
    name_of: dict[_Value, str] = {_Param(p): p for p in program.params}
    targets = [graph.nodes[i].target for i in order]
    output_name: dict[_Value, str] = {}
    for name, v in zip(program.outputs, outputs):
        output_name.setdefault(v, name)
    body = []
    for j, i in enumerate(order):
        info = graph.nodes[i]
        args = tuple(a.value if isinstance(a, _Const) else name_of[a] for a in info.args)
        # An output is named as the program returns it, unless a later statement has that
        # name; else the statement keeps its name, unless that overwrites a live value.
        candidates = [info.target]
        returned = output_name.get(_Node(i))
        if returned is not None and returned != info.target and returned not in targets[j + 1:]:
            candidates.insert(0, returned)
        for name in candidates:
            held = holder.get(name)
            if held is None or last_use.get(held, -1) <= j:
                break
        else:
            name = _fresh(info.target, taken)
        taken.add(name)
        holder[name] = _Node(i)
        name_of[_Node(i)] = name
        body.append(Statement(name, info.op, args))
    return dataclasses.replace(program, body=tuple(body),
                               outputs=tuple(name_of[v] for v in outputs)).checked()


def _fresh(base: str, taken: set[str]) -> str:
    k = 1
    while f"{base}_{k}" in taken or f"{base}_{k}" in OPS or keyword.iskeyword(f"{base}_{k}"):
        k += 1
    return f"{base}_{k}"

