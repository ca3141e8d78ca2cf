"""Every ``XLA_FLAGS`` value the project sets is a list of ``--name=value`` flags.

XLA stops reading ``XLA_FLAGS`` at a token that is not a flag: with the value
``"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1
--xla_backend_optimization_level=0"`` (which the export tests' runners used) the last flag was
silently ignored, and the runners compiled at the default level for months.  So no value may
hold such a token.
"""

from __future__ import annotations

import ast
import os

from helpers import ROOT

FOLDERS = ("discover", "programs", "tasks", "scripts", "tests")


def xla_flag_values() -> list[tuple[str, int, str]]:
    """(file, line, text) of every string that is part of a value given to ``XLA_FLAGS``:
    ``XLA_FLAGS=...`` keywords, ``{"XLA_FLAGS": ...}`` entries, and calls or assignments
    whose first argument or target is the string ``"XLA_FLAGS"``."""
    found = []
    for folder in FOLDERS:
        for base, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(base, name)
                with open(path, encoding="utf-8") as f:
                    tree = ast.parse(f.read(), path)
                for value in _values(tree):
                    for node in ast.walk(value):
                        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                                and not _is_key(node)):  # os.environ.get("XLA_FLAGS", "")
                            found.append((os.path.relpath(path, ROOT), node.lineno, node.value))
    return found


def _is_key(node) -> bool:
    return isinstance(node, ast.Constant) and node.value == "XLA_FLAGS"


def _values(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "XLA_FLAGS":
            yield node.value
        elif isinstance(node, ast.Dict):
            yield from (v for k, v in zip(node.keys, node.values) if _is_key(k))
        elif isinstance(node, ast.Call) and node.args and _is_key(node.args[0]):
            yield from node.args[1:]
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Subscript) and _is_key(t.slice) for t in node.targets):
            yield node.value


def test_every_xla_flags_value_is_made_of_flags():
    values = xla_flag_values()
    # the actors', the export runners' and the scripts' values were all found
    files = {path for path, _, _ in values}
    assert {"discover/search/pool.py", "tests/export/cases.py", "scripts/bench_eval.py"} <= files
    bad = [(path, line, token) for path, line, text in values for token in text.split()
           if not token.startswith("--")]
    assert not bad, f"not an XLA flag (XLA ignores what follows it): {bad}"
