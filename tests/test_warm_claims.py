"""Workers warming the same tasks take turns (``discover/search/warm_claims.py``): real
processes sharing a claims directory; an item another process is compiling is put off and
warmed after it, never beside it; abandoned and failed claims do not block anyone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import ROOT

from discover.search import warm_claims

WORKER = textwrap.dedent("""
    import os, sys, time
    from discover.search import warm_claims

    directory, log, who, go, *items = sys.argv[1:]

    def note(text):
        with open(log, "a") as f:
            f.write(f"{who} {text}\\n")

    def warm(item):
        note(f"start {item}")
        if go != "-":  # hold the item until the test says go (bounded)
            deadline = time.monotonic() + 120
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.05)
        note(f"end {item}")

    warm_claims.warm_in_turn(items, key=str, warm=warm, directory=directory, poll_seconds=0.05)
""")


def start(directory, log, who, go, *items) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-c", WORKER, str(directory), str(log), who,
                             str(go), *items], env=env)


def wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def lines(log) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_an_item_another_process_is_warming_is_put_off_and_warmed_after_it(tmp_path):
    log, go, claims = tmp_path / "log", tmp_path / "go", tmp_path / "claims"
    first = start(claims, log, "A", go, "x")
    try:
        wait_for(lambda: "A start x" in lines(log))
        second = start(claims, log, "B", "-", "x", "y")
        try:
            # B skips x (A holds it) and warms y meanwhile; it does not start x while A runs
            wait_for(lambda: "B end y" in lines(log))
            assert "B start x" not in lines(log) and "A end x" not in lines(log)
            go.write_text("")
            assert second.wait(120) == 0 and first.wait(120) == 0
        finally:
            second.kill()
    finally:
        first.kill()
    order = lines(log)
    assert order.index("A end x") < order.index("B start x")
    assert order[:3] == ["A start x", "B start y", "B end y"]
    # x is marked done and no claim is left: a later start loads without waiting
    path = warm_claims.claim_path(str(claims), "x")
    assert os.path.exists(path + ".done") and not os.path.exists(path)
    assert warm_claims.try_claim(path) == warm_claims.DONE


def test_a_claim_of_a_process_that_is_gone_does_not_block(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(60)
    path = warm_claims.claim_path(str(tmp_path), "x")
    with open(path, "w") as f:
        json.dump({"host": socket.gethostname(), "pid": gone.pid, "time": time.time()}, f)
    warmed = []
    warm_claims.warm_in_turn(["x"], key=str, warm=warmed.append, directory=str(tmp_path),
                             stale_seconds=600)
    assert warmed == ["x"] and os.path.exists(path + ".done")
    # a live claimer (this process) blocks; the same claim past stale_seconds does not
    y = warm_claims.claim_path(str(tmp_path), "y")
    with open(y, "w") as f:
        json.dump({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time() - 60}, f)
    assert warm_claims.try_claim(y, stale_seconds=600) == warm_claims.TAKEN
    assert warm_claims.try_claim(y, stale_seconds=30) == warm_claims.MINE


def test_a_warm_that_raises_releases_its_claim(tmp_path):
    def broken(item):
        raise RuntimeError("compile failed")

    with pytest.raises(RuntimeError, match="compile failed"):
        warm_claims.warm_in_turn(["x"], key=str, warm=broken, directory=str(tmp_path))
    path = warm_claims.claim_path(str(tmp_path), "x")
    assert not os.path.exists(path) and not os.path.exists(path + ".done")
    assert warm_claims.try_claim(path) == warm_claims.MINE  # the next process compiles it


def test_without_a_directory_every_item_is_warmed_in_order(tmp_path):
    warmed = []
    warm_claims.warm_in_turn(["a", "b", "c"], key=str, warm=warmed.append, directory=None)
    assert warmed == ["a", "b", "c"]
    assert os.listdir(tmp_path) == []
