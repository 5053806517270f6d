"""Atomic writes: a job killed mid-write never leaves a file that looks complete."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.errors import PathError


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (the only portable way to read it)
    os.umask(mask)
    return mask


def check_output_file(path: str | Path) -> Path:
    """``path`` as a :class:`Path` if a file can be written there, else a :class:`PathError`.

    Refused: an existing folder, device or pipe at ``path``, and a file where one of its
    folders should be.
    """
    path = Path(path)
    if path.is_dir():
        raise PathError(str(path), "is a folder; give the path of the file to write")
    if path.exists() and not path.is_file():
        # a device or a pipe: renaming a file onto /dev/null would replace the device
        raise PathError(str(path), "is not a regular file; give the path of the file to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PathError(str(parent), f"is a file, so it cannot hold {path.name}")
            break
    return path


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The file gets the permissions any other tool's would (0666 less the umask): ``mkstemp``
    alone makes it 0600, unreadable by collaborators on a shared filesystem.
    """
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    except OSError as err:  # name the folder, not a temporary name the user never chose
        raise type(err)(err.errno, f"cannot write {path.name} there ({err.strerror})",
                        str(path.parent)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~current_umask())
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_parquet(frame: pl.DataFrame, path: str | Path) -> None:
    """Write ``frame`` atomically; statistics off and fixed compression so bytes are reproducible."""
    with atomic_path(path, ".parquet") as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=False)


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically with sorted keys and a trailing newline (byte-stable); NaN is refused."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    write_text(text, path)


def write_text(text: str, path: str | Path) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
