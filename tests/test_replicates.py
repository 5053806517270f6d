"""Unit tests of a study replicated over seeds, in process and without a workflow run.

``tracekd.evaluate.seeds``: pooling per-seed score tables (``pool_seeds``), the t-interval over
seeds (``t_interval``), the CMH association over seeds (``cmh_association``), settings compared
with items paired within seeds (``paired_across_seeds``) and ``beyond_seed_spread``; each is
checked against scipy/statsmodels called directly or against the formulas by hand.

``tracekd.report.corruptions``: the per-seed and pooled rows (``replicate_rows``: means and
t-intervals over seeds, summed 2x2 counts, the CMH columns, which setting is compared with
which reference and what a missing reference leaves), the tidy frame (``replicate_frame``),
``format_interval``, the LaTeX table (``corruptions_latex``, ``corruptions_table``),
``read_replicates`` and ``replicated_study_tables``. Score tables are built here from lists of
booleans with the columns the scorer writes.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2
from scipy.stats import t as student_t
from statsmodels.stats.contingency_tables import StratifiedTable, Table2x2, mcnemar

from tracekd.evaluate.seeds import (
    INTERVAL_METHOD,
    PERCENT,
    PERCENT_DIFF,
    beyond_seed_spread,
    cmh_association,
    paired_across_seeds,
    pool_seeds,
    t_interval,
)
from tracekd.evaluate.stats import (
    CONFUSION_KEYS,
    MCNEMAR_CHI2,
    MCNEMAR_EXACT,
    STATS_SCHEMA,
    association,
)
from tracekd.report.corruptions import (
    INTERVAL_METRICS,
    POOLED_SCHEMA,
    SUMMARY_METRICS,
    corruptions_latex,
    corruptions_table,
    format_interval,
    read_replicates,
    replicate_frame,
    replicate_rows,
    replicated_study_tables,
)
from tracekd.report.tables import summarize

#: what each setting of the study trains on (as the config's ``settings`` give it)
TARGETS = {"prompt": "none", "vanilla": "answer", "correct": "trace", "incorrect": "trace"}
#: the replicates of the study built by :func:`study`
SEEDS = (1, 2, 3)
#: test items per seed in :func:`study`
N_ITEMS = 10
#: the smallest bootstrap ``stats_row`` accepts: the rows stay cheap
N_BOOT = 1000
#: the CMH cells of a pooled row
CMH_KEYS = ("cmh_odds_ratio", "cmh_or_ci_low", "cmh_or_ci_high", "cmh_statistic", "cmh_p")
#: the paired comparison cells of a pooled row, per reference
VS_FIELDS = ("setting", "diff", "diff_ci_low", "diff_ci_high", "b01", "b10", "method", "p",
             "beyond_seed_spread")  # fmt: skip

slow_examples = settings(max_examples=25, deadline=None)


# --------------------------------------------------------------------------- helpers


def scores(
    answer: Sequence[bool | None],
    trace: Sequence[bool | None] | None = None,
    *,
    ids: Sequence[str] | None = None,
    category: Sequence[bool | None] | None = None,
    words: int = 10,
    tokens: int = 14,
) -> pl.DataFrame:
    """A score table with the scorer's columns from booleans.

    ``answer`` gives ``answer_correct`` (and F1, precision, recall as 1.0/0.0); ``trace``
    (default all False) gives ``trace_correct``, ``ir_correct`` and ``ir_lenient``;
    ``category`` (default ``trace``) gives ``category_correct`` and ``category_lenient``.
    Every row has a trace of ``words`` words and ``tokens`` tokens.
    """
    n = len(answer)
    trace = [False] * n if trace is None else list(trace)
    category = trace if category is None else list(category)
    as_float = [None if a is None else float(a) for a in answer]
    return pl.DataFrame(
        {
            "id": list(ids) if ids is not None else [f"q{i:03d}" for i in range(n)],
            "answer_correct": list(answer),
            "answer_f1": as_float,
            "answer_precision": as_float,
            "answer_recall": as_float,
            "has_trace": [True] * n,
            "category_correct": category,
            "ir_correct": trace,
            "ir_lenient": trace,
            "category_lenient": category,
            "trace_correct": trace,
            "trace_words": [words] * n,
            "trace_tokens": [tokens] * n,
        },
        schema={
            "id": pl.String, "answer_correct": pl.Boolean, "answer_f1": pl.Float64,
            "answer_precision": pl.Float64, "answer_recall": pl.Float64, "has_trace": pl.Boolean,
            "category_correct": pl.Boolean, "ir_correct": pl.Boolean, "ir_lenient": pl.Boolean,
            "category_lenient": pl.Boolean, "trace_correct": pl.Boolean,
            "trace_words": pl.Int64, "trace_tokens": pl.Int64,
        },
    )  # fmt: skip


def table_scores(a: int, b: int, c: int, d: int) -> pl.DataFrame:
    """Scores whose 2x2 is ``[[a, b], [c, d]]``: rows trace right/wrong, columns answer."""
    trace = [True] * (a + b) + [False] * (c + d)
    answer = [True] * a + [False] * b + [True] * c + [False] * d
    return scores(answer, trace)


def study_booleans(
    settings_: Sequence[str] = tuple(TARGETS), seeds: Sequence[int] = SEEDS, n: int = N_ITEMS
) -> dict[tuple[str, int], tuple[list[bool], list[bool]]]:
    """(setting, seed) -> (answer, trace) booleans of a study, drawn from a fixed RNG.

    Settings answer right with different rates; only trace settings get correct traces.
    """
    rate = {"prompt": 0.2, "vanilla": 0.5, "correct": 0.7, "incorrect": 0.4}
    out = {}
    for setting in settings_:
        for seed in seeds:
            rng = random.Random(f"{setting}/{seed}")
            answer = [rng.random() < rate.get(setting, 0.5) for _ in range(n)]
            trace = [
                TARGETS.get(setting) == "trace" and rng.random() < 0.5 for _ in range(n)
            ]
            out[(setting, seed)] = (answer, trace)
    return out


def study(
    booleans: dict[tuple[str, int], tuple[list[bool], list[bool]]] | None = None,
    *,
    dataset: str = "babi",
    model: str = "m1",
) -> dict[tuple[str, str, str], dict[int, pl.DataFrame]]:
    """Replicates (``(dataset, model, setting) -> seed -> scores``) of ``study_booleans``."""
    booleans = study_booleans() if booleans is None else booleans
    runs: dict[tuple[str, str, str], dict[int, pl.DataFrame]] = {}
    for (setting, seed), (answer, trace) in booleans.items():
        runs.setdefault((dataset, model, setting), {})[seed] = scores(answer, trace)
    return runs


def percent(values: Sequence[bool]) -> float:
    """The share of True in ``values`` in percent (no rounding)."""
    return 100.0 * sum(values) / len(values)


def by_hand_interval(
    values: Sequence[float], bounds: tuple[float, float] = (-math.inf, math.inf)
) -> tuple[float, float, float]:
    """The 95% Student t-interval of ``values`` computed from its formula, cut to ``bounds``."""
    k = len(values)
    mean = sum(values) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    half = student_t.ppf(0.975, k - 1) * sd / math.sqrt(k)
    return mean, max(mean - half, bounds[0]), min(mean + half, bounds[1])


def pooled_by_setting(pooled: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Pooled rows keyed by their setting (one dataset and model)."""
    return {row["setting"]: row for row in pooled}


booleans_lists = st.integers(1, 12).flatmap(
    lambda n: st.lists(st.tuples(st.booleans(), st.booleans()), min_size=n, max_size=n)
)


# --------------------------------------------------------------------------- pool_seeds


def test_pool_seeds_puts_the_seed_first_in_the_order_given() -> None:
    frames = [scores([True, False]), scores([False]), scores([True, True, False])]
    pooled = pool_seeds(frames, [3, 1, 2])
    assert pooled.columns == ["seed", *frames[0].columns]
    assert pooled.schema["seed"] == pl.Int64
    assert pooled["seed"].to_list() == [3, 3, 1, 2, 2, 2]
    assert pooled.drop("seed").equals(pl.concat(frames))


@pytest.mark.parametrize(
    ("frames", "seeds", "message"),
    [
        ([scores([True])], [1, 2], "1 score tables for 2 seeds"),
        ([], [], "no score tables to pool"),
        ([scores([True]), scores([True]).drop("trace_tokens")], [1, 2], "scores of seed 2 have columns"),
        ([scores([True]).with_columns(seed=pl.lit(1))], [1], "already have a 'seed' column"),
    ],
)
def test_pool_seeds_refuses_mismatched_input(frames: list, seeds: list, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        pool_seeds(frames, seeds)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=5), st.randoms(use_true_random=False))
@settings(max_examples=40, deadline=None)
def test_pool_seeds_keeps_every_row_of_every_seed(heights: list[int], rng: random.Random) -> None:
    seeds = rng.sample(range(100), len(heights))
    frames = [scores([rng.random() < 0.5 for _ in range(h)]) for h in heights]
    pooled = pool_seeds(frames, seeds)
    assert pooled.height == sum(heights)
    assert pooled["seed"].to_list() == [s for s, h in zip(seeds, heights, strict=True) for _ in range(h)]
    for seed, frame in zip(seeds, frames, strict=True):
        assert pooled.filter(pl.col("seed") == seed).drop("seed").equals(frame)


# --------------------------------------------------------------------------- t_interval


@pytest.mark.parametrize(
    "values", [[52.0, 48.0], [75.0, 100.0, 50.0], [1.5, 2.25, -3.0, 10.0, 0.0], [0.1] * 3 + [0.2]]
)
def test_t_interval_is_students_by_hand(values: list[float]) -> None:
    mean, low, high = t_interval(values)
    expected = by_hand_interval(values)
    assert (mean, low, high) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_t_interval_of_three_known_values() -> None:
    # 75, 100, 50: mean 75, sd 25, half width t(0.975, 2) * 25 / sqrt(3) = 62.10...
    mean, low, high = t_interval([75.0, 100.0, 50.0])
    assert mean == 75.0
    assert high - mean == pytest.approx(4.302652729911275 * 25 / math.sqrt(3))
    assert mean - low == pytest.approx(high - mean)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], (None, None, None)),
        ([None], (None, None, None)),
        ([float("nan"), None, float("inf")], (None, None, None)),
        ([5.0], (5.0, None, None)),
        ([None, 3.0, float("nan")], (3.0, None, None)),
        ([np.float64(2.0)], (2.0, None, None)),
    ],
)
def test_t_interval_without_two_values_has_no_interval(values: list, expected: tuple) -> None:
    assert t_interval(values) == expected


def test_t_interval_leaves_out_missing_values() -> None:
    assert t_interval([1.0, None, 3.0, float("nan"), -float("inf"), 8.0]) == t_interval([1.0, 3.0, 8.0])


def test_t_interval_of_equal_values_has_no_width() -> None:
    assert t_interval([40.0, 40.0, 40.0]) == (40.0, 40.0, 40.0)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(finite, min_size=2, max_size=8), st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_t_interval_properties(values: list[float], rng: random.Random) -> None:
    mean, low, high = t_interval(values)
    tol = 1e-9 * (1 + max(abs(v) for v in values))
    assert min(values) - tol <= mean <= max(values) + tol
    assert low <= mean + tol and mean <= high + tol
    assert (mean - low) == pytest.approx(high - mean, abs=tol)
    shuffled = values[:]
    rng.shuffle(shuffled)
    assert t_interval(shuffled) == pytest.approx((mean, low, high), abs=tol)
    noisy = values[:]
    for missing in (None, float("nan")):
        noisy.insert(rng.randrange(len(noisy) + 1), missing)
    assert t_interval(noisy) == (mean, low, high)


# --------------------------------------------------------------------------- cmh_association


@pytest.mark.parametrize("cells", [(10, 3, 4, 8), (5, 5, 5, 5), (2, 7, 9, 1), (30, 1, 2, 4)])
def test_cmh_one_stratum_is_statsmodels_2x2(cells: tuple[int, int, int, int]) -> None:
    out = cmh_association([table_scores(*cells)])
    array = np.array(cells, dtype=float).reshape(2, 2)
    two_by_two = Table2x2(array, shift_zeros=False)
    assert out["strata"] == 1
    assert out["cmh_odds_ratio"] == pytest.approx(two_by_two.oddsratio)
    assert out["cmh_odds_ratio"] == pytest.approx(cells[0] * cells[3] / (cells[1] * cells[2]))
    low, high = two_by_two.oddsratio_confint(alpha=0.05)
    assert (out["cmh_or_ci_low"], out["cmh_or_ci_high"]) == pytest.approx((low, high))
    # the continuity correction where the count is 1/2 or more from its expectation, as R's
    # mantelhaen.test ((5, 5, 5, 5) is at the null: no correction, statistic 0, p 1)
    excess = cells[0] - (cells[0] + cells[1]) * (cells[0] + cells[2]) / sum(cells)
    test = StratifiedTable(array[:, :, None]).test_null_odds(correction=abs(excess) >= 0.5)
    assert out["cmh_statistic"] == pytest.approx(test.statistic)
    assert out["cmh_p"] == pytest.approx(test.pvalue)
    if cells == (5, 5, 5, 5):
        assert (out["cmh_statistic"], out["cmh_p"]) == (0.0, 1.0)


def test_cmh_applies_no_correction_within_half_a_count_of_the_null() -> None:
    # two strata whose excesses cancel (+1 and -1): at the null, so no correction, statistic 0
    # and p 1 (statsmodels' correction alone would give 0.5^2 / variance)
    strata = [(3, 1, 1, 3), (1, 3, 3, 1)]
    out = cmh_association([table_scores(*cells) for cells in strata])
    assert out["cmh_statistic"] == pytest.approx(0.0) and out["cmh_p"] == pytest.approx(1.0)
    strata = [(4, 1, 1, 3)]  # excess 4 - 5 * 5 / 9 = 1.22: the correction applies
    out = cmh_association([table_scores(*strata[0])])
    variance = 5 * 4 * 5 * 4 / (9**2 * 8)
    assert out["cmh_statistic"] == pytest.approx((abs(4 - 25 / 9) - 0.5) ** 2 / variance)


def test_cmh_several_strata_are_the_mantel_haenszel_formulas() -> None:
    strata = [(10, 3, 4, 8), (6, 6, 2, 9), (12, 1, 5, 5)]
    out = cmh_association([table_scores(*cells) for cells in strata])
    assert out["strata"] == 3
    ratio = sum(a * d / (a + b + c + d) for a, b, c, d in strata) / sum(
        b * c / (a + b + c + d) for a, b, c, d in strata
    )
    assert out["cmh_odds_ratio"] == pytest.approx(ratio)
    # the CMH test with continuity correction: (|sum(a - E[a])| - 1/2)^2 / sum(Var a)
    expected_a = sum((a + b) * (a + c) / (a + b + c + d) for a, b, c, d in strata)
    variance = sum(
        (a + b) * (c + d) * (a + c) * (b + d) / ((a + b + c + d) ** 2 * (a + b + c + d - 1))
        for a, b, c, d in strata
    )
    statistic = (abs(sum(s[0] for s in strata) - expected_a) - 0.5) ** 2 / variance
    assert out["cmh_statistic"] == pytest.approx(statistic)
    assert out["cmh_p"] == pytest.approx(chi2.sf(statistic, 1))
    table = StratifiedTable(np.stack([np.array(s, dtype=float).reshape(2, 2) for s in strata], axis=2))
    low, high = table.oddsratio_pooled_confint(alpha=0.05)
    assert (out["cmh_or_ci_low"], out["cmh_or_ci_high"]) == pytest.approx((low, high))
    assert out["cmh_or_ci_low"] < out["cmh_odds_ratio"] < out["cmh_or_ci_high"]


def test_cmh_counts_null_scores_as_false() -> None:
    with_nulls = scores([True, None, False, True, None, True], [True, True, None, False, None, True])
    filled = scores([True, False, False, True, False, True], [True, True, False, False, False, True])
    assert cmh_association([with_nulls, table_scores(3, 2, 2, 4)]) == cmh_association(
        [filled, table_scores(3, 2, 2, 4)]
    )


def test_cmh_of_no_strata_is_empty() -> None:
    assert cmh_association([]) == {"strata": 0, **dict.fromkeys(CMH_KEYS)}


def test_cmh_odds_ratio_with_no_discordant_cell_is_none() -> None:
    # b * c = 0 in every stratum: the odds ratio is infinite, so None, and no interval either
    out = cmh_association([table_scores(5, 0, 3, 4), table_scores(4, 2, 0, 6)])
    assert out["cmh_odds_ratio"] is None
    assert out["cmh_or_ci_low"] is None and out["cmh_or_ci_high"] is None
    assert out["cmh_statistic"] is not None and 0 <= out["cmh_p"] <= 1


def test_cmh_zero_odds_ratio_has_no_interval() -> None:
    out = cmh_association([table_scores(0, 5, 3, 4), table_scores(0, 2, 4, 6)])
    assert out["cmh_odds_ratio"] == 0.0
    assert out["cmh_or_ci_low"] is None and out["cmh_or_ci_high"] is None


@pytest.mark.parametrize(
    "strata",
    [
        [(0, 0, 5, 5)],  # every trace wrong (the filler setting)
        [(0, 0, 5, 5), (0, 0, 2, 8)],
        [(4, 0, 6, 0)],  # every answer right
        [(3, 3, 0, 0)],  # every trace right
    ],
)
def test_cmh_without_discordant_information_gives_no_ratio_or_statistic(strata: list) -> None:
    out = cmh_association([table_scores(*cells) for cells in strata])
    assert out["strata"] == len(strata)
    assert out["cmh_odds_ratio"] is None and out["cmh_statistic"] is None
    assert out["cmh_or_ci_low"] is None and out["cmh_or_ci_high"] is None


@pytest.mark.parametrize(
    "strata", [[(0, 0, 5, 5)], [(0, 0, 5, 5), (0, 0, 2, 8)], [(4, 0, 6, 0)], [(3, 3, 0, 0)]]
)
def test_cmh_without_discordant_information_gives_no_p(strata: list) -> None:
    """No variance under the null: statsmodels' statistic is infinite and its p 0, which would
    read as a strong association where none can be measured."""
    out = cmh_association([table_scores(*cells) for cells in strata])
    assert out["cmh_p"] is None


@given(st.lists(booleans_lists, min_size=1, max_size=4), st.randoms(use_true_random=False))
@slow_examples
def test_cmh_ignores_the_order_of_seeds_and_rows(strata: list, rng: random.Random) -> None:
    frames = [scores([a for a, _ in pairs], [t for _, t in pairs]) for pairs in strata]
    out = cmh_association(frames)
    shuffled = [f.sample(fraction=1.0, shuffle=True, seed=rng.randrange(1000)) for f in frames]
    rng.shuffle(shuffled)
    again = cmh_association(shuffled)
    assert out["strata"] == again["strata"] == len(strata)
    for key in CMH_KEYS:
        assert (out[key] is None) == (again[key] is None)
        if out[key] is not None:
            assert again[key] == pytest.approx(out[key], rel=1e-9, abs=1e-12)
            assert math.isfinite(out[key])


# --------------------------------------------------------------------------- paired_across_seeds


PAIRED_A = {1: [True, True, False, True, False], 2: [True, True, True, True, False],
            3: [False, True, False, True, True]}  # fmt: skip
PAIRED_B = {1: [True, False, False, False, False], 2: [True, True, False, True, True],
            3: [False, False, False, True, False]}  # fmt: skip


def test_paired_across_seeds_by_hand() -> None:
    a = {seed: scores(values) for seed, values in PAIRED_A.items()}
    b = {seed: scores(values) for seed, values in PAIRED_B.items()}
    out = paired_across_seeds(a, b)
    # per seed a - b in points: 60-20, 80-80, 60-20
    diffs = [percent(PAIRED_A[s]) - percent(PAIRED_B[s]) for s in SEEDS]
    assert diffs == [40.0, 0.0, 40.0]
    mean, low, high = by_hand_interval(diffs, PERCENT_DIFF)
    assert out["seeds"] == 3
    assert out["diff"] == pytest.approx(mean)
    assert (out["diff_ci_low"], out["diff_ci_high"]) == pytest.approx((low, high))
    b01 = sum(not x and y for s in SEEDS for x, y in zip(PAIRED_A[s], PAIRED_B[s], strict=True))
    b10 = sum(x and not y for s in SEEDS for x, y in zip(PAIRED_A[s], PAIRED_B[s], strict=True))
    assert (out["b01"], out["b10"]) == (b01, b10) == (1, 5)
    assert out["method"] == MCNEMAR_EXACT
    assert out["p"] == pytest.approx(mcnemar(np.array([[0, 5], [1, 0]]), exact=True).pvalue)
    assert out["p"] == pytest.approx(2 * (1 + 6) / 2**6)  # two-sided binomial: P(X <= 1), n = 6


def test_paired_across_seeds_pairs_on_id_within_a_seed() -> None:
    a = {1: scores([True, False, True], ids=["x", "y", "z"])}
    b = {1: scores([True, False, True], ids=["z", "x", "y"])}  # b: x right, y right, z wrong
    out = paired_across_seeds(a, b)
    assert (out["b01"], out["b10"], out["diff"]) == (1, 1, 0.0)


def test_paired_across_seeds_uses_only_the_seeds_both_have() -> None:
    a = {seed: scores(values) for seed, values in PAIRED_A.items()}
    b = {seed: scores(values) for seed, values in PAIRED_B.items() if seed != 1}
    b[7] = scores([False] * 5)
    out = paired_across_seeds(a, b)
    assert out["seeds"] == 2
    assert out["diff"] == pytest.approx(20.0)  # (0 + 40) / 2
    assert (out["b01"], out["b10"]) == (1, 3)


def test_paired_across_seeds_one_seed_has_no_interval() -> None:
    out = paired_across_seeds({2: scores(PAIRED_A[2])}, {2: scores(PAIRED_B[2])})
    assert out["seeds"] == 1 and out["diff"] == 0.0
    assert out["diff_ci_low"] is None and out["diff_ci_high"] is None
    assert beyond_seed_spread(out) is None
    assert out["p"] == 1.0 and out["method"] == MCNEMAR_EXACT


def test_paired_across_seeds_with_no_shared_seed_is_empty() -> None:
    out = paired_across_seeds({1: scores([True])}, {2: scores([False])})
    assert out == {"seeds": 0, "diff": None, "diff_ci_low": None, "diff_ci_high": None,
                   "b01": 0, "b10": 0, "method": None, "p": None}  # fmt: skip
    assert paired_across_seeds({}, {})["seeds"] == 0


def test_paired_across_seeds_sums_discordance_into_the_chi_square_test() -> None:
    # 3 seeds x (9 a-only, 1 b-only): 30 discordant pairs, over the exact threshold
    a = {s: scores([True] * 9 + [False] + [True] * 5) for s in SEEDS}
    b = {s: scores([False] * 9 + [True] + [True] * 5) for s in SEEDS}
    out = paired_across_seeds(a, b)
    assert (out["b01"], out["b10"]) == (3, 27) and out["method"] == MCNEMAR_CHI2
    assert out["p"] == pytest.approx(chi2.sf((abs(27 - 3) - 1) ** 2 / 30, 1))
    assert out["diff"] == pytest.approx(100 * 8 / 15, abs=0.01)  # 93.33 - 40.0 per seed
    # every seed gave the same difference: the interval has no width, so no spread to compare
    assert out["diff_ci_low"] == pytest.approx(out["diff"]) == pytest.approx(out["diff_ci_high"])
    assert beyond_seed_spread(out) is None


def test_paired_across_seeds_reads_the_column_it_is_given() -> None:
    a = {1: scores([True] * 4, [True, True, False, False])}
    b = {1: scores([True] * 4, [False, False, False, True])}
    out = paired_across_seeds(a, b, column="trace_correct")
    assert (out["b01"], out["b10"], out["diff"]) == (1, 2, 25.0)
    assert paired_across_seeds(a, b)["diff"] == 0.0


def test_paired_across_seeds_refuses_different_items_in_a_seed() -> None:
    a = {1: scores([True, False]), 2: scores([True, False], ids=["q000", "other"])}
    b = {1: scores([True, True]), 2: scores([True, True])}
    with pytest.raises(ValueError, match="same test items"):
        paired_across_seeds(a, b)


@given(
    st.integers(1, 10).flatmap(
        lambda n: st.dictionaries(
            st.integers(0, 6),
            st.tuples(st.lists(st.booleans(), min_size=n, max_size=n),
                      st.lists(st.booleans(), min_size=n, max_size=n)),
            min_size=1, max_size=4,
        )
    )
)  # fmt: skip
@slow_examples
def test_paired_across_seeds_is_the_mean_of_per_seed_differences(per_seed: dict) -> None:
    a = {seed: scores(x) for seed, (x, _) in per_seed.items()}
    b = {seed: scores(y) for seed, (_, y) in per_seed.items()}
    out = paired_across_seeds(a, b)
    diffs = [percent(x) - percent(y) for x, y in per_seed.values()]
    assert out["seeds"] == len(per_seed)
    # each seed's accuracies are rounded to 2 decimals before they are subtracted
    assert out["diff"] == pytest.approx(sum(diffs) / len(diffs), abs=0.011)
    assert out["b01"] == sum(not p and q for x, y in per_seed.values() for p, q in zip(x, y, strict=True))
    assert out["b10"] == sum(p and not q for x, y in per_seed.values() for p, q in zip(x, y, strict=True))
    assert 0.0 <= out["p"] <= 1.0
    flipped = paired_across_seeds(b, a)
    assert flipped["diff"] == pytest.approx(-out["diff"], abs=1e-9)
    assert (flipped["b01"], flipped["b10"]) == (out["b10"], out["b01"])
    assert flipped["p"] == pytest.approx(out["p"]) and flipped["method"] == out["method"]
    if len(per_seed) == 1:
        assert out["diff_ci_low"] is None and out["diff_ci_high"] is None
    else:
        assert out["diff_ci_low"] <= out["diff"] + 1e-9 <= out["diff_ci_high"] + 2e-9


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.5, 3.0, True), (-4.0, -0.1, True), (-1.0, 2.0, False), (0.0, 2.0, False),
     (-2.0, 0.0, False), (None, 2.0, None), (1.0, None, None), (None, None, None)],
)  # fmt: skip
def test_beyond_seed_spread_is_an_interval_that_excludes_zero(low: Any, high: Any, expected: Any) -> None:
    assert beyond_seed_spread({"diff": 1.0, "diff_ci_low": low, "diff_ci_high": high}) is expected


def test_beyond_seed_spread_of_a_comparison_without_an_interval() -> None:
    assert beyond_seed_spread({}) is None


@pytest.mark.parametrize("diff", [-7.5, 0.0, 12.5])
def test_beyond_seed_spread_of_a_zero_width_interval_is_undecided(diff: float) -> None:
    # two seeds with the same difference: a point, not evidence the difference beats the spread
    assert beyond_seed_spread({"diff": diff, "diff_ci_low": diff, "diff_ci_high": diff}) is None


def test_t_interval_is_cut_to_the_metrics_range() -> None:
    # two seeds, t(0.975, 1) = 12.7: 10 and 90 give 50 +- 508, cut to [0, 100]
    assert t_interval([10.0, 90.0], bounds=PERCENT) == (50.0, 0.0, 100.0)
    mean, low, high = t_interval([10.0, 90.0])
    assert mean == 50.0 and low < -400 and high > 500  # no bounds: the formula's interval
    assert t_interval([-90.0, 80.0], bounds=PERCENT_DIFF)[1:] == (-100.0, 100.0)
    assert t_interval([42.0], bounds=PERCENT) == (42.0, None, None)
    assert t_interval([], bounds=PERCENT) == (None, None, None)


@settings(max_examples=60)
@given(st.lists(st.floats(0.0, 100.0), min_size=2, max_size=5))
def test_a_cut_interval_stays_in_range_and_holds_the_mean(values: list[float]) -> None:
    mean, low, high = t_interval(values, bounds=PERCENT)
    assert 0.0 <= low <= mean + 1e-9 and mean - 1e-9 <= high <= 100.0
    _, raw_low, raw_high = t_interval(values)
    assert low == max(raw_low, 0.0) and high == min(raw_high, 100.0)


def test_replicate_frame_of_an_empty_study_is_an_empty_frame() -> None:
    frame = replicate_frame([], [])
    assert frame.height == 0
    assert set(POOLED_SCHEMA) <= set(frame.columns) and frame.schema["n_seeds"] == pl.Int64
    assert frame.columns[:3] == ["dataset", "model", "setting"]


# --------------------------------------------------------------------------- replicate_rows


@pytest.fixture(scope="module")
def study_rows() -> tuple[dict, list[dict[str, Any]], list[dict[str, Any]]]:
    """The study's booleans, per-seed rows and pooled rows (computed once for the module)."""
    booleans = study_booleans()
    per_seed, pooled = replicate_rows(study(booleans), targets=TARGETS, n_boot=N_BOOT)
    return booleans, per_seed, pooled


def test_per_seed_rows_are_each_replicates_summary_and_statistics(study_rows) -> None:
    booleans, per_seed, _ = study_rows
    runs = study(booleans)
    assert [(r["setting"], r["seed"]) for r in per_seed] == [(s, seed) for s in TARGETS for seed in SEEDS]
    for row in per_seed:
        setting, seed = row["setting"], row["seed"]
        frame = runs[("babi", "m1", setting)][seed]
        summary = summarize(frame, dataset="babi", model="m1", setting=setting,
                            has_trace_target=TARGETS[setting] == "trace")  # fmt: skip
        assert {k: row[k] for k in summary} == summary
        answer, trace = booleans[(setting, seed)]
        assert row["answer_accuracy"] == pytest.approx(percent(answer))
        assert row["n"] == N_ITEMS
        assert row["trace_correct_answer_correct"] == sum(a and t for a, t in zip(answer, trace, strict=True))
        assert sum(row[k] for k in CONFUSION_KEYS) == N_ITEMS
        assert set(STATS_SCHEMA) <= set(row)


def test_per_seed_bootstrap_is_seeded_by_the_replicate(study_rows) -> None:
    booleans, per_seed, _ = study_rows
    runs = study(booleans)
    for row in per_seed:
        if TARGETS[row["setting"]] != "trace":
            assert row["phi"] is None and row["n_boot"] is None
            continue
        expected = association(runs[("babi", "m1", row["setting"])][row["seed"]],
                               n_boot=N_BOOT, seed=row["seed"])  # fmt: skip
        assert (row["phi"], row["phi_ci_low"], row["phi_ci_high"]) == (
            expected["phi"], expected["phi_ci_low"], expected["phi_ci_high"]
        )
        assert row["n_boot"] == N_BOOT and row["fisher_p"] == expected["fisher_p"]


def test_per_seed_rows_compare_with_the_same_seed_of_the_reference(study_rows) -> None:
    _, per_seed, _ = study_rows
    rows = {(r["setting"], r["seed"]): r for r in per_seed}
    for seed in SEEDS:
        assert rows[("incorrect", seed)]["vs_correct_setting"] == "correct"
        assert rows[("incorrect", seed)]["vs_vanilla_setting"] == "vanilla"
        assert rows[("correct", seed)]["vs_vanilla_setting"] == "vanilla"
        assert rows[("correct", seed)]["vs_correct_p"] is None
        for setting in ("prompt", "vanilla"):
            assert rows[(setting, seed)]["vs_vanilla_p"] is None
            assert rows[(setting, seed)]["vs_correct_p"] is None
    booleans = study_booleans()
    for seed in SEEDS:
        mine, _ = booleans[("incorrect", seed)]
        theirs, _ = booleans[("correct", seed)]
        assert rows[("incorrect", seed)]["vs_correct_b01"] == sum(
            not x and y for x, y in zip(mine, theirs, strict=True)
        )


def test_pooled_rows_are_means_with_t_intervals_over_seeds(study_rows) -> None:
    booleans, per_seed, pooled = study_rows
    assert [r["setting"] for r in pooled] == list(TARGETS)
    for row in pooled:
        setting = row["setting"]
        mine = [r for r in per_seed if r["setting"] == setting]
        assert row["seed"] is None and row["n"] == N_ITEMS and row["n_seeds"] == len(SEEDS)
        assert (row["dataset"], row["model"]) == ("babi", "m1")
        accuracies = [percent(booleans[(setting, seed)][0]) for seed in SEEDS]
        mean, low, high = by_hand_interval(accuracies, PERCENT)
        assert row["answer_accuracy"] == pytest.approx(mean, abs=0.005)
        assert row["answer_accuracy_ci_low"] == pytest.approx(low, abs=0.005)
        assert row["answer_accuracy_ci_high"] == pytest.approx(high, abs=0.005)
        for key in SUMMARY_METRICS:
            values = [r[key] for r in mine]
            if values[0] is None:  # a trace metric of a setting that trains no trace
                assert row[key] is None
            else:
                assert row[key] == pytest.approx(round(sum(values) / len(values), 2))
        for metric in INTERVAL_METRICS:
            mean, low, high = t_interval([r[metric] for r in mine], bounds=PERCENT)
            for value, got in ((mean, row[metric]), (low, row[f"{metric}_ci_low"]),
                               (high, row[f"{metric}_ci_high"])):  # fmt: skip
                assert got == (None if value is None else round(value, 2))


def test_pooled_trace_metrics_only_for_trace_settings(study_rows) -> None:
    _, _, pooled = study_rows
    rows = pooled_by_setting(pooled)
    for setting in ("prompt", "vanilla"):
        for key in ("trace_accuracy", "trace_accuracy_ci_low", "ir_accuracy", "avg_trace_tokens"):
            assert rows[setting][key] is None
        assert all(rows[setting].get(k) is None for k in CMH_KEYS)
    for setting in ("correct", "incorrect"):
        assert rows[setting]["trace_accuracy"] is not None
        assert rows[setting]["avg_trace_tokens"] == 14.0 and rows[setting]["trace_rate"] == 100.0


def test_pooled_counts_are_summed_over_seeds(study_rows) -> None:
    booleans, per_seed, pooled = study_rows
    for row in pooled:
        setting = row["setting"]
        for key in CONFUSION_KEYS:
            assert row[key] == sum(r[key] for r in per_seed if r["setting"] == setting)
        assert row["trace_wrong_answer_correct"] == sum(
            a and not t for seed in SEEDS for a, t in zip(*booleans[(setting, seed)], strict=True)
        )
        # the per-seed statistics stay on the per-seed rows
        for key in ("phi", "phi_defined", "phi_ci_low", "fisher_p", "n_boot"):
            assert row[key] is None


def test_pooled_cmh_is_over_the_seeds_of_a_trace_setting(study_rows) -> None:
    booleans, _, pooled = study_rows
    runs = study(booleans)
    for setting in ("correct", "incorrect"):
        row = pooled_by_setting(pooled)[setting]
        by_seed = runs[("babi", "m1", setting)]
        expected = cmh_association([by_seed[s] for s in SEEDS])
        assert {k: row[k] for k in CMH_KEYS} == {k: expected[k] for k in CMH_KEYS}


@pytest.mark.parametrize(
    ("setting", "references"),
    [("prompt", []), ("vanilla", []), ("correct", ["vanilla"]), ("incorrect", ["vanilla", "correct"])],
)
def test_pooled_rows_compare_each_setting_with_its_references(
    study_rows, setting: str, references: list[str]
) -> None:
    booleans, _, pooled = study_rows
    runs = study(booleans)
    row = pooled_by_setting(pooled)[setting]
    for ref in ("vanilla", "correct"):
        if ref not in references:
            assert all(row.get(f"vs_{ref}_{field}") is None for field in VS_FIELDS)
            continue
        test = paired_across_seeds(runs[("babi", "m1", setting)], runs[("babi", "m1", ref)])
        assert row[f"vs_{ref}_setting"] == ref
        for field in ("diff", "diff_ci_low", "diff_ci_high"):
            assert row[f"vs_{ref}_{field}"] == round(test[field], 2)
        for field in ("b01", "b10", "method", "p"):
            assert row[f"vs_{ref}_{field}"] == test[field]
        assert row[f"vs_{ref}_beyond_seed_spread"] == beyond_seed_spread(test)
        diffs = [percent(booleans[(setting, s)][0]) - percent(booleans[(ref, s)][0]) for s in SEEDS]
        assert row[f"vs_{ref}_diff"] == pytest.approx(sum(diffs) / 3, abs=0.006)


def test_a_second_answer_setting_is_compared_with_vanilla_only() -> None:
    targets = {"vanilla": "answer", "vanilla-long": "answer", "correct": "trace", "prompt": "none"}
    runs = study({(s, seed): ([True, seed % 2 == 0, False, True], [False] * 4)
                  for s in targets for seed in (1, 2)})  # fmt: skip
    rows = pooled_by_setting(replicate_rows(runs, targets=targets, n_boot=N_BOOT)[1])
    assert rows["vanilla-long"]["vs_vanilla_setting"] == "vanilla"
    assert rows["vanilla-long"]["vs_correct_setting"] is None
    assert rows["vanilla-long"]["vs_vanilla_diff"] == 0.0 and rows["vanilla-long"]["vs_vanilla_p"] == 1.0


def test_a_setting_without_its_reference_leaves_the_comparison_empty() -> None:
    booleans = {key: value for key, value in study_booleans().items() if key[0] != "vanilla"}
    per_seed, pooled = replicate_rows(study(booleans), targets=TARGETS, n_boot=N_BOOT)
    rows = pooled_by_setting(pooled)
    assert "vanilla" not in rows
    for setting in ("correct", "incorrect"):
        assert all(rows[setting].get(f"vs_vanilla_{f}") is None for f in VS_FIELDS)
    assert rows["incorrect"]["vs_correct_setting"] == "correct"
    assert rows["incorrect"]["vs_correct_diff"] is not None
    assert all(r["vs_vanilla_p"] is None for r in per_seed)
    # a study whose targets have no correct setting compares nothing with it
    targets = {"vanilla": "answer", "incorrect": "trace"}
    only = {k: v for k, v in study_booleans().items() if k[0] in targets}
    rows = pooled_by_setting(replicate_rows(study(only), targets=targets, n_boot=N_BOOT)[1])
    assert rows["incorrect"]["vs_vanilla_setting"] == "vanilla"
    assert all(rows["incorrect"].get(f"vs_correct_{f}") is None for f in VS_FIELDS)


def test_a_reference_with_some_of_the_seeds_is_compared_on_those() -> None:
    booleans = {k: v for k, v in study_booleans().items() if k != ("correct", 2)}
    per_seed, pooled = replicate_rows(study(booleans), targets=TARGETS, n_boot=N_BOOT)
    rows = {(r["setting"], r["seed"]): r for r in per_seed}
    assert rows[("incorrect", 2)]["vs_correct_p"] is None
    assert rows[("incorrect", 2)]["vs_correct_setting"] is None
    assert rows[("incorrect", 1)]["vs_correct_p"] is not None
    incorrect = pooled_by_setting(pooled)["incorrect"]
    assert incorrect["vs_correct_b01"] == rows[("incorrect", 1)]["vs_correct_b01"] + rows[
        ("incorrect", 3)
    ]["vs_correct_b01"]
    diffs = [percent(booleans[("incorrect", s)][0]) - percent(booleans[("correct", s)][0]) for s in (1, 3)]
    assert incorrect["vs_correct_diff"] == pytest.approx(sum(diffs) / 2, abs=0.006)
    assert pooled_by_setting(pooled)["correct"]["n_seeds"] == 2


def test_a_reference_sharing_no_seed_gives_no_difference() -> None:
    booleans = study_booleans(["vanilla"], seeds=(1, 2)) | study_booleans(["correct"], seeds=(3,))
    rows = pooled_by_setting(replicate_rows(study(booleans), targets=TARGETS, n_boot=N_BOOT)[1])
    correct = rows["correct"]
    assert correct["vs_vanilla_diff"] is None and correct["vs_vanilla_p"] is None
    assert correct["vs_vanilla_beyond_seed_spread"] is None
    assert (correct["vs_vanilla_b01"], correct["vs_vanilla_b10"]) == (0, 0)


def test_one_seed_gives_means_and_no_interval() -> None:
    booleans = study_booleans(seeds=(5,))
    per_seed, pooled = replicate_rows(study(booleans), targets=TARGETS, n_boot=N_BOOT)
    assert [r["seed"] for r in per_seed] == [5] * len(TARGETS)
    for row, single in zip(pooled, per_seed, strict=True):
        assert row["n_seeds"] == 1
        assert row["answer_accuracy"] == single["answer_accuracy"]
        for metric in INTERVAL_METRICS:
            assert row[f"{metric}_ci_low"] is None and row[f"{metric}_ci_high"] is None
        for key in CONFUSION_KEYS:
            assert row[key] == single[key]
    incorrect = pooled_by_setting(pooled)["incorrect"]
    assert incorrect["vs_correct_diff"] == round(
        percent(booleans[("incorrect", 5)][0]) - percent(booleans[("correct", 5)][0]), 2
    )
    assert incorrect["vs_correct_diff_ci_low"] is None
    assert incorrect["vs_correct_beyond_seed_spread"] is None


def test_replicate_rows_of_no_runs_is_empty() -> None:
    assert replicate_rows({}, targets=TARGETS, n_boot=N_BOOT) == ([], [])


def test_pooled_rows_keep_the_order_of_the_runs_and_seeds() -> None:
    booleans = study_booleans(seeds=(3, 1, 2))
    runs = dict(reversed(list(study(booleans).items())))
    per_seed, pooled = replicate_rows(runs, targets=TARGETS, n_boot=N_BOOT)
    assert [r["setting"] for r in pooled] == list(reversed(TARGETS))
    assert [r["seed"] for r in per_seed] == [1, 2, 3] * len(TARGETS)


@given(
    st.tuples(st.integers(1, 3), st.integers(1, 10)).flatmap(
        lambda shape: st.lists(
            st.lists(st.tuples(st.booleans(), st.booleans()), min_size=shape[1], max_size=shape[1]),
            min_size=shape[0], max_size=shape[0],
        )
    )
)  # fmt: skip
@slow_examples
def test_pooled_rows_sum_and_average_whatever_the_seeds(per_seed: list) -> None:
    booleans = {("correct", seed): ([a for a, _ in pairs], [t for _, t in pairs])
                for seed, pairs in enumerate(per_seed, start=1)}  # fmt: skip
    booleans |= {("vanilla", seed): (answer[::-1], [False] * len(answer))
                 for (_, seed), (answer, _) in booleans.items()}  # fmt: skip
    rows, pooled = replicate_rows(study(booleans), targets=TARGETS, n_boot=N_BOOT)
    correct = pooled_by_setting(pooled)["correct"]
    assert correct["n_seeds"] == len(per_seed) and correct["n"] == len(per_seed[0])
    for key in CONFUSION_KEYS:
        assert correct[key] == sum(r[key] for r in rows if r["setting"] == "correct")
    assert sum(correct[key] for key in CONFUSION_KEYS) == len(per_seed) * len(per_seed[0])
    accuracies = [percent([a for a, _ in pairs]) for pairs in per_seed]
    assert correct["answer_accuracy"] == pytest.approx(sum(accuracies) / len(accuracies), abs=0.011)
    assert (correct["answer_accuracy_ci_low"] is None) == (len(per_seed) == 1)
    assert correct["vs_vanilla_setting"] == "vanilla"
    assert correct["vs_vanilla_b01"] + correct["vs_vanilla_b10"] == sum(
        x != y for answer, _ in (booleans[("correct", s)] for s in range(1, len(per_seed) + 1))
        for x, y in zip(answer, answer[::-1], strict=True)
    )


# --------------------------------------------------------------------------- replicate_frame


def test_replicate_frame_puts_each_runs_seeds_then_its_pooled_row(study_rows) -> None:
    _, per_seed, pooled = study_rows
    frame = replicate_frame(per_seed, pooled)
    assert frame.height == len(per_seed) + len(pooled)
    assert frame["setting"].to_list() == [s for s in TARGETS for _ in range(len(SEEDS) + 1)]
    assert frame["seed"].to_list() == [*SEEDS, None] * len(TARGETS)
    assert frame["n_seeds"].to_list() == [None, None, None, 3] * len(TARGETS)
    pooled_frame = frame.filter(pl.col("seed").is_null())
    assert pooled_frame["answer_accuracy"].to_list() == [r["answer_accuracy"] for r in pooled]
    assert pooled_frame["vs_correct_diff"].to_list() == [r.get("vs_correct_diff") for r in pooled]


def test_replicate_frame_columns_and_types(study_rows) -> None:
    _, per_seed, pooled = study_rows
    frame = replicate_frame(per_seed, pooled)
    assert frame.columns == list(dict.fromkeys([*per_seed[0], *POOLED_SCHEMA]))
    assert frame.columns[:4] == ["dataset", "model", "setting", "n"]
    assert frame.columns[-len(POOLED_SCHEMA):] == list(POOLED_SCHEMA)
    for column, dtype in {**STATS_SCHEMA, **POOLED_SCHEMA}.items():
        assert frame.schema[column] == dtype, column
    for metric in SUMMARY_METRICS:
        assert frame.schema[metric] == pl.Float64, metric


def test_replicate_frame_keeps_a_run_with_one_seed_among_several() -> None:
    booleans = {k: v for k, v in study_booleans().items() if k[0] != "prompt" or k[1] == 1}
    per_seed, pooled = replicate_rows(study(booleans), targets=TARGETS, n_boot=N_BOOT)
    frame = replicate_frame(per_seed, pooled)
    prompt = frame.filter(pl.col("setting") == "prompt")
    assert prompt["seed"].to_list() == [1, None] and prompt["n_seeds"].to_list() == [None, 1]
    assert prompt["answer_accuracy_ci_low"].to_list() == [None, None]


# --------------------------------------------------------------------------- format_interval


@pytest.mark.parametrize(
    ("args", "text"),
    [((52.34, 48.06, 56.55), "52.3 [48.1, 56.5]"), ((50.0, None, None), "50.0"),
     ((50.0, 40.0, None), "50.0"), ((None, 1.0, 2.0), "--"), ((None, None, None), "--"),
     ((0.0, 0.0, 0.0), "0.0 [0.0, 0.0]"), ((-3.3, -6.54, -0.06), "-3.3 [-6.5, -0.1]")],
)  # fmt: skip
def test_format_interval(args: tuple, text: str) -> None:
    assert format_interval(*args) == text


@given(finite, finite, finite)
def test_format_interval_has_one_decimal_everywhere(mean: float, low: float, high: float) -> None:
    text = format_interval(mean, low, high)
    number = r"-?\d+\.\d"
    assert re.fullmatch(rf"{number} \[{number}, {number}\]", text)
    assert text.startswith(f"{mean:.1f} ")


# --------------------------------------------------------------------------- corruptions_latex


def latex_rows() -> list[dict[str, Any]]:
    """Pooled rows typed by hand: two datasets, two models, one with a difference beyond spread."""
    return [
        {"dataset": "babi_x", "model": "m1", "setting": "correct", "n_seeds": 3,
         "answer_accuracy": 52.34, "answer_accuracy_ci_low": 48.06, "answer_accuracy_ci_high": 56.55,
         "trace_accuracy": 40.0, "trace_accuracy_ci_low": None, "trace_accuracy_ci_high": None,
         "cmh_odds_ratio": 2.345, "cmh_p": 0.0004},
        {"dataset": "babi_x", "model": "m1", "setting": "incorrect", "n_seeds": 3,
         "answer_accuracy": 49.0, "answer_accuracy_ci_low": 45.0, "answer_accuracy_ci_high": 53.0,
         "trace_accuracy": 10.0, "trace_accuracy_ci_low": 5.0, "trace_accuracy_ci_high": 15.0,
         "vs_correct_setting": "correct", "vs_correct_diff": -3.3, "vs_correct_diff_ci_low": -6.5,
         "vs_correct_diff_ci_high": -0.5, "vs_correct_beyond_seed_spread": True,
         "vs_correct_p": 0.0123, "cmh_odds_ratio": None, "cmh_p": 0.5},
        {"dataset": "babi_x", "model": "m2", "setting": "wrong-facts", "n_seeds": 1,
         "answer_accuracy": 30.0, "trace_accuracy": None,
         "vs_correct_setting": "correct", "vs_correct_diff": 1.3, "vs_correct_diff_ci_low": None,
         "vs_correct_diff_ci_high": None, "vs_correct_beyond_seed_spread": None,
         "vs_correct_p": None, "cmh_odds_ratio": 0.5, "cmh_p": None},
        {"dataset": "cotemp", "model": "m1", "setting": "vanilla", "n_seeds": 3,
         "answer_accuracy": None, "vs_vanilla_setting": None},
    ]  # fmt: skip


def test_corruptions_latex_rows_by_hand() -> None:
    text = corruptions_latex(latex_rows(), display_names={"babi_x": "bAbI_1k", "m2": "Model & Co"})
    body = text.split("\\toprule\n", 1)[1].split("\\bottomrule", 1)[0].splitlines()
    assert body == [
        r"Dataset & Model & Setting & Answer & Trace & $\Delta$ vs correct & $p$ & CMH OR & CMH $p$ \\",
        r"\midrule",
        r"bAbI\_1k & m1 & SFT - Correct Trace & 52.3 [48.1, 56.5] & 40.0 & -- & -- & 2.35 & $<$0.001 \\",
        r" &  & SFT - Incorrect Trace & 49.0 [45.0, 53.0] & 10.0 [5.0, 15.0] & "
        r"$-$3.3 [$-$6.5, $-$0.5]$^\dagger$ & 0.012 & -- & 0.500 \\",
        r"\cmidrule(lr){2-9}",
        r" & Model \& Co & wrong-facts & 30.0 & -- & 1.3 & -- & 0.50 & -- \\",
        r"\midrule",
        r"cotemp & m1 & SFT - Vanilla & -- & -- & -- & -- & -- & -- \\",
    ]
    assert text.startswith("\\begin{table}[t]\n") and text.endswith("\\end{tabular}\n\\end{table}\n")
    assert f"mean [95\\% {INTERVAL_METHOD}, 1/3 seeds]" in text
    assert "\\label{tab:corruptions}" in text


def test_corruptions_latex_of_one_seed_says_there_is_no_interval() -> None:
    rows = [dict(latex_rows()[2], dataset="babi")]
    text = corruptions_latex(rows)
    assert "one seed: no interval" in text and INTERVAL_METHOD not in text
    assert corruptions_latex([]).count("\\midrule") == 0
    assert "one seed: no interval" in corruptions_latex([])


def test_corruptions_latex_of_the_study(study_rows) -> None:
    _, _, pooled = study_rows
    text = corruptions_latex(pooled)
    lines = [line for line in text.splitlines() if line.endswith(r"\\") and " & " in line][1:]
    assert len(lines) == len(TARGETS)
    assert "3 seeds]" in text
    incorrect = pooled_by_setting(pooled)["incorrect"]
    cells = lines[3].removesuffix(r" \\").split(" & ")
    assert cells[2] == "SFT - Incorrect Trace"
    assert cells[3] == format_interval(incorrect["answer_accuracy"], incorrect["answer_accuracy_ci_low"],
                                       incorrect["answer_accuracy_ci_high"])  # fmt: skip
    assert cells[5].startswith(
        format_interval(incorrect["vs_correct_diff"], incorrect["vs_correct_diff_ci_low"],
                        incorrect["vs_correct_diff_ci_high"]).replace("-", "$-$")
    )  # fmt: skip
    for line in lines[:3]:  # prompt, vanilla, correct: not compared with correct
        assert line.split(" & ")[5:7] == ["--", "--"]


def test_corruptions_table_is_the_latex_of_the_pooled_rows(study_rows) -> None:
    booleans, _, pooled = study_rows
    names = {"babi": "bAbI"}
    assert corruptions_table(study(booleans), targets=TARGETS, n_boot=N_BOOT, display_names=names) == (
        corruptions_latex(pooled, display_names=names)
    )


def test_corruptions_latex_shows_no_cmh_p_when_every_trace_is_wrong() -> None:
    """The filler setting's traces are all wrong: the table shows no CMH ratio and no p."""
    booleans = study_booleans(["correct"], seeds=(1, 2))
    booleans |= {("filler", s): (answer, [False] * len(answer)) for (_, s), (answer, _) in booleans.items()}
    targets = {"correct": "trace", "filler": "trace"}
    text = corruptions_table(study(booleans), targets=targets, n_boot=N_BOOT)
    filler = next(line for line in text.splitlines() if " & filler & " in line)
    assert filler.removesuffix(r" \\").split(" & ")[-2:] == ["--", "--"]


# --------------------------------------------------------------------------- read_replicates


def test_read_replicates_keys_each_file_by_run_and_seed(tmp_path: Path) -> None:
    frames = [scores([True, False]), scores([False, False]), scores([True, True]), scores([True])]
    runs = [
        {"dataset": "babi", "model": "m1", "setting": "correct", "seed": 1},
        {"dataset": "babi", "model": "m1", "setting": "correct", "seed": 2},
        {"dataset": "babi", "model": "m1", "setting": "vanilla", "seed": 1},
        {"dataset": "babi", "model": "m2", "setting": "prompt"},
    ]
    paths = []
    for i, frame in enumerate(frames):
        path = tmp_path / f"scores{i}.parquet"
        frame.write_parquet(path)
        paths.append(str(path))
    out = read_replicates(runs, paths)
    assert list(out) == [("babi", "m1", "correct"), ("babi", "m1", "vanilla"), ("babi", "m2", "prompt")]
    assert list(out[("babi", "m1", "correct")]) == [1, 2]
    assert out[("babi", "m1", "correct")][2].equals(frames[1])
    assert out[("babi", "m1", "vanilla")][1].equals(frames[2])
    assert list(out[("babi", "m2", "prompt")]) == [None]
    assert out[("babi", "m2", "prompt")][None].equals(frames[3])
    assert read_replicates([], []) == {}


def test_read_replicates_refuses_mismatched_lengths(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    scores([True]).write_parquet(path)
    run = {"dataset": "babi", "model": "m1", "setting": "correct", "seed": 1}
    with pytest.raises(ValueError, match="2 runs for 1 score files"):
        read_replicates([run, dict(run, seed=2)], [str(path)])
    with pytest.raises(ValueError, match="1 runs for 2 score files"):
        read_replicates([run], [str(path), str(path)])


# --------------------------------------------------------------------------- replicated_study_tables


def test_replicated_study_tables(study_rows) -> None:
    booleans, per_seed, pooled = study_rows
    tables = replicated_study_tables(
        study(booleans), targets=TARGETS, table2_dataset="babi", table3_datasets=["babi"],
        n_boot=N_BOOT, display_names={"babi": "bAbI"},
    )  # fmt: skip
    assert tables.summary.equals(replicate_frame(per_seed, pooled))
    assert "means over 3 seeds (1, 2, 3)" in tables.table2
    assert "means over 3 seeds (1, 2, 3)" in tables.table3
    correct = pooled_by_setting(pooled)["correct"]
    row = next(line for line in tables.table3.splitlines() if "SFT - Correct Trace" in line)
    assert row.split(" & ")[2] == f"{correct['answer_accuracy']:.2f}"
    labels = [line.split(" & ")[2] for line in tables.stats.splitlines() if "(seed " in line]
    # each run's seeds in order, the runs in their order; the labels are not display names
    assert labels == [f"{setting} (seed {seed})" for setting in TARGETS for seed in SEEDS]
    assert f"({N_BOOT} resamples, seeded by the replicate)" in tables.stats
