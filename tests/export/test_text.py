"""The exported modules' text: ruff, layout, constants, dead code, which saturations are
left out, torch's scalar statements and buffers, bad arguments."""

from __future__ import annotations

import subprocess

import pytest

import programs
from export.cases import (
    AWKWARD_NAMES,
    RUFF,
    TARGETS,
    load_module,
)
from programs.bounds import statement_facts
from programs.program import Program, Statement


# -- the modules' text -------------------------------------------------------------------------
@pytest.mark.skipif(not RUFF.exists(), reason="ruff is not installed next to this Python")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_modules_pass_ruff(recordings, command):
    """Every generated module, with ruff's default settings (what a user's project starts
    from), including the line length of 88."""
    dirs = [str(recordings.root / t) for t in TARGETS]
    proc = subprocess.run([str(RUFF), *command, "--isolated", "--no-cache", *dirs],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("target", TARGETS)
def test_module_text(target):
    program = programs.BASELINES["adam"]
    source = programs.export(program, target, run='runs/x"""\\', search_score=0.25,
                             held_out_score=0.5)
    doc = source.split('"""', 2)[1]
    assert str(program).splitlines()[1].strip() in doc     # the program's text
    assert "search score: 0.25" in doc and "held-out score: 0.5" in doc
    assert "Usage::" in doc
    compile(source, "<export>", "exec")   # the provenance's quotes and backslash are escaped
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    allowed = {"optax": ("typing", "jax", "optax"), "torch": ("torch",), "numpy": ("numpy",)}
    assert all(line.split()[1].split(".")[0] in allowed[target] for line in imports), imports
    assert "programs" not in "\n".join(imports)
    body = source.split('"""', 2)[2]
    for s in program.body:  # one line per statement, with the program's names
        assert f"    {s.target} = " in body
    assert "_erf" not in body and "_center" not in body  # helpers only for the ops used


@pytest.mark.parametrize("target", TARGETS)
def test_constants_round_trip_exactly(target):
    """The constants in the generated _step are the program's, bit for bit."""
    import ast

    c = (0.1 + 0.2, 1.2345678901234568e-300, 3.0000000000000002e200, -7.25e-05)
    program = programs.parse(f"def p(g, lr):\n    u = g * {c[0]!r} + {c[1]!r}\n"
                             f"    u = u * {c[2]!r} - {c[3]!r}\n    return u\n")
    tree = ast.parse(programs.export(program, target))
    step = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_step")
    negated = {id(n.operand) for n in ast.walk(step)
               if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub)}
    found = [-n.value if id(n) in negated else n.value for n in ast.walk(step)
             if isinstance(n, ast.Constant) and isinstance(n.value, float)]
    assert sorted(found) == sorted(c)


def test_dead_statements_become_comments():
    program = programs.parse("def p(g, lr):\n    x = sin(g)\n    u = g * lr\n    return u\n")
    source = programs.export(program, "torch")
    assert "# dead (never read): x = sin(g)" in source
    assert "torch.sin" not in source


STORED = programs.parse("""\
def p(g, lr, m, v):
    m = m * 3.0 + g
    m = m * 3.0 + g
    v2 = v * 3.0 + g
    w2 = v * 3.0 + g
    u = lr * (m + v2)
    return u, m, v2
""")


def test_returned_slot_values_read_later_are_stored_once():
    """Only the statement writing a slot's returned value, when a later one reads it, is
    marked stored; the optax module spells its saturation _sat_stored, torch does not."""
    facts = statement_facts(STORED)
    assert [s.target for s, f in zip(STORED.body, facts) if f.stored] == ["m", "v2"]
    assert not any(f.stored for f in statement_facts(programs.BASELINES["lion"]))
    source = programs.export(STORED, "optax")
    assert source.count("m = _sat_stored(") == 1 and "v2 = _sat_stored(" in source
    assert "w2 = _sat_stored(" not in source  # not returned
    assert "_sat_stored" not in programs.export(STORED, "torch")
    fast = programs.export(STORED, "optax", fast=True)  # there, a select that saturates nothing
    assert "m = _sat_stored(" in fast and "jnp.where(x > jnp.finfo(x.dtype).max, jnp.inf, x)" in fast


BLIND_READERS = programs.parse("""\
def p(g, lr, m):
    a = g * 3.0 + m
    b = g * 5.0 + m
    u = sign(a) * lr + sign(b) * b
    m = g * 2.0 + m
    return u, m
""")


def test_saturation_read_only_where_it_cannot_be_seen_is_left_out():
    """a is read only by sign (sign(Inf) == sign(MAX)): not saturated; b is also read by a
    product, and the returned m is returned: both saturated (the export tests check values)."""
    facts = dict(zip((s.target for s in BLIND_READERS.body), statement_facts(BLIND_READERS)))
    assert not facts["a"].saturate and facts["b"].saturate and facts["m"].saturate
    source = programs.export(programs.BASELINES["lion"], "optax")
    assert "    u = tmp1 + tmp2\n" in source and "    m = _sat(tmp3 + tmp4)\n" in source


def test_torch_runs_scalar_statements_once_per_parameter():
    """Statements that read only lr, t, T and constants go to _scalars (once per parameter),
    a protected 0-d denominator is protected there; the rest stay in _step, one line each."""
    source = programs.export(programs.BASELINES["adam"], "torch")
    scalars = source[source.index("def _scalars("):source.index("def _step(")]
    step = source[source.index("def _step("):source.index("class Adam")]
    for line in ("tmp6 = _sat(_pow64(0.9, t))", "tmp9 = 1.0 - tmp8",
                 "return _safe(tmp7), _safe(tmp9)"):
        assert line in scalars
    assert "def _step(g, lr, t, m, v, tmp7_safe, tmp9_safe):" in step
    assert "m_hat = _sat(m / tmp7_safe)" in step and "_pow64" not in step
    assert "hoisted = _scalars(*scalars)" in source
    # a program with no 0-d statement has no _scalars; names collide safely (AWKWARD_NAMES)
    assert "_scalars" not in programs.export(programs.BASELINES["sgd"], "torch")
    awkward = programs.export(AWKWARD_NAMES, "torch")
    assert "def _scalars(lr, t, T):" in awkward and "bc_safe_" in awkward


def test_torch_step_computes_new_moments_in_the_slots_buffers(tmp_path):
    """m = 0.1 g + 0.9 m: the sum is taken into the buffer that holds 0.9 m (the slot's), so
    that step() has nothing to copy into the state (one pass less per slot and piece)."""
    import torch

    module = load_module(tmp_path, programs.BASELINES["adam"], "torch", "adam_buffers")
    g, m, v = (torch.rand(10) for _ in range(3))
    lr, t = torch.tensor(1e-3), torch.tensor(3.0)
    out = module._step(g, lr, t, m, v, *module._scalars(lr, t))
    assert out[1] is m and out[2] is v


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown export target"):
        programs.export(programs.BASELINES["sgd"], "tensorflow")
    with pytest.raises(TypeError):
        programs.export(str(programs.BASELINES["sgd"]), "numpy")
    bad = Program("p", ("g", "lr"), (Statement("u", "mul", ("g", "nope")),), ("u",))
    with pytest.raises(programs.ProgramError):
        programs.export(bad, "optax")
    ligature = Program("p", ("g", "lr", "\ufb01"), (Statement("u", "mul", ("g", "lr")),),
                       ("u", "\ufb01"))
    with pytest.raises(programs.ProgramError, match="reads the name"):
        programs.export(ligature, "optax")


