"""Rule pool_seeds: one setting's per-seed scores as one table, a seed column first."""

import polars as pl

from tracekd.evaluate.seeds import pool_seeds
from tracekd.io import write_parquet
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    frames = [pl.read_parquet(path) for path in snakemake.input]
    write_parquet(pool_seeds(frames, snakemake.params.seeds), snakemake.output[0])
