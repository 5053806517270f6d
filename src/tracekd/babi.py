"""Parser of the original bAbI v1.2 text format (Weston et al. 2015).

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tracekd.errors import RawFormatError
from tracekd.readers import decode_utf8, open_input, walk_files

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
