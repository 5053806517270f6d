"""Rule probe: a trace-trained run's test answers with each probe's trace forced."""

import dataclasses

import polars as pl
import torch

from tracekd.io import write_parquet
from tracekd.model.chat import ChatFormat
from tracekd.model.predict import InferenceSpec
from tracekd.model.probe import probe_predictions
from tracekd.runlog import logged
from tracekd.traces import TraceFormat

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    adapter = snakemake.input.adapter
    probing = snakemake.params.probing
    frames = probe_predictions(
        base=snakemake.params.base,
        adapter_dir=adapter if adapter else None,
        traces=pl.read_parquet(snakemake.input.traces),
        free=pl.read_parquet(snakemake.input.free),
        decomposed=pl.read_parquet(snakemake.input.decomposed),
        fmt=ChatFormat.from_config(snakemake.params.chat),
        trace_format=TraceFormat.from_config(snakemake.params.dataset),
        probes=snakemake.params.probes,
        spec=dataclasses.replace(
            InferenceSpec(**snakemake.params.inference), max_new_tokens=probing["max_new_tokens"]
        ),
        seed=snakemake.params.seed,
        probe_seed=snakemake.params.probe_seed,
        max_lora_rank=(snakemake.params.model.get("lora") or {}).get("r", 16),
    )
    for probe, path in zip(snakemake.params.probes, snakemake.output, strict=True):
        write_parquet(frames[probe], path)
