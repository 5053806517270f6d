"""Tests of raw-data fetching (checksums, atomic files, safe extraction) and atomic writes."""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from pathlib import Path

import polars as pl
import pytest

from tracekd.datasets.babi import load_babi
from tracekd.datasets.download import (
    ChecksumError,
    extract_tar,
    fetch,
    prepare_raw,
    sha256_of,
    verify,
)
from tracekd.io import atomic_path, write_json, write_parquet, write_text

PAYLOAD = b"bAbI archive bytes\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def source_file(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "archive.tar.gz"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_sha256_of(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_of(empty) == hashlib.sha256(b"").hexdigest()
    big = tmp_path / "big"
    data = bytes(range(256)) * 10_000  # > 1 MiB: several chunks
    big.write_bytes(data)
    assert sha256_of(big) == hashlib.sha256(data).hexdigest()
    assert sha256_of(str(big)) == sha256_of(big)


def test_verify(source_file: Path) -> None:
    verify(source_file, PAYLOAD_SHA)
    verify(source_file, PAYLOAD_SHA.upper())  # case does not matter
    verify(source_file, None)  # nothing pinned: nothing checked
    verify(source_file, "")
    with pytest.raises(ChecksumError) as info:
        verify(source_file, "0" * 64)
    assert str(source_file) in str(info.value)
    assert PAYLOAD_SHA in str(info.value)


def test_fetch_local_path_copies_and_verifies(tmp_path: Path, source_file: Path) -> None:
    dest = tmp_path / "out" / "archive.tar.gz"
    result = fetch(
        "https://example.invalid/archive.tar.gz", dest, sha256=PAYLOAD_SHA, local_path=source_file
    )
    assert result == dest
    assert dest.read_bytes() == PAYLOAD
    assert _listing(dest.parent) == ["archive.tar.gz"]


def test_fetch_checksum_mismatch_leaves_nothing(tmp_path: Path, source_file: Path) -> None:
    out = tmp_path / "out"
    dest = out / "archive.tar.gz"
    with pytest.raises(ChecksumError, match="SHA-256"):
        fetch("", dest, sha256="f" * 64, local_path=source_file)
    assert not dest.exists()
    assert _listing(out) == []  # no stray .part file either


def test_fetch_mismatch_keeps_a_previous_good_file(tmp_path: Path, source_file: Path) -> None:
    dest = tmp_path / "archive.tar.gz"
    dest.write_bytes(b"previous")
    with pytest.raises(ChecksumError):
        fetch("", dest, sha256="f" * 64, local_path=source_file)
    assert dest.read_bytes() == b"previous"
    assert _listing(tmp_path) == ["archive.tar.gz", "src"]


def test_fetch_missing_local_path_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError):
        fetch("", out / "x.tar.gz", sha256=None, local_path=tmp_path / "missing.tar.gz")
    assert _listing(out) == []


def test_fetch_file_url(tmp_path: Path, source_file: Path) -> None:
    dest = tmp_path / "dl" / "archive.tar.gz"
    fetch(source_file.as_uri(), dest, sha256=PAYLOAD_SHA)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(ChecksumError):
        fetch(source_file.as_uri(), tmp_path / "dl" / "bad.tar.gz", sha256="a" * 64)
    assert _listing(dest.parent) == ["archive.tar.gz"]


def _make_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_tar(tmp_path: Path) -> None:
    archive = _make_tar(tmp_path / "a.tar.gz", {"top/en/a.txt": b"hello", "top/b.txt": b"bye"})
    out = extract_tar(archive, tmp_path / "x")
    assert (out / "top" / "en" / "a.txt").read_bytes() == b"hello"
    assert (out / "top" / "b.txt").read_bytes() == b"bye"


@pytest.mark.parametrize("name", ["../evil.txt", "top/../../evil.txt", "/tmp/tracekd-abs-evil.txt"])
def test_extract_tar_refuses_paths_that_leave(tmp_path: Path, name: str) -> None:
    archive = _make_tar(tmp_path / "evil.tar.gz", {name: b"pwned"})
    out = tmp_path / "deep" / "x"
    if name.startswith("/"):
        # the data filter strips a leading slash: the file lands inside out_dir
        extract_tar(archive, out)
        assert (out / name.lstrip("/")).read_bytes() == b"pwned"
        assert not Path(name).exists()
        return
    with pytest.raises(tarfile.TarError):
        extract_tar(archive, out)
    assert not (tmp_path / "deep" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_extract_tar_refuses_links_out(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../etc/passwd"
        tar.addfile(info)
    with pytest.raises(tarfile.TarError):
        extract_tar(archive, tmp_path / "x")


def test_prepare_raw_synthetic(tmp_path: Path) -> None:
    source = {"synthetic": True, "stories": {"train": 3, "test": 2}, "seed": 4, "max_sentences": 6}
    out = prepare_raw("babi", source, tmp_path / "raw", options={"tasks": ["qa1", "qa8"]})
    questions = load_babi(out, ["qa1", "qa8"])
    assert {q.task for q in questions} == {"qa1", "qa8"}
    assert {q.split for q in questions} == {"train", "test"}
    assert len({(q.task, q.split, q.story) for q in questions}) == 2 * (3 + 2)
    assert all(len(q.context) <= 6 for q in questions)
    # same source, same bytes
    again = prepare_raw("babi", source, tmp_path / "raw2", options={"tasks": ["qa1", "qa8"]})
    files = sorted(p.relative_to(out) for p in out.rglob("*.txt"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.txt"))
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_prepare_raw_synthetic_other_loader(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no synthetic generator"):
        prepare_raw("nope", {"synthetic": True, "stories": {"train": 1}}, tmp_path, options={"tasks": []})


def test_prepare_raw_from_a_local_archive(tmp_path: Path) -> None:
    """The offline-cluster path: a pinned archive copied from local_path, verified, unpacked."""
    synth = prepare_raw(
        "babi",
        {"synthetic": True, "stories": {"train": 2, "test": 1}},
        tmp_path / "s",
        options={"tasks": ["qa2"]},
    )
    archive = tmp_path / "babi.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(synth / "tasks_1-20_v1-2", arcname="tasks_1-20_v1-2")
    source = {
        "url": "https://example.invalid/babi_tasks_1-20_v1-2.tar.gz",
        "sha256": sha256_of(archive),
        "local_path": str(archive),
    }
    out = prepare_raw("babi", source, tmp_path / "raw", options={"tasks": ["qa2"]})
    assert (out / "babi_tasks_1-20_v1-2.tar.gz").is_file()
    assert load_babi(out, ["qa2"]) == load_babi(synth, ["qa2"])
    bad = {**source, "sha256": "0" * 64}
    with pytest.raises(ChecksumError):
        prepare_raw("babi", bad, tmp_path / "raw_bad", options={"tasks": ["qa2"]})
    assert _listing(tmp_path / "raw_bad") == []


# ---------------------------------------------------------------- io


def test_atomic_path_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.txt"
    with atomic_path(target, ".txt") as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert _listing(target.parent) == ["file.txt"]


def test_atomic_path_leaves_nothing_when_the_block_raises(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert _listing(tmp_path) == []
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new, half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["file.txt"]


def test_atomic_path_block_that_removes_its_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    with pytest.raises(FileNotFoundError), atomic_path(target) as tmp:
        tmp.unlink()
    assert _listing(tmp_path) == []


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": ["b", "a", "c"],
            "context": [["x", "y"], [], ["z"]],
            "relevant": [[0], [], [0]],
            "score": [0.5, None, 1.0],
        }
    )


def test_write_parquet_is_byte_stable(tmp_path: Path) -> None:
    write_parquet(_frame(), tmp_path / "a.parquet")
    write_parquet(_frame(), tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "a.parquet").equals(_frame())
    write_parquet(_frame(), tmp_path / "a.parquet")  # overwrite: same bytes again
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert _listing(tmp_path) == ["a.parquet", "b.parquet"]


def test_write_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json({"b": 1, "a": [1.5, "é"]}, path)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and text.index('"a"') < text.index('"b"')
    assert "é" in text
    assert json.loads(text) == {"a": [1.5, "é"], "b": 1}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_write_json_refuses_nan_and_keeps_the_old_file(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "m.json"
    write_json({"ok": 1}, path)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        write_json({"loss": bad}, path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["m.json"]


def test_write_text(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "t.tex"
    write_text("\\toprule\n", path)
    assert path.read_text(encoding="utf-8") == "\\toprule\n"


def _hub_copy(root: Path) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    (data / "equal.json").write_text('{"index": 0}\n')
    (data / "README.md").write_text("not a data file")
    return root


def test_hub_source_from_a_local_copy_is_filtered_and_verified(tmp_path: Path) -> None:
    copy = _hub_copy(tmp_path / "copy")
    sha = sha256_of(copy / "data" / "equal.json")
    source = {
        "hub": {"repo": "someone/data", "revision": "abc123", "files": ["*equal.json", "*mix.json"]},
        "local_path": str(copy),
        "sha256": {"equal.json": sha},
    }
    out = prepare_raw("cotemp", source, tmp_path / "raw", options={})
    assert (out / "data" / "equal.json").read_bytes() == (copy / "data" / "equal.json").read_bytes()
    assert not (out / "data" / "README.md").exists()
    bad = {**source, "sha256": {"equal.json": "0" * 64}}
    with pytest.raises(ChecksumError, match="equal.json"):
        prepare_raw("cotemp", bad, tmp_path / "raw_bad", options={})


def test_hub_source_downloads_the_pinned_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    copy = _hub_copy(tmp_path / "snapshot")
    calls = []

    def fake_snapshot_download(**kwargs: object) -> str:
        calls.append(kwargs)
        return str(copy)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    source = {"hub": {"repo": "someone/data", "revision": "abc123", "files": ["*equal.json"]}}
    prepare_raw("cotemp", source, tmp_path / "raw", options={})
    assert calls == [{"repo_id": "someone/data", "repo_type": "dataset", "revision": "abc123",
                      "allow_patterns": ["*equal.json"]}]
    assert (tmp_path / "raw" / "data" / "equal.json").exists()
    with pytest.raises(FileNotFoundError, match="no file matches"):
        prepare_raw("cotemp", {"hub": {"repo": "x", "files": ["*.parquet"]}}, tmp_path / "r2",
                    options={})
