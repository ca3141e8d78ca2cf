"""The reference interpreter (programs.as_optax) against float64 NumPy transcriptions."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import programs
from programs import ProgramError, ProgramState, parse
from programs.ops import OPS

# Uses every kind of input and op: w, t, T, a reduction, centralisation, a protected division.
PROGRAM = parse("""\
def p(w, g, lr, t, T, m, v):
    c = center(g)
    m = interp(c, m, 0.8)
    v = max(v, abs(g))
    s = m / (v + 1e-3) + 0.01 * w / rms(w)
    u = lr * s * (1.0 - t / (T + 1.0))
    return u, m, v
""")


def numpy_step(w, g, lr, t, T, m, v):
    """PROGRAM transcribed by hand, float64."""
    c = g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True) if g.ndim >= 2 else g
    m = c * 0.2 + m * 0.8
    v = np.maximum(v, np.abs(g))
    s = m / (v + 1e-3) + 0.01 * w / np.sqrt(np.mean(w * w))
    u = lr * s * (1.0 - t / (T + 1.0))
    return u, m, v


SHAPES = {"bias": (7,), "kernel": (4, 5), "conv": (3, 2, 2), "scalar": (1,)}


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}


def grads_at(step):
    rng = np.random.default_rng(1000 + step)
    return {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}


def test_as_optax_matches_float64_numpy_over_many_steps():
    steps, lr = 60, 0.05
    tx = programs.as_optax(PROGRAM, lr, total_steps=steps)
    params = jax.tree.map(jnp.asarray, make_params())
    state = tx.init(params)

    # donated, as a training loop does: each slot must own its buffers
    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    ref = {k: v.astype(np.float64) for k, v in make_params().items()}
    slots = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in ref.items()}
    for i in range(steps):
        grads = grads_at(i)
        params, state = step(params, state, grads)
        for k, w in list(ref.items()):
            g = grads[k].astype(np.float64)
            u, *slots[k] = numpy_step(w, g, lr, float(i + 1), float(steps), *slots[k])
            ref[k] = w - u
    assert int(state.count) == steps
    for k, want in ref.items():
        got = np.asarray(params[k], np.float64)
        err = np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-2))
        assert err < 1e-5, (k, err)


def test_state_is_a_namedtuple_of_count_and_slots_shaped_like_params():
    params = make_params()
    state = programs.as_optax(PROGRAM, 0.1, total_steps=10).init(params)
    assert isinstance(state, ProgramState)
    assert int(state.count) == 0 and len(state.slots) == 2
    for slot in state.slots:
        assert jax.tree.structure(slot) == jax.tree.structure(params)
        assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(slot))


def test_schedule_learning_rate_is_called_with_the_count():
    sgd = programs.BASELINES["sgd"]
    schedule = optax.linear_schedule(1.0, 0.0, transition_steps=4)
    tx = programs.as_optax(sgd, schedule)
    params = {"x": jnp.ones(3)}
    state = tx.init(params)
    seen = []
    for _ in range(5):
        updates, state = tx.update({"x": jnp.ones(3)}, state, params)
        seen.append(-float(updates["x"][0]))
    assert seen == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])


def test_missing_total_steps_or_params_are_clear_errors():
    with pytest.raises(ProgramError, match="reads T"):
        programs.as_optax(PROGRAM, 0.1)
    tx = programs.as_optax(PROGRAM, 0.1, total_steps=5)
    params = {"x": jnp.ones((2, 2))}
    with pytest.raises(ValueError, match="reads w"):
        tx.update(params, tx.init(params))


def test_scalar_outputs_broadcast_and_keep_dtype():
    p = parse("def p(g, lr, m):\n    s = mean(g)\n    u = s * lr\n    return u, s\n")
    tx = programs.as_optax(p, 0.5)
    params = {"a": jnp.ones((2, 3), jnp.float32), "b": jnp.ones(4, jnp.float64)
              if jax.config.jax_enable_x64 else jnp.ones(4, jnp.float32)}
    grads = {"a": jnp.arange(6.0).reshape(2, 3), "b": jnp.full(4, 2.0)}
    updates, state = tx.update(grads, tx.init(params), params)
    assert updates["a"].shape == (2, 3) and np.allclose(updates["a"], -1.25)
    assert np.allclose(state.slots[0]["b"], 2.0) and state.slots[0]["b"].shape == (4,)


def fully_saturated_step(program, values):
    """The ops table's semantics with nothing left out: every op's fn (saturated, guarded)."""
    like = jnp.asarray(values["w"] if "w" in values else values["g"])
    env = {n: jnp.asarray(values[n], like.dtype) for n in program.params}
    for s in program.body:
        args = [env[a] if isinstance(a, str) else jnp.asarray(a, like.dtype) for a in s.args]
        env[s.target] = OPS[s.op].fn(*args).astype(like.dtype)
    return [np.asarray(jnp.broadcast_to(env[o], like.shape)) for o in program.outputs]


BLIND_AND_STORED = parse("""\
def p(w, g, lr, t, m, v):
    a = g * 3.0 + m
    m = g * 2.0 + m
    v = max(v * 0.5, square(g))
    u = sign(a) * lr + tanh(m * 7.0) + exp(v) * 0.0 + m / (sqrt(v) + 1e-8)
    return u, m, v
""")


@pytest.mark.parametrize("name", sorted(programs.BASELINES) + ["blind_and_stored"])
def test_left_out_saturations_change_no_value_on_overflowing_inputs(name):
    """Every saturation and guard that programs.bounds leaves out (and saturate_stored) gives,
    eagerly, the same bits as evaluating every op saturated, on inputs whose sums, squares and
    quotients overflow float32."""
    program = BLIND_AND_STORED if name == "blind_and_stored" else programs.BASELINES[name]
    rng = np.random.default_rng(7)
    big = float(np.finfo(np.float32).max)
    magnitudes = np.array([big, big / 2, big / 3, 1e30, 1e20, 1.0, 1e-30, 0.0], np.float32)

    def tensor():
        return (rng.choice(magnitudes, (20, 30)) * rng.choice([-1, 1], (20, 30))).astype(np.float32)

    values = {"w": tensor(), "g": tensor(), "lr": np.float32(0.5), "t": np.float32(3.0),
              "T": np.float32(10.0)}
    values.update({slot: tensor() for slot in program.slots})
    values = {k: v for k, v in values.items() if k in program.params or k == "g"}
    with jax.disable_jit():
        got = [np.asarray(x) for x in programs.step_tensor(program, values)]
        want = fully_saturated_step(program, values)
    for out, a, b in zip(program.outputs, got, want):
        np.testing.assert_array_equal(a, b, err_msg=f"{name}: {out}")
