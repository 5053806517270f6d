"""Generation engines behind one call shape: token-id prompts in, (text, token count) out.

``transformers`` (batched, left-padded, greedy; CPU or GPU) lives here; ``vllm`` lives behind the
GPU seam in :mod:`tracekd.model.gpu`. Neither needs a dataframe library, so a bare GPU box runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracekd.model.chat import end_of_turn_id


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
