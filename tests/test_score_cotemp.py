"""Tests for the CoTempQA answer rule (tracekd.evaluate.score, answer_rule="cotemp").

Expected values are worked out by hand from the rules of the paper's released evaluation
(sbhambr1/Trace_Check_QA scripts/cotempqa_config.py, evaluate_model, as of commit 2d289d3) and
of CoTempQA's own script; the agreement with the authors' published numbers on their own outputs
is tested in tests/test_reference.py.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekd.datasets.cotemp_answer import (
    COTEMP_VARIANTS,
    CotempScore,
    cotemp_answer_score,
    cotemp_normalize,
    paper_cotemp_score,
)
from tracekd.datasets.released import paper_final_answer
from tracekd.evaluate.score import score_predictions
from tracekd.traces import render_list

FACTS = [
    "Ann Lee is a member of the Labour Party from 1990 to 1995.",
    "Ann Lee is a member of the Green Party in 1993.",
    "Ann Lee works for Acme Corp from 1991 to 1994.",
    "Bob Ray was a member of the Labour Party from 1992 to 1996.",
]
QUESTION = (
    "While Ann Lee was a member of the Green Party, which political party did Ann Lee belong "
    "to within the same time interval?"
)
TRACE = (
    "The temporal relation between the event in question and the event in context is: "
    "during.\nI need to use the following facts to answer the question: ['{fact}']"
)


def score(prediction: str | None, golds: list[str], **kw: Any) -> CotempScore:
    kw.setdefault("facts", FACTS)
    kw.setdefault("question", QUESTION)
    kw.setdefault("triple_element", "S1_R1_O2")
    kw.setdefault("variant", "paper")
    return cotemp_answer_score(prediction, golds, **kw)


# --- the paper's extraction of the answer from a raw output ----------------------------------


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("['Labour Party']", "['labour party']"),
        # the <answer> span comes first, cut at </answer>, whatever precedes it
        ("x answer y <answer>Labour</answer> answer: z", "labour"),
        ("<answer>Labour", "labour"),
        # the piece between the first and second " answer " (split(...)[1])
        ("x answer y answer z", "y"),
        # a prompt echoed back: the text before it
        ("Labour\nAnswer the question based on the context: Green", "labour\n"),
        ("Final answer: Labour", " labour"),
        # then "assistant" and "think" go, also inside words
        ("assistant\n\n['Rethink Party']", "\n\n['re party']"),
    ],
)
def test_paper_final_answer(prediction: str, expected: str) -> None:
    assert paper_final_answer(prediction) == expected


def test_paper_final_answer_of_a_trace_output_is_the_answer_span() -> None:
    text = f"<think>{TRACE.format(fact=FACTS[0])}</think> <answer>['Green Party']</answer>"
    assert paper_final_answer(text) == "['green party']"
    # without an answer tag the " answer " marker fires inside the trace: its facts are scored
    untagged = text.replace("<answer>", "").replace("</answer>", "")
    assert paper_final_answer(untagged).startswith("the question: ['ann lee is a member of")


def test_paper_cotemp_score_reads_only_the_answer_span() -> None:
    """The trace cites the gold fact, the answer is wrong: the paper's evaluator (2d289d3)
    scores the answer span only."""
    output = f"<think>{TRACE.format(fact=FACTS[0])}</think> <answer>['Green Party']</answer>"
    result = paper_cotemp_score(
        output, ["Labour Party"], facts=FACTS, question=QUESTION, triple_element="S1_R1_O2"
    )
    assert not result.correct and result.predicted == ("green party",)


# --- normalization ---------------------------------------------------------------------------


def test_normalize_keeps_articles_and_non_ascii_punctuation() -> None:
    assert cotemp_normalize("  The U.S.  Party–Left! ") == "the us party–left"
    assert cotemp_normalize("1990年") == "1990年"
    assert cotemp_normalize("1990年", variant="cotempqa") == "1990"


# --- the candidate scan ----------------------------------------------------------------------


def test_gold_answer_found() -> None:
    result = score("assistant\n\n['Labour Party']", ["Labour Party"])
    assert result.correct and result.f1 == result.precision == result.recall == 1.0
    assert result.predicted == result.gold == ("labour party",)


def test_paper_variant_takes_subjects_for_s1_r1_o2() -> None:
    """The paper's code collects subjects unless S2_R1_O1, so a wrong party is not a candidate
    there: the whole text is the prediction. CoTempQA's own script collects the objects, and the
    wrong party, named in the question, is skipped as the question's entity."""
    paper = score("['Green Party']", ["Labour Party"])
    assert paper.predicted == ("green party",) and not paper.correct
    upstream = score("['Green Party']", ["Labour Party"], variant="cotempqa")
    assert upstream.predicted == ("",) and not upstream.correct


def test_first_candidate_in_the_question_is_skipped_once() -> None:
    # S2_R1_O1: the paper's code takes objects; both parties are in the question and the output
    question = "While Ann Lee was in the Green Party, who was in the Labour Party?"
    result = score(
        "Green Party and Labour Party", ["Green Party"], question=question,
        triple_element="S2_R1_O1",
    )  # fmt: skip
    # "labour party" (longest) is taken for the question's own entity; "green party" counts
    assert result.predicted == ("green party",) and result.correct


def test_question_entity_alone_leaves_an_empty_prediction() -> None:
    result = score("Ann Lee", ["Labour Party"])  # the subject, named in the question
    assert result.predicted == ("",) and not result.correct and result.f1 == 0.0


def test_nothing_found_predicts_the_whole_text() -> None:
    result = score("I do not know.", ["Labour Party"])
    assert result.predicted == ("i do not know",)
    assert not result.correct and result.f1 == 0.0


def test_found_means_substring_without_word_boundaries() -> None:
    result = score("Ann Leeds", ["Lee"], question="Who?", triple_element="S2_R1_O1")
    assert result.correct


def test_a_found_candidate_is_removed_before_shorter_ones() -> None:
    # "labour party" is found first (longest) and deleted, so the gold "Labour" is not found
    result = score("Labour Party", ["Labour"], triple_element="S2_R1_O1")
    assert result.predicted == ("labour party",) and not result.correct


def test_duplicates_are_removed_before_normalization() -> None:
    """Two raw golds that normalize alike stay two list items (the authors' order of steps)."""
    result = score("Labour Party.", ["Labour Party", "Labour Party."], triple_element="S2_R1_O1")
    assert result.gold == ("labour party", "labour party")
    assert result.predicted == ("labour party",)
    assert not result.correct
    assert (result.precision, result.recall) == (1.0, 0.5)


def test_set_precision_recall_f1() -> None:
    # objects are candidates (S2_R1_O1): Acme Corp is a wrong extra, Green Party a missed gold
    result = score(
        "Labour Party, Acme Corp", ["Labour Party", "Green Party"], question="Which?",
        triple_element="S2_R1_O1",
    )  # fmt: skip
    assert result.predicted == ("acme corp", "labour party")
    assert (result.precision, result.recall, result.f1) == (0.5, 0.5, 0.5)
    assert not result.correct


def test_order_of_gold_answers_does_not_matter() -> None:
    golds = ["Labour Party", "Acme Corp"]
    text = "Acme Corp; Labour Party"
    first = score(text, golds, question="Which?", triple_element="S2_R1_O1")
    second = score(text, golds[::-1], question="Which?", triple_element="S2_R1_O1")
    assert first == second and first.correct


@pytest.mark.parametrize(
    ("fact", "candidate"),
    [
        ("Cy Doe was a member of the Tory Party in 1990.", "tory party"),  # past tense rewritten
        ("Cy Doe held the position of mayor from 1990 to 1994.", "mayor"),
        ("Cy Doe worked for Big Bank in Paris in 1990.", "big bank"),  # lazy: cut at " in "
        ("Cy Doe played for Network FC from 2001.", "network fc"),  # "work" fires, then "play"
    ],
)
def test_fact_phrasings(fact: str, candidate: str) -> None:
    result = score(
        candidate.title(), [], facts=[fact], question="Which?", triple_element="S2_R1_O1"
    )
    assert result.predicted == (candidate,)


def test_cotempqa_variant_reads_only_the_first_two_phrasings() -> None:
    facts = ["Cy Doe works for Big Bank."]  # the bare phrasing, fourth in the list
    kw: dict[str, Any] = {"facts": facts, "question": "Which?", "triple_element": "S2_R1_O1"}
    assert score("Big Bank, surely", [], **kw).predicted == ("big bank",)
    # not a candidate: the whole text is the prediction
    assert score("Big Bank, surely", [], variant="cotempqa", **kw).predicted == ("big bank surely",)


def test_unreadable_facts_and_empty_inputs() -> None:
    result = score(None, ["Labour Party"], facts=["Nothing to see here."])
    assert result.predicted == ("",) and not result.correct
    assert score("x", [], facts=[]).f1 == 0.0


def test_unknown_variant() -> None:
    with pytest.raises(ValueError, match="cotemp_variant"):
        score("x", ["y"], variant="squad")


PARTIES = ["Alpha Union", "Beta League", "Gamma Front", "Delta Bloc", "Omega Circle"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(PARTIES), min_size=1, max_size=4, unique=True),
    st.permutations(range(4)),
    st.sampled_from(COTEMP_VARIANTS),
)
def test_listing_exactly_the_golds_is_correct(golds: list[str], order, variant: str) -> None:
    facts = [f"Zed Quo is a member of the {party} from 1990 to 1991." for party in PARTIES]
    shown = [golds[i] for i in order if i < len(golds)]
    result = score(
        f"assistant\n\n{render_list(shown)}", golds, facts=facts, question="Which parties?",
        triple_element="S1_R1_O2" if variant == "cotempqa" else "S2_R1_O1", variant=variant,
    )  # fmt: skip
    assert result.correct and result.f1 == 1.0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.lists(st.sampled_from(PARTIES + ["", "Ann"]), max_size=3))
def test_any_output_scores_in_range(prediction: str, golds: list[str]) -> None:
    result = score(prediction, golds)
    assert 0.0 <= result.precision <= 1.0 and 0.0 <= result.recall <= 1.0
    assert result.correct == (result.f1 == 1.0)
    assert result == score(prediction, golds)  # deterministic


# --- score_predictions(answer_rule="cotemp") -------------------------------------------------

SCHEMA: dict[str, Any] = {
    "id": pl.String,
    "split": pl.String,
    "category": pl.String,
    "context": pl.List(pl.String),
    "question": pl.String,
    "answers": pl.List(pl.String),
    "relevant": pl.List(pl.Int64),
    "triple_element": pl.String,
    "output": pl.String,
    "trace_text": pl.String,
    "trace_tokens": pl.Int64,
    "pred_category": pl.String,
    "pred_facts": pl.List(pl.String),
    "pred_answer": pl.String,
    "parse_status": pl.String,
    "answer_source": pl.String,
}


def row(**overrides: Any) -> dict[str, Any]:
    """A CoTemp prediction whose trace cites the gold fact but whose answer is wrong."""
    trace = TRACE.format(fact=FACTS[0])
    values: dict[str, Any] = {
        "id": "ct-1",
        "split": "test",
        "category": "during",
        "context": FACTS,
        "question": QUESTION,
        "answers": ["Labour Party"],
        "relevant": [1, 0],
        "triple_element": "S1_R1_O2",
        "output": f"<think>{trace}</think> <answer>['Green Party']</answer>",
        "trace_text": trace,
        "trace_tokens": 40,
        "pred_category": "during",
        "pred_facts": [FACTS[0]],
        "pred_answer": '["Green Party"]',
        "parse_status": "ok",
        "answer_source": "answer_tag",
    }
    values.update(overrides)
    return values


def frame(*rows: dict[str, Any], drop: tuple[str, ...] = ()) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=SCHEMA).drop(list(drop))


def scored(
    *rows: dict[str, Any], drop: tuple[str, ...] = (), cotemp_variant: str | None = None
) -> dict[str, Any]:
    options = {} if cotemp_variant is None else {"answer_variant": cotemp_variant}
    return score_predictions(frame(*rows, drop=drop), answer_rule="cotemp", options=options).row(0, named=True)


@pytest.mark.parametrize("variant", COTEMP_VARIANTS)
def test_the_trace_never_reaches_the_answer_rule(variant: str) -> None:
    """The trace cites the gold fact, the answer names another party: scored wrong, whatever
    the trace says (the raw output is never searched)."""
    result = scored(row(), cotemp_variant=variant)
    assert not result["answer_correct"] and result["answer_f1"] == 0.0
    assert not result["answer_em"]
    good = scored(row(pred_answer='["Labour Party"]'), cotemp_variant=variant)
    assert good["answer_correct"] and good["answer_em"] and good["answer_f1"] == 1.0


def test_the_issue_minimal_case() -> None:
    """A wrong fact in an incorrect trace, the right answer: scored right (it was wrong when the
    rule searched the raw output from the first " answer " on, the trace's facts included)."""
    facts = [
        "Ann works for Acme from 2001 to 2005.",
        "Ann works for Beta from 2002 to 2003.",
        "Bob works for Acme from 2010 to 2012.",
    ]
    trace = (
        "The temporal relation between the event in question and the event in context is: "
        "overlap. I need to use the following facts to answer the question: "
        "['Bob works for Acme from 2010 to 2012.']"
    )
    case = row(
        context=facts,
        question=(
            "While Ann was working for Acme, which employer did Ann work for during the same "
            "time period?"
        ),
        answers=["Beta"],
        relevant=[0, 1],
        output=f"<think>{trace}</think> <answer>['Beta']</answer>",
        trace_text=trace,
        pred_facts=[facts[2]],
        pred_answer='["Beta"]',
    )
    for variant in COTEMP_VARIANTS:
        assert scored(case, cotemp_variant=variant)["answer_correct"], variant


def test_columns_and_trace_scores() -> None:
    scores = score_predictions(frame(row(), row(id="ct-2")), answer_rule="cotemp")
    assert scores.columns[:2] == ["id", "split"] and "triple_element" not in scores.columns
    first = scores.row(0, named=True)
    assert first["category_correct"] and first["has_trace"]
    assert not first["ir_correct"] and first["ir_recall"] == 0.5  # the anchor fact is missing


def test_unknown_gold_facts_give_null_ir() -> None:
    result = scored(row(relevant=None))
    assert result["has_trace"] and result["category_correct"]
    for key in ("ir_correct", "ir_precision", "ir_recall", "trace_correct"):
        assert result[key] is None
    assert result["ir_lenient"]  # the paper's check needs no gold: a context fact is cited
    no_trace = scored(
        row(relevant=None, trace_text=None, pred_category=None, pred_facts=None,
            parse_status="no_trace"),
    )  # fmt: skip
    assert no_trace["ir_correct"] is False and no_trace["trace_correct"] is False


def test_cotemp_input_errors() -> None:
    with pytest.raises(ValueError, match="question"):
        score_predictions(frame(row(), drop=("question",)), answer_rule="cotemp")
    with pytest.raises(ValueError, match="cotemp_variant"):
        score_predictions(frame(row()), answer_rule="cotemp", options={"answer_variant": "x"})
    with pytest.raises(ValueError, match="id='ct-1': field 'triple_element': unknown"):
        score_predictions(frame(row(triple_element="S9_R9_O9")), answer_rule="cotemp")
    for golds in ([""], [" "], []):
        with pytest.raises(ValueError, match="id='ct-1': field 'answers': no non-blank gold"):
            score_predictions(frame(row(answers=golds)), answer_rule="cotemp")
    # the other rules do not need the CoTemp columns
    babi = frame(row(), drop=("question", "triple_element"))
    assert score_predictions(babi, answer_rule="marco").height == 1


def test_variant_reaches_the_rule() -> None:
    # CoTempQA's script deletes the counter word 年 when normalizing; the paper's code does not
    dated = row(answers=["1990年"], output="1990", pred_answer="1990", relevant=None)
    assert scored(dated)["answer_correct"]  # cotempqa, the default
    assert not scored(dated, cotemp_variant="paper")["answer_correct"]
