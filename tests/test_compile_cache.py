"""discover.scoring.compile_cache: a second start loads the evaluators' executables from disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import ROOT

CODE = """
import json, jax
from discover.scoring import compile_cache
hits = []
jax.monitoring.register_event_listener(
    lambda event, **kw: hits.append(event) if event == "/jax/compilation_cache/cache_hits" else None)
path = compile_cache.enable()
if path is not None:
    from discover.scoring.evaluate import Evaluator
    Evaluator(["logistic"]).warm_up()
print(json.dumps({"path": path, "hits": len(hits)}))
"""


def run(env) -> dict:
    out = subprocess.run([sys.executable, "-c", CODE], check=False, capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_start_loads_from_the_cache(tmp_path):
    env = dict(os.environ, DISCOVER_COMPILE_CACHE=str(tmp_path / "xla"))
    first = run(env)
    assert first == {"path": str(tmp_path / "xla"), "hits": 0}
    assert os.listdir(tmp_path / "xla")  # the engine's run was written
    assert run(env)["hits"] >= 1


def test_empty_value_turns_it_off():
    env = dict(os.environ, DISCOVER_COMPILE_CACHE="")
    assert run(env) == {"path": None, "hits": 0}
    env.pop("DISCOVER_COMPILE_CACHE")
    env["XDG_CACHE_HOME"] = "/proc/no-such-place"  # cannot be created: off, not an error
    assert run(env) == {"path": None, "hits": 0}


TRACED = """
import json
from discover.scoring import compile_cache
compile_cache.enable()
import programs, tasks
from tasks import quadratic
from tasks.train import Trainer
builtin = Trainer(tasks.get("logistic"), seeds=(0, 1))
result = builtin.run(programs.BASELINES["lion"])
user = Trainer(quadratic.make(), seeds=(0,))  # same definition, but not the registry's object
user.run(programs.BASELINES["sgd"])
print(json.dumps({"exported": builtin.export_origin is not None,
                  "user": user.export_origin is not None,
                  "origin": builtin.export_origin, "losses": result.valid_losses.tolist()}))
"""


def test_the_traced_run_of_a_builtin_task_is_kept_and_gives_the_same_losses(tmp_path):
    """The export cache (programs.export_cache): a second process loads the traced run
    instead of tracing it; the losses equal a plain traced run's to the bit; a user's task is
    never exported; a damaged entry is a miss and is written again."""
    def launch(cache: str) -> subprocess.Popen:
        env = dict(os.environ, DISCOVER_COMPILE_CACHE=cache)
        return subprocess.Popen([sys.executable, "-c", TRACED], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)

    def result(process: subprocess.Popen) -> dict:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        return json.loads(out.strip().splitlines()[-1])

    def start(cache: str) -> dict:
        return result(launch(cache))

    cache = str(tmp_path / "xla")
    plain, cold = launch(""), launch(cache)  # two cores: the reference beside the first start
    reference, first = result(plain), result(cold)  # no cache: traced as always; then written
    assert not reference["exported"]
    second = start(cache)
    traced = tmp_path / "xla-traced"
    (entry,) = os.listdir(traced)
    assert first["exported"] and second["exported"] and not first["user"]
    # The second process loaded the first one's entry: it did not trace and write it again.
    assert (first["origin"], second["origin"]) == ("written", "loaded")
    assert first["losses"] == second["losses"] == reference["losses"]
    (traced / entry).write_bytes(b"not an export")
    third = start(cache)
    assert third["exported"] and third["origin"] == "written"
    assert third["losses"] == reference["losses"]
    assert (traced / entry).read_bytes() != b"not an export"


PROBED = """
import json
from discover.scoring import compile_cache
compile_cache.enable()
import programs
from programs import fingerprint
prints = {name: p.fingerprint() for name, p in sorted(programs.BASELINES.items())}
_, run = fingerprint._runner(64, 8)
print(json.dumps({"origin": getattr(run, "origin", None), "prints": prints}))
"""


def test_the_traced_probe_is_kept_and_gives_the_same_fingerprints(tmp_path):
    """The fingerprint's probe through the export cache: a process that finds it loads it
    (a driver's start, every ``discover`` command, skips seconds of tracing), and every
    baseline's fingerprint is the one a process without the cache computes."""
    def start(cache: str) -> dict:
        env = dict(os.environ, DISCOVER_COMPILE_CACHE=cache)
        done = subprocess.run([sys.executable, "-c", PROBED], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    cache = str(tmp_path / "xla")
    plain, first, second = start(""), start(cache), start(cache)
    assert plain["origin"] is None
    assert (first["origin"], second["origin"]) == ("written", "loaded")
    assert first["prints"] == second["prints"] == plain["prints"]
    assert len(set(plain["prints"].values())) == len(plain["prints"])  # they do differ
