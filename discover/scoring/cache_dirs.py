"""Where the project's disk caches live: one rule for all of them.

Contract: :func:`cache_directory` returns the directory named by the environment variable
``env`` or, when it is unset, ``$XDG_CACHE_HOME/optimizer-discovery/<leaf>`` (``~/.cache/...``
without ``XDG_CACHE_HOME``), created.  An empty value, or a directory that cannot be created,
means the cache is off: the answer is None and nothing is written.
"""

from __future__ import annotations

import os


def default_directory(leaf: str) -> str:
    """``$XDG_CACHE_HOME/optimizer-discovery/<leaf>``, else under ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "optimizer-discovery", leaf)


def cache_directory(env: str, leaf: str) -> str | None:
    """The cache directory named by ``$env`` (default :func:`default_directory`), created;
    None when the cache is off."""
    path = os.environ.get(env, default_directory(leaf))
    if not path:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    return path
