"""The narrow seam to GPU-only libraries (bitsandbytes, vLLM, flash-attn, Liger) and CUDA memory.

Everything here is imported lazily, so the rest of the library, its tests and the CPU demo never
need these packages. The CPU paths call the same functions with ``quantization=None`` and engine
``transformers``; CI checks the code around this seam, a GPU check script exercises it.
"""

from __future__ import annotations

import gc
import importlib.util
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _cuda_capability() -> tuple[int, int] | None:
    import torch

    return torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None


def flash_attention_usable() -> bool:
    """Whether ``attn_implementation="flash_attention_2"`` can run here (flash-attn, Ampere+)."""
    capability = _cuda_capability()
    return capability is not None and capability >= (8, 0) and importlib.util.find_spec("flash_attn") is not None


def liger_usable() -> bool:
    """Whether Liger's Triton kernels (RMSNorm, RoPE, SwiGLU) can be applied here."""
    if _cuda_capability() is None:
        return False
    from transformers.utils import is_liger_kernel_available

    return bool(is_liger_kernel_available())


def memory_budget_bytes() -> int:
    """GPU memory this process can use: what is free plus what it already holds."""
    import torch

    free, _total = torch.cuda.mem_get_info()
    return int(free + torch.cuda.memory_allocated())


def release_memory() -> None:
    """Return cached blocks to the driver (after a probe, before the real run)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measure_step(step: Callable[[], None], repeats: int = 2) -> tuple[bool, int, float]:
    """Run ``step`` ``repeats`` times; (fitted, peak bytes allocated, seconds of the last run).

    An out-of-memory error means it did not fit: (False, 0, 0.0). The first run warms kernels
    and the allocator, so the last run's time is the one a training step would take.
    """
    import torch

    release_memory()
    torch.cuda.reset_peak_memory_stats()
    seconds, fitted = 0.0, True
    try:
        for _ in range(repeats):
            torch.cuda.synchronize()
            started = time.perf_counter()
            step()
            torch.cuda.synchronize()
            seconds = time.perf_counter() - started
    except torch.cuda.OutOfMemoryError:
        fitted = False
    except RuntimeError as err:  # some kernels (bitsandbytes) raise a plain one
        if "out of memory" not in str(err).lower():
            raise
        fitted = False
    peak = int(torch.cuda.max_memory_allocated())
    release_memory()  # outside the handler, so the error's frames no longer pin tensors
    return (True, peak, seconds) if fitted else (False, 0, 0.0)


def quantization_config(kind: str | None, compute_dtype: str = "bfloat16") -> Any:
    """A bitsandbytes config for ``kind`` (``4bit``: QLoRA's NF4 with double quantization)."""
    if kind in (None, "none"):
        return None
    if kind != "4bit":
        raise ValueError(f"unknown quantization {kind!r}; use '4bit' or none")
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
    )


def vllm_generate(
    base: str,
    adapter_dir: Path | None,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    max_lora_rank: int,
    max_model_len: int,
    gpu_memory_utilization: float,
    seed: int,
    stop_token_ids: Sequence[int],
) -> list[tuple[str, int]]:
    """Greedy generation with vLLM from pre-tokenised prompts, with the LoRA adapter if any.

    Prompts arrive as token ids rendered by :mod:`tracekd.model.chat`, so vLLM sees exactly the
    tokens the transformers engine and training see. Returns (text, generated token count).
    """
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.lora.request import LoRARequest

    lora = adapter_dir is not None and (Path(adapter_dir) / "adapter_config.json").exists()
    common = dict(
        max_model_len=max_model_len,
        gpu_memory_utilization=gpu_memory_utilization,
        seed=seed,
        trust_remote_code=False,
    )
    if lora:
        llm = LLM(model=base, enable_lora=True, max_lora_rank=max_lora_rank, **common)
    else:
        # a fully fine-tuned model sits in adapter_dir; the tokenizer is always the base's
        model = str(adapter_dir) if adapter_dir is not None else base
        llm = LLM(model=model, tokenizer=base, **common)
    params = SamplingParams(
        temperature=0.0,
        top_p=1.0,
        max_tokens=max_new_tokens,
        stop_token_ids=list(stop_token_ids),
        skip_special_tokens=True,
    )
    request = LoRARequest("adapter", 1, str(adapter_dir)) if lora else None
    outputs = llm.generate(
        [TokensPrompt(prompt_token_ids=list(p)) for p in prompts],
        params,
        lora_request=request,
        use_tqdm=True,
    )
    return [(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outputs]
