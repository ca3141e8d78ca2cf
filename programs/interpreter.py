"""Run a program: one step on one tensor (``step_tensor``) and as an optax transformation.

This is the reference interpreter: it traces the program's statements into JAX operations, so
each distinct program compiles on its own.  The search's compile-once engine (``programs.vm``)
feeds programs as data instead and is tested against this one.

Semantics of one step on a parameter tensor ``w`` with gradient ``g``:

* inputs ``lr`` (scalar learning rate), ``t`` (step, 1 at the first update) and ``T`` (total
  steps) are scalars of ``w``'s dtype; constants are cast to that dtype;
* each state slot enters with its previous value (zeros before the first step);
* outputs are broadcast to ``w``'s shape and dtype; the caller applies ``w - update``.

A saturation that :mod:`programs.bounds` proves to be the identity, or invisible to every
reader, is left out (no value read changes), exactly as the exporters leave it out, and a
slot's new value that later statements read goes through :func:`programs.ops.saturate_stored`
(see :mod:`programs.bounds`): under
``jax.jit`` this interpreter and an exported optax module then build the same arithmetic, and
XLA fuses it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from programs.bounds import StatementFacts, statement_facts
from programs.errors import ProgramError
from programs.ops import OPS, saturate, saturate_stored
from programs.program import Program


def step_tensor(program: Program, values: dict[str, Any],
                facts: tuple[StatementFacts, ...] | None = None) -> tuple[jax.Array, ...]:
    """Run ``program`` once on one tensor.

    ``values`` maps every parameter of the program (inputs and slots) to an array; ``w`` or,
    when the program does not take ``w``, ``g`` fixes shape and dtype.  Returns the outputs
    (update first, then each slot) broadcast to that shape and dtype.  ``facts``:
    ``statement_facts(program)``, computed here when not given.
    """
    like = values["w"] if "w" in values else values["g"]
    like = jnp.asarray(like)
    env = {name: jnp.asarray(values[name], like.dtype) for name in program.params}
    for s, fact in zip(program.body, facts or statement_facts(program)):
        op = OPS[s.op]
        args = [env[a] if isinstance(a, str) else jnp.asarray(a, like.dtype) for a in s.args]
        if fact.unit_interp:  # interp with a constant 0 <= c <= 1: no product can overflow
            a, b, c = args
            value = saturate(a * (1 - c) + b * c)
        elif op.unguarded is not None and not fact.protect and isinstance(
                s.args[op.denominator], str):
            value = op.unguarded(*args)  # the denominator is provably >= TINY
        elif op.self_saturating:  # those saturate inside (fact.saturate is False)
            value = op.fn(*args)
        else:
            value = op.raw(*args)
        if fact.stored:  # saturated, or the identity on finite values: for fusion (bounds)
            value = saturate_stored(value)
        elif fact.saturate:
            value = saturate(value)
        env[s.target] = value.astype(like.dtype)
    return tuple(jnp.broadcast_to(env[o], like.shape).astype(like.dtype) for o in program.outputs)


class ProgramState(NamedTuple):
    """Optimizer state of ``as_optax``: steps taken so far and one pytree per state slot."""

    count: jax.Array
    slots: tuple


def as_optax(program: Program, learning_rate: float | Callable[[jax.Array], jax.Array],
             total_steps: int | None = None) -> optax.GradientTransformation:
    """An ``optax.GradientTransformation`` that runs ``program`` on every leaf of the params.

    ``learning_rate`` is a float or an optax schedule (called with the count of steps taken so
    far, as optax's own aliases do).  ``total_steps`` is the value of ``T``; it is required
    when the program reads ``T``.  ``update`` needs ``params`` when the program reads ``w``.
    The returned updates are ``-update`` (optax adds updates to the parameters).
    """
    if "T" in program.params and total_steps is None:
        raise ProgramError(f"program {program.name!r} reads T: pass total_steps to as_optax")
    total = float(total_steps) if total_steps is not None else 0.0
    uses_w = "w" in program.params
    facts = statement_facts(program)

    def init(params):
        # one tree of buffers per slot: a caller may donate the state (jit donate_argnums)
        slots = tuple(jax.tree.map(jnp.zeros_like, params) for _ in program.slots)
        return ProgramState(jnp.zeros([], jnp.int32), slots)

    def update(updates, state, params=None):
        if uses_w and params is None:
            raise ValueError(f"program {program.name!r} reads w: pass params to update()")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        t = state.count + 1
        leaves, treedef = jax.tree.flatten(updates)
        param_leaves = treedef.flatten_up_to(params) if uses_w else [None] * len(leaves)
        slot_leaves = [treedef.flatten_up_to(s) for s in state.slots]
        new_updates, new_slots = [], [[] for _ in program.slots]
        for i, (g, w) in enumerate(zip(leaves, param_leaves)):
            values = {"g": g, "lr": lr, "t": t, "T": total}
            if uses_w:
                values["w"] = w
            for name, leaves_of_slot in zip(program.slots, slot_leaves):
                values[name] = leaves_of_slot[i]
            wanted = {k: v for k, v in values.items() if k in program.params or k == "g"}
            outputs = step_tensor(program, wanted, facts)
            new_updates.append(-outputs[0])
            for j, out in enumerate(outputs[1:]):
                new_slots[j].append(out)
        slots = tuple(treedef.unflatten(s) for s in new_slots)
        return treedef.unflatten(new_updates), ProgramState(optax.safe_increment(state.count), slots)

    return optax.GradientTransformation(init, update)
