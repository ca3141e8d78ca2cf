"""programs.bounds: which saturations and denominator guards each rule leaves out, one rule at
a time, and the values it leaves alone.  (That the left-out ones change no value on
overflowing inputs, for every baseline, is test_interpreter's; the facts of each op are
test_ops'.)"""

from __future__ import annotations

import numpy as np
import pytest

from programs import parse, step_tensor
from programs.bounds import last_writes, statement_facts
from programs.ops import OPS, saturate


def facts_of(text: str) -> dict:
    program = parse(text)
    return dict(zip((s.target for s in program.body), statement_facts(program)))


@pytest.mark.parametrize(("expression", "saturates"), [
    ("g * 0.5", False),        # |a * b| <= |a| when |b| <= 1
    ("g * 2.0", True),         # can overflow
    ("g + sign(g)", False),    # |a + b| <= MAX + 1, which rounds to MAX
    ("g + g", True),
    ("g / 4.0", False),        # dividing by |c| >= 1 shrinks
    ("g / 0.5", True),
    ("tanh(g) * g", False),    # a unit factor
    ("abs(g)", False),         # closed: never larger than its operand
    ("exp(g)", True),
])
def test_saturation_rules(expression, saturates):
    facts = facts_of(f"def f(g, lr):\n    x = {expression}\n    u = x * lr\n    return u\n")
    assert facts["x"].saturate is saturates


def test_a_denominator_proved_large_is_not_guarded():
    facts = facts_of("""\
def f(g, lr, v):
    v = interp(square(g), v, 0.9)
    d = sqrt(v) + 1e-08
    u = g / d
    e = g / v
    u = u * lr + e
    return u, v
""")
    assert not facts["u"].protect     # sqrt(v) >= 0, + 1e-8 >= 2 * TINY
    assert facts["e"].protect         # v may be 0
    assert facts["u"].saturate        # 1e-8 < 1: the quotient can overflow
    assert facts["d"].nonnegative is True


def test_read_only_where_overflow_is_invisible():
    blind = facts_of("def f(g, lr):\n    x = g * 3.0\n    u = sign(x) * lr\n    return u\n")
    seen = facts_of("def f(g, lr):\n    x = g * 3.0\n    u = sign(x) * lr + x\n    return u\n")
    returned = facts_of("def f(g, lr, m):\n    m = g * 3.0\n    u = sign(m) * lr\n"
                        "    return u, m\n")
    assert not blind["x"].saturate    # only sign reads it: Inf and MAX give the same sign
    assert seen["x"].saturate and returned["m"].saturate
    assert OPS["sign"].blind == {0}


def test_stored_marks_slot_values_read_after_they_are_written():
    facts = facts_of("""\
def f(g, lr, m, v):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.99)
    u = m * lr
    return u, m, v
""")
    assert facts["m"].stored          # written, then read by u
    assert not facts["v"].stored      # written last, read by nothing after


def test_unit_interp_needs_a_constant_weight_in_the_unit_interval():
    facts = facts_of("def f(g, lr, m):\n    m = interp(g, m, 0.9)\n    n = interp(g, m, 1.5)\n"
                     "    u = (m + n) * lr\n    return u, m\n")
    assert facts["m"].unit_interp and not facts["n"].unit_interp


def test_last_writes_are_the_returned_values():
    program = parse("def f(g, lr):\n    u = g * lr\n    u = u * 0.5\n    return u\n")
    assert last_writes(program) == {"u": 1}


def test_left_out_saturations_change_nothing_on_overflowing_inputs():
    """The rules' reason, checked on values: the interpreter (which leaves them out) against
    every op saturated, at the float32 limit."""
    program = parse("""\
def f(g, lr, m):
    x = g * 0.5
    y = sign(g * 3.0)
    m = interp(g, m, 0.9)
    u = (x + y + m) * lr
    return u, m
""")
    big = np.float32(3.0e38)
    values = {"g": np.array([big, -big, 1.0], np.float32), "lr": np.float32(1.0),
              "m": np.array([big, 0.0, -big], np.float32)}
    ours = step_tensor(program, values)
    env = dict(values)
    for s in program.body:
        args = [env[a] if isinstance(a, str) else np.float32(a) for a in s.args]
        env[s.target] = np.asarray(saturate(OPS[s.op].fn(*args)))
    for out, name in zip(ours, program.outputs):
        np.testing.assert_array_equal(np.asarray(out), env[name])
