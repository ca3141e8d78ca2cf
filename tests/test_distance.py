"""``programs.distance``: the statement edit distance between programs."""

from __future__ import annotations

import programs
from programs.distance import edit_distance

ADAM = programs.BASELINES["adam"]


def test_distance_counts_statements_not_renamed_temporaries():
    assert edit_distance(ADAM, ADAM) == 0
    # adamw is adam plus weight decay: two statements (w * 1e-4, added to the update).
    assert edit_distance(ADAM, programs.BASELINES["adamw"]) == 2
    assert edit_distance(programs.BASELINES["adamw"], ADAM) == 2
    # One statement inserted at the top renumbers every later temporary: still distance 1.
    text = str(ADAM).replace("def adam(g, lr, t, m, v):\n",
                             "def adam(g, lr, t, m, v):\n    junk = sin(g)\n    m = m + junk\n")
    twisted = programs.parse(text)
    assert edit_distance(ADAM, twisted) == 2
    # A changed constant is one substitution.
    assert edit_distance(ADAM, programs.parse(str(ADAM).replace("0.999", "0.99", 1))) == 1


def test_programs_that_compute_the_same_are_at_distance_zero():
    spelled = programs.parse("def a(g, lr, m):\n    m = 0.9 * m + g\n    u = m * lr\n"
                             "    return u, m\n")
    nested = programs.parse("def a(g, lr, m):\n    x = 0.9 * m\n    m = x + g\n"
                            "    dead = exp(g)\n    u = m * lr\n    return u, m\n")
    assert edit_distance(spelled, nested) == 0
    assert edit_distance(spelled, programs.BASELINES["sgd"]) > 0
