"""Tests for tracekd.evaluate.reference: the paper's released CoTempQA outputs, read and scored.

The acceptance test recomputes the authors' published scores from their own output files
(``$TRACEKD_REAL_DATA/reference/trace_check_qa/cotempqa``; skipped when absent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tracekd.datasets import get_dataset
from tracekd.datasets.cotemp import relation_from_name
from tracekd.errors import RawFormatError
from tracekd.evaluate.reference import (
    ReleasedRun,
    answer_fact_positions,
    read_trace_check_qa,
    reference_schema,
    run_from_path,
    score_reference,
)

LLAMA = "equal_Llama-3.2-1B-Instruct-sft-adapter_default.json"
QWEN = "equal_Qwen3-1.7B-sft-adapter-reasoning-facts_default.json"
QWEN_INCORRECT = "equal_Qwen3-1.7B-sft-adapter-reasoning-facts-perturbed_default.json"
QWEN_PROMPT = "equal_Qwen3-1.7B_default.json"
BABI_QWEN = "Qwen3-1.7B-sft-adapter-reasoning-facts_default.json"
#: the authors' results_*.json for the released files beside the project (also read from disk)
PUBLISHED = {
    LLAMA: {"acc": 72.4, "f1": 76.8, "p": 79.3, "r": 75.7, "avg": 74.6},
    QWEN: {"acc": 87.4, "f1": 91.3, "p": 93.1, "r": 90.4, "avg": 89.3},
    QWEN_INCORRECT: {"acc": 87.4, "f1": 90.6, "p": 92.0, "r": 89.8, "avg": 89.0},
    QWEN_PROMPT: {"acc": 16.1, "f1": 19.7, "p": 21.8, "r": 18.8, "avg": 17.9},
    BABI_QWEN: {"acc": 96.5, "f1": 96.5, "p": 96.5, "r": 96.5, "avg": 96.5},
}
FOLDER = {BABI_QWEN: "babi"}  # the others are CoTempQA's
DATASET = {"babi": "bAbI", "cotempqa": "CoTemp"}


@pytest.fixture(scope="module")
def reference_root(real_data: Path) -> Path:
    folder = real_data / "reference" / "trace_check_qa"
    if not (folder / "cotempqa").is_dir():
        pytest.skip(f"reference outputs not found at {folder} (set TRACEKD_REAL_DATA)")
    return folder


@pytest.fixture(scope="module")
def reference_dir(reference_root: Path) -> Path:
    return reference_root / "cotempqa"


# --- acceptance: the authors' numbers from their own outputs ----------------------------------


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_scores_equal_the_published_results(reference_root: Path, name: str) -> None:
    """Every released file beside the project, re-scored by the paper's evaluator (2d289d3
    for CoTempQA, babiqa_config for bAbI), gives the published numbers within 0.1."""
    folder = FOLDER.get(name, "cotempqa")
    ours = score_reference(reference_root / folder / f"outputs_{name}", DATASET[folder])
    published = json.loads((reference_root / folder / f"results_{name}").read_text())
    assert published == PUBLISHED[name]
    for key in ("acc", "f1", "p", "r", "avg"):
        assert ours[key] == pytest.approx(published[key], abs=0.1), key
    assert ours["n"] == (376 if folder == "babi" else 87)


def test_every_released_file_beside_the_project_is_covered(reference_root: Path) -> None:
    """The acceptance test above names every outputs file the folder holds."""
    found = {path.name.removeprefix("outputs_") for path in reference_root.glob("*/outputs_*.json")}
    assert found <= set(PUBLISHED), sorted(found - set(PUBLISHED))


def test_the_workflow_rule_on_the_final_answer(reference_root: Path) -> None:
    """Our rules read the final answer alone: the incorrect-trace run is no longer penalised for
    the trace (the old rule, searching from the first " answer " on, gave 33.3 here)."""
    path = reference_root / "cotempqa" / f"outputs_{QWEN_INCORRECT}"
    ours = score_reference(path, "CoTemp", variant="cotempqa")
    assert ours["acc"] == 77.0 and ours["variant"] == "cotempqa"
    babi = score_reference(reference_root / "babi" / f"outputs_{BABI_QWEN}", "bAbI", variant="babi")
    assert babi["acc"] == 96.5


def test_trace_metrics_of_the_reference_files(reference_dir: Path) -> None:
    vanilla = score_reference(reference_dir / f"outputs_{LLAMA}")
    assert vanilla["has_trace"] == 0.0 and vanilla["parse_status"] == {"no_trace": 87}
    assert vanilla["setting"] == "vanilla"
    for key in ("category_acc", "category_lenient", "ir_lenient", "ir_acc", "trace_acc"):
        assert vanilla[key] is None, key  # a run without traces: empty, not 0.0
    prompted = score_reference(reference_dir / f"outputs_{QWEN_PROMPT}")
    assert prompted["setting"] == "prompt" and prompted["category_acc"] is None
    traced = score_reference(reference_dir / f"outputs_{QWEN}")
    assert traced["has_trace"] == 100.0 and traced["parse_status"] == {"ok": 87}
    assert traced["category_acc"] == traced["category_lenient"] == 86.2  # 75 of 87 say "equal"
    assert traced["ir_lenient"] == 100.0  # every trace cites a context fact
    assert traced["ir_acc"] is traced["trace_acc"] is None and traced["gold_facts"] == "none"
    judged = score_reference(reference_dir / f"outputs_{QWEN}", gold_facts="answer_facts")
    assert judged["acc"] == traced["acc"]  # the answer rule does not use gold facts
    assert judged["ir_acc"] is not None and 0.0 < judged["ir_acc"] <= judged["ir_lenient"]
    # the incorrect traces name a bare sentence, not a list: the category still reads
    incorrect = score_reference(reference_dir / f"outputs_{QWEN_INCORRECT}")
    assert incorrect["parse_status"]["bad_facts"] == 74 and incorrect["category_acc"] == 34.5


def test_babi_reference_has_strict_ir(reference_root: Path) -> None:
    result = score_reference(reference_root / "babi" / f"outputs_{BABI_QWEN}", "bAbI")
    assert result["gold_facts"] == "supporting sentences"
    assert result["ir_acc"] == 95.2 and result["category_acc"] == 97.1
    assert result["trace_acc"] is not None and result["trace_acc"] <= result["ir_acc"]


def test_reference_frame(reference_dir: Path) -> None:
    frame = read_trace_check_qa(reference_dir / f"outputs_{QWEN}")
    assert frame.schema == pl.Schema(reference_schema(get_dataset("cotemp")))
    assert frame["category"].unique().to_list() == ["equal"]
    first = frame.row(0, named=True)
    assert first["id"] == f"outputs_{QWEN.removesuffix('.json')}:1"
    assert first["pred_category"] == "equal" and first["pred_answer"] == '["Liberals"]'
    assert first["pred_facts"] == [first["context"][5]]
    assert first["answer_source"] == "answer_tag"
    assert first["output"].startswith("assistant\n<think>") and first["relevant"] is None


# --- the format, on small files ------------------------------------------------------------------


def record(**overrides: Any) -> dict[str, Any]:
    facts = [
        "Ann Lee is a member of the Labour Party in 1990.",
        "Ann Lee is a member of X in 1990.",
    ]
    values: dict[str, Any] = {
        "input": {"text": "<|im_start|>user\nAnswer the question ...<|im_end|>\n"},
        "prediction": (
            "assistant\n<think>\nThe temporal relation between the event in question and the "
            "event in context is: overlap.\nI need to use the following facts to answer the "
            f"question: ['{facts[0]}']\n</think>\n\n <answer>['Labour Party']</answer>"
        ),
        "gold": ["Labour Party"],
        "triple_element": "S1_R1_O2",
        "question": "While Ann Lee was a member of X, which party did Ann Lee belong to?",
        "facts": facts,
    }
    values.update(overrides)
    return values


def write(tmp_path: Path, *lines: str, name: str = "outputs_overlap_Model.json") -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_read_small_file(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(record()), "", json.dumps(record(prediction="['X']")))
    frame = read_trace_check_qa(path)
    assert frame["id"].to_list() == [f"{path.stem}:1", f"{path.stem}:3"]  # blank line skipped
    assert frame["category"].to_list() == ["overlap", "overlap"]
    assert frame["parse_status"].to_list() == ["ok", "no_trace"]
    assert frame["trace_tokens"].null_count() == 2
    scores = score_reference(path)
    assert (scores["acc"], scores["category_acc"], scores["has_trace"]) == (50.0, 50.0, 50.0)


def test_gold_facts_answer_facts(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(record()))
    assert read_trace_check_qa(path)["relevant"].to_list() == [None]
    assert read_trace_check_qa(path, gold_facts="answer_facts")["relevant"].to_list() == [[0]]
    scores = score_reference(path, gold_facts="answer_facts")
    assert scores["ir_acc"] == scores["trace_acc"] == 100.0
    with pytest.raises(ValueError, match="gold_facts"):
        read_trace_check_qa(path, gold_facts="anchor")


def test_answer_fact_positions_is_case_sensitive_substring() -> None:
    facts = ["A is a member of the Liberals in 1990.", "A is a member of the Liberal Party."]
    assert answer_fact_positions(facts, ["Liberals"]) == [0]
    assert answer_fact_positions(facts, ["Liberal"]) == [0, 1]
    assert answer_fact_positions(facts, ["liberals"]) == []


@pytest.mark.parametrize(
    ("name", "relation"),
    [
        ("outputs_equal_Llama-3.2-1B-Instruct-sft-adapter_default.json", "equal"),
        ("outputs_mix_Qwen3_default.json", "mix"),
        ("during.json", "during"),
        ("outputs_Qwen3_default.json", None),
        ("outputs_equality_x.json", None),
    ],
)
def test_relation_from_name(name: str, relation: str | None) -> None:
    assert relation_from_name(Path("/some/dir") / name) == relation


def test_file_without_relation_has_no_category_metrics(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(record()), name="outputs_Model.json")
    assert read_trace_check_qa(path, dataset="CoTemp")["category"].to_list() == [None]
    assert score_reference(path, "CoTemp")["category_acc"] is None
    with pytest.raises(ValueError, match="the path names no dataset; give it"):
        score_reference(path)


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("{not json", r":2: json: not valid JSON"),
        ("[1, 2]", r":2: json: expected an object, got list"),
        (json.dumps({k: v for k, v in record().items() if k != "gold"}), r":2: gold: missing"),
        (json.dumps(record(gold="Labour")), r":2: gold: expected list, got str"),
        (json.dumps(record(facts=["a", 1])), r":2: facts: expected a list of strings"),
        (json.dumps(record(input={"txt": "x"})), r":2: input.text: missing"),
        (json.dumps(record(input=3)), r":2: input: expected dict or str, got int"),
        (json.dumps(record(gold=[])), r":2: gold: no gold answer"),
        (json.dumps(record(gold=[""])), r":2: gold: empty or blank gold answer"),
        (json.dumps(record(gold=["x", " "])), r":2: gold: empty or blank gold answer"),
        (json.dumps(record(triple_element="S3_R1_O1")), r":2: triple_element: unknown question kind"),
        (json.dumps(record(prediction=None)), r":2: prediction: expected str, got NoneType"),
        (json.dumps(record(triple_element=3)), r":2: triple_element: expected str"),
    ],
)
def test_malformed_line_names_file_row_and_field(tmp_path: Path, line: str, where: str) -> None:
    path = write(tmp_path, json.dumps(record()), line)
    with pytest.raises(RawFormatError, match=r"outputs_overlap_Model\.json" + where):
        read_trace_check_qa(path)


def test_empty_file_and_other_datasets(tmp_path: Path) -> None:
    path = write(tmp_path, "", "  ")
    with pytest.raises(RawFormatError, match="rows: no prediction rows"):
        read_trace_check_qa(path)
    with pytest.raises(ValueError, match="released outputs exist for"):
        score_reference(write(tmp_path, json.dumps(record())), dataset="MARCO")
    with pytest.raises(ValueError, match="unknown variant 'babi' for CoTemp"):
        score_reference(write(tmp_path, json.dumps(record())), variant="babi")


def test_prompted_input_is_a_plain_string(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(record(input="Answer the question ...\n")))
    assert read_trace_check_qa(path)["prompt"].to_list() == ["Answer the question ...\n"]


def babi_record(**overrides: Any) -> dict[str, Any]:
    passage = ["Greg is a lion.", "Greg is green.", "Bernhard is a lion.", "Lily is a frog."]
    values: dict[str, Any] = {
        "input": "<|im_start|>user\n...<|im_end|>\n",
        "prediction": (
            "assistant\n<think>\nThe category of the question represents what is being asked in "
            "that question. The category of the question asked is: basic-induction.\nI need to "
            f"use the following text to answer the question: {passage[:3]!r}\n</think>\n\n "
            "<answer>green</answer>"
        ),
        "gold": "green",
        "question": "What color is Bernhard?",
        "query_type": "basic-induction",
        "passage": repr(passage),
        "reasoning": "...",
        "answer_passage": repr(passage[:3]),
    }
    values.update(overrides)
    return values


def test_babi_released_rows(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(babi_record()), json.dumps(babi_record(
        prediction="assistant\n<think>\n</think>\n\n <answer>The answer is green</answer>")),
        name="outputs_babi_Model.json")  # fmt: skip
    frame = read_trace_check_qa(path, dataset="bAbI")
    assert frame["task"].to_list() == ["qa16", "qa16"]
    assert frame["relevant"].to_list() == [[0, 1, 2], [0, 1, 2]]
    paper = score_reference(path, "bAbI")
    # the paper's gate passes ("green" occurs) but the whole answer must equal the gold
    assert paper["acc"] == 50.0 and paper["ir_acc"] == 50.0 and paper["trace_acc"] == 50.0
    assert score_reference(path, "bAbI", variant="babi")["acc"] == 50.0


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"gold": ""}, r":1: gold: empty or blank gold answer"),
        ({"gold": ["green"]}, r":1: gold: expected str, got list"),
        ({"query_type": "chess"}, r":1: query_type: unknown bAbI task name 'chess'"),
        ({"passage": "not a list"}, r":1: passage: not a list literal of strings"),
        ({"passage": "__import__('os')"}, r":1: passage: not a list literal of strings"),
        ({"answer_passage": "['Nobody is here.']"}, r":1: answer_passage: sentence 'Nobody"),
    ],
)
def test_babi_malformed_rows(tmp_path: Path, overrides: dict[str, Any], where: str) -> None:
    path = write(tmp_path, json.dumps(babi_record(**overrides)), name="outputs_b.json")
    with pytest.raises(RawFormatError, match=r"outputs_b\.json" + where):
        read_trace_check_qa(path, dataset="bAbI")


@pytest.mark.parametrize(
    ("path", "run"),
    [
        (
            "results/Cotempqa/evaluation_outputs/during/Llama-3.1-8B-Instruct-sft-adapter-reasoning-facts-perturbed_default.json",
            ReleasedRun("CoTemp", "during", "Llama-3.1-8B-Instruct", "incorrect"),
        ),
        (
            "results/Cotempqa/evaluation_outputs/mix_default/meta-llama_Llama-3.2-1B-Instruct_default_mix.json",
            ReleasedRun("CoTemp", "mix", "Llama-3.2-1B-Instruct", "prompt"),
        ),
        (
            "results/Cotempqa/evaluation_results/equal_default/Qwen_Qwen3-1.7B_default_equal.json",
            ReleasedRun("CoTemp", "equal", "Qwen3-1.7B", "prompt"),
        ),
        (
            "results/Babiqa/evaluation_outputs/Qwen3-1.7B-sft-adapter_default.json",
            ReleasedRun("bAbI", None, "Qwen3-1.7B", "vanilla"),
        ),
        (
            "cotempqa/outputs_equal_Qwen3-1.7B-sft-adapter-reasoning-facts_default.json",
            ReleasedRun("CoTemp", "equal", "Qwen3-1.7B", "correct"),
        ),
        ("cotempqa/outputs_equal_Qwen3-1.7B_default.json", ReleasedRun("CoTemp", "equal", "Qwen3-1.7B", "prompt")),
        ("my_outputs.json", ReleasedRun(None, None, None, None)),
    ],
)
def test_run_from_path(path: str, run: ReleasedRun) -> None:
    assert run_from_path(path) == run
