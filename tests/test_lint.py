"""The codebase passes ``ruff check`` with the project's rules (pyproject.toml)."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import ROOT


def test_ruff_check_passes():
    ruff = os.path.join(os.path.dirname(sys.executable), "ruff")
    out = subprocess.run([ruff, "check", "--output-format", "concise", "programs", "discover",
                          "tasks", "tests", "scripts"], check=False, capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
