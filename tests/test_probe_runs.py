"""Probes run and measured: both engines get the forced ids, the measures, the table, the figure,
the config."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engines import FakeVLLM, fake_vllm  # noqa: F401 (the vLLM stand-in and its fixture)

from tracekd.config import ConfigError, probed_runs, validate_config
from tracekd.datasets import get_dataset
from tracekd.evaluate.probes import (
    PROBES_SCHEMA,
    answer_key,
    names_forced_value,
    probe_measures,
    probes_table,
    run_probe_measures,
    score_probe,
)
from tracekd.evaluate.score import score_predictions
from tracekd.evaluate.stats import bootstrap_mean
from tracekd.model import predict as predict_module
from tracekd.model.chat import ChatFormat, forced_prompt
from tracekd.model.predict import InferenceSpec, predict
from tracekd.model.probe import probe_predictions
from tracekd.model.tiny import build_tiny_model
from tracekd.report.probes import plot_probes, probes_latex
from tracekd.traces import Setting, TraceFormat, TraceTemplate, build_traces
from tracekd.traces.probes import PROBE_COLUMNS, PROBES, build_probes

ROOT = Path(__file__).resolve().parents[1]
FORMAT = TraceFormat(
    TraceTemplate("The category is: {category}.\nFacts: {facts}", "python_list"),
    "Context:\n{context}\nQuestion: {question}\n",
    context="lines",
    answer="text",
)
SPEC = {"vocab_size": 400, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512}  # fmt: skip


def decomposed_rows() -> pl.DataFrame:
    places = ["kitchen", "garden", "office", "hallway", "park"]
    rows = []
    for i in range(6):
        context = [f"Mary{i} went to the {places[(i + k) % 5]}." for k in range(3)]
        rows.append({
            "id": f"q{i}", "split": "train" if i < 2 else "test", "category": ["a", "b"][i % 2],
            "context": context, "question": f"Where is Mary{i}?", "answers": [places[i % 5]],
            "relevant": [0], "task": "qa1",
        })  # fmt: skip
    return pl.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A random tiny model, its traces, and its free predictions (transformers engine)."""
    decomposed = decomposed_rows()
    traces = build_traces(decomposed, setting=Setting("correct", "trace"), fmt=FORMAT)
    base = tmp_path_factory.mktemp("tiny")
    build_tiny_model(traces["prompt"].to_list() + traces["completion"].to_list(), base,
                     {"architecture": "qwen3", **SPEC}, seed=0)  # fmt: skip
    spec = InferenceSpec(engine="transformers", max_new_tokens=6, batch_size=4)
    free = predict(base=str(base), adapter_dir=None, traces=traces, decomposed=decomposed,
                   fmt=ChatFormat(), template=FORMAT.trace, spec=spec, seed=0)  # fmt: skip
    return {"base": str(base), "traces": traces, "decomposed": decomposed, "free": free}


def run_probes(tiny_run: dict[str, Any], probes: list[str], engine: str = "transformers", **kw: Any) -> dict:
    return probe_predictions(
        base=tiny_run["base"], adapter_dir=kw.pop("adapter_dir", None), traces=tiny_run["traces"],
        free=tiny_run["free"], decomposed=tiny_run["decomposed"], fmt=ChatFormat(),
        trace_format=FORMAT, probes=probes,
        spec=InferenceSpec(engine=engine, max_new_tokens=5, batch_size=4), seed=0, probe_seed=3,
    )  # fmt: skip


def test_the_transformers_engine_continues_the_forced_tokens(
    tiny_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[int]] = []
    real = predict_module.generate_transformers

    def spy(model: Any, tokenizer: Any, prompts: list, **kwargs: Any) -> list:
        seen.extend(list(p) for p in prompts)
        assert kwargs["max_new_tokens"] == 5  # the probes' own limit
        return real(model, tokenizer, prompts, **kwargs)

    monkeypatch.setattr(predict_module, "generate_transformers", spy)
    probes = ["gold", "filler", "own-flipped"]
    frames = run_probes(tiny_run, probes)
    free = tiny_run["free"]
    assert list(frames) == probes and len(seen) == 3 * free.height
    tokenizer = predict_module.load_tokenizer(tiny_run["base"])
    table = build_probes(free, tiny_run["decomposed"], probes=probes, fmt=FORMAT, seed=3)
    users = dict(tiny_run["traces"].select("id", "prompt").iter_rows())
    for k, probe in enumerate(probes):
        frame = frames[probe]
        assert frame["id"].to_list() == free["id"].to_list()
        assert set(free.columns) <= set(frame.columns)
        assert set(PROBE_COLUMNS) <= set(frame.columns) and set(frame["probe"]) == {probe}
        for i, row in enumerate(frame.iter_rows(named=True)):
            assert row["output"] == row["forced_text"] + row["generated"]
            assert row["output_tokens"] <= 5
            if probe != "filler":  # the same ids forced_prompt makes (the filler's length differs)
                t = table.filter(pl.col("probe") == probe).row(i, named=True)
                ids = forced_prompt(tokenizer, users[row["id"]], t["forced_completion"], ChatFormat(),
                                    answer_at=t["answer_at"]).input_ids  # fmt: skip
                assert seen[k * free.height + i] == ids
    # the forced trace is what the predictions' trace columns read
    gold = frames["gold"]
    assert gold["pred_category"].to_list() == gold["probe_category"].to_list()
    assert gold["pred_facts"].to_list() == gold["probe_facts"].to_list()
    filler = frames["filler"]
    assert (filler["probe_trace_tokens"] == gold["probe_trace_tokens"]).all()
    assert set(filler["parse_status"]) <= {"bad_trace", "unterminated", "ok"}


def test_probes_rerun_byte_identically(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    first = run_probes(tiny_run, ["gold", "swapped"])
    second = run_probes(tiny_run, ["gold", "swapped"])
    for probe in first:
        a, b = tmp_path / f"a-{probe}.parquet", tmp_path / f"b-{probe}.parquet"
        first[probe].write_parquet(a)
        second[probe].write_parquet(b)
        assert a.read_bytes() == b.read_bytes()


def test_vllm_gets_the_forced_ids_and_the_lora_request(
    tiny_run: dict[str, Any], fake_vllm: FakeVLLM, tmp_path: Path  # noqa: F811
) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    frames = run_probes(tiny_run, ["gold", "no-trace"], engine="vllm", adapter_dir=tmp_path)
    prompts, params = fake_vllm.generate_args
    free = tiny_run["free"]
    assert len(prompts) == 2 * free.height and params["max_tokens"] == 5
    assert fake_vllm.generate_kwargs["lora_request"] == ("adapter", 1, str(tmp_path))
    tokenizer = predict_module.load_tokenizer(tiny_run["base"])
    table = build_probes(free, tiny_run["decomposed"], probes=["gold", "no-trace"], fmt=FORMAT, seed=3)
    users = dict(tiny_run["traces"].select("id", "prompt").iter_rows())
    for prompt, row in zip(prompts, table.iter_rows(named=True), strict=True):
        ids = forced_prompt(tokenizer, users[row["id"]], row["forced_completion"], ChatFormat(),
                            answer_at=row["answer_at"]).input_ids  # fmt: skip
        assert prompt == {"prompt_token_ids": ids}
    # the stand-in's text follows the forced turn
    gold = frames["gold"]
    assert gold["output"].to_list() == [t + '<answer>["x"]</answer>' for t in gold["forced_text"]]
    assert gold["output_tokens"].to_list() == [3] * free.height
    assert frames["no-trace"]["parse_status"].to_list() == ["no_trace"] * free.height


def test_probe_scores_are_the_free_runs_plus_the_probe_columns(tiny_run: dict[str, Any]) -> None:
    frames = run_probes(tiny_run, ["wrong-category"])
    predictions = frames["wrong-category"]
    scores = score_probe(predictions, answer_rule="babi")
    free_scores = score_predictions(tiny_run["free"], answer_rule="babi")
    assert scores.columns == [*free_scores.columns, *PROBE_COLUMNS]
    assert not scores["category_correct"].any()  # the forced category is never the gold one


# ---------------------------------------------------------------- measures


def measured_frames(free_answers: list[str], probe_answers: list[str], golds: list[str], *,
                    probe: str, facts: list[list[str]] | None = None,
                    free_trace_ok: list[bool] | None = None) -> dict[str, pl.DataFrame]:  # fmt: skip
    n = len(golds)
    base = pl.DataFrame({"id": [f"r{i}" for i in range(n)], "answers": [[g] for g in golds],
                         "task": ["qa1"] * n})  # fmt: skip
    free_pred = base.with_columns(pred_answer=pl.Series(free_answers))
    pred = base.with_columns(
        pred_answer=pl.Series(probe_answers), probe=pl.lit(probe),
        probe_facts=pl.Series(facts or [[]] * n, dtype=pl.List(pl.String)),
    )  # fmt: skip

    def scored(answers: list[str]) -> pl.DataFrame:
        return pl.DataFrame({"id": base["id"], "answer_correct": [a == g for a, g in zip(answers, golds, strict=True)],
                             "trace_correct": free_trace_ok or [False] * n})  # fmt: skip

    return {"free_predictions": free_pred, "free_scores": scored(free_answers), "predictions": pred,
            "scores": scored(probe_answers)}  # fmt: skip


def test_accuracy_change_rate_and_gold_gain() -> None:
    frames = measured_frames(
        ["park", "park", "Kitchen.", "x"], ["garden", "park", "the kitchen", "office"],
        ["garden", "park", "kitchen", "office"], probe="gold", free_trace_ok=[False, True, False, False],
    )
    row = probe_measures(**frames, fact_values=None, seed=1, n_boot=1000)
    assert row["n"] == 4 and row["probe"] == "gold"
    assert row["free_accuracy"] == 25.0 and row["accuracy"] == 75.0  # scored here by raw equality
    assert row["change_rate"] == 50.0  # normalized: "Kitchen." and "the kitchen" are one answer
    assert row["n_free_trace_wrong"] == 3 and row["gain"] == pytest.approx(100 * 2 / 3, abs=0.01)
    assert row["accuracy_ci_low"] <= row["accuracy"] <= row["accuracy_ci_high"]
    assert row["misled"] is None and not row["misled_decidable"]
    assert set(row) == set(PROBES_SCHEMA) and row["dataset"] is None  # the caller names the run


def test_misled_share_where_the_dataset_decides_it() -> None:
    facts = [["John went to the office."], ["Sandra took the apple."], ["Mary went to the park."]]
    frames = measured_frames(["garden", "milk", "office"], ["office", "milk", "garden"],
                             ["garden", "milk", "garden"], probe="wrong-facts", facts=facts)  # fmt: skip
    row = probe_measures(**frames, fact_values=get_dataset("babi").fact_values, seed=1, n_boot=1000)
    assert row["misled_decidable"] and row["misled"] == pytest.approx(100 / 3, abs=0.01)
    assert row["misled_free"] == 0.0  # the free "office" is checked against row 2's facts: no park
    assert row["gain"] is None


def test_measures_need_the_same_items() -> None:
    frames = measured_frames(["a", "b"], ["a", "b"], ["a", "b"], probe="gold")
    frames["scores"] = frames["scores"].reverse()
    with pytest.raises(ValueError, match="not the free run's items"):
        probe_measures(**frames, fact_values=None, seed=0, n_boot=1000)


def test_answer_keys_and_forced_values() -> None:
    assert answer_key("The Kitchen.") == answer_key("kitchen") == ("kitchen",)
    assert answer_key("milk,football") == answer_key("['football', 'milk']")
    assert answer_key(None) == () and answer_key("") == ()
    assert names_forced_value("the office", ["office", "park"], ["garden"])
    assert not names_forced_value("garden", ["garden"], ["garden"])  # a gold value misleads nothing
    assert not names_forced_value(None, ["office"], ["garden"])
    assert get_dataset("babi").fact_values(["Mary went to the kitchen.", "The milk is in the office."], {}) == [
        "kitchen", "milk", "office"]  # fmt: skip
    cotemp = get_dataset("cotemp").fact_values(
        ["Alice works for Acme from 1990 to 1995."], {"triple_element": "S1_R1_O2"})
    assert cotemp == ["acme"]
    assert get_dataset("marco").fact_values is None  # free text: not decidable


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.sampled_from([0.0, 1.0, -1.0]), min_size=1, max_size=60), seed=st.integers(0, 2**32 - 1))
def test_bootstrap_mean_interval(values: list[float], seed: int) -> None:
    low, high = bootstrap_mean(np.array(values), n_boot=1000, seed=seed)
    assert min(values) <= low <= high <= max(values)
    assert (low, high) == bootstrap_mean(np.array(values), n_boot=1000, seed=seed)
    if len(set(values)) == 1:
        assert low == high == values[0]


def test_bootstrap_mean_refuses_too_little() -> None:
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_mean(np.array([]), seed=0)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_mean(np.array([1.0]), n_boot=10, seed=0)


# ---------------------------------------------------------------- tables, figure


def measures_table() -> pl.DataFrame:
    runs = {}
    for setting in ("correct", "incorrect"):
        probes = {}
        for probe in ("gold", "swapped"):
            f = measured_frames(["a", "b", "c"], ["a", "x", "c"], ["a", "b", "d"], probe=probe,
                                facts=[["the x"], ["the x"], ["the y"]])  # fmt: skip
            probes[probe] = (f["predictions"], f["scores"])
        runs[("bAbI", "tiny", setting)] = {"free_predictions": f["free_predictions"],
                                           "free_scores": f["free_scores"], "probes": probes}  # fmt: skip
    return run_probe_measures(runs, answer_rules={"bAbI": "babi"}, seed=0, n_boot=1000)


def test_the_probes_table_and_its_latex() -> None:
    table = measures_table()
    assert table.columns == list(PROBES_SCHEMA) and table.height == 4
    assert table["probe"].to_list() == ["gold", "swapped"] * 2
    assert table.filter(pl.col("probe") == "swapped")["misled"].to_list() == [pytest.approx(100 / 3, abs=0.01)] * 2
    tex = probes_latex(table, caption="C", label="tab:probes", display_names={"bAbI": "Facebook bAbI QA"})
    assert tex.startswith("\\begin{table}") and "\\toprule" in tex and "\\bottomrule" in tex
    assert tex.count("\\cmidrule") == 1 and "Facebook bAbI QA" in tex and "SFT - Correct Trace" in tex
    body = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert len(body) == 1 + 4 and all(line.count("&") == 9 for line in body)
    assert probes_table([]).height == 0


def test_the_probes_figure(tmp_path: Path) -> None:
    table = measures_table()
    plot_probes(table, tmp_path / "a.png", dataset="bAbI")
    plot_probes(table, tmp_path / "b.png", dataset="bAbI")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    with pytest.raises(ValueError, match="no probe measures"):
        plot_probes(table, tmp_path / "c.png", dataset="MARCO")


# ---------------------------------------------------------------- config


def demo() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))


def test_probes_in_config() -> None:
    config = demo()
    validate_config(config)
    assert config["probes"] == list(PROBES) and config["probing"]["max_new_tokens"] == 16
    assert probed_runs(config) == [("bAbI", "tiny", "correct"), ("bAbI", "tiny", "incorrect")]
    paper = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    validate_config(paper)
    assert paper["probes"] == list(PROBES) and len(probed_runs(paper)) == 3 * 2 * 2
    off = copy.deepcopy(demo())
    off["probes"] = []
    validate_config(off)
    assert probed_runs(off) == []
    bare = copy.deepcopy(demo())
    del bare["probes"], bare["probing"]
    validate_config(bare)  # defaults: no probes
    assert bare["probes"] == [] and bare["probing"] == {"max_new_tokens": 64, "datasets": None, "seed": 0}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("probes", ["gold", "golden"], r"probes\.1: 'golden' is not one of"),
        ("probes", ["gold", "gold"], r"probes: .* non-unique"),
        ("probing", {"datasets": ["SQuAD"]}, r"probing\.datasets\.0: 'SQuAD' is no configured dataset"),
        ("probing", {"max_new_tokenz": 3}, r"probing\.max_new_tokenz: unknown key"),
    ],
)
def test_probe_config_mistakes_fail_by_name(key: str, value: Any, message: str) -> None:
    config = demo()
    config[key] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(config)
