"""Per-sample scores: the final answer by the dataset's rule, and the trace step by step.

Every prediction row gets one score row (same order); a malformed output is scored, never
dropped: whatever the parser could not read is null and scores False / 0. The trace is
checked strictly (category equal, generated facts matched back to exactly the gold context
positions); the lenient checks the paper's released code used are reported beside it.

Every answer rule sees only the model's final answer (``pred_answer``: the ``<answer>`` span,
else what follows ``</think>``, else the whole output; see :func:`tracekd.traces.parse_output`),
so trace text never reaches it. CoTempQA answers are scored by a candidate-entity rule
(``cotemp_answer_score``): CoTempQA's own (``cotempqa``, the default) or that of the paper's
released evaluator (``paper``). The paper's whole released evaluator, extraction included, is
``paper_cotemp_score`` / ``paper_babi_score``: it reproduces the published numbers.
"""

from __future__ import annotations

import ast
import json
import re
import string
from collections import Counter
from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

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
    "answer_source",
)

#: further columns the ``cotemp`` rule reads
COTEMP_COLUMNS = ("question", "triple_element")

#: ``cotemp_variant`` values: the candidate rule of the paper's released evaluator, or of the
#: CoTempQA authors' own script
COTEMP_VARIANTS = ("paper", "cotempqa")

#: the kinds of CoTempQA question (``triple_element``) the answer rules know
COTEMP_TRIPLE_ELEMENTS = ("S1_R1_O2", "S1_R2_O2", "S2_R1_O1", "S2_R1_O2", "S2_R2_O2")

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


# ---------------------------------------------------------------- CoTempQA's answer rule
#
# A re-implementation (our code, not a copy) of ``evaluate_model`` in the paper's released
# evaluation, sbhambr1/Trace_Check_QA ``scripts/cotempqa_config.py`` as of commit 2d289d3
# (17 May 2025, the version that scored the released results), which adapts ``main`` in the
# CoTempQA authors' zhaochen0110/Cotempqa ``evaluate_for_open_model.py``. The two candidate
# rules differ; ``variant`` picks one. Their quirks are kept on purpose (each is marked
# "quirk"), since the point is to reproduce the published scores.

# (keyword in the fact, Wikidata relation), in the order both scripts try them
_COTEMP_RELATIONS: tuple[tuple[str, str], ...] = (
    (" the position of ", "P39"),
    (" a member of ", "P102"),
    (" the chair of ", "P488"),
    (" the head of ", "P6"),
    (" owned by ", "P127"),
    ("attend", "P69"),
    ("work", "P108"),
    ("play", "P54"),
)
# fact phrasings per relation: group 1 is the subject, group 2 the object
_COTEMP_VERBS = {
    "P39": "holds the position of",
    "P102": "is a member of the",
    "P69": "attended",
    "P108": "works for",
    "P54": "plays for",
    "P488": "is the chair of",
    "P6": "is the head of",
    "P127": "is owned by",
}


def _cotemp_templates(verb: str) -> tuple[tuple[tuple[str, ...], re.Pattern[str]], ...]:
    """A relation's phrasings, each with the literal words it needs (a cheap test first)."""
    # both scripts try these with re.match (anchored at the start only, lazy groups)
    v = re.escape(verb)
    return (
        (
            (f" {verb} ", " from ", " to ", "."),
            re.compile(rf"(.+?) {v} (.+?) from (.+?) to (.+?)\."),
        ),
        ((f" {verb} ", " in ", "."), re.compile(rf"(.+?) {v} (.+?) in (.+?)\.")),
        ((f" {verb} ", " from "), re.compile(rf"(.+?) {v} (.+?) from (.+?)")),
        ((f" {verb} ", "."), re.compile(rf"(.+?) {v} (.+?)\.")),
    )


_COTEMP_TEMPLATES = {rel: _cotemp_templates(verb) for rel, verb in _COTEMP_VERBS.items()}
# the CoTempQA script tries only the first two phrasings of a relation
_TEMPLATES_TRIED = {"paper": 4, "cotempqa": 2}
# the past tenses both scripts rewrite before matching
_PAST_TENSES = ((" was ", " is "), (" held ", " holds "), (" worked ", " works "),
                (" played ", " plays "))  # fmt: skip
_DROP_ASCII_PUNCT = str.maketrans("", "", string.punctuation)
# counter words the CoTempQA script deletes (year, age, person in Chinese/Japanese/Korean)
_COUNTER_WORDS = str.maketrans("", "", "年歳人년")


class CotempScore(NamedTuple):
    """One CoTempQA answer scored by the authors' rule, with the sets it compared."""

    correct: bool
    precision: float
    recall: float
    f1: float
    predicted: tuple[str, ...]  # normalized, sorted; a duplicate is kept (quirk, see below)
    gold: tuple[str, ...]


def _check_cotemp_variant(variant: str) -> None:
    if variant not in COTEMP_VARIANTS:
        raise ValueError(f"unknown cotemp_variant {variant!r}; expected one of {COTEMP_VARIANTS}")


def cotemp_normalize(text: str, *, variant: str = "paper") -> str:
    """The authors' ``normalize_answer``: lower-case, drop ASCII punctuation, collapse spaces.

    Unlike SQuAD's it keeps articles and non-ASCII punctuation; the ``cotempqa`` variant also
    deletes the counter words 年 歳 人 년.
    """
    text = text.lower().translate(_DROP_ASCII_PUNCT)
    if variant == "cotempqa":
        text = text.translate(_COUNTER_WORDS)
    return " ".join(text.split())


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


@lru_cache(maxsize=1 << 16)
def _cotemp_fact_entities(fact: str, variant: str) -> tuple[str, str] | None:
    """(subject, object) of a context fact as the authors read it; ``None`` if unreadable.

    The keyword test runs on the fact as given (case-sensitive, so ``"work"`` also fires for
    ``"network"``); the tense rewrite then applies cumulatively to the fact (quirk).
    """
    for keyword, relation in _COTEMP_RELATIONS:
        if keyword not in fact:
            continue
        for old, new in _PAST_TENSES:
            fact = fact.replace(old, new)
        for needed, template in _COTEMP_TEMPLATES[relation][: _TEMPLATES_TRIED[variant]]:
            # a phrasing whose words are missing cannot match: skip its (backtracking) regex
            if not all(word in fact for word in needed):
                continue
            match = template.match(fact)
            if match:
                return match.group(1), match.group(2)
    return None


def _cotemp_wants_subject(triple_element: str, variant: str) -> bool:
    """Whether the candidates are the facts' subjects (else their objects).

    CoTempQA's own script takes objects for ``S1_R1_O2`` questions (same subject: "which party
    did X belong to"). Quirk: the paper's code tests ``'S2_R1_O1' not in triple_element``, so it
    takes *subjects* for every kind but ``S2_R1_O1``; only this reproduces its published scores.
    """
    if variant == "cotempqa":
        return "S1_R1_O2" not in triple_element
    return "S2_R1_O1" not in triple_element


def _cotemp_candidates(
    facts: Sequence[str], golds: Sequence[str], triple_element: str, variant: str
) -> list[str]:
    """Lower-cased candidate answers, longest first.

    The authors sort ``list(set(...))`` by length, so equal-length candidates come in hash
    order, which varies between runs; we keep first-seen order (facts, then golds) instead.
    It only matters when two equal-length candidates both occur in the question and the text.
    """
    side = 0 if _cotemp_wants_subject(triple_element, variant) else 1
    found = (_cotemp_fact_entities(fact, variant) for fact in facts)
    entities = [pair[side].lower() for pair in found if pair is not None]
    candidates = dict.fromkeys([*entities, *golds])  # ordered de-duplication
    return sorted(candidates, key=len, reverse=True)


def _cotemp_predicted(text: str, candidates: Sequence[str], question: str) -> list[str]:
    """The authors' scan: which candidates the text names.

    "Found" is a plain substring test on the lower-cased text (no word boundaries), and each
    candidate found is deleted from the text, so a shorter one inside a longer one already
    found is not found again. The first candidate that also occurs in the question is taken
    for the question's own entity and skipped (only the first: later ones count). With none
    found, the prediction is the whole remaining text.
    """
    predicted: list[str] = []
    skipped = False
    for candidate in candidates:
        if candidate not in text:
            continue
        text = text.replace(candidate, "")
        if not skipped and candidate in question:
            skipped = True
            continue
        predicted.append(candidate)
    return predicted or [text]


def _set_prf(predicted: Sequence[str], gold: Sequence[str]) -> tuple[float, float, float]:
    """The authors' ``f1_score`` over lists of answers: (precision, recall, F1)."""
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0, 0.0, 0.0
    precision = common / len(predicted)
    recall = common / len(gold)
    return precision, recall, 2 * precision * recall / (precision + recall)


def cotemp_answer_score(
    answer: str | None,
    golds: Sequence[str],
    *,
    facts: Sequence[str],
    question: str,
    triple_element: str,
    variant: str = "cotempqa",
) -> CotempScore:
    """Score one CoTempQA final answer by a candidate-entity rule.

    ``variant="cotempqa"``: ``main`` in zhaochen0110/Cotempqa ``evaluate_for_open_model.py``
    (Su et al. 2024); ``"paper"``: ``evaluate_model`` in sbhambr1/Trace_Check_QA
    ``scripts/cotempqa_config.py`` (arXiv 2505.13792), which adapts it.

    ``answer`` is the final answer alone (the workflow's ``pred_answer``, or
    :func:`paper_final_answer` of a raw generation); it is searched lower-cased. Candidates
    are the subjects or objects of the context ``facts`` (``triple_element`` says which) plus
    the golds, scanned longest first (``_cotemp_predicted``). Both sides are de-duplicated
    *before* normalization (quirk: two raw answers that normalize alike stay two list items),
    normalized by ``cotemp_normalize`` and sorted; correct means the two lists are equal, and
    precision/recall/F1 count the common items.
    """
    _check_cotemp_variant(variant)
    gold_raw = [gold.lower() for gold in golds]
    text = (answer or "").lower()
    candidates = _cotemp_candidates(facts, gold_raw, triple_element, variant)
    predicted = _cotemp_predicted(text, candidates, question.lower())
    pred_norm = tuple(sorted(cotemp_normalize(p, variant=variant) for p in set(predicted)))
    gold_norm = tuple(sorted(cotemp_normalize(g, variant=variant) for g in set(gold_raw)))
    precision, recall, f1 = _set_prf(pred_norm, gold_norm)
    return CotempScore(pred_norm == gold_norm, precision, recall, f1, pred_norm, gold_norm)


def paper_cotemp_score(
    prediction: str, golds: Sequence[str], *, facts: Sequence[str], question: str,
    triple_element: str,
) -> CotempScore:  # fmt: skip
    """One raw CoTempQA generation scored by the paper's released evaluator, exactly:
    :func:`paper_final_answer`, then the ``paper`` candidate rule."""
    return cotemp_answer_score(
        paper_final_answer(prediction), golds, facts=facts, question=question,
        triple_element=triple_element, variant="paper",
    )  # fmt: skip


def paper_babi_score(prediction: str, gold: str) -> bool:
    """One raw bAbI generation scored by the paper's released evaluator (sbhambr1/Trace_Check_QA
    ``scripts/babiqa_config.py``, the version that scored the released results).

    :func:`paper_final_answer`, then a gate and a test: the lower-cased gold must occur in the
    text (a substring), and the text normalized as CoTempQA's ``normalize_answer`` (no article
    removal) must equal the normalized gold. Accuracy, F1, precision and recall are then all
    this one value (one answer string each side).
    """
    text = paper_final_answer(prediction)
    gold = gold.lower()
    return gold in text and cotemp_normalize(text) == cotemp_normalize(gold)


def _cotemp_exact(pred_answer: str | None, golds: Sequence[str]) -> bool:
    """Strict check beside the official rule: the parsed answer's items equal the gold set."""
    pred_set = {_normalize(item) for item in answer_items(pred_answer)} - {""}
    gold_set = {_normalize(gold) for gold in golds if gold is not None} - {""}
    return bool(gold_set) and pred_set == gold_set


def _check_rule(answer_rule: str) -> None:
    if answer_rule not in ANSWER_RULES:
        raise ValueError(f"unknown answer_rule {answer_rule!r}; expected one of {ANSWER_RULES}")


def _check_columns(predictions: pl.DataFrame, answer_rule: str) -> None:
    needed = [*REQUIRED_COLUMNS, *(COTEMP_COLUMNS if answer_rule == "cotemp" else ())]
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


def _golds(row: dict[str, Any]) -> list[str]:
    """A row's gold answers; a row with no non-blank gold cannot be scored and is refused
    (a blank gold would make an empty or any prediction "correct")."""
    golds = [gold for gold in row["answers"] or [] if gold is not None and gold.strip()]
    if not golds:
        raise ValueError(
            f"row id={row['id']!r}: field 'answers': no non-blank gold answer "
            f"({row['answers']!r}); the row cannot be scored"
        )
    return golds


def _triple_element(row: dict[str, Any]) -> str:
    kind = row["triple_element"]
    if kind not in COTEMP_TRIPLE_ELEMENTS:
        raise ValueError(
            f"row id={row['id']!r}: field 'triple_element': unknown question kind {kind!r}; "
            f"expected one of {COTEMP_TRIPLE_ELEMENTS}"
        )
    return kind


def _row_answer(
    row: dict[str, Any], *, answer_rule: str, is_set: bool, cotemp_variant: str
) -> tuple[bool, bool, float, float, float]:
    """(correct, exact match, precision, recall, F1) of a row's final answer under its rule.

    Only ``pred_answer`` is read: the trace and the raw output never reach the rule.
    """
    golds = _golds(row)
    if answer_rule != "cotemp":
        return _score_answer(row["pred_answer"], golds, rule=answer_rule, is_set=is_set)
    score = cotemp_answer_score(
        row["pred_answer"],
        golds,
        facts=row["context"] or [],
        question=row["question"] or "",
        triple_element=_triple_element(row),
        variant=cotemp_variant,
    )
    em = _cotemp_exact(row["pred_answer"], golds)
    return score.correct, em, score.precision, score.recall, score.f1


def _any_context_fact(trace_text: str, context: Sequence[str]) -> bool:
    """The paper's lenient IR check: any context sentence appears in the trace text."""
    trace_key = " ".join(trace_text.lower().split())
    return any(key and key in trace_key for key in map(_fact_key, context))


def _score_row(
    row: dict[str, Any], *, answer_rule: str, is_set: bool, cotemp_variant: str = "cotempqa"
) -> tuple[Any, ...]:
    """One row's scores, in the order of ``_SCORE_SCHEMA``.

    A null ``relevant`` means the gold facts are unknown (e.g. the paper's released outputs):
    the strict IR columns and ``trace_correct`` are then null for a row with a trace.
    """
    context = row["context"] or []
    relevant = row["relevant"]
    gold = None if relevant is None else _gold_positions(row["id"], relevant, len(context))
    correct, em, precision, recall, f1 = _row_answer(
        row, answer_rule=answer_rule, is_set=is_set, cotemp_variant=cotemp_variant
    )
    trace_text = row["trace_text"]
    if trace_text is None or not trace_text.strip():
        return (correct, em, f1, precision, recall, *_NO_TRACE_SCORES)

    gold_label = _label_key(row["category"] or "")
    pred_category = row["pred_category"]
    category_ok = (
        pred_category is not None and bool(gold_label) and _label_key(pred_category) == gold_label
    )
    category_lenient = bool(gold_label) and _contains_tokens(gold_label, _label_key(trace_text))
    ir_lenient = _any_context_fact(trace_text, context)
    if gold is None:  # unknown gold facts: strict IR cannot be judged either way
        return (
            correct, em, f1, precision, recall,
            True, category_ok, None, None, None, ir_lenient, category_lenient, None,
        )  # fmt: skip
    if row["pred_facts"] is not None:
        ir_ok, ir_p, ir_r = _ir_scores(row["pred_facts"], context, gold)
    else:
        ir_ok, ir_p, ir_r = False, 0.0, 0.0
    return (
        correct, em, f1, precision, recall,
        True, category_ok, ir_ok, ir_p, ir_r, ir_lenient, category_lenient, category_ok and ir_ok,
    )  # fmt: skip


def score_predictions(
    predictions: pl.DataFrame,
    *,
    answer_rule: str,
    set_tasks: Collection[str] = SET_ANSWER_TASKS,
    cotemp_variant: str = "cotempqa",
) -> pl.DataFrame:
    """Score every prediction row: answer by ``answer_rule``, trace by category and IR step.

    Every rule reads the final answer alone (``pred_answer``), never the trace or the raw
    output. ``answer_rule``: ``"babi"`` (normalized exact match; tasks in ``set_tasks`` compared
    as unordered sets), ``"marco"`` (correct when a normalized gold answer occurs, on token
    boundaries, in the normalized answer; token F1 beside it) or ``"cotemp"`` (a
    candidate-entity rule, see ``cotemp_answer_score``; needs the columns ``question`` and
    ``triple_element``, the context facts in ``context``). Any other rule raises
    ``ValueError``, as does a row with no non-blank gold answer or, for ``cotemp``, an
    unknown ``triple_element``.

    For ``cotemp``, ``answer_correct`` and the answer P/R/F1 are the candidate rule's (over
    sets of answers); ``answer_em`` is a strict check beside them (the answer's items,
    normalized, equal the gold set). ``cotemp_variant`` is ``"cotempqa"`` (CoTempQA's own
    rule, default) or ``"paper"`` (the candidate rule of the paper's released evaluator).

    Returns one row per prediction, in input order, with the columns ``id, split, [task,]
    category, pred_category, parse_status, answer_source, answer_correct, answer_em,
    answer_f1, answer_precision, answer_recall, has_trace, category_correct, ir_correct,
    ir_precision, ir_recall, ir_lenient, category_lenient, trace_correct, trace_words,
    trace_tokens``. Answer P/R/F1 of the other rules are those against the gold answer with
    the best F1. ``ir_lenient`` is the paper's check (any context fact appears in the trace);
    a row whose ``relevant`` is null (gold facts unknown) has null strict IR columns and
    ``trace_correct``.
    """
    _check_rule(answer_rule)
    _check_cotemp_variant(cotemp_variant)
    _check_columns(predictions, answer_rule)
    has_task = "task" in predictions.columns
    set_tasks = frozenset(set_tasks)
    extra = ["task"] if has_task else []
    if answer_rule == "cotemp":
        extra += list(COTEMP_COLUMNS)
    rows = predictions.select(*REQUIRED_COLUMNS, *extra)
    scores = pl.DataFrame(
        [
            _score_row(
                row,
                answer_rule=answer_rule,
                is_set=answer_rule == "babi" and has_task and row["task"] in set_tasks,
                cotemp_variant=cotemp_variant,
            )
            for row in rows.iter_rows(named=True)
        ],
        schema=_SCORE_SCHEMA,
        orient="row",
    )
    keys = ["id", "split", *(["task"] if has_task else [])]
    keys += ["category", "pred_category", "parse_status", "answer_source"]
    lengths = predictions.select(
        # a trace that is only whitespace has no words, matching has_trace
        trace_words=pl.col("trace_text").str.count_matches(r"\S+").fill_null(0).cast(pl.Int64),
        trace_tokens=pl.col("trace_tokens").fill_null(0).cast(pl.Int64),
    )
    return pl.concat([predictions.select(keys), scores, lengths], how="horizontal")
