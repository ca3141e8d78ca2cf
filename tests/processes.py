"""Test helpers for real processes: ``discover`` as a subprocess, and polling with a deadline.

Imported by the tests that kill drivers and clusters (test_cluster, test_faults); pytest puts
this directory on ``sys.path`` (its default "prepend" import mode).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DISCOVER = os.path.join(os.path.dirname(sys.executable), "discover")


class Driver:
    """``discover ARGS`` in a subprocess; ``ready`` is set once its workers are compiled.
    ``env``: the environment (default: this one, unbuffered, without RAY_ADDRESS)."""

    def __init__(self, args: list[str], env: dict | None = None):
        if env is None:
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            env.pop("RAY_ADDRESS", None)
        self.process = subprocess.Popen([DISCOVER, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        self.ready = threading.Event()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)
            if "worker(s) ready" in line:
                self.ready.set()

    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def wait_until(condition, seconds: float, what: str) -> None:
    """Poll ``condition`` until it is true; AssertionError naming ``what`` after ``seconds``."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.2)
