"""Rule confusion: the 2x2 of answer correct x trace correct, as figure and JSON."""

from pathlib import Path

import polars as pl

from tracekd.evaluate.stats import confusion_counts
from tracekd.io import write_json
from tracekd.report import plot_confusion
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    counts = confusion_counts(pl.read_parquet(snakemake.input[0]))
    write_json(counts, snakemake.output.json)
    plot_confusion(counts, Path(snakemake.output.png), title=snakemake.params.title)
