"""Model outputs parsed back into the trace's steps and the final answer."""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from tracekd.traces.format import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    TraceTemplate,
    parse_list,
    render_list,
)

#: where a final answer was read from (``ParsedOutput.answer_source``), in order of preference
ANSWER_SOURCES = ("answer_tag", "after_think", "whole_output", "none")


@dataclass(frozen=True)
class ParsedOutput:
    """A model output split into its trace steps and answer, with how well it parsed.

    ``answer`` is the model's final answer and nothing else: the ``<answer>`` span when there
    is one, else what follows ``</think>``, else the whole output; ``answer_source`` says
    which (``answer_tag``, ``after_think``, ``whole_output``, or ``none`` for an empty output).
    Every answer rule scores ``answer`` alone, so trace text never reaches it.
    """

    trace_text: str | None
    category: str | None
    facts: list[str] | None
    answer: str | None
    status: str
    answer_source: str = "none"


def parse_output(text: str, template: TraceTemplate) -> ParsedOutput:
    """Split a raw generation into trace text, category, facts and answer.

    Status is ``ok``, ``no_trace`` (an answer with no think span), ``unterminated`` (a think or
    answer tag never closed), ``bad_trace`` (the think span does not follow the template),
    ``bad_facts`` (the facts are not a list of strings) or ``empty``. Nothing is dropped: the
    answer falls back to whatever text follows the trace, or the whole output.

    Also read (shapes seen in the paper's released outputs): chat-template remnants around the
    reply (a leading ``assistant`` line, special tokens, anything after ``<|im_end|>`` or
    ``<|eot_id|>``); a ``</think>`` whose ``<think>`` stayed in the prompt (a trace); an
    unclosed ``<think>`` followed by ``<answer>`` (the trace ends there, ``unterminated``); an
    untagged answer after an ``Answer:`` label or after the trace restated without tags. An
    answer that is a JSON or Python list literal of strings comes back as a JSON list (read by
    ``parse_list``, never evaluated).
    """
    text = _strip_chat_remnants(text)
    if not text:
        return ParsedOutput(None, None, None, None, "empty", "none")
    trace_text, rest, think_closed = _think_span(text)
    answer_text, answer_closed, tagged = _answer_text(rest, template)
    if tagged:
        source = "answer_tag"
    else:
        source = "whole_output" if trace_text is None else "after_think"
    status = "ok" if think_closed and answer_closed else "unterminated"
    # an empty think block is no trace (Qwen3's template writes one before a bare answer)
    if trace_text is None or not trace_text.strip():
        status = "no_trace" if status == "ok" else status
        return ParsedOutput(None, None, None, answer_text, status, source)
    category, facts = template.parse(trace_text)
    if status == "ok" and category is None:
        status = "bad_trace"
    elif status == "ok" and facts is None:
        status = "bad_facts"
    return ParsedOutput(trace_text.strip(), category, facts, answer_text, status, source)


# special tokens a decoder leaves in the text when it does not skip them
_TURN_OPENERS = ("<|begin_of_text|>", "<|im_start|>", "<|start_header_id|>", "<start_of_turn>")
#: end-of-turn tokens (Qwen, Llama, Gemma); ``parse_output`` cuts a reply at the first one
CHAT_END_TOKENS: tuple[str, ...] = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<end_of_turn>",
)
# the role line a chat template writes before the reply ("assistant\n", Llama's header)
_ROLE_LINE = re.compile(r"(?:assistant|model)(?:<\|end_header_id\|>|[ \t]*(?:\n|$))")
# an answer label at the start of a line: "Answer:", "Final answer:", "The answer is[:]"
_ANSWER_LABEL = re.compile(
    r"^[ \t]*(?:the[ \t]+)?(?:final[ \t]+)?answer(?:[ \t]*:|[ \t]+is\b[ \t]*:?)",
    re.IGNORECASE | re.MULTILINE,
)
# an untagged answer longer than this many lines is not searched for a restated trace
_MAX_RESTATED_LINES = 50


def _strip_chat_remnants(text: str) -> str:
    """The reply without chat-template tokens around it (nothing after an end of turn)."""
    text = text.strip()
    opened = False
    for token in _TURN_OPENERS:
        if text.startswith(token):
            text, opened = text[len(token) :].lstrip(), True
    role = _ROLE_LINE.match(text)
    # after a turn token any role line goes; without one only "assistant" followed by a line
    # break or Llama's header end (a lone "assistant" may be the answer itself)
    if role and (opened or (text.startswith("assistant") and role.group().endswith(("\n", ">")))):
        text = text[role.end() :]
    end = _end_of_turn(text)
    if end is not None:  # the turn ended there: what follows belongs to another turn
        text = text[:end]
    return text.strip()


def _end_of_turn(text: str) -> int | None:
    """Where the first end-of-turn token outside an open think span is; ``None`` without one.

    An end-of-turn token's text inside a trace that is closed later is trace text (a fact may
    quote it), not the end of the turn.
    """
    hits = sorted(pos for token in CHAT_END_TOKENS for pos in _occurrences(text, token))
    if not hits:
        return None
    opens, closes = _occurrences(text, THINK_OPEN), _occurrences(text, THINK_CLOSE)
    for pos in hits:  # bisect: a long output with many tags stays linear
        last_open = opens[bisect_left(opens, pos) - 1] if bisect_left(opens, pos) else -1
        before = bisect_left(closes, pos)
        last_close = closes[before - 1] if before else -1
        if not (last_open > last_close and before < len(closes)):
            return pos
    return None


def _occurrences(text: str, token: str) -> list[int]:
    found, at = [], text.find(token)
    while at >= 0:
        found.append(at)
        at = text.find(token, at + 1)
    return found


def _think_span(text: str) -> tuple[str | None, str, bool]:
    """(trace or ``None``, the text left for the answer, whether the think span was closed)."""
    # the last think span is the model's own (Qwen3's template may open an empty one)
    start = text.rfind(THINK_OPEN)
    if start < 0:
        # a "</think>" before any answer tag: its "<think>" was in the prompt or got lost
        end, answer_at = text.find(THINK_CLOSE), text.find(ANSWER_OPEN)
        if end < 0 or 0 <= answer_at < end:
            return None, text, True
        return text[:end], text[end + len(THINK_CLOSE) :], True
    body = start + len(THINK_OPEN)
    end = text.find(THINK_CLOSE, body)
    if end >= 0:
        return text[body:end], text[end + len(THINK_CLOSE) :], True
    answer_at = text.find(ANSWER_OPEN, body)
    if answer_at >= 0:  # never closed, but an answer followed: the trace ends there
        return text[body:answer_at], text[answer_at:], False
    return text[body:], "", False


def _answer_text(rest: str, template: TraceTemplate) -> tuple[str | None, bool, bool]:
    """The answer in the text after the trace, whether its tag (if any) was closed, and
    whether it came from an ``<answer>`` tag."""
    span = _answer_span(rest)
    if span is not None:
        return _canonical_answer(span[0]), span[1], True
    close = rest.find(ANSWER_CLOSE)
    if close >= 0:  # "...</answer>" whose opening tag got lost
        rest = rest[:close]
    rest = rest.strip()
    labels = list(_ANSWER_LABEL.finditer(rest))
    if labels:
        rest = rest[labels[-1].end() :].strip()
    else:
        rest = _drop_restated_trace(rest, template)
    return _canonical_answer(rest) or None, True, close >= 0


def _answer_span(text: str) -> tuple[str, bool] | None:
    start = text.find(ANSWER_OPEN)
    if start < 0:
        return None
    end = text.find(ANSWER_CLOSE, start)
    if end < 0:
        return text[start + len(ANSWER_OPEN) :].strip(), False
    return text[start + len(ANSWER_OPEN) : end].strip(), True


def _drop_restated_trace(text: str, template: TraceTemplate) -> str:
    """``text`` without leading lines that restate the trace without tags.

    The restated trace is the shortest run of leading lines that the template parses; failing
    that (the model drifts, e.g. "the following fact"), the lines from one that opens with the
    template's first words to the first one that ends with a list. The answer must follow it.
    """
    lines = text.splitlines()
    if not 2 <= len(lines) <= _MAX_RESTATED_LINES:
        return text
    # a restated trace ends with its facts list: only prefixes that end with "]" can be one
    ends = [k for k in range(1, len(lines)) if lines[k - 1].rstrip().endswith("]")]
    for k in ends:
        category, facts = template.parse("\n".join(lines[:k]))
        if category is not None and facts is not None:
            return "\n".join(lines[k:]).strip()
    lead = _template_lead(template)
    if ends and lead and " ".join(lines[0].split()).lower().startswith(lead):
        return "\n".join(lines[ends[0] :]).strip()
    return text


def _template_lead(template: TraceTemplate) -> str:
    """The template's fixed words before its first placeholder (spaces collapsed, lower case)."""
    head = re.split(r"\{category\}|\{facts\}", template.text, maxsplit=1)[0]
    return " ".join(head.split()).lower()


def _canonical_answer(answer: str) -> str:
    """A list literal of strings (JSON or Python) as a JSON list; any other text unchanged."""
    # a sentence-final period after the list ("The answer is [...].") is not part of it
    literal = answer[:-1] if answer.endswith("].") else answer
    if literal.startswith("[") and literal.endswith("]"):
        items = parse_list(literal)
        if items is not None:
            return render_list(items)
    return answer
