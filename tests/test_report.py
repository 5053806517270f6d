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

from tracekd.evaluate.stats import CONFUSION_KEYS, confusion_counts
from tracekd.io import write_json
from tracekd.report import plot_confusion, plot_confusion_grid, summarize
from tracekd.report.tables import (
    TABLE2_METRICS,
    format_p,
    grouped_table_latex,
    latex_escape,
    stats_latex,
    table2_latex,
    table3_latex,
    with_lenient,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: the datasets' display names, as the workflow passes them (the plug-ins' names)
DATASET_NAMES = {"CoTemp": "CoTemp QA", "MARCO": "Microsoft MARCO QA", "bAbI": "Facebook bAbI QA"}


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
            "category_lenient": [True] * n,
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
        display_names={"qwen": "Qwen3-1.7B", **DATASET_NAMES},
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


def table_rows(latex: str) -> list[str]:
    """Every line of the tabular that ends a row (``\\\\``): headers and body."""
    return [line for line in latex.splitlines() if line.endswith(r" \\")]


def cotemp_rows() -> list[dict[str, Any]]:
    rows = []
    for model in ("qwen", "llama"):
        for setting in ("prompt", "vanilla", "correct", "incorrect"):
            traced = setting in ("correct", "incorrect")
            trace = dict.fromkeys(
                (
                    "category_accuracy",
                    "ir_accuracy",
                    "category_lenient_accuracy",
                    "ir_lenient_accuracy",
                    "avg_trace_tokens",
                ),
                None,
            )
            if traced:
                trace |= {
                    "category_accuracy": 47.06,
                    "ir_accuracy": 20.5,
                    "category_lenient_accuracy": 60.0,
                    "ir_lenient_accuracy": 78.99,
                    "avg_trace_tokens": 45.8,
                }
            rows.append(
                {
                    "dataset": "CoTemp",
                    "model": model,
                    "setting": setting,
                    "answer_accuracy": 60.33,
                    "answer_f1": 74.88,
                    "answer_precision": 82.15,
                    "answer_recall": 71.3,
                    **trace,
                }
            )
    rows.append(rows[0] | {"dataset": "MARCO"})  # another dataset's row is ignored
    return rows


def test_table2_structure() -> None:
    latex = table2_latex(cotemp_rows(), caption="Cotemporal QA Results", label="tab:table2", dataset="CoTemp")
    lines = latex.splitlines()
    assert r"\label{tab:table2}" in latex and r"\caption{Cotemporal QA Results}" in latex
    n_cols = len(re.search(r"\\begin\{tabular\}\{(\w+)\}", latex).group(1))
    assert n_cols == 2 + 7
    group = lines[lines.index(r"\toprule") + 1]
    assert group == (
        r" &  & \multicolumn{4}{c}{Final Solution Evaluations}"
        r" & \multicolumn{3}{c}{Intermediate Trace Evaluations} \\"
    )
    assert lines[lines.index(r"\toprule") + 2] == r"\cmidrule(lr){3-6}\cmidrule(lr){7-9}"
    header = cells(lines[lines.index(r"\toprule") + 3])
    assert header[:6] == ["Model", "Query Setting", "Accuracy", "F1", "Precision", "Recall"]
    rows = table_rows(latex)
    assert len(rows) == 2 + 2 * 4  # two header rows, models x settings
    # a \multicolumn{k} counts as k columns
    for row in rows:
        spans = sum(int(k) - 1 for k in re.findall(r"\\multicolumn\{(\d+)\}", row))
        assert row.count(" & ") + 1 + spans == n_cols
    body = body_lines(latex)
    assert cells(body[0])[:2] == ["qwen", "Prompt"]
    assert cells(body[0])[2:] == ["60.33", "74.88", "82.15", "71.30", "--", "--", "--"]
    assert cells(body[2])[2:] == ["60.33", "74.88", "82.15", "71.30", "47.06", "20.50", "45.80"]


def test_table2_lenient_columns() -> None:
    latex = table2_latex(cotemp_rows(), caption="c", label="l", dataset="CoTemp", models=["llama"], lenient=True)
    lines = latex.splitlines()
    assert r"\multicolumn{5}{c}{Intermediate Trace Evaluations}" in latex
    assert lines[lines.index(r"\toprule") + 2] == r"\cmidrule(lr){3-6}\cmidrule(lr){7-11}"
    header = cells(lines[lines.index(r"\toprule") + 3])
    assert header[6:] == [
        r"Classification Step Acc (strict, \%)",
        r"Classification Step Acc (lenient, paper, \%)",
        r"IR Step Acc (strict, \%)",
        r"IR Step Acc (lenient, paper, \%)",
        r"Avg Trace Length (\# tokens)",
    ]
    body = body_lines(latex)
    assert len(body) == 4 and all(line.count(" & ") == 10 for line in body)
    assert cells(body[3])[6:] == ["47.06", "60.00", "20.50", "78.99", "45.80"]
    assert cells(body[1])[6:] == ["--"] * 5


def test_table3_lenient_option() -> None:
    rows = [r | {"ir_lenient_accuracy": 90.0 if r["ir_accuracy"] else None} for r in summary_rows()]
    latex = table3_latex(rows, datasets=["MARCO", "bAbI"], caption="c", label="l", lenient=True)
    assert r"\cmidrule(lr){3-8}\cmidrule(lr){9-14}" in latex
    body = body_lines(latex)
    assert all(line.count(" & ") == 2 + 6 * 2 - 1 for line in body)
    # missing lenient category values show as "--", the IR pair reads strict then lenient
    assert cells(body[2])[2:8] == ["33.40", "60.40", "--", "40.60", "90.00", "68.14"]


def test_with_lenient_leaves_other_metrics() -> None:
    assert with_lenient([("answer_accuracy", "Acc")]) == (("answer_accuracy", "Acc"),)
    assert with_lenient([("ir_accuracy", "IR")]) == (
        ("ir_accuracy", "IR (strict)"),
        ("ir_lenient_accuracy", "IR (lenient, paper)"),
    )


def test_summarize_lenient_keys() -> None:
    frame = scores_frame([True, False], [True, True]).with_columns(
        category_lenient=pl.Series([True, False])
    )
    row = summarize(frame, dataset="d", model="m", setting="s", has_trace_target=True)
    assert row["category_lenient_accuracy"] == 50.0 and row["ir_lenient_accuracy"] == 100.0
    blank = summarize(frame, dataset="d", model="m", setting="s", has_trace_target=False)
    assert blank["category_lenient_accuracy"] is None


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (None, "--"),
        (float("nan"), "--"),
        (0.0, "$<$0.001"),
        (0.000999, "$<$0.001"),
        (0.001, "0.001"),
        (0.04567, "0.046"),
        (1.0, "1.000"),
    ],
)
def test_format_p(p: float | None, text: str) -> None:
    assert format_p(p) == text


def stat_row(dataset: str, model: str, setting: str, **values: Any) -> dict[str, Any]:
    base = {
        "dataset": dataset,
        "model": model,
        "setting": setting,
        "n": 950,
        "phi": None,
        "phi_defined": None,
        "phi_ci_low": None,
        "phi_ci_high": None,
        "fisher_p": None,
        "vs_vanilla_p": None,
        "vs_correct_p": None,
    }
    return base | values


def test_stats_latex_formatting() -> None:
    rows = [
        stat_row("CoTemp", "qwen_1", "vanilla"),
        stat_row(
            "CoTemp",
            "qwen_1",
            "correct",
            phi=0.123,
            phi_defined=True,
            phi_ci_low=-0.051,
            phi_ci_high=0.2,
            fisher_p=0.0004,
            vs_vanilla_p=0.0312,
        ),
        stat_row(
            "CoTemp",
            "qwen_1",
            "incorrect",
            phi=0.0,
            phi_defined=False,
            phi_ci_low=0.0,
            phi_ci_high=0.0,
            fisher_p=1.0,
            vs_vanilla_p=0.5,
            vs_correct_p=1e-9,
        ),
        stat_row("CoTemp", "llama", "prompt", vs_vanilla_p=0.2),
        stat_row("bAbI", "llama", "prompt", n=376),
    ]
    latex = stats_latex(
        pl.DataFrame(rows), caption="Association", label="tab:stats", display_names=DATASET_NAMES
    )
    assert latex == stats_latex(rows, caption="Association", label="tab:stats", display_names=DATASET_NAMES)
    lines = latex.splitlines()
    assert r"\begin{tabular}{lllrrrrr}" in lines and r"\label{tab:stats}" in lines
    header = cells(lines[lines.index(r"\toprule") + 1])
    assert header[:4] == ["Dataset", "Model", "Setting", "$n$"]
    assert header[4] == r"$\phi$ [95\% CI]" and len(header) == 8
    rows_tex = table_rows(latex)
    assert len(rows_tex) == 1 + 5 and all(row.count(" & ") == 7 for row in rows_tex)
    body = [cells(row) for row in rows_tex[1:]]
    assert body[0] == ["CoTemp QA", r"qwen\_1", "SFT - Vanilla", "950", "--", "--", "--", "--"]
    assert body[1][3:] == ["950", "0.12 [$-$0.05, 0.20]", "$<$0.001", "0.031", "--"]
    assert body[2][:3] == ["", "", "SFT - Incorrect Trace"]
    assert body[2][4:] == ["--", "--", "0.500", "$<$0.001"]  # undefined phi: no phi, no Fisher
    assert body[3][:2] == ["", "llama"] and body[4][:2] == ["Facebook bAbI QA", "llama"]
    # a rule between models within a dataset, a full rule between datasets
    assert lines.count(r"\cmidrule(lr){2-8}") == 1 and lines.count(r"\midrule") == 2


# --- plot_confusion_grid ------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def grid_counts(datasets: list[str], models: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for i, dataset in enumerate(datasets):
        for j, model in enumerate(models):
            k = 10 * (i + 1) + 7 * j
            trace = [True] * k + [False] * 60 + [True] * 20 + [False] * 15
            answer = [True] * (k + 60) + [False] * 35
            out[(dataset, model)] = confusion_counts(scores_frame(trace, answer))
    return out


def test_plot_confusion_grid_aspect_and_bytes(tmp_path: Path) -> None:
    datasets, models = ["CoTemp", "MARCO", "bAbI"], ["llama", "qwen"]
    path = tmp_path / "figs" / "correct.png"
    plot_confusion_grid(
        grid_counts(datasets, models), path, setting="correct", datasets=datasets, models=models
    )
    first = path.read_bytes()
    assert first.startswith(PNG_MAGIC) and b"Software" not in first
    plot_confusion_grid(
        grid_counts(datasets, models), path, setting="correct", datasets=datasets, models=models
    )
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == ["correct.png"]  # no temporary left

    sizes = {}
    for shape in ((2, 3), (1, 3), (2, 1)):
        rows, cols = models[: shape[0]], datasets[: shape[1]]
        out = tmp_path / f"{shape[0]}x{shape[1]}.png"
        plot_confusion_grid(
            grid_counts(cols, rows), out, setting="incorrect", datasets=cols, models=rows
        )
        sizes[shape] = png_size(out)
    (w23, h23), (w13, h13), (w21, h21) = sizes[(2, 3)], sizes[(1, 3)], sizes[(2, 1)]
    assert w23 > h23 and w13 > 2 * h13 and h21 > w21  # wide for 3 columns, tall for 2 rows
    assert 1.6 < h23 / h13 < 2.4  # a second row of panels about doubles the height
    assert 2.0 < w23 / w21 < 3.2  # three columns against one (plus a shared colour bar)
    assert png_size(path) == sizes[(2, 3)]


def test_plot_confusion_grid_missing_and_stray_runs(tmp_path: Path) -> None:
    counts = grid_counts(["CoTemp"], ["llama"])
    path = tmp_path / "g.png"
    plot_confusion_grid(
        counts, path, setting="correct", datasets=["CoTemp", "bAbI"], models=["llama"]
    )
    assert path.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="outside the"):
        plot_confusion_grid(
            {("llama", "CoTemp"): counts[("CoTemp", "llama")]},
            path,
            setting="correct",
            datasets=["CoTemp"],
            models=["llama"],
        )
    with pytest.raises(ValueError, match="at least one"):
        plot_confusion_grid({}, path, setting="correct", datasets=[], models=["llama"])


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
