"""MS MARCO QnA (Nguyen et al. 2016), v1.1 and v2.1: the dataset plug-in, loader and
decomposition.

The raw files are the dataset's export on the Hugging Face hub (``microsoft/ms_marco``):
parquet files, or JSON lines with the same columns, one query per row::

    query, query_id, query_type, answers, passages{is_selected, passage_text, url}
    [, wellFormedAnswers]

``passages`` holds three parallel lists. The original MS MARCO distribution's row layout,
where ``passages`` is a list of ``{is_selected, passage_text, url}`` objects, is read too.
``query_type`` is lower-case in v1.1 and upper-case in v2.1.

The decomposition (DESIGN.md): category = ``query_type`` lower-cased, context = the passage
texts, relevant = the passages with ``is_selected == 1``, answer = ``answers[0]``. Rows without
an answer or without a selected passage are dropped and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.datasets.base import (
    SCHEMA,
    SPLIT_SCHEMA,
    AnswerScore,
    Report,
    Sampling,
    sample_rows,
)
from tracekd.errors import RawFormatError
from tracekd.readers import check_int64, iter_json_lines, walk_files
from tracekd.seeding import row_rng
from tracekd.text import match_text_answer

#: the five MS MARCO query types, lower-cased (the classification labels)
QUERY_TYPES: tuple[str, ...] = ("description", "numeric", "entity", "location", "person")

#: what MS MARCO writes in ``answers`` when the annotator found no answer in the passages
NO_ANSWER = "No Answer Present."

#: the columns every row must have (``wellFormedAnswers`` is optional)
REQUIRED_FIELDS: tuple[str, ...] = ("query", "query_id", "query_type", "answers", "passages")
PASSAGE_FIELDS: tuple[str, ...] = ("is_selected", "passage_text", "url")

#: file-name words that put a file's rows in the test split; ``train`` (or no word) means train
_TEST_WORDS = frozenset({"validation", "valid", "dev", "test"})
_WORD = re.compile(r"[a-z0-9]+")
_SUFFIXES = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}

#: the extra columns of ``decomposed.parquet`` for MARCO
EXTRAS: Mapping[str, pl.DataType] = {"query_id": pl.Int64, "n_selected": pl.Int64}


@dataclass(frozen=True)
class MarcoRow:
    """One MS MARCO query as read, with where it came from (``file``, 1-based ``row``)."""

    file: str
    row: int
    split: str
    query_id: int
    query: str
    query_type: str
    answers: tuple[str, ...]
    passages: tuple[str, ...]
    is_selected: tuple[int, ...]
    urls: tuple[str, ...]
    well_formed_answers: tuple[str, ...]

    @property
    def selected(self) -> tuple[int, ...]:
        """Indices of the passages marked ``is_selected == 1``."""
        return tuple(i for i, flag in enumerate(self.is_selected) if flag == 1)

    @property
    def has_answer(self) -> bool:
        """False for an empty ``answers`` list or a first answer that says there is none."""
        return bool(self.answers) and self.answers[0].strip() not in ("", NO_ANSWER)


# --------------------------------------------------------------------------- reading


def split_of_file(path: Path) -> str:
    """The split a raw file's rows belong to, from the words of its file name.

    The first of ``train`` (-> ``"train"``) or ``validation``/``valid``/``dev``/``test``
    (-> ``"test"``) found among the name's words decides; a name with neither is ``"train"``.
    E.g. ``train-00000-of-00007.parquet`` -> train, ``validation-00000-of-00001.parquet`` ->
    test, ``ms_marco_v1.1_train_sample.jsonl`` -> train. Only the file name counts, not its folder.
    """
    for word in _WORD.findall(path.name.lower()):
        if word == "train":
            return "train"
        if word in _TEST_WORDS:
            return "test"
    return "train"


def find_marco_files(raw_dir: Path) -> list[Path]:
    """Every ``*.parquet``, ``*.jsonl`` and ``*.json`` file under ``raw_dir``, recursively, sorted."""
    raw_dir = Path(raw_dir)
    files = [p for p in walk_files(raw_dir, what="MS MARCO") if p.suffix.lower() in _SUFFIXES]
    if not files:
        raise FileNotFoundError(
            f"no MS MARCO file under {raw_dir} (looked for *.parquet, *.jsonl, *.json)"
        )
    # Sorted by relative path so the row order (and hence the capped sample) is stable.
    return sorted(files, key=lambda p: p.relative_to(raw_dir).as_posix())


def load_marco(raw_dir: Path) -> list[MarcoRow]:
    """Read every MS MARCO file under ``raw_dir`` (see :func:`find_marco_files`), in order.

    Parquet files and JSON lines files (``.jsonl``, and ``.json`` read as JSON lines) may be
    mixed. Each row's split comes from its file name (:func:`split_of_file`). Bad input raises
    :class:`RawFormatError` naming the file, the row (1-based line for JSON lines, 1-based row
    for parquet; none when the whole file is at fault) and the field.
    """
    rows: list[MarcoRow] = []
    for path in find_marco_files(raw_dir):
        split = split_of_file(path)
        if _SUFFIXES[path.suffix.lower()] == "parquet":
            records = _parquet_records(path)
        else:
            records = _json_records(path)
        before = len(rows)
        for row, record in records:
            rows.append(parse_record(record, file=str(path), row=row, split=split))
        if len(rows) == before:
            # An empty file is a failed download or a truncated copy, not an empty split.
            raise RawFormatError(str(path), None, "rows", "file holds no rows")
    return rows


def _json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed object)`` per non-blank line, through the guarded reader."""
    hint = " (.json files are read as JSON lines: one object per line)" if path.suffix == ".json" else ""
    return iter_json_lines(path, hint=hint)


def _parquet_records(path: Path) -> Iterator[tuple[int, Any]]:
    """``(1-based row, dict)`` per parquet row, read in batches to bound memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = str(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise RawFormatError(source, None, "file", f"not a readable parquet file: {err}") from err
    names = parquet.schema_arrow.names
    for name in REQUIRED_FIELDS:
        if name not in names:
            raise RawFormatError(source, None, name, f"column missing (columns: {names})")
    columns = [n for n in (*REQUIRED_FIELDS, "wellFormedAnswers") if n in names]
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=2048, columns=columns):
            for record in _batch_records(batch, source, row):
                row += 1
                yield row, record
    except (pa.ArrowException, OSError) as err:
        raise RawFormatError(source, row + 1, "file", f"unreadable parquet data: {err}") from err


def _batch_records(batch: Any, source: str, offset: int) -> list[dict[str, Any]]:
    """A record batch as dicts; on bad UTF-8, find the row row by row to name it."""
    try:
        return batch.to_pylist()
    except UnicodeDecodeError:
        for i in range(batch.num_rows):
            try:
                batch.slice(i, 1).to_pylist()
            except UnicodeDecodeError as err:
                raise RawFormatError(source, offset + i + 1, "text", "not valid UTF-8") from err
        raise


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _expect_str(value: Any, source: str, row: int, name: str) -> str:
    if not isinstance(value, str):
        raise RawFormatError(source, row, name, f"expected a string, found {_type_name(value)}")
    return value


def _expect_int(value: Any, source: str, row: int, name: str) -> int:
    # bool is an int subclass in Python; true/false is not an id.
    if not isinstance(value, int) or isinstance(value, bool):
        raise RawFormatError(source, row, name, f"expected an integer, found {_type_name(value)}")
    # a JSON 2**70 or a parquet uint64 would overflow the 64-bit id column
    return check_int64(value, source, row, name)


def _expect_str_list(value: Any, source: str, row: int, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RawFormatError(source, row, name, f"expected a list of strings, found {_type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RawFormatError(source, row, f"{name}[{i}]", f"expected a string, found {_type_name(item)}")
    return tuple(value)


def _expect_flags(value: Any, source: str, row: int, name: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise RawFormatError(source, row, name, f"expected a list of 0/1, found {_type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, int) or isinstance(item, bool) or item not in (0, 1):
            raise RawFormatError(source, row, f"{name}[{i}]", f"expected 0 or 1, found {item!r}")
    return tuple(value)


def _passage_columns(value: Any, source: str, row: int) -> dict[str, Any]:
    """The passages as parallel lists; the original list-of-objects layout is transposed."""
    if isinstance(value, list):
        columns: dict[str, list[Any]] = {name: [] for name in PASSAGE_FIELDS}
        for i, passage in enumerate(value):
            if not isinstance(passage, dict):
                raise RawFormatError(
                    source, row, f"passages[{i}]", f"expected an object, found {_type_name(passage)}"
                )
            for name in PASSAGE_FIELDS:
                if name not in passage:
                    raise RawFormatError(source, row, f"passages[{i}].{name}", "missing field")
                columns[name].append(passage[name])
        return columns
    if not isinstance(value, dict):
        raise RawFormatError(
            source, row, "passages",
            f"expected an object of lists (is_selected, passage_text, url), found {_type_name(value)}",
        )
    for name in PASSAGE_FIELDS:
        if name not in value:
            raise RawFormatError(source, row, f"passages.{name}", "missing field")
    return value


def parse_record(record: Any, *, file: str, row: int, split: str) -> MarcoRow:
    """Check one raw row's fields and types; raises :class:`RawFormatError` on any mismatch."""
    if not isinstance(record, dict):
        raise RawFormatError(file, row, "json", f"expected a JSON object, found {_type_name(record)}")
    for name in REQUIRED_FIELDS:
        if name not in record:
            raise RawFormatError(file, row, name, "missing field")
    passages = _passage_columns(record["passages"], file, row)
    flags = _expect_flags(passages["is_selected"], file, row, "passages.is_selected")
    texts = _expect_str_list(passages["passage_text"], file, row, "passages.passage_text")
    urls = _expect_str_list(passages["url"], file, row, "passages.url")
    if not len(flags) == len(texts) == len(urls):
        raise RawFormatError(
            file, row, "passages",
            f"parallel lists differ in length: is_selected {len(flags)}, "
            f"passage_text {len(texts)}, url {len(urls)}",
        )
    if not texts:
        raise RawFormatError(file, row, "passages.passage_text", "no passages (empty context)")
    if not any(text.strip() for text in texts):
        raise RawFormatError(
            file, row, "passages.passage_text", "every passage is empty (empty context)"
        )
    for i, (flag, text) in enumerate(zip(flags, texts, strict=True)):
        if flag == 1 and not text.strip():
            # a gold fact with no text: the IR step could never be matched or checked
            raise RawFormatError(
                file, row, f"passages.passage_text[{i}]", "selected passage is empty"
            )
    query = _expect_str(record["query"], file, row, "query")
    if not query.strip():
        raise RawFormatError(file, row, "query", "empty query")
    well_formed = record.get("wellFormedAnswers")
    return MarcoRow(
        file=file,
        row=row,
        split=split,
        query_id=_expect_int(record["query_id"], file, row, "query_id"),
        query=query,
        query_type=_expect_str(record["query_type"], file, row, "query_type"),
        answers=_expect_str_list(record["answers"], file, row, "answers"),
        passages=texts,
        is_selected=flags,
        urls=urls,
        well_formed_answers=(
            () if well_formed is None
            else _expect_str_list(well_formed, file, row, "wellFormedAnswers")
        ),
    )


# --------------------------------------------------------------------------- decomposition


def category_of(row: MarcoRow) -> str:
    """``query_type`` lower-cased; anything but the five MS MARCO types is a format error."""
    category = row.query_type.strip().lower()
    if category not in QUERY_TYPES:
        raise RawFormatError(
            row.file, row.row, "query_type",
            f"unknown query type {row.query_type!r}; expected one of {list(QUERY_TYPES)}",
        )
    return category


def row_ids(rows: list[MarcoRow]) -> list[str]:
    """Stable ids ``marco-{query_id}``.

    A query id that repeats within one split (the same file or two files) is an error: it
    would count one query twice and could put it on both sides of a seeded split. One that is
    in both a train and a test file gets the same id twice: :func:`decompose_marco` drops its
    test copy (a train/test leak otherwise).
    """
    first: dict[tuple[str, int], MarcoRow] = {}
    for r in rows:
        key = (r.split, r.query_id)
        if key in first:
            prev = first[key]
            raise RawFormatError(
                r.file, r.row, "query_id",
                f"query_id {r.query_id} repeats in the {r.split} split (first at {prev.file}:{prev.row})",
            )
        first[key] = r
    return [f"marco-{r.query_id}" for r in rows]


def _split_options(split: Mapping[str, Any] | None) -> tuple[float, int] | None:
    """``(test_fraction, seed)`` from the config's ``split`` block; None when not given."""
    if not split:
        return None
    unknown = sorted(set(split) - {"test_fraction", "seed"})
    if unknown:
        raise ValueError(f"split: unknown key(s) {unknown}; allowed: test_fraction, seed")
    fraction = float(split.get("test_fraction", 0.2))
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split.test_fraction must lie strictly between 0 and 1, found {fraction}")
    return fraction, int(split.get("seed", 0))


def assign_split(row_id: str, test_fraction: float, seed: int) -> str:
    """The seeded split of one row: a per-row draw, so independent of row order and of the pool."""
    return "test" if row_rng(seed, "marco-split", row_id).random() < test_fraction else "train"


def decompose_marco(
    raw_dir: Path, *, sampling: Sampling, split: Mapping[str, Any] | None = None
) -> tuple[pl.DataFrame, Report]:
    """MS MARCO: category = query type, relevant = the selected passages, answer = ``answers[0]``.

    Rows with no answer (empty ``answers``, or ``"No Answer Present."``) are dropped as
    ``no_answer``; rows with an answer but no selected passage as ``no_selected_passage``; a
    test row whose ``query_id`` is also in a train file as ``test_query_in_train`` (it would
    leak the test item into training).
    ``covered`` counts the rows that have both (before the per-split caps); none is flagged.

    When every row comes from files of one split (the paper draws its 5,000 train and 1,000
    test queries from MARCO's train set), ``split = {"test_fraction", "seed"}`` re-assigns each
    row's split by a seeded per-row draw. When the files already hold both splits, their split is
    kept and ``split`` is ignored (the config fills it in by default). ``sampling.max`` then
    caps each split (a seeded sample).
    """
    raw = load_marco(Path(raw_dir))
    ids = row_ids(raw)
    options = _split_options(split)
    if len({r.split for r in raw}) > 1:
        options = None  # the files already say which rows are test rows
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
    # One group per row: per-story sampling does not apply, only the per-split caps.
    kept = sample_rows(rows, sampling, group=lambda r: (r["id"],), report=report)
    for r in kept:
        report.per_category[r["category"]]["kept"] += 1
    frame = pl.DataFrame(kept, schema={**SCHEMA, **EXTRAS}, orient="row")
    return frame, report


def decompose(raw: Path, options: Mapping[str, Any], sampling: Sampling) -> tuple[pl.DataFrame, Report]:
    return decompose_marco(raw, sampling=sampling, split=options.get("split"))


def answer_rule(
    answer: str | None, golds: Sequence[str], row: Mapping[str, Any], options: Mapping[str, Any]
) -> AnswerScore:
    """The paper's MS MARCO rule: correct when a normalized gold answer occurs, on token
    boundaries, in the normalized final answer; token F1 against the best gold beside it."""
    return AnswerScore(*match_text_answer(answer, golds, contains=True))


_ROWS = {"type": "integer", "minimum": 1, "maximum": 1_000_000}

#: MS MARCO's own config keys (composed into the workflow's schema)
CONFIG_SCHEMA: Mapping[str, Any] = {
    "properties": {"split": SPLIT_SCHEMA},
    "source": {
        "rows": {
            "type": "object",
            "additionalProperties": False,
            "description": "synthetic: queries per split (about 1 in 5 lacks an answer or a selected passage)",
            "properties": {"train": _ROWS, "test": _ROWS},
        },
    },
}
