"""What the paper's released outputs share across datasets: the field checks of a released row,
and the answer extraction and normalization of the paper's evaluator.

The authors of arXiv 2505.13792 released their predictions (sbhambr1/Trace_Check_QA) as JSON
lines; each dataset plug-in reads its own fields (:attr:`Released.read_row`) with the checks
here, and scores a raw output with :func:`paper_final_answer` and :func:`paper_normalize` as
their ``*_config.py`` evaluators did (as of the commits that scored the released results).
"""

from __future__ import annotations

import ast
import string
from collections.abc import Sequence
from typing import Any

from tracekd.errors import RawFormatError

#: ``(file, 1-based line)`` of a released row, for errors
Where = tuple[str, int]

_DROP_ASCII_PUNCT = str.maketrans("", "", string.punctuation)


def located(where: Where, field: str, message: str) -> RawFormatError:
    """The error of one field of one released row."""
    return RawFormatError(where[0], where[1], field, message)


def field_of(record: dict[str, Any], name: str, kind: type, where: Where) -> Any:
    """``record[name]`` checked to be a ``kind`` (a list: of strings)."""
    if name not in record:
        raise located(where, name, "missing")
    value = record[name]
    if not isinstance(value, kind):
        raise located(where, name, f"expected {kind.__name__}, got {type(value).__name__}")
    if kind is list and not all(isinstance(item, str) for item in value):
        raise located(where, name, "expected a list of strings")
    return value


def golds_of(values: Sequence[str], where: Where) -> list[str]:
    """Gold answers, refused when empty or blank (a blank gold matches anything)."""
    if not values:
        raise located(where, "gold", "no gold answer")
    if any(not value.strip() for value in values):
        raise located(where, "gold", f"empty or blank gold answer in {list(values)!r}")
    return list(values)


def list_literal(record: dict[str, Any], name: str, where: Where) -> list[str]:
    """A field holding a Python list literal of strings (read by ``ast.literal_eval``)."""
    text = field_of(record, name, str, where)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise located(where, name, "not a list literal of strings") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise located(where, name, "not a list literal of strings")
    return value


def prompt_of(record: dict[str, Any], where: Where) -> str:
    """The ``input`` field: the rendered chat (an object with ``text``) or a plain prompt."""
    if "input" not in record:
        raise located(where, "input", "missing")
    value = record["input"]
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if not isinstance(value.get("text"), str):
            raise located(where, "input.text", "missing or not a string")
        return value["text"]
    raise located(where, "input", f"expected dict or str, got {type(value).__name__}")


def paper_normalize(text: str) -> str:
    """The authors' ``normalize_answer``: lower-case, drop ASCII punctuation, collapse spaces.

    Unlike SQuAD's it keeps articles and non-ASCII punctuation.
    """
    return " ".join(text.lower().translate(_DROP_ASCII_PUNCT).split())


def paper_final_answer(prediction: str) -> str:
    """The lower-cased text of a raw generation that the paper's released evaluator scores.

    Their chain (``mode="default"``), first match wins: the piece after the first
    ``<answer>``, cut at ``</answer>``; else the text before an echoed prompt ("answer the
    question based on"); else the piece between the first and second ``" answer "``; else
    between the first and second ``"answer:"``; else everything. Then, whichever branch ran,
    every "assistant" and "think" is deleted, also inside words (quirk: a gold answer holding
    either word can never match). Without an ``<answer>`` tag the ``" answer "`` branch fires
    inside a trace ("... facts to answer the question: [...]"), so there the trace is scored:
    :func:`tracekd.traces.parse_output` is what the workflow uses instead.
    """
    text = prediction.lower()
    if "<answer>" in text:
        text = text.split("<answer>")[1].split("</answer>")[0]
    elif "answer the question based on" in text:
        text = text.split("answer the question based on")[0]
    elif " answer " in text:
        text = text.split(" answer ")[1]
    elif "answer:" in text:
        text = text.split("answer:")[1]
    return text.replace("assistant", "").replace("think", "")
