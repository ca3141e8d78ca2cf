"""programs.mutate: golden texts with fixed seeds, validity over long chains, configuration."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import programs
from programs import ProgramError, parse
from programs.mutate import (
    KINDS,
    Mutation,
    MutationConfig,
    MutationWeights,
    add_slot,
    change_op,
    change_operand,
    delete_statement,
    insert_statement,
    mutate,
    perturb_constant,
    random_program,
    resample_constant,
)
from programs.ops import OPS

LION = parse("""\
def lion(g, lr, m):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = interp(g, m, 0.99)
    u = u * lr
    return u, m
""")

ADAM = parse("""\
def adam(g, lr, t, m, v):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.999)
    m_hat = m / (1.0 - power(0.9, t))
    v_hat = v / (1.0 - power(0.999, t))
    u = m_hat / (sqrt(v_hat) + 1e-08)
    u = u * lr
    return u, m, v
""")

ADAM_BODY = """\
    m = interp(g, m, 0.9)
    tmp1 = square(g)
    v = interp(tmp1, v, 0.999)
    tmp2 = 0.9 ** t
    tmp3 = 1.0 - tmp2
    m_hat = m / tmp3
    tmp4 = 0.999 ** t
    tmp5 = 1.0 - tmp4
    v_hat = v / tmp5
    tmp6 = sqrt(v_hat)
    tmp7 = tmp6 + 1e-08
    u = m_hat / tmp7
    u = u * lr
"""

GOLDEN = [
    (insert_statement, LION, 1, "insert", "insert 'm = expm1(g)' at 2", """\
def lion(g, lr, m):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = expm1(g)
    m = interp(g, m, 0.99)
    u = u * lr
    return u, m
"""),
    (insert_statement, LION, 0, "insert", "insert 'v1 = arcsin(lr)' at 4", """\
def lion(g, lr, m):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = interp(g, m, 0.99)
    u = u * lr
    v1 = arcsin(lr)
    return u, m
"""),
    (delete_statement, LION, 1, "delete", "delete 'u = sign(u)' at 1", """\
def lion(g, lr, m):
    u = interp(g, m, 0.9)
    m = interp(g, m, 0.99)
    u = u * lr
    return u, m
"""),
    # the deleted statement defined tmp1: its reader reads the statement's operand g
    (delete_statement, ADAM, 11, "delete", "delete 'tmp1 = square(g)' at 1; tmp1 -> g",
     "def adam(g, lr, t, m, v):\n" + ADAM_BODY.replace(
         "    tmp1 = square(g)\n    v = interp(tmp1, v, 0.999)\n", "    v = interp(g, v, 0.999)\n")
     + "    return u, m, v\n"),
    (change_operand, LION, 1, "operand", "operand 0 of 'u = u * lr' at 3: u -> g", """\
def lion(g, lr, m):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = interp(g, m, 0.99)
    u = g * lr
    return u, m
"""),
    (change_op, LION, 0, "op", "op at 3: 'u = u * lr' -> 'u = gt(u, lr)'", """\
def lion(g, lr, m):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = interp(g, m, 0.99)
    u = gt(u, lr)
    return u, m
"""),
    (perturb_constant, LION, 0, "constant",
     "constant 2 of 'm = interp(g, m, 0.99)' at 2: 0.99 -> 0.903374", """\
def lion(g, lr, m):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = interp(g, m, 0.903374)
    u = u * lr
    return u, m
"""),
    (mutate, ADAM, 0, "op", "op at 6: 'tmp4 = 0.999 ** t' -> 'tmp4 = 0.999 / t'",
     "def adam(g, lr, t, m, v):\n" + ADAM_BODY.replace("tmp4 = 0.999 ** t", "tmp4 = 0.999 / t")
     + "    return u, m, v\n"),
    (mutate, ADAM, 1, "operand", "operand 1 of 'm = interp(g, m, 0.9)' at 0: m -> g",
     "def adam(g, lr, t, m, v):\n" + ADAM_BODY.replace("interp(g, m, 0.9)", "interp(g, g, 0.9)")
     + "    return u, m, v\n"),
]


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: f"{c[0].__name__}-{c[1].name}-{c[2]}")
def test_golden(case):
    fn, program, seed, kind, detail, text = case
    result = fn(program, np.random.default_rng(seed))
    assert (result.kind, result.detail, str(result.program)) == (kind, detail, text)


def test_500_mutations_in_a_row_stay_valid():
    rng = np.random.default_rng(2024)
    config = MutationConfig(max_statements=25, weights=MutationWeights(resample=0.5))
    p, seen = ADAM, set()
    for _ in range(500):
        m = mutate(p, rng, config)
        assert m.program is not None and m.kind in KINDS and m.detail
        child = m.program
        assert child.checked() is child
        assert parse(str(child)) == child
        if m.kind == "slot":  # the one kind that changes the header: one slot more
            new = child.params[-1]
            assert child.params == (*p.params, new) and child.outputs[-1] == new
            assert child.fingerprint() == p.fingerprint()  # nothing reads the new slot yet
        else:
            assert child.params == p.params
        assert child.name == p.name and len(child.outputs) == 1 + len(child.slots)
        assert len(child.slots) <= config.max_slots
        assert len(child.body) <= config.max_statements
        seen.add(m.kind)
        p = child
    assert seen == set(KINDS)


def test_children_differ_from_the_parent():
    for fn in (insert_statement, delete_statement, change_operand, change_op,
               perturb_constant, resample_constant):
        for seed in range(20):
            child = fn(LION, np.random.default_rng(seed)).program
            assert child is not None and child != LION, (fn.__name__, seed)


def test_same_seed_same_child_and_seeds_vary():
    texts = [str(mutate(ADAM, np.random.default_rng(s)).program) for s in range(12)]
    assert texts == [str(mutate(ADAM, np.random.default_rng(s)).program) for s in range(12)]
    assert len(set(texts)) >= 10


def test_primitives_that_cannot_apply():
    empty = parse("def f(g, lr):\n    return g\n")
    no_constants = parse("def f(g, lr):\n    u = g * lr\n    return u\n")
    zero_constant = parse("def f(g, lr):\n    u = g * 0.0\n    return u\n")
    rng = np.random.default_rng(0)
    assert delete_statement(empty, rng) == Mutation(None, "delete", "no statement to delete")
    assert perturb_constant(no_constants, rng).program is None
    assert perturb_constant(zero_constant, rng).program is None
    assert change_operand(empty, rng).program is None
    assert change_op(empty, rng).program is None
    only_mul = MutationConfig(ops=("mul",))
    assert change_op(no_constants, rng, only_mul).program is None
    full = MutationConfig(max_statements=1)
    assert insert_statement(no_constants, rng, full).program is None
    # mutate falls back to a kind that applies, and says so when none does
    deletes = MutationConfig(weights=MutationWeights(1, 1, 0, 0, 1, 0))
    assert mutate(empty, rng, deletes).kind == "insert"
    assert add_slot(ADAM, rng, MutationConfig(max_slots=2)).program is None
    assert add_slot(no_constants, rng, full).program is None
    nothing = MutationConfig(weights=MutationWeights(0, 1, 0, 0, 1, 0))
    result = mutate(empty, rng, nothing)
    assert result.program is None and result.kind == "none"
    assert "delete" in result.detail and "constant" in result.detail


def test_slot_then_operand_grows_momentum_from_sgd():
    """From sgd (no state), an added slot plus one operand change reach momentum: the
    search space of a campaign that starts from sgd contains it, two mutations away."""
    sgd = parse("def sgd(g, lr):\n    u = g * lr\n    return u\n")
    momentum = parse("def sgd(g, lr, m1):\n    m1 = interp(g, m1, 0.9)\n"
                     "    u = m1 * lr\n    return u, m1\n")
    config = MutationConfig(ops=("interp", "mul"), constants=(0.9,))
    for seed in range(2000):
        grown = add_slot(sgd, np.random.default_rng(seed), config).program
        if grown is None or "interp(g, m1, 0.9)" not in str(grown) or grown.body[0].op != "interp":
            continue
        assert grown.fingerprint() == sgd.fingerprint()
        for k in range(50):
            child = change_operand(grown, np.random.default_rng(k), config).program
            if child is not None and child == momentum:
                assert child.fingerprint() != sgd.fingerprint()
                return
    pytest.fail("no seed grew momentum from sgd in two mutations")


def test_a_wired_slot_grows_momentum_from_sgd_in_one_mutation():
    """With ``wired_slot_probability`` 1 the slot's recurrence input is read through the
    slot at once: momentum is one mutation from sgd, and a new slot is never dead while a
    later statement reads its input."""
    sgd = parse("def sgd(g, lr):\n    u = g * lr\n    return u\n")
    momentum = parse("def sgd(g, lr, m1):\n    m1 = interp(g, m1, 0.9)\n"
                     "    u = m1 * lr\n    return u, m1\n")
    config = MutationConfig(ops=("interp", "mul"), constants=(0.9,),
                            wired_slot_probability=1.0)
    dead = dataclasses.replace(config, wired_slot_probability=0.0)
    found = False
    for seed in range(300):
        child = add_slot(sgd, np.random.default_rng(seed), config).program
        unwired = add_slot(sgd, np.random.default_rng(seed), dead).program
        assert unwired.fingerprint() == sgd.fingerprint()
        source = child.body[[s.target for s in child.body].index("m1")].args[0]
        read_later = isinstance(source, str) and child.body[0].target == "m1"  # u reads it
        assert (child != unwired) == read_later, (seed, str(child))
        found |= child == momentum
    assert found, "no seed grew momentum from sgd in one mutation"


def test_a_wired_slot_replaces_one_read_of_the_value_its_recurrence_took():
    """Over many seeds: a wired child differs from the dead child of the same draws in one
    operand, which read the recurrence's input ``x``, now reads the slot, and lies after the
    slot's statement with no reassignment of ``x`` in between."""
    p = parse("def f(g, lr, m):\n    a = sign(g)\n    b = a * 2.0\n    a = abs(b)\n"
              "    u = a * lr\n    m = interp(u, m, 0.9)\n    return u, m\n")
    config = MutationConfig(wired_slot_probability=1.0, constant_probability=0.0)
    wired = 0
    for seed in range(400):
        child = add_slot(p, np.random.default_rng(seed), config).program
        r = np.random.default_rng(seed)
        dead = add_slot(p, r, dataclasses.replace(config, wired_slot_probability=0.0)).program
        if child == dead:
            continue
        wired += 1
        slot = child.params[-1]
        position = [s.target for s in child.body].index(slot)
        x = child.body[position].args[0]
        changed = [(i, k) for i, (c, d) in enumerate(zip(child.body, dead.body))
                   for k, (a, b) in enumerate(zip(c.args, d.args)) if a != b]
        assert len(changed) == 1
        (i, k), = changed
        assert dead.body[i].args[k] == x and child.body[i].args[k] == slot and i > position
        assert all(s.target != x for s in dead.body[position + 1:i])
    assert wired > 50


def test_delete_reroutes_readers_and_outputs():
    p = parse("def f(g, lr, m):\n    a = sign(g)\n    m = a * 2.0\n    return a, m\n")
    for seed in range(30):
        result = delete_statement(p, np.random.default_rng(seed))
        if result.detail.startswith("delete 'a = sign(g)'"):
            assert str(result.program) == "def f(g, lr, m):\n    m = g * 2.0\n    return g, m\n"
            break
    else:
        pytest.fail("no seed deleted the first statement")


def test_config_restricts_ops_and_constants():
    config = MutationConfig(ops=("add", "mul", "sign", "interp"), constants=(0.25,),
                            constant_probability=0.5)
    rng = np.random.default_rng(5)
    p = LION
    for _ in range(200):
        before = {c for c in p.constants()}
        m = mutate(p, rng, config)
        p = m.program
        if m.kind in ("insert", "op"):
            assert {s.op for s in p.body} <= {"add", "mul", "sign", "interp"}
        if m.kind in ("insert", "operand"):
            assert set(p.constants()) - before <= {0.25}


def test_perturbation_scale():
    config = MutationConfig(perturb_sigma=1.0)
    ratios = []
    for seed in range(200):
        m = perturb_constant(LION, np.random.default_rng(seed), config)
        old = float(m.detail.split(": ")[1].split(" -> ")[0])
        ratios.append(float(m.detail.split(" -> ")[1]) / old)
    log2 = np.log2(ratios)
    assert min(ratios) > 0
    assert abs(np.mean(log2)) < 0.2 and 0.8 < np.std(log2) < 1.2


def test_resampling_jumps_to_another_constant_of_the_vocabulary():
    config = MutationConfig(constants=(0.5, 0.9, 0.999))
    drawn = set()
    for seed in range(60):
        m = resample_constant(LION, np.random.default_rng(seed), config)
        (old, new), = [(a, b) for x, y in zip(LION.body, m.program.body)
                       for a, b in zip(x.args, y.args) if a != b]
        assert new in config.constants and new != old
        drawn.add(new)
    assert drawn == set(config.constants)  # 0.5 too: LION has 0.9 and 0.99 (not in it)
    only = MutationConfig(constants=(0.9,))
    single = parse("def f(g, lr):\n    u = g * 0.9\n    return u\n")
    assert resample_constant(single, np.random.default_rng(0), only).program is None


def test_resampling_is_off_by_default_so_searches_draw_as_before():
    rng = np.random.default_rng(5)
    kinds = {mutate(LION, rng).kind for _ in range(300)}
    assert "resample" not in kinds and "constant" in kinds


def test_config_validation_and_json():
    config = MutationConfig(ops=("add", "sign"), weights=MutationWeights(insert=2.0))
    again = MutationConfig(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert again == config and hash(again) == hash(config)
    assert MutationConfig().ops == tuple(OPS)
    for bad in [{"ops": ("nope",)}, {"ops": ()}, {"max_statements": 0},
                {"weights": MutationWeights(-1.0)}, {"weights": MutationWeights(0, 0, 0, 0, 0, 0)}, {"max_slots": -1},
                {"constant_probability": 1.5}, {"constants": ()}]:
        with pytest.raises(ValueError):
            MutationConfig(**bad)


def test_random_program():
    config = MutationConfig(ops=("add", "mul", "sign", "interp"), constant_probability=0.5)
    p = random_program(("w", "g", "lr", "m", "v"), np.random.default_rng(5), config, 5)
    assert str(p) == """\
def random(w, g, lr, m, v):
    v1 = sign(v)
    m = sign(g)
    v = 0.5 + g
    v = lr * v
    u = sign(lr)
    return u, m, v
"""
    rng = np.random.default_rng(0)
    for n in range(8):
        q = random_program(("g", "lr", "t", "m"), rng, n_statements=n)
        assert len(q.body) == n and q.params == ("g", "lr", "t", "m")
        assert parse(str(q)) == q
    assert str(random_program(("g", "lr"), rng, n_statements=0)) == "def random(g, lr):\n    return g\n"
    with pytest.raises(ProgramError):
        random_program(("g", "g"), rng)
    with pytest.raises(ValueError):
        random_program(("g",), rng, MutationConfig(max_statements=2), n_statements=3)


@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_every_baseline_mutates(name):
    rng = np.random.default_rng(1)
    p = programs.BASELINES[name]
    applied = 0
    for kind_fn in (insert_statement, delete_statement, change_operand, change_op,
                    perturb_constant):
        child = kind_fn(p, rng).program
        if child is not None:
            applied += 1
            assert child != p
            assert parse(str(child)) == child and child.params == p.params
    # Every baseline has statements, names and constants: at most one primitive may find
    # nothing to do (perturb_constant on a program whose constants are all 0 or 1).
    assert applied >= 4, name
