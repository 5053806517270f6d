"""Rule traces: SFT examples (prompt, completion, trace fields) for one setting."""

import polars as pl

from tracekd.config import to_setting
from tracekd.io import write_parquet
from tracekd.runlog import logged
from tracekd.traces import TraceFormat, build_traces

with logged(snakemake.log[0]):
    ds = snakemake.params.dataset
    frame = build_traces(
        pl.read_parquet(snakemake.input[0]),
        setting=to_setting(snakemake.params.setting),
        fmt=TraceFormat.from_config(ds, snakemake.params.setting),
    )
    write_parquet(frame, snakemake.output[0])
