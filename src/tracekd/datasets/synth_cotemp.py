"""A synthetic twin of CoTempQA for the demo and the tests: same files, same sentences, made up.

Each relation file (``equal.json``, ``overlap.json``, ``during.json``, ``mix.json``) holds JSON
lines ``index, triple_element, question, facts, answer``, like the real ones. A row is one
invented timeline: an anchor event, the answer events that stand in the file's relation to it
(:func:`tracekd.datasets.cotemp.stands_in`), and distractors, as ``X works for Y from March, 1998 to
2004.`` / ``X is a member of the Y in June 2, 1998.`` / ``X holds the position of Y from 1997
to 2001.`` at mixed precision. Every date the rules compare with the anchor's falls in another
year than the anchor's bound, or repeats that bound exactly, so that no mixed-precision tie
arises and the relation is the same under every reading; the generator therefore knows the
supporting facts (:attr:`SynthRow.relevant`) and serves as the oracle of the decomposition.

A smaller world (:func:`synth_row`'s keywords; the demo's) may have shorter contexts, years
only, fewer names, distractors that are never the answer's role (``distractors="background"``),
or a few questions each relation repeats in new contexts (``questions``); every default is the
shape above, byte for byte.

Deterministic per seed: each row draws from its own RNG seeded by a stable hash
(:func:`tracekd.traces.row_rng`), so the files are byte-identical for a given seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracekd.datasets.cotemp import RELATIONS, Span, TimePoint, render_fact
from tracekd.datasets.cotemp_answer import TRIPLE_ELEMENTS
from tracekd.seeding import row_rng

_FIRST = (
    "Ada",
    "Bram",
    "Cleo",
    "Dario",
    "Edda",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kaia",
    "Lionel",
    "Mira",
    "Nils",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Soren",
    "Tilda",
    "Ugo",
    "Vera",
    "Wim",
    "Xenia",
    "Yusuf",
    "Zora",
)
_LAST = (
    "Abernethy",
    "Brightwater",
    "Castellane",
    "Dunmore",
    "Elsworth",
    "Fairbrook",
    "Galloway",
    "Holloway",
    "Ingleby",
    "Jarrow",
    "Kettering",
    "Lindqvist",
    "Marchetti",
    "Northcott",
    "Oakhurst",
    "Penhallow",
    "Quennell",
    "Ravensworth",
    "Stanbury",
    "Thornbury",
    "Underhill",
    "Vasquez-Lind",
    "Whitlock",
    "Yardley",
    "Zennor",
)
_PLACES = (
    "Northvale",
    "Eastmoor",
    "Quillby",
    "Redhaven",
    "Silverbrook",
    "Ambermere",
    "Coldharbour",
    "Dunhallow",
    "Fernhollow",
    "Glenridge",
    "Highcombe",
    "Ivybridge",
    "Larkspur",
    "Marrowdale",
    "Oakmere",
    "Pinecrest",
    "Stonyford",
    "Thistlewick",
    "Westerholm",
    "Wrenfield",
)
_EMPLOYER_KINDS = (
    "Institute",
    "Works",
    "Laboratory",
    "Trading Company",
    "Savings Bank",
    "Museum",
    "Observatory",
    "Railway",
    "Press",
    "University",
)
_PARTY_KINDS = (
    "Civic Party",
    "Agrarian League",
    "Progressive Alliance",
    "Labour Movement",
    "Liberal Union",
    "Green Party",
    "Reform Party",
    "People's Front",
)
_POSITIONS = (
    "Mayor of",
    "Treasurer of",
    "Chief Judge of",
    "Harbour Master of",
    "Director of Schools of",
    "Governor of",
    "Chancellor of",
    "Surveyor General of",
)

#: the fact verbs the twin uses, per Wikidata property, as the templates write them
VERBS: dict[str, str] = {
    "P108": "works for",
    "P102": "is a member of the",
    "P39": "holds the position of",
}
# the question's anchor clause ("While X was working for Y, ...")
_ANCHOR_VP = {
    "P108": "was working for",
    "P102": "was a member of",
    "P39": "was holding the position of",
}
# "which ... did Z ...?" (S1_*_O2, S2_*_O2) and "who also ... <O>?" (S2_R1_O1), as in the real data
_WHICH = {
    "P108": "which employer did {who} work for",
    "P102": "which political party did {who} belong to",
    "P39": "which position did {who} hold",
}
_WHO_ALSO = {
    "P108": "who also worked for {obj}",
    "P102": "who was also a member of {obj}",
    "P39": "who also held the position of {obj}",
}
_WHEN = (
    "during the same time period",
    "during the same time span",
    "during the identical time period",
    "within the same time interval",
    "at the same time",
    "concurrently",
    "simultaneously",
)


@dataclass(frozen=True)
class SynthRow:
    """One synthetic question and what the generator knows about it."""

    relation: str
    index: int
    triple_element: str
    question: str
    facts: tuple[str, ...]
    answers: tuple[str, ...]
    anchor: int  # index of the anchor fact in ``facts``
    support: tuple[int, ...]  # indices of the answer facts, one per answer, in answer order
    kinds: tuple[str, ...]  # the relation of each answer fact to the anchor (for mix: >= 2 kinds)

    @property
    def relevant(self) -> tuple[int, ...]:
        """The gold IR step: anchor plus the answer facts, sorted."""
        return tuple(sorted({self.anchor, *self.support}))

    def to_json(self) -> str:
        """One JSON line in CoTempQA's layout."""
        row = {
            "index": self.index,
            "triple_element": self.triple_element,
            "question": self.question,
            "facts": list(self.facts),
            "answer": list(self.answers),
        }
        return json.dumps(row)


# --- spans -----------------------------------------------------------------------------------


#: the date precisions a synthetic world may use: all three mixed (as the real files do) or
#: years only (a simpler world, for a model that must learn in minutes)
PRECISIONS: dict[str, tuple[str, ...]] = {"mixed": ("year", "month", "day"), "year": ("year",)}


def _point(rng: random.Random, year: int, precisions: tuple[str, ...]) -> TimePoint:
    """A date in ``year`` at a random precision (days up to 28 are valid in every month)."""
    precision = rng.choice(precisions) if len(precisions) > 1 else precisions[0]
    if precision == "year":
        return TimePoint(year)
    if precision == "month":
        return TimePoint(year, rng.randint(1, 12))
    return TimePoint(year, rng.randint(1, 12), rng.randint(1, 28))


def _interval(rng: random.Random, start: int, end: int, precisions: tuple[str, ...]) -> Span:
    """``start < end`` (years): bounds in distinct years, so the span is valid at any precision."""
    return Span(_point(rng, start, precisions), _point(rng, end, precisions))


def _anchor_span(rng: random.Random, relation: str, precisions: tuple[str, ...]) -> Span:
    """The anchor's time: a point (equal, during) or an interval of 2 to 10 years."""
    start = rng.randint(1900, 2010)
    if relation in ("equal", "during") and rng.random() < 0.3:
        point = _point(rng, start, precisions)
        return Span(point, point)
    return _interval(rng, start, start + rng.randint(2, 10), precisions)


def _related_span(
    rng: random.Random, anchor: Span, kind: str, precisions: tuple[str, ...]
) -> Span:
    """A span standing in ``kind`` (equal | during | overlap | disjoint) to ``anchor``.

    Bounds compared with the anchor's lie in other years, or copy the anchor's bound exactly.
    """
    sy, ey = anchor.start.year, anchor.end.year
    if kind == "equal":
        return Span(anchor.start, anchor.end)
    if kind == "during":
        options = ["contains", "shares_start", "shares_end"]
        if ey - sy >= 2:
            options += ["inside_point", "inside"] if ey - sy >= 3 else ["inside_point"]
        if anchor.is_point:
            options = ["contains"]
        choice = rng.choice(options)
        if choice == "contains":
            return _interval(rng, sy - rng.randint(1, 5), ey + rng.randint(1, 5), precisions)
        if choice == "shares_start":
            return Span(anchor.start, _point(rng, ey + rng.randint(1, 5), precisions))
        if choice == "shares_end":
            return Span(_point(rng, sy - rng.randint(1, 5), precisions), anchor.end)
        if choice == "inside_point":
            point = _point(rng, rng.randint(sy + 1, ey - 1), precisions)
            return Span(point, point)
        a = rng.randint(sy + 1, ey - 2)
        return _interval(rng, a, rng.randint(a + 1, ey - 1), precisions)
    if kind == "overlap":
        if ey - sy < 2:
            raise ValueError("an overlap needs an anchor of two years or more")
        inner = rng.randint(sy + 1, ey - 1)
        if rng.random() < 0.5:
            return _interval(rng, inner, ey + rng.randint(1, 5), precisions)
        return _interval(rng, sy - rng.randint(1, 5), inner, precisions)
    if kind == "disjoint":
        if rng.random() < 0.5:
            end = sy - rng.randint(1, 6)
            start = end - rng.randint(0, 6)
        else:
            start = ey + rng.randint(1, 6)
            end = start + rng.randint(0, 6)
        if start == end:
            point = _point(rng, start, precisions)
            return Span(point, point)
        return _interval(rng, start, end, precisions)
    raise ValueError(f"unknown span kind {kind!r}")


def _free_span(rng: random.Random, precisions: tuple[str, ...]) -> Span:
    """Any span (for facts the question's rules never compare with the anchor)."""
    start = rng.randint(1890, 2020)
    if rng.random() < 0.4:
        point = _point(rng, start, precisions)
        return Span(point, point)
    return _interval(rng, start, start + rng.randint(1, 12), precisions)


# --- rows ------------------------------------------------------------------------------------


#: what the distractors of a world are: half of them near misses (``near-miss``: the answer's
#: role, e.g. the same person's other employers, at a time disjoint from the anchor's, as in the
#: real files), so that choosing the answer means comparing dates; or only events the question
#: does not ask about (``background``: other people's or other properties' events), so that the
#: answer is the object (or subject) of the facts whose subject and property the question names
DISTRACTORS: tuple[str, ...] = ("near-miss", "background")


#: how many names a world draws from: the real files' variety (``full``), or a few of each
#: kind (``small``: ten people known by one name, and five places and kinds for each property),
#: so that a model trained for minutes sees each name often enough to learn it
VOCABULARIES: tuple[str, ...] = ("full", "small")


class _Names:
    """Unique invented names for one row (no name is another's substring at word bounds)."""

    def __init__(self, rng: random.Random, vocabulary: str = "full") -> None:
        self.rng = rng
        self.used: set[str] = set()
        small = vocabulary == "small"
        self.first = _FIRST[:10] if small else _FIRST
        self.places = _PLACES[:5] if small else _PLACES
        self.kinds = {
            "P108": _EMPLOYER_KINDS[:5] if small else _EMPLOYER_KINDS,
            "P102": _PARTY_KINDS[:5] if small else _PARTY_KINDS,
            "P39": _POSITIONS[:5] if small else _POSITIONS,
        }
        self.small = small

    def _fresh(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError("ran out of synthetic names")

    def person(self) -> str:
        if self.small:
            return self._fresh(lambda: self.rng.choice(self.first))
        return self._fresh(lambda: f"{self.rng.choice(self.first)} {self.rng.choice(_LAST)}")

    def thing(self, prop: str) -> str:
        rng, kinds = self.rng, self.kinds[prop]
        if prop == "P39":
            return self._fresh(lambda: f"{rng.choice(kinds)} {rng.choice(self.places)}")
        return self._fresh(lambda: f"{rng.choice(self.places)} {rng.choice(kinds)}")


def _background(
    triple: str, anchor_subject: str, anchor_prop: str, answer_prop: str, other: str | None
) -> list[tuple[str, str]]:
    """(subject, property) pairs of events the question does not ask about, at any time: never
    the answer's role (so no co-temporal event is missing from the gold answers)."""
    if triple == "S1_R1_O2":
        return [(anchor_subject, p) for p in VERBS if p != anchor_prop]
    if triple == "S1_R2_O2":
        return [(anchor_subject, anchor_prop)]
    if triple == "S2_R1_O1":
        # the anchor's other events (objects are fresh, so never the anchor's object)
        return [(anchor_subject, p) for p in VERBS]
    return [(anchor_subject, p) for p in VERBS] + [
        (str(other), p) for p in VERBS if p != answer_prop
    ]


def _answer_kinds(rng: random.Random, relation: str) -> list[str]:
    """The relation of each answer event to the anchor; mix: 2-4 answers of >= 2 kinds."""
    if relation == "mix":
        n = rng.choice((2, 2, 2, 3, 3, 4))
        while True:
            kinds = [rng.choice(("equal", "during", "overlap")) for _ in range(n)]
            if len(set(kinds)) >= 2:
                return kinds
    return [relation] * rng.choice((1, 1, 1, 2))


def synth_row(
    relation: str,
    index: int,
    seed: int,
    *,
    facts_per_row: tuple[int, int] = (6, 10),
    precision: str = "mixed",
    vocabulary: str = "full",
    distractors: str = "near-miss",
    questions: int | None = None,
) -> SynthRow:
    """Row ``index`` of the synthetic ``relation`` file for ``seed`` (independent of other rows).

    ``facts_per_row`` bounds the context's length (the anchor, the answer facts and at least two
    distractors are always there, so a row may exceed the upper bound); ``precision`` is a key of
    :data:`PRECISIONS`; ``vocabulary`` one of :data:`VOCABULARIES`; ``distractors`` one of
    :data:`DISTRACTORS`. ``questions`` (None: every row its own) makes the rows of a relation
    repeat that many questions: row ``index`` asks question ``index % questions``, with the same
    anchor and answer facts, and draws only its distractors, their order and the question's
    wording itself."""
    if relation not in RELATIONS:
        raise ValueError(f"unknown CoTempQA relation {relation!r}; known: {list(RELATIONS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown date precision {precision!r}; known: {list(PRECISIONS)}")
    low, high = facts_per_row
    if not 1 <= low <= high:
        raise ValueError(f"facts per row must satisfy 1 <= min <= max, found {facts_per_row}")
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"unknown vocabulary {vocabulary!r}; known: {list(VOCABULARIES)}")
    if distractors not in DISTRACTORS:
        raise ValueError(f"unknown distractors {distractors!r}; known: {list(DISTRACTORS)}")
    if questions is not None and questions < 1:
        raise ValueError(f"questions must be >= 1 (or None), got {questions}")
    precisions = PRECISIONS[precision]
    rng = row_rng(seed, "synth_cotemp", f"{relation}-{index}")
    # the question's own draws (anchor, answers); the row's draws (distractors, order) are rng's
    core = rng
    if questions is not None:
        core = row_rng(seed, "synth_cotemp", f"{relation}-question-{index % questions}")
    names = _Names(core, vocabulary)
    triple = core.choice(TRIPLE_ELEMENTS)
    props = list(VERBS)
    anchor_prop = core.choice(props)
    answer_prop = (
        anchor_prop if triple[3:5] == "R1" else core.choice([p for p in props if p != anchor_prop])
    )
    anchor_subject = names.person()
    anchor_object = names.thing(anchor_prop)
    anchor_span = _anchor_span(core, relation, precisions)
    kinds = _answer_kinds(core, relation)

    # (subject, property, object, span); the first is the anchor, then one per answer
    facts: list[tuple[str, str, str, Span]] = [
        (anchor_subject, anchor_prop, anchor_object, anchor_span)
    ]
    answers: list[str] = []
    other = names.person() if triple in ("S2_R1_O2", "S2_R2_O2") else None

    def answer_fact(span: Span) -> tuple[str, str, str, Span]:
        # who/what an answer event is under the triple element; also used for the distractors
        # of the answer role, which are answer-shaped but disjoint from the anchor
        if triple == "S2_R1_O1":
            return (names.person(), anchor_prop, anchor_object, span)
        subject = anchor_subject if triple.startswith("S1_") else str(other)
        return (subject, answer_prop, names.thing(answer_prop), span)

    for kind in kinds:
        fact = answer_fact(_related_span(core, anchor_span, kind, precisions))
        facts.append(fact)
        answers.append(fact[0] if triple == "S2_R1_O1" else fact[2])

    names.rng = rng  # the distractors' names are the row's own
    n_facts = max(rng.randint(low, high), len(facts) + 2)
    while len(facts) < n_facts:
        # (background worlds draw no coin, near-miss worlds one per distractor, as they always did)
        if distractors == "near-miss" and rng.random() < 0.5:
            # a near miss: the answer's role, at a time not co-temporal with the anchor
            facts.append(answer_fact(_related_span(rng, anchor_span, "disjoint", precisions)))
        else:
            subject, prop = rng.choice(
                _background(triple, anchor_subject, anchor_prop, answer_prop, other)
            )
            facts.append((subject, prop, names.thing(prop), _free_span(rng, precisions)))

    order = list(range(len(facts)))
    rng.shuffle(order)
    position = {original: new for new, original in enumerate(order)}
    texts = tuple(render_fact(s, VERBS[p], o, span) for s, p, o, span in (facts[i] for i in order))

    when = rng.choice(_WHEN)
    clause = f"While {anchor_subject} {_ANCHOR_VP[anchor_prop]} {anchor_object}, "
    if triple == "S2_R1_O1":
        ask = _WHO_ALSO[anchor_prop].format(obj=anchor_object)
    else:
        who = anchor_subject if triple.startswith("S1_") else str(other)
        ask = _WHICH[answer_prop].format(who=who)
    return SynthRow(
        relation=relation,
        index=index,
        triple_element=triple,
        question=f"{clause}{ask} {when}?",
        facts=texts,
        answers=tuple(answers),
        anchor=position[0],
        support=tuple(position[i] for i in range(1, 1 + len(kinds))),
        kinds=tuple(kinds),
    )


def write_synthetic_cotemp(
    out_dir: Path,
    *,
    relations: Sequence[str],
    rows: int,
    seed: int,
    facts_per_row: tuple[int, int] = (6, 10),
    precision: str = "mixed",
    vocabulary: str = "full",
    distractors: str = "near-miss",
    questions: int | None = None,
) -> list[Path]:
    """Write ``out_dir/<relation>.json`` (``rows`` JSON lines each); returns the paths written.

    ``facts_per_row``, ``precision``, ``vocabulary``, ``distractors`` and ``questions`` shape
    every row as in :func:`synth_row`."""
    unknown = sorted(set(relations) - set(RELATIONS))
    if unknown:
        raise ValueError(f"unknown CoTempQA relation(s) {unknown}; known: {list(RELATIONS)}")
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for relation in relations:
        path = out_dir / f"{relation}.json"
        lines = [
            synth_row(
                relation,
                i,
                seed,
                facts_per_row=facts_per_row,
                precision=precision,
                vocabulary=vocabulary,
                distractors=distractors,
                questions=questions,
            ).to_json()
            for i in range(rows)
        ]
        # write then rename, so an interrupted run never leaves a complete-looking short file
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)
        paths.append(path)
    return paths


def write_synthetic(out_dir: Path, source: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """The plug-in's writer: :func:`write_synthetic_cotemp` with the config's ``source`` block."""
    facts = source.get("facts_per_row", {})
    write_synthetic_cotemp(
        out_dir,
        relations=options["relations"],
        rows=int(source["rows"]),
        seed=int(source.get("seed", 0)),
        facts_per_row=(int(facts.get("min", 6)), int(facts.get("max", 10))),
        precision=str(source.get("precision", "mixed")),
        vocabulary=str(source.get("vocabulary", "full")),
        distractors=str(source.get("distractors", "near-miss")),
        questions=None if source.get("questions") is None else int(source["questions"]),
    )
