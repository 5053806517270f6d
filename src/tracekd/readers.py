"""Guarded readers shared by every loader: input files, UTF-8 text, JSON lines, raw folders.

Whatever the bytes, these stop with a :class:`~tracekd.errors.RawFormatError` naming the
file, the 1-based row (line) and the field, never with a traceback from deep inside Python:

- :func:`open_input`: a regular file (a folder or a device is refused);
- :func:`decode_utf8`: UTF-8 only (Latin-1 bytes, a UTF-16/32 file with or without its
  byte-order mark, an encoded lone surrogate are refused with their line and column);
- :func:`parse_json` / :func:`iter_json_lines`: one JSON value per line, nested at most
  :data:`MAX_JSON_DEPTH` deep (checked before parsing: Python's parser would recurse until
  ``RecursionError``), no integer literal too long for Python, no string holding a lone
  surrogate (an escaped ``\\ud800`` is valid JSON but can be stored nowhere), no key given
  twice in one object (the parser would keep the last silently);
- :func:`check_int64`: id-like integers that fit the 64-bit columns they end up in;
- :func:`walk_files`: the files under a raw folder, staying on its filesystem (``--raw /``
  never walks into ``/proc``) and refusing a tree too big to be a dataset's.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tracekd.errors import PathError, RawFormatError

#: deepest nesting of a JSON line (the datasets' rows are 3 or 4 deep)
MAX_JSON_DEPTH = 100

#: most files and folders a raw folder may hold (the bAbI archive has ~250, MS MARCO ~20)
MAX_WALK_ENTRIES = 100_000

#: the range of the 64-bit integer columns ids are stored in
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# byte-order marks of encodings that are not UTF-8 (UTF-32 first: its LE mark starts like UTF-16's)
_FOREIGN_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)

# a JSON string token (escapes skipped), with the colon that makes it a key; or a bracket
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?|[\[\]{}]')
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def open_input(path: str | Path) -> IO[bytes]:
    """Open ``path`` for binary reading; a folder, a device or a pipe is a :class:`RawFormatError`.

    A missing file raises the usual :class:`FileNotFoundError` (its ``filename`` is the path).
    """
    path = Path(path)
    if path.is_dir():
        raise RawFormatError(str(path), None, "file", "expected a file, found a folder")
    handle = path.open("rb")
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()  # /dev/zero or a pipe would be read forever
        raise RawFormatError(str(path), None, "file", "not a regular file")
    return handle


def decode_utf8(data: bytes, source: str, *, first_row: int = 1) -> str:
    """``data`` as UTF-8 text; anything else raises :class:`RawFormatError` (field ``text``).

    ``first_row`` is the line number of ``data``'s first line (a file decoded line by line).
    A byte-order mark of UTF-16 or UTF-32, a byte that is not UTF-8 (Latin-1 ``\\xe9``, an
    encoded surrogate) and a NUL character (UTF-16 text without its mark) are refused with
    the line and the column.
    """
    if first_row == 1:
        for bom, name in _FOREIGN_BOMS:
            if data.startswith(bom):
                raise RawFormatError(
                    source, 1, "text",
                    f"{name} text (byte-order mark {bom.hex(' ')}); save the file as UTF-8",
                )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        row, column = _row_column(data, err.start, b"\n")
        raise RawFormatError(
            source, first_row + row - 1, "text",
            f"not valid UTF-8 (byte 0x{data[err.start]:02x} at column {column})",
        ) from err
    nul = text.find("\x00")
    if nul >= 0:
        row, column = _row_column(text, nul, "\n")
        raise RawFormatError(
            source, first_row + row - 1, "text",
            f"NUL character at column {column} (UTF-16 text without a byte-order mark?); "
            "save the file as UTF-8",
        )
    return text


def _row_column(data: Any, offset: int, newline: Any) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``data`` (bytes or str)."""
    row = data.count(newline, 0, offset) + 1
    column = offset - (data.rfind(newline, 0, offset) + 1) + 1
    return row, column


def _too_deep(text: str) -> str | None:
    """The top-level field under which ``text`` nests deeper than :data:`MAX_JSON_DEPTH`
    (``"json"`` when it is not in an object's field); ``None`` when it does not."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return None  # cannot be that deep: the common case costs two counts
    depth = 0
    field = "json"
    for token in _JSON_TOKEN.finditer(text):
        char = token.group(0)[0]
        if char == '"':
            if depth == 1 and token.group(1) is not None:
                key = token.group(0)[: token.start(1) - token.start()]
                try:
                    field = str(json.loads(key))
                except ValueError:
                    field = key.strip('"')
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return field
        else:
            depth -= 1
    return None


def _surrogate_field(value: Any) -> str | None:
    """The top-level field of ``value`` holding a string with a lone surrogate, if any."""
    roots = list(value.items()) if isinstance(value, dict) else [("json", value)]
    for field, item in roots:
        stack = [field, item]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                if _SURROGATE.search(node):
                    return field.encode("utf-8", "backslashreplace").decode("utf-8")
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                stack.extend(node)
                stack.extend(node.values())
    return None


class _DuplicateField(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field.encode("utf-8", "backslashreplace").decode("utf-8")


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' object hook: an object with a key given twice is refused (the parser
    would keep the last value without a word)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateField(key)
            seen.add(key)
    return obj


def parse_json(text: str, source: str, row: int, *, hint: str = "") -> Any:
    """One JSON value from one line, guarded (see the module docstring).

    Raises :class:`RawFormatError` at (``source``, ``row``): field ``json`` for text that is
    not JSON (``hint`` is appended to the message); the top-level field for nesting deeper
    than :data:`MAX_JSON_DEPTH` or a string with a lone surrogate; the key itself for a key
    given twice in one object.
    """
    deep = _too_deep(text)
    if deep is not None:
        raise RawFormatError(source, row, deep, f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, object_pairs_hook=_unique_fields)
    except _DuplicateField as dup:
        raise RawFormatError(
            source, row, dup.field,
            "given twice in one object; the second would silently replace the first",
        ) from None
    except json.JSONDecodeError as err:
        message = f"not valid JSON: {err.msg} at column {err.colno}{hint}"
        raise RawFormatError(source, row, "json", message) from err
    except RecursionError:  # pragma: no cover - _too_deep stops far below the limit
        raise RawFormatError(source, row, "json", "nested too deeply") from None
    except ValueError as err:  # an integer literal of more than 4,300 digits
        message = f"not readable JSON: {str(err).split(';')[0]}"
        raise RawFormatError(source, row, "json", message) from err
    if _ESCAPED_SURROGATE.search(text):  # only then can a lone surrogate have been decoded
        field = _surrogate_field(value)
        if field is not None:
            raise RawFormatError(
                source, row, field, "a string holds a lone surrogate (\\ud800-\\udfff): not text"
            )
    return value


def iter_json_lines(
    path: str | Path, *, blank_inside: bool = True, hint: str = ""
) -> Iterator[tuple[int, Any]]:
    """``(1-based line, parsed value)`` for each non-blank line of a JSON-lines file.

    Lines are decoded one by one (a 50 MB line is fine; a file is never read whole). A UTF-8
    byte-order mark on line 1 is dropped. Blank lines are skipped; with ``blank_inside=False``
    only trailing ones are, and a blank line followed by more rows is an error at its line.
    """
    source = str(path)
    blank: int | None = None
    with open_input(path) as handle:
        for number, raw in enumerate(handle, start=1):
            text = decode_utf8(raw, source, first_row=number)
            if number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                blank = number if blank is None else blank
                continue
            if blank is not None and not blank_inside:
                raise RawFormatError(source, blank, "json", "blank line inside the file")
            blank = None
            yield number, parse_json(text.rstrip("\r\n"), source, number, hint=hint)


def check_int64(value: int, source: str, row: int, field: str) -> int:
    """``value`` if it fits a signed 64-bit column, else a :class:`RawFormatError`."""
    if not INT64_MIN <= value <= INT64_MAX:
        shown = str(value) if value.bit_length() < 256 else f"a {value.bit_length()}-bit integer"
        raise RawFormatError(source, row, field, f"{shown} does not fit in 64 bits")
    return value


def walk_files(root: str | Path, *, what: str) -> list[Path]:
    """Every regular file under the folder ``root``, sorted; ``what`` names the data in errors.

    Folders on another filesystem (``/proc``, ``/sys``, a mount) and links to folders are not
    entered; a tree of more than :data:`MAX_WALK_ENTRIES` entries is refused (it is not a
    dataset's folder), as are a missing ``root`` (:class:`FileNotFoundError`) and a file
    (:class:`~tracekd.errors.PathError`). An unreadable sub-folder raises its ``OSError``.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder (expected the {what} files there)")
    if not root.is_dir():
        raise PathError(str(root), f"expected a folder holding the {what} files, found a file")
    device = root.stat().st_dev
    found: list[Path] = []
    seen = 0

    def fail(err: OSError) -> None:
        raise err

    for folder, dirs, files in os.walk(root, onerror=fail):
        seen += len(dirs) + len(files)
        if seen > MAX_WALK_ENTRIES:
            raise PathError(
                str(root),
                f"more than {MAX_WALK_ENTRIES:,} files and folders under it; give the folder "
                f"that holds the {what} files",
            )
        dirs[:] = sorted(d for d in dirs if os.lstat(os.path.join(folder, d)).st_dev == device)
        found.extend(p for p in (Path(folder, f) for f in sorted(files)) if p.is_file())
    return sorted(found)
