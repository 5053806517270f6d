"""Figures from per-sample scores: the 2x2 confusion matrix of one run and a setting's grid.

The confusion matrix follows the paper's Figure 2 (x: final answer, y: trace, each
incorrect then correct, as scikit-learn draws ``confusion_matrix(trace, answer)``): the
top-right cell is what the paper calls a false positive, a correct answer after an
incorrect trace. ``plot_confusion`` draws one run, ``plot_confusion_grid`` a setting's
models x datasets (the paper's Figures 2-3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from tracekd.io import atomic_path
from tracekd.report.names import DISPLAY_NAMES


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


def _error(row: Mapping[str, Any], metric: str) -> tuple[float, float]:
    """The (below, above) error bar of a pooled row's metric; none (0, 0) without an interval."""
    mean, low, high = row.get(metric), row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if mean is None or low is None or high is None:
        return 0.0, 0.0
    return max(mean - low, 0.0), max(high - mean, 0.0)


def plot_corruptions(
    pooled: Sequence[Mapping[str, Any]],
    path: Path,
    *,
    dataset: str,
    settings: Sequence[str],
    models: Sequence[str],
    trace_settings: Sequence[str],
    display_names: Mapping[str, str] | None = None,
) -> None:
    """Answer accuracy (and trace accuracy of the trace settings) per setting and model.

    ``pooled`` are one dataset's pooled rows (:func:`tracekd.report.corruptions.replicate_rows`);
    bars are the mean over seeds, error bars its 95% t-interval (none with one seed). Two
    panels: answer accuracy for every setting, trace accuracy for ``trace_settings`` (filler
    writes no trace to check, so it is left out). Written atomically with stable bytes.
    """
    names = {**DISPLAY_NAMES, **(display_names or {})}
    index = {(r["model"], r["setting"]): r for r in pooled if r["dataset"] == dataset}
    fig = Figure(figsize=(max(6.0, 0.75 * len(settings) * max(len(models), 1) + 2.0), 6.4),
                 layout="constrained")  # fmt: skip
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, squeeze=False)[:, 0]
    width = 0.8 / max(len(models), 1)
    for ax, metric, label, shown in (
        (axes[0], "answer_accuracy", "Answer accuracy (%)", list(settings)),
        (axes[1], "trace_accuracy", "Trace accuracy (%)", [s for s in settings if s in trace_settings]),
    ):
        for m, model in enumerate(models):
            xs, heights, errors = [], [], ([], [])
            for x, setting in enumerate(shown):
                row = index.get((model, setting))
                if row is None or row.get(metric) is None:
                    continue
                xs.append(x + (m - (len(models) - 1) / 2) * width)
                heights.append(row[metric])
                below, above = _error(row, metric)
                errors[0].append(below)
                errors[1].append(above)
            ax.bar(xs, heights, width, yerr=errors, capsize=3, label=names.get(model, model))
        ax.set_xticks(range(len(shown)), [names.get(s, s) for s in shown], rotation=30, ha="right")
        ax.set_ylim(0, 100)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"{names.get(dataset, dataset)}: which part of a trace matters")
    _save_png(fig, Path(path))


def plot_dose_response(
    pooled: Sequence[Mapping[str, Any]],
    path: Path,
    *,
    dataset: str,
    doses: Mapping[str, float],
    models: Sequence[str],
    display_names: Mapping[str, str] | None = None,
) -> None:
    """Answer and IR accuracy against the share of gold facts corrupted (0-100 %).

    ``doses`` maps each setting on the curve to its share in percent (``correct`` 0, the facts
    schemes their share, ``wrong-facts`` 100); a line per model, error bars the 95% t-interval
    over seeds (none with one seed). Written atomically with stable bytes.
    """
    names = {**DISPLAY_NAMES, **(display_names or {})}
    index = {(r["model"], r["setting"]): r for r in pooled if r["dataset"] == dataset}
    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, squeeze=False)[0]
    ordered = sorted(doses.items(), key=lambda item: item[1])
    for ax, metric, label in (
        (axes[0], "answer_accuracy", "Answer accuracy (%)"),
        (axes[1], "ir_accuracy", "IR step accuracy (%)"),
    ):
        for model in models:
            points = [(share, index[(model, s)]) for s, share in ordered if (model, s) in index]
            points = [(share, row) for share, row in points if row.get(metric) is not None]
            if not points:
                continue
            bars = [_error(row, metric) for _, row in points]
            ax.errorbar(
                [share for share, _ in points],
                [row[metric] for _, row in points],
                yerr=([b[0] for b in bars], [b[1] for b in bars]),
                marker="o",
                capsize=3,
                label=names.get(model, model),
            )
        ax.set_xticks(sorted(set(doses.values())))
        ax.set_xlim(-5, 105)
        ax.set_ylim(0, 100)
        ax.set_xlabel("Gold facts corrupted in training traces (%)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{names.get(dataset, dataset)}: dose-response of corrupted facts")
    _save_png(fig, Path(path))
