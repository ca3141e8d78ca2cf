"""Jit-compiled JAX proxy training tasks (registry), the training loop and the data they ship.

``tasks.names()``, ``tasks.get(name)``, ``tasks.resolve("name" | "package.module:factory")``,
``tasks.register(task_or_factory)``; a task follows the protocol of :mod:`tasks.base`.
``tasks.optax_loop.train(task, tx, seed)`` trains one with an optax optimizer.
"""

from tasks.base import TIERS, WORST_SCORE, Task, normalized_score
from tasks.registry import (
    get,
    held_out_names,
    names,
    register,
    resolve,
    search_names,
    tier_c_names,
    unregister,
    variant,
)

__all__ = [
    "TIERS", "WORST_SCORE", "Task", "get", "held_out_names", "names", "normalized_score",
    "register", "resolve", "search_names", "tier_c_names", "unregister", "variant",
]
