"""Inference: greedy generation on the test split, parsed into category, facts and answer.

Two engines write the same ``predictions.parquet``: ``transformers`` (batched, left-padded; CPU
or GPU) and ``vllm`` (GPU, through :mod:`tracekd.gpu`). Both get the prompt as token ids from
:mod:`tracekd.chat`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.chat import ChatFormat, end_of_turn_id, prompt_ids
from tracekd.traces import TraceTemplate, parse_output


@dataclass(frozen=True)
class InferenceSpec:
    """Generation settings from config (greedy decoding throughout)."""

    engine: str = "transformers"
    max_new_tokens: int = 256
    batch_size: int = 16
    max_model_len: int = 2048
    gpu_memory_utilization: float = 0.85


def load_tokenizer(base: str) -> Any:
    """The base model's tokenizer, left-padded for batched generation."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(base: str, adapter_dir: str | Path | None) -> Any:
    """The base model with its LoRA adapter merged in, or the fully fine-tuned weights."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    device = "cuda" if torch.cuda.is_available() else "cpu"
    adapter = Path(adapter_dir) if adapter_dir is not None else None
    if adapter is not None and (adapter / "adapter_config.json").exists():
        from peft import PeftModel

        model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, trust_remote_code=False)
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    else:
        path = str(adapter) if adapter is not None else base
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False)
    return model.to(device).eval()


def generate_transformers(
    model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, batch_size: int
) -> list[tuple[str, int]]:
    """Batched greedy generation; prompts are sorted by length to waste little padding."""
    import torch
    from tqdm.auto import tqdm

    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    results: list[tuple[str, int]] = [("", 0)] * len(prompts)
    eot = end_of_turn_id(tokenizer)
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(order), batch_size), desc="generate", unit="batch"):
        batch = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            p = list(prompts[i])
            ids[row, width - len(p) :] = torch.tensor(p)
            mask[row, width - len(p) :] = 1
        with torch.no_grad():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eot,
                pad_token_id=tokenizer.pad_token_id,
            )
        for row, i in enumerate(batch):
            new = out[row, width:].tolist()
            if eot in new:
                new = new[: new.index(eot)]
            new = [t for t in new if t != tokenizer.pad_token_id]
            results[i] = (tokenizer.decode(new, skip_special_tokens=True), len(new))
    return results


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
    ``trace_text``, ``trace_tokens``, ``pred_category``, ``pred_facts``, ``pred_answer`` and
    ``parse_status``, in the traces' row order.
    """
    test = traces.filter(pl.col("split") == "test").select("id", "prompt")
    tokenizer = load_tokenizer(base)
    prompts = [prompt_ids(tokenizer, user, fmt) for user in test["prompt"].to_list()]
    if spec.engine == "vllm":
        from tracekd.gpu import vllm_generate

        generations = vllm_generate(
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
    elif spec.engine == "transformers":
        import torch

        torch.manual_seed(seed)
        model = load_model(base, adapter_dir)
        generations = generate_transformers(
            model, tokenizer, prompts, max_new_tokens=spec.max_new_tokens, batch_size=spec.batch_size
        )
    else:
        raise ValueError(f"unknown inference engine {spec.engine!r}; use 'transformers' or 'vllm'")
    return parsed_predictions(test, decomposed, generations, template, tokenizer)


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
