"""The column-wise MS MARCO decomposition against the row-by-row algorithm it replaced.

``decompose_marco`` reads parquet files by columns (narrow columns first, passages only for the
rows kept). :func:`reference` below is the previous, row-by-row implementation, kept here only
as the yardstick: on generated multi-shard inputs (every drop reason, several selected
passages, ids in both splits, awkward whitespace) both must write the same bytes, and on bad
input both must raise the same error at the same file, row and field.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracekd.datasets import marco
from tracekd.datasets.base import SCHEMA, Report, Sampling, sample_rows
from tracekd.datasets.marco import (
    EXTRAS,
    NO_ANSWER,
    assign_split,
    category_of,
    decompose_marco,
    load_marco,
    row_ids,
)
from tracekd.io import write_json, write_parquet

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


# --------------------------------------------------------------------------- the yardstick


def reference(
    raw_dir: Path, *, sampling: Sampling, split: dict[str, Any] | None = None
) -> tuple[pl.DataFrame, Report]:
    """The row-by-row decomposition as it was before the column-wise reader (verbatim logic)."""
    raw = load_marco(Path(raw_dir))
    ids = row_ids(raw)
    options = marco._split_options(split)
    if len({r.split for r in raw}) > 1:
        options = None
    train_ids = {r.query_id for r in raw if r.split == "train"}
    report = Report("MARCO")
    rows: list[dict[str, Any]] = []
    for r, row_id in zip(raw, ids, strict=True):
        category = category_of(r)
        counts = report.per_category[category]
        counts["rows"] += 1
        if r.split == "test" and r.query_id in train_ids:
            report.dropped["test_query_in_train"] += 1
            continue
        if not r.has_answer:
            report.dropped["no_answer"] += 1
            continue
        relevant = list(r.selected)
        if not relevant:
            report.dropped["no_selected_passage"] += 1
            continue
        counts["covered"] += 1
        rows.append(
            {
                "id": row_id,
                "split": r.split if options is None else assign_split(row_id, *options),
                "category": category,
                "context": list(r.passages),
                "question": r.query,
                "answers": [r.answers[0]],
                "relevant": relevant,
                "query_id": r.query_id,
                "n_selected": len(relevant),
            }
        )
    kept = sample_rows(rows, sampling, group=lambda r: (r["id"],), report=report)
    for r in kept:
        report.per_category[r["category"]]["kept"] += 1
    return pl.DataFrame(kept, schema={**SCHEMA, **EXTRAS}, orient="row"), report


def _bytes(decomposition: tuple[pl.DataFrame, Report], out: Path) -> dict[str, bytes]:
    """The rule's three outputs, written as the rule writes them."""
    frame, report = decomposition
    write_parquet(frame, out / "decomposed.parquet")
    write_json(report.to_dict(), out / "decomposition_report.json")
    return {
        "decomposed.parquet": (out / "decomposed.parquet").read_bytes(),
        "decomposition_report.json": (out / "decomposition_report.json").read_bytes(),
        "decomposition_report.md": report.to_markdown().encode(),
    }


def assert_same_output(raw: Path, tmp_path: Path, **kwargs: Any) -> pl.DataFrame:
    new, old = decompose_marco(raw, **kwargs), reference(raw, **kwargs)
    assert _bytes(new, tmp_path / "new") == _bytes(old, tmp_path / "old")
    return new[0]


ERROR_SAMPLING = Sampling(per_story=None, max={"train": 6, "test": 2}, seed=1)
ERROR_SPLIT = {"test_fraction": 0.3, "seed": 4}


def assert_same_error(raw: Path) -> BaseException:
    """Both raise, the same type with the same text (file, row, field and message)."""
    errors = []
    for run in (decompose_marco, reference):
        with pytest.raises(Exception) as info:  # noqa: PT011 - any error, as long as both agree
            run(raw, sampling=ERROR_SAMPLING, split=ERROR_SPLIT)
        errors.append(info.value)
    new, old = errors
    assert (type(new), str(new)) == (type(old), str(old))
    for name in ("file", "row", "field"):
        assert getattr(new, name, None) == getattr(old, name, None)
    return new


# --------------------------------------------------------------------------- generated input

SPACES = ["", " ", "  ", "\t", "\x1c", "\u3000", "\xa0", "\n"]
TYPES = ["DESCRIPTION", "NUMERIC", "ENTITY", "LOCATION", "PERSON", " Description ", "person\x1f"]


def make_row(rng: random.Random, qid: int) -> dict[str, Any]:
    """One v2.1 row with a random share of every case the decomposition distinguishes."""
    n = rng.randint(1, 10)
    flags = [0] * n
    for i in rng.sample(range(n), min(n, rng.choice([0, 1, 1, 1, 2, 3]))):
        flags[i] = 1
    texts = [f"Passage {i} of query {qid}: {'é' * rng.randint(0, 2)} text." for i in range(n)]
    for i in range(n):
        if not flags[i] and rng.random() < 0.15 and any(t.strip() for j, t in enumerate(texts) if j != i):
            texts[i] = rng.choice(SPACES)  # a blank passage, never a selected one
    answer = rng.choice(
        [f"answer {qid}", f"answer {qid}", f" answer {qid} ", NO_ANSWER,
         rng.choice(SPACES) + NO_ANSWER + rng.choice(SPACES), rng.choice(SPACES), "No Answer Present"]
    )  # fmt: skip
    answers = [] if rng.random() < 0.05 else [answer, *(["second"] if rng.random() < 0.2 else [])]
    return {
        "answers": answers,
        "passages": {"is_selected": flags, "passage_text": texts, "url": [f"http://u/{qid}/{i}" for i in range(n)]},
        "query": rng.choice(["", " ", "\u2003"]) + f"what is {qid}",
        "query_id": qid,
        "query_type": rng.choice(TYPES),
        "wellFormedAnswers": None if rng.random() < 0.1 else ([f"well {qid}"] if rng.random() < 0.3 else []),
    }


def write_shard(path: Path, rows: list[dict[str, Any]], **options: Any) -> Path:
    """Rows in the v2.1 layout; small row groups, so a file spans several of them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=V21_SCHEMA), path, row_group_size=16, **options)
    return path


def make_folder(
    root: Path, *, shards: int = 3, rows: int = 60, seed: int = 0, names: list[str] | None = None,
    ids: list[list[int]] | None = None,
) -> list[Path]:
    """``shards`` files of ``rows`` generated rows each (distinct ids unless ``ids`` says)."""
    rng = random.Random(seed)
    names = names or [f"train-{k:05d}-of-{shards:05d}.parquet" for k in range(shards)]
    ids = ids or [list(range(1000 * k + 1, 1000 * k + rows + 1)) for k in range(len(names))]
    return [write_shard(root / name, [make_row(rng, q) for q in qids]) for name, qids in zip(names, ids, strict=True)]


# --------------------------------------------------------------------------- same bytes

SAMPLINGS = [
    pytest.param(Sampling(per_story=None, max={"train": 40, "test": 10}, seed=42), {"test_fraction": 0.2, "seed": 42},
                 id="paper-like-caps-and-seeded-split"),
    pytest.param(Sampling(per_story=None, max={"train": 10_000, "test": 10_000}, seed=3), {"test_fraction": 0.5, "seed": 1},
                 id="caps-above-the-pool"),
    pytest.param(Sampling(per_story=None, max={"train": 5}, seed=0), None, id="no-split-train-cap-only"),
    pytest.param(Sampling(), {}, id="defaults"),
    pytest.param(Sampling(per_story=2, question="first", max={"test": 3}, seed=9), {"test_fraction": 0.4, "seed": 2},
                 id="per-story-two"),
    pytest.param(Sampling(per_story=0, question="last", seed=5), {"test_fraction": 0.3, "seed": 5},
                 id="per-story-zero-last"),
]  # fmt: skip


@pytest.mark.parametrize(("sampling", "split"), SAMPLINGS)
def test_one_pool_of_shards_gives_the_same_bytes(
    tmp_path: Path, sampling: Sampling, split: dict[str, Any] | None
) -> None:
    make_folder(tmp_path / "raw", shards=4, rows=70, seed=1)
    frame = assert_same_output(tmp_path / "raw", tmp_path, sampling=sampling, split=split)
    assert frame.height > 0


def test_the_generated_input_has_every_case(tmp_path: Path) -> None:
    make_folder(tmp_path / "raw", shards=4, rows=70, seed=1)
    frame, report = decompose_marco(tmp_path / "raw", sampling=Sampling(per_story=None))
    assert set(report.to_dict()["dropped"]) == {"no_answer", "no_selected_passage"}
    assert report.dropped["no_answer"] > 20 and report.dropped["no_selected_passage"] > 5
    assert frame.filter(pl.col("n_selected") >= 2).height > 5
    assert any("" in c or " " in c for c in frame["context"].to_list())  # blank unselected passages


def test_train_and_validation_shards_with_a_leak(tmp_path: Path) -> None:
    # validation repeats ids of both train shards: dropped from test as a leak, and counted
    make_folder(
        tmp_path / "raw", seed=2,
        names=["train-00000-of-00002.parquet", "train-00001-of-00002.parquet", "validation-00000-of-00001.parquet"],
        ids=[list(range(1, 51)), list(range(51, 101)), [*range(41, 61), *range(200, 240)]],
    )  # fmt: skip
    for sampling in (Sampling(per_story=None), Sampling(per_story=None, max={"train": 30, "test": 8}, seed=7)):
        frame = assert_same_output(
            tmp_path / "raw", tmp_path, sampling=sampling, split={"test_fraction": 0.5, "seed": 0}
        )
        assert set(frame["split"]) == {"train", "test"}
    _, report = decompose_marco(tmp_path / "raw", sampling=Sampling(per_story=None))
    assert report.dropped["test_query_in_train"] > 0


def test_parquet_and_json_lines_mixed(tmp_path: Path) -> None:
    rng = random.Random(5)
    make_folder(tmp_path / "raw", shards=2, rows=30, seed=3)
    lines = [json.dumps(make_row(rng, q)) for q in range(5000, 5030)]
    (tmp_path / "raw" / "train-extra.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert_same_output(tmp_path / "raw", tmp_path, sampling=Sampling(per_story=None, max={"train": 40}, seed=1),
                       split={"test_fraction": 0.25, "seed": 8})  # fmt: skip


def test_other_arrow_layouts_give_the_same_bytes(tmp_path: Path) -> None:
    # large strings and lists, uint32 ids, int8 flags (column-wise); uint64 ids (row by row)
    rows = [make_row(random.Random(q), q) for q in range(1, 41)]
    table = pa.Table.from_pylist(rows, schema=V21_SCHEMA)
    wide = pa.schema(
        [
            ("answers", pa.large_list(pa.large_string())),
            ("passages", pa.struct([("is_selected", pa.list_(pa.int8())), ("passage_text", pa.large_list(pa.string())),
                                    ("url", pa.list_(pa.large_string()))])),
            ("query", pa.large_string()),
            ("query_id", pa.uint32()),
            ("query_type", pa.large_string()),
            ("wellFormedAnswers", pa.list_(pa.string())),
        ]
    )  # fmt: skip
    pq.write_table(table.cast(wide), tmp_path / "train-a.parquet")
    pq.write_table(table.set_column(3, "query_id", pa.array(range(101, 141), pa.uint64())),
                   tmp_path / "train-b.parquet")  # fmt: skip
    pq.write_table(table.drop_columns("wellFormedAnswers").set_column(3, "query_id", pa.array(range(201, 241), pa.int64())),
                   tmp_path / "train-c.parquet")  # fmt: skip
    assert_same_output(tmp_path, tmp_path / "out", sampling=Sampling(per_story=None, max={"train": 30}, seed=2),
                       split={"test_fraction": 0.2, "seed": 0})  # fmt: skip


def test_generated_shards_take_the_column_wise_path(tmp_path: Path) -> None:
    # otherwise the comparisons above would only compare the row-by-row reader with itself
    for path in make_folder(tmp_path, shards=2, rows=40, seed=13):
        narrow = marco._scan_narrow(path)
        assert narrow is not None and narrow.height == 40
        kept = marco._scan_passages(path, [1, 40])
        assert kept is not None and set(kept) == {1, 40}


def test_the_row_by_row_fallbacks_give_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_folder(tmp_path / "raw", shards=3, rows=50, seed=4)
    kwargs: dict[str, Any] = {"sampling": Sampling(per_story=None, max={"train": 20, "test": 5}, seed=1),
                              "split": {"test_fraction": 0.2, "seed": 3}}  # fmt: skip
    expected = _bytes(reference(tmp_path / "raw", **kwargs), tmp_path / "old")
    with monkeypatch.context() as patch:  # the passages scan fails: each file is read row by row
        patch.setattr(marco, "_scan_passages", lambda path, wanted: None)
        assert _bytes(decompose_marco(tmp_path / "raw", **kwargs), tmp_path / "a") == expected
    with monkeypatch.context() as patch:  # no file is read by columns at all
        patch.setattr(marco, "_scan_narrow", lambda path: None)
        assert _bytes(decompose_marco(tmp_path / "raw", **kwargs), tmp_path / "b") == expected


# --------------------------------------------------------------------------- the same errors


def _mutate(path: Path, row: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite one shard with ``change`` applied to its 1-based ``row``."""
    rows = pq.read_table(path).to_pylist()
    change(rows[row - 1])
    pq.write_table(pa.Table.from_pylist(rows, schema=V21_SCHEMA), path, row_group_size=16)


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(row: dict[str, Any]) -> None:
        *parents, last = field.split(".")
        target = row
        for name in parents:
            target = target[name]
        target[last] = value(target[last]) if callable(value) else value

    return change


def _selected_blank(row: dict[str, Any]) -> None:
    p = row["passages"]
    p["is_selected"] = [1] + [0] * (len(p["is_selected"]) - 1)
    p["passage_text"] = ["\u3000\x1c", *p["passage_text"][1:]]


# (id, change to row 40 of the third shard: a row the caps would not keep)
ROW_FAULTS: list[Any] = [
    pytest.param(_set("query", None), id="query-null"),
    pytest.param(_set("query", "\x1c\u3000 "), id="query-python-whitespace-only"),
    pytest.param(_set("query_id", None), id="query-id-null"),
    pytest.param(_set("query_type", None), id="query-type-null"),
    pytest.param(_set("query_type", "YESNO"), id="query-type-unknown"),
    pytest.param(_set("answers", None), id="answers-null"),
    pytest.param(_set("answers", ["a", None]), id="answers-item-null"),
    pytest.param(_set("wellFormedAnswers", [None]), id="well-formed-item-null"),
    pytest.param(_set("passages", None), id="passages-null"),
    pytest.param(_set("passages.is_selected", None), id="flags-null"),
    pytest.param(_set("passages.is_selected", lambda f: [2, *f[1:]]), id="flag-two"),
    pytest.param(_set("passages.is_selected", lambda f: [None, *f[1:]]), id="flag-null"),
    pytest.param(_set("passages.passage_text", None), id="texts-null"),
    pytest.param(_set("passages.passage_text", lambda t: [None, *t[1:]]), id="text-null"),
    pytest.param(_set("passages.url", lambda u: [*u[:-1], None]), id="url-null"),
    pytest.param(_set("passages.url", lambda u: [*u, "http://extra"]), id="lists-differ"),
    pytest.param(_set("passages", {"is_selected": [], "passage_text": [], "url": []}), id="no-passages"),
    pytest.param(_set("passages.passage_text", lambda t: ["\xa0"] * len(t)), id="all-passages-blank"),
    pytest.param(_selected_blank, id="selected-passage-blank"),
]


@pytest.mark.parametrize("change", ROW_FAULTS)
def test_a_bad_row_outside_the_sample_is_the_same_located_error(
    tmp_path: Path, change: Callable[[dict[str, Any]], None]
) -> None:
    paths = make_folder(tmp_path, shards=4, rows=50, seed=6)
    clean, _ = decompose_marco(tmp_path, sampling=ERROR_SAMPLING, split=ERROR_SPLIT)
    assert "marco-2040" not in clean["id"].to_list()  # the row to spoil is not in the sample
    _mutate(paths[2], 40, change)
    err = assert_same_error(tmp_path)
    assert (getattr(err, "file", None), getattr(err, "row", None)) == (str(paths[2]), 40)


def _bad_utf8(path: Path, marker: str) -> None:
    """Replace ``marker`` (ASCII, stored as is: no compression, dictionary or statistics) by
    invalid UTF-8."""
    data = path.read_bytes()
    assert data.count(marker.encode()) == 1
    path.write_bytes(data.replace(marker.encode(), b"\xff" + marker.encode()[1:]))


MARKER = "MARKER-text"
UTF8_FAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "passage-text": _set("passages.passage_text", lambda t: [*t[:-1], MARKER]),
    "url": _set("passages.url", lambda u: [*u[:-1], MARKER]),
    "query": _set("query", MARKER),
    "answer": _set("answers", [MARKER]),
}


@pytest.mark.parametrize("where", list(UTF8_FAULTS))
def test_invalid_utf8_in_any_text_is_the_same_located_error(tmp_path: Path, where: str) -> None:
    make_folder(tmp_path, shards=1, rows=40, seed=9)
    rng = random.Random(8)
    rows = [make_row(rng, q) for q in range(2001, 2041)]
    UTF8_FAULTS[where](rows[29])
    path = write_shard(tmp_path / "train-00001-of-00001.parquet", rows, compression="none",
                       use_dictionary=False, write_statistics=False)  # fmt: skip
    _bad_utf8(path, MARKER)
    err = assert_same_error(tmp_path)
    assert (getattr(err, "file", None), getattr(err, "row", None), getattr(err, "field", None)) == (str(path), 30, "text")


def test_earlier_file_decides_between_two_errors(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, shards=4, rows=30, seed=10)
    _mutate(paths[1], 25, _selected_blank)  # a passage fault, found by the passages scan
    _mutate(paths[2], 3, _set("query", None))  # a narrow fault in a later file
    assert assert_same_error(tmp_path).row == 25


def test_a_bad_row_comes_before_a_repeated_id_or_type(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, shards=3, rows=30, seed=11, ids=[list(range(1, 31)), list(range(20, 50)), list(range(60, 90))])
    assert assert_same_error(tmp_path).field == "query_id"  # the repeat alone
    _mutate(paths[2], 30, _set("passages.url", lambda u: u[:-1]))
    assert (assert_same_error(tmp_path).file, assert_same_error(tmp_path).field) == (str(paths[2]), "passages")
    _mutate(paths[0], 2, _set("query_type", "why"))
    assert assert_same_error(tmp_path).field == "passages"


def test_unreadable_empty_and_json_files_keep_their_place(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, shards=3, rows=30, seed=12)
    write_shard(paths[1], [])  # an empty shard between good ones
    assert assert_same_error(tmp_path).field == "rows"
    paths[1].write_bytes(paths[2].read_bytes()[:-50])  # a truncated one
    assert assert_same_error(tmp_path).field == "file"
    paths[1].unlink()
    bad_json = tmp_path / "train-00001-x.jsonl"
    bad_json.write_text('{"query": "what"}\n')
    assert assert_same_error(tmp_path).file == str(bad_json)
    _mutate(paths[0], 30, _selected_blank)  # ... but a bad row in an earlier parquet file comes first
    assert assert_same_error(tmp_path).file == str(paths[0])


# --------------------------------------------------------------------------- the text rules


def test_whitespace_class_is_pythons() -> None:
    assert all(not chr(i).isspace() for i in range(0x3001, sys.maxunicode + 1))
    spaces = [chr(i) for i in range(0x3001) if chr(i).isspace()]
    texts = ["", "a", *spaces, *(s + "x" + s for s in spaces), "".join(spaces), "\u200b", "\ufeff", "\x00"]
    frame = pl.DataFrame({"t": texts}).select(pl.col("t").str.contains(marco._NONBLANK))
    assert frame["t"].to_list() == [bool(t.strip()) for t in texts]


def test_no_answer_rule_is_the_row_readers() -> None:
    answers = [NO_ANSWER, f" {NO_ANSWER}\x1c", f"\u3000{NO_ANSWER}\n", "", " ", "\x1f", "No Answer Present",
               f"{NO_ANSWER}.", f"x{NO_ANSWER}", "No answer present.", f"{NO_ANSWER} {NO_ANSWER}", "fine"]  # fmt: skip
    frame = pl.DataFrame({"a": answers}).select(pl.col("a").str.contains(marco._NO_ANSWER_TEXT))
    assert frame["a"].to_list() == [a.strip() in ("", NO_ANSWER) for a in answers]


# --------------------------------------------------------------------------- the benchmark


def test_fullsize_benchmark_on_a_small_copy(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "marco_fullsize.py"
    spec = importlib.util.spec_from_file_location("marco_fullsize", script)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.main(["--data", str(tmp_path / "data"), "--rows", "3000", "--shards", "3"])
    assert figures["rows"] == 3000 and figures["kept"] > 1000
    assert set(figures["dropped"]) == {"no_answer", "no_selected_passage"}
    assert set(figures["sha256"]) == {"decomposed.parquet", "decomposition_report.json"}
    files = sorted((tmp_path / "data").glob("*.parquet"))
    assert [p.name for p in files] == [f"train-{k:05d}-of-00003.parquet" for k in range(3)]
    assert pq.read_schema(files[0]).remove_metadata() == V21_SCHEMA
    # the same data and code give the same bytes (the figure compared before and after a change)
    again = bench.main(["--data", str(tmp_path / "data"), "--rows", "3000", "--shards", "3"])
    assert again["sha256"] == figures["sha256"]
