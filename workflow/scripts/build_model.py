"""Rule build_model: the demo's tiny model, built locally from the training text."""

import json

import polars as pl

from tracekd.model.tiny import build_tiny_model
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    texts = []
    for path in snakemake.input:
        frame = pl.read_parquet(path, columns=["split", "prompt", "completion"])
        train = frame.filter(pl.col("split") == "train")
        texts += train["prompt"].to_list() + train["completion"].to_list()
    info = build_tiny_model(texts, snakemake.output[0], snakemake.params.spec, snakemake.params.seed)
    print(json.dumps(info))
