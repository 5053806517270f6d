"""Tests of the chat formatting shared by training and inference."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekd.model.chat import (
    CHATML_TEMPLATE,
    ChatFormat,
    encode_all,
    encode_example,
    end_of_turn_id,
    messages,
    prompt_ids,
    prompt_text,
)
from tracekd.model.tiny import train_tokenizer

TEXTS = [
    "Mary went to the kitchen. John moved to the garden.",
    "Where is Mary? kitchen",
    "<think>The reasoning task in the question is: single-supporting-fact.</think>",
    '<answer>["kitchen"]</answer>',
    "Answer the question based on the context: Question: Only return the answer.",
]
GENERATION_PROMPT = "<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return train_tokenizer(TEXTS, vocab_size=400)


def test_tokenizer_has_chatml_and_eos(tokenizer: Any) -> None:
    assert tokenizer.chat_template == CHATML_TEMPLATE
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    assert end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert len(tokenizer) <= 400


def test_prompt_text_ends_with_generation_prompt(tokenizer: Any) -> None:
    text = prompt_text(tokenizer, "Where is Mary?", ChatFormat())
    assert text == f"<|im_start|>user\nWhere is Mary?<|im_end|>\n{GENERATION_PROMPT}"
    assert "system" not in text


def test_system_message(tokenizer: Any) -> None:
    fmt = ChatFormat(system="You are terse.")
    assert messages("hi", fmt) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
    ]
    text = prompt_text(tokenizer, "hi", fmt)
    assert text.startswith("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nhi")
    assert text.endswith(GENERATION_PROMPT)
    assert messages("hi", ChatFormat(system="")) == [{"role": "user", "content": "hi"}]


def test_from_config() -> None:
    fmt = ChatFormat.from_config(
        {"system": "S", "chat_template_kwargs": {"enable_thinking": False}}
    )
    assert fmt.system == "S" and dict(fmt.template_kwargs) == {"enable_thinking": False}
    bare = ChatFormat.from_config({"chat_template_kwargs": None})
    assert bare.system is None and dict(bare.template_kwargs) == {}


def test_template_kwargs_reach_the_template(tokenizer: Any) -> None:
    dated = copy.deepcopy(tokenizer)
    dated.chat_template = "Date: {{ date_string }}\n" + CHATML_TEMPLATE
    fmt = ChatFormat(template_kwargs={"date_string": "26 Jul 2024"})
    text = prompt_text(dated, "hi", fmt)
    assert text.startswith("Date: 26 Jul 2024\n")
    assert text.endswith(GENERATION_PROMPT)
    assert tokenizer.chat_template == CHATML_TEMPLATE  # the original is untouched
    ids = prompt_ids(dated, "hi", fmt)
    assert dated.decode(ids) == text


def test_prompt_ids_do_not_add_special_tokens(tokenizer: Any) -> None:
    fmt = ChatFormat()
    ids = prompt_ids(tokenizer, "Where is Mary?", fmt)
    start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[0] == start  # from the template, no BOS added in front
    assert ids.count(start) == 2
    assert tokenizer.decode(ids) == prompt_text(tokenizer, "Where is Mary?", fmt)


def test_encode_example_masks_the_prompt(tokenizer: Any) -> None:
    fmt = ChatFormat()
    user, completion = "Where is Mary?", '<answer>["kitchen"]</answer>'
    enc = encode_example(tokenizer, user, completion, fmt, max_length=10_000)
    p_ids = prompt_ids(tokenizer, user, fmt)
    c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    assert enc.input_ids == p_ids + c_ids + [tokenizer.eos_token_id]
    assert enc.completion_mask == [0] * len(p_ids) + [1] * (len(c_ids) + 1)
    assert enc.input_ids[-1] == end_of_turn_id(tokenizer) and enc.completion_mask[-1] == 1
    assert not enc.truncated
    completion_ids = [i for i, m in zip(enc.input_ids, enc.completion_mask, strict=True) if m]
    assert tokenizer.decode(completion_ids, skip_special_tokens=True) == completion


def test_encode_example_truncation(tokenizer: Any) -> None:
    fmt = ChatFormat()
    full = encode_example(tokenizer, "Where is Mary?", "kitchen", fmt, max_length=10_000)
    n = len(full.input_ids)
    exact = encode_example(tokenizer, "Where is Mary?", "kitchen", fmt, max_length=n)
    assert exact == full and not exact.truncated
    cut = encode_example(tokenizer, "Where is Mary?", "kitchen", fmt, max_length=n - 1)
    assert cut.truncated
    assert cut.input_ids == full.input_ids[: n - 1]  # the start (prompt) is kept
    assert cut.completion_mask == full.completion_mask[: n - 1]
    tiny = encode_example(tokenizer, "Where is Mary?", "kitchen", fmt, max_length=3)
    assert len(tiny.input_ids) == len(tiny.completion_mask) == 3
    assert tiny.truncated and sum(tiny.completion_mask) == 0


def test_encode_empty_completion_still_ends_the_turn(tokenizer: Any) -> None:
    enc = encode_example(tokenizer, "hi", "", ChatFormat(), max_length=100)
    assert enc.completion_mask[-1] == 1 and sum(enc.completion_mask) == 1
    assert enc.input_ids[-1] == tokenizer.eos_token_id


def test_encode_all_counts_truncations(tokenizer: Any) -> None:
    fmt = ChatFormat()
    prompts = ["hi", "Where is Mary? " * 20, "Where is John?"]
    completions = ["a", "kitchen", "garden " * 30]
    lengths = [
        len(encode_example(tokenizer, p, c, fmt, 10_000).input_ids)
        for p, c in zip(prompts, completions, strict=True)
    ]
    limit = sorted(lengths)[0]
    cols, truncated = encode_all(tokenizer, prompts, completions, fmt, max_length=limit)
    assert set(cols) == {"input_ids", "completion_mask"}
    assert truncated == sum(n > limit for n in lengths) == 2
    assert [len(ids) for ids in cols["input_ids"]] == [min(n, limit) for n in lengths]
    assert [len(m) for m in cols["completion_mask"]] == [len(i) for i in cols["input_ids"]]
    _, none = encode_all(tokenizer, prompts, completions, fmt, max_length=10_000)
    assert none == 0


def test_encode_all_needs_equal_lengths(tokenizer: Any) -> None:
    with pytest.raises(ValueError):
        encode_all(tokenizer, ["a", "b"], ["c"], ChatFormat(), max_length=100)


def test_end_of_turn_requires_eos(tokenizer: Any) -> None:
    class NoEos:
        eos_token_id = None

    with pytest.raises(ValueError, match="EOS"):
        end_of_turn_id(NoEos())


@settings(max_examples=40, deadline=None)
@given(
    user=st.text(min_size=1, max_size=40),
    completion=st.text(max_size=40),
    max_length=st.integers(1, 200),
)
def test_encode_example_invariants(
    tokenizer: Any, user: str, completion: str, max_length: int
) -> None:
    enc = encode_example(tokenizer, user, completion, ChatFormat(), max_length)
    full = encode_example(tokenizer, user, completion, ChatFormat(), 10_000)
    assert len(enc.input_ids) == len(enc.completion_mask) <= max_length
    assert enc.truncated == (len(full.input_ids) > max_length)
    # the mask is a block of zeros followed by a block of ones
    mask = full.completion_mask
    first_one = mask.index(1)
    assert set(mask[:first_one]) == {0} and set(mask[first_one:]) == {1}
    assert full.input_ids[:first_one] == prompt_ids(tokenizer, user, ChatFormat())
