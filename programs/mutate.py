"""Mutations of programs, driven by an explicit ``numpy.random.Generator``.

Contract: every primitive takes ``(program, rng, config)`` and returns a :class:`Mutation`.
Its ``program`` is a valid program (``Program.checked()``) with the parent's name, parameters
and number of outputs (``slot`` alone appends one slot parameter and its output, up to
``config.max_slots``), or ``None`` when the primitive cannot apply (its ``detail`` says why).
The same program, generator state and config give the same result in every process (choices
are made from ordered sequences only).  ``parse(str(child)) == child`` holds for every child.

The primitives (``kind``):

* ``insert``: a new statement ``target = op(operands)`` at a random position; operands are
  names defined there or, with probability ``constant_probability``, constants of
  ``config.constants`` (at least one operand is a name); the target is a new name
  (probability ``new_name_probability``) or a variable defined there, whose later readers
  then read the new value;
* ``delete``: a statement removed; if its target had no earlier value, the readers of that
  value read the statement's first name operand instead;
* ``operand``: one operand replaced by another name defined there or a constant;
* ``op``: a statement's op replaced by another of ``config.ops`` with the same arity;
* ``constant``: a nonzero constant multiplied by ``2 ** N(0, perturb_sigma)``, rounded to
  ``constant_digits`` significant digits;
* ``resample``: a constant replaced by another of ``config.constants`` (the Lion search's
  resampling, beside the perturbation: it jumps where a perturbation crawls, e.g. from 0.5 to
  0.999);
* ``slot``: a new state slot (while the program has fewer than ``max_slots``), written by a
  new recurrent statement ``mK = op(x, mK, ...)`` (an op of two or three operands, ``x`` a name or
  constant) at a random position.  Nothing reads it yet, so
  the child behaves like its parent (same fingerprint: no evaluation is spent on it); later
  ``operand`` mutations make other statements read it.  This is how a search that starts from
  plain sgd can grow momentum or second-moment state.  With probability
  ``wired_slot_probability`` one later reader of ``x`` (a statement reading the value ``x``
  has there) reads ``mK`` instead, in the same mutation: ``u = g * lr`` with
  ``m1 = interp(g, m1, 0.9)`` becomes ``u = m1 * lr``, momentum in one step instead of two
  (the first of which changes nothing the cache can see).
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Sequence

import numpy as np

from programs.errors import ProgramError
from programs.ops import OP_NAMES, OPS
from programs.program import INPUTS, Operand, Program, Statement, format_expression

KINDS: tuple[str, ...] = ("insert", "delete", "operand", "op", "constant", "slot", "resample")

# New constants are kept well inside float32: programs run in float32, where larger
# magnitudes overflow to Inf and smaller ones flush towards zero.
_CONSTANT_RANGE = (1e-30, 1e30)


@dataclasses.dataclass(frozen=True)
class MutationWeights:
    """Relative probability of each kind of mutation in :func:`mutate` (0 disables one)."""

    insert: float = 1.0
    delete: float = 1.0
    operand: float = 1.0
    op: float = 1.0
    constant: float = 1.0
    slot: float = 0.3
    resample: float = 0.0
    """Off by default: scripts/bench_search.py measures it before it is turned on."""

    def of(self, kind: str) -> float:
        return getattr(self, kind)


@dataclasses.dataclass(frozen=True)
class MutationConfig:
    """What mutations may produce.  Saved as JSON with ``dataclasses.asdict``."""

    ops: tuple[str, ...] = OP_NAMES
    max_statements: int = 30
    max_slots: int = 4
    weights: MutationWeights = MutationWeights()
    constant_probability: float = 0.2
    constants: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999, 1.0, 2.0, 1e-8)
    new_name_probability: float = 0.5
    wired_slot_probability: float = 0.0
    """Probability that a ``slot`` mutation also makes one later reader of the recurrence's
    input read the new slot instead (a child that computes something new); 0: always dead."""
    perturb_sigma: float = 1.0
    constant_digits: int = 6

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "constants", tuple(float(c) for c in self.constants))
        if isinstance(self.weights, dict):
            object.__setattr__(self, "weights", MutationWeights(**self.weights))
        unknown = [o for o in self.ops if o not in OPS]
        if unknown or not self.ops:
            raise ValueError(f"MutationConfig.ops must be op names, got unknown {unknown}")
        if self.max_statements < 1:
            raise ValueError("MutationConfig.max_statements must be at least 1")
        if self.max_slots < 0:
            raise ValueError("MutationConfig.max_slots must be at least 0")
        weights = [self.weights.of(k) for k in KINDS]
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"MutationConfig.weights must be >= 0, not all 0: {weights}")
        if not self.constants or not all(np.isfinite(self.constants)):
            raise ValueError("MutationConfig.constants must be finite and not empty")
        for p in (self.constant_probability, self.new_name_probability):
            if not 0 <= p <= 1:
                raise ValueError(f"probabilities must be in [0, 1], got {p}")


@dataclasses.dataclass(frozen=True)
class Mutation:
    """The child (``None`` when the mutation could not apply), the kind, and what was done."""

    program: Program | None
    kind: str
    detail: str


# -- helpers ------------------------------------------------------------------------------
def _text(s: Statement) -> str:
    return f"{s.target} = {format_expression(s)}"


def _operand_text(a: Operand) -> str:
    return a if isinstance(a, str) else repr(float(a))


def _defined_before(program: Program, position: int) -> list[str]:
    """Names readable before statement ``position``, in order of first definition."""
    names = dict.fromkeys(program.params)
    names.update(dict.fromkeys(s.target for s in program.body[:position]))
    return list(names)


def _fresh_name(program: Program, prefix: str = "v") -> str:
    used = set(program.params) | {s.target for s in program.body}
    k = 1
    while f"{prefix}{k}" in used or f"{prefix}{k}" in OPS or keyword.iskeyword(f"{prefix}{k}"):
        k += 1
    return f"{prefix}{k}"


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _child(program: Program, body, outputs=None) -> Program:
    return dataclasses.replace(program, body=tuple(body),
                               outputs=program.outputs if outputs is None else tuple(outputs)
                               ).checked()


def _random_operands(rng, config: MutationConfig, arity: int, names: list[str]) -> list:
    operands = [_pick(rng, config.constants) if rng.random() < config.constant_probability
                else _pick(rng, names) for _ in range(arity)]
    if all(not isinstance(a, str) for a in operands):
        operands[int(rng.integers(arity))] = _pick(rng, names)
    return operands


# -- primitives ---------------------------------------------------------------------------
def insert_statement(program: Program, rng: np.random.Generator,
                     config: MutationConfig = MutationConfig()) -> Mutation:
    """Insert a random statement (see the module docstring)."""
    if len(program.body) >= config.max_statements:
        return Mutation(None, "insert", f"already {config.max_statements} statements")
    position = int(rng.integers(len(program.body) + 1))
    names = _defined_before(program, position)
    if not names:
        return Mutation(None, "insert", "no name to read")
    op = _pick(rng, config.ops)
    operands = _random_operands(rng, config, OPS[op].arity, names)
    variables = [n for n in names if n not in INPUTS]
    if variables and rng.random() >= config.new_name_probability:
        target = _pick(rng, variables)
    else:
        target = _fresh_name(program)
    stmt = Statement(target, op, tuple(operands))
    body = list(program.body)
    body.insert(position, stmt)
    return Mutation(_child(program, body), "insert", f"insert '{_text(stmt)}' at {position}")


def delete_statement(program: Program, rng: np.random.Generator,
                     config: MutationConfig = MutationConfig()) -> Mutation:
    """Delete a random statement, rerouting readers of a value that disappears."""
    if not program.body:
        return Mutation(None, "delete", "no statement to delete")
    i = int(rng.integers(len(program.body)))
    stmt = program.body[i]
    detail = f"delete '{_text(stmt)}' at {i}"
    body = list(program.body)
    del body[i]
    outputs = list(program.outputs)
    if stmt.target not in _defined_before(program, i):
        names = stmt.names() or tuple(_defined_before(program, i))
        if not names:
            return Mutation(None, "delete", f"nothing can replace {stmt.target!r}")
        substitute = names[0] if stmt.names() else _pick(rng, names)
        redefined = False
        for j in range(i, len(body)):
            s = body[j]
            if stmt.target in s.names():
                args = tuple(substitute if a == stmt.target else a for a in s.args)
                body[j] = Statement(s.target, s.op, args)
            if s.target == stmt.target:
                redefined = True
                break
        if not redefined:
            outputs = [substitute if o == stmt.target else o for o in outputs]
        detail += f"; {stmt.target} -> {substitute}"
    return Mutation(_child(program, body, outputs), "delete", detail)


def change_operand(program: Program, rng: np.random.Generator,
                   config: MutationConfig = MutationConfig()) -> Mutation:
    """Replace one operand of a random statement by another name or a constant."""
    slots = [(i, k) for i, s in enumerate(program.body) for k in range(len(s.args))]
    for n in rng.permutation(len(slots)):
        i, k = slots[int(n)]
        s = program.body[i]
        old = s.args[k]
        names = [a for a in _defined_before(program, i) if a != old]
        keeps_a_name = any(isinstance(a, str) for j, a in enumerate(s.args) if j != k)
        constants = [c for c in config.constants if c != old] if keeps_a_name else []
        if constants and (not names or rng.random() < config.constant_probability):
            new = _pick(rng, constants)
        elif names:
            new = _pick(rng, names)
        else:
            continue
        args = s.args[:k] + (new,) + s.args[k + 1:]
        body = list(program.body)
        body[i] = Statement(s.target, s.op, args)
        detail = (f"operand {k} of '{_text(s)}' at {i}: "
                  f"{_operand_text(old)} -> {_operand_text(new)}")
        return Mutation(_child(program, body), "operand", detail)
    return Mutation(None, "operand", "no operand can change")


def change_op(program: Program, rng: np.random.Generator,
              config: MutationConfig = MutationConfig()) -> Mutation:
    """Replace the op of a random statement by another allowed op of the same arity."""
    def alternatives(s: Statement) -> list[str]:
        return [o for o in config.ops if OPS[o].arity == OPS[s.op].arity and o != s.op]

    candidates = [i for i, s in enumerate(program.body) if alternatives(s)]
    if not candidates:
        return Mutation(None, "op", "no statement has another op of its arity")
    i = _pick(rng, candidates)
    s = program.body[i]
    new = Statement(s.target, _pick(rng, alternatives(s)), s.args)
    body = list(program.body)
    body[i] = new
    return Mutation(_child(program, body), "op", f"op at {i}: '{_text(s)}' -> '{_text(new)}'")


def perturb_constant(program: Program, rng: np.random.Generator,
                     config: MutationConfig = MutationConfig()) -> Mutation:
    """Multiply a random nonzero constant by ``2 ** N(0, config.perturb_sigma)``."""
    places = [(i, k) for i, s in enumerate(program.body) for k, a in enumerate(s.args)
              if not isinstance(a, str) and a != 0.0]
    if not places:
        return Mutation(None, "constant", "no nonzero constant")
    i, k = _pick(rng, places)
    s = program.body[i]
    old = float(s.args[k])
    for _ in range(10):  # a draw can round back to the old value or leave the range
        new = float(f"{old * 2.0 ** rng.normal(0.0, config.perturb_sigma):.{config.constant_digits}g}")
        if new != old and _CONSTANT_RANGE[0] <= abs(new) <= _CONSTANT_RANGE[1]:
            break
    else:
        return Mutation(None, "constant", f"no usable perturbation of {old!r}")
    body = list(program.body)
    body[i] = Statement(s.target, s.op, s.args[:k] + (new,) + s.args[k + 1:])
    detail = f"constant {k} of '{_text(s)}' at {i}: {old!r} -> {new!r}"
    return Mutation(_child(program, body), "constant", detail)


def resample_constant(program: Program, rng: np.random.Generator,
                      config: MutationConfig = MutationConfig()) -> Mutation:
    """Replace a random constant by another value of ``config.constants``."""
    places = [(i, k) for i, s in enumerate(program.body) for k, a in enumerate(s.args)
              if not isinstance(a, str) and any(c != a for c in config.constants)]
    if not places:
        return Mutation(None, "resample", "no constant with another value to take")
    i, k = _pick(rng, places)
    s = program.body[i]
    old = float(s.args[k])
    new = _pick(rng, [c for c in config.constants if c != old])
    body = list(program.body)
    body[i] = Statement(s.target, s.op, s.args[:k] + (new,) + s.args[k + 1:])
    detail = f"constant {k} of '{_text(s)}' at {i}: {old!r} resampled to {new!r}"
    return Mutation(_child(program, body), "resample", detail)


def add_slot(program: Program, rng: np.random.Generator,
              config: MutationConfig = MutationConfig()) -> Mutation:
    """Add a state slot written by a new recurrent statement (see the module docstring)."""
    if len(program.slots) >= config.max_slots:
        return Mutation(None, "slot", f"already {config.max_slots} state slots")
    if len(program.body) >= config.max_statements:
        return Mutation(None, "slot", f"already {config.max_statements} statements")
    slot = _fresh_name(program, "m")
    position = int(rng.integers(len(program.body) + 1))
    names = _defined_before(program, position)
    recurrent = [o for o in config.ops if OPS[o].arity >= 2]
    if recurrent:
        op = _pick(rng, recurrent)
        operands = _random_operands(rng, config, OPS[op].arity, names)
        operands[1] = slot  # op(x, mK, ...): e.g. interp(g, m1, 0.9) is an EMA of g
        stmt = Statement(slot, op, tuple(operands))
    else:
        unary = [o for o in config.ops if OPS[o].arity == 1]
        if not unary:
            return Mutation(None, "slot", "no op allowed")
        stmt = Statement(slot, _pick(rng, unary), (slot,))
    body = list(program.body)
    body.insert(position, stmt)
    detail = f"slot {slot}: insert '{_text(stmt)}' at {position}"
    source = stmt.args[0]
    if (isinstance(source, str) and config.wired_slot_probability > 0
            and rng.random() < config.wired_slot_probability):
        readers = _readers(body, position + 1, source)
        if readers:
            i, k = _pick(rng, readers)
            s = body[i]
            body[i] = Statement(s.target, s.op, s.args[:k] + (slot,) + s.args[k + 1:])
            detail += f", read by '{_text(body[i])}' at {i} instead of {source}"
    child = dataclasses.replace(program, params=(*program.params, slot), body=tuple(body),
                                outputs=(*program.outputs, slot)).checked()
    return Mutation(child, "slot", detail)


def _readers(body: Sequence[Statement], start: int, name: str) -> list[tuple[int, int]]:
    """``(statement, operand)`` positions from ``start`` on that read the value ``name`` has
    at ``start`` (up to and including the first statement that assigns ``name`` again)."""
    out = []
    for i in range(start, len(body)):
        out += [(i, k) for k, a in enumerate(body[i].args) if a == name]
        if body[i].target == name:
            break
    return out


PRIMITIVES = {
    "insert": insert_statement,
    "delete": delete_statement,
    "operand": change_operand,
    "op": change_op,
    "constant": perturb_constant,
    "slot": add_slot,
    "resample": resample_constant,
}


def mutate(program: Program, rng: np.random.Generator,
           config: MutationConfig = MutationConfig()) -> Mutation:
    """Apply one mutation, its kind drawn with ``config.weights``; a kind that cannot apply
    is dropped and the draw repeated among the others.  ``program`` is ``None`` (kind
    ``"none"``) only when no kind of positive weight applies."""
    kinds = [k for k in KINDS if config.weights.of(k) > 0]
    reasons = []
    while kinds:
        p = np.array([config.weights.of(k) for k in kinds])
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        result = PRIMITIVES[kind](program, rng, config)
        if result.program is not None:
            return result
        reasons.append(f"{kind}: {result.detail}")
        kinds.remove(kind)
    return Mutation(None, "none", "; ".join(reasons))


def random_program(params: tuple[str, ...], rng: np.random.Generator,
                   config: MutationConfig = MutationConfig(), n_statements: int = 3,
                   name: str = "random") -> Program:
    """A random program over ``params`` with ``n_statements`` statements (a search's start).

    Each statement applies an op of ``config.ops`` to earlier names or constants and assigns a
    state slot or a new name; the last one assigns the update ``u`` (``u_`` if ``u`` is a
    parameter).  With no statement the update is ``g`` (or the first parameter).
    Raises ``ProgramError`` on invalid ``params`` and ``ValueError`` when ``n_statements`` is
    not in ``[0, config.max_statements]``.
    """
    if not 0 <= n_statements <= config.max_statements:
        raise ValueError(f"n_statements must be in [0, {config.max_statements}]")
    params = tuple(params)
    if not params:
        raise ProgramError("a random program needs at least one parameter", 1, 1)
    skeleton = Program(name, params, (), (params[0],) * (1 + sum(p not in INPUTS for p in params)))
    skeleton.checked()
    slots = skeleton.slots
    update = "u" if "u" not in params else "u_"
    body: list[Statement] = []
    names = list(params)
    for i in range(n_statements):
        op = _pick(rng, config.ops)
        operands = _random_operands(rng, config, OPS[op].arity, names)
        if i == n_statements - 1:
            target = update
        elif slots and rng.random() < 0.5:
            target = _pick(rng, slots)
        else:
            target = _fresh_name(dataclasses.replace(skeleton, body=tuple(body)))
        body.append(Statement(target, op, tuple(operands)))
        if target not in names:
            names.append(target)
    first = update if n_statements else ("g" if "g" in params else params[0])
    return Program(name, params, tuple(body), (first, *slots)).checked()
