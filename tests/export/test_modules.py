"""The exported modules imported in this process: schedules, what a program needs, memory
traffic of the compiled steps, torch's optimizer behaviour and pieces, NumPy's update."""

from __future__ import annotations

import numpy as np
import pytest

import programs
from export.cases import (
    load_module,
)


# -- behaviour of the modules in this process --------------------------------------------------
def test_optax_module_takes_a_schedule(tmp_path):
    import jax
    import jax.numpy as jnp
    import optax

    module = load_module(tmp_path, programs.BASELINES["adam"], "optax", "adam_sched")
    schedule = optax.linear_schedule(0.1, 0.01, 5)
    params = {"w": jnp.arange(6.0).reshape(2, 3)}
    grads = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)}
    out = []
    for tx in (module.adam(schedule), programs.as_optax(programs.BASELINES["adam"], schedule)):
        p, state = params, tx.init(params)
        update = jax.jit(tx.update)  # as the interpreter is meant to run: XLA, fused
        for _ in range(4):
            u, state = update(grads, state, p)
            p = optax.apply_updates(p, u)
        out.append(np.asarray(p["w"]))
    np.testing.assert_array_equal(out[0], out[1])
    assert module.__all__ == ["adam"]


def test_optax_module_needs_what_the_program_reads(tmp_path):
    import jax.numpy as jnp

    adamw = load_module(tmp_path, programs.BASELINES["adamw"], "optax", "adamw_x")
    tx = adamw.adamw(0.1)
    params = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="pass params"):
        tx.update(params, tx.init(params))
    cosine = load_module(tmp_path, programs.BASELINES["adam_warmup_cosine"], "optax", "awc")
    with pytest.raises(TypeError):
        cosine.adam_warmup_cosine(0.1)  # total_steps is required
    with pytest.raises(ValueError, match="total_steps"):
        cosine.adam_warmup_cosine(0.1, 0)


# What XLA makes of a jitted training step: bytes read and written (its cost analysis, a
# property of the compiled graph, not a timing).  Parameters and state are donated, as in a
# training loop; a value computed twice, or an old slot value copied before it is overwritten,
# shows up as bytes.
def bytes_accessed(tx, params) -> float:
    import jax
    import optax

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    lowered = jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), params)
    cost = lowered.compile().cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost)["bytes accessed"]


def traffic_params():
    import jax.numpy as jnp

    return {"kernel": jnp.ones((64, 128)), "bias": jnp.ones((128,))}


def baseline_kwargs(program):
    return {"total_steps": 100} if "T" in program.params else {}


@pytest.mark.parametrize("name,library", [("adam", "adam"), ("lion", "lion")])
def test_exported_step_moves_no_more_memory_than_optax(tmp_path, name, library):
    import optax

    program = programs.BASELINES[name]
    # a few scalars (the count, the bias corrections) may be read once more: 64 bytes
    reference = bytes_accessed(getattr(optax, library)(1e-3), traffic_params()) + 64
    for fast in (False, True):
        module = load_module(tmp_path, program, "optax", f"{name}_{fast}", fast=fast)
        mine = bytes_accessed(getattr(module, name)(1e-3), traffic_params())
        assert mine <= reference, (fast, mine, reference)
    assert bytes_accessed(programs.as_optax(program, 1e-3), traffic_params()) <= reference


@pytest.mark.parametrize("source,arrays", [
    (("def p(g, lr, v):\n    v = abs(0.9 * v + g)\n    u = g / (sqrt(v) + 1e-8) * lr\n"
      "    return u, v\n"), 7),
    ("def p(g, lr, m):\n    m = -(0.9 * m + g)\n    u = m * lr\n    return u, m\n", 6)])
def test_new_slot_value_is_computed_once(tmp_path, source, arrays):
    """A slot's new value made by an op of one operand (abs, neg), read again: XLA would copy
    that op, and the sum under it, into the update's fusion.  Computed once, the step reads
    and writes each array once per fusion: the slot fusion reads the slot and g and writes the
    slot; the update fusion reads p, g (for abs) and the new slot, and writes p."""
    program = programs.parse(source)
    params = traffic_params()
    size = sum(x.size * x.dtype.itemsize for x in params.values())
    for fast in (False, True):
        tx = load_module(tmp_path, program, "optax", f"once_{fast}", fast=fast).p(1e-3)
        assert bytes_accessed(tx, params) <= arrays * size + 64, fast
    assert bytes_accessed(programs.as_optax(program, 1e-3), params) <= arrays * size + 64


@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_saturation_costs_no_memory_traffic(tmp_path, name):
    """The exact module builds the interpreter's graph (same bytes) and moves hardly more
    memory than the fast one, which saturates nothing: a slot's new value is stored once, not
    recomputed by each reader (ops.saturate_stored).  Before that, 1.2-1.5x for 12 of 15."""
    program = programs.BASELINES[name]
    kw = baseline_kwargs(program)
    exact, fast = (bytes_accessed(getattr(load_module(tmp_path, program, "optax", f"m{f}",
                                                      fast=f), name)(1e-3, **kw),
                                  traffic_params())
                   for f in (False, True))
    assert bytes_accessed(programs.as_optax(program, 1e-3, **kw), traffic_params()) == exact
    assert exact <= 1.1 * fast, (exact, fast)


def test_torch_optimizer_behaviour(tmp_path):
    import torch

    module = load_module(tmp_path, programs.BASELINES["adam"], "torch", "adam_torch")
    assert module.__all__ == ["Adam"] and issubclass(module.Adam, torch.optim.Optimizer)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        module.Adam([torch.nn.Parameter(torch.zeros(2))], lr=-1.0)
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    opt = module.Adam([a, b], lr=0.1)
    a.grad = torch.tensor([1.0, -2.0, 0.0])
    loss = opt.step(closure=lambda: torch.tensor(7.0))
    assert loss.item() == 7.0
    assert b not in opt.state and torch.equal(b, torch.ones(2))   # no grad: skipped
    assert opt.state[a]["step"] == 1 and set(opt.state[a]) == {"step", "m", "v"}
    np.testing.assert_allclose(a.detach().numpy(), [0.9, 1.1, 1.0], rtol=1e-6)
    reloaded = module.Adam([a, b], lr=0.1)
    reloaded.load_state_dict(opt.state_dict())
    assert torch.equal(reloaded.state[a]["m"], opt.state[a]["m"])
    cosine = load_module(tmp_path, programs.BASELINES["adam_warmup_cosine"], "torch", "awc_t")
    with pytest.raises(ValueError, match="total_steps"):
        cosine.AdamWarmupCosine([a], lr=0.1, total_steps=0)


SWAP = programs.parse("""\
def swap(w, g, lr, a, b):
    c = b + g
    u = c * lr + 0.001 * w
    b = a
    a = c
    return u, a, b
""")


@pytest.mark.parametrize("program", [programs.BASELINES["adam"], programs.BASELINES["lion"],
                                     SWAP], ids=["adam", "lion", "swap"])
def test_torch_pieces_match_whole_tensors(tmp_path, program):
    """step() on pieces of 4 elements (ragged last piece, slots that trade values) computes
    what it computes on whole tensors; a non-contiguous or non-CPU tensor is never cut."""
    import torch

    module = load_module(tmp_path, program, "torch", f"pieces_{program.name}")
    assert module._CHUNK == 2**18
    optimizer = getattr(module, module.__all__[0])
    rng = np.random.default_rng(3)
    start = [rng.standard_normal(s).astype(np.float32) for s in [(7, 5), (13,), ()]]
    grads = [[rng.standard_normal(x.shape).astype(np.float32) for x in start]
             for _ in range(12)]

    def run(chunk):
        module._CHUNK = chunk
        params = [torch.nn.Parameter(torch.tensor(x)) for x in start]
        opt = optimizer(params, lr=0.01)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = torch.tensor(g)
            opt.step()
        return [np.concatenate([p.detach().numpy().ravel()] + [
            opt.state[p][k].numpy().ravel() for k in module._SLOTS]) for p in params]

    # the interpreter, as the reference
    import jax.numpy as jnp
    import optax

    tx = programs.as_optax(program, 0.01)
    params = [jnp.asarray(x) for x in start]
    state = tx.init(params)
    for step in grads:
        updates, state = tx.update([jnp.asarray(g) for g in step], state, params)
        params = optax.apply_updates(params, updates)
    expected = [np.concatenate([np.asarray(p).ravel()] + [np.asarray(slot[i]).ravel()
                                                          for slot in state.slots])
                for i, p in enumerate(params)]
    for chunk in (4, 10**9):
        for a, b in zip(run(chunk), expected):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    x, module._CHUNK = torch.zeros(5, 7), 4
    assert [len(piece[0]) for piece in module._chunks([x, x])] == [4] * 8 + [3]
    assert [piece[0].shape for piece in module._chunks([x, x.t()])] == [(5, 7)]
    # off the CPU (here the meta device: shapes only) pieces would only multiply launches
    meta = torch.zeros(5, 7, device="meta")
    assert [piece[0].shape for piece in module._chunks([meta, meta])] == [(5, 7)]


def test_numpy_update_modifies_nothing(tmp_path):
    module = load_module(tmp_path, programs.BASELINES["adam"], "numpy", "adam_np")
    params = {"w": np.ones(3, np.float32)}
    grads = {"w": np.array([1.0, -1.0, 0.0], np.float32)}
    state = module.init(params)
    new_params, new_state = module.update(grads, state, params, lr=0.1)
    assert np.array_equal(params["w"], np.ones(3)) and state["count"] == 0
    assert new_state["count"] == 1 and new_params["w"].dtype == np.float32
    assert not np.shares_memory(new_state["slots"]["m"]["w"], grads["w"])


def test_numpy_erf_is_accurate(tmp_path):
    import math

    program = programs.parse("def p(g, lr):\n    u = erf(g) * lr\n    return u\n")
    module = load_module(tmp_path, program, "numpy", "erf_np")
    x = np.concatenate([np.linspace(-7, 7, 2001), [0.0, 1e-30, -1e-8, 2.5, 3e38]])
    got = module._erf(x)
    want = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) < 2e-15


