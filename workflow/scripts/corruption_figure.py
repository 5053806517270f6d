"""Rules corruption_figure and dose_response: one dataset's settings over their seeds."""

from tracekd.report.corruptions import corruption_figure, read_replicates
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    corruption_figure(
        read_replicates(snakemake.params.runs, snakemake.input.scores),
        snakemake.output[0],
        kind=snakemake.params.kind,
        dataset=snakemake.wildcards.dataset,
        settings=snakemake.params.settings,
        models=snakemake.params.models,
        n_boot=snakemake.params.n_boot,
        display_names=snakemake.params.display,
    )
