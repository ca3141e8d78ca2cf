"""programs.simplify: golden texts, fixed point, and the same float32 results as the input."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import programs
from programs import parse
from programs.fingerprint import run_probes
from programs.mutate import MutationConfig, mutate, random_program
from programs.ops import OPS
from programs.simplify import fold, live_statements, simplify

GOLDEN = {
    "dead code, transitively": ("""
def f(g, lr, m):
    a = exp(g)
    b = a * 2.0
    m = interp(g, m, 0.9)
    u = sign(m)
    u = u * lr
    return u, m
""", """
def f(g, lr, m):
    m = interp(g, m, 0.9)
    u = sign(m)
    u = u * lr
    return u, m
"""),
    "constant folding with the protected float32 ops": ("""
def f(g, lr, t):
    c = 1.0 - 0.9
    d = 1.0 / 0.0
    e = log(0.0) + sqrt(-4.0)
    u = g * c + d * t + e
    return u
""", """
def f(g, lr, t):
    tmp3 = g * 0.100000024
    tmp4 = 1e+30 * t
    tmp5 = tmp3 + tmp4
    u = tmp5 + -67.07755
    return u
"""),
    "identities": ("""
def f(w, g, lr, m):
    a = g * 1.0
    b = 1.0 * a + 0.0
    c = 0.0 + b - 0.0
    d = c / 1.0
    e = -(-d)
    n1 = d * -1.0
    n2 = 0.0 - e
    n3 = e / -1.0
    z = (w * 0.0) + (0.0 * w) + (w - w)
    q = abs(-g) + abs(abs(g)) + sign(sign(g)) + max(g, g) + min(g, g)
    u = (e + n1 + n2 + n3 + z + q) * lr
    return u, m
""", """
def f(w, g, lr, m):
    tmp3 = -g
    tmp9 = abs(g)
    tmp12 = tmp9 + tmp9
    tmp13 = sign(g)
    tmp15 = tmp12 + tmp13
    tmp17 = tmp15 + g
    q = tmp17 + g
    tmp19 = g + tmp3
    tmp20 = tmp19 + tmp3
    tmp21 = tmp20 + tmp3
    tmp23 = tmp21 + q
    u = tmp23 * lr
    return u, m
"""),
    "common subexpressions, commuted operands": ("""
def f(g, lr, m, v):
    a = square(g)
    b = square(g)
    c = a * b
    d = b * a
    m = interp(c, m, 0.9)
    v = interp(d, v, 0.9)
    u = m - v
    return u, m, v
""", """
def f(g, lr, m, v):
    a = square(g)
    c = a * a
    m = interp(c, m, 0.9)
    v = interp(c, v, 0.9)
    u = m - v
    return u, m, v
"""),
    "constant outputs stay names": ("""
def f(g, lr, m, v):
    m = m * 0.0
    v = 2.0 * 3.0
    u = g * lr
    return u, m, v
""", """
def f(g, lr, m, v):
    u = g * lr
    m = 0.0 * 1.0
    v = 6.0 * 1.0
    return u, m, v
"""),
    "a rewrite that would overwrite a live value renames": ("""
def f(g, lr, m):
    u = m * 1.0
    m = interp(g, m, 0.99)
    return u, m
""", """
def f(g, lr, m):
    m_1 = interp(g, m, 0.99)
    return m, m_1
"""),
    "where and interp keep a scalar operand only when the result is scalar": ("""
def f(g, lr, t, m):
    a = where(1.0, lr, g)
    b = where(-1.0, lr, g)
    c = where(t, g, g)
    d = where(g, lr, lr)
    e = interp(g, lr, 0.0)
    f2 = interp(lr, g, 0.0)
    h = interp(g, lr, 1.0)
    u = norm(a) + norm(b) + norm(c) + norm(d) + norm(e) + norm(f2) + norm(h)
    return u, m
""", """
def f(g, lr, t, m):
    a = where(1.0, lr, g)
    d = where(g, lr, lr)
    f2 = interp(lr, g, 0.0)
    h = interp(g, lr, 1.0)
    tmp1 = norm(a)
    tmp2 = norm(g)
    tmp3 = tmp1 + tmp2
    tmp5 = tmp3 + tmp2
    tmp6 = norm(d)
    tmp7 = tmp5 + tmp6
    tmp9 = tmp7 + tmp2
    tmp10 = norm(f2)
    tmp11 = tmp9 + tmp10
    tmp12 = norm(h)
    u = tmp11 + tmp12
    return u, m
"""),
    "an output takes the name it is returned under": ("""
def f(g, lr, m):
    x = g * 2.0
    m = x * 1.0
    u = m * lr
    return u, m
""", """
def f(g, lr, m):
    m = g * 2.0
    u = m * lr
    return u, m
"""),
    "nothing to do": ("""
def f(g, lr):
    u = g * lr
    return u
""", """
def f(g, lr):
    u = g * lr
    return u
"""),
    "an output that is an input": ("""
def f(g, lr):
    u = g + 0.0
    return u
""", """
def f(g, lr):
    return g
"""),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden(name):
    text, expected = GOLDEN[name]
    assert str(simplify(parse(text))) == expected.lstrip("\n")


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_keeps_the_computation(name):
    p = parse(GOLDEN[name][0])
    for a, b in zip(run_probes(p), run_probes(simplify(p))):
        np.testing.assert_array_equal(a, b)


def test_folded_value_is_the_ops_float32_value():
    for op, args in [("sub", (1.0, 0.9)), ("div", (1.0, 3.0)), ("exp", (100.0,)),
                     ("rsqrt", (0.0,)), ("power", (-2.0, 0.5)), ("norm", (-3.0,))]:
        expected = np.float32(OPS[op].fn(*[jnp.float32(a) for a in args]))
        assert np.float32(fold(op, args)) == expected
    assert fold("sub", (1.0, 0.9)) == 0.100000024   # shortest text of that float32
    assert np.float32(fold("exp", (100.0,))) == np.exp(np.float32(80.0))  # input clipped at 80


@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_baselines(name):
    p = programs.BASELINES[name]
    s = simplify(p)
    assert s.params == p.params and s.name == p.name and len(s.outputs) == len(p.outputs)
    assert len(s.body) <= len(p.body)
    assert simplify(s) == s and str(simplify(s)) == str(s)
    for a, b in zip(run_probes(p), run_probes(s)):
        np.testing.assert_array_equal(a, b)
    assert p.simplify() == s   # the Program hook


def test_random_programs_simplify_to_the_same_values_and_a_fixed_point():
    rng = np.random.default_rng(1)
    config = MutationConfig(constant_probability=0.5, constants=(0.0, 1.0, -1.0, 0.5, 2.0))
    shrunk = 0
    for _ in range(60):
        p = random_program(("w", "g", "lr", "t", "m"), rng, config, int(rng.integers(1, 12)))
        for _ in range(4):
            p = mutate(p, rng, config).program
        s = simplify(p)
        shrunk += len(s.body) < len(p.body)
        assert parse(str(s)) == s
        assert simplify(s) == s and str(simplify(s)) == str(s), str(p)
        for a, b in zip(run_probes(p), run_probes(s)):
            np.testing.assert_array_equal(a, b, err_msg=str(p))
    assert shrunk > 30


def test_live_statements():
    p = parse(GOLDEN["dead code, transitively"][0])
    assert [s.target for s in live_statements(p)] == ["m", "u", "u"]
    q = parse("def f(g, m):\n    m = g * 2.0\n    m = m + 1.0\n    x = m * m\n    return m, m\n")
    assert [s.target for s in live_statements(q)] == ["m", "m"]


def test_without_unread_slots_drops_only_what_never_reaches_the_update():
    from programs.simplify import without_unread_slots

    junk = parse("def sgd(g, lr, m1, m2, m3):\n    m1 = reciprocal(m3)\n"
                 "    m2 = min(lr, m1)\n    u = g * 2.0\n    u = clip(u, lr)\n"
                 "    return u, m1, m2, m3\n")
    assert str(junk.pruned()) == "def sgd(g, lr):\n    u = g * 2.0\n    u = clip(u, lr)\n" \
        "    return u\n"
    # b is read by the update, a only by b's next value: both stay; c feeds nothing.
    chain = parse("def f(g, lr, a, b, c):\n    a = interp(g, a, 0.9)\n    b = b + a\n"
                  "    c = c * 2.0\n    u = b * lr\n    return u, a, b, c\n")
    assert without_unread_slots(chain).slots == ("a", "b")
    for name, program in programs.BASELINES.items():  # every baseline's slots matter
        assert without_unread_slots(program) is program, name


def test_pruned_programs_compute_the_same_updates():
    """On mutants grown with extra slots, pruning keeps the fingerprint (the updates of the
    probe's 8 steps) and is a fixed point."""
    from programs.mutate import MutationConfig, add_slot, mutate

    rng = np.random.default_rng(8)
    config = MutationConfig(max_slots=4)
    dropped = 0
    for name in ("sgd", "momentum", "adam", "lion"):
        p = programs.BASELINES[name]
        for _ in range(40):
            child = (add_slot if rng.random() < 0.3 else mutate)(p, rng, config).program
            p = child or p
            pruned = p.pruned()
            assert pruned.fingerprint() == p.fingerprint(), str(p)
            assert pruned.pruned() == pruned
            dropped += len(p.slots) > len(pruned.slots)
    assert dropped > 0


def test_history_slots_names_the_slots_that_remember_gradients():
    from programs.simplify import history_slots

    for name, program in programs.BASELINES.items():  # every baseline's slot remembers g or w
        assert history_slots(program) == program.slots, name
    # a warm-up of the rate, a counter and a slot never written: schedules, not history;
    # b remembers g through a, so does c through b (slot order does not matter)
    p = parse("def f(g, lr, t, c, warm, count, never, b, a):\n    c = interp(b, c, 0.5)\n"
              "    warm = interp(lr, warm, 0.99)\n    count = count + 1.0\n"
              "    a = interp(g, a, 0.9)\n    b = b + a\n    u = c * warm\n    u = u + never\n"
              "    u = u * count\n    return u, c, warm, count, never, b, a\n")
    assert history_slots(p) == ("c", "b", "a")


def test_a_slot_outside_history_slots_is_the_same_whatever_the_gradients():
    """The contract, checked by running programs: on the fingerprint's two input sets (same
    weights, other gradients), every slot that history_slots leaves out takes the same
    values at every step (and those it names mostly do not)."""
    from programs.mutate import add_slot
    from programs.simplify import history_slots

    rng = np.random.default_rng(5)
    config = MutationConfig(max_slots=4, constant_probability=0.4)
    schedules = remembering = differ = 0
    for name in ("sgd", "momentum", "adam", "lion"):
        p = programs.BASELINES[name]
        for _ in range(8):
            p = (add_slot if rng.random() < 0.5 else mutate)(p, rng, config).program or p
            kept = history_slots(p)
            for case_a, case_b in zip(run_probes(p, 0), run_probes(p, 1)):
                for k, slot in enumerate(p.slots):
                    a, b = case_a[:, 1 + k], case_b[:, 1 + k]
                    if slot not in kept:
                        np.testing.assert_array_equal(a, b, err_msg=f"{slot} in\n{p}")
                        schedules += 1
                    else:
                        remembering += 1
                        differ += not np.array_equal(a, b, equal_nan=True)
    assert schedules > 20 and differ > 0.5 * remembering
