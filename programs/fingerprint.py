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

Engine: the probe is the search's own compile-once engine in probe mode
(``programs.vm.probe_runs``): the three probe tensors are the tensors of one ``Machine``
(reductions and ``center`` per tensor, as in training), each with its own scalar registers,
both input variants in one call, compiled once per process and capacity bucket (up to 64 live
statements and 8 slots share the first), never per program.  Results equal the reference
interpreter's (``programs.step_tensor``) up to float32 rounding of the order of sums.
``probe(program)`` is run once per child by the search and feeds both :func:`fingerprint` and
``programs.check``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import jax
import numpy as np

from programs import export_cache
from programs.statement import live_statements
from programs.vm import Machine, probe_runs

STEPS = 8
SIGNIFICANT_DIGITS = 5
N_VARIANTS = 2   # input sets: 0 is the fingerprint's, 1 has another g (see programs.check)
VERSION = "fp2"
"""Changes whenever the probe, the engine's arithmetic or the rounding changes: fingerprints of
another version are not comparable (a run directory records the version it was made with).
fp1: a probe interpreter of its own; fp2: the compile-once engine (``programs.vm``)."""


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


# -- the probe run: programs.vm in probe mode -------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Probe:
    """A program run on the probe inputs (:func:`probe`): ``runs[variant][case]`` is float32
    ``(STEPS, 1 + n_slots, *case.shape)``, the update and the new value of every slot at each
    step.  One probe serves the fingerprint (variant 0) and ``programs.check`` (both)."""

    runs: tuple[tuple[np.ndarray, ...], ...]

    def updates(self, variant: int = 0) -> tuple[np.ndarray, ...]:
        """The updates of every case, float32 ``(STEPS, *case.shape)``."""
        return tuple(out[:, 0] for out in self.runs[variant])


_SHAPES = tuple(case.shape for case in PROBE_CASES)
CASE_BOUNDS = np.cumsum((0,) + tuple(int(np.prod(c.shape)) for c in PROBE_CASES))
"""Case ``i``'s elements are ``[CASE_BOUNDS[i], CASE_BOUNDS[i + 1])`` of the engine's flat
vector (the probe cases concatenated, flattened)."""


def _bucket(n: int, least: int) -> int:
    size = least
    while size < n:
        size *= 2
    return size


def compile_probe(ws, gs, max_statements: int, max_slots: int, key=None):
    """``(machine, run)``: ``run(encoded_program)`` is ``programs.vm.probe_runs`` jitted on a
    machine whose tensors are the probe cases, with the cases' ``lr`` and ``T`` and the input
    sets ``ws``, ``gs`` (float32 ``[V, STEPS, N]``) closed over; one compile per call.
    ``key``: names the input sets for ``programs.export_cache`` (the traced probe is kept on
    disk when the cache is on; None: never kept)."""
    machine = Machine(_SHAPES, max_statements, max_slots, fold=False)
    lrs = np.array([c.lr for c in PROBE_CASES], np.float32)
    totals = np.array([c.T for c in PROBE_CASES], np.float32)
    run = jax.jit(lambda program: probe_runs(machine, program, lrs, totals, ws, gs))
    if key is not None:
        run = export_cache.Exported(run, ("probe", key, max_statements, max_slots))
    return machine, run


def run_compiled(program, runner) -> tuple[np.ndarray, np.ndarray]:
    """``program``'s live statements run by ``runner(max_statements, max_slots)`` (a cached
    :func:`compile_probe` of one input set) in its capacity bucket: statements 64, 128 ...,
    slots 8, 16 ... (every baseline fits the first).  Returns ``(updates, slots)`` as
    ``probe_runs`` does."""
    live = dataclasses.replace(program, body=live_statements(program))
    machine, run = runner(_bucket(len(live.body), 64), _bucket(len(program.slots), 8))
    updates, slots = jax.device_get(run(machine.encode(live)))
    return np.asarray(updates), np.asarray(slots)


@functools.cache
def _runner(max_statements: int, max_slots: int):
    """The probe of one capacity bucket on the fingerprint's input sets; compiled once per
    process and bucket, never per program."""
    inputs = [[case_inputs(c, v) for c in PROBE_CASES] for v in range(N_VARIANTS)]
    ws = np.stack([np.concatenate([w.reshape(STEPS, -1) for w, _ in v], 1) for v in inputs])
    gs = np.stack([np.concatenate([g.reshape(STEPS, -1) for _, g in v], 1) for v in inputs])
    # The input sets are fixed by this module's source (in the export cache's digest).
    return compile_probe(ws, gs, max_statements, max_slots, key="fingerprint")


def probe(program) -> Probe:
    """Run the live statements of ``program`` (a ``programs.Program``) for ``STEPS`` steps on
    every probe case and input variant, in the compile-once engine (``programs.vm``, probe
    mode: the same machine as the search's training runs); one compile per capacity bucket
    and process (:func:`run_compiled`)."""
    n_slots = len(program.slots)
    updates, slots = run_compiled(program, _runner)
    outputs = np.concatenate([updates[:, :, None], slots[:, :, :n_slots]], axis=2)
    return Probe(tuple(
        tuple(np.asarray(variant[:, :, lo:hi]).reshape(STEPS, 1 + n_slots, *c.shape)
              for c, lo, hi in zip(PROBE_CASES, CASE_BOUNDS[:-1], CASE_BOUNDS[1:]))
        for variant in outputs))


def run_probes(program, variant: int = 0) -> tuple[np.ndarray, ...]:
    """``probe(program).runs[variant]``: one float32 array per case of ``PROBE_CASES``, shape
    ``(STEPS, len(program.outputs), *case.shape)``, the update and the new slot values at
    every step.  ``variant`` (``0 <= variant < N_VARIANTS``) picks the input set: 0 is the
    fingerprint's; the others have the same ``w`` and another ``g``."""
    if not 0 <= variant < N_VARIANTS:
        raise ValueError(f"variant must be in [0, {N_VARIANTS}), got {variant}")
    return probe(program).runs[variant]


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


def fingerprint(program, probed: Probe | None = None) -> str:
    """16 hex digits hashing the program's rounded probe updates (see the module docstring).
    ``probed``: ``probe(program)`` when the caller has it already (the search probes each
    child once, for ``programs.check`` and this)."""
    probed = probe(program) if probed is None else probed
    h = hashlib.sha256(f"{VERSION}:{STEPS}:{SIGNIFICANT_DIGITS}".encode())
    for updates in probed.updates(0):
        h.update(round_significant(updates).tobytes())
    return h.hexdigest()[:16]
