"""The probes' table (booktabs) and figure, from :func:`tracekd.evaluate.probes.probes_table`
(one seed) or :func:`tracekd.evaluate.probes.replicate_probe_measures` (several seeds: the
pooled rows, each share the mean over seeds with its t-interval)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.evaluate.probes import pooled_probe_rows, probe_seed_count
from tracekd.report.names import DISPLAY_NAMES
from tracekd.report.tables import latex_escape, table_head


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_share(row: Mapping[str, Any], key: str, low: str, high: str) -> str:
    """``52.3 [41.0, 63.6]`` from a measures row; the value alone when it has no interval (a
    share only one seed of several has); ``--`` when the value is missing."""
    if _missing(row.get(key)):
        return "--"
    if _missing(row.get(low)) or _missing(row.get(high)):
        return f"{row[key]:.1f}".replace("-", "$-$")
    text = f"{row[key]:.1f} [{row[low]:.1f}, {row[high]:.1f}]"
    return text.replace("-", "$-$")


#: (header, cell) of each column of ``probes_latex`` after dataset, model, setting, probe
PROBE_COLUMNS: tuple[tuple[str, Any], ...] = (
    (r"$n$", lambda row: "--" if _missing(row.get("n")) else str(int(row["n"]))),
    (r"Acc (\%)", lambda row: format_share(row, "accuracy", "accuracy_ci_low", "accuracy_ci_high")),
    (r"Free acc (\%)", lambda row: "--" if _missing(row.get("free_accuracy")) else f"{row['free_accuracy']:.1f}"),
    (r"Changed (\%)", lambda row: format_share(row, "change_rate", "change_ci_low", "change_ci_high")),
    (r"Gain, free trace wrong (pp)", lambda row: format_share(row, "gain", "gain_ci_low", "gain_ci_high")),
    (r"Misled (\%)", lambda row: format_share(row, "misled", "misled_ci_low", "misled_ci_high")),
)  # fmt: skip


def probes_latex(
    rows: pl.DataFrame | Sequence[Mapping[str, Any]],
    *,
    caption: str,
    label: str,
    display_names: Mapping[str, str] | None = None,
) -> str:
    """A booktabs table of the probes' measures, one row per (dataset, model, setting, probe),
    in the order given; a run's names appear on its first row, runs are separated by rules.
    Of a replicated study's table only the pooled rows (``n_seeds`` set) are shown.
    ``caption``/``label`` are inserted as LaTeX, not escaped."""
    if isinstance(rows, pl.DataFrame):
        items = list(pooled_probe_rows(rows).iter_rows(named=True))
    else:
        items = [r for r in rows if "n_seeds" not in r or r["n_seeds"] is not None]
    names = {**DISPLAY_NAMES, **(display_names or {})}

    def show(name: str) -> str:
        return latex_escape(names.get(name, name))

    n_cols = 4 + len(PROBE_COLUMNS)
    lines = table_head(
        caption, label, ["Dataset", "Model", "Setting", "Probe"], [h for h, _ in PROBE_COLUMNS]
    )
    previous: tuple[str, str, str] | None = None
    for row in items:
        run = (row["dataset"], row["model"], row["setting"])
        if previous is None or previous[0] != run[0]:
            lines.append(r"\midrule")
        elif previous != run:
            lines.append(rf"\cmidrule(lr){{2-{n_cols}}}")
        cells = [
            show(run[0]) if previous is None or previous[0] != run[0] else "",
            show(run[1]) if previous is None or previous[:2] != run[:2] else "",
            show(run[2]) if previous != run else "",
            latex_escape(row["probe"]),
            *(cell(row) for _, cell in PROBE_COLUMNS),
        ]
        lines.append(" & ".join(cells) + r" \\")
        previous = run
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def plot_probes(
    table: pl.DataFrame,
    path: Path,
    *,
    dataset: str,
    display_names: Mapping[str, str] | None = None,
) -> None:
    """One dataset's probes as a PNG: a panel per (model, trace setting), rows models, columns
    settings; per probe, answer accuracy and answer-change rate as bars with their 95% bootstrap
    intervals; the dashed line is the free generation's accuracy. A replicated study's table
    shows its pooled rows: the bars are means over seeds, the intervals t-intervals over them.
    Written atomically with stable bytes (:func:`tracekd.report.figures.plot_confusion`'s
    writer)."""
    # here, not at the top: the probe table's job needs no matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tracekd.report.figures import _save_png

    seeds = probe_seed_count(table)
    rows = pooled_probe_rows(table).filter(pl.col("dataset") == dataset)
    if rows.height == 0:
        raise ValueError(f"no probe measures of dataset {dataset!r}")
    names = {**DISPLAY_NAMES, **(display_names or {})}
    models = list(dict.fromkeys(rows["model"].to_list()))
    settings = list(dict.fromkeys(rows["setting"].to_list()))
    fig = Figure(figsize=(1.0 + 4.2 * len(settings), 0.6 + 3.0 * len(models)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(models), len(settings), squeeze=False, sharey=True)
    width = 0.38
    for r, model in enumerate(models):
        for c, setting in enumerate(settings):
            ax = axes[r][c]
            part = rows.filter((pl.col("model") == model) & (pl.col("setting") == setting))
            if part.height == 0:
                ax.text(0.5, 0.5, "no run", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                continue
            probes = part["probe"].to_list()
            xs = list(range(len(probes)))
            for offset, key, low, high, label, colour in (
                (-width / 2, "accuracy", "accuracy_ci_low", "accuracy_ci_high", "accuracy", "#2b6cb0"),
                (width / 2, "change_rate", "change_ci_low", "change_ci_high", "answer changed", "#dd8452"),
            ):  # fmt: skip
                values = [v or 0.0 for v in part[key].to_list()]
                errors = [
                    [v - (lo if lo is not None else v) for v, lo in zip(values, part[low].to_list(), strict=True)],
                    [(hi if hi is not None else v) - v for v, hi in zip(values, part[high].to_list(), strict=True)],
                ]
                ax.bar([x + offset for x in xs], values, width, yerr=errors, capsize=2,
                       color=colour, label=label)  # fmt: skip
            free = part["free_accuracy"][0]
            if free is not None:
                ax.axhline(free, color="black", linestyle="--", linewidth=1, label="free accuracy")
            ax.set_xticks(xs, probes, rotation=35, ha="right", fontsize=8)
            ax.set_ylim(0, 105)
            if r == 0:
                ax.set_title(names.get(setting, setting), fontsize=10)
            if c == 0:
                ax.set_ylabel(f"{names.get(model, model)}\n% of test items")
    axes[0][0].legend(fontsize=7, loc="upper right")
    title = f"{names.get(dataset, dataset)}: answers under forced traces"
    if seeds > 1:
        title += f" (mean of {seeds} seeds, 95% t-intervals over seeds)"
    fig.suptitle(title)
    _save_png(fig, Path(path))
