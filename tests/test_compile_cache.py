"""discover.compile_cache: a second start loads the evaluators' executables from disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import ROOT

CODE = """
import json, jax
from discover import compile_cache
hits = []
jax.monitoring.register_event_listener(
    lambda event, **kw: hits.append(event) if event == "/jax/compilation_cache/cache_hits" else None)
path = compile_cache.enable()
if path is not None:
    from discover.evaluate import Evaluator
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
