"""The paper's prompts and traces, character for character, from config/config.yaml.

The released outputs (``$TRACEKD_REAL_DATA/reference/trace_check_qa``; skipped when absent) hold
the authors' rendered prompt (``input``) and raw output (``prediction``) of every test row. Our
user turn, system message and completion are rebuilt from each row's facts and question with the
study's config and rendered by the models' real chat templates: TRL ships verbatim copies of
Qwen3's and Llama 3.2's (``trl/chat_templates``), so no tokenizer is downloaded. A tiny
tokenizer carries each template and the model's special tokens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import trl

from tracekd.config import chat_options, load_config, setting_by_name
from tracekd.evaluate.reference import check_prompts
from tracekd.model.chat import ChatFormat, completion_text, conversation_text
from tracekd.model.tiny import train_tokenizer
from tracekd.traces import TraceFormat, parse_list, parse_output

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "config"
REAL_DATA = Path(os.environ.get("TRACEKD_REAL_DATA", PROJECT_ROOT / ".." / "shared" / "data"))
REFERENCE = REAL_DATA / "reference" / "trace_check_qa"
TEMPLATES = Path(trl.__file__).parent / "chat_templates"

#: (released file, dataset, model, setting) of every released outputs file beside the project
RUNS = [
    ("cotempqa/outputs_equal_Llama-3.2-1B-Instruct-sft-adapter_default.json", "CoTemp", "llama", "vanilla"),
    ("cotempqa/outputs_equal_Qwen3-1.7B-sft-adapter-reasoning-facts_default.json", "CoTemp", "qwen", "correct"),
    ("cotempqa/outputs_equal_Qwen3-1.7B-sft-adapter-reasoning-facts-perturbed_default.json", "CoTemp", "qwen", "incorrect"),
    ("cotempqa/outputs_equal_Qwen3-1.7B_default.json", "CoTemp", "qwen", "prompt"),
    ("babi/outputs_Qwen3-1.7B-sft-adapter-reasoning-facts_default.json", "bAbI", "qwen", "correct"),
]
#: how each model's decoded reply begins (its role header, special tokens skipped)
ROLE_LINE = {"qwen": "assistant\n", "llama": "assistant\n\n"}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return load_config(CONFIG_DIR / "config.yaml")


def template_tokenizer(model: str) -> Any:
    """A tiny tokenizer that renders with the real chat template of ``model``."""
    tokenizer = train_tokenizer(["Answer the question based on the context."], vocab_size=300)
    if model == "llama":
        tokenizer.add_special_tokens(
            {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
             "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>"]}
        )  # fmt: skip
        tokenizer.chat_template = (TEMPLATES / "llama3_2.jinja").read_text(encoding="utf-8")
    else:
        tokenizer.chat_template = (TEMPLATES / "qwen3.jinja").read_text(encoding="utf-8")
    return tokenizer


def formats(config: dict[str, Any], dataset: str, model: str, setting: str) -> tuple[TraceFormat, ChatFormat]:
    trace_format = TraceFormat.from_config(config["datasets"][dataset], setting_by_name(config, setting))
    return trace_format, ChatFormat.from_config(chat_options(config, dataset, model, setting))


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def released() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"released outputs not found at {REFERENCE} (set TRACEKD_REAL_DATA)")
    return REFERENCE


@pytest.mark.parametrize(("name", "dataset", "model", "setting"), RUNS)
def test_prompts_equal_the_released_inputs(
    released: Path, config: dict[str, Any], name: str, dataset: str, model: str, setting: str
) -> None:
    """System message, user turn and chat rendering (without a generation prompt, as the
    released ``input``) equal the authors' for every row; the prompted baseline is the bare
    text with the facts one per line."""
    trace_format, chat = formats(config, dataset, model, setting)
    result = check_prompts(
        released / name, dataset=dataset, fmt=trace_format, chat=chat,
        tokenizer=template_tokenizer(model),
    )  # fmt: skip
    assert result["checked"] == (376 if dataset == "bAbI" else 87)
    assert result["equal"] == result["checked"], result["first_mismatch"]


@pytest.mark.parametrize(
    ("name", "dataset", "model", "setting", "least"),
    [
        (RUNS[0][0], "CoTemp", "llama", "vanilla", 87),
        (RUNS[1][0], "CoTemp", "qwen", "correct", 68),
        (RUNS[4][0], "bAbI", "qwen", "correct", 375),
    ],
)
def test_completions_have_the_shape_of_the_released_outputs(
    released: Path, config: dict[str, Any], name: str, dataset: str, model: str, setting: str,
    least: int,
) -> None:  # fmt: skip
    """Our completion for the category, facts and answer a released output states, rendered by
    the model's template as training renders it, is that output character for character: every
    output of the trained shape (the others loop until the generation limit, or drop the tags)."""
    trace_format, chat = formats(config, dataset, model, setting)
    tokenizer = template_tokenizer(model)
    target = setting_by_name(config, setting)["target"]
    checked = equal = 0
    for record in rows(released / name):
        reply = record["prediction"].removeprefix(ROLE_LINE[model])
        parsed = parse_output(reply, trace_format.trace)
        whole = (
            parsed.status == "ok" and parsed.answer_source == "answer_tag" and reply.startswith("<think>")
            if target == "trace"
            else parsed.status == "no_trace"
        )
        if not whole:
            continue
        # the answer's items as the model wrote them (a stray space included)
        items = parse_list(parsed.answer) or [parsed.answer]
        completion = trace_format.render_completion(
            target, items, parsed.category or "", parsed.facts or []
        )
        user = trace_format.prompt(record.get("facts") or [], record["question"])
        ours = completion_text(tokenizer, user, completion, chat).removesuffix(tokenizer.eos_token)
        checked += 1
        equal += ours == reply
    assert checked >= least
    assert equal == checked


def test_qwen_vanilla_target_gets_the_empty_think_block(config: dict[str, Any]) -> None:
    """Qwen3's template writes an empty think block before a bare answer (as the paper trained
    its vanilla runs); the parser reads that as an answer without a trace."""
    trace_format, chat = formats(config, "CoTemp", "qwen", "vanilla")
    tokenizer = template_tokenizer("qwen")
    completion = trace_format.render_completion("answer", ["Liberals"], "", [])
    assert completion == "['Liberals']"
    reply = completion_text(tokenizer, "q", completion, chat)
    assert reply == "<think>\n\n</think>\n\n['Liberals']<|im_end|>"
    parsed = parse_output(reply, trace_format.trace)
    assert parsed.status == "no_trace" and parsed.answer == '["Liberals"]'


def test_qwen_thinking_off_would_double_the_think_block(config: dict[str, Any]) -> None:
    """With enable_thinking false the generation prompt already holds an empty think block, so a
    trace target would train on a conversation the prompt does not begin: refused."""
    trace_format, chat = formats(config, "CoTemp", "qwen", "correct")
    off = ChatFormat(chat.system, {"enable_thinking": False})
    completion = trace_format.render_completion("trace", ["X"], "equal", ["A fact."])
    with pytest.raises(ValueError, match="enable_thinking"):
        completion_text(template_tokenizer("qwen"), "q", completion, off)


def test_llama_header_dates_follow_the_released_runs(config: dict[str, Any]) -> None:
    tokenizer = template_tokenizer("llama")
    for dataset, date in (("CoTemp", "21 May 2025"), ("bAbI", "17 May 2025")):
        trace_format, chat = formats(config, dataset, "llama", "correct")
        text = conversation_text(tokenizer, trace_format.prompt(["A."], "Q?"), chat)
        assert f"Today Date: {date}\n" in text
