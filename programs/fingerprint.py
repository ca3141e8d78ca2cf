"""Functional-equivalence hash of a program, and the probe runs it (and ``programs.check``) use.

Contract of :func:`fingerprint`: two programs get the same string when they compute the same
updates on the fixed probe inputs, rounded to ``SIGNIFICANT_DIGITS`` significant digits; so
programs differing only by dead code, names of variables, or the order of independent
statements always agree, and programs computing different updates differ (unless they agree to
that many digits on every probe value).  The string is the same in every process on the same
machine and software (explicit seeds, no per-process state).

The probe: ``STEPS`` = 8 steps (``t = 1, 2, ...``; slots zero at step 1, then carried; 8 so
that periodic rules such as Lookahead's every 5 steps show, at no measurable cost over 4) on
each of ``PROBE_CASES``, tensors of rank 1, 2 and 3 (so reductions and ``center`` matter),
each with its own ``lr`` and ``T`` (so a program reading ``lr`` or ``T`` cannot match one
using a constant) and its own scale of ``g``.  ``w`` and ``g`` are fresh normal draws at every step
from fixed seeds.  Only the updates are hashed: slots matter through the later updates they
change, and two programs with the same updates are the same optimizer.

Rounding: each float32 update value is rounded to ``SIGNIFICANT_DIGITS`` = 5 significant
decimal digits (``-0.0`` counts as ``0.0``).  Known failure mode: a value within a few float32
ulps of a rounding boundary.  Programs that are mathematically equal but round differently
(``(a + b) + c`` against ``a + (b + c)``), or the same program on another CPU or XLA build
whose transcendental functions differ in the last bit, can then hash differently (a wasted
evaluation, never a wrong cache hit); and different programs that agree to 5 digits on every
probe value share a hash.

Speed: the probe runs in one jitted evaluator, compiled once per process (and per capacity
bucket: programs up to 64 live statements, 8 slots and 32 constants share the first), which
takes the program as data (op codes and register indices) and dispatches each statement with
``lax.switch`` over the three probe tensors laid end to end (reductions are segment-wise).  No
program is ever compiled on its own.  Results equal the reference interpreter's
(``programs.step_tensor``) up to float32 rounding of the order of sums.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from programs.ops import CENTER, OP_CODES, OP_NAMES, OPS, REDUCTION, saturate
from programs.program import INPUTS, Program
from programs.simplify import live_statements

STEPS = 8
SIGNIFICANT_DIGITS = 5
N_VARIANTS = 2   # input sets: 0 is the fingerprint's, 1 has another g (see programs.check)
_VERSION = "fp1"  # change when the probe or the rounding changes: old hashes become invalid


@dataclasses.dataclass(frozen=True)
class ProbeCase:
    """One probe tensor: its shape, the scalars ``lr`` and ``T``, and the seed and scales of
    its normal ``w`` and ``g`` draws (one per step)."""

    shape: tuple[int, ...]
    lr: float
    T: float
    seed: int
    g_scale: float
    w_scale: float


PROBE_CASES: tuple[ProbeCase, ...] = (
    ProbeCase((23,), lr=0.01, T=1000.0, seed=11, g_scale=1.0, w_scale=1.0),
    ProbeCase((4, 6), lr=0.003, T=317.0, seed=12, g_scale=0.001, w_scale=0.1),
    ProbeCase((2, 3, 5), lr=0.1, T=53.0, seed=13, g_scale=10.0, w_scale=3.0),
)


def case_inputs(case: ProbeCase, variant: int) -> tuple[np.ndarray, np.ndarray]:
    """``w`` and ``g`` of every step, float32 arrays of shape ``(STEPS, *case.shape)``.
    Every variant has the same ``w``; each has its own ``g``."""
    w_rng = np.random.default_rng([case.seed, 0])
    w = (w_rng.standard_normal((STEPS, *case.shape)) * case.w_scale).astype(np.float32)
    g_rng = np.random.default_rng([case.seed, 1 + variant])
    g = (g_rng.standard_normal((STEPS, *case.shape)) * case.g_scale).astype(np.float32)
    return w, g


# -- the evaluator -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Layout:
    """The probe tensors laid end to end in one flat vector."""

    sizes: tuple[int, ...]
    segment: np.ndarray     # (N,) case of each element
    row: np.ndarray         # (N,) row (index along the first axis) of each element, global
    row_size: np.ndarray    # (rows,) elements per row
    centered: np.ndarray    # (N,) bool: element of a tensor of rank >= 2


def _layout(cases: tuple[ProbeCase, ...]) -> _Layout:
    segment, row, row_size, centered = [], [], [], []
    for k, case in enumerate(cases):
        size = int(np.prod(case.shape))
        rows = case.shape[0] if len(case.shape) >= 2 else 1
        segment += [k] * size
        row += [len(row_size) + i // (size // rows) for i in range(size)]
        row_size += [size // rows] * rows
        centered += [len(case.shape) >= 2] * size
    return _Layout(tuple(int(np.prod(c.shape)) for c in cases), np.array(segment, np.int32),
                   np.array(row, np.int32), np.array(row_size, np.float32),
                   np.array(centered, bool))


_LAYOUT = _layout(PROBE_CASES)
_N_INPUTS = len(INPUTS)
_SCALAR_INPUTS = frozenset({"lr", "t", "T"})


def _scalar_variant_codes() -> dict[str, int]:
    """Codes after the op codes: reductions and ``center`` of a scalar-valued operand (all
    elements equal), which the interpreter applies to a 0-d array."""
    special = [n for n in OP_NAMES if OPS[n].kind in (REDUCTION, CENTER)]
    return {name: len(OP_NAMES) + k for k, name in enumerate(special)}


_SCALAR_CODES = _scalar_variant_codes()


def _branches(lay: _Layout):
    """The switch branches, indexed by code, each ``(x, y, z) -> flat vector``."""
    segment, row = jnp.asarray(lay.segment), jnp.asarray(lay.row)
    sizes = jnp.asarray(np.array(lay.sizes, np.float32))
    n_seg, n_rows = len(lay.sizes), len(lay.row_size)
    row_size, centered = jnp.asarray(lay.row_size), jnp.asarray(lay.centered)

    def reduce(op):
        def branch(x, y, z):
            if op.combine == "sum":
                total = jax.ops.segment_sum(op.pre(x), segment, n_seg)
            else:
                total = jax.ops.segment_max(op.pre(x), segment, n_seg)
            return saturate(op.finish(total, sizes))[segment]
        return branch

    def center(x, y, z):
        mean = jax.ops.segment_sum(x, row, n_rows) / row_size
        return saturate(jnp.where(centered, x - mean[row], x))

    branches = []
    for name in OP_NAMES:
        op = OPS[name]
        if op.kind == REDUCTION:
            branches.append(reduce(op))
        elif op.kind == CENTER:
            branches.append(center)
        else:
            branches.append([lambda x, y, z, f=op.fn: f(x),
                             lambda x, y, z, f=op.fn: f(x, y),
                             lambda x, y, z, f=op.fn: f(x, y, z)][op.arity - 1])
    for name in _SCALAR_CODES:
        op = OPS[name]
        if op.kind == REDUCTION:  # the sum or max of one element is that element
            branches.append(lambda x, y, z, op=op: saturate(op.finish(op.pre(x), 1)))
        else:
            branches.append(lambda x, y, z: x)
    return branches


@functools.cache
def _evaluator():
    """The jitted probe runner: compiled once per capacity bucket, never per program."""
    lay = _LAYOUT
    branches = _branches(lay)
    per_case = [[case_inputs(c, v) for c in PROBE_CASES] for v in range(N_VARIANTS)]
    w_all = np.stack([np.concatenate([w.reshape(STEPS, -1) for w, _ in v], 1) for v in per_case])
    g_all = np.stack([np.concatenate([g.reshape(STEPS, -1) for _, g in v], 1) for v in per_case])
    lr = np.concatenate([[c.lr] * s for c, s in zip(PROBE_CASES, lay.sizes)]).astype(np.float32)
    total = np.concatenate([[c.T] * s for c, s in zip(PROBE_CASES, lay.sizes)]).astype(np.float32)
    n = len(lay.segment)

    @jax.jit
    def run(codes, args, n_stmt, consts, outputs, variant):
        n_slots, n_consts, capacity = outputs.shape[0] - 1, consts.shape[0], codes.shape[0]
        stmt_base = _N_INPUTS + n_slots + n_consts
        const_regs = jnp.broadcast_to(consts[:, None], (n_consts, n))
        ts = jnp.arange(1, STEPS + 1, dtype=jnp.float32)

        def statement(i, regs):
            a = args[i]
            out = lax.switch(codes[i], branches, regs[a[0]], regs[a[1]], regs[a[2]])
            return regs.at[stmt_base + i].set(out)

        def step(slots, xs):
            w, g, t = xs
            regs = jnp.concatenate([
                w[None], g[None], jnp.asarray(lr)[None], jnp.full((1, n), t),
                jnp.asarray(total)[None], slots, const_regs,
                jnp.zeros((capacity, n), jnp.float32)])
            regs = lax.fori_loop(0, n_stmt, statement, regs)
            out = regs[outputs]
            return out[1:], out

        slots0 = jnp.zeros((n_slots, n), jnp.float32)
        xs = (jnp.asarray(w_all)[variant], jnp.asarray(g_all)[variant], ts)
        return lax.scan(step, slots0, xs)[1]   # (STEPS, 1 + n_slots, n)

    return run


def _bucket(n: int, least: int) -> int:
    size = least
    while size < n:
        size *= 2
    return size


def _encode(program: Program):
    """The live statements of ``program`` as evaluator data (sizes rounded up to buckets)."""
    body = live_statements(program)
    slots = program.slots
    n_slots = _bucket(len(slots), 8)
    consts: dict[float, int] = {}
    for s in body:
        for a in s.args:
            if not isinstance(a, str):
                consts.setdefault(float(np.float32(a)), len(consts))
    n_consts = _bucket(len(consts), 32)
    slot_base, const_base = _N_INPUTS, _N_INPUTS + n_slots
    stmt_base = const_base + n_consts
    reg = {name: i for i, name in enumerate(INPUTS)}
    scalar = {name: name in _SCALAR_INPUTS for name in INPUTS}
    for k, name in enumerate(slots):
        reg[name], scalar[name] = slot_base + k, False
    codes = np.zeros(_bucket(len(body), 64), np.int32)
    args = np.zeros((len(codes), 3), np.int32)
    for i, s in enumerate(body):
        regs = [reg[a] if isinstance(a, str) else const_base + consts[float(np.float32(a))]
                for a in s.args]
        operand_scalar = [scalar[a] if isinstance(a, str) else True for a in s.args]
        kind = OPS[s.op].kind
        if kind == REDUCTION:
            is_scalar = True
        elif kind == CENTER:
            is_scalar = operand_scalar[0]
        else:
            is_scalar = all(operand_scalar)
        special = kind in (REDUCTION, CENTER) and operand_scalar[0]
        codes[i] = _SCALAR_CODES[s.op] if special else OP_CODES[s.op]
        args[i, : len(regs)] = regs
        reg[s.target], scalar[s.target] = stmt_base + i, is_scalar
    outputs = [reg[o] for o in program.outputs] + list(range(slot_base + len(slots), const_base))
    const_values = np.zeros(n_consts, np.float32)
    const_values[: len(consts)] = list(consts)
    return codes, args, np.int32(len(body)), const_values, np.array(outputs, np.int32)


def run_probes(program: Program, variant: int = 0) -> tuple[np.ndarray, ...]:
    """Run ``program`` for ``STEPS`` steps on every probe case.

    Returns one float32 array per case of ``PROBE_CASES``, shape
    ``(STEPS, len(program.outputs), *case.shape)``: the update and the new slot values at
    every step.  ``variant`` (``0 <= variant < N_VARIANTS``) picks the input set: 0 is the
    fingerprint's; the others have the same ``w`` and another ``g``.
    """
    if not 0 <= variant < N_VARIANTS:
        raise ValueError(f"variant must be in [0, {N_VARIANTS}), got {variant}")
    flat = np.asarray(_evaluator()(*_encode(program), np.int32(variant)))
    flat = flat[:, : len(program.outputs)]
    bounds = np.cumsum((0,) + _LAYOUT.sizes)
    return tuple(flat[:, :, lo:hi].reshape(STEPS, -1, *c.shape)
                 for c, lo, hi in zip(PROBE_CASES, bounds[:-1], bounds[1:]))


def round_significant(x, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """``x`` (flattened) rounded to ``digits`` significant decimal digits, as int64 pairs
    ``(mantissa, exponent)`` with ``value ~= mantissa * 10**exponent`` and
    ``10**(digits-1) <= |mantissa| < 10**digits``; ``0.0`` and ``-0.0`` give ``(0, 0)``, and
    NaN and the infinities get distinct sentinel exponents."""
    x = np.asarray(x, np.float64).ravel()
    mantissa = np.zeros(x.shape, np.int64)
    exponent = np.zeros(x.shape, np.int64)
    regular = np.isfinite(x) & (x != 0)
    v = x[regular]
    e = np.floor(np.log10(np.abs(v))).astype(np.int64) - (digits - 1)
    m = np.rint(v / 10.0 ** e)
    small = np.abs(m) < 10 ** (digits - 1)   # log10 just below a power of ten
    m[small] = np.rint(v[small] / 10.0 ** (e[small] - 1))
    e[small] -= 1
    big = np.abs(m) >= 10**digits            # 9.99995e0 rounds to 10.0000e0
    m[big] = np.rint(m[big] / 10)
    e[big] += 1
    mantissa[regular] = m.astype(np.int64)
    exponent[regular] = e
    exponent[np.isnan(x)] = 1 << 40
    exponent[np.isposinf(x)] = 1 << 41
    exponent[np.isneginf(x)] = 1 << 42
    return np.stack([mantissa, exponent], axis=-1)


def fingerprint(program: Program) -> str:
    """16 hex digits hashing the program's rounded probe updates (see the module docstring)."""
    h = hashlib.sha256(f"{_VERSION}:{STEPS}:{SIGNIFICANT_DIGITS}".encode())
    for case_out in run_probes(program):
        h.update(round_significant(case_out[:, 0]).tobytes())
    return h.hexdigest()[:16]
