"""Faults injected for real into campaigns: an evaluation actor SIGKILLed mid-campaign, actors
that keep dying, a runaway evaluation past ``eval_timeout``, the memory of the workers and
their cap, and a driver SIGKILLed at random moments (its checkpoints included) then resumed.
No mocks: real processes, real signals, real Ray.

The worker faults run on the session's local Ray instance (2 CPUs) with one pool of 2 actors
for the module, searching on one test task (one compile per actor): ``runaway_task``, a
4-parameter quadratic loaded by the actors as ``tests.test_faults:runaway_task``, whose loss
spins for minutes once a parameter is exactly 1024, which only the program ``RUNAWAY`` does (it
moves every parameter by exactly 1024 in its first step): the timeout is the candidate's
fault, and no mutant bred here comes near it.  The driver faults run ``discover`` in
subprocesses with the serial worker (no Ray: nothing of theirs can outlive them).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

try:
    from helpers import DISCOVER, ROOT, Driver, wait_until  # tests/ on sys.path
except ImportError:  # the actors import this module as tests.test_faults (runaway_task)
    from tests.helpers import DISCOVER, ROOT, Driver, wait_until

import programs
from discover import rundir
from discover.campaign import Campaign
from discover.config import CampaignConfig
from discover.errors import WorkersLost
from discover.rundir import EVENTS_FILE
from discover.search.individual import Individual
from discover.search.pool import Job, WorkerSpec
from discover.search.ray_pool import RayPool
from tasks.base import WORST_SCORE

if ROOT not in sys.path:  # the driver resolves "tests.test_faults:..." as the actors do
    sys.path.insert(0, ROOT)

RUNAWAY_TASK = "tests.test_faults:runaway_task"
RUNAWAY = """\
def runaway(g, lr):
    u = g * 0.0
    u = u - 1024.0
    return u
"""
MEMORY_MB = 2048
RUNAWAY_TIMEOUT = 10.0
"""The runaway test's eval_timeout; the other tests run none: on a loaded machine (two test
processes on two cores) an ordinary evaluation has taken over 5 s, and when every actor timed
out at once the campaign waited for their replacements, not what those tests measure."""
CONFIG = CampaignConfig(tasks=(RUNAWAY_TASK,), held_out_tasks=(),
                        start=("adam", "sgd", "lion", "momentum", "rmsprop"),
                        mutation_weights={"constant": 4.0},  # fewer children seen before
                        # a backstop only: each test stops its campaign by a budget, a
                        # request or a fault, also on a machine loaded enough to be slow
                        population_size=50, lr_grid=2, max_statements=20, time_limit=900.0,
                        eval_timeout=None, worker_memory_mb=MEMORY_MB, checkpoint_every=4,
                        progress_seconds=0, seed=5)


def runaway_task():
    """A task whose loss spins: a ``while_loop`` of 1.5e5 steps (an evaluation takes some 0.2 s:
    the campaigns here breed a hundred children or so, not thousands, and their populations
    stay diverse), of 2e9 steps (minutes) when a parameter equals 1024."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from tasks import Task

    def loss(params, batch):
        w = params["w"]
        runaway = jnp.any(jax.lax.stop_gradient(w) == 1024.0)
        n = jnp.where(runaway, 2_000_000_000, 150_000)
        _, x = jax.lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 0.5 + 1.0),
                                  (0, jnp.float32(0.0)))
        return jnp.mean((w - 1.0) ** 2) + jnp.minimum(x, 0.0)  # + 0, which XLA cannot see

    return Task(name="runaway", family="test", init=lambda key: {"w": jnp.zeros(4, jnp.float32)},
                loss=loss, train_batches=lambda seed: np.zeros((100, 0), np.float32),
                valid_batch=lambda: np.zeros((0,), np.float32), steps=100, batch_size=1,
                default_lr=0.1, description="test task: spins on one program")


@pytest.fixture(scope="module")
def pool(ray_session):
    pool = RayPool(WorkerSpec.from_config(CONFIG), 2, eval_timeout=None,
                   memory_mb=MEMORY_MB)
    yield pool
    pool.close()


def log_of(run_dir) -> list[dict]:
    return rundir.read_log(os.path.join(run_dir, rundir.LOG_FILE))


def events_of(run_dir) -> list[dict]:
    path = os.path.join(run_dir, EVENTS_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:  # a zombie is dead too
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def check_complete_log(run_dir) -> list[dict]:
    """Every child bred is logged exactly once, seq 0..n-1 with no gap; nothing pending."""
    log = log_of(run_dir)
    with open(os.path.join(run_dir, rundir.LOG_FILE), "rb") as f:
        assert f.read().endswith(b"\n"), "a torn last line"
    assert sorted(r["seq"] for r in log) == list(range(len(log)))
    state = rundir.read_json(os.path.join(run_dir, rundir.STATE_FILE))
    assert state["log_count"] == len(log) and state["evolution"]["pending"] == []
    assert state["evolution"]["next_seq"] == len(log)
    return log


REPLACEMENT_SECONDS = 300
"""How long a wait for workers may take before the test gives up: a bound on a wait, never an
assertion of speed (a loaded machine takes minutes to start an actor and to evaluate)."""
"""How long a test waits for a replacement actor to compile: less than the 105 s this whole
file takes on an idle 2-core machine; 120 s ran out with two other processes training beside
the suite."""


def test_a_worker_over_its_memory_cap_fails_cleanly(ray_session):
    """Compiling needs more than 256 MB: the actor dies at start, the driver reports it."""
    with pytest.raises(WorkersLost, match="failed to start.*memory cap 256 MB per worker"):
        RayPool(WorkerSpec(("quadratic",)), 1, memory_mb=256)
    # The dead actor gave its CPU back: the session has every CPU free again.
    total = ray_session.cluster_resources()["CPU"]
    wait_until(lambda: ray_session.available_resources().get("CPU", 0) == total, 30,
               "the failed actor's CPU to be released")


def test_a_killed_worker_is_replaced_and_its_evaluation_requeued(tmp_path, pool):
    run_dir = tmp_path / "run"
    campaign = Campaign.create(CONFIG.replace(checkpoint_every=25), str(run_dir))
    victim, survivor = pool.workers[1], pool.workers[0]
    seen: dict = {}

    def inject():
        try:
            wait_until(lambda: campaign.log.count >= 6, REPLACEMENT_SECONDS, "6 evaluations")
            seen["killed"] = time.time()
            os.kill(victim.pid, signal.SIGKILL)  # in the middle of an evaluation, or its next
            wait_until(lambda: any(e["event"] == "worker_ready" for e in events_of(run_dir)),
                       REPLACEMENT_SECONDS, "the replacement actor")
            seen["ready"] = time.time()
            wait_until(lambda: sum(r["worker"] == pool.workers[1].name
                                   for r in log_of(run_dir)) >= 3, REPLACEMENT_SECONDS,
                       "3 evaluations by the replacement")
        except AssertionError as err:
            seen["error"] = str(err)
        finally:
            campaign.request_stop()

    thread = threading.Thread(target=inject)
    thread.start()
    try:
        summary = campaign.run(pool, progress=False)
    finally:
        thread.join()
        campaign.close()
    assert "error" not in seen, seen["error"]
    assert summary.stopped == "requested"
    assert (summary.workers_lost, summary.requeued, summary.timeouts) == (1, 1, 0)
    assert not alive(victim.pid)

    lost, ready = events_of(run_dir)  # nothing else happened
    replacement = pool.workers[1]
    assert lost["event"] == "worker_lost" and lost["worker"] == victim.name
    assert lost["pid"] == victim.pid and lost["requeued"] is True
    assert lost["replacement"] == replacement.name != victim.name
    assert "Actor" in lost["error"]  # ActorDiedError: the process died
    assert ready["event"] == "worker_ready" and ready["worker"] == replacement.name
    assert ready["pid"] == replacement.pid != victim.pid

    log = check_complete_log(run_dir)  # no candidate lost, none evaluated twice
    requeued = next(r for r in log if r["seq"] == lost["seq"])
    assert requeued["worker"] in (survivor.name, replacement.name)
    # No candidate was scored for the kill: no error of Ray's in any record.
    assert not [r for r in log if "Actor" in r.get("error", "") or "Ray" in r.get("error", "")]
    # The survivor went on after the kill (how many of its results fall before the
    # replacement was ready depends on how fast that one started: not asserted); the
    # replacement took its share.
    assert any(r["worker"] == survivor.name and r["time"] > seen["killed"] for r in log)
    assert sum(r["worker"] == replacement.name for r in log) >= 3
    assert {r["worker"] for r in log} == {survivor.name, victim.name, replacement.name}


def test_a_runaway_evaluation_is_cancelled_and_scored_as_a_timeout(tmp_path, pool):
    run_dir = tmp_path / "run"
    campaign = Campaign.create(CONFIG.replace(max_evals=14, eval_timeout=RUNAWAY_TIMEOUT),
                               str(run_dir))
    runaway = programs.parse(RUNAWAY)
    child = Individual(runaway, runaway.fingerprint(), seq=campaign.evolution.next_seq,
                       mutation={"kind": "start", "detail": "runaway"})
    campaign.evolution.adopt(child)
    campaign.pending.append(child)
    campaign.checkpoint()
    pids = {w.name: w.pid for w in pool.workers}
    try:
        summary = campaign.run(pool, progress=False)
    finally:
        campaign.close()
        pool.configure(None, None)  # the module's other tests run without a timeout
    assert summary.stopped == "max_evals" and summary.evaluations == 14
    assert (summary.workers_lost, summary.requeued, summary.timeouts) == (0, 0, 1)

    log = check_complete_log(run_dir)
    record = next(r for r in log if r["seq"] == child.seq)
    assert record["status"] == "timeout" and record["score"] == WORST_SCORE
    assert "eval_timeout" in record["error"]
    assert record["seconds"] >= RUNAWAY_TIMEOUT  # cancelled no earlier than the limit
    assert campaign.evolution.cache[child.fingerprint]["score"] == WORST_SCORE
    assert [r["seq"] for r in log if r["status"] == "timeout"] == [child.seq]
    # The others were scored, the baselines as usual (adam is 0 by definition).
    adam = next(r for r in log if r["mutation"] == {"kind": "start", "detail": "adam"})
    assert adam["status"] == "ok" and adam["score"] == pytest.approx(0.0, abs=0.05)

    [event] = events_of(run_dir)
    assert event["event"] == "timeout" and event["seq"] == child.seq
    assert event["worker"] == record["worker"] and event["pid"] == pids[record["worker"]]
    # the runaway's process was killed, not left spinning (ray.kill returns before it exits)
    wait_until(lambda: not alive(event["pid"]), 30, "the runaway's process to exit")
    # Its replacement compiles and evaluates.
    replacement = next(w for w in pool.workers if w.name == event["replacement"])
    wait_until(lambda: (pool.wait(timeout=0.5), replacement.ready_ref is None)[1],
               REPLACEMENT_SECONDS, "the replacement actor")
    assert [e["event"] for e in pool.take_events()] == ["worker_ready"]
    for seq, name in enumerate(("sgd", "adam")):  # one job for each actor
        pool.submit(Job(seq, str(programs.BASELINES[name])))
    results = []
    for _ in range(10):  # bounded: ten minutes at most, then the assertions below say why
        results += [result for _, result in pool.wait(timeout=60)]
        if len(results) >= 2:
            break
    assert len(results) == 2, f"only {len(results)} of 2 jobs returned in 10 minutes"
    assert {r.worker for r in results} == {w.name for w in pool.workers}
    assert replacement.name in {r.worker for r in results}
    assert all(r.search.status == "ok" for r in results)


def test_memory_of_an_evaluation_does_not_depend_on_the_candidate(pool):
    """The argument of discover/search/pool.py, measured: programs are data for a compiled
    interpreter of static shapes, so evaluating long, many-slot, diverging or NaN-making
    programs compiles nothing new in an actor and leaves its peak memory where the first
    evaluations put it; and each actor runs under its memory cap."""
    import ray

    from programs import mutate

    rng = __import__("numpy").random.default_rng(0)
    config = mutate.MutationConfig(max_statements=CONFIG.max_statements)
    texts = [str(p) for p in programs.BASELINES.values()]
    program = programs.BASELINES["adam"]
    while len(texts) < 40:  # a random walk of mutants: longer, shorter, odd ones
        mutation = mutate.mutate(program, rng=rng, config=config)
        if mutation.program is not None and len(mutation.program.slots) <= CONFIG.max_slots:
            program = mutation.program
            texts.append(str(program))
    assert max(len(programs.parse(t).body) for t in texts) >= CONFIG.max_statements - 3

    def run(jobs):
        for seq, text in enumerate(jobs):
            while pool.idle() == 0:
                pool.wait(timeout=30)
            pool.submit(Job(seq, text))
        while pool.busy():
            pool.wait(timeout=30)

    def state():
        return ray.get([w.handle.memory.remote() for w in pool.workers]), ray.get(
            [w.handle.compilations.remote() for w in pool.workers])

    run(texts[:10])
    before, compiled_before = state()
    run(texts[10:])
    after, compiled_after = state()
    assert pool.take_events() == []
    # exact: the 30 later programs, whatever their length, slots or values, made no actor
    # build a single new executable (programs are data)
    assert compiled_after == compiled_before and min(compiled_before) > 0
    for worker, b, a in zip(pool.workers, before, after):
        # and their memory stayed where the first ten put it: a bound with room for the
        # allocator's own growth, far below an executable or a model kept per program
        assert a["peak_rss"] - b["peak_rss"] < 64, (worker.name, b, a)
        assert a["data_limit"] == MEMORY_MB
        with open(f"/proc/{worker.pid}/limits", encoding="ascii") as f:
            line = next(line for line in f if line.startswith("Max data size"))
        assert int(line.split()[3]) == MEMORY_MB << 20  # the kernel enforces it


def test_workers_that_keep_dying_stop_the_campaign_with_its_jobs_saved(tmp_path, pool):
    """Both actors SIGKILLed, then each replacement killed while it compiles: after
    max(3, 2 x 2) = 4 losses in a row the campaign stops, one line, nothing scored for it."""
    import ray

    run_dir = tmp_path / "run"
    campaign = Campaign.create(CONFIG, str(run_dir))
    done = threading.Event()

    def inject():
        wait_until(lambda: campaign.log.count >= 4, REPLACEMENT_SECONDS, "4 evaluations")
        first = list(pool.workers)
        for worker in first:
            os.kill(worker.pid, signal.SIGKILL)
        killed = {w.name for w in first}
        while not done.is_set():  # the cluster keeps dying: so do the replacements
            for worker in list(pool.workers):
                if worker.name not in killed:
                    killed.add(worker.name)
                    ray.kill(worker.handle)
            time.sleep(0.1)

    thread = threading.Thread(target=inject, daemon=True)
    thread.start()
    try:
        with pytest.raises(WorkersLost) as stopped:
            campaign.run(pool, progress=False)
    finally:
        done.set()
        campaign.close()
    message = str(stopped.value)
    assert "\n" not in message and "4 workers lost in a row" in message
    assert f"discover resume {run_dir}" in message

    events = events_of(run_dir)
    assert [e["event"] for e in events] == ["worker_lost"] * 4 + ["stopped"]
    lost = sorted(e["seq"] for e in events if "seq" in e)
    # The jobs running when the first actors died: two, or one when an actor was between
    # jobs at that moment (a loaded machine); the replacements died compiling, with none.
    assert 1 <= len(lost) <= 2 and len(set(lost)) == len(lost)
    state = rundir.read_json(os.path.join(run_dir, rundir.STATE_FILE))
    pending = sorted(c["seq"] for c in state["evolution"]["pending"])
    logged = [r["seq"] for r in log_of(run_dir)]
    assert set(lost) <= set(pending) and not set(lost) & set(logged)  # saved, not scored
    assert sorted(logged + pending) == list(range(state["evolution"]["next_seq"]))


# -- the driver dies -----------------------------------------------------------------------
DRIVER_CONFIG = {"tasks": ["quadratic", "rosenbrock_2d"], "held_out_tasks": [],
                 "population_size": 50, "start": list(CONFIG.start),
                 "mutation_weights": {**CONFIG.mutation_weights, "resample": 1.0},
                 "lr_grid": 2, "checkpoint_every": 1, "progress_seconds": 0.2,
                 "time_limit": 120.0, "seed": 3,
                 # the search-power features are in the checkpoint too: hurdles (with their
                 # recent scores), audits, mutate-until-changed
                 "hurdle_percentile": 50.0, "hurdle_window": 6, "hurdle_audit_every": 5,
                 "mutate_until_changed": True, "islands": 2, "migration_every": 7,
                 "reset_every": 15, "adaptive_mutation_window": 10}


def test_driver_killed_at_random_moments_then_resumed(tmp_path):
    """SIGKILL of ``discover run`` / ``resume`` during start-up and during the search (a
    checkpoint after every evaluation: many kills land in a write); each time the directory is
    absent or resumable, its JSON whole; at the end no seq is missing or repeated."""
    (tmp_path / "config.json").write_text(json.dumps(DRIVER_CONFIG))
    run_dir = tmp_path / "run"
    rng = random.Random(20240607)
    moments = [("start-up", rng.uniform(0.3, 3.0))] + [("search", rng.uniform(0.0, 1.0))
                                                       for _ in range(2)]
    seen = []
    for phase, delay in moments:
        if (run_dir / "state.json").exists():
            driver = Driver(["resume", str(run_dir)])
        else:
            driver = Driver(["run", "--config", str(tmp_path / "config.json"), "--out",
                             str(run_dir), "--workers", "0", "--max-evals", "100000"])
        if phase == "search":  # a few evaluations into the search, then at random
            assert driver.ready.wait(120), "".join(driver.lines)
            wait_until(lambda: len(log_of(run_dir)) >= (seen[-1] if seen else 0) + 5, 60,
                       "5 more evaluations")
        time.sleep(delay)
        assert driver.process.poll() is None, "".join(driver.lines)
        driver.kill()
        # Whole or absent: never a half-made run directory.
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".new")] or \
            not run_dir.exists()
        if run_dir.exists():
            for name in ("config.json", "state.json", "hall_of_fame.json"):
                json.loads((run_dir / name).read_text())  # parses: never half-written
            state = json.loads((run_dir / "state.json").read_text())
            log = log_of(run_dir)  # a torn last line is dropped
            seqs = [r["seq"] for r in log]
            assert len(set(seqs)) == len(seqs) and state["log_count"] <= len(log)
            pending = [c["seq"] for c in state["evolution"]["pending"]]
            # No gap: each seq below the checkpoint's next_seq is logged or saved as pending.
            assert set(range(state["evolution"]["next_seq"])) <= set(seqs) | set(pending)
            assert set(seqs) - set(range(state["evolution"]["next_seq"])) == \
                set(range(state["evolution"]["next_seq"], max(seqs, default=-1) + 1))
            seen.append(len(log))
    assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] > seen[0]

    done = len(log_of(run_dir))
    final = subprocess.run([DISCOVER, "resume", str(run_dir), "--max-evals", str(done + 10),
                            "--quiet"], check=False, capture_output=True, text=True, cwd=ROOT,
                           timeout=300)
    assert final.returncode == 0, final.stderr
    log = check_complete_log(run_dir)
    assert len(log) == done + 10
    # the features in the checkpoint were at work: hurdles met, children stopped at them
    assert any(r.get("hurdle") for r in log) and any(r["status"] == "rejected" for r in log)
    assert not [p for p in os.listdir(run_dir) if p.endswith(".tmp")]
    # Killed three times and resumed = one uninterrupted campaign (serial, the same seed):
    # the same children, in the same order, with the same scores (islands, migration,
    # resets, hurdles and adaptive weights all in the checkpoint; a child logged after the
    # last checkpoint is bred again on resume, so its draws are drawn again).
    straight = tmp_path / "straight"
    uninterrupted = subprocess.run(
        [DISCOVER, "run", "--config", str(tmp_path / "config.json"), "--out", str(straight),
         "--workers", "0", "--max-evals", str(done + 10), "--quiet"],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    same = ("seq", "program", "status", "score", "mutation", "island")
    ordered = lambda records: sorted(tuple(r.get(k) for k in same) for r in records)
    assert ordered(log) == ordered(check_complete_log(straight))
