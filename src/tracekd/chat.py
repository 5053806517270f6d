"""The one place where a prompt meets a model's chat template.

Training, the transformers engine and the vLLM engine all call :func:`prompt_ids`, so the
tokens a model is trained on and the tokens it is asked with are the same by construction
(Qwen3 with thinking off, Llama's date line pinned: both are ``template_kwargs`` in config).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: ChatML, for the tiny demo model (Qwen's own format, so the demo exercises the same shape)
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ChatFormat:
    """How a user prompt becomes a chat: optional system message and template keywords."""

    system: str | None = None
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, model_cfg: Mapping[str, Any]) -> ChatFormat:
        """Read ``system`` and ``chat_template_kwargs`` from a model's config entry."""
        return cls(model_cfg.get("system"), dict(model_cfg.get("chat_template_kwargs") or {}))


def messages(user: str, fmt: ChatFormat) -> list[dict[str, str]]:
    """The chat messages for one user prompt."""
    head = [{"role": "system", "content": fmt.system}] if fmt.system else []
    return [*head, {"role": "user", "content": user}]


def prompt_text(tokenizer: Any, user: str, fmt: ChatFormat) -> str:
    """The prompt rendered by the model's own chat template, generation prompt appended."""
    return tokenizer.apply_chat_template(
        messages(user, fmt), tokenize=False, add_generation_prompt=True, **fmt.template_kwargs
    )


def prompt_ids(tokenizer: Any, user: str, fmt: ChatFormat) -> list[int]:
    """Token ids of the rendered prompt; special tokens come from the template, not the tokenizer."""
    return list(tokenizer(prompt_text(tokenizer, user, fmt), add_special_tokens=False)["input_ids"])


def end_of_turn_id(tokenizer: Any) -> int:
    """The id that ends the assistant's turn (the tokenizer's EOS: <|im_end|>, <|eot_id|>)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token to end the assistant's turn")
    return int(tokenizer.eos_token_id)


@dataclass(frozen=True)
class Encoded:
    """One training example: ids, which of them are completion (loss) tokens, truncation flag."""

    input_ids: list[int]
    completion_mask: list[int]
    truncated: bool


def encode_example(
    tokenizer: Any, user: str, completion: str, fmt: ChatFormat, max_length: int
) -> Encoded:
    """Prompt + completion + end-of-turn, with the prompt masked out of the loss.

    Sequences longer than ``max_length`` keep their start (the prompt) and are flagged, so the
    caller can count and report truncations rather than hide them.
    """
    p_ids = prompt_ids(tokenizer, user, fmt)
    c_ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    c_ids.append(end_of_turn_id(tokenizer))
    ids = p_ids + c_ids
    mask = [0] * len(p_ids) + [1] * len(c_ids)
    truncated = len(ids) > max_length
    return Encoded(ids[:max_length], mask[:max_length], truncated)


def encode_all(
    tokenizer: Any,
    prompts: Sequence[str],
    completions: Sequence[str],
    fmt: ChatFormat,
    max_length: int,
) -> tuple[dict[str, list[list[int]]], int]:
    """Encode many examples; returns the columns and the number truncated."""
    cols: dict[str, list[list[int]]] = {"input_ids": [], "completion_mask": []}
    truncated = 0
    for user, completion in zip(prompts, completions, strict=True):
        enc = encode_example(tokenizer, user, completion, fmt, max_length)
        cols["input_ids"].append(enc.input_ids)
        cols["completion_mask"].append(enc.completion_mask)
        truncated += enc.truncated
    return cols, truncated
