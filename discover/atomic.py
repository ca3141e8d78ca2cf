"""Writes that a crash cannot leave half done, and JSON reading: the one implementation that
every file the product writes goes through (run directories, ``best/``, reports, bench
tables and caches, exported modules).

Contract: :func:`write_bytes_atomic` writes a temporary file in the target's directory,
``fsync``s it, gives it the usual permissions (``0o666`` less the umask), moves it into place
and ``fsync``s the directory, so readers and a crash see the old file or the new one, never
half; on failure the temporary file is removed and the old file is untouched.  With
``replace=False`` the last step is a hard link, which raises ``FileExistsError`` if the
target appeared in the meantime (no file is ever overwritten by accident).  No pickle
anywhere: data is JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any


def write_json_atomic(path: str, data: Any, *, compact: bool = False) -> None:
    """Write ``data`` as JSON (indented for people, or ``compact`` for large machine files;
    NaN refused) to ``path``, as :func:`write_bytes_atomic`."""
    if compact:
        text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    else:
        text = json.dumps(data, indent=1, allow_nan=False)
    write_text_atomic(path, text + "\n")


def write_text_atomic(path: str, text: str, *, replace: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path``, as :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"), replace=replace)


def write_bytes_atomic(path: str, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``path``: temporary file, fsync, rename (or, without ``replace``, a
    hard link that fails with ``FileExistsError`` where ``path`` exists), fsync of the
    directory."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _place_without_replacing(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(directory)


def _place_without_replacing(tmp: str, path: str) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this filesystem: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()
"""This process's umask (read once: os.umask can only be read by setting it)."""


def fsync_dir(directory: str) -> None:
    """fsync a directory (a rename in it is then durable); a no-op where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not support fsync on a directory
    finally:
        os.close(fd)


def read_json(path: str) -> Any:
    """The JSON data of ``path``; ValueError (also for nesting too deep to decode) or
    OSError."""
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except RecursionError:
            raise ValueError("nested too deeply") from None
