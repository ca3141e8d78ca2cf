"""``scripts/unpack_runs.py``: a committed archive of run directories, checked and unpacked
where the scripts expect them; bad input loses nothing."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import unpack_runs


def make_experiment(path, files: dict[str, bytes]):
    path.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (path / "runs.tar.xz").write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    (path / "runs.tar.xz.sha256").write_text(f"{digest}  runs.tar.xz\n")
    return path


def test_unpacks_into_runs_and_leaves_an_existing_one(tmp_path, capsys):
    experiment = make_experiment(tmp_path / "exp", {"runs/a/seed0/state.json": b'{"x": 1}',
                                                   "runs/a/seed1/log.jsonl": b"{}\n"})
    assert unpack_runs.main([str(experiment)]) == 0
    assert (experiment / "runs" / "a" / "seed0" / "state.json").read_bytes() == b'{"x": 1}'
    assert "2 files unpacked (runs)" in capsys.readouterr().out
    (experiment / "runs" / "a" / "seed0" / "state.json").write_text("mine")
    (experiment / "runs" / "a" / "seed1" / "log.jsonl").unlink()
    assert unpack_runs.main([str(experiment)]) == 0
    out = capsys.readouterr().out
    assert "1 files unpacked" in out and "1 files there already, left alone" in out
    assert (experiment / "runs" / "a" / "seed0" / "state.json").read_text() == "mine"
    assert (experiment / "runs" / "a" / "seed1" / "log.jsonl").read_bytes() == b"{}\n"
    assert unpack_runs.main([str(experiment), "--force"]) == 0
    assert (experiment / "runs" / "a" / "seed0" / "state.json").read_bytes() == b'{"x": 1}'


def test_a_damaged_archive_or_checksum_unpacks_nothing(tmp_path, capsys):
    experiment = make_experiment(tmp_path / "exp", {"runs/a.json": b"{}"})
    data = bytearray((experiment / "runs.tar.xz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (experiment / "runs.tar.xz").write_bytes(bytes(data))
    assert unpack_runs.main([str(experiment)]) == 2
    err = capsys.readouterr().err
    assert "SHA-256 does not match" in err and len(err.strip().splitlines()) == 1
    assert not (experiment / "runs").exists()
    outside = make_experiment(tmp_path / "evil", {"../escaped.txt": b"x"})
    assert unpack_runs.main([str(outside)]) == 2
    assert not (tmp_path / "escaped.txt").exists() and not (outside / "runs").exists()


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_packs_what_it_unpacks_and_reads_an_archive_from_history(tmp_path, capsys):
    repo = tmp_path / "repo"
    experiment = repo / "results" / "exp"
    (experiment / "run" / "best").mkdir(parents=True)
    (experiment / "run" / "best" / "program.opt").write_text("def p(w, g, lr):\n")
    (experiment / "judge_cache.json").write_text('{"k": [1, 2]}')
    (experiment / "table.md").write_text("| kept in the tree |")
    assert unpack_runs.main(["--pack", str(experiment), "run", "judge_cache.json"]) == 0
    first = (experiment / "runs.tar.xz").read_bytes()
    assert unpack_runs.main(["--pack", str(experiment), "run", "judge_cache.json"]) == 0
    assert (experiment / "runs.tar.xz").read_bytes() == first  # the same files, the same bytes
    with tarfile.open(experiment / "runs.tar.xz") as tar:
        assert sorted(tar.getnames()) == ["judge_cache.json", "run", "run/best",
                                          "run/best/program.opt"]
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "archive")
    commit = git(repo, "rev-parse", "HEAD")
    for path in ("runs.tar.xz", "judge_cache.json"):
        (experiment / path).unlink()
    shutil.rmtree(experiment / "run")
    assert unpack_runs.main([str(experiment)]) == 2  # in history, but no pointer yet
    assert "no such archive" in capsys.readouterr().err
    (experiment / "runs.tar.xz.git").write_text(commit + "\n")
    assert unpack_runs.main([str(experiment)]) == 0
    assert "2 files unpacked (judge_cache.json, run)" in capsys.readouterr().out
    assert (experiment / "run" / "best" / "program.opt").read_text() == "def p(w, g, lr):\n"
    assert (experiment / "judge_cache.json").read_text() == '{"k": [1, 2]}'
    assert not [p for p in os.listdir(experiment) if p.startswith(".unpack-")]
    (experiment / "runs.tar.xz.git").write_text("0" * 40 + "\n")  # a commit the clone lacks
    shutil.rmtree(experiment / "run")
    assert unpack_runs.main([str(experiment)]) == 2
    err = capsys.readouterr().err
    assert "is not in this clone" in err and "git fetch --unshallow" in err
    assert not (experiment / "run").exists()


def test_every_committed_archive_matches_its_checksum():
    """Each ``runs.tar.xz.sha256`` has its archive in the tree or a commit of this clone that
    holds it (a shallow clone cannot tell, and says so)."""
    import glob

    digests = glob.glob(os.path.join(ROOT, "results", "*", "runs.tar.xz.sha256"))
    assert digests
    shallow = git(ROOT, "rev-parse", "--is-shallow-repository") == "true"
    for digest in digests:
        archive = digest[: -len(".sha256")]
        with open(digest, encoding="ascii") as f:
            expected = f.read().split()[0]
        if os.path.isfile(archive):
            assert unpack_runs.sha256(archive) == expected, archive
            continue
        with tempfile.TemporaryDirectory() as scratch:
            try:
                copy = unpack_runs._from_history(archive, scratch)
            except unpack_runs.UnpackError as err:
                assert shallow and "unshallow" in str(err), err  # only a shallow clone lacks it
                continue
            assert unpack_runs.sha256(copy) == expected, archive
