"""GPU benchmark: the authors' training recipe against ours (exact and fast), batched generation
against the authors' one-prompt-at-a-time loop; offline, random weights of the real architectures.

Builds Llama-3.2-1B and Qwen3-1.7B from their published configurations with random weights (no
hub access: the speed of a step does not depend on the weights' values), then, on the same
real-length CoTemp- and MARCO-like examples, measures training tokens/s and peak memory of

  (a) the authors' recipe: their training script's settings (a text dataset with full-sequence
      loss, per-device 4 x accumulation 4, gradient checkpointing, QLoRA NF4, paged 8-bit AdamW;
      flash-attention 2 as they asked for when it is installed, else sdpa; their evaluation
      passes during training are left out, which flatters them),
  (b) our exact recipe (``training.fast: false``),
  (c) our fast recipe (``training.fast: true``),

and generation tokens/s of the transformers engine, batched, against a one-prompt-at-a-time
``generate`` loop on the same prompts (outputs compared), and vLLM's when it is importable.
Prints one JSON object and writes it to ``--out`` as ``gpu_bench_{device}_{date}.json``.

    python benchmarks/gpu_bench.py                 # a GPU: about 5 minutes for both models
    python benchmarks/gpu_bench.py --cpu --small   # the same code path on tiny models, CPU
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # noqa: E402
    SYSTEM,
    chat_ids,
    chat_texts,
    generation,
    header,
    real_length_examples,
    train_summary,
    write_report,
)

from tracekd.model.chat import ChatFormat  # noqa: E402
from tracekd.model.tiny import train_tokenizer  # noqa: E402
from tracekd.model.train import LoraSpec, TrainSpec, train_model  # noqa: E402

#: the published configurations (hub config.json of meta-llama/Llama-3.2-1B-Instruct, Qwen/Qwen3-1.7B)
REAL = {
    "llama": {
        "architecture": "llama", "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
        "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192},
    },
    "qwen": {
        "architecture": "qwen3", "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144,
        "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
        "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    },
}  # fmt: skip
#: the same architectures shrunk, for the CPU mode
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 4096}  # fmt: skip
#: the paper's training block (config/config.yaml) without the fast switch
PAPER = {"epochs": 1, "per_device_batch_size": 4, "gradient_accumulation_steps": 4, "learning_rate": 2e-4,
         "lr_scheduler": "cosine", "warmup_ratio": 0.1, "optim": "paged_adamw_8bit", "max_length": 1024,
         "bf16": True, "gradient_checkpointing": True, "logging_steps": 1, "save_steps": 100_000}  # fmt: skip


def build_random_model(name: str, work: Path, texts: list[str], *, cpu: bool, tokenizer_vocab: int) -> Path:
    """A random-weight model of ``name``'s real (or, with ``cpu``, tiny) shape, saved with a tokenizer.

    The tokenizer is a byte-level BPE trained on the benchmark's own text with ChatML; the
    model keeps its real vocabulary width, so the LM head costs what it costs in the study.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig, Qwen3Config

    spec = {**REAL[name], **(TINY if cpu else {})}
    arch = spec.pop("architecture")
    tokenizer = train_tokenizer(texts, min(tokenizer_vocab, spec["vocab_size"]))
    config = {"llama": LlamaConfig, "qwen3": Qwen3Config}[arch](
        **spec, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None
    )
    torch.manual_seed(0)
    device = "cpu" if cpu else "cuda"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32 if cpu else torch.bfloat16)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    out = work / f"{name}-base"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    return out


def authors_recipe(
    base: Path, texts: list[str], work: Path, steps: int, *, cpu: bool, max_length: int
) -> dict[str, Any]:
    """(a): the authors' training script's settings, through SFTTrainer on a text dataset."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from tracekd.model import gpu

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.padding_side = "left"  # as their script set it
    kwargs: dict[str, Any] = {"dtype": torch.float32 if cpu else torch.bfloat16}
    if not cpu:
        kwargs.update(quantization_config=gpu.quantization_config("4bit"), device_map={"": 0},
                      attn_implementation="flash_attention_2" if gpu.flash_attention_usable() else "sdpa")  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    model.config.use_cache = False
    args = SFTConfig(
        output_dir=str(work / "authors-ckpt"), per_device_train_batch_size=4, gradient_accumulation_steps=4,
        learning_rate=2e-4, logging_steps=1, max_steps=steps, report_to="none", save_strategy="no",
        bf16=not cpu, optim="adamw_torch" if cpu else "paged_adamw_8bit", lr_scheduler_type="cosine",
        warmup_steps=0.1, gradient_checkpointing=not cpu, max_length=max_length, use_cpu=cpu, seed=0,
        dataset_text_field="text",
    )  # fmt: skip
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])  # fmt: skip
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": texts}),
                         processing_class=tokenizer, peft_config=lora)  # fmt: skip
    if not cpu:
        torch.cuda.reset_peak_memory_stats()
    train_started = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - train_started
    seen = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
    tokens = int(seen[-1]) if seen else None
    summary = {
        "tokens_trained": tokens, "tokens_per_second": round(tokens / wall, 1) if tokens else None,
        "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if not cpu else None,
        "wall_seconds": round(wall, 3), "global_step": result.global_step, "train_loss": result.training_loss,
        "method": "lora" if cpu else "qlora", "job_seconds": round(time.perf_counter() - started, 2),
        "recipe": {"per_device_batch_size": 4, "gradient_accumulation_steps": 4,
                   "gradient_checkpointing": not cpu, "loss": "full sequence", "attention": kwargs.get("attn_implementation")},
    }  # fmt: skip
    del trainer, model
    gc.collect()
    gpu.release_memory()
    return summary


def our_recipe(base: Path, prompts: list[str], completions: list[str], work: Path, steps: int,
               *, fast: bool, cpu: bool, tag: str, max_length: int) -> dict[str, Any]:  # fmt: skip
    """(b) or (c): :func:`tracekd.model.train.train_model` with ``training.fast`` off or on."""
    from tracekd.model import gpu

    spec = TrainSpec(**{**PAPER, "max_steps": steps, "fast": fast, "bf16": not cpu, "max_length": max_length})
    started = time.perf_counter()
    metrics = train_model(
        base=str(base), prompts=prompts, completions=completions, fmt=ChatFormat(SYSTEM), spec=spec,
        lora=LoraSpec(), quantization=None if cpu else "4bit", seed=0, out_dir=work / f"{tag}-adapter",
        checkpoint_dir=work / f"{tag}-ckpt",
    )  # fmt: skip
    gpu.release_memory()
    return train_summary(metrics, time.perf_counter() - started)


def vllm_generation(base: Path, adapter: Path, ids: list[list[int]], max_new_tokens: int, tokenizer: Any) -> dict[str, Any]:
    """vLLM's greedy tokens/s on the same prompts (engine start excluded)."""
    from tracekd.model.chat import end_of_turn_id
    from tracekd.model.gpu import vllm_generate

    started = time.perf_counter()
    out = vllm_generate(str(base), adapter, ids, max_new_tokens=max_new_tokens, max_lora_rank=16,
                        max_model_len=2048, gpu_memory_utilization=0.5, seed=0,
                        stop_token_ids=[end_of_turn_id(tokenizer)])  # fmt: skip
    wall = time.perf_counter() - started
    tokens = sum(n for _, n in out)
    return {"generated_tokens": tokens, "seconds_with_engine_start": round(wall, 2),
            "tokens_per_second_with_engine_start": round(tokens / wall, 1)}  # fmt: skip


def bench_model(name: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """All measurements for one architecture."""
    from tracekd.model.generate import load_model, load_tokenizer

    prompts, completions = real_length_examples(args.examples, seed=1)
    base = build_random_model(name, work, prompts + completions, cpu=args.cpu, tokenizer_vocab=args.tokenizer_vocab)
    tokenizer = load_tokenizer(str(base))
    fmt = ChatFormat(SYSTEM)
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"])
               for t in chat_texts(tokenizer, prompts, completions, fmt)]  # fmt: skip
    steps = args.examples // 16  # one epoch: every recipe trains on every example once
    train = {
        "authors": authors_recipe(base, chat_texts(tokenizer, prompts, completions, fmt), work, steps,
                                  cpu=args.cpu, max_length=args.max_length),
        "exact": our_recipe(base, prompts, completions, work, steps, fast=False, cpu=args.cpu, tag="exact",
                            max_length=args.max_length),
        "fast": our_recipe(base, prompts, completions, work, steps, fast=True, cpu=args.cpu, tag="fast",
                           max_length=args.max_length),
    }

    def ratio(a: str, b: str) -> float | None:
        x, y = train[a]["tokens_per_second"], train[b]["tokens_per_second"]
        return round(x / y, 2) if x and y else None

    report: dict[str, Any] = {
        "examples": {"count": args.examples, "tokens_mean": round(sum(lengths) / len(lengths), 1),
                     "tokens_max": max(lengths), "max_length": args.max_length,
                     "over_max_length": sum(n > args.max_length for n in lengths)},
        "train": train,
        "train_ratios": {"fast_over_authors": ratio("fast", "authors"), "exact_over_authors": ratio("exact", "authors"),
                         "fast_over_exact": ratio("fast", "exact")},
    }  # fmt: skip
    ids = chat_ids(tokenizer, prompts[: args.gen_prompts], fmt)
    model = load_model(str(base), work / "fast-adapter")  # the adapter merged in, as the authors ran it
    report["generate"] = generation(model, tokenizer, ids, max_new_tokens=args.max_new_tokens,
                                    batch_size=args.gen_prompts, single=args.gen_single)  # fmt: skip
    del model
    gc.collect()
    if importlib.util.find_spec("vllm") is not None and not args.cpu:
        try:
            report["vllm"] = vllm_generation(base, work / "fast-adapter", ids, args.max_new_tokens, tokenizer)
        except Exception as err:  # noqa: BLE001 - vLLM is optional; say why it did not run
            report["vllm"] = {"error": repr(err)}
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run every model, write the report; returns it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="tiny models on the CPU, no 4-bit: tests this script")
    parser.add_argument("--small", action="store_true", help="fewer, shorter runs (with --cpu: seconds)")
    parser.add_argument("--models", nargs="+", default=["llama", "qwen"], choices=sorted(REAL))
    parser.add_argument("--examples", type=int, default=None, help="training examples (a multiple of 16)")
    parser.add_argument("--gen-prompts", type=int, default=None, help="prompts generated batched")
    parser.add_argument("--gen-single", type=int, default=None, help="of those, generated one at a time")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--tokenizer-vocab", type=int, default=8000)
    parser.add_argument("--max-length", type=int, default=PAPER["max_length"],
                        help="tokens an example is cut to, in every recipe (default: the paper's "
                        "%(default)s; lower only to exercise the script quickly)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    import torch

    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("gpu_bench: no CUDA GPU visible (use --cpu to exercise the script)")
    small = args.small or args.cpu
    defaults = {"examples": 32 if small else 128, "gen_prompts": 8 if small else 64,
                "gen_single": 2 if small else 4, "max_new_tokens": 8 if args.small else 64 if args.cpu else 256}  # fmt: skip
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.examples % 16:
        parser.error("--examples must be a multiple of the effective batch, 16")
    report: dict[str, Any] = {**header("cpu" if args.cpu else "gpu"), "models": {}}
    report["goals"] = {"train_fast_over_authors": 3.0, "generate_batched_over_one_at_a_time": 10.0}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            started = time.perf_counter()
            report["models"][name] = bench_model(name, Path(tmp) / name, args)
            report["models"][name]["seconds"] = round(time.perf_counter() - started, 1)
    write_report(report, args.out, "gpu_bench" if not args.cpu else "gpu_bench-cpu-mode")
    return report


if __name__ == "__main__":
    main()
