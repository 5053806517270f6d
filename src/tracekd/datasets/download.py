"""Fetching raw data: atomic, checksum-verified, with a local-path override for offline clusters."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
from collections.abc import Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from tracekd.datasets import get_dataset
from tracekd.io import atomic_path
from tracekd.readers import walk_files


class ChecksumError(RuntimeError):
    """The bytes on disk are not the ones the config pins."""


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(
    path: str | Path, sha256: str | None, *, name: str | None = None
) -> None:
    """Raise :class:`ChecksumError` naming the file (``name``, else ``path``) on a mismatch."""
    if not sha256:
        return
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise ChecksumError(
            f"{name or path}: SHA-256 is {actual}, config expects {sha256}; "
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
        # name the destination and the source, not the temporary file (gone after the error)
        verify(tmp, sha256, name=f"{dest} (from {local_path or url})")
    return dest


def extract_tar(archive: str | Path, out_dir: str | Path) -> Path:
    """Extract a tar archive into ``out_dir`` refusing links and paths that leave it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(out_dir, filter="data")
    return out_dir


def prepare_raw(loader: str, source: Mapping[str, Any], out_dir: str | Path, *, options: Mapping[str, Any]) -> Path:
    """Fill ``out_dir`` with a dataset's raw files: generated, fetched from a URL, or from the hub.

    ``source`` is the dataset's ``source`` block and ``options`` its whole config block (tasks,
    relations). Every file with a pinned SHA-256 is verified before the folder counts as done.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if source.get("synthetic"):
        synthesize(loader, source, out_dir, options)
    elif source.get("hub"):
        fetch_hub(source["hub"], out_dir, local_path=source.get("local_path"))
    else:
        url = source.get("url") or ""
        name = Path(url).name or Path(source["local_path"]).name
        sha = source.get("sha256")
        archive = fetch(url, out_dir / name, sha256=sha if isinstance(sha, str) else None,
                        local_path=source.get("local_path"))
        extract_tar(archive, out_dir)
    if isinstance(source.get("sha256"), Mapping):
        verify_files(out_dir, source["sha256"])
    return out_dir


def synthesize(loader: str, source: Mapping[str, Any], out_dir: Path, options: Mapping[str, Any]) -> None:
    """Write the dataset's synthetic twin in its original raw format (its plug-in's)."""
    try:
        dataset = get_dataset(loader)
    except ValueError as err:
        raise ValueError(f"no synthetic generator for loader {loader!r}: {err}") from None
    if dataset.write_synthetic is None:
        raise ValueError(f"no synthetic generator for loader {loader!r}")
    dataset.write_synthetic(out_dir, source, options)


def fetch_hub(hub: Mapping[str, Any], out_dir: Path, *, local_path: str | None = None) -> None:
    """Copy a Hugging Face dataset's files (``hub.files`` glob patterns) into ``out_dir``.

    From ``local_path`` when given (offline clusters); else through the hub's cache at the
    pinned ``hub.revision`` (``HF_HUB_OFFLINE=1`` makes it use the cache only).
    """
    patterns = list(hub.get("files") or ["*"])
    if local_path:
        root = Path(local_path)
    else:
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(repo_id=hub["repo"], repo_type="dataset",
                                      revision=hub.get("revision"), allow_patterns=patterns))
    found = [
        p for p in walk_files(root, what="dataset")
        if any(fnmatch(p.relative_to(root).as_posix(), pat) for pat in patterns)
    ]
    if not found:
        raise FileNotFoundError(f"{root}: no file matches {patterns}")
    for path in found:
        target = out_dir / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            shutil.copyfile(path, tmp)


def verify_files(folder: Path, checksums: Mapping[str, str]) -> None:
    """Verify each pinned file name found (anywhere) under ``folder``; a pinned file may be absent."""
    files = walk_files(folder, what="dataset")
    for name, sha in checksums.items():
        for path in files:
            if fnmatch(path.name, name):
                verify(path, sha)


def _index_by_checksum(folder: Path) -> dict[str, Path]:
    """SHA-256 -> file, for every file under ``folder`` (a local copy in any layout)."""
    return {sha256_of(path): path for path in walk_files(folder, what="released")}


def fetch_release(release: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Fetch every file a ``paper_release`` config block pins into ``out_dir/<path>``.

    With ``local_path`` (offline clusters) each file is the one there with its SHA-256, in any
    layout (the copies beside the project are named differently); a file it lacks is an error.
    Otherwise each comes from ``url`` at its pinned commit, and a download that is a Git LFS
    pointer is fetched again from ``lfs_url``. Every file is verified against its SHA-256 and
    appears only once complete. Returns the paths written.
    """
    out_dir = Path(out_dir)
    local = _index_by_checksum(Path(release["local_path"])) if release.get("local_path") else None
    written = []
    for entry in release["releases"]:
        for path, sha in entry["files"].items():
            values = {"repository": release["repository"], "commit": entry["commit"], "path": path}
            dest = out_dir / path
            if local is not None:
                if sha not in local:
                    raise FileNotFoundError(
                        f"paper_release.local_path {release['local_path']}: no file with the "
                        f"SHA-256 of {path} ({sha})"
                    )
                fetch("", dest, sha256=sha, local_path=local[sha])
            else:
                try:
                    fetch(release["url"].format(**values), dest, sha256=sha)
                except ChecksumError:
                    # a raw URL of a file that Git LFS tracks serves its pointer, not the file
                    fetch(release["lfs_url"].format(**values), dest, sha256=sha)
            written.append(dest)
    return written
