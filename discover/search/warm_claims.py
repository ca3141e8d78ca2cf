"""Workers of one machine that warm the same tasks take turns instead of compiling each twice.

A cold start of N workers on a node compiles every task's run in every worker; the disk
caches (``discover.scoring.compile_cache``, adam's tunings) let a worker that comes later
*load* what another wrote, but two workers that reach the same task at the same time both
compile it.  Here a worker claims an item (an exclusively created file in the claims
directory, beside the compile cache) before warming it; an item another live process has
claimed is put off to the end, and by then it is usually done (a ``.done`` marker), so
warming it loads from the caches.  Every worker still warms every item itself (its own
process needs the executables in memory); the claims only decide who compiles first.

Contract of :func:`warm_in_turn`: ``warm`` is called once for every item, in the given
order except that items claimed by another live process come last, each after that claim
is done, abandoned (its process is gone: a claim names its host and pid), or older than
``stale_seconds``; a claim is released (deleted) when ``warm`` raises, so that the others do
not wait for it.  The claims are an ordering, never a correctness condition: with no
directory (the cache off), or a marker left by an earlier start, ``warm`` runs as it would
have, and a stale or lost claim costs at most a compile that would have happened anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")

MINE, DONE, TAKEN = "mine", "done", "taken"

STALE_SECONDS = 900.0
"""A claim older than this is treated as abandoned (a process on another host that died, or a
compile on a machine so loaded that waiting longer costs more than compiling)."""


def claim_path(directory: str, key: str) -> str:
    """The claim file of ``key`` (any text naming what is warmed) in ``directory``."""
    return os.path.join(directory, hashlib.sha256(key.encode()).hexdigest()[:32] + ".claim")


def _alive(claim: dict) -> bool:
    """Whether the claiming process may still run: on another host it cannot be checked."""
    if claim.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(claim["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, TypeError, ValueError):
        return True
    return True


def _read(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def try_claim(path: str, stale_seconds: float = STALE_SECONDS) -> str:
    """``DONE`` (a marker says the item was warmed), ``MINE`` (this process holds the claim
    now, or took over an abandoned one) or ``TAKEN`` (another live process holds it)."""
    if os.path.exists(path + ".done"):
        return DONE
    for _ in range(2):  # a second try after removing an abandoned claim
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            claim = _read(path)
            if claim is None:  # being written this instant, or damaged: judge by its age
                with contextlib.suppress(OSError):
                    if time.time() - os.path.getmtime(path) <= stale_seconds:
                        return TAKEN
            elif _alive(claim) and time.time() - float(claim.get("time", 0)) <= stale_seconds:
                return TAKEN
            with contextlib.suppress(OSError):
                os.unlink(path)
            continue
        except OSError:
            return MINE  # the directory cannot be written: warm without claims
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}, f)
        return MINE
    return TAKEN


def mark_done(path: str) -> None:
    with contextlib.suppress(OSError), open(path + ".done", "w", encoding="utf-8") as f:
        f.write("done\n")


def release(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def warm_in_turn(items: Sequence[Item], key: Callable[[Item], str],
                 warm: Callable[[Item], None], directory: str | None, *,
                 stale_seconds: float = STALE_SECONDS, poll_seconds: float = 0.2) -> None:
    """Call ``warm(item)`` for every item, compiling first what no other process is compiling
    (module docstring).  ``key(item)``: text naming everything the item's compile depends on,
    equal across the processes that share ``directory``."""
    if directory is None:
        for item in items:
            warm(item)
        return
    with contextlib.suppress(OSError):
        os.makedirs(directory, exist_ok=True)
    put_off = []
    for item in items:
        path = claim_path(directory, key(item))
        state = try_claim(path, stale_seconds)
        if state == TAKEN:
            put_off.append((item, path))
        else:
            _warm_claimed(item, path, warm, state == MINE)
    for item, path in put_off:
        deadline = time.monotonic() + stale_seconds
        while True:
            state = try_claim(path, stale_seconds)
            if state != TAKEN or time.monotonic() > deadline:
                break
            time.sleep(poll_seconds)
        _warm_claimed(item, path, warm, state == MINE)


def _warm_claimed(item, path: str, warm: Callable, mine: bool) -> None:
    """``warm(item)``; when this process holds the claim, mark it done, or release it if
    ``warm`` raised."""
    try:
        warm(item)
    except BaseException:
        if mine:
            release(path)
        raise
    if mine:
        mark_done(path)
        release(path)
