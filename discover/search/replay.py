"""Resuming a search from its checkpoint and the log written after it.

Contract: :func:`replay` rebuilds the :class:`~discover.search.evolution.AgingEvolution` of a
checkpoint with every record logged after it told, and returns the children still to
evaluate; no evaluation is lost or repeated, and with one worker the campaign goes on exactly
as the one that died would have.  ``told``, the records told before the checkpoint (log order),
rebuild the fitness cache, which a checkpoint does not copy (state version 4).
"""

from __future__ import annotations

import programs
from discover.config import CampaignConfig
from discover.records import LogRecord
from discover.search.evolution import AgingEvolution
from discover.search.individual import Individual


def replay(config: CampaignConfig, state: dict, after: list[LogRecord],
           told: list[LogRecord] | None = None
              ) -> tuple[AgingEvolution, list[Individual]]:
    """The evolution of checkpoint ``state`` with the records logged after it told, and the
    children still to evaluate.  A child bred after the checkpoint is bred again, so that the
    random draws that made it are drawn again and the campaign goes on as the one that died
    would have: exactly so when the checkpoint's next child was bred after its last result
    (one worker).  Where breeding again does not give the logged children in order (several
    workers bred them between results), the logged children are adopted instead: no
    evaluation lost or repeated, the draws not replayed."""
    evolution = AgingEvolution(config, funnel=bool(config.held_out_tasks))
    pending = evolution.load_state_dict(state, told)
    by_seq = {child.seq: child for child in pending}
    bred: dict[int, Individual] = {}
    replay = not pending
    for record in after:
        child = by_seq.pop(record.seq, None) or bred.pop(record.seq, None)
        while replay and child is None and evolution.next_seq <= record.seq:
            again = evolution.breed()
            if again is None or (again.seq == record.seq
                                 and str(again.program) != record.program):
                replay = False
            elif again.seq == record.seq:
                child = again
            else:
                bred[again.seq] = again
        if child is None or str(child.program) != record.program:
            return _adopted(config, state, after, told)
        evolution.tell(child, record)
    return evolution, sorted([*by_seq.values(), *bred.values()], key=lambda c: c.seq)


def _adopted(config: CampaignConfig, state: dict, after: list[LogRecord],
             told: list[LogRecord] | None
             ) -> tuple[AgingEvolution, list[Individual]]:
    """:func:`replay` without breeding again: each logged child adopted as logged."""
    evolution = AgingEvolution(config, funnel=bool(config.held_out_tasks))
    pending = evolution.load_state_dict(state, told)
    by_seq = {child.seq: child for child in pending}
    for record in after:
        child = by_seq.pop(record.seq, None)
        if child is None:
            child = Individual(programs.parse(record.program), record.fingerprint,
                               seq=record.seq, parent=record.parent,
                               mutation=record.mutation, island=record.island or 0)
        evolution.adopt(child)
        evolution.tell(child, record)
    return evolution, list(by_seq.values())
