"""Rule predict: greedy generation on the test split, parsed into trace steps and answer."""

import polars as pl
import torch

from tracekd.io import write_parquet
from tracekd.model.chat import ChatFormat
from tracekd.model.predict import InferenceSpec, predict
from tracekd.runlog import logged
from tracekd.traces import TraceFormat

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    model = snakemake.params.model
    adapter = snakemake.input.adapter
    frame = predict(
        base=snakemake.params.base,
        adapter_dir=adapter if adapter else None,
        traces=pl.read_parquet(snakemake.input.traces),
        decomposed=pl.read_parquet(snakemake.input.decomposed),
        fmt=ChatFormat.from_config(snakemake.params.chat),
        template=TraceFormat.from_config(snakemake.params.dataset).trace,
        spec=InferenceSpec(**snakemake.params.inference),
        seed=snakemake.params.seed,
        max_lora_rank=(model.get("lora") or {}).get("r", 16),
    )
    write_parquet(frame, snakemake.output[0])
