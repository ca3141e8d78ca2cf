"""The search's individuals: a program with its fitness and lineage, DEAP style.

Contract: lower scores are better; DEAP maximises weighted values, so :class:`Fitness` has
weight -1 and ``a.fitness > b.fitness`` means ``a`` scored lower.  :func:`tournament` draws
as ``deap.tools.selTournament`` does, from a generator of the caller's, never the global
``random``.  Individuals are plain classes (no ``creator`` globals) and round-trip through
JSON (:meth:`Individual.to_dict`, :meth:`Individual.from_dict`).  :func:`cache_entry` is what
the fitness cache keeps of an evaluated individual's record.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from deap import base

import programs
from discover.records import LogRecord


class Fitness(base.Fitness):
    """One objective, the score; DEAP maximises weighted values, so the weight is -1."""

    weights = (-1.0,)


class Individual:
    """A program with its fitness and its lineage."""

    __slots__ = ("fingerprint", "fitness", "island", "mutation", "parent", "program", "seq")

    def __init__(self, program: programs.Program, fingerprint: str, *, seq: int | None = None,
                 parent: str | None = None, mutation: dict | None = None,
                 score: float | None = None, island: int = 0):
        self.island = island            # the island it was bred for (0 with one island)
        self.program = program
        self.fingerprint = fingerprint
        self.seq = seq                  # the evaluation that scored it (None: a cache hit)
        self.parent = parent            # the parent's fingerprint
        self.mutation = mutation or {}  # {"kind": ..., "detail": ...}
        self.fitness = Fitness()
        if score is not None:
            self.fitness.values = (score,)

    @property
    def score(self) -> float:
        return self.fitness.values[0]

    def copy(self) -> Individual:
        twin = Individual(self.program, self.fingerprint, seq=self.seq, parent=self.parent,
                          mutation=dict(self.mutation), island=self.island)
        twin.fitness.values = self.fitness.values
        return twin

    def moved_to(self, island: int) -> Individual:
        """A copy that belongs to ``island``."""
        twin = self.copy()
        twin.island = island
        return twin

    def to_dict(self) -> dict:
        return {"program": str(self.program), "fingerprint": self.fingerprint, "seq": self.seq,
                "parent": self.parent, "mutation": self.mutation,
                "score": self.score if self.fitness.valid else None, "island": self.island}

    @classmethod
    def from_dict(cls, data: dict) -> Individual:
        return cls(programs.parse(data["program"]), data["fingerprint"], seq=data["seq"],
                   parent=data["parent"], mutation=data["mutation"], score=data["score"],
                   island=int(data.get("island", 0)))


class RankFitness(base.Fitness):
    """A hall-of-fame rank: (promoted, score); promoted first (weight +1), then the lower
    score (weight -1)."""

    weights = (1.0, -1.0)


class Ranked:
    """A logged record in DEAP's ``HallOfFame``, ranked promoted first, by its promotion score
    (fresh seeds: a score that was not the one maximised), then the others by the held-out
    score (the search score when there are no held-out tasks)."""

    __slots__ = ("fingerprint", "fitness", "record")

    def __init__(self, record: LogRecord, funnel: bool):
        self.fingerprint = record.fingerprint
        self.record = record
        self.fitness = RankFitness()
        if record.promotion_score is not None:
            self.fitness.values = (1.0, record.promotion_score)
        else:
            self.fitness.values = (0.0, record.held_out_score if funnel else record.search_score)


def tournament(individuals: Sequence, tournsize: int, rng: random.Random,
               fit_attr: str = "fitness") -> Any:
    """One winner of ``tools.selTournament(individuals, 1, tournsize)``, drawn with ``rng``.

    The same draws as DEAP (``tournsize`` aspirants by ``choice`` with replacement, the first
    best wins), from a ``random.Random`` of our own instead of the global one: with ``rng`` in
    the global generator's state, DEAP picks the same individual (tested).
    """
    aspirants = [rng.choice(individuals) for _ in range(tournsize)]
    return max(aspirants, key=attrgetter(fit_attr))


def jsonable(value):
    """Tuples to lists, recursively (RNG states are tuples and dicts of ints)."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def cache_entry(record: LogRecord) -> dict:
    """What the fitness cache keeps of an evaluation (its fingerprint is the key)."""
    return {"score": record.search_score, "status": record.status,
            "held_out_score": record.held_out_score, "seq": record.seq, "lr": record.lr,
            "held_out_lr": record.held_out_lr}
