"""Reports from per-sample scores: 2x2 confusion counts and plot, summary rows, LaTeX tables.

The confusion matrix follows the paper's Figure 2 (x: final answer, y: trace, each
incorrect then correct, as scikit-learn draws ``confusion_matrix(trace, answer)``): the
top-right cell is what the paper calls a false positive, a correct answer after an
incorrect trace. Tables follow the paper's Table 3 (and Table 2) layouts in booktabs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tracekd.io import atomic_path

#: the four cells of the 2x2, keyed as in ``confusion_counts``
CONFUSION_KEYS = (
    "trace_correct_answer_correct",
    "trace_correct_answer_wrong",
    "trace_wrong_answer_correct",
    "trace_wrong_answer_wrong",
)

#: the paper's names for our ids; a name not listed here is shown as it is
DISPLAY_NAMES: dict[str, str] = {
    "prompt": "Prompt",
    "vanilla": "SFT - Vanilla",
    "correct": "SFT - Correct Trace",
    "incorrect": "SFT - Incorrect Trace",
    "CoTemp": "CoTemp QA",
    "MARCO": "Microsoft MARCO QA",
    "bAbI": "Facebook bAbI QA",
}

#: the paper's row order of the settings within a model block
SETTING_ORDER = ("prompt", "vanilla", "correct", "incorrect")

#: (summary key, column header) of each dataset's column group in Table 3
TABLE3_METRICS: tuple[tuple[str, str], ...] = (
    ("answer_accuracy", "Final Solution Acc (%)"),
    ("category_accuracy", "Classification Step Acc (%)"),
    ("ir_accuracy", "IR Step Acc (%)"),
    ("avg_trace_tokens", "Avg Trace Length (# tokens)"),
)

#: the same for Table 2 (CoTemp: the answer's P/R/F1 too), for ``grouped_table_latex``
TABLE2_METRICS: tuple[tuple[str, str], ...] = (
    ("answer_accuracy", "Accuracy"),
    ("answer_f1", "F1"),
    ("answer_precision", "Precision"),
    ("answer_recall", "Recall"),
    ("category_accuracy", "Classification Step Acc (%)"),
    ("ir_accuracy", "IR Step Acc (%)"),
    ("avg_trace_tokens", "Avg Trace Length (# tokens)"),
)

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_SPECIAL_RE = re.compile("|".join(re.escape(char) for char in _LATEX_SPECIALS))


def _percent(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole``, 2 decimals; 0 when ``whole`` is 0."""
    return round(100.0 * part / whole, 2) if whole else 0.0


def confusion_counts(scores: pl.DataFrame) -> dict[str, Any]:
    """The 2x2 of trace correctness against answer correctness, in counts and percent of n.

    Returns ``{"n", "counts": {CONFUSION_KEYS...}, "percent": {same keys},
    "answer_accuracy", "trace_accuracy"}``; percentages have 2 decimals (all 0 when n is 0).
    """
    trace = scores["trace_correct"].fill_null(False)
    answer = scores["answer_correct"].fill_null(False)
    counts = {
        "trace_correct_answer_correct": int((trace & answer).sum()),
        "trace_correct_answer_wrong": int((trace & ~answer).sum()),
        "trace_wrong_answer_correct": int((~trace & answer).sum()),
        "trace_wrong_answer_wrong": int((~trace & ~answer).sum()),
    }
    n = scores.height
    return {
        "n": n,
        "counts": counts,
        "percent": {key: _percent(value, n) for key, value in counts.items()},
        "answer_accuracy": _percent(int(answer.sum()), n),
        "trace_accuracy": _percent(int(trace.sum()), n),
    }


def _short_percent(value: float) -> str:
    """``12.5`` -> ``"12.5%"``, ``25.0`` -> ``"25%"`` (2 decimals at most)."""
    return f"{value:.2f}".rstrip("0").rstrip(".") + "%"


def plot_confusion(counts: Mapping[str, Any], path: Path, *, title: str) -> None:
    """Draw ``confusion_counts`` output as the paper's 2x2 heat map and save it as a PNG.

    x: final answer (incorrect, correct); y: trace (incorrect on top, correct below). Each
    cell reads ``"12.5%\\n(n=30)"``. The colour scale is a single-hue sequential map fixed to
    0-100 % (panels stay comparable and it reads in greyscale); the text is white on dark
    cells. The file is written atomically, at 150 dpi, without a Software tag, so a rerun on
    the same installation gives the same bytes.
    """
    path = Path(path)
    cells = [
        ["trace_wrong_answer_wrong", "trace_wrong_answer_correct"],
        ["trace_correct_answer_wrong", "trace_correct_answer_correct"],
    ]
    grid = [[float(counts["percent"][key]) for key in row] for row in cells]

    # a bare Figure with an Agg canvas: no pyplot, so no global backend or figure state
    fig = Figure(figsize=(4.2, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="Blues", vmin=0.0, vmax=100.0)
    for y, row in enumerate(cells):
        for x, key in enumerate(row):
            red, green, blue, _ = image.cmap(image.norm(grid[y][x]))
            luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
            ax.text(
                x,
                y,
                f"{_short_percent(grid[y][x])}\n(n={counts['counts'][key]})",
                ha="center",
                va="center",
                fontsize=11,
                color="white" if luminance < 0.5 else "black",
            )
    ax.set_xticks([0, 1], ["Incorrect", "Correct"])
    ax.set_yticks([0, 1], ["Incorrect", "Correct"])
    ax.set_xlabel("Final solution")
    ax.set_ylabel("Intermediate trace")
    ax.set_title(title, fontsize=10)
    # fraction/pad: the usual recipe for a colour bar as tall as a square image
    fig.colorbar(image, ax=ax, label="% of test samples", fraction=0.046, pad=0.04)

    with atomic_path(path, ".png") as tmp:
        fig.savefig(
            tmp,
            format="png",
            dpi=150,
            bbox_inches="tight",
            pad_inches=0.1,
            metadata={"Software": None},
        )


def _mean_percent(scores: pl.DataFrame, column: str) -> float | None:
    """Mean of a boolean or 0..1 column in percent, 2 decimals; ``None`` with no rows."""
    if scores.height == 0:
        return None
    return round(100.0 * float(scores[column].cast(pl.Float64).fill_null(0.0).mean()), 2)


def _mean(scores: pl.DataFrame, column: str) -> float | None:
    """Mean of a numeric column, 2 decimals; ``None`` with no rows."""
    if scores.height == 0:
        return None
    return round(float(scores[column].cast(pl.Float64).fill_null(0.0).mean()), 2)


def summarize(
    scores: pl.DataFrame, *, dataset: str, model: str, setting: str, has_trace_target: bool
) -> dict[str, Any]:
    """One summary row (percentages with 2 decimals) of a run's per-sample scores.

    Keys: ``dataset, model, setting, n, answer_accuracy, answer_f1, answer_precision,
    answer_recall, category_accuracy, ir_accuracy, trace_accuracy, ir_lenient_accuracy,
    avg_trace_words, avg_trace_tokens, trace_rate`` (``trace_rate``: % of rows with a trace).
    Averages are over all rows (a row with no trace counts 0). The trace keys are ``None``
    when the setting does not train a trace (``prompt``, ``vanilla``: the paper's "-"), and
    every metric is ``None`` when there are no rows.
    """
    row: dict[str, Any] = {
        "dataset": dataset,
        "model": model,
        "setting": setting,
        "n": scores.height,
        "answer_accuracy": _mean_percent(scores, "answer_correct"),
        "answer_f1": _mean_percent(scores, "answer_f1"),
        "answer_precision": _mean_percent(scores, "answer_precision"),
        "answer_recall": _mean_percent(scores, "answer_recall"),
    }
    trace = {
        "category_accuracy": _mean_percent(scores, "category_correct"),
        "ir_accuracy": _mean_percent(scores, "ir_correct"),
        "trace_accuracy": _mean_percent(scores, "trace_correct"),
        "ir_lenient_accuracy": _mean_percent(scores, "ir_lenient"),
        "avg_trace_words": _mean(scores, "trace_words"),
        "avg_trace_tokens": _mean(scores, "trace_tokens"),
        "trace_rate": _mean_percent(scores, "has_trace"),
    }
    row.update(trace if has_trace_target else dict.fromkeys(trace))
    return row


def latex_escape(text: str) -> str:
    """``text`` with the LaTeX special characters escaped (``&`` -> ``\\&``, ...)."""
    return _LATEX_SPECIAL_RE.sub(lambda match: _LATEX_SPECIALS[match.group(0)], text)


def _cell(value: Any) -> str:
    """A table cell: 2 decimals, ``--`` for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if isinstance(value, (int, float)):
        return f"{value:.2f}"
    return latex_escape(str(value))


def _ordered(present: Sequence[str], preferred: Sequence[str]) -> list[str]:
    """``present`` names, those in ``preferred`` first in its order, then the rest as met."""
    unique = list(dict.fromkeys(present))
    return [name for name in preferred if name in unique] + [
        name for name in unique if name not in preferred
    ]


def grouped_table_latex(
    rows: Sequence[Mapping[str, Any]],
    *,
    datasets: Sequence[str],
    metrics: Sequence[tuple[str, str]],
    caption: str,
    label: str,
    models: Sequence[str] | None = None,
    settings: Sequence[str] | None = None,
    display_names: Mapping[str, str] | None = None,
) -> str:
    """A booktabs table: one row per model x setting, one column group per dataset.

    ``rows`` are ``summarize`` outputs. Models default to their order in ``rows``;
    settings to ``SETTING_ORDER`` then any others in their order in ``rows``. Every
    model x setting gets a row (``--`` where no summary or no value exists); the model name
    is shown on the first row of its block. ``metrics`` are (summary key, header) pairs.
    Names go through ``DISPLAY_NAMES`` updated by ``display_names``, then LaTeX escaping.
    """
    names = {**DISPLAY_NAMES, **(display_names or {})}
    index: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for row in rows:
        key = (row["dataset"], row["model"], row["setting"])
        if key in index:
            raise ValueError(f"two summary rows for dataset/model/setting {key}")
        index[key] = row
    model_order = list(models) if models is not None else _ordered([r["model"] for r in rows], [])
    setting_order = (
        list(settings)
        if settings is not None
        else _ordered([r["setting"] for r in rows], SETTING_ORDER)
    )

    def show(name: str) -> str:
        return latex_escape(names.get(name, name))

    width = len(metrics)
    n_cols = 2 + width * len(datasets)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{ll" + "r" * (n_cols - 2) + "}",
        r"\toprule",
        " & ".join(["", ""] + [rf"\multicolumn{{{width}}}{{c}}{{{show(d)}}}" for d in datasets])
        + r" \\",
        "".join(
            rf"\cmidrule(lr){{{3 + i * width}-{2 + (i + 1) * width}}}" for i in range(len(datasets))
        ),
        " & ".join(
            ["Model", "Query Setting"]
            + [latex_escape(header) for _ in datasets for _, header in metrics]
        )
        + r" \\",
    ]
    for model in model_order:
        lines.append(r"\midrule")
        for position, setting in enumerate(setting_order):
            cells = [show(model) if position == 0 else "", show(setting)]
            for dataset in datasets:
                summary = index.get((dataset, model, setting), {})
                cells += [_cell(summary.get(key)) for key, _ in metrics]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def table3_latex(
    rows: Sequence[Mapping[str, Any]],
    *,
    datasets: Sequence[str],
    caption: str,
    label: str,
    models: Sequence[str] | None = None,
    settings: Sequence[str] | None = None,
    display_names: Mapping[str, str] | None = None,
) -> str:
    """The paper's Table 3 layout: per dataset, final answer, classification and IR step
    accuracy (%) and average trace length (# tokens); see ``grouped_table_latex``.

    ``caption`` and ``label`` are inserted as LaTeX (not escaped), so a caption may use markup.
    """
    return grouped_table_latex(
        rows,
        datasets=datasets,
        metrics=TABLE3_METRICS,
        caption=caption,
        label=label,
        models=models,
        settings=settings,
        display_names=display_names,
    )
