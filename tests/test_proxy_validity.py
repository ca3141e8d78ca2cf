"""scripts/proxy_validity.py, the script behind docs/proxy-validity.md: its main path, run on
the committed panel's cache, must give the committed table again without training anything
(the panel, the mutants' screening, the medians, the Spearman correlations with their bootstrap
intervals, the task subsets and the table are all recomputed; only the validation losses come
from the cache).  It failed when it was written: the panel took every baseline of the library,
which had grown by two since the table was made, so the rerun drew other mutants and trained
(the panel's baselines are now pinned, ``PANEL_BASELINES``)."""

import json
import os
import shutil
import subprocess
import sys

from tests.helpers import ROOT

COMMITTED = os.path.join(ROOT, "results", "proxy")


def files_under(folder) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), folder)
            for d, _, names in os.walk(folder) for f in names}


def test_the_committed_table_is_rebuilt_from_its_cache_without_training(tmp_path):
    out = tmp_path / "proxy"
    shutil.copytree(os.path.join(COMMITTED, "cache"), out / "cache")
    cached = files_under(out)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "proxy_validity.py"),
                           "--out", str(out), "--jobs", "1"], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # nothing trained: no validation loss was added to the cache
    assert files_under(out) - cached == {"table.md", "results.json"}
    with open(os.path.join(COMMITTED, "table.md"), encoding="utf-8") as f:
        committed = f.read().splitlines()
    rebuilt = (out / "table.md").read_text().splitlines()
    # the same table under another command line (its --out and --jobs)
    assert rebuilt[0] == committed[0] and rebuilt[3:] == committed[3:]
    with open(os.path.join(COMMITTED, "results.json"), encoding="utf-8") as f:
        expected = json.load(f)
    got = json.loads((out / "results.json").read_text())
    assert got["correlations"] == expected["correlations"]
    assert got["selection"] == expected["selection"]
    assert [p["name"] for p in got["programs"]] == [p["name"] for p in expected["programs"]]
