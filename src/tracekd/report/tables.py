"""The study's tables from its score files: summary rows, the paper's Table 2 and Table 3
layouts in booktabs (optionally with the lenient trace checks beside the strict ones), the
statistics table (``stats_latex`` typesets the rows of :func:`tracekd.evaluate.stats.stats_table`)
and the tidy summary of every run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from tracekd.evaluate.stats import run_stats, stats_table
from tracekd.report.names import DISPLAY_NAMES
from tracekd.traces import SETTING_ORDER

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
ColumnGroup = tuple[str, str | None, Sequence[tuple[str, str]]]


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
    display_names: Mapping[str, str] | None,
    lenient: bool,
) -> str:
    """The booktabs table behind Tables 2 and 3: one row per model x setting, column groups.

    Each group is a ``\\multicolumn`` header with a ``\\cmidrule`` under it over its metrics'
    columns (``lenient``: the lenient trace checks beside the strict ones); a group's header
    ``None`` is its dataset's display name; a cell reads the group's dataset's summary row
    (``--`` where none or no value).
    """
    names = {**DISPLAY_NAMES, **(display_names or {})}
    groups = [
        (dataset, header if header is not None else latex_escape(names.get(dataset, dataset)),
         with_lenient(metrics) if lenient else tuple(metrics))
        for dataset, header, metrics in groups
    ]  # fmt: skip
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
    groups = [(dataset, None, metrics) for dataset in datasets]
    return _summary_table_latex(
        rows, groups=groups, caption=caption, label=label, models=models, settings=settings,
        display_names=display_names, lenient=lenient,
    )  # fmt: skip


def table2_latex(
    rows: Sequence[Mapping[str, Any]],
    *,
    caption: str,
    label: str,
    dataset: str,
    models: Sequence[str] | None = None,
    settings: Sequence[str] | None = None,
    display_names: Mapping[str, str] | None = None,
    lenient: bool = False,
) -> str:
    """The paper's Table 2 layout (its CoTempQA table): one dataset, two column groups.

    "Final Solution Evaluations" (answer accuracy, F1, precision, recall) and "Intermediate
    Trace Evaluations" (classification and IR step accuracy, average trace length), each
    with a ``\\cmidrule``; ``dataset`` picks the summary rows. Otherwise as
    ``grouped_table_latex`` (``caption``/``label`` are inserted as LaTeX, not escaped).
    """
    groups = [(dataset, header, metrics) for header, metrics in TABLE2_GROUPS]
    return _summary_table_latex(
        rows, groups=groups, caption=caption, label=label, models=models, settings=settings,
        display_names=display_names, lenient=lenient,
    )  # fmt: skip


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


def table_head(
    caption: str, label: str, labels: Sequence[str], values: Sequence[str]
) -> list[str]:
    """The opening lines of a booktabs table: ``labels`` left-aligned columns, then ``values``
    right-aligned ones, and their header row (headers and caption inserted as LaTeX)."""
    return [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{" + "l" * len(labels) + "r" * len(values) + "}",
        r"\toprule",
        " & ".join([*labels, *values]) + r" \\",
    ]


def stats_latex(
    stat_rows: Sequence[Mapping[str, Any]] | pl.DataFrame,
    *,
    caption: str,
    label: str,
    display_names: Mapping[str, str] | None = None,
) -> str:
    """A booktabs table of ``tracekd.evaluate.stats`` rows, companion to Tables 2-3.

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
    lines = table_head(
        caption, label, ["Dataset", "Model", "Setting"], [h for h, _ in STATS_COLUMNS]
    )
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


Run = tuple[str, str, str]  # (dataset, model, setting)


@dataclass(frozen=True)
class StudyTables:
    """Everything the ``tables`` rule writes."""

    summary: pl.DataFrame  # one row per run: summarize() metrics joined with the statistics
    table2: str
    table3: str
    stats: str


def study_tables(
    scores: Mapping[Run, pl.DataFrame],
    *,
    targets: Mapping[str, str],
    table2_dataset: str,
    table3_datasets: Sequence[str],
    seed: int,
    n_boot: int = 2000,
    display_names: Mapping[str, str] | None = None,
) -> StudyTables:
    """Summaries, statistics and the LaTeX tables of every (dataset, model, setting) run.

    ``targets`` maps each setting to what it trains on (``none``/``answer``/``trace``); runs
    whose setting trains no trace show "--" in the trace columns, as in the paper. Strict and
    lenient (the paper's released code) trace accuracies stand side by side, labelled.
    ``display_names`` names the datasets (and any setting) as the tables should print them.
    """
    runs = list(scores)
    rows = [
        summarize(frame, dataset=d, model=m, setting=s, has_trace_target=targets[s] == "trace")
        for (d, m, s), frame in scores.items()
    ]
    stat_rows = run_stats(
        scores, trace_settings=[s for s, t in targets.items() if t == "trace"], seed=seed, n_boot=n_boot
    )
    stats = stats_table(stat_rows)
    keys = ["dataset", "model", "setting"]
    summary = pl.DataFrame(rows).join(
        stats.drop([c for c in stats.columns if c in rows[0] and c not in keys]),
        on=keys,
        how="left",
        maintain_order="left",
    )
    # an undefined phi (trace or answer correctness constant) is no number: empty in
    # summary.csv, as stats.tex shows "--", never "0.0 [0.0, 0.0]"
    undefined = pl.col("phi_defined").fill_null(True).not_()
    summary = summary.with_columns(
        pl.when(undefined).then(None).otherwise(pl.col(name)).alias(name)
        for name in ("phi", "phi_ci_low", "phi_ci_high")
    )
    models = list(dict.fromkeys(m for _, m, _ in runs))
    settings = list(targets)
    table2 = table2_latex(
        rows,
        display_names=display_names,
        dataset=table2_dataset,
        models=models,
        settings=settings,
        lenient=True,
        caption=f"{table2_dataset}: final solution and intermediate trace evaluations "
        "(the paper's Table 2 layout; strict and lenient trace accuracy side by side).",
        label="tab:table2",
    )
    table3 = table3_latex(
        rows,
        display_names=display_names,
        datasets=table3_datasets,
        models=models,
        settings=settings,
        lenient=True,
        caption="Final solution and intermediate trace evaluations (the paper's Table 3 layout; "
        "strict and lenient trace accuracy side by side).",
        label="tab:table3",
    )
    stats_tex = stats_latex(
        stats,
        display_names=display_names,
        caption="Association between trace and answer correctness: phi with a seeded bootstrap "
        f"95\\% CI ({n_boot} resamples), Fisher's exact test, and McNemar's test of answer "
        "accuracy against the vanilla and correct-trace settings on the same test items.",
        label="tab:stats",
    )
    return StudyTables(summary=summary, table2=table2, table3=table3, stats=stats_tex)


def _tex_number(value: Any) -> str:
    return "--" if value is None else f"{value:.1f}"


def release_summary_latex(summary: pl.DataFrame) -> str:
    """The summary as a booktabs table: accuracy published / ours under the paper's evaluator /
    ours under the dataset's rule, the paper's table value, and the trace metrics."""
    lines = [
        r"\begin{table}[t]",
        r"\centering\small",
        r"\caption{The paper's released evaluations re-scored. Accuracy (\%): published, the "
        r"paper's evaluator re-run, the dataset's own rule on the final answer alone, and the "
        r"paper's table; trace metrics (\%): category strict / lenient, IR lenient / strict.}",
        r"\label{tab:reference}",
        r"\begin{tabular}{llllrrrrrrr}",
        r"\toprule",
        r"Data & Relation & Model & Setting & Published & Paper rule & Own rule & Table & "
        r"Category & Cat.\ (len.) & IR (len.) / IR \\",
        r"\midrule",
    ]
    for row in summary.iter_rows(named=True):
        cells = [
            latex_escape(row["dataset"]), latex_escape(row["relation"] or "--"),
            latex_escape(row["model"] or "--"), latex_escape(row["setting"] or "--"),
            _tex_number(row["published_acc"]), _tex_number(row["paper_acc"]),
            _tex_number(row["ours_acc"]), _tex_number(row["table_acc"]),
            _tex_number(row["category_acc"]), _tex_number(row["category_lenient"]),
            f"{_tex_number(row['ir_lenient'])} / {_tex_number(row['ir_acc'])}",
        ]  # fmt: skip
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
