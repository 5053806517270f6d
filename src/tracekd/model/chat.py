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
    """How a user prompt becomes the model's input.

    ``chat``: through the model's chat template, with an optional ``system`` message and the
    template's keywords; or (``chat=False``, the paper's prompted baseline) the prompt text as
    it is, tokenized with the tokenizer's own special tokens (a BOS for Llama).
    """

    system: str | None = None
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    chat: bool = True

    @classmethod
    def from_config(cls, model_cfg: Mapping[str, Any]) -> ChatFormat:
        """Read ``system``, ``chat_template_kwargs`` and ``chat`` from a resolved chat entry
        (a model's config entry, or :func:`tracekd.config.chat_options`)."""
        return cls(
            model_cfg.get("system"),
            dict(model_cfg.get("chat_template_kwargs") or {}),
            bool(model_cfg.get("chat", True)),
        )


def messages(user: str, fmt: ChatFormat) -> list[dict[str, str]]:
    """The chat messages for one user prompt."""
    head = [{"role": "system", "content": fmt.system}] if fmt.system else []
    return [*head, {"role": "user", "content": user}]


def prompt_text(tokenizer: Any, user: str, fmt: ChatFormat) -> str:
    """The prompt rendered by the model's own chat template, generation prompt appended
    (the prompt itself for a plain, ``chat=False`` format)."""
    if not fmt.chat:
        return user
    return tokenizer.apply_chat_template(
        messages(user, fmt), tokenize=False, add_generation_prompt=True, **fmt.template_kwargs
    )


def conversation_text(tokenizer: Any, user: str, fmt: ChatFormat) -> str:
    """The system and user turns as the chat template renders them, without a generation
    prompt: the shape of the ``input`` field in the paper's released outputs, for comparing
    our prompts with theirs (``tracekd check-prompts``)."""
    if not fmt.chat:
        return user
    return tokenizer.apply_chat_template(
        messages(user, fmt), tokenize=False, add_generation_prompt=False, **fmt.template_kwargs
    )


def prompt_ids(tokenizer: Any, user: str, fmt: ChatFormat) -> list[int]:
    """Token ids of the rendered prompt. In a chat the special tokens come from the template,
    not the tokenizer; a plain prompt gets the tokenizer's own (as a bare ``generate`` call)."""
    text = prompt_text(tokenizer, user, fmt)
    return list(tokenizer(text, add_special_tokens=not fmt.chat)["input_ids"])


def end_of_turn_id(tokenizer: Any) -> int:
    """The id that ends the assistant's turn (the tokenizer's EOS: <|im_end|>, <|eot_id|>)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token to end the assistant's turn")
    return int(tokenizer.eos_token_id)


def completion_text(tokenizer: Any, user: str, completion: str, fmt: ChatFormat) -> str:
    """The assistant turn as the model's chat template renders ``completion``, through its
    end-of-turn token.

    A template may rewrite an assistant message (Qwen3 writes its think block as
    ``<think>\n...\n</think>\n\n`` and puts an empty one before an answer without a trace), so
    the trained text is what the template makes of the completion, exactly what the model will
    be asked to continue at inference: the rendered conversation minus the rendered prompt. A
    template whose conversation does not start with its own prompt (e.g. Qwen3 with
    ``enable_thinking: false`` before a completion that writes its own think block) would train
    on tokens the model never sees at inference; that is refused.
    """
    eot = tokenizer.convert_ids_to_tokens(end_of_turn_id(tokenizer))
    if not fmt.chat:
        return completion + eot
    prompt = prompt_text(tokenizer, user, fmt)
    conversation = tokenizer.apply_chat_template(
        [*messages(user, fmt), {"role": "assistant", "content": completion}],
        tokenize=False,
        **fmt.template_kwargs,
    )
    if not conversation.startswith(prompt):
        raise ValueError(
            "the chat template renders the assistant turn after a different prompt than the "
            "generation prompt (check the model's chat_template_kwargs, e.g. Qwen3's "
            f"enable_thinking): prompt ends {prompt[-60:]!r}, conversation has "
            f"{conversation[len(prompt) - 60 : len(prompt) + 20]!r}"
        )
    reply = conversation[len(prompt) :]
    end = reply.rfind(eot)
    if end < 0:
        raise ValueError(f"the chat template closes the assistant turn without {eot!r}")
    # the end-of-turn token is trained (the model must learn to stop); what follows is not
    return reply[: end + len(eot)]


@dataclass(frozen=True)
class Encoded:
    """One training example: ids, which of them are completion (loss) tokens, truncation flag."""

    input_ids: list[int]
    completion_mask: list[int]
    truncated: bool


def encode_example(
    tokenizer: Any, user: str, completion: str, fmt: ChatFormat, max_length: int
) -> Encoded:
    """Prompt + the completion as the chat template renders it, with the prompt masked out of
    the loss (:func:`completion_text`; it ends with the end-of-turn token).

    Sequences longer than ``max_length`` keep their start (the prompt) and are flagged, so the
    caller can count and report truncations rather than hide them.
    """
    p_ids = prompt_ids(tokenizer, user, fmt)
    reply = completion_text(tokenizer, user, completion, fmt)
    c_ids = list(tokenizer(reply, add_special_tokens=False)["input_ids"])
    if not c_ids or c_ids[-1] != end_of_turn_id(tokenizer):
        raise ValueError(f"the rendered completion does not end with the end-of-turn token: {reply[-40:]!r}")
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


#: the token a filler trace is made of (Lanham et al. 2023's "..." filler, one token each)
FILLER_TOKEN = "."


@dataclass(frozen=True)
class Forced:
    """A prompt with the start of the assistant's turn forced: the ids to generate from, the
    forced part of the turn as text, and how many of the ids are forced."""

    input_ids: list[int]
    text: str
    forced_tokens: int


def _tokens_before(tokenizer: Any, text: str, at: int) -> tuple[list[int], str]:
    """``text``'s tokens (as training tokenizes it) that end at or before character ``at``, and
    the text they cover; a token the tokenizer merges across ``at`` is left out."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("forcing a prefix needs a fast tokenizer (its offsets say where tokens end)")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, end = [], 0
    for token, (_, stop) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        if stop > at:
            break
        ids.append(int(token))
        end = max(end, stop)
    return ids, text[:end]


def forced_prompt(
    tokenizer: Any,
    user: str,
    completion: str,
    fmt: ChatFormat,
    *,
    answer_at: int,
    filler: tuple[str, int] | None = None,
) -> Forced:
    """The prompt's ids, then the assistant turn of ``completion`` up to its answer, as token ids.

    The turn is rendered by :func:`completion_text` and tokenized as :func:`encode_example`
    tokenizes it for training, so the forced ids are the training tokens of the same completion
    up to the answer (``completion[answer_at:]``): every token that ends before the answer's
    first character. Where the tokenizer merges that character with the text before it (e.g.
    ``>[`` before a list answer), the merged token is left for the model to write.

    ``filler``: ``(mark, n)``: ``completion`` holds ``mark`` once, where its trace would be; it
    is replaced by ``n`` copies of the :data:`FILLER_TOKEN` token (the text around it is
    tokenized on its own).
    """
    reply = completion_text(tokenizer, user, completion, fmt)
    answer = completion[answer_at:].rstrip()
    if not answer:
        raise ValueError("the completion has no answer after answer_at to stop before")
    at = reply.rfind(answer)
    if at < 0:
        raise ValueError(f"the chat template rewrites the answer of the completion: {answer[:60]!r}")
    p_ids = prompt_ids(tokenizer, user, fmt)
    if filler is None:
        ids, text = _tokens_before(tokenizer, reply, at)
        return Forced(p_ids + ids, text, len(ids))
    mark, n = filler
    if reply.count(mark) != 1 or reply.find(mark) > at:
        raise ValueError(f"a filler completion holds its mark once, before the answer: {reply[:80]!r}")
    fill = list(tokenizer(FILLER_TOKEN, add_special_tokens=False)["input_ids"])
    if len(fill) != 1:
        raise ValueError(f"{FILLER_TOKEN!r} is not one token for this tokenizer: {fill}")
    head, _, rest = reply.partition(mark)
    head_ids = list(tokenizer(head, add_special_tokens=False)["input_ids"]) if head else []
    rest_ids, rest_text = _tokens_before(tokenizer, rest, at - len(head) - len(mark))
    ids = head_ids + fill * n + rest_ids
    return Forced(p_ids + ids, head + FILLER_TOKEN * n + rest_text, len(ids))
