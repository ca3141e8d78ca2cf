"""Unpack the committed run directories of an experiment where its scripts expect them.

A study's raw run directories (thousands of files, most of the repository's size) are
committed as one archive beside its tables, ``results/EXPERIMENT/runs.tar.xz``, with its
SHA-256 in ``runs.tar.xz.sha256``.  This checks the checksum and unpacks the archive into
``results/EXPERIMENT/runs/``, where ``scripts/bench_search.py --out results/EXPERIMENT``
resumes and re-judges them.  A ``runs/`` that exists already is left alone (``--force``
replaces it); a damaged archive or a checksum that does not match is a one-line error and
nothing is unpacked.

    .venv/bin/python scripts/unpack_runs.py results/search_power [results/rediscovery_b ...]
    .venv/bin/python scripts/unpack_runs.py --all
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVE = "runs.tar.xz"


class UnpackError(Exception):
    """What is wrong, in one line."""


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack(experiment: str, force: bool = False) -> str:
    """Unpack ``experiment/runs.tar.xz`` into ``experiment/runs``; returns what was done."""
    archive = os.path.join(experiment, ARCHIVE)
    target = os.path.join(experiment, "runs")
    if not os.path.isfile(archive):
        raise UnpackError(f"{archive}: no such archive")
    try:
        with open(archive + ".sha256", encoding="ascii") as f:
            expected = f.read().split()[0]
    except (OSError, IndexError, UnicodeDecodeError) as err:
        raise UnpackError(f"{archive}.sha256: cannot read the checksum ({err})") from None
    if sha256(archive) != expected:
        raise UnpackError(f"{archive}: SHA-256 does not match {archive}.sha256 (a damaged or "
                          f"partial download?); nothing unpacked")
    if os.path.exists(target) and not force:
        return f"{target}: there already (--force replaces it)"
    scratch = tempfile.mkdtemp(prefix=".unpack-", dir=experiment)
    try:
        try:
            with tarfile.open(archive, "r:xz") as tar:
                tar.extractall(scratch, filter="data")  # no absolute paths, links out, devices
        except (tarfile.TarError, EOFError, OSError) as err:
            raise UnpackError(f"{archive}: not a readable archive ({err}); nothing "
                              f"unpacked") from None
        unpacked = os.path.join(scratch, "runs")
        if not os.path.isdir(unpacked):
            raise UnpackError(f"{archive}: holds no runs/ directory; nothing unpacked")
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(unpacked, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    count = sum(len(files) for _, _, files in os.walk(target))
    return f"{target}: {count} files unpacked"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="*", metavar="results/EXPERIMENT")
    parser.add_argument("--all", action="store_true", help="every results/*/runs.tar.xz")
    parser.add_argument("--force", action="store_true", help="replace an existing runs/")
    args = parser.parse_args(argv)
    experiments = list(args.experiments)
    if args.all:
        experiments += sorted(os.path.dirname(p) for p in
                              glob.glob(os.path.join(ROOT, "results", "*", ARCHIVE)))
    if not experiments:
        parser.error("name an experiment directory, or --all")
    try:
        for experiment in experiments:
            print(unpack(experiment, args.force))
    except UnpackError as err:
        print(f"unpack_runs: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
