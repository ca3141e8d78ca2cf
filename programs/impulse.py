"""Whether the past reaches the update: the impulse probe.

Contract of :func:`history_reaches_update`: True when changing the gradient (or the weights)
at one step changes some *later* update of ``program`` by more than ``RELATIVE_CHANGE`` of
that case's largest update; False when no later update moves.  It is a measurement, not a
reading of the text: a slot that the update reads only where it cannot matter (the condition
of a ``where`` that holds at every step but the first, a term a thousand times smaller than
``RELATIVE_CHANGE`` allows) does not count, however the slot is wired.

The probe: the inputs of ``programs.fingerprint`` (its ``PROBE_CASES``, ``STEPS`` steps, input
set 0) and, for every step ``k < STEPS`` and each of ``g`` and ``w``, a copy whose value at
step ``k`` alone is replaced by another draw (input set 1's); the updates at steps after ``k``
are compared with the unchanged run's.  ``1 + 2 * (STEPS - 1)`` input sets in one call of the
search's compile-once engine (``programs.vm.probe_runs``; compiled once per process and
capacity bucket).  A difference must show within ``STEPS - k`` steps: state that stays silent
longer (a slot read every 100 steps) is not seen.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from programs.fingerprint import (
    CASE_BOUNDS,
    PROBE_CASES,
    STEPS,
    case_inputs,
    compile_probe,
    run_compiled,
)

RELATIVE_CHANGE = 1e-4
"""A later update counts as changed when some element moves by more than this fraction of the
largest update magnitude of its probe case (over the unchanged run's steps); float32 noise of
an unchanged computation is zero (same inputs, same arithmetic), so this only ignores
contributions too small to matter to training."""

def impulse_inputs() -> tuple[np.ndarray, np.ndarray]:
    """``ws``, ``gs``: float32 ``[1 + 2 * (STEPS - 1), STEPS, N]`` (``N`` the probe cases'
    elements, concatenated).  Set 0 is the fingerprint's input set 0; set ``1 + 2 * k`` has
    another ``g`` at step ``k`` (0-based), set ``2 + 2 * k`` another ``w`` there."""
    def flat(parts):
        return np.concatenate([p.reshape(STEPS, -1) for p in parts], 1)

    w0 = flat([case_inputs(c, 0)[0] for c in PROBE_CASES])
    g0 = flat([case_inputs(c, 0)[1] for c in PROBE_CASES])
    g1 = flat([case_inputs(c, 1)[1] for c in PROBE_CASES])
    # another w of the same scale: the weights of input set 1 equal set 0's by design
    w1 = flat([case_inputs(c, 1)[1] / c.g_scale * c.w_scale for c in PROBE_CASES])
    ws, gs = [w0], [g0]
    for k in range(STEPS - 1):
        g = g0.copy()
        g[k] = g1[k]
        ws.append(w0)
        gs.append(g)
        w = w0.copy()
        w[k] = w1[k]
        ws.append(w)
        gs.append(g0)
    return np.stack(ws).astype(np.float32), np.stack(gs).astype(np.float32)


@functools.cache
def _runner(max_statements: int, max_slots: int):
    return compile_probe(*impulse_inputs(), max_statements, max_slots, key="impulse")


def impulse_updates(program) -> np.ndarray:
    """The updates of ``program`` on :func:`impulse_inputs`: float32 ``[sets, STEPS, N]``."""
    return run_compiled(program, _runner)[0]


def history_reaches_update(program) -> bool:
    """See the module docstring."""
    if not program.slots:
        return False
    updates = impulse_updates(program)
    base = updates[0]
    for lo, hi in itertools.pairwise(CASE_BOUNDS):
        case = base[:, lo:hi]
        finite = np.abs(case[np.isfinite(case)])
        scale = float(finite.max()) if finite.size else 0.0
        for k in range(STEPS - 1):
            for changed in updates[1 + 2 * k:3 + 2 * k, k + 1:, lo:hi]:
                later = case[k + 1:]
                same_nan = np.isnan(changed) == np.isnan(later)
                moved = np.abs(np.nan_to_num(changed - later, nan=0.0)) > RELATIVE_CHANGE * scale
                if not same_nan.all() or moved.any():
                    return True
    return False
