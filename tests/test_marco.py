"""Tests of the MS MARCO loader and decomposition (tracekd.datasets.marco)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracekd.datasets import SCHEMA, Sampling
from tracekd.datasets.marco import (
    NO_ANSWER,
    QUERY_TYPES,
    assign_split,
    decompose_marco,
    load_marco,
    split_of_file,
)
from tracekd.errors import RawFormatError

SAMPLE = "ms_marco_v1.1_train_sample.jsonl"


@pytest.fixture(scope="module")
def real_marco(real_data: Path) -> Path:
    """The folder of the real MS MARCO v1.1 sample; skips when it is absent."""
    folder = real_data / "msmarco"
    if not (folder / SAMPLE).is_file():
        pytest.skip(f"real MS MARCO sample not found under {folder} (set TRACEKD_REAL_DATA)")
    return folder


def _raw(folder: Path) -> dict[int, dict[str, Any]]:
    """The sample's rows by query id, read with plain json (independent of the loader)."""
    lines = (folder / SAMPLE).read_text(encoding="utf-8").splitlines()
    return {r["query_id"]: r for r in map(json.loads, lines)}


def row(
    qid: int,
    qtype: str = "description",
    answers: list[str] | None = None,
    selected: list[int] | None = None,
    n: int = 3,
) -> dict[str, Any]:
    """A tiny v1.1 row; passage ``i`` reads ``passage {i} of {qid}``."""
    flags = selected if selected is not None else [0, 1, 0][:n] + [0] * max(0, n - 3)
    return {
        "query_id": qid,
        "query": f"what is thing {qid}",
        "passages": {
            "is_selected": flags,
            "passage_text": [f"passage {i} of {qid}" for i in range(len(flags))],
            "url": [f"http://example.org/{qid}/{i}" for i in range(len(flags))],
        },
        "query_type": qtype,
        "answers": [f"answer {qid}"] if answers is None else answers,
        "wellFormedAnswers": [],
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


V21_SCHEMA = pa.schema(
    [
        ("answers", pa.list_(pa.string())),
        (
            "passages",
            pa.struct(
                [
                    ("is_selected", pa.list_(pa.int32())),
                    ("passage_text", pa.list_(pa.string())),
                    ("url", pa.list_(pa.string())),
                ]
            ),
        ),
        ("query", pa.string()),
        ("query_id", pa.int32()),
        ("query_type", pa.string()),
        ("wellFormedAnswers", pa.list_(pa.string())),
    ]
)


def write_parquet(path: Path, rows: list[dict[str, Any]], schema: pa.Schema = V21_SCHEMA) -> Path:
    """Rows in the v2.1 parquet layout of the hub (struct of lists, int32 ids)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def decompose(folder: Path, **kwargs: Any) -> tuple[pl.DataFrame, dict[str, Any]]:
    frame, report = decompose_marco(folder, sampling=kwargs.pop("sampling", Sampling()), **kwargs)
    return frame, report.to_dict()


# --------------------------------------------------------------------------- real sample


def test_real_sample_counts(real_marco: Path) -> None:
    frame, report = decompose(real_marco)
    raw = _raw(real_marco)
    no_answer = sum(
        1 for r in raw.values() if not r["answers"] or r["answers"][0] == NO_ANSWER
    )
    no_selected = sum(
        1
        for r in raw.values()
        if r["answers"] and r["answers"][0] != NO_ANSWER and 1 not in r["passages"]["is_selected"]
    )
    assert (len(raw), no_answer, no_selected) == (140, 5, 3)
    assert frame.height == 132
    assert report["dropped"] == {"no_answer": 5, "no_selected_passage": 3}
    per = report["per_category"]
    assert {c: v["kept"] for c, v in per.items()} == {
        "description": 63, "entity": 18, "location": 9, "numeric": 41, "person": 1,
    }
    assert sum(v["rows"] for v in per.values()) == 140
    assert all(v["covered"] == v["kept"] and v["flagged"] == 0 for v in per.values())


def test_real_sample_rows_match_raw(real_marco: Path) -> None:
    frame, _ = decompose(real_marco)
    raw = _raw(real_marco)
    assert set(frame["category"]) == set(QUERY_TYPES)
    assert frame["split"].unique().to_list() == ["train"]
    assert frame.columns == [*SCHEMA, "query_id", "n_selected"]
    assert frame["id"].n_unique() == frame.height
    for rec in frame.iter_rows(named=True):
        src = raw[rec["query_id"]]
        flags = src["passages"]["is_selected"]
        assert rec["id"] == f"marco-{src['query_id']}"
        assert rec["category"] == src["query_type"].lower()
        assert rec["question"] == src["query"]
        assert rec["context"] == src["passages"]["passage_text"]
        assert rec["answers"] == [src["answers"][0]]
        assert rec["relevant"] == [i for i, f in enumerate(flags) if f == 1]
        assert rec["n_selected"] == len(rec["relevant"]) >= 1
    # The sample holds rows with two selected passages and rows with two answers.
    assert frame.filter(pl.col("n_selected") == 2).height == 15
    assert any(len(raw[q]["answers"]) == 2 for q in frame["query_id"])


def test_real_sample_seeded_split(real_marco: Path) -> None:
    frame, report = decompose(
        real_marco,
        split={"test_fraction": 0.25, "seed": 3},
        sampling=Sampling(max={"train": 80, "test": 20}, seed=1),
    )
    counts = Counter(frame["split"])
    assert counts == {"train": 80, "test": 20}
    assert report["dropped"]["over_cap"] == 132 - 100


# --------------------------------------------------------------------------- layouts


def test_v21_parquet_upper_case(tmp_path: Path) -> None:
    rows = [
        row(7, "DESCRIPTION"),
        row(8, "NUMERIC", selected=[1, 1, 0]),
        row(9, "LOCATION", answers=[NO_ANSWER], selected=[0, 0, 0]),
        row(10, "PERSON", selected=[0, 0, 0]),
        row(11, "ENTITY", answers=["a", "b"]),
    ]
    write_parquet(tmp_path / "v2.1" / "train-00000-of-00001.parquet", rows)
    loaded = load_marco(tmp_path)
    assert [r.row for r in loaded] == [1, 2, 3, 4, 5]
    assert loaded[1].selected == (0, 1) and loaded[1].split == "train"
    frame, report = decompose(tmp_path)
    assert frame["category"].to_list() == ["description", "numeric", "entity"]
    assert frame["relevant"].to_list() == [[1], [0, 1], [1]]
    assert frame["answers"].to_list() == [["answer 7"], ["answer 8"], ["a"]]
    assert frame["query_id"].dtype == pl.Int64
    assert report["dropped"] == {"no_answer": 1, "no_selected_passage": 1}


def test_mixed_folder(tmp_path: Path) -> None:
    write_parquet(tmp_path / "train-00000-of-00002.parquet", [row(1), row(2, "NUMERIC")])
    write_jsonl(tmp_path / "sub" / "validation.jsonl", [row(3, "person"), row(4, "entity")])
    write_jsonl(tmp_path / "train-extra.json", [row(5, "location")])
    (tmp_path / "README.md").write_text("not data\n")
    frame, report = decompose(tmp_path)
    assert dict(zip(frame["id"], frame["split"], strict=True)) == {
        "marco-1": "train", "marco-2": "train", "marco-5": "train",
        "marco-3": "test", "marco-4": "test",
    }
    assert sum(v["kept"] for v in report["per_category"].values()) == 5
    # The files hold both splits, so the (always filled-in) seeded split leaves them alone.
    same, _ = decompose(tmp_path, split={"test_fraction": 0.5, "seed": 0})
    assert same.equals(frame)


def test_original_list_of_passages_layout(tmp_path: Path) -> None:
    rec = row(4, selected=[0, 0, 1])
    p = rec["passages"]
    rec["passages"] = [
        {"is_selected": s, "passage_text": t, "url": u}
        for s, t, u in zip(p["is_selected"], p["passage_text"], p["url"], strict=True)
    ]
    write_jsonl(tmp_path / "train.jsonl", [rec])
    frame, _ = decompose(tmp_path)
    assert frame["relevant"].to_list() == [[2]]
    assert frame["context"].to_list() == [p["passage_text"]]


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("train-00000-of-00007.parquet", "train"),
        ("validation-00000-of-00001.parquet", "test"),
        ("test-00000-of-00001.parquet", "test"),
        ("ms_marco_v1.1_train_sample.jsonl", "train"),
        ("dev_v2.1.json", "test"),
        ("marco_valid.jsonl", "test"),
        ("pool.jsonl", "train"),
        ("contest.jsonl", "train"),  # a word, not a substring, decides
    ],
)
def test_split_of_file(name: str, split: str) -> None:
    assert split_of_file(Path("x") / name) == split


def test_query_id_in_both_splits_keeps_only_the_train_copy(tmp_path: Path) -> None:
    # the same query on both sides would leak a test item into training: dropped, counted
    write_jsonl(tmp_path / "train.jsonl", [row(1), row(2)])
    write_jsonl(tmp_path / "test.jsonl", [row(1), row(3)])
    frame, report = decompose(tmp_path)
    assert sorted(zip(frame["id"], frame["split"], strict=True)) == [
        ("marco-1", "train"), ("marco-2", "train"), ("marco-3", "test"),
    ]
    assert report["dropped"] == {"test_query_in_train": 1}


# --------------------------------------------------------------------------- errors


def _error(tmp_path: Path) -> RawFormatError:
    with pytest.raises(RawFormatError) as info:
        decompose(tmp_path)
    return info.value


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda r: r.pop("answers"), "answers", "missing field"),
        (lambda r: r.update(query_id="12"), "query_id", "expected an integer, found str"),
        (lambda r: r.update(query=None), "query", "found null"),
        (lambda r: r.update(answers="yes"), "answers", "expected a list"),
        (lambda r: r.update(answers=["ok", 3]), "answers[1]", "found int"),
        (lambda r: r["passages"].pop("url"), "passages.url", "missing field"),
        (lambda r: r["passages"].update(is_selected=[0, 2, 0]), "passages.is_selected[1]", "0 or 1"),
        (lambda r: r["passages"]["url"].pop(), "passages", "url 2"),
        (lambda r: r.update(passages=[]), "passages.passage_text", "no passages"),
        (lambda r: r.update(passages="text"), "passages", "found str"),
        (lambda r: r.update(query_type="YESNO"), "query_type", "unknown query type 'YESNO'"),
    ],
)
def test_bad_field(tmp_path: Path, mutate: Any, field: str, words: str) -> None:
    bad = row(2)
    mutate(bad)
    path = write_jsonl(tmp_path / "train.jsonl", [row(1), bad, row(3)])
    err = _error(tmp_path)
    assert (err.file, err.row, err.field) == (str(path), 2, field)
    assert words in err.message
    assert str(err).startswith(f"{path}:2: {field}: ")


def test_malformed_json_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(row(1)) + "\n\n" + '{"query_id": 2, \n')
    err = _error(tmp_path)
    assert (err.file, err.row, err.field) == (str(path), 3, "json")
    assert "not valid JSON" in err.message and "at column 17" in err.message


def test_json_document_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "train.json").write_text(json.dumps([row(1)], indent=2))
    err = _error(tmp_path)
    assert err.row == 1 and "JSON lines" in err.message


def test_not_an_object(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [row(1), [1, 2]])  # type: ignore[list-item]
    assert (_error(tmp_path).row, _error(tmp_path).field) == (2, "json")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(json.dumps(row(1)).encode() + b"\n" + b'{"query": "caf\xe9"}\n')
    err = _error(tmp_path)
    assert (err.file, err.row, err.field) == (str(path), 2, "text")
    assert "0xe9" in err.message


def test_bom_and_trailing_blank_lines_are_fine(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("\ufeff" + json.dumps(row(1)) + "\n\n\n", encoding="utf-8")
    assert len(load_marco(tmp_path)) == 1


def test_empty_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no MS MARCO file"):
        load_marco(tmp_path)
    (tmp_path / "train.jsonl").write_text("\n")
    err = _error(tmp_path)
    assert err.row is None and "no rows" in err.message


def test_duplicate_query_id_in_one_split(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a_train.jsonl", [row(1)])
    path = write_jsonl(tmp_path / "b_train.jsonl", [row(2), row(1)])
    err = _error(tmp_path)
    assert (err.file, err.row, err.field) == (str(path), 2, "query_id")
    assert "a_train.jsonl:1" in err.message


def test_parquet_missing_column(tmp_path: Path) -> None:
    schema = pa.schema([f for f in V21_SCHEMA if f.name != "query_type"])
    path = write_parquet(tmp_path / "train.parquet", [row(1)], schema)
    err = _error(tmp_path)
    assert (err.file, err.row, err.field) == (str(path), None, "query_type")


def test_parquet_null_value(tmp_path: Path) -> None:
    bad = row(2)
    bad["query"] = None
    path = write_parquet(tmp_path / "train.parquet", [row(1), bad])
    err = _error(tmp_path)
    assert (err.file, err.row, err.field) == (str(path), 2, "query")


def test_parquet_unreadable(tmp_path: Path) -> None:
    (tmp_path / "train.parquet").write_bytes(b"not parquet at all")
    err = _error(tmp_path)
    assert err.row is None and err.field == "file"


def test_parquet_mismatched_lengths(tmp_path: Path) -> None:
    bad = row(2)
    bad["passages"]["is_selected"] = [1]
    path = write_parquet(tmp_path / "train.parquet", [row(1), bad])
    err = _error(tmp_path)
    assert (err.file, err.row, err.field) == (str(path), 2, "passages")


# --------------------------------------------------------------------------- split, determinism


def _pool(tmp_path: Path, n: int = 400, shuffle: int | None = None) -> Path:
    rows = [row(q, QUERY_TYPES[q % 5]) for q in range(1, n + 1)]
    if shuffle is not None:
        random.Random(shuffle).shuffle(rows)
    write_jsonl(tmp_path / "pool.jsonl", rows)
    return tmp_path


def test_seeded_split_is_stable_and_near_fraction(tmp_path: Path) -> None:
    split = {"test_fraction": 0.2, "seed": 5}
    a, _ = decompose(_pool(tmp_path / "a"), split=split)
    b, _ = decompose(_pool(tmp_path / "b", shuffle=1), split=split)
    assign_a = dict(zip(a["id"], a["split"], strict=True))
    assert assign_a == dict(zip(b["id"], b["split"], strict=True))  # order-independent
    assert 0.14 < Counter(assign_a.values())["test"] / len(assign_a) < 0.26
    assert all(assign_split(i, 0.2, 5) == s for i, s in assign_a.items())
    other, _ = decompose(_pool(tmp_path / "a"), split={"test_fraction": 0.2, "seed": 6})
    assert other["split"].to_list() != a["split"].to_list()
    # train rows come first (sample_rows keeps train, then test)
    assert a["split"].to_list() == sorted(a["split"].to_list(), key=["train", "test"].index)


def test_no_split_keeps_file_split(tmp_path: Path) -> None:
    for split in (None, {}):
        frame, _ = decompose(_pool(tmp_path, n=20), split=split)
        assert set(frame["split"]) == {"train"}


def test_bad_split_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        decompose(_pool(tmp_path, n=5), split={"test_fraction": 1.0})
    with pytest.raises(ValueError, match="unknown key"):
        decompose(_pool(tmp_path, n=5), split={"fraction": 0.2})


def test_caps_and_determinism(tmp_path: Path) -> None:
    kwargs = {
        "split": {"test_fraction": 0.3, "seed": 0},
        "sampling": Sampling(max={"train": 50, "test": 10}, seed=2),
    }
    a, report = decompose(_pool(tmp_path), **kwargs)
    b, _ = decompose(_pool(tmp_path), **kwargs)
    assert a.equals(b)
    assert Counter(a["split"]) == {"train": 50, "test": 10}
    assert report["dropped"] == {"over_cap": 400 - 60}
    a.write_parquet(tmp_path / "a.parquet")
    b.write_parquet(tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert dict(a.schema) == {**SCHEMA, "query_id": pl.Int64, "n_selected": pl.Int64}


def test_all_dropped_gives_an_empty_frame_with_the_schema(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [row(1, answers=[]), row(2, selected=[0, 0, 0])])
    frame, report = decompose(tmp_path)
    assert frame.height == 0 and frame.columns == [*SCHEMA, "query_id", "n_selected"]
    assert report["dropped"] == {"no_answer": 1, "no_selected_passage": 1}
    assert report["per_category"]["description"] == {
        "rows": 2, "kept": 0, "covered": 0, "flagged": 0,
    }


def test_both_missing_counts_once_as_no_answer(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "train.jsonl",
        [row(1, answers=[NO_ANSWER], selected=[0, 0, 0]), row(2, answers=[" "]), row(3)],
    )
    _, report = decompose(tmp_path)
    assert report["dropped"] == {"no_answer": 2}
