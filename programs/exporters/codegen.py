"""What every exporter shares: names, dataflow facts, statement code, layout and docstrings.

An exporter (one module per target) turns a :class:`~programs.program.Program` into the text
of a standalone module.  It describes its framework as a :class:`Dialect` (how each op is
spelled, the helper functions it may need) and asks this module for the pieces:

* :func:`plan` checks the program and decides, per statement, whether it is live, whether
  its result needs saturating, and whether its denominator needs protecting;
* :func:`step_function` writes the per-tensor function: one line per program statement, with
  the program's own variable names (a dead statement becomes a comment); with a :class:`Hoist`
  (:func:`hoist`), the statements that read only scalar inputs and constants go to
  :func:`scalars_function` instead, run once per parameter;
* :func:`helper_sources` returns the helpers that code uses, and nothing else;
* text is laid out the way ``ruff format`` does (:mod:`programs.exporters.layout`, which also
  writes the modules' docstrings), so the result is already formatted.

Nothing here evaluates program text: code is built from the parsed statements, names are
checked identifiers and constants are ``repr`` of floats (exact round trip).

Which saturations and protections are left out: :mod:`programs.bounds`.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
import unicodedata
from collections.abc import Mapping

from programs.bounds import last_writes, statement_facts
from programs.errors import ProgramError
from programs.exporters.layout import INDENT, fit_assign, fit_call, fit_sequence
from programs.ops import CENTER, ELEMENTWISE, OPS, REDUCTION, TINY
from programs.program import INPUTS, Program, format_constant, format_expression
from programs.statement import SCALAR_INPUTS


@dataclasses.dataclass(frozen=True)
class Dialect:
    """How one framework spells the ops.

    ``templates`` maps a key to a format string over the operand texts ``{0} {1} {2}``; the
    key is the op name or one of the variants ``power_const_base`` (constant base, already
    ``abs``-ed), ``clip_const`` (constant bound, already ``abs``-ed), ``interp_unit`` (constant
    ``0 <= c <= 1``), ``max_const`` / ``min_const`` (operands reordered: name, constant);
    ``KEY_scalar``, when present, is used for a statement whose operands are all 0-d.
    Denominators arrive protected (``_safe(b)`` or a folded constant).  ``helpers`` maps a
    helper name to its source; ``_sat`` and ``_safe`` must be among them.  ``typed`` formats
    a constant as a scalar of the dtype of the tensor ``{like}``.  ``tensor_positions`` lists,
    per key, operand positions that must not be a bare Python float.  ``globals_`` are the
    module names the step function reads (a program name equal to one is renamed).
    ``inplace`` maps an op to the in-place form of its template, the overwritten operand
    written ``{0}`` (``{0}.add_({1})``); ``sub`` may also reuse its right operand,
    ``sqrt_nonnegative`` is sqrt of an operand known to be >= 0.  ``reuse_slots``: the step
    function may overwrite the old value of a slot (the caller owns distinct slot buffers).
    ``elide`` allows leaving out the saturations and protections that are the identity
    (with ``elide=False`` every op is clipped as in the interpreter, which under XLA also
    keeps ``a * b + c`` from being fused into one FMA: the interpreter's rounding, bit for
    bit, at the price of speed).
    """

    templates: Mapping[str, str]
    helpers: Mapping[str, str]
    typed: str
    globals_: frozenset[str]
    tensor_positions: Mapping[str, frozenset[int]] = dataclasses.field(default_factory=dict)
    elide: bool = True
    inplace: Mapping[str, str] = dataclasses.field(default_factory=dict)
    reuse_slots: bool = False
    saturate: bool = True
    """False: the fast export (:func:`fast_dialect`), no saturation anywhere."""
    stored_sat: str | None = None
    """The helper (among ``helpers``) around a slot's new value read by later statements
    (``programs.bounds``: ``stored``), saturated or not; None: none, ``_sat`` as anywhere."""

    def reserved(self) -> frozenset[str]:
        return self.globals_ | frozenset(self.helpers) | {"_step", "_scalars"}


@dataclasses.dataclass(frozen=True)
class StatementPlan:
    """One statement with the facts the code generator needs."""

    index: int
    live: bool
    saturate: bool   # wrap the result in _sat
    protect: bool    # wrap the denominator in _safe
    scalar: bool     # the result is a 0-d value (a scalar input, constants or a reduction)
    reuse: int | None = None  # operand whose buffer may take the result (a dead temporary)
    nonnegative: bool = False  # operand 0 is >= 0 (sqrt needs no abs)
    stored: bool = False  # wrapped in dialect.stored_sat (which saturates: no _sat)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A checked program with its statement facts and the names its code uses."""

    program: Program
    names: Mapping[str, str]           # program name -> name in the code
    statements: tuple[StatementPlan, ...]

    @property
    def like(self) -> str:
        """The input whose shape and dtype every value takes (as in the interpreter)."""
        return "w" if "w" in self.program.params else "g"

    @property
    def step_params(self) -> tuple[str, ...]:
        """Parameters of the step function: the inputs (``g`` always), then the slots."""
        p = self.program
        inputs = [n for n in INPUTS if n in p.params or n == "g"]
        return tuple(inputs) + tuple(self.names[s] for s in p.slots)

    def reads(self, name: str) -> bool:
        return name in self.program.params


def check_names(program: Program) -> None:
    """Every name must be an identifier Python reads back as itself (NFKC-normal)."""
    for name in (program.name, *program.params, *(s.target for s in program.body)):
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ProgramError(f"cannot export: {name!r} is not a valid identifier")
        if unicodedata.normalize("NFKC", name) != name:
            raise ProgramError(
                f"cannot export: Python reads the name {name!r} as "
                f"{unicodedata.normalize('NFKC', name)!r}")


def unique(name: str, taken) -> str:
    """``name``, with ``_`` appended until it is not in ``taken``."""
    while name in taken:
        name += "_"
    return name


def plan(program: Program, dialect: Dialect) -> Plan:
    """Check ``program`` and work out the facts its code needs (see the module docstring)."""
    if not isinstance(program, Program):
        raise TypeError(f"export needs a programs.Program, not {type(program).__name__}")
    program.checked()
    check_names(program)
    all_names = set(program.params) | {s.target for s in program.body}
    reserved = dialect.reserved()
    names = {}
    for n in sorted(all_names):
        names[n] = unique(n, reserved | (all_names - {n}) | set(names.values())) \
            if n in reserved else n

    live = [False] * len(program.body)
    needed = set(program.outputs)
    for i in range(len(program.body) - 1, -1, -1):
        s = program.body[i]
        if s.target in needed:
            live[i] = True
            needed.discard(s.target)
            needed.update(s.names())

    scalar = {n: n in SCALAR_INPUTS for n in program.params}
    reusable = _reusable(program, live, dialect) if dialect.inplace else {}
    # Which slot's buffer holds each value (in place ops keep their operand's buffer), and
    # which statements write a slot's returned value: there, a commutative op takes the result
    # into that slot's old buffer when it may, so that nothing has to be copied into the slot.
    buffer: dict[str, str | None] = {n: n if n in program.slots else None
                                     for n in program.params}
    last = last_writes(program)
    returned_slot = {last[name]: slot for slot, name in zip(program.slots, program.outputs[1:])
                     if name in last}
    statements = []
    for i, (s, facts) in enumerate(zip(program.body, statement_facts(program))):
        sc = [scalar[a] if isinstance(a, str) else True for a in s.args]
        saturate, protect = facts.saturate, facts.protect
        kind = OPS[s.op].kind
        is_scalar = True if kind == REDUCTION else (sc[0] if kind == CENTER else all(sc))
        if not dialect.saturate:
            saturate = False
        elif not dialect.elide:
            saturate = not OPS[s.op].self_saturating
            d = OPS[s.op].denominator
            protect = d is not None and isinstance(s.args[d], str)
        # only tensors: a 0-d temporary costs nothing and reads better out of place
        candidates = [p for p in reusable.get(i, ()) if not sc[p]] if not is_scalar else []
        into_slot = [p for p in candidates if s.op in ("add", "mul")
                     and buffer.get(s.args[p]) == returned_slot.get(i, "")]
        reuse = (into_slot + candidates + [None])[0]
        buffer[s.target] = buffer.get(s.args[reuse]) if reuse is not None else None
        nonnegative = dialect.elide and facts.nonnegative
        stored = dialect.stored_sat is not None and facts.stored
        statements.append(StatementPlan(i, live[i], saturate, protect, is_scalar, reuse,
                                        nonnegative, stored))
        scalar[s.target] = is_scalar
    return Plan(program, names, tuple(statements))


def _reusable(program: Program, live: list[bool], dialect: Dialect) -> dict[int, list[int]]:
    """Per statement, the operand positions that may be overwritten with its result: a
    temporary this code allocated (a live statement's result, not center's, which may be its
    operand itself) or, with ``dialect.reuse_slots``, a slot's old value, read for the last
    time, once, here, and not returned.  The op must have an in-place form in the dialect."""
    binding: dict[str, tuple] = {p: ("param", p) for p in program.params}
    reads: dict[tuple, list[int]] = {}
    shared: set[tuple] = set()
    for i, s in enumerate(program.body):
        if not live[i]:
            continue
        for a in s.names():
            reads.setdefault(binding[a], []).append(i)
        if s.op == "center":  # its result may be its operand: neither may be overwritten
            shared.update(binding[a] for a in s.names())
            shared.add(("stmt", i))
        binding[s.target] = ("stmt", i)
    returned = {binding[o] for o in program.outputs}
    out: dict[int, list[int]] = {}
    for i, s in enumerate(program.body):
        if not live[i] or s.op not in dialect.inplace:
            continue
        positions = [0, 1] if s.op in ("add", "mul", "sub") else [0]
        for p in positions:
            a = s.args[p] if p < len(s.args) else None
            if not isinstance(a, str):
                continue
            b = _binding_before(program, i, a)
            owned = b[0] == "stmt" or (dialect.reuse_slots and b[1] in program.slots)
            if (owned and b not in shared and b not in returned
                    and reads.get(b) == [i] and s.args.count(a) == 1):
                out.setdefault(i, []).append(p)
    return out


def _binding_before(program: Program, i: int, name: str) -> tuple:
    """The binding of ``name`` that statement ``i`` reads."""
    for j in range(i - 1, -1, -1):
        if program.body[j].target == name:
            return ("stmt", j)
    return ("param", name)


# -- statement code ------------------------------------------------------------------------
def constant(value: float) -> str:
    """A float literal as ``ruff format`` writes it: ``repr``, exponent without ``+``."""
    return format_constant(value).replace("e+", "e")


def statement_code(plan_: Plan, sp: StatementPlan, dialect: Dialect,
                   protected: Mapping[str, str] | None = None, like: str | None = None) -> str:
    """The right-hand side of statement ``sp`` in ``dialect``; ``protected`` maps a name to
    the code name of its already protected value (:class:`Hoist`), used as a denominator;
    ``like`` replaces the tensor that typed constants take dtype and device from."""
    s = plan_.program.body[sp.index]
    names = plan_.names
    like = like or names[plan_.like]
    args = list(s.args)
    key = s.op
    value: list[float | None] = [None if isinstance(a, str) else a for a in args]

    d = OPS[s.op].denominator
    if d is not None and value[d] is not None:  # a constant denominator is protected here
        c = value[d]
        value[d] = c if abs(c) >= TINY else (-TINY if c < 0 else TINY)
    if s.op == "power" and value[0] is not None:
        key, value[0] = "power_const_base", abs(value[0])
    if s.op == "clip" and value[1] is not None:
        key, value[1] = "clip_const", abs(value[1])
    if s.op == "interp" and dialect.elide and value[2] is not None and 0.0 <= value[2] <= 1.0:
        key = "interp_unit"
    if s.op in ("max", "min") and (value[0] is None) != (value[1] is None):
        key = f"{s.op}_const"
        if value[0] is not None:  # name first
            args.reverse()
            value.reverse()

    # Operands that fix the dtype: every one but where's condition and clip's bound.  When
    # none is a name, the first constant among them becomes a scalar of the tensors' dtype,
    # as the interpreter casts every constant to it.
    dtype_positions = {"where": (1, 2), "clip": (0,), "clip_const": (0,)}.get(
        key, tuple(range(len(args))))
    typed_positions = set(dialect.tensor_positions.get(key, ()))
    if key == "where":  # never "0.5 > 0": two constants compared
        typed_positions.add(0)
    if all(value[p] is not None for p in dtype_positions):
        typed_positions.add(dtype_positions[0])
    text = []
    for p, a in enumerate(args):
        if value[p] is None:
            protect = sp.protect and p == d
            if protect and protected and a in protected:
                text.append(protected[a])
            else:
                text.append(f"_safe({names[a]})" if protect else names[a])
        elif p in typed_positions:
            text.append(dialect.typed.format(value=constant(value[p]), like=like))
        else:
            text.append(constant(value[p]))
    if key == "sqrt" and sp.nonnegative:
        key = "sqrt_nonnegative"
    if sp.scalar and f"{key}_scalar" in dialect.templates:
        key = f"{key}_scalar"
    if sp.reuse is not None and key in dialect.inplace:
        if sp.reuse == 1 and key == "sub":  # b - a as (-a) + b: the same rounding
            expr = f"{text[1]}.neg_().add_({text[0]})"
        else:
            order = [sp.reuse] + [p for p in range(len(text)) if p != sp.reuse]
            expr = dialect.inplace[key].format(*[text[p] for p in order])
    elif key == "power_const_base" and all(_SIMPLE.fullmatch(x) for x in text):
        expr = f"{text[0]}**{text[1]}"  # ruff format hugs ** between simple operands
    else:
        expr = dialect.templates[key].format(*text)
    if sp.stored:
        return f"{dialect.stored_sat}({expr})"
    return f"_sat({expr})" if sp.saturate else expr


@dataclasses.dataclass(frozen=True)
class Hoist:
    """Statements run once per parameter, not once per piece of it (:func:`hoist`).

    ``indices``: the hoisted statements; ``inputs``: the scalar inputs ``_step`` takes, in
    its order (``_scalars`` takes the same); ``passed``: code names of their values that the
    rest of the program reads (as ``_step``'s last parameters); ``protected`` maps a hoisted
    name read as a protected denominator to the code name of its protected value, also
    passed.
    """

    indices: frozenset[int]
    inputs: tuple[str, ...]
    passed: tuple[str, ...]
    protected: Mapping[str, str]


def hoist(plan_: Plan) -> Hoist | None:
    """The live elementwise statements that read only ``lr``, ``t``, ``T``, constants and
    other such statements, and whose target is assigned once and is not a parameter: 0-d
    values, the same for every piece of a tensor.  None when there is none."""
    p = plan_.program
    counts: dict[str, int] = {}
    for s in p.body:
        counts[s.target] = counts.get(s.target, 0) + 1
    known = {n for n in p.params if n in SCALAR_INPUTS}
    indices = set()
    for sp in plan_.statements:
        s = p.body[sp.index]
        if (sp.live and OPS[s.op].kind == ELEMENTWISE and counts[s.target] == 1
                and s.target not in p.params and all(a in known for a in s.names())):
            indices.add(sp.index)
            known.add(s.target)
    if not any(n in SCALAR_INPUTS for i in indices for n in p.body[i].names()):
        return None  # constants only (typed constants take their dtype from an input)
    hoisted = {p.body[i].target for i in indices}
    inputs = tuple(n for n in plan_.step_params if n in SCALAR_INPUTS)
    plain, guarded = set(p.outputs) & hoisted, set()
    for sp in plan_.statements:
        if not sp.live or sp.index in indices:
            continue
        s = p.body[sp.index]
        d = OPS[s.op].denominator if sp.protect else None
        for position, a in enumerate(s.args):
            if a in hoisted:
                (guarded if position == d else plain).add(a)
    taken = set(plan_.names.values()) | {"_step", "_scalars"}
    protected = {}
    for a in sorted(guarded):
        protected[a] = unique(f"{plan_.names[a]}_safe", taken)
        taken.add(protected[a])
    passed = tuple(plan_.names[a] for a in sorted(plain)) + tuple(protected.values())
    return Hoist(frozenset(indices), inputs, passed, protected)


def scalars_function(plan_: Plan, dialect: Dialect, h: Hoist) -> list[str]:
    """Lines of ``def _scalars(...)``: the hoisted statements, one line each; it returns the
    values ``_step`` takes last (``h.passed``)."""
    p = plan_.program
    lines = fit_call("def _scalars(", h.inputs, "):", "")
    lines.append(f'{INDENT}"""The statements that read only scalars and constants, once per '
                 'parameter, for _step."""')
    for sp in plan_.statements:
        if sp.index in h.indices:
            s = p.body[sp.index]
            code = statement_code(plan_, sp, dialect, like=plan_.names[h.inputs[0]])
            lines += fit_assign(INDENT, plan_.names[s.target], code)
    guards = {code: f"_safe({plan_.names[a]})" for a, code in h.protected.items()}
    values = [guards.get(code, code) for code in h.passed]
    lines += fit_sequence(f"{INDENT}return ", values, "", INDENT, bracket="()",
                          bare=len(values) > 1)
    return lines


def step_function(plan_: Plan, dialect: Dialect, doc: str, h: Hoist | None = None) -> list[str]:
    """Lines of ``def _step(...)``: one line (or a comment, if dead) per program statement,
    but those of ``h`` (computed by :func:`scalars_function`, passed in as its last
    parameters)."""
    p = plan_.program
    params = plan_.step_params + (h.passed if h else ())
    lines = fit_call("def _step(", params, "):", "")
    lines.append(f'{INDENT}"""{doc}"""')
    for sp in plan_.statements:
        s = p.body[sp.index]
        if h and sp.index in h.indices:
            continue
        if not sp.live:
            lines.append(f"{INDENT}# dead (never read): {s.target} = {format_expression(s)}")
            continue
        code = statement_code(plan_, sp, dialect, h.protected if h else None)
        lines += fit_assign(INDENT, plan_.names[s.target], code)
    outputs = [plan_.names[o] for o in p.outputs]
    if len(outputs) == 1:
        lines.append(f"{INDENT}return ({outputs[0]},)")
    else:
        lines += fit_sequence(f"{INDENT}return ", outputs, "", INDENT, bracket="()", bare=True)
    return lines


_SIMPLE = re.compile(r"-?(?:[^\W\d][\w.]*|\d[\d.]*(?:e-?\d+)?)")
_HELPER_CALL = re.compile(r"\b(_[A-Za-z0-9_]+)\(")


def helper_sources(code: str, helpers: Mapping[str, str]) -> list[str]:
    """The helpers ``code`` calls, with the helpers they call, in the order of ``helpers``."""
    wanted: set[str] = set()
    todo = [m for m in _HELPER_CALL.findall(code) if m in helpers]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            body = helpers[name].split("\n", 1)[1]
            todo += [m for m in _HELPER_CALL.findall(body) if m in helpers]
    return [src for name, src in helpers.items() if name in wanted]


FAST_SAT = '''def _sat(x):
    """x as it is: a fast export does not saturate (an overflow gives Inf, as in the library)."""
    return x'''


def fast_dialect(dialect: Dialect) -> Dialect:
    """``dialect`` for the fast export: no result is clipped to the dtype's finite range (the
    helpers' internal clips included); guards of denominators, logs and exponentials stay."""
    return dataclasses.replace(dialect, saturate=False,
                               helpers={**dialect.helpers, "_sat": FAST_SAT})


def semantics(framework: str, fast: bool) -> str:
    """The semantics paragraph of a module's docstring."""
    return (FAST_SEMANTICS if fast else SEMANTICS).replace("{framework}", framework)


SEMANTICS = """\
Semantics are those of the program language's ops table, reproduced exactly: every result is
clipped to the finite range of its dtype (never Inf), division protects denominators below
{tiny} in magnitude, sqrt/log/log1p take abs (log floors at {tiny}), exp/expm1/sinh/cosh clip
their input to [-80, 80], where(c, a, b) tests c > 0, and mean/norm/rms/max_abs/center act on
one parameter tensor at a time.  Inputs: t counts steps from 1; T is the run's total steps.
Generated by programs.export; it imports nothing but {framework}.""".replace(
    "{tiny}", repr(TINY))


FAST_SEMANTICS = """\
A FAST export (programs.export(..., fast=True)): results are not clipped to the finite range
of their dtype, so an overflow gives Inf, as in the libraries.  Otherwise the semantics are
those of the program language's ops table: division protects denominators below {tiny} in
magnitude, sqrt/log/log1p take abs (log floors at {tiny}), exp/expm1/sinh/cosh clip their
input to [-80, 80], where(c, a, b) tests c > 0, and mean/norm/rms/max_abs/center act on one
parameter tensor at a time.  Inputs: t counts steps from 1; T is the run's total steps.
Generated by programs.export; it imports nothing but {framework}.""".replace("{tiny}", repr(TINY))
