"""Per-sample scores: the final answer by its dataset's rule, and the trace step by step.

Every prediction row gets one score row (same order); a malformed output is scored, never
dropped: whatever the parser could not read is null and scores False / 0. The trace is
checked strictly (category equal, generated facts matched back to exactly the gold context
positions); the lenient checks the paper's released code used are reported beside it.

Every answer rule sees only the model's final answer (``pred_answer``: the ``<answer>`` span,
else what follows ``</think>``, else the whole output; see :func:`tracekd.traces.parse_output`),
so trace text never reaches it. The rules belong to the dataset plug-ins
(:mod:`tracekd.datasets`); ``answer_rule`` names the plug-in whose rule applies.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import polars as pl

from tracekd.datasets import get_dataset
from tracekd.text import contains_tokens

#: columns of the predictions frame that scoring reads (a rule may read more: its
#: ``Dataset.answer_columns``)
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
    "answer_source",
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

_NON_WORD_RUN = re.compile(r"[\W_]+")
# stripped from both ends of a fact: ASCII punctuation, whitespace and the Unicode quotes and
# dashes models write (str.strip with a set is several times faster than an anchored regex)
_EDGE_CHARS = (
    string.punctuation
    + string.whitespace
    + "\u201c\u201d\u2018\u2019\u00ab\u00bb\u2013\u2014\u2026"
)


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


def _check_columns(predictions: pl.DataFrame, needed: Sequence[str]) -> None:
    missing = [col for col in needed if col not in predictions.columns]
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


def _golds(row: Mapping[str, Any]) -> list[str]:
    """A row's gold answers; a row with no non-blank gold cannot be scored and is refused
    (a blank gold would make an empty or any prediction "correct")."""
    golds = [gold for gold in row["answers"] or [] if gold is not None and gold.strip()]
    if not golds:
        raise ValueError(
            f"row id={row['id']!r}: field 'answers': no non-blank gold answer "
            f"({row['answers']!r}); the row cannot be scored"
        )
    return golds


def _any_context_fact(trace_text: str, context: Sequence[str]) -> bool:
    """The paper's lenient IR check: any context sentence appears in the trace text."""
    trace_key = " ".join(trace_text.lower().split())
    return any(key and key in trace_key for key in map(_fact_key, context))


def _trace_scores(row: Mapping[str, Any], gold: set[int] | None) -> tuple[Any, ...]:
    """has_trace .. trace_correct of one row, in the order of ``_SCORE_SCHEMA``.

    A null ``relevant`` (``gold`` None) means the gold facts are unknown (e.g. the paper's
    released outputs): the strict IR columns and ``trace_correct`` are then null.
    """
    trace_text = row["trace_text"]
    if trace_text is None or not trace_text.strip():
        return _NO_TRACE_SCORES
    context = row["context"] or []
    gold_label = _label_key(row["category"] or "")
    pred_category = row["pred_category"]
    category_ok = (
        pred_category is not None and bool(gold_label) and _label_key(pred_category) == gold_label
    )
    category_lenient = bool(gold_label) and contains_tokens(gold_label, _label_key(trace_text))
    ir_lenient = _any_context_fact(trace_text, context)
    if gold is None:  # unknown gold facts: strict IR cannot be judged either way
        return (True, category_ok, None, None, None, ir_lenient, category_lenient, None)
    if row["pred_facts"] is not None:
        ir_ok, ir_p, ir_r = _ir_scores(row["pred_facts"], context, gold)
    else:
        ir_ok, ir_p, ir_r = False, 0.0, 0.0
    return (True, category_ok, ir_ok, ir_p, ir_r, ir_lenient, category_lenient, category_ok and ir_ok)


def score_predictions(
    predictions: pl.DataFrame,
    *,
    answer_rule: str,
    options: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Score every prediction row: the final answer by ``answer_rule``, the trace by its
    category and IR step.

    ``answer_rule`` names the dataset plug-in whose rule applies (``babi``: normalized exact
    match, ``qa8`` as a set; ``marco``: a gold answer contained on token boundaries, token F1
    beside it; ``cotemp``: a candidate-entity rule); ``options`` is that dataset's config block
    (e.g. CoTemp's ``answer_variant``). Every rule reads the final answer alone
    (``pred_answer``), never the trace or the raw output. A row with no non-blank gold answer
    is refused (``ValueError``), as is any row the rule cannot score.

    Returns one row per prediction, in input order, with the columns ``id, split``, the
    plug-in's key columns (bAbI: ``task``), ``category, pred_category, parse_status,
    answer_source, answer_correct, answer_em, answer_f1, answer_precision, answer_recall,
    has_trace, category_correct, ir_correct, ir_precision, ir_recall, ir_lenient,
    category_lenient, trace_correct, trace_words, trace_tokens``. ``ir_lenient`` is the paper's
    check (any context fact appears in the trace); a row whose ``relevant`` is null (gold facts
    unknown) has null strict IR columns and ``trace_correct``.
    """
    try:
        dataset = get_dataset(answer_rule)
    except ValueError as err:
        raise ValueError(f"unknown answer_rule {answer_rule!r}: {err}") from None
    options = options or {}
    _check_columns(predictions, [*REQUIRED_COLUMNS, *dataset.answer_columns])
    keys = [col for col in dataset.score_keys if col in predictions.columns]
    read = [*REQUIRED_COLUMNS, *dataset.answer_columns]
    read += [col for col in keys if col not in read]
    rows = []
    for row in predictions.select(read).iter_rows(named=True):
        relevant = row["relevant"]
        gold = None if relevant is None else _gold_positions(row["id"], relevant, len(row["context"] or []))
        answer = dataset.answer_rule(row["pred_answer"], _golds(row), row, options)
        rows.append(
            (answer.correct, answer.em, answer.f1, answer.precision, answer.recall,
             *_trace_scores(row, gold))
        )  # fmt: skip
    scores = pl.DataFrame(rows, schema=_SCORE_SCHEMA, orient="row")
    columns = ["id", "split", *keys, "category", "pred_category", "parse_status", "answer_source"]
    lengths = predictions.select(
        # a trace that is only whitespace has no words, matching has_trace
        trace_words=pl.col("trace_text").str.count_matches(r"\S+").fill_null(0).cast(pl.Int64),
        trace_tokens=pl.col("trace_tokens").fill_null(0).cast(pl.Int64),
    )
    return pl.concat([predictions.select(columns), scores, lengths], how="horizontal")
