"""The paper's released evaluations as a data source: pinned in config, fetched, re-scored.

The released files beside the project (``$TRACEKD_REAL_DATA/reference``) stand in for the
download through ``paper_release.local_path`` (found by checksum); the tests that need them
skip when they are absent.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from tracekd.config import ConfigError, load_config, validate_config
from tracekd.datasets.download import ChecksumError, fetch_release
from tracekd.evaluate.reference import SUMMARY_SCHEMA, release_summary, released_outputs
from tracekd.report.tables import release_summary_latex

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("TRACEKD_REAL_DATA", PROJECT_ROOT / ".." / "shared" / "data"))
REFERENCE = REAL_DATA / "reference"
MANIFEST = REFERENCE / "trace_check_qa" / "MANIFEST.tsv"
CONFIG = load_config(PROJECT_ROOT / "config" / "config.yaml")


def manifest() -> dict[str, Any]:
    """The manifest beside the project: commit -> {path: (sha256, local copy or "")}."""
    if not MANIFEST.is_file():
        pytest.skip(f"no manifest at {MANIFEST} (set TRACEKD_REAL_DATA)")
    found: dict[str, dict[str, tuple[str, str]]] = {}
    commit = None
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            commit = re.search(r"commit ([0-9a-f]{40})", line).group(1)
            found[commit] = {}
        elif line and not line.startswith("path\t"):
            path, _size, sha, *local = line.split("\t")
            found[commit][path] = (sha, local[0] if local else "")
    return found


def local_release() -> dict[str, Any]:
    """The config's release block, cut to the files that have a copy beside the project."""
    pinned = manifest()
    release = copy.deepcopy(CONFIG["paper_release"])
    release["local_path"] = str(REFERENCE)
    for entry in release["releases"]:
        entry["files"] = {
            path: sha for path, sha in entry["files"].items() if pinned[entry["commit"]][path][1]
        }
    return release


def test_the_config_pins_every_released_file() -> None:
    """config/config.yaml names every file of the manifest, with its commit and SHA-256."""
    pinned = manifest()
    config = {entry["commit"]: entry["files"] for entry in CONFIG["paper_release"]["releases"]}
    assert set(config) == set(pinned)
    for commit, files in pinned.items():
        assert config[commit] == {path: sha for path, (sha, _) in files.items()}


def test_released_outputs_pair_with_their_results() -> None:
    found = released_outputs(CONFIG["paper_release"])
    datasets = [dataset for dataset, _, _ in found]
    assert datasets.count("CoTemp") == 55 and datasets.count("bAbI") == 6
    for _, outputs, results in found:
        assert "/evaluation_outputs/" in outputs and "/evaluation_results/" in results
    broken = copy.deepcopy(CONFIG["paper_release"])
    first = broken["releases"][0]["files"]
    del first[found[0][2]]
    with pytest.raises(ValueError, match="has no results file"):
        released_outputs(broken)


def test_fetch_from_a_local_copy_by_checksum(tmp_path: Path) -> None:
    release = local_release()
    written = fetch_release(release, tmp_path / "raw")
    assert len(written) == 10  # five outputs files and their results
    for path in written:
        assert path.is_file() and "evaluation_" in path.as_posix()
    missing = copy.deepcopy(release)
    missing["releases"][0]["files"]["results/x.json"] = "0" * 64
    with pytest.raises(FileNotFoundError, match="no file with the SHA-256 of results/x.json"):
        fetch_release(missing, tmp_path / "raw2")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_downloads_and_falls_back_to_lfs(tmp_path: Path) -> None:
    """A raw URL of a Git LFS file serves its pointer: the checksum fails, the LFS URL serves it."""
    content = b'{"acc": 1.0, "f1": 1.0, "p": 1.0, "r": 1.0, "avg": 1.0}\n'
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 61\n"
    for root, data in (("raw", pointer), ("lfs", content)):
        target = tmp_path / root / "c0ffee" / "results" / "r.json"
        target.parent.mkdir(parents=True)
        target.write_bytes(data)
    release = {
        "repository": "o/r",
        "url": (tmp_path / "raw").as_uri() + "/{commit}/{path}",
        "lfs_url": (tmp_path / "lfs").as_uri() + "/{commit}/{path}",
        "releases": [{"commit": "c0ffee", "dataset": "CoTemp", "files": {"results/r.json": _sha(content)}}],
    }
    [path] = fetch_release(release, tmp_path / "out")
    assert path.read_bytes() == content
    release["releases"][0]["files"]["results/r.json"] = "1" * 64
    with pytest.raises(ChecksumError, match="results/r.json"):
        fetch_release(release, tmp_path / "out2")
    assert not (tmp_path / "out2" / "results" / "r.json").exists()  # nothing half-written


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    from tracekd.datasets import decompose

    release = local_release()
    raw = tmp_path_factory.mktemp("release")
    fetch_release(release, raw)
    options = copy.deepcopy(CONFIG["datasets"]["CoTemp"])
    options["relations"] = ["equal", "overlap", "mix"]  # the files beside the project
    decomposed, _ = decompose("cotemp", REAL_DATA / "cotempqa", options)
    return release_summary(release, raw, decomposed={"CoTemp": decomposed})


def test_summary_reproduces_every_local_release(summary: pl.DataFrame) -> None:
    assert summary.schema == pl.Schema(SUMMARY_SCHEMA)
    files = summary.filter(pl.col("file").is_not_null())
    assert files.height == 5
    assert files["paper_minus_published"].max() <= 0.1
    incorrect = files.filter(pl.col("setting") == "incorrect").row(0, named=True)
    # our rule on the final answer alone, beside the paper's evaluator
    assert (incorrect["paper_acc"], incorrect["ours_acc"]) == (87.4, 77.0)
    correct = files.filter((pl.col("dataset") == "CoTemp") & (pl.col("setting") == "correct"))
    # strict IR judged against our decomposition (anchor + answer facts): the authors' traces
    # list the answer facts only
    assert correct["ir_acc"].to_list() == [6.9] and correct["ir_lenient"].to_list() == [100.0]
    vanilla = files.filter(pl.col("setting") == "vanilla").row(0, named=True)
    assert vanilla["category_acc"] is None and vanilla["ir_lenient"] is None
    babi = files.filter(pl.col("dataset") == "bAbI").row(0, named=True)
    assert babi["table_acc"] == 94.41 and babi["ir_acc"] == 95.2


def test_summary_mean_rows_sit_beside_table_2(summary: pl.DataFrame) -> None:
    means = summary.filter(pl.col("relation") == "mean")
    assert means.height == 4 and set(means["runs"].to_list()) == {1}
    qwen = means.filter((pl.col("model") == "Qwen3-1.7B") & (pl.col("setting") == "correct"))
    row = qwen.row(0, named=True)
    assert (row["table_acc"], row["table_category"], row["table_ir"]) == (52.88, 47.06, 78.99)
    assert row["paper_acc"] == 87.4  # one relation here: not the paper's four-relation mean
    tex = release_summary_latex(summary)
    assert tex.count(r"\\") == summary.height + 1 and r"\toprule" in tex


def test_release_config_mistakes() -> None:
    bad = copy.deepcopy(yaml.safe_load((PROJECT_ROOT / "config" / "config.yaml").read_text()))
    bad["paper_release"]["decomposition"] = "bAbI"
    bad["paper_release"]["decomposition"] = "MARCO"
    with pytest.raises(ConfigError, match="paper_release.decomposition: 'MARCO' is not a configured dataset"):
        validate_config(bad)
    bad = copy.deepcopy(yaml.safe_load((PROJECT_ROOT / "config" / "config.yaml").read_text()))
    bad["paper_release"]["releases"][0]["files"]["results/x.json"] = "not-a-sha"
    with pytest.raises(ConfigError, match="paper_release.releases.0.files.results/x.json"):
        validate_config(bad)


@pytest.mark.slow
def test_the_summary_target_builds_from_the_local_copies(tmp_path: Path) -> None:
    """``snakemake results/reference/summary.csv``: fetch (local override), decompose CoTemp
    (real files), re-score, write the table; nothing else is built."""
    manifest()
    config = yaml.safe_load((PROJECT_ROOT / "config" / "config.yaml").read_text())
    config["results"] = str(tmp_path / "results")
    config["paper_release"] = local_release()
    cotemp = config["datasets"]["CoTemp"]
    cotemp["source"]["local_path"] = str(REAL_DATA / "cotempqa")
    cotemp["relations"] = ["equal", "overlap", "mix"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    target = f"{config['results']}/reference/summary.csv"
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", target, "--configfile", str(path), "--cores", "1",
         "--directory", str(PROJECT_ROOT), "--quiet", "rules"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    frame = pl.read_csv(target)
    assert frame.height == 9 and frame["paper_minus_published"].drop_nulls().max() <= 0.1
    assert json.loads(frame.filter(pl.col("dataset") == "bAbI")["n"].cast(str).to_list()[0]) == 376
    built = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert built == ["CoTemp", "benchmarks", "logs", "reference"]
