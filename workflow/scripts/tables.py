"""Rule tables: the paper's Table 3 (LaTeX) and a tidy summary of every run."""

import polars as pl

from tracekd.io import write_parquet, write_text
from tracekd.report import summarize, table3_latex
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    targets = {s["name"]: s["target"] for s in snakemake.params.settings}
    rows = [
        summarize(
            pl.read_parquet(path),
            dataset=run["dataset"],
            model=run["model"],
            setting=run["setting"],
            has_trace_target=targets[run["setting"]] == "trace",
        )
        for run, path in zip(snakemake.params.runs, snakemake.input.scores, strict=True)
    ]
    summary = pl.DataFrame(rows)
    write_parquet(summary, snakemake.output.parquet)
    write_text(summary.write_csv(), snakemake.output.csv)
    latex = table3_latex(
        rows,
        datasets=snakemake.params.table3_datasets,
        models=list(dict.fromkeys(run["model"] for run in snakemake.params.runs)),
        settings=list(targets),
        caption="Final solution and intermediate trace evaluations (the paper's Table 3 layout).",
        label="tab:table3",
    )
    write_text(latex, snakemake.output.table3)
