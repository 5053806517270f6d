"""Traces: render (category, relevant facts) into the SFT target, parse model output back.

A trace is the paper's two checkable steps written out by a per-dataset template, e.g.
``The reasoning task in the question is: {category}. I need to use the following facts to
answer the question: {facts}``. The facts are a JSON list, so a rendered trace parses back to
exactly its category and facts (a round-trip property test guards this).
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # polars is needed only to build SFT tables, not to render or parse traces
    import polars as pl


THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

#: what each setting trains on (DESIGN.md, "settings")
TARGETS = ("none", "answer", "trace")


@dataclass(frozen=True)
class Setting:
    """One fine-tuning setting: its name (a path wildcard) and what it trains on."""

    name: str
    target: str  # "none" (prompt baseline), "answer" (vanilla) or "trace"
    corruption: str | None = None  # None: the gold trace; "random": the paper's incorrect trace
    seed: int = 0

    @property
    def trains(self) -> bool:
        """Whether this setting fine-tunes the model (the prompt baseline does not)."""
        return self.target != "none"


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


def render_completion(
    setting: Setting, template: TraceTemplate, answers: Sequence[str], category: str, facts: Sequence[str]
) -> str:
    """The SFT target in the default format (see :meth:`TraceFormat.render_completion`)."""
    return TraceFormat(template).render_completion(setting.target, answers, category, facts)


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
    ends = [pos for pos in (text.find(token) for token in CHAT_END_TOKENS) if pos >= 0]
    if ends:  # the turn ended there: what follows belongs to another turn
        text = text[: min(ends)]
    return text.strip()


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


# ---------------------------------------------------------------- incorrect traces


def row_rng(seed: int, setting: str, row_id: str) -> random.Random:
    """An RNG for one row, independent of row order (a stable hash, not Python's salted one)."""
    digest = hashlib.sha256(f"{seed}\x00{setting}\x00{row_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Corruption:
    """A wrong trace: the drawn category and facts, and where the facts came from."""

    category: str
    facts: list[str]
    relevant: list[int]  # indices into the row's context; -1 for a fact borrowed from elsewhere
    source: str  # "same_context", "other_context" or "mixed"


def corrupt_trace(
    rng: random.Random,
    *,
    category: str,
    categories: Sequence[str],
    context: Sequence[str],
    relevant: Sequence[int],
    donors: Sequence[Sequence[str]],
) -> Corruption:
    """The paper's incorrect trace: another category, and as many facts as the gold set, none gold.

    Facts come from the non-relevant sentences of the same context; when it has too few, the rest
    are drawn from other problems' contexts (``donors``), skipping sentences equal to a gold fact.
    """
    others = sorted(c for c in set(categories) if c != category)
    if not others:
        raise ValueError(f"cannot corrupt category {category!r}: the dataset has no other category")
    wrong_category = rng.choice(others)
    gold_text = {context[i] for i in relevant}
    k = max(len(relevant), 1)
    # one position per distinct non-gold sentence, so a repeated sentence is not picked twice
    first_seen: dict[str, int] = {}
    for i, sentence in enumerate(context):
        if i not in set(relevant) and sentence not in gold_text:
            first_seen.setdefault(sentence, i)
    pool = sorted(first_seen.values())
    picked = sorted(rng.sample(pool, min(k, len(pool))))
    facts = [context[i] for i in picked]
    indices = list(picked)
    borrowed = 0
    for _ in range(100 * k):
        if len(facts) >= k or not donors:
            break
        donor = donors[rng.randrange(len(donors))]
        if not donor:
            continue
        sentence = donor[rng.randrange(len(donor))]
        if sentence in gold_text or sentence in facts:
            continue
        facts.append(sentence)
        indices.append(-1)
        borrowed += 1
    if len(facts) < k:
        raise ValueError("cannot draw enough non-gold facts for an incorrect trace")
    source = "same_context" if borrowed == 0 else ("other_context" if not picked else "mixed")
    return Corruption(wrong_category, facts, indices, source)


def build_traces(
    decomposed: pl.DataFrame,
    *,
    setting: Setting,
    fmt: TraceFormat,
    categories: Sequence[str] | None = None,
) -> pl.DataFrame:
    """SFT examples for one setting: id, split, prompt, completion and the trace fields.

    ``trace_category``/``trace_facts``/``trace_relevant`` are what the completion's trace says
    (gold for ``correct``, drawn for ``incorrect``, null when the target has no trace);
    ``corruption`` records how an incorrect trace was drawn.
    """
    import polars as pl

    rows = decomposed.select("id", "split", "category", "context", "question", "answers", "relevant")
    cats = list(categories) if categories is not None else sorted(set(rows["category"].to_list()))
    contexts = rows["context"].to_list()
    # donors in id order, not row order, so a row's incorrect trace does not depend on where it
    # sits in the frame (its own sentences are never drawn: they are gold or already picked)
    ids = rows["id"].to_list()
    donors = [contexts[j] for j in sorted(range(len(ids)), key=ids.__getitem__)]
    schema = trace_schema()
    out: dict[str, list] = {k: [] for k in schema}
    for row in rows.iter_rows(named=True):
        context, relevant = list(row["context"]), list(row["relevant"])
        if setting.target == "trace" and setting.corruption is not None:
            if setting.corruption != "random":
                raise ValueError(f"unknown corruption scheme {setting.corruption!r}")
            rng = row_rng(setting.seed, setting.name, row["id"])
            bad = corrupt_trace(
                rng,
                category=row["category"],
                categories=cats,
                context=context,
                relevant=relevant,
                donors=donors,
            )
            t_cat, t_facts, t_rel, source = bad.category, bad.facts, bad.relevant, bad.source
        elif setting.target == "trace":
            t_cat, t_rel, source = row["category"], relevant, "gold"
            t_facts = [context[j] for j in relevant]
        else:
            t_cat, t_facts, t_rel, source = None, None, None, None
        completion = fmt.render_completion(
            setting.target, row["answers"], t_cat or "", t_facts or []
        )
        out["id"].append(row["id"])
        out["split"].append(row["split"])
        out["setting"].append(setting.name)
        out["prompt"].append(fmt.prompt(context, row["question"]))
        out["completion"].append(completion)
        out["trace_category"].append(t_cat)
        out["trace_facts"].append(t_facts)
        out["trace_relevant"].append(t_rel)
        out["corruption"].append(source)
    return pl.DataFrame(out, schema=schema)


def trace_schema() -> dict[str, pl.DataType]:
    """Column types of a traces table."""
    import polars as pl

    return {
        "id": pl.String,
        "split": pl.String,
        "setting": pl.String,
        "prompt": pl.String,
        "completion": pl.String,
        "trace_category": pl.String,
        "trace_facts": pl.List(pl.String),
        "trace_relevant": pl.List(pl.Int64),
        "corruption": pl.String,
    }
