"""A tiny causal LM of a real architecture, built locally so the demo needs no download.

The tokenizer is a byte-level BPE trained on the demo's own training text (so no character is
ever unknown); the model is a randomly initialised Qwen3 or Llama with ChatML as its chat
template. It is then fine-tuned by the same code path as the real models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tracekd.model.chat import CHATML_TEMPLATE

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (transformers fast tokenizer) with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sorted(set(texts)), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_model_config(architecture: str, vocab_size: int, spec: Mapping[str, Any], tokenizer: Any) -> Any:
    """A transformers config of the named architecture (``qwen3`` or ``llama``)."""
    from transformers import LlamaConfig, Qwen3Config

    classes = {"qwen3": Qwen3Config, "llama": LlamaConfig}
    if architecture not in classes:
        raise ValueError(f"unknown tiny architecture {architecture!r}; choose one of {sorted(classes)}")
    heads = int(spec["num_attention_heads"])
    return classes[architecture](
        vocab_size=vocab_size,
        hidden_size=int(spec["hidden_size"]),
        intermediate_size=int(spec["intermediate_size"]),
        num_hidden_layers=int(spec["num_hidden_layers"]),
        num_attention_heads=heads,
        num_key_value_heads=int(spec.get("num_key_value_heads", heads)),
        head_dim=int(spec["hidden_size"]) // heads,
        max_position_embeddings=int(spec["max_position_embeddings"]),
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )


def build_tiny_model(texts: Iterable[str], out_dir: str | Path, spec: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Train the tokenizer, initialise the model with ``seed`` and save both to ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    tokenizer = train_tokenizer(texts, int(spec["vocab_size"]))
    config = build_model_config(spec["architecture"], len(tokenizer), spec, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {
        "architecture": spec["architecture"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "seed": seed,
    }
