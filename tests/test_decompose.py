"""Tests of the decomposition (raw bAbI -> one row per problem) and its coverage report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tracekd.datasets import SCHEMA, Report, Sampling, decompose
from tracekd.datasets.babi import BABI_TASKS, decompose_babi

TASKS = ["qa1", "qa2", "qa8"]
PAPER_TASKS = ["qa1", "qa2", "qa4", "qa7", "qa8", "qa12", "qa14", "qa15", "qa16", "qa17", "qa18"]
ALL = Sampling(per_story=None)

EXPECTED_DTYPES = {
    **SCHEMA,
    "task": pl.String,
    "story": pl.Int64,
    "line": pl.Int64,
    "flagged": pl.Boolean,
}


def _run(raw: Path, sampling: Sampling, tasks: list[str] = TASKS) -> tuple[pl.DataFrame, Report]:
    return decompose_babi(raw, tasks=tasks, sampling=sampling)


def _check_report(frame: pl.DataFrame, report: Report) -> None:
    data = report.to_dict()
    counts = data["per_category"]
    rows = sum(c["rows"] for c in counts.values())
    kept = sum(c["kept"] for c in counts.values())
    assert kept == frame.height
    assert rows == kept + sum(data["dropped"].values())
    for category, c in counts.items():
        assert c["covered"] + c["flagged"] == c["rows"]
        assert c["kept"] == frame.filter(pl.col("category") == category).height
        assert 0 <= c["kept"] <= c["rows"]
    assert all(n > 0 for n in data["dropped"].values())


def test_schema_and_dtypes(synth_babi: Path) -> None:
    frame, _ = _run(synth_babi, Sampling())
    assert dict(frame.schema) == EXPECTED_DTYPES
    assert list(frame.columns[:7]) == list(SCHEMA)
    assert frame.height > 0
    assert set(frame["split"]) == {"train", "test"}
    assert set(frame["category"]) == {BABI_TASKS[t] for t in TASKS}
    assert set(frame["task"]) == set(TASKS)
    assert frame.null_count().sum_horizontal().item() == 0


def test_rows_are_well_formed(synth_babi: Path) -> None:
    frame, _ = _run(synth_babi, ALL)
    for row in frame.iter_rows(named=True):
        assert row["context"] and all(isinstance(s, str) and s for s in row["context"])
        assert row["relevant"] and all(0 <= i < len(row["context"]) for i in row["relevant"])
        assert row["answers"] and all(a for a in row["answers"])
        assert row["question"].endswith("?")
        assert row["category"] == BABI_TASKS[row["task"]]
        assert row["flagged"] is False
        assert row["id"] == f"{row['task']}-{row['split']}-{row['story']:04d}-{row['line']:03d}"


def test_ids_unique_and_stable(synth_babi: Path) -> None:
    frame, _ = _run(synth_babi, ALL)
    assert frame["id"].n_unique() == frame.height
    again, _ = _run(synth_babi, ALL)
    assert frame["id"].to_list() == again["id"].to_list()
    # an id does not depend on which other tasks are loaded
    alone, _ = _run(synth_babi, ALL, tasks=["qa2"])
    assert alone.equals(frame.filter(pl.col("task") == "qa2"))


def test_per_story_one_keeps_one_question_per_story(synth_babi: Path) -> None:
    frame, report = _run(synth_babi, Sampling(per_story=1))
    per_story = frame.group_by("split", "task", "story").len()
    assert (per_story["len"] == 1).all()
    everything, _ = _run(synth_babi, ALL)
    stories = everything.select("split", "task", "story").unique().height
    assert frame.height == stories == 3 * (5 + 3)
    assert report.dropped["not_sampled"] == everything.height - frame.height
    _check_report(frame, report)


def test_per_story_two_keeps_at_most_two(synth_babi: Path) -> None:
    frame, report = _run(synth_babi, Sampling(per_story=2))
    assert frame.group_by("split", "task", "story").len()["len"].max() <= 2
    _check_report(frame, report)


def test_per_story_none_keeps_all(synth_babi: Path) -> None:
    frame, report = _run(synth_babi, ALL)
    assert report.to_dict()["dropped"] == {}
    assert frame.height == sum(c["rows"] for c in report.to_dict()["per_category"].values())
    _check_report(frame, report)


@pytest.mark.parametrize(("which", "agg"), [("first", "min"), ("last", "max")])
def test_question_first_last(synth_babi: Path, which: str, agg: str) -> None:
    frame, _ = _run(synth_babi, Sampling(per_story=1, question=which))
    everything, _ = _run(synth_babi, ALL)
    expected = everything.group_by("split", "task", "story").agg(
        getattr(pl.col("line"), agg)().alias("line")
    )
    got = frame.select("split", "task", "story", "line")
    assert got.sort("split", "task", "story").equals(expected.sort("split", "task", "story"))


def test_question_random_is_seeded(synth_babi: Path) -> None:
    a, report_a = _run(synth_babi, Sampling(per_story=1, question="random", seed=5))
    b, report_b = _run(synth_babi, Sampling(per_story=1, question="random", seed=5))
    assert a.equals(b)
    assert report_a.to_dict() == report_b.to_dict()
    picks = {
        tuple(_run(synth_babi, Sampling(per_story=1, seed=s))[0]["id"].to_list()) for s in range(4)
    }
    assert len(picks) > 1


def test_unknown_question_rule(synth_babi: Path) -> None:
    with pytest.raises(ValueError, match="sampling.question"):
        _run(synth_babi, Sampling(per_story=1, question="middle"))


def test_max_caps_each_split(synth_babi: Path) -> None:
    frame, report = _run(synth_babi, Sampling(per_story=1, max={"train": 7, "test": 4}, seed=3))
    counts = dict(frame.group_by("split").len().iter_rows())
    assert counts == {"train": 7, "test": 4}
    assert report.dropped["over_cap"] == (15 - 7) + (9 - 4)
    _check_report(frame, report)
    # a cap above the size, or null, keeps everything
    big, big_report = _run(synth_babi, Sampling(per_story=1, max={"train": 10_000, "test": None}))
    assert big.height == 24 and "over_cap" not in big_report.to_dict()["dropped"]


def test_capped_rows_are_a_subset_in_order(synth_babi: Path) -> None:
    uncapped, _ = _run(synth_babi, Sampling(per_story=1, seed=3))
    capped, _ = _run(synth_babi, Sampling(per_story=1, max={"test": 4}, seed=3))
    kept = capped["id"].to_list()
    assert kept == [i for i in uncapped["id"].to_list() if i in set(kept)]


def test_same_seed_same_frame_and_report(synth_babi: Path) -> None:
    sampling = Sampling(per_story=1, max={"train": 9, "test": 5}, seed=11)
    a, ra = _run(synth_babi, sampling)
    b, rb = _run(synth_babi, sampling)
    assert a.equals(b)
    assert ra.to_dict() == rb.to_dict()


def test_report_shape(synth_babi: Path) -> None:
    frame, report = _run(synth_babi, Sampling(per_story=1, max={"test": 2}))
    data = report.to_dict()
    assert set(data) == {"dataset", "per_category", "dropped"}
    assert data["dataset"] == "bAbI"
    assert list(data["per_category"]) == sorted(data["per_category"])
    for counts in data["per_category"].values():
        assert set(counts) == {"rows", "kept", "covered", "flagged"}
        assert all(isinstance(v, int) for v in counts.values())
    _check_report(frame, report)


def test_unknown_task(synth_babi: Path) -> None:
    with pytest.raises(ValueError, match="qa99"):
        decompose_babi(synth_babi, tasks=["qa99"], sampling=ALL)


def test_missing_task_file(synth_babi: Path) -> None:
    with pytest.raises(FileNotFoundError, match="qa4"):
        decompose_babi(synth_babi, tasks=["qa4"], sampling=ALL)


def test_decompose_dispatch(synth_babi: Path) -> None:
    options = {"tasks": TASKS, "sample": {"per_story": 1, "question": "first", "seed": 0}}
    frame, report = decompose("babi", synth_babi, options)
    direct, direct_report = _run(synth_babi, Sampling(per_story=1, question="first"))
    assert frame.equals(direct) and report.to_dict() == direct_report.to_dict()
    with pytest.raises(ValueError, match="unknown loader"):
        decompose("squad", synth_babi, options)


def test_sampling_from_config_ignores_unknown_keys() -> None:
    s = Sampling.from_config({"per_story": None, "question": "last", "max": {"test": 3}, "x": 1})
    assert s == Sampling(per_story=None, question="last", max={"test": 3})


# ---------------------------------------------------------------- flagged rows

FLAGGED_TRAIN = (
    "1 Mary went to the kitchen.\n"
    "2 Where is Mary? \tkitchen\t1\n"
    "3 John went to the garden.\n"
    "4 Where is John? \tgarden\t2\n"  # 2 is a question line: not a story sentence
    "1 Sandra moved to the hall.\n"
    "2 Where is Sandra? \thall\t1\n"
)
CLEAN_TEST = "1 Daniel went to the office.\n2 Where is Daniel? \toffice\t1\n"


@pytest.fixture
def flagged_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tasks_1-20_v1-2" / "en"
    folder.mkdir(parents=True)
    (folder / "qa1_single-supporting-fact_train.txt").write_text(FLAGGED_TRAIN, encoding="utf-8")
    (folder / "qa1_single-supporting-fact_test.txt").write_text(CLEAN_TEST, encoding="utf-8")
    return tmp_path


def test_flagged_drop(flagged_dir: Path) -> None:
    frame, report = _run(flagged_dir, Sampling(per_story=None, flagged="drop"), tasks=["qa1"])
    assert report.dropped["missing_support"] == 1
    assert "qa1-train-0000-004" not in frame["id"].to_list()
    assert frame.height == 3
    counts = report.to_dict()["per_category"]["single-supporting-fact"]
    assert counts == {"rows": 4, "kept": 3, "covered": 3, "flagged": 1}
    _check_report(frame, report)


def test_flagged_keep(flagged_dir: Path) -> None:
    frame, report = _run(flagged_dir, Sampling(per_story=None, flagged="keep"), tasks=["qa1"])
    assert "missing_support" not in report.to_dict()["dropped"]
    assert frame.height == 4
    row = frame.filter(pl.col("id") == "qa1-train-0000-004").row(0, named=True)
    assert row["flagged"] is True
    assert row["relevant"] == []  # never silently repaired
    assert frame.filter(pl.col("id") != "qa1-train-0000-004")["flagged"].not_().all()
    counts = report.to_dict()["per_category"]["single-supporting-fact"]
    assert counts == {"rows": 4, "kept": 4, "covered": 3, "flagged": 1}


def test_flagged_drop_happens_before_sampling(flagged_dir: Path) -> None:
    """With one question per story, the flagged one can never be the story's pick."""
    for seed in range(5):
        frame, _ = _run(flagged_dir, Sampling(per_story=1, seed=seed), tasks=["qa1"])
        assert "qa1-train-0000-004" not in frame["id"].to_list()
        assert frame.height == 3


def test_relevant_points_at_supporting_sentences(flagged_dir: Path) -> None:
    frame, _ = _run(flagged_dir, ALL, tasks=["qa1"])
    row = frame.filter(pl.col("id") == "qa1-train-0000-002").row(0, named=True)
    assert row["context"] == ["Mary went to the kitchen."]
    assert row["relevant"] == [0]
    assert row["answers"] == ["kitchen"]
    assert row["question"] == "Where is Mary?"


# ---------------------------------------------------------------- real data


def test_real_babi_paper_sampling(real_babi: Path) -> None:
    sampling = Sampling(per_story=1, question="random", max={"train": None, "test": 376}, seed=42)
    frame, report = decompose_babi(real_babi, tasks=PAPER_TASKS, sampling=sampling)
    counts = Counter(frame["split"].to_list())
    assert counts == {"train": 3773, "test": 376}
    assert frame["id"].n_unique() == frame.height
    assert frame["category"].n_unique() == 11
    data = report.to_dict()
    assert all(c["flagged"] == 0 for c in data["per_category"].values())
    assert sum(c["rows"] for c in data["per_category"].values()) == 11 * 2000
    _check_report(frame, report)
    for row in frame.head(200).iter_rows(named=True):
        assert all(0 <= i < len(row["context"]) for i in row["relevant"])


def test_report_markdown_and_flag_reasons() -> None:
    report = Report("toy")
    report.per_category["a"].update(rows=4, kept=3, covered=3, flagged=1)
    report.dropped["missing_support"] += 1
    report.flag_reasons[("a", "missing_support")] += 1
    data = report.to_dict()
    assert data["flag_reasons"] == {"a": {"missing_support": 1}}
    text = report.to_markdown()
    assert "| a | 4 | 3 | 3 | 75.0% | 1 |" in text
    assert "Dropped: missing_support 1" in text and "Flagged in a: missing_support 1" in text
    assert "flag_reasons" not in Report("empty").to_dict()
