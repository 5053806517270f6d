"""Rule confusion_grid: one figure per setting, datasets x models, like the paper's Figs. 2-3."""

import json
from pathlib import Path

from tracekd.report import plot_confusion_grid
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    counts = {
        (run["dataset"], run["model"]): json.loads(Path(path).read_text())
        for run, path in zip(snakemake.params.runs, snakemake.input, strict=True)
    }
    plot_confusion_grid(
        counts,
        Path(snakemake.output[0]),
        setting=snakemake.wildcards.setting,
        datasets=snakemake.params.datasets,
        models=snakemake.params.models,
        display_names=snakemake.params.display,
    )
