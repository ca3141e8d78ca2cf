"""Parsing, printing and validation of program text."""

from __future__ import annotations

import textwrap

import pytest

import programs
from programs import ProgramError, parse
from programs.parser import MAX_TEXT_CHARS

LION = """\
def lion(g, lr, m):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = interp(g, m, 0.99)
    u = u * lr
    return u, m
"""


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_canonical_text_is_reproduced_exactly():
    p = parse(LION)
    assert str(p) == LION
    assert p.slots == ("m",) and p.inputs == ("g", "lr")
    assert p.body[0].op == "interp" and p.body[0].args == ("g", "m", 0.9)


@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_round_trip_every_baseline(name):
    p = programs.BASELINES[name]
    again = parse(str(p))
    assert again == p and str(again) == str(p) and hash(again) == hash(p)


def test_nested_expressions_are_flattened_into_three_address_form():
    p = parse(src("""
        def f(g, lr, t, v):
            v = interp(g * g, v, 0.999)
            u = lr * g / (sqrt(v / (1.0 - 0.999 ** t)) + 1e-8)
            return u, v
    """))
    assert [s.op for s in p.body] == ["mul", "interp", "mul", "power", "sub", "div", "sqrt",
                                      "add", "div"]
    assert parse(str(p)) == p
    # flattened temporaries never collide with the user's names
    q = parse("def f(g, tmp1):\n    tmp2 = sign(g) * 2.0\n    return tmp2 + tmp1, tmp2\n")
    assert len({s.target for s in q.body}) == len(q.body)


def test_equality_ignores_temporary_names_and_function_name():
    a = parse("def a(g, lr):\n    x = sign(g)\n    y = x * lr\n    return y\n")
    b = parse("def b(g, lr):\n    q = sign(g)\n    r = q * lr\n    return r\n")
    c = parse("def a(g, lr):\n    x = sign(g)\n    y = lr * x\n    return y\n")
    assert a == b and hash(a) == hash(b)
    assert a != c  # operand order is structure (functional equality is fingerprint's job)


def test_operators_comparisons_aliases_and_augmented_assignment():
    p = parse(src("""
        def f(g, lr, t, m):
            k = m
            m += g
            c = t > 5
            u = where(c, -k, g ** 2.0)
            u *= lr
            return u, m
    """))
    assert [s.op for s in p.body] == ["add", "gt", "neg", "power", "where", "mul"]
    assert p.body[2].args == ("m",)  # k is an alias of the old m, not of the new one
    text = str(p)
    assert "gt(t, 5.0)" in text and "m + g" in text and "-m" in text and "g ** 2.0" in text
    assert parse(text) == p


def test_negative_constants_print_so_they_read_back():
    p = parse("def f(g):\n    a = power(-0.5, g)\n    b = a * -2.0\n    c = neg(3.0)\n"
              "    d = b - c\n    return d\n")
    text = str(p)
    assert "power(-0.5, g)" in text and "a * -2.0" in text and "neg(3.0)" in text
    assert parse(text) == p


def test_constants_round_trip_exactly():
    values = [0.1, 1e-8, 0.999, 1.0 / 3.0, 2.5e-300, 12345678.901234567]
    body = "".join(f"    x{i} = g * {v!r}\n" for i, v in enumerate(values))
    p = parse(f"def f(g):\n{body}    return x0\n")
    assert parse(str(p)).constants() == tuple(values)


def expect_error(text: str, message: str, line: int | None = None, col: int | None = None):
    with pytest.raises(ProgramError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert message in err.message, err.message
    if line is not None:
        assert err.line == line, str(err)
    if col is not None:
        assert err.col == col, str(err)
    assert str(err).startswith(f"<program>:{err.line}:{err.col}: ")
    return err


BAD = [
    # (text, message fragment, line, column)
    ("def f(g):\n    u = sign(g\n    return u\n", "syntax error", None, None),
    ("def f(g):\n    u = sign(x)\n    return u\n", "name 'x' is used before it is assigned", 2, 14),
    ("def f(g):\n    u = v + g\n    v = g\n    return u\n", "'v' is used before", 2, 9),
    ("def f(g):\n    u = g * lr\n    return u\n", "add it to the parameters", 2, 13),
    ("def f(g):\n    u = frobnicate(g)\n    return u\n", "unknown op 'frobnicate'", 2, 9),
    ("def f(g):\n    u = sign(g, g)\n    return u\n", "sign takes 1 operand(s), got 2", 2, 9),
    ("def f(g):\n    u = interp(g, g)\n    return u\n", "interp takes 3", 2, 9),
    ("def f(g, m):\n    u = sign(g)\n    return u\n", "expected the update and 1 state slot(s) (m)", 3, 5),
    ("def f(g):\n    u = sign(g)\n    return u, g\n", "return has 2 value(s)", 3, 5),
    ("def f(g, g):\n    return g\n", "duplicate parameter 'g'", 1, 10),
    ("import os\ndef f(g):\n    return g\n", "imports are not allowed", 1, 1),
    ("def f(g):\n    import os\n    return g\n", "imports are not allowed", 2, 5),
    ("def f(g):\n    u = g.real\n    return u\n", "attribute access is not allowed", 2, 9),
    ("def f(g):\n    u = g[0]\n    return u\n", "subscripts are not allowed", 2, 9),
    ("def f(g):\n    u = (lambda x: x)(g)\n    return u\n", "lambdas are not allowed", 2, 10),
    ("def f(g):\n    u = sign([x for x in g])\n    return u\n", "comprehensions are not allowed", 2, 14),
    ("def f(g):\n    for i in g:\n        pass\n    return g\n", "loops are not allowed", 2, 5),
    ("def f(g):\n    while g:\n        pass\n    return g\n", "loops are not allowed", 2, 5),
    ("def f(g):\n    u = clip(g, c=1.0)\n    return u\n", "keyword arguments are not allowed", 2, 17),
    ("def f(g):\n    u = g * 'abc'\n    return u\n", "strings are not allowed", 2, 13),
    ("def f(g):\n    'doc'\n    return g\n", "strings are not allowed", 2, 5),
    ("def f(g):\n    u = print(g)\n    return u\n", "unknown op 'print'", 2, 9),
    ("def f(g):\n    u = __import__('os')\n    return u\n", "unknown op '__import__'", 2, 9),
    ("def f(g):\n    u = g if g else g\n    return u\n", "use where(c, a, b)", 2, 9),
    ("def f(g):\n    u = g % 2.0\n    return u\n", "use mod(a, b)", 2, 9),
    ("def f(g):\n    u = g // 2.0\n    return u\n", "'//' is not allowed", 2, 9),
    ("def f(g):\n    u = 0 < g < 1\n    return u\n", "single comparisons", 2, 9),
    ("def f(g):\n    u = sign(*g)\n    return u\n", "starred arguments are not allowed", 2, 14),
    ("def f(g):\n    g = sign(g)\n    return g\n", "cannot assign to the input 'g'", 2, 5),
    ("def f(g):\n    sign = abs(g)\n    return sign\n", "name of an op", 2, 5),
    ("def f(g):\n    a, b = g, g\n    return a\n", "assign to exactly one name", 2, 5),
    ("def f(g):\n    u = sign(g)\n", "must end with 'return", 2, 5),
    ("def f(g):\n    return g\n    u = g\n", "'return' must be the last statement", 2, 5),
    ("def f(g):\n    u = sign\n    return u\n", "op 'sign' used as a value", 2, 9),
    ("def f(g):\n    return 1.0\n", "must be computed names", 2, 12),
    ("def f(g):\n    u = g * 1e999\n    return u\n", "not finite", 2, 13),
    ("def f(g):\n    u = g * True\n    return u\n", "not a number", 2, 13),
    ("def f(g, *a):\n    return g\n", "only plain positional parameters", 1, 1),
    ("def f(g=1.0):\n    return g\n", "defaults are not allowed", 1, 9),
    ("def f(g: float):\n    return g\n", "annotations are not allowed", 1, 1),
    ("@dec\ndef f(g):\n    return g\n", "decorators are not allowed", 1, 2),
    ("def f(g):\n    return g\ndef h(g):\n    return g\n", "exactly one 'def'", 3, 1),
    ("x = 1\n", "exactly one 'def'", 1, 1),
    ("", "empty program", 0, 0),
    ("class C:\n    pass\n", "exactly one 'def'", 1, 1),
]


@pytest.mark.parametrize("text,message,line,col", BAD, ids=[b[1][:30] for b in BAD])
def test_every_bad_text_is_a_program_error_with_its_position(text, message, line, col):
    expect_error(text, message, line, col)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.opt"
    bad.write_text("def f(g):\n    u = nope(g)\n    return u\n")
    with pytest.raises(ProgramError, match=r"bad\.opt:2:9: unknown op 'nope'"):
        programs.load(bad)
    binary = tmp_path / "binary.opt"
    binary.write_bytes(b"def f(g):\n    return g\n\xff\xfe\n")
    with pytest.raises(ProgramError, match=r"binary\.opt:3:0: not valid UTF-8"):
        programs.load(binary)
    with pytest.raises(ProgramError, match=r"missing\.opt:0:0: cannot read program file"):
        programs.load(tmp_path / "missing.opt")
    good = tmp_path / "good.opt"
    good.write_text(LION)
    assert programs.load(good) == parse(LION)


# -- hostile input: bounded errors, nothing executed --------------------------------------

def test_code_injection_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    attempts = [
        f"__import__('pathlib').Path({str(marker)!r}).touch()\n",
        f"def f(g):\n    u = __import__('pathlib').Path({str(marker)!r}).touch()\n    return u\n",
        f"def f(g, x=__import__('pathlib').Path({str(marker)!r}).touch()):\n    return g\n",
        f"@__import__('pathlib').Path({str(marker)!r}).touch\ndef f(g):\n    return g\n",
        f"def f(g) -> __import__('pathlib').Path({str(marker)!r}).touch():\n    return g\n",
        "def f(g):\n    u = eval('1')\n    return u\n",
        "def f(g):\n    u = exec('import os')\n    return u\n",
    ]
    for text in attempts:
        with pytest.raises(ProgramError):
            parse(text)
    assert not marker.exists()


def test_megabyte_text_is_rejected_before_parsing():
    huge = "def f(g):\n" + "    u = g + g\n" * 100_000 + "    return u\n"
    assert len(huge) > MAX_TEXT_CHARS
    expect_error(huge, f"longer than {MAX_TEXT_CHARS} characters")
    with pytest.raises(ProgramError, match="longer than"):
        parse("def f(g):\n    u = " + "g + " * 300_000 + "g\n    return u\n")


@pytest.mark.parametrize("text", [
    "def f(g):\n    u = " + "(" * 5000 + "g" + ")" * 5000 + "\n    return u\n",
    "def f(g):\n    u = " + "sign(" * 3000 + "g" + ")" * 3000 + "\n    return u\n",
    "def f(g):\n    u = " + "-" * 20000 + "g\n    return u\n",
    "def f(g):\n    u = " + " + ".join(["g"] * 20000) + "\n    return u\n",
    "def f(g):\n    u = " + " ** ".join(["g"] * 20000) + "\n    return u\n",
    "def f(g):\n" + "    u = g\n" * 2 + "    v = " + "[" * 60 + "\n    return u\n",
])
def test_deep_nesting_is_a_bounded_error(text):
    with pytest.raises(ProgramError, match="nested|too complex|syntax error|longer than"):
        parse(text)


def test_many_statements_are_bounded():
    body = "".join(f"    u{i} = sign(g)\n" for i in range(2500))
    with pytest.raises(ProgramError, match="more than 2000 statements"):
        parse(f"def f(g):\n{body}    return u0\n")


def test_nul_and_non_str_input():
    expect_error("def f(g):\n    return g\x00\n", "NUL character", 2)
    with pytest.raises(ProgramError, match="must be str"):
        parse(b"def f(g):\n    return g\n")  # type: ignore[arg-type]


def test_built_programs_are_checked():
    from programs import Program, Statement

    p = parse(LION)
    with pytest.raises(ProgramError, match="unknown op 'nope'"):
        p.replace(body=(Statement("u", "nope", ("g",)),) + p.body[1:])
    with pytest.raises(ProgramError, match="'q' is used before"):
        p.replace(body=(Statement("u", "sign", ("q",)),) + p.body[1:])
    with pytest.raises(ProgramError, match="not a finite float"):
        p.replace(body=(Statement("u", "mul", ("g", float("nan"))),) + p.body[1:])
    with pytest.raises(ProgramError, match="cannot assign to the input"):
        Program("f", ("g",), (Statement("g", "sign", ("g",)),), ("g",)).checked()
