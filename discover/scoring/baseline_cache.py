"""A disk cache of tuned adam, the normaliser every evaluator needs: a worker that starts again
(a resume, a replaced actor, the next campaign on the same tasks) reads adam's wide tuning
instead of training it (about two thirds of a cold start on 2 cores).

Contract:

* :func:`load` / :func:`store` take a :func:`key`: everything the tuning depends on, the task's
  size and its untrained validation losses per seed (which change with its data, model and
  initialisation), the seeds, the window width, adam's program, the JAX version and a digest of
  the source files of the engine and of the task's module.  A file is used only when its
  stored key equals the key asked for, so a stale entry is never read; an unreadable file is
  a miss (and is replaced by the next :func:`store`).
* The directory is ``$DISCOVER_BASELINE_CACHE`` (default
  ``$XDG_CACHE_HOME/optimizer-discovery/baselines``, else ``~/.cache/...``); an empty value,
  or a directory that cannot be created, turns the cache off (every call misses, nothing is
  written).  Files are written atomically, one per key, so workers sharing the directory
  never see a half-written entry.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
from typing import Any

from discover.scoring.cache_dirs import cache_directory
from discover.scoring.tuning import Tuning

ENV = "DISCOVER_BASELINE_CACHE"
VERSION = 1
_ENGINE_SOURCES = ("programs/vm.py", "programs/ops.py", "tasks/train.py", "tasks/base.py",
                   "tasks/layers.py", "discover/scoring/tuning.py")


def directory() -> str | None:
    """The cache directory, created; None when the cache is off."""
    return cache_directory(ENV, "baselines")


@functools.cache
def _digest(paths: tuple[str, ...]) -> str:
    sha = hashlib.sha256()
    for path in paths:
        try:
            with open(path, "rb") as f:
                sha.update(f.read())
        except OSError:
            sha.update(f"missing:{path}".encode())
    return sha.hexdigest()


def key(task, seeds, width: int, program_text: str, initial_losses,
        schedule: str = "constant") -> dict[str, Any]:
    """What a tuned baseline depends on (see the module docstring), as JSON-safe data."""
    import jax

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sources = [os.path.join(root, p) for p in _ENGINE_SOURCES]
    try:
        sources.append(inspect.getsourcefile(task.loss) or "")
    except TypeError:  # a builtin or a callable without a source file
        pass
    extra = {} if schedule == "constant" else {"schedule": schedule}
    return {**extra, "version": VERSION, "task": task.name, "steps": task.steps,
            "batch_size": task.batch_size, "default_lr": task.default_lr,
            "initial_losses": [float(x).hex() for x in initial_losses],
            "seeds": [int(s) for s in seeds], "width": int(width), "program": program_text,
            "jax": jax.__version__, "sources": _digest(tuple(sources))}


def _path(folder: str, key_data: dict) -> str:
    text = json.dumps(key_data, sort_keys=True)
    return os.path.join(folder, hashlib.sha256(text.encode()).hexdigest()[:32] + ".json")


def load(key_data: dict) -> Tuning | None:
    """The stored tuning for ``key_data``, or None (off, missing, unreadable or stale)."""
    folder = directory()
    if folder is None:
        return None
    try:
        with open(_path(folder, key_data), encoding="utf-8") as f:
            stored = json.load(f)
        if stored.get("key") != key_data:
            return None
        return Tuning.from_json(stored["tuning"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(key_data: dict, tuning: Tuning) -> None:
    """Write ``tuning`` under ``key_data`` (nothing when the cache is off or unwritable)."""
    from discover.atomic import write_json_atomic

    folder = directory()
    if folder is None:
        return
    data = {"key": key_data, "tuning": tuning.to_json()}
    try:
        write_json_atomic(_path(folder, key_data), data)
    except OSError:
        pass
