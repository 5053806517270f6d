"""Table-driven hostile-input suite: whole classes of bad input, each stopped at its root.

Each table row is one input a hostile (or unlucky) user could give, fed through the real entry
point; the test asserts the exact located error (file, row, field; or the config's dotted key)
or the correct result. The classes, in order:

1. crashes: deep JSON, integers beyond 64 bits, text that is not UTF-8, a folder for a file
   (and the reverse) -- one-line errors from the shared reader (:mod:`tracekd.readers`) and
   the command line's error boundary;
2. silently wrong results: CoTemp ``relations`` ignored, duplicates in lists that name things,
   duplicate YAML keys, report datasets that are not configured, NaN/inf/absurd numbers, the
   same MS MARCO query in both splits;
3. writing outside the results folder: ``results`` empty or ``/``, names that are not plain
   identifiers, a YAML alias bomb (the config loader and the Snakefile);
4. a shared cluster filesystem: written files honour the umask; the schema ships with the
   package and the default ``--config`` is not the installing checkout's;
5. the error boundary itself (CLI, rule logs), ``summary.csv``'s undefined phi, the README.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tracekd import readers
from tracekd.cli import main
from tracekd.config import (
    MAX_CONFIG_NODES,
    NAME_PATTERN,
    SCHEMA_PATH,
    ConfigError,
    load_config,
    read_config_file,
    validate_config,
)
from tracekd.datasets import Sampling, decompose
from tracekd.datasets.babi import decompose_babi, load_babi
from tracekd.datasets.cotemp import decompose_cotemp, find_cotemp_files, load_cotemp
from tracekd.datasets.marco import decompose_marco, load_marco
from tracekd.errors import PathError, RawFormatError, describe_error
from tracekd.evaluate.reference import read_trace_check_qa
from tracekd.io import check_output_file, current_umask, write_json, write_parquet, write_text
from tracekd.readers import check_int64, decode_utf8, iter_json_lines, parse_json, walk_files
from tracekd.report.tables import study_tables
from tracekd.runlog import logged

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.yaml"
WORKFLOW_SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEMO_TEXT = DEMO.read_text(encoding="utf-8")


def located(err: RawFormatError, file: Path, row: int | None, field: str) -> str:
    """Assert ``err`` names ``file``, ``row`` and ``field`` and reads so; return its message."""
    assert (Path(err.file), err.row, err.field) == (file, row, field), str(err)
    where = str(file) if row is None else f"{file}:{row}"
    assert str(err).startswith(f"{where}: {field}: "), str(err)
    return err.message


def _config_file_error(tmp_path: Path, text: str | bytes) -> tuple[Path, str]:
    """Write a config file, load it; the path and the first line of its ConfigError."""
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.perf_counter() - started < 10  # an alias bomb is refused, not expanded
    return path, str(info.value).splitlines()[0]


# ============================================================================ 1. crashes
# ---------------------------------------------------------------- JSON lines, every reader

COTEMP_ROW: dict[str, Any] = {
    "index": 0,
    "triple_element": "S1_R1_O2",
    "question": "While Ann Lee worked for Acme Corp, which employer did Ann Lee work for "
    "within the same time interval?",
    "facts": [
        "Ann Lee works for Acme Corp from 2001 to 2004.",
        "Ann Lee works for Beta Labs from 2001 to 2004.",
    ],
    "answer": ["Beta Labs"],
}
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
}
REFERENCE_ROW: dict[str, Any] = {
    "input": {"text": "<prompt>"},
    "prediction": '<think>x</think> <answer>["Beta Labs"]</answer>',
    "gold": ["Beta Labs"],
    "question": COTEMP_ROW["question"],
    "facts": COTEMP_ROW["facts"],
    "triple_element": "S1_R1_O2",
}


def _cotemp_reader(folder: Path, lines: bytes) -> tuple[Path, Callable[[], Any]]:
    path = folder / "equal.json"
    path.write_bytes(lines)
    return path, lambda: load_cotemp(folder)


def _marco_reader(folder: Path, lines: bytes) -> tuple[Path, Callable[[], Any]]:
    path = folder / "train.jsonl"
    path.write_bytes(lines)
    return path, lambda: load_marco(folder)


def _reference_reader(folder: Path, lines: bytes) -> tuple[Path, Callable[[], Any]]:
    path = folder / "outputs_equal_Model_default.json"
    path.write_bytes(lines)
    return path, lambda: read_trace_check_qa(path)


#: every JSON-lines reader: (good row, its first text field, how to write and read a file)
JSON_READERS: dict[str, tuple[dict[str, Any], str, Callable[..., Any]]] = {
    "cotemp": (COTEMP_ROW, "question", _cotemp_reader),
    "marco": (MARCO_ROW, "query", _marco_reader),
    "reference": (REFERENCE_ROW, "question", _reference_reader),
}

DEEP = 200_000


def _with(row: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({**row, **extra}).encode()


def _raw_extra(row: dict[str, Any], raw: str) -> bytes:
    """``row`` with a field ``extra`` whose JSON text is ``raw`` (written as is)."""
    return (json.dumps(row)[:-1] + ', "extra": ' + raw + "}").encode()


def _bytes_extra(row: dict[str, Any], raw: bytes) -> bytes:
    """``row`` with a string field ``extra`` holding the bytes ``raw`` as they are."""
    return json.dumps(row)[:-1].encode() + b', "extra": "' + raw + b'"}'


def _text_field(row: dict[str, Any], field: str, raw: str) -> bytes:
    """``row`` with ``field``'s string replaced by the JSON string literal text ``raw``."""
    return json.dumps(row).replace(json.dumps(row[field]), raw).encode()


# (id, line 2 as bytes from (good row, its text field), field, words of the message)
JSON_LINE_ATTACKS: list[Any] = [
    pytest.param(lambda r, f: _raw_extra(r, "[" * DEEP + "]" * DEEP), "extra",
                 "nested deeper than 100 levels", id="extra-field-lists-200k-deep"),
    pytest.param(lambda r, f: _raw_extra(r, '{"a":' * DEEP + "1" + "}" * DEEP), "extra",
                 "nested deeper than 100 levels", id="extra-field-objects-200k-deep"),
    pytest.param(lambda r, f: _raw_extra(r, "[" * 100 + "]" * 100), "extra",
                 "nested deeper than 100 levels", id="extra-field-at-depth-101"),
    pytest.param(lambda r, f: ("[" * DEEP + "]" * DEEP).encode(), "json",
                 "nested deeper than 100 levels", id="whole-line-an-array-200k-deep"),
    pytest.param(lambda r, f: _raw_extra(r, '{"' + "k" * 50 + '": ' + "[" * 500 + "]" * 500 + "}"),
                 "extra", "nested deeper", id="deep-list-under-a-long-key"),
    pytest.param(lambda r, f: _raw_extra(r, "9" * 5000), "json", "not readable JSON",
                 id="integer-literal-5000-digits"),
    pytest.param(lambda r, f: _text_field(r, f, '"abc\\ud800"'), "{field}", "lone surrogate",
                 id="escaped-lone-high-surrogate"),
    pytest.param(lambda r, f: _text_field(r, f, '"\\udfffabc"'), "{field}", "lone surrogate",
                 id="escaped-lone-low-surrogate"),
    pytest.param(lambda r, f: _raw_extra(r, '["ok", {"k": ["\\ud834"]}]'), "extra",
                 "lone surrogate", id="lone-surrogate-nested-in-extra"),
    pytest.param(lambda r, f: json.dumps(r)[:-1].encode() + b', "k\\udc00": 1}',
                 "k\\udc00", "lone surrogate", id="lone-surrogate-in-a-key"),
    pytest.param(lambda r, f: _bytes_extra(r, b"\xc5nn"), "text",
                 "not valid UTF-8 (byte 0xc5 at column", id="latin1-byte"),
    pytest.param(lambda r, f: _bytes_extra(r, b"A\xed\xa0\x80n"), "text",
                 "not valid UTF-8 (byte 0xed", id="utf8-encoded-surrogate-bytes"),
    pytest.param(lambda r, f: _bytes_extra(r, b"A\x00nn"), "text",
                 "NUL character", id="nul-byte"),
    pytest.param(lambda r, f: json.dumps(r).encode("utf-16-le"), "text", "NUL character",
                 id="utf16-line-without-bom"),
    pytest.param(lambda r, f: json.dumps(r).encode()[:-1] + b"\xff}", "text",
                 "not valid UTF-8 (byte 0xff", id="stray-0xff-byte"),
]


@pytest.mark.parametrize("reader", list(JSON_READERS))
@pytest.mark.parametrize(("make", "field", "words"), JSON_LINE_ATTACKS)
def test_json_lines_attack_is_a_located_error_in_every_reader(
    tmp_path: Path, reader: str, make: Callable[..., bytes], field: str, words: str
) -> None:
    good, text_field, write = JSON_READERS[reader]
    path, read = write(tmp_path, json.dumps(good).encode() + b"\n" + make(good, text_field) + b"\n")
    started = time.perf_counter()
    with pytest.raises(RawFormatError) as info:
        read()
    assert time.perf_counter() - started < 5
    message = located(info.value, path, 2, field.format(field=text_field))
    assert words in message


# whole files in another encoding: refused at line 1 by the shared decoder
ENCODINGS: list[Any] = [
    pytest.param(lambda t: t.encode("utf-16"), "UTF-16 text (byte-order mark ff fe)", id="utf16"),
    pytest.param(lambda t: t.encode("utf-16-be").join([b"\xfe\xff", b""]),
                 "UTF-16 text (byte-order mark fe ff)", id="utf16-be-with-bom"),
    pytest.param(lambda t: t.encode("utf-32"), "UTF-32 text (byte-order mark ff fe 00 00)",
                 id="utf32"),
    pytest.param(lambda t: t.encode("utf-16-be"), "NUL character at column 1", id="utf16-be-no-bom"),
    pytest.param(lambda t: (t[:-2] + ', "x": "\u00c5"}\n').encode("latin-1"),
                 "not valid UTF-8 (byte 0xc5", id="latin1-file"),
    pytest.param(lambda t: (t[:-2] + ', "x": "\u20ac"}\n').encode("cp1252"),
                 "not valid UTF-8 (byte 0x80", id="cp1252-file"),
]


@pytest.mark.parametrize("reader", list(JSON_READERS))
@pytest.mark.parametrize(("encode", "words"), ENCODINGS)
def test_json_file_in_another_encoding_names_line_1(
    tmp_path: Path, reader: str, encode: Callable[[str], bytes], words: str
) -> None:
    good, _, write = JSON_READERS[reader]
    path, read = write(tmp_path, encode(json.dumps(good) + "\n"))
    with pytest.raises(RawFormatError) as info:
        read()
    assert words in located(info.value, path, 1, "text")


@pytest.mark.parametrize("reader", list(JSON_READERS))
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param("[" * 99 + "]" * 99, id="extra-field-at-depth-100"),
        pytest.param(json.dumps("[" * DEEP), id="brackets-inside-a-string"),
        pytest.param('"\\ud83d\\ude00 \\\\ud800"', id="surrogate-pair-and-escaped-backslash"),
        pytest.param(str(2**200), id="long-integer-in-an-unused-field"),
    ],
)
def test_json_lines_near_misses_still_load(tmp_path: Path, reader: str, extra: str) -> None:
    good, _, write = JSON_READERS[reader]
    _, read = write(tmp_path, _raw_extra(good, extra) + b"\n")
    assert len(read()) == 1


# ---------------------------------------------------------------- id-like integers


def _cotemp_index(tmp_path: Path, index: int) -> tuple[Path, Callable[[], Any]]:
    return _cotemp_reader(tmp_path, _with(COTEMP_ROW, index=index) + b"\n")


def _marco_qid(tmp_path: Path, qid: int) -> tuple[Path, Callable[[], Any]]:
    return _marco_reader(tmp_path, _with(MARCO_ROW, query_id=qid) + b"\n")


def _parquet(tmp_path: Path, **columns: pa.Array) -> tuple[Path, Callable[[], Any]]:
    base = {k: [copy.deepcopy(v)] for k, v in MARCO_ROW.items()}
    table = pa.table({**base, **columns})
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(table, path)
    return path, lambda: load_marco(tmp_path)


BIG_IDS: list[Any] = [
    pytest.param(lambda t: _cotemp_index(t, 10**30), 1, "index",
                 "1000000000000000000000000000000 does not fit in 64 bits", id="cotemp-index-1e30"),
    pytest.param(lambda t: _cotemp_index(t, 2**63), 1, "index",
                 "9223372036854775808 does not fit in 64 bits", id="cotemp-index-2-63"),
    pytest.param(lambda t: _cotemp_index(t, 2**1000), 1, "index",
                 "a 1001-bit integer does not fit in 64 bits", id="cotemp-index-1001-bits"),
    pytest.param(lambda t: _marco_qid(t, 2**70), 1, "query_id",
                 "1180591620717411303424 does not fit in 64 bits", id="marco-query-id-2-70"),
    pytest.param(lambda t: _marco_qid(t, -(2**63) - 1), 1, "query_id",
                 "-9223372036854775809 does not fit in 64 bits", id="marco-query-id-below-int64"),
    pytest.param(lambda t: _parquet(t, query_id=pa.array([2**64 - 1], pa.uint64())), 1,
                 "query_id", "18446744073709551615 does not fit in 64 bits",
                 id="parquet-query-id-uint64-max"),
    pytest.param(lambda t: _parquet(t, query_id=pa.array([2**63], pa.uint64())), 1,
                 "query_id", "9223372036854775808 does not fit in 64 bits",
                 id="parquet-query-id-2-63"),
]


@pytest.mark.parametrize(("make", "row", "field", "message"), BIG_IDS)
def test_integer_beyond_64_bits_in_an_id_is_located(
    tmp_path: Path, make: Callable[[Path], tuple[Path, Callable[[], Any]]], row: int, field: str,
    message: str,
) -> None:
    path, read = make(tmp_path)
    with pytest.raises(RawFormatError) as info:
        read()
    assert located(info.value, path, row, field) == message


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: _cotemp_index(t, 2**63 - 1), id="cotemp-index-int64-max"),
        pytest.param(lambda t: _marco_qid(t, 2**63 - 1), id="marco-query-id-int64-max"),
        pytest.param(lambda t: _parquet(t, query_id=pa.array([2**63 - 1], pa.uint64())),
                     id="parquet-uint64-within-int64"),
    ],
)
def test_largest_64_bit_id_is_kept_through_the_decomposition(
    tmp_path: Path, make: Callable[[Path], tuple[Path, Callable[[], Any]]]
) -> None:
    make(tmp_path)
    loader = "cotemp" if (tmp_path / "equal.json").exists() else "marco"
    options = {"sample": {"per_story": None}, "split": {"test_fraction": 0.5}}
    frame, _ = decompose(loader, tmp_path, options)
    column = "source_index" if loader == "cotemp" else "query_id"
    assert frame[column].to_list() == [2**63 - 1]


BABI_STORY = "1 Mary moved to the bathroom.\n2 John went to the hallway.\n"
BABI_IDS: list[Any] = [
    pytest.param(BABI_STORY + "3" * 30 + " Where is Mary?\tbathroom\t1\n", 3, "id",
                 "line id has 30 digits; too large", id="line-id-30-digits"),
    pytest.param("9" * 5000 + " Mary moved.\n", 1, "id", "line id has 5000 digits; too large",
                 id="line-id-5000-digits"),
    pytest.param(BABI_STORY + "3 Where is Mary?\tbathroom\t" + "1" * 19 + "\n", 3, "supporting",
                 "supporting id has 19 digits; too large", id="supporting-id-19-digits"),
]


def _babi(tmp_path: Path, train: bytes) -> Path:
    name = "qa1_single-supporting-fact_{}.txt"
    (tmp_path / name.format("train")).write_bytes(train)
    (tmp_path / name.format("test")).write_bytes((BABI_STORY + "3 Where?\tbathroom\t1\n").encode())
    return tmp_path / name.format("train")


@pytest.mark.parametrize(("text", "row", "field", "message"), BABI_IDS)
def test_babi_huge_ids_are_located(tmp_path: Path, text: str, row: int, field: str, message: str) -> None:
    path = _babi(tmp_path, text.encode())
    with pytest.raises(RawFormatError) as info:
        load_babi(tmp_path, ["qa1"])
    assert located(info.value, path, row, field) == message


# ---------------------------------------------------------------- bAbI text encodings

BABI_TEXT = BABI_STORY + "3 Where is Mary?\tbathroom\t1\n"
BABI_ENCODINGS: list[Any] = [
    pytest.param(BABI_TEXT.replace("hallway", "h\u00e9llway").encode("latin-1"), 2,
                 "not valid UTF-8 (byte 0xe9 at column 21)", id="latin1-line-2"),
    pytest.param(BABI_TEXT.encode("utf-16-le").join([b"\xff\xfe", b""]), 1,
                 "UTF-16 text (byte-order mark ff fe); save the file as UTF-8", id="utf16-le-bom"),
    pytest.param(BABI_TEXT.encode("utf-16-be").join([b"\xfe\xff", b""]), 1,
                 "UTF-16 text (byte-order mark fe ff); save the file as UTF-8", id="utf16-be-bom"),
    pytest.param(BABI_TEXT.encode("utf-16-le"), 1,
                 "NUL character at column 2 (UTF-16 text without a byte-order mark?); save the "
                 "file as UTF-8", id="utf16-no-bom"),
    pytest.param(BABI_TEXT.encode("utf-32"), 1,
                 "UTF-32 text (byte-order mark ff fe 00 00); save the file as UTF-8", id="utf32"),
    pytest.param(BABI_TEXT.encode().replace(b"Mary?", b"Mar\xed\xb0\x80?"), 3,
                 "not valid UTF-8 (byte 0xed at column 15)", id="encoded-lone-surrogate"),
    pytest.param(BABI_TEXT.encode().replace(b"John", b"Jo\x00n"), 2,
                 "NUL character at column 5 (UTF-16 text without a byte-order mark?); save the "
                 "file as UTF-8", id="nul-in-a-sentence"),
]


@pytest.mark.parametrize(("data", "row", "message"), BABI_ENCODINGS)
def test_babi_text_not_utf8_names_line_and_column(
    tmp_path: Path, data: bytes, row: int, message: str
) -> None:
    path = _babi(tmp_path, data)
    with pytest.raises(RawFormatError) as info:
        load_babi(tmp_path, ["qa1"])
    assert located(info.value, path, row, "text") == message


# ---------------------------------------------------------------- config files in another encoding

# (id, file bytes, the exact first line of the error with {p} for the path)
YAML_TEXT: list[Any] = [
    pytest.param(DEMO_TEXT.encode("utf-16"), "{p}:1: not valid YAML: UTF-16 text (byte-order mark "
                 "ff fe); save the file as UTF-8", id="utf16-config"),
    pytest.param(DEMO_TEXT.replace("toy scale", "t\u00f6y scale").encode("latin-1"),
                 "{p}:1: not valid YAML: not valid UTF-8 (byte 0xf6 at column 23)",
                 id="latin1-config"),
    pytest.param("a: [1, 2\nb: 3\n", "{p}:2: not valid YAML: expected ',' or ']', but got ':'",
                 id="yaml-unclosed-list"),
    pytest.param("a: b\n c: d\n", "{p}:2: not valid YAML: mapping values are not allowed here",
                 id="yaml-bad-indent"),
]


@pytest.mark.parametrize(("text", "first_line"), YAML_TEXT)
def test_config_file_text_problem_names_file_and_line(
    tmp_path: Path, text: str | bytes, first_line: str
) -> None:
    path, line = _config_file_error(tmp_path, text)
    assert line == first_line.format(p=path)


# ---------------------------------------------------------------- folders and files (CLI)


def _small_config(tmp_path: Path) -> Path:
    config = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    config["datasets"]["bAbI"]["tasks"] = ["qa1"]
    # one task is one category: no setting may draw another
    config["settings"] = [s for s in config["settings"] if "corruption" not in s]
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert captured.out == "" or code == 0
    return code, captured.err


def _decompose_args(dataset: str, raw: Path, out: Path, config: Path) -> list[str]:
    return ["decompose", "--dataset", dataset, "--raw", str(raw), "--out", str(out),
            "--config", str(config)]


# (id, how to make the arguments from tmp_path, the exact stderr with {t} for tmp_path)
PATH_ERRORS: list[Any] = [
    *[
        pytest.param(
            lambda t, d=d: (_touch(t / "afile"), _decompose_args(d, t / "afile", t / "o.parquet",
                                                                  _small_config(t)))[1],
            f"{{t}}/afile: expected a folder holding the {what} files, found a file",
            id=f"raw-is-a-file-{d}",
        )
        for d, what in (("bAbI", "bAbI"), ("CoTemp", "CoTempQA"), ("MARCO", "MS MARCO"))
    ],
    *[
        pytest.param(
            lambda t, d=d: _decompose_args(d, t / "none", t / "o.parquet", _small_config(t)),
            f"{{t}}/none: no such folder (expected the {what} files there)",
            id=f"raw-missing-{d}",
        )
        for d, what in (("bAbI", "bAbI"), ("CoTemp", "CoTempQA"), ("MARCO", "MS MARCO"))
    ],
    pytest.param(lambda t: _decompose_args("bAbI", _babi_dir(t), _mkdir(t / "out"), _small_config(t)),
                 "{t}/out: is a folder; give the path of the file to write", id="out-is-a-folder"),
    pytest.param(lambda t: _decompose_args("bAbI", _babi_dir(t), _touch(t / "f") / "o.parquet",
                                           _small_config(t)),
                 "{t}/f: is a file, so it cannot hold o.parquet", id="out-below-a-file"),
    pytest.param(lambda t: _decompose_args("bAbI", _babi_dir(t), _touch(t / "f") / "a" / "o.parquet",
                                           _small_config(t)),
                 "{t}/f: is a file, so it cannot hold o.parquet", id="out-two-below-a-file"),
    pytest.param(lambda t: _decompose_args("bAbI", _babi_dir(t), t / "o.parquet", _mkdir(t / "cfg")),
                 "{t}/cfg: is a folder, not a config file", id="config-is-a-folder"),
    pytest.param(lambda t: _decompose_args("bAbI", _babi_dir(t), t / "o.parquet", t / "none.yaml"),
                 "{t}/none.yaml: no such config file", id="config-missing"),
    pytest.param(lambda t: ["score", str(_mkdir(t / "preds"))],
                 "{t}/preds: file: expected a file, found a folder", id="score-a-folder"),
    pytest.param(lambda t: ["score", str(t / "none.json")],
                 "{t}/none.json: No such file or directory", id="score-missing-file"),
    pytest.param(lambda t: ["score", "/dev/null"], "/dev/null: file: not a regular file",
                 id="score-a-device"),
    pytest.param(lambda t: ["check-config", str(_mkdir(t / "cfg"))],
                 "{t}/cfg: is a folder, not a config file", id="check-config-a-folder"),
    pytest.param(lambda t: ["check-config", str(t)],
                 "{t}: is a folder, not a config file", id="check-config-tmp-root"),
    pytest.param(lambda t: ["check-config", str(_fifo(t / "pipe.yaml"))],
                 "{t}/pipe.yaml: not a regular file", id="check-config-a-pipe"),
    pytest.param(lambda t: _decompose_args("bAbI", _babi_dir(t), Path("/dev/null"), _small_config(t)),
                 "/dev/null: is not a regular file; give the path of the file to write",
                 id="out-is-a-device"),
]


def _touch(path: Path) -> Path:
    path.write_text("x")
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _babi_dir(tmp_path: Path) -> Path:
    raw = _mkdir(tmp_path / "babi")
    _babi(raw, BABI_TEXT.encode())
    return raw


@pytest.mark.parametrize(("make_args", "expected"), PATH_ERRORS)
def test_wrong_kind_of_path_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_args: Callable[[Path], list[str]],
    expected: str,
) -> None:
    code, err = _cli(capsys, *make_args(tmp_path))
    assert code == 2
    assert err == "tracekd: error: " + expected.format(t=tmp_path) + "\n"
    assert not list(tmp_path.rglob("o.parquet"))


def test_raw_root_does_not_walk_the_whole_machine(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    started = time.perf_counter()
    code, err = _cli(capsys, *_decompose_args("bAbI", Path("/"), tmp_path / "o.parquet",
                                              _small_config(tmp_path)))
    assert time.perf_counter() - started < 60
    assert code == 2
    # either the tree is too big, or (a small container) no bAbI file is found: never /proc
    assert err.startswith(("tracekd: error: /: more than 100,000 files and folders",
                           "tracekd: error: no bAbI file for task qa1")), err
    assert "/proc" not in err and "Permission" not in err and "Traceback" not in err


def test_default_config_missing_in_the_current_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _cli(capsys, "decompose", "--dataset", "bAbI", "--raw", _babi_dir(tmp_path),
                     "--out", tmp_path / "o.parquet")
    assert code == 2
    assert err == (
        f"tracekd: error: config/config.yaml: no such config file in {tmp_path}; run from the "
        "workflow's folder or give --config\n"
    )


# ---------------------------------------------------------------- folder walking (unit)


def test_walk_files_lists_regular_files_sorted(tmp_path: Path) -> None:
    for name in ("b/2.txt", "a/1.txt", "c.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in walk_files(tmp_path, what="x")] == [
        "a/1.txt", "b/2.txt", "c.txt",
    ]


def test_walk_files_does_not_follow_a_folder_link_loop(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    assert walk_files(tmp_path, what="x") == [tmp_path / "a" / "f.txt"]


def test_walk_files_refuses_a_tree_too_big_to_be_a_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_WALK_ENTRIES", 5)
    for i in range(6):
        (tmp_path / f"{i}.txt").write_text("x")
    with pytest.raises(PathError) as info:
        walk_files(tmp_path, what="bAbI")
    assert str(info.value) == (
        f"{tmp_path}: more than 5 files and folders under it; give the folder that holds the "
        "bAbI files"
    )


def test_walk_files_raises_on_an_unreadable_folder(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    locked = _mkdir(tmp_path / "locked")
    locked.chmod(0)
    try:
        with pytest.raises(PermissionError):
            walk_files(tmp_path, what="x")
    finally:
        locked.chmod(0o755)


# ---------------------------------------------------------------- the guarded reader (unit)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param('{"a": 1}', None, id="flat"),
        pytest.param('{"a": "[[[[[[[[[[[["}', None, id="brackets-in-a-string"),
        pytest.param('{"a": "\\"[[["}' + "", None, id="escaped-quote-then-brackets"),
        pytest.param('{"a": 1, "b": ' + "[" * 101 + "]" * 101 + "}", "b", id="second-key"),
        pytest.param('{"a\\u0062": ' + "{" * 101 + "}" * 101 + "}", "ab", id="escaped-key"),
        pytest.param("[" * 101 + "]" * 101, "json", id="top-level-array"),
    ],
)
def test_depth_check_names_the_top_level_field(text: str, field: str | None) -> None:
    if field is None:
        assert parse_json(text, "f", 1) is not None
    else:
        with pytest.raises(RawFormatError) as info:
            parse_json(text, "f", 1)
        assert (info.value.field, info.value.message) == (field, "nested deeper than 100 levels")


def test_json_lines_keep_line_numbers_across_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n  \n{"a": 2}\n\n')
    assert list(iter_json_lines(path)) == [(1, {"a": 1}), (4, {"a": 2})]
    with pytest.raises(RawFormatError) as info:
        list(iter_json_lines(path, blank_inside=False))
    assert located(info.value, path, 2, "json") == "blank line inside the file"


def test_decode_utf8_counts_rows_from_first_row() -> None:
    with pytest.raises(RawFormatError) as info:
        decode_utf8(b"ok\nb\xe9", "f", first_row=10)
    assert (info.value.row, info.value.message) == (11, "not valid UTF-8 (byte 0xe9 at column 2)")


def test_check_int64_bounds() -> None:
    assert check_int64(2**63 - 1, "f", 1, "id") == 2**63 - 1
    assert check_int64(-(2**63), "f", 1, "id") == -(2**63)
    with pytest.raises(RawFormatError, match="does not fit in 64 bits"):
        check_int64(2**63, "f", 1, "id")


# ============================================================================ 2. silently wrong
# ---------------------------------------------------------------- CoTemp relations obeyed


def _cotemp_files(tmp_path: Path, relations: tuple[str, ...] = ("equal", "overlap", "mix")) -> Path:
    for relation in relations:
        (tmp_path / f"{relation}.json").write_bytes(_with(COTEMP_ROW) + b"\n" + _with(COTEMP_ROW, index=1) + b"\n")
    return tmp_path


@pytest.mark.parametrize(
    ("relations", "categories"),
    [
        pytest.param(["equal"], {"equal"}, id="equal-only"),
        pytest.param(["mix", "equal"], {"equal", "mix"}, id="two-of-three"),
        pytest.param(None, {"equal", "overlap", "mix"}, id="unset-reads-all-found"),
    ],
)
def test_cotemp_reads_only_the_configured_relations(
    tmp_path: Path, relations: list[str] | None, categories: set[str]
) -> None:
    options: dict[str, Any] = {
        "sample": {"per_story": None, "flagged": "keep"}, "split": {"test_fraction": 0.5},
    }
    if relations is not None:
        options["relations"] = relations
    frame, report = decompose("cotemp", _cotemp_files(tmp_path), options)
    assert set(frame["category"]) == categories
    assert set(report.to_dict()["per_category"]) == categories


def test_cotemp_configured_relation_without_a_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        find_cotemp_files(_cotemp_files(tmp_path), ["equal", "during"])
    assert str(info.value) == (
        f"no CoTempQA 'during' file under {tmp_path} (looked for during.json, searched "
        "recursively); the config's relations are ['equal', 'during']"
    )


@pytest.mark.parametrize(
    ("relations", "message"),
    [
        pytest.param(["equal", "equal"], "relations: ['equal'] listed more than once", id="twice"),
        pytest.param(["before"], "relations: unknown CoTempQA relation(s) ['before']; known: "
                     "['equal', 'overlap', 'during', 'mix']", id="unknown"),
    ],
)
def test_cotemp_relations_list_checked_by_the_library(
    tmp_path: Path, relations: list[str], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        decompose_cotemp(_cotemp_files(tmp_path), sampling=Sampling(), split={}, relations=relations)
    assert str(info.value) == message


def test_cotemp_relations_on_the_real_files(real_data: Path) -> None:
    raw = real_data / "cotempqa"
    if not (raw / "equal.json").is_file():
        pytest.skip("no real CoTempQA files")
    frame, report = decompose_cotemp(
        raw, sampling=Sampling(per_story=None, flagged="keep"), split={}, relations=["equal"]
    )
    assert set(frame["category"]) == {"equal"} and frame.height == 436
    assert list(report.to_dict()["per_category"]) == ["equal"]


def test_babi_task_listed_twice_in_the_library(tmp_path: Path) -> None:
    _babi_dir(tmp_path)
    with pytest.raises(ValueError, match=re.escape("tasks: ['qa1'] listed more than once")):
        decompose_babi(tmp_path / "babi", tasks=["qa1", "qa1"], sampling=Sampling())


# ---------------------------------------------------------------- JSON lines: a key given twice


@pytest.mark.parametrize("reader", list(JSON_READERS))
@pytest.mark.parametrize(
    ("make", "field"),
    [
        pytest.param(lambda r, f: json.dumps(r)[:-1].encode() + b', "%s": "again"}' % f.encode(),
                     "{field}", id="top-level-field-twice"),
        pytest.param(lambda r, f: _raw_extra(r, '{"a": 1, "b": 2, "a": 3}'), "a",
                     id="nested-key-twice"),
    ],
)
def test_json_field_given_twice_is_refused(
    tmp_path: Path, reader: str, make: Callable[..., bytes], field: str
) -> None:
    good, text_field, write = JSON_READERS[reader]
    path, read = write(tmp_path, json.dumps(good).encode() + b"\n" + make(good, text_field) + b"\n")
    with pytest.raises(RawFormatError) as info:
        read()
    message = located(info.value, path, 2, field.format(field=text_field))
    assert message == "given twice in one object; the second would silently replace the first"


# ---------------------------------------------------------------- the config: duplicates, report, numbers


@pytest.fixture
def demo() -> dict[str, Any]:
    return yaml.safe_load(DEMO.read_text(encoding="utf-8"))


_DROP = object()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = config
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DROP:
            del node[last]
        else:
            node[last] = value

    return mutate


def _rename(section: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def mutate(config: dict[str, Any]) -> None:
        config[section] = {new if k == old else k: v for k, v in config[section].items()}
        if section == "datasets" and old in config.get("report", {}).get("table3_datasets", []):
            config["report"] = {"table2_dataset": "CoTemp", "table3_datasets": ["MARCO"]}
        probing = config.get("probing") or {}
        if section == "datasets" and old in (probing.get("datasets") or []):
            probing["datasets"] = [new if d == old else d for d in probing["datasets"]]

    return mutate


def _add(section: str, entry: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda config: config.setdefault(section, []).append(entry)


NOT_PLAIN = (
    "is not a plain name (letters, digits, '_' and '-', starting with a letter or digit, at most "
    "64): it becomes a folder name"
)
REF = {"name": "paper", "path": "outputs_equal_x.json"}

# (id, mutation of the demo config, the exact first line of the error)
CONFIG_ERRORS: list[Any] = [
    # --- duplicates in lists that name things
    pytest.param(_set("datasets.bAbI.tasks", ["qa1", "qa1"]),
                 "datasets.bAbI.tasks: ['qa1', 'qa1'] has non-unique elements", id="tasks-twice"),
    pytest.param(_set("datasets.CoTemp.relations", ["equal", "mix", "equal"]),
                 "datasets.CoTemp.relations: ['equal', 'mix', 'equal'] has non-unique elements",
                 id="relations-twice"),
    pytest.param(_set("datasets.CoTemp.relations", []),
                 "datasets.CoTemp.relations: [] should be non-empty", id="relations-empty"),
    pytest.param(_set("report.table3_datasets", ["bAbI", "bAbI"]),
                 "report.table3_datasets: ['bAbI', 'bAbI'] has non-unique elements",
                 id="table3-datasets-twice"),
    pytest.param(_set("datasets.MARCO.source", {"hub": {"repo": "r", "revision": "v",
                                                        "files": ["*.parquet", "*.parquet"]}}),
                 "datasets.MARCO.source.hub.files: ['*.parquet', '*.parquet'] has non-unique "
                 "elements", id="hub-files-twice"),
    pytest.param(_set("models.tiny.lora", {"target_modules": ["q_proj", "q_proj"]}),
                 "models.tiny.lora.target_modules: ['q_proj', 'q_proj'] has non-unique elements",
                 id="target-modules-twice"),
    pytest.param(_add("settings", {"name": "vanilla", "target": "answer"}),
                 "settings: duplicate setting name(s) ['vanilla']", id="setting-name-twice"),
    pytest.param(lambda c: c.update(reference=[REF, {**REF, "path": "other.json"}]),
                 "reference: duplicate reference name(s) ['paper']", id="reference-name-twice"),
    pytest.param(_add("settings", {"name": "Correct", "target": "trace"}),
                 "settings: 'correct' and 'Correct' differ only in case; they would share a "
                 "folder on a case-insensitive filesystem", id="setting-names-differing-in-case"),
    pytest.param(lambda c: c["datasets"].update(BABI=copy.deepcopy(c["datasets"]["bAbI"])),
                 "datasets: 'bAbI' and 'BABI' differ only in case; they would share a folder on "
                 "a case-insensitive filesystem", id="dataset-names-differing-in-case"),
    pytest.param(lambda c: c["models"].update(Tiny=copy.deepcopy(c["models"]["tiny"])),
                 "models: 'tiny' and 'Tiny' differ only in case; they would share a folder on a "
                 "case-insensitive filesystem", id="model-names-differing-in-case"),
    # --- report datasets that are not configured
    pytest.param(_set("report.table2_dataset", "SQuAD"),
                 "report.table2_dataset: 'SQuAD' is no configured dataset (have ['CoTemp', "
                 "'MARCO', 'bAbI']); the table would be empty", id="table2-unknown-dataset"),
    pytest.param(_set("report.table3_datasets", ["MARCO", "babi"]),
                 "report.table3_datasets.1: 'babi' is no configured dataset (have ['CoTemp', "
                 "'MARCO', 'bAbI'])", id="table3-misspelt-dataset"),
    # --- numbers: NaN, infinities, beyond 64 bits, absurd
    pytest.param(_set("training.learning_rate", float("nan")),
                 "training.learning_rate: nan is not a finite number", id="learning-rate-nan"),
    pytest.param(_set("training.learning_rate", float("inf")),
                 "training.learning_rate: inf is not a finite number", id="learning-rate-inf"),
    pytest.param(_set("training.epochs", float("inf")), "training.epochs: inf is not a finite number",
                 id="epochs-inf"),
    pytest.param(_set("models.tiny.training.epochs", float("-inf")),
                 "models.tiny.training.epochs: -inf is not a finite number", id="override-epochs-minus-inf"),
    pytest.param(_set("datasets.CoTemp.split.test_fraction", float("nan")),
                 "datasets.CoTemp.split.test_fraction: nan is not a finite number",
                 id="test-fraction-nan"),
    pytest.param(_set("inference.gpu_memory_utilization", float("nan")),
                 "inference.gpu_memory_utilization: nan is not a finite number", id="gpu-memory-nan"),
    pytest.param(_set("models.tiny.chat_template_kwargs", {"temperature": float("nan")}),
                 "models.tiny.chat_template_kwargs.temperature: nan is not a finite number",
                 id="nan-in-a-free-form-block"),
    pytest.param(_set("seed", 2**70), "seed: 1180591620717411303424 does not fit in 64 bits",
                 id="seed-2-70"),
    pytest.param(_set("seed", 2**32), "seed: 4294967296 is greater than the maximum of 4294967295",
                 id="seed-2-32"),
    pytest.param(_set("seed", -1), "seed: -1 is less than the minimum of 0", id="seed-negative"),
    pytest.param(_set("settings.3.seed", 2**40),
                 "settings.3.seed: 1099511627776 is greater than the maximum of 4294967295",
                 id="setting-seed-too-big"),
    pytest.param(_set("datasets.bAbI.sample.seed", -5),
                 "datasets.bAbI.sample.seed: -5 is less than the minimum of 0", id="sample-seed-negative"),
    pytest.param(_set("report.bootstrap_resamples", 10**12),
                 "report.bootstrap_resamples: 1000000000000 is greater than the maximum of 100000",
                 id="bootstrap-1e12"),
    pytest.param(_set("training.epochs", 10**6), "training.epochs: 1000000 is greater than the "
                 "maximum of 1000", id="epochs-a-million"),
    pytest.param(_set("training.learning_rate", 5), "training.learning_rate: 5 is greater than "
                 "the maximum of 1", id="learning-rate-5"),
    pytest.param(_set("training.max_steps", -2), "training.max_steps: -2 is less than the "
                 "minimum of -1", id="max-steps-minus-2"),
    pytest.param(_set("datasets.CoTemp.source.rows", 10**12), "datasets.CoTemp.source.rows: "
                 "1000000000000 is greater than the maximum of 1000000", id="synthetic-rows-1e12"),
    pytest.param(_set("resources.train.mem_mb", 2**70),
                 "resources.train.mem_mb: 1180591620717411303424 does not fit in 64 bits",
                 id="mem-mb-2-70"),
    pytest.param(_set("resources.train.runtime", 10**7), "resources.train.runtime: 10000000 is "
                 "greater than the maximum of 525600", id="runtime-19-years"),
    pytest.param(_set("models.tiny.gpu", 1000), "models.tiny.gpu: 1000 is greater than the "
                 "maximum of 64", id="a-thousand-gpus"),
    pytest.param(_set("models.tiny.build.hidden_size", 10**9), "models.tiny.build.hidden_size: "
                 "1000000000 is greater than the maximum of 65536", id="hidden-size-1e9"),
    # --- the shape of the document itself
    pytest.param(lambda c: c["models"]["tiny"].update(chat_template_kwargs={1: "x"}),
                 "models.tiny.chat_template_kwargs: key 1 is not a string", id="non-string-key"),
]


@pytest.mark.parametrize(("mutate", "first_line"), CONFIG_ERRORS)
def test_config_mistake_first_line_names_the_key(
    demo: dict[str, Any], mutate: Callable[[dict[str, Any]], None], first_line: str
) -> None:
    mutate(demo)
    with pytest.raises(ConfigError) as info:
        validate_config(demo)
    assert str(info.value).splitlines()[0] == first_line


# ---------------------------------------------------------------- config files: a key given twice


def _second_block(key: str, block: str) -> str:
    return DEMO_TEXT + f"{key}:\n{block}"


END = DEMO_TEXT.count("\n") + 1  # the line of a block appended to the demo config


# (id, file text, the exact first line of the error with {p} for the path)
YAML_DUPLICATE_KEYS: list[Any] = [
    pytest.param(_second_block("datasets", "  bAbI: {}\n"),
                 f"{{p}}:{END}: datasets: key given twice in one mapping (first at line 6); the "
                 "second would silently replace the first", id="second-datasets-block"),
    pytest.param(_second_block("models", "  other: {}\n"),
                 f"{{p}}:{END}: models: key given twice in one mapping (first at line "
                 f"{DEMO_TEXT.split(chr(10)).index('models:') + 1}); the second would silently "
                 "replace the first", id="second-models-block"),
    pytest.param("a: 1\nb:\n  c: 1\n  c: 2\n",
                 "{p}:4: c: key given twice in one mapping (first at line 3); the second would "
                 "silently replace the first", id="nested-duplicate"),
    pytest.param("settings:\n  - {name: a, target: none, name: b}\n",
                 "{p}:2: name: key given twice in one mapping (first at line 2); the second "
                 "would silently replace the first", id="duplicate-in-a-flow-mapping"),
    pytest.param("seed: 1\nseed: 2\n", "{p}:2: seed: key given twice in one mapping (first at "
                 "line 1); the second would silently replace the first", id="duplicate-scalar"),
]


@pytest.mark.parametrize(("text", "first_line"), YAML_DUPLICATE_KEYS)
def test_config_file_key_given_twice_names_file_and_line(
    tmp_path: Path, text: str, first_line: str
) -> None:
    path, line = _config_file_error(tmp_path, text)
    assert line == first_line.format(p=path)


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert read_config_file(path)["other"] == {"x": 1, "y": 3}


# ---------------------------------------------------------------- MS MARCO: no train/test leak


@pytest.mark.parametrize(
    ("files", "dropped", "kept"),
    [
        pytest.param({"train.jsonl": [1, 2], "dev.jsonl": [1, 3]}, 1,
                     [("marco-1", "train"), ("marco-2", "train"), ("marco-3", "test")],
                     id="train-and-dev-jsonl"),
        pytest.param({"train-0.jsonl": [1], "train-1.jsonl": [2], "validation.jsonl": [1, 2, 3]},
                     2, [("marco-1", "train"), ("marco-2", "train"), ("marco-3", "test")],
                     id="two-train-files-and-validation"),
        pytest.param({"train.jsonl": [5], "test.jsonl": [6]}, 0,
                     [("marco-5", "train"), ("marco-6", "test")], id="disjoint-control"),
    ],
)
def test_marco_query_in_both_splits_is_dropped_from_test_and_counted(
    tmp_path: Path, files: dict[str, list[int]], dropped: int, kept: list[tuple[str, str]]
) -> None:
    for name, qids in files.items():
        (tmp_path / name).write_bytes(b"".join(_with(MARCO_ROW, query_id=q) + b"\n" for q in qids))
    frame, report = decompose_marco(tmp_path, sampling=Sampling(per_story=None))
    assert sorted(zip(frame["id"], frame["split"], strict=True)) == kept
    assert report.to_dict()["dropped"].get("test_query_in_train", 0) == dropped
    assert frame["id"].n_unique() == frame.height


# ============================================================================ 3. outside its folder
# ---------------------------------------------------------------- results, and names that become folders

# (id, mutation of the demo config, the exact first line of the error)
CONFIG_PATH_ERRORS: list[Any] = [
    pytest.param(_set("results", ""), "results: '' should be non-empty", id="results-empty"),
    pytest.param(_set("results", "  "), "results: empty; give the folder that receives every "
                 "output", id="results-blank"),
    pytest.param(_set("results", "/"), "results: '/' is the filesystem root; give a folder such "
                 "as 'results'", id="results-root"),
    pytest.param(_set("results", "//"), "results: '//' is the filesystem root; give a folder "
                 "such as 'results'", id="results-double-slash"),
    pytest.param(_set("results", "/tmp/../"), "results: '/tmp/../' is the filesystem root; give "
                 "a folder such as 'results'", id="results-root-in-disguise"),
    pytest.param(_set("results", "results\n/etc"), "results: 'results\\n/etc' holds a control "
                 "character", id="results-with-a-newline"),
    pytest.param(_rename("datasets", "bAbI", ".."), f"datasets: '..' {NOT_PLAIN}",
                 id="dataset-dot-dot"),
    pytest.param(_rename("datasets", "bAbI", "../../x"), f"datasets: '../../x' {NOT_PLAIN}",
                 id="dataset-climbing-path"),
    pytest.param(_rename("datasets", "bAbI", "a/b"), f"datasets: 'a/b' {NOT_PLAIN}",
                 id="dataset-with-slash"),
    pytest.param(_rename("datasets", "bAbI", ".hidden"), f"datasets: '.hidden' {NOT_PLAIN}",
                 id="dataset-hidden"),
    pytest.param(_rename("datasets", "bAbI", "x" * 65), f"datasets: '{'x' * 65}' "
                 f"{NOT_PLAIN}", id="dataset-name-65-chars"),
    pytest.param(_rename("datasets", "bAbI", "logs"), "datasets.logs: reserved name (the "
                 "workflow's own folders and files are ['benchmarks', 'figures', 'logs', "
                 "'models', 'reference', 'tables']); choose another", id="dataset-named-logs"),
    pytest.param(_rename("datasets", "bAbI", "Tables"), "datasets.Tables: reserved name (the "
                 "workflow's own folders and files are ['benchmarks', 'figures', 'logs', "
                 "'models', 'reference', 'tables']); choose another", id="dataset-named-Tables"),
    pytest.param(_rename("models", "tiny", ".."), f"models: '..' {NOT_PLAIN}", id="model-dot-dot"),
    pytest.param(_rename("models", "tiny", "a b"), f"models: 'a b' {NOT_PLAIN}",
                 id="model-with-space"),
    pytest.param(_rename("models", "tiny", "raw"), "models.raw: reserved name (the workflow's own "
                 "folders and files are ['raw', 'traces']); choose another", id="model-named-raw"),
    pytest.param(_rename("models", "tiny", "traces"), "models.traces: reserved name (the "
                 "workflow's own folders and files are ['raw', 'traces']); choose another",
                 id="model-named-traces"),
    pytest.param(_rename("models", "tiny", "decomposed.parquet"), "models: "
                 f"'decomposed.parquet' {NOT_PLAIN}", id="model-named-like-a-file"),
    pytest.param(_add("settings", {"name": "..", "target": "trace"}), f"settings.4.name: '..' "
                 f"{NOT_PLAIN}", id="setting-dot-dot"),
    pytest.param(_add("settings", {"name": "v.2", "target": "answer"}), f"settings.4.name: 'v.2' "
                 f"{NOT_PLAIN}", id="setting-with-a-dot"),
    pytest.param(_add("settings", {"name": "", "target": "answer"}), f"settings.4.name: '' "
                 f"{NOT_PLAIN}", id="setting-empty-name"),
    pytest.param(lambda c: c.update(reference=[{**REF, "name": "../x"}]),
                 f"reference.0.name: '../x' {NOT_PLAIN}", id="reference-climbing-name"),
]


@pytest.mark.parametrize(("mutate", "first_line"), CONFIG_PATH_ERRORS)
def test_config_path_mistake_first_line_names_the_key(
    demo: dict[str, Any], mutate: Callable[[dict[str, Any]], None], first_line: str
) -> None:
    mutate(demo)
    with pytest.raises(ConfigError) as info:
        validate_config(demo)
    assert str(info.value).splitlines()[0] == first_line


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_set("results", "."), id="results-dot"),
        pytest.param(_set("results", "../elsewhere"), id="results-relative-outside"),
        pytest.param(_set("results", "/scratch/user/tracekd"), id="results-absolute"),
        pytest.param(_set("report.table3_datasets", ["bAbI"]), id="explicit-table3-configured"),
        pytest.param(lambda c: [c["datasets"].pop(d) for d in ("CoTemp", "MARCO")],
                     id="defaults-name-unconfigured-datasets"),
        pytest.param(_rename("datasets", "bAbI", "bAbI-v1_2"), id="name-with-dash-and-underscore"),
        pytest.param(_set("seed", 4294967295), id="seed-32-bit-max"),
        pytest.param(_add("settings", {"name": "incorrect-s2", "target": "trace",
                                       "corruption": "random", "seed": 2}), id="readme-setting"),
    ],
)
def test_config_near_misses_validate(demo: dict[str, Any], mutate: Callable[[dict], Any]) -> None:
    mutate(demo)
    validate_config(demo)


def test_the_name_pattern_is_the_schema_one() -> None:
    schema = yaml.safe_load(WORKFLOW_SCHEMA.read_text(encoding="utf-8"))
    assert schema["$defs"]["name"]["pattern"] == NAME_PATTERN
    for section in ("datasets", "models"):
        assert schema["properties"][section]["propertyNames"] == {"$ref": "#/$defs/name"}
    assert schema["$defs"]["setting"]["properties"]["name"]["$ref"] == "#/$defs/name"


# ---------------------------------------------------------------- a YAML alias bomb, deep nesting

YAML_EXPANSION: list[Any] = [
    pytest.param("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)),
        None, id="alias-bomb-nine-levels"),
    pytest.param("a: " + "[" * 40 + "]" * 40 + "\n",
                 "{p}: a" + ".0" * 32 + ": nested deeper than 32 levels", id="nested-40-deep"),
    pytest.param("a: " + "[" * 3000 + "]" * 3000 + "\n", "{p}: not valid YAML: nested too deeply",
                 id="nested-3000-deep"),
]


@pytest.mark.parametrize(("text", "first_line"), YAML_EXPANSION)
def test_config_file_expansion_is_bounded(
    tmp_path: Path, text: str, first_line: str | None
) -> None:
    path, line = _config_file_error(tmp_path, text)
    if first_line is None:  # the alias bomb: where the count ran out depends on the walk
        assert re.fullmatch(
            rf"{re.escape(str(path))}: i(\.\d)+: the config expands to more than 100,000 values "
            r"\(YAML aliases repeated inside aliases\?\); refused", line), line
    else:
        assert line == first_line.format(p=path)


def test_shared_references_count_as_expanded(demo: dict[str, Any]) -> None:
    level: Any = ["x"] * 10
    for _ in range(6):
        level = [level] * 10  # 10**7 values through shared lists, as YAML aliases build them
    demo["models"]["tiny"]["chat_template_kwargs"] = {"bomb": level}
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 100,000 values"):
        validate_config(demo)
    assert time.perf_counter() - started < 2


def test_a_config_just_under_the_budget_validates(demo: dict[str, Any]) -> None:
    demo["models"]["tiny"]["chat_template_kwargs"] = {"many": list(range(MAX_CONFIG_NODES // 2))}
    validate_config(demo)


# ---------------------------------------------------------------- Snakemake sees them too


def _snakemake_dry_run(config: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "-n",
           "all", "--configfile", str(config), "--directory", str(workdir)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_snakefile_refuses_an_alias_bomb_and_duplicate_keys_before_any_job(tmp_path: Path) -> None:
    parts = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{b}: &{b} [{', '.join(['*' + a] * 10)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    bomb = DEMO_TEXT.replace("    gpu: 0\n", "    gpu: 0\n    chat_template_kwargs:\n"
                             + "".join(f"      {p}\n" for p in parts))
    (tmp_path / "bomb.yaml").write_text(bomb)
    (tmp_path / "dup.yaml").write_text(_second_block("datasets", "  bAbI: {}\n"))
    started = time.perf_counter()
    bombed = _snakemake_dry_run(tmp_path / "bomb.yaml", tmp_path)
    # Snakemake itself would expand the aliases when it prints the config: minutes, gigabytes
    assert time.perf_counter() - started < 60
    duplicated = _snakemake_dry_run(tmp_path / "dup.yaml", tmp_path)
    assert bombed.returncode != 0 and duplicated.returncode != 0
    bombed_out, duplicated_out = (p.stdout + p.stderr for p in (bombed, duplicated))
    assert f"{tmp_path / 'bomb.yaml'}: models.tiny.chat_template_kwargs.i." in bombed_out
    assert "the config expands to more than 100,000 values" in bombed_out
    assert (f"{tmp_path / 'dup.yaml'}:{DEMO_TEXT.count(chr(10)) + 1}: datasets: key given twice"
            in duplicated_out)
    assert not (tmp_path / "results").exists()


# ============================================================================ 4. shared filesystem


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077], ids=["022", "002", "077"])
@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda p: write_text("x\n", p / "t.tex"), id="text"),
        pytest.param(lambda p: write_json({"a": 1}, p / "t.json"), id="json"),
        pytest.param(lambda p: write_parquet(pl.DataFrame({"a": [1]}), p / "t.parquet"),
                     id="parquet"),
    ],
)
def test_written_files_honour_the_umask(
    tmp_path: Path, umask: int, write: Callable[[Path], None]
) -> None:
    previous = os.umask(umask)
    try:
        assert current_umask() == umask
        write(tmp_path)
    finally:
        os.umask(previous)
    (written,) = [p for p in tmp_path.iterdir()]
    assert written.stat().st_mode & 0o777 == 0o666 & ~umask


def test_check_output_file_accepts_a_new_nested_path(tmp_path: Path) -> None:
    assert check_output_file(tmp_path / "a" / "b" / "c.parquet") == tmp_path / "a" / "b" / "c.parquet"


def test_the_package_schema_is_the_workflow_schema() -> None:
    # one source: the package's file links to the one the Snakefile validates with
    assert SCHEMA_PATH.name == "config.schema.yaml" and SCHEMA_PATH.parent.name == "tracekd"
    assert SCHEMA_PATH.read_bytes() == WORKFLOW_SCHEMA.read_bytes()


def test_non_editable_install_checks_a_config_outside_the_checkout(tmp_path: Path) -> None:
    if shutil.which("pip", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("no pip beside the interpreter")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "workflow" / "schemas", source / "workflow" / "schemas")
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    installed = target / "tracekd" / "config.schema.yaml"
    assert installed.is_file() and not installed.is_symlink()
    assert installed.read_bytes() == WORKFLOW_SCHEMA.read_bytes()
    shutil.rmtree(source)  # nothing of the checkout is left to lean on
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(DEMO, elsewhere / "demo.yaml")
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run(
        [sys.executable, "-c", "import sys, tracekd.cli, tracekd.config as c; "
         "print(c.SCHEMA_PATH); print(tracekd.cli.DEFAULT_CONFIG); "
         "sys.exit(tracekd.cli.main(['check-config', 'demo.yaml']))"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    schema_line, default_line, summary = run.stdout.splitlines()
    assert schema_line == str(installed)
    assert default_line == "config/config.yaml"  # relative: the folder the command runs in
    assert json.loads(summary)["datasets"] == ["CoTemp", "MARCO", "bAbI"]


# ============================================================================ 5. error boundary


@pytest.mark.parametrize(
    ("error", "first_line"),
    [
        pytest.param(RawFormatError("data/equal.json", 3, "index", "bad"), "data/equal.json:3: index: bad",
                     id="raw-format"),
        pytest.param(ConfigError("c.yaml: training.epochs: bad\n  more"), "c.yaml: training.epochs: bad",
                     id="config"),
        pytest.param(PathError("/x", "is a folder"), "/x: is a folder", id="path"),
        pytest.param(FileNotFoundError(2, "No such file or directory", "/x/y"),
                     "/x/y: No such file or directory", id="os-error-with-file"),
        pytest.param(OSError(28, "No space left on device", "/x", None, "/x.tmp"),
                     "/x -> /x.tmp: No space left on device", id="os-error-two-files"),
        pytest.param(KeyError("boom"), "KeyError: 'boom'", id="unexpected"),
        pytest.param(ValueError("bad \ud800 text"), "bad \\ud800 text", id="surrogate-in-message"),
        pytest.param(RecursionError("maximum recursion depth exceeded"),
                     "input nested too deeply to read (maximum recursion depth exceeded)",
                     id="recursion"),
    ],
)
def test_describe_error_first_line(error: BaseException, first_line: str) -> None:
    text = describe_error(error)
    assert text.splitlines()[0] == first_line
    text.encode("utf-8")  # always printable


@pytest.mark.parametrize(
    ("error", "first_line"),
    [
        pytest.param(RawFormatError("x/equal.json", 2, "facts", "empty list"),
                     "error: x/equal.json:2: facts: empty list", id="raw-format"),
        pytest.param(IsADirectoryError(21, "Is a directory", "results/x"),
                     "error: results/x: Is a directory", id="os-error"),
        pytest.param(KeyError("boom"), "error: KeyError: 'boom'", id="unexpected"),
    ],
)
def test_rule_log_starts_with_one_located_line(tmp_path: Path, error: Exception, first_line: str) -> None:
    log = tmp_path / "logs" / "rule.log"
    with pytest.raises(type(error)), logged(log):
        print("working")
        raise error
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["working", first_line, "Traceback (most recent call last):"]


def test_failed_rule_log_starts_with_the_located_line(tmp_path: Path) -> None:
    config = yaml.safe_load(DEMO_TEXT)
    config["results"] = "out"
    config["datasets"] = {"bAbI": {**config["datasets"]["bAbI"], "tasks": ["qa1"]}}
    config["settings"] = [s for s in config["settings"] if "corruption" not in s]
    config.pop("probing", None)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    raw = tmp_path / "out" / "bAbI" / "raw"
    raw.mkdir(parents=True)
    _babi(raw, BABI_TEXT.replace("hallway", "h\u00e9llway").encode("latin-1"))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "out/bAbI/decomposed.parquet", "--configfile", "c.yaml", "-c1",
           "--rerun-triggers", "mtime"]  # the hand-made raw folder counts as built
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    log = (tmp_path / "out" / "logs" / "decompose" / "bAbI.log").read_text(encoding="utf-8")
    assert log.splitlines()[0] == (
        "error: out/bAbI/raw/qa1_single-supporting-fact_train.txt:2: text: not valid UTF-8 "
        "(byte 0xe9 at column 21)"
    )
    assert not (tmp_path / "out" / "bAbI" / "decomposed.parquet").exists()


def test_rule_log_survives_a_surrogate_in_the_error(tmp_path: Path) -> None:
    log = tmp_path / "rule.log"
    with pytest.raises(ValueError), logged(log):
        raise ValueError("bad \ud800")
    assert log.read_text(encoding="utf-8").splitlines()[0] == "error: bad \\ud800"


def test_cli_internal_error_names_the_input_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracekd.datasets

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(tracekd.datasets, "decompose", broken)
    raw = _babi_dir(tmp_path)
    code, err = _cli(capsys, *_decompose_args("bAbI", raw, tmp_path / "o.parquet", _small_config(tmp_path)))
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == (
        f"tracekd: error: {raw}: internal error while running decompose: KeyError: 'boom' "
        "(please report it, with the traceback below)"
    )
    assert lines[1] == "Traceback (most recent call last):"


def test_cli_bad_row_is_exactly_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "outputs_equal_M_default.json"
    path.write_bytes(json.dumps(REFERENCE_ROW).encode() + b"\n" + _raw_extra(REFERENCE_ROW, "[" * DEEP + "]" * DEEP) + b"\n")
    code, err = _cli(capsys, "score", path)
    assert (code, err) == (2, f"tracekd: error: {path}:2: extra: nested deeper than 100 levels\n")


# ---------------------------------------------------------------- summary.csv: undefined phi

SCORE_COLUMNS = ("answer_correct", "category_correct", "ir_correct", "trace_correct",
                 "category_lenient", "ir_lenient", "has_trace")


def _scores(trace: list[bool], answer: list[bool]) -> pl.DataFrame:
    n = len(trace)
    columns: dict[str, Any] = {name: trace for name in SCORE_COLUMNS}
    columns["answer_correct"] = answer
    for name in ("answer_f1", "answer_precision", "answer_recall", "trace_words", "trace_tokens"):
        columns[name] = [1.0] * n
    return pl.DataFrame({"id": [f"q{i}" for i in range(n)], **columns})


@pytest.mark.parametrize(
    ("trace", "defined"),
    [
        pytest.param([False] * 40, False, id="no-correct-trace"),
        pytest.param([True] * 40, False, id="every-trace-correct"),
        pytest.param([True, False] * 20, True, id="defined-control"),
    ],
)
def test_summary_csv_writes_an_undefined_phi_empty(trace: list[bool], defined: bool) -> None:
    answer = [True, True, False, False] * 10
    tables = study_tables(
        {("bAbI", "m", "correct"): _scores(trace, answer)},
        targets={"correct": "trace"}, table2_dataset="CoTemp", table3_datasets=["bAbI"],
        seed=0, n_boot=1000,
    )
    row = pl.read_csv(tables.summary.write_csv().encode()).row(0, named=True)
    assert row["phi_defined"] is defined
    for name in ("phi", "phi_ci_low", "phi_ci_high"):
        assert (row[name] is None) is (not defined), (name, row[name])
    (line,) = [line for line in tables.stats.splitlines() if "Correct Trace" in line]
    assert (" [" in line) is defined  # stats.tex: "--" for phi and its interval when undefined


# ---------------------------------------------------------------- the README


def test_readme_decompose_shape_shows_flag_reasons() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    shape = text.split("`decompose` prints one JSON object:", 1)[1].split("\n\n", 1)[0]
    assert '"flag_reasons": {CATEGORY: {REASON: n}}' in shape


def test_readme_and_snakefile_put_targets_before_configfile() -> None:
    for path in (ROOT / "README.md", ROOT / "Snakefile", ROOT / "Makefile"):
        for line in path.read_text(encoding="utf-8").splitlines():
            # a word after "--configfile FILE" that is no option would be read as a config file
            command = r"(?:snakemake|\$\(SMK\))\b[^`]*?--configfile\s+\S+(\s+[^-\s`][^\s`]*)"
            match = re.search(command, line)
            assert match is None, f"{path.name}: a target after --configfile: {line.strip()!r}"
