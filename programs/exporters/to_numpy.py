"""Export target ``numpy``: ``init(params)`` and ``update(grads, state, params, lr)``.

Parameters, gradients and state slots are dicts of arrays keyed alike.  ``update`` returns
``(new_params, new_state)`` and modifies nothing it is given.  The state is a dict:
``{"count": steps taken, "slots": {slot: {key: array}}}`` (plus ``"total_steps"`` when the
program reads ``T``; ``init`` then takes it).  Eager ops round one at a time, so the
saturations and protections that are the identity are left out (see ``codegen``).  NumPy has
no ``erf``: the module computes it in float64 (a series of positive terms below 2.5, Laplace's
continued fraction of erfc above; within 2e-15 relative), then rounds to the dtype.
"""

from __future__ import annotations

from programs.exporters import codegen, layout
from programs.exporters.codegen import Dialect
from programs.exporters.layout import INDENT, fit_sequence

TEMPLATES = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
    "neg": "-{0}",
    "power": "_pow64(np.abs({0}), {1})", "power_const_base": "_pow64({0}, {1})",
    "max": "np.maximum({0}, {1})", "min": "np.minimum({0}, {1})",
    "max_const": "np.maximum({0}, {1})", "min_const": "np.minimum({0}, {1})",
    "mod": "_mod({0}, {1})",
    "clip": "_clip({0}, {1})", "clip_const": "np.clip({0}, -{1}, {1})",
    "gt": "_gt({0}, {1})", "ge": "_ge({0}, {1})", "lt": "_lt({0}, {1})",
    "le": "_le({0}, {1})", "eq": "_eq({0}, {1})",
    "interp": "_interp({0}, {1}, {2})", "interp_unit": "_interp_unit({0}, {1}, {2})",
    "where": "np.where({0} > 0, {1}, {2})",
    "abs": "np.abs({0})", "sign": "np.sign({0})", "square": "np.square({0})",
    "cube": "{0} * {0} * {0}", "sqrt": "np.sqrt(np.abs({0}))", "rsqrt": "_rsqrt({0})",
    "sqrt_nonnegative": "np.sqrt({0})",
    "reciprocal": "1 / {0}", "exp": "_exp({0})", "expm1": "_expm1({0})",
    "log": "_log({0})", "log1p": "np.log1p(np.abs({0}))",
    "sin": "np.sin({0})", "cos": "np.cos({0})", "tan": "np.tan({0})",
    "arcsin": "np.arcsin(np.clip({0}, -1.0, 1.0))",
    "arccos": "np.arccos(np.clip({0}, -1.0, 1.0))", "arctan": "np.arctan({0})",
    "sinh": "_sinh({0})", "cosh": "_cosh({0})", "tanh": "np.tanh({0})",
    "arcsinh": "np.arcsinh({0})", "arccosh": "np.arccosh(np.maximum({0}, 1.0))",
    "arctanh": "_arctanh({0})", "sigmoid": "_sigmoid({0})", "softplus": "_softplus({0})",
    "relu": "np.maximum({0}, 0.0)", "erf": "_erf({0})",
    "mean": "_mean({0})", "norm": "_norm({0})", "rms": "_rms({0})",
    "max_abs": "np.max(np.abs({0}))", "center": "_center({0})",
}


def _compare(name: str, symbol: str) -> str:
    return (f"def {name}(a, b):\n"
            f'    """1.0 where a {symbol} b, else 0.0."""\n'
            f"    return np.asarray(a {symbol} b, np.result_type(a, b))")


def _clipped(name: str) -> str:
    return (f"def _{name}(x):\n"
            f'    """{name} of x clipped to [-80, 80]."""\n'
            f"    return np.{name}(np.clip(x, -80.0, 80.0))")


HELPERS = {
    "_sat": '''def _sat(x):
    """x clipped to the finite range of its dtype (saturation: never Inf)."""
    big = np.finfo(x.dtype).max
    return np.clip(x, -big, big)''',
    "_safe": '''def _safe(b):
    """A denominator: |b| < 1e-30 becomes 1e-30 with the sign of b (+ for 0)."""
    tiny = np.asarray(1e-30, b.dtype)
    return np.where(np.abs(b) < tiny, np.where(b < 0, -tiny, tiny), b)''',
    "_interp": '''def _interp(a, b, c):
    """a * (1 - c) + b * c, c in the dtype; each product and the sum saturated."""
    c = np.asarray(c, np.result_type(a, b))
    return _sat(_sat(a * (1 - c)) + _sat(b * c))''',
    "_interp_unit": '''def _interp_unit(a, b, c):
    """interp for a constant 0 <= c <= 1: neither product can overflow, the sum can."""
    c = np.asarray(c, np.result_type(a, b))
    return _sat(a * (1 - c) + b * c)''',
    "_pow64": '''def _pow64(a, b):
    """a ** b in the dtype of a and b, computed in float64 and rounded (NumPy's float32
    power is not correctly rounded; XLA's is)."""
    dtype = np.result_type(a, b)
    a, b = (np.asarray(x, dtype).astype(np.float64) for x in (a, b))
    return np.asarray(a**b, dtype)''',
    "_mod": '''def _mod(a, b):
    """a mod b with the sign of b."""
    r = np.fmod(a, b)
    return np.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)''',
    "_clip": '''def _clip(x, c):
    """x clipped to [-|c|, |c|]."""
    m = np.abs(c)
    return np.minimum(np.maximum(x, -m), m)''',
    "_gt": _compare("_gt", ">"), "_ge": _compare("_ge", ">="), "_lt": _compare("_lt", "<"),
    "_le": _compare("_le", "<="), "_eq": _compare("_eq", "=="),
    "_rsqrt": '''def _rsqrt(x):
    """1 / sqrt(|x|), |x| floored at 1e-30."""
    return 1 / np.sqrt(np.maximum(np.abs(x), 1e-30))''',
    "_exp": _clipped("exp"), "_expm1": _clipped("expm1"),
    "_sinh": _clipped("sinh"), "_cosh": _clipped("cosh"),
    "_log": '''def _log(x):
    """log(|x|), |x| floored at 1e-30."""
    return np.log(np.maximum(np.abs(x), 1e-30))''',
    "_arctanh": '''def _arctanh(x):
    """arctanh of x clipped to [-1 + eps, 1 - eps] (eps of the dtype)."""
    eps = np.finfo(x.dtype).eps
    return np.arctanh(np.clip(x, -1 + eps, 1 - eps))''',
    "_sigmoid": '''def _sigmoid(x):
    """1 / (1 + exp(-x)), x clipped to [-80, 80]."""
    return 1 / (1 + np.exp(-np.clip(x, -80.0, 80.0)))''',
    "_softplus": '''def _softplus(x):
    """log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|))."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))''',
    "_erf": '''def _erf(x):
    """Error function, computed in float64 and rounded to x's dtype."""
    z = np.abs(np.asarray(x, np.float64))
    s = np.minimum(z, 2.5)  # |x| <= 2.5: 2/sqrt(pi) exp(-x^2) sum (2x^2)^n x / (2n+1)!!
    term, total = s, s
    for n in range(1, 60):
        term = term * (2 * s * s / (2 * n + 1))
        total = total + term
    series = 1.1283791670955126 * np.exp(-s * s) * total
    b = np.maximum(z, 2.5)  # |x| > 2.5: Laplace's continued fraction of erfc
    frac = b
    for k in range(60, 0, -1):
        frac = b + (k / 2) / frac
    tail = 1 - np.exp(-b * b) / (frac * 1.7724538509055159)
    out = np.where(z <= 2.5, series, tail)
    return np.asarray(np.sign(x) * out, np.result_type(x))''',
    "_mean": '''def _mean(x):
    """Mean of the whole tensor."""
    return np.sum(x) / np.size(x)''',
    "_norm": '''def _norm(x):
    """L2 norm of the whole tensor (|x| for one element, as XLA simplifies it)."""
    if np.size(x) == 1:
        return np.abs(np.reshape(x, ()))
    return np.sqrt(np.sum(np.square(x)))''',
    "_rms": '''def _rms(x):
    """Root mean square of the whole tensor (|x| for one element, as XLA simplifies it)."""
    if np.size(x) == 1:
        return np.abs(np.reshape(x, ()))
    return np.sqrt(np.sum(np.square(x)) / np.size(x))''',
    "_center": '''def _center(x):
    """x minus its mean over all axes but the first (rank >= 2 only), saturated."""
    if np.ndim(x) < 2:
        return x
    return _sat(x - np.mean(x, axis=tuple(range(1, x.ndim)), keepdims=True))''',
    "_own": '''def _own(x, w, *inputs):
    """x as new state: an array of w's shape and dtype, never one of the inputs."""
    if np.shape(x) == w.shape and not any(x is y for y in (w, *inputs)):
        return np.asarray(x, w.dtype)
    return np.array(np.broadcast_to(x, w.shape), w.dtype)''',
}

NOTES = """

Float32 arithmetic on 0-d values needs NumPy >= 2 (NEP 50: Python floats do not promote).
XLA on CPU, where programs are searched, flushes subnormal numbers (below 1.2e-38 in float32)
to zero; NumPy does not, so results can differ where values fall that low."""

DIALECT = Dialect(templates=TEMPLATES, helpers=HELPERS,
                  typed="np.asarray({value}, {like}.dtype)", globals_=frozenset({"np"}))


def render(program, provenance, fast: bool = False) -> str:
    """Source of the numpy module for ``program``."""
    dialect = codegen.fast_dialect(DIALECT) if fast else DIALECT
    plan = codegen.plan(program, dialect)
    p = plan.program
    reads_total = plan.reads("T")
    usage = f"""
import numpy as np
import {p.name}  # this file, saved as {p.name}.py

params = {{"w": np.zeros((3, 4), np.float32), "b": np.zeros(4, np.float32)}}
state = {p.name}.init(params{", total_steps=10_000" if reads_total else ""})
for grads in gradients:  # dicts keyed like params
    params, state = {p.name}.update(grads, state, params, lr={layout.usage_rate(provenance)})
"""
    notes = codegen.semantics("numpy", fast) + NOTES
    title = f"{p.name}: an optimizer found as an update program, exported for NumPy."
    out = layout.docstring(title, p, provenance, usage, notes)
    out += ["", "import numpy as np", "", '__all__ = ["init", "update"]']
    out += fit_sequence("_SLOTS = ", [f'"{s}"' for s in p.slots], "", "", bracket="()")
    step = codegen.step_function(plan, dialect, _step_doc(p))
    tail = _functions(plan, reads_total)
    for src in codegen.helper_sources("\n".join(step + tail), dialect.helpers):
        out += ["", "", src]
    out += ["", ""] + step + ["", ""] + tail
    return "\n".join(out) + "\n"


def _functions(plan, reads_total: bool) -> list[str]:
    i1, i2, i3 = (INDENT * k for k in range(1, 4))
    lines = ["def init(params, total_steps):" if reads_total else "def init(params):",
             f'{i1}"""The state for params (a dict of arrays): no steps taken, slots at zero."""']
    if reads_total:
        lines += [f"{i1}if total_steps < 1 or int(total_steps) != total_steps:",
                  f'{i2}raise ValueError(f"total_steps must be an int >= 1, got {{total_steps}}")']
    lines += [f"{i1}slots = {{s: {{k: np.zeros_like(w) for k, w in params.items()}} for s in _SLOTS}}"]
    if reads_total:
        lines += [f'{i1}return {{"count": 0, "total_steps": total_steps, "slots": slots}}']
    else:
        lines += [f'{i1}return {{"count": 0, "slots": slots}}']
    like = "w" if plan.like == "w" else "g"
    inputs = {"w": "w", "g": "g", "lr": "lr", "t": "count", "T": 'state["total_steps"]'}
    args = [inputs[n] for n in ("w", "g", "lr", "t", "T") if n in plan.step_params]
    lines += [
        "", "",
        "def update(grads, state, params, lr):",
        f'{i1}"""One step: returns (new_params, new_state) and modifies none of its arguments."""',
        f'{i1}count = state["count"] + 1',
        f"{i1}new_params = {{}}",
        f"{i1}new_slots = {{name: {{}} for name in _SLOTS}}",
        f'{i1}with np.errstate(all="ignore"):  # overflow to Inf is then saturated',
        f"{i2}for key, w in params.items():",
        f"{i3}w = np.asarray(w)",
        f"{i3}g = np.asarray(grads[key])",
        f"{i3}dtype = {like}.dtype",
    ]
    lines += fit_sequence(f"{i3}inputs = ", args, "", i3, bracket="()")
    lines += [
        f'{i3}slots = [state["slots"][name][key] for name in _SLOTS]',
        f"{i3}out = _step(*(np.asarray(x, dtype) for x in (*inputs, *slots)))",
        f"{i3}for name, value in zip(_SLOTS, out[1:]):",
        f"{i3}{INDENT}new_slots[name][key] = _own(value, w, g, *slots)",
        f"{i3}new_params[key] = w - np.asarray(out[0], dtype)",
    ]
    lines += [f'{i1}return new_params, {{**state, "count": count, "slots": new_slots}}']
    return lines


def _step_doc(p) -> str:
    slots = ", ".join(p.slots)
    return f"The program on one tensor: the update{', then the new ' + slots if slots else ''}."
