"""Export target ``optax``: a ``scale_by_NAME`` transformation and a ``NAME`` factory.

The module holds ``_step`` (the program on one tensor, in ``jax.numpy``, each op spelled as
the ops table defines it), a NamedTuple state (``count`` and one pytree per slot),
``scale_by_NAME(learning_rate[, total_steps])`` returning the program's update, and
``NAME(...) = chain(scale_by_NAME(...), scale(-1))``.  It imports ``jax`` and ``optax`` only;
trees are walked with ``jax.tree.map``.

Saturations and denominator guards are left out exactly where :mod:`programs.bounds` proves
them the identity, as the reference interpreter (``programs.as_optax``) leaves them out: under
``jax.jit`` both build the same arithmetic and XLA fuses it alike (a product into a following
sum: one FMA), so that the two agree to 1e-5 over 100 steps even where values cancel exactly
(tests/export/), at about optax's own speed (``scripts/bench_export.py``).
"""

from __future__ import annotations

import dataclasses

from programs.exporters import codegen, layout
from programs.exporters.codegen import Dialect
from programs.exporters.layout import INDENT, fit_call, fit_sequence

_J = "jnp"
TEMPLATES = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
    "neg": "-{0}",
    "power": "jnp.abs({0}) ** {1}", "power_const_base": "{0} ** {1}",
    "max": "jnp.maximum({0}, {1})", "min": "jnp.minimum({0}, {1})",
    "max_const": "jnp.maximum({0}, {1})", "min_const": "jnp.minimum({0}, {1})",
    "mod": "jnp.mod({0}, {1})",
    "clip": "_clip({0}, {1})", "clip_const": "jnp.clip({0}, -{1}, {1})",
    "gt": "_gt({0}, {1})", "ge": "_ge({0}, {1})", "lt": "_lt({0}, {1})",
    "le": "_le({0}, {1})", "eq": "_eq({0}, {1})",
    "interp": "_interp({0}, {1}, {2})", "interp_unit": "_interp_unit({0}, {1}, {2})",
    "where": "jnp.where({0} > 0, {1}, {2})",
    "abs": "jnp.abs({0})", "sign": "jnp.sign({0})", "square": "jnp.square({0})",
    "cube": "{0} * {0} * {0}", "sqrt": "jnp.sqrt(jnp.abs({0}))", "rsqrt": "_rsqrt({0})",
    "sqrt_nonnegative": "jnp.sqrt({0})",
    "reciprocal": "1 / {0}", "exp": "_exp({0})", "expm1": "_expm1({0})",
    "log": "_log({0})", "log1p": "jnp.log1p(jnp.abs({0}))",
    "sin": "jnp.sin({0})", "cos": "jnp.cos({0})", "tan": "jnp.tan({0})",
    "arcsin": "jnp.arcsin(jnp.clip({0}, -1.0, 1.0))",
    "arccos": "jnp.arccos(jnp.clip({0}, -1.0, 1.0))", "arctan": "jnp.arctan({0})",
    "sinh": "_sinh({0})", "cosh": "_cosh({0})", "tanh": "jnp.tanh({0})",
    "arcsinh": "jnp.arcsinh({0})", "arccosh": "jnp.arccosh(jnp.maximum({0}, 1.0))",
    "arctanh": "_arctanh({0})", "sigmoid": "_sigmoid({0})",
    "softplus": "jnp.logaddexp({0}, 0.0)", "relu": "jnp.maximum({0}, 0.0)",
    "erf": "jax.scipy.special.erf({0})",
    "mean": "_mean({0})", "norm": "_norm({0})", "rms": "_rms({0})",
    "max_abs": "jnp.max(jnp.abs({0}))", "center": "_center({0})",
}


def _compare(name: str, symbol: str) -> str:
    return (f"def {name}(a, b):\n"
            f'    """1.0 where a {symbol} b, else 0.0."""\n'
            f"    return (a {symbol} b).astype(jnp.result_type(a, b))")


HELPERS = {
    "_sat": '''def _sat(x):
    """x clipped to the finite range of its dtype (saturation: never Inf)."""
    big = jnp.finfo(x.dtype).max
    return jnp.clip(x, -big, big)''',
    "_sat_stored": '''def _sat_stored(x):
    """_sat (the same values) for a slot's new value that later lines read.

    Two selects, not a clip: XLA copies a clip (or any op of one operand) into every
    reader, with the sum it clips, and would compute the new value again in each; this
    value it computes once.
    """
    big = jnp.finfo(x.dtype).max
    return jnp.where(x > big, big, jnp.where(x < -big, -big, x))''',
    "_safe": '''def _safe(b):
    """A denominator: |b| < 1e-30 becomes 1e-30 with the sign of b (+ for 0)."""
    return jnp.where(jnp.abs(b) < 1e-30, jnp.where(b < 0, -1e-30, 1e-30), b)''',
    "_interp": '''def _interp(a, b, c):
    """a * (1 - c) + b * c, c in the dtype; each product and the sum saturated."""
    c = jnp.asarray(c, jnp.result_type(a, b, c))
    return _sat(_sat(a * (1 - c)) + _sat(b * c))''',
    "_interp_unit": '''def _interp_unit(a, b, c):
    """interp for a constant 0 <= c <= 1: neither product can overflow, the sum can."""
    c = jnp.asarray(c, jnp.result_type(a, b, c))
    return _sat(a * (1 - c) + b * c)''',
    "_clip": '''def _clip(x, c):
    """x clipped to [-|c|, |c|]."""
    return jnp.clip(x, -jnp.abs(c), jnp.abs(c))''',
    "_gt": _compare("_gt", ">"), "_ge": _compare("_ge", ">="), "_lt": _compare("_lt", "<"),
    "_le": _compare("_le", "<="), "_eq": _compare("_eq", "=="),
    "_rsqrt": '''def _rsqrt(x):
    """1 / sqrt(|x|), |x| floored at 1e-30."""
    return 1 / jnp.sqrt(jnp.maximum(jnp.abs(x), 1e-30))''',
    "_exp": '''def _exp(x):
    """exp of x clipped to [-80, 80]."""
    return jnp.exp(jnp.clip(x, -80.0, 80.0))''',
    "_expm1": '''def _expm1(x):
    """expm1 of x clipped to [-80, 80]."""
    return jnp.expm1(jnp.clip(x, -80.0, 80.0))''',
    "_sinh": '''def _sinh(x):
    """sinh of x clipped to [-80, 80]."""
    return jnp.sinh(jnp.clip(x, -80.0, 80.0))''',
    "_cosh": '''def _cosh(x):
    """cosh of x clipped to [-80, 80]."""
    return jnp.cosh(jnp.clip(x, -80.0, 80.0))''',
    "_log": '''def _log(x):
    """log(|x|), |x| floored at 1e-30."""
    return jnp.log(jnp.maximum(jnp.abs(x), 1e-30))''',
    "_arctanh": '''def _arctanh(x):
    """arctanh of x clipped to [-1 + eps, 1 - eps] (eps of the dtype)."""
    eps = jnp.finfo(x.dtype).eps
    return jnp.arctanh(jnp.clip(x, -1 + eps, 1 - eps))''',
    "_sigmoid": '''def _sigmoid(x):
    """1 / (1 + exp(-x)), x clipped to [-80, 80]."""
    return 1 / (1 + jnp.exp(-jnp.clip(x, -80.0, 80.0)))''',
    "_mean": '''def _mean(x):
    """Mean of the whole tensor."""
    return jnp.sum(x) / x.size''',
    "_norm": '''def _norm(x):
    """L2 norm of the whole tensor."""
    return jnp.sqrt(jnp.sum(jnp.square(x)))''',
    "_rms": '''def _rms(x):
    """Root mean square of the whole tensor."""
    return jnp.sqrt(jnp.sum(jnp.square(x)) / x.size)''',
    "_center": '''def _center(x):
    """x minus its mean over all axes but the first (rank >= 2 only), saturated."""
    if x.ndim < 2:
        return x
    return _sat(x - jnp.mean(x, axis=tuple(range(1, x.ndim)), keepdims=True))''',
}

DIALECT = Dialect(templates=TEMPLATES, helpers=HELPERS,
                  typed="jnp.asarray({value}, {like}.dtype)",
                  globals_=frozenset({"jax", "jnp", "optax", "NamedTuple"}),
                  stored_sat="_sat_stored")


NOTES = """

Clips are left out only where they are the identity, as in programs.as_optax: under
jax.jit both build the same arithmetic (XLA may contract a product and a sum into one
FMA, in both; the surrounding graph can move such a choice, a last-place difference)."""


FAST_SAT_STORED = '''def _sat_stored(x):
    """x as it is (a fast export does not saturate), for a slot's new value that later lines
    read: a select that XLA computes once, where it would copy an op of one operand (and
    what that op reads) into every reader."""
    return jnp.where(x > jnp.finfo(x.dtype).max, jnp.inf, x)'''


def render(program, provenance, fast: bool = False) -> str:
    """Source of the optax module for ``program``."""
    dialect = DIALECT
    if fast:
        dialect = codegen.fast_dialect(DIALECT)
        dialect = dataclasses.replace(dialect, helpers={**dialect.helpers,
                                                        "_sat_stored": FAST_SAT_STORED})
    plan = codegen.plan(program, dialect)
    p = plan.program
    reserved = dialect.reserved() | {"scale_by_" + p.name, "__all__"}
    name = codegen.unique(p.name, reserved)
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    state_cls = codegen.unique(f"ScaleBy{camel}State", {name})
    scale_by = f"scale_by_{name}"
    reads_w, reads_t_total = plan.reads("w"), plan.reads("T")
    fields = []
    for slot in p.slots:  # NamedTuple fields: no leading underscore, and not "count"
        fields.append(codegen.unique(slot if not slot.startswith("_") else "slot" + slot,
                                     {"count", *fields}))
    sig_args = ["learning_rate: optax.ScalarOrSchedule"]
    call_args = ["learning_rate"]
    if reads_t_total:
        sig_args.append("total_steps: int")
        call_args.append("total_steps")
    usage_args = f"learning_rate={layout.usage_rate(provenance)}" + (", total_steps=10_000" if reads_t_total else "")
    usage = f"""
import optax
from {name} import {name}  # this file, saved as {name}.py

tx = {name}({usage_args})
opt_state = tx.init(params)
updates, opt_state = tx.update(grads, opt_state, params)
params = optax.apply_updates(params, updates)
"""
    notes = codegen.semantics("jax and optax", fast) + NOTES
    title = f"{name}: an optimizer found as an update program, exported for optax."
    out = layout.docstring(title, p, provenance, usage, notes)
    out += ["", "from typing import NamedTuple", "", "import jax", "import jax.numpy as jnp",
            "import optax", ""]
    out += fit_sequence("__all__ = ", [f'"{name}"'], "", "")
    step_doc = _step_doc(p)
    step = codegen.step_function(plan, dialect, step_doc)
    for src in codegen.helper_sources("\n".join(step), dialect.helpers):
        out += ["", "", src]
    out += ["", ""] + step + ["", ""]

    out += fit_call(f"class {state_cls}(", ["NamedTuple"], "):", "")
    out.append(f'{INDENT}"""State of {scale_by}: the steps taken and one pytree per slot."""')
    out += ["", f"{INDENT}count: jax.Array"]
    out += [f"{INDENT}{f}: optax.Updates" for f in fields]
    out += ["", ""]

    out += fit_call(f"def {scale_by}(", sig_args, ") -> optax.GradientTransformation:", "")
    out.append(f'{INDENT}"""The program\'s update u for every leaf, learning rate included '
               f'(apply -u)."""')
    body = [""]
    if reads_t_total:
        body += [
            "if total_steps < 1 or int(total_steps) != total_steps:",
            f'{INDENT}raise ValueError(f"total_steps must be a positive int, got {{total_steps!r}}")',
            "T = float(total_steps)",
            "",
        ]
    body += ["def init_fn(params):"]
    if fields:  # one pytree per slot (not one shared), so that state can be donated
        body += [(f"{INDENT}slots = [jax.tree.map(jnp.zeros_like, params) for _ in range"
                  f"({len(fields)})]")]
        body += [f"{INDENT}{x}" for x in fit_call(
            "return " + state_cls + "(", ["jnp.zeros([], jnp.int32)", "*slots"], ")", "")]
    else:
        body += [f"{INDENT}return {state_cls}(jnp.zeros([], jnp.int32))"]
    body += ["", "def update_fn(updates, state, params=None):"]
    if reads_w:
        body += [f"{INDENT}if params is None:",
                 f'{INDENT * 2}raise ValueError("{name} reads w: pass params to update")']
    inputs = [{"T": "T"}.get(n, n) for n in plan.step_params[: len(plan.step_params)
                                                             - len(p.slots)]]
    like = plan.like
    leaf_args = ["g"] + (["w"] if reads_w else []) + ["*slots"]
    tree_args = ["leaf", "updates"] + (["params"] if reads_w else []) + ["*state[1:]"]
    cast_items = inputs + ["*slots"]
    body += [
        f"{INDENT}lr = learning_rate(state.count) if callable(learning_rate) else learning_rate"
        if plan.reads("lr") else "",
        f"{INDENT}t = state.count + 1" if plan.reads("t") else "",
        "",
        f"{INDENT}def leaf({', '.join(leaf_args)}):",
        f"{INDENT * 2}dtype = {like}.dtype",
    ]
    body += fit_call("inputs = (", cast_items, ")", INDENT * 2)
    body += [
        f"{INDENT * 2}out = _step(*(jnp.asarray(x, dtype) for x in inputs))",
        (f"{INDENT * 2}return tuple(jnp.broadcast_to(x, {like}.shape).astype(dtype) "
         "for x in out)"),
        "",
        *fit_call("out = jax.tree.map(", tree_args, ")", INDENT),
        f"{INDENT}inner = jax.tree.structure((0,) * {1 + len(fields)})",
        f"{INDENT}u, *slots = jax.tree.transpose(jax.tree.structure(updates), inner, out)",
        f"{INDENT}count = optax.safe_increment(state.count)",
        f"{INDENT}return u, {state_cls}(count, *slots)",
        "",
        "return optax.GradientTransformation(init_fn, update_fn)",
    ]
    out += [f"{INDENT}{line}" if line else "" for line in _squeeze(body, keep_first=True)]
    out += ["", ""]
    out += fit_call(f"def {name}(", sig_args, ") -> optax.GradientTransformation:", "")
    out.append(f'{INDENT}"""{_factory_doc(p, reads_t_total)}"""')
    out += fit_call("return optax.chain(", [f"{scale_by}({', '.join(call_args)})",
                                           "optax.scale(-1.0)"], ")", INDENT)
    return "\n".join(out) + "\n"


def _squeeze(lines: list[str], keep_first: bool = False) -> list[str]:
    """Drop the empty placeholders of skipped lines, keeping single blank separators."""
    out: list[str] = []
    for i, line in enumerate(lines):
        if line == "" and not (keep_first and i == 0) and (not out or out[-1] == ""):
            continue
        out.append(line)
    return out


def _step_doc(p) -> str:
    slots = ", ".join(p.slots)
    return f"The program on one tensor: the update{', then the new ' + slots if slots else ''}."


def _factory_doc(p, reads_total: bool) -> str:
    extra = "; total_steps is T" if reads_total else ""
    return (f"The {p.name} optimizer: learning_rate is a float or an optax schedule{extra}.")
