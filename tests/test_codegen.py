"""programs.exporters.codegen and .layout: the pieces every exporter shares, alone.  (The
exported modules' numbers and text as a whole are tests/export/'s.)"""

from __future__ import annotations

import ast
import dataclasses

import pytest

from programs import BASELINES, ProgramError, parse
from programs.exporters import codegen, layout
from programs.exporters.to_numpy import DIALECT as NUMPY
from programs.exporters.to_torch import DIALECT as TORCH

ADAM = BASELINES["adam"]


def test_plan_marks_dead_code_and_renames_what_collides():
    program = parse("def f(g, lr, np):\n    junk = exp(g)\n    np = np * 0.9 + g\n"
                    "    u = np * lr\n    return u, np\n")
    plan = codegen.plan(program, NUMPY)
    assert [sp.live for sp in plan.statements] == [False, True, True, True]
    assert plan.names["np"] != "np" and plan.names["np"].startswith("np")  # the module's name
    assert plan.names["g"] == "g"


def test_plan_refuses_a_name_python_would_read_otherwise():
    program = parse("def f(g, lr):\n    u = g * lr\n    return u\n")
    odd = dataclasses.replace(program, name="\uff46")  # FULLWIDTH f: Python reads "f"
    with pytest.raises(ProgramError, match="Python reads the name"):
        codegen.plan(odd, NUMPY)


def test_hoist_takes_the_bias_corrections_of_adam_once_per_parameter():
    plan = codegen.plan(ADAM, TORCH)
    h = codegen.hoist(plan)
    hoisted = {ADAM.body[i].target for i in h.indices}
    # 0.9 ** t, 1 - that, and the same for 0.999: they read only t and constants
    assert len(hoisted) == 4 and h.inputs == ("lr", "t")  # the scalar inputs _step takes
    for i in h.indices:
        assert all(a in ("t",) or a in hoisted for a in ADAM.body[i].names())
    assert codegen.hoist(codegen.plan(BASELINES["sgd"], TORCH)) is None  # nothing to hoist


def test_helper_sources_are_only_the_helpers_used_with_their_own():
    helpers = {"_a": "def _a(x):\n    return _b(x)\n", "_b": "def _b(x):\n    return x\n",
               "_c": "def _c(x):\n    return x\n"}
    assert codegen.helper_sources("y = _a(x)", helpers) == [helpers["_a"], helpers["_b"]]
    assert codegen.helper_sources("y = x", helpers) == []


@pytest.mark.parametrize("items", [["a", "b"], [f"argument_{i}" for i in range(12)],
                                   ["x * y + z" * 12]])
def test_fit_call_keeps_lines_short_and_the_code_the_same(items):
    lines = layout.fit_call("result = function(", items, ")", "    ")
    assert all(len(line) <= layout.LINE_LENGTH for line in lines)
    text = "\n".join(line[4:] for line in lines)
    expected = f"result = function({', '.join(items)})"
    assert ast.dump(ast.parse(text)) == ast.dump(ast.parse(expected))


def test_fit_sequence_and_assign():
    names = [f"slot_number_{i}" for i in range(10)]
    lines = layout.fit_sequence("    return ", names, "", "    ", bracket="()", bare=True)
    assert len(lines) > 1 and all(len(line) <= layout.LINE_LENGTH for line in lines)
    assert ast.dump(ast.parse("\n".join(line[4:] for line in lines))) == ast.dump(
        ast.parse("return " + ", ".join(names)))
    long = "function(" + ", ".join(f"term_{i}" for i in range(20)) + ")"
    lines = layout.fit_assign("    ", "value", long)
    assert all(len(line) <= layout.LINE_LENGTH for line in lines)
    assert ast.dump(ast.parse("\n".join(line[4:] for line in lines))) == ast.dump(
        ast.parse(f"value = {long}"))


def test_escape_makes_any_provenance_safe_in_a_docstring():
    hostile = 'a """ b \\ c \x00 \u2028 d'
    text = f'"""{layout.escape(hostile)}"""'
    assert "\n" not in text and isinstance(ast.literal_eval(text), str)
    doc = layout.docstring("Title.", ADAM, {"run": hostile, "search_score": -0.25},
                           "usage()", "semantics.")
    parsed = ast.get_docstring(ast.parse("\n".join(doc)))
    assert parsed.startswith("Title.") and hostile in parsed and "search score: -0.25" in parsed
