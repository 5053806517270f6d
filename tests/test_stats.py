"""Tests for tracekd.evaluate.stats: phi with bootstrap CI and Fisher's test, McNemar, the stats table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from tracekd.evaluate.stats import (
    CONFUSION_KEYS,
    MCNEMAR_CHI2,
    MCNEMAR_EXACT,
    STATS_SCHEMA,
    association,
    mcnemar_between,
    run_stats,
    stats_table,
)
from tracekd.io import write_parquet


def frame(
    trace: list[bool | None], answer: list[bool | None], ids: list[str] | None = None
) -> pl.DataFrame:
    """A minimal scores frame: id, trace_correct, answer_correct."""
    return pl.DataFrame(
        {
            "id": ids if ids is not None else [f"q{i:04d}" for i in range(len(trace))],
            "trace_correct": trace,
            "answer_correct": answer,
        },
        schema={"id": pl.String, "trace_correct": pl.Boolean, "answer_correct": pl.Boolean},
    )


def table_frame(a: int, b: int, c: int, d: int) -> pl.DataFrame:
    """Scores with the 2x2 ``[[a, b], [c, d]]``: rows trace right/wrong, columns answer."""
    trace = [True] * (a + b) + [False] * (c + d)
    answer = [True] * a + [False] * b + [True] * c + [False] * d
    return frame(trace, answer)


def answers(values: list[bool], ids: list[str] | None = None) -> pl.DataFrame:
    """Scores of one setting where only answer correctness matters (trace all wrong)."""
    return frame([False] * len(values), values, ids)


# --- association --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_association_constant_columns_are_undefined(value: bool) -> None:
    result = association(frame([value] * 50, [value] * 50), seed=0)
    assert result["phi"] == 0.0 and result["phi_defined"] is False
    assert (result["phi_ci_low"], result["phi_ci_high"]) == (0.0, 0.0)
    assert result["boot_undefined"] == result["n_boot"] == 2000
    assert result["fisher_p"] == 1.0 and result["fisher_odds_ratio"] is None
    assert result["n"] == 50 and sum(result["counts"].values()) == 50


def test_association_one_column_constant() -> None:
    # every trace wrong (bAbI incorrect-trace runs): phi is undefined however answers go
    result = association(frame([False] * 40, [True] * 25 + [False] * 15), seed=1)
    assert result["phi"] == 0.0 and not result["phi_defined"]
    assert result["counts"]["trace_wrong_answer_correct"] == 25


@pytest.mark.parametrize(("flip", "expected"), [(False, 1.0), (True, -1.0)])
def test_association_perfect(flip: bool, expected: float) -> None:
    answer = [True] * 30 + [False] * 30
    trace = [not x for x in answer] if flip else answer
    result = association(frame(trace, answer), seed=3)
    assert result["phi"] == expected and result["phi_defined"]
    assert result["phi_ci_low"] == result["phi_ci_high"] == expected
    assert result["fisher_p"] < 1e-15
    # the sample odds ratio is infinite (perfect) or 0: stored as None and 0.0
    assert result["fisher_odds_ratio"] == (0.0 if flip else None)


def test_association_independence() -> None:
    result = association(table_frame(25, 25, 25, 25), seed=4)
    assert result["phi"] == 0.0 and result["phi_defined"]
    assert result["phi_ci_low"] < 0.0 < result["phi_ci_high"]
    assert result["fisher_p"] == pytest.approx(1.0)
    assert result["fisher_odds_ratio"] == pytest.approx(1.0)


def test_association_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    trace = rng.random(300) < 0.4
    answer = np.where(rng.random(300) < 0.7, trace, rng.random(300) < 0.5)
    result = association(frame(trace.tolist(), answer.tolist()), seed=5)
    assert result["phi"] == pytest.approx(scipy_stats.pearsonr(trace, answer).statistic)
    counts = [result["counts"][key] for key in CONFUSION_KEYS]
    odds, p = scipy_stats.fisher_exact(np.reshape(counts, (2, 2)))
    assert (result["fisher_odds_ratio"], result["fisher_p"]) == pytest.approx((odds, p))
    assert result["phi_ci_low"] <= result["phi"] <= result["phi_ci_high"]


def test_association_bootstrap_agrees_with_row_resampling() -> None:
    # drawing multinomial cell counts is the row bootstrap; compare with scipy's, on rows
    rng = np.random.default_rng(6)
    trace = rng.random(400) < 0.5
    answer = np.where(rng.random(400) < 0.4, trace, rng.random(400) < 0.6)
    ours = association(frame(trace.tolist(), answer.tolist()), n_boot=5000, seed=6)

    def phi(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        x, y = x.astype(float), y.astype(float)
        x = x - x.mean(axis=axis, keepdims=True)
        y = y - y.mean(axis=axis, keepdims=True)
        return (x * y).sum(axis) / np.sqrt((x * x).sum(axis) * (y * y).sum(axis))

    reference = scipy_stats.bootstrap(
        (trace, answer),
        phi,
        paired=True,
        vectorized=True,
        n_resamples=5000,
        method="percentile",
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert ours["phi_ci_low"] == pytest.approx(reference.low, abs=0.02)
    assert ours["phi_ci_high"] == pytest.approx(reference.high, abs=0.02)


def test_association_is_deterministic_for_a_seed() -> None:
    scores = table_frame(40, 10, 25, 25)
    first = association(scores, seed=11)
    assert association(scores, seed=11) == first
    other = association(scores, seed=12)
    assert (other["phi_ci_low"], other["phi_ci_high"]) != (
        first["phi_ci_low"],
        first["phi_ci_high"],
    )
    assert other["phi"] == first["phi"]
    json.dumps(first, allow_nan=False)  # plain, finite values only


def test_association_counts_undefined_resamples() -> None:
    # one correct trace in 30 rows: about (29/30)^30 = 36% of resamples have none
    result = association(frame([True] + [False] * 29, [True] * 15 + [False] * 15), seed=0)
    assert result["phi_defined"] and 400 < result["boot_undefined"] < 1100


def test_association_nulls_count_as_wrong() -> None:
    with_nulls = association(frame([True, None, False, True], [None, True, False, True]), seed=0)
    filled = association(frame([True, False, False, True], [False, True, False, True]), seed=0)
    assert with_nulls == filled


def test_association_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 1000"):
        association(table_frame(1, 1, 1, 1), n_boot=999, seed=0)
    with pytest.raises(ValueError, match="at least one scored row"):
        association(frame([], []), seed=0)
    with pytest.raises(ValueError, match="'trace_correct'"):
        association(pl.DataFrame({"answer_correct": [True]}), seed=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200),
    st.integers(0, 2**32),
)
def test_association_properties(pairs: list[tuple[bool, bool]], seed: int) -> None:
    trace, answer = (list(x) for x in zip(*pairs, strict=True))
    result = association(frame(trace, answer), n_boot=1000, seed=seed)
    swapped = association(frame(answer, trace), n_boot=1000, seed=seed)
    assert -1.0 <= result["phi"] <= 1.0
    assert -1.0 <= result["phi_ci_low"] <= result["phi_ci_high"] <= 1.0
    assert swapped["phi"] == result["phi"]
    assert swapped["phi_defined"] == result["phi_defined"]
    if result["phi_defined"]:
        assert result["phi"] == pytest.approx(scipy_stats.pearsonr(trace, answer).statistic)
    assert 0.0 <= result["fisher_p"] <= 1.0 + 1e-12


# --- McNemar ------------------------------------------------------------------------------


def test_mcnemar_identical_settings() -> None:
    scores = answers([True, False] * 20)
    result = mcnemar_between(scores, scores)
    assert (result["b01"], result["b10"], result["discordant"]) == (0, 0, 0)
    assert result["p"] == 1.0 and result["method"] == MCNEMAR_EXACT
    assert result["a_accuracy"] == result["b_accuracy"] == 50.0


def test_mcnemar_symmetric_discordance() -> None:
    a = answers([True] * 6 + [False] * 6 + [True] * 8)
    b = answers([False] * 6 + [True] * 6 + [True] * 8)
    forward, backward = mcnemar_between(a, b), mcnemar_between(b, a)
    assert (forward["b01"], forward["b10"]) == (6, 6) and forward["p"] == 1.0
    assert backward["p"] == forward["p"] and backward["method"] == forward["method"]


def test_mcnemar_exact_value_and_direction() -> None:
    a = answers([True] * 10 + [False] * 5)
    b = answers([False] * 10 + [False] * 5)
    result = mcnemar_between(a, b)
    assert (result["b01"], result["b10"]) == (0, 10)
    assert result["method"] == MCNEMAR_EXACT
    assert result["p"] == pytest.approx(2 * 0.5**10)
    assert mcnemar_between(b, a)["p"] == result["p"]


def test_mcnemar_chi_square_branch() -> None:
    a = answers([False] * 30 + [True] * 10 + [True] * 20)
    b = answers([True] * 30 + [False] * 10 + [True] * 20)
    result = mcnemar_between(a, b)
    assert (result["b01"], result["b10"]) == (30, 10) and result["method"] == MCNEMAR_CHI2
    assert result["statistic"] == pytest.approx((20 - 1) ** 2 / 40)
    assert result["p"] == pytest.approx(scipy_stats.chi2.sf((20 - 1) ** 2 / 40, 1))


@pytest.mark.parametrize(("discordant", "method"), [(24, MCNEMAR_EXACT), (25, MCNEMAR_CHI2)])
def test_mcnemar_threshold(discordant: int, method: str) -> None:
    a = answers([True] * discordant + [True] * 5)
    b = answers([False] * discordant + [True] * 5)
    assert mcnemar_between(a, b)["method"] == method


def test_mcnemar_pairs_on_id_not_row_order() -> None:
    a = answers([True, True, False, False], ids=["a", "b", "c", "d"])
    b = answers([False, True, True, False], ids=["a", "b", "c", "d"])
    shuffled = b[[2, 0, 3, 1]]
    assert mcnemar_between(a, shuffled) == mcnemar_between(a, b)
    assert (mcnemar_between(a, b)["b01"], mcnemar_between(a, b)["b10"]) == (1, 1)


def test_mcnemar_other_column() -> None:
    a = frame([True, True, False], [True, True, True])
    b = frame([False, False, False], [True, True, True])
    result = mcnemar_between(a, b, column="trace_correct")
    assert result["column"] == "trace_correct" and result["b10"] == 2


def test_mcnemar_rejects_mismatched_ids() -> None:
    a = answers([True, False, True], ids=["x1", "x2", "x3"])
    b = answers([True, False, True], ids=["x1", "x2", "x9"])
    with pytest.raises(ValueError, match=r"1 ids only in a \(e.g. \['x3'\]\).*only in b"):
        mcnemar_between(a, b)
    with pytest.raises(ValueError, match="repeat ids"):
        mcnemar_between(answers([True, False], ids=["x1", "x1"]), a)
    with pytest.raises(ValueError, match="no column 'nope'"):
        mcnemar_between(a, a, column="nope")


# --- run_stats and stats_table ------------------------------------------------------------


def study_runs() -> dict[tuple[str, str, str], pl.DataFrame]:
    """One dataset and model, the four settings, given in a scrambled order."""
    rng = np.random.default_rng(0)
    runs = {}
    for setting, p_answer in (
        ("incorrect", 0.7),
        ("prompt", 0.1),
        ("correct", 0.5),
        ("vanilla", 0.6),
    ):
        answer = (rng.random(120) < p_answer).tolist()
        trace = (
            (rng.random(120) < 0.5).tolist()
            if setting in ("correct", "incorrect")
            else [False] * 120
        )
        runs[("bAbI", "llama", setting)] = frame(trace, answer)
    return runs


def test_run_stats_pairs_and_blanks() -> None:
    rows = {
        row["setting"]: row
        for row in run_stats(study_runs(), trace_settings=("correct", "incorrect"), seed=0)
    }
    assert rows["vanilla"]["vs_vanilla_p"] is None and rows["vanilla"]["phi"] is None
    assert (
        rows["prompt"]["vs_vanilla_setting"] == "vanilla" and rows["prompt"]["vs_correct_p"] is None
    )
    assert rows["prompt"]["phi"] is None and rows["prompt"]["trace_accuracy"] is None
    assert rows["correct"]["vs_vanilla_p"] is not None and rows["correct"]["vs_correct_p"] is None
    incorrect = rows["incorrect"]
    assert (
        incorrect["vs_correct_setting"] == "correct"
        and incorrect["vs_correct_method"] == MCNEMAR_CHI2
    )
    assert incorrect["phi_defined"] and incorrect["n_boot"] == 2000 and incorrect["n"] == 120
    assert sum(incorrect[key] for key in CONFUSION_KEYS) == 120


def test_stats_table_schema_order_and_bytes(tmp_path: Path) -> None:
    rows = run_stats(study_runs(), trace_settings=("correct", "incorrect"), seed=0)
    table = stats_table(rows)
    assert table.schema == pl.Schema(STATS_SCHEMA)
    assert table["setting"].to_list() == ["prompt", "vanilla", "correct", "incorrect"]
    assert stats_table(list(reversed(rows))).equals(table)
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_parquet(stats_table(rows), first)
    write_parquet(
        stats_table(run_stats(study_runs(), trace_settings=("correct", "incorrect"), seed=0)),
        second,
    )
    assert first.read_bytes() == second.read_bytes()
    assert not any(math.isnan(v) for v in table["phi"].drop_nulls().to_list())
