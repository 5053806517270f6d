"""Rule tables: Tables 2 and 3, the statistics table and the tidy summary of every run."""

from tracekd.io import write_parquet, write_text
from tracekd.report.corruptions import read_replicates, replicated_study_tables
from tracekd.report.tables import study_tables
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    runs = read_replicates(snakemake.params.runs, snakemake.input.scores)
    options = dict(
        targets={s["name"]: s["target"] for s in snakemake.params.settings},
        table2_dataset=snakemake.params.table2_dataset,
        table3_datasets=snakemake.params.table3_datasets,
        n_boot=snakemake.params.n_boot,
        display_names=snakemake.params.display,
    )
    if snakemake.params.replicated:  # per-seed rows and pooled rows, intervals over seeds
        tables = replicated_study_tables(runs, **options)
    else:  # one run per setting, as the paper ran them
        single = {run: next(iter(by_seed.values())) for run, by_seed in runs.items()}
        tables = study_tables(single, seed=snakemake.params.seed, **options)
    write_parquet(tables.summary, snakemake.output.parquet)
    write_text(tables.summary.write_csv(), snakemake.output.csv)
    write_text(tables.table2, snakemake.output.table2)
    write_text(tables.table3, snakemake.output.table3)
    write_text(tables.stats, snakemake.output.stats)
