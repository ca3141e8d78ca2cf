"""programs.check: each rejection, and every baseline passing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import programs
import programs.check as check_module
from programs import Program, Statement, parse
from programs.check import INVALID, NO_G, NON_FINITE, OK, OVERFLOW, ZERO, Check, check
from programs.fingerprint import Probe


@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_baselines_pass(name):
    assert check(programs.BASELINES[name]) == Check(True, OK)


REJECTED = {
    "constant update": ("def f(g, lr):\n    u = lr * 0.5\n    return u\n", NO_G),
    "update from w alone": ("def f(w, g, lr):\n    u = sign(w) * lr\n    return u\n", NO_G),
    "g read but cancelled": ("def f(g, lr):\n    u = (g - g) + lr\n    return u\n", NO_G),
    "g read through a test that never fires":
        ("def f(g, lr):\n    u = gt(abs(g), 1e20) + lr\n    return u\n", NO_G),
    "g only in a dead slot": ("""
def f(g, lr, t, m):
    m = m + g
    u = lr * t
    return u, m
""", NO_G),
    "zero": ("def f(g, lr):\n    u = g * 0.0\n    return u\n", ZERO),
    "zero through an empty slot": ("def f(g, lr, m):\n    u = m * lr\n    return u, m\n", ZERO),
    "zero by comparison": ("def f(g, lr):\n    u = gt(g, g) * lr\n    return u\n", ZERO),
    "overflow": ("def f(g, lr):\n    u = g * 1e30\n    u = u * 1e30\n    return u\n", OVERFLOW),
    "overflow after a few steps": ("""
def f(g, lr, m):
    m = m * 1e20 + 1.0
    u = m * g
    return u, m
""", OVERFLOW),
}


@pytest.mark.parametrize("name", list(REJECTED))
def test_rejections(name):
    text, reason = REJECTED[name]
    assert check(parse(text)) == Check(False, reason)


def test_g_reaching_the_update_through_a_slot_passes():
    p = parse("def f(g, lr, m):\n    u = m * lr\n    m = g\n    return u, m\n")
    assert check(p).ok   # zero at step 1, g's value from step 2 on


def test_non_finite_outputs(monkeypatch):
    # The saturating ops keep finite inputs finite; this checks the screen itself.
    p = parse("def f(g, lr, m):\n    m = interp(g, m, 0.9)\n    u = m * lr\n    return u, m\n")
    real = check_module.probe

    def with_nan_slot(program):
        runs = [[o.copy() for o in variant] for variant in real(program).runs]
        runs[0][1][2, 1, 0, 0] = np.nan
        return Probe(tuple(tuple(variant) for variant in runs))

    monkeypatch.setattr(check_module, "probe", with_nan_slot)
    assert check(p) == Check(False, NON_FINITE)
    assert check(p, real(p)).ok  # the same program, its own probe passed in


def test_invalid_program():
    p = parse("def f(g, lr, m):\n    u = g * lr\n    return u, m\n")
    broken = dataclasses.replace(p, outputs=("u",))  # a slot without its output
    result = check(broken)
    assert not result.ok and result.reason.startswith(INVALID + ": return has 1 value")
    undefined = Program("f", ("g",), (Statement("u", "sign", ("x",)),), ("u",))
    assert check(undefined).reason.startswith(INVALID)


def test_check_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Check(True, OK).ok = False
