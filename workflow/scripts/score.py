"""Rule score: per-sample answer and trace scores."""

import polars as pl

from tracekd.evaluate.score import score_predictions
from tracekd.io import write_parquet
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    predictions = pl.read_parquet(snakemake.input[0])
    scores = score_predictions(
        predictions,
        answer_rule=snakemake.params.dataset["answer_rule"],
        options=snakemake.params.dataset,
    )
    write_parquet(scores, snakemake.output[0])
