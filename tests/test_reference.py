"""Tests for tracekd.reference: the paper's released CoTempQA outputs, read and scored.

The acceptance test recomputes the authors' published scores from their own output files
(``$TRACEKD_REAL_DATA/reference/trace_check_qa/cotempqa``; skipped when absent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tracekd.errors import RawFormatError
from tracekd.reference import (
    REFERENCE_SCHEMA,
    answer_fact_positions,
    read_trace_check_qa,
    relation_from_name,
    score_reference,
)

LLAMA = "equal_Llama-3.2-1B-Instruct-sft-adapter_default.json"
QWEN = "equal_Qwen3-1.7B-sft-adapter-reasoning-facts_default.json"
#: the authors' results_*.json for the two files (also read from disk below)
PUBLISHED = {
    LLAMA: {"acc": 72.4, "f1": 76.8, "p": 79.3, "r": 75.7, "avg": 74.6},
    QWEN: {"acc": 87.4, "f1": 91.3, "p": 93.1, "r": 90.4, "avg": 89.3},
}


@pytest.fixture(scope="module")
def reference_dir(real_data: Path) -> Path:
    folder = real_data / "reference" / "trace_check_qa" / "cotempqa"
    if not folder.is_dir():
        pytest.skip(f"reference outputs not found at {folder} (set TRACEKD_REAL_DATA)")
    return folder


# --- acceptance: the authors' numbers from their own outputs ----------------------------------


@pytest.mark.parametrize("name", [LLAMA, QWEN])
def test_scores_equal_the_published_results(reference_dir: Path, name: str) -> None:
    ours = score_reference(reference_dir / f"outputs_{name}")
    published = json.loads((reference_dir / f"results_{name}").read_text())
    assert published == PUBLISHED[name]
    for key in ("acc", "f1", "p", "r", "avg"):
        assert ours[key] == pytest.approx(published[key], abs=0.05), key
    assert ours["n"] == 87


def test_trace_metrics_of_the_reference_files(reference_dir: Path) -> None:
    vanilla = score_reference(reference_dir / f"outputs_{LLAMA}")
    assert vanilla["has_trace"] == 0.0 and vanilla["parse_status"] == {"no_trace": 87}
    assert vanilla["category_acc"] == 0.0 and vanilla["ir_acc"] is None
    traced = score_reference(reference_dir / f"outputs_{QWEN}")
    assert traced["has_trace"] == 100.0 and traced["parse_status"] == {"ok": 87}
    assert traced["category_acc"] == traced["category_lenient"] == 86.2  # 75 of 87 say "equal"
    assert traced["ir_acc"] is traced["trace_acc"] is None and traced["gold_facts"] == "none"
    judged = score_reference(reference_dir / f"outputs_{QWEN}", gold_facts="answer_facts")
    assert judged["acc"] == traced["acc"]  # the answer rule does not use gold facts
    assert judged["ir_acc"] is not None and 0.0 < judged["ir_acc"] <= judged["ir_lenient"]


def test_reference_frame(reference_dir: Path) -> None:
    frame = read_trace_check_qa(reference_dir / f"outputs_{QWEN}")
    assert frame.schema == pl.Schema(REFERENCE_SCHEMA)
    assert frame["category"].unique().to_list() == ["equal"]
    first = frame.row(0, named=True)
    assert first["id"] == f"outputs_{QWEN.removesuffix('.json')}:1"
    assert first["pred_category"] == "equal" and first["pred_answer"] == '["Liberals"]'
    assert first["pred_facts"] == [first["context"][5]]
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


def write(tmp_path: Path, *lines: str, name: str = "outputs_overlap_Model_default.json") -> Path:
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
    path = write(tmp_path, json.dumps(record()), name="outputs_Model_default.json")
    assert read_trace_check_qa(path)["category"].to_list() == [None]
    assert score_reference(path)["category_acc"] is None


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("{not json", r":2: json: not valid JSON"),
        ("[1, 2]", r":2: json: expected an object, got list"),
        (json.dumps({k: v for k, v in record().items() if k != "gold"}), r":2: gold: missing"),
        (json.dumps(record(gold="Labour")), r":2: gold: expected list, got str"),
        (json.dumps(record(facts=["a", 1])), r":2: facts: expected a list of strings"),
        (json.dumps(record(input={"txt": "x"})), r":2: input.text: missing"),
        (json.dumps(record(input="x")), r":2: input: expected dict"),
        (json.dumps(record(prediction=None)), r":2: prediction: expected str, got NoneType"),
        (json.dumps(record(triple_element=3)), r":2: triple_element: expected str"),
    ],
)
def test_malformed_line_names_file_row_and_field(tmp_path: Path, line: str, where: str) -> None:
    path = write(tmp_path, json.dumps(record()), line)
    with pytest.raises(RawFormatError, match=r"outputs_overlap_Model_default\.json" + where):
        read_trace_check_qa(path)


def test_empty_file_and_other_datasets(tmp_path: Path) -> None:
    path = write(tmp_path, "", "  ")
    with pytest.raises(RawFormatError, match="rows: no prediction rows"):
        read_trace_check_qa(path)
    with pytest.raises(ValueError, match="CoTemp"):
        score_reference(write(tmp_path, json.dumps(record())), dataset="bAbI")
