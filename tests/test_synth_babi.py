"""Tests of the synthetic bAbI generator.

The replay checker below is written independently of the generator: it reads
the generated text back with regular expressions over the sentence templates,
re-simulates each story sentence by sentence, and checks every answer and the
supporting ids against its own state.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekd.datasets.babi import PAPER_TASKS, load_babi, parse_babi
from tracekd.datasets.synth_babi import generate_task, write_synthetic_babi

NAMES = {
    "qa1": "single-supporting-fact",
    "qa2": "two-supporting-facts",
    "qa4": "two-arg-relations",
    "qa7": "counting",
    "qa8": "lists-sets",
    "qa12": "conjunction",
    "qa14": "time-reasoning",
    "qa15": "basic-deduction",
    "qa16": "basic-induction",
    "qa17": "positional-reasoning",
    "qa18": "size-reasoning",
}

# --------------------------------------------------------------------------- replay checker

P = r"(Mary|John|Sandra|Daniel)"
LOC = r"(bathroom|hallway|garden|office|bedroom|kitchen)"
OBJ = r"(football|milk|apple)"
MOVE = r"(?:moved to|went to|journeyed to|travelled to|went back to)"
RE_MOVE = re.compile(rf"{P} {MOVE} the {LOC}\.")
RE_GET = re.compile(rf"{P} (?:got|took|picked up|grabbed) the {OBJ} there\.")
RE_DROP = re.compile(rf"{P} (?:dropped|discarded|put down|left) the {OBJ}(?: there)?\.")
RE_GIVE = re.compile(rf"{P} (?:gave|handed|passed) the {OBJ} to {P}\.")
RE_PAIR = re.compile(rf"{P} and {P} {MOVE} the {LOC}\.")

Story = list[tuple[int, str]]  # (line id, sentence) of the story sentences told so far
Result = tuple[str, tuple[int, ...] | None]  # answer, supporting ids (None: not checked)
COUNT = ("none", "one", "two", "three")


def _match(pattern: re.Pattern[str], text: str) -> tuple[str, ...]:
    m = pattern.fullmatch(text)
    assert m, f"{text!r} does not match {pattern.pattern!r}"
    return m.groups()


class _People:
    """Re-simulation of the people/objects world of qa1, qa2, qa7, qa8, qa12."""

    def __init__(self) -> None:
        self.where: dict[str, tuple[str, int]] = {}  # person -> (location, id of that fact)
        self.hands: dict[str, list[str]] = {}  # person -> objects, in acquisition order
        self.log: dict[str, list[int]] = {}  # person -> ids of their object events
        self.obj: dict[str, tuple] = {}  # object -> ("held", person, id) | ("lies", loc, id, move)

    def read(self, lid: int, text: str) -> None:
        if m := RE_PAIR.fullmatch(text):
            a, b, loc = m.groups()
            assert a != b
            self.where[a] = self.where[b] = (loc, lid)
        elif m := RE_MOVE.fullmatch(text):
            person, loc = m.groups()
            self.where[person] = (loc, lid)
        elif m := RE_GET.fullmatch(text):
            person, obj = m.groups()
            assert person in self.where, "picks up before being anywhere"
            state = self.obj.get(obj)
            assert state is None or (state[0] == "lies" and state[1] == self.where[person][0])
            self.hands.setdefault(person, []).append(obj)
            self.log.setdefault(person, []).append(lid)
            self.obj[obj] = ("held", person, lid)
        elif m := RE_DROP.fullmatch(text):
            person, obj = m.groups()
            assert obj in self.hands.get(person, [])
            self.hands[person].remove(obj)
            self.log[person].append(lid)
            loc, move = self.where[person]
            self.obj[obj] = ("lies", loc, lid, move)
        elif m := RE_GIVE.fullmatch(text):
            giver, obj, taker = m.groups()
            assert obj in self.hands.get(giver, []) and giver != taker
            assert self.where[giver][0] == self.where[taker][0], "gives across rooms"
            self.hands[giver].remove(obj)
            self.hands.setdefault(taker, []).append(obj)
            self.log[giver].append(lid)
            self.log.setdefault(taker, []).append(lid)
            self.obj[obj] = ("held", taker, lid)
        else:
            raise AssertionError(f"unknown sentence {text!r}")


def _replay_people(story: Story) -> _People:
    world = _People()
    for lid, text in story:
        world.read(lid, text)
    return world


def check_where_person(story: Story, question: str) -> Result:
    (person,) = _match(re.compile(rf"Where is {P}\?"), question)
    loc, lid = _replay_people(story).where[person]
    return loc, (lid,)


def check_where_object(story: Story, question: str) -> Result:
    (obj,) = _match(re.compile(rf"Where is the {OBJ}\?"), question)
    world = _replay_people(story)
    state = world.obj[obj]
    if state[0] == "held":
        loc, move = world.where[state[1]]
        return loc, (state[2], move)
    return state[1], (state[2], state[3])


def check_counting(story: Story, question: str) -> Result:
    (person,) = _match(re.compile(rf"How many objects is {P} carrying\?"), question)
    world = _replay_people(story)
    return COUNT[len(world.hands.get(person, []))], tuple(world.log[person])


def check_lists(story: Story, question: str) -> Result:
    (person,) = _match(re.compile(rf"What is {P} carrying\?"), question)
    world = _replay_people(story)
    return ",".join(world.hands.get(person, [])) or "nothing", tuple(world.log[person])


TIME = ("yesterday", "this morning", "this afternoon", "this evening")
T_P = r"(Bill|Fred|Julie|Mary)"
T_LOC = r"(cinema|school|park|office|kitchen|bedroom)"
T_VERB = r"(?:went back|went|travelled|journeyed|moved)"
RE_TIME_AFTER = re.compile(rf"{T_P} {T_VERB} to the {T_LOC} ({'|'.join(TIME)})\.")
RE_TIME_BEFORE = re.compile(
    rf"({'|'.join(t.capitalize() for t in TIME)}) {T_P} {T_VERB} to the {T_LOC}\."
)


def check_time(story: Story, question: str) -> Result:
    person, place = _match(re.compile(rf"Where was {T_P} before the {T_LOC}\?"), question)
    day: dict[int, tuple[str, int]] = {}  # slot -> (location, id) for this person
    for lid, text in story:
        if m := RE_TIME_AFTER.fullmatch(text):
            who, loc, when = m.groups()
        else:
            when, who, loc = _match(RE_TIME_BEFORE, text)
        slot = TIME.index(when.lower())
        if who == person:
            assert slot not in day, "a slot told twice"
            day[slot] = (loc, lid)
    slots = [s for s, (loc, _) in day.items() if loc == place]
    assert len(slots) == 1, f"'before the {place}' is ambiguous or unknown"
    slot = slots[0]
    assert slot - 1 in day, "the slot before is not told"
    return day[slot - 1][0], (day[slot][1], day[slot - 1][1])


STEP = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0)}
RE_DIR = re.compile(rf"The {LOC} is (north|south|east|west) of the {LOC}\.")


def check_directions(story: Story, question: str) -> Result:
    # Each fact says X is one grid step in direction d from Y; place everything on the grid.
    facts = [(lid, *_match(RE_DIR, text)) for lid, text in story]
    pos: dict[str, tuple[int, int]] = {facts[0][3]: (0, 0)}
    for _ in facts:
        for _lid, x, d, y in facts:
            dx, dy = STEP[d]
            if y in pos and x not in pos:
                pos[x] = (pos[y][0] + dx, pos[y][1] + dy)
            elif x in pos and y not in pos:
                pos[y] = (pos[x][0] - dx, pos[x][1] - dy)
    assert len(set(pos.values())) == len(pos), "two places on one square"
    if m := re.fullmatch(rf"What is (north|south|east|west) of the {LOC}\?", question):
        d, anchor = m.groups()
        target = (pos[anchor][0] + STEP[d][0], pos[anchor][1] + STEP[d][1])
    else:
        anchor, d = _match(re.compile(rf"What is the {LOC} (north|south|east|west) of\?"), question)
        target = (pos[anchor][0] - STEP[d][0], pos[anchor][1] - STEP[d][1])
    (answer,) = [p for p, xy in pos.items() if xy == target]
    (support,) = [lid for lid, x, _, y in facts if {x, y} == {answer, anchor}]
    return answer, (support,)


SINGULAR = {"mice": "mouse", "cats": "cat", "sheep": "sheep", "wolves": "wolf"}
ANIMAL15 = r"(mouse|cat|sheep|wolf)"


def check_deduction(story: Story, question: str) -> Result:
    (name,) = _match(re.compile(r"What is (gertrude|winona|emily|jessica) afraid of\?"), question)
    kind: dict[str, tuple[str, int]] = {}
    fear: dict[str, tuple[str, int]] = {}
    for lid, text in story:
        if m := re.fullmatch(rf"(Gertrude|Winona|Emily|Jessica) is a {ANIMAL15}\.", text):
            assert m.group(1).lower() not in kind
            kind[m.group(1).lower()] = (m.group(2), lid)
        else:
            group, feared = _match(
                re.compile(r"(Mice|Cats|Sheep|Wolves) are afraid of (\w+)\."), text
            )
            assert group.lower() not in fear
            fear[SINGULAR[group.lower()]] = (SINGULAR[feared], lid)
    animal, kind_id = kind[name]
    answer, fear_id = fear[animal]
    return answer, (kind_id, fear_id)


def check_induction(story: Story, question: str) -> Result:
    (name,) = _match(re.compile(r"What color is (Lily|Bernhard|Brian|Julius|Greg)\?"), question)
    kind: dict[str, tuple[str, int]] = {}
    color: dict[str, tuple[str, int]] = {}
    for lid, text in story:
        if m := re.fullmatch(r"(\w+) is a (frog|lion|swan|rhino)\.", text):
            kind[m.group(1)] = (m.group(2), lid)
        else:
            who, col = _match(re.compile(r"(\w+) is (green|white|yellow|gray)\."), text)
            assert who in kind, "colour told before the animal"
            color[who] = (col, lid)
    animal, kind_id = kind[name]
    assert name not in color
    witnesses = [w for w in color if w != name and kind[w][0] == animal]
    assert len(witnesses) == 1, f"{len(witnesses)} witnesses for {name}"
    (w,) = witnesses
    return color[w][0], (kind_id, kind[w][1], color[w][1])


SHAPE = r"(triangle|pink rectangle|blue square|red sphere|yellow square|red square)"
REL = r"(above|below|to the left of|to the right of)"
REL_STEP = {"above": (0, 1), "below": (0, -1), "to the left of": (-1, 0), "to the right of": (1, 0)}


def check_positions(story: Story, question: str) -> Result:
    facts = [
        (lid, *_match(re.compile(rf"The {SHAPE} is {REL} the {SHAPE}\."), t)) for lid, t in story
    ]
    pos: dict[str, tuple[int, int]] = {facts[0][1]: (0, 0)}
    for _ in facts:
        for _lid, x, rel, y in facts:
            dx, dy = REL_STEP[rel]
            if y in pos and x not in pos:
                pos[x] = (pos[y][0] + dx, pos[y][1] + dy)
            elif x in pos and y not in pos:
                pos[y] = (pos[x][0] - dx, pos[x][1] - dy)
    x, rel, y = _match(re.compile(rf"Is the {SHAPE} {REL} the {SHAPE}\?"), question)
    dx, dy = REL_STEP[rel]
    gap = (pos[x][0] - pos[y][0], pos[x][1] - pos[y][1])
    along = gap[0] * dx + gap[1] * dy  # signed offset along the asked direction
    # The asked axis must be decided by the facts (shapes off the pivot's row or column).
    assert (gap[0] if dx else gap[1]) != 0, "undetermined"
    (fx,) = [lid for lid, a, _, b in facts if x in (a, b)]
    (fy,) = [lid for lid, a, _, b in facts if y in (a, b)]
    return ("yes" if along > 0 else "no"), (fx, fy)


BOX = r"(box of chocolates|box|chest|suitcase|container|chocolate)"


def check_sizes(story: Story, question: str) -> Result:
    smaller: list[tuple[str, str, int]] = []  # (small, big, id)
    for lid, text in story:
        if m := re.fullmatch(rf"The {BOX} fits inside the {BOX}\.", text):
            smaller.append((m.group(1), m.group(2), lid))
        else:
            big, small = _match(re.compile(rf"The {BOX} is bigger than the {BOX}\."), text)
            smaller.append((small, big, lid))

    def below(a: str, b: str) -> bool:  # a is (transitively) smaller than b
        frontier, seen = [a], {a}
        while frontier:
            cur = frontier.pop()
            for s, bb, _ in smaller:
                if s == cur and bb not in seen:
                    if bb == b:
                        return True
                    seen.add(bb)
                    frontier.append(bb)
        return False

    if m := re.fullmatch(rf"Does the {BOX} fit in the {BOX}\?", question):
        x, y = m.groups()
        yes, no = below(x, y), below(y, x)
    else:
        x, y = _match(re.compile(rf"Is the {BOX} bigger than the {BOX}\?"), question)
        yes, no = below(y, x), below(x, y)
    assert yes != no, "size relation undetermined or contradictory"
    return ("yes" if yes else "no"), None


def sizes_support_is_a_chain(story: Story, question: str, support: tuple[int, ...]) -> None:
    """The supporting facts link the question's first object to its second, in that order."""
    x, y = re.findall(BOX, question.replace("Does the ", "").replace("Is the ", ""))[:2]
    text = dict(story)
    current = x
    for lid in support:
        names = re.findall(rf"the {BOX}", text[lid].replace("The ", "the ", 1))
        assert current in names, (question, support)
        current = next(n for n in names if n != current)
    assert current == y


CHECKERS: dict[str, Callable[[Story, str], Result]] = {
    "qa1": check_where_person,
    "qa2": check_where_object,
    "qa4": check_directions,
    "qa7": check_counting,
    "qa8": check_lists,
    "qa12": check_where_person,
    "qa14": check_time,
    "qa15": check_deduction,
    "qa16": check_induction,
    "qa17": check_positions,
    "qa18": check_sizes,
}


def replay(task: str, text: str, max_sentences: int) -> int:
    """Check every question of a generated file; returns the number of questions checked."""
    story: Story = []
    told_questions = 0
    checked = 0
    expect = 1
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        lid = int(head)
        if lid == 1:
            assert expect == 1 or told_questions, "a story without a question"
            story, told_questions = [], 0
        else:
            assert lid == expect
        expect = lid + 1
        if "\t" not in rest:
            assert not told_questions or task not in {"qa4", "qa15", "qa16", "qa17", "qa18"}
            story.append((lid, rest))
            assert len(story) <= max_sentences
            continue
        question, answer, ids = rest.split("\t")
        support = tuple(int(i) for i in ids.split())
        got_answer, got_support = CHECKERS[task](story, question.strip())
        assert answer == got_answer, (task, line, got_answer)
        if got_support is not None:
            assert support == got_support, (task, line, got_support)
        if task == "qa18":
            sizes_support_is_a_chain(story, question, support)
        told_questions += 1
        checked += 1
    assert told_questions, "the last story has no question"
    return checked


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_replay_checker_agrees_with_generator(task: str) -> None:
    text = generate_task(task, 150, random.Random(7), max_sentences=8, questions_per_story=2)
    assert replay(task, text, 8) == 300


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_generated_files_parse_without_missing_support(task: str) -> None:
    text = generate_task(task, 60, random.Random(3), questions_per_story=3)
    questions = parse_babi(text, task=task, split="train")
    assert len(questions) == 180
    assert len({q.story for q in questions}) == 60
    assert all(not q.missing_support and q.relevant for q in questions)
    assert all(len(q.context) <= 8 for q in questions)


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_answers_are_balanced(task: str) -> None:
    questions = parse_babi(generate_task(task, 300, random.Random(11)), task=task, split="train")
    counts = Counter(",".join(q.answers) for q in questions)
    top = counts.most_common(1)[0][1] / len(questions)
    assert top <= 0.7, counts
    assert len(counts) >= (2 if task in {"qa17", "qa18"} else 4), counts


@settings(max_examples=40, deadline=None)
@given(
    task=st.sampled_from(PAPER_TASKS),
    seed=st.integers(0, 2**32 - 1),
    max_sentences=st.integers(3, 10),
    questions=st.integers(1, 3),
)
def test_replay_property(task: str, seed: int, max_sentences: int, questions: int) -> None:
    text = generate_task(
        task, 5, random.Random(seed), max_sentences=max_sentences, questions_per_story=questions
    )
    assert replay(task, text, max_sentences) == 5 * questions


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_write_is_deterministic_and_seeded(tmp_path: Path) -> None:
    stories = {"train": 12, "test": 4}
    first = write_synthetic_babi(tmp_path / "a", tasks=PAPER_TASKS, stories=stories, seed=5)
    write_synthetic_babi(tmp_path / "b", tasks=PAPER_TASKS, stories=stories, seed=5)
    write_synthetic_babi(tmp_path / "c", tasks=PAPER_TASKS, stories=stories, seed=6)
    assert len(first) == 22
    a, b, c = (_tree(tmp_path / x) for x in "abc")
    assert a == b
    assert set(a) == set(c) and all(a[k] != c[k] for k in a)
    assert set(a) == {
        f"tasks_1-20_v1-2/en/{t}_{NAMES[t]}_{s}.txt" for t in PAPER_TASKS for s in stories
    }
    # A file does not depend on which other tasks are written beside it, and train != test.
    write_synthetic_babi(tmp_path / "d", tasks=["qa8"], stories=stories, seed=5)
    d = _tree(tmp_path / "d")
    assert d == {k: v for k, v in a.items() if "/qa8_" in k}
    name = f"tasks_1-20_v1-2/en/qa8_{NAMES['qa8']}"
    assert d[f"{name}_train.txt"][:200] != d[f"{name}_test.txt"][:200]


def test_write_is_stable_across_hash_seeds(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from tracekd.datasets.synth_babi import write_synthetic_babi;"
        "write_synthetic_babi(Path(sys.argv[1]), tasks=['qa1', 'qa14'], "
        "stories={'train': 5}, seed=9)"
    )
    for index, hash_seed in enumerate(("1", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / str(index))], check=True, env=env
        )
    assert _tree(tmp_path / "0") == _tree(tmp_path / "1")


def test_written_files_load_through_the_real_loader(tmp_path: Path) -> None:
    write_synthetic_babi(
        tmp_path, tasks=PAPER_TASKS, stories={"train": 10, "test": 3}, seed=1, questions_per_story=1
    )
    questions = load_babi(tmp_path, PAPER_TASKS)
    assert len(questions) == 11 * 13
    assert Counter(q.split for q in questions) == {"train": 110, "test": 33}
    assert all(not q.missing_support for q in questions)


def test_original_line_format() -> None:
    # Space before the question's tab where the originals have one, none elsewhere.
    qa1 = generate_task("qa1", 3, random.Random(0))
    qa4 = generate_task("qa4", 3, random.Random(0))
    assert re.search(r"^\d+ Where is \w+\? \t\w+\t\d+$", qa1, re.M)
    assert re.search(r"^\d+ What is [\w ]+\?\t\w+\t\d+$", qa4, re.M)
    assert qa1.endswith("\n") and not qa1.endswith("\n\n")
    assert all(len(line.split("\t")) in (1, 3) for line in qa1.splitlines())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate_task("qa3", 1, random.Random(0))
    with pytest.raises(ValueError):
        generate_task("qa16", 1, random.Random(0), max_sentences=2)
    with pytest.raises(ValueError):
        generate_task("qa1", 1, random.Random(0), questions_per_story=0)
    assert generate_task("qa1", 0, random.Random(0)) == ""


def test_write_rejects_bad_requests_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_synthetic_babi(tmp_path, tasks=["qa1", "qa3"], stories={"train": 2}, seed=0)
    with pytest.raises(ValueError):
        write_synthetic_babi(tmp_path, tasks=["qa1"], stories={"train": 2, "test": 0}, seed=0)
    assert not any(tmp_path.iterdir())


def _corrupt(text: str, field: int) -> str:
    """Change the answer (field 1) or the supporting ids (field 2) of the first question."""
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if "\t" in line)
    parts = lines[index].split("\t")
    if field == 1:
        swap = {"yes": "no", "no": "yes", "none": "one", "one": "two", "two": "none"}
        parts[1] = swap.get(parts[1], "kitchen" if parts[1] != "kitchen" else "garden")
    else:
        ids = parts[2].split()
        parts[2] = " ".join(reversed(ids)) if len(ids) > 1 else str(int(ids[0]) + 1)
    lines[index] = "\t".join(parts)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_replay_checker_catches_corruption(task: str) -> None:
    """The checker is not vacuous: a wrong answer or wrong support on one row fails it."""
    text = generate_task(task, 5, random.Random(1))
    replay(task, text, 8)
    with pytest.raises(AssertionError):
        replay(task, _corrupt(text, 1), 8)
    with pytest.raises(AssertionError):
        replay(task, _corrupt(text, 2), 8)
