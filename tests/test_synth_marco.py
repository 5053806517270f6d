"""Tests of the synthetic MS MARCO generator (tracekd.datasets.synth_marco).

The checks read the written files back with plain ``json`` (not the loader) where they
judge the generator, and through ``decompose_marco`` where they judge that the two fit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekd.datasets import Sampling
from tracekd.datasets.marco import NO_ANSWER, QUERY_TYPES, decompose_marco
from tracekd.datasets.synth_marco import write_synthetic_marco


def _read(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for p in paths for line in p.read_text(encoding="utf-8").splitlines()]


def _expected_drops(rows: list[dict[str, Any]]) -> Counter:
    drops: Counter = Counter()
    for r in rows:
        if not r["answers"] or r["answers"][0] == NO_ANSWER:
            drops["no_answer"] += 1
        elif 1 not in r["passages"]["is_selected"]:
            drops["no_selected_passage"] += 1
    return drops


def test_byte_identical_per_seed(tmp_path: Path) -> None:
    a = write_synthetic_marco(tmp_path / "a", rows={"train": 30, "test": 10}, seed=4)
    b = write_synthetic_marco(tmp_path / "b", rows={"train": 30, "test": 10}, seed=4)
    c = write_synthetic_marco(tmp_path / "c", rows={"train": 30, "test": 10}, seed=5)
    assert [p.name for p in a] == ["synthetic_train.jsonl", "synthetic_test.jsonl"]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_independent_of_python_hash_seed(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from tracekd.datasets.synth_marco import write_synthetic_marco;"
        "write_synthetic_marco(Path(sys.argv[1]), rows={'train': 12, 'test': 4}, seed=9)"
    )
    for index, hash_seed in enumerate(("1", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / str(index))], check=True, env=env)
    for name in ("synthetic_train.jsonl", "synthetic_test.jsonl"):
        assert (tmp_path / "0" / name).read_bytes() == (tmp_path / "1" / name).read_bytes()


def test_layout_is_v11(tmp_path: Path) -> None:
    rows = _read(write_synthetic_marco(tmp_path, rows={"train": 20}, seed=0, passages=6))
    for r in rows:
        assert list(r) == [
            "query_id", "query", "passages", "query_type", "answers", "wellFormedAnswers",
        ]
        assert r["query_type"] in QUERY_TYPES  # lower-case, as in v1.1
        assert all(len(v) == 6 for v in r["passages"].values())
    assert len({r["query_id"] for r in rows}) == 20


def test_loads_through_decompose_with_drops_counted(tmp_path: Path) -> None:
    paths = write_synthetic_marco(tmp_path, rows={"train": 40, "test": 20}, seed=2)
    raw = _read(paths)
    frame, report = decompose_marco(tmp_path, sampling=Sampling())
    drops = _expected_drops(raw)
    assert drops["no_answer"] >= 2 and drops["no_selected_passage"] >= 2
    assert report.to_dict()["dropped"] == dict(drops)
    assert frame.height == 60 - sum(drops.values())
    assert Counter(frame["split"]) == {"train": 40 - 8, "test": 20 - 4}
    assert set(frame["category"]) == set(QUERY_TYPES)
    assert frame.filter(frame["n_selected"] == 2).height >= 1  # sometimes two are selected
    # Both spellings of "no answer" occur.
    no_answer = [r["answers"] for r in raw if not r["answers"] or r["answers"][0] == NO_ANSWER]
    assert [] in no_answer and [NO_ANSWER] in no_answer


def test_single_pool_takes_the_seeded_split(tmp_path: Path) -> None:
    paths = write_synthetic_marco(tmp_path, rows=50, seed=1)
    assert [p.name for p in paths] == ["synthetic_train.jsonl"]
    frame, _ = decompose_marco(
        tmp_path, sampling=Sampling(), split={"test_fraction": 0.3, "seed": 0}
    )
    assert set(frame["split"]) == {"train", "test"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rows": {"dev": 3}},
        {"rows": {"train": 0}},
        {"rows": {"train": 3}, "passages": 0},
        {"rows": {"train": 3}, "passages": 11},
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        write_synthetic_marco(tmp_path, seed=0, **kwargs)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    passages=st.integers(min_value=1, max_value=10),
    n_train=st.integers(min_value=1, max_value=25),
)
def test_answer_is_in_a_selected_passage_only(seed: int, passages: int, n_train: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw = _read(write_synthetic_marco(folder, rows={"train": n_train}, seed=seed, passages=passages))
        frame, report = decompose_marco(folder, sampling=Sampling())
    assert report.to_dict()["dropped"] == dict(_expected_drops(raw))
    for rec in frame.iter_rows(named=True):
        answer = rec["answers"][0]
        context = rec["context"]
        assert len(context) == passages
        assert rec["relevant"] and all(answer in context[i] for i in rec["relevant"])
        assert not any(answer in t for i, t in enumerate(context) if i not in rec["relevant"])


def test_the_plug_in_writer_reads_passages_from_the_source(tmp_path: Path) -> None:
    """``source.passages`` (the demo's shorter contexts) reaches the writer; 5 by default."""
    from tracekd.datasets.synth_marco import write_synthetic

    write_synthetic(tmp_path / "three", {"rows": {"train": 12}, "seed": 1, "passages": 3}, {})
    write_synthetic(tmp_path / "default", {"rows": {"train": 12}, "seed": 1}, {})
    three = _read([tmp_path / "three" / "synthetic_train.jsonl"])
    default = _read([tmp_path / "default" / "synthetic_train.jsonl"])
    assert {len(r["passages"]["passage_text"]) for r in three} == {3}
    assert {len(r["passages"]["passage_text"]) for r in default} == {5}
