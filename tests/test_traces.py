"""Tests of trace rendering, parsing, corruption and the SFT example frames."""

from __future__ import annotations

import random
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekd.traces import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    CHAT_END_TOKENS,
    THINK_CLOSE,
    THINK_OPEN,
    Setting,
    TraceFormat,
    TraceTemplate,
    build_traces,
    corrupt_trace,
    parse_list,
    parse_output,
    render_completion,
    render_list,
    render_prompt,
    row_rng,
)

BABI_TRACE = (
    "The reasoning task in the question is: {category}. "
    "I need to use the following facts to answer the question: {facts}"
)
COTEMP_TRACE = (
    "The temporal relation between the event in question and the event in context is: "
    "{category}. I need to use the following facts to answer the question: {facts}"
)
PROMPT = (
    "Answer the question based on the context: {context} Question: {question} "
    "Only return the answer."
)
TEMPLATE = TraceTemplate(BABI_TRACE)

PROMPT_S = Setting("prompt", "none")
VANILLA = Setting("vanilla", "answer")
CORRECT = Setting("correct", "trace")
INCORRECT = Setting("incorrect", "trace", "random", seed=42)

REALISTIC = [
    "single-supporting-fact",
    "two-supporting-facts",
    "lists-sets",
    "during",
    "overlap",
    "equal",
    "mix",
    "description",
    "numeric",
    "entity",
    "location",
    "person",
    "e.g. v1.2",  # a dot not followed by the template's next words is fine
    "",
]
# parse_output also cuts a reply at an end-of-turn token, so generated text avoids those too
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE, *CHAT_END_TOKENS)

categories = st.one_of(
    st.sampled_from(REALISTIC),
    st.text(min_size=1, max_size=40).filter(lambda s: s == s.strip() and "." not in s),
)
facts_lists = st.lists(st.text(max_size=60), max_size=6)
fact_chars = st.sampled_from(
    ['"', "'", "[", "]", "\\", "{", "}", "\n", "\t", "é", "日本", "\u200b", "😀"]
)
tricky_facts = st.lists(
    st.lists(st.one_of(fact_chars, st.text(max_size=5)), max_size=8).map("".join), max_size=5
)


def _tagless(text: str) -> bool:
    return not any(tag in text for tag in TAGS)


# ---------------------------------------------------------------- templates


@pytest.mark.parametrize(
    "text",
    [
        "no placeholders",
        "only {category}",
        "only {facts}",
        "{category} twice {category} {facts}",
        "{category} {facts} and {facts}",
        "",
    ],
)
def test_template_rejects_missing_or_duplicated_placeholders(text: str) -> None:
    with pytest.raises(ValueError, match="exactly once"):
        TraceTemplate(text)


def test_template_accepts_facts_before_category() -> None:
    template = TraceTemplate("Facts: {facts} so the type is {category}")
    assert template.parse(template.render("person", ["a", "b"])) == ("person", ["a", "b"])


@settings(max_examples=300, deadline=None)
@given(category=categories, facts=st.one_of(facts_lists, tricky_facts))
@pytest.mark.parametrize("text", [BABI_TRACE, COTEMP_TRACE])
def test_render_parse_round_trip(text: str, category: str, facts: list[str]) -> None:
    template = TraceTemplate(text)
    assert template.parse(template.render(category, facts)) == (category, facts)


def test_render_does_not_substitute_inside_a_value() -> None:
    """A category that reads ``{facts}`` is data, not a placeholder."""
    rendered = TEMPLATE.render("{facts}", ["x"])
    assert rendered.count('["x"]') == 1
    assert TEMPLATE.parse(rendered) == ("{facts}", ["x"])


def test_render_prompt_does_not_substitute_inside_the_context() -> None:
    prompt = render_prompt(PROMPT, ["It says {question} here.", "back\\1slash"], "Where?")
    assert prompt.count("Where?") == 1
    assert '"It says {question} here."' in prompt
    assert "back\\\\1slash" in prompt  # JSON-escaped, not a regex back-reference


def test_parse_tolerates_whitespace_drift() -> None:
    drifted = (
        "  The reasoning  task in the\nquestion is:lists-sets .  I need to use the following "
        'facts to answer the question:["a", "b"]  '
    )
    assert TEMPLATE.parse(drifted) == ("lists-sets", ["a", "b"])


@pytest.mark.parametrize(
    "trace",
    [
        "",
        "random words",
        "The reasoning task in the question is: x. I need to use the following facts: []",
        'I need to use the following facts to answer the question: ["a"]',
    ],
)
def test_parse_of_a_non_template_trace_is_none(trace: str) -> None:
    assert TEMPLATE.parse(trace) == (None, None)


def test_parse_keeps_category_when_facts_are_not_strings() -> None:
    trace = TEMPLATE.render("counting", []).replace("[]", "[1, 2]")
    assert TEMPLATE.parse(trace) == ("counting", None)


# ---------------------------------------------------------------- lists


@settings(max_examples=200, deadline=None)
@given(items=st.one_of(facts_lists, tricky_facts))
def test_render_list_round_trip(items: list[str]) -> None:
    assert parse_list(render_list(items)) == items


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('["a", "b"]', ["a", "b"]),
        ("['a', \"b\"]", ["a", "b"]),  # a Python literal, as models often write
        ("('a', 'b')", ["a", "b"]),
        ("  []  ", []),
        ("[1, 2]", None),
        ('["a", 3]', None),
        ('{"a": 1}', None),
        ('"a"', None),
        ("[a, b]", None),
        ("", None),
        ("[" * 100_000, None),
        ("[" * 5000 + "]" * 5000, None),
    ],
)
def test_parse_list(text: str, expected: list[str] | None) -> None:
    assert parse_list(text) == expected


def test_parse_list_never_evaluates_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for text in (
        "[__import__('os').system('echo pwned')]",
        f"[__import__('os').system('touch {marker}')]",
        f"[open('{marker}', 'w').write('x')]",
        "[().__class__.__bases__[0].__subclasses__()]",
    ):
        assert parse_list(text) is None
    assert not marker.exists()


# ---------------------------------------------------------------- parse_output


def _full(category: str, facts: list[str], answers: list[str]) -> str:
    return render_completion(CORRECT, TEMPLATE, answers, category, facts)


@settings(max_examples=200, deadline=None)
@given(
    category=categories.filter(_tagless),
    facts=st.one_of(facts_lists, tricky_facts).filter(lambda fs: all(_tagless(f) for f in fs)),
    answers=st.lists(st.text(max_size=20).filter(_tagless), min_size=1, max_size=3),
)
def test_parse_output_of_a_full_completion(
    category: str, facts: list[str], answers: list[str]
) -> None:
    parsed = parse_output(_full(category, facts, answers), TEMPLATE)
    assert parsed.status == "ok"
    assert (parsed.category, parsed.facts) == (category, facts)
    assert parsed.answer == render_list(answers)
    assert parsed.trace_text == TEMPLATE.render(category, facts).strip()


def test_completion_shapes_per_setting() -> None:
    answers, facts = ["kitchen"], ["Mary went to the kitchen."]
    for setting in (PROMPT_S, VANILLA):
        assert render_completion(setting, TEMPLATE, answers, "x", facts) == '["kitchen"]'
    completion = render_completion(CORRECT, TEMPLATE, answers, "single-supporting-fact", facts)
    assert completion.startswith(THINK_OPEN) and completion.endswith(ANSWER_CLOSE)
    assert f"{THINK_CLOSE} {ANSWER_OPEN}" in completion


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n"])
def test_parse_output_empty(text: str) -> None:
    assert parse_output(text, TEMPLATE) == parse_output("", TEMPLATE)
    parsed = parse_output(text, TEMPLATE)
    assert parsed.status == "empty"
    assert (parsed.trace_text, parsed.category, parsed.facts, parsed.answer) == (None,) * 4


def test_parse_output_without_think_is_no_trace() -> None:
    parsed = parse_output('  ["kitchen"]\n', TEMPLATE)
    assert parsed.status == "no_trace"
    assert parsed.answer == '["kitchen"]'
    assert parsed.trace_text is None and parsed.category is None and parsed.facts is None


def test_parse_output_answer_tag_without_think() -> None:
    parsed = parse_output("<answer>garden</answer> trailing", TEMPLATE)
    assert (parsed.status, parsed.answer, parsed.trace_text) == ("no_trace", "garden", None)


def test_parse_output_unterminated_answer_without_think() -> None:
    parsed = parse_output("<answer>garden", TEMPLATE)
    assert (parsed.status, parsed.answer) == ("unterminated", "garden")


def test_parse_output_unterminated_think() -> None:
    trace = TEMPLATE.render("counting", ["a"])
    parsed = parse_output(f"{THINK_OPEN}{trace} and then the model ran out of tokens", TEMPLATE)
    assert parsed.status == "unterminated"
    assert parsed.answer is None
    assert parsed.trace_text is not None and parsed.trace_text.startswith("The reasoning task")


def test_parse_output_unterminated_answer() -> None:
    trace = TEMPLATE.render("counting", ["a"])
    parsed = parse_output(f'{THINK_OPEN}{trace}{THINK_CLOSE} {ANSWER_OPEN}["two"', TEMPLATE)
    assert parsed.status == "unterminated"
    assert parsed.answer == '["two"'
    assert (parsed.category, parsed.facts) == ("counting", ["a"])


def test_parse_output_without_answer_tags_takes_text_after_think() -> None:
    trace = TEMPLATE.render("counting", ["a"])
    parsed = parse_output(f"{THINK_OPEN}{trace}{THINK_CLOSE}\n  two \n", TEMPLATE)
    assert (parsed.status, parsed.answer, parsed.category) == ("ok", "two", "counting")


def test_parse_output_think_with_nothing_after() -> None:
    trace = TEMPLATE.render("counting", ["a"])
    parsed = parse_output(f"{THINK_OPEN}{trace}{THINK_CLOSE}", TEMPLATE)
    assert parsed.status == "ok" and parsed.answer is None


def test_parse_output_qwen_empty_think_block_then_own_think() -> None:
    """Qwen3 (thinking off) opens with an empty think block; the model's own one wins."""
    own = _full("two-arg-relations", ["The kitchen is north of the garden."], ["garden"])
    parsed = parse_output(f"{THINK_OPEN}\n\n{THINK_CLOSE}\n\n{own}", TEMPLATE)
    assert parsed.status == "ok"
    assert parsed.category == "two-arg-relations"
    assert parsed.facts == ["The kitchen is north of the garden."]
    assert parsed.answer == '["garden"]'


def test_parse_output_only_an_empty_think_block_is_no_trace() -> None:
    """Qwen3's template writes an empty think block before an answer without a trace (the
    vanilla setting): that is an answer with no trace, read after the block."""
    parsed = parse_output(f'{THINK_OPEN}\n\n{THINK_CLOSE}\n\n["garden"]', TEMPLATE)
    assert parsed.status == "no_trace"
    assert parsed.answer == '["garden"]'
    assert parsed.answer_source == "after_think"
    assert parsed.trace_text is None


def test_parse_output_bad_facts() -> None:
    trace = TEMPLATE.render("counting", []).replace("[]", "[1, 2]")
    parsed = parse_output(
        f"{THINK_OPEN}{trace}{THINK_CLOSE} {ANSWER_OPEN}two{ANSWER_CLOSE}", TEMPLATE
    )
    assert parsed.status == "bad_facts"
    assert (parsed.category, parsed.facts, parsed.answer) == ("counting", None, "two")


def test_parse_output_bad_trace() -> None:
    text = f"{THINK_OPEN}I think it is the kitchen.{THINK_CLOSE} {ANSWER_OPEN}kitchen{ANSWER_CLOSE}"
    parsed = parse_output(text, TEMPLATE)
    assert parsed.status == "bad_trace"
    assert parsed.trace_text == "I think it is the kitchen."
    assert (parsed.category, parsed.facts) == (None, None)
    assert parsed.answer == "kitchen"


def test_parse_output_malicious_facts_are_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    trace = TEMPLATE.render("counting", []).replace(
        "[]", f"[__import__('os').system('touch {marker}')]"
    )
    parsed = parse_output(
        f"{THINK_OPEN}{trace}{THINK_CLOSE} {ANSWER_OPEN}x{ANSWER_CLOSE}", TEMPLATE
    )
    assert parsed.status == "bad_facts"
    assert parsed.facts is None
    assert not marker.exists()


def test_parse_output_repeated_tags() -> None:
    first = TEMPLATE.render("counting", ["a"])
    last = TEMPLATE.render("lists-sets", ["b"])
    text = (
        f"{THINK_OPEN}{first}{THINK_CLOSE}{THINK_OPEN}{last}{THINK_CLOSE} "
        f"{ANSWER_OPEN}one{ANSWER_CLOSE}{ANSWER_OPEN}two{ANSWER_CLOSE}"
    )
    parsed = parse_output(text, TEMPLATE)
    assert parsed.status == "ok"
    assert (parsed.category, parsed.facts) == ("lists-sets", ["b"])  # the last think span
    assert parsed.answer == "one"  # the first answer after it


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("x" * 100_000, "bad_trace"),
        (
            "The reasoning task in the question is: "
            + ". I need to use the following facts to answer the question: [" * 1700,
            # the template's words are all there: the category reads, the facts do not
            "bad_facts",
        ),
        ("The reasoning task in the question is: " + "y" * 100_000, "bad_trace"),
    ],
)
def test_parse_output_of_100kb_is_fast_and_safe(body: str, status: str) -> None:
    started = time.perf_counter()
    parsed = parse_output(f"{THINK_OPEN}{body}{THINK_CLOSE} tail", TEMPLATE)
    assert time.perf_counter() - started < 5
    assert parsed.status == status
    assert parsed.answer == "tail"
    no_tags = parse_output(body, TEMPLATE)
    assert no_tags.status == "no_trace" and no_tags.answer == body.strip()


def test_parse_output_of_a_100kb_valid_trace() -> None:
    facts = [f"fact number {i} is here." for i in range(4000)]
    text = _full("counting", facts, ["two"])
    assert len(text) > 100_000
    parsed = parse_output(text, TEMPLATE)
    assert parsed.status == "ok" and parsed.facts == facts


# ---------------------------------------------------------------- corrupt_trace

CATS = ["a-cat", "b-cat", "c-cat", "d-cat"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    category=st.sampled_from(CATS),
    n_context=st.integers(2, 12),
    data=st.data(),
)
def test_corrupt_trace_avoids_gold(seed: int, category: str, n_context: int, data) -> None:
    context = [f"sentence {i}." for i in range(n_context)]
    k = data.draw(st.integers(1, n_context // 2))
    relevant = sorted(
        data.draw(st.lists(st.integers(0, n_context - 1), min_size=k, max_size=k, unique=True))
    )
    bad = corrupt_trace(
        random.Random(seed),
        category=category,
        categories=CATS,
        context=context,
        relevant=relevant,
        donors=[],
    )
    gold = {context[i] for i in relevant}
    assert bad.category != category and bad.category in CATS
    assert len(bad.facts) == len(relevant)
    assert not gold & set(bad.facts)
    assert bad.source == "same_context"
    assert all(0 <= i < n_context and i not in relevant for i in bad.relevant)
    assert [context[i] for i in bad.relevant] == bad.facts
    assert bad.relevant == sorted(bad.relevant)


def test_corrupt_trace_skips_non_gold_sentences_equal_to_a_gold_one() -> None:
    context = ["Mary moved to the hall.", "John went home.", "Mary moved to the hall.", "X."]
    for seed in range(50):
        bad = corrupt_trace(
            random.Random(seed),
            category="a-cat",
            categories=CATS,
            context=context,
            relevant=[0],
            donors=[],
        )
        assert bad.facts != ["Mary moved to the hall."]
        assert bad.relevant[0] in (1, 3)


def test_corrupt_trace_no_relevant_facts_still_draws_one() -> None:
    bad = corrupt_trace(
        random.Random(0),
        category="a-cat",
        categories=CATS,
        context=["p.", "q."],
        relevant=[],
        donors=[],
    )
    assert len(bad.facts) == 1 and bad.facts[0] in ("p.", "q.")


def test_corrupt_trace_borrows_from_donors() -> None:
    donors = [["Donor one.", "Gold."], ["Donor two."], []]
    other = corrupt_trace(
        random.Random(1),
        category="a-cat",
        categories=CATS,
        context=["Gold."],
        relevant=[0],
        donors=donors,
    )
    assert other.source == "other_context"
    assert other.relevant == [-1]
    assert other.facts[0] in ("Donor one.", "Donor two.")

    mixed = corrupt_trace(
        random.Random(1),
        category="a-cat",
        categories=CATS,
        context=["G1.", "G2.", "Own."],
        relevant=[0, 1],
        donors=donors,
    )
    assert mixed.source == "mixed"
    assert mixed.facts[0] == "Own." and mixed.relevant[0] == 2
    assert mixed.relevant[1] == -1 and mixed.facts[1] in ("Donor one.", "Donor two.", "Gold.")
    assert len(set(mixed.facts)) == 2


def test_corrupt_trace_errors_when_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="no other category"):
        corrupt_trace(
            random.Random(0),
            category="a-cat",
            categories=["a-cat", "a-cat"],
            context=["x", "y"],
            relevant=[0],
            donors=[],
        )
    with pytest.raises(ValueError, match="enough non-gold facts"):
        corrupt_trace(
            random.Random(0),
            category="a-cat",
            categories=CATS,
            context=["x"],
            relevant=[0],
            donors=[["x"]],
        )


def test_corrupt_trace_is_deterministic_per_rng() -> None:
    kwargs = dict(
        category="b-cat", categories=CATS, context=list("abcdefgh"), relevant=[1, 4], donors=[]
    )
    a = corrupt_trace(row_rng(3, "incorrect", "row-1"), **kwargs)
    b = corrupt_trace(row_rng(3, "incorrect", "row-1"), **kwargs)
    assert a == b
    draws = [corrupt_trace(row_rng(s, "incorrect", "row-1"), **kwargs) for s in range(30)]
    assert len({(d.category, tuple(d.facts)) for d in draws}) > 1


def test_row_rng_is_stable_and_keyed() -> None:
    assert row_rng(1, "s", "r").random() == row_rng(1, "s", "r").random()
    values = {
        row_rng(*key).random()
        for key in [(1, "s", "r"), (2, "s", "r"), (1, "t", "r"), (1, "s", "q")]
    }
    assert len(values) == 4
    # a sha256 of the key, not Python's salted hash(): the same draw in every process
    assert row_rng(0, "incorrect", "qa1-train-0000-003").getrandbits(32) == 1407878239


# ---------------------------------------------------------------- build_traces


def _decomposed() -> pl.DataFrame:
    rows = [
        ("r1", "train", "a-cat", ["Mary went home.", "John left.", "Sam sat.", "Ann ran."],
         "Where is Mary?", ["home"], [0]),
        ("r2", "train", "b-cat", ["A is north of B.", "C is south of B.", "D."],
         "What is B?", ["x"], [0, 1]),
        ("r3", "train", "c-cat", ['He said "hi" [sic] \\o/'], "Who?", ["he"], [0]),
        ("r4", "test", "a-cat", ["One.", "Two.", "Three.", "Four.", "Five."],
         "Count?", ["two"], [1, 3]),
        ("r5", "test", "b-cat", ["Gold one.", "Gold two."], "Which?", ["a", "b"], [0, 1]),
        ("r6", "test", "c-cat", ["Alpha.", "Beta.", "Gamma."], "Q?", ["alpha"], [2]),
    ]  # fmt: skip
    cols = ["id", "split", "category", "context", "question", "answers", "relevant"]
    schema = {
        "id": pl.String,
        "split": pl.String,
        "category": pl.String,
        "context": pl.List(pl.String),
        "question": pl.String,
        "answers": pl.List(pl.String),
        "relevant": pl.List(pl.Int64),
    }
    frame = pl.DataFrame({c: [r[i] for r in rows] for i, c in enumerate(cols)}, schema=schema)
    return frame.with_columns(task=pl.lit("qa1"))  # a dataset extra, ignored by build_traces


def _build(setting: Setting, frame: pl.DataFrame | None = None) -> pl.DataFrame:
    return build_traces(
        _decomposed() if frame is None else frame,
        setting=setting,
        fmt=TraceFormat(TEMPLATE, PROMPT),
    )


EXPECTED_SCHEMA = {
    "id": pl.String,
    "split": pl.String,
    "setting": pl.String,
    "prompt": pl.String,
    "completion": pl.String,
    "trace_category": pl.String,
    "trace_facts": pl.List(pl.String),
    "trace_relevant": pl.List(pl.Int64),
    "corruption": pl.String,
}


@pytest.mark.parametrize("setting", [PROMPT_S, VANILLA, CORRECT, INCORRECT])
def test_build_traces_schema(setting: Setting) -> None:
    frame = _build(setting)
    source = _decomposed()
    assert dict(frame.schema) == EXPECTED_SCHEMA
    assert frame["id"].to_list() == source["id"].to_list()
    assert frame["split"].to_list() == source["split"].to_list()
    assert set(frame["setting"]) == {setting.name}
    for prompt, row in zip(frame["prompt"], source.iter_rows(named=True), strict=True):
        assert prompt == render_prompt(PROMPT, row["context"], row["question"])
        assert row["question"] in prompt


@pytest.mark.parametrize("setting", [PROMPT_S, VANILLA])
def test_build_traces_answer_only_settings(setting: Setting) -> None:
    frame = _build(setting)
    assert frame["completion"].to_list() == [render_list(a) for a in _decomposed()["answers"]]
    for col in ("trace_category", "trace_facts", "trace_relevant", "corruption"):
        assert frame[col].null_count() == frame.height


def test_build_traces_correct_contains_gold_facts() -> None:
    frame = _build(CORRECT)
    source = _decomposed()
    assert set(frame["corruption"]) == {"gold"}
    for out, row in zip(frame.iter_rows(named=True), source.iter_rows(named=True), strict=True):
        gold = [row["context"][i] for i in row["relevant"]]
        assert out["trace_category"] == row["category"]
        assert out["trace_facts"] == gold
        assert out["trace_relevant"] == row["relevant"]
        parsed = parse_output(out["completion"], TEMPLATE)
        assert parsed.status == "ok"
        assert (parsed.category, parsed.facts) == (row["category"], gold)
        assert parsed.answer == render_list(row["answers"])
        for fact in gold:
            assert render_list([fact])[1:-1] in out["completion"]


def test_build_traces_incorrect_is_wrong_but_keeps_the_answer() -> None:
    frame = _build(INCORRECT)
    source = _decomposed()
    assert frame["corruption"].is_in(["same_context", "other_context", "mixed"]).all()
    by_id = {r["id"]: r for r in frame.iter_rows(named=True)}
    for row in source.iter_rows(named=True):
        out = by_id[row["id"]]
        gold = {row["context"][i] for i in row["relevant"]}
        assert out["trace_category"] != row["category"]
        assert len(out["trace_facts"]) == len(row["relevant"])
        assert not gold & set(out["trace_facts"])
        for fact, index in zip(out["trace_facts"], out["trace_relevant"], strict=True):
            assert index == -1 or row["context"][index] == fact
        parsed = parse_output(out["completion"], TEMPLATE)
        assert parsed.status == "ok"
        assert (parsed.category, parsed.facts) == (out["trace_category"], out["trace_facts"])
        assert parsed.answer == render_list(row["answers"])
    assert by_id["r3"]["corruption"] == "other_context"  # one sentence, and it is gold
    assert by_id["r5"]["corruption"] == "other_context"
    assert by_id["r4"]["corruption"] == "same_context"


def test_build_traces_incorrect_is_seeded() -> None:
    first, again = _build(INCORRECT), _build(INCORRECT)
    assert first.equals(again)
    others = [_build(Setting("incorrect", "trace", "random", seed=s)) for s in range(1, 6)]
    assert any(not first.equals(o) for o in others)
    renamed = _build(Setting("incorrect-s2", "trace", "random", seed=42))
    assert not first.drop("setting").equals(renamed.drop("setting"))


def test_build_traces_row_order_does_not_change_a_row() -> None:
    """A row's corruption comes from its own RNG (row_rng), not from its position."""
    source = _decomposed()
    forward = _build(INCORRECT, source).sort("id")
    backward = _build(INCORRECT, source.reverse()).sort("id")
    shuffled = _build(INCORRECT, source.sample(fraction=1.0, shuffle=True, seed=3)).sort("id")
    assert forward.equals(backward)
    assert forward.equals(shuffled)


def test_build_traces_same_context_rows_survive_subsetting() -> None:
    source = _decomposed()
    full = _build(INCORRECT, source).filter(pl.col("corruption") == "same_context")
    alone = _build(INCORRECT, source.filter(pl.col("id").is_in(full["id"].to_list())))
    assert full.equals(alone.filter(pl.col("id").is_in(full["id"].to_list())))


def test_build_traces_rejects_unknown_corruption() -> None:
    with pytest.raises(ValueError, match="unknown corruption"):
        _build(Setting("weird", "trace", "shuffle"))


def test_build_traces_explicit_categories() -> None:
    frame = build_traces(
        _decomposed(),
        setting=INCORRECT,
        fmt=TraceFormat(TEMPLATE, PROMPT),
        categories=["a-cat", "b-cat", "c-cat", "z-cat"],
    )
    assert set(frame["trace_category"]) <= {"a-cat", "b-cat", "c-cat", "z-cat"}
    assert (frame["trace_category"] != _decomposed()["category"]).all()


def test_setting_trains() -> None:
    assert not PROMPT_S.trains
    assert VANILLA.trains and CORRECT.trains and INCORRECT.trains


# ---------------------------------------------------------------- parse_output: real shapes

COTEMP = TraceTemplate(COTEMP_TRACE)
COTEMP_FACT = "Emma Carlsson Löfdahl is a member of the Liberals in March 11, 2019."
# the shape of the paper's released Qwen3 outputs: newline before "I need", Python-literal lists
QWEN_TRACE = (
    "The temporal relation between the event in question and the event in context is: equal.\n"
    f"I need to use the following facts to answer the question: ['{COTEMP_FACT}']"
)


def _qwen(answer_part: str, *, opener: str = "assistant\n<think>\n") -> str:
    return f"{opener}{QWEN_TRACE}\n</think>\n\n {answer_part}"


def test_parse_output_released_qwen_shape() -> None:
    parsed = parse_output(_qwen("<answer>['Liberals']</answer>"), COTEMP)
    assert parsed.status == "ok"
    assert (parsed.category, parsed.facts) == ("equal", [COTEMP_FACT])
    assert parsed.answer == '["Liberals"]'  # a Python-literal list comes back as JSON
    assert parsed.trace_text == QWEN_TRACE


def test_parse_output_close_without_open_is_a_trace() -> None:
    """The released outputs hold "</think>" with its "<think>" left in the prompt."""
    parsed = parse_output(_qwen("<answer>['Liberals']</answer>", opener="\n\n"), COTEMP)
    assert (parsed.status, parsed.category, parsed.answer) == ("ok", "equal", '["Liberals"]')
    # a "</think>" after the answer tag is not a trace
    late = parse_output("<answer>x</answer> </think>", COTEMP)
    assert (late.status, late.answer, late.trace_text) == ("no_trace", "x", None)


@pytest.mark.parametrize(
    ("tail", "answer"),
    [
        # the trace restated without tags, then a bare list
        (f"{QWEN_TRACE}\n['Liberals']", '["Liberals"]'),
        # restated with drift ("fact"), which the template itself does not accept
        (f"{QWEN_TRACE.replace('facts', 'fact')}\n['Liberals']", '["Liberals"]'),
        (f"{QWEN_TRACE}\nAnswer: Liberals", "Liberals"),
        (f"{QWEN_TRACE}\nThe answer is ['Liberals', 'Vox'].", '["Liberals", "Vox"]'),
        (f"{QWEN_TRACE}\n</think>\n\nThe answer is: ['Liberals']", '["Liberals"]'),
        ("['Liberals']</answer>", '["Liberals"]'),  # the opening tag got lost
        ("Liberals", "Liberals"),
    ],
)
def test_parse_output_untagged_answers(tail: str, answer: str) -> None:
    parsed = parse_output(_qwen(tail), COTEMP)
    assert (parsed.status, parsed.category, parsed.answer) == ("ok", "equal", answer)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("assistant\n\n['Liberal Party']", '["Liberal Party"]'),  # the released Llama shape
        ("<|start_header_id|>assistant<|end_header_id|>\n\n['x']<|eot_id|>", '["x"]'),
        ("<|im_start|>assistant\nkitchen<|im_end|>\n<|im_start|>user\nmore?", "kitchen"),
        ("kitchen<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nok", "kitchen"),
        ("<start_of_turn>model\ngarden<end_of_turn>", "garden"),
        ("assistant", "assistant"),  # a lone word may be the answer itself
        ("assistant professor", "assistant professor"),
        ("model\ngarden", "model\ngarden"),  # "model" is a role only after a turn token
    ],
)
def test_parse_output_chat_remnants(text: str, answer: str) -> None:
    parsed = parse_output(text, COTEMP)
    assert (parsed.status, parsed.answer) == ("no_trace", answer)


def test_parse_output_only_remnants_is_empty() -> None:
    assert parse_output("assistant\n\n<|im_end|>", COTEMP).status == "empty"
    assert parse_output("<|eot_id|>['x']", COTEMP).status == "empty"  # the turn ended first


def test_parse_output_unclosed_think_then_answer() -> None:
    parsed = parse_output(f"<think>{QWEN_TRACE} <answer>['Liberals']</answer>", COTEMP)
    assert parsed.status == "unterminated"
    assert (parsed.category, parsed.facts) == ("equal", [COTEMP_FACT])
    assert parsed.answer == '["Liberals"]'


def test_parse_output_answer_literal_is_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"<answer>[__import__('os').system('touch {marker}')]</answer>"
    parsed = parse_output(text, COTEMP)
    assert parsed.answer == text[len("<answer>") : -len("</answer>")]  # kept as text
    assert not marker.exists()


PREFIXES = ["", "assistant\n", "<|im_start|>assistant\n", "<|begin_of_text|>assistant\n\n",
            "<|start_header_id|>assistant<|end_header_id|>\n\n"]  # fmt: skip
SUFFIXES = ["", "<|im_end|>", "<|eot_id|>", "<|im_end|>\n<|im_start|>user\n<think>x</think>"]


@settings(max_examples=200, deadline=None)
@given(
    category=categories.filter(_tagless),
    facts=st.one_of(facts_lists, tricky_facts).filter(lambda fs: all(_tagless(f) for f in fs)),
    answers=st.lists(st.text(max_size=20).filter(_tagless), min_size=1, max_size=3),
    prefix=st.sampled_from(PREFIXES),
    suffix=st.sampled_from(SUFFIXES),
    drop_open=st.booleans(),
)
def test_parse_output_ignores_remnants_and_a_lost_think_tag(
    category: str, facts: list[str], answers: list[str], prefix: str, suffix: str, drop_open: bool
) -> None:
    completion = _full(category, facts, answers)
    if drop_open:  # the "<think>" was part of the prompt
        completion = completion.removeprefix(THINK_OPEN)
    parsed = parse_output(prefix + completion + suffix, TEMPLATE)
    assert parsed == parse_output(_full(category, facts, answers), TEMPLATE)
    assert parsed.status == "ok" and parsed.answer == render_list(answers)
