"""bAbI tasks v1.2 (Weston et al. 2015): the dataset plug-in, its parser and decomposition.

category = the task name, relevant facts = the supporting line ids mapped into the context,
answer = the second tab field (qa8's comma lists compared as sets). The original text format:

A bAbI file is a sequence of *stories*. Every line starts with an integer id;
the id restarts at 1 at the beginning of each story. A story line reads
``N sentence``; a question line reads ``N question<TAB>answer<TAB>ids``, where
``ids`` are the (space separated) ids of the supporting story lines. Question
lines take ids too, so supporting ids skip them; a story may hold several
questions, each seeing every story sentence before it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.datasets.base import (
    SCHEMA,
    AnswerScore,
    Released,
    Report,
    Sampling,
    check_synthetic_size,
    sample_rows,
)
from tracekd.datasets.released import (
    Where,
    field_of,
    golds_of,
    list_literal,
    located,
    paper_final_answer,
    paper_normalize,
)
from tracekd.errors import RawFormatError
from tracekd.readers import decode_utf8, open_input, walk_files
from tracekd.text import match_text_answer

BABI_TASKS: dict[str, str] = {
    "qa1": "single-supporting-fact",
    "qa2": "two-supporting-facts",
    "qa3": "three-supporting-facts",
    "qa4": "two-arg-relations",
    "qa5": "three-arg-relations",
    "qa6": "yes-no-questions",
    "qa7": "counting",
    "qa8": "lists-sets",
    "qa9": "simple-negation",
    "qa10": "indefinite-knowledge",
    "qa11": "basic-coreference",
    "qa12": "conjunction",
    "qa13": "compound-coreference",
    "qa14": "time-reasoning",
    "qa15": "basic-deduction",
    "qa16": "basic-induction",
    "qa17": "positional-reasoning",
    "qa18": "size-reasoning",
    "qa19": "path-finding",
    "qa20": "agents-motivations",
}

# The eleven tasks the paper (arXiv 2505.13792) keeps.
PAPER_TASKS: tuple[str, ...] = (
    "qa1",
    "qa2",
    "qa4",
    "qa7",
    "qa8",
    "qa12",
    "qa14",
    "qa15",
    "qa16",
    "qa17",
    "qa18",
)

# Tasks whose answer is a comma list whose order carries no meaning.
SET_ANSWER_TASKS = frozenset({"qa8"})

_ID = re.compile(r"[0-9]+")
# line ids count lines of one story: 18 digits stay far inside 64 bits (and Python's int())
_MAX_ID_DIGITS = 18


@dataclass(frozen=True)
class BabiQuestion:
    """One bAbI question with the story sentences that precede it."""

    task: str
    split: str
    story: int
    line: int
    row: int
    context: tuple[str, ...]
    context_ids: tuple[int, ...]
    question: str
    answers: tuple[str, ...]
    supporting: tuple[int, ...]
    relevant: tuple[int, ...]
    missing_support: tuple[int, ...]

    @property
    def category(self) -> str:
        """The task name, e.g. ``single-supporting-fact`` (the classification label)."""
        return BABI_TASKS[self.task]


def task_filename(task: str, split: str) -> str:
    """The original file name of a task and split, e.g. ``qa1_single-supporting-fact_train.txt``."""
    _check_task(task)
    return f"{task}_{BABI_TASKS[task]}_{split}.txt"


def _check_task(task: str) -> None:
    if task not in BABI_TASKS:
        raise ValueError(f"unknown bAbI task {task!r}; expected one of qa1..qa20")


def _split_id(line: str, source: str, row: int) -> tuple[int, str]:
    """Split ``'N rest'`` into ``(N, rest)``; the id must be a positive integer."""
    head, _, rest = line.partition(" ")
    if not _ID.fullmatch(head):
        shown = line if len(line) <= 40 else line[:40] + "..."
        raise RawFormatError(
            source, row, "id", f"line does not start with an integer id: {shown!r}"
        )
    if len(head) > _MAX_ID_DIGITS:
        raise RawFormatError(source, row, "id", f"line id has {len(head)} digits; too large")
    number = int(head)
    if number < 1:
        raise RawFormatError(source, row, "id", f"line id must be >= 1, found {number}")
    return number, rest


def _parse_answers(raw: str, task: str, source: str, row: int) -> tuple[str, ...]:
    answer = raw.strip()
    if not answer:
        raise RawFormatError(source, row, "answer", "empty answer")
    if task not in SET_ANSWER_TASKS:
        return (answer,)
    items = tuple(item.strip() for item in answer.split(","))
    if any(not item for item in items):
        raise RawFormatError(source, row, "answer", f"empty item in answer list {answer!r}")
    return items


def _parse_supporting(raw: str, source: str, row: int) -> tuple[int, ...]:
    tokens = raw.split()
    if not tokens:
        raise RawFormatError(source, row, "supporting", "no supporting line ids")
    for token in tokens:
        if not _ID.fullmatch(token):
            raise RawFormatError(
                source, row, "supporting", f"supporting id is not an integer: {token!r}"
            )
        if len(token) > _MAX_ID_DIGITS:
            raise RawFormatError(
                source, row, "supporting", f"supporting id has {len(token)} digits; too large"
            )
    return tuple(int(token) for token in tokens)


def parse_babi(text: str, *, task: str, split: str, source: str = "<string>") -> list[BabiQuestion]:
    """Parse one bAbI file's text into its questions, in file order.

    ``source`` names the file in error messages. Raises :class:`RawFormatError`
    (file, 1-based row, field) on malformed input. A supporting id that is not
    an earlier story sentence of the same story is not an error: it is kept in
    ``supporting`` and reported in ``missing_support``.
    """
    _check_task(task)
    # A UTF-8 byte-order mark (added by some editors) is not part of the first id.
    lines = text.removeprefix("\ufeff").split("\n")
    # A final newline (or a few trailing blank lines) is not a malformed row.
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise RawFormatError(source, None, "text", "empty file")

    questions: list[BabiQuestion] = []
    story = -1
    prev_id = 0
    sentences: list[str] = []
    sentence_ids: list[int] = []
    for row, raw_line in enumerate(lines, start=1):
        line = raw_line.rstrip("\r")
        if "\r" in line:
            # old Mac line endings (CR only) would glue many lines into one garbled row
            raise RawFormatError(source, row, "text", "carriage return inside a line")
        if not line.strip():
            raise RawFormatError(source, row, "id", "blank line inside the file")
        number, rest = _split_id(line, source, row)
        if number == 1:
            story += 1
            sentences, sentence_ids = [], []
        elif number != prev_id + 1:
            # Ids count up by one within a story; anything else means a lost or
            # shuffled line, which would silently re-point the supporting ids.
            raise RawFormatError(
                source, row, "id", f"expected line id 1 or {prev_id + 1}, found {number}"
            )
        prev_id = number

        if "\t" not in rest:
            sentence = rest.strip()
            if not sentence:
                raise RawFormatError(source, row, "text", "empty sentence")
            if sentence.endswith("?"):
                # a question line cut before its tab fields would pass for a story sentence
                raise RawFormatError(
                    source, row, "fields",
                    "question without its tab-separated answer and supporting ids "
                    "(line cut short?)",
                )
            sentences.append(sentence)
            sentence_ids.append(number)
            continue

        fields = rest.split("\t")
        if len(fields) != 3:
            raise RawFormatError(
                source,
                row,
                "fields",
                f"question line needs 3 tab-separated fields (question, answer, supporting ids), "
                f"found {len(fields)}",
            )
        question = fields[0].strip()
        if not question:
            raise RawFormatError(source, row, "question", "empty question")
        answers = _parse_answers(fields[1], task, source, row)
        supporting = _parse_supporting(fields[2], source, row)
        position = {sid: index for index, sid in enumerate(sentence_ids)}
        relevant = tuple(position[sid] for sid in supporting if sid in position)
        missing = tuple(sid for sid in supporting if sid not in position)
        questions.append(
            BabiQuestion(
                task=task,
                split=split,
                story=story,
                line=number,
                row=row,
                context=tuple(sentences),
                context_ids=tuple(sentence_ids),
                question=question,
                answers=answers,
                supporting=supporting,
                relevant=relevant,
                missing_support=missing,
            )
        )
    if "\t" not in lines[-1]:
        # every bAbI story ends with a question: trailing sentences mean a truncated file
        raise RawFormatError(
            source, len(lines), "fields",
            "the file ends with a story sentence, not a question line (truncated?)",
        )
    return questions


def _folder_rank(path: Path) -> int:
    """Lower is better: the 1k English folder, then the 10k one, then anything else."""
    parent = path.parent.name
    if parent == "en":
        return 0
    if parent == "en-10k":
        return 1
    return 2


def find_babi_file(
    raw_dir: Path, task: str, split: str, *, files: Sequence[Path] | None = None
) -> Path:
    """Find ``qa{N}_*_{split}.txt`` under ``raw_dir`` (searched recursively).

    The English 1k folder ``en`` is preferred over ``en-10k``; the Hindi
    (``hn*``) and letter-shuffled (``shuffled*``) variants are never chosen.
    ``files`` is the folder's listing when the caller already has it (:func:`walk_files`).
    Raises :class:`FileNotFoundError` naming ``raw_dir``, the task and split.
    """
    _check_task(task)
    raw_dir = Path(raw_dir)
    listing = walk_files(raw_dir, what="bAbI") if files is None else files
    candidates = [
        path
        for path in listing
        if fnmatch.fnmatchcase(path.name, f"{task}_*_{split}.txt")
        and not path.parent.name.startswith(("hn", "shuffled"))
    ]
    if not candidates:
        raise FileNotFoundError(
            f"no bAbI file for task {task} ({BABI_TASKS[task]}), split {split!r} under "
            f"{raw_dir} (looked for {task}_*_{split}.txt, e.g. "
            f"{raw_dir}/tasks_1-20_v1-2/en/{task_filename(task, split)})"
        )
    # Deterministic choice: best folder, then the shallowest path, then by name.
    return min(candidates, key=lambda p: (_folder_rank(p), len(p.parts), str(p)))


def read_babi_text(path: Path) -> str:
    """Read a bAbI file as UTF-8; other bytes raise :class:`RawFormatError` (line and column)."""
    with open_input(path) as handle:
        return decode_utf8(handle.read(), str(path))


def load_babi(
    raw_dir: Path, tasks: Sequence[str], splits: Sequence[str] = ("train", "test")
) -> list[BabiQuestion]:
    """Load and parse the given tasks and splits from ``raw_dir``, task by task, split by split."""
    files = walk_files(Path(raw_dir), what="bAbI")  # one walk for every task and split
    questions: list[BabiQuestion] = []
    for task in tasks:
        for split in splits:
            path = find_babi_file(raw_dir, task, split, files=files)
            text = read_babi_text(path)
            questions.extend(parse_babi(text, task=task, split=split, source=str(path)))
    return questions


#: the columns bAbI adds to the decomposed schema
EXTRAS: Mapping[str, pl.DataType] = {
    "task": pl.String,
    "story": pl.Int64,
    "line": pl.Int64,
    "flagged": pl.Boolean,
}


def decompose_babi(raw_dir: str | Path, *, tasks: Sequence[str], sampling: Sampling) -> tuple[pl.DataFrame, Report]:
    """bAbI: category = task name, relevant = the supporting line ids mapped into the context.

    A question whose supporting ids do not all point to earlier story sentences is flagged
    (kept or dropped per ``sampling.flagged``); it is never silently repaired.
    """
    unknown = sorted(set(tasks) - set(BABI_TASKS))
    if unknown:
        raise ValueError(f"unknown bAbI task(s) {unknown}; known: {sorted(BABI_TASKS)}")
    repeated = sorted({t for t in tasks if list(tasks).count(t) > 1})
    if repeated:
        # each row would be read twice, with the same id, and counted twice in the report
        raise ValueError(f"tasks: {repeated} listed more than once")
    questions = load_babi(Path(raw_dir), tasks)
    report = Report("bAbI")
    rows = []
    for q in questions:
        category = BABI_TASKS[q.task]
        counts = report.per_category[category]
        counts["rows"] += 1
        flagged = bool(q.missing_support)
        counts["flagged"] += flagged
        counts["covered"] += not flagged
        if flagged:
            report.flag_reasons[(category, "missing_support")] += 1
        if flagged and sampling.flagged == "drop":
            report.dropped["missing_support"] += 1
            continue
        rows.append(
            {
                "id": f"{q.task}-{q.split}-{q.story:04d}-{q.line:03d}",
                "split": q.split,
                "category": category,
                "context": list(q.context),
                "question": q.question,
                "answers": list(q.answers),
                "relevant": list(q.relevant),
                "task": q.task,
                "story": q.story,
                "line": q.line,
                "flagged": flagged,
            }
        )
    kept = sample_rows(rows, sampling, group=lambda r: (r["split"], r["task"], r["story"]), report=report)
    for r in kept:
        report.per_category[r["category"]]["kept"] += 1
    frame = pl.DataFrame(kept, schema={**SCHEMA, **EXTRAS}, orient="row")
    return frame, report


def decompose(raw: Path, options: Mapping[str, Any], sampling: Sampling) -> tuple[pl.DataFrame, Report]:
    return decompose_babi(raw, tasks=options["tasks"], sampling=sampling)


def answer_rule(
    answer: str | None, golds: Sequence[str], row: Mapping[str, Any], options: Mapping[str, Any]
) -> AnswerScore:
    """Normalized exact match; a task in :data:`SET_ANSWER_TASKS` (qa8) as an unordered set."""
    as_set = row.get("task") in SET_ANSWER_TASKS
    return AnswerScore(*match_text_answer(answer, golds, as_set=as_set))


#: a location or an object, as bAbI's sentences name them ("to the kitchen", "the football")
_THE_NOUN = re.compile(r"\bthe\s+([a-z]+)\b", re.IGNORECASE)


def fact_values(facts: Sequence[str], row: Mapping[str, Any]) -> list[str]:
    """The locations and objects the facts name (the word after each "the"), lower case and
    de-duplicated in order: the values a bAbI answer could take from them."""
    found = (match.group(1).lower() for fact in facts for match in _THE_NOUN.finditer(fact))
    return list(dict.fromkeys(found))


def check_config(options: Mapping[str, Any]) -> None:
    """The checks of a bAbI block a schema cannot express."""
    if not options.get("tasks"):
        raise ValueError("tasks: a bAbI dataset needs its task list")
    check_synthetic_size(options, "stories")


_STORIES = {
    "type": "object",
    "additionalProperties": False,
    "description": "synthetic stories per task and split",
    "properties": {
        "train": {
            "type": "integer", "minimum": 1, "maximum": 1_000_000,
            "description": "training stories per task",
        },
        "test": {
            "type": "integer", "minimum": 1, "maximum": 1_000_000,
            "description": "test stories per task",
        },
    },
}

#: bAbI's own config keys (composed into the workflow's schema)
CONFIG_SCHEMA: Mapping[str, Any] = {
    "properties": {
        "tasks": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": "^qa([1-9]|1[0-9]|20)$"},
            "description": "bAbI tasks to read (the paper's eleven: qa1, 2, 4, 7, 8, 12, 14, 15, 16, 17, 18)",
        },
    },
    "source": {
        "stories": _STORIES,
        "max_sentences": {
            "type": "integer", "minimum": 2, "maximum": 1000, "default": 8,
            "description": "synthetic: story sentences at most, before each question",
        },
        "questions_per_story": {
            "type": "integer", "minimum": 1, "maximum": 1000, "default": 2,
            "description": "synthetic: questions asked per story",
        },
    },
}  # fmt: skip


# ---------------------------------------------------------------- the paper's released outputs

_TASK_OF_CATEGORY = {name: task for task, name in BABI_TASKS.items()}


def released_row(record: dict[str, Any], where: Where, category: str | None) -> dict[str, Any]:
    """A released bAbI row (``query_type``, ``passage`` and ``answer_passage`` as Python list
    literals, ``gold`` a string) as decomposed values; its gold supporting sentences are known."""
    name = field_of(record, "query_type", str, where)
    if name not in _TASK_OF_CATEGORY:
        raise located(where, "query_type", f"unknown bAbI task name {name!r}")
    context = list_literal(record, "passage", where)
    relevant = []
    for sentence in list_literal(record, "answer_passage", where):  # positions in the passage
        if sentence not in context:
            raise located(where, "answer_passage", f"sentence {sentence!r} is not in passage")
        relevant.append(context.index(sentence))
    return {
        "category": name,
        "context": context,
        "question": field_of(record, "question", str, where),
        "answers": golds_of([field_of(record, "gold", str, where)], where),
        "relevant": relevant,
        "task": _TASK_OF_CATEGORY[name],
    }


def paper_babi_score(prediction: str, gold: str) -> bool:
    """One raw bAbI generation scored by the paper's released evaluator (sbhambr1/Trace_Check_QA
    ``scripts/babiqa_config.py``, the version that scored the released results).

    :func:`~tracekd.datasets.released.paper_final_answer`, then a gate and a test: the
    lower-cased gold must occur in the text (a substring), and the text normalized as the
    authors' ``normalize_answer`` (no article removal) must equal the normalized gold.
    """
    text = paper_final_answer(prediction)
    gold = gold.lower()
    return gold in text and paper_normalize(text) == paper_normalize(gold)


def _paper_score(prediction: str, row: Mapping[str, Any]) -> tuple[float, float, float, float]:
    # one answer string each side: accuracy, F1, precision and recall are all this one value
    ok = float(paper_babi_score(prediction, row["answers"][0]))
    return ok, ok, ok, ok


#: the paper's Table 3 (bAbI columns): accuracy and its lenient trace checks per run
PAPER_TABLE: Mapping[tuple[str, str], Mapping[str, float]] = {
    ("Qwen3-1.7B", "prompt"): {"acc": 0.0},
    ("Qwen3-1.7B", "vanilla"): {"acc": 97.9},
    ("Qwen3-1.7B", "correct"): {"acc": 94.41, "category": 61.7, "ir": 24.73},
    ("Qwen3-1.7B", "incorrect"): {"acc": 95.21, "category": 17.82, "ir": 0.0},
    ("Llama-3.2-1B-Instruct", "prompt"): {"acc": 12.8},
    ("Llama-3.2-1B-Instruct", "vanilla"): {"acc": 96.5},
    ("Llama-3.2-1B-Instruct", "correct"): {"acc": 94.41, "category": 61.7, "ir": 24.73},
    ("Llama-3.2-1B-Instruct", "incorrect"): {"acc": 86.17, "category": 3.46, "ir": 0.0},
}

#: how the paper released its bAbI outputs
RELEASED = Released(
    name="bAbI",
    path_hint="babi",
    trace_template=(
        "The category of the question represents what is being asked in that question. The "
        "category of the question asked is: {category}.\nI need to use the following text to "
        "answer the question: {facts}"
    ),
    variants=("paper", "babi"),
    read_row=released_row,
    paper_score=_paper_score,
    tables=PAPER_TABLE,
)
