"""Reports from per-sample scores: 2x2 confusion counts and plot, summary rows, LaTeX tables.

The confusion matrix follows the paper's Figure 2 (x: final answer, y: trace, each
incorrect then correct, as scikit-learn draws ``confusion_matrix(trace, answer)``): the
top-right cell is what the paper calls a false positive, a correct answer after an
incorrect trace. ``plot_confusion`` draws one run, ``plot_confusion_grid`` a setting's
models x datasets (the paper's Figures 2-3). Tables follow the paper's Table 2 and Table 3
layouts in booktabs, optionally with the lenient trace checks beside the strict ones;
``stats_latex`` typesets the rows of ``tracekd.stats.stats_table``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

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

#: Table 2's two column groups: the final answer, then the trace (a split of TABLE2_METRICS)
TABLE2_GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Final Solution Evaluations", TABLE2_METRICS[:4]),
    ("Intermediate Trace Evaluations", TABLE2_METRICS[4:]),
)

#: strict trace metric -> the lenient check of the paper's released evaluation, shown beside it
LENIENT_METRICS: dict[str, str] = {
    "category_accuracy": "category_lenient_accuracy",
    "ir_accuracy": "ir_lenient_accuracy",
}

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


#: the 2x2's cells as drawn: rows trace incorrect / correct, columns answer incorrect / correct
_CELLS = (
    ("trace_wrong_answer_wrong", "trace_wrong_answer_correct"),
    ("trace_correct_answer_wrong", "trace_correct_answer_correct"),
)

#: one colour scale for every panel, fixed to 0-100 % so panels and figures compare
_CMAP = "Blues"


def _draw_confusion(ax: Axes, counts: Mapping[str, Any], *, fontsize: float = 11) -> AxesImage:
    """Draw one 2x2 (``confusion_counts`` output) on ``ax``: heat map, cell texts, ticks.

    Axis labels, title and colour bar are the caller's, which places them per layout.
    """
    grid = [[float(counts["percent"][key]) for key in row] for row in _CELLS]
    image = ax.imshow(grid, cmap=_CMAP, vmin=0.0, vmax=100.0)
    for y, row in enumerate(_CELLS):
        for x, key in enumerate(row):
            red, green, blue, _ = image.cmap(image.norm(grid[y][x]))
            luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
            ax.text(
                x,
                y,
                f"{_short_percent(grid[y][x])}\n(n={counts['counts'][key]})",
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if luminance < 0.5 else "black",
            )
    ax.set_xticks([0, 1], ["Incorrect", "Correct"])
    ax.set_yticks([0, 1], ["Incorrect", "Correct"])
    return image


def _save_png(fig: Figure, path: Path) -> None:
    """Write ``fig`` atomically as a PNG at 150 dpi, without the Software tag (stable bytes)."""
    with atomic_path(path, ".png") as tmp:
        fig.savefig(
            tmp,
            format="png",
            dpi=150,
            bbox_inches="tight",
            pad_inches=0.1,
            metadata={"Software": None},
        )


def plot_confusion(counts: Mapping[str, Any], path: Path, *, title: str) -> None:
    """Draw ``confusion_counts`` output as the paper's 2x2 heat map and save it as a PNG.

    x: final answer (incorrect, correct); y: trace (incorrect on top, correct below). Each
    cell reads ``"12.5%\\n(n=30)"``. The colour scale is a single-hue sequential map fixed to
    0-100 % (panels stay comparable and it reads in greyscale); the text is white on dark
    cells. The file is written atomically, at 150 dpi, without a Software tag, so a rerun on
    the same installation gives the same bytes.
    """
    # a bare Figure with an Agg canvas: no pyplot, so no global backend or figure state
    fig = Figure(figsize=(4.2, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = _draw_confusion(ax, counts)
    ax.set_xlabel("Final solution")
    ax.set_ylabel("Intermediate trace")
    ax.set_title(title, fontsize=10)
    # fraction/pad: the usual recipe for a colour bar as tall as a square image
    fig.colorbar(image, ax=ax, label="% of test samples", fraction=0.046, pad=0.04)
    _save_png(fig, Path(path))


def plot_confusion_grid(
    counts_by_run: Mapping[tuple[str, str], Mapping[str, Any]],
    path: Path,
    *,
    setting: str,
    datasets: Sequence[str],
    models: Sequence[str],
    display_names: Mapping[str, str] | None = None,
    title: str | None = None,
) -> None:
    """One setting's 2x2s as a grid, like the paper's Figures 2-3, saved as a PNG.

    ``counts_by_run`` maps ``(dataset, model)`` to ``confusion_counts`` output. Rows are
    ``models``, columns ``datasets``; each panel is drawn as by ``plot_confusion`` (same
    orientation, cell texts and 0-100 % scale), with one shared colour bar. A missing run
    leaves a blank panel reading "no run"; a key outside the grid raises ``ValueError`` (a
    swapped ``(model, dataset)`` key would otherwise draw an empty figure). The title
    defaults to the setting's display name. Written atomically with stable bytes.
    """
    if not datasets or not models:
        raise ValueError("plot_confusion_grid needs at least one dataset and one model")
    stray = sorted(set(counts_by_run) - {(d, m) for d in datasets for m in models})
    if stray:
        raise ValueError(f"runs outside the (dataset, model) grid: {stray}")
    names = {**DISPLAY_NAMES, **(display_names or {})}
    n_rows, n_cols = len(models), len(datasets)

    # constrained layout keeps the shared colour bar and the labels from overlapping panels
    fig = Figure(figsize=(3.0 * n_cols + 1.0, 2.8 * n_rows + 0.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for row, model in enumerate(models):
        for col, dataset in enumerate(datasets):
            ax = axes[row][col]
            counts = counts_by_run.get((dataset, model))
            if counts is None:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_aspect("equal")
                ax.text(0.5, 0.5, "no run", ha="center", va="center", transform=ax.transAxes)
            else:
                _draw_confusion(ax, counts, fontsize=10)
            if row == 0:
                ax.set_title(names.get(dataset, dataset), fontsize=11)
            if col == 0:
                ax.set_ylabel(f"{names.get(model, model)}\nIntermediate trace")
            if row == n_rows - 1:
                ax.set_xlabel("Final solution")
    scale = ScalarMappable(norm=Normalize(vmin=0.0, vmax=100.0), cmap=_CMAP)
    fig.colorbar(scale, ax=axes, label="% of test samples", shrink=0.8)
    fig.suptitle(title if title is not None else names.get(setting, setting))
    _save_png(fig, Path(path))


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
    answer_recall, category_accuracy, ir_accuracy, trace_accuracy, category_lenient_accuracy,
    ir_lenient_accuracy, avg_trace_words, avg_trace_tokens, trace_rate`` (``trace_rate``: %
    of rows with a trace; ``*_lenient_*``: the paper's released checks, see ``score``).
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
        "category_lenient_accuracy": _mean_percent(scores, "category_lenient"),
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


#: a column group of a summary table: (dataset, header over the group as LaTeX, metrics)
ColumnGroup = tuple[str, str, Sequence[tuple[str, str]]]


def _qualified(header: str, qualifier: str) -> str:
    """``"IR Step Acc (%)"`` + ``"strict"`` -> ``"IR Step Acc (strict, %)"``; else appended."""
    if header.endswith(" (%)"):
        return f"{header.removesuffix(' (%)')} ({qualifier}, %)"
    return f"{header} ({qualifier})"


def with_lenient(metrics: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``metrics`` with each strict trace check followed by its lenient counterpart.

    A metric in ``LENIENT_METRICS`` becomes two columns, e.g. ``IR Step Acc (strict, %)``
    and ``IR Step Acc (lenient, paper, %)``, so a reader never mistakes which is which.
    """
    out: list[tuple[str, str]] = []
    for key, header in metrics:
        if key in LENIENT_METRICS:
            out.append((key, _qualified(header, "strict")))
            out.append((LENIENT_METRICS[key], _qualified(header, "lenient, paper")))
        else:
            out.append((key, header))
    return tuple(out)


def _summary_table_latex(
    rows: Sequence[Mapping[str, Any]],
    *,
    groups: Sequence[ColumnGroup],
    caption: str,
    label: str,
    models: Sequence[str] | None,
    settings: Sequence[str] | None,
    names: Mapping[str, str],
) -> str:
    """The booktabs table behind Tables 2 and 3: one row per model x setting, column groups.

    Each group is a ``\\multicolumn`` header with a ``\\cmidrule`` under it over its metrics'
    columns; a cell reads the group's dataset's summary row (``--`` where none or no value).
    """
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

    n_cols = 2 + sum(len(metrics) for _, _, metrics in groups)
    spans, rules, first = [], [], 3  # LaTeX columns count from 1; two label columns first
    for _, header, metrics in groups:
        spans.append(rf"\multicolumn{{{len(metrics)}}}{{c}}{{{header}}}")
        rules.append(rf"\cmidrule(lr){{{first}-{first + len(metrics) - 1}}}")
        first += len(metrics)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{ll" + "r" * (n_cols - 2) + "}",
        r"\toprule",
        " & ".join(["", "", *spans]) + r" \\",
        "".join(rules),
        " & ".join(
            ["Model", "Query Setting"]
            + [latex_escape(header) for _, _, metrics in groups for _, header in metrics]
        )
        + r" \\",
    ]
    for model in model_order:
        lines.append(r"\midrule")
        for position, setting in enumerate(setting_order):
            cells = [show(model) if position == 0 else "", show(setting)]
            for dataset, _, metrics in groups:
                summary = index.get((dataset, model, setting), {})
                cells += [_cell(summary.get(key)) for key, _ in metrics]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


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
    lenient: bool = False,
) -> str:
    """A booktabs table: one row per model x setting, one column group per dataset.

    ``rows`` are ``summarize`` outputs. Models default to their order in ``rows``;
    settings to ``SETTING_ORDER`` then any others in their order in ``rows``. Every
    model x setting gets a row (``--`` where no summary or no value exists); the model name
    is shown on the first row of its block. ``metrics`` are (summary key, header) pairs;
    ``lenient`` adds the lenient trace checks beside the strict ones (``with_lenient``).
    Names go through ``DISPLAY_NAMES`` updated by ``display_names``, then LaTeX escaping.
    """
    names = {**DISPLAY_NAMES, **(display_names or {})}
    columns = with_lenient(metrics) if lenient else tuple(metrics)
    groups = [(d, latex_escape(names.get(d, d)), columns) for d in datasets]
    return _summary_table_latex(
        rows,
        groups=groups,
        caption=caption,
        label=label,
        models=models,
        settings=settings,
        names=names,
    )


def table2_latex(
    rows: Sequence[Mapping[str, Any]],
    *,
    caption: str,
    label: str,
    dataset: str = "CoTemp",
    models: Sequence[str] | None = None,
    settings: Sequence[str] | None = None,
    display_names: Mapping[str, str] | None = None,
    lenient: bool = False,
) -> str:
    """The paper's Table 2 layout (CoTemp): one dataset, two column groups.

    "Final Solution Evaluations" (answer accuracy, F1, precision, recall) and "Intermediate
    Trace Evaluations" (classification and IR step accuracy, average trace length), each
    with a ``\\cmidrule``; ``dataset`` picks the summary rows. Otherwise as
    ``grouped_table_latex`` (``caption``/``label`` are inserted as LaTeX, not escaped).
    """
    names = {**DISPLAY_NAMES, **(display_names or {})}
    groups = [
        (dataset, header, with_lenient(metrics) if lenient else metrics)
        for header, metrics in TABLE2_GROUPS
    ]
    return _summary_table_latex(
        rows,
        groups=groups,
        caption=caption,
        label=label,
        models=models,
        settings=settings,
        names=names,
    )


def table3_latex(
    rows: Sequence[Mapping[str, Any]],
    *,
    datasets: Sequence[str],
    caption: str,
    label: str,
    models: Sequence[str] | None = None,
    settings: Sequence[str] | None = None,
    display_names: Mapping[str, str] | None = None,
    lenient: bool = False,
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
        lenient=lenient,
    )


def _missing(value: Any) -> bool:
    """True for None and NaN (a cell to show as ``--``)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_p(p: float | None) -> str:
    """A p-value for a LaTeX table: ``$<$0.001`` below 0.001, else 3 decimals; ``--`` if none."""
    if _missing(p):
        return "--"
    # text-mode "<" prints as an inverted exclamation mark in LaTeX's default font encoding
    return "$<$0.001" if p < 0.001 else f"{p:.3f}"


def _signed(value: float) -> str:
    """2 decimals with a typographic minus (``$-$``) for negative values."""
    text = f"{value:.2f}"
    return f"$-${text[1:]}" if text.startswith("-") else text


def format_phi(row: Mapping[str, Any]) -> str:
    """``0.12 [0.05, 0.19]`` from a stats row; ``--`` when phi is missing or undefined."""
    if _missing(row.get("phi")) or not row.get("phi_defined"):
        return "--"
    interval = f"[{_signed(row['phi_ci_low'])}, {_signed(row['phi_ci_high'])}]"
    return f"{_signed(row['phi'])} {interval}"


#: (header, cell formatter) of each column of ``stats_latex`` after dataset, model, setting
STATS_COLUMNS: tuple[tuple[str, Any], ...] = (
    (r"$n$", lambda row: "--" if _missing(row.get("n")) else str(int(row["n"]))),
    (r"$\phi$ [95\% CI]", format_phi),
    (r"Fisher $p$", lambda row: format_p(row.get("fisher_p")) if row.get("phi_defined") else "--"),
    (r"McNemar $p$ vs vanilla", lambda row: format_p(row.get("vs_vanilla_p"))),
    (r"McNemar $p$ vs correct", lambda row: format_p(row.get("vs_correct_p"))),
)


def stats_latex(
    stat_rows: Sequence[Mapping[str, Any]] | pl.DataFrame,
    *,
    caption: str,
    label: str,
    display_names: Mapping[str, str] | None = None,
) -> str:
    """A booktabs table of ``tracekd.stats`` rows, companion to Tables 2-3.

    One row per (dataset, model, setting), in the order given (``stats_table`` sorts them):
    n; phi of trace vs answer correctness with its 95% bootstrap CI and Fisher's exact p
    (``--`` where the setting trains no trace or phi is undefined); McNemar's p of answer
    accuracy against the vanilla setting, and against the correct-trace setting (filled for
    ``incorrect``). Dataset and model names appear on the first row of their block; blocks
    are separated by rules. ``caption``/``label`` are inserted as LaTeX, not escaped.
    """
    rows = (
        list(stat_rows.iter_rows(named=True)) if isinstance(stat_rows, pl.DataFrame) else stat_rows
    )
    names = {**DISPLAY_NAMES, **(display_names or {})}

    def show(name: str) -> str:
        return latex_escape(names.get(name, name))

    n_cols = 3 + len(STATS_COLUMNS)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{lll" + "r" * (n_cols - 3) + "}",
        r"\toprule",
        " & ".join(["Dataset", "Model", "Setting", *(h for h, _ in STATS_COLUMNS)]) + r" \\",
    ]
    previous: tuple[str, str] | None = None
    for row in rows:
        dataset, model = row["dataset"], row["model"]
        if previous is None or previous[0] != dataset:
            lines.append(r"\midrule")
        elif previous[1] != model:
            lines.append(rf"\cmidrule(lr){{2-{n_cols}}}")
        cells = [
            show(dataset) if previous is None or previous[0] != dataset else "",
            show(model) if previous != (dataset, model) else "",
            show(row["setting"]),
            *(format_cell(row) for _, format_cell in STATS_COLUMNS),
        ]
        lines.append(" & ".join(cells) + r" \\")
        previous = (dataset, model)
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
