"""Pack an experiment's raw run directories into one archive, or unpack it where its scripts
expect them.

A study's raw run directories and its large caches (thousands of files) are kept as one archive
per experiment, ``results/EXPERIMENT/runs.tar.xz``, whose SHA-256 is in ``runs.tar.xz.sha256``.
The archive holds paths relative to the experiment directory (``runs/...``, ``judge_cache.json``,
``curves.csv``, ``run/...``); unpacking puts each file back where it was, so that
``scripts/bench_search.py --out results/EXPERIMENT`` resumes and re-judges the searches without
training.

Where the archive is not in the working tree (to keep a checkout small), its
``runs.tar.xz.git`` names the commit that holds it, and the archive is read from the clone's
history (``git cat-file``); a shallow clone or a copy without ``.git`` gets a one-line error
saying how to fetch it.  Files that exist already are left alone (``--force`` replaces
them); a damaged archive or a checksum that does not match is a one-line error and nothing is
unpacked.

    .venv/bin/python scripts/unpack_runs.py results/search_power [results/rediscovery_b ...]
    .venv/bin/python scripts/unpack_runs.py --all
    .venv/bin/python scripts/unpack_runs.py --pack results/warm_start_b run/state.json  # make one
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
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


def _expected_digest(archive: str) -> str:
    try:
        with open(archive + ".sha256", encoding="ascii") as f:
            return f.read().split()[0]
    except (OSError, IndexError, UnicodeDecodeError) as err:
        raise UnpackError(f"{archive}.sha256: cannot read the checksum ({err})") from None


def _from_history(archive: str, scratch: str) -> str:
    """Copy ``archive`` out of the commit named in ``archive.git`` into ``scratch``."""
    pointer = archive + ".git"
    try:
        with open(pointer, encoding="ascii") as f:
            commit = f.read().split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        raise UnpackError(f"{archive}: no such archive (and no {os.path.basename(pointer)} "
                          f"naming a commit that holds it)") from None
    directory = os.path.dirname(os.path.abspath(archive))
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=directory,
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise UnpackError(f"{archive}: kept in git history (commit {commit[:12]}), but "
                          f"{directory} is not inside a git clone; clone the repository "
                          f"to fetch it") from None
    relative = os.path.relpath(os.path.abspath(archive), top).replace(os.sep, "/")
    copy = os.path.join(scratch, ARCHIVE)
    with open(copy, "wb") as out:
        done = subprocess.run(["git", "cat-file", "blob", f"{commit}:{relative}"], cwd=top,
                              stdout=out, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise UnpackError(f"{archive}: commit {commit[:12]} is not in this clone (a shallow "
                          f"clone? run `git fetch --unshallow`); nothing unpacked")
    return copy


def unpack(experiment: str, force: bool = False) -> str:
    """Unpack ``experiment/runs.tar.xz`` (from the tree or from history) into ``experiment``;
    returns what was done."""
    archive = os.path.join(experiment, ARCHIVE)
    expected = _expected_digest(archive)
    scratch = tempfile.mkdtemp(prefix=".unpack-", dir=experiment)
    try:
        source = archive if os.path.isfile(archive) else _from_history(archive, scratch)
        if sha256(source) != expected:
            raise UnpackError(f"{archive}: SHA-256 does not match {archive}.sha256 (a damaged "
                              f"or partial download?); nothing unpacked")
        unpacked = os.path.join(scratch, "contents")
        try:
            with tarfile.open(source, "r:xz") as tar:
                tar.extractall(unpacked, filter="data")  # no absolute paths, links out, devices
        except (tarfile.TarError, EOFError, OSError) as err:
            raise UnpackError(f"{archive}: not a readable archive ({err}); nothing "
                              f"unpacked") from None
        files = sorted(os.path.relpath(os.path.join(folder, name), unpacked)
                       for folder, _, names in os.walk(unpacked) for name in names)
        if not files:
            raise UnpackError(f"{archive}: holds no files; nothing unpacked")
        placed, kept = [], []
        for name in files:
            target = os.path.join(experiment, name)
            if os.path.lexists(target) and not force:
                kept.append(name)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(os.path.join(unpacked, name), target)
            placed.append(name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lines = []
    if placed:
        tops = sorted({name.split(os.sep)[0] for name in placed})
        lines.append(f"{experiment}: {len(placed)} files unpacked ({', '.join(tops)})")
    if kept:
        lines.append(f"{experiment}: {len(kept)} files there already, left alone (--force "
                     f"replaces them)")
    return "\n".join(lines)


def pack(experiment: str, entries: list[str]) -> str:
    """Write ``experiment/runs.tar.xz`` holding ``entries`` (paths relative to ``experiment``)
    and its ``.sha256``; the entries themselves are left in place (delete them once the
    archive is committed).  Member order and metadata are fixed, so the same files give the
    same archive."""
    if not entries:
        raise UnpackError("--pack needs the entries to archive (for example runs)")
    for entry in entries:
        if os.path.isabs(entry) or entry.startswith("..") or not os.path.lexists(
                os.path.join(experiment, entry)):
            raise UnpackError(f"{os.path.join(experiment, entry)}: not an entry of {experiment}")
    archive = os.path.join(experiment, ARCHIVE)
    members = []
    for entry in entries:
        path = os.path.join(experiment, entry)
        members.append(entry)
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                members.append(os.path.relpath(os.path.join(folder, name), experiment))

    def fixed(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    partial = archive + ".partial"
    with tarfile.open(partial, "w:xz", preset=9) as tar:
        for member in members:
            tar.add(os.path.join(experiment, member), arcname=member, recursive=False,
                    filter=fixed)
    os.replace(partial, archive)
    digest = sha256(archive)
    with open(archive + ".sha256", "w", encoding="ascii") as f:
        f.write(f"{digest}  {ARCHIVE}\n")
    return f"{archive}: {len(members)} entries, {os.path.getsize(archive):,} bytes"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="*", metavar="results/EXPERIMENT")
    parser.add_argument("--all", action="store_true",
                        help="every results/*/runs.tar.xz (in the tree or in history)")
    parser.add_argument("--force", action="store_true", help="replace files that exist already")
    parser.add_argument("--pack", action="store_true",
                        help="make the archive instead: EXPERIMENT ENTRY [ENTRY ...]")
    args = parser.parse_args(argv)
    experiments = list(args.experiments)
    try:
        if args.pack:
            if not experiments:
                parser.error("--pack needs EXPERIMENT ENTRY [ENTRY ...]")
            print(pack(experiments[0], experiments[1:]))
            return 0
        if args.all:
            experiments += sorted(os.path.dirname(p) for p in glob.glob(
                os.path.join(ROOT, "results", "*", ARCHIVE + ".sha256")))
        if not experiments:
            parser.error("name an experiment directory, or --all")
        for experiment in experiments:
            print(unpack(experiment, args.force))
    except UnpackError as err:
        print(f"unpack_runs: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
