"""Every op of the table: total on awkward inputs, right shape, and equal to a NumPy float64
definition on ordinary inputs."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from programs.ops import (
    CENTER,
    ELEMENTWISE,
    OP_CODES,
    OP_NAMES,
    OPS,
    REDUCTION,
    saturate,
    saturate_stored,
)

np_erf = np.vectorize(math.erf)

AWKWARD = np.array([0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 1e-30, -1e-30, 3.0e38, -7.5], np.float32)


def _np_center(x):
    if x.ndim < 2:
        return x
    return x - x.mean(axis=tuple(range(1, x.ndim)), keepdims=True)


# The reference definitions, in float64 NumPy, written from the ops' documented semantics.
NUMPY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "power": lambda a, b: np.abs(a) ** b,
    "neg": lambda a: -a,
    "max": np.maximum,
    "min": np.minimum,
    "mod": np.mod,
    "clip": lambda x, c: np.clip(x, -np.abs(c), np.abs(c)),
    "gt": lambda a, b: (a > b).astype(float),
    "ge": lambda a, b: (a >= b).astype(float),
    "lt": lambda a, b: (a < b).astype(float),
    "le": lambda a, b: (a <= b).astype(float),
    "eq": lambda a, b: (a == b).astype(float),
    "interp": lambda a, b, c: a * (1 - c) + b * c,
    "where": lambda c, a, b: np.where(c > 0, a, b),
    "abs": np.abs,
    "sign": np.sign,
    "square": np.square,
    "cube": lambda a: a**3,
    "sqrt": lambda a: np.sqrt(np.abs(a)),
    "rsqrt": lambda a: 1 / np.sqrt(np.abs(a)),
    "reciprocal": lambda a: 1 / a,
    "exp": np.exp,
    "expm1": np.expm1,
    "log": lambda a: np.log(np.abs(a)),
    "log1p": lambda a: np.log1p(np.abs(a)),
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": lambda a: np.arcsin(np.clip(a, -1, 1)),
    "arccos": lambda a: np.arccos(np.clip(a, -1, 1)),
    "arctan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "arcsinh": np.arcsinh,
    "arccosh": lambda a: np.arccosh(np.maximum(a, 1)),
    "arctanh": lambda a: np.arctanh(np.clip(a, -0.999, 0.999)),
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
    "softplus": lambda a: np.log1p(np.exp(a)),
    "relu": lambda a: np.maximum(a, 0),
    "erf": np_erf,
    "mean": np.mean,
    "norm": lambda x: np.sqrt(np.sum(x * x)),
    "rms": lambda x: np.sqrt(np.mean(x * x)),
    "max_abs": lambda x: np.max(np.abs(x)),
    "center": _np_center,
}


def test_table_is_large_and_codes_are_dense():
    assert len(OPS) >= 45
    assert [OP_CODES[n] for n in OP_NAMES] == list(range(len(OPS)))
    assert set(NUMPY) == set(OPS), "every op needs a NumPy reference here"


def _grid(values, arity):
    """All combinations of ``values`` across ``arity`` operands, as broadcast float32 arrays."""
    mesh = np.meshgrid(*([values] * arity), indexing="ij")
    return [m.reshape(-1).astype(np.float32) for m in mesh]


@pytest.mark.parametrize("name", OP_NAMES)
def test_total_on_awkward_values(name):
    op = OPS[name]
    if op.kind == ELEMENTWISE:
        args = _grid(AWKWARD, op.arity)
        out = np.asarray(op.fn(*[jnp.asarray(a) for a in args]))
        assert out.shape == args[0].shape
    elif op.kind == REDUCTION:
        out = np.asarray(op.fn(jnp.asarray(AWKWARD)))
        assert out.shape == ()
    else:
        x = jnp.asarray(np.resize(AWKWARD, (4, 5)))
        out = np.asarray(op.fn(x))
        assert out.shape == (4, 5)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out)), f"{name} produced non-finite values: {out}"



def _ordinary_inputs(name, arity, rng):
    """Inputs inside every op's ordinary domain, where no protection is active."""
    shape = (3, 4)
    if name in ("arcsin", "arccos", "arctanh"):
        return [rng.uniform(-0.9, 0.9, shape)]
    if name == "arccosh":
        return [rng.uniform(1.1, 5.0, shape)]
    if name in ("log", "sqrt", "rsqrt", "reciprocal"):
        return [rng.uniform(0.2, 4.0, shape)]
    if name in ("div", "mod"):
        return [rng.normal(size=shape), rng.uniform(0.3, 3.0, shape) * rng.choice([-1, 1], shape)]
    if name == "power":
        return [rng.normal(size=shape), rng.uniform(-2, 2, shape)]
    if name in ("eq",):
        a = rng.integers(0, 3, shape).astype(float)
        return [a, rng.integers(0, 3, shape).astype(float)]
    return [rng.normal(size=shape) for _ in range(arity)]


@pytest.mark.parametrize("name", OP_NAMES)
def test_matches_numpy_on_ordinary_inputs(name):
    rng = np.random.default_rng(OP_CODES[name])
    op = OPS[name]
    args = _ordinary_inputs(name, op.arity, rng)
    if name == "mod":
        args[0] = args[0] * 3
    got = np.asarray(op.fn(*[jnp.asarray(a, jnp.float32) for a in args]), np.float64)
    want = NUMPY[name](*[np.asarray(a, np.float32).astype(np.float64) for a in args])
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=name)


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].kind == REDUCTION])
def test_reduction_parts_agree_with_fn(name):
    """The segment-friendly form (pre, combine, finish) gives the same value as fn."""
    op = OPS[name]
    x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 7)), jnp.float32)
    pre = op.pre(x)
    total = jnp.sum(pre) if op.combine == "sum" else jnp.max(pre)
    np.testing.assert_allclose(float(op.finish(total, x.size)), float(op.fn(x)), rtol=1e-6)


def test_protections_are_the_documented_ones():
    f = lambda name, *a: np.asarray(OPS[name].fn(*[jnp.float32(v) for v in a]))
    assert f("div", 1.0, 0.0) == np.float32(1e30)
    assert f("div", 1.0, -0.0) == np.float32(1e30)  # -0.0 is not < 0: the + side
    assert f("div", 1.0, -1e-31) == np.float32(-1e30)
    assert f("exp", 1000.0) == np.float32(np.exp(np.float32(80.0)))
    assert f("mul", 3e38, 3e38) == np.finfo(np.float32).max
    assert f("mul", -3e38, 3e38) == -np.finfo(np.float32).max
    assert f("where", -1.0, 1.0, 2.0) == 2.0 and f("where", 0.5, 1.0, 2.0) == 1.0
    assert f("power", -2.0, 2.0) == 4.0 and f("power", -8.0, 1.0 / 3.0) == pytest.approx(2.0)
    assert f("clip", 5.0, -2.0) == 2.0
    assert np.all(np.asarray(OPS["center"].fn(jnp.arange(4.0))) == np.arange(4.0))
    assert CENTER == OPS["center"].kind


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16])
def test_saturate_stored_gives_saturate_values(dtype):
    """The two spellings of saturation agree with a float64 clip to the dtype's finite range,
    on every special value (and keep NaN, -0.0 and the dtype)."""
    big = float(jnp.finfo(dtype).max)
    values = np.array([0.0, -0.0, 1.5, -2.5, big, -big, np.inf, -np.inf, np.nan, 1e-30])
    x = jnp.asarray(values, dtype)
    expected = np.clip(np.asarray(x, np.float64), -big, big)
    for fn in (saturate, saturate_stored):
        out = fn(x)
        assert out.dtype == dtype
        got = np.asarray(out, np.float64)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
def test_blind_positions_cannot_tell_overflow_from_saturation(dtype):
    """Op.blind: at these operand positions the op gives the same result for +-Inf as for
    +-MAX of the dtype (so a saturation read only there may be left out), whatever the other
    operands are."""
    big = float(jnp.finfo(dtype).max)
    others = np.array([-2.0, -0.5, 0.0, 0.5, 3.0, big, -big])
    for name, op in OPS.items():
        for position in op.blind:
            for sign in (1.0, -1.0):
                rest = _grid(others, op.arity - 1)
                args_inf = [jnp.asarray(a, dtype) for a in rest]
                args_big = list(args_inf)
                n = len(rest[0]) if rest else 1
                args_inf.insert(position, jnp.full(n, sign * np.inf, dtype))
                args_big.insert(position, jnp.full(n, sign * big, dtype))
                for fn in (op.raw, op.fn):  # raw: the reader's own saturation left out
                    np.testing.assert_array_equal(np.asarray(fn(*args_inf), np.float64),
                                                  np.asarray(fn(*args_big), np.float64),
                                                  err_msg=f"{name} at {position}")


def _extreme_grid(arity, dtype):
    """Every combination of finite values from tiny to the dtype's MAX, both signs."""
    big = float(jnp.finfo(dtype).max)
    values = np.array([0.0, -0.0, 1e-30, -1e-30, 0.3, -0.7, 1.0, -1.0, 2.5, -3.0, 1e4,
                       -1e4, big / 3, -big / 3, big, -big])
    return [jnp.asarray(a, dtype) for a in _grid(values, arity)]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
@pytest.mark.parametrize("name", OP_NAMES)
def test_op_facts_hold_on_extreme_finite_inputs(name, dtype):
    """The facts of ``Op`` that the analyses rely on, checked on the op's own definition:
    ``closed`` and ``self_saturating`` ops never need a saturation added (``raw`` / ``fn``
    finite), ``unit`` results lie in [-1, 1], ``nonnegative`` ones are >= 0, ``commutative``
    ops give the same bits with their operands swapped.  (A missing fact costs speed only;
    a wrong one would change values, so the facts are checked, not their absence.)"""
    op = OPS[name]
    args = _extreme_grid(op.arity, dtype)
    raw = np.asarray(op.raw(*args), np.float64)
    out = np.asarray(op.fn(*args), np.float64)
    finite = np.isfinite(out)  # float16: TINY underflows to 0, so 0 / 0 is NaN there
    assert finite.all() or dtype != jnp.float32
    if op.closed:
        assert np.isfinite(raw[finite]).all(), f"{name} is marked closed but overflows"
    if op.unit:
        assert (np.abs(out[finite]) <= 1.0).all(), name
    if op.nonnegative:
        assert (out[finite] >= 0).all(), name
    if op.commutative:
        swapped = np.asarray(op.fn(args[1], args[0]), np.float64)
        np.testing.assert_array_equal(out, swapped, err_msg=name)  # NaN == NaN here


def test_op_facts_name_the_ops_they_describe():
    """Facts are declared beside the table by name: every name must be an op of the table,
    so that a renamed op cannot silently lose its facts."""
    from programs import ops

    declared = (set(ops._CLOSED) | set(ops._SELF_SATURATING) | set(ops._UNIT)
                | set(ops._NONNEGATIVE) | set(ops._DENOMINATOR) | set(ops._BLIND)
                | set(ops._COMMUTATIVE) | set(ops._UNGUARDED))
    assert declared <= set(OPS)
    assert {n for n, op in OPS.items() if op.denominator is not None} == {"div", "reciprocal",
                                                                           "mod"}
    assert all(op.self_saturating for op in (OPS["interp"], OPS["center"]))


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].unguarded is not None])
def test_unguarded_variants_equal_the_op_where_the_denominator_is_large(name):
    """``Op.unguarded``: the op without its denominator guard; where ``|denominator| >= TINY``
    the guard is the identity, so the values must equal ``raw``'s."""
    op = OPS[name]
    rng = np.random.default_rng(3)
    args = [jnp.asarray(rng.standard_normal(200) * 10.0 ** rng.integers(-20, 20, 200),
                        jnp.float32) for _ in range(op.arity)]
    den = args[op.denominator]
    args[op.denominator] = jnp.where(jnp.abs(den) < 1e-29, 1e-29, den)
    np.testing.assert_array_equal(np.asarray(op.unguarded(*args)), np.asarray(op.raw(*args)))
