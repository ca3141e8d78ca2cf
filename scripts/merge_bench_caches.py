"""Merge bench caches: copy the runs of other ``discover bench`` caches into one, so that a bench
on tasks and seeds that another study already trained (the proxy panel's tier-C runs of every
baseline, a search-power judge's tier-B runs) trains only what is new.

    .venv/bin/python scripts/merge_bench_caches.py OUT_CACHE SOURCE [SOURCE ...]

A SOURCE is a cache file or a directory searched for ``*.json`` cache files (the proxy panel
keeps one a program and task).  Keys are (fingerprint, task, rate, seed), as the bench reads
them; an entry already in ``OUT_CACHE`` is never replaced (``discover.scoring.bench.Cache``), nor is
one source's entry by a later source's.  Every source is checked before anything is written:
a file that is not a bench cache of this version is a one-line error and ``OUT_CACHE`` is
left as it was.  Prints how many entries were added.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from discover.errors import UserError
from discover.scoring.bench import Cache


def source_files(source: str) -> list[str]:
    """``source`` itself, or the ``*.json`` files under the directory ``source``, sorted."""
    if os.path.isdir(source):
        return sorted(os.path.join(d, f) for d, _, files in os.walk(source)
                      for f in files if f.endswith(".json"))
    if not os.path.isfile(source):
        raise UserError(f"{source}: no such file or directory")
    return [source]


def merge(out_path: str, sources: list[str]) -> int:
    """Merge ``sources`` into the cache at ``out_path``; the number of entries added."""
    caches = [Cache(path) for source in sources for path in source_files(source)]
    out = Cache(out_path)
    before = len(out.losses)
    for cache in caches:
        for key, value in cache.losses.items():
            out.losses.setdefault(key, value)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    out.save()
    return len(out.losses) - before


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    try:
        added = merge(argv[0], argv[1:])
    except UserError as err:
        print(f"merge_bench_caches: {err}", file=sys.stderr)
        return 2
    print(f"{added} entries added to {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
