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

:func:`load_marco` reads every row into a :class:`MarcoRow`. :func:`decompose_marco` gives the
same output and the same errors, but reads parquet files by columns: the v2.1 train split (809k
queries) would otherwise be 809k Python objects of ten passages each, for a sample of 6,000.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

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
    return [row for path in find_marco_files(raw_dir) for row in _load_file(path)]


def _load_file(path: Path) -> list[MarcoRow]:
    """One raw file's rows, every field checked (:func:`parse_record`); see :func:`load_marco`."""
    rows = list(_parsed_rows(path))
    if not rows:
        # An empty file is a failed download or a truncated copy, not an empty split.
        raise RawFormatError(str(path), None, "rows", "file holds no rows")
    return rows


def _parsed_rows(path: Path) -> Iterator[MarcoRow]:
    """A raw file's rows through :func:`parse_record`, one at a time, in file order."""
    split = split_of_file(path)
    for row, record in _records(path):
        yield parse_record(record, file=str(path), row=row, split=split)


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """``(1-based row, raw record)`` of a parquet or JSON lines file."""
    if _SUFFIXES[path.suffix.lower()] == "parquet":
        return _parquet_records(path)
    return _json_records(path)


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


# --------------------------------------------------------------------------- column-wise reading
#
# The v2.1 train split holds ~809k queries of up to ten passages, of which the paper keeps 6,000.
# Making Python objects of every row (parse_record) takes about a minute and several GB, so a
# parquet file is read by columns instead: the narrow ones (ids, query types, answers, selection
# flags) are enough to decide every drop and the sample; the passages are then checked for every
# row in one streaming scan that hands back only the kept rows. Every check below mirrors one of
# parse_record's: it may flag a row that parse_record accepts (that file is then merely read the
# slow way), never the reverse. A file where a row is flagged, or that this path cannot read, is
# read again row by row through parse_record, so the error raised and its location are exactly
# those of the row-by-row reader.

#: Python's whitespace (``str.isspace``: what ``str.strip`` removes; none lies above U+3000) as
#: the body of a regex class. Polars' ``\s`` (Rust's) is not the same set: it lacks U+001C-U+001F.
_SPACE = "".join(f"\\x{{{i:x}}}" for i in range(0x3001) if chr(i).isspace())
#: matches a text that ``str.strip()`` leaves non-empty
_NONBLANK = f"[^{_SPACE}]"
#: matches a first answer that ``MarcoRow.has_answer`` refuses: blank, or "No Answer Present."
_NO_ANSWER_TEXT = f"^[{_SPACE}]*(?:{re.escape(NO_ANSWER)})?[{_SPACE}]*$"

#: the columns that decide drops and the sample (``passages.is_selected``: one leaf of the struct)
_NARROW_COLUMNS: tuple[str, ...] = ("query", "query_id", "query_type", "answers", "passages.is_selected")
#: what the decomposition knows of every row before it reads any passage
_NARROW_SCHEMA: Mapping[str, pl.DataType] = {
    "row": pl.Int64,
    "query_id": pl.Int64,
    "query_type": pl.String,
    "has_answer": pl.Boolean,
    "n_selected": pl.Int64,
}


class _Kept(NamedTuple):
    """What the output takes from a kept row beyond its narrow columns."""

    question: str
    answer: str
    context: list[str]
    relevant: list[int]

    @classmethod
    def of(cls, row: MarcoRow) -> _Kept:
        return cls(row.query, row.answers[0], list(row.passages), list(row.selected))


@dataclass
class _Shard:
    """One raw file: the narrow columns of its rows, and how to reach the rest."""

    path: Path
    split: str
    narrow: pl.DataFrame  # _NARROW_SCHEMA, one entry per row in file order
    rows: list[MarcoRow] | None = None  # read row by row (JSON lines; parquet the scan refused)
    error: RawFormatError | OSError | None = None  # raised once every earlier file is checked

    def kept(self, wanted: Sequence[int]) -> dict[int, _Kept]:
        """The ``wanted`` rows' fields by row; raises this file's first bad row, if any."""
        if self.error is not None:
            raise self.error
        if self.rows is not None:
            by_row = {r.row: r for r in self.rows}
            return {row: _Kept.of(by_row[row]) for row in wanted}
        found = _scan_passages(self.path, wanted)
        if found is not None:
            return found
        # A row may be bad, or polars cannot read the file: the row-by-row reader decides.
        chosen = set(wanted)
        return {r.row: _Kept.of(r) for r in _parsed_rows(self.path) if r.row in chosen}


def _read_shard(path: Path) -> _Shard:
    """A raw file's narrow columns: by columns for a parquet file that allows it, else row by row."""
    split = split_of_file(path)
    if _SUFFIXES[path.suffix.lower()] == "parquet":
        narrow = _scan_narrow(path)
        if narrow is not None:
            return _Shard(path, split, narrow)
    try:
        rows = _load_file(path)
    except (RawFormatError, OSError) as err:
        return _Shard(path, split, pl.DataFrame(schema=_NARROW_SCHEMA), error=err)
    narrow = pl.DataFrame(
        {
            "row": [r.row for r in rows],
            "query_id": [r.query_id for r in rows],
            "query_type": [r.query_type for r in rows],
            "has_answer": [r.has_answer for r in rows],
            "n_selected": [len(r.selected) for r in rows],
        },
        schema=_NARROW_SCHEMA,
    )
    return _Shard(path, split, narrow, rows=rows)


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _is_list_of(kind: Any, item: Any) -> bool:
    import pyarrow as pa

    return (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and item(kind.value_type)


def _fits_int64(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_signed_integer(kind) or kind in (pa.uint8(), pa.uint16(), pa.uint32())


def _scannable(schema: Any) -> bool:
    """Whether the column-wise reader takes a parquet file of this arrow schema: the hub's v2.1
    layout (string widths and integer sizes may vary); anything else is read row by row."""
    import pyarrow as pa

    names = schema.names
    if any(names.count(n) != 1 for n in REQUIRED_FIELDS) or names.count("wellFormedAnswers") > 1:
        return False
    kinds = {field.name: field.type for field in schema}
    passages = kinds["passages"]
    if not pa.types.is_struct(passages):
        return False
    inner = {passages.field(i).name: passages.field(i).type for i in range(passages.num_fields)}
    if passages.num_fields != len(PASSAGE_FIELDS) or set(inner) != set(PASSAGE_FIELDS):
        return False  # an extra field is converted (and can fail) in the row-by-row reader
    flag = pa.types.is_integer
    return (
        _is_text(kinds["query"])
        and _is_text(kinds["query_type"])
        and _fits_int64(kinds["query_id"])
        and _is_list_of(kinds["answers"], _is_text)
        and _is_list_of(kinds.get("wellFormedAnswers", pa.list_(pa.string())), _is_text)
        and _is_list_of(inner["is_selected"], flag)
        and _is_list_of(inner["passage_text"], _is_text)
        and _is_list_of(inner["url"], _is_text)
    )


def _any_item(items: pl.Expr, condition: pl.Expr) -> pl.Expr:
    """Whether ``condition`` holds for some item of the list column ``items``."""
    return items.list.eval(condition).list.any()


def _any_fault(faults: Sequence[pl.Expr]) -> pl.Expr:
    """Per row: whether any fault holds (a null, where the fault does not apply, is no fault)."""
    return pl.any_horizontal(fault.fill_null(False) for fault in faults)


def _narrow_faults(well_formed: bool) -> pl.Expr:
    """Per row: whether parse_record could refuse it on a narrow column."""
    query, answers = pl.col("query"), pl.col("answers")
    flags = pl.col("passages").struct.field("is_selected")
    faults = [
        query.is_null(),
        ~query.str.contains(_NONBLANK),
        pl.col("query_id").is_null(),
        pl.col("query_type").is_null(),
        answers.is_null(),
        _any_item(answers, pl.element().is_null()),
        pl.col("passages").is_null(),
        flags.is_null(),
        _any_item(flags, pl.element().is_null() | ~pl.element().is_in([0, 1])),
    ]
    if well_formed:  # the column may be missing; a null list is read as no answers
        faults.append(_any_item(pl.col("wellFormedAnswers"), pl.element().is_null()))
    return _any_fault(faults)


def _scan_narrow(path: Path) -> pl.DataFrame | None:
    """The narrow columns of a parquet file (:data:`_NARROW_SCHEMA`), every check on them done.

    None when a row may be bad, when the file has another layout or cannot be read, and when it
    holds no rows: the row-by-row reader then says what is wrong, or reads the layout.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            schema = parquet.schema_arrow
            if parquet.metadata.num_rows == 0 or not _scannable(schema):
                return None
            well_formed = "wellFormedAnswers" in schema.names
            table = parquet.read(columns=[*_NARROW_COLUMNS, *(["wellFormedAnswers"] * well_formed)])
        # Arrow does not check UTF-8 when it reads, and polars trusts arrow's strings.
        table.validate(full=True)
    except (pa.ArrowException, OSError):
        return None
    frame = cast(pl.DataFrame, pl.from_arrow(table))  # a table gives a frame
    if frame.select(_narrow_faults(well_formed).any()).item():
        return None
    answers = pl.col("answers")
    has_answer = (answers.list.len() > 0) & ~answers.list.first().str.contains(_NO_ANSWER_TEXT)
    return frame.select(
        row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
        query_id=pl.col("query_id").cast(pl.Int64),
        query_type=pl.col("query_type").cast(pl.String),
        has_answer=has_answer.fill_null(False),
        n_selected=pl.col("passages").struct.field("is_selected").list.count_matches(1).cast(pl.Int64),
    )


def _scan_passages(path: Path, wanted: Sequence[int]) -> dict[int, _Kept] | None:
    """Check every row's passages in one streaming scan; the ``wanted`` rows' fields, by row.

    None when a row may be bad or polars cannot read the file.
    """
    passages = pl.col("passages")
    texts, urls, flags = (passages.struct.field(n) for n in ("passage_text", "url", "is_selected"))
    selected = flags.list.eval(pl.element().eq(1).arg_true())
    faults = [
        passages.is_null(),
        texts.is_null(),
        urls.is_null(),
        flags.is_null(),
        texts.list.len() != flags.list.len(),
        urls.list.len() != flags.list.len(),
        _any_item(texts, pl.element().is_null()),
        _any_item(urls, pl.element().is_null()),
        ~_any_item(texts, pl.element().str.contains(_NONBLANK)),  # no passage, or blank ones only
        _any_item(texts.list.gather(selected, null_on_oob=True), ~pl.element().str.contains(_NONBLANK)),
    ]
    plan = (
        pl.scan_parquet(path, glob=False, hive_partitioning=False)
        .with_row_index("row", offset=1)
        .with_columns(pl.col("row").cast(pl.Int64), bad=_any_fault(faults))
        .filter(pl.col("bad") | pl.col("row").is_in(pl.Series(wanted, dtype=pl.Int64).implode()))
        .select(
            "row",
            "bad",
            question=pl.col("query"),
            answer=pl.col("answers").list.first(),
            context=texts,
            relevant=selected.cast(pl.List(pl.Int64)),
        )
    )
    try:
        found = plan.collect(engine="streaming")
    except (pl.exceptions.PolarsError, OSError):
        return None
    if found["bad"].any():
        return None
    return {row: _Kept(*fields) for row, _, *fields in found.iter_rows()}


# --------------------------------------------------------------------------- decomposition


def category_of(row: MarcoRow) -> str:
    """``query_type`` lower-cased; anything but the five MS MARCO types is a format error."""
    category = _category(row.query_type)
    if category is None:
        raise _unknown_type(row.file, row.row, row.query_type)
    return category


def _category(query_type: str) -> str | None:
    """The category a ``query_type`` names, or None for none of the five."""
    category = query_type.strip().lower()
    return category if category in QUERY_TYPES else None


def _unknown_type(file: str, row: int, query_type: str) -> RawFormatError:
    return RawFormatError(
        file, row, "query_type",
        f"unknown query type {query_type!r}; expected one of {list(QUERY_TYPES)}",
    )


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

    Every row of every file is checked as :func:`load_marco` checks it, and the first bad one
    raises the same :class:`RawFormatError`; but parquet files are read by columns, and passages
    are made into Python objects only for the rows kept.
    """
    shards: list[_Shard] = []
    for path in find_marco_files(Path(raw_dir)):
        shards.append(_read_shard(path))
        if shards[-1].error is not None:
            break  # later files cannot matter: this error, or an earlier file's, is raised
    chosen = pl.DataFrame(schema={"file": pl.Int64, "row": pl.Int64})
    report = Report("MARCO")
    pending: ValueError | None = None
    if shards[-1].error is None:
        try:
            chosen, report = _decide(shards, split, sampling)
        except ValueError as err:  # RawFormatError too
            # The row-by-row reader finds every bad row before it looks at ids, types or options.
            pending = err
    wanted = dict(chosen.group_by("file").agg("row").iter_rows())
    fields = [shard.kept(wanted.get(i, [])) for i, shard in enumerate(shards)]
    if pending is not None:
        raise pending
    records = []
    for r in chosen.iter_rows(named=True):
        kept = fields[r["file"]][r["row"]]
        records.append(
            {
                "id": r["id"],
                "split": r["split"],
                "category": r["category"],
                "context": kept.context,
                "question": kept.question,
                "answers": [kept.answer],
                "relevant": kept.relevant,
                "query_id": r["query_id"],
                "n_selected": r["n_selected"],
            }
        )
    frame = pl.DataFrame(records, schema={**SCHEMA, **EXTRAS}, orient="row")
    return frame, report


def _decide(
    shards: Sequence[_Shard], split: Mapping[str, Any] | None, sampling: Sampling
) -> tuple[pl.DataFrame, Report]:
    """Every drop and the sample, from the narrow columns alone.

    Returns the kept rows in output order (``file``: index into ``shards``, ``row``, ``id``,
    ``split``, ``category``, ``query_id``, ``n_selected``) and the report. Raises, in this
    order (the row-by-row algorithm's), on a repeated query id, bad ``split`` options and an
    unknown query type.
    """
    names = [str(shard.path) for shard in shards]
    rows = pl.concat(
        [
            shard.narrow.with_columns(file=pl.lit(i, pl.Int64), split=pl.lit(shard.split))
            for i, shard in enumerate(shards)
        ]
    ).with_row_index("at")
    _check_unique_ids(rows, names)
    options = _split_options(split)
    if rows["split"].n_unique() > 1:
        options = None  # the files already say which rows are test rows
    rows = rows.with_columns(category=_categories(rows, names), reason=_drop_reason(rows))
    report = Report("MARCO")
    _count_rows(rows, report)
    chosen = _sample(rows.filter(pl.col("reason").is_null()), options, sampling, report)
    for category, n in chosen.group_by("category", maintain_order=True).len().iter_rows():
        report.per_category[category]["kept"] += n
    return chosen, report


def _drop_reason(rows: pl.DataFrame) -> pl.Expr:
    """Why a row is dropped (null: kept), the first reason that applies as in the report."""
    train_ids = rows.filter(pl.col("split") == "train")["query_id"].implode()
    return (
        pl.when((pl.col("split") == "test") & pl.col("query_id").is_in(train_ids))
        .then(pl.lit("test_query_in_train"))
        .when(~pl.col("has_answer"))
        .then(pl.lit("no_answer"))
        .when(pl.col("n_selected") == 0)
        .then(pl.lit("no_selected_passage"))
    )


def _count_rows(rows: pl.DataFrame, report: Report) -> None:
    """Rows and covered rows per category, drops per reason, into ``report``."""
    counts = rows.group_by("category", maintain_order=True).agg(
        pl.len().alias("rows"), pl.col("reason").is_null().sum().alias("covered")
    )
    for category, n_rows, n_covered in counts.iter_rows():
        report.per_category[category]["rows"] += n_rows
        if n_covered:
            report.per_category[category]["covered"] += n_covered
    drops = rows.drop_nulls("reason").group_by("reason", maintain_order=True).len()
    for reason, n in drops.iter_rows():
        report.dropped[reason] += n


def _sample(
    covered: pl.DataFrame, options: tuple[float, int] | None, sampling: Sampling, report: Report
) -> pl.DataFrame:
    """The covered rows' seeded splits and the per-split caps (:func:`sample_rows`, as for every
    dataset); the kept rows in output order, without ``at``."""
    ids = [f"marco-{q}" for q in covered["query_id"].to_list()]
    splits = covered["split"].to_list() if options is None else [assign_split(i, *options) for i in ids]
    pool = [{"id": i, "split": s, "at": at} for i, s, at in zip(ids, splits, covered["at"].to_list(), strict=True)]
    # One group per row: per-story sampling does not apply, only the per-split caps.
    kept = sample_rows(pool, sampling, group=lambda r: (r["id"],), report=report)
    order = pl.DataFrame(
        {"at": [r["at"] for r in kept], "id": [r["id"] for r in kept], "split": [r["split"] for r in kept]},
        schema={"at": covered.schema["at"], "id": pl.String, "split": pl.String},
    )
    columns = covered.select("at", "file", "row", "category", "query_id", "n_selected")
    return order.join(columns, on="at", maintain_order="left").drop("at")


def _check_unique_ids(rows: pl.DataFrame, names: Sequence[str]) -> None:
    """A query id given twice in one split is an error at its second row (see :func:`row_ids`)."""
    key = pl.struct("split", "query_id")
    repeat = rows.select((~key.is_first_distinct()).arg_true().first()).item()
    if repeat is None:
        return
    again = rows.row(repeat, named=True)
    first = rows.filter(
        (pl.col("split") == again["split"]) & (pl.col("query_id") == again["query_id"])
    ).row(0, named=True)
    raise RawFormatError(
        names[again["file"]], again["row"], "query_id",
        f"query_id {again['query_id']} repeats in the {again['split']} split "
        f"(first at {names[first['file']]}:{first['row']})",
    )


def _categories(rows: pl.DataFrame, names: Sequence[str]) -> pl.Expr:
    """Each row's category (see :func:`category_of`); raises at the first unknown query type.

    Python's ``strip`` and ``lower`` decide, once for each distinct ``query_type``.
    """
    mapping = {kind: _category(kind) for kind in rows["query_type"].unique().to_list()}
    unknown = [kind for kind, category in mapping.items() if category is None]
    if unknown:
        bad = rows.filter(pl.col("query_type").is_in(unknown)).row(0, named=True)
        raise _unknown_type(names[bad["file"]], bad["row"], bad["query_type"])
    return pl.col("query_type").replace_strict(mapping, return_dtype=pl.String)


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
            "properties": {
                "train": {**_ROWS, "description": "synthetic training queries"},
                "test": {**_ROWS, "description": "synthetic test queries"},
            },
        },
        "passages": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10,
            "default": 5,
            "description": "synthetic: passages per query (the selected ones among distractors)",
        },
    },
}
