"""``scripts/unpack_runs.py``: a committed archive of run directories, checked and unpacked
where the scripts expect them; bad input loses nothing."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile

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
    assert "2 files unpacked" in capsys.readouterr().out
    (experiment / "runs" / "mine.txt").write_text("kept")
    assert unpack_runs.main([str(experiment)]) == 0
    assert "there already" in capsys.readouterr().out
    assert (experiment / "runs" / "mine.txt").read_text() == "kept"
    assert unpack_runs.main([str(experiment), "--force"]) == 0
    assert not (experiment / "runs" / "mine.txt").exists()


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


def test_every_committed_archive_matches_its_checksum():
    import glob

    archives = glob.glob(os.path.join(ROOT, "results", "*", "runs.tar.xz"))
    assert archives
    for archive in archives:
        with open(archive + ".sha256", encoding="ascii") as f:
            assert unpack_runs.sha256(archive) == f.read().split()[0], archive
