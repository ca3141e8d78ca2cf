"""Regularized (aging) evolution of update programs, asynchronous and steady state.

The search of the Lion paper and AutoML-Zero, driven by DEAP: ``base.Toolbox`` names the
operators (tournament selection, the mutations of :mod:`programs.mutate`, the validity check,
the fingerprint), ``tools.HallOfFame``, ``tools.Statistics`` and ``tools.Logbook`` keep the
records.  Individuals are a plain class (no ``creator`` globals).

Contract:

* :meth:`AgingEvolution.breed` returns the next child to evaluate (with its sequence number
  ``seq``), or None when no parent is available yet.  Before a child costs an evaluation it is
  rejected when invalid (``programs.check``), and when its fingerprint is in the cache (or
  being evaluated) it reuses that fitness and breeding goes on.  Those children are counted
  (``invalid``, ``cache_hits``), never evaluated.  A cache-hit child joins the population only
  when it is new in structure (no member has the same program) and fewer than
  ``max(2, population_size // 10)`` members share its fingerprint (else ``twins_dropped``):
  neutral variants may drift, but free copies cannot crowd an evaluated population out.
* :meth:`AgingEvolution.tell` takes an evaluated child and its record (``score``, ``status``,
  ``held_out_score`` ...): the child joins the population, the oldest leaves.
* Lower scores are better (0 is tuned adam).  The hall of fame holds children scored on the
  held-out tasks, ranked by held-out score (by search score when there are no held-out tasks).
* Randomness: a numpy ``Generator`` for mutation and a ``random.Random`` for selection, both
  seeded from ``config.seed`` and saved in :meth:`state_dict` as JSON; the global ``random``
  state is never used.  Same seed, same sequence of results told -> same children.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Iterable, Sequence

import numpy as np
from deap import base, tools

import programs
from discover.config import CampaignConfig
from discover.records import OK, REJECTED, LogRecord
from discover.search import policies
from discover.search.individual import Individual, Ranked, cache_entry, jsonable, tournament
from programs import mutate as mutations
from programs.check import check
from programs.fingerprint import probe
from programs.statement import live_statements


class AgingEvolution:
    """Population, cache, hall of fame and random streams of one search."""

    MAX_BREED_ATTEMPTS = 1000
    """Children tried (rejected or cache hits) before ``breed`` gives up for now."""
    NEUTRAL_STEPS = 10
    PROBE_MEMO_SIZE = 50_000
    """Screened children remembered by their live statements (:meth:`_screen`)."""
    """With ``mutate_until_changed``: mutations applied in a row to a neutral child before
    breeding starts again from another parent."""

    def __init__(self, config: CampaignConfig, *, funnel: bool = True):
        self.config = config
        self.population_size = config.population_size
        self.tournament_size = config.tournament_size
        self.funnel = funnel
        seeds = np.random.SeedSequence(config.seed).spawn(2)
        self.mutation_rng = np.random.default_rng(seeds[0])
        self.selection_rng = random.Random(int(seeds[1].generate_state(1)[0]))
        self.mutation_config = self.base_mutation_config = policies.mutation_config(config)
        self.mutation_outcomes: collections.deque[tuple[str, bool]] = collections.deque(
            maxlen=config.adaptive_mutation_window or 1)  # (kind, better than its parent)

        self.toolbox = base.Toolbox()
        self.toolbox.register("select", tournament, tournsize=self.tournament_size,
                              rng=self.selection_rng)
        self.toolbox.register("mutate", mutations.mutate, rng=self.mutation_rng,
                              config=self.mutation_config)
        for kind, primitive in mutations.PRIMITIVES.items():  # insert, delete, operand ...
            self.toolbox.register(kind, primitive, rng=self.mutation_rng,
                                  config=self.mutation_config)
        self.toolbox.register("probe", probe)  # one probe per child: check and fingerprint
        self.toolbox.register("check", check)
        self.toolbox.register("fingerprint", lambda program, probed=None:
                              program.fingerprint(probed))

        self.islands: list[collections.deque[Individual]] = [
            collections.deque() for _ in range(config.islands)]
        self.capacity = [self.population_size // config.islands
                         + (i < self.population_size % config.islands)
                         for i in range(config.islands)]   # members each island keeps
        self.next_island = 0                      # the island the next child is bred for
        self.cache: dict[str, dict] = {}          # fingerprint -> score, held_out_score, status
        self.in_flight: dict[str, int] = {}       # fingerprint -> seq being evaluated
        self.waiting: dict[str, list[Individual]] = {}  # duplicates of an in-flight child
        self.hall_of_fame = tools.HallOfFame(config.hall_of_fame_size,
                                             similar=lambda a, b: a.fingerprint == b.fingerprint)
        self.stats = tools.Statistics(key=lambda ind: ind.score)
        self.stats.register("best", np.min)
        self.stats.register("median", np.median)
        self.stats.register("worst", np.max)
        self.logbook = tools.Logbook()
        self.logbook.header = ["evaluations", "cache_hits", "invalid", "restarts", "best",
                               "median", "worst"]
        self.next_seq = 0
        self.starts: dict[int, int] = {}          # seq of a start child -> copies to add
        self.best: Individual | None = None
        self.twin_cap = max(2, min(self.capacity) // 10)
        # live part of a child (params, live statements, outputs) -> (check, fingerprint)
        self.probe_memo: collections.OrderedDict[tuple, tuple] = collections.OrderedDict()
        self.hurdle_scores: collections.deque[float] = collections.deque(
            maxlen=config.hurdle_window)          # first-task scores of recent children
        self.counters = {"evaluations": 0, "cache_hits": 0, "invalid": 0, "unchanged": 0,
                         "failed": 0, "rejected": 0, "restarts": 0, "since_improvement": 0,
                         "twins_dropped": 0, "neutral": 0,
                         "neutral_steps": 0, "migrations": 0, "resets": 0}

    # -- start ----------------------------------------------------------------------------
    def initial_children(self, named: Sequence[tuple[str, programs.Program]]) -> list[Individual]:
        """Children for the start programs (one per distinct fingerprint); as each is told,
        copies of it fill its share of the population."""
        distinct = []
        for name, program in named:
            fp = self.toolbox.fingerprint(program)
            if all(fp != d[1] for d in distinct):
                distinct.append((name, fp, program))
        children = []
        size = min(self.capacity)  # every island gets the same share of each start program
        for i, (name, fp, program) in enumerate(distinct):
            child = self._new_child(program, fp, None, {"kind": "start", "detail": name})
            copies = size // len(distinct)
            self.starts[child.seq] = max(1, copies + (i < size % len(distinct)))
            children.append(child)
        return children

    def _new_child(self, program, fp, parent, mutation, island: int = 0) -> Individual:
        child = Individual(program, fp, seq=self.next_seq, parent=parent, mutation=mutation,
                           island=island)
        self.next_seq += 1
        self.in_flight[fp] = child.seq
        return child

    # -- breeding -------------------------------------------------------------------------
    def breed(self) -> Individual | None:
        """The next child to evaluate, or None when there is no parent to breed from (or the
        neighbourhood of every island is exhausted for now).  Islands take turns; one whose
        neighbourhood is exhausted passes its turn to the next."""
        for offset in range(len(self.islands)):
            island = (self.next_island + offset) % len(self.islands)
            child = self._breed_on(island)
            if child is not None:
                self.next_island = (island + 1) % len(self.islands)
                return child
        return None

    def _breed_on(self, island: int) -> Individual | None:
        """A child of a parent of ``island`` (see :meth:`breed`), or None."""
        for attempt in range(self.MAX_BREED_ATTEMPTS):
            if not self.islands[island]:
                return None
            parent = self.toolbox.select(list(self.islands[island]))
            outcome, program, applied, fp = self._vary(parent, attempt)
            if outcome != "child":
                self.counters[outcome] += 1
                continue
            detail = applied[0] if len(applied) == 1 else {
                "kind": "+".join(a["kind"] for a in applied),
                "detail": "; ".join(a["detail"] for a in applied)}
            if self.config.fingerprint_cache and (fp in self.cache or fp in self.in_flight):
                self.counters["cache_hits"] += 1
                twin = Individual(program, fp, parent=parent.fingerprint, mutation=detail,
                                  island=island)
                if fp in self.cache:
                    twin.fitness.values = (self.cache[fp]["score"],)
                    self._admit_twin(twin)
                else:
                    self.waiting.setdefault(fp, []).append(twin)
                continue
            return self._new_child(program, fp, parent.fingerprint, detail, island)
        return None

    def _vary(self, parent: Individual, attempt: int) -> tuple[str, programs.Program, list, str]:
        """``(outcome, program, mutations applied, fingerprint)`` of one child of ``parent``;
        ``outcome`` is "child", or the counter it adds to: "unchanged" (no mutation applied,
        or the same program), "invalid" (rejected by the check), "neutral" (with
        ``mutate_until_changed``: still the parent's function after ``NEUTRAL_STEPS``)."""
        program, applied = parent.program, []
        steps = self.NEUTRAL_STEPS if self.config.mutate_until_changed else 1
        for step in range(steps):
            # Escalate: after many rejected or known children, chain several mutations.
            for _ in range(1 + attempt // 50):
                mutation = self.toolbox.mutate(program)
                if mutation.program is not None:
                    program = mutation.program
                    applied.append({"kind": mutation.kind, "detail": mutation.detail})
            if not applied or program == parent.program:
                return "unchanged", program, applied, ""
            ok, fp = self._screen(program)
            if not ok:
                return "invalid", program, applied, ""
            if steps == 1 or fp != parent.fingerprint:
                return "child", program, applied, fp
            if step < steps - 1:
                self.counters["neutral_steps"] += 1  # the same function: mutate it again
        return "neutral", program, applied, fp

    def _screen(self, program: programs.Program) -> tuple[bool, str]:
        """``(check passed, fingerprint)`` of a child: probed once (``toolbox.probe``), then
        ``toolbox.check`` and ``toolbox.fingerprint`` of the probe.  What the probe computes
        depends only on the program's live part, so a child whose live part was screened
        before (half the children of a converging search) is not probed again: only its
        validity (dead statements included) is checked."""
        key = (program.params, tuple(live_statements(program)), program.outputs)
        known = self.probe_memo.get(key)
        if known is not None:
            self.probe_memo.move_to_end(key)
            try:
                program.checked()
            except ValueError:
                return False, ""
            return known
        probed = self.toolbox.probe(program)
        ok = self.toolbox.check(program, probed).ok
        fp = self.toolbox.fingerprint(program, probed) if ok else ""
        try:
            program.checked()
        except ValueError:
            return ok, fp  # invalid: not remembered (another program may share its live part)
        self.probe_memo[key] = (ok, fp)
        if len(self.probe_memo) > self.PROBE_MEMO_SIZE:
            self.probe_memo.popitem(last=False)
        return ok, fp

    # -- results --------------------------------------------------------------------------
    def tell(self, child: Individual, record: LogRecord) -> None:
        """Record the evaluation of ``child`` (its logged record)."""
        score = record.search_score
        child.fitness.values = (score,)
        self.in_flight.pop(child.fingerprint, None)
        self.cache[child.fingerprint] = cache_entry(record)
        self.counters["evaluations"] += 1
        self.counters["failed"] += record.status not in (OK, REJECTED)
        self.counters["rejected"] += record.status == REJECTED
        first = record.scores.get(self.config.tasks[0]) if self.config.tasks else None
        if self.config.hurdle_percentile is not None and first is not None:
            self.hurdle_scores.append(first)
        if child.seq in self.starts:  # a start program: its share of every island
            copies = self.starts.pop(child.seq)
            for island in range(len(self.islands)):
                for _ in range(copies):
                    twin = child.copy()
                    twin.island = island
                    self._join(twin)
        else:
            self._join(child.copy())
        for twin in self.waiting.pop(child.fingerprint, []):
            twin.fitness.values = (score,)
            self._admit_twin(twin)
        self._learn_mutation(child, score)
        ranked = record.held_out_score is not None or not self.funnel
        if ranked and record.status == OK:
            self.hall_of_fame.update([Ranked(record, self.funnel)])
        self._track_best(child)
        self._islands_exchange()

    def _learn_mutation(self, child: Individual, score: float) -> None:
        """With ``adaptive_mutation_window``: note whether ``child`` beat its parent (by its
        first mutation kind) and re-weight the mutations."""
        parent = self.cache.get(child.parent) if child.parent else None
        if self.config.adaptive_mutation_window is None or parent is None:
            return
        kind = child.mutation.get("kind", "").split("+")[0]
        if kind in mutations.KINDS:
            self.mutation_outcomes.append((kind, bool(score < parent["score"])))
            self._reweight()

    def _reweight(self) -> None:
        self.mutation_config = policies.adapted_mutation_config(self.base_mutation_config,
                                                                self.mutation_outcomes)
        self.toolbox.register("mutate", mutations.mutate, rng=self.mutation_rng,
                              config=self.mutation_config)

    def _join(self, individual: Individual) -> None:
        """Aging: the newcomer joins its island, the island's oldest leaves."""
        island = self.islands[individual.island]
        island.append(individual)
        while len(island) > self.capacity[individual.island]:
            island.popleft()

    def _admit_twin(self, twin: Individual) -> None:
        """A cache-hit child joins unless it adds no structure or its fingerprint is at cap."""
        same = [ind for ind in self.islands[twin.island] if ind.fingerprint == twin.fingerprint]
        if len(same) >= self.twin_cap or any(ind.program == twin.program for ind in same):
            self.counters["twins_dropped"] += 1
            return
        self._join(twin)

    def _track_best(self, child: Individual) -> None:
        if self.best is None or child.fitness > self.best.fitness:
            self.best = child.copy()
            self.counters["since_improvement"] = 0
            return
        self.counters["since_improvement"] += 1
        plateau = self.config.plateau_evals
        if plateau is not None and self.counters["since_improvement"] >= plateau:
            self.restart()

    def restart(self) -> None:
        """Plateau: every island becomes copies of the best program so far."""
        if self.best is None:
            return
        for i, size in enumerate(self.capacity):
            self.islands[i] = collections.deque(self.best.moved_to(i) for _ in range(size))
        self.counters["restarts"] += 1
        self.counters["since_improvement"] = 0

    def _islands_exchange(self) -> None:
        migrated, reset = policies.exchange_between_islands(
            self.islands, self.capacity, self.config, self.counters["evaluations"],
            self.selection_rng)
        self.counters["migrations"] += migrated
        self.counters["resets"] += reset

    @property
    def population(self) -> list[Individual]:
        """Every member, island after island (each island oldest first)."""
        return [ind for island in self.islands for ind in island]

    def island_best(self) -> list[float | None]:
        """The best score of each island now (None for an empty island)."""
        return [min(ind.score for ind in island) if island else None
                for island in self.islands]

    # -- records --------------------------------------------------------------------------
    def record(self) -> dict:
        """Append a logbook row (statistics of the population and counters) and return it."""
        row = {k: self.counters[k] for k in ("evaluations", "cache_hits", "invalid", "restarts")}
        if self.population:
            row.update({k: float(v) for k, v in self.stats.compile(self.population).items()})
        if len(self.islands) > 1:
            row["island_best"] = self.island_best()
        self.logbook.record(**row)
        return row

    def rates(self, fingerprint: str | None) -> tuple[dict | None, dict | None]:
        """The tuned rates (search tasks, held-out tasks) of an evaluated program: where its
        children's tuning walks start; ``(None, None)`` when unknown."""
        entry = self.cache.get(fingerprint) if fingerprint else None
        if entry is None:
            return None, None
        return entry.get("lr"), entry.get("held_out_lr")

    @property
    def cache_hit_rate(self) -> float:
        """Children that reused a known fitness, over all children that needed a fitness."""
        total = self.counters["cache_hits"] + self.counters["evaluations"]
        return self.counters["cache_hits"] / total if total else 0.0

    def hall_of_fame_records(self) -> list[LogRecord]:
        """The logged records of the hall of fame, best first."""
        return [entry.record for entry in self.hall_of_fame]

    def funnel_threshold(self) -> float:
        """The search policy's funnel: the highest search score that earns the held-out tasks
        now, ``held_out_threshold`` and, with ``held_out_margin``, at most that far above the
        best search score so far."""
        config = self.config
        if config.held_out_margin is None or self.best is None:
            return config.held_out_threshold
        return min(config.held_out_threshold, self.best.score + config.held_out_margin)

    HURDLE_MIN_SCORES = 20
    """First-task scores needed before the hurdle applies (fewer when the window is smaller)."""

    def hurdle(self) -> float | None:
        """The hurdle now: the ``hurdle_percentile`` of the recent first-task scores, or None
        (hurdles off, a search set of one task: nothing to save, or too few scores yet)."""
        config = self.config
        needed = min(self.HURDLE_MIN_SCORES, config.hurdle_window)
        if (config.hurdle_percentile is None or len(config.tasks or ()) < 2
                or len(self.hurdle_scores) < needed):
            return None
        return float(np.percentile(np.asarray(self.hurdle_scores), config.hurdle_percentile))

    def audits(self, seq: int) -> bool:
        """Whether child ``seq`` is scored on every task whatever the hurdle says."""
        every = self.config.hurdle_audit_every
        return every is not None and seq % every == every - 1

    # -- checkpoint -----------------------------------------------------------------------
    def state_dict(self, pending: Iterable[Individual] = ()) -> dict:
        """Everything needed to go on, as JSON data, but the fitness cache: the log holds it
        (:meth:`load_state_dict` rebuilds it from the records told before the checkpoint), so
        a checkpoint's size does not grow with the campaign.  ``pending``: children bred but
        not yet evaluated (they are evaluated first after a resume)."""
        pending = list(pending)
        return {
            "next_seq": self.next_seq,
            "counters": dict(self.counters),
            "population": [ind.to_dict() for ind in self.population],
            "pending": [ind.to_dict() for ind in pending],
            "waiting": {fp: [t.to_dict() for t in twins] for fp, twins in self.waiting.items()},
            "starts": {str(seq): n for seq, n in self.starts.items()},
            "hall_of_fame": [r.to_json() for r in self.hall_of_fame_records()],
            "best": self.best.to_dict() if self.best else None,
            "hurdle_scores": list(self.hurdle_scores),
            "next_island": self.next_island,
            "mutation_outcomes": [list(o) for o in self.mutation_outcomes],
            "logbook": list(self.logbook),
            "rng": {"mutation": jsonable(self.mutation_rng.bit_generator.state),
                    "selection": jsonable(self.selection_rng.getstate())},
        }

    def load_state_dict(self, state: dict, told: Iterable[LogRecord] | None = None
                        ) -> list[Individual]:
        """Restore from :meth:`state_dict`; returns the pending children (to evaluate).
        ``told``: the records told before the checkpoint, in log order, from which the cache
        is rebuilt (a checkpoint of state version 3 carries its cache instead, and ``told``
        is then ignored)."""
        self.next_seq = state["next_seq"]
        self.counters.update(state["counters"])
        self.islands = [collections.deque() for _ in self.capacity]
        for data in state["population"]:
            member = Individual.from_dict(data)
            if not 0 <= member.island < len(self.islands):
                raise ValueError(f"state: a member of island {member.island}, but the "
                                 f"configuration has {len(self.islands)} island(s)")
            self.islands[member.island].append(member)
        self.next_island = int(state.get("next_island", 0)) % len(self.islands)
        self.mutation_outcomes.clear()
        self.mutation_outcomes.extend((str(k), bool(b))
                                      for k, b in state.get("mutation_outcomes", []))
        if self.config.adaptive_mutation_window is not None:
            self._reweight()
        self.waiting = {fp: [Individual.from_dict(d) for d in twins]
                        for fp, twins in state["waiting"].items()}
        self.starts = {int(seq): n for seq, n in state["starts"].items()}
        if "cache" in state:  # state version 3
            self.cache = {fp: dict(v) for fp, v in state["cache"].items()}
        elif told is None:
            raise ValueError("state: no cache and no records to rebuild it from")
        else:
            self.cache = {record.fingerprint: cache_entry(record) for record in told}
        self.hall_of_fame.clear()
        for record in state["hall_of_fame"]:
            self.hall_of_fame.update([Ranked(LogRecord.from_json(record), self.funnel)])
        self.best = Individual.from_dict(state["best"]) if state["best"] else None
        self.hurdle_scores.clear()
        self.hurdle_scores.extend(state.get("hurdle_scores", []))
        self.logbook = tools.Logbook()
        self.logbook.header = ["evaluations", "cache_hits", "invalid", "restarts", "best",
                               "median", "worst"]
        for row in state["logbook"]:
            self.logbook.record(**row)
        self.mutation_rng.bit_generator.state = state["rng"]["mutation"]
        version, internal, gauss = state["rng"]["selection"]
        self.selection_rng.setstate((version, tuple(internal), gauss))
        pending = [Individual.from_dict(d) for d in state["pending"]]
        self.in_flight = {child.fingerprint: child.seq for child in pending}
        return pending

    def adopt(self, child: Individual) -> None:
        """Mark ``child`` (bred before a checkpoint, or rebuilt from the log) as in flight."""
        self.in_flight[child.fingerprint] = child.seq
        self.next_seq = max(self.next_seq, child.seq + 1)
