"""Tests for tracekd.report: confusion counts and plot, summaries, LaTeX tables, JSON writing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracekd.io import write_json
from tracekd.report import (
    CONFUSION_KEYS,
    TABLE2_METRICS,
    confusion_counts,
    grouped_table_latex,
    latex_escape,
    plot_confusion,
    summarize,
    table3_latex,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def scores_frame(trace: list[bool], answer: list[bool]) -> pl.DataFrame:
    """A minimal scores frame with every column ``summarize`` reads."""
    n = len(trace)
    return pl.DataFrame(
        {
            "answer_correct": answer,
            "answer_f1": [1.0 if a else 0.5 for a in answer],
            "answer_precision": [1.0] * n,
            "answer_recall": [1.0 if a else 0.0 for a in answer],
            "has_trace": [True] * n,
            "category_correct": [True] * n,
            "ir_correct": trace,
            "ir_lenient": [True] * n,
            "trace_correct": trace,
            "trace_words": [10] * n,
            "trace_tokens": list(range(n)),
        },
        schema_overrides={"trace_words": pl.Int64, "trace_tokens": pl.Int64},
    )


# --- confusion_counts ---------------------------------------------------------------------


def test_confusion_counts_known() -> None:
    trace = [True] * 3 + [False] * 5 + [True] * 1 + [False] * 1
    answer = [True] * 8 + [False] * 2
    result = confusion_counts(scores_frame(trace, answer))
    assert result["n"] == 10
    assert result["counts"] == {
        "trace_correct_answer_correct": 3,
        "trace_correct_answer_wrong": 1,
        "trace_wrong_answer_correct": 5,
        "trace_wrong_answer_wrong": 1,
    }
    assert result["percent"]["trace_wrong_answer_correct"] == 50.0
    assert (result["answer_accuracy"], result["trace_accuracy"]) == (80.0, 40.0)


def test_confusion_counts_empty() -> None:
    result = confusion_counts(scores_frame([], []))
    assert result["n"] == 0 and set(result["counts"].values()) == {0}
    assert set(result["percent"].values()) == {0.0} and result["answer_accuracy"] == 0.0


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=300))
def test_confusion_counts_sum(pairs: list[tuple[bool, bool]]) -> None:
    trace, answer = (list(x) for x in zip(*pairs, strict=True))
    result = confusion_counts(scores_frame(trace, answer))
    assert set(result["counts"]) == set(CONFUSION_KEYS) == set(result["percent"])
    assert sum(result["counts"].values()) == result["n"] == len(pairs)
    assert sum(result["percent"].values()) == pytest.approx(100.0, abs=0.02)
    assert all(round(v, 2) == v for v in result["percent"].values())


# --- plot_confusion -----------------------------------------------------------------------


def test_plot_confusion_writes_a_stable_png(tmp_path: Path) -> None:
    trace = [True] * 30 + [False] * 170 + [True] * 10 + [False] * 30
    answer = [True] * 200 + [False] * 40
    counts = confusion_counts(scores_frame(trace, answer))
    path = tmp_path / "sub" / "confusion.png"
    plot_confusion(counts, path, title="bAbI / llama / correct")
    first = path.read_bytes()
    assert first.startswith(PNG_MAGIC) and len(first) > 5_000
    assert b"Software" not in first  # no version tag: bytes do not depend on the library
    plot_confusion(counts, path, title="bAbI / llama / correct")
    assert path.read_bytes() == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["confusion.png"]  # no tmp left


def test_plot_confusion_empty_counts(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    plot_confusion(confusion_counts(scores_frame([], [])), path, title="n = 0")
    assert path.read_bytes().startswith(PNG_MAGIC)


# --- summarize ----------------------------------------------------------------------------


def test_summarize_with_trace() -> None:
    row = summarize(
        scores_frame([True, False, False, True], [True, True, False, True]),
        dataset="bAbI",
        model="llama",
        setting="correct",
        has_trace_target=True,
    )
    assert row["dataset"] == "bAbI" and row["n"] == 4
    assert row["answer_accuracy"] == 75.0 and row["answer_f1"] == 87.5
    assert row["answer_recall"] == 75.0 and row["answer_precision"] == 100.0
    assert row["trace_accuracy"] == 50.0 and row["ir_accuracy"] == 50.0
    assert row["category_accuracy"] == 100.0 and row["ir_lenient_accuracy"] == 100.0
    assert row["avg_trace_tokens"] == 1.5 and row["avg_trace_words"] == 10.0
    assert row["trace_rate"] == 100.0


def test_summarize_rounds_and_blanks_trace_columns() -> None:
    frame = scores_frame([False] * 3, [True, False, False])
    row = summarize(frame, dataset="MARCO", model="qwen", setting="vanilla", has_trace_target=False)
    assert row["answer_accuracy"] == 33.33
    for key in ("category_accuracy", "ir_accuracy", "trace_accuracy", "avg_trace_tokens"):
        assert row[key] is None
    json.dumps(row)  # plain Python values only


def test_summarize_no_rows() -> None:
    row = summarize(
        scores_frame([], []), dataset="d", model="m", setting="s", has_trace_target=True
    )
    assert row["n"] == 0 and row["answer_accuracy"] is None and row["trace_accuracy"] is None


# --- LaTeX tables -------------------------------------------------------------------------


def summary_rows() -> list[dict[str, Any]]:
    rows = []
    for dataset in ("MARCO", "bAbI"):
        for model in ("qwen", "llama_1b"):
            for setting in ("incorrect", "prompt", "correct", "vanilla"):  # shuffled on purpose
                traced = setting in ("correct", "incorrect")
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "setting": setting,
                        "answer_accuracy": 33.4,
                        "category_accuracy": 60.4 if traced else None,
                        "ir_accuracy": 40.6 if traced else None,
                        "avg_trace_tokens": 68.14 if traced else None,
                    }
                )
    return rows


def body_lines(latex: str) -> list[str]:
    """The table's data rows: the lines after the header's \\midrule, without rules."""
    lines = latex.splitlines()
    start = lines.index(r"\midrule")
    end = lines.index(r"\bottomrule")
    return [line for line in lines[start:end] if not line.startswith("\\midrule")]


def cells(line: str) -> list[str]:
    """The cells of a table row, without its trailing ``\\\\``."""
    return line.removesuffix(r" \\").split(" & ")


def test_table3_structure() -> None:
    latex = table3_latex(
        summary_rows(),
        datasets=["MARCO", "bAbI"],
        caption="Microsoft MARCO QA and Facebook bAbI QA Results",
        label="tab:table3",
        display_names={"qwen": "Qwen3-1.7B"},
    )
    lines = latex.splitlines()
    assert lines[0].startswith(r"\begin{table}") and lines[-1] == r"\end{table}"
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in lines
    assert r"\label{tab:table3}" in latex and r"\caption{Microsoft MARCO" in latex
    n_cols = len(re.search(r"\\begin\{tabular\}\{(\w+)\}", latex).group(1))
    assert n_cols == 2 + 4 * 2
    assert latex.count(r"\cmidrule(lr){3-6}") == 1 and r"\cmidrule(lr){7-10}" in latex
    header = lines[lines.index(r"\toprule") + 3]
    assert header.startswith("Model & Query Setting") and header.count("&") == n_cols - 1
    assert r"Avg Trace Length (\# tokens)" in header and r"Final Solution Acc (\%)" in header
    body = body_lines(latex)
    assert len(body) == 2 * 4  # models x settings
    assert all(line.count("&") == n_cols - 1 and line.endswith(r"\\") for line in body)
    # model name once per block, settings in the paper's order, "--" for untrained traces
    models = [cells(line)[0] for line in body]
    assert models == ["Qwen3-1.7B", "", "", "", r"llama\_1b", "", "", ""]
    settings = [cells(line)[1] for line in body[:4]]
    assert settings == [
        "Prompt",
        "SFT - Vanilla",
        "SFT - Correct Trace",
        "SFT - Incorrect Trace",
    ]
    assert cells(body[0])[2:] == ["33.40", "--", "--", "--"] * 2
    assert cells(body[2])[2:6] == ["33.40", "60.40", "40.60", "68.14"]
    assert r"\multicolumn{4}{c}{Microsoft MARCO QA}" in latex


def test_table3_missing_cells_and_explicit_order() -> None:
    rows = [r for r in summary_rows() if not (r["dataset"] == "bAbI" and r["model"] == "qwen")]
    latex = table3_latex(
        rows,
        datasets=["MARCO", "bAbI"],
        caption="c",
        label="l",
        models=["llama_1b", "qwen"],
        settings=["correct", "extra"],
    )
    body = body_lines(latex)
    assert len(body) == 2 * 2
    assert body[0].startswith(r"llama\_1b & SFT - Correct Trace")
    assert cells(body[1])[1] == "extra"  # unknown names are shown as they are
    assert cells(body[1])[2:] == ["--"] * 8
    assert cells(body[2])[6:] == ["--"] * 4  # qwen has no bAbI summary


def test_table_rejects_duplicate_rows() -> None:
    rows = summary_rows()
    with pytest.raises(ValueError, match="two summary rows"):
        table3_latex([*rows, rows[0]], datasets=["MARCO"], caption="c", label="l")


def test_table2_layout_is_available() -> None:
    rows = [r | {"dataset": "CoTemp"} for r in summary_rows() if r["dataset"] == "MARCO"]
    latex = grouped_table_latex(
        rows, datasets=["CoTemp"], metrics=TABLE2_METRICS, caption="c", label="l"
    )
    assert all(line.count("&") == 2 + len(TABLE2_METRICS) - 1 for line in body_lines(latex))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a_b & c", r"a\_b \& c"),
        ("50% of $x #1 {y}", r"50\% of \$x \#1 \{y\}"),
        ("~^\\", r"\textasciitilde{}\textasciicircum{}\textbackslash{}"),
        ("Qwen3-1.7B", "Qwen3-1.7B"),
    ],
)
def test_latex_escape(text: str, expected: str) -> None:
    assert latex_escape(text) == expected


# --- write_json ---------------------------------------------------------------------------


def test_write_json(tmp_path: Path) -> None:
    path = tmp_path / "new" / "confusion.json"
    write_json({"b": 1, "a": {"d": [1, 2], "c": "é"}}, path)
    text = path.read_text(encoding="utf-8")
    assert (
        text
        == '{\n  "a": {\n    "c": "é",\n    "d": [\n      1,\n      2\n    ]\n  },\n  "b": 1\n}\n'
    )
    write_json([1], path)  # overwrites
    assert json.loads(path.read_text()) == [1]
    assert [p.name for p in path.parent.iterdir()] == ["confusion.json"]


def test_write_json_failure_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_json({"ok": True}, path)
    with pytest.raises(ValueError):
        write_json({"bad": float("nan")}, path)
    with pytest.raises(TypeError):
        write_json({"bad": object()}, path)
    assert json.loads(path.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
