"""The cheap screen a candidate passes before the search spends an evaluation on it.

Contract of :func:`check`: ``Check(ok=True, reason="ok")`` for a program that is valid, whose
outputs are finite and whose update does not saturate on the probe inputs of
``programs.fingerprint`` (``STEPS`` steps on three tensors), whose update is not zero
everywhere there, and whose update changes when ``g`` is drawn anew (same ``w``, ``lr``,
``t``, ``T``); otherwise ``ok=False`` and ``reason`` names the first failed test, in that
order.  Deterministic; never raises for a ``Program``.

Saturation counts as overflow: the ops clip every result to the float32 range instead of
returning Inf, so an update at ``+-float32 max`` is an Inf in disguise.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from programs.errors import ProgramError
from programs.fingerprint import Probe, probe
from programs.program import Program
from programs.statement import live_statements

_FLOAT32_MAX = float(np.finfo(np.float32).max)

OK = "ok"
INVALID = "invalid program"
NON_FINITE = "non-finite output on the probe inputs"
OVERFLOW = "update saturates at the float32 limit on the probe inputs"
ZERO = "update is identically zero on the probe inputs"
NO_G = "update does not depend on g"


@dataclasses.dataclass(frozen=True)
class Check:
    """Outcome of :func:`check`: ``ok``, and ``reason``, one of this module's reason strings
    (``INVALID`` is followed by ``": "`` and the validation message)."""

    ok: bool
    reason: str


def _reads_g(program: Program) -> bool:
    return "g" in program.outputs or any("g" in s.names() for s in live_statements(program))


def check(program: Program, probed: Probe | None = None) -> Check:
    """Screen ``program`` (see the module docstring).  ``probed``: the program's
    ``programs.fingerprint.probe`` when the caller has it (the search probes a child once,
    for this and its fingerprint)."""
    try:
        program.checked()
    except ProgramError as err:
        return Check(False, f"{INVALID}: {err.message}")
    probed = probe(program) if probed is None else probed
    outputs = probed.runs[0]
    if not all(np.isfinite(o).all() for o in outputs):
        return Check(False, NON_FINITE)
    updates = probed.updates(0)
    if any((np.abs(u) >= _FLOAT32_MAX).any() for u in updates):
        return Check(False, OVERFLOW)
    if not any(u.any() for u in updates):
        return Check(False, ZERO)
    if not _reads_g(program):
        return Check(False, NO_G)
    if all(np.array_equal(u, v) for u, v in zip(updates, probed.updates(1))):
        return Check(False, NO_G)
    return Check(True, OK)
