"""Rule tables: Tables 2 and 3, the statistics table and the tidy summary of every run."""

import polars as pl

from tracekd.io import write_parquet, write_text
from tracekd.report.tables import study_tables
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    runs = [(r["dataset"], r["model"], r["setting"]) for r in snakemake.params.runs]
    tables = study_tables(
        {run: pl.read_parquet(path) for run, path in zip(runs, snakemake.input.scores, strict=True)},
        targets={s["name"]: s["target"] for s in snakemake.params.settings},
        table2_dataset=snakemake.params.table2_dataset,
        table3_datasets=snakemake.params.table3_datasets,
        seed=snakemake.params.seed,
        n_boot=snakemake.params.n_boot,
        display_names=snakemake.params.display,
    )
    write_parquet(tables.summary, snakemake.output.parquet)
    write_text(tables.summary.write_csv(), snakemake.output.csv)
    write_text(tables.table2, snakemake.output.table2)
    write_text(tables.table3, snakemake.output.table3)
    write_text(tables.stats, snakemake.output.stats)
