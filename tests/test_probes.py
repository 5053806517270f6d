"""Probes' traces: what each forces, seeded per row, and the forced tokens against training's."""

from __future__ import annotations

import copy
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekd.model.chat import (
    CHATML_TEMPLATE,
    FILLER_TOKEN,
    ChatFormat,
    encode_example,
    forced_prompt,
    prompt_ids,
)
from tracekd.model.tiny import train_tokenizer
from tracekd.traces import Setting, TraceFormat, TraceTemplate, build_traces, parse_output
from tracekd.traces.probes import (
    FILLER,
    FILLER_MARK,
    PROBES,
    build_probes,
    check_probes,
    forced_completion,
)

#: bAbI's shape (context as lines, answer as text) and CoTemp's (list literals everywhere)
TEXT_FORMAT = TraceFormat(
    TraceTemplate("The category of the question asked is: {category}.\nI need: {facts}", "python_list"),
    "Answer from:\n{context}\nQuestion: {question}\n",
    context="lines",
    answer="text",
)
LIST_FORMAT = TraceFormat(
    TraceTemplate("The relation is: {category}.\nFacts: {facts}", "python_list"),
    "Context: {context} Question: {question}",
    context="python_list",
    answer="python_list",
)


def problems(n: int = 6) -> pl.DataFrame:
    """``n`` problems over three categories, one train and the rest test, two gold facts each."""
    places = ["kitchen", "garden", "office", "hallway", "park", "school", "bedroom", "cellar"]
    rows = []
    for i in range(n):
        context = [f"Person{i} went to the {places[(i + k) % len(places)]}." for k in range(4)]
        rows.append({
            "id": f"p{i:02d}", "split": "train" if i == 0 else "test",
            "category": ["one", "two", "three"][i % 3], "context": context,
            "question": f"Where is Person{i}?", "answers": [places[i % len(places)]],
            "relevant": [0, 2],
        })  # fmt: skip
    return pl.DataFrame(rows)


def free_run(decomposed: pl.DataFrame, categories: list[str | None], facts: list[list[str] | None]) -> pl.DataFrame:
    """A run's free predictions: the test rows with the model's own category and facts."""
    test = decomposed.filter(pl.col("split") == "test")
    return test.with_columns(
        pred_category=pl.Series(categories, dtype=pl.String),
        pred_facts=pl.Series(facts, dtype=pl.List(pl.String)),
    )


@pytest.fixture(scope="module")
def decomposed() -> pl.DataFrame:
    return problems()


@pytest.fixture(scope="module")
def free(decomposed: pl.DataFrame) -> pl.DataFrame:
    n = decomposed.height - 1
    return free_run(decomposed, ["one", None, "two", "zzz", "three"][:n],
                    [["Person1 went to the garden."], None, [], ["x"], ["y", "z"]][:n])  # fmt: skip


@pytest.fixture(scope="module")
def probes(free: pl.DataFrame, decomposed: pl.DataFrame) -> pl.DataFrame:
    return build_probes(free, decomposed, probes=PROBES, fmt=TEXT_FORMAT, seed=5)


def by_probe(table: pl.DataFrame, probe: str) -> list[dict[str, Any]]:
    return list(table.filter(pl.col("probe") == probe).iter_rows(named=True))


def gold_of(decomposed: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in decomposed.iter_rows(named=True)}


def test_probe_names_are_checked() -> None:
    assert check_probes(["gold", "filler"]) == ["gold", "filler"]
    assert check_probes([]) == []
    with pytest.raises(ValueError, match=r"unknown probe\(s\) \['golden'\]"):
        check_probes(["golden"])
    with pytest.raises(ValueError, match="more than once"):
        check_probes(["gold", "gold"])


def test_one_row_per_probe_and_problem_in_order(probes: pl.DataFrame, free: pl.DataFrame) -> None:
    assert probes.height == len(PROBES) * free.height
    assert probes["probe"].to_list() == [p for p in PROBES for _ in range(free.height)]
    assert probes["id"].to_list() == free["id"].to_list() * len(PROBES)


def test_gold_is_the_problems_correct_trace(probes: pl.DataFrame, decomposed: pl.DataFrame) -> None:
    gold = gold_of(decomposed)
    correct = build_traces(decomposed, setting=Setting("correct", "trace"), fmt=TEXT_FORMAT)
    completions = dict(correct.select("id", "completion").iter_rows())
    for row in by_probe(probes, "gold"):
        g = gold[row["id"]]
        assert row["probe_category"] == g["category"] and row["probe_source"] == row["id"]
        assert row["probe_facts"] == [g["context"][i] for i in g["relevant"]]
        assert row["probe_relevant"] == g["relevant"]
        # the forced completion is the correct setting's training completion, answer included
        assert row["forced_completion"] == completions[row["id"]]
        assert row["forced_completion"][row["answer_at"]:].startswith(g["answers"][0])


def test_wrong_category_keeps_the_gold_facts(probes: pl.DataFrame, decomposed: pl.DataFrame) -> None:
    gold = gold_of(decomposed)
    for row in by_probe(probes, "wrong-category"):
        g = gold[row["id"]]
        assert row["probe_category"] != g["category"]
        assert row["probe_category"] in {"one", "two", "three"}
        assert row["probe_facts"] == [g["context"][i] for i in g["relevant"]]
        assert parse_output(row["probe_trace"], TEXT_FORMAT.trace) is not None


def test_wrong_facts_keep_the_gold_category_with_as_many_non_gold_facts(
    probes: pl.DataFrame, decomposed: pl.DataFrame
) -> None:
    gold = gold_of(decomposed)
    for row in by_probe(probes, "wrong-facts"):
        g = gold[row["id"]]
        gold_facts = {g["context"][i] for i in g["relevant"]}
        assert row["probe_category"] == g["category"]
        assert len(row["probe_facts"]) == len(g["relevant"])
        assert not gold_facts & set(row["probe_facts"])
        assert row["probe_detail"] == "same_context"  # two non-gold sentences of its own
        assert set(row["probe_relevant"]) == {1, 3}


def test_swapped_is_another_test_problems_correct_trace(probes: pl.DataFrame, decomposed: pl.DataFrame) -> None:
    gold = gold_of(decomposed)
    for row in by_probe(probes, "swapped"):
        donor = gold[row["probe_source"]]
        assert row["probe_source"] != row["id"] and donor["split"] == "test"
        assert row["probe_category"] == donor["category"]
        assert row["probe_facts"] == [donor["context"][i] for i in donor["relevant"]]


def test_no_trace_and_filler(probes: pl.DataFrame, decomposed: pl.DataFrame) -> None:
    gold = gold_of(decomposed)
    for row in by_probe(probes, "no-trace"):
        assert row["probe_category"] is None and row["probe_facts"] is None
        assert row["probe_trace"] == "" and row["probe_source"] is None
        assert row["forced_completion"].startswith("<think></think> <answer>")
    for row in by_probe(probes, FILLER):
        g = gold[row["id"]]
        assert row["probe_trace"] == TEXT_FORMAT.trace.render(g["category"], [g["context"][i] for i in g["relevant"]])
        assert row["forced_completion"].count(FILLER_MARK) == 1


def test_own_flipped_is_the_models_own_facts_under_another_category(
    probes: pl.DataFrame, free: pl.DataFrame
) -> None:
    own = {row["id"]: row for row in free.iter_rows(named=True)}
    for row in by_probe(probes, "own-flipped"):
        mine = own[row["id"]]
        assert row["probe_category"] != mine["pred_category"]
        assert row["probe_category"] in {"one", "two", "three"}
        assert row["probe_facts"] == (mine["pred_facts"] or [])
        unparsed = mine["pred_category"] is None or mine["pred_facts"] is None
        assert row["probe_detail"] == ("own_unparsed" if unparsed else "own")


def test_draws_are_seeded_per_row_not_by_row_order(free: pl.DataFrame, decomposed: pl.DataFrame) -> None:
    first = build_probes(free, decomposed, probes=PROBES, fmt=TEXT_FORMAT, seed=5)
    again = build_probes(free, decomposed, probes=PROBES, fmt=TEXT_FORMAT, seed=5)
    assert first.equals(again)
    shuffled = build_probes(free.reverse(), decomposed.reverse(), probes=PROBES, fmt=TEXT_FORMAT, seed=5)
    key = ["probe", "id"]
    assert first.sort(key).equals(shuffled.sort(key))
    other = build_probes(free, decomposed, probes=PROBES, fmt=TEXT_FORMAT, seed=6)
    assert not first.equals(other)


def test_swapped_needs_two_test_problems(decomposed: pl.DataFrame) -> None:
    one = free_run(decomposed.head(2), ["one"], [[]])
    with pytest.raises(ValueError, match="at least two test problems"):
        build_probes(one, decomposed, probes=["swapped"], fmt=TEXT_FORMAT, seed=0)
    assert build_probes(one, decomposed, probes=["gold"], fmt=TEXT_FORMAT, seed=0).height == 1


def test_free_predictions_need_the_models_trace_columns(decomposed: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="pred_category"):
        build_probes(decomposed, decomposed, probes=["gold"], fmt=TEXT_FORMAT, seed=0)


def test_forced_completion_needs_trace_before_answer() -> None:
    fmt = TraceFormat(TEXT_FORMAT.trace, completion="<answer>{answer}</answer><think>{trace}</think>")
    with pytest.raises(ValueError, match="before"):
        forced_completion(fmt, "t", ["a"])
    text, at = forced_completion(TEXT_FORMAT, "T", ["a", "b"])
    assert text == "<think>T</think> <answer>a,b</answer>" and text[at:] == "a,b</answer>"


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(3, 9),
    seed=st.integers(0, 2**32 - 1),
    own=st.lists(st.sampled_from(["one", "two", "three", "other", None]), min_size=8, max_size=8),
)
def test_probe_invariants(n: int, seed: int, own: list[str | None]) -> None:
    decomposed = problems(n)
    free = free_run(decomposed, own[: n - 1], [["f"]] * (n - 1))
    table = build_probes(free, decomposed, probes=PROBES, fmt=LIST_FORMAT, seed=seed)
    gold = gold_of(decomposed)
    mine = {row["id"]: row["pred_category"] for row in free.iter_rows(named=True)}
    for row in table.iter_rows(named=True):
        g = gold[row["id"]]
        if row["probe"] == "swapped":
            assert row["probe_source"] != row["id"]
        if row["probe"] == "own-flipped":
            assert row["probe_category"] != mine[row["id"]]
        if row["probe"] == "wrong-category":
            assert row["probe_category"] != g["category"]
        if row["probe"] == "wrong-facts":
            assert not {g["context"][i] for i in g["relevant"]} & set(row["probe_facts"])
        # the answer is never part of the trace's forced text
        assert row["forced_completion"][: row["answer_at"]].endswith(("<answer>", "> <answer>"))


# ---------------------------------------------------------------- forced tokens


def training_texts(fmt: TraceFormat, decomposed: pl.DataFrame) -> pl.DataFrame:
    return build_traces(decomposed, setting=Setting("correct", "trace"), fmt=fmt)


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, Any]:
    texts = []
    for fmt in (TEXT_FORMAT, LIST_FORMAT):
        traces = training_texts(fmt, problems(8))
        texts += traces["prompt"].to_list() + traces["completion"].to_list()
    chatml = train_tokenizer(texts, 500)
    # a template that rewrites the assistant's think block, as Qwen3's does
    qwen_like = copy.deepcopy(chatml)
    qwen_like.chat_template = CHATML_TEMPLATE.replace(
        "message['content']",
        "(message['content'].replace('<think>', '<think>\\n').replace('</think> ', '\\n</think>\\n\\n')"
        " if message['role'] == 'assistant' else message['content'])",
    )
    return {"chatml": chatml, "qwen_like": qwen_like}


@pytest.mark.parametrize("fmt", [TEXT_FORMAT, LIST_FORMAT], ids=["text-answer", "list-answer"])
@pytest.mark.parametrize("template", ["chatml", "qwen_like"])
@pytest.mark.parametrize("chat", [ChatFormat(), ChatFormat(system="Be brief."), ChatFormat(chat=False)],
                         ids=["chat", "system", "plain"])  # fmt: skip
def test_a_forced_gold_trace_is_the_training_tokens_up_to_the_answer(
    tokenizers: dict[str, Any], fmt: TraceFormat, template: str, chat: ChatFormat
) -> None:
    tokenizer = tokenizers[template]
    decomposed = problems(8)
    traces = training_texts(fmt, decomposed)
    free = free_run(decomposed, ["one"] * 7, [[]] * 7)
    table = build_probes(free, decomposed, probes=["gold"], fmt=fmt, seed=0)
    users = dict(traces.select("id", "prompt").iter_rows())
    completions = dict(traces.select("id", "completion").iter_rows())
    answers = dict(decomposed.select("id", "answers").iter_rows())
    for row in table.iter_rows(named=True):
        user = users[row["id"]]
        forced = forced_prompt(tokenizer, user, row["forced_completion"], chat, answer_at=row["answer_at"])
        trained = encode_example(tokenizer, user, completions[row["id"]], chat, max_length=100_000)
        n_prompt = len(prompt_ids(tokenizer, user, chat))
        assert forced.input_ids == trained.input_ids[: len(forced.input_ids)]
        assert forced.forced_tokens == len(forced.input_ids) - n_prompt > 0
        assert trained.completion_mask[n_prompt] == 1  # the forced part is completion tokens
        rest = tokenizer.decode(trained.input_ids[len(forced.input_ids):], skip_special_tokens=True)
        # what is left for the model is the answer (and at most the tag's last characters)
        answer = fmt.render_completion("trace", answers[row["id"]], "", [])
        answer = answer[answer.index("<answer>") + len("<answer>"):]
        assert rest.endswith(answer) and len(rest) - len(answer) <= len(">['")
        assert forced.text.startswith("<think>") and "</think>" in forced.text
        assert tokenizer.decode(forced.input_ids[n_prompt:]) == forced.text


@settings(max_examples=30, deadline=None)
@given(category=st.text(min_size=1, max_size=12), facts=st.lists(st.text(max_size=20), max_size=3))
def test_filler_has_the_gold_traces_token_length(tokenizers: dict[str, Any], category: str, facts: list[str]) -> None:
    tokenizer = tokenizers["chatml"]
    trace = TEXT_FORMAT.trace.render(category, facts)
    n = len(tokenizer(trace, add_special_tokens=False)["input_ids"])
    completion, at = forced_completion(TEXT_FORMAT, FILLER_MARK, ["garden"])
    forced = forced_prompt(tokenizer, "Where?", completion, ChatFormat(), answer_at=at, filler=(FILLER_MARK, n))
    dot = tokenizer.convert_tokens_to_ids(FILLER_TOKEN)
    reply = forced.input_ids[len(prompt_ids(tokenizer, "Where?", ChatFormat())):]
    assert reply.count(dot) == n
    assert forced.text == f"<think>{FILLER_TOKEN * n}</think> <answer>"
    assert forced.forced_tokens == len(reply)


def test_forcing_refuses_what_it_cannot_render(tokenizers: dict[str, Any]) -> None:
    tokenizer = tokenizers["chatml"]
    completion, at = forced_completion(TEXT_FORMAT, "T", ["garden"])
    with pytest.raises(ValueError, match="no answer"):
        forced_prompt(tokenizer, "u", completion, ChatFormat(), answer_at=len(completion))
    with pytest.raises(ValueError, match="mark once"):
        forced_prompt(tokenizer, "u", completion, ChatFormat(), answer_at=at, filler=(FILLER_MARK, 3))
