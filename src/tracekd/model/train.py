"""Supervised fine-tuning with TRL's SFTTrainer: LoRA/QLoRA on real models, full on tiny ones.

Examples are tokenised by :mod:`tracekd.model.chat` (so training and inference share one template)
and handed to TRL pre-tokenised with a ``completion_mask``: the loss covers completion tokens
only. Checkpoints live outside the Snakemake output so a killed or preempted job resumes.

Two recipes share this code (config ``training.fast``). The *exact* one is the paper's: the
configured per-device batch x accumulation, activation checkpointing, examples in random order.
The *fast* one keeps the mathematics (the same effective batch, LoRA, quantization, optimizer and
learning-rate schedule per example seen) and changes only how a step is computed: the largest
per-device batch dividing the effective batch that fits, found by a probe at job start
(:func:`choose_batch_plan`); checkpointing only when nothing fits without it; length-grouped
batches (:func:`length_grouped_order`), so little of a batch is padding; the fastest attention
kernel installed, Liger's layer kernels where installed (:func:`resolve_recipe`); on a CPU, the
loss computed on completion positions only (:func:`_completion_loss`).
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tracekd.model.chat import ChatFormat, encode_all


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
    #: the fast recipe (module docstring); the knobs below left at None follow it
    fast: bool = False
    group_by_length: bool | None = None
    probe_batch: bool | None = None
    probe_headroom: float = 0.1
    attention: str | None = None
    liger_kernel: bool | None = None
    padding_free: bool | None = None
    #: experiment trackers of transformers' Trainer ("none", a name, or a list of names)
    report_to: str | list[str] = "none"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TrainSpec:
        """Build from the config's ``training`` block (unknown keys are a schema error upstream)."""
        return cls(**{k: v for k, v in cfg.items() if k in cls.__dataclass_fields__})

    @property
    def effective_batch(self) -> int:
        """Examples per optimizer step: what both recipes keep equal."""
        return self.per_device_batch_size * self.gradient_accumulation_steps


@dataclass(frozen=True)
class Recipe:
    """The concrete choices of one training job (``training_metrics.json`` records them)."""

    fast: bool
    group_by_length: bool
    probe_batch: bool
    attention: str | None  # None: transformers' default for the architecture (sdpa)
    liger_kernel: bool
    padding_free: bool
    #: the loss on completion positions only, where TRL's fused LM head would score every one
    compact_loss: bool = False


def resolve_recipe(
    spec: TrainSpec, *, on_gpu: bool, flash_attention: bool, liger: bool
) -> Recipe:
    """Fill the knobs left at None from ``spec.fast``, given what this machine has installed.

    ``flash_attention`` / ``liger``: whether the flash-attn / liger-kernel packages are usable
    here (:mod:`tracekd.model.gpu`). Kernels that are asked for by default but absent are skipped (the
    job runs, a little slower); a padding-free batch without flash attention is refused, since
    other attention kernels would let the flattened sequences attend to each other. On a CPU the
    fast recipe also computes the loss on completion positions only: TRL's fused LM head does so
    with its Triton kernel on a GPU, but on a CPU it scores every prompt and padding position too.
    """

    def follow(value: bool | None) -> bool:
        return spec.fast if value is None else bool(value)

    attention = spec.attention
    if attention is None and spec.fast:
        attention = "flash_attention_2" if on_gpu and flash_attention else "sdpa"
    if spec.padding_free is None:
        # flattened batches are exact only where attention honours sequence boundaries
        padding_free = spec.fast and attention == "flash_attention_2"
    else:
        padding_free = spec.padding_free
    if padding_free and attention not in ("flash_attention_2", "flash_attention_3"):
        raise ValueError(
            f"training.padding_free needs attention flash_attention_2 or _3, not {attention!r}"
        )
    return Recipe(
        fast=spec.fast,
        group_by_length=follow(spec.group_by_length),
        probe_batch=follow(spec.probe_batch),
        attention=attention,
        liger_kernel=follow(spec.liger_kernel) and on_gpu and liger,
        padding_free=padding_free,
        compact_loss=spec.fast and not on_gpu,
    )


@dataclass(frozen=True)
class BatchPlan:
    """How one optimizer step's examples are split into micro-batches."""

    per_device_batch_size: int
    gradient_accumulation_steps: int
    gradient_checkpointing: bool


@dataclass(frozen=True)
class Trial:
    """One probe step: did it fit, and how long per example (None: not timed)."""

    fits: bool
    seconds_per_example: float | None = None
    peak_mb: float | None = None


def batch_sizes(effective: int) -> list[int]:
    """Per-device batch sizes that split ``effective`` evenly, largest first."""
    if effective < 1:
        raise ValueError(f"effective batch must be >= 1, got {effective}")
    return [b for b in range(effective, 0, -1) if effective % b == 0]


def choose_batch_plan(
    effective: int, trial: Callable[[int, bool], Trial]
) -> tuple[BatchPlan, list[dict[str, Any]]]:
    """The per-device batch and checkpointing that train fastest within memory.

    ``trial(batch, checkpointing)`` runs one real forward/backward at that size on the longest
    example and reports whether it fitted. Without checkpointing, the largest divisor of
    ``effective`` that fits wins outright if it is ``effective`` itself; otherwise the largest
    larger batch that fits *with* checkpointing is tried too, and the faster per example of the
    two is kept (checkpointing costs one more forward pass, a small batch leaves a GPU idle).
    Returns the plan and every trial made, in order.
    """
    log: list[dict[str, Any]] = []

    def run(batch: int, checkpointing: bool) -> Trial:
        result = trial(batch, checkpointing)
        log.append({"per_device_batch_size": batch, "gradient_checkpointing": checkpointing,
                    **asdict(result)})  # fmt: skip
        return result

    sizes = batch_sizes(effective)
    plain = next(((b, t) for b in sizes if (t := run(b, False)).fits), None)
    candidates: list[tuple[int, bool, Trial]] = []
    if plain is not None:
        candidates.append((plain[0], False, plain[1]))
    if plain is None or plain[0] < effective:
        larger = [b for b in sizes if plain is None or b > plain[0]]
        ckpt = next(((b, t) for b in larger if (t := run(b, True)).fits), None)
        if ckpt is not None:
            candidates.append((ckpt[0], True, ckpt[1]))
    if not candidates:
        raise RuntimeError(
            "training does not fit in memory even at per-device batch 1 with activation "
            "checkpointing; lower training.max_length or use a larger GPU"
        )

    def cost(c: tuple[int, bool, Trial]) -> float:
        # untimed trials (CPU) keep the first candidate: no checkpointing
        return c[2].seconds_per_example if c[2].seconds_per_example is not None else float("inf")

    batch, checkpointing, _ = min(candidates, key=cost) if len(candidates) > 1 else candidates[0]
    return BatchPlan(batch, effective // batch, checkpointing), log


def optimizer_state_bytes(trainable_parameters: int, optim: str) -> int:
    """Memory the optimizer's state will take, which a probe step does not allocate yet.

    AdamW keeps two moments per parameter: 1 byte each in the 8-bit optimizers, 4 in fp32.
    """
    per_parameter = 2 if "8bit" in optim else 8
    return trainable_parameters * per_parameter


def mega_batch_groups(n: int, group: int) -> int:
    """How many groups one length-sorted mega-batch holds.

    transformers' rule, ``n // (4 * group)`` capped at 50, keeps four mega-batches but groups
    nothing in small datasets (1 for the demo's 120 MARCO examples). Here: at most 50, at least
    4, yet at most half the epoch's groups, so batch compositions still change between epochs.
    """
    return max(1, min(50, max(4, n // (4 * group)), n // (2 * group)))


def length_grouped_order(lengths: Sequence[int], group: int, seed: int, epoch: int) -> list[int]:
    """A seeded order of example indices whose consecutive ``group``-sized runs have similar lengths.

    transformers' grouping (a random permutation cut into mega-batches, each sorted by length,
    the longest group first so an out-of-memory error comes at once) with
    :func:`mega_batch_groups` and its own generator seeded from ``seed`` and ``epoch``: the
    order depends on nothing else, so a job resumed in the middle of an epoch skips exactly the
    examples it had already trained on.
    """
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    mult = mega_batch_groups(len(lengths), group)
    return [int(i) for i in get_length_grouped_indices(list(lengths), group, mult, generator=generator)]


class LengthGroupedSampler:
    """A sampler over :func:`length_grouped_order`; the Trainer calls ``set_epoch`` each epoch."""

    def __init__(self, lengths: Sequence[int], group: int, seed: int) -> None:
        self.lengths, self.group, self.seed, self.epoch = list(lengths), group, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(length_grouped_order(self.lengths, self.group, self.seed, self.epoch))


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

    from tracekd.model import gpu

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

    recipe = resolve_recipe(
        spec, on_gpu=on_gpu, flash_attention=gpu.flash_attention_usable(), liger=gpu.liger_usable()
    )
    bf16 = bool(spec.bf16 and on_gpu and torch.cuda.is_bf16_supported())
    model_kwargs: dict[str, Any] = {"trust_remote_code": False}
    quant = gpu.quantization_config(quantization)
    if quant is not None:
        if not on_gpu:
            raise RuntimeError("4-bit quantization needs a CUDA GPU; set the model's quantization: none for CPU")
        model_kwargs.update(quantization_config=quant, device_map={"": 0})
    model_kwargs["dtype"] = torch.bfloat16 if bf16 else torch.float32
    if recipe.attention is not None:
        model_kwargs["attn_implementation"] = recipe.attention
    model = AutoModelForCausalLM.from_pretrained(base, **model_kwargs)
    if lora is not None:
        # wrapped here rather than by the trainer, so a batch probe and the real run share it
        model = _with_lora(model, lora)

    checkpoint_dir = Path(checkpoint_dir)

    def make_trainer(plan: BatchPlan) -> Any:
        return _make_trainer(
            model, tokenizer, dataset, spec, recipe, plan,
            on_gpu=on_gpu, bf16=bf16, seed=seed, output_dir=checkpoint_dir,
        )  # fmt: skip

    plan, probe_log = plan_batches(spec, recipe, make_trainer, on_gpu=on_gpu, bf16=bf16)
    trainer = make_trainer(plan)
    tensorboard_into(trainer, Path(out_dir) / "tensorboard")
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
        "recipe": {**asdict(recipe), **asdict(plan), "probe": probe_log},
        "loss_curve": [
            {"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h
        ],
    }
    (out_dir / "training_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if not keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return metrics


def tensorboard_into(trainer: Any, log_dir: Path) -> None:
    """Have the trainer's TensorBoard callback, if ``report_to`` asked for one, write to ``log_dir``.

    transformers writes event files to ``$TENSORBOARD_LOGGING_DIR`` or else under the trainer's
    ``output_dir`` (``runs/<date>_<host>``), which here is the checkpoints folder a finished run
    deletes; so the events go into the adapter's folder instead (the job's output, kept with
    it). A directory set in the environment is left as the user chose.
    """
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
            callback.logging_dir = str(log_dir)


def _with_lora(model: Any, lora: LoraSpec) -> Any:
    """The model with a fresh LoRA adapter (TRL would build the same from a ``peft_config``)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _make_trainer(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    spec: TrainSpec,
    recipe: Recipe,
    plan: BatchPlan,
    *,
    on_gpu: bool,
    bf16: bool,
    seed: int,
    output_dir: Path,
) -> Any:
    """An SFTTrainer for one batch plan; the sampler groups by length when the recipe says so."""
    from trl import SFTConfig

    args = SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=spec.epochs,
        max_steps=spec.max_steps,
        per_device_train_batch_size=plan.per_device_batch_size,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        learning_rate=spec.learning_rate,
        lr_scheduler_type=spec.lr_scheduler,
        warmup_steps=spec.warmup_ratio,
        optim=spec.optim if on_gpu else _cpu_optim(spec.optim),
        weight_decay=spec.weight_decay,
        max_length=spec.max_length,
        bf16=bf16,
        gradient_checkpointing=plan.gradient_checkpointing,
        completion_only_loss=True,
        padding_free=recipe.padding_free,
        use_liger_kernel=recipe.liger_kernel,
        logging_steps=spec.logging_steps,
        save_strategy="steps",
        save_steps=spec.save_steps,
        save_total_limit=2,
        report_to=spec.report_to if isinstance(spec.report_to, str) else list(spec.report_to),
        seed=seed,
        data_seed=seed,
        use_cpu=not on_gpu,
        disable_tqdm=False,
        dataloader_num_workers=0,
    )
    return _trainer_class()(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        length_grouping=recipe.group_by_length,
        compact_loss=recipe.compact_loss,
    )


def _trainer_class() -> type:
    """SFTTrainer whose training sampler can be :class:`LengthGroupedSampler` (import is lazy)."""
    from trl import SFTTrainer

    class _SFTTrainer(SFTTrainer):  # type: ignore[misc]
        def __init__(
            self, *args: Any, length_grouping: bool = False, compact_loss: bool = False, **kwargs: Any
        ) -> None:
            self._length_grouping = length_grouping
            self._compact_loss = compact_loss
            super().__init__(*args, **kwargs)

        def compute_loss(
            self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            # TRL's own bookkeeping is needed to log as it does; without it, TRL's loss
            usable = hasattr(self, "_metrics") and hasattr(self, "_total_train_tokens")
            if not (self._compact_loss and usable and model.training) or return_outputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return _completion_loss(self, model, inputs, num_items_in_batch)

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            # transformers' own group_by_length draws from the global RNG, whose state on a
            # resume differs from the uninterrupted run's; this sampler is seeded per epoch
            if not self._length_grouping:
                return super()._get_train_sampler(train_dataset)
            data = train_dataset if train_dataset is not None else self.train_dataset
            group = self.args.train_batch_size * self.args.gradient_accumulation_steps
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return LengthGroupedSampler([len(ids) for ids in data["input_ids"]], group, seed)

    return _SFTTrainer


def _completion_loss(trainer: Any, model: Any, inputs: Mapping[str, Any], num_items_in_batch: Any) -> Any:
    """TRL's SFT loss, with the LM head applied to completion positions only (CPU fast recipe).

    The same quantity as TRL's fused head (the summed negative log-likelihood of the completion
    tokens over the step's completion-token count) and the same logged metrics (entropy and
    top-1 accuracy over those tokens, tokens seen), without projecting prompt and padding
    positions onto the vocabulary, which TRL's non-Triton path does and then masks out.
    """
    import torch

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    hidden = lm.base_model(**backbone_inputs, use_cache=False).last_hidden_state[:, :-1]
    targets = inputs["labels"][:, 1:]
    mask = targets != -100
    logits = lm.get_output_embeddings()(hidden[mask]).float()
    log_z = torch.logsumexp(logits, dim=-1)
    wanted = targets[mask]
    log_probs = logits.gather(1, wanted[:, None]).squeeze(1) - log_z
    count = mask.sum() if num_items_in_batch is None else num_items_in_batch
    loss = -log_probs.sum() / torch.as_tensor(count).clamp(min=1)
    with torch.no_grad():
        n = max(int(mask.sum()), 1)
        entropy = log_z - (logits.softmax(-1) * logits).sum(-1)
        metrics = trainer._metrics["train"]
        metrics["entropy"].append(float(entropy.sum()) / n)
        metrics["mean_token_accuracy"].append(float((logits.argmax(-1) == wanted).sum()) / n)
        trainer._total_train_tokens += int(inputs["attention_mask"].sum())
        metrics["num_tokens"] = [trainer._total_train_tokens]
    return loss


def plan_batches(
    spec: TrainSpec,
    recipe: Recipe,
    make_trainer: Callable[[BatchPlan], Any],
    *,
    on_gpu: bool,
    bf16: bool,
) -> tuple[BatchPlan, list[dict[str, Any]]]:
    """The batch plan of this job: as configured, or found by a probe (fast recipe).

    On a GPU the probe builds a throw-away trainer on the same model and runs real
    forward/backward steps (:func:`choose_batch_plan`); on a CPU host memory is not probed and
    the whole effective batch is one micro-batch (nothing to recompute, nothing to accumulate).
    """
    configured = BatchPlan(
        spec.per_device_batch_size,
        spec.gradient_accumulation_steps,
        spec.gradient_checkpointing and on_gpu,
    )
    if not recipe.probe_batch:
        return configured, []
    if not on_gpu:
        return choose_batch_plan(spec.effective_batch, lambda batch, ckpt: Trial(fits=True))
    from tracekd.model import gpu

    probe = make_trainer(configured)
    try:
        return choose_batch_plan(spec.effective_batch, _gpu_trial(probe, spec, bf16))
    finally:
        _set_checkpointing(probe.model, False)  # the real trainer sets its own
        del probe
        gpu.release_memory()


def _gpu_trial(trainer: Any, spec: TrainSpec, bf16: bool) -> Callable[[int, bool], Trial]:
    """A probe step on copies of the longest example, judged against this GPU's free memory."""
    from tracekd.model import gpu

    data = trainer.train_dataset
    longest = data[max(range(len(data)), key=lambda i: len(data[i]["input_ids"]))]
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    reserve = optimizer_state_bytes(trainable, spec.optim)
    budget = (1.0 - spec.probe_headroom) * gpu.memory_budget_bytes()

    def trial(batch: int, checkpointing: bool) -> Trial:
        fitted, peak, seconds = gpu.measure_step(probe_step(trainer, [longest] * batch, checkpointing, bf16))
        if not fitted:
            return Trial(fits=False)
        return Trial(
            fits=peak + reserve <= budget,
            seconds_per_example=seconds / batch,
            peak_mb=round(peak / 2**20, 1),
        )

    return trial


def probe_step(
    trainer: Any, examples: Sequence[Mapping[str, Any]], checkpointing: bool, bf16: bool
) -> Callable[[], None]:
    """One forward and backward of ``examples`` through the trainer's loss, gradients discarded.

    The batch goes through the trainer's own collator and ``compute_loss`` (TRL's fused LM head),
    so it allocates what a training step allocates, bar the optimizer's state.
    """
    import torch

    model = trainer.model
    device = next(model.parameters()).device
    batch = {
        k: v.to(device) if hasattr(v, "to") else v for k, v in trainer.data_collator(list(examples)).items()
    }

    def step() -> None:
        _set_checkpointing(model, checkpointing)
        model.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = trainer.compute_loss(model, dict(batch))
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def _set_checkpointing(model: Any, enabled: bool) -> None:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if enabled:
        base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        base.activation_checkpointing_disable()


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


def training_completions(examples: Any, *, base: str, filler: bool) -> tuple[list[str], Any]:
    """The completions one setting trains on, and (for filler) the record of its fillers.

    ``examples`` is the training split of a traces table. A filler setting's traces table holds
    the gold trace (``replaced_trace``): here, with the model's own tokenizer, each is replaced
    by dots of the same token length (:func:`tracekd.traces.corrupt.fill_completion`); the
    record is a frame of ``id, trace_tokens, filler``. Other settings train on the table as is
    (record ``None``).
    """
    completions = examples["completion"].to_list()
    if not filler:
        return completions, None
    import polars as pl
    from transformers import AutoTokenizer

    from tracekd.traces.corrupt import filler_text

    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    traces = examples["replaced_trace"].to_list()
    lengths = [count(t) for t in traces]
    fillers = [filler_text(n, count) for n in lengths]
    filled = []
    for row_id, completion, trace, filler in zip(examples["id"], completions, traces, fillers, strict=True):
        if not trace or trace not in completion:
            raise ValueError(f"traces row {row_id!r}: replaced_trace is not in its completion")
        filled.append(completion.replace(trace, filler, 1))
    record = pl.DataFrame(
        {"id": examples["id"], "trace_tokens": lengths, "filler": fillers},
        schema={"id": pl.String, "trace_tokens": pl.Int64, "filler": pl.String},
    )
    return filled, record
