"""Inference: greedy generation on the test split, parsed into category, facts and answer.

Two engines write the same ``predictions.parquet``: ``transformers`` (batched, left-padded; CPU
or GPU) and ``vllm`` (GPU, through :mod:`tracekd.model.gpu`). Both get the prompt as token ids from
:mod:`tracekd.model.chat`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.model.chat import ChatFormat, end_of_turn_id, prompt_ids
from tracekd.model.generate import generate_transformers, load_model, load_tokenizer
from tracekd.traces import TraceTemplate, parse_output


@dataclass(frozen=True)
class InferenceSpec:
    """Generation settings from config (greedy decoding throughout)."""

    engine: str = "transformers"
    max_new_tokens: int = 256
    batch_size: int = 16
    max_model_len: int = 2048
    gpu_memory_utilization: float = 0.85


def predict(
    *,
    base: str,
    adapter_dir: str | Path | None,
    traces: pl.DataFrame,
    decomposed: pl.DataFrame,
    fmt: ChatFormat,
    template: TraceTemplate,
    spec: InferenceSpec,
    seed: int,
    max_lora_rank: int = 16,
) -> pl.DataFrame:
    """Generate for the test rows of ``traces`` and parse each output.

    Returns the gold columns of ``decomposed`` joined with ``output``, ``output_tokens``,
    ``trace_text``, ``trace_tokens``, ``pred_category``, ``pred_facts``, ``pred_answer``,
    ``parse_status`` and ``answer_source`` (where the final answer was read from), in the
    traces' row order.
    """
    test = traces.filter(pl.col("split") == "test").select("id", "prompt")
    tokenizer = load_tokenizer(base)
    prompts = [prompt_ids(tokenizer, user, fmt) for user in test["prompt"].to_list()]
    generations = generate(
        base, adapter_dir, tokenizer, prompts, spec=spec, seed=seed, max_lora_rank=max_lora_rank
    )
    return parsed_predictions(test, decomposed, generations, template, tokenizer)


def generate(
    base: str,
    adapter_dir: str | Path | None,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    *,
    spec: InferenceSpec,
    seed: int,
    max_lora_rank: int = 16,
) -> list[tuple[str, int]]:
    """Greedy generation from token-id prompts with ``spec.engine``: (text, token count) each.

    ``vllm`` goes through the GPU seam (the adapter as a LoRA request); ``transformers`` loads
    the base model with the adapter merged in.
    """
    if spec.engine == "vllm":
        from tracekd.model.gpu import vllm_generate

        return vllm_generate(
            base,
            Path(adapter_dir) if adapter_dir is not None else None,
            prompts,
            max_new_tokens=spec.max_new_tokens,
            max_lora_rank=max_lora_rank,
            max_model_len=spec.max_model_len,
            gpu_memory_utilization=spec.gpu_memory_utilization,
            seed=seed,
            stop_token_ids=[end_of_turn_id(tokenizer)],
        )
    if spec.engine == "transformers":
        import torch

        torch.manual_seed(seed)
        model = load_model(base, adapter_dir)
        return generate_transformers(
            model, tokenizer, prompts, max_new_tokens=spec.max_new_tokens, batch_size=spec.batch_size
        )
    raise ValueError(f"unknown inference engine {spec.engine!r}; use 'transformers' or 'vllm'")


def parsed_predictions(
    test: pl.DataFrame,
    decomposed: pl.DataFrame,
    generations: Sequence[tuple[str, int]],
    template: TraceTemplate,
    tokenizer: Any,
) -> pl.DataFrame:
    """Attach the parsed generations to the gold rows (shared by both engines)."""
    parsed = [parse_output(text, template) for text, _ in generations]
    frame = pl.DataFrame(
        {
            "id": test["id"],
            "output": [text for text, _ in generations],
            "output_tokens": [n for _, n in generations],
            "trace_text": [p.trace_text for p in parsed],
            "trace_tokens": [
                len(tokenizer(p.trace_text, add_special_tokens=False)["input_ids"]) if p.trace_text else 0
                for p in parsed
            ],
            "pred_category": [p.category for p in parsed],
            "pred_facts": [p.facts for p in parsed],
            "pred_answer": [p.answer for p in parsed],
            "parse_status": [p.status for p in parsed],
            "answer_source": [p.answer_source for p in parsed],
        },
        schema_overrides={
            "output_tokens": pl.Int64,
            "trace_text": pl.String,
            "trace_tokens": pl.Int64,
            "pred_category": pl.String,
            "pred_facts": pl.List(pl.String),
            "pred_answer": pl.String,
        },
    )
    return decomposed.join(frame, on="id", how="inner", maintain_order="right")
