"""GPU check: QLoRA training and inference through the workflow's own code, offline.

On one GPU with no network, builds small random models of the Llama and Qwen3 architectures
locally, trains a LoRA adapter on a 4-bit NF4 base for a few steps (TRL SFTTrainer, paged 8-bit
AdamW, bf16), then generates greedily with vLLM when it is installed, else with transformers.
Prints and writes training and inference tokens/s, peak memory and what ran.

    python benchmarks/gpu_check.py --out gpu_check --steps 30
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from tracekd.datasets.babi import PAPER_TASKS, load_babi
from tracekd.datasets.synth_babi import write_synthetic_babi
from tracekd.model.chat import ChatFormat, prompt_ids
from tracekd.model.tiny import build_tiny_model
from tracekd.model.train import LoraSpec, TrainSpec, train_model
from tracekd.traces import Setting, TraceTemplate, parse_output, render_completion, render_prompt

PROMPT = "Answer the question based on the context: {context} Question: {question} Only return the answer."
TEMPLATE = TraceTemplate(
    "The reasoning task in the question is: {category}. "
    "I need to use the following facts to answer the question: {facts}"
)
#: ~100M parameters: big enough for meaningful GPU throughput, small enough to build in seconds
SMOKE_SPEC = {"vocab_size": 400, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 2, "num_key_value_heads": 1}
MODEL_SPEC = {
    "vocab_size": 4096,
    "hidden_size": 1024,
    "intermediate_size": 2816,
    "num_hidden_layers": 8,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
}


def versions() -> dict[str, str | None]:
    """Versions of the libraries this path depends on (None: not installed)."""
    found = {}
    for name in ("torch", "transformers", "peft", "trl", "datasets", "bitsandbytes", "vllm"):
        try:
            found[name] = importlib.import_module(name).__version__
        except Exception as err:  # noqa: BLE001 - report any import failure as missing
            found[name] = None if isinstance(err, ImportError) else f"error: {err}"
    return found


def synthetic_examples(work: Path, seed: int) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Prompts and correct-trace completions from synthetic bAbI, plus the test questions."""
    raw = work / "raw"
    write_synthetic_babi(raw, tasks=PAPER_TASKS, stories={"train": 40, "test": 6}, seed=seed)
    setting = Setting("correct", "trace")
    prompts, completions, test = [], [], []
    for q in load_babi(raw, PAPER_TASKS):
        prompt = render_prompt(PROMPT, q.context, q.question)
        facts = [q.context[i] for i in q.relevant]
        if q.split == "train":
            prompts.append(prompt)
            completions.append(render_completion(setting, TEMPLATE, q.answers, q.category, facts))
        else:
            test.append({"prompt": prompt, "answers": list(q.answers)})
    return prompts, completions, test


def generate(base: Path, adapter: Path, prompts: list[list[int]], max_new_tokens: int, tokenizer: Any) -> dict[str, Any]:
    """Greedy generation with vLLM if importable, else transformers; returns texts and timing."""
    from tracekd.model.chat import end_of_turn_id

    started = time.perf_counter()
    try:
        importlib.import_module("vllm")
        engine = "vllm"
    except ImportError:
        engine = "transformers"
    if engine == "vllm":
        from tracekd.model.gpu import vllm_generate

        out = vllm_generate(
            str(base), adapter, prompts, max_new_tokens=max_new_tokens, max_lora_rank=16,
            max_model_len=2048, gpu_memory_utilization=0.5, seed=0,
            stop_token_ids=[end_of_turn_id(tokenizer)],
        )
    else:
        from tracekd.model.generate import generate_transformers, load_model

        model = load_model(str(base), adapter)
        started = time.perf_counter()  # time generation, not loading
        out = generate_transformers(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=64)
    wall = time.perf_counter() - started
    tokens = sum(n for _, n in out)
    return {"engine": engine, "texts": [t for t, _ in out], "generated_tokens": tokens,
            "wall_seconds": round(wall, 2), "tokens_per_second": round(tokens / wall, 1)}


def check_architecture(arch: str, work: Path, data: tuple, steps: int, smoke: bool = False) -> dict[str, Any]:
    """Build, QLoRA-train and generate with one architecture (``smoke``: tiny, CPU, no 4-bit)."""
    import torch

    from tracekd.model.generate import load_tokenizer

    prompts, completions, test = data
    base = work / f"{arch}-base"
    model_spec = {**MODEL_SPEC, **(SMOKE_SPEC if smoke else {})}
    built = build_tiny_model(prompts + completions, base, {"architecture": arch, **model_spec}, seed=0)
    spec = TrainSpec(
        epochs=1, max_steps=steps, per_device_batch_size=4, gradient_accumulation_steps=4,
        learning_rate=2e-4, lr_scheduler="cosine", warmup_ratio=0.1, optim="paged_adamw_8bit",
        max_length=1024, bf16=not smoke, gradient_checkpointing=True, logging_steps=1 if smoke else 5,
        save_steps=10_000,
    )
    adapter = work / f"{arch}-adapter"
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    metrics = train_model(
        base=str(base), prompts=prompts, completions=completions, fmt=ChatFormat(), spec=spec,
        lora=LoraSpec(), quantization=None if smoke else "4bit", seed=0, out_dir=adapter,
        checkpoint_dir=work / f"{arch}-checkpoints",
    )
    adapter_cfg = json.loads((adapter / "adapter_config.json").read_text())
    tokenizer = load_tokenizer(str(base))
    ids = [prompt_ids(tokenizer, t["prompt"], ChatFormat()) for t in test]
    ids = ids[:8] if smoke else ids
    gen = generate(base, adapter, ids, 16 if smoke else 96, tokenizer)
    statuses = [parse_output(text, TEMPLATE).status for text in gen.pop("texts")]
    return {
        "architecture": arch,
        "parameters": built["parameters"],
        "train": {k: metrics[k] for k in ("method", "global_step", "train_loss", "tokens_trained", "tokens_per_second",
                                           "peak_memory_mb", "wall_seconds", "truncated", "device")},
        "adapter": {"files": sorted(p.name for p in adapter.iterdir()),
                    "modules_to_save": adapter_cfg.get("modules_to_save"), "r": adapter_cfg.get("r"),
                    "target_modules": adapter_cfg.get("target_modules")},
        "inference": {**gen, "prompts": len(ids),
                      "parse_status": {s: statuses.count(s) for s in sorted(set(statuses))}},
    }


def main() -> None:
    """Run the check for both architectures and write ``gpu_check.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="a few steps of a tiny model on CPU without 4-bit, to test this script")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available() and not args.cpu_smoke:
        raise SystemExit("gpu_check: no CUDA GPU visible")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    report: dict[str, Any] = {"versions": versions(), "gpu": gpu,
                              "python": platform.python_version(), "runs": []}
    print(json.dumps(report, indent=2), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = synthetic_examples(work, seed=0)
        for arch in ("llama", "qwen3"):
            try:
                run = check_architecture(arch, work, data, args.steps, smoke=args.cpu_smoke)
            except Exception as err:  # noqa: BLE001 - record and go on to the other architecture
                import traceback

                run = {"architecture": arch, "error": repr(err), "traceback": traceback.format_exc()}
            print(json.dumps(run, indent=2), flush=True)
            report["runs"].append(run)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
