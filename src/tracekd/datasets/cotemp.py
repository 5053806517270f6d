"""CoTempQA (Su et al., ACL 2024, "Living in the Moment: Can Large Language Models Grasp
Co-Temporal Reasoning?"): the dataset plug-in, its loader, fact parser, temporal relations and
the IR-step decomposition (its answer rules: :mod:`tracekd.datasets.cotemp_answer`).

The dataset ships one JSON-lines file per relation (``equal``, ``overlap``, ``during``,
``mix``); each row holds ``index, triple_element, question, facts[list], answer[list]``.
Facts are template sentences built from Wikidata quadruples, e.g.
``X works for Y from March, 1998 to 2004.`` or ``X is a member of the Y in June 2, 1998.``
The question names an *anchor* event (``While X was working for Y, ...``) and asks for the
entities whose event is co-temporal with it. Nothing in a row says which facts support the
answer: :func:`decompose_cotemp` computes them from the dates, and flags (never guesses) the
rows its rules cannot resolve.

Dates come at three precisions (year, month, day). A span is a pair of bounds (a point event,
``in <date>``, has ``start == end``, as in the authors' construction code,
``zhaochen0110/Cotempqa`` ``data_construct/construct_cotempqa.py``). Two bounds of different
precision in the same year (or month) are a tie no date settles, and there are two readings:
``"coarse"`` compares them at the coarser precision (``2003`` equals ``March, 2003``), and
``"authors"`` is the order the dataset's labels were computed with, ``(year, month or 0, day or
0)`` tuples (``2003`` before ``March, 2003``). On the released files the coarse reading alone
leaves 67 ``overlap`` rows unsupported (the labels break a start-start tie the authors' way);
the decomposition therefore accepts a fact when the row's relation holds under either reading
(:func:`stands_in`), and a fact it holds under neither is never accepted.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

import polars as pl

from tracekd.datasets.base import (
    SCHEMA,
    SPLIT_SCHEMA,
    Released,
    Report,
    Sampling,
    check_synthetic_size,
    sample_rows,
)
from tracekd.datasets.cotemp_answer import TRIPLE_ELEMENTS, paper_cotemp_score
from tracekd.datasets.released import Where, field_of, golds_of, located
from tracekd.errors import RawFormatError
from tracekd.readers import check_int64, iter_json_lines, walk_files
from tracekd.seeding import row_rng

#: the four relation files of CoTempQA, in the paper's order
RELATIONS: tuple[str, ...] = ("equal", "overlap", "during", "mix")

#: reason codes of rows the rules cannot resolve (``flag_reason``), in the order checked
FLAG_REASONS: tuple[str, ...] = (
    "unparsed_fact",  # a context sentence fits no fact template
    "unparsed_date",  # a fact's date part is not a date (or ends before it starts)
    "no_anchor",  # no context fact is the event the question names
    "ambiguous_anchor",  # several facts are, with different dates
    "no_second_subject",  # S2_*_O2: the question's second person is no fact's subject
    "answer_not_in_facts",  # a gold answer is no candidate fact's subject/object
    "relation_mismatch",  # a gold answer's facts do not stand in the row's relation
)

MONTHS: tuple[str, ...] = tuple(calendar.month_name)[1:]
_MONTH_NUMBER = {name: number for number, name in enumerate(MONTHS, start=1)}


class Precision(IntEnum):
    """How much of a date is known; a higher value is finer."""

    YEAR = 1
    MONTH = 2
    DAY = 3


@dataclass(frozen=True)
class TimePoint:
    """A date known to year, month or day precision (``month``/``day`` ``None`` when unknown)."""

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if self.year < 1 or self.year > 9999:
            raise ValueError(f"year out of range: {self.year}")
        if self.month is None and self.day is not None:
            raise ValueError("a day needs a month")
        if self.month is not None and not 1 <= self.month <= 12:
            raise ValueError(f"month out of range: {self.month}")
        if self.day is not None:
            last = calendar.monthrange(self.year, self.month or 1)[1]
            if not 1 <= self.day <= last:
                raise ValueError(
                    f"day out of range for {MONTHS[(self.month or 1) - 1]}: {self.day}"
                )

    @property
    def precision(self) -> Precision:
        """The finest part known."""
        if self.day is not None:
            return Precision.DAY
        if self.month is not None:
            return Precision.MONTH
        return Precision.YEAR

    def key(self, precision: Precision) -> tuple[int, ...]:
        """The date truncated to ``precision`` (which must not be finer than its own)."""
        parts = (self.year, self.month, self.day)[: int(precision)]
        if None in parts:
            raise ValueError(f"{self} is not known to {precision.name.lower()} precision")
        return tuple(p for p in parts if p is not None)

    def __str__(self) -> str:
        """As CoTempQA writes it: ``2003``, ``March, 2003`` or ``March 4, 2003``."""
        if self.month is None:
            return str(self.year)
        if self.day is None:
            return f"{MONTHS[self.month - 1]}, {self.year}"
        return f"{MONTHS[self.month - 1]} {self.day}, {self.year}"


def compare_points(a: TimePoint, b: TimePoint) -> int:
    """-1, 0 or 1 as ``a`` is before, the same as, or after ``b`` at their coarser precision.

    A bound stands for a whole period (a year, a month or a day); ``2003`` and ``March, 2003``
    compare equal because the finer date cannot be placed inside the coarser one. This is the
    authors' tie rule for mixed precision, without their ``0`` placeholders (which would put
    ``(2003, 0, 0)`` strictly before ``(2003, 3, 0)``).
    """
    precision = min(a.precision, b.precision)
    ka, kb = a.key(precision), b.key(precision)
    return (ka > kb) - (ka < kb)


@dataclass(frozen=True)
class Span:
    """The time of an event: ``start`` to ``end`` inclusive; a point event has ``start == end``."""

    start: TimePoint
    end: TimePoint

    def __post_init__(self) -> None:
        if compare_points(self.start, self.end) > 0:
            raise ValueError(f"span ends ({self.end}) before it starts ({self.start})")

    @property
    def is_point(self) -> bool:
        """Written ``in <date>`` (one bound) rather than ``from <date> to <date>``."""
        return self.start == self.end

    def __str__(self) -> str:
        """The date part of a fact: ``in March, 2003`` or ``from 1998 to June 2, 2004``."""
        if self.is_point:
            return f"in {self.start}"
        return f"from {self.start} to {self.end}"


Relation = Literal["equal", "during", "overlap", "disjoint"]

#: how bounds of different precision are ordered (see :func:`temporal_relation`)
RULES: tuple[str, ...] = ("coarse", "authors")


def _authors_key(p: TimePoint) -> tuple[int, int, int]:
    # construct_cotempqa.py's complete_time: an unknown month or day is 0
    return (p.year, p.month or 0, p.day or 0)


def _compare(a: TimePoint, b: TimePoint, rule: str) -> int:
    if rule == "coarse":
        return compare_points(a, b)
    if rule == "authors":
        ka, kb = _authors_key(a), _authors_key(b)
        return (ka > kb) - (ka < kb)
    raise ValueError(f"unknown precision rule {rule!r}; known: {list(RULES)}")


def temporal_relation(a: Span, b: Span, rule: str = "coarse") -> Relation:
    """How two spans stand in time, as CoTempQA classifies co-temporal events.

    With ``a = [s1, e1]``, ``b = [s2, e2]`` (closed; a point event has ``s == e``):

    - ``disjoint``: one ends before the other starts (``e1 < s2`` or ``e2 < s1``);
    - ``equal``: the same time (``s1 == s2`` and ``e1 == e2``); two point events on one date;
    - ``during``: one span lies within the other, not equal (``s2 <= s1`` and ``e1 <= e2``, or
      the reverse). Symmetric, as in the authors' code (``construct_cotempqa.py``), which files
      both "anchor within answer" and "answer within anchor", and a point event inside an
      interval either way round, as *during*;
    - ``overlap``: they share time but neither contains the other (``s1 < s2 <= e1 < e2`` or
      the reverse). ``1999-2001`` and ``2001-2004`` overlap (in 2001); the authors kept such
      touching pairs out of generation as ambiguous.

    ``rule`` orders two bounds of different precision. ``"coarse"`` compares them at the
    coarser precision (:func:`compare_points`: ``2003`` equals ``March, 2003``). ``"authors"``
    is the order the dataset's labels were computed with: ``(year, month or 0, day or 0)``
    tuples, so ``1875`` sorts before ``December 18, 1875`` (``classify_data.py``'s
    ``time_judge``). They differ only on such mixed-precision ties, which no date settles.
    """

    def cmp(x: TimePoint, y: TimePoint) -> int:
        return _compare(x, y, rule)

    if cmp(a.end, b.start) < 0 or cmp(b.end, a.start) < 0:
        return "disjoint"
    starts = cmp(a.start, b.start)
    ends = cmp(a.end, b.end)
    if starts == 0 and ends == 0:
        return "equal"
    if (starts >= 0 and ends <= 0) or (starts <= 0 and ends >= 0):
        return "during"
    return "overlap"


def stands_in(relation: str, anchor: Span, other: Span, rule: str = "either") -> bool:
    """Whether ``other`` stands in a CoTempQA ``relation`` (a file name) to ``anchor``.

    The paper (Su et al. 2024, §2) defines four co-temporal categories: *equal* (the two events
    happen over the same time), *overlap* (they share part of their time), *during* (one
    event's time lies within the other's) and *mix* (the answers stand in more than one of
    those relations to the anchor, so any co-temporal fact can be an answer: equal, during or
    overlap, i.e. not disjoint). See :func:`temporal_relation` for the bounds.

    ``rule`` is ``"coarse"``, ``"authors"`` or ``"either"`` (the default): the relation holds
    under at least one of the two readings of a mixed-precision tie. The dates then admit the
    relation; a fact they do not admit it for under either reading is never accepted.
    """
    if relation not in RELATIONS:
        raise ValueError(f"unknown CoTempQA relation {relation!r}; known: {list(RELATIONS)}")
    rules = RULES if rule == "either" else (rule,)
    for r in rules:
        found = temporal_relation(anchor, other, r)
        if found == relation or (relation == "mix" and found != "disjoint"):
            return True
    return False


# --- facts -----------------------------------------------------------------------------------

#: fact verb phrase -> (Wikidata property, the phrases the questions use for the anchor event)
_VERBS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "holds the position of": ("P39", ("was holding the position of", "held the position of")),
    "held the position of": ("P39", ("was holding the position of", "held the position of")),
    "is a member of the": ("P102", ("was a member of",)),
    "was a member of the": ("P102", ("was a member of",)),
    "is a member of": ("P102", ("was a member of",)),
    "was a member of": ("P102", ("was a member of",)),
    "works for": ("P108", ("was working for", "worked for")),
    "worked for": ("P108", ("was working for", "worked for")),
    "attended": ("P69", ("attended", "was attending")),
    "plays for": ("P54", ("was playing for", "played for")),
    "played for": ("P54", ("was playing for", "played for")),
    "is owned by": ("P127", ("was owned by",)),
    "was owned by": ("P127", ("was owned by",)),
    "is the chair of": ("P488", ("was the chair of",)),
    "was the chair of": ("P488", ("was the chair of",)),
    "is the head of": ("P6", ("was the head of",)),
    "was the head of": ("P6", ("was the head of",)),
}
# Longest first so that "is a member of the" wins over "is a member of".
_VERB_ALT = "|".join(re.escape(v) for v in sorted(_VERBS, key=len, reverse=True))
_MONTH_ALT = "|".join(MONTHS)
_DATE = (
    rf"(?:(?:{_MONTH_ALT}) [0-9]{{1,2}}, [0-9]{{1,4}}|(?:{_MONTH_ALT}), [0-9]{{1,4}}|[0-9]{{1,4}})"
)
# The date part is the last " in D." or " from D to D." (objects may hold " in ", e.g.
# "American Academy in Rome"); the sentence is split first so that a bad date still tells
# whose event it was.
_FACT = re.compile(
    rf"(?P<subject>.+?) (?P<verb>{_VERB_ALT}) (?P<object>.+) "
    rf"(?:in (?P<point>{_DATE})|from (?P<start>{_DATE}) to (?P<end>{_DATE}))\.",
)
_LOOSE = re.compile(rf"(?P<subject>.+?) (?P<verb>{_VERB_ALT}) (?P<rest>.+)")
_LOOSE_OBJECT = re.compile(r"(?P<object>.+) (?:in|from) .+")
_DAY_DATE = re.compile(rf"({_MONTH_ALT}) ([0-9]{{1,2}}), ([0-9]{{1,4}})")
_MONTH_DATE = re.compile(rf"({_MONTH_ALT}), ([0-9]{{1,4}})")
_YEAR_DATE = re.compile(r"[0-9]{1,4}")


class FactParseError(ValueError):
    """A fact sentence that does not fit the templates.

    ``part`` is ``"sentence"`` (no template fits) or ``"date"`` (the date part is no CoTempQA
    date, or the span ends before it starts); for the latter ``subject``, ``verb`` and
    ``object`` still say whose event it is.
    """

    def __init__(
        self, text: str, part: str, message: str, head: tuple[str, str, str] | None = None
    ) -> None:
        self.text = text
        self.part = part
        self.head = head
        super().__init__(f"{message}: {text!r}")


@dataclass(frozen=True)
class Fact:
    """One parsed context sentence: ``subject verb object span.``"""

    text: str
    subject: str
    verb: str  # the phrase as written, e.g. "works for", "is a member of the"
    object: str  # without the template's "the" of "is a member of the"
    span: Span

    @property
    def relation(self) -> str:
        """The Wikidata property the template renders (``P39`` position, ``P108`` employer, ...)."""
        return _VERBS[self.verb][0]


def parse_date(text: str) -> TimePoint:
    """``2003`` / ``March, 2003`` / ``March 4, 2003`` -> :class:`TimePoint`; else ``ValueError``."""
    if m := _DAY_DATE.fullmatch(text):
        return TimePoint(int(m.group(3)), _MONTH_NUMBER[m.group(1)], int(m.group(2)))
    if m := _MONTH_DATE.fullmatch(text):
        return TimePoint(int(m.group(2)), _MONTH_NUMBER[m.group(1)])
    if _YEAR_DATE.fullmatch(text):
        return TimePoint(int(text))
    raise ValueError(f"not a CoTempQA date: {text!r}")


def parse_fact(text: str) -> Fact:
    """Parse ``'<subject> <verb> <object> (in <date> | from <date> to <date>).'``.

    ``<date>`` is ``2003``, ``March, 2003`` or ``March 4, 2003``; ``in <date>`` is a point
    event (``start == end``, at that precision). The verbs are the authors' templates
    (``holds the position of``, ``is a member of the``, ``works for``, ``attended``,
    ``plays for``, ``is owned by``, ``is the chair of``, ``is the head of``) and their past
    forms. Anything else (an open range, ``until``/``since``, a bad day, an end before the
    start) raises :class:`FactParseError`, whose ``part`` says whether the sentence or the
    date failed.
    """
    m = _FACT.fullmatch(text)
    if m is None:
        loose = _LOOSE.fullmatch(text)
        if loose is None:
            raise FactParseError(text, "sentence", "no CoTempQA fact template fits")
        rest = loose.group("rest").removesuffix(".")
        obj = m.group("object") if (m := _LOOSE_OBJECT.fullmatch(rest)) else rest
        head = (loose.group("subject"), loose.group("verb"), obj)
        raise FactParseError(text, "date", "no date of the form 'in D.' or 'from D to D.'", head)
    head = (m.group("subject"), m.group("verb"), m.group("object"))
    try:
        if m.group("point") is not None:
            point = parse_date(m.group("point"))
            span = Span(point, point)
        else:
            span = Span(parse_date(m.group("start")), parse_date(m.group("end")))
    except ValueError as err:
        raise FactParseError(text, "date", str(err), head) from err
    return Fact(text, *head, span)


def render_fact(subject: str, verb: str, obj: str, span: Span) -> str:
    """The inverse of :func:`parse_fact` (``verb`` as written, e.g. ``"is a member of the"``)."""
    if verb not in _VERBS:
        raise ValueError(f"unknown fact verb {verb!r}")
    return f"{subject} {verb} {obj} {span}."


# --- loading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CotempRow:
    """One CoTempQA question, as read (nothing computed yet)."""

    relation: str  # the file it came from: equal | overlap | during | mix
    file: str
    line: int  # 1-based line in the file
    index: int
    triple_element: str
    question: str
    facts: tuple[str, ...]
    answers: tuple[str, ...]

    @property
    def id(self) -> str:
        """Stable id: relation and the row's ``index``, e.g. ``equal-0042``."""
        return f"{self.relation}-{self.index:04d}"


def find_cotemp_files(
    raw_dir: Path, relations: Sequence[str] | None = None
) -> dict[str, Path]:
    """``{relation: path}`` for each ``<relation>.json`` found under ``raw_dir`` (recursively).

    ``relations`` (the config's list) names the files to use; the others are ignored, and a
    named one that is absent is an error. Without it, every relation file found is used.
    Raises :class:`FileNotFoundError` when a file is missing (or, without ``relations``, when
    there is none), and :class:`ValueError` when a relation has several files (which one is
    meant cannot be told) or ``relations`` names an unknown or repeated relation.
    """
    raw_dir = Path(raw_dir)
    wanted = RELATIONS if relations is None else tuple(relations)
    unknown = sorted(set(wanted) - set(RELATIONS))
    if unknown:
        raise ValueError(f"relations: unknown CoTempQA relation(s) {unknown}; known: {list(RELATIONS)}")
    repeated = sorted({r for r in wanted if wanted.count(r) > 1})
    if repeated:
        raise ValueError(f"relations: {repeated} listed more than once")
    files = walk_files(raw_dir, what="CoTempQA")
    found: dict[str, Path] = {}
    for relation in RELATIONS:
        if relation not in wanted:
            continue
        paths = [p for p in files if p.name == f"{relation}.json"]
        if len(paths) > 1:
            raise ValueError(
                f"several CoTempQA {relation!r} files under {raw_dir}: {[str(p) for p in paths]}"
            )
        if paths:
            found[relation] = paths[0]
        elif relations is not None:
            raise FileNotFoundError(
                f"no CoTempQA {relation!r} file under {raw_dir} (looked for {relation}.json, "
                f"searched recursively); the config's relations are {list(wanted)}"
            )
    if not found:
        raise FileNotFoundError(
            f"no CoTempQA file under {raw_dir} (looked for "
            f"{', '.join(r + '.json' for r in RELATIONS)}, searched recursively)"
        )
    return found


def _str_list(value: Any, source: str, row: int, field: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RawFormatError(
            source, row, field, f"expected a list of strings, found {type(value).__name__}"
        )
    if not value:
        raise RawFormatError(source, row, field, "empty list")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise RawFormatError(
                source, row, field, f"item {i} is not a non-empty string: {item!r}"
            )
    return tuple(value)


def _parse_row(obj: Any, relation: str, source: str, row: int) -> CotempRow:
    if not isinstance(obj, dict):
        raise RawFormatError(source, row, "json", f"expected an object, found {type(obj).__name__}")
    for field in ("index", "triple_element", "question", "facts", "answer"):
        if field not in obj:
            raise RawFormatError(source, row, field, "missing field")
    index = obj["index"]
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise RawFormatError(
            source, row, "index", f"expected a non-negative integer, found {index!r}"
        )
    check_int64(index, source, row, "index")  # it is stored in a 64-bit column
    triple = obj["triple_element"]
    if triple not in TRIPLE_ELEMENTS:
        raise RawFormatError(
            source,
            row,
            "triple_element",
            f"expected one of {list(TRIPLE_ELEMENTS)}, found {triple!r}",
        )
    question = obj["question"]
    if not isinstance(question, str) or not question.strip():
        raise RawFormatError(
            source, row, "question", f"expected a non-empty string, found {question!r}"
        )
    return CotempRow(
        relation=relation,
        file=source,
        line=row,
        index=index,
        triple_element=triple,
        question=question,
        facts=_str_list(obj["facts"], source, row, "facts"),
        answers=_str_list(obj["answer"], source, row, "answer"),
    )


def read_cotemp_file(path: Path, relation: str) -> list[CotempRow]:
    """Read one relation file (JSON lines, UTF-8); bad input raises :class:`RawFormatError`.

    Blank lines at the end are ignored; a blank line inside, a malformed JSON line, a missing or
    mistyped field, an empty ``facts``/``answer`` list or a repeated ``index`` stop with the
    file, the 1-based line and the field (the guarded reader, :mod:`tracekd.readers`, refuses
    text that is not UTF-8 and JSON nested too deep).
    """
    source = str(path)
    rows: list[CotempRow] = []
    seen: dict[int, int] = {}
    for number, obj in iter_json_lines(path, blank_inside=False):
        parsed = _parse_row(obj, relation, source, number)
        if parsed.index in seen:
            # ids are built from the index; a repeat would give two rows one id
            raise RawFormatError(
                source, number, "index", f"index {parsed.index} repeats line {seen[parsed.index]}"
            )
        seen[parsed.index] = number
        rows.append(parsed)
    if not rows:
        raise RawFormatError(source, None, "text", "empty file")
    return rows


def load_cotemp(raw_dir: Path, relations: Sequence[str] | None = None) -> list[CotempRow]:
    """Load the CoTempQA relation files under ``raw_dir`` (those of ``relations`` when given,
    see :func:`find_cotemp_files`), in :data:`RELATIONS` order."""
    rows: list[CotempRow] = []
    for relation, path in find_cotemp_files(Path(raw_dir), relations).items():
        rows.extend(read_cotemp_file(path, relation))
    return rows


# --- the IR step -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """What the rules make of one row: the anchor, the supporting facts, or why not."""

    anchor: int | None  # index into the facts
    relevant: tuple[int, ...]  # sorted indices: anchor + every answer's supporting fact(s)
    flag_reason: str | None  # None when every gold answer is supported

    @property
    def covered(self) -> bool:
        """The computed facts name every gold answer (DESIGN.md's coverage)."""
        return self.flag_reason is None


def _strip_the(name: str) -> str:
    return name[4:] if name.startswith("the ") else name


def _same_name(a: str, b: str) -> bool:
    return a == b or _strip_the(a) == _strip_the(b)


@dataclass(frozen=True)
class _Event:
    """A context fact's who/what, and its span (``None`` when its date did not parse)."""

    subject: str
    verb: str
    object: str
    span: Span | None

    @property
    def relation(self) -> str:
        return _VERBS[self.verb][0]


def _events(facts: Sequence[str]) -> list[_Event] | None:
    """Parse the context; ``None`` when a sentence fits no template (nothing can be trusted)."""
    out = []
    for text in facts:
        try:
            fact = parse_fact(text)
        except FactParseError as err:
            if err.head is None:
                return None
            out.append(_Event(*err.head, None))
            continue
        out.append(_Event(fact.subject, fact.verb, fact.object, fact.span))
    return out


def _anchor_candidates(question: str, events: Sequence[_Event]) -> list[int]:
    """Facts the question's ``While <subject> <verb> <object>, ...`` clause names."""
    out = []
    for i, event in enumerate(events):
        head = f"While {event.subject} "
        if not question.startswith(head):
            continue
        rest = question[len(head) :]
        objects = {event.object, _strip_the(event.object)}
        if any(rest.startswith(f"{v} {o}, ") for v in _VERBS[event.verb][1] for o in objects):
            out.append(i)
    return out


def _second_subject(question: str, events: Sequence[_Event], anchor: _Event) -> str | None:
    """S2_*_O2: the other person the question asks about: the longest fact subject (not the
    anchor's) named in the clause after the anchor; ``None`` when there is none."""
    clause = question.split(f"{anchor.object}, ", 1)[-1]
    named = {
        e.subject
        for e in events
        if e.subject != anchor.subject and f" {e.subject} " in f" {clause} "
    }
    return max(named, key=lambda name: (len(name), name)) if named else None


def _answer_name(
    triple_element: str, anchor: _Event, other: str | None, event: _Event
) -> str | None:
    """The name ``event`` offers as an answer under ``triple_element``, or ``None``."""
    # R1: the answer event has the anchor's relation; R2: another one
    same_relation = event.relation == anchor.relation
    if same_relation != (triple_element[3:5] == "R1"):
        return None
    if triple_element == "S2_R1_O1":
        return event.subject if _same_name(event.object, anchor.object) else None
    if triple_element.startswith("S1_"):
        return event.object if event.subject == anchor.subject else None
    return event.object if event.subject == other else None


def _resolve_from(
    relation: str,
    triple_element: str,
    question: str,
    events: Sequence[_Event],
    answers: Sequence[str],
    anchor_i: int,
    rule: str,
) -> Resolution:
    anchor = events[anchor_i]
    if anchor.span is None:
        return Resolution(anchor_i, (anchor_i,), "unparsed_date")
    other = None
    if triple_element.startswith("S2_") and triple_element != "S2_R1_O1":
        other = _second_subject(question, events, anchor)
        if other is None:
            return Resolution(anchor_i, (anchor_i,), "no_second_subject")
    relevant = {anchor_i}
    reason = None
    for gold in answers:
        named = [
            i
            for i, e in enumerate(events)
            if i != anchor_i
            and (name := _answer_name(triple_element, anchor, other, e)) is not None
            and _same_name(name, gold)
        ]
        supported = [
            i
            for i in named
            if (span := events[i].span) is not None and stands_in(relation, anchor.span, span, rule)
        ]
        relevant.update(supported)
        if reason is None and not supported:
            if not named:
                reason = "answer_not_in_facts"
            elif any(events[i].span is None for i in named):
                reason = "unparsed_date"
            else:
                reason = "relation_mismatch"
    return Resolution(anchor_i, tuple(sorted(relevant)), reason)


def resolve(
    relation: str,
    triple_element: str,
    question: str,
    facts: Sequence[str],
    answers: Sequence[str],
    *,
    rule: str = "either",
) -> Resolution:
    """The IR step of one row: the anchor fact plus, for each gold answer, the fact(s) that name
    it in the answer role and whose span stands in ``relation`` to the anchor's
    (:func:`stands_in` under ``rule``).

    The anchor is the fact the question's ``While <subject> <verb> <object>, ...`` names. The
    answer role follows ``triple_element`` (``S<a>_R<b>_O<c>``: 1 = shared with the anchor event,
    2 = another): ``S1_R1_O2`` facts have the anchor's subject and relation, and their object is
    the answer; ``S1_R2_O2`` the same with another relation; ``S2_R1_O1`` facts have the
    anchor's relation and object, and their subject is the answer; ``S2_R1_O2`` / ``S2_R2_O2``
    facts have the other person the question names as subject (the same / another relation),
    and their object is the answer.

    When several facts fit the anchor clause (one position held twice), each is tried; the row
    resolves when all that support every gold answer give the same relevant facts. Otherwise it
    is flagged (:data:`FLAG_REASONS`) with the facts found so far, never a guess. A fact whose
    date does not parse is only a problem when it is the anchor or an answer's only candidate.
    """
    events = _events(facts)
    if events is None:
        return Resolution(None, (), "unparsed_fact")
    anchors = _anchor_candidates(question, events)
    if not anchors:
        return Resolution(None, (), "no_anchor")
    tries = [
        _resolve_from(relation, triple_element, question, events, answers, i, rule) for i in anchors
    ]
    if len(tries) == 1:
        return tries[0]
    resolved = {t.relevant: t for t in tries if t.covered}
    if len(resolved) == 1:
        return next(iter(resolved.values()))
    return Resolution(None, (), "ambiguous_anchor")


def split_ids(
    ids_by_relation: Mapping[str, Sequence[str]], *, test_fraction: float, seed: int
) -> dict[str, str]:
    """``{id: "train" | "test"}``: ``round(n * test_fraction)`` test rows per relation.

    The ids are sorted, then shuffled by an RNG seeded from ``seed`` and the relation (a stable
    hash), so the split depends on neither file order nor Python's hash salt.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"split.test_fraction must be in (0, 1), got {test_fraction}")
    out: dict[str, str] = {}
    for relation, ids in sorted(ids_by_relation.items()):
        order = sorted(ids)
        row_rng(seed, "split", relation).shuffle(order)
        n_test = round(len(order) * test_fraction)
        for position, row_id in enumerate(order):
            out[row_id] = "test" if position < n_test else "train"
    return out


def _split_options(split: Mapping[str, Any]) -> tuple[float, int]:
    unknown = sorted(set(split) - {"test_fraction", "seed"})
    if unknown:
        raise ValueError(f"unknown CoTemp split option(s) {unknown}; known: test_fraction, seed")
    # the defaults are the config schema's
    return float(split.get("test_fraction", 0.2)), int(split.get("seed", 0))


EXTRAS: Mapping[str, pl.DataType] = {
    "triple_element": pl.String,
    "source_index": pl.Int64,
    "flagged": pl.Boolean,
    "flag_reason": pl.String,
}


def decompose_rows(
    rows: Iterable[CotempRow], *, sampling: Sampling, split: Mapping[str, Any]
) -> tuple[pl.DataFrame, Report]:
    """:func:`decompose_cotemp` on rows already loaded."""
    rows = list(rows)
    test_fraction, split_seed = _split_options(split)
    by_relation: dict[str, list[str]] = {}
    for r in rows:
        by_relation.setdefault(r.relation, []).append(r.id)
    splits = split_ids(by_relation, test_fraction=test_fraction, seed=split_seed)
    report = Report("CoTemp")
    out = []
    for r in rows:
        res = resolve(r.relation, r.triple_element, r.question, r.facts, r.answers)
        counts = report.per_category[r.relation]
        counts["rows"] += 1
        counts["covered"] += res.covered
        counts["flagged"] += not res.covered
        if not res.covered:
            report.flag_reasons[(r.relation, str(res.flag_reason))] += 1
        if not res.covered and sampling.flagged == "drop":
            report.dropped[str(res.flag_reason)] += 1
            continue
        out.append(
            {
                "id": r.id,
                "split": splits[r.id],
                "category": r.relation,
                "context": list(r.facts),
                "question": r.question,
                "answers": list(r.answers),
                "relevant": list(res.relevant),
                "triple_element": r.triple_element,
                "source_index": r.index,
                "flagged": not res.covered,
                "flag_reason": res.flag_reason,
            }
        )
    # one row per "story": the per-story step is a no-op and only the per-split caps apply
    kept = sample_rows(out, sampling, group=lambda row: (row["id"],), report=report)
    for row in kept:
        report.per_category[row["category"]]["kept"] += 1
    return pl.DataFrame(kept, schema={**SCHEMA, **EXTRAS}, orient="row"), report


def decompose_cotemp(
    raw_dir: Path,
    *,
    sampling: Sampling,
    split: Mapping[str, Any],
    relations: Sequence[str] | None = None,
) -> tuple[pl.DataFrame, Report]:
    """CoTempQA: category = the relation file, relevant = anchor + the answers' supporting facts.

    Columns: :data:`tracekd.datasets.base.SCHEMA` plus ``triple_element``, ``source_index`` (the
    row's ``index``), ``flagged`` and ``flag_reason`` (a :data:`FLAG_REASONS` code, or null).
    ``split`` (``test_fraction``, default 0.2; ``seed``, default 0) assigns an exact, seeded
    train/test split per relation before any row is dropped; ``sampling.flagged`` drops or keeps
    the rows :func:`resolve` flags, and ``sampling.max`` caps each split. ``relations`` (the
    config's list) says which relation files are read; by default every one found.
    """
    rows = load_cotemp(Path(raw_dir), relations)
    return decompose_rows(rows, sampling=sampling, split=split)


def decompose(raw: Path, options: Mapping[str, Any], sampling: Sampling) -> tuple[pl.DataFrame, Report]:
    return decompose_cotemp(
        raw, sampling=sampling, split=options.get("split", {}), relations=options.get("relations")
    )


#: CoTempQA's own config keys (composed into the workflow's schema)
CONFIG_SCHEMA: Mapping[str, Any] = {
    "properties": {
        "relations": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "enum": list(RELATIONS)},
            "default": list(RELATIONS),
            "description": "CoTempQA relations (one file each); only these files are read",
        },
        "split": SPLIT_SCHEMA,
        "answer_variant": {
            "type": "string",
            "enum": ["cotempqa", "paper"],
            "default": "cotempqa",
            "description": (
                "the candidate rule applied to the final answer alone: CoTempQA's own (cotempqa; "
                "Su et al. 2024), or that of the paper's released evaluator (paper, which reads "
                "subjects where CoTempQA reads objects)"
            ),
        },
    },
    "source": {
        "rows": {
            "type": "integer", "minimum": 1, "maximum": 1_000_000,
            "description": "synthetic: rows per relation",
        },
        "facts_per_row": {
            "type": "object", "additionalProperties": False,
            "description": (
                "synthetic: facts per context (the anchor, the answer facts and two distractors "
                "at least)"
            ),
            "properties": {
                "min": {"type": "integer", "minimum": 1, "maximum": 100, "default": 6,
                        "description": "fewest facts per context"},
                "max": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10,
                        "description": "most facts per context"},
            },
        },
        "precision": {
            "type": "string", "enum": ["mixed", "year"], "default": "mixed",
            "description": (
                "synthetic: dates at mixed precision (year, month or day, as the real files) or "
                "years only"
            ),
        },
        "vocabulary": {
            "type": "string", "enum": ["full", "small"], "default": "full",
            "description": (
                "synthetic: the names a world draws from: many (full) or ten one-word people and "
                "25 organisations and positions per property (small)"
            ),
        },
        "distractors": {
            "type": "string", "enum": ["near-miss", "background"], "default": "near-miss",
            "description": (
                "synthetic: the facts beside the anchor and the answers: half of them the "
                "answer's role at a time disjoint from the anchor's, so that answering means "
                "comparing dates, as in the real files (near-miss); or only events the question "
                "does not ask about, so that answering means finding the facts whose subject "
                "and property the question names (background)"
            ),
        },
        "questions": {
            "type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000, "default": None,
            "description": (
                "synthetic: distinct questions per relation (null: every row its own); row i "
                "asks question i mod this, with the same anchor and answer facts, and draws its "
                "own distractors, fact order and wording, so that test rows ask training "
                "questions in new contexts (as the MARCO twin's world repeats its facts)"
            ),
        },
    },
}  # fmt: skip


def check_config(options: Mapping[str, Any]) -> None:
    """CoTemp's checks beyond the schema: a synthetic source names its size, and its facts per
    context run from ``min`` to no less than ``min``."""
    check_synthetic_size(options, key="rows")
    facts = options["source"].get("facts_per_row", {})
    low, high = facts.get("min", 6), facts.get("max", 10)
    if low > high:
        raise ValueError(f"source.facts_per_row: min {low} is above max {high}")


# ---------------------------------------------------------------- the paper's released outputs


def released_row(record: dict[str, Any], where: Where, category: str | None) -> dict[str, Any]:
    """A released CoTempQA row (``facts``, ``question``, ``gold``, ``triple_element``) as
    decomposed values; ``category`` is the relation its path names. The gold facts are not
    released: ``relevant`` is left out (unknown)."""
    kind = field_of(record, "triple_element", str, where)
    if kind not in TRIPLE_ELEMENTS:
        raise located(
            where, "triple_element", f"unknown question kind {kind!r}; expected one of {TRIPLE_ELEMENTS}"
        )
    return {
        "category": category,
        "context": field_of(record, "facts", list, where),
        "question": field_of(record, "question", str, where),
        "answers": golds_of(field_of(record, "gold", list, where), where),
        "triple_element": kind,
    }


def _paper_score(prediction: str, row: Mapping[str, Any]) -> tuple[float, float, float, float]:
    result = paper_cotemp_score(
        prediction, row["answers"], facts=row["context"], question=row["question"],
        triple_element=row["triple_element"],
    )  # fmt: skip
    return float(result.correct), result.f1, result.precision, result.recall


_RELATION_IN_PATH = re.compile(r"(?:^|[_/])(" + "|".join(RELATIONS) + r")(?:_|\.|/|$)")


def relation_from_name(path: str | Path) -> str | None:
    """The CoTempQA relation a released file's path gives (``.../equal/...`` -> ``equal``)."""
    match = _RELATION_IN_PATH.search(Path(path).as_posix())
    return match.group(1) if match else None


#: the paper's Table 2 (CoTempQA, the mean over its four relations) per run; "-" cells left out
PAPER_TABLE: Mapping[tuple[str, str], Mapping[str, float]] = {
    ("Qwen3-1.7B", "prompt"): {"acc": 6.35, "f1": 11.35, "p": 14.33, "r": 10.1},
    ("Qwen3-1.7B", "vanilla"): {"acc": 60.33, "f1": 74.88, "p": 82.15, "r": 71.3},
    ("Qwen3-1.7B", "correct"): {
        "acc": 52.88, "f1": 70.63, "p": 79.45, "r": 66.33, "category": 47.06, "ir": 78.99,
    },
    ("Qwen3-1.7B", "incorrect"): {
        "acc": 63.88, "f1": 76.5, "p": 82.58, "r": 73.5, "category": 20.36, "ir": 56.92,
    },
    ("Llama-3.2-1B-Instruct", "prompt"): {"acc": 7.48, "f1": 13.78, "p": 17.58, "r": 12.15},
    ("Llama-3.2-1B-Instruct", "vanilla"): {"acc": 44.65, "f1": 61.08, "p": 69.53, "r": 56.58},
    ("Llama-3.2-1B-Instruct", "correct"): {
        "acc": 39.55, "f1": 56.83, "p": 65.83, "r": 52.5, "category": 39.09, "ir": 79.4,
    },
    ("Llama-3.2-1B-Instruct", "incorrect"): {
        "acc": 45.58, "f1": 61.15, "p": 69.65, "r": 57.23, "category": 18.8, "ir": 73.62,
    },
}  # fmt: skip

#: how the paper released its CoTempQA outputs
RELEASED = Released(
    name="CoTemp",
    path_hint="cotemp",
    trace_template=(
        "The temporal relation between the event in question and the event in context is: "
        "{category}.\nI need to use the following facts to answer the question: {facts}"
    ),
    variants=("paper", "cotempqa"),
    read_row=released_row,
    paper_score=_paper_score,
    category_from_path=relation_from_name,
    tables=PAPER_TABLE,
)
