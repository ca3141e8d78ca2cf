"""The search's optional policies, as functions over its state, each switched on by a
field of :class:`~discover.config.CampaignConfig` (their measured effect:
``docs/search-power.md``).

* :func:`mutation_config`: the search space of a configuration.
* :func:`adapted_mutation_config` (``adaptive_mutation_window``): each mutation kind's weight
  scaled by the Laplace-smoothed share of its recent children that beat their parent.
* :func:`exchange_between_islands` (``islands`` > 1): DEAP's ring migration every
  ``migration_every`` evaluations and FunSearch's reset of the weaker half every
  ``reset_every``.

Hurdles, the funnel and plateau restarts stay in :class:`~discover.search.evolution.
AgingEvolution`, whose bookkeeping they share.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from collections.abc import Iterable
from typing import Any

from deap import tools

from discover.config import CampaignConfig
from discover.search.individual import Individual
from programs import mutate as mutations


def mutation_config(config: CampaignConfig) -> mutations.MutationConfig:
    """The search space of ``config`` as a ``programs.mutate.MutationConfig``."""
    changes: dict[str, Any] = {"max_statements": config.max_statements,
                               "max_slots": config.max_slots,
                               "wired_slot_probability": config.wired_slot_probability}
    if config.ops is not None:
        changes["ops"] = tuple(config.ops)
    if config.mutation_weights is not None:
        defaults = dataclasses.asdict(mutations.MutationConfig().weights)
        changes["weights"] = mutations.MutationWeights(**{**defaults,
                                                          **config.mutation_weights})
    return mutations.MutationConfig(**changes)


def adapted_mutation_config(base: mutations.MutationConfig,
                            outcomes: Iterable[tuple[str, bool]]) -> mutations.MutationConfig:
    """``base`` with each kind's weight times (children that beat their parent + 1) /
    (children + 2), over ``outcomes`` (kind, better) of the recent children."""
    tally = {k: [0, 0] for k in mutations.KINDS}
    for kind, better in outcomes:
        tally[kind][0] += 1
        tally[kind][1] += better
    weights = mutations.MutationWeights(**{k: base.weights.of(k) * (b + 1) / (n + 2)
                                           for k, (n, b) in tally.items()})
    return dataclasses.replace(base, weights=weights)


def exchange_between_islands(islands: list[collections.deque[Individual]],
                             capacity: list[int], config: CampaignConfig, evaluations: int,
                             rng: random.Random) -> tuple[bool, bool]:
    """Every ``migration_every`` evaluations the best ``migrants`` of each island replace the
    worst of the next (DEAP's ``tools.migRing``); every ``reset_every`` evaluations the weaker
    half of the islands (by their best score) restart from copies of the best of an island of
    the stronger half, drawn with ``rng`` (FunSearch's reset).  Changes ``islands`` in place;
    returns (migrated, reset)."""
    if len(islands) < 2 or any(not island for island in islands):
        return False, False
    migrated = reset = False
    if config.migration_every and evaluations % config.migration_every == 0:
        tools.migRing(islands, config.migrants,
                      selection=lambda pop, k: [ind.copy() for ind in tools.selBest(pop, k)],
                      replacement=tools.selWorst)
        for i, island in enumerate(islands):  # immigrants belong to their new island
            for ind in island:
                ind.island = i
        migrated = True
    if config.reset_every and evaluations % config.reset_every == 0:
        order = sorted(range(len(islands)), key=lambda i: min(ind.score for ind in islands[i]))
        strong, weak = order[:(len(order) + 1) // 2], order[(len(order) + 1) // 2:]
        for i in weak:
            donor = islands[strong[rng.randrange(len(strong))]]
            best = tools.selBest(list(donor), 1)[0]
            islands[i] = collections.deque(best.moved_to(i) for _ in range(capacity[i]))
        reset = True
    return migrated, reset


