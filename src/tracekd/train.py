"""Supervised fine-tuning with TRL's SFTTrainer: LoRA/QLoRA on real models, full on tiny ones.

Examples are tokenised by :mod:`tracekd.chat` (so training and inference share one template)
and handed to TRL pre-tokenised with a ``completion_mask``: the loss covers completion tokens
only. Checkpoints live outside the Snakemake output so a killed or preempted job resumes.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracekd.chat import ChatFormat, encode_all


@dataclass(frozen=True)
class TrainSpec:
    """Trainer hyperparameters (DESIGN.md, "Training"); every field comes from config."""

    epochs: float = 3
    per_device_batch_size: int = 4
    gradient_accumulation_steps: int = 4
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.1
    optim: str = "paged_adamw_8bit"
    weight_decay: float = 0.0
    max_length: int = 1024
    bf16: bool = True
    gradient_checkpointing: bool = True
    logging_steps: int = 10
    save_steps: int = 100
    max_steps: int = -1

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TrainSpec:
        """Build from the config's ``training`` block (unknown keys are a schema error upstream)."""
        return cls(**{k: v for k, v in cfg.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapter shape; ``None`` in config means full fine-tuning."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"


def train_model(
    *,
    base: str,
    prompts: Sequence[str],
    completions: Sequence[str],
    fmt: ChatFormat,
    spec: TrainSpec,
    lora: LoraSpec | None,
    quantization: str | None,
    seed: int,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    keep_checkpoints: bool = False,
) -> dict[str, Any]:
    """Fine-tune ``base`` on (user prompt, completion) pairs; save to ``out_dir``.

    Resumes from the newest checkpoint in ``checkpoint_dir`` if one exists. Saves the adapter
    (LoRA) or the model weights (full fine-tuning) without a tokenizer, plus
    ``training_metrics.json`` with the loss curve, tokens/s, peak memory and truncations.
    Examples whose completion would be cut off entirely are dropped and counted (they would
    teach nothing but cost a step).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    from tracekd.gpu import quantization_config

    if not prompts:
        raise ValueError("no training examples")
    set_seed(seed)
    on_gpu = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    if tokenizer.pad_token is None:
        # reuse EOS for padding: adding a token would resize embeddings, which vLLM rejects
        tokenizer.pad_token = tokenizer.eos_token
    columns, truncated = encode_all(tokenizer, prompts, completions, fmt, spec.max_length)
    keep = [i for i, mask in enumerate(columns["completion_mask"]) if any(mask)]
    dropped = len(prompts) - len(keep)
    if not keep:
        raise ValueError(f"every example's completion lies beyond max_length={spec.max_length}")
    columns = {k: [v[i] for i in keep] for k, v in columns.items()}
    dataset = Dataset.from_dict(columns)
    n_tokens = sum(len(ids) for ids in columns["input_ids"])

    bf16 = bool(spec.bf16 and on_gpu and torch.cuda.is_bf16_supported())
    model_kwargs: dict[str, Any] = {"trust_remote_code": False}
    quant = quantization_config(quantization)
    if quant is not None:
        if not on_gpu:
            raise RuntimeError("4-bit quantization needs a CUDA GPU; set the model's quantization: none for CPU")
        model_kwargs.update(quantization_config=quant, device_map={"": 0})
    model_kwargs["dtype"] = torch.bfloat16 if bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, **model_kwargs)

    peft_config = None
    if lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            bias="none",
            task_type="CAUSAL_LM",
        )

    checkpoint_dir = Path(checkpoint_dir)
    args = SFTConfig(
        output_dir=str(checkpoint_dir),
        num_train_epochs=spec.epochs,
        max_steps=spec.max_steps,
        per_device_train_batch_size=spec.per_device_batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        learning_rate=spec.learning_rate,
        lr_scheduler_type=spec.lr_scheduler,
        warmup_steps=spec.warmup_ratio,
        optim=spec.optim if on_gpu else _cpu_optim(spec.optim),
        weight_decay=spec.weight_decay,
        max_length=spec.max_length,
        bf16=bf16,
        gradient_checkpointing=spec.gradient_checkpointing and on_gpu,
        completion_only_loss=True,
        logging_steps=spec.logging_steps,
        save_strategy="steps",
        save_steps=spec.save_steps,
        save_total_limit=2,
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=not on_gpu,
        disable_tqdm=False,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    resume = last_complete_checkpoint(checkpoint_dir)
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - started

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(out_dir)
    _check_vllm_compatible(out_dir)
    epochs_run = float(result.metrics.get("epoch", spec.epochs))
    # TRL logs the tokens it has consumed; fall back to an estimate from epochs run
    seen = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
    tokens_trained = float(seen[-1]) if seen else n_tokens * epochs_run
    metrics = {
        "base": base,
        "examples": len(prompts),
        "truncated": truncated,
        "dropped_no_completion": dropped,
        "max_length": spec.max_length,
        "tokens": n_tokens,
        "train_loss": result.training_loss,
        "global_step": result.global_step,
        "epochs": epochs_run,
        "resumed_from": Path(resume).name if resume else None,
        "wall_seconds": round(wall, 3),
        "tokens_trained": int(tokens_trained),
        "tokens_per_second": round(tokens_trained / wall, 1) if wall > 0 else None,
        "peak_memory_mb": _peak_memory_mb(on_gpu),
        "device": torch.cuda.get_device_name(0) if on_gpu else "cpu",
        "method": ("qlora" if quant is not None else "lora") if lora is not None else "full",
        "loss_curve": [
            {"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h
        ],
    }
    (out_dir / "training_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if not keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return metrics


def last_complete_checkpoint(folder: str | Path) -> str | None:
    """The newest ``checkpoint-N`` under ``folder`` that was saved completely, or ``None``.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint without a readable one was
    cut short by a kill while saving; resuming from it would crash. Such folders are removed
    (a rerun saves that step again) and the next newest checkpoint is used.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = []
    for path in folder.iterdir():
        match = re.fullmatch(r"checkpoint-([0-9]+)", path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"removing incomplete checkpoint {path} (no readable trainer_state.json)")
            shutil.rmtree(path, ignore_errors=True)
            continue
        return str(path)
    return None


def _cpu_optim(optim: str) -> str:
    # paged and 8-bit optimizers live in bitsandbytes (CUDA); plain AdamW is their CPU stand-in
    return "adamw_torch" if "8bit" in optim or "paged" in optim else optim


def _peak_memory_mb(on_gpu: bool) -> float:
    if on_gpu:
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _check_vllm_compatible(adapter_dir: Path) -> None:
    """Refuse to leave an adapter vLLM would reject (modules_to_save, resized embeddings)."""
    cfg_path = adapter_dir / "adapter_config.json"
    if not cfg_path.exists():
        return
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("modules_to_save"):
        raise ValueError(f"{cfg_path}: modules_to_save={cfg['modules_to_save']} is rejected by vLLM")
