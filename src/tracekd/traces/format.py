"""Trace formats: a dataset's prompt, trace sentence and SFT completion, rendered.

A trace is the paper's two checkable steps written out by a per-dataset template, e.g.
``The category of the question asked is: {category}.\nI need to use the following text to
answer the question: {facts}``. The facts are a list literal, so a rendered trace parses back to
exactly its category and facts (a round-trip property test guards this).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

#: how a list of strings is written: Python's ``str(list)`` (the paper's released runs) or JSON
LIST_FORMATS = ("python_list", "json_list")
#: how a prompt writes its context: a list literal, or one sentence per line
CONTEXT_FORMATS = (*LIST_FORMATS, "lines")
#: how a completion writes its answer: a list literal, or the items joined by commas (bAbI)
ANSWER_FORMATS = (*LIST_FORMATS, "text")


@dataclass(frozen=True)
class TraceTemplate:
    """A dataset's trace sentence with ``{category}`` and ``{facts}`` placeholders.

    ``facts`` says how the facts list is written (``python_list`` or ``json_list``); parsing
    reads either, so a model that drifts from one literal style to the other still parses.
    """

    text: str
    facts: str = "json_list"

    def __post_init__(self) -> None:
        for field in ("{category}", "{facts}"):
            if self.text.count(field) != 1:
                raise ValueError(f"trace template must contain {field} exactly once: {self.text!r}")
        _check_choice("facts format", self.facts, LIST_FORMATS)

    def render(self, category: str, facts: Sequence[str]) -> str:
        """The trace for ``category`` and ``facts`` (facts as a list literal)."""
        # one pass, so a category that itself reads "{facts}" is not substituted again
        values = {"{category}": category, "{facts}": render_list(facts, self.facts)}
        return re.sub(r"\{category\}|\{facts\}", lambda m: values[m.group(0)], self.text)

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\{category\}|\{facts\})", self.text)
        space = r"\s*"
        regex: list[str] = []

        def add(piece: str) -> None:
            # two adjacent \s* would split one whitespace run every possible way (quadratic)
            if not (piece == space and regex and regex[-1] == space):
                regex.append(piece)

        for part in parts:
            if part == "{category}":
                # The category starts and ends with a non-space character (it is stripped
                # anyway), and takes the whitespace before it into its optional group: with a
                # bare ``.*?`` beside ``\s*``, a long whitespace run in a model's output made
                # matching quadratic (a minute for 100 KB of spaces).
                if regex and regex[-1] == space:
                    regex.pop()
                add(r"(?:\s*(?P<category>\S(?:.*?\S)?))?")
                add(space)
            elif part == "{facts}":
                # any text: a list literal parses into facts; anything else (the paper's
                # perturbed traces name one bare sentence) keeps the category readable
                add(r"(?P<facts>.*)")
            else:
                # tolerate the model's whitespace drift around the fixed words
                if part[:1].isspace():
                    add(space)
                words = part.split()
                for i, word in enumerate(words):
                    if i:
                        add(space)
                    add(re.escape(word))
                if part[-1:].isspace():
                    add(space)
        return re.compile("^" + "".join(regex) + "$", re.DOTALL)

    def parse(self, trace: str) -> tuple[str | None, list[str] | None]:
        """Category and facts of a trace; ``None`` for a part that cannot be read."""
        match = self._pattern.match(trace.strip())
        if match is None:
            return None, None
        return (match.group("category") or "").strip(), parse_list(match.group("facts"))


def render_list(items: Sequence[str], style: str = "json_list") -> str:
    """A list of strings as a literal that :func:`parse_list` reads back.

    ``json_list``: JSON (``["a", "b"]``); ``python_list``: Python's ``str(list)``
    (``['a', 'b']``, double quotes for an item holding a single quote), as the paper's released
    prompts and traces write them.
    """
    if style == "python_list":
        return repr([str(item) for item in items])
    if style != "json_list":
        raise ValueError(f"unknown list format {style!r}; expected one of {LIST_FORMATS}")
    return json.dumps(list(items), ensure_ascii=False)


def _check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {tuple(choices)}")


def parse_list(text: str) -> list[str] | None:
    """Read a JSON or Python list literal of strings; ``None`` when it is not one (never ``eval``)."""
    text = text.strip()
    for reader in (json.loads, ast.literal_eval):
        try:
            value = reader(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
    return None


def render_context(context: Sequence[str], style: str = "json_list") -> str:
    """The context as a prompt writes it: a list literal, or one sentence per line."""
    if style == "lines":
        return "\n".join(context)
    return render_list(context, style)


def render_prompt(
    template: str, context: Sequence[str], question: str, context_format: str = "json_list"
) -> str:
    """The user message: the dataset's prompt template with the context and question."""
    # one pass, so a context sentence that reads "{question}" is not substituted again
    values = {"{context}": render_context(context, context_format), "{question}": question}
    return re.sub(r"\{context\}|\{question\}", lambda m: values[m.group(0)], template)


def render_answer(answers: Sequence[str], style: str = "json_list") -> str:
    """The answer as a completion writes it: a list literal, or ``text`` (items joined by ",")."""
    if style == "text":
        return ",".join(answers)
    return render_list(answers, style)


#: today's completion shape; the paper's released runs put newlines around the trace
DEFAULT_COMPLETION = "<think>{trace}</think> <answer>{answer}</answer>"


@dataclass(frozen=True)
class TraceFormat:
    """How a dataset writes one problem: the prompt, the trace and the SFT completion.

    ``context``/``answer`` are the styles of :func:`render_context` and :func:`render_answer`;
    ``completion`` wraps a trace target, with ``{trace}`` and ``{answer}`` placeholders (an
    answer-only target is the rendered answer alone).
    """

    trace: TraceTemplate
    prompt_template: str = (
        "Answer the question based on the context: {context} Question: {question} "
        "Only return the answer."
    )
    context: str = "json_list"
    answer: str = "json_list"
    completion: str = DEFAULT_COMPLETION

    def __post_init__(self) -> None:
        _check_choice("context format", self.context, CONTEXT_FORMATS)
        _check_choice("answer format", self.answer, ANSWER_FORMATS)
        for field in ("{trace}", "{answer}"):
            if self.completion.count(field) != 1:
                raise ValueError(
                    f"completion template must contain {field} exactly once: {self.completion!r}"
                )

    @classmethod
    def from_config(
        cls, dataset: Mapping[str, Any], setting: Mapping[str, Any] | None = None
    ) -> TraceFormat:
        """A dataset's config block (``prompt_template``, ``trace_template``, ``format``), with a
        setting's own ``context_format`` (e.g. the prompted baseline's plain lines) on top."""
        style = dict(dataset.get("format") or {})
        context = (setting or {}).get("context_format") or style.get("context", "json_list")
        return cls(
            trace=TraceTemplate(dataset["trace_template"], style.get("facts", "json_list")),
            prompt_template=dataset["prompt_template"],
            context=context,
            answer=style.get("answer", "json_list"),
            completion=style.get("completion", DEFAULT_COMPLETION),
        )

    def prompt(self, context: Sequence[str], question: str) -> str:
        """The user message for one problem."""
        return render_prompt(self.prompt_template, context, question, self.context)

    def render_completion(
        self, target: str, answers: Sequence[str], category: str, facts: Sequence[str]
    ) -> str:
        """The SFT target: the answer alone (``answer``/``none`` targets) or trace then answer."""
        answer = render_answer(answers, self.answer)
        if target != "trace":
            return answer
        values = {"{trace}": self.trace.render(category, facts), "{answer}": answer}
        return re.sub(r"\{trace\}|\{answer\}", lambda m: values[m.group(0)], self.completion)
