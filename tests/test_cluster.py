"""A campaign on an existing Ray cluster, really: ``ray start --head`` in its own process
group, ``discover run --address HOST:PORT`` in a subprocess, the driver SIGKILLed in the
middle of the campaign, its actors checked gone, ``discover resume`` to the end.

The cluster is this module's alone and is stopped by signalling its process group: never
``ray stop``, which would stop every Ray instance of the machine (the test session's own, other
users').  It keeps its files in a temporary directory of its own (``--temp-dir``), so no
``ray.init()`` elsewhere on the machine finds it through ``/tmp/ray/ray_current_cluster``, and
uses token authentication (Ray's default for ``ray start``) with a token of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from helpers import READY, ROOT, Driver, wait_until

from discover import rundir

BIN = os.path.dirname(sys.executable)
CONFIG = {"tasks": ["quadratic"], "held_out_tasks": ["rosenbrock_2d"],
          "held_out_threshold": 0.5, "start": ["adam", "sgd", "lion", "momentum", "rmsprop"],
          "population_size": 30, "mutation_weights": {"constant": 4.0}, "lr_grid": 2,
          "checkpoint_every": 5, "progress_seconds": 0.5, "seed": 1}


def processes() -> dict[int, tuple[int, int, str]]:
    """Live processes (not zombies), from /proc: pid -> (parent pid, process group, command
    line)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if fields[0] != "Z":
            out[int(name)] = (int(fields[1]), int(fields[2]), cmdline)
    return out


def descendants(roots: set[int], table: dict | None = None) -> set[int]:
    """Pids of every live process below ``roots``."""
    table = processes() if table is None else table
    found, frontier = set(), set(roots)
    while frontier:
        frontier = {p for p, (parent, _, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


class Cluster:
    """``ray start --head --block`` in a new session (its own process group)."""

    def __init__(self, root: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        # Short: Ray's socket paths under it must stay below 108 characters.
        self.temp_dir = tempfile.mkdtemp(prefix="rc", dir="/tmp")
        self.env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
                        PYTHONUNBUFFERED="1")
        self.env.pop("RAY_ADDRESS", None)
        self.log_path = os.path.join(root, "ray-start.log")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [os.path.join(BIN, "ray"), "start", "--head", f"--port={self.port}",
                 "--num-cpus=2", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                 f"--temp-dir={self.temp_dir}", "--disable-usage-stats", "--block"],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
                start_new_session=True)
        self.pgid = self.process.pid
        end = time.monotonic() + 90
        while "Ray runtime started" not in self.log():
            if self.process.poll() is not None or time.monotonic() > end:
                self.stop()
                raise AssertionError(f"ray start failed:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def processes(self, table: dict | None = None) -> set[int]:
        """Every live process of the cluster: its process group and what they started (Ray's
        worker processes make process groups of their own)."""
        table = processes() if table is None else table
        group = {pid for pid, (_, pgid, _) in table.items() if pgid == self.pgid}
        return group | descendants(group, table)

    def actors(self) -> list[int]:
        """Pids of the cluster's evaluation actors."""
        table = processes()
        return [pid for pid in self.processes(table)
                if table[pid][2].startswith("ray::EvaluationWorker")]

    def stop(self) -> set[int]:
        """This cluster only: SIGTERM to its process group, then SIGKILL to each of its
        processes left; returns the pids it had."""
        had = self.processes()
        try:
            os.killpg(self.pgid, signal.SIGTERM)
            self.process.wait(timeout=3)  # Ray's shutdown is slow: what is left gets SIGKILL
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        for pid in had | self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.wait(timeout=15)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return had


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(str(tmp_path_factory.mktemp("cluster")))
    yield cluster
    had = cluster.stop()
    wait_until(lambda: not had & set(processes()), 15, "the cluster's processes to exit")


def test_campaign_on_an_existing_cluster_survives_its_driver_being_killed(cluster, tmp_path):
    config, run_dir = tmp_path / "config.json", tmp_path / "run"
    config.write_text(json.dumps(CONFIG))
    # --address wins over RAY_ADDRESS (here: nothing listens there).
    env = dict(cluster.env, RAY_ADDRESS="127.0.0.1:9")
    driver = Driver(["run", "--address", cluster.address, "--config", str(config), "--out",
                     str(run_dir), "--max-evals", "100000", "--time-limit", "300"], env)
    try:
        assert driver.ready.wait(300), driver.output()
        ready = next(line for line in driver.lines if READY.match(line))
        assert "2 worker(s) ready on the Ray cluster at " in ready, ready
        assert f":{cluster.port} (1 node, 2 CPUs)" in ready, ready
        # Joined, did not start an instance of its own: no Ray daemon under the driver, and
        # the two actors are processes of the cluster.
        table = processes()
        below = [table[pid][2] for pid in descendants({driver.process.pid}, table)]
        assert not [c for c in below if "raylet" in c or "gcs_server" in c], below
        actors = cluster.actors()
        assert len(actors) == 2

        wait_until(lambda: len(rundir.read_log(str(run_dir / rundir.LOG_FILE))) >= 20, 120,
                   "20 evaluations")
    finally:
        driver.process.send_signal(signal.SIGKILL)  # the driver dies mid-campaign
        driver.process.wait(timeout=30)
    # The checkpoint is whole and the log readable.
    for name in ("config.json", "state.json", "hall_of_fame.json"):
        json.loads((run_dir / name).read_text())
    killed_at = len(rundir.read_log(str(run_dir / rundir.LOG_FILE)))

    # Ray kills the actors of a dead driver: no orphan keeps the cluster's CPUs.
    wait_until(lambda: not set(actors) & set(cluster.actors()), 60, "the actors to die")
    probe = subprocess.run(
        [sys.executable, "-c", ("import json, ray; from discover.search.cluster import init_ray; "
                                "init_ray(None); print(json.dumps(["
                                "ray.get_runtime_context().gcs_address, "
                                "ray.available_resources().get('CPU', 0)]))")],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=120,
        env=dict(cluster.env, RAY_ADDRESS=cluster.address))  # RAY_ADDRESS joins too
    assert probe.returncode == 0, probe.stderr
    address, cpus = json.loads(probe.stdout.strip().splitlines()[-1])
    assert address.endswith(f":{cluster.port}") and cpus == 2.0

    # Resume (config.json keeps the address) to the end of a budget.
    total = killed_at + 15
    resume = subprocess.run([os.path.join(BIN, "discover"), "resume", str(run_dir),
                             "--max-evals", str(total), "--quiet"],
                            check=False, capture_output=True, text=True, cwd=ROOT,
                            env=cluster.env, timeout=400)
    assert resume.returncode == 0, resume.stderr
    assert f"evaluations: {total} (" in resume.stdout and "stopped by: max_evals" in \
        resume.stdout

    log = rundir.read_log(str(run_dir / rundir.LOG_FILE))
    assert (run_dir / rundir.LOG_FILE).read_bytes().endswith(b"\n")
    assert sorted(r["seq"] for r in log) == list(range(total))  # no gap, no duplicate
    state = json.loads((run_dir / "state.json").read_text())
    assert state["log_count"] == total and state["evolution"]["pending"] == []
    assert state["invocations"] == 1  # the killed driver never finished its invocation
    assert {r["worker"] for r in log} <= {"actor-0", "actor-1"}
    assert not [r for r in log if r["status"] != "ok" and "Actor" in r.get("error", "")]
    hof = json.loads((run_dir / "hall_of_fame.json").read_text())
    assert hof and hof[0]["held_out_score"] is not None  # the funnel ran on the cluster
    assert (run_dir / "best" / "program.opt").exists()
    wait_until(lambda: not cluster.actors(), 60, "the resumed campaign's actors to go")
