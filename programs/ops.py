"""The ops table: every primitive an update program may apply, with safe JAX semantics.

Contract (other modules and the exporters rely on it):

* ``OPS`` maps an op name to an :class:`Op`; ``OP_NAMES`` is its key order, which is also the
  integer code of each op (``OP_CODES[name]``) used by the compile-once engine.
* Every op is total on finite inputs: it returns finite values for every finite input of any
  magnitude (domains are protected and results saturate at the dtype's largest finite value).
  The protections, exactly:

  - ``div(a, b)`` and ``reciprocal``: a denominator with ``|b| < TINY`` is replaced by
    ``TINY`` with the sign of ``b`` (``+TINY`` for 0);
  - ``sqrt``, ``log``, ``log1p`` take ``abs`` of their input; ``log`` and ``rsqrt`` floor
    ``|x|`` at ``TINY``;
  - ``exp``, ``expm1``, ``sinh``, ``cosh`` clip their input to ``[-EXP_CLIP, EXP_CLIP]``;
  - ``arcsin``, ``arccos`` clip to ``[-1, 1]``; ``arctanh`` to ``[-1 + eps, 1 - eps]``
    (eps of the dtype); ``arccosh`` floors its input at 1;
  - ``power(a, b) = |a| ** b``; ``mod(a, b)`` has the sign of ``b`` (NumPy's ``mod``) with the
    denominator protected as in ``div``;
  - ``clip(x, c)`` clips to ``[-|c|, |c|]``; ``interp(a, b, c) = a * (1 - c) + b * c``;
    ``where(c, a, b)`` is ``a`` where ``c > 0``, else ``b``; comparisons give 1.0 or 0.0;
  - every result is clipped to ``[-MAX, MAX]`` of its dtype (saturation, never Inf).

* Kinds: ``elementwise`` ops broadcast their operands; ``reduction`` ops map one tensor to a
  scalar that broadcasts (``value = finish(combine(pre(x)), n)`` with ``combine`` a sum or a
  max over the tensor's ``n`` elements); ``center`` (gradient centralisation) subtracts from a
  tensor of rank >= 2 its mean over all axes but the first, and leaves rank <= 1 unchanged.
  Reductions and ``center`` act on one parameter tensor at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp
import jax.scipy.special as jsp

TINY = 1e-30
EXP_CLIP = 80.0

ELEMENTWISE = "elementwise"
REDUCTION = "reduction"
CENTER = "center"


def saturate(x):
    """Clip ``x`` to the finite range of its dtype (no Inf; NaN stays NaN)."""
    big = jnp.finfo(x.dtype).max
    return jnp.clip(x, -big, big)


def saturate_stored(x):
    """:func:`saturate`, the same values, as two selects: for a value XLA should store once.

    XLA's CPU fusion treats a clamp (one operand) as free to copy into every reader, and then
    copies the computation it clips as well; a select on a comparison it keeps in one place.
    Used for a slot's new value that later statements read (``programs.bounds``).
    """
    big = jnp.finfo(x.dtype).max
    return jnp.where(x > big, big, jnp.where(x < -big, -big, x))


def safe_denominator(b):
    """``b`` with magnitudes below TINY replaced by ``+-TINY`` (sign of b, + for 0)."""
    return jnp.where(jnp.abs(b) < TINY, jnp.where(b < 0, -TINY, TINY), b)


def _interp(a, b, c):
    return saturate(a * (1 - c)) + saturate(b * c)


def _arctanh(x):
    eps = jnp.finfo(x.dtype).eps
    return jnp.arctanh(jnp.clip(x, -1 + eps, 1 - eps))


def _center(x):
    if x.ndim < 2:
        return x
    return x - jnp.mean(x, axis=tuple(range(1, x.ndim)), keepdims=True)


@dataclasses.dataclass(frozen=True)
class Op:
    """One primitive.

    ``fn`` is the JAX definition over arrays (already saturated); ``raw`` is the same without
    the final saturation (domain protections kept), for callers that know the saturation is
    the identity (:mod:`programs.bounds`).  For reductions ``pre``,
    ``combine`` and ``finish`` give the same value in a form a segment-wise engine can use:
    ``fn(x) == finish(combine(pre(x)), x.size)``.  ``symbol`` is the Python operator used when
    printing (``None``: printed as a call).

    Facts the analyses read (each checked against ``fn`` by ``tests/test_ops.py``):

    * ``closed``: finite operands give a result of magnitude at most MAX in every float dtype,
      so the final saturation is the identity (bounded functions, selections among the
      operands, magnitude-preserving maps, ``mod``);
    * ``self_saturating``: ``fn`` saturates inside (``interp``: each product and the sum;
      ``center``), so callers use ``fn`` and add no saturation of their own;
    * ``unit``: every result lies in ``[-1, 1]`` (IEEE rounding never leaves it);
    * ``nonnegative``: every result is ``>= 0``;
    * ``denominator``: the position of the protected denominator (``div``, ``reciprocal``,
      ``mod``), None for the others; ``unguarded`` is then the op without that protection,
      for a denominator proved ``>= TINY``;
    * ``blind``: operand positions where ``+-Inf`` and ``+-MAX`` give the same result (the op
      clips that operand first, takes its sign, or saturates to ``+-1`` itself);
    * ``commutative``: ``fn(a, b) == fn(b, a)`` bit for bit.
    """

    name: str
    arity: int
    fn: Callable
    kind: str = ELEMENTWISE
    symbol: str | None = None
    doc: str = ""
    pre: Callable | None = None
    combine: str | None = None
    finish: Callable | None = None
    raw: Callable | None = None
    closed: bool = False
    self_saturating: bool = False
    unit: bool = False
    nonnegative: bool = False
    denominator: int | None = None
    unguarded: Callable | None = None
    blind: frozenset[int] = frozenset()
    commutative: bool = False


def _elementwise(name, arity, definition, doc, symbol=None):
    def raw(*args):
        args = jnp.broadcast_arrays(*[jnp.asarray(a) for a in args]) if arity > 1 else args
        return definition(*args)

    def fn(*args):
        return saturate(raw(*args))

    fn.__name__ = raw.__name__ = name
    return Op(name, arity, fn, ELEMENTWISE, symbol, doc, raw=raw)


def _reduction(name, pre, combine, finish, doc):
    def raw(x):
        x = jnp.asarray(x)
        total = jnp.sum(pre(x)) if combine == "sum" else jnp.max(pre(x))
        return finish(total, x.size)

    def fn(x):
        return saturate(raw(x))

    fn.__name__ = raw.__name__ = name
    return Op(name, 1, fn, REDUCTION, None, doc, pre, combine, finish, raw)


def _table() -> dict[str, Op]:
    e = _elementwise
    ops = [
        # arithmetic (printed with Python operators)
        e("add", 2, lambda a, b: a + b, "a + b", "+"),
        e("sub", 2, lambda a, b: a - b, "a - b", "-"),
        e("mul", 2, lambda a, b: a * b, "a * b", "*"),
        e("div", 2, lambda a, b: a / safe_denominator(b), "a / b, protected", "/"),
        e("power", 2, lambda a, b: jnp.abs(a) ** b, "|a| ** b", "**"),
        e("neg", 1, lambda a: -a, "-a", "-"),
        # binary functions
        e("max", 2, jnp.maximum, "elementwise maximum"),
        e("min", 2, jnp.minimum, "elementwise minimum"),
        e("mod", 2, lambda a, b: jnp.mod(a, safe_denominator(b)), "a mod b, sign of b"),
        e("clip", 2, lambda x, c: jnp.clip(x, -jnp.abs(c), jnp.abs(c)), "clip x to [-|c|, |c|]"),
        e("gt", 2, lambda a, b: (a > b).astype(jnp.result_type(a)), "1.0 where a > b"),
        e("ge", 2, lambda a, b: (a >= b).astype(jnp.result_type(a)), "1.0 where a >= b"),
        e("lt", 2, lambda a, b: (a < b).astype(jnp.result_type(a)), "1.0 where a < b"),
        e("le", 2, lambda a, b: (a <= b).astype(jnp.result_type(a)), "1.0 where a <= b"),
        e("eq", 2, lambda a, b: (a == b).astype(jnp.result_type(a)), "1.0 where a == b"),
        # ternary
        e("interp", 3, _interp, "a * (1 - c) + b * c"),
        e("where", 3, lambda c, a, b: jnp.where(c > 0, a, b), "a where c > 0 else b"),
        # unary
        e("abs", 1, jnp.abs, "|a|"),
        e("sign", 1, jnp.sign, "sign(a), 0 at 0"),
        e("square", 1, jnp.square, "a ** 2"),
        e("cube", 1, lambda a: a * a * a, "a ** 3"),
        e("sqrt", 1, lambda a: jnp.sqrt(jnp.abs(a)), "sqrt(|a|)"),
        e("rsqrt", 1, lambda a: 1 / jnp.sqrt(jnp.maximum(jnp.abs(a), TINY)), "1 / sqrt(|a|)"),
        e("reciprocal", 1, lambda a: 1 / safe_denominator(a), "1 / a, protected"),
        e("exp", 1, lambda a: jnp.exp(jnp.clip(a, -EXP_CLIP, EXP_CLIP)), "exp, clipped input"),
        e("expm1", 1, lambda a: jnp.expm1(jnp.clip(a, -EXP_CLIP, EXP_CLIP)), "exp(a) - 1"),
        e("log", 1, lambda a: jnp.log(jnp.maximum(jnp.abs(a), TINY)), "log(|a|)"),
        e("log1p", 1, lambda a: jnp.log1p(jnp.abs(a)), "log(1 + |a|)"),
        e("sin", 1, jnp.sin, "sine"),
        e("cos", 1, jnp.cos, "cosine"),
        e("tan", 1, jnp.tan, "tangent"),
        e("arcsin", 1, lambda a: jnp.arcsin(jnp.clip(a, -1, 1)), "arcsin of clipped input"),
        e("arccos", 1, lambda a: jnp.arccos(jnp.clip(a, -1, 1)), "arccos of clipped input"),
        e("arctan", 1, jnp.arctan, "arctangent"),
        e("sinh", 1, lambda a: jnp.sinh(jnp.clip(a, -EXP_CLIP, EXP_CLIP)), "sinh"),
        e("cosh", 1, lambda a: jnp.cosh(jnp.clip(a, -EXP_CLIP, EXP_CLIP)), "cosh"),
        e("tanh", 1, jnp.tanh, "tanh"),
        e("arcsinh", 1, jnp.arcsinh, "arcsinh"),
        e("arccosh", 1, lambda a: jnp.arccosh(jnp.maximum(a, 1)), "arccosh, input floored at 1"),
        e("arctanh", 1, _arctanh, "arctanh of clipped input"),
        e("sigmoid", 1, lambda a: 1 / (1 + jnp.exp(-jnp.clip(a, -EXP_CLIP, EXP_CLIP))), "sigmoid"),
        e("softplus", 1, lambda a: jnp.logaddexp(a, 0), "log(1 + exp(a))"),
        e("relu", 1, lambda a: jnp.maximum(a, 0), "max(a, 0)"),
        e("erf", 1, jsp.erf, "error function"),
        # per-tensor reductions: a scalar that broadcasts
        _reduction("mean", lambda x: x, "sum", lambda s, n: s / n, "mean of the tensor"),
        _reduction("norm", jnp.square, "sum", lambda s, n: jnp.sqrt(s), "L2 norm of the tensor"),
        _reduction("rms", jnp.square, "sum", lambda s, n: jnp.sqrt(s / n), "root mean square"),
        _reduction("max_abs", jnp.abs, "max", lambda s, n: s, "largest |x| of the tensor"),
        # gradient centralisation (Yong et al. 2020), as in the Ranger optimizer
        Op("center", 1, lambda x: saturate(_center(jnp.asarray(x))), CENTER, None,
           "x minus its mean over all axes but the first (rank >= 2 only)",
           raw=lambda x: _center(jnp.asarray(x))),
    ]
    return {op.name: _with_facts(op) for op in ops}


# The facts of each op (see :class:`Op`), kept beside the table they describe.
_CLOSED = frozenset({
    "abs", "neg", "sign", "max", "min", "clip", "where", "relu", "mod",
    "gt", "ge", "lt", "le", "eq",
    "sin", "cos", "tanh", "arctan", "sigmoid", "erf", "arcsin", "arccos", "arctanh",
    "sqrt", "log1p", "arcsinh", "arccosh", "softplus", "max_abs",
})
_SELF_SATURATING = frozenset({"interp", "center"})
_UNIT = frozenset({"sign", "gt", "ge", "lt", "le", "eq", "sin", "cos", "tanh", "sigmoid", "erf"})
_NONNEGATIVE = frozenset({
    "abs", "square", "sqrt", "relu", "norm", "rms", "max_abs", "log1p", "exp", "softplus",
    "sigmoid", "arccosh", "cosh", "rsqrt", "gt", "ge", "lt", "le", "eq", "power",
})
_DENOMINATOR = {"div": 1, "reciprocal": 0, "mod": 1}
_UNGUARDED = {"div": lambda a, b: a / b, "reciprocal": lambda a: 1 / a, "mod": jnp.mod}
_BLIND = {"sign": {0}, "tanh": {0}, "exp": {0}, "expm1": {0}, "sinh": {0}, "cosh": {0},
          "sigmoid": {0}, "arcsin": {0}, "arccos": {0}, "arctanh": {0}, "clip": {0},
          "where": {0}}
_COMMUTATIVE = frozenset({"add", "mul", "max", "min", "eq"})


def _with_facts(op: Op) -> Op:
    n = op.name
    return dataclasses.replace(
        op, closed=n in _CLOSED, self_saturating=n in _SELF_SATURATING, unit=n in _UNIT,
        nonnegative=n in _NONNEGATIVE, denominator=_DENOMINATOR.get(n),
        unguarded=_UNGUARDED.get(n), blind=frozenset(_BLIND.get(n, ())),
        commutative=n in _COMMUTATIVE)


OPS: dict[str, Op] = _table()
OP_NAMES: tuple[str, ...] = tuple(OPS)
OP_CODES: dict[str, int] = {name: i for i, name in enumerate(OP_NAMES)}
INFIX: dict[str, str] = {op.symbol: op.name for op in OPS.values() if op.arity == 2 and op.symbol}
