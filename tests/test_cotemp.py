"""Tests of the CoTempQA loader, fact parser, temporal relations and decomposition."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tracekd.datasets import SCHEMA, Sampling
from tracekd.datasets.cotemp import (
    FLAG_REASONS,
    RELATIONS,
    FactParseError,
    Precision,
    Span,
    TimePoint,
    compare_points,
    decompose_cotemp,
    decompose_rows,
    find_cotemp_files,
    load_cotemp,
    parse_date,
    parse_fact,
    read_cotemp_file,
    render_fact,
    resolve,
    split_ids,
    stands_in,
    temporal_relation,
)
from tracekd.errors import RawFormatError

REAL_COUNTS = {"equal": 436, "overlap": 653, "mix": 563}
SPLIT = {"test_fraction": 0.2, "seed": 42}


@pytest.fixture(scope="module")
def real_cotemp(real_data: Path) -> Path:
    """The real CoTempQA folder; skips when none of its files is there."""
    raw = real_data / "cotempqa" if (real_data / "cotempqa").is_dir() else real_data
    try:
        find_cotemp_files(raw)
    except FileNotFoundError:
        pytest.skip(f"real CoTempQA files not found under {raw} (set TRACEKD_REAL_DATA)")
    return raw


@pytest.fixture(scope="module")
def real_frame(real_cotemp: Path) -> tuple[pl.DataFrame, dict]:
    frame, report = decompose_cotemp(real_cotemp, sampling=Sampling(flagged="keep"), split=SPLIT)
    return frame, report.to_dict()


def _row(**overrides: object) -> dict:
    row = {
        "index": 0,
        "triple_element": "S1_R1_O2",
        "question": "While A B was working for C, which employer did A B work for at the same time?",
        "facts": ["A B works for C from 2000 to 2004.", "A B works for D from 2001 to 2002."],
        "answer": ["D"],
    }
    row.update(overrides)
    return row


def _write(folder: Path, name: str, lines: list[str] | str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    elif isinstance(lines, str):
        path.write_text(lines, encoding="utf-8")
    else:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- loader ----------------------------------------------------------------------------------


def test_real_files_load_with_counts_and_fields(real_cotemp: Path) -> None:
    rows = load_cotemp(real_cotemp)
    assert Counter(r.relation for r in rows) == REAL_COUNTS
    assert len({r.id for r in rows}) == len(rows)
    for r in rows:
        assert r.facts and r.answers and r.question.startswith("While ")
        assert r.id == f"{r.relation}-{r.index:04d}"
    mix = [r for r in rows if r.relation == "mix"]
    assert {len(r.answers) for r in mix} <= {2, 3, 4}


def test_loader_order_and_during_optional(tmp_path: Path) -> None:
    for relation in ("mix", "during", "equal"):
        _write(tmp_path / "nested" / relation, f"{relation}.json", [json.dumps(_row())])
    rows = load_cotemp(tmp_path)
    assert [r.relation for r in rows] == ["equal", "during", "mix"]
    assert rows[0].line == 1 and rows[0].file.endswith("equal.json")


def test_no_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="equal.json"):
        load_cotemp(tmp_path)


def test_two_files_for_one_relation_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "a", "equal.json", [json.dumps(_row())])
    _write(tmp_path / "b", "equal.json", [json.dumps(_row())])
    with pytest.raises(ValueError, match="several CoTempQA 'equal' files"):
        load_cotemp(tmp_path)


BAD_ROWS = [
    ("{not json", "json"),
    ("[1, 2]", "json"),
    (json.dumps({k: v for k, v in _row().items() if k != "facts"}), "facts"),
    (json.dumps({k: v for k, v in _row().items() if k != "answer"}), "answer"),
    (json.dumps(_row(index="3")), "index"),
    (json.dumps(_row(index=True)), "index"),
    (json.dumps(_row(triple_element="S3_R1_O2")), "triple_element"),
    (json.dumps(_row(question="")), "question"),
    (json.dumps(_row(question=7)), "question"),
    (json.dumps(_row(facts=[])), "facts"),
    (json.dumps(_row(facts="A B works for C in 2001.")), "facts"),
    (json.dumps(_row(facts=["A B works for C in 2001.", ""])), "facts"),
    (json.dumps(_row(answer=[3])), "answer"),
    (json.dumps(_row(answer=[])), "answer"),
]


@pytest.mark.parametrize(("line", "field"), BAD_ROWS)
def test_bad_row_names_file_row_and_field(tmp_path: Path, line: str, field: str) -> None:
    path = _write(tmp_path, "overlap.json", [json.dumps(_row(index=0)), line])
    with pytest.raises(RawFormatError) as info:
        load_cotemp(tmp_path)
    err = info.value
    assert (err.file, err.row, err.field) == (str(path), 2, field)
    assert str(err).startswith(f"{path}:2: {field}: ")
    assert pickle.loads(pickle.dumps(err)).row == 2


def test_non_utf8_blank_line_repeated_index_and_empty_file(tmp_path: Path) -> None:
    good = json.dumps(_row()).encode()
    path = _write(tmp_path, "equal.json", good + b"\n" + good.replace(b"A B", b"A \xff") + b"\n")
    with pytest.raises(RawFormatError) as info:
        read_cotemp_file(path, "equal")
    assert (info.value.row, info.value.field) == (2, "text")
    assert "UTF-8" in str(info.value)

    path = _write(tmp_path, "equal.json", [json.dumps(_row()), "", json.dumps(_row(index=1))])
    with pytest.raises(RawFormatError, match=r"equal.json:2: json: blank line"):
        read_cotemp_file(path, "equal")

    path = _write(tmp_path, "equal.json", [json.dumps(_row()), json.dumps(_row())])
    with pytest.raises(RawFormatError, match=r"equal.json:2: index: index 0 repeats line 1"):
        read_cotemp_file(path, "equal")

    path = _write(tmp_path, "equal.json", "\n\n")
    with pytest.raises(RawFormatError, match="empty file") as info:
        read_cotemp_file(path, "equal")
    assert info.value.row is None


def test_trailing_blank_lines_and_bom_are_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, "mix.json", "\ufeff" + json.dumps(_row()) + "\n\n\n")
    assert len(read_cotemp_file(path, "mix")) == 1


# --- facts -----------------------------------------------------------------------------------

PHRASINGS = [
    # every date shape found in the real files, and every verb
    ("X works for Y in 2003.", "works for", "Y", (2003, None, None), (2003, None, None)),
    ("X works for Y in March, 2003.", "works for", "Y", (2003, 3, None), (2003, 3, None)),
    ("X works for Y in March 4, 2003.", "works for", "Y", (2003, 3, 4), (2003, 3, 4)),
    ("X worked for Y from 1998 to 2004.", "worked for", "Y", (1998, None, None), (2004, None, None)),
    ("X attended Y from March, 1998 to 2004.", "attended", "Y", (1998, 3, None), (2004, None, None)),
    ("X plays for Y from 1998 to June, 2004.", "plays for", "Y", (1998, None, None), (2004, 6, None)),
    ("X is owned by Y from 1998 to June 2, 2004.", "is owned by", "Y", (1998, None, None), (2004, 6, 2)),
    ("X is the chair of Y from May, 1998 to June, 2004.", "is the chair of", "Y", (1998, 5, None), (2004, 6, None)),
    ("X is the head of Y from May, 1998 to June 2, 2004.", "is the head of", "Y", (1998, 5, None), (2004, 6, 2)),
    ("X holds the position of Y from May 1, 1998 to 2004.", "holds the position of", "Y", (1998, 5, 1), (2004, None, None)),
    ("X holds the position of Y from May 1, 1998 to June, 2004.", "holds the position of", "Y", (1998, 5, 1), (2004, 6, None)),
    ("X holds the position of Y from May 1, 1998 to June 2, 2004.", "holds the position of", "Y", (1998, 5, 1), (2004, 6, 2)),
    ("X is a member of the Y in 1581.", "is a member of the", "Y", (1581, None, None), (1581, None, None)),
    # objects holding " in ", " to ", " from " and commas
    ("X works for American Academy in Rome from 2010 to 2014.", "works for", "American Academy in Rome", (2010, None, None), (2014, None, None)),
    ("X holds the position of Ambassador to Chile in 2002.", "holds the position of", "Ambassador to Chile", (2002, None, None), (2002, None, None)),
    ("X attended University of California, Santa Cruz in May, 1990.", "attended", "University of California, Santa Cruz", (1990, 5, None), (1990, 5, None)),
    ("Brenda Hale, Baroness Hale works for Y from 1 to 9999.", "works for", "Y", (1, None, None), (9999, None, None)),
]  # fmt: skip


def _tp(parts: tuple[int, int | None, int | None]) -> TimePoint:
    return TimePoint(*parts)


@pytest.mark.parametrize(("text", "verb", "obj", "start", "end"), PHRASINGS)
def test_parse_fact_phrasings(text: str, verb: str, obj: str, start: tuple, end: tuple) -> None:
    fact = parse_fact(text)
    assert (fact.verb, fact.object) == (verb, obj)
    assert fact.span == Span(_tp(start), _tp(end))
    assert fact.span.is_point == text.split(obj)[-1].startswith(" in ")
    assert render_fact(fact.subject, fact.verb, fact.object, fact.span) == text


def test_precision_and_rendering() -> None:
    assert parse_date("2003").precision is Precision.YEAR
    assert parse_date("March, 2003").precision is Precision.MONTH
    assert parse_date("March 4, 2003").precision is Precision.DAY
    assert str(TimePoint(2003, 3)) == "March, 2003"
    assert str(Span(TimePoint(1998), TimePoint(2004, 6, 2))) == "from 1998 to June 2, 2004"
    assert parse_fact("X is a member of the Y in 2003.").relation == "P102"


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("X likes Y in 2003.", "sentence"),
        ("X works for Y.", "date"),
        ("X works for Y from 2003.", "date"),  # open range
        ("X works for Y from 2003 until 2005.", "date"),
        ("X works for Y since March, 2003.", "date"),
        ("X works for Y in February 30, 2001.", "date"),
        ("X works for Y in Smarch, 2001.", "date"),
        ("X works for Y from March 23, 2021 to March 22, 2021.", "date"),  # ends before it starts
        ("X works for Y in 2003", "date"),  # no full stop
    ],
)
def test_unparseable_facts_raise(text: str, part: str) -> None:
    with pytest.raises(FactParseError) as info:
        parse_fact(text)
    assert info.value.part == part
    if part == "date":
        assert info.value.head is not None and info.value.head[:2] == ("X", "works for")


def test_every_real_fact_parses_and_renders_back(real_cotemp: Path) -> None:
    failures = []
    for row in load_cotemp(real_cotemp):
        for text in row.facts:
            try:
                fact = parse_fact(text)
            except FactParseError as err:
                failures.append((row.id, err.part, text))
                continue
            assert render_fact(fact.subject, fact.verb, fact.object, fact.span) == text
    # the one fact in the sample with an end before its start (a distractor, Wikidata noise)
    assert failures == [
        (
            "equal-0159",
            "date",
            "Britt Bager holds the position of member of the Folketing "
            "from March 23, 2021 to March 22, 2021.",
        )
    ]


# --- relations -------------------------------------------------------------------------------


def _span(text: str) -> Span:
    """``"2003"`` (a point), ``"1998..June 2, 2004"`` (an interval)."""
    if ".." in text:
        start, end = text.split("..")
        return Span(parse_date(start), parse_date(end))
    point = parse_date(text)
    return Span(point, point)


def test_compare_points_at_coarser_precision() -> None:
    assert compare_points(parse_date("2003"), parse_date("March 4, 2003")) == 0
    assert compare_points(parse_date("March, 2003"), parse_date("March 4, 2003")) == 0
    assert compare_points(parse_date("March, 2003"), parse_date("April 1, 2003")) == -1
    assert compare_points(parse_date("2004"), parse_date("December 31, 2003")) == 1


RELATION_CASES = [
    # anchor, other, coarse, authors
    ("1999..2001", "1999..2001", "equal", "equal"),
    ("March 11, 2019", "March 11, 2019", "equal", "equal"),
    ("March 11, 2019", "March 12, 2019", "disjoint", "disjoint"),
    ("1999..2001", "2000", "during", "during"),  # a point inside
    ("2000", "1999..2001", "during", "during"),  # the anchor inside: symmetric
    ("1999..2001", "1990..2010", "during", "during"),
    ("1999..2001", "1999..2005", "during", "during"),  # shared start
    ("1999..2003", "2001..2006", "overlap", "overlap"),
    ("2001..2006", "1999..2003", "overlap", "overlap"),
    ("1999..2001", "2001..2004", "overlap", "overlap"),  # touching years share 2001
    ("1999..2001", "2002..2004", "disjoint", "disjoint"),
    # mixed precision: the two readings of a tie
    ("2003", "March, 2003..2005", "during", "disjoint"),
    ("2019", "March 11, 2019", "equal", "disjoint"),
    ("1875..1881", "December 18, 1875..November 13, 1904", "during", "overlap"),
    ("March, 2003..2005", "2003..2005", "equal", "during"),
    ("1999..2001", "March 5, 2001", "during", "disjoint"),
    ("March, 2003..June, 2004", "April 2, 2003..2005", "overlap", "overlap"),
    ("March, 2003..June, 2004", "April 2, 2003..2004", "during", "during"),
]


@pytest.mark.parametrize(("a", "b", "coarse", "authors"), RELATION_CASES)
def test_temporal_relation(a: str, b: str, coarse: str, authors: str) -> None:
    assert temporal_relation(_span(a), _span(b)) == coarse
    assert temporal_relation(_span(a), _span(b), "coarse") == coarse
    assert temporal_relation(_span(a), _span(b), "authors") == authors
    # relations are symmetric
    assert temporal_relation(_span(b), _span(a), "coarse") == coarse
    assert temporal_relation(_span(b), _span(a), "authors") == authors


@pytest.mark.parametrize(("a", "b", "coarse", "authors"), RELATION_CASES)
def test_stands_in_per_file(a: str, b: str, coarse: str, authors: str) -> None:
    for relation in RELATIONS:
        want = {
            r: (found != "disjoint" if relation == "mix" else found == relation)
            for r, found in (("coarse", coarse), ("authors", authors))
        }
        assert stands_in(relation, _span(a), _span(b), "coarse") == want["coarse"]
        assert stands_in(relation, _span(a), _span(b), "authors") == want["authors"]
        assert stands_in(relation, _span(a), _span(b)) == (want["coarse"] or want["authors"])


def test_relation_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown CoTempQA relation"):
        stands_in("before", _span("2001"), _span("2001"))
    with pytest.raises(ValueError, match="unknown precision rule"):
        temporal_relation(_span("2001"), _span("2001"), "finest")
    with pytest.raises(ValueError, match="ends"):
        _span("2005..2003")


# --- the IR step on hand-made rows -----------------------------------------------------------

AB_EMPLOYERS = [
    "A B works for C from 2000 to 2004.",  # 0: anchor
    "A B works for D from 2001 to 2002.",  # 1: during
    "A B works for E from 2003 to 2008.",  # 2: overlap
    "A B works for F from 2000 to 2004.",  # 3: equal
    "A B works for G in 1990.",  # 4: disjoint
    "A B is a member of the H from 2001 to 2003.",  # 5: another relation
    "K L works for C from 2000 to 2004.",  # 6: another subject, same object
    "K L works for M from 2001 to 2003.",  # 7: during
]
Q_S1 = "While A B was working for C, which employer did A B work for at the same time?"


@pytest.mark.parametrize(
    ("relation", "triple", "question", "answers", "relevant"),
    [
        ("during", "S1_R1_O2", Q_S1, ["D"], (0, 1)),
        ("overlap", "S1_R1_O2", Q_S1, ["E"], (0, 2)),
        ("equal", "S1_R1_O2", Q_S1, ["F"], (0, 3)),
        ("mix", "S1_R1_O2", Q_S1, ["D", "E", "F"], (0, 1, 2, 3)),
        (
            "during",
            "S1_R2_O2",
            "While A B was working for C, which political party did A B belong to concurrently?",
            ["H"],
            (0, 5),
        ),
        (
            "equal",
            "S2_R1_O1",
            "While A B was working for C, who also worked for C simultaneously?",
            ["K L"],
            (0, 6),
        ),
        (
            "during",
            "S2_R1_O2",
            "While A B was working for C, which employer did K L work for at the same time?",
            ["M"],
            (0, 7),
        ),
    ],
)
def test_resolve_each_triple_element(
    relation: str, triple: str, question: str, answers: list[str], relevant: tuple[int, ...]
) -> None:
    res = resolve(relation, triple, question, AB_EMPLOYERS, answers)
    assert res.flag_reason is None and res.covered
    assert res.anchor == 0 and res.relevant == relevant


@pytest.mark.parametrize(
    ("relation", "triple", "question", "facts", "answers", "reason"),
    [
        ("during", "S1_R1_O2", Q_S1, ["A B likes C in 2001."], ["D"], "unparsed_fact"),
        ("during", "S1_R1_O2", Q_S1.replace("for C", "for Z"), AB_EMPLOYERS, ["D"], "no_anchor"),
        ("during", "S1_R1_O2", Q_S1, AB_EMPLOYERS, ["Nobody"], "answer_not_in_facts"),
        ("during", "S1_R1_O2", Q_S1, AB_EMPLOYERS, ["G"], "relation_mismatch"),
        ("equal", "S1_R1_O2", Q_S1, AB_EMPLOYERS, ["D"], "relation_mismatch"),
        ("during", "S1_R1_O2", Q_S1, AB_EMPLOYERS, ["H"], "answer_not_in_facts"),  # wrong R
        (
            "during",
            "S1_R1_O2",
            Q_S1,
            ["A B works for C from 2004 to 2000.", "A B works for D in 2001."],
            ["D"],
            "unparsed_date",
        ),
        (
            "during",
            "S2_R1_O2",
            "While A B was working for C, which employer did Q R work for at the same time?",
            AB_EMPLOYERS,
            ["M"],
            "no_second_subject",
        ),
        (
            "during",
            "S1_R1_O2",
            Q_S1,
            [
                "A B works for C in 2001.",
                "A B works for C in 2010.",
                "A B works for D from 1990 to 2020.",
            ],
            ["D"],
            "ambiguous_anchor",
        ),
    ],
)
def test_resolve_flags(
    relation: str, triple: str, question: str, facts: list[str], answers: list[str], reason: str
) -> None:
    assert reason in FLAG_REASONS
    res = resolve(relation, triple, question, facts, answers)
    assert res.flag_reason == reason and not res.covered
    assert res.anchor is None or res.anchor in res.relevant


def test_resolve_ignores_a_bad_date_no_rule_needs() -> None:
    facts = [*AB_EMPLOYERS, "A B works for Z from March 23, 2021 to March 22, 2021."]
    assert resolve("during", "S1_R1_O2", Q_S1, facts, ["D"]).relevant == (0, 1)


def test_resolve_picks_the_one_anchor_that_supports_the_answers() -> None:
    # one position held twice: only the second stint overlaps the answer (overlap-0134's shape)
    facts = [
        "A B holds the position of president from 1973 to 1977.",
        "A B works for S from 1981 to 2001.",
        "A B holds the position of president from 1974 to 1999.",
    ]
    q = "While A B was holding the position of president, which employer did A B work for concurrently?"
    res = resolve("overlap", "S1_R2_O2", q, facts, ["S"])
    assert (res.anchor, res.relevant, res.flag_reason) == (2, (1, 2), None)
    # both stints as anchor give the same facts: resolved (mix-0111's shape)
    facts = [
        "A B holds the position of president from 1903 to 1908.",
        "A B holds the position of president from 1896 to 1906.",
        "A B holds the position of deputy from 1889 to 1908.",
    ]
    q = "While A B was holding the position of president, which position did A B hold concurrently?"
    res = resolve("mix", "S1_R1_O2", q, facts, ["deputy", "president"])
    assert res.relevant == (0, 1, 2) and res.covered


def test_member_of_the_and_answers_without_the() -> None:
    facts = ["A B is a member of the C from 2000 to 2004.", "A B is a member of the D in 2001."]
    q = "While A B was a member of C, which political party did A B belong to at the same time?"
    assert resolve("during", "S1_R1_O2", q, facts, ["D"]).relevant == (0, 1)


# --- decomposition ---------------------------------------------------------------------------


def test_real_coverage_per_relation(real_frame: tuple[pl.DataFrame, dict]) -> None:
    frame, report = real_frame
    per = report["per_category"]
    assert set(per) == set(REAL_COUNTS)
    for relation, n in REAL_COUNTS.items():
        counts = per[relation]
        assert counts["rows"] == counts["kept"] == n
        assert counts["covered"] + counts["flagged"] == n
        assert counts["covered"] / n >= 0.98, (relation, counts)
    flagged = frame.filter(pl.col("flagged"))
    assert flagged.height == sum(c["flagged"] for c in per.values())
    assert set(flagged["flag_reason"]) <= set(FLAG_REASONS)
    assert (
        frame.filter(~pl.col("flagged"))["flag_reason"].null_count()
        == frame.height - flagged.height
    )


def test_real_frame_schema_ids_and_relevant(real_frame: tuple[pl.DataFrame, dict]) -> None:
    frame, _ = real_frame
    assert list(frame.columns) == [
        *SCHEMA,
        "triple_element",
        "source_index",
        "flagged",
        "flag_reason",
    ]
    assert frame["id"].n_unique() == frame.height
    for row in frame.iter_rows(named=True):
        assert row["id"] == f"{row['category']}-{row['source_index']:04d}"
        assert row["relevant"] == sorted(set(row["relevant"]))
        assert all(0 <= i < len(row["context"]) for i in row["relevant"])
        if not row["flagged"]:
            # the anchor plus at least one fact per gold answer, each naming a gold answer
            assert len(row["relevant"]) >= 1 + len(set(row["answers"]))
            named = " ".join(row["context"][i] for i in row["relevant"])
            assert all(answer in named for answer in row["answers"])


def test_real_split_is_80_20_per_relation(real_frame: tuple[pl.DataFrame, dict]) -> None:
    frame, _ = real_frame
    for relation, n in REAL_COUNTS.items():
        part = frame.filter(pl.col("category") == relation)
        assert part.filter(pl.col("split") == "test").height == round(n * 0.2)


def test_real_decomposition_is_deterministic(
    real_cotemp: Path, real_frame: tuple[pl.DataFrame, dict], tmp_path: Path
) -> None:
    frame, report = real_frame
    again, report2 = decompose_cotemp(real_cotemp, sampling=Sampling(flagged="keep"), split=SPLIT)
    assert report2.to_dict() == report
    frame.write_parquet(tmp_path / "a.parquet")
    again.write_parquet(tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_drop_flagged_and_caps(real_cotemp: Path, real_frame: tuple[pl.DataFrame, dict]) -> None:
    frame, report = real_frame
    n_flagged = frame["flagged"].sum()
    kept, rep = decompose_cotemp(
        real_cotemp, sampling=Sampling(max={"train": 100, "test": 30}), split=SPLIT
    )
    d = rep.to_dict()
    assert not kept["flagged"].any()
    assert sum(v for k, v in d["dropped"].items() if k in FLAG_REASONS) == n_flagged
    assert Counter(kept["split"]) == {"train": 100, "test": 30}
    assert d["dropped"]["over_cap"] == frame.height - n_flagged - 130
    assert sum(c["kept"] for c in d["per_category"].values()) == 130
    # a row keeps its split whatever is dropped or capped around it
    split_of = dict(zip(frame["id"], frame["split"], strict=True))
    assert all(split_of[i] == s for i, s in zip(kept["id"], kept["split"], strict=True))


def test_split_ids_is_exact_seeded_and_order_free() -> None:
    ids = {
        "equal": [f"equal-{i:04d}" for i in range(11)],
        "mix": [f"mix-{i:04d}" for i in range(5)],
    }
    a = split_ids(ids, test_fraction=0.2, seed=1)
    b = split_ids(
        {k: list(reversed(v)) for k, v in reversed(ids.items())}, test_fraction=0.2, seed=1
    )
    assert a == b
    assert Counter(s for i, s in a.items() if i.startswith("equal")) == {"train": 9, "test": 2}
    assert split_ids(ids, test_fraction=0.2, seed=2) != a
    with pytest.raises(ValueError, match="test_fraction"):
        split_ids(ids, test_fraction=1.0, seed=1)


def test_split_options_are_checked(tmp_path: Path) -> None:
    _write(tmp_path, "during.json", [json.dumps(_row())])
    with pytest.raises(ValueError, match="unknown CoTemp split option"):
        decompose_cotemp(tmp_path, sampling=Sampling(), split={"fraction": 0.2})
    frame, _ = decompose_cotemp(tmp_path, sampling=Sampling(), split={})
    assert frame["relevant"].to_list() == [[0, 1]]


def test_empty_input_gives_an_empty_typed_frame() -> None:
    frame, report = decompose_rows([], sampling=Sampling(), split={})
    assert frame.height == 0 and frame.schema["relevant"] == pl.List(pl.Int64)
    assert report.to_dict()["per_category"] == {}
