"""Tests for tracekd.evaluate.score: answer normalization, list answers, fact matching, per-row scores."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekd.datasets.babi import SET_ANSWER_TASKS
from tracekd.evaluate.score import match_facts, score_predictions
from tracekd.text import answer_items, normalize_answer, token_prf

SCHEMA: dict[str, Any] = {
    "id": pl.String,
    "split": pl.String,
    "category": pl.String,
    "context": pl.List(pl.String),
    "question": pl.String,
    "answers": pl.List(pl.String),
    "relevant": pl.List(pl.Int64),
    "task": pl.String,
    "output": pl.String,
    "trace_text": pl.String,
    "trace_tokens": pl.Int64,
    "pred_category": pl.String,
    "pred_facts": pl.List(pl.String),
    "pred_answer": pl.String,
    "parse_status": pl.String,
    "answer_source": pl.String,
}

SCORE_COLUMNS = [
    "id", "split", "task", "category", "pred_category", "parse_status", "answer_source",
    "answer_correct", "answer_em", "answer_f1", "answer_precision", "answer_recall",
    "has_trace", "category_correct", "ir_correct", "ir_precision", "ir_recall",
    "ir_lenient", "category_lenient", "trace_correct", "trace_words", "trace_tokens",
]  # fmt: skip

CONTEXT = [
    "Mary moved to the bathroom.",
    "John went to the hallway.",
    "Mary travelled to the office.",
    "Daniel went back to the garden.",
]


def trace_of(category: str, facts: list[str]) -> str:
    return f"The reasoning task in the question is: {category}. I need these facts: {facts}"


def pred(**overrides: Any) -> dict[str, Any]:
    """A well-formed, fully correct bAbI prediction row, with ``overrides`` applied."""
    facts = overrides.pop("facts", [CONTEXT[2]])
    row: dict[str, Any] = {
        "id": "babi-1",
        "split": "test",
        "category": "single-supporting-fact",
        "context": CONTEXT,
        "question": "Where is Mary?",
        "answers": ["office"],
        "relevant": [2],
        "task": "qa1",
        "output": "",
        "trace_text": trace_of("single-supporting-fact", facts),
        "trace_tokens": 25,
        "pred_category": "single-supporting-fact",
        "pred_facts": facts,
        "pred_answer": '["office"]',
        "parse_status": "ok",
        "answer_source": "answer_tag",
    }
    row.update(overrides)
    return row


def frame(*rows: dict[str, Any], drop: tuple[str, ...] = ()) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=SCHEMA).drop(list(drop))


def score_one(rule: str = "babi", **overrides: Any) -> dict[str, Any]:
    return score_predictions(frame(pred(**overrides)), answer_rule=rule).row(0, named=True)


# --- normalize_answer ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat!", "cat"),
        ("  an  Apple, a   day ", "apple day"),
        ("don't", "dont"),
        ("\u201cGarden\u201d \u2014 north", "garden north"),
        ("theory of a thesis", "theory of thesis"),  # articles only as whole words
        ("", ""),
        ("...", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


@given(st.text())
def test_normalize_answer_idempotent(text: str) -> None:
    once = normalize_answer(text)
    assert normalize_answer(once) == once
    assert once == once.strip() and "  " not in once


# --- answer_items -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "split", "expected"),
    [
        ("['football', 'milk']", False, ["football", "milk"]),
        ('["x"]', False, ["x"]),
        (' ["x", " y "] ', False, ["x", "y"]),
        ("[1998, [2, 'a']]", False, ["1998", "2", "a"]),
        ("[]", False, []),
        ("garden", False, ["garden"]),
        ("football, milk", False, ["football, milk"]),
        ("football, milk", True, ["football", "milk"]),
        ("['football,milk']", True, ["football", "milk"]),
        ("[not a list", False, ["[not a list"]),
        ("", False, []),
        (None, False, []),
    ],
)
def test_answer_items(text: str | None, split: bool, expected: list[str]) -> None:
    assert answer_items(text, split_commas=split) == expected


@pytest.mark.parametrize(
    "template",
    [
        "__import__('os').system('touch {p}')",
        "[__import__('os').system('touch {p}')]",
        "[().__class__.__base__.__subclasses__(), open('{p}', 'w')]",
    ],
)
def test_answer_items_never_evaluates(template: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    text = template.format(p=sentinel)
    assert answer_items(text) == [text]  # not a literal: kept as one plain item
    assert not sentinel.exists()


# --- token_prf ----------------------------------------------------------------------------


def test_token_prf_examples() -> None:
    assert token_prf("the garden", "Garden.") == (1.0, 1.0, 1.0)
    assert token_prf("", "") == (1.0, 1.0, 1.0)
    assert token_prf("", "garden") == (0.0, 0.0, 0.0)
    assert token_prf("kitchen", "garden") == (0.0, 0.0, 0.0)
    precision, recall, f1 = token_prf("42 dollars a month", "42 dollars")
    assert (precision, recall) == (2 / 3, 1.0)
    assert f1 == pytest.approx(0.8)


@given(st.text(max_size=40), st.text(max_size=40))
def test_token_prf_properties(a: str, b: str) -> None:
    p_ab, r_ab, f_ab = token_prf(a, b)
    p_ba, r_ba, f_ba = token_prf(b, a)
    assert f_ab == pytest.approx(f_ba)
    assert (p_ab, r_ab) == pytest.approx((r_ba, p_ba))
    for value in (p_ab, r_ab, f_ab):
        assert 0.0 <= value <= 1.0
    assert token_prf(a, a) == (1.0, 1.0, 1.0)


# --- match_facts --------------------------------------------------------------------------


def test_match_facts_is_insensitive_to_case_space_and_edge_punctuation() -> None:
    facts = ["mary TRAVELLED to  the office", " Daniel went back to the garden!! ", "Made up."]
    assert match_facts(facts, CONTEXT) == [2, 3, None]


def test_match_facts_duplicated_sentences() -> None:
    context = ["Mary went to the kitchen.", "John got the milk.", "Mary went to the kitchen."]
    fact = "Mary went to the kitchen."
    assert match_facts([fact], context) == [0]
    assert match_facts([fact, fact], context) == [0, 2]
    assert match_facts([fact, fact, fact], context) == [0, 2, 0]  # all taken: first again
    assert match_facts([fact], context, prefer={2}) == [2]  # the gold occurrence
    assert match_facts(["", "."], context) == [None, None]
    assert match_facts([fact], []) == [None]


@given(
    st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=8),
    st.data(),
)
def test_match_facts_finds_facts_drawn_from_context(
    context: list[str], data: st.DataObject
) -> None:
    picks = data.draw(st.lists(st.integers(0, len(context) - 1), max_size=6))
    facts = [context[i] for i in picks]
    matched = match_facts(facts, context)
    for fact, pos in zip(facts, matched, strict=True):
        if pos is None:  # only a fact that is blank after dropping its edge punctuation
            assert match_facts([fact], [fact]) == [None]
        else:
            assert match_facts([context[pos]], [fact]) == [0]  # the same sentence, by key
    # with distinct sentences and distinct picks, every fact goes back to where it came from
    if len(set(context)) == len(context) and len(set(picks)) == len(picks):
        assert all(pos in (None, i) for pos, i in zip(matched, picks, strict=True))


# --- score_predictions: answers -----------------------------------------------------------


def test_fully_correct_row() -> None:
    row = score_one()
    assert row["answer_correct"] and row["answer_em"] and row["answer_f1"] == 1.0
    assert row["has_trace"] and row["category_correct"] and row["ir_correct"]
    assert row["trace_correct"] and row["ir_lenient"] and row["category_lenient"]
    assert (row["ir_precision"], row["ir_recall"]) == (1.0, 1.0)
    assert row["trace_words"] == len(row_trace_words()) and row["trace_tokens"] == 25


def row_trace_words() -> list[str]:
    return trace_of("single-supporting-fact", [CONTEXT[2]]).split()


@pytest.mark.parametrize(
    ("pred_answer", "correct"),
    [
        ('["milk", "football"]', True),
        ("['football', 'milk']", True),
        ("milk, football", True),
        ("Milk,Football.", True),
        ('["milk"]', False),
        ('["milk", "football", "apple"]', False),
        ("milk football", False),
        ("[]", False),
    ],
)
def test_qa8_set_answers_are_order_insensitive(pred_answer: str, correct: bool) -> None:
    for gold in (["football,milk"], ["football", "milk"]):
        row = score_one(task="qa8", answers=gold, pred_answer=pred_answer)
        assert row["answer_correct"] is correct, gold


def test_qa8_order_matters_when_not_a_set_task() -> None:
    row = pred(task="qa1", answers=["football,milk"], pred_answer='["milk", "football"]')
    assert not score_predictions(frame(row), answer_rule="babi")["answer_correct"][0]
    assert SET_ANSWER_TASKS == frozenset({"qa8"})


@pytest.mark.parametrize(
    ("pred_answer", "correct"),
    [("office", True), ("The Office.", True), ("['office']", True), ("in the office", False)],
)
def test_babi_exact_match(pred_answer: str, correct: bool) -> None:
    assert score_one(pred_answer=pred_answer)["answer_correct"] is correct


def test_marco_containment_and_f1() -> None:
    row = score_one("marco", answers=["42 dollars"], pred_answer="It costs $42 dollars a month.")
    assert row["answer_correct"] and not row["answer_em"]
    assert 0.0 < row["answer_f1"] < 1.0 and row["answer_recall"] == 1.0
    # containment is on token boundaries: "4" is not in "14"
    assert not score_one("marco", answers=["4"], pred_answer="14 days")["answer_correct"]


def test_marco_best_gold_answer() -> None:
    row = score_one("marco", answers=["Paris", "the city of Paris France"], pred_answer="Paris")
    assert row["answer_correct"] and row["answer_em"] and row["answer_f1"] == 1.0


@pytest.mark.parametrize("rule", ["babi", "marco"])
@pytest.mark.parametrize("answers", [[], [""], ["  "], [None]])
def test_no_gold_answer_is_refused_not_a_free_pass(rule: str, answers: list[Any]) -> None:
    """A blank gold would "occur" in any answer (MARCO) or equal an empty one: never scored."""
    with pytest.raises(ValueError, match="id='babi-1': field 'answers': no non-blank gold"):
        score_one(rule, answers=answers, pred_answer="")


def test_blank_golds_beside_a_real_one_are_ignored() -> None:
    row = score_one("marco", answers=["", "office"], pred_answer="the office")
    assert row["answer_correct"]
    assert not score_one("marco", answers=["", "office"], pred_answer="garden")["answer_correct"]


# --- score_predictions: traces ------------------------------------------------------------


def test_duplicated_context_sentence_cited_once_is_the_gold_one() -> None:
    context = ["Mary went to the kitchen.", "Mary got the milk.", "Mary went to the kitchen."]
    row = score_one(context=context, relevant=[2], facts=["Mary went to the kitchen."])
    assert row["ir_correct"] and row["trace_correct"]


def test_hallucinated_fact() -> None:
    row = score_one(facts=[CONTEXT[2], "Mary flew to the moon."])
    assert not row["ir_correct"] and not row["trace_correct"] and row["category_correct"]
    assert (row["ir_precision"], row["ir_recall"]) == (0.5, 1.0)
    assert row["ir_lenient"]  # the gold fact is in the trace text


def test_missing_and_wrong_facts() -> None:
    row = score_one(relevant=[0, 2], facts=[CONTEXT[2]])
    assert not row["ir_correct"] and (row["ir_precision"], row["ir_recall"]) == (1.0, 0.5)
    row = score_one(facts=[CONTEXT[1]])
    assert not row["ir_correct"] and (row["ir_precision"], row["ir_recall"]) == (0.0, 0.0)
    # the paper's lenient check: any context fact in the trace (a wrong one counts)
    assert row["ir_lenient"]
    assert not score_one(facts=["Mary is in Rome."])["ir_lenient"]


def test_repeated_fact_does_not_hurt() -> None:
    row = score_one(facts=[CONTEXT[2], CONTEXT[2].lower()])
    assert row["ir_correct"] and row["ir_precision"] == 1.0


def test_category_matching_ignores_case_and_separators() -> None:
    assert score_one(pred_category="Single Supporting_Fact.")["category_correct"]
    row = score_one(pred_category="two-supporting-facts")
    assert not row["category_correct"] and not row["trace_correct"]
    assert row["category_lenient"]  # the gold label is still in the trace text


@pytest.mark.parametrize(
    "overrides",
    [
        {"trace_text": None, "pred_category": None, "pred_facts": None, "trace_tokens": 0,
         "parse_status": "no_trace"},
        {"trace_text": "   ", "pred_category": None, "pred_facts": None, "parse_status": "no_trace"},
        # a parser may leave the category set when the trace itself is gone: it does not count
        {"trace_text": None, "parse_status": "no_trace"},
    ],
)  # fmt: skip
def test_no_trace_rows(overrides: dict[str, Any]) -> None:
    row = score_one(**overrides)
    assert row["answer_correct"]  # the answer is still scored
    assert not any(
        row[k]
        for k in ("has_trace", "category_correct", "ir_correct", "ir_lenient",
                  "category_lenient", "trace_correct")
    )  # fmt: skip
    assert row["ir_precision"] == row["ir_recall"] == 0.0
    assert row["trace_words"] == 0


def test_unterminated_trace() -> None:
    text = (
        "The reasoning task in the question is: single-supporting-fact. I need: Mary travelled to"
    )
    row = score_one(
        trace_text=text, pred_category=None, pred_facts=None, pred_answer=text,
        parse_status="unterminated",
    )  # fmt: skip
    assert row["has_trace"] and row["category_lenient"]
    assert not row["category_correct"] and not row["ir_correct"] and not row["ir_lenient"]
    assert not row["answer_correct"] and row["parse_status"] == "unterminated"


def test_bad_facts_keep_the_category() -> None:
    row = score_one(pred_facts=None, parse_status="bad_facts")
    assert row["category_correct"] and not row["ir_correct"] and not row["trace_correct"]


def test_empty_output_is_scored_not_dropped() -> None:
    empty = pred(
        id="babi-2", output="", trace_text=None, trace_tokens=None, pred_category=None,
        pred_facts=None, pred_answer=None, parse_status="empty",
    )  # fmt: skip
    scores = score_predictions(frame(pred(), empty), answer_rule="babi")
    assert scores["id"].to_list() == ["babi-1", "babi-2"]
    row = scores.row(1, named=True)
    flags = [v for k, v in row.items() if isinstance(v, bool)]
    assert flags and not any(flags)
    assert row["answer_f1"] == row["ir_recall"] == 0.0 and row["trace_tokens"] == 0


# --- score_predictions: the frame ---------------------------------------------------------


def test_columns_order_and_determinism() -> None:
    rows = [pred(id=f"r{i}", pred_answer='["kitchen"]' if i % 2 else "office") for i in range(5)]
    first = score_predictions(frame(*rows), answer_rule="babi")
    assert first.columns == SCORE_COLUMNS
    assert first["id"].to_list() == [f"r{i}" for i in range(5)]
    assert first["answer_correct"].to_list() == [True, False, True, False, True]
    assert first.equals(score_predictions(frame(*rows), answer_rule="babi"))
    dtypes = dict(zip(first.columns, first.dtypes, strict=True))
    assert dtypes["answer_f1"] == pl.Float64 and dtypes["trace_words"] == pl.Int64
    assert dtypes["answer_correct"] == pl.Boolean


def test_without_task_column() -> None:
    scores = score_predictions(frame(pred(), drop=("task",)), answer_rule="marco")
    assert scores.columns == [c for c in SCORE_COLUMNS if c != "task"]


def test_empty_frame() -> None:
    scores = score_predictions(frame(), answer_rule="babi")
    assert scores.height == 0 and scores.columns == SCORE_COLUMNS


def test_rules_and_bad_input() -> None:
    # cotemp is implemented (tests/test_score_cotemp.py) but needs the triple kind
    with pytest.raises(ValueError, match="triple_element"):
        score_predictions(frame(pred()), answer_rule="cotemp")
    with pytest.raises(ValueError, match="unknown answer_rule"):
        score_predictions(frame(pred()), answer_rule="squad")
    with pytest.raises(ValueError, match="pred_facts"):
        score_predictions(frame(pred(), drop=("pred_facts",)), answer_rule="babi")
    with pytest.raises(ValueError, match=r"babi-1.*relevant.*\[7\]"):
        score_predictions(frame(pred(relevant=[7])), answer_rule="babi")


def test_ten_thousand_rows_are_fast() -> None:
    rows = []
    for i in range(10_000):
        context = [f"Person{i} moved to room {j}." for j in range(12)]
        rows.append(
            pred(
                id=f"r{i}",
                context=context,
                relevant=[i % 12],
                facts=[context[i % 12]],
                answers=[f"room {i % 12}"],
                pred_answer=f'["room {i % 7}"]',
                task="qa8" if i % 5 == 0 else "qa1",
            )  # fmt: skip
        )
    predictions = frame(*rows)
    start = time.perf_counter()
    scores = score_predictions(predictions, answer_rule="babi")
    elapsed = time.perf_counter() - start
    assert scores.height == 10_000 and scores["ir_correct"].all()
    assert elapsed < 5.0  # ~0.3 s on a laptop core; generous for shared CI machines


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=6), st.booleans())
def test_strict_ir_matches_set_equality(gold_mask: list[bool], hallucinate: bool) -> None:
    context = [f"Fact number {i}." for i in range(len(gold_mask))]
    relevant = [i for i, on in enumerate(gold_mask) if on]
    facts = [context[i] for i in relevant] + (["Invented."] if hallucinate else [])
    row = score_one(context=context, relevant=relevant, facts=facts)
    assert row["ir_correct"] is (not hallucinate)
    assert row["ir_recall"] == 1.0
