"""The compile-once engine: update programs as data for one jitted register-file interpreter.

The reference interpreter (``programs.interpreter``) traces a program's statements into JAX
operations, so every program compiles on its own (seconds).  Here a program is *encoded* as
a few small integer and float arrays (:func:`encode`) and run by :class:`Machine`, whose
jitted code is the same for every program of a size bucket: a new candidate costs no compile.

Contract:

* ``encode(program, max_statements, max_slots) -> EncodedProgram``: NumPy arrays whose shapes
  depend only on the bucket ``(max_statements, max_slots)``; statement slots past the
  program's own are ``NOP``.  A program with more statements or slots than the bucket is a
  ``ProgramError`` (a ``ValueError``) that says so.
* ``Machine(shapes, max_statements, max_slots)`` runs encoded programs on parameters flattened
  into one float32 vector (tensors of ``shapes``, row-major, concatenated):
  :func:`scalar_rows` evaluates a program's scalar part for every step at once,
  :meth:`Machine.step` applies one update.  The result equals ``programs.as_optax`` on the
  same parameter tree to float32 rounding: every op is computed by its own JAX definition
  from ``programs.ops``; per-tensor reductions use the ops' ``pre / combine / finish`` over
  segment sums (maxima) of the flat vector, one segment per tensor; ``center`` subtracts
  per-row means (rows of each tensor of rank >= 2).

Probe mode: :func:`probe_runs` runs a program on given inputs with per-tensor scalars, for
``programs.fingerprint`` and ``programs.check`` (one engine for all program semantics).

The register layout, the scalar program and why the engine is built this way (with the
measurements behind each choice): ``docs/DESIGN.md``, "The evaluation engine".  In short:
statements in a ``lax.fori_loop`` of the program's own length, each a ``lax.switch`` over the
op codes; learning rates and seeds as one axis of runs mapped inside each op's branch
(:meth:`Machine.step_rows`), never over programs; few passes over memory
(dead rows reused, slots updated in place, scalings folded into readers where that pays); no
fusion that reads and writes the register file.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from programs.errors import ProgramError
from programs.ops import CENTER, ELEMENTWISE, OP_NAMES, OPS, REDUCTION, saturate
from programs.statement import ProgramLike

NOP, COPY = "nop", "copy"
_SHAPE_SENSITIVE = tuple(n for n in OP_NAMES if OPS[n].kind in (REDUCTION, CENTER))
VM_OP_NAMES: tuple[str, ...] = (OP_NAMES + (NOP, COPY)
                                + tuple(f"{n}@scalar" for n in _SHAPE_SENSITIVE))
"""Op codes of the machine: ``programs.ops.OP_CODES`` first (same integers), then ``nop``
(padding), ``copy`` (moves), then the rank-0 variants of the reductions and ``center``."""
VM_OP_CODES: dict[str, int] = {name: i for i, name in enumerate(VM_OP_NAMES)}

# Fixed vector registers; the slots and the work rows follow.
ZERO, W, G, FIRST_SLOT = 0, 1, 2, 3
# Scalar registers, counted from RegisterMap.first_scalar.
LR, STEP, TOTAL, FIRST_CONSTANT = 0, 1, 2, 3


class RegisterMap(NamedTuple):
    """Where every register of a bucket lives (one numbering for vectors and scalars)."""

    max_statements: int
    max_slots: int

    @property
    def capacity(self) -> int:
        """Vector-program length: the statements plus the moves into slot rows at the end
        (at most one per slot, one more per cycle of slots, one to protect the update)."""
        return self.max_statements + 2 * self.max_slots + 1

    @property
    def first_work_row(self) -> int:
        return FIRST_SLOT + self.max_slots

    @property
    def n_vector(self) -> int:
        """Number of vector registers (rows of the register file)."""
        return self.first_work_row + self.max_statements + self.max_slots + 1

    @property
    def first_scalar(self) -> int:
        return self.n_vector

    @property
    def max_constants(self) -> int:
        return 3 * self.max_statements

    @property
    def first_scalar_statement(self) -> int:
        """Index of the first scalar statement's register, counted from ``first_scalar``."""
        return FIRST_CONSTANT + self.max_constants

    @property
    def n_scalar(self) -> int:
        return self.first_scalar_statement + self.max_statements


class EncodedProgram(NamedTuple):
    """A program as data (a pytree of NumPy arrays; pass it to jitted code as an argument).

    The vector program, ``C = RegisterMap.capacity`` statement slots: ``codes`` int32 [C]
    (:data:`VM_OP_CODES`), ``operands`` int32 [C, 3] (registers; ``ZERO`` where unused),
    ``rows`` int32 [C, 3] (the row each operand reads: its own, or for a scalar operand the
    row of another operand of the statement), ``scales`` and ``offsets`` int32 [C, 3] (scalar
    registers ``s``, ``a`` of a folded operand ``add(mul(s, x), a)``, see :class:`Folded`;
    -1: absent), ``targets`` int32 [C] (the row written),
    ``n_statements`` int32 [] (statements to run).  The scalar program: ``scalar_codes``
    int32 [S], ``scalar_operands`` int32 [S, 3], ``n_scalar_statements`` int32 [] (statement
    ``i`` writes scalar register ``first_scalar_statement + i``).  ``constants`` float32 [3 S].
    ``outputs`` int32 [1 + max_slots]: the update's register, then where each slot's new value
    is after the vector program (its own row; ``ZERO`` for slots the program lacks);
    ``update_fold`` int32 [2]: the update's scale and offset registers (as ``scales``).
    """

    codes: np.ndarray
    operands: np.ndarray
    rows: np.ndarray
    scales: np.ndarray
    offsets: np.ndarray
    targets: np.ndarray
    n_statements: np.ndarray
    scalar_codes: np.ndarray
    scalar_operands: np.ndarray
    n_scalar_statements: np.ndarray
    constants: np.ndarray
    outputs: np.ndarray
    update_fold: np.ndarray


def encode(program: ProgramLike, max_statements: int = 32, max_slots: int = 4, *,
           fold: bool = True) -> EncodedProgram:
    """Encode ``program`` for the bucket ``(max_statements, max_slots)``; ``fold``: fold
    scalings into their readers (:func:`_fold`; only for a :class:`Machine` with ``fold``).

    Raises ``ProgramError`` (a ``ValueError``) when the program has more statements or state
    slots than the bucket holds.
    """
    if len(program.body) > max_statements:
        raise ProgramError(f"program {program.name!r} has {len(program.body)} statements; "
                           f"the bucket holds {max_statements} (raise max_statements)")
    if len(program.slots) > max_slots:
        raise ProgramError(f"program {program.name!r} has {len(program.slots)} state slots; "
                           f"the bucket holds {max_slots} (raise max_slots)")
    regs = RegisterMap(max_statements, max_slots)
    scalar = regs.first_scalar
    # A value is a register number (inputs, slots, scalars) or ("v", j): vector statement j.
    value = {"w": W, "g": G, "lr": scalar + LR, "t": scalar + STEP, "T": scalar + TOTAL}
    for k, slot in enumerate(program.slots):
        value[slot] = FIRST_SLOT + k
    constants = np.zeros([regs.max_constants], np.float32)
    n_constants = 0
    vector, scalars = [], []  # (vm op name, operand values)
    for s in program.body:
        args = []
        for a in s.args:
            if isinstance(a, str):
                args.append(value[a])
            else:
                constants[n_constants] = a
                args.append(scalar + FIRST_CONSTANT + n_constants)
                n_constants += 1
        if all(isinstance(a, int) and a >= scalar for a in args):
            name = s.op if OPS[s.op].kind == ELEMENTWISE else f"{s.op}@scalar"
            scalars.append((name, args))
            value[s.target] = scalar + regs.first_scalar_statement + len(scalars) - 1
        else:
            vector.append((s.op, args))
            value[s.target] = ("v", len(vector) - 1)
    outputs = [value[o] for o in program.outputs]
    if fold:
        vector, outputs = _fold(vector, outputs, scalar)
    statements = _allocate(vector, outputs, regs)

    nop = VM_OP_CODES[NOP]
    codes = np.full([regs.capacity], nop, np.int32)
    operands = np.full([regs.capacity, 3], ZERO, np.int32)
    rows = np.full([regs.capacity, 3], ZERO, np.int32)
    scales = np.full([regs.capacity, 3], -1, np.int32)
    offsets = np.full([regs.capacity, 3], -1, np.int32)
    targets = np.full([regs.capacity], ZERO, np.int32)
    for j, (name, args, target) in enumerate(statements):
        args = [a if isinstance(a, Folded) else Folded(-1, a, -1) for a in args]
        codes[j] = VM_OP_CODES[name]
        operands[j, : len(args)] = [a.base for a in args]
        vector_rows = [a.base for a in args if a.base < scalar]
        rows[j, : len(args)] = [a.base if a.base < scalar else (vector_rows or [ZERO])[0]
                                for a in args]
        scales[j, : len(args)] = [a.scale for a in args]
        offsets[j, : len(args)] = [a.offset for a in args]
        targets[j] = target
    scalar_codes = np.full([max_statements], nop, np.int32)
    scalar_operands = np.full([max_statements, 3], ZERO, np.int32)
    for i, (name, args) in enumerate(scalars):
        scalar_codes[i] = VM_OP_CODES[name]
        scalar_operands[i, : len(args)] = args
    update = statements.update
    update = update if isinstance(update, Folded) else Folded(-1, update, -1)
    out = np.full([1 + max_slots], ZERO, np.int32)
    out[0] = update.base
    out[1: 1 + len(program.slots)] = [FIRST_SLOT + k for k in range(len(program.slots))]
    return EncodedProgram(codes, operands, rows, scales, offsets, targets,
                          np.asarray(len(statements), np.int32), scalar_codes,
                          scalar_operands, np.asarray(len(scalars), np.int32), constants, out,
                          np.asarray([update.scale, update.offset], np.int32))


class Folded(NamedTuple):
    """An operand computed as it is read: ``add(mul(s, x), a)`` with ``s = scale`` and
    ``a = offset`` scalar registers (-1: that op is absent) and ``x = base``."""

    scale: int | tuple
    base: int | tuple
    offset: int | tuple


def _fold(vector, outputs, scalar: int):
    """Fold ``y = s * x`` and ``y = x + a`` (``s``, ``a`` rank-0; ``x`` a tensor, itself
    possibly a folded ``s * x``; ``y`` read exactly once, by a later statement or as the
    update) into their reader, whose operand becomes a :class:`Folded`.  It is computed with
    ``mul``'s and ``add``'s own definitions when read, so the values are unchanged, and a
    statement (a pass over two rows and a write) is saved.
    Returns the statements left (operands renumbered) and the outputs."""
    uses: dict = {}
    for _, args in vector:
        for a in args:
            uses[a] = uses.get(a, 0) + 1
    for v in outputs:
        uses[v] = uses.get(v, 0) + 1
    slot_outputs = set(outputs[1:])
    folded: dict = {}
    for j, (op, args) in enumerate(vector):
        y = ("v", j)
        if op not in ("mul", "add") or uses.get(y) != 1 or y in slot_outputs:
            continue
        is_scalar = [isinstance(a, int) and a >= scalar for a in args]
        if is_scalar[0] == is_scalar[1]:
            continue
        s, x = (args[0], args[1]) if is_scalar[0] else (args[1], args[0])
        inner = folded.get(x)
        if op == "mul" and inner is None:
            folded[y] = Folded(s, x, -1)
        elif op == "add" and (inner is None or inner.offset == -1):
            folded[y] = Folded(inner.scale, inner.base, s) if inner else Folded(-1, x, s)
    renumber, kept = {}, []
    for j, (op, args) in enumerate(vector):
        if ("v", j) not in folded:
            renumber[("v", j)] = ("v", len(kept))
            kept.append((op, args))

    def operand(a):
        if a in folded:
            f = folded[a]
            return f._replace(base=renumber.get(f.base, f.base))
        return renumber.get(a, a)

    return ([(op, [operand(a) for a in args]) for op, args in kept],
            [operand(v) for v in outputs])


class _Statements(list):
    """``(vm op name, operands, target row)`` in order, an operand a register or a
    :class:`Folded`; ``update``: the update's register or :class:`Folded`."""

    update: int | Folded


def _allocate(vector, outputs, regs: RegisterMap) -> _Statements:
    """Rows for the vector statements' results, then the moves that leave each slot's new
    value in the slot's row.

    A result reuses the row of a value read for the last time (rows ``W`` and ``G`` too:
    ``step`` rewrites them each step); slot rows take only their own slot's new value, when
    the old value is no longer read; otherwise the new value is moved there at the end (a
    parallel move: a slot row still needed as a source is saved to a spare row first).  The
    update's row is saved too if a move would overwrite it.  A :class:`Folded` operand reads
    its base's row.
    """
    scalar = regs.first_scalar
    n_slots = len(outputs) - 1
    slot_row = {FIRST_SLOT + k for k in range(n_slots)}
    end = len(vector)

    def base(a):
        return a.base if isinstance(a, Folded) else a

    def is_row_value(v):
        return isinstance(v, tuple) or v < scalar

    last_use: dict = {}
    for j, (_, args) in enumerate(vector):
        for a in map(base, args):
            if is_row_value(a):
                last_use[a] = j
    for v in map(base, outputs):
        if is_row_value(v):
            last_use[v] = end
    wanted = {v: FIRST_SLOT + k for k, v in enumerate(outputs[1:])
              if isinstance(v, tuple) and not isinstance(v, Folded)}
    free = sorted({W, G} - set(last_use)) + list(range(regs.first_work_row, regs.n_vector))
    row: dict = {}

    def where(v):
        return row[v] if isinstance(v, tuple) else v

    def resolve(a):
        return a._replace(base=where(a.base)) if isinstance(a, Folded) else where(a)

    statements = _Statements()
    for j, (op, args) in enumerate(vector):
        operands = [resolve(a) for a in args]
        for a in dict.fromkeys(map(base, args)):  # distinct, in order
            if (is_row_value(a) and W <= where(a) and last_use[a] == j
                    and where(a) not in slot_row):
                free.append(where(a))
        free.sort()
        v = ("v", j)
        own = wanted.get(v)
        if own is not None and last_use.get(own, -1) <= j:
            row[v] = own
        else:
            row[v] = free.pop(0)
            if v not in last_use:  # dead result: its row is free again at once
                free.append(row[v])
        statements.append((op, operands, row[v]))
    # Moves: slot row d must end up holding the value now in register pending[d].
    pending = {FIRST_SLOT + k: where(v) for k, v in enumerate(outputs[1:])
               if where(v) != FIRST_SLOT + k}
    update = resolve(outputs[0])
    update_row = base(update)
    if update_row in pending:  # a move would overwrite the update: save it first
        spare = free.pop(0)
        statements.append((COPY, [update_row], spare))
        update = update._replace(base=spare) if isinstance(update, Folded) else spare
    while pending:
        ready = [d for d in pending if d not in pending.values()]
        if ready:
            d = min(ready)
            statements.append((COPY, [pending.pop(d)], d))
        else:  # a cycle of slots: save one slot row and read it from the spare instead
            d = min(pending)
            spare = free.pop(0)
            statements.append((COPY, [d], spare))
            pending = {k: (spare if s == d else s) for k, s in pending.items()}
    statements.update = update
    return statements


class Layout(NamedTuple):
    """Where each tensor lives in the flat vector (a pytree of arrays, an argument to jit).

    ``segment`` int32 [N]: tensor index of each element; ``segment_size`` float32 [n_tensors];
    ``row`` int32 [N]: row index (rows of tensors of rank >= 2; other tensors share a dummy
    last row); ``row_size`` float32 [n_rows + 1]; ``centred`` bool [N]: element of a tensor of
    rank >= 2.
    """

    segment: np.ndarray
    segment_size: np.ndarray
    row: np.ndarray
    row_size: np.ndarray
    centred: np.ndarray


def make_layout(shapes: Sequence[tuple[int, ...]]) -> Layout:
    """The layout of tensors of ``shapes`` flattened (row-major) and concatenated in order."""
    segment, row, centred, row_size = [], [], [], []
    sizes = [int(math.prod(s)) for s in shapes]
    n_rows = sum(s[0] for s in shapes if len(s) >= 2)
    next_row = 0
    for i, (shape, n) in enumerate(zip(shapes, sizes)):
        segment.append(np.full([n], i, np.int32))
        if len(shape) >= 2 and n > 0:
            per_row = n // shape[0]
            row.append(np.repeat(np.arange(next_row, next_row + shape[0], dtype=np.int32),
                                 per_row))
            row_size += [per_row] * shape[0]
            next_row += shape[0]
            centred.append(np.ones([n], bool))
        else:
            row.append(np.full([n], n_rows, np.int32))
            centred.append(np.zeros([n], bool))
    row_size.append(1)  # the dummy row of the tensors that are not centred

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros([0], dtype)

    return Layout(cat(segment, np.int32), np.asarray(sizes, np.float32), cat(row, np.int32),
                  np.asarray(row_size, np.float32), cat(centred, bool))


# -- op semantics on operand values (the same for the vector and the scalar program) --------

def _reduce(op, x, layout):
    x = op.pre(x)
    combine = jax.ops.segment_sum if op.combine == "sum" else jax.ops.segment_max
    total = combine(x, layout.segment, layout.segment_size.shape[0], indices_are_sorted=True)
    return saturate(op.finish(total, layout.segment_size))[layout.segment]


def _center(x, layout):
    total = jax.ops.segment_sum(x, layout.row, layout.row_size.shape[0],
                                indices_are_sorted=True)
    mean = (total / layout.row_size)[layout.row]
    return saturate(jnp.where(layout.centred, x - mean, x))


def _semantics(name: str, vector: bool):
    """``f(args, layout) -> value`` of VM op ``name``; ``vector``: operands are full rows
    (reductions and ``center`` act per tensor), else scalars (they never occur there)."""
    if name == NOP:
        return lambda args, layout: jnp.zeros_like(args[0])
    if name == COPY:
        return lambda args, layout: args[0]
    if name.endswith("@scalar"):
        op = OPS[name.split("@")[0]]
        if op.kind == CENTER:
            return lambda args, layout: saturate(args[0])
        return lambda args, layout: saturate(op.finish(op.pre(args[0]), 1))
    op = OPS[name]
    if op.kind == ELEMENTWISE:
        return lambda args, layout: op.fn(*args[: op.arity])
    if not vector:  # unreachable in a scalar program: encode() gives it "@scalar" codes
        return lambda args, layout: jnp.zeros_like(args[0])
    if op.kind == REDUCTION:
        return lambda args, layout: _reduce(op, args[0], layout)
    return lambda args, layout: _center(args[0], layout)


_VECTOR_OPS = tuple(_semantics(name, True) for name in VM_OP_NAMES)
_ARITIES = tuple(OPS[name].arity if name in OPS else 1 for name in VM_OP_NAMES)
"""Operands each VM op reads (``nop``, ``copy`` and the ``@scalar`` variants read one)."""
_MUL, _ADD = OPS["mul"].fn, OPS["add"].fn
_SCALAR_OPS = tuple(_semantics(name, False) for name in VM_OP_NAMES)


def _registers_of(program: EncodedProgram) -> RegisterMap:
    return RegisterMap(int(program.scalar_codes.shape[0]), int(program.outputs.shape[0]) - 1)


def scalar_rows(program: EncodedProgram, lr, steps: int, T, lr_scale=None) -> jax.Array:
    """The scalar registers of steps ``t = 1 .. steps``: float32 [steps, n_scalar], the
    scalar program run on all steps at once (it reads only ``lr t T`` and constants).
    ``lr_scale`` (float32 [steps], optional): a schedule, the program reads ``lr *
    lr_scale[t - 1]`` as ``lr`` at step ``t`` (``tasks.schedule``).  Pure and jit-able;
    ``steps`` is static.  It depends on no parameter shapes, so one compilation of
    :data:`scalar_registers` serves every task of a bucket."""
    rm = _registers_of(program)
    t = jnp.arange(1, steps + 1, dtype=jnp.float32)
    lr_row = jnp.full([steps], lr, jnp.float32)
    if lr_scale is not None:
        lr_row = lr_row * jnp.asarray(lr_scale, jnp.float32)[:steps]
    rows = jnp.concatenate([
        jnp.stack([lr_row, t, jnp.full([steps], T, jnp.float32)]),
        jnp.broadcast_to(jnp.asarray(program.constants, jnp.float32)[:, None],
                         (rm.max_constants, steps)),
        jnp.zeros([rm.max_statements, steps], jnp.float32)])

    def statement(i, rows):
        index = program.scalar_operands[i] - rm.first_scalar
        args = tuple(rows[jnp.maximum(index[k], 0)] for k in range(3))
        value = lax.switch(program.scalar_codes[i], _SCALAR_OPS, args, None)
        return lax.dynamic_update_index_in_dim(rows, value, rm.first_scalar_statement + i, 0)

    rows = lax.fori_loop(0, program.n_scalar_statements, statement, rows)
    return rows.T


@functools.partial(jax.jit, static_argnums=2)
def scalar_registers(program: EncodedProgram, lrs, steps: int, T, lr_scale=None) -> jax.Array:
    """:func:`scalar_rows` for each learning rate of ``lrs`` [L] (one schedule ``lr_scale``
    for all), float32 [L, steps, n_scalar]; jitted once per (bucket, L, steps, schedule or
    none)."""
    return jax.vmap(scalar_rows, in_axes=(None, 0, None, None, None))(
        program, lrs, steps, T, lr_scale)


class Machine:
    """Runs encoded programs on one flat float32 parameter vector (pure, jit-able methods).

    Per training run: ``sc = scalar_rows(program, lr, steps, T)`` once and
    ``regs = init()``, then each step ``w, regs = step(program, regs, w, g, sc[t - 1])``.
    The state slots live in ``regs`` (:meth:`slots`).  Batch runs (learning rates, seeds)
    with :meth:`step_rows`, not ``jax.vmap`` over the machine (same results, far slower to
    trace).
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], max_statements: int = 32,
                 max_slots: int = 4, *, fold: bool = True):
        self.shapes = tuple(tuple(int(d) for d in s) for s in shapes)
        self.size = sum(int(math.prod(s)) for s in self.shapes)
        self.registers = RegisterMap(max_statements, max_slots)
        self.layout = make_layout(self.shapes)
        self.fold = bool(fold)

    def encode(self, program: ProgramLike) -> EncodedProgram:
        return encode(program, self.registers.max_statements, self.registers.max_slots,
                      fold=self.fold)

    def init(self) -> jax.Array:
        """The register file before step 1: zeros (so every slot starts at zero),
        float32 [n_vector, N]."""
        return jnp.zeros([self.registers.n_vector, self.size], jnp.float32)

    def slots(self, regs: jax.Array) -> jax.Array:
        """The state slots after a step, float32 [max_slots, N] (zero past the program's)."""
        return regs[FIRST_SLOT:FIRST_SLOT + self.registers.max_slots]

    def step(self, program: EncodedProgram, regs: jax.Array, w: jax.Array, g: jax.Array,
             scalars: jax.Array, layout: Layout | None = None) -> tuple[jax.Array, jax.Array]:
        """One update: the vector program on weights ``w`` and gradient ``g`` (flat [N]) with
        this step's scalar registers (row ``t - 1`` of :func:`scalar_rows`).  Returns
        ``(w - update, regs)``, the slots of ``regs`` updated.  ``layout`` defaults to this
        machine's (pass it as a jit argument to keep it out of the compiled constants).

        The weights live outside the register file between steps on purpose: a consumer
        reading them from it (the loss) would make XLA copy the whole file every step."""
        update, regs = self.update(program, regs, w, g, scalars, layout)
        return w - update, regs

    def update(self, program: EncodedProgram, regs: jax.Array, w: jax.Array, g: jax.Array,
               scalars: jax.Array, layout: Layout | None = None) -> tuple[jax.Array, jax.Array]:
        """The update itself (float32 [N]) and the new register file: :meth:`step` without
        applying the update.  ``scalars`` is float32 [n_scalar], one value per scalar
        register, or [n_scalar, N], one per register and element: the probe mode
        (:func:`probe_runs`) gives each tensor its own ``lr`` and ``T`` that way."""
        update, regs = self.update_rows(program, regs[None], w[None], g[None], scalars[None],
                                        layout)
        return update[0], regs[0]

    def step_rows(self, program: EncodedProgram, regs: jax.Array, w: jax.Array, g: jax.Array,
                  scalars: jax.Array, layout: Layout | None = None) -> tuple[jax.Array, jax.Array]:
        """:meth:`step` on ``B`` independent runs at once (learning rates x seeds): ``regs``
        [B, n_vector, N], ``w`` and ``g`` [B, N], ``scalars`` [B, n_scalar] (or [B, n_scalar,
        N]); row ``b`` of the results is :meth:`step` on row ``b`` of the arguments."""
        update, regs = self.update_rows(program, regs, w, g, scalars, layout)
        return w - update, regs

    def update_rows(self, program: EncodedProgram, regs: jax.Array, w: jax.Array,
                    g: jax.Array, scalars: jax.Array,
                    layout: Layout | None = None) -> tuple[jax.Array, jax.Array]:
        """:meth:`update` on a leading axis of ``B`` runs (see :meth:`step_rows`).

        The runs share the program, so the statement loop and each statement's switch are
        not batched: every op's branch maps itself over the runs (``jax.vmap`` inside the
        branch), and a statement's first operand is fetched before the switch, once.  Mapping the whole update instead (``vmap`` over the loop) gives the same
        computation but makes JAX batch every branch of every switch once per mapped axis
        and twice per loop (the while loop's fixed point): tracing digits_cnn_s's trainer
        took 6.0 s that way, 1.4 s this way (docs/performance.md)."""
        layout = self.layout if layout is None else layout
        first_scalar = self.registers.first_scalar
        regs = lax.dynamic_update_slice_in_dim(
            regs, jnp.stack([w, g], axis=1).astype(jnp.float32), W, 1)

        def fetch(regs, scalars, index, row, scale, offset):
            def scalar(index):
                return scalars[jnp.maximum(index - first_scalar, 0)]

            value = lax.dynamic_index_in_dim(regs, row, 0, keepdims=False)
            value = jnp.where(index >= first_scalar, scalar(index), value)
            if not self.fold:  # the folded operands' selects cost even when unused
                return value
            value = jnp.where(scale >= 0, _MUL(scalar(scale), value), value)
            return jnp.where(offset >= 0, _ADD(value, scalar(offset)), value)

        def operand(regs, scalars, i, k):
            return fetch(regs, scalars, program.operands[i, k], program.rows[i, k],
                         program.scales[i, k], program.offsets[i, k])

        def branch(semantics, arity):
            def one_run(first, regs, scalars, i):
                rest = tuple(operand(regs, scalars, i, k) for k in range(1, arity))
                return semantics((first, *rest), layout)

            return lambda first, regs, i: jax.vmap(one_run, in_axes=(0, 0, 0, None))(
                first, regs, scalars, i)

        branches = [branch(f, arity) for f, arity in zip(_VECTOR_OPS, _ARITIES)]

        def statement(i, regs):
            # Every op reads its first operand: it is fetched once, before the switch; only
            # the 16 ops of two or three operands fetch the others in their branches.  With
            # every operand fetched in every branch (56 of them), tracing and compiling those
            # reads was most of a trainer's first run (docs/performance.md).
            first = jax.vmap(operand, in_axes=(0, 0, None, None))(regs, scalars, i, 0)
            value = lax.switch(program.codes[i], branches, first, regs, i)
            return lax.dynamic_update_index_in_dim(regs, value, program.targets[i], 1)

        regs = lax.fori_loop(0, program.n_statements, statement, regs)
        out = program.outputs[0]

        def final(regs, scalars):
            return fetch(regs, scalars, out, jnp.where(out < first_scalar, out, ZERO),
                         program.update_fold[0], program.update_fold[1])

        update = jax.vmap(final)(regs, scalars)
        return jnp.broadcast_to(update, w.shape), regs


# -- probe mode: the programs.fingerprint and programs.check runs ---------------------------

def probe_runs(machine: Machine, program: EncodedProgram, lrs, totals, ws, gs) -> tuple:
    """Run ``program`` for ``S`` steps on given inputs, each tensor of ``machine`` with its own
    ``lr`` and ``T``: the probe of ``programs.fingerprint``.  Pure and jit-able.

    ``lrs``, ``totals`` float32 [n_tensors]; ``ws``, ``gs`` float32 [V, S, N]: ``V`` input
    sets, each a fresh ``w`` and ``g`` at every step (the weights are inputs here, not
    updated: every step sees a new point).  Returns ``(updates, slots)``: float32 [V, S, N]
    and [V, S, max_slots, N], the update and the slots after each step (slots zero at
    step 1, carried from step to step, separately for each input set)."""
    steps = ws.shape[1]
    per_tensor = jax.vmap(scalar_rows, in_axes=(None, 0, None, 0))(program, lrs, steps, totals)
    # [n_tensors, S, n_scalar] -> [S, n_scalar, N]: one column of scalars per element
    scalars = jnp.transpose(per_tensor[machine.layout.segment], (1, 2, 0))

    n_sets = ws.shape[0]

    def step(regs, xs):  # every input set at once: Machine.update_rows maps over them
        w, g, sc = xs
        update, regs = machine.update_rows(program, regs, w, g,
                                           jnp.broadcast_to(sc, (n_sets,) + sc.shape))
        return regs, (update, regs[:, FIRST_SLOT:FIRST_SLOT + machine.registers.max_slots])

    regs = jnp.broadcast_to(machine.init(), (n_sets,) + machine.init().shape)
    updates, slots = lax.scan(step, regs, (jnp.moveaxis(ws, 1, 0), jnp.moveaxis(gs, 1, 0),
                                           scalars))[1]
    return jnp.moveaxis(updates, 0, 1), jnp.moveaxis(slots, 0, 1)
