"""Tests of the synthetic CoTempQA twin: format, determinism, and the decomposition against it."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekd.datasets import Sampling
from tracekd.datasets.cotemp import (
    RELATIONS,
    RULES,
    TRIPLE_ELEMENTS,
    decompose_cotemp,
    load_cotemp,
    parse_fact,
    resolve,
    temporal_relation,
)
from tracekd.datasets.synth_cotemp import (
    _LAST,
    DISTRACTORS,
    PRECISIONS,
    VOCABULARIES,
    SynthRow,
    synth_row,
    write_synthetic,
    write_synthetic_cotemp,
)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth_cotemp")
    write_synthetic_cotemp(root, relations=list(RELATIONS), rows=60, seed=3)
    return root


def test_files_and_format(synth_dir: Path) -> None:
    assert sorted(p.name for p in synth_dir.iterdir()) == sorted(f"{r}.json" for r in RELATIONS)
    for relation in RELATIONS:
        lines = (synth_dir / f"{relation}.json").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 60
        for i, line in enumerate(lines):
            row = json.loads(line)
            assert list(row) == ["index", "triple_element", "question", "facts", "answer"]
            assert row["index"] == i and row["triple_element"] in TRIPLE_ELEMENTS
            assert 6 <= len(row["facts"]) <= 10
            assert row["question"].startswith("While ") and row["question"].endswith("?")
            assert (2 <= len(row["answer"]) <= 4) if relation == "mix" else len(row["answer"]) <= 2


def test_loader_reads_the_twin(synth_dir: Path) -> None:
    rows = load_cotemp(synth_dir)
    assert Counter(r.relation for r in rows) == dict.fromkeys(RELATIONS, 60)
    assert Counter(r.triple_element for r in rows).keys() == set(TRIPLE_ELEMENTS)


def test_mixed_precision_points_and_ranges(synth_dir: Path) -> None:
    spans = [parse_fact(f).span for r in load_cotemp(synth_dir) for f in r.facts]
    precisions = Counter(p.precision.name for s in spans for p in (s.start, s.end))
    assert set(precisions) == {"YEAR", "MONTH", "DAY"}
    assert any(s.is_point for s in spans) and any(not s.is_point for s in spans)
    verbs = Counter(parse_fact(f).verb for r in load_cotemp(synth_dir) for f in r.facts)
    assert set(verbs) == {"works for", "is a member of the", "holds the position of"}


def test_byte_identical_per_seed(tmp_path: Path) -> None:
    a = write_synthetic_cotemp(tmp_path / "a", relations=["equal", "mix"], rows=25, seed=11)
    b = write_synthetic_cotemp(tmp_path / "b", relations=["equal", "mix"], rows=25, seed=11)
    c = write_synthetic_cotemp(tmp_path / "c", relations=["equal", "mix"], rows=25, seed=12)
    assert [p.name for p in a] == ["equal.json", "mix.json"]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]
    # a row does not depend on how many rows are written
    d = write_synthetic_cotemp(tmp_path / "d", relations=["equal"], rows=5, seed=11)
    assert a[0].read_text().splitlines()[:5] == d[0].read_text().splitlines()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown CoTempQA relation"):
        write_synthetic_cotemp(tmp_path, relations=["before"], rows=3, seed=0)
    with pytest.raises(ValueError, match="rows"):
        write_synthetic_cotemp(tmp_path, relations=["equal"], rows=0, seed=0)


def test_mix_answers_stand_in_two_relations_or_more() -> None:
    for i in range(50):
        row = synth_row("mix", i, 0)
        assert len(set(row.kinds)) >= 2 and len(row.kinds) == len(row.answers)


@settings(max_examples=300, deadline=None)
@given(
    relation=st.sampled_from(RELATIONS),
    index=st.integers(min_value=0, max_value=10_000),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_decomposition_recovers_the_generators_support(
    relation: str, index: int, seed: int
) -> None:
    """The generator is the oracle: anchor + answer facts, under every precision rule."""
    row = synth_row(relation, index, seed)
    anchor = parse_fact(row.facts[row.anchor]).span
    for i, kind in zip(row.support, row.kinds, strict=True):
        for rule in RULES:
            # no mixed-precision tie: the relation is the one the generator drew, either way
            assert temporal_relation(anchor, parse_fact(row.facts[i]).span, rule) == kind
    for rule in (*RULES, "either"):
        res = resolve(relation, row.triple_element, row.question, row.facts, row.answers, rule=rule)
        assert res.flag_reason is None
        assert res.anchor == row.anchor
        assert res.relevant == row.relevant


def test_decompose_cotemp_on_the_twin(synth_dir: Path) -> None:
    frame, report = decompose_cotemp(synth_dir, sampling=Sampling(), split={"seed": 5})
    per = report.to_dict()["per_category"]
    assert all(c == {"rows": 60, "kept": 60, "covered": 60, "flagged": 0} for c in per.values())
    oracle = {f"{r}-{i:04d}": synth_row(r, i, 3).relevant for r in RELATIONS for i in range(60)}
    for row_id, relevant in zip(frame["id"], frame["relevant"], strict=True):
        assert tuple(relevant) == oracle[row_id]
    assert Counter(frame["split"]) == {"train": 192, "test": 48}


@settings(max_examples=300, deadline=None)
@given(
    relation=st.sampled_from(RELATIONS),
    index=st.integers(min_value=0, max_value=10_000),
    seed=st.integers(min_value=0, max_value=2**31),
    low=st.integers(min_value=1, max_value=6),
    extra=st.integers(min_value=0, max_value=4),
    precision=st.sampled_from(sorted(PRECISIONS)),
    vocabulary=st.sampled_from(VOCABULARIES),
    distractors=st.sampled_from(DISTRACTORS),
    questions=st.none() | st.integers(min_value=1, max_value=20),
)
def test_every_world_shape_keeps_the_oracle(
    relation: str, index: int, seed: int, low: int, extra: int, precision: str, vocabulary: str,
    distractors: str, questions: int | None,
) -> None:
    """Smaller worlds (the demo's) are still decomposed exactly as the generator built them."""
    row = synth_row(
        relation, index, seed, facts_per_row=(low, low + extra), precision=precision,
        vocabulary=vocabulary, distractors=distractors, questions=questions,
    )
    # the anchor, the answers and two distractors at least, else within the bounds
    assert len(row.facts) >= len(row.answers) + 3
    assert len(row.facts) <= max(low + extra, len(row.answers) + 3)
    spans = [parse_fact(fact).span for fact in row.facts]
    if precision == "year":
        assert all(p.month is None and p.day is None for s in spans for p in (s.start, s.end))
    if vocabulary == "small":
        words = {w for fact in row.facts for w in fact.split()}
        assert not words & set(_LAST)
    res = resolve(relation, row.triple_element, row.question, row.facts, row.answers, rule="either")
    assert res.flag_reason is None
    assert (res.anchor, res.relevant) == (row.anchor, row.relevant)


def test_default_shape_is_the_full_world() -> None:
    """The defaults are the real files' shape: 6 to 10 facts, mixed precision, full names,
    near-miss distractors, every row its own question."""
    assert synth_row("equal", 3, 9) == synth_row(
        "equal", 3, 9, facts_per_row=(6, 10), precision="mixed", vocabulary="full",
        distractors="near-miss", questions=None,
    )
    assert 6 <= len(synth_row("overlap", 4, 9).facts)


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ({}, "1861161624e0d2b5aaade206f451e5d67bb8691e6c504fc07f55e2b815b26a69"),
        (
            {"facts_per_row": (3, 4), "precision": "year", "vocabulary": "small"},
            "0cf0ef0608751af09efbd1a35e4a77d6603d4ddd148985dd1d1da4db309b0806",
        ),
    ],
)
def test_default_knobs_write_yesterdays_bytes(tmp_path: Path, shape: dict, expected: str) -> None:
    """The files written before the distractors and questions knobs existed, byte for byte:
    the real files' shape and the smaller one the demo used, at their defaults."""
    paths = write_synthetic_cotemp(tmp_path, relations=list(RELATIONS), rows=40, seed=3, **shape)
    assert _digest(paths) == expected
    again = write_synthetic_cotemp(
        tmp_path / "explicit", relations=list(RELATIONS), rows=40, seed=3, **shape,
        distractors="near-miss", questions=None,
    )
    assert _digest(again) == expected


def test_the_config_block_reaches_the_writer(tmp_path: Path) -> None:
    """``source:`` keys reach the generator; left out, they are the defaults."""
    options = {"relations": ["during"]}
    write_synthetic(tmp_path / "plain", {"rows": 9, "seed": 4}, options)
    write_synthetic(
        tmp_path / "defaults", {"rows": 9, "seed": 4, "distractors": "near-miss", "questions": None},
        options,
    )
    write_synthetic(
        tmp_path / "shaped", {"rows": 9, "seed": 4, "distractors": "background", "questions": 2},
        options,
    )
    plain = (tmp_path / "plain" / "during.json").read_bytes()
    assert plain == (tmp_path / "defaults" / "during.json").read_bytes()
    shaped = [json.loads(line) for line in (tmp_path / "shaped" / "during.json").open()]
    assert [r["answer"] for r in shaped[::2]] == [shaped[0]["answer"]] * 5
    expected = [synth_row("during", i, 4, distractors="background", questions=2) for i in range(9)]
    assert [r["facts"] for r in shaped] == [list(r.facts) for r in expected]


def _answer_role(row: SynthRow) -> set[tuple[str, str]]:
    """What the answer facts share: (subject, verb), or (verb, object) for "who also ...?"."""
    parsed = [parse_fact(row.facts[i]) for i in row.support]
    if row.triple_element == "S2_R1_O1":
        return {(f.verb, f.object) for f in parsed}
    return {(f.subject, f.verb) for f in parsed}


def _near_misses(row: SynthRow) -> int:
    """Distractors in the answer's role (at a time not co-temporal with the anchor)."""
    role = _answer_role(row)
    anchor = parse_fact(row.facts[row.anchor])
    count = 0
    for i in set(range(len(row.facts))) - set(row.relevant):
        fact = parse_fact(row.facts[i])
        key = (fact.verb, fact.object) if row.triple_element == "S2_R1_O1" else (fact.subject, fact.verb)
        if key in role and not (row.triple_element == "S2_R1_O1" and fact.subject == anchor.subject):
            count += 1
    return count


@settings(max_examples=200, deadline=None)
@given(
    relation=st.sampled_from(RELATIONS),
    index=st.integers(min_value=0, max_value=10_000),
    seed=st.integers(min_value=0, max_value=2**31),
    small=st.booleans(),
)
def test_background_distractors_are_never_the_answers_role(
    relation: str, index: int, seed: int, small: bool
) -> None:
    """Background worlds: the facts in the answer's role are the answers; nothing else is."""
    shape = {"facts_per_row": (3, 4), "precision": "year", "vocabulary": "small"} if small else {}
    row = synth_row(relation, index, seed, distractors="background", **shape)
    assert _near_misses(row) == 0
    assert len(row.facts) >= len(row.answers) + 3


def test_near_miss_worlds_have_near_misses() -> None:
    """The default world does put the answer's role at other times among the distractors."""
    rows = [synth_row(r, i, 5) for r in RELATIONS for i in range(30)]
    assert sum(_near_misses(row) > 0 for row in rows) > len(rows) // 2


@settings(max_examples=100, deadline=None)
@given(
    relation=st.sampled_from(RELATIONS),
    index=st.integers(min_value=0, max_value=10_000),
    seed=st.integers(min_value=0, max_value=2**31),
    questions=st.integers(min_value=1, max_value=12),
    distractors=st.sampled_from(DISTRACTORS),
)
def test_repeated_questions_keep_anchor_and_answers(
    relation: str, index: int, seed: int, questions: int, distractors: str
) -> None:
    """Rows ``questions`` apart ask the same question about the same facts, in other contexts."""
    a = synth_row(relation, index, seed, questions=questions, distractors=distractors)
    b = synth_row(relation, index + questions, seed, questions=questions, distractors=distractors)
    assert (a.triple_element, a.answers, a.kinds) == (b.triple_element, b.answers, b.kinds)
    assert [a.facts[i] for i in (a.anchor, *a.support)] == [b.facts[i] for i in (b.anchor, *b.support)]
    # the same question up to its closing phrase ("at the same time", "concurrently", ...)
    assert a.question.split(",")[0] == b.question.split(",")[0]


def test_repeated_questions_vary_their_contexts() -> None:
    rows = [synth_row("overlap", i, 2, questions=3) for i in range(30)]
    assert len({r.question.split(",")[0] for r in rows}) == 3
    assert len({r.facts for r in rows}) > 20  # new distractors and order, row by row


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"facts_per_row": (0, 3)}, "facts per row"),
        ({"facts_per_row": (5, 3)}, "facts per row"),
        ({"precision": "decade"}, "precision"),
        ({"vocabulary": "tiny"}, "vocabulary"),
        ({"distractors": "decoys"}, "distractors"),
        ({"questions": 0}, "questions"),
    ],
)
def test_bad_world_shapes_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synth_row("equal", 0, 0, **kwargs)
