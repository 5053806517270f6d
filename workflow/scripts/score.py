"""Rule score: per-sample answer and trace scores."""

import polars as pl

from tracekd.io import write_parquet
from tracekd.runlog import logged
from tracekd.score import score_predictions

with logged(snakemake.log[0]):
    predictions = pl.read_parquet(snakemake.input[0])
    scores = score_predictions(
        predictions, answer_rule=snakemake.params.answer_rule, **snakemake.params.answer_options
    )
    write_parquet(scores, snakemake.output[0])
