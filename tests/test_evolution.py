"""discover.search.evolution: aging, tournament selection, the fitness cache, rejection of invalid
children, the hall of fame, restarts and checkpoints of the RNG streams.

Evaluations are stood in for by records with chosen scores (the evolution only reads
``score``, ``status`` and ``held_out_score``); mutation, check and fingerprint are the real
ones of ``programs``.  Where a test needs a particular child, it registers a deterministic
mutation operator in the evolution's DEAP toolbox, as a user of the toolbox would.
"""

from __future__ import annotations

import itertools
import json
import random
import weakref

import pytest
from deap import tools
from helpers import job_result, logged

import programs
from discover.config import CampaignConfig
from discover.resolve import start_programs
from discover.search.evolution import AgingEvolution
from discover.search.individual import Fitness, tournament
from programs.mutate import Mutation

ADAM = programs.BASELINES["adam"]
SGD = programs.BASELINES["sgd"]
# adam plus a dead statement: a different program, the same function (same fingerprint).
NO_GRADIENT = programs.parse("def f(g, lr):\n    u = lr * 1.0\n    return u\n")


def scaled_adam(factor: float) -> programs.Program:
    """adam with its update scaled: a different function for every factor."""
    return programs.parse(str(ADAM).replace("u = u * lr", f"u = u * lr\n    u = u * {factor}"))


TOLD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""The records told to each evolution, in order: what its run's log would hold."""


def tell(evo: AgingEvolution, child, score, held_out=None, status="ok") -> None:
    """Tell ``evo`` a made-up evaluation of ``child`` (and note the record, as a log would)."""
    record = logged(child, job_result(score, held_out, status=status))
    TOLD.setdefault(evo, []).append(record)
    evo.tell(child, record)


def restored(clone: AgingEvolution, evo: AgingEvolution, state: dict) -> list:
    """``clone`` loaded from ``state`` (a checkpoint of ``evo``) and the records told to
    ``evo``, as a resume does; its fitness cache must then be ``evo``'s."""
    pending = clone.load_state_dict(state, TOLD.get(evo, []))
    assert clone.cache == evo.cache
    return pending


def evolution(**overrides) -> AgingEvolution:
    settings = {"population_size": 4, "start": ("adam",), "tasks": ("quadratic",),
                "held_out_tasks": (), "plateau_evals": None, "seed": 1}
    settings.update(overrides)
    config = CampaignConfig(**settings)
    return AgingEvolution(config, funnel=bool(config.held_out_tasks))


def started(evo: AgingEvolution, score=0.0) -> AgingEvolution:
    for child in evo.initial_children(start_programs(evo.config.start)):
        tell(evo, child, score)
    return evo


def fixed_mutations(evo: AgingEvolution, *results: programs.Program | None) -> None:
    """Make the toolbox's mutate return ``results`` in turn."""
    queue = iter(results)
    evo.toolbox.register("mutate", lambda program: Mutation(next(queue), "fixed", "test"))


class Scored:
    def __init__(self, name, score):
        self.name = name
        self.fitness = Fitness()
        self.fitness.values = (score,)


def test_tournament_draws_as_deap_does():
    population = [Scored(i, s) for i, s in enumerate([0.3, -0.1, 0.5, 0.0, 0.2, 0.1, 0.7])]
    saved = random.getstate()
    try:
        for seed in range(20):
            mine = random.Random(seed)
            random.seed(seed)  # DEAP's selTournament draws from the global generator
            expected = tools.selTournament(population, k=1, tournsize=3)[0]
            assert tournament(population, 3, mine) is expected
            assert mine.getstate() == random.getstate()
    finally:
        random.setstate(saved)


def test_tournament_prefers_lower_scores():
    population = [Scored(i, float(i)) for i in range(10)]
    rng = random.Random(0)
    wins = [tournament(population, 2, rng).name for _ in range(2000)]
    assert sum(w < 5 for w in wins) > 0.6 * len(wins)
    assert tournament(population, 200, random.Random(1)).name == 0  # sees everyone: the best


def test_start_fills_the_population_with_copies():
    evo = evolution(population_size=5, start=("adam", "sgd", "lion"))
    children = evo.initial_children(start_programs(evo.config.start))
    assert [c.seq for c in children] == [0, 1, 2]
    assert [c.mutation["detail"] for c in children] == ["adam", "sgd", "lion"]
    assert evo.breed() is None  # nobody to select from yet
    for child in children:
        tell(evo, child, 0.0)
    names = [ind.mutation["detail"] for ind in evo.population]
    assert names == ["adam", "adam", "sgd", "sgd", "lion"]


def test_aging_the_oldest_leaves():
    evo = started(evolution(population_size=3))
    assert [ind.seq for ind in evo.population] == [0, 0, 0]
    scores = (0.5, -0.5, 0.1, 0.9, 0.3)
    fixed_mutations(evo, *(scaled_adam(0.1 * (i + 1)) for i in range(len(scores))))
    for i, score in enumerate(scores):
        child = evo.breed()
        assert child.seq == i + 1
        tell(evo, child, score)
        assert evo.population[-1].seq == child.seq and len(evo.population) == 3
    # The newest three remain, oldest first, whatever their fitness: the best (-0.5) is gone.
    assert [ind.seq for ind in evo.population] == [3, 4, 5]
    assert [ind.score for ind in evo.population] == [0.1, 0.9, 0.3]
    assert evo.best.seq == 2 and evo.best.score == -0.5


def test_children_are_valid_mutants_with_lineage():
    evo = started(evolution(population_size=10))
    children = [evo.breed() for _ in range(5)]
    assert [c.seq for c in children] == [1, 2, 3, 4, 5]
    for child in children:
        assert programs.check.check(child.program).ok
        assert child.parent == ADAM.fingerprint()
        assert child.mutation["kind"] and child.fingerprint == child.program.fingerprint()
    assert len({c.fingerprint for c in children}) == 5  # duplicates of in-flight ones wait


def with_dead_code(program: programs.Program, k: int = 1) -> programs.Program:
    """``program`` plus ``k`` dead statements: another program, the same fingerprint."""
    dead = "".join(f"    d{i} = g * {i + 3}.0\n" for i in range(k))
    return programs.parse(str(program).replace("    u = u * lr\n", "    u = u * lr\n" + dead))


def test_cache_hit_reuses_fitness_without_an_evaluation():
    evo = started(evolution(population_size=4), score=0.25)
    fixed_mutations(evo, scaled_adam(0.5), with_dead_code(scaled_adam(0.5)), SGD)
    child = evo.breed()
    tell(evo, child, -0.1)
    second = evo.breed()
    # The dead-code mutant computes what the evaluated child computes: it joined with that
    # score, unevaluated, and breeding went on to SGD.
    assert second.program == SGD and second.seq == 2
    assert evo.counters["cache_hits"] == 1 and evo.counters["evaluations"] == 2
    twin = evo.population[-1]
    assert twin.program == with_dead_code(scaled_adam(0.5))
    assert twin.seq is None and twin.score == -0.1
    assert 0 < evo.cache_hit_rate < 1


def test_free_copies_cannot_crowd_out_the_population():
    """Cache hits that repeat a program, or a fingerprint already at its cap, do not join."""
    evo = started(evolution(population_size=6), score=0.25)  # six copies of adam
    assert evo.twin_cap == 2
    fixed_mutations(evo, with_dead_code(ADAM), scaled_adam(0.5), scaled_adam(0.5),
                    with_dead_code(scaled_adam(0.5)), with_dead_code(scaled_adam(0.5), 2),
                    SGD)
    child = evo.breed()  # adam + dead code: adam's fingerprint, already 6 members: dropped
    assert child.program == scaled_adam(0.5) and evo.counters["twins_dropped"] == 1
    tell(evo, child, -0.1)
    last = evo.breed()
    # the same program again: dropped; a new dead-code variant: joins (2 members share the
    # fingerprint now: the cap); a second variant: dropped; then SGD is evaluated.
    assert last.program == SGD
    assert evo.counters["cache_hits"] == 4 and evo.counters["twins_dropped"] == 3
    members = [ind.program for ind in evo.population]
    assert members[-2:] == [scaled_adam(0.5), with_dead_code(scaled_adam(0.5))]
    assert members.count(ADAM) == 4 and len(members) == 6


def test_mutate_until_changed_mutates_a_neutral_child_again_instead_of_admitting_it():
    evo = started(evolution(population_size=4, mutate_until_changed=True), score=0.25)
    before = list(evo.population)
    fixed_mutations(evo, with_dead_code(ADAM), scaled_adam(0.5))
    child = evo.breed()
    # adam + dead code computes adam: mutated again (the fixed mutation ignores its input),
    # the second mutation changes the function: that is the child, with both in its lineage.
    assert child.program == scaled_adam(0.5) and child.mutation["kind"] == "fixed+fixed"
    assert evo.counters["neutral_steps"] == 1 and evo.counters["cache_hits"] == 0
    assert list(evo.population) == before  # no free copy joined

    steps = evo.NEUTRAL_STEPS
    fixed_mutations(evo, *[with_dead_code(ADAM, k % 3 + 1) for k in range(steps)], SGD)
    assert evo.breed().program == SGD  # neutral after every step: another parent bred SGD
    assert evo.counters["neutral"] == 1 and evo.counters["neutral_steps"] == steps
    assert evo.counters["cache_hits"] == 0


def test_duplicate_of_a_child_in_flight_waits_for_its_score():
    evo = started(evolution(population_size=6))
    fixed_mutations(evo, scaled_adam(0.5), with_dead_code(scaled_adam(0.5)), SGD)
    first = evo.breed()
    second = evo.breed()  # the same function: in flight, so it waits; SGD is evaluated
    assert first.program == scaled_adam(0.5) and second.program == SGD
    tell(evo, first, -0.3)
    assert [ind.score for ind in evo.population][-2:] == [-0.3, -0.3]
    assert evo.counters["cache_hits"] == 1 and evo.counters["evaluations"] == 2


def test_invalid_child_is_rejected_before_evaluation():
    evo = started(evolution())
    assert not programs.check.check(NO_GRADIENT).ok
    fixed_mutations(evo, NO_GRADIENT, None, scaled_adam(0.5))
    child = evo.breed()
    assert child.program == scaled_adam(0.5) and child.seq == 1  # no seq spent on the others
    assert evo.counters["invalid"] == 1 and evo.counters["unchanged"] == 1
    assert NO_GRADIENT.fingerprint() not in evo.cache


def test_failed_evaluation_gets_the_worst_score():
    evo = started(evolution())
    child = evo.breed()
    tell(evo, child, None, status="failed")
    assert evo.population[-1].score == 2.0 and evo.counters["failed"] == 1


def test_hall_of_fame_is_ranked_by_held_out_score():
    evo = started(evolution(population_size=10, held_out_tasks=("logistic",)))
    scores = [(-0.5, 0.4), (-0.1, -0.2), (0.0, None), (0.1, 0.0)]  # (search, held-out)
    children = [evo.breed() for _ in scores]
    for child, (search, held) in zip(children, scores):
        tell(evo, child, search, held)
    hof = evo.hall_of_fame_records()
    assert [(e.search_score, e.held_out_score) for e in hof] == [
        (-0.1, -0.2), (0.1, 0.0), (-0.5, 0.4)]  # the funnel did not pass the third
    assert evo.best.score == -0.5  # the search itself follows the search score


def test_plateau_restarts_from_the_best():
    evo = started(evolution(population_size=4, plateau_evals=3), score=0.0)
    scores = [-0.2, 0.3, 0.4, 0.5]
    for score in scores:
        tell(evo, evo.breed(), score)
    assert evo.counters["restarts"] == 1
    assert [ind.score for ind in evo.population] == [-0.2] * 4
    assert {ind.fingerprint for ind in evo.population} == {evo.best.fingerprint}


def test_state_dict_is_json_and_resumes_the_same_search():
    evo = started(evolution(population_size=6, held_out_tasks=("logistic",)))
    for i in range(6):
        tell(evo, evo.breed(), 0.1 * i - 0.2, held_out=0.1 * i)
    pending = [evo.breed()]
    state = json.loads(json.dumps(evo.state_dict(pending)))
    clone = evolution(population_size=6, held_out_tasks=("logistic",))
    (back,) = restored(clone, evo, state)
    assert back.program == pending[0].program and back.seq == pending[0].seq
    assert clone.hall_of_fame_records() == evo.hall_of_fame_records()
    for a, b in itertools.islice(zip(iter(evo.breed, None), iter(clone.breed, None)), 5):
        assert (a.program, a.seq, a.parent, a.mutation) == (b.program, b.seq, b.parent,
                                                            b.mutation)


def test_seed_decides_the_children():
    def children(seed):
        evo = started(evolution(population_size=6, seed=seed))
        out = []
        for i in range(4):
            child = evo.breed()
            tell(evo, child, 0.1 * i)
            out.append(str(child.program))
        return out

    assert children(3) == children(3)
    assert children(3) != children(4)


@pytest.mark.parametrize("start", [("scratch",), ("adam", "lion")])
def test_start_programs(start):
    named = start_programs(start)
    assert [n for n, _ in named] == list(start)
    assert all(programs.check.check(p).ok for _, p in named)


def test_the_hurdle_is_a_percentile_of_recent_first_task_scores_and_is_checkpointed():
    import numpy as np

    two = ("quadratic", "rosenbrock_2d")  # the hurdle is the first; one task has no hurdle
    evo = started(evolution(population_size=4, hurdle_percentile=25.0, hurdle_window=30,
                            hurdle_audit_every=7, tasks=two))
    told = [0.0]  # the start child's first-task score
    for i in range(40):
        assert evo.hurdle() == (None if len(told) < 20 else
                                pytest.approx(np.percentile(told[-30:], 25.0)))
        child = evo.breed()
        score = round(0.37 * i % 1.0, 4)
        tell(evo, child, score, status="ok" if i % 3 else "rejected")
        told.append(score)
    assert evo.counters["rejected"] == 14 and evo.counters["failed"] == 0
    assert [s for s in range(30) if evo.audits(s)] == [6, 13, 20, 27]
    state = json.loads(json.dumps(evo.state_dict()))
    clone = evolution(population_size=4, hurdle_percentile=25.0, hurdle_window=30,
                      hurdle_audit_every=7, tasks=two)
    restored(clone, evo, state)
    assert clone.hurdle() == evo.hurdle() and list(clone.hurdle_scores) == told[-30:]
    assert evo.hurdle() is not None
    for other in (evolution(population_size=4, hurdle_percentile=None, tasks=two),  # off
                  evolution(population_size=4, hurdle_percentile=25.0)):  # one task
        other.load_state_dict(state, TOLD[evo])
        assert other.hurdle() is None


def test_islands_breed_in_turn_migrate_in_a_ring_and_reset_the_weaker_half():
    evo = started(evolution(population_size=12, islands=3, migration_every=6, migrants=1,
                            reset_every=12, start=("adam", "sgd")), score=0.5)
    assert evo.capacity == [4, 4, 4] and [len(i) for i in evo.islands] == [4, 4, 4]
    assert all(sorted(str(m.program) for m in island).count(str(ADAM)) == 2
               for island in evo.islands)  # every island gets its share of each start
    scores = iter([0.3, 0.1, 0.4, 0.2, 0.05, 0.6, 0.7, 0.8, 0.9, 0.15, 0.25, 0.35])
    for n in range(3, 13):  # the 2 starts were evaluations 1 and 2
        child = evo.breed()
        assert child.island == (n - 3) % 3  # bred for each island in turn
        before = [list(island) for island in evo.islands]
        tell(evo, child, next(scores))
        if n == 6:  # migration: each island's best replaces the worst of the next one
            arrived = [list(island) for island in evo.islands]
            for i in range(3):
                joined = before[i] + [child] if child.island == i else before[i]
                best = min(joined, key=lambda m: m.score)
                worst_next = max((before[(i + 1) % 3] + [child]) if child.island == (i + 1) % 3
                                 else before[(i + 1) % 3], key=lambda m: m.score)
                assert any(m.fingerprint == best.fingerprint and m.island == (i + 1) % 3
                           for m in arrived[(i + 1) % 3])
                assert worst_next.score > best.score
            assert evo.counters["migrations"] == 1
        if n == 12:  # reset: the weakest island restarts from the best of a stronger one
            assert evo.counters["resets"] == 1
            bests = evo.island_best()
            weakest = max(range(3), key=lambda i: bests[i])
            assert len({m.fingerprint for m in evo.islands[weakest]}) == 1
            assert all(m.island == i for i, island in enumerate(evo.islands) for m in island)
    state = json.loads(json.dumps(evo.state_dict()))
    clone = evolution(population_size=12, islands=3, migration_every=6, migrants=1,
                      reset_every=12, start=("adam", "sgd"))
    restored(clone, evo, state)
    assert [[m.to_dict() for m in i] for i in clone.islands] == \
        [[m.to_dict() for m in i] for i in evo.islands]
    for a, b in itertools.islice(zip(iter(evo.breed, None), iter(clone.breed, None)), 6):
        assert (a.program, a.island, a.seq) == (b.program, b.island, b.seq)


def test_adaptive_mutation_weights_follow_each_kinds_success_and_are_checkpointed():
    from programs.mutate import KINDS, MutationConfig

    evo = started(evolution(population_size=6, adaptive_mutation_window=12), score=0.5)
    outcomes = []
    for _ in range(20):
        child = evo.breed()
        kind = child.mutation["kind"].split("+")[0]
        parent = evo.cache[child.parent]["score"]
        score = parent - 0.1 if kind in ("op", "insert") else parent + 0.1
        tell(evo, child, score)
        outcomes.append((kind, score < parent))
    base = MutationConfig().weights
    recent = outcomes[-12:]
    for k in KINDS:
        n = sum(kind == k for kind, _ in recent)
        b = sum(kind == k and better for kind, better in recent)
        assert evo.mutation_config.weights.of(k) == pytest.approx(base.of(k) * (b + 1) / (n + 2))
    assert evo.mutation_config.weights.resample == 0.0  # a kind that is off stays off
    clone = evolution(population_size=6, adaptive_mutation_window=12)
    restored(clone, evo, json.loads(json.dumps(evo.state_dict())))
    assert clone.mutation_config == evo.mutation_config
    fixed = started(evolution(population_size=6), score=0.5)
    tell(fixed, fixed.breed(), 0.1)
    assert fixed.mutation_config == MutationConfig(max_statements=20)  # off by default


def test_a_checkpoint_does_not_copy_the_cache_and_needs_the_log_to_rebuild_it():
    evo = started(evolution(population_size=4))
    for i in range(6):
        tell(evo, evo.breed(), 0.1 * i)
    state = json.loads(json.dumps(evo.state_dict()))
    assert "cache" not in state and len(evo.cache) > 1
    with pytest.raises(ValueError, match="no cache"):
        evolution(population_size=4).load_state_dict(state)
    old = {**state, "cache": evo.cache}  # state version 3 carried a copy
    assert evolution(population_size=4).load_state_dict(old) == []
