"""Traces: render (category, relevant facts) into the SFT target, and parse model output back.

``format``: templates and formats; ``parse``: outputs into trace steps and the final answer;
``corrupt``: the seeded incorrect traces; ``build``: the SFT examples of one setting.
"""

from tracekd.seeding import row_rng
from tracekd.traces.build import (
    SETTING_ORDER,
    TARGETS,
    Setting,
    build_traces,
    render_completion,
    trace_schema,
)
from tracekd.traces.corrupt import Corruption, corrupt_trace
from tracekd.traces.format import (
    ANSWER_CLOSE,
    ANSWER_FORMATS,
    ANSWER_OPEN,
    CONTEXT_FORMATS,
    DEFAULT_COMPLETION,
    LIST_FORMATS,
    THINK_CLOSE,
    THINK_OPEN,
    TraceFormat,
    TraceTemplate,
    parse_list,
    render_answer,
    render_context,
    render_list,
    render_prompt,
)
from tracekd.traces.parse import ANSWER_SOURCES, CHAT_END_TOKENS, ParsedOutput, parse_output

__all__ = [
    "ANSWER_CLOSE",
    "ANSWER_FORMATS",
    "ANSWER_OPEN",
    "ANSWER_SOURCES",
    "CHAT_END_TOKENS",
    "CONTEXT_FORMATS",
    "DEFAULT_COMPLETION",
    "LIST_FORMATS",
    "SETTING_ORDER",
    "TARGETS",
    "THINK_CLOSE",
    "THINK_OPEN",
    "Corruption",
    "ParsedOutput",
    "Setting",
    "TraceFormat",
    "TraceTemplate",
    "build_traces",
    "corrupt_trace",
    "parse_list",
    "parse_output",
    "render_answer",
    "render_completion",
    "render_context",
    "render_list",
    "render_prompt",
    "row_rng",
    "trace_schema",
]
