"""Export target ``torch``: a ``torch.optim.Optimizer`` subclass.

The module holds ``_step`` (the program on one tensor, eager PyTorch) and the optimizer class:
``lr`` (and ``total_steps`` when the program reads ``T``) with the usual validation,
``step(closure=None)`` under ``torch.no_grad()``, state created lazily per parameter (``step``
and one tensor per slot, keyed by the slot's name), parameters whose ``grad`` is None skipped,
the parameter updated in place.  Eager ops round one at a time, so saturations and
protections that are the identity are left out (see ``codegen``); results of ops are fresh
tensors, so ``_sat`` clips them in place, and a temporary or an old slot value read for the
last time takes the result of the op that reads it (``tmp1.add_(tmp2)``): allocating a fresh
buffer costs more than the arithmetic.  ``_own`` keeps every slot in a tensor of its own.
Statements that read only ``lr``, ``t``, ``T`` and constants (0-d values: bias corrections,
schedules) run once per parameter in ``_scalars``, not once per piece of it: a 0-d op costs
as much Python as a full one (``codegen.hoist``; adam in torch went from 1.17x to 1.05x the
time of ``torch.optim.Adam``).
"""

from __future__ import annotations

from programs.exporters import codegen, layout
from programs.exporters.codegen import Dialect
from programs.exporters.layout import INDENT, fit_call, fit_sequence
from programs.ops import ELEMENTWISE, OPS

TEMPLATES = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
    "neg": "-{0}",
    "power": "torch.abs({0}) ** {1}", "power_const_base": "{0} ** {1}",
    "power_scalar": "_pow64(torch.abs({0}), {1})", "power_const_base_scalar": "_pow64({0}, {1})",
    "max": "torch.maximum({0}, {1})", "min": "torch.minimum({0}, {1})",
    "max_const": "torch.clamp_min({0}, {1})", "min_const": "torch.clamp_max({0}, {1})",
    "mod": "_mod({0}, {1})",
    "clip": "_clip({0}, {1})", "clip_const": "torch.clamp({0}, -{1}, {1})",
    "gt": "_gt({0}, {1})", "ge": "_ge({0}, {1})", "lt": "_lt({0}, {1})",
    "le": "_le({0}, {1})", "eq": "_eq({0}, {1})",
    "interp": "_interp({0}, {1}, {2})", "interp_unit": "_interp_unit({0}, {1}, {2})",
    "where": "torch.where({0} > 0, {1}, {2})",
    "abs": "torch.abs({0})", "sign": "torch.sign({0})", "square": "torch.square({0})",
    "cube": "{0} * {0} * {0}", "sqrt": "torch.sqrt(torch.abs({0}))", "rsqrt": "_rsqrt({0})",
    "sqrt_nonnegative": "torch.sqrt({0})",
    "reciprocal": "1 / {0}", "exp": "_exp({0})", "expm1": "_expm1({0})",
    "log": "_log({0})", "log1p": "torch.log1p(torch.abs({0}))",
    "sin": "torch.sin({0})", "cos": "torch.cos({0})", "tan": "torch.tan({0})",
    "arcsin": "torch.asin(torch.clamp({0}, -1.0, 1.0))",
    "arccos": "torch.acos(torch.clamp({0}, -1.0, 1.0))", "arctan": "torch.atan({0})",
    "sinh": "_sinh({0})", "cosh": "_cosh({0})", "tanh": "torch.tanh({0})",
    "arcsinh": "torch.asinh({0})", "arccosh": "torch.acosh(torch.clamp_min({0}, 1.0))",
    "arctanh": "_arctanh({0})", "sigmoid": "_sigmoid({0})", "softplus": "_softplus({0})",
    "relu": "torch.clamp_min({0}, 0.0)", "erf": "torch.erf({0})",
    "mean": "_mean({0})", "norm": "_norm({0})", "rms": "_rms({0})",
    "max_abs": "torch.max(torch.abs({0}))", "center": "_center({0})",
}


def _compare(name: str, symbol: str) -> str:
    return (f"def {name}(a, b):\n"
            f'    """1.0 where a {symbol} b, else 0.0."""\n'
            f"    return (a {symbol} b).to(torch.result_type(a, b))")


def _clipped(name: str, fn: str) -> str:
    return (f"def _{name}(x):\n"
            f'    """{name} of x clipped to [-80, 80]."""\n'
            f"    return torch.{fn}(torch.clamp(x, -80.0, 80.0))")


HELPERS = {
    "_sat": '''def _sat(x):
    """x, a fresh tensor, clipped in place to the finite range of its dtype (never Inf)."""
    big = torch.finfo(x.dtype).max
    return x.clamp_(-big, big)''',
    "_safe": '''def _safe(b):
    """A denominator: |b| < 1e-30 becomes 1e-30 with the sign of b (+ for 0)."""
    tiny = torch.tensor(1e-30, dtype=b.dtype, device=b.device)
    return torch.where(torch.abs(b) < tiny, torch.where(b < 0, -tiny, tiny), b)''',
    "_interp": '''def _interp(a, b, c):
    """a * (1 - c) + b * c, c in the dtype; each product and the sum saturated."""
    c = torch.as_tensor(c, dtype=torch.result_type(a, b))
    return _sat(_sat(a * (1 - c)) + _sat(b * c))''',
    "_interp_unit": '''def _interp_unit(a, b, c):
    """interp for a constant 0 <= c <= 1: neither product can overflow, the sum can."""
    c = torch.as_tensor(c, dtype=torch.result_type(a, b))
    return _sat(a * (1 - c) + b * c)''',
    "_pow64": '''def _pow64(a, b):
    """a ** b for 0-d a and b in their dtype, computed in float64 and rounded (as XLA does)."""
    dtype = torch.result_type(a, b)
    a, b = (torch.as_tensor(x, dtype=dtype).double() for x in (a, b))
    return (a**b).to(dtype)''',
    "_mod": '''def _mod(a, b):
    """a mod b with the sign of b (NumPy's mod)."""
    r = torch.fmod(a, b)
    return torch.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)''',
    "_clip": '''def _clip(x, c):
    """x clipped to [-|c|, |c|]."""
    m = torch.abs(c)
    return torch.minimum(torch.maximum(x, -m), m)''',
    "_gt": _compare("_gt", ">"), "_ge": _compare("_ge", ">="), "_lt": _compare("_lt", "<"),
    "_le": _compare("_le", "<="), "_eq": _compare("_eq", "=="),
    "_rsqrt": '''def _rsqrt(x):
    """1 / sqrt(|x|), |x| floored at 1e-30."""
    return 1 / torch.sqrt(torch.clamp_min(torch.abs(x), 1e-30))''',
    "_exp": _clipped("exp", "exp"), "_expm1": _clipped("expm1", "expm1"),
    "_sinh": _clipped("sinh", "sinh"), "_cosh": _clipped("cosh", "cosh"),
    "_log": '''def _log(x):
    """log(|x|), |x| floored at 1e-30."""
    return torch.log(torch.clamp_min(torch.abs(x), 1e-30))''',
    "_arctanh": '''def _arctanh(x):
    """arctanh of x clipped to [-1 + eps, 1 - eps] (eps of the dtype)."""
    eps = torch.finfo(x.dtype).eps
    return torch.atanh(torch.clamp(x, -1 + eps, 1 - eps))''',
    "_sigmoid": '''def _sigmoid(x):
    """1 / (1 + exp(-x)), x clipped to [-80, 80]."""
    return 1 / (1 + torch.exp(-torch.clamp(x, -80.0, 80.0)))''',
    "_softplus": '''def _softplus(x):
    """log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|))."""
    return torch.clamp_min(x, 0.0) + torch.log1p(torch.exp(-torch.abs(x)))''',
    "_mean": '''def _mean(x):
    """Mean of the whole tensor."""
    return torch.sum(x) / x.numel()''',
    "_norm": '''def _norm(x):
    """L2 norm of the whole tensor (|x| for one element, as XLA simplifies it)."""
    if x.numel() == 1:
        return torch.abs(x).reshape(())
    return torch.sqrt(torch.sum(torch.square(x)))''',
    "_rms": '''def _rms(x):
    """Root mean square of the whole tensor (|x| for one element, as XLA simplifies it)."""
    if x.numel() == 1:
        return torch.abs(x).reshape(())
    return torch.sqrt(torch.sum(torch.square(x)) / x.numel())''',
    "_center": '''def _center(x):
    """x minus its mean over all dims but the first (rank >= 2 only), saturated."""
    if x.dim() < 2:
        return x
    return _sat(x - x.mean(dim=tuple(range(1, x.dim())), keepdim=True))''',
    "_chunks": '''def _chunks(tensors):
    """The tensors (a parameter, its gradient, its state) as flat views in pieces of _CHUNK
    elements, so that one piece's temporaries stay in the CPU's cache; whole, if one is not
    contiguous or not on the CPU (on an accelerator, pieces would only multiply launches)."""
    if not all(x.is_contiguous() and x.device.type == "cpu" for x in tensors):
        yield tensors
        return
    flat = [x.view(-1) for x in tensors]
    for start in range(0, flat[0].numel(), _CHUNK):
        yield [x[start : start + _CHUNK] for x in flat]''',
    "_store": '''def _store(values, slots, inputs, update):
    """Write new slot values into the slots: a value computed in place is there already, one
    that is an old value (of a slot or an input) is copied out before any slot is written.
    Returns the update, copied out first if it was computed in the buffer of a slot that is
    about to be overwritten."""
    if any(update is s and v is not s for v, s in zip(values, slots)):
        update = update.clone()
    staged = [
        v.clone() if v is not s and any(v is x for x in (*slots, *inputs)) else v
        for v, s in zip(values, slots)
    ]
    for s, v in zip(slots, staged):
        if v is not s:
            s.copy_(v)
    return update''',
    "_own": '''def _own(x, p, taken):
    """x as new state of p: a tensor of p's shape, not p, its grad or one of taken (_step
    overwrites old slot values, so no two slots may share a tensor)."""
    if x.shape == p.shape and not any(x is y for y in (p, p.grad, *taken)):
        return x
    return torch.empty_like(p).copy_(x)''',
}

# A temporary read for the last time is overwritten with the result: fresh buffers cost more
# than the arithmetic (page faults), and the kernels round exactly as the out-of-place ones.
INPLACE = {
    "add": "{0}.add_({1})", "sub": "{0}.sub_({1})", "mul": "{0}.mul_({1})",
    "div": "{0}.div_({1})", "neg": "{0}.neg_()", "abs": "{0}.abs_()",
    "sqrt": "{0}.abs_().sqrt_()", "sqrt_nonnegative": "{0}.sqrt_()",
    "square": "{0}.square_()", "sign": "{0}.sign_()",
}

DIALECT = Dialect(
    templates=TEMPLATES, helpers=HELPERS, typed="{like}.new_tensor({value})",
    globals_=frozenset({"torch"}), inplace=INPLACE, reuse_slots=True,
    tensor_positions={"mod": frozenset({0}), "where": frozenset({0}),
                      "max": frozenset({0, 1}), "min": frozenset({0, 1})})


CHUNK = 1 << 18
"""Elements per piece of a parameter in step() (1 MB of float32 per tensor: a piece's
temporaries stay in the L2/L3 cache; scripts/bench_export.py measured 1.6x faster than whole
tensors at 10.5M parameters, and pieces of 2**17 to 2**19 within 10% of each other)."""

NOTES = """

step() overwrites temporaries and the old values of state slots in place once they are no
longer needed (fresh buffers cost more than the arithmetic).  Programs without per-tensor
reductions run on contiguous CPU parameters in pieces of _CHUNK elements, so that the
temporaries of each statement stay in cache.  XLA on CPU, where programs are
searched, flushes subnormal numbers (below 1.2e-38 in float32) to zero; PyTorch does so only
after torch.set_flush_denormal(True), and results can differ where values fall that low."""


def class_name(name: str) -> str:
    """CamelCase of a program name (``my_opt`` -> ``MyOpt``)."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return camel if camel.isidentifier() else "Opt" + camel


def render(program, provenance, fast: bool = False) -> str:
    """Source of the torch module for ``program``."""
    dialect = codegen.fast_dialect(DIALECT) if fast else DIALECT
    plan = codegen.plan(program, dialect)
    p = plan.program
    cls = codegen.unique(class_name(p.name), dialect.reserved() | {"__all__", "_SLOTS"})
    reads_total = plan.reads("T")
    keys = [codegen.unique(s, {"step"}) for s in p.slots]  # state keys: "step" is taken
    usage_args = f"lr={layout.usage_rate(provenance)}" + (", total_steps=10_000" if reads_total else "")
    usage = f"""
import torch
from {p.name} import {cls}  # this file, saved as {p.name}.py

optimizer = {cls}(model.parameters(), {usage_args})
for x, y in data:
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()
"""
    notes = codegen.semantics("torch", fast) + NOTES
    title = f"{cls}: an optimizer found as an update program, exported for PyTorch."
    out = layout.docstring(title, p, provenance, usage, notes)
    out += ["", "import torch", ""]
    out += fit_sequence("__all__ = ", [f'"{cls}"'], "", "")
    out += fit_sequence("_SLOTS = ", [f'"{k}"' for k in keys], "", "", bracket="()")
    if _chunked(plan):
        out += [f"_CHUNK = {CHUNK:_}  # elements per piece of a parameter in step()"]
    hoist = codegen.hoist(plan)
    step = codegen.step_function(plan, dialect, _step_doc(p), hoist)
    if hoist:
        step = codegen.scalars_function(plan, dialect, hoist) + ["", ""] + step
    class_body = _class_body(plan, cls, reads_total, hoist)
    for src in codegen.helper_sources("\n".join(step + class_body), dialect.helpers):
        out += ["", "", src]
    out += ["", ""] + step + ["", ""] + class_body
    return "\n".join(out) + "\n"


def _class_body(plan, cls: str, reads_total: bool, hoist) -> list[str]:
    p = plan.program
    i1, i2, i3, i4, i5 = (INDENT * k for k in range(1, 6))
    args_doc = [
        f"{i1}Args:",
        f"{i2}params: an iterable of parameters, or of dicts defining parameter groups.",
        f"{i2}lr: the learning rate (a float or a tensor), >= 0.",
    ]
    init_args = ["self", "params", "lr"]
    defaults = '{"lr": lr}'
    if reads_total:
        args_doc.append(f"{i2}total_steps: the run's total steps, the program's T (an int >= 1).")
        init_args.append("total_steps")
        defaults = '{"lr": lr, "total_steps": total_steps}'
    lines = [f"class {cls}(torch.optim.Optimizer):",
             (f'{i1}"""The {p.name} update program as a PyTorch optimizer (see the module '
              'docstring).'), "", *args_doc, f'{i1}"""', ""]
    lines += fit_call("def __init__(", init_args, "):", i1)
    lines += [f"{i2}if not 0.0 <= lr:",
              f'{i3}raise ValueError(f"Invalid learning rate: {{lr}}")']
    if reads_total:
        lines += [f"{i2}if total_steps < 1 or int(total_steps) != total_steps:",
                  f'{i3}raise ValueError(f"Invalid total_steps: {{total_steps}}")']
    lines += [f"{i2}super().__init__(params, {defaults})", ""]
    like = "p" if plan.like == "w" else "p.grad"
    inputs = {"w": "p", "g": "p.grad", "lr": 'group["lr"]', "t": 'state["step"]',
              "T": 'group["total_steps"]'}
    tensors = [inputs[n] for n in ("w", "g") if n in plan.step_params]
    scalars = [inputs[n] for n in ("lr", "t", "T") if n in plan.step_params]
    lines += [
        f"{i1}@torch.no_grad()",
        f"{i1}def step(self, closure=None):",
        (f'{i2}"""One update of every parameter that has a gradient; closure, if given, '
         'recomputes'),
        f'{i2}the loss (with gradients enabled) and its value is returned."""',
        f"{i2}loss = None",
        f"{i2}if closure is not None:",
        f"{i3}with torch.enable_grad():",
        f"{i4}loss = closure()",
        f"{i2}for group in self.param_groups:",
        f'{i3}for p in group["params"]:',
        f"{i4}if p.grad is None:",
        f"{i5}continue",
        f"{i4}if p.grad.is_sparse:",
        *fit_call("raise RuntimeError(", [f'"{cls} does not support sparse gradients"'], ")",
                  i5),
        f"{i4}state = self.state[p]",
        f"{i4}if not state:",
        f'{i5}state["step"] = 0',
        f"{i5}for key in _SLOTS:",
        f"{i5}{INDENT}state[key] = torch.zeros_like(p)",
        f'{i4}state["step"] += 1',
    ]
    if scalars:
        lines += fit_sequence(f"{i4}scalars = ", scalars, "", i4, bracket="()")
        lines += [f"{i4}like = {like}",
                  f'{i4}kw = {{"dtype": like.dtype, "device": like.device}}',
                  f"{i4}scalars = [torch.as_tensor(float(x), **kw) for x in scalars]"]
    hoisted = ["*hoisted"] if hoist else []
    if hoist:
        lines += [f"{i4}hoisted = _scalars(*scalars)"]
    if _chunked(plan):
        pieces = {"p": "w", "p.grad": "g"}
        args = [pieces[t] for t in tensors] + (["*scalars"] if scalars else []) + ["*slots"]
        args += hoisted
        pieces_of = "(p, p.grad, *(state[k] for k in _SLOTS))"
        lines += fit_call("for w, g, *slots in _chunks(", [pieces_of], "):", i4)
        lines += fit_call("out = _step(", args, ")", i5)
        lines += [f"{i5}w.sub_(_store(out[1:], slots, (w, g), out[0]))",
                  f"{i2}return loss"]
        return lines
    args = tensors + (["*scalars"] if scalars else []) + ["*(state[k] for k in _SLOTS)"]
    args += hoisted
    lines += fit_call("out = _step(", args, ")", i4)
    lines += [f"{i4}for key, value in zip(_SLOTS, out[1:]):",
              f"{i5}state[key] = _own(value, p, [state[k] for k in _SLOTS if k != key])",
              f"{i4}p.sub_(out[0])",
              f"{i2}return loss"]
    return lines


def _chunked(plan) -> bool:
    """Whether step() may run the program on pieces of a parameter: every live statement is
    elementwise (a reduction or center needs the whole tensor)."""
    body = plan.program.body
    return all(OPS[body[sp.index].op].kind == ELEMENTWISE
               for sp in plan.statements if sp.live)


def _step_doc(p) -> str:
    slots = ", ".join(p.slots)
    return f"The program on one tensor: the update{', then the new ' + slots if slots else ''}."
