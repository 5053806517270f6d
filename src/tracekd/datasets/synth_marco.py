"""A small synthetic twin of MS MARCO QnA, written in the v1.1 JSON lines layout.

It lets the whole study run on a laptop without the real data. A seeded *world* gives every
entity of a closed vocabulary one fact (a definition, a number, a maker, a region, an
inventor); each query asks for one entity's fact, and its passages are the fact's passage
(selected; sometimes a second, paraphrased one too) among passages about other entities of
the same kind (distractors). The answer span occurs verbatim in each selected passage and in
no distractor. A few rows have no answer (``"No Answer Present."`` or an empty list) or no
selected passage, so the loader's drop logic is exercised.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracekd.datasets.marco import NO_ANSWER, QUERY_TYPES
from tracekd.seeding import row_rng

SPLITS: tuple[str, ...] = ("train", "test")
MAX_PASSAGES = 10  # MS MARCO gives at most ten passages per query

# Closed vocabulary: invented things, so a model cannot answer from world knowledge.
THINGS = (
    "glimmerstone", "tidewheel", "marsh lantern", "copper loom", "salt kiln",
    "reed organ", "frost drum", "quill press", "moss clock", "ember sieve",
)
DEFINITIONS = (
    "a stone that glows after sunset",
    "a wheel turned by the rising tide",
    "a lamp that burns marsh gas",
    "a machine that spins wool into thread",
    "an oven for drying sea salt",
    "a small organ played with reeds",
    "a drum used to signal the first frost",
    "a press for shaping goose quills",
    "a clock that keeps time by growing moss",
    "a sieve for sorting hot embers",
)
UNITS = ("minutes", "hours", "days")
PRODUCTS = (
    "Aurora kettle", "Brisk bicycle", "Cobalt radio", "Dune tent", "Echo lamp",
    "Fable notebook", "Garnet watch", "Harbor boot", "Ivy chair", "Juniper stove",
)
COMPANIES = (
    "Norwell Works", "Pellham and Sons", "Quarry Hill Ltd", "Rookwood Company",
    "Stallbridge Group", "Tamsin Industries", "Umberfield Co", "Verrin Brothers",
)
PLACES = (
    "Bramholt", "Cinderford", "Easterlow", "Fallowmere", "Gorsebury",
    "Hollin Cross", "Kettlewick", "Larkstone", "Mirefield", "Northope",
)
REGIONS = (
    "the Amber Coast", "the Northern Fells", "the Silver Valley", "the Salt Marshes",
    "the High Moors", "the Lantern Isles",
)
LANDMARKS = ("old mill", "river ford", "stone bridge", "chalk cliffs", "market cross")
DEVICES = (
    "steam loom", "tide gauge", "wind organ", "glass furnace", "rope ladder",
    "fog bell", "seed drill", "sun compass", "water clock", "chain pump",
)
PEOPLE = (
    "Ada Brennick", "Tomas Herle", "Mira Okonde", "Jonas Vell", "Elsa Marrow",
    "Piet Calloway", "Rina Soldt", "Osric Layne",
)
SITES = ("wikiwise", "answerhub", "factfold", "howtoknow", "reference-desk")


@dataclass(frozen=True)
class _Fact:
    """One entity's fact: the query asking for it, its answer, and passages stating it."""

    query_type: str
    entity: str
    query: str
    answer: str
    passages: tuple[str, str]  # two wordings, both holding the answer verbatim


def _a(noun: str) -> str:
    """The noun with its indefinite article ("a tidewheel", "an ember sieve")."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _numeric_fact(thing: str, value: int, kind: int, unit: str) -> _Fact:
    if kind == 0:
        answer = f"{value} {unit}"
        return _Fact(
            "numeric", thing, f"how long does it take to build {_a(thing)}", answer,
            (f"It takes about {answer} to build {_a(thing)} by hand.",
             f"A skilled maker needs {answer} to finish one {thing}."),
        )
    if kind == 1:
        answer = f"${value}"
        return _Fact(
            "numeric", thing, f"how much does {_a(thing)} cost", answer,
            (f"A new {thing} costs about {answer} in most shops.",
             f"Expect to pay {answer} for {_a(thing)} of good quality."),
        )
    answer = f"{value} parts"
    return _Fact(
        "numeric", thing, f"how many parts does {_a(thing)} have", answer,
        (f"A standard {thing} has {answer}.", f"Taken apart, {_a(thing)} comes to {answer}."),
    )


def build_world(seed: int) -> dict[str, list[_Fact]]:
    """Every entity's fact per query type, drawn once per seed (so distractors stay consistent)."""
    rng = row_rng(seed, "synth-marco", "world")
    facts: dict[str, list[_Fact]] = {}
    definitions = rng.sample(DEFINITIONS, len(THINGS))
    facts["description"] = [
        _Fact("description", t, f"what is {_a(t)}", d,
              (f"{_a(t).capitalize()} is {d}. It is rarely seen outside old workshops.",
               f"Most people know the {t} as {d}."))
        for t, d in zip(THINGS, definitions, strict=True)
    ]
    facts["numeric"] = [
        _numeric_fact(t, rng.randint(2, 95), rng.randrange(3), rng.choice(UNITS)) for t in THINGS
    ]
    facts["entity"] = []
    for p in PRODUCTS:
        company = rng.choice(COMPANIES)
        facts["entity"].append(_Fact(
            "entity", p, f"which company makes the {p}", company,
            (f"The {p} is made by {company}, which sells it worldwide.",
             f"{company} has produced the {p} for many years."),
        ))
    facts["location"] = []
    for place in PLACES:
        region, landmark = rng.choice(REGIONS), rng.choice(LANDMARKS)
        facts["location"].append(_Fact(
            "location", place, f"where is {place}", region,
            (f"{place} is a small town in {region}, close to the {landmark}.",
             f"Visitors to {region} often stop in {place} to see the {landmark}."),
        ))
    facts["person"] = []
    for device in DEVICES:
        person, year = rng.choice(PEOPLE), rng.randint(1700, 1950)
        facts["person"].append(_Fact(
            "person", device, f"who invented the {device}", person,
            (f"The {device} was invented by {person} in {year}.",
             f"In {year}, {person} built the first working {device}."),
        ))
    return facts


def _url(rng: random.Random, fact: _Fact) -> str:
    slug = fact.entity.lower().replace(" ", "-")
    return f"http://www.{rng.choice(SITES)}.example/{fact.query_type}/{slug}"


def _distractors(
    rng: random.Random, world: Mapping[str, list[_Fact]], fact: _Fact, n: int
) -> list[_Fact]:
    """``n`` facts about other entities, same query type first; none mentions the answer."""
    same = [f for f in world[fact.query_type] if f.entity != fact.entity]
    other = [f for t in QUERY_TYPES if t != fact.query_type for f in world[t]]
    rng.shuffle(same)
    rng.shuffle(other)
    # The answer must be found only in the selected passages, or the IR step would be ambiguous.
    pool = [f for f in same + other if fact.answer not in f.passages[0] and f.answer != fact.answer]
    return pool[:n]


def make_row(
    rng: random.Random, world: Mapping[str, list[_Fact]], *, query_id: int, query_type: str,
    passages: int, kind: str = "normal",
) -> dict[str, Any]:
    """One v1.1 row. ``kind``: ``normal``, ``no_answer`` (none of the passages answers; the
    answers say so) or ``no_selected`` (the answer passage is there but nothing is selected)."""
    fact = rng.choice(world[query_type])
    n_selected = 2 if passages >= 3 and kind == "normal" and rng.random() < 0.2 else 1
    if kind == "no_answer":
        n_selected = 0
    others = _distractors(rng, world, fact, passages - n_selected)
    entries = [(text, 1, fact) for text in fact.passages[:n_selected]]
    entries += [(f.passages[0], 0, f) for f in others]
    rng.shuffle(entries)
    flags = [flag if kind == "normal" else 0 for _, flag, _ in entries]
    if kind == "no_answer":
        # Both spellings MS MARCO uses for "no answer": the marker string and an empty list.
        answers: list[str] = [NO_ANSWER] if rng.random() < 0.5 else []
    else:
        answers = [fact.answer]
    return {
        "query_id": query_id,
        "query": fact.query,
        "passages": {
            "is_selected": flags,
            "passage_text": [text for text, _, _ in entries],
            "url": [_url(rng, f) for _, _, f in entries],
        },
        "query_type": query_type,
        "answers": answers,
        "wellFormedAnswers": [],
    }


def _row_kind(index: int) -> str:
    # Fixed positions (not draws) so that any file of ten rows or more has both drop reasons.
    return {3: "no_answer", 7: "no_selected"}.get(index % 10, "normal")


def generate_split(
    world: Mapping[str, list[_Fact]], *, split: str, n: int, seed: int, passages: int,
    first_id: int,
) -> list[dict[str, Any]]:
    """``n`` rows of one split; query types cycle through shuffled rounds of the five."""
    rng = row_rng(seed, "synth-marco", split)
    rows = []
    types: list[str] = []
    for i in range(n):
        if not types:
            types = list(QUERY_TYPES)
            rng.shuffle(types)
        rows.append(make_row(
            rng, world, query_id=first_id + i, query_type=types.pop(), passages=passages,
            kind=_row_kind(i),
        ))
    return rows


def _check_rows(rows: Mapping[str, int] | int) -> dict[str, int]:
    counts = {"train": rows} if isinstance(rows, int) else dict(rows)
    unknown = sorted(set(counts) - set(SPLITS))
    if unknown:
        raise ValueError(f"rows: unknown split(s) {unknown}; allowed: {list(SPLITS)}")
    for split, n in counts.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"rows.{split} must be a positive integer, found {n!r}")
    return counts


def write_synthetic_marco(
    out_dir: Path, *, rows: Mapping[str, int] | int, seed: int, passages: int = 5
) -> list[Path]:
    """Write ``out_dir/synthetic_{split}.jsonl`` per split in ``rows`` (e.g. ``{"train": 50}``).

    A bare integer means one train pool (split later by ``decompose_marco``'s seeded split).
    ``passages`` per query lie between 1 and 10. Same arguments, byte-identical files.
    Returns the written paths, train first.
    """
    counts = _check_rows(rows)
    if not 1 <= passages <= MAX_PASSAGES:
        raise ValueError(f"passages must lie between 1 and {MAX_PASSAGES}, found {passages}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = build_world(seed)
    written: list[Path] = []
    first_id = 1
    for split in SPLITS:
        if split not in counts:
            continue
        data = generate_split(
            world, split=split, n=counts[split], seed=seed, passages=passages, first_id=first_id
        )
        first_id += counts[split]  # query ids stay unique across the splits
        path = out_dir / f"synthetic_{split}.jsonl"
        path.write_bytes(_jsonl(data))
        written.append(path)
    return written


def _jsonl(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def write_synthetic(out_dir: Path, source: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """The plug-in's writer: :func:`write_synthetic_marco` with the config's ``source`` block."""
    write_synthetic_marco(
        out_dir,
        rows=source["rows"],
        seed=int(source.get("seed", 0)),
        passages=int(source.get("passages", 5)),
    )
