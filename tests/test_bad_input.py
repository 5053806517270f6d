"""Table-driven bad-input suite: every malformed input stops with a located error or is flagged.

DESIGN.md's quality bar: "Bad input (missing field, malformed JSON line, empty context,
unparseable date, a config typo) stops with an error naming the file, row and field; no partial
output is left looking complete." Each table row below is one malformed input, written to
``tmp_path`` and fed through the real entry point:

- raw files through ``load_babi`` / ``load_cotemp`` / ``load_marco`` (and the ``decompose_*``
  functions where the check lives there): a :class:`RawFormatError` whose ``file``, ``row`` and
  ``field`` are the expected ones and whose message reads ``<file>:<row>: <field>: ...``; or,
  where the design flags rather than stops (bAbI supporting ids that point nowhere, CoTemp rows
  the temporal rules cannot resolve), the flag and its reason in the frame and the report;
- model outputs through ``parse_output`` and ``score_predictions``: a ``parse_status`` and one
  scores row each, never dropped, never an exception;
- config mistakes through ``validate_config`` / ``load_config``: a :class:`ConfigError` naming
  the dotted key path (or the file);
- the decompose rule's body (``decompose`` + ``write_parquet``/``write_json``): when
  decomposition fails, no output file exists afterwards.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tracekd.config import ConfigError, load_config, validate_config
from tracekd.datasets import Sampling, decompose
from tracekd.datasets.babi import decompose_babi, load_babi
from tracekd.datasets.cotemp import decompose_cotemp, load_cotemp
from tracekd.datasets.marco import decompose_marco, load_marco
from tracekd.errors import RawFormatError
from tracekd.evaluate.score import score_predictions
from tracekd.io import write_json, write_parquet
from tracekd.model.predict import parsed_predictions
from tracekd.traces import TraceTemplate, parse_output

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = PROJECT_ROOT / "config" / "demo.yaml"


def assert_located(err: RawFormatError, file: Path, row: int | None, field: str) -> None:
    """The error names the file, the row (``None``: the whole file) and the field."""
    assert Path(err.file) == file, err
    assert err.row == row, err
    assert err.field == field, err
    where = str(file) if row is None else f"{file}:{row}"
    assert str(err).startswith(f"{where}: {field}: "), str(err)
    assert err.message, err


# =============================================================================== bAbI

BABI_FILE = "qa1_single-supporting-fact_{split}.txt"
BABI_GOOD = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "1 Sandra journeyed to the garden.\n"
    "2 Where is Sandra? \tgarden\t1\n"
)
STORY = "1 Mary moved to the bathroom.\n2 John went to the hallway.\n"


def _babi_dir(root: Path, train: bytes | str, *, task_file: str = BABI_FILE) -> Path:
    raw = root / "babi"
    raw.mkdir(parents=True)
    data = train.encode() if isinstance(train, str) else train
    (raw / task_file.format(split="train")).write_bytes(data)
    (raw / task_file.format(split="test")).write_bytes(BABI_GOOD.encode())
    return raw


# (id, file bytes, row, field); the file is qa1's train file unless the id says qa8
BABI_ERRORS: list[Any] = [
    pytest.param(b"", None, "text", id="empty-file"),
    pytest.param(b"\n \n\n", None, "text", id="only-blank-lines"),
    pytest.param(STORY + "3 Where is Mary?\n", 3, "fields", id="question-cut-before-tabs-at-end"),
    pytest.param(
        STORY + "3 Where is Mary?\n4 Where is John?\thallway\t2\n",
        3, "fields", id="question-cut-before-tabs-mid-file",
    ),
    pytest.param(BABI_GOOD + "1 Daniel went to the", 6, "fields", id="truncated-in-a-sentence"),
    pytest.param(BABI_GOOD + "1 Daniel went home.\n", 6, "fields", id="file-ends-with-a-sentence"),
    pytest.param(STORY + "3 Where is Mary?\tbathroom", 3, "fields", id="question-cut-after-answer"),
    pytest.param(STORY + "3 Where is Mary?\tbathroom\t", 3, "supporting",
                 id="empty-supporting-ids"),
    pytest.param(STORY + "3 Where is Mary?\tbathroom\tone", 3, "supporting",
                 id="supporting-not-int"),
    pytest.param(STORY + "3 Where is Mary?\tbathroom\t1.5", 3, "supporting", id="supporting-float"),
    pytest.param(STORY + "3 Where is Mary?\t \t1", 3, "answer", id="empty-answer"),
    pytest.param(STORY + "3 \tbathroom\t1", 3, "question", id="empty-question"),
    pytest.param(STORY + "3 Where?\tbathroom\t1\textra", 3, "fields", id="four-tab-fields"),
    pytest.param("1 Mary moved\tto the bathroom.\n", 1, "fields", id="tab-inside-a-sentence"),
    pytest.param("one Mary moved.\n2 Where is Mary?\tx\t1\n", 1, "id", id="id-not-an-integer"),
    pytest.param("0 Mary moved.\n1 Where is Mary?\tx\t1\n", 1, "id", id="id-zero"),
    pytest.param(" 1 Mary moved.\n2 Where is Mary?\tx\t1\n", 1, "id", id="leading-space"),
    pytest.param("1 Mary moved.\n3 Where is Mary?\tx\t1\n", 2, "id", id="id-skips-a-line"),
    pytest.param(
        "1 Mary moved.\n2 John went.\n2 Sandra went.\n3 Where?\tx\t1\n", 3, "id",
        id="duplicated-id",
    ),
    pytest.param("1 Mary moved.\n\n2 Where is Mary?\tx\t1\n", 2, "id", id="blank-line-inside"),
    pytest.param("1 \n2 Where is Mary?\tx\t1\n", 1, "text", id="empty-sentence"),
    pytest.param(
        b"1 Mary moved.\n2 John went to the h\xe9llway.\n3 Where?\tx\t1\n", 2, "text",
        id="non-utf8-latin1-byte",
    ),
    pytest.param("1 Mary moved.\n2 Where?\tx\t1\n".encode("utf-16"), 1, "text", id="utf16-file"),
    pytest.param("1 Mary moved.\r2 Where is Mary?\tx\t1\r", 1, "text", id="cr-only-line-endings"),
]


@pytest.mark.parametrize(("data", "row", "field"), BABI_ERRORS)
def test_babi_bad_file_stops_with_location(
    tmp_path: Path, data: bytes | str, row: int | None, field: str
) -> None:
    raw = _babi_dir(tmp_path, data)
    with pytest.raises(RawFormatError) as info:
        load_babi(raw, ["qa1"], ["train"])
    assert_located(info.value, raw / BABI_FILE.format(split="train"), row, field)


def test_babi_qa8_empty_list_item(tmp_path: Path) -> None:
    qa8 = "qa8_lists-sets_{split}.txt"
    raw = _babi_dir(tmp_path, STORY + "3 What is Mary carrying?\tapple,,milk\t1\n", task_file=qa8)
    with pytest.raises(RawFormatError) as info:
        load_babi(raw, ["qa8"], ["train"])
    assert_located(info.value, raw / qa8.format(split="train"), 3, "answer")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("\ufeff" + BABI_GOOD, id="utf8-bom"),
        pytest.param(BABI_GOOD.replace("\n", "\r\n"), id="crlf"),
        pytest.param(BABI_GOOD + "\n\n  \n", id="trailing-blank-lines"),
        pytest.param(BABI_GOOD.rstrip("\n"), id="no-final-newline"),
    ],
)
def test_babi_harmless_variants_parse_like_the_clean_file(tmp_path: Path, data: str) -> None:
    clean = load_babi(_babi_dir(tmp_path / "a", BABI_GOOD), ["qa1"], ["train"])
    variant = load_babi(_babi_dir(tmp_path / "b", data), ["qa1"], ["train"])
    def fields(q: Any) -> tuple[Any, ...]:
        return q.context, q.question, q.answers, q.relevant, q.missing_support

    assert [fields(q) for q in clean] == [fields(q) for q in variant]


# supporting ids that point nowhere are flagged (DESIGN: never silently repaired, never a crash)
BABI_FLAGGED: list[Any] = [
    pytest.param(STORY + "3 Where is Mary?\tbathroom\t9\n", (9,), (), id="support-past-the-story"),
    pytest.param(STORY + "3 Where is Mary?\tbathroom\t0\n", (0,), (), id="support-id-zero"),
    pytest.param(
        STORY + "3 Where is Mary?\tbathroom\t1\n4 Where is John?\thallway\t3\n",
        (3,), (), id="support-points-at-a-question",
    ),
    pytest.param(
        STORY + "3 Where is Mary?\tbathroom\t1 4\n", (4,), (0,), id="one-of-two-ids-missing",
    ),
    pytest.param(
        BABI_GOOD.replace("2 Where is Sandra? \tgarden\t1", "2 Where is Sandra? \tgarden\t2"),
        (2,), (), id="support-id-of-the-previous-story",
    ),
]


@pytest.mark.parametrize(("data", "missing", "relevant"), BABI_FLAGGED)
@pytest.mark.parametrize("policy", ["keep", "drop"])
def test_babi_missing_support_is_flagged_not_crashed(
    tmp_path: Path, data: str, missing: tuple[int, ...], relevant: tuple[int, ...], policy: str
) -> None:
    raw = _babi_dir(tmp_path, data)
    flagged_q = [q for q in load_babi(raw, ["qa1"], ["train"]) if q.missing_support]
    assert len(flagged_q) == 1
    assert flagged_q[0].missing_support == missing
    assert flagged_q[0].relevant == relevant  # the ids that do resolve, nothing invented

    sampling = Sampling(per_story=None, flagged=policy)
    frame, report = decompose_babi(raw, tasks=["qa1"], sampling=sampling)
    counts = report.to_dict()
    assert counts["flag_reasons"] == {"single-supporting-fact": {"missing_support": 1}}
    assert counts["per_category"]["single-supporting-fact"]["flagged"] == 1
    if policy == "keep":
        rows = frame.filter(pl.col("flagged"))
        assert rows.height == 1 and rows["relevant"].to_list() == [list(relevant)]
    else:
        assert not frame["flagged"].any()
        assert counts["dropped"]["missing_support"] == 1


# =============================================================================== CoTemp

COTEMP_ROW: dict[str, Any] = {
    "index": 0,
    "triple_element": "S1_R1_O2",
    "question": (
        "While Ann Lee worked for Acme Corp, which employer did Ann Lee work for within the "
        "same time interval?"
    ),
    "facts": [
        "Ann Lee works for Acme Corp from 2001 to 2004.",
        "Ann Lee works for Beta Labs from 2001 to 2004.",
        "Ann Lee works for Gamma Inc from 1990 to 1992.",
    ],
    "answer": ["Beta Labs"],
}
ROW2 = {**COTEMP_ROW, "index": 1}


def _line(**changes: Any) -> str:
    row = {k: v for k, v in {**COTEMP_ROW, **changes}.items() if v is not _DROP}
    return json.dumps(row, ensure_ascii=False)


_DROP = object()


def _cotemp_dir(root: Path, data: bytes | str) -> Path:
    raw = root / "cotemp"
    raw.mkdir(parents=True)
    (raw / "equal.json").write_bytes(data.encode() if isinstance(data, str) else data)
    return raw


GOOD_LINE = _line()
COTEMP_ERRORS: list[Any] = [
    pytest.param(b"", None, "text", id="empty-file"),
    pytest.param("\n  \n", None, "text", id="only-blank-lines"),
    pytest.param(GOOD_LINE + "\n" + json.dumps(ROW2)[:60] + "\n", 2, "json",
                 id="json-line-cut-mid"),
    pytest.param(GOOD_LINE[:-1] + "\n", 1, "json", id="missing-closing-brace"),
    pytest.param("index: 0, question: what\n", 1, "json", id="not-json"),
    pytest.param("[1, 2, 3]\n", 1, "json", id="array-not-object"),
    pytest.param('"a string"\n', 1, "json", id="string-not-object"),
    *[
        pytest.param(_line(**{name: _DROP}), 1, name, id=f"missing-{name}")
        for name in ("index", "triple_element", "question", "facts", "answer")
    ],
    pytest.param(_line(index="0"), 1, "index", id="index-string"),
    pytest.param(_line(index=-1), 1, "index", id="index-negative"),
    pytest.param(_line(index=True), 1, "index", id="index-bool"),
    pytest.param(_line(index=0.5), 1, "index", id="index-float"),
    pytest.param(_line(index=None), 1, "index", id="index-null"),
    pytest.param(_line(triple_element="S3_R1_O1"), 1, "triple_element", id="triple-unknown"),
    pytest.param(_line(question=""), 1, "question", id="question-empty"),
    pytest.param(_line(question=["While"]), 1, "question", id="question-list"),
    pytest.param(_line(facts="Ann Lee works for X in 2001."), 1, "facts", id="facts-string"),
    pytest.param(_line(facts=[]), 1, "facts", id="facts-empty-context"),
    pytest.param(_line(facts=["   "]), 1, "facts", id="facts-blank-sentence"),
    pytest.param(_line(facts=[2001]), 1, "facts", id="facts-item-int"),
    pytest.param(_line(facts={"0": "x"}), 1, "facts", id="facts-object"),
    pytest.param(_line(answer=[]), 1, "answer", id="answer-empty-list"),
    pytest.param(_line(answer="Beta Labs"), 1, "answer", id="answer-string"),
    pytest.param(_line(answer=[None]), 1, "answer", id="answer-item-null"),
    pytest.param(GOOD_LINE + "\n" + GOOD_LINE + "\n", 2, "index", id="duplicated-index"),
    pytest.param(GOOD_LINE + "\n\n" + json.dumps(ROW2) + "\n", 2, "json", id="blank-line-inside"),
    pytest.param(
        (GOOD_LINE + "\n").encode() + json.dumps(ROW2).encode().replace(b"Gamma", b"G\xe4mma"),
        2, "text", id="non-utf8-byte",
    ),
    pytest.param(GOOD_LINE.encode("utf-16"), 1, "text", id="utf16-file"),
    pytest.param(GOOD_LINE.replace('"index": 0', '"index": NaN'), 1, "index", id="index-nan"),
]


@pytest.mark.parametrize(("data", "row", "field"), COTEMP_ERRORS)
def test_cotemp_bad_file_stops_with_location(
    tmp_path: Path, data: bytes | str, row: int | None, field: str
) -> None:
    raw = _cotemp_dir(tmp_path, data)
    with pytest.raises(RawFormatError) as info:
        load_cotemp(raw)
    assert_located(info.value, raw / "equal.json", row, field)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("\ufeff" + GOOD_LINE + "\n", id="utf8-bom"),
        pytest.param(GOOD_LINE + "\r\n" + json.dumps(ROW2) + "\r\n", id="crlf"),
        pytest.param(GOOD_LINE + "\n\n\n", id="trailing-blank-lines"),
        pytest.param(_line(source="wikidata"), id="unknown-extra-field"),
    ],
)
def test_cotemp_harmless_variants_load(tmp_path: Path, data: str) -> None:
    rows = load_cotemp(_cotemp_dir(tmp_path, data))
    assert rows[0].facts == tuple(COTEMP_ROW["facts"])
    assert rows[0].answers == ("Beta Labs",)


def _facts(anchor: str, answer: str = "Ann Lee works for Beta Labs from 2001 to 2004.") -> list:
    return [anchor, answer, "Ann Lee works for Gamma Inc from 1990 to 1992."]


ANCHOR = "Ann Lee works for Acme Corp from {} to {}."
# rows the temporal rules cannot resolve: flagged with a reason (DESIGN: never guessed)
COTEMP_FLAGGED: list[Any] = [
    pytest.param(_facts(ANCHOR.format("Smarch, 2001", "2004")), "unparsed_date", id="month-name"),
    pytest.param(_facts(ANCHOR.format("February 30, 2001", "2004")), "unparsed_date",
                 id="day-out-of-range"),
    pytest.param(_facts(ANCHOR.format("0", "2004")), "unparsed_date", id="year-zero"),
    pytest.param(_facts(ANCHOR.format("20011", "2004")), "unparsed_date", id="five-digit-year"),
    pytest.param(_facts(ANCHOR.format("2004", "2001")), "unparsed_date", id="ends-before-start"),
    pytest.param(_facts(ANCHOR.format("2001", "present")), "unparsed_date", id="open-ended-span"),
    # no "in D."/"from D to D." date part: the object cannot be told apart, so no fact is the
    # question's anchor event
    pytest.param(_facts("Ann Lee works for Acme Corp since 2001."), "no_anchor",
                 id="since-instead-of-from-to"),
    pytest.param(_facts(ANCHOR.format("2001", "2004"),
                        "Ann Lee works for Beta Labs from 2001 to Jun 2004."),
                 "unparsed_date", id="answer-fact-bad-date"),
    pytest.param(_facts(ANCHOR.format("2001-01-01", "2004")), "unparsed_date", id="iso-date"),
    pytest.param(_facts("Ann Lee likes Acme Corp a lot."), "unparsed_fact", id="no-fact-template"),
    pytest.param(_facts("Bob Ray works for Acme Corp from 2001 to 2004."), "no_anchor",
                 id="question-names-no-fact"),
]


@pytest.mark.parametrize(("facts", "reason"), COTEMP_FLAGGED)
@pytest.mark.parametrize("policy", ["keep", "drop"])
def test_cotemp_unresolvable_row_is_flagged_with_reason(
    tmp_path: Path, facts: list[str], reason: str, policy: str
) -> None:
    raw = _cotemp_dir(tmp_path, _line(facts=facts) + "\n" + _line(index=1) + "\n")
    frame, report = decompose_cotemp(
        raw, sampling=Sampling(per_story=None, flagged=policy), split={"test_fraction": 0.5}
    )
    counts = report.to_dict()
    assert counts["flag_reasons"] == {"equal": {reason: 1}}
    assert counts["per_category"]["equal"] == {
        "rows": 2, "kept": 2 if policy == "keep" else 1, "covered": 1, "flagged": 1,
    }
    bad = frame.filter(pl.col("source_index") == 0)
    if policy == "keep":
        assert bad["flagged"].to_list() == [True]
        assert bad["flag_reason"].to_list() == [reason]
    else:
        assert bad.height == 0 and counts["dropped"] == {reason: 1}
    good = frame.filter(pl.col("source_index") == 1)
    assert good["flagged"].to_list() == [False] and good["relevant"].to_list() == [[0, 1]]


# =============================================================================== MS MARCO

MARCO_ROW: dict[str, Any] = {
    "query_id": 7,
    "query": "what is a tardigrade",
    "query_type": "description",
    "answers": ["A tiny animal."],
    "passages": {
        "is_selected": [0, 1],
        "passage_text": ["Moss grows on rocks.", "A tardigrade is a tiny animal."],
        "url": ["http://a", "http://b"],
    },
    "wellFormedAnswers": [],
}


def _mline(**changes: Any) -> str:
    row = {k: v for k, v in {**copy.deepcopy(MARCO_ROW), **changes}.items() if v is not _DROP}
    return json.dumps(row)


def _passages(**changes: Any) -> dict[str, Any]:
    merged = {**copy.deepcopy(MARCO_ROW["passages"]), **changes}
    return {k: v for k, v in merged.items() if v is not _DROP}


def _marco_dir(root: Path, data: bytes | str, name: str = "train.jsonl") -> Path:
    raw = root / "marco"
    raw.mkdir(parents=True)
    (raw / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return raw


M_GOOD = _mline()
M_ROW2 = _mline(query_id=8)
LIST_LAYOUT = [
    {"is_selected": 0, "passage_text": "Moss.", "url": "http://a"},
    {"is_selected": 1, "passage_text": "A tardigrade.", "url": "http://b"},
]
MARCO_ERRORS: list[Any] = [
    pytest.param(b"", None, "rows", id="empty-file"),
    pytest.param("\n\n", None, "rows", id="only-blank-lines"),
    pytest.param(M_GOOD + "\n" + M_ROW2[:70] + "\n", 2, "json", id="json-line-cut-mid"),
    pytest.param(M_GOOD + "\n" + M_ROW2[:70], 2, "json", id="file-cut-mid-line"),
    pytest.param('["not", "an", "object"]\n', 1, "json", id="array-not-object"),
    *[
        pytest.param(_mline(**{name: _DROP}), 1, name, id=f"missing-{name}")
        for name in ("query", "query_id", "query_type", "answers", "passages")
    ],
    pytest.param(_mline(query_id="7"), 1, "query_id", id="query-id-string"),
    pytest.param(_mline(query_id=True), 1, "query_id", id="query-id-bool"),
    pytest.param(_mline(query=7), 1, "query", id="query-int"),
    pytest.param(_mline(query="  "), 1, "query", id="query-blank"),
    pytest.param(_mline(query_type=None), 1, "query_type", id="query-type-null"),
    pytest.param(_mline(answers="A tiny animal."), 1, "answers", id="answers-string"),
    pytest.param(_mline(answers=[1]), 1, "answers[0]", id="answers-item-int"),
    pytest.param(_mline(passages="text"), 1, "passages", id="passages-string"),
    pytest.param(_mline(passages=_passages(url=_DROP)), 1, "passages.url",
                 id="passages-missing-url"),
    pytest.param(_mline(passages=[*LIST_LAYOUT[:1], {"is_selected": 1, "url": "u"}]), 1,
                 "passages[1].passage_text", id="list-layout-missing-text"),
    pytest.param(_mline(passages=["Moss."]), 1, "passages[0]", id="list-layout-not-objects"),
    pytest.param(_mline(passages=_passages(is_selected=[0, 2])), 1, "passages.is_selected[1]",
                 id="is-selected-two"),
    pytest.param(_mline(passages=_passages(is_selected=[0, True])), 1, "passages.is_selected[1]",
                 id="is-selected-bool"),
    pytest.param(_mline(passages=_passages(passage_text=[None, "x"])), 1,
                 "passages.passage_text[0]", id="passage-text-null"),
    pytest.param(_mline(passages=_passages(url=["http://a"])), 1, "passages",
                 id="parallel-lists-differ"),
    pytest.param(_mline(passages={"is_selected": [], "passage_text": [], "url": []}), 1,
                 "passages.passage_text", id="no-passages-empty-context"),
    pytest.param(_mline(passages=_passages(passage_text=["", " "])), 1,
                 "passages.passage_text", id="all-passages-empty"),
    pytest.param(_mline(passages=_passages(passage_text=["Moss.", "  "])), 1,
                 "passages.passage_text[1]", id="selected-passage-empty"),
    pytest.param(_mline(wellFormedAnswers="x"), 1, "wellFormedAnswers", id="well-formed-string"),
    pytest.param((M_GOOD + "\n").encode() + M_ROW2.encode().replace(b"Moss", b"M\xf6ss"), 2, "text",
                 id="non-utf8-byte"),
]


@pytest.mark.parametrize(("data", "row", "field"), MARCO_ERRORS)
def test_marco_bad_jsonl_stops_with_location(
    tmp_path: Path, data: bytes | str, row: int | None, field: str
) -> None:
    raw = _marco_dir(tmp_path, data)
    with pytest.raises(RawFormatError) as info:
        load_marco(raw)
    assert_located(info.value, raw / "train.jsonl", row, field)


@pytest.mark.parametrize(
    ("data", "row", "field"),
    [
        pytest.param(M_GOOD + "\n" + M_GOOD + "\n", 2, "query_id", id="duplicated-query-id"),
        pytest.param(_mline(query_type="WHY"), 1, "query_type", id="unknown-query-type"),
        pytest.param(_mline(query_type=""), 1, "query_type", id="empty-query-type"),
    ],
)
def test_marco_decompose_level_errors(
    tmp_path: Path, data: str, row: int, field: str
) -> None:
    raw = _marco_dir(tmp_path, data)
    with pytest.raises(RawFormatError) as info:
        decompose_marco(raw, sampling=Sampling(per_story=None))
    assert_located(info.value, raw / "train.jsonl", row, field)


def _parquet_bytes(table: pa.Table, tmp_path: Path) -> bytes:
    path = tmp_path / "scratch.parquet"
    pq.write_table(table, path)
    return path.read_bytes()


def _marco_table(**columns: Any) -> pa.Table:
    rows = [copy.deepcopy(MARCO_ROW), {**copy.deepcopy(MARCO_ROW), "query_id": 8}]
    base = {k: [r[k] for r in rows] for k in MARCO_ROW}
    return pa.table({k: v for k, v in {**base, **columns}.items() if v is not _DROP})


PARQUET_ERRORS: list[Any] = [
    pytest.param(lambda _: b"", None, "file", id="empty-parquet"),
    pytest.param(lambda _: b"PAR1 this is not parquet", None, "file", id="garbage-parquet"),
    pytest.param(lambda t: _parquet_bytes(_marco_table(), t)[:-40], None, "file",
                 id="truncated-parquet"),
    pytest.param(lambda t: _parquet_bytes(_marco_table(passages=_DROP), t), None, "passages",
                 id="parquet-missing-column"),
    pytest.param(lambda t: _parquet_bytes(_marco_table(query_id=["7", "8"]), t), 1, "query_id",
                 id="parquet-query-id-strings"),
    pytest.param(lambda t: _parquet_bytes(_marco_table().slice(0, 0), t), None, "rows",
                 id="parquet-zero-rows"),
]


@pytest.mark.parametrize(("make", "row", "field"), PARQUET_ERRORS)
def test_marco_bad_parquet_stops_with_location(
    tmp_path: Path, make: Callable[[Path], bytes], row: int | None, field: str
) -> None:
    raw = _marco_dir(tmp_path, make(tmp_path), name="train-00000-of-00001.parquet")
    with pytest.raises(RawFormatError) as info:
        load_marco(raw)
    assert_located(info.value, raw / "train-00000-of-00001.parquet", row, field)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("\ufeff" + M_GOOD + "\n", id="utf8-bom"),
        pytest.param(M_GOOD + "\r\n" + M_ROW2 + "\r\n", id="crlf"),
        pytest.param(_mline(passages=LIST_LAYOUT), id="original-list-layout"),
        pytest.param(_mline(wellFormedAnswers=None), id="well-formed-null"),
    ],
)
def test_marco_harmless_variants_load(tmp_path: Path, data: str) -> None:
    rows = load_marco(_marco_dir(tmp_path, data))
    assert rows[0].query_id == 7 and rows[0].selected == (1,)


# =============================================================================== model outputs

TRACE = TraceTemplate(
    "The reasoning task in the question is: {category}. "
    "I need to use the following facts to answer the question: {facts}"
)
GOOD_TRACE = TRACE.render("single-supporting-fact", ["Mary moved to the bathroom."])
GOOD_OUTPUT = f'<think>{GOOD_TRACE}</think> <answer>["bathroom"]</answer>'
HEAD = "The reasoning task in the question is: single-supporting-fact. "
FACTS_AT = "I need to use the following facts to answer the question: "
ODD_HEAD = HEAD.replace("single", "sin\u0301gle")  # a combining accent in the category

# (id, raw generation, parse_status); every one must parse and score without raising
OUTPUTS: list[Any] = [
    pytest.param(GOOD_OUTPUT, "ok", id="well-formed-control"),
    pytest.param("", "empty", id="empty"),
    pytest.param(" \n\t \r\n ", "empty", id="whitespace-only"),
    pytest.param("<|im_start|>assistant\n<|im_end|>", "empty", id="only-chat-tokens"),
    pytest.param('<answer>["bathroom"]</answer>', "no_trace", id="no-think-tag"),
    pytest.param("bathroom", "no_trace", id="bare-answer"),
    pytest.param("</answer>", "no_trace", id="lone-closing-answer-tag"),
    pytest.param(f"<think>{GOOD_TRACE}", "unterminated", id="unterminated-think"),
    pytest.param(f"<think>{GOOD_TRACE}</think> <answer>bathroom", "unterminated",
                 id="unterminated-answer"),
    pytest.param(f'<think>{GOOD_TRACE} <answer>["bathroom"]</answer>', "unterminated",
                 id="unclosed-think-then-answer"),
    pytest.param("<think>", "unterminated", id="lone-think-tag"),
    pytest.param("<answer>", "unterminated", id="lone-answer-tag"),
    # an empty think block is no trace (what Qwen3 writes before a bare answer)
    pytest.param("<think></think><answer></answer>", "no_trace", id="empty-tags"),
    pytest.param("<think>I should look at Mary.</think><answer>bathroom</answer>", "bad_trace",
                 id="trace-off-template"),
    pytest.param(GOOD_OUTPUT * 3, "ok", id="repeated-tag-pairs"),
    # the last think span is empty: no trace
    pytest.param("<think>" * 5000 + "</think>" * 5000 + "<answer>x</answer>", "no_trace",
                 id="thousands-of-repeated-tags"),
    pytest.param(f"<think><think>{GOOD_TRACE}</think></think><answer><answer>x</answer></answer>",
                 "ok", id="nested-tags"),  # the innermost span is read
    pytest.param(f"<answer><think>{GOOD_TRACE}</think></answer>", "ok",
                 id="think-nested-in-answer"),
    pytest.param(f'<think>{HEAD}{FACTS_AT}[__import__("os").system("touch pwned")]</think>'
                 "<answer>x</answer>", "bad_facts", id="python-expression-in-facts"),
    pytest.param(f"<think>{HEAD}{FACTS_AT}[open('/etc/passwd').read()]</think><answer>x</answer>",
                 "bad_facts", id="python-call-in-facts"),
    pytest.param(f"<think>{HEAD}{FACTS_AT}['Mary moved to the bathroom.']</think>"
                 "<answer>['bathroom']</answer>", "ok", id="python-list-literal-facts"),
    pytest.param(f"<think>{HEAD}{FACTS_AT}[1, 2]</think><answer>x</answer>", "bad_facts",
                 id="facts-not-strings"),
    pytest.param(f"<think>{HEAD}{FACTS_AT}" + "[" * 50_000 + "]" * 50_000
                 + "</think><answer>x</answer>", "bad_facts", id="facts-nested-50k-deep"),
    pytest.param("<answer>" + "[" * 50_000 + "]" * 50_000 + "</answer>", "no_trace",
                 id="answer-nested-50k-deep"),
    pytest.param("x" * 100_000, "no_trace", id="100kb-of-text"),
    pytest.param("Mary went to the hallway.\n" * 4_000, "no_trace", id="100kb-of-lines"),
    pytest.param(f"<think>{HEAD}" + " " * 100_000 + "x</think><answer>x</answer>", "bad_trace",
                 id="100kb-whitespace-in-trace"),
    pytest.param(f"<think>{GOOD_TRACE}</think><answer>" + "bathroom " * 11_000 + "</answer>",
                 "ok", id="100kb-answer"),
    pytest.param(f"<think>{HEAD}{FACTS_AT}[" + '"a", ' * 20_000 + '"b"]</think><answer>x</answer>',
                 "ok", id="100kb-facts-list"),
    pytest.param("<think>\x00\u202e\ufffe\U0010ffff</think><answer>\u200b\x7f</answer>",
                 "bad_trace", id="unicode-control-garbage"),
    pytest.param(f"<think>{ODD_HEAD}{FACTS_AT}[\"\u202eMary\"]"
                 "</think><answer>[\"b\u00e4throom\U0001f6c1\"]</answer>", "ok",
                 id="combining-marks-rtl-emoji"),
    pytest.param(f'<think>{HEAD}{FACTS_AT}["\x00"]</think><answer>x</answer>', "bad_facts",
                 id="nul-inside-facts-json"),
    pytest.param(f"Answer: {GOOD_OUTPUT}", "ok", id="answer-label-before-tags"),
]


@pytest.mark.parametrize(("text", "status"), OUTPUTS)
def test_parse_output_records_a_status_and_never_raises(text: str, status: str) -> None:
    started = time.perf_counter()
    parsed = parse_output(text, TRACE)
    assert time.perf_counter() - started < 2.0  # no quadratic blow-up on 100 KB inputs
    assert parsed.status == status
    if parsed.facts is not None:
        assert all(isinstance(f, str) for f in parsed.facts)


def test_parse_output_survives_lone_surrogates() -> None:
    # not storable in parquet (polars refuses them), but the parser itself must not fail
    assert parse_output("<think>\ud800</think><answer>\udfff</answer>", TRACE).status == "bad_trace"


class _WordTokenizer:
    """Stands in for a tokenizer in ``parsed_predictions`` (it only counts trace tokens)."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[str]]:
        return {"input_ids": text.split()}


def _gold_rows(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [f"q{i:03d}" for i in range(n)],
            "split": ["test"] * n,
            "category": ["single-supporting-fact"] * n,
            "context": [["Mary moved to the bathroom.", "John went to the hallway."]] * n,
            "question": ["Where is Mary?"] * n,
            "answers": [["bathroom"]] * n,
            "relevant": [[0]] * n,
            "triple_element": ["S1_R1_O2"] * n,
            "task": ["qa1"] * n,
        }
    )


@pytest.mark.parametrize("rule", ["babi", "marco", "cotemp"])
def test_every_malformed_output_gets_a_scores_row(rule: str) -> None:
    texts = [p.values[0] for p in OUTPUTS]
    statuses = [p.values[1] for p in OUTPUTS]
    gold = _gold_rows(len(texts))
    predictions = parsed_predictions(
        gold.select("id", pl.lit("prompt").alias("prompt")),
        gold,
        [(text, len(text)) for text in texts],
        TRACE,
        _WordTokenizer(),
    )
    scores = score_predictions(predictions, answer_rule=rule)
    assert scores.height == len(texts)  # never dropped
    assert scores["id"].to_list() == gold["id"].to_list()  # same order
    assert scores["parse_status"].to_list() == statuses
    assert scores["answer_correct"].null_count() == 0
    assert scores["trace_correct"].null_count() == 0
    # a trace that could not be read is scored wrong, not skipped (an unterminated one whose
    # category and facts did parse may still be right)
    ok = dict(zip(scores["id"], scores["trace_correct"], strict=True))
    assert ok["q000"] is True
    unreadable = ("empty", "no_trace", "bad_trace", "bad_facts")
    assert not any(ok[f"q{i:03d}"] for i, s in enumerate(statuses) if s in unreadable)


# =============================================================================== config


@pytest.fixture
def demo() -> dict[str, Any]:
    with open(DEMO_CONFIG, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets (or, with ``_DROP``, deletes) the dotted ``path``."""

    def mutate(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = config
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DROP:
            del node[last]
        else:
            node[last] = value

    return mutate


def _add_setting(entry: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda config: config["settings"].append(entry)


# (id, mutation of the demo config, text the error must contain: the dotted key path)
CONFIG_ERRORS: list[Any] = [
    pytest.param(_set("sed", 1), "sed: unknown key", id="typo-top-level"),
    pytest.param(_set("training.epochz", 3), "training.epochz: unknown key", id="typo-training"),
    pytest.param(_set("models.tiny.training.learnin_rate", 1e-3),
                 "models.tiny.training.learnin_rate: unknown key", id="typo-model-override"),
    pytest.param(_set("models.tiny.lora", {"rank": 4}), "models.tiny.lora.rank: unknown key",
                 id="typo-inside-lora"),
    pytest.param(_set("models.tiny.build.hiden_size", 8),
                 "models.tiny.build.hiden_size: unknown key", id="typo-model-build"),
    pytest.param(_set("datasets.bAbI.source.synthetc", True),
                 "datasets.bAbI.source.synthetc: unknown key", id="typo-dataset-source"),
    pytest.param(_set("datasets.bAbI.sample.max.tset", 3),
                 "datasets.bAbI.sample.max.tset: unknown key", id="typo-four-deep"),
    pytest.param(_set("resources.train.mem_gb", 4), "resources.train.mem_gb: unknown key",
                 id="typo-resources"),
    pytest.param(_set("training.epochs", "three"), "training.epochs:", id="wrong-type-string"),
    pytest.param(_set("training.max_length", True), "training.max_length:", id="wrong-type-bool"),
    pytest.param(_set("inference.batch_size", 1.5), "inference.batch_size:", id="wrong-type-float"),
    pytest.param(_set("training.learning_rate", -1), "training.learning_rate:", id="negative-lr"),
    pytest.param(_set("settings", {"name": "x"}), "settings:", id="settings-not-a-list"),
    pytest.param(_set("settings", []), "settings:", id="settings-empty"),
    pytest.param(_set("datasets.bAbI", ["x"]), "datasets.bAbI:", id="dataset-not-a-mapping"),
    pytest.param(_set("models.tiny.lora", "none"), "models.tiny.lora:", id="lora-string-none"),
    pytest.param(_set("inference.engine", "tgi"), "inference.engine:", id="enum-engine"),
    pytest.param(_set("datasets.bAbI.loader", "squad"), "datasets.bAbI.loader:", id="enum-loader"),
    pytest.param(_set("models.tiny.quantization", "8bit"), "models.tiny.quantization:",
                 id="enum-quantization"),
    pytest.param(_set("datasets.bAbI.sample.flagged", "maybe"), "datasets.bAbI.sample.flagged:",
                 id="enum-flagged"),
    pytest.param(_set("datasets.CoTemp.relations", ["before"]), "datasets.CoTemp.relations.0:",
                 id="enum-relation"),
    pytest.param(_set("datasets.bAbI.tasks", ["qa21"]), "datasets.bAbI.tasks.0:", id="bad-task"),
    pytest.param(_add_setting({"name": "x", "target": "facts"}), "settings.4.target:",
                 id="enum-setting-target"),
    pytest.param(_add_setting({"name": "a/b", "target": "trace"}), "settings.4.name:",
                 id="setting-name-with-slash"),
    pytest.param(_set("datasets.CoTemp.split.test_fraction", 1),
                 "datasets.CoTemp.split.test_fraction:", id="test-fraction-one"),
    pytest.param(_add_setting({"name": "correct", "target": "trace"}),
                 "duplicate setting name(s) ['correct']", id="duplicate-setting-name"),
    pytest.param(_add_setting({"name": "v2", "target": "answer", "corruption": "random"}),
                 "settings.4.corruption", id="corruption-on-answer-setting"),
    pytest.param(_add_setting({"name": "p2", "target": "none", "corruption": "random"}),
                 "settings.4.corruption", id="corruption-on-prompt-setting"),
    pytest.param(_set("models.tiny.quantization", "4bit"), "models.tiny.lora: 4-bit",
                 id="4bit-without-lora"),
    pytest.param(_set("models", _DROP), "'models' is a required property", id="missing-models"),
    pytest.param(_set("datasets.bAbI.loader", _DROP), "datasets.bAbI: 'loader' is a required",
                 id="missing-loader"),
    pytest.param(_add_setting({"name": "z"}), "settings.4: 'target' is a required",
                 id="missing-setting-target"),
    pytest.param(_set("datasets.bAbI.tasks", _DROP), "datasets.bAbI.tasks:", id="babi-no-tasks"),
    pytest.param(_set("datasets.bAbI.source.stories", _DROP), "datasets.bAbI.source.stories:",
                 id="synthetic-without-size"),
    pytest.param(_set("datasets.bAbI.source", {}), "datasets.bAbI.source:", id="no-source"),
    pytest.param(_set("datasets.bAbI.source", {"url": "http://x", "sha256": "abc"}),
                 "datasets.bAbI.source.sha256:", id="short-checksum"),
    pytest.param(_set("models.tiny.build", _DROP), "models.tiny:", id="model-without-weights"),
    pytest.param(_set("datasets.bAbI.trace_template", "Task: {category}."),
                 "datasets.bAbI.trace_template:", id="trace-template-without-facts"),
    pytest.param(_set("datasets.bAbI.trace_template", "{category} {facts} and {facts}"),
                 "datasets.bAbI.trace_template: trace template must contain {facts} exactly once",
                 id="trace-template-facts-twice"),
    pytest.param(_set("datasets.bAbI.prompt_template", "{context}"),
                 "datasets.bAbI.prompt_template:", id="prompt-template-without-question"),
]


@pytest.mark.parametrize(("mutate", "expected"), CONFIG_ERRORS)
def test_config_mistake_names_its_key_path(
    demo: dict[str, Any], mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    mutate(demo)
    with pytest.raises(ConfigError) as info:
        validate_config(demo)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("datasets: [\n  a: b", "not valid YAML", id="yaml-syntax-error"),
        pytest.param("a:\n\tb: 1\n", "not valid YAML", id="yaml-tab-indent"),
        pytest.param(b"seed: 4\xff2\n", "not valid YAML", id="yaml-non-utf8"),
        pytest.param("42\n", "the config must be a mapping", id="yaml-scalar"),
        pytest.param("- datasets\n- models\n", "the config must be a mapping", id="yaml-list"),
        pytest.param("", "the config must be a mapping", id="yaml-empty-file"),
        pytest.param("# only a comment\n", "the config must be a mapping", id="yaml-only-comment"),
    ],
)
def test_config_file_mistake_names_the_file(
    tmp_path: Path, text: str | bytes, expected: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_config_file_typo_names_file_content_path(tmp_path: Path, demo: dict[str, Any]) -> None:
    demo["training"]["warmup_ration"] = 0.1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(demo), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"training\.warmup_ration: unknown key"):
        load_config(path)


# =============================================================================== decompose rule


def _decompose_rule(loader: str, raw: Path, options: dict[str, Any], out: Path) -> None:
    """The body of workflow/scripts/decompose.py, without Snakemake."""
    table, report = decompose(loader, raw, options)
    write_parquet(table, out / "decomposed.parquet")
    write_json(report.to_dict(), out / "decomposition_report.json")


BABI_OPTIONS = {"tasks": ["qa1"], "sample": {"per_story": None}}
OTHER_OPTIONS = {"sample": {"per_story": None}, "split": {"test_fraction": 0.5}}
DECOMPOSE_FAILURES: list[Any] = [
    pytest.param("babi", lambda r: _babi_dir(r, BABI_GOOD + "1 Daniel went to the"), BABI_OPTIONS,
                 id="babi-truncated-file"),
    pytest.param("babi", lambda r: _babi_dir(r, STORY + "3 Where is Mary?\n"), BABI_OPTIONS,
                 id="babi-question-without-tabs"),
    pytest.param("cotemp", lambda r: _cotemp_dir(r, GOOD_LINE + "\n" + GOOD_LINE[:50]),
                 OTHER_OPTIONS, id="cotemp-json-cut-mid-line"),
    pytest.param("cotemp", lambda r: _cotemp_dir(r, GOOD_LINE + "\n" + GOOD_LINE + "\n"),
                 OTHER_OPTIONS, id="cotemp-duplicated-index"),
    pytest.param("marco", lambda r: _marco_dir(r, M_GOOD + "\n" + M_GOOD + "\n"), OTHER_OPTIONS,
                 id="marco-duplicated-query-id"),
    pytest.param("marco", lambda r: _marco_dir(r, _mline(query_type="WHY")), OTHER_OPTIONS,
                 id="marco-unknown-query-type"),
]


@pytest.mark.parametrize(("loader", "make_raw", "options"), DECOMPOSE_FAILURES)
def test_failed_decomposition_leaves_no_output(
    tmp_path: Path, loader: str, make_raw: Callable[[Path], Path], options: dict[str, Any]
) -> None:
    raw = make_raw(tmp_path)
    out = tmp_path / "results"
    out.mkdir()
    with pytest.raises(RawFormatError):
        _decompose_rule(loader, raw, options, out)
    assert list(out.rglob("*")) == []  # not even a hidden temporary file


def test_decomposition_failing_while_writing_leaves_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _babi_dir(tmp_path, BABI_GOOD)
    out = tmp_path / "results"
    real = pl.DataFrame.write_parquet

    def half_then_fail(self: pl.DataFrame, file: Any, **kwargs: Any) -> None:
        real(self, file, **kwargs)
        data = Path(file).read_bytes()
        Path(file).write_bytes(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _decompose_rule("babi", raw, BABI_OPTIONS, out)
    assert list(out.rglob("*")) == []


def test_decomposition_control_writes_both_files(tmp_path: Path) -> None:
    out = tmp_path / "results"
    _decompose_rule("babi", _babi_dir(tmp_path, BABI_GOOD), BABI_OPTIONS, out)
    assert sorted(p.name for p in out.iterdir()) == ["decomposed.parquet",
                                                     "decomposition_report.json"]
    assert pl.read_parquet(out / "decomposed.parquet").height == 4
