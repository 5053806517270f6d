"""CoTempQA's answer rules: the candidate-entity rule of CoTempQA's own evaluation (Su et al.
2024) and that of the paper's released evaluator, applied to a final answer.

"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from tracekd.datasets.base import AnswerScore
from tracekd.datasets.released import paper_final_answer, paper_normalize
from tracekd.text import answer_items, normalize, overlap_prf

#: ``answer_variant`` values: the candidate rule of the paper's released evaluator, or of the
#: CoTempQA authors' own script
COTEMP_VARIANTS = ("paper", "cotempqa")

#: ``triple_element`` values: which of subject (S), relation (R), object (O) the anchor and
#: the answer events share. ``S1_R1_O2``: same subject and relation, the answer is an object;
#: ``S1_R2_O2``: same subject, another relation; ``S2_R1_O1``: same relation and object, the
#: answer is a subject; ``S2_R1_O2`` / ``S2_R2_O2``: another subject (named in the question),
#: same / another relation, the answer is an object. The candidate rules depend on it.
TRIPLE_ELEMENTS: tuple[str, ...] = ("S1_R1_O2", "S1_R2_O2", "S2_R1_O1", "S2_R1_O2", "S2_R2_O2")

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
    """The authors' ``normalize_answer`` (:func:`~tracekd.datasets.released.paper_normalize`:
    lower-case, drop ASCII punctuation, collapse spaces; articles kept); the ``cotempqa`` variant
    also deletes the counter words 年 歳 人 년."""
    if variant == "cotempqa":
        text = text.translate(_COUNTER_WORDS)
    return paper_normalize(text)


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
    precision, recall, f1 = overlap_prf(pred_norm, gold_norm)  # the authors' f1_score over answer lists
    return CotempScore(pred_norm == gold_norm, precision, recall, f1, pred_norm, gold_norm)


def fact_values(facts: Sequence[str], row: Mapping[str, Any]) -> list[str]:
    """The entities the facts name on the side the question asks for (its ``triple_element``),
    lower case, in order: the candidates the CoTempQA rule (``cotempqa`` variant) scans an
    answer for, here taken from the given facts only."""
    side = 0 if _cotemp_wants_subject(row.get("triple_element") or "", "cotempqa") else 1
    found = (_cotemp_fact_entities(fact, "cotempqa") for fact in facts)
    return list(dict.fromkeys(pair[side].lower() for pair in found if pair is not None))


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


def _cotemp_exact(pred_answer: str | None, golds: Sequence[str]) -> bool:
    """Strict check beside the official rule: the parsed answer's items equal the gold set."""
    pred_set = {normalize(item) for item in answer_items(pred_answer)} - {""}
    gold_set = {normalize(gold) for gold in golds if gold is not None} - {""}
    return bool(gold_set) and pred_set == gold_set


def cotemp_rule(
    answer: str | None, golds: Sequence[str], row: Mapping[str, Any], options: Mapping[str, Any]
) -> AnswerScore:
    """The CoTemp plug-in's answer rule: :func:`cotemp_answer_score` of the final answer, with
    the dataset's ``answer_variant`` (``cotempqa`` by default); ``em`` is the strict check beside
    it (the answer's items, normalized, equal the gold set)."""
    kind = row["triple_element"]
    if kind not in TRIPLE_ELEMENTS:
        raise ValueError(
            f"row id={row['id']!r}: field 'triple_element': unknown question kind {kind!r}; "
            f"expected one of {TRIPLE_ELEMENTS}"
        )
    score = cotemp_answer_score(
        answer, golds, facts=row["context"] or [], question=row["question"] or "",
        triple_element=kind, variant=options.get("answer_variant", "cotempqa"),
    )  # fmt: skip
    return AnswerScore(score.correct, _cotemp_exact(answer, golds), score.precision, score.recall, score.f1)
