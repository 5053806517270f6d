"""Tests of the corruption schemes beyond the paper's: one step, a share of the facts, swapped
traces, a wrong answer and filler; their traces tables and their config checks."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekd.config import ConfigError, validate_config
from tracekd.model.train import training_completions
from tracekd.traces import Setting, TraceFormat, TraceTemplate, build_traces, parse_output
from tracekd.traces.build import CHANGE_COLUMNS, trace_schema
from tracekd.traces.corrupt import (
    derangement,
    filler_text,
    replace_facts,
    replaced_count,
    wrong_answer,
    wrong_category,
)

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = TraceTemplate(
    "The category is: {category}. I need to use the following facts to answer the question: {facts}"
)
FMT = TraceFormat(TEMPLATE)
CATS = ["a-cat", "b-cat", "c-cat"]


def _decomposed(n: int = 12) -> pl.DataFrame:
    """``n`` problems over three categories and two splits, with 1-3 gold facts each."""
    rows = []
    for i in range(n):
        context = [f"Fact {j} of problem {i}." for j in range(6)]
        relevant = list(range(1 + i % 3))
        rows.append({
            "id": f"p{i:02d}",
            "split": "train" if i % 4 else "test",
            "category": CATS[i % 3],
            "context": context,
            "question": f"Question {i}?",
            "answers": [f"answer-{i % 5}"],
            "relevant": relevant,
        })  # fmt: skip
    return pl.DataFrame(rows, schema={
        "id": pl.String, "split": pl.String, "category": pl.String,
        "context": pl.List(pl.String), "question": pl.String,
        "answers": pl.List(pl.String), "relevant": pl.List(pl.Int64),
    })  # fmt: skip


def _build(setting: Setting, frame: pl.DataFrame | None = None) -> pl.DataFrame:
    return build_traces(_decomposed() if frame is None else frame, setting=setting, fmt=FMT)


SCHEMES = [
    Setting("wrong-category", "trace", "category", seed=1),
    Setting("wrong-facts", "trace", "facts", seed=1, share=1.0),
    Setting("facts-25", "trace", "facts", seed=1, share=0.25),
    Setting("facts-50", "trace", "facts", seed=1, share=0.5),
    Setting("facts-75", "trace", "facts", seed=1, share=0.75),
    Setting("swapped", "trace", "swap", seed=1),
    Setting("wrong-answer", "trace", "answer", seed=1),
    Setting("filler", "trace", "filler", seed=1),
]


# ---------------------------------------------------------------- the pieces


@pytest.mark.parametrize(
    ("share", "n", "expected"),
    [(0.25, 1, 1), (0.25, 2, 1), (0.25, 4, 1), (0.25, 6, 2), (0.5, 1, 1), (0.5, 3, 2),
     (0.75, 2, 2), (0.75, 4, 3), (1.0, 3, 3), (0.5, 0, 1), (1.0, 0, 1)],
)  # fmt: skip
def test_replaced_count_rounds_half_up_at_least_one(share: float, n: int, expected: int) -> None:
    assert replaced_count(share, n) == expected


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_replaced_count_refuses_a_share_outside_zero_one(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        replaced_count(share, 3)


def test_wrong_category_is_another_and_needs_one() -> None:
    for seed in range(20):
        assert wrong_category(random.Random(seed), "a-cat", CATS) in {"b-cat", "c-cat"}
    with pytest.raises(ValueError, match="no other category"):
        wrong_category(random.Random(0), "a-cat", ["a-cat"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), n_context=st.integers(2, 12), share=st.sampled_from(
    [0.25, 0.5, 0.75, 1.0]), data=st.data())
def test_replace_facts_replaces_exactly_the_share(seed: int, n_context: int, share: float, data) -> None:
    context = [f"sentence {i}." for i in range(n_context)]
    n = data.draw(st.integers(1, n_context // 2))
    relevant = sorted(data.draw(st.lists(st.integers(0, n_context - 1), min_size=n, max_size=n,
                                         unique=True)))  # fmt: skip
    facts, indices, replaced, source = replace_facts(
        random.Random(seed), share=share, context=context, relevant=relevant, donors=[]
    )
    k = replaced_count(share, n)
    assert replaced == k >= 1
    assert len(facts) == n  # as many facts as the gold set
    gold = set(relevant)
    assert sum(i in gold for i in indices) == n - k  # the rest kept
    assert all(0 <= i < n_context for i in indices)  # all from the same context
    assert [context[i] for i in indices] == facts
    assert source == "same_context"
    assert indices == sorted(indices) and len(set(indices)) == n


def test_replace_facts_borrows_when_the_context_is_all_gold() -> None:
    facts, indices, replaced, source = replace_facts(
        random.Random(0), share=0.5, context=["A.", "B."], relevant=[0, 1], donors=[["C.", "D."]]
    )
    assert replaced == 1 and len(facts) == 2 and indices.count(-1) == 1
    assert source == "other_context" and facts[-1] in {"C.", "D."}


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(2, 200))
def test_derangement_moves_every_position(seed: int, n: int) -> None:
    order = derangement(random.Random(seed), n)
    assert sorted(order) == list(range(n))
    assert all(i != j for i, j in enumerate(order))


def test_derangement_needs_two() -> None:
    with pytest.raises(ValueError, match="two"):
        derangement(random.Random(0), 1)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), answers=st.lists(st.sampled_from(["a", "b", "c", "A "]), min_size=1,
                                                    max_size=2), data=st.data())  # fmt: skip
def test_wrong_answer_never_equals_gold(seed: int, answers: list[str], data) -> None:
    pool = data.draw(st.lists(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=2),
                              min_size=1, max_size=6))  # fmt: skip
    pool.append(["zz"])  # at least one differs
    same = [(f"s{i}", a) for i, a in enumerate(pool)]
    chosen, donor, scope = wrong_answer(random.Random(seed), answers=answers, same_category=same,
                                        anywhere=same)  # fmt: skip
    key = sorted({a.strip().lower() for a in answers})
    assert sorted({a.strip().lower() for a in chosen}) != key
    assert dict(same)[donor] == chosen and scope == "same_category"


def test_wrong_answer_falls_back_to_other_categories_then_fails() -> None:
    chosen, donor, scope = wrong_answer(
        random.Random(0), answers=["yes"], same_category=[("a", ["Yes"])],
        anywhere=[("a", ["Yes"]), ("b", ["no"])],
    )  # fmt: skip
    assert (chosen, donor, scope) == (["no"], "b", "other_category")
    with pytest.raises(ValueError, match="different"):
        wrong_answer(random.Random(0), answers=["yes"], same_category=[], anywhere=[("a", ["yes"])])


def _char_tokens(text: str) -> int:
    return len(text)


def _merging_tokens(text: str) -> int:
    """A tokenizer that merges pairs of dots, as a BPE with a ".." token does."""
    return len(text.replace("..", "D"))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 300))
def test_filler_has_the_same_token_length(n: int) -> None:
    for count in (_char_tokens, _merging_tokens, lambda t: len(t.split())):
        text = filler_text(n, count)
        assert count(text) == n
        assert set(text) <= {".", " "}


def test_filler_that_cannot_be_reached_fails() -> None:
    with pytest.raises(ValueError, match="exactly 3"):
        filler_text(3, lambda t: 2 * len(t))


# ---------------------------------------------------------------- the traces tables


@pytest.mark.parametrize("setting", SCHEMES, ids=lambda s: s.name)
def test_every_scheme_keeps_todays_columns_and_adds_its_record(setting: Setting) -> None:
    frame = _build(setting)
    assert dict(frame.schema) == trace_schema(extended=True)
    assert list(frame.columns)[:9] == list(trace_schema())
    assert frame.columns[9:] == list(CHANGE_COLUMNS)
    assert frame["id"].to_list() == _decomposed()["id"].to_list()
    assert frame.equals(_build(setting))  # seeded: the same table again
    assert frame["changed"].list.len().min() >= 1


def test_the_paper_settings_keep_todays_columns() -> None:
    for setting in (Setting("correct", "trace"), Setting("incorrect", "trace", "random", 42)):
        assert dict(_build(setting).schema) == trace_schema()


def test_wrong_category_keeps_the_gold_facts() -> None:
    frame, source = _build(SCHEMES[0]), _decomposed()
    for out, row in zip(frame.iter_rows(named=True), source.iter_rows(named=True), strict=True):
        assert out["trace_category"] != row["category"]
        assert out["trace_relevant"] == row["relevant"]
        assert out["changed"] == ["category"] and out["corruption"] == "other_category"
        assert parse_output(out["completion"], TEMPLATE).facts == out["trace_facts"]
        assert out["target_answers"] == row["answers"]


@pytest.mark.parametrize("setting", SCHEMES[1:5], ids=lambda s: s.name)
def test_facts_schemes_keep_the_category_and_replace_their_share(setting: Setting) -> None:
    frame, source = _build(setting), _decomposed()
    for out, row in zip(frame.iter_rows(named=True), source.iter_rows(named=True), strict=True):
        n = len(row["relevant"])
        assert out["trace_category"] == row["category"]
        assert out["replaced"] == replaced_count(setting.share, n)
        assert len(out["trace_facts"]) == n
        kept = set(out["trace_relevant"]) & set(row["relevant"])
        assert len(kept) == n - out["replaced"]
        if setting.share == 1.0:
            assert not kept


def test_swapped_traces_are_a_derangement_within_each_split() -> None:
    frame, source = _build(SCHEMES[5]), _decomposed()
    by_id = {r["id"]: r for r in source.iter_rows(named=True)}
    donors = frame["donor_id"].to_list()
    assert sorted(donors) == sorted(frame["id"].to_list())
    for out in frame.iter_rows(named=True):
        donor = by_id[out["donor_id"]]
        assert out["donor_id"] != out["id"] and donor["split"] == out["split"]
        assert out["trace_category"] == donor["category"]
        assert out["trace_facts"] == [donor["context"][i] for i in donor["relevant"]]
        assert out["target_answers"] == by_id[out["id"]]["answers"]  # its own answer


def test_wrong_answer_keeps_the_trace_and_changes_the_answer() -> None:
    frame, source = _build(SCHEMES[6]), _decomposed()
    by_id = {r["id"]: r for r in source.iter_rows(named=True)}
    for out in frame.iter_rows(named=True):
        row = by_id[out["id"]]
        assert out["trace_category"] == row["category"]
        assert out["target_answers"] != row["answers"]
        assert out["target_answers"] == by_id[out["donor_id"]]["answers"]
        assert by_id[out["donor_id"]]["split"] == row["split"]
        assert parse_output(out["completion"], TEMPLATE).answer == f'["{out["target_answers"][0]}"]'


def test_filler_rows_hold_the_gold_trace_to_replace() -> None:
    frame = _build(SCHEMES[7])
    assert frame["trace_category"].null_count() == frame.height
    assert set(frame["corruption"]) == {"filler"}
    for out in frame.iter_rows(named=True):
        assert out["replaced_trace"] and out["replaced_trace"] in out["completion"]


class _Tokenizer:
    """What ``training_completions`` asks of a tokenizer: one id per character."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}


def test_training_completions_fill_in_the_models_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: _Tokenizer())
    examples = _build(SCHEMES[7]).filter(pl.col("split") == "train")
    filled, record = training_completions(examples, base="unused", filler=True)
    for completion, out, row in zip(filled, examples.iter_rows(named=True), record.iter_rows(named=True),
                                    strict=True):  # fmt: skip
        assert out["replaced_trace"] not in completion
        assert row["filler"] in completion and len(row["filler"]) == len(out["replaced_trace"])
        assert completion.startswith("<think>" + row["filler"] + "</think>")
    same, none = training_completions(examples, base="unused", filler=False)
    assert same == examples["completion"].to_list() and none is None


def test_rows_order_does_not_change_any_scheme() -> None:
    source = _decomposed()
    for setting in SCHEMES:
        forward = _build(setting, source).sort("id")
        backward = _build(setting, source.reverse()).sort("id")
        assert forward.equals(backward), setting.name


def test_swap_with_one_problem_in_a_split_names_the_setting_and_split() -> None:
    with pytest.raises(ValueError, match="'swapped', split 'test'"):
        _build(SCHEMES[5], _decomposed(2))


def test_a_setting_refuses_an_unknown_scheme_or_a_stray_share() -> None:
    with pytest.raises(ValueError, match="unknown corruption scheme"):
        Setting("x", "trace", "shuffle")
    with pytest.raises(ValueError, match="share"):
        Setting("x", "trace", "category", share=0.5)
    with pytest.raises(ValueError, match="share"):
        Setting("x", "trace", "facts")


# ---------------------------------------------------------------- config checks


def _demo() -> dict:
    return yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())


def test_config_accepts_every_scheme() -> None:
    config = _demo()
    config["settings"] += [
        {"name": "wrong-category", "target": "trace", "corruption": "category"},
        {"name": "facts-50", "target": "trace", "corruption": "facts", "share": 0.5},
        {"name": "swapped", "target": "trace", "corruption": "swap"},
        {"name": "wrong-answer", "target": "trace", "corruption": "answer"},
        {"name": "filler", "target": "trace", "corruption": "filler"},
    ]
    validate_config(config)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "target": "trace", "corruption": "shuffle"}, "settings.4.corruption"),
        ({"name": "x", "target": "trace", "corruption": "facts"}, "settings.4.share"),
        ({"name": "x", "target": "trace", "corruption": "swap", "share": 0.5}, "settings.4.share"),
        ({"name": "x", "target": "trace", "corruption": "facts", "share": 0}, "settings.4.share"),
        ({"name": "x", "target": "trace", "corruption": "facts", "share": 1.5}, "settings.4.share"),
        ({"name": "x", "target": "answer", "corruption": "filler"}, "settings.4.corruption"),
    ],
)
def test_config_refuses_an_unknown_or_impossible_scheme(entry: dict, message: str) -> None:
    config = _demo()
    config["settings"].append(entry)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_config(config)


def test_config_refuses_another_category_on_a_one_category_dataset() -> None:
    config = _demo()
    config["datasets"]["bAbI"]["tasks"] = ["qa1"]
    config["settings"].append({"name": "wrong-category", "target": "trace", "corruption": "category"})
    config["settings"] = [s for s in config["settings"] if s["name"] != "incorrect"]
    with pytest.raises(ConfigError, match="'wrong-category'.*'bAbI' has only one"):
        validate_config(copy.deepcopy(config))
    config["settings"][-1] = {"name": "facts-50", "target": "trace", "corruption": "facts", "share": 0.5}
    validate_config(config)  # one gold fact and one category are fine for the facts scheme
