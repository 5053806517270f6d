"""Fetching raw data: atomic, checksum-verified, with a local-path override for offline clusters."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
from pathlib import Path

from tracekd.io import atomic_path


class ChecksumError(RuntimeError):
    """The bytes on disk are not the ones the config pins."""


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str | Path, sha256: str | None) -> None:
    """Raise :class:`ChecksumError` naming the file when its SHA-256 differs from ``sha256``."""
    if not sha256:
        return
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise ChecksumError(
            f"{path}: SHA-256 is {actual}, config expects {sha256}; "
            "the file is corrupt or the source changed (delete it and rerun, or update the checksum)"
        )


def fetch(url: str, dest: str | Path, *, sha256: str | None, local_path: str | Path | None = None) -> Path:
    """Put the archive at ``dest``: copied from ``local_path`` if given, else downloaded.

    The file only appears at ``dest`` once complete and verified.
    """
    dest = Path(dest)
    with atomic_path(dest, ".part") as tmp:
        if local_path:
            shutil.copyfile(local_path, tmp)
        else:
            request = urllib.request.Request(url, headers={"User-Agent": "tracekd"})
            with urllib.request.urlopen(request, timeout=120) as response, open(tmp, "wb") as fh:  # noqa: S310
                shutil.copyfileobj(response, fh)
        verify(tmp, sha256)
    return dest


def extract_tar(archive: str | Path, out_dir: str | Path) -> Path:
    """Extract a tar archive into ``out_dir`` refusing links and paths that leave it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(out_dir, filter="data")
    return out_dir


def prepare_raw(loader: str, source: dict, out_dir: str | Path, *, tasks: list[str]) -> Path:
    """Fill ``out_dir`` with a dataset's raw files: generated (synthetic) or fetched and unpacked."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if source.get("synthetic"):
        if loader != "babi":
            raise ValueError(f"no synthetic generator for loader {loader!r}")
        from tracekd.synth_babi import write_synthetic_babi

        write_synthetic_babi(
            out_dir,
            tasks=tasks,
            stories=source["stories"],
            seed=int(source.get("seed", 0)),
            max_sentences=int(source.get("max_sentences", 8)),
            questions_per_story=int(source.get("questions_per_story", 2)),
        )
        return out_dir
    url = source.get("url") or ""
    name = Path(url).name or Path(source["local_path"]).name
    archive = fetch(url, out_dir / name, sha256=source.get("sha256"), local_path=source.get("local_path"))
    return extract_tar(archive, out_dir)
