"""Per-sample scores: the final answer by the dataset's rule, and the trace step by step.

Every prediction row gets one score row (same order); a malformed output is scored, never
dropped: whatever the parser could not read is null and scores False / 0. The trace is
checked strictly (category equal, generated facts matched back to exactly the gold context
positions); the lenient checks the paper's released code used are reported beside it.
"""

from __future__ import annotations

import ast
import json
import re
import string
from collections import Counter
from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any

import polars as pl

#: Tasks whose answer is an unordered set. Mirrors ``tracekd.babi.SET_ANSWER_TASKS``; kept here
#: so scoring does not import the loader (a test checks that the two agree).
SET_ANSWER_TASKS: frozenset[str] = frozenset({"qa8"})

ANSWER_RULES = ("babi", "marco", "cotemp")

#: columns of the predictions frame that scoring reads
REQUIRED_COLUMNS = (
    "id",
    "split",
    "category",
    "context",
    "answers",
    "relevant",
    "trace_text",
    "trace_tokens",
    "pred_category",
    "pred_facts",
    "pred_answer",
    "parse_status",
)

_SCORE_SCHEMA: dict[str, Any] = {
    "answer_correct": pl.Boolean,
    "answer_em": pl.Boolean,
    "answer_f1": pl.Float64,
    "answer_precision": pl.Float64,
    "answer_recall": pl.Float64,
    "has_trace": pl.Boolean,
    "category_correct": pl.Boolean,
    "ir_correct": pl.Boolean,
    "ir_precision": pl.Float64,
    "ir_recall": pl.Float64,
    "ir_lenient": pl.Boolean,
    "category_lenient": pl.Boolean,
    "trace_correct": pl.Boolean,
}

# has_trace .. trace_correct of a row without a trace
_NO_TRACE_SCORES = (False, False, False, 0.0, 0.0, False, False, False)

# Anything that is neither a word character nor whitespace, plus "_" (a word character that
# string.punctuation lists): SQuAD strips ASCII punctuation; we also strip Unicode punctuation
# and symbols so curly quotes and dashes in model output do not break a match.
_PUNCT = re.compile(r"[^\w\s]|_")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NON_WORD_RUN = re.compile(r"[\W_]+")
# stripped from both ends of a fact: ASCII punctuation, whitespace and the Unicode quotes and
# dashes models write (str.strip with a set is several times faster than an anchored regex)
_EDGE_CHARS = (
    string.punctuation
    + string.whitespace
    + "\u201c\u201d\u2018\u2019\u00ab\u00bb\u2013\u2014\u2026"
)


def normalize_answer(text: str) -> str:
    """SQuAD-style normalization: lower-case, drop punctuation, drop articles, collapse spaces.

    Punctuation is deleted, not replaced by a space (SQuAD: ``"don't"`` -> ``"dont"``).
    The function is idempotent.
    """
    text = _PUNCT.sub("", text.lower())
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


# the same gold answers and categories recur across rows
_normalize = lru_cache(maxsize=1 << 16)(normalize_answer)


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


def token_prf(pred: str, gold: str) -> tuple[float, float, float]:
    """Token-level precision, recall and F1 of ``pred`` against ``gold`` (SQuAD style).

    Both sides are normalized and compared as bags of tokens. Both empty -> ``(1, 1, 1)``;
    exactly one empty, or no token in common -> ``(0, 0, 0)``.
    """
    pred_tokens = _normalize(pred).split()
    gold_tokens = _normalize(gold).split()
    if not pred_tokens and not gold_tokens:
        return 1.0, 1.0, 1.0
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0, 0.0, 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return precision, recall, 2 * precision * recall / (precision + recall)


def _fact_key(text: str) -> str:
    """A sentence's matching key: lower-case, spaces collapsed, edge punctuation dropped."""
    return " ".join(text.lower().split()).strip(_EDGE_CHARS)


def _label_key(text: str) -> str:
    """A category label's key: ``"Single-Supporting_Fact."`` -> ``"single supporting fact"``."""
    return _NON_WORD_RUN.sub(" ", text.lower()).strip()


def match_facts(
    facts: Sequence[str], context: Sequence[str], *, prefer: Collection[int] = ()
) -> list[int | None]:
    """Match each generated fact back to a context position; ``None`` = not in the context.

    Matching is on the sentence text, insensitive to case, spacing and punctuation at either
    end. A sentence the context holds several times matches an occurrence not yet taken by an
    earlier fact (in ``prefer`` first, e.g. the gold positions, since identical sentences
    cannot be told apart; then the earliest); once all are taken, it matches one of them
    again by the same preference. An empty fact matches nothing.
    """
    positions: dict[str, list[int]] = {}
    for pos, key in enumerate(map(_fact_key, context)):
        if key in positions:
            positions[key].append(pos)
        else:
            positions[key] = [pos]
    taken: set[int] = set()
    matched: list[int | None] = []
    for fact in facts:
        key = _fact_key(fact)
        candidates = positions.get(key) if key else None
        if not candidates:
            matched.append(None)
            continue
        free = [pos for pos in candidates if pos not in taken]
        pool = free or candidates
        choice = next((pos for pos in pool if pos in prefer), pool[0])
        taken.add(choice)
        matched.append(choice)
    return matched


def _ir_scores(
    facts: Sequence[str], context: Sequence[str], gold: set[int]
) -> tuple[bool, float, float]:
    """Strict IR correctness, precision and recall of the generated facts.

    Predicted items are the distinct matched positions plus the distinct hallucinated facts,
    so a repeated fact neither helps nor hurts. With no gold facts recall is 1; with no
    predicted facts precision is 1 only when the gold set is empty too.
    """
    facts = [fact for fact in facts if _fact_key(fact)]  # a blank fact claims nothing
    matched = match_facts(facts, context, prefer=gold)
    hits = {pos for pos in matched if pos is not None}
    hallucinated = {_fact_key(f) for f, pos in zip(facts, matched, strict=True) if pos is None}
    true_pos = len(hits & gold)
    n_pred = len(hits) + len(hallucinated)
    precision = true_pos / n_pred if n_pred else float(not gold)
    recall = true_pos / len(gold) if gold else 1.0
    return (not hallucinated and hits == gold), precision, recall


def _contains_tokens(needle: str, haystack: str) -> bool:
    """Whether normalized ``needle`` occurs in normalized ``haystack`` on token boundaries."""
    if not needle:
        return not haystack  # an empty gold only "occurs" in an empty prediction
    return f" {needle} " in f" {haystack} "


def _best_prf(pred_text: str, golds: Sequence[str]) -> tuple[float, float, float]:
    """P, R, F1 against the gold with the best F1 (the first on ties); zeros with no gold."""
    best: tuple[float, float, float] | None = None
    for gold in golds:
        prf = token_prf(pred_text, gold)
        if best is None or prf[2] > best[2]:
            best = prf
    return best or (0.0, 0.0, 0.0)


def _score_answer(
    pred_answer: str | None, golds: Sequence[str], *, rule: str, is_set: bool
) -> tuple[bool, bool, float, float, float]:
    """(correct, exact match, precision, recall, F1) of one predicted answer."""
    items = answer_items(pred_answer, split_commas=is_set)
    pred_text = " ".join(items)
    pred_norm = _normalize(pred_text)
    if is_set:
        # bAbI has no alternative answers: every gold string (split on commas) is one item
        gold_items = [item for gold in golds for item in answer_items(gold, split_commas=True)]
        gold_texts = [" ".join(gold_items)] if gold_items else []
        pred_set = {_normalize(item) for item in items} - {""}
        gold_set = {_normalize(item) for item in gold_items} - {""}
        correct = bool(gold_set) and pred_set == gold_set
    else:
        gold_texts = [gold for gold in golds if gold is not None]
        gold_norms = [_normalize(gold) for gold in gold_texts]
        if rule == "marco":
            correct = any(_contains_tokens(gold, pred_norm) for gold in gold_norms)
        else:
            correct = pred_norm in gold_norms
    em = any(pred_norm == _normalize(gold) for gold in gold_texts)
    precision, recall, f1 = _best_prf(pred_text, gold_texts)
    return correct, em, precision, recall, f1


def _check_rule(answer_rule: str) -> None:
    if answer_rule == "cotemp":
        raise NotImplementedError(
            "answer_rule 'cotemp' (the CoTempQA authors' candidate-entity evaluation) "
            "is not implemented yet"
        )
    if answer_rule not in ANSWER_RULES:
        raise ValueError(f"unknown answer_rule {answer_rule!r}; expected one of {ANSWER_RULES}")


def _check_columns(predictions: pl.DataFrame) -> None:
    missing = [col for col in REQUIRED_COLUMNS if col not in predictions.columns]
    if missing:
        raise ValueError(f"predictions lack required column(s): {', '.join(missing)}")


def _gold_positions(row_id: Any, relevant: Sequence[int], n_context: int) -> set[int]:
    """The gold fact positions of a row, checked against its context length."""
    gold = set(relevant)
    bad = sorted(pos for pos in gold if not 0 <= pos < n_context)
    if bad:
        raise ValueError(
            f"row id={row_id!r}: field 'relevant': positions {bad} out of range "
            f"for a context of {n_context} sentences"
        )
    return gold


def _score_row(row: dict[str, Any], *, answer_rule: str, is_set: bool) -> tuple[Any, ...]:
    """One row's scores, in the order of ``_SCORE_SCHEMA``."""
    context = row["context"] or []
    gold = _gold_positions(row["id"], row["relevant"] or [], len(context))
    correct, em, precision, recall, f1 = _score_answer(
        row["pred_answer"], row["answers"] or [], rule=answer_rule, is_set=is_set
    )
    trace_text = row["trace_text"]
    if trace_text is None or not trace_text.strip():
        return (correct, em, f1, precision, recall, *_NO_TRACE_SCORES)

    gold_label = _label_key(row["category"] or "")
    pred_category = row["pred_category"]
    category_ok = (
        pred_category is not None and bool(gold_label) and _label_key(pred_category) == gold_label
    )
    if row["pred_facts"] is not None:
        ir_ok, ir_p, ir_r = _ir_scores(row["pred_facts"], context, gold)
    else:
        ir_ok, ir_p, ir_r = False, 0.0, 0.0
    # the paper's released check: any gold fact's text anywhere in the trace
    trace_key = " ".join(trace_text.lower().split())
    gold_keys = (_fact_key(context[pos]) for pos in sorted(gold))
    ir_lenient = any(key and key in trace_key for key in gold_keys)
    category_lenient = bool(gold_label) and _contains_tokens(gold_label, _label_key(trace_text))
    return (
        correct, em, f1, precision, recall,
        True, category_ok, ir_ok, ir_p, ir_r, ir_lenient, category_lenient, category_ok and ir_ok,
    )  # fmt: skip


def score_predictions(
    predictions: pl.DataFrame,
    *,
    answer_rule: str,
    set_tasks: Collection[str] = SET_ANSWER_TASKS,
) -> pl.DataFrame:
    """Score every prediction row: answer by ``answer_rule``, trace by category and IR step.

    ``answer_rule``: ``"babi"`` (normalized exact match; tasks in ``set_tasks`` compared as
    unordered sets), ``"marco"`` (correct when a normalized gold answer occurs, on token
    boundaries, in the normalized prediction; token F1 beside it) or ``"cotemp"`` (not yet
    implemented: raises ``NotImplementedError``). Any other rule raises ``ValueError``.

    Returns one row per prediction, in input order, with the columns ``id, split, [task,]
    category, pred_category, parse_status, answer_correct, answer_em, answer_f1,
    answer_precision, answer_recall, has_trace, category_correct, ir_correct, ir_precision,
    ir_recall, ir_lenient, category_lenient, trace_correct, trace_words, trace_tokens``.
    Answer P/R/F1 are those against the gold answer with the best F1.
    """
    _check_rule(answer_rule)
    _check_columns(predictions)
    has_task = "task" in predictions.columns
    set_tasks = frozenset(set_tasks)
    rows = predictions.select(*REQUIRED_COLUMNS, *(["task"] if has_task else []))
    scores = pl.DataFrame(
        [
            _score_row(
                row,
                answer_rule=answer_rule,
                is_set=answer_rule == "babi" and has_task and row["task"] in set_tasks,
            )
            for row in rows.iter_rows(named=True)
        ],
        schema=_SCORE_SCHEMA,
        orient="row",
    )
    keys = ["id", "split", *(["task"] if has_task else [])]
    keys += ["category", "pred_category", "parse_status"]
    lengths = predictions.select(
        # a trace that is only whitespace has no words, matching has_trace
        trace_words=pl.col("trace_text").str.count_matches(r"\S+").fill_null(0).cast(pl.Int64),
        trace_tokens=pl.col("trace_tokens").fill_null(0).cast(pl.Int64),
    )
    return pl.concat([predictions.select(keys), scores, lengths], how="horizontal")
