"""Text the exporters write, laid out as ``ruff format`` would, and their docstrings.

Contract: :func:`fit_call`, :func:`fit_sequence` and :func:`fit_assign` return the lines of a
call, a bracketed sequence or an assignment at ``indent``, on one line when it fits
:data:`LINE_LENGTH` (ruff format's default) and split the way ruff splits it otherwise;
:func:`docstring` writes a module's docstring (the program's text, its provenance, a usage
example) and :func:`escape` makes any provenance value safe inside it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from programs.program import Program

LINE_LENGTH = 88  # ruff format's default
INDENT = "    "

def _split_call(expr: str) -> tuple[str, list[str]] | None:
    """``f(a, b)`` -> (``f(``, [a, b]) when the whole of ``expr`` is one call; else None."""
    m = re.match(r"[A-Za-z_][\w.]*\(", expr)
    if not m or not expr.endswith(")"):
        return None
    depth, items, start = 0, [], m.end()
    for i in range(m.end() - 1, len(expr)):
        ch = expr[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0 and i != len(expr) - 1:
                return None
        elif ch == "," and depth == 1:
            items.append(expr[start:i].strip())
            start = i + 1
    items.append(expr[start:-1].strip())
    return m.group(0), items


def fit_call(head: str, items, tail: str, indent: str) -> list[str]:
    """``head + items + tail`` on one line, or items on one indented line, or one per line.

    A ``def`` with a single parameter gets the trailing comma ruff format gives it.
    """
    items = list(items)
    one = f"{indent}{head}{', '.join(items)}{tail}"
    if len(one) <= LINE_LENGTH or not items:
        return [one]
    comma = "," if len(items) == 1 and head.startswith("def ") else ""
    inner = f"{indent}{INDENT}{', '.join(items)}{comma}"
    if len(inner) <= LINE_LENGTH:
        return [f"{indent}{head}", inner, f"{indent}{tail}"]
    if len(items) == 1 and not comma:  # one long expression: break before its operators
        parts = _split_binary(items[0])
        return [f"{indent}{head}"] + [f"{indent}{INDENT}{x}" for x in parts] + [f"{indent}{tail}"]
    return [f"{indent}{head}"] + [f"{indent}{INDENT}{x}," for x in items] + [f"{indent}{tail}"]


def _split_binary(expr: str) -> list[str]:
    """``a * b + c`` -> [``a``, ``* b``, ``+ c``]: split before each operator outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and expr[i - 1:i] == " " and (
                expr[i:i + 2] in ("+ ", "- ", "* ", "/ ") or expr[i:i + 3] == "** "):
            parts.append(expr[start:i].strip())
            start = i
    parts.append(expr[start:].strip())
    return parts


def fit_sequence(head: str, items, tail: str, indent: str, bracket: str = "[]",
                 bare: bool = False) -> list[str]:
    """A list, a tuple, or (``bare``) a tuple without brackets as in ``return a, b``: one
    line if it fits, else one item per line with a trailing comma (a one-item list hugs)."""
    items = list(items)
    opener, closer = ("", "") if bare else bracket
    comma = "," if bracket == "()" and len(items) == 1 and not bare else ""
    one = f"{head}{opener}{', '.join(items)}{comma}{closer}{tail}"
    if len(one) <= LINE_LENGTH:
        return [one]
    opener, closer = bracket
    if len(items) == 1 and bracket == "[]":
        return [f"{head}{opener}", f"{indent}{INDENT}{items[0]}", f"{indent}{closer}{tail}"]
    return ([f"{head}{opener}"] + [f"{indent}{INDENT}{x}," for x in items]
            + [f"{indent}{closer}{tail}"])


def fit_assign(indent: str, target: str, expr: str) -> list[str]:
    """``target = expr`` laid out as ruff format does for the expressions we generate."""
    one = f"{indent}{target} = {expr}"
    if len(one) <= LINE_LENGTH:
        return [one]
    call = _split_call(expr)
    if call is not None:
        return fit_call(f"{target} = {call[0]}", call[1], ")", indent)
    return [f"{indent}{target} = (", f"{indent}{INDENT}{expr}", f"{indent})"]


# -- docstrings ----------------------------------------------------------------------------
def escape(value) -> str:
    """Text safe inside a triple-quoted docstring: no quotes, backslashes or control chars
    survive unescaped; numbers print exactly (``repr``)."""
    if isinstance(value, float):
        return repr(value)
    out = []
    for ch in str(value):
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


PROVENANCE_LABELS = {"run": "run", "search_score": "search score",
                     "held_out_score": "held-out score"}

ADAM_RATE = 1e-3
"""The rate a usage example starts from for adam (optax's and torch's usual default)."""


def rate_factor(provenance: Mapping[str, object]) -> float | None:
    """The geometric mean over tasks of (the program's tuned rate / tuned adam's) from the
    provenance's ``rates`` (task -> [program's rate, adam's rate]); None without any."""
    rates = provenance.get("rates") or {}
    ratios = [float(mine) / float(adam) for mine, adam in rates.values()
              if mine and adam and float(mine) > 0 and float(adam) > 0]
    if not ratios:
        return None
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def usage_rate(provenance: Mapping[str, object]) -> str:
    """The rate of a usage example: adam's usual 1e-3 times :func:`rate_factor`, two
    significant digits (1e-3 when the rates are unknown)."""
    factor = rate_factor(provenance)
    return f"{ADAM_RATE * (factor or 1.0):.2g}"


def docstring(title: str, program: Program, provenance: Mapping[str, object], usage: str,
              notes: str) -> list[str]:
    """The module docstring: title, program text, provenance, usage, semantics notes."""
    lines = [f'"""{escape(title)}', "", "The update program (canonical text)::", ""]
    lines += [f"{INDENT}{line}" if line else "" for line in str(program).splitlines()]
    shown = {k: v for k, v in provenance.items() if v is not None and k != "rates"}
    if shown:
        lines += ["", "Provenance:", ""]
        for key, value in shown.items():
            label = PROVENANCE_LABELS.get(key, str(key).replace("_", " "))
            lines.append(f"{INDENT}{escape(label)}: {escape(value)}")
    factor = rate_factor(provenance)
    if factor is not None:
        lines += ["", "Learning rate: the search tuned this program's rate per task beside",
                  "tuned adam's (this program / adam):", ""]
        for task, (mine, adam) in provenance["rates"].items():
            lines.append(f"{INDENT}{escape(task)}: {float(mine):.3g} / {float(adam):.3g}")
        lines += ["", f"Start from about {factor:.3g}x the rate adam uses on your problem",
                  (f"(the usage below: {usage_rate(provenance)} for adam's {ADAM_RATE:g}), "
                  "then tune it.")]
    lines += ["", "Usage::", ""]
    lines += [f"{INDENT}{line}" if line else "" for line in usage.strip("\n").splitlines()]
    lines += [""] + notes.strip("\n").splitlines() + ['"""']
    return lines
