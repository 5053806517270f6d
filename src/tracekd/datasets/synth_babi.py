"""Seeded synthetic bAbI: a small world simulator per paper task.

The original bAbI data was produced by simulating a tiny world and describing
it in templated English. We do the same at toy scale for the eleven tasks the
paper keeps, with the original vocabulary and wording, and write the original
text format and file names, so the demo goes through the same parser
(:mod:`tracekd.datasets.babi`) as the real data. Every answer and every supporting id
comes from the simulator's state, never from the text.

Stories are short (at most ``max_sentences`` story sentences) so that a tiny
model on a CPU can learn them. Within a story, questions are chosen so the
answers are balanced: the answer value is drawn first (uniformly among those
the current state allows), then a question with that answer.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracekd.datasets.babi import PAPER_TASKS, task_filename

PEOPLE = ("Mary", "John", "Sandra", "Daniel")
LOCATIONS = ("bathroom", "hallway", "garden", "office", "bedroom", "kitchen")
OBJECTS = ("football", "milk", "apple")
MOVE_VERBS = ("moved to", "went to", "journeyed to", "travelled to", "went back to")
GET_VERBS = ("got", "took", "picked up", "grabbed")
DROP_VERBS = ("dropped", "discarded", "put down", "left")
GIVE_VERBS = ("gave", "handed", "passed")
NUMBERS = ("none", "one", "two", "three")

TIME_PEOPLE = ("Bill", "Fred", "Julie", "Mary")
TIME_LOCATIONS = ("cinema", "school", "park", "office", "kitchen", "bedroom")
TIMES = ("yesterday", "this morning", "this afternoon", "this evening")  # chronological
TIME_VERBS = ("went", "went back", "travelled", "journeyed", "moved")

DIRECTIONS = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0)}
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}

# qa15: (singular, plural) of each species.
SPECIES = (("mouse", "mice"), ("cat", "cats"), ("sheep", "sheep"), ("wolf", "wolves"))
DEDUCTION_NAMES = ("Gertrude", "Winona", "Emily", "Jessica")

INDUCTION_NAMES = ("Lily", "Bernhard", "Brian", "Julius", "Greg")
ANIMALS = ("frog", "lion", "swan", "rhino")
COLORS = ("green", "white", "yellow", "gray")

SHAPES = ("triangle", "pink rectangle", "blue square", "red sphere", "yellow square", "red square")
CONTAINERS = ("box", "box of chocolates", "chest", "suitcase", "container", "chocolate")

# The originals put a space before the question's tab in these tasks only.
_SPACE_BEFORE_TAB = frozenset({"qa1", "qa2", "qa7", "qa8", "qa12", "qa14"})

_MAX_TRIES = 200


@dataclass(frozen=True)
class _Question:
    text: str
    answer: str
    support: tuple[int, ...]  # indices of story sentences (0-based, question lines excluded)


# A story is its sentences and questions in order.
_Item = str | _Question


def _pick_balanced(rng: random.Random, candidates: Sequence[_Question]) -> _Question:
    """Draw an answer value uniformly among those available, then a question with it."""
    by_answer: dict[str, list[_Question]] = {}
    for cand in candidates:
        by_answer.setdefault(cand.answer, []).append(cand)
    answer = rng.choice(sorted(by_answer))
    return rng.choice(by_answer[answer])


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


# --------------------------------------------------------------------------- dynamic worlds


class _World:
    """A world that changes sentence by sentence; questions read its current state."""

    min_sentences = 1

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.n = 0  # number of sentences told so far

    def act(self) -> str:
        """Change the world and return the sentence that tells it."""
        raise NotImplementedError

    def candidates(self) -> list[_Question]:
        """Every question the current state answers (with its supporting sentences)."""
        raise NotImplementedError

    def tell(self, sentence: str) -> str:
        self.n += 1
        return sentence


class _Movers(_World):
    """qa1: people move between locations."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.loc: dict[str, str] = {}
        self.last_move: dict[str, int] = {}

    def move(self, person: str) -> str:
        place = self.rng.choice([x for x in LOCATIONS if x != self.loc.get(person)])
        self.loc[person] = place
        self.last_move[person] = self.n
        return self.tell(f"{person} {self.rng.choice(MOVE_VERBS)} the {place}.")

    def act(self) -> str:
        return self.move(self.rng.choice(PEOPLE))

    def candidates(self) -> list[_Question]:
        return [
            _Question(f"Where is {p}?", self.loc[p], (self.last_move[p],))
            for p in PEOPLE
            if p in self.loc
        ]


class _Pairs(_World):
    """qa12: two people move together ("X and Y went to ...")."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.loc: dict[str, str] = {}
        self.last: dict[str, int] = {}

    def act(self) -> str:
        first, second = self.rng.sample(PEOPLE, 2)
        place = self.rng.choice(LOCATIONS)
        for person in (first, second):
            self.loc[person] = place
            self.last[person] = self.n
        return self.tell(f"{first} and {second} {self.rng.choice(MOVE_VERBS)} the {place}.")

    def candidates(self) -> list[_Question]:
        return [
            _Question(f"Where is {p}?", self.loc[p], (self.last[p],))
            for p in PEOPLE
            if p in self.loc
        ]


class _Carriers(_Movers):
    """qa2/qa7/qa8: people move, pick up, drop (and, for qa7, give) objects."""

    # Relative weight of one possible drop; counting and list tasks raise it so
    # that "none"/"nothing" answers are not rare.
    drop_weight = 0.8

    def __init__(self, rng: random.Random, *, give: bool) -> None:
        super().__init__(rng)
        self.give = give
        self.holder: dict[str, str] = {}  # object -> person holding it
        self.dropped_at: dict[str, str] = {}  # object -> location where it lies
        self.held: dict[str, list[str]] = {p: [] for p in PEOPLE}  # acquisition order
        self.events: dict[str, list[int]] = {p: [] for p in PEOPLE}  # a person's object events
        self.poss_event: dict[str, int] = {}  # object -> sentence of its last get/drop/give
        self.drop_move: dict[str, int] = {}  # object -> the dropper's move that placed it

    def _gettable(self, person: str) -> list[str]:
        here = self.loc.get(person)
        if here is None:
            return []  # a person must be somewhere before the story can say "there"
        return [o for o in OBJECTS if o not in self.holder and self.dropped_at.get(o, here) == here]

    def act(self) -> str:
        options: list[tuple[float, Callable[[], str]]] = []
        for person in PEOPLE:
            options.append((1.0, lambda p=person: self.move(p)))
            for obj in self._gettable(person):
                options.append((1.2, lambda p=person, o=obj: self._get(p, o)))
            for obj in self.held[person]:
                options.append((self.drop_weight, lambda p=person, o=obj: self._drop(p, o)))
                if self.give:
                    for other in PEOPLE:
                        if other != person and self.loc.get(other) == self.loc[person]:
                            options.append(
                                (0.5, lambda p=person, o=obj, q=other: self._give(p, o, q))
                            )
        weights = [w for w, _ in options]
        return self.rng.choices([f for _, f in options], weights=weights)[0]()

    def _get(self, person: str, obj: str) -> str:
        self.holder[obj] = person
        self.dropped_at.pop(obj, None)
        self.held[person].append(obj)
        self.events[person].append(self.n)
        self.poss_event[obj] = self.n
        return self.tell(f"{person} {self.rng.choice(GET_VERBS)} the {obj} there.")

    def _drop(self, person: str, obj: str) -> str:
        del self.holder[obj]
        self.dropped_at[obj] = self.loc[person]
        self.drop_move[obj] = self.last_move[person]
        self.held[person].remove(obj)
        self.events[person].append(self.n)
        self.poss_event[obj] = self.n
        there = self.rng.choice(("", " there"))
        return self.tell(f"{person} {self.rng.choice(DROP_VERBS)} the {obj}{there}.")

    def _give(self, person: str, obj: str, other: str) -> str:
        self.holder[obj] = other
        self.held[person].remove(obj)
        self.held[other].append(obj)
        self.events[person].append(self.n)
        self.events[other].append(self.n)
        self.poss_event[obj] = self.n
        return self.tell(f"{person} {self.rng.choice(GIVE_VERBS)} the {obj} to {other}.")


class _WhereObject(_Carriers):
    """qa2: "Where is the football?" from the carrier's move and the object event."""

    min_sentences = 2

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng, give=False)

    def candidates(self) -> list[_Question]:
        out = []
        for obj in OBJECTS:
            if obj in self.holder:
                person = self.holder[obj]
                support = (self.poss_event[obj], self.last_move[person])
                out.append(_Question(f"Where is the {obj}?", self.loc[person], support))
            elif obj in self.dropped_at:
                support = (self.poss_event[obj], self.drop_move[obj])
                out.append(_Question(f"Where is the {obj}?", self.dropped_at[obj], support))
        return out


class _Counting(_Carriers):
    """qa7: "How many objects is Mary carrying?"; support = all her object events."""

    min_sentences = 2
    drop_weight = 2.0

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng, give=True)

    def candidates(self) -> list[_Question]:
        return [
            _Question(
                f"How many objects is {p} carrying?",
                NUMBERS[len(self.held[p])],
                tuple(self.events[p]),
            )
            for p in PEOPLE
            if self.events[p]
        ]


class _Lists(_Carriers):
    """qa8: "What is Mary carrying?"; a comma list in acquisition order, or "nothing"."""

    min_sentences = 2
    drop_weight = 2.0

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng, give=False)

    def candidates(self) -> list[_Question]:
        return [
            _Question(
                f"What is {p} carrying?",
                ",".join(self.held[p]) or "nothing",
                tuple(self.events[p]),
            )
            for p in PEOPLE
            if self.events[p]
        ]


class _Timeline(_World):
    """qa14: each person's day (four time slots) told out of order."""

    min_sentences = 2

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        people = rng.sample(TIME_PEOPLE, rng.choice((2, 3)))
        self.plan: dict[str, list[str]] = {}
        for person in people:
            places = [rng.choice(TIME_LOCATIONS)]
            for _ in TIMES[1:]:
                places.append(rng.choice([x for x in TIME_LOCATIONS if x != places[-1]]))
            self.plan[person] = places
        self.untold = [(p, t) for p in people for t in range(len(TIMES))]
        self.told: dict[tuple[str, int], int] = {}  # (person, slot) -> sentence index

    def act(self) -> str:
        person, slot = self.untold.pop(self.rng.randrange(len(self.untold)))
        self.told[(person, slot)] = self.n
        verb = self.rng.choice(TIME_VERBS)
        place = self.plan[person][slot]
        if self.rng.random() < 0.5:
            return self.tell(f"{person} {verb} to the {place} {TIMES[slot]}.")
        return self.tell(f"{_cap(TIMES[slot])} {person} {verb} to the {place}.")

    def candidates(self) -> list[_Question]:
        out = []
        for person, places in self.plan.items():
            known = [t for t in range(len(TIMES)) if (person, t) in self.told]
            for slot in known:
                if slot == 0 or slot - 1 not in known:
                    continue
                place = places[slot]
                # "before the school" must name one told slot, or it is ambiguous.
                if sum(places[t] == place for t in known) != 1:
                    continue
                support = (self.told[(person, slot)], self.told[(person, slot - 1)])
                out.append(
                    _Question(f"Where was {person} before the {place}?", places[slot - 1], support)
                )
        return out


def _dynamic_story(
    make: Callable[[random.Random], _World],
    rng: random.Random,
    max_sentences: int,
    questions: int,
) -> list[_Item]:
    """Tell a story of at most ``max_sentences`` sentences with ``questions`` questions.

    The last question closes the story; the others fall after random sentences.
    A draw whose state cannot answer at a question's place is redrawn.
    """
    for _ in range(_MAX_TRIES):
        world = make(rng)
        low = min(max(world.min_sentences, 1), max_sentences)
        cap = max_sentences
        if isinstance(world, _Timeline):
            cap = min(cap, len(world.untold))
        n = rng.randint(low, cap)
        after = sorted([n] + [rng.randint(low, n) for _ in range(questions - 1)])
        items: list[_Item] = []
        ok = True
        for i in range(1, n + 1):
            items.append(world.act())
            asked: set[str] = set()  # questions asked at this point of the story
            while ok and after and after[0] == i:
                after.pop(0)
                cands = world.candidates()
                if not cands:
                    ok = False
                    break
                # Two questions in a row should differ when the state allows it.
                fresh = [c for c in cands if c.text not in asked] or cands
                pick = _pick_balanced(rng, fresh)
                asked.add(pick.text)
                items.append(pick)
            if not ok:
                break
        if ok:
            return items
    raise RuntimeError("could not draw a story with answerable questions; raise max_sentences")


# --------------------------------------------------------------------------- static worlds


def _ask_at_end(
    rng: random.Random, facts: list[str], candidates: list[_Question], questions: int
) -> list[_Item]:
    """All facts first, then the questions (distinct while they last), as in the originals."""
    items: list[_Item] = list(facts)
    pool = list(candidates)
    for _ in range(questions):
        if not pool:
            pool = list(candidates)
        pick = _pick_balanced(rng, pool)
        pool.remove(pick)
        items.append(pick)
    return items


def _qa4_story(rng: random.Random, max_sentences: int, questions: int) -> list[_Item]:
    """qa4: three places on a grid, two facts (star or chain), "What is north of the X?"."""
    a, b, c = rng.sample(LOCATIONS, 3)
    d1 = rng.choice(sorted(DIRECTIONS))
    edges = [(a, d1, b)]  # (X, d, Y): X is d of Y
    if rng.random() < 0.5:  # star around b
        d2 = rng.choice([d for d in sorted(DIRECTIONS) if d != d1])
        edges.append((c, d2, b))
    else:  # chain b - a - c
        d2 = rng.choice([d for d in sorted(DIRECTIONS) if d != OPPOSITE[d1]])
        edges.append((c, d2, a))
    rng.shuffle(edges)
    facts: list[str] = []
    candidates: list[_Question] = []
    for index, (x, d, y) in enumerate(edges):
        if rng.random() < 0.5:  # say it either way round
            x, d, y = y, OPPOSITE[d], x
        facts.append(f"The {x} is {d} of the {y}.")
        for xx, dd, yy in ((x, d, y), (y, OPPOSITE[d], x)):
            candidates.append(_Question(f"What is {dd} of the {yy}?", xx, (index,)))
            candidates.append(_Question(f"What is the {xx} {dd} of?", yy, (index,)))
    return _ask_at_end(rng, facts, candidates, questions)


def _qa15_story(rng: random.Random, max_sentences: int, questions: int) -> list[_Item]:
    """qa15: "Mice are afraid of wolves. Gertrude is a mouse." -> afraid of wolf."""
    fears = {s: rng.choice([o for o in range(len(SPECIES)) if o != s]) for s in range(len(SPECIES))}
    n_names = rng.randint(1, min(len(DEDUCTION_NAMES), max(1, max_sentences // 2)))
    names = rng.sample(DEDUCTION_NAMES, n_names)
    kind = {name: rng.randrange(len(SPECIES)) for name in names}
    needed = sorted(set(kind.values()))
    spare = [s for s in range(len(SPECIES)) if s not in needed]
    room = max_sentences - n_names - len(needed)
    extra = rng.sample(spare, rng.randint(0, max(0, min(room, len(spare)))))
    told = [("name", name) for name in names] + [("fear", SPECIES[s][0]) for s in needed + extra]
    rng.shuffle(told)
    singular = {one: index for index, (one, _) in enumerate(SPECIES)}
    facts: list[str] = []
    where: dict[tuple[str, str], int] = {}
    for index, (what, key) in enumerate(told):
        where[(what, key)] = index
        if what == "name":
            facts.append(f"{key} is a {SPECIES[kind[key]][0]}.")
        else:
            s = singular[key]
            facts.append(f"{_cap(SPECIES[s][1])} are afraid of {SPECIES[fears[s]][1]}.")
    candidates = [
        _Question(
            f"What is {name.lower()} afraid of?",
            SPECIES[fears[kind[name]]][0],
            (where[("name", name)], where[("fear", SPECIES[kind[name]][0])]),
        )
        for name in names
    ]
    return _ask_at_end(rng, facts, candidates, questions)


def _qa16_story(rng: random.Random, max_sentences: int, questions: int) -> list[_Item]:
    """qa16: "Julius is a swan. Julius is green. Greg is a swan." -> Greg is green."""
    n_groups = max(1, min(questions, max_sentences // 3, 2))
    names = rng.sample(INDUCTION_NAMES, len(INDUCTION_NAMES))
    animals = rng.sample(ANIMALS, len(ANIMALS))
    groups = []  # (target, witness, animal, color)
    for g in range(n_groups):
        groups.append((names[2 * g], names[2 * g + 1], animals[g], rng.choice(COLORS)))
    room = max_sentences - 3 * n_groups
    spare_names = names[2 * n_groups :]
    spare_animals = animals[n_groups:]
    n_extra = rng.randint(0, max(0, min(room // 2, len(spare_names), len(spare_animals))))
    # Each described person: (name, animal, color). Distractors use animals of their own,
    # so every target's colour follows from exactly one witness.
    described = [(w, a, c) for _, w, a, c in groups]
    described += [(spare_names[i], spare_animals[i], rng.choice(COLORS)) for i in range(n_extra)]
    # Shuffle the described people's sentences, then label each person's first
    # sentence with the animal and the second with the colour, as the originals do.
    slots = [name for name, _, _ in described for _ in range(2)]
    rng.shuffle(slots)
    fixed: list[tuple[str, str]] = []
    for name in slots:
        fixed.append((name, "color" if (name, "animal") in fixed else "animal"))
    targets = [(t, "target") for t, _, _, _ in groups]
    rng.shuffle(targets)
    sequence = fixed + targets
    info = {name: (animal, color) for name, animal, color in described}
    info.update({t: (a, c) for t, _, a, c in groups})
    facts: list[str] = []
    where: dict[tuple[str, str], int] = {}
    for index, (name, what) in enumerate(sequence):
        where[(name, what)] = index
        animal, color = info[name]
        facts.append(f"{name} is {color}." if what == "color" else f"{name} is a {animal}.")
    candidates = [
        _Question(
            f"What color is {t}?",
            c,
            (where[(t, "target")], where[(w, "animal")], where[(w, "color")]),
        )
        for t, w, _, c in groups
    ]
    return _ask_at_end(rng, facts, candidates, questions)


_RELATIONS = {  # relation -> (axis, sign): X rel Y iff sign * (X[axis] - Y[axis]) > 0
    "above": (1, 1),
    "below": (1, -1),
    "to the left of": (0, -1),
    "to the right of": (0, 1),
}


def _qa17_story(rng: random.Random, max_sentences: int, questions: int) -> list[_Item]:
    """qa17: one shape above/below a pivot, one left/right of it; yes/no questions."""
    pivot, up, side = rng.sample(SHAPES, 3)
    pos = {pivot: (0, 0), up: (0, rng.choice((1, -1))), side: (rng.choice((1, -1)), 0)}
    edges = [up, side]
    rng.shuffle(edges)
    facts: list[str] = []
    fact_of: dict[str, int] = {}
    for index, shape in enumerate(edges):
        first, second = (shape, pivot) if rng.random() < 0.5 else (pivot, shape)
        rel = next(
            r
            for r, (axis, sign) in _RELATIONS.items()
            if sign * (pos[first][axis] - pos[second][axis]) > 0
        )
        facts.append(f"The {first} is {rel} the {second}.")
        fact_of[shape] = index
    candidates = []
    for x, y in ((up, side), (side, up)):
        for rel, (axis, sign) in _RELATIONS.items():
            yes = sign * (pos[x][axis] - pos[y][axis]) > 0
            candidates.append(
                _Question(
                    f"Is the {x} {rel} the {y}?", "yes" if yes else "no", (fact_of[x], fact_of[y])
                )
            )
    return _ask_at_end(rng, facts, candidates, questions)


def _qa18_story(rng: random.Random, max_sentences: int, questions: int) -> list[_Item]:
    """qa18: a tree of "fits inside"/"is bigger than" facts; questions need a two-step chain."""
    for _ in range(_MAX_TRIES):
        n_objects = rng.randint(3, min(len(CONTAINERS), max_sentences + 1))
        objects = rng.sample(CONTAINERS, n_objects)
        edges: list[tuple[str, str]] = []  # (smaller, bigger)
        for i in range(1, n_objects):
            other = objects[rng.randrange(i)]
            pair = (objects[i], other) if rng.random() < 0.5 else (other, objects[i])
            edges.append(pair)
        rng.shuffle(edges)
        # Monotone two-step chains small < mid < big, with the facts in chain order.
        chains = [
            (s, b, (i, j))
            for i, (s, m) in enumerate(edges)
            for j, (m2, b) in enumerate(edges)
            if m == m2 and i != j
        ]
        if chains:
            break
    else:  # pragma: no cover - a 3-object tree has a chain with probability 1/2
        raise RuntimeError("could not draw a qa18 story")
    facts = [
        f"The {s} fits inside the {b}."
        if rng.random() < 0.5
        else f"The {b} is bigger than the {s}."
        for s, b in edges
    ]
    candidates = []
    for small, big, (i, j) in chains:
        up, down = (i, j), (j, i)  # fact order from the question's first object to its second
        candidates += [
            _Question(f"Does the {small} fit in the {big}?", "yes", up),
            _Question(f"Does the {big} fit in the {small}?", "no", down),
            _Question(f"Is the {big} bigger than the {small}?", "yes", down),
            _Question(f"Is the {small} bigger than the {big}?", "no", up),
        ]
    return _ask_at_end(rng, facts, candidates, questions)


_DYNAMIC: dict[str, Callable[[random.Random], _World]] = {
    "qa1": _Movers,
    "qa2": _WhereObject,
    "qa7": _Counting,
    "qa8": _Lists,
    "qa12": _Pairs,
    "qa14": _Timeline,
}
_STATIC: dict[str, Callable[[random.Random, int, int], list[_Item]]] = {
    "qa4": _qa4_story,
    "qa15": _qa15_story,
    "qa16": _qa16_story,
    "qa17": _qa17_story,
    "qa18": _qa18_story,
}
# Fewest story sentences each task needs (qa4 and qa17 always tell two facts).
_MIN_SENTENCES = {"qa4": 2, "qa15": 2, "qa16": 3, "qa17": 2, "qa18": 2}


def _render(task: str, items: Sequence[_Item]) -> list[str]:
    """Number the story's lines from 1 and map supporting sentence indices to line ids."""
    lines: list[str] = []
    ids: list[int] = []  # line id of each story sentence
    space = " " if task in _SPACE_BEFORE_TAB else ""
    for number, item in enumerate(items, start=1):
        if isinstance(item, str):
            ids.append(number)
            lines.append(f"{number} {item}")
        else:
            support = " ".join(str(ids[i]) for i in item.support)
            lines.append(f"{number} {item.text}{space}\t{item.answer}\t{support}")
    return lines


def generate_task(
    task: str,
    n_stories: int,
    rng: random.Random,
    *,
    max_sentences: int = 8,
    questions_per_story: int = 2,
) -> str:
    """Generate ``n_stories`` stories of one paper task, as the text of a bAbI file.

    Each story has at most ``max_sentences`` story sentences (qa4 and qa17 always
    have two, as the originals) and ``questions_per_story`` questions.
    """
    if task not in PAPER_TASKS:
        raise ValueError(f"synthetic bAbI covers the paper tasks {PAPER_TASKS}, not {task!r}")
    if n_stories < 0 or questions_per_story < 1:
        raise ValueError("n_stories must be >= 0 and questions_per_story >= 1")
    if max_sentences < _MIN_SENTENCES.get(task, 2):
        raise ValueError(f"{task} needs max_sentences >= {_MIN_SENTENCES.get(task, 2)}")
    lines: list[str] = []
    for _ in range(n_stories):
        if task in _DYNAMIC:
            items = _dynamic_story(_DYNAMIC[task], rng, max_sentences, questions_per_story)
        else:
            items = _STATIC[task](rng, max_sentences, questions_per_story)
        lines += _render(task, items)
    return "".join(line + "\n" for line in lines)


def derive_seed(seed: int, *parts: str) -> int:
    """A stable 64-bit seed from ``seed`` and names (sha256; Python's ``hash()`` is salted)."""
    key = ":".join([str(seed), *parts]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def write_synthetic_babi(
    out_dir: Path,
    *,
    tasks: Sequence[str],
    stories: Mapping[str, int],
    seed: int,
    max_sentences: int = 8,
    questions_per_story: int = 2,
) -> list[Path]:
    """Write ``out_dir/tasks_1-20_v1-2/en/qa{N}_{name}_{split}.txt`` for each task and split.

    ``stories`` maps a split to its number of stories, e.g. ``{"train": 40, "test": 10}``.
    Each (task, split) file has its own RNG derived from ``seed``, so the files are
    byte-identical for a seed and one task's file does not depend on which others are made.
    """
    # Check everything before writing anything, so a bad request leaves no files behind.
    for task in tasks:
        if task not in PAPER_TASKS:
            raise ValueError(f"synthetic bAbI covers the paper tasks {PAPER_TASKS}, not {task!r}")
    for split, n_stories in stories.items():
        if n_stories < 1:
            # An empty file is malformed bAbI: the loader would reject it.
            raise ValueError(f"split {split!r} needs at least one story, got {n_stories}")
    folder = Path(out_dir) / "tasks_1-20_v1-2" / "en"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for task in tasks:
        for split, n_stories in stories.items():
            rng = random.Random(derive_seed(seed, task, split))
            text = generate_task(
                task,
                n_stories,
                rng,
                max_sentences=max_sentences,
                questions_per_story=questions_per_story,
            )
            path = folder / task_filename(task, split)
            # Write to a temporary name first so a crash never leaves a file looking complete.
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8", newline="\n")
            tmp.replace(path)
            written.append(path)
    return written


__all__ = ["derive_seed", "generate_task", "write_synthetic_babi"]


def write_synthetic(out_dir: Path, source: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """The plug-in's writer: :func:`write_synthetic_babi` with the config's ``source`` block."""
    write_synthetic_babi(
        out_dir,
        tasks=options["tasks"],
        stories=source["stories"],
        seed=int(source.get("seed", 0)),
        max_sentences=int(source.get("max_sentences", 8)),
        questions_per_story=int(source.get("questions_per_story", 2)),
    )
