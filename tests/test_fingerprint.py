"""programs.fingerprint: the probe evaluator against the reference interpreter, equal and
unequal programs, rounding, stability across processes."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import assert_close_to_scale

import programs
from programs import parse
from programs.fingerprint import (
    PROBE_CASES,
    STEPS,
    case_inputs,
    fingerprint,
    round_significant,
    run_probes,
)
from programs.interpreter import step_tensor
from programs.ops import OP_NAMES, OPS

ADAM = """\
def adam(g, lr, t, m, v):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.999)
    m_hat = m / (1.0 - power(0.9, t))
    v_hat = v / (1.0 - power(0.999, t))
    u = m_hat / (sqrt(v_hat) + 1e-08)
    u = u * lr
    return u, m, v
"""


def reference_probes(program, steps=STEPS):
    """The first ``steps`` steps of the probe, run by the reference interpreter one
    step_tensor call at a time."""
    result = []
    for case in PROBE_CASES:
        w, g = case_inputs(case, 0)
        slots = [np.zeros(case.shape, np.float32) for _ in program.slots]
        per_step = []
        for k in range(steps):
            values = {"w": w[k], "g": g[k], "lr": np.float32(case.lr),
                      "t": np.float32(k + 1), "T": np.float32(case.T)}
            values.update(zip(program.slots, slots))
            outputs = [np.asarray(o) for o in step_tensor(program, values)]
            slots = outputs[1:]
            per_step.append(np.stack(outputs))
        result.append(np.stack(per_step))
    return result


def assert_close(ours, ref):
    """Equal up to float32 rounding, amplified where sums cancel: each output (update, each
    slot) to 1e-5 of its own largest magnitude."""
    assert ours.shape == ref.shape
    for j in range(ref.shape[1]):
        assert_close_to_scale(ours[:, j], ref[:, j], 1e-5, f"output {j}")


def op_program(name):
    """``name`` applied to tensors and, separately, to scalars (reductions of a scalar differ
    from reductions of a tensor), feeding a slot so that its value is carried."""
    arity = OPS[name].arity
    tensor_args = ", ".join(["g", "m", "w"][:arity])
    scalar_args = ", ".join(["lr", "t", "0.5"][:arity])
    return parse(f"""
def p(w, g, lr, t, T, m):
    a = {name}({tensor_args})
    b = {name}({scalar_args})
    m = interp(a, m, 0.5) + b * 0.001 + g * 0.01
    u = a * lr + b + m / T
    return u, m
""")


@pytest.mark.parametrize("name", OP_NAMES)
def test_probe_evaluator_matches_the_interpreter_for_every_op(name):
    p = op_program(name)
    for ours, ref in zip(run_probes(p), reference_probes(p, steps=3)):
        assert_close(ours[:3], ref)


@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_probe_evaluator_matches_the_interpreter_for_baselines(name):
    p = programs.BASELINES[name]
    for ours, ref in zip(run_probes(p), reference_probes(p)):
        assert ours.shape == ref.shape == (STEPS, len(p.outputs)) + ours.shape[2:]
        assert_close(ours, ref)


def test_probe_variants_share_w_and_differ_in_g():
    for case in PROBE_CASES:
        (w0, g0), (w1, g1) = case_inputs(case, 0), case_inputs(case, 1)
        np.testing.assert_array_equal(w0, w1)
        assert not np.any(g0 == g1)
    with pytest.raises(ValueError):
        run_probes(parse(ADAM), variant=2)


EQUAL = {
    "dead code": ("""
def f(g, lr, m):
    m = interp(g, m, 0.9)
    u = sign(m) * lr
    return u, m
""", """
def f(g, lr, m):
    junk = exp(g)
    m = interp(g, m, 0.9)
    more = junk * m
    u = sign(m) * lr
    return u, m
"""),
    "renaming": ("""
def f(g, lr, m):
    m = interp(g, m, 0.9)
    u = sign(m) * lr
    return u, m
""", """
def other(g, lr, momentum):
    momentum = interp(g, momentum, 0.9)
    step = sign(momentum)
    step = step * lr
    return step, momentum
"""),
    "independent statements reordered": ("""
def f(g, lr, t, m, v):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.99)
    u = m / (sqrt(v) + 1e-8) * lr
    return u, m, v
""", """
def f(g, lr, t, m, v):
    s = square(g)
    v = interp(s, v, 0.99)
    m = interp(g, m, 0.9)
    r = sqrt(v) + 1e-8
    u = m / r * lr
    return u, m, v
"""),
    "slots in another order": ("""
def f(g, lr, m, v):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.99)
    u = m * v * lr
    return u, m, v
""", """
def f(g, lr, v, m):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.99)
    u = m * v * lr
    return u, v, m
"""),
    "an unused slot": ("""
def f(g, lr):
    u = g * lr
    return u
""", """
def f(g, lr, m):
    m = m + g
    u = g * lr
    return u, m
"""),
    "exact identities": ("""
def f(g, lr):
    u = g * lr
    return u
""", """
def f(g, lr):
    a = g * 1.0 + 0.0
    u = -(-a) * lr
    return u
"""),
}

UNEQUAL = {
    "a constant": (ADAM, ADAM.replace("0.999", "0.99")),
    "an op": ("def f(g, lr):\n    u = g * lr\n    return u\n",
              "def f(g, lr):\n    u = sign(g) * lr\n    return u\n"),
    "lr against a constant": ("def f(g, lr):\n    u = g * lr\n    return u\n",
                              "def f(g, lr):\n    u = g * 0.01\n    return u\n"),
    "T against a constant": ("def f(g, T):\n    u = g / T\n    return u\n",
                             "def f(g, T):\n    u = g / 1000.0\n    return u\n"),
    "t against a constant": ("def f(g, t):\n    u = g / t\n    return u\n",
                             "def f(g, t):\n    u = g / 1.0\n    return u\n"),
    "w": ("def f(w, g, lr):\n    u = g * lr\n    return u\n",
          "def f(w, g, lr):\n    u = (g + 0.001 * w) * lr\n    return u\n"),
    "reductions": ("def f(g, lr):\n    u = g * rms(g)\n    return u\n",
                   "def f(g, lr):\n    u = g * norm(g)\n    return u\n"),
    "centralisation": ("def f(g, lr):\n    u = g * lr\n    return u\n",
                       "def f(g, lr):\n    u = center(g) * lr\n    return u\n"),
    "a reduction of a scalar": ("def f(g, lr):\n    u = g * norm(lr)\n    return u\n",
                                "def f(g, lr):\n    u = g * norm(g * 0.0 + lr)\n    return u\n"),
    "a period longer than 4 steps": ("def f(g, lr, t):\n    u = g * lr\n    return u\n", """
def f(g, lr, t):
    k = eq(mod(t, 7.0), 0.0)
    u = g * lr * (1.0 + k)
    return u
"""),
    "a slot's history": ("""
def f(g, lr, m):
    m = interp(g, m, 0.9)
    u = m * lr
    return u, m
""", """
def f(g, lr, m):
    u = interp(g, m, 0.9) * lr
    m = g
    return u, m
"""),
}


@pytest.mark.parametrize("name", list(EQUAL))
def test_equal(name):
    a, b = (parse(text) for text in EQUAL[name])
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize("name", list(UNEQUAL))
def test_unequal(name):
    a, b = (parse(text) for text in UNEQUAL[name])
    assert fingerprint(a) != fingerprint(b)


def test_baselines_all_differ_and_the_format():
    prints = {name: p.fingerprint() for name, p in programs.BASELINES.items()}
    for (n1, f1), (n2, f2) in itertools.combinations(prints.items(), 2):
        assert f1 != f2, (n1, n2)
    for f in prints.values():
        assert len(f) == 16 and set(f) <= set("0123456789abcdef"), f


def test_simplified_programs_share_the_fingerprint():
    for p in programs.BASELINES.values():
        assert fingerprint(p.simplify()) == fingerprint(p)


def test_round_significant():
    x = np.array([123456.0, -0.0, 0.0, 9.99996, 1e-30, -2.5e-7, 0.1, 1.0, 99999.5])
    assert round_significant(x, 5).tolist() == [
        [12346, 1], [0, 0], [0, 0], [10000, -3], [10000, -34], [-25000, -11],
        [10000, -5], [10000, -4], [10000, 1]]
    # equal after rounding <=> same pair; a change in the 7th digit is invisible
    assert (round_significant([1.2345678]) == round_significant([1.2345679])).all()
    assert not (round_significant([1.2345]) == round_significant([1.2346])).all()
    nonfinite = round_significant([np.nan, np.inf, -np.inf])
    assert len({tuple(r) for r in nonfinite.tolist()}) == 3


def test_the_same_string_in_a_fresh_process():
    code = ("import programs\nfrom programs import parse\n"
            f"print(parse({ADAM!r}).fingerprint(), programs.BASELINES['lion'].fingerprint())")
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=300).stdout.split()
    assert out == [parse(ADAM).fingerprint(), programs.BASELINES["lion"].fingerprint()]


PINNED = {
    # Stored in every run directory (state.json, evaluations.jsonl): a change here silently
    # empties the cache of every resumed run.  If this fails, the probe, the engine's
    # arithmetic or the rounding changed: bump programs.fingerprint.VERSION (a run directory
    # of another version is then refused with a one-line error) and re-pin.
    "sgd": "3be8e2041d8ff2f0",
    "momentum": "4574936e03d6750a",
    "signsgd": "91c834c8bff4d2d3",
    "adam": "de10ef8b00487c6c",
    "lion": "3b09d9d1e9cb9692",
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_fingerprint_values_are_pinned(name):
    from programs.fingerprint import VERSION

    assert VERSION == "fp2"
    assert fingerprint(programs.BASELINES[name]) == PINNED[name]
