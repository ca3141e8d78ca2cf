"""The compile-once VM (programs.vm) against the reference interpreter (programs.as_optax).

One jitted trajectory function per kernel (scalings folded or not) serves every program here.
Baselines: whole trajectories against as_optax's.  Mutated programs and the ops: each step
against as_optax's step from the same state (teacher forcing), because a mutated program can
be chaotic, so that free-running trajectories part by amplified rounding.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_close_to_scale, optax_scan
from jax.flatten_util import ravel_pytree

import programs
from programs import ProgramError, parse, vm
from programs.ops import OP_NAMES, OPS

# Rank 2, 1, 3, 0, and a rank-2 tensor with a single row; keys sorted as ravel_pytree orders.
SHAPES = {"a_kernel": (4, 3), "b_bias": (3,), "c_conv": (2, 3, 2), "d_scalar": (),
          "e_row": (1, 5)}
STEPS = 50
LR = 0.03
MAX_STATEMENTS, MAX_SLOTS = 64, 4
RTOL = 1e-5

PARAMS = {k: np.random.default_rng(i).normal(size=s).astype(np.float32)
          for i, (k, s) in enumerate(SHAPES.items())}
W0, UNRAVEL = ravel_pytree(PARAMS)
NOISE = np.random.default_rng(99).normal(size=(STEPS, W0.size)).astype(np.float32)
# Both kernels: scalings folded into their readers, and not (tasks.train picks per task).
MACHINES = {fold: vm.Machine([np.shape(PARAMS[k]) for k in sorted(SHAPES)], MAX_STATEMENTS,
                             MAX_SLOTS, fold=fold) for fold in (True, False)}
MACHINE = MACHINES[True]


def gradient(w, noise):
    """The gradient both runs see: depends on the weights, so updates feed back."""
    return 0.5 * w + noise


@functools.partial(jax.jit, static_argnums=2)
def _trajectory(program, layout, fold):
    machine = MACHINES[fold]
    scalars = vm.scalar_rows(program, LR, STEPS, STEPS)

    def step(carry, xs):
        w, regs = carry
        sc, noise = xs
        g = gradient(w, noise)
        w, regs = machine.step(program, regs, w, g, sc, layout)
        return (w, regs), (w, g, machine.slots(regs))

    regs = machine.init()
    _, (ws, gs, slots) = jax.lax.scan(step, (W0, regs), (scalars, NOISE))
    return (jnp.concatenate([W0[None], ws]), gs,
            jnp.concatenate([machine.slots(regs)[None], slots]))


def vm_trajectory(program, fold=True, encoded=None):
    """Free-running VM: weights [STEPS + 1, N], gradients [STEPS, N] and slots
    [STEPS + 1, MAX_SLOTS, N] of every step."""
    machine = MACHINES[fold]
    encoded = machine.encode(program) if encoded is None else encoded
    return tuple(np.asarray(a) for a in _trajectory(encoded, machine.layout, fold))


def flat_slots(state):
    rows = [ravel_pytree(s)[0] for s in state.slots]
    return jnp.stack(rows + [jnp.zeros_like(W0)] * (MAX_SLOTS - len(rows)))


def reference(program, lr=LR):
    """as_optax trajectory (jitted per program), shaped as vm_trajectory's."""
    tx = programs.as_optax(program, lr, total_steps=STEPS)
    params = jax.tree.map(jnp.asarray, PARAMS)
    ws, gs, slots = optax_scan(
        tx, params, lambda p, noise: UNRAVEL(gradient(ravel_pytree(p)[0], noise)), NOISE,
        lambda p, state, g: (ravel_pytree(p)[0], ravel_pytree(g)[0], flat_slots(state)))
    initial = flat_slots(tx.init(params))
    return tuple(np.asarray(a) for a in (jnp.concatenate([W0[None], ws]), gs,
                                         jnp.concatenate([initial[None], slots])))


def reference_steps(program, ws, gs, slots):
    """as_optax's step from each given state (step t = 1 .. STEPS), vmapped over the steps
    and run op by op (no compilation per program): next weights and slots."""
    tx = programs.as_optax(program, LR, total_steps=STEPS)

    def one(w, g, slots, count):
        params = UNRAVEL(w)
        state = programs.ProgramState(
            count, tuple(UNRAVEL(slots[k]) for k in range(len(program.slots))))
        updates, state = tx.update(UNRAVEL(g), state, params)
        return ravel_pytree(optax.apply_updates(params, updates))[0], flat_slots(state)

    return jax.vmap(one)(ws[:-1], gs, slots[:-1], jnp.arange(STEPS, dtype=jnp.int32))


def assert_close(actual, expected, what):
    assert_close_to_scale(actual, expected, RTOL, what)


def check_forced(program, folds=(True, False)):
    """Each of STEPS steps of the VM's own trajectory matches as_optax's step from the same
    state (teacher forcing: rounding differences cannot accumulate), for both kernels."""
    for fold in folds:
        ws, gs, slots = vm_trajectory(program, fold)
        w1, s1 = reference_steps(program, ws, gs, slots)
        assert_close(ws[1:], w1, f"{program.name} (fold={fold}): weights")
        assert_close(slots[1:], s1, f"{program.name} (fold={fold}): slots")


@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_baseline_trajectory_matches_as_optax(name):
    program = programs.BASELINES[name]
    ref_w, _, ref_slots = reference(program)
    for fold in (True, False):
        ws, _, slots = vm_trajectory(program, fold)
        np.testing.assert_allclose(ws, ref_w, rtol=RTOL, atol=1e-6)
        np.testing.assert_allclose(slots, ref_slots, rtol=RTOL, atol=1e-6)


ROW_LRS = (0.003, 0.03, 0.3)
CENTERED_LAMB = parse("""
def centered_lamb(w, g, lr, t, m):
    m = 0.9 * m + 0.1 * g
    d = center(m) / (rms(m) + 1e-6)
    u = lr * d * norm(w) / (max_abs(d) + mean(abs(w)) + 1e-3)
    return u, m
""")


@functools.partial(jax.jit, static_argnums=2)
def _rows_trajectory(program, layout, fold):
    """Every learning rate of ROW_LRS as one row of Machine.step_rows, free-running."""
    machine = MACHINES[fold]
    scalars = jax.vmap(vm.scalar_rows, in_axes=(None, 0, None, None))(
        program, jnp.asarray(ROW_LRS), STEPS, STEPS)  # [rows, STEPS, n_scalar]

    def step(carry, xs):
        w, regs = carry
        sc, noise = xs
        w, regs = machine.step_rows(program, regs, w, gradient(w, noise), sc, layout)
        return (w, regs), (w, regs[:, vm.FIRST_SLOT:vm.FIRST_SLOT + MAX_SLOTS])

    rows = len(ROW_LRS)
    regs = jnp.broadcast_to(machine.init(), (rows,) + machine.init().shape)
    w0 = jnp.broadcast_to(W0, (rows, W0.size))
    _, (ws, slots) = jax.lax.scan(step, (w0, regs), (jnp.moveaxis(scalars, 1, 0), NOISE))
    return jnp.moveaxis(ws, 1, 0), jnp.moveaxis(slots, 1, 0)


@pytest.mark.parametrize("name", ["cautious_adam", "centered_lamb"])
def test_runs_stepped_together_each_match_their_own_as_optax_run(name):
    """``Machine.step_rows`` (how a trainer steps its learning rates and seeds at once):
    row b, at its own rate, follows as_optax at that rate; per-tensor reductions and
    ``center`` stay within their row (a reduction across rows would mix the rates)."""
    program = CENTERED_LAMB if name == "centered_lamb" else programs.BASELINES[name]
    references = [reference(program, lr) for lr in ROW_LRS]
    for fold in (True, False):
        machine = MACHINES[fold]
        ws, slots = (np.asarray(a) for a in _rows_trajectory(machine.encode(program),
                                                              machine.layout, fold))
        for row, lr in enumerate(ROW_LRS):
            ref_w, _, ref_slots = references[row]
            np.testing.assert_allclose(ws[row], ref_w[1:], rtol=RTOL, atol=1e-6,
                                       err_msg=f"{name} at lr {lr}, fold={fold}")
            np.testing.assert_allclose(slots[row], ref_slots[1:], rtol=RTOL, atol=1e-6)


def mutated_programs(n=12, seed=2024):
    """``n`` distinct programs, each 1-5 mutations away from a baseline (fixed RNG)."""
    from programs import mutate  # an import error fails the test, never skips it
    rng = np.random.default_rng(seed)
    names = sorted(programs.BASELINES)
    found: list = []
    while len(found) < n:
        program = programs.BASELINES[names[rng.integers(len(names))]]
        for _ in range(rng.integers(1, 6)):
            child = mutate.mutate(program, rng).program
            program = child if child is not None else program
        if len(program.body) <= MAX_STATEMENTS and program not in found and \
                program not in programs.BASELINES.values():
            found.append(program)
    return found


def test_mutated_programs_match_as_optax_step_by_step():
    # Teacher forcing: a mutated program may be chaotic (sign flips, divisions by ~0), so
    # free-running trajectories can part by amplified rounding; each step must still agree.
    for program in mutated_programs():
        check_forced(program)


OP_GROUPS = [OP_NAMES[i:i + 4] for i in range(0, len(OP_NAMES), 4)]


@pytest.mark.parametrize("names", OP_GROUPS, ids=["-".join(g) for g in OP_GROUPS])
def test_every_op_on_tensors_and_scalars(names):
    # Each op on tensors, on rank-0 values and on a mix; each result observed in its own slot
    # (tanh keeps the feedback bounded) and together in the update.
    lines, results = [], []
    for i, name in enumerate(names):
        arity = OPS[name].arity
        tensor = ", ".join(["g", "w", "m0"][:arity])
        scalar = ", ".join(["t", "lr", "0.7"][:arity])
        mixed = ", ".join(["m1", "t", "g"][:arity])
        lines += [f"a{i} = {name}({tensor})", f"b{i} = {name}({scalar})",
                  f"c{i} = {name}({mixed})", f"d{i} = a{i} + b{i} * c{i}",
                  f"m{i} = tanh(d{i})"]
        results.append(f"d{i}")
    slots = [f"m{i}" for i in range(4)]
    body = "\n".join(f"    {line}" for line in lines)
    program = parse(f"def p(w, g, lr, t, {', '.join(slots)}):\n{body}\n"
                    f"    u = ({' + '.join(results)}) * lr\n"
                    f"    return u, {', '.join(f'm{i}' for i in range(len(names)))}"
                    f"{''.join(f', m{i}' for i in range(len(names), 4))}\n")
    check_forced(program)


def test_rank0_values_reductions_and_outputs_that_are_inputs():
    # norm/center of rank-0 values reduce over one element in the reference; slots returned
    # unchanged and a scalar update broadcast; a value overwritten while still read.
    program = parse("""\
def p(w, g, lr, t, T, m, v, k):
    a = norm(t) + rms(lr) + mean(0.5) + max_abs(-2.0)
    b = center(t / T) + center(g) + center(w)
    m = b * a + mean(w) * norm(g) - max_abs(m)
    v = v + 1.0
    return lr, m, k, v
""")
    check_forced(program)
    ref_w, _, ref_slots = reference(program)
    ws, _, slots = vm_trajectory(program)
    assert_close(ws, ref_w, "weights")
    assert_close(slots, ref_slots, "slots")


def test_slot_moves_permute_and_keep_the_update():
    # New slot values that are other slots' old values (a cycle), an update read from a slot
    # row that a move overwrites, a slot whose new value is computed while its old is read.
    program = parse("""\
def p(g, lr, a, b, c, d):
    a2 = a + g * lr
    d = d * 0.5 + a
    return b, c, a2, b, d
""")
    check_forced(program)
    # The update folded to lr * (old m) while m's new value is moved into m's row.
    check_forced(parse("def p(g, lr, m):\n    u = m * lr\n    m = g + 1.0\n    return u, m\n"))


def test_padding_statements_do_nothing():
    program = programs.BASELINES["adam"]
    enc = MACHINE.encode(program)
    n, rm = int(enc.n_statements), MACHINE.registers
    assert (enc.codes[n:] == vm.VM_OP_CODES[vm.NOP]).all() and (enc.operands[n:] == 0).all()
    rng = np.random.default_rng(0)
    pad = rm.capacity - n

    def garbage(a, high, shape):
        return np.concatenate([a[:n], rng.integers(0, high, shape)]).astype(np.int32)

    noisy = enc._replace(codes=garbage(enc.codes, len(OP_NAMES), pad),
                         operands=garbage(enc.operands, rm.n_vector, (pad, 3)),
                         rows=garbage(enc.rows, rm.n_vector, (pad, 3)),
                         scales=garbage(enc.scales, rm.n_vector + rm.n_scalar, (pad, 3)),
                         offsets=garbage(enc.offsets, rm.n_vector + rm.n_scalar, (pad, 3)),
                         targets=garbage(enc.targets, rm.n_vector, pad))
    a = vm_trajectory(program, encoded=enc)
    compiled = _trajectory._cache_size()
    b = vm_trajectory(program, encoded=noisy)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert _trajectory._cache_size() == compiled <= 2  # one compilation per kernel


def test_program_too_large_for_the_bucket_is_a_clear_error():
    body = "\n".join("    x = x * 0.5" for _ in range(8))
    program = parse(f"def p(g, lr):\n    x = g * lr\n{body}\n    return x\n")
    with pytest.raises(ValueError, match=r"9 statements; the bucket holds 8"):
        vm.encode(program, max_statements=8)
    assert 0 < vm.encode(program, max_statements=9).n_statements <= 9
    slots = parse("def p(g, a, b, c):\n    u = g + a\n    return u, a, b, c\n")
    with pytest.raises(ProgramError, match=r"3 state slots; the bucket holds 2"):
        vm.encode(slots, max_slots=2)


def test_encoding_depends_only_on_the_bucket():
    first = vm.encode(programs.BASELINES["sgd"], MAX_STATEMENTS, MAX_SLOTS)
    for p in programs.BASELINES.values():
        enc = vm.encode(p, MAX_STATEMENTS, MAX_SLOTS)
        assert [a.shape for a in enc] == [a.shape for a in first]
        assert [a.dtype for a in enc] == [a.dtype for a in first]


def test_layout_segments_and_rows():
    layout = vm.make_layout([(2, 3), (4,), ()])
    np.testing.assert_array_equal(layout.segment, [0] * 6 + [1] * 4 + [2])
    np.testing.assert_array_equal(layout.segment_size, [6, 4, 1])
    np.testing.assert_array_equal(layout.row, [0, 0, 0, 1, 1, 1] + [2] * 5)
    np.testing.assert_array_equal(layout.centred, [True] * 6 + [False] * 5)
