"""Answer text, normalized and compared: what every dataset's answer rule shares.

SQuAD-style normalization, list-literal answers read without ``eval``, token precision, recall
and F1, and containment on token boundaries.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

# Anything that is neither a word character nor whitespace, plus "_" (a word character that
# string.punctuation lists): SQuAD strips ASCII punctuation; we also strip Unicode punctuation
# and symbols so curly quotes and dashes in model output do not break a match.
_PUNCT = re.compile(r"[^\w\s]|_")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD-style normalization: lower-case, drop punctuation, drop articles, collapse spaces.

    Punctuation is deleted, not replaced by a space (SQuAD: ``"don't"`` -> ``"dont"``).
    The function is idempotent.
    """
    text = _PUNCT.sub("", text.lower())
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


# the same gold answers and categories recur across rows
#: ``normalize_answer``, cached: the same gold answers and categories recur across rows
normalize = lru_cache(maxsize=1 << 16)(normalize_answer)


def _flatten(value: Any) -> list[str]:
    """The scalar leaves of a parsed list literal, as strings (``None`` leaves dropped)."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _flatten(item)]
    if value is None:
        return []
    return [str(value)]


def _literal_items(text: str) -> list[str] | None:
    """Items of a JSON or Python list literal; ``None`` when ``text`` is not one.

    ``ast.literal_eval`` only builds literals, so a string like ``__import__('os')...`` is a
    syntax error here, never executed.
    """
    if not (text.startswith("[") and text.endswith("]")):
        return None
    for reader in (json.loads, ast.literal_eval):
        try:
            value = reader(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, (list, tuple)):
            return _flatten(value)
    return None


def answer_items(pred_answer: str | None, *, split_commas: bool = False) -> list[str]:
    """A predicted answer as a list of items (blank items dropped, items stripped).

    A JSON/Python list literal (``"['football', 'milk']"``, ``'["x"]'``) gives its elements;
    any other string is one item; ``None`` gives ``[]``. With ``split_commas`` (set answers,
    e.g. bAbI qa8 ``"football,milk"``) every item is also split on commas.
    """
    if pred_answer is None:
        return []
    text = pred_answer.strip()
    items = _literal_items(text)
    if items is None:
        items = [text]
    if split_commas:
        items = [part for item in items for part in item.split(",")]
    return [item.strip() for item in items if item.strip()]


def overlap_prf(predicted: Sequence[str], gold: Sequence[str]) -> tuple[float, float, float]:
    """Precision, recall and F1 of two bags of items (tokens, or whole answers); ``(0, 0, 0)``
    when they share none."""
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0, 0.0, 0.0
    precision = common / len(predicted)
    recall = common / len(gold)
    return precision, recall, 2 * precision * recall / (precision + recall)


def token_prf(pred: str, gold: str) -> tuple[float, float, float]:
    """Token-level precision, recall and F1 of ``pred`` against ``gold`` (SQuAD style).

    Both sides are normalized and compared as bags of tokens. Both empty -> ``(1, 1, 1)``;
    exactly one empty, or no token in common -> ``(0, 0, 0)``.
    """
    pred_tokens = normalize(pred).split()
    gold_tokens = normalize(gold).split()
    if not pred_tokens and not gold_tokens:
        return 1.0, 1.0, 1.0
    return overlap_prf(pred_tokens, gold_tokens)


def contains_tokens(needle: str, haystack: str) -> bool:
    """Whether normalized ``needle`` occurs in normalized ``haystack`` on token boundaries."""
    if not needle:
        return not haystack  # an empty gold only "occurs" in an empty prediction
    return f" {needle} " in f" {haystack} "


def best_prf(pred_text: str, golds: Sequence[str]) -> tuple[float, float, float]:
    """P, R, F1 against the gold with the best F1 (the first on ties); zeros with no gold."""
    best: tuple[float, float, float] | None = None
    for gold in golds:
        prf = token_prf(pred_text, gold)
        if best is None or prf[2] > best[2]:
            best = prf
    return best or (0.0, 0.0, 0.0)


def match_text_answer(
    answer: str | None, golds: Sequence[str], *, contains: bool = False, as_set: bool = False
) -> tuple[bool, bool, float, float, float]:
    """(correct, exact match, precision, recall, F1) of a free-text final answer.

    Correct: the normalized answer equals a normalized gold (``contains``: a normalized gold
    occurs in it on token boundaries, MS MARCO's rule); with ``as_set`` the answer and the golds
    are comma lists compared as sets of normalized items (bAbI's list answers, which have no
    alternatives: every gold string is one more item). P/R/F1 are token-level, against the gold
    with the best F1.
    """
    items = answer_items(answer, split_commas=as_set)
    pred_text = " ".join(items)
    pred_norm = normalize(pred_text)
    if as_set:
        gold_items = [item for gold in golds for item in answer_items(gold, split_commas=True)]
        gold_texts = [" ".join(gold_items)] if gold_items else []
        pred_set = {normalize(item) for item in items} - {""}
        gold_set = {normalize(item) for item in gold_items} - {""}
        correct = bool(gold_set) and pred_set == gold_set
    else:
        gold_texts = [gold for gold in golds if gold is not None]
        gold_norms = [normalize(gold) for gold in gold_texts]
        if contains:
            correct = any(contains_tokens(gold, pred_norm) for gold in gold_norms)
        else:
            correct = pred_norm in gold_norms
    em = any(pred_norm == normalize(gold) for gold in gold_texts)
    precision, recall, f1 = best_prf(pred_text, gold_texts)
    return correct, em, precision, recall, f1
