"""Rule train: supervised fine-tuning of one (dataset, model, setting)."""

import json

import polars as pl
import torch

from tracekd.io import write_parquet
from tracekd.model.chat import ChatFormat
from tracekd.model.train import LoraSpec, TrainSpec, train_model, training_completions
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    model = snakemake.params.model
    training = snakemake.params.training
    examples = pl.read_parquet(snakemake.input.traces).filter(pl.col("split") == "train")
    completions, fillers = training_completions(
        examples, base=snakemake.params.base, filler=snakemake.params.filler
    )
    metrics = train_model(
        base=snakemake.params.base,
        prompts=examples["prompt"].to_list(),
        completions=completions,
        fmt=ChatFormat.from_config(snakemake.params.chat),
        spec=TrainSpec.from_config(training),
        lora=LoraSpec(**model["lora"]) if model.get("lora") else None,
        quantization=model.get("quantization"),
        seed=snakemake.params.seed,
        out_dir=snakemake.output[0],
        checkpoint_dir=snakemake.params.checkpoints,
        keep_checkpoints=training.get("keep_checkpoints", False),
    )
    if fillers is not None:  # what the filler setting trained on, in this model's tokens
        write_parquet(fillers, f"{snakemake.output[0]}/filler.parquet")
    print(json.dumps({k: v for k, v in metrics.items() if k != "loss_curve"}))
