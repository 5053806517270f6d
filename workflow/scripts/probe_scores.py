"""Rule probe_scores: each probe's per-sample scores, as a free run's plus the probe's columns."""

import polars as pl

from tracekd.evaluate.probes import score_probe
from tracekd.io import write_parquet
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    for source, target in zip(snakemake.input, snakemake.output, strict=True):
        scores = score_probe(
            pl.read_parquet(source),
            answer_rule=snakemake.params.dataset["answer_rule"],
            options=snakemake.params.dataset,
        )
        write_parquet(scores, target)
