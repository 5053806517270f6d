"""Tests of the bAbI v1.2 parser, on the real files and on hand-made ones."""

from __future__ import annotations

import os
import pickle
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekd.datasets.babi import (
    BABI_TASKS,
    PAPER_TASKS,
    SET_ANSWER_TASKS,
    BabiQuestion,
    find_babi_file,
    load_babi,
    parse_babi,
    read_babi_text,
)
from tracekd.errors import RawFormatError

ROOT = Path(__file__).resolve().parents[1]


def _real_babi_dir() -> Path:
    base = Path(os.environ.get("TRACEKD_REAL_DATA", ROOT.parent / "shared" / "data"))
    return base / "babi" if (base / "babi").is_dir() else base


@cache
def _real(task: str, split: str) -> tuple[BabiQuestion, ...]:
    return tuple(load_babi(_real_babi_dir(), [task], [split]))


@pytest.fixture(scope="module")
def real_dir() -> Path:
    raw = _real_babi_dir()
    try:
        find_babi_file(raw, "qa1", "train")
    except FileNotFoundError:
        pytest.skip(f"real bAbI data not found under {raw} (set TRACEKD_REAL_DATA)")
    return raw


def _raw_sentences(path: Path) -> dict[tuple[int, int], str]:
    """(story index, line id) -> text of every line, read without the parser."""
    out: dict[tuple[int, int], str] = {}
    story = -1
    for line in path.read_text(encoding="utf-8").splitlines():
        head, _, rest = line.partition(" ")
        if head == "1":
            story += 1
        out[(story, int(head))] = rest.split("\t")[0].strip()
    return out


# --------------------------------------------------------------------------- real files


def test_task_tables() -> None:
    assert len(BABI_TASKS) == 20
    assert BABI_TASKS["qa1"] == "single-supporting-fact"
    assert BABI_TASKS["qa20"] == "agents-motivations"
    assert len(PAPER_TASKS) == 11 and set(PAPER_TASKS) <= set(BABI_TASKS)
    assert SET_ANSWER_TASKS == frozenset({"qa8"})


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("task", PAPER_TASKS)
def test_real_file_counts_and_invariants(real_dir: Path, task: str, split: str) -> None:
    questions = _real(task, split)
    assert len(questions) == 1000
    path = find_babi_file(real_dir, task, split)
    assert path.parent.name == "en"
    assert path.name == f"{task}_{BABI_TASKS[task]}_{split}.txt"
    raw = _raw_sentences(path)
    for q in questions:
        assert q.task == task and q.split == split
        assert not q.missing_support, (q.row, q.supporting)
        assert len(q.relevant) == len(q.supporting)
        # Question lines never enter the context; ids increase and stop before the question.
        assert all("\t" not in s and not s.endswith("?") for s in q.context)
        assert list(q.context_ids) == sorted(q.context_ids) and q.context_ids[-1] < q.line
        # Each relevant index points at the sentence the supporting id names in the file.
        for sid, index in zip(q.supporting, q.relevant, strict=True):
            assert q.context_ids[index] == sid
            assert q.context[index] == raw[(q.story, sid)]
        assert q.question == raw[(q.story, q.line)]
        assert all(a and a == a.strip() for a in q.answers)


def test_real_paper_train_stories_sum_to_3773(real_dir: Path) -> None:
    stories = {task: len({q.story for q in _real(task, "train")}) for task in PAPER_TASKS}
    assert stories["qa1"] == 200 and stories["qa4"] == 1000 and stories["qa17"] == 125
    assert sum(stories.values()) == 3773


def test_real_qa1_known_rows(real_dir: Path) -> None:
    questions = _real("qa1", "train")
    first_story = [q for q in questions if q.story == 0]
    assert len(first_story) == 5  # several questions per story
    q = first_story[1]
    assert (q.question, q.answers, q.supporting, q.line, q.row) == (
        "Where is Daniel?",
        ("hallway",),
        (4,),
        6,
        6,
    )
    assert q.context_ids == (1, 2, 4, 5)  # id 3 is the first question's line
    assert q.relevant == (2,)
    assert q.context[q.relevant[0]] == "Daniel went back to the hallway."
    q = first_story[3]
    assert (q.question, q.answers, q.supporting) == ("Where is Daniel?", ("office",), (11,))
    assert q.context[q.relevant[0]] == "Daniel travelled to the office."
    assert q.relevant == (7,)
    assert questions[5].story == 1 and questions[5].line == 3 and questions[5].row == 18
    assert questions[5].context == (
        "Sandra travelled to the office.",
        "Sandra went to the bathroom.",
    )


def test_real_qa2_two_supporting_facts(real_dir: Path) -> None:
    q = _real("qa2", "train")[2]
    assert (q.question, q.answers, q.supporting) == (
        "Where is the football?",
        ("hallway",),
        (15, 17),
    )
    assert [q.context[i] for i in q.relevant] == [
        "Mary took the football there.",
        "Mary travelled to the hallway.",
    ]


def test_real_qa8_list_answers_are_split(real_dir: Path) -> None:
    questions = _real("qa8", "train")
    sizes = Counter(len(q.answers) for q in questions)
    assert sizes[2] > 0 and sizes[1] > 0
    assert all("," not in a for q in questions for a in q.answers)
    assert any(q.answers == ("nothing",) for q in questions)
    q = questions[2]
    assert (q.answers, q.supporting) == (("football",), (3, 7, 9))
    two = next(q for q in questions if len(q.answers) == 2)
    assert set(two.answers) <= {"football", "milk", "apple"}


@pytest.mark.parametrize("task", ["qa7", "qa16"])
def test_real_many_id_supports(real_dir: Path, task: str) -> None:
    questions = _real(task, "train")
    assert max(len(q.supporting) for q in questions) >= 3


def test_real_known_multi_support_rows(real_dir: Path) -> None:
    q7 = _real("qa7", "train")[4]
    assert (q7.question, q7.answers, q7.supporting) == (
        "How many objects is Mary carrying?",
        ("one",),
        (4, 15, 17),
    )
    assert [q7.context[i] for i in q7.relevant] == [
        "Mary took the football there.",
        "Mary dropped the football.",
        "Mary got the football there.",
    ]
    q16 = _real("qa16", "train")[0]
    assert (q16.question, q16.answers, q16.supporting, q16.relevant) == (
        "What color is Greg?",
        ("green",),
        (9, 6, 7),
        (8, 5, 6),
    )


def test_real_time_positional_size_tasks(real_dir: Path) -> None:
    q14 = _real("qa14", "train")[0]
    assert (q14.question, q14.answers, q14.supporting) == (
        "Where was Julie before the school?",
        ("office",),
        (2, 4),
    )
    q17 = _real("qa17", "train")
    assert {q.answers for q in q17} == {("yes",), ("no",)}
    assert q17[0].question == "Is the pink rectangle to the right of the blue square?"
    assert all(len(q.context) == 2 for q in q17)
    q18 = _real("qa18", "train")
    assert q18[0].question == "Does the box fit in the box of chocolates?"
    assert q18[0].answers == ("no",) and q18[0].relevant == (0, 1)


def test_real_load_several_tasks_in_order(real_dir: Path) -> None:
    questions = load_babi(real_dir, ["qa4", "qa1"], ["test"])
    assert len(questions) == 2000
    assert questions[0].task == "qa4" and questions[-1].task == "qa1"
    assert {q.split for q in questions} == {"test"}


# --------------------------------------------------------------------------- hand-made input


def _write(tmp_path: Path, task: str, split: str, data: bytes, folder: str = "en") -> Path:
    path = tmp_path / "tasks_1-20_v1-2" / folder / f"{task}_{BABI_TASKS[task]}_{split}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


SMALL = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Mary went to the office.\n"
    "5 Where is Mary? \toffice\t4\n"
    "1 Sandra went to the garden.\n"
    "2 Where is Sandra? \tgarden\t1\n"
)


def test_parse_small_story() -> None:
    questions = parse_babi(SMALL, task="qa1", split="train")
    assert [(q.story, q.line, q.row) for q in questions] == [(0, 3, 3), (0, 5, 5), (1, 2, 7)]
    second = questions[1]
    assert second.context_ids == (1, 2, 4)
    assert second.relevant == (2,)
    assert second.question == "Where is Mary?"  # the space before the tab is dropped
    assert second.category == "single-supporting-fact"


def test_crlf_and_trailing_blank_lines() -> None:
    text = SMALL.replace("\n", "\r\n") + "\r\n\r\n"
    assert parse_babi(text, task="qa1", split="test") == parse_babi(SMALL, task="qa1", split="test")
    bom = "\ufeff" + SMALL
    assert parse_babi(bom, task="qa1", split="test") == parse_babi(SMALL, task="qa1", split="test")


def test_support_to_question_line_or_future_is_flagged_not_fatal() -> None:
    text = "1 Mary moved to the bathroom.\n2 Where is Mary? \tbathroom\t2 1 7\n"
    (q,) = parse_babi(text, task="qa1", split="train")
    assert q.supporting == (2, 1, 7)
    assert q.relevant == (0,)
    assert q.missing_support == (2, 7)


def test_qa8_answer_items_and_empty_item() -> None:
    text = "1 Mary got the milk there.\n2 What is Mary carrying? \tmilk, apple\t1\n"
    (q,) = parse_babi(text, task="qa8", split="train")
    assert q.answers == ("milk", "apple")
    # Other tasks keep the answer whole.
    (q1,) = parse_babi(text, task="qa1", split="train")
    assert q1.answers == ("milk, apple",)
    bad = "1 Mary got the milk there.\n2 What is Mary carrying? \tmilk,\t1\n"
    with pytest.raises(RawFormatError) as err:
        parse_babi(bad, task="qa8", split="train", source="f.txt")
    assert (err.value.row, err.value.field) == (2, "answer")


@pytest.mark.parametrize(
    ("text", "row", "field"),
    [
        ("1 Mary moved.\nMary went to the garden.\n", 2, "id"),
        ("1 Mary moved.\n-2 Mary went.\n", 2, "id"),
        ("0 Mary moved.\n", 1, "id"),
        ("1 Mary moved.\n3 Mary went.\n", 2, "id"),  # a lost line
        ("2 Mary moved.\n", 1, "id"),
        ("1 Mary moved.\n\n2 Mary went.\n", 2, "id"),
        ("1 Mary moved.\n2 \n", 2, "text"),
        ("1 Mary moved.\n2 Where is Mary?\tbathroom\n", 2, "fields"),
        ("1 Mary moved.\n2 Where is Mary?\tbathroom\t1\t1\n", 2, "fields"),
        ("1 Mary moved.\n2 Where is Mary?\t\t1\n", 2, "answer"),
        ("1 Mary moved.\n2 Where is Mary?\t \t1\n", 2, "answer"),
        ("1 Mary moved.\n2 Where is Mary?\tbathroom\tone\n", 2, "supporting"),
        ("1 Mary moved.\n2 Where is Mary?\tbathroom\t1.0\n", 2, "supporting"),
        ("1 Mary moved.\n2 Where is Mary?\tbathroom\t\n", 2, "supporting"),
        ("1 Mary moved.\n2 \tbathroom\t1\n", 2, "question"),
    ],
)
def test_malformed_rows(tmp_path: Path, text: str, row: int, field: str) -> None:
    path = _write(tmp_path, "qa1", "train", text.encode("utf-8"))
    with pytest.raises(RawFormatError) as err:
        load_babi(tmp_path, ["qa1"], ["train"])
    assert (err.value.file, err.value.row, err.value.field) == (str(path), row, field)
    assert str(err.value).startswith(f"{path}:{row}: {field}: ")


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "qa2", "test", b"")
    with pytest.raises(RawFormatError) as err:
        load_babi(tmp_path, ["qa2"], ["test"])
    assert (err.value.file, err.value.row, err.value.field) == (str(path), None, "text")
    assert str(err.value) == f"{path}: text: empty file"
    with pytest.raises(RawFormatError):
        parse_babi(" \n\n", task="qa2", split="test")


def test_non_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path, "qa1", "train", b"1 Mary moved.\n2 Mary went to the caf\xe9.\n")
    with pytest.raises(RawFormatError) as err:
        read_babi_text(path)
    assert (err.value.row, err.value.field) == (2, "text")
    assert "UTF-8" in err.value.message and str(path) in str(err.value)


def test_error_pickles_and_reads() -> None:
    err = RawFormatError("a.txt", 3, "answer", "empty answer")
    assert str(err) == "a.txt:3: answer: empty answer"
    assert isinstance(err, ValueError)
    back = pickle.loads(pickle.dumps(err))
    assert (back.file, back.row, back.field, back.message) == ("a.txt", 3, "answer", "empty answer")


def test_find_prefers_en_over_en10k_and_skips_other_languages(tmp_path: Path) -> None:
    data = SMALL.encode()
    _write(tmp_path, "qa1", "train", data, folder="hn")
    _write(tmp_path, "qa1", "train", data, folder="shuffled")
    tenk = _write(tmp_path, "qa1", "train", data, folder="en-10k")
    assert find_babi_file(tmp_path, "qa1", "train") == tenk
    en = _write(tmp_path, "qa1", "train", data, folder="en")
    assert find_babi_file(tmp_path, "qa1", "train") == en
    # qa1 must not pick up qa10..qa19.
    _write(tmp_path, "qa10", "test", data)
    with pytest.raises(FileNotFoundError):
        find_babi_file(tmp_path, "qa1", "test")


def test_find_missing_names_dir_task_split(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        find_babi_file(tmp_path, "qa7", "test")
    message = str(err.value)
    assert str(tmp_path) in message and "qa7" in message and "test" in message


def test_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown bAbI task"):
        parse_babi(SMALL, task="qa21", split="train")


# --------------------------------------------------------------------------- property

_WORD = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
_SENTENCE = st.lists(_WORD, min_size=1, max_size=4).map(lambda w: " ".join(w).capitalize() + ".")


@st.composite
def _stories(draw: st.DrawFn) -> list[list[tuple[str, str | None, tuple[int, ...]]]]:
    """Stories as lists of (text, answer or None, supporting ids)."""
    stories = []
    for _ in range(draw(st.integers(1, 4))):
        lines: list[tuple[str, str | None, tuple[int, ...]]] = []
        for _ in range(draw(st.integers(1, 8))):
            lines.append((draw(_SENTENCE), None, ()))
            if draw(st.booleans()):
                earlier = list(range(1, len(lines) + 1))
                support = tuple(draw(st.lists(st.sampled_from(earlier), min_size=1, max_size=3)))
                lines.append((draw(_SENTENCE)[:-1] + "?", draw(_WORD), support))
        if lines[-1][1] is None:
            lines.append(("Where?", "x", (1,)))
        stories.append(lines)
    return stories


@settings(max_examples=60, deadline=None)
@given(_stories(), st.booleans())
def test_parse_roundtrip_property(
    stories: list[list[tuple[str, str | None, tuple[int, ...]]]], space: bool
) -> None:
    rows = []
    expected = []
    for index, lines in enumerate(stories):
        for number, (text, answer, support) in enumerate(lines, start=1):
            if answer is None:
                rows.append(f"{number} {text}")
                continue
            rows.append(
                f"{number} {text}{' ' if space else ''}\t{answer}\t{' '.join(map(str, support))}"
            )
            sentences = {n: t for n, (t, a, _) in enumerate(lines[: number - 1], 1) if a is None}
            expected.append((index, number, len(rows), text, answer, support, sentences))
    parsed = parse_babi("\n".join(rows) + "\n", task="qa1", split="train")
    assert len(parsed) == len(expected)
    for q, (story, number, row, text, answer, support, sentences) in zip(
        parsed, expected, strict=True
    ):
        assert (q.story, q.line, q.row, q.question, q.answers) == (
            story,
            number,
            row,
            text,
            (answer,),
        )
        assert q.context_ids == tuple(sentences)
        assert q.context == tuple(sentences.values())
        assert q.supporting == support
        found = [sid for sid in support if sid in sentences]
        assert [q.context_ids[i] for i in q.relevant] == found
        assert q.missing_support == tuple(sid for sid in support if sid not in sentences)
