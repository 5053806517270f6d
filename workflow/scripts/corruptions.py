"""Rule corruptions: the corruption study's table, each setting over its seeds."""

from tracekd.io import write_text
from tracekd.report.corruptions import corruptions_table, read_replicates
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    write_text(
        corruptions_table(
            read_replicates(snakemake.params.runs, snakemake.input.scores),
            targets=snakemake.params.targets,
            n_boot=snakemake.params.n_boot,
            display_names=snakemake.params.display,
        ),
        snakemake.output[0],
    )
