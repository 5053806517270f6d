"""Rule probe_figure: one dataset's probes, accuracy and answer-change rate per run."""

from pathlib import Path

import polars as pl

from tracekd.report.probes import plot_probes
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    plot_probes(
        pl.read_parquet(snakemake.input[0]),
        Path(snakemake.output[0]),
        dataset=snakemake.wildcards.dataset,
        display_names=snakemake.params.display,
    )
