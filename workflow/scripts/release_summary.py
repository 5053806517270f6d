"""Rule release_summary: every released evaluation re-scored, beside the published numbers."""

import polars as pl

from tracekd.evaluate.reference import release_summary
from tracekd.io import write_text
from tracekd.report.tables import release_summary_latex
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    decomposed = snakemake.input.decomposed
    summary = release_summary(
        snakemake.params.release,
        snakemake.input.raw,
        decomposed={snakemake.params.decomposition: pl.read_parquet(decomposed)} if decomposed else None,
    )
    write_text(summary.write_csv(), snakemake.output.csv)
    write_text(release_summary_latex(summary), snakemake.output.tex)
