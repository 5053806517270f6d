"""Statistics across seeds: each setting replicated over a list of training (and corruption)
seeds, on the same test items.

- A metric's spread over seeds: the mean of its per-seed values with a 95% t-interval
  (``mean ± t(0.975, k-1) · sd / sqrt(k)``, sd the sample standard deviation over the k
  seeds); one seed gives the mean and no interval, never a made-up one (:func:`t_interval`).
- The trace-answer association pooled over seeds: the Cochran–Mantel–Haenszel common odds
  ratio of the per-seed 2x2 tables with its 95% interval and the CMH test of a common odds
  ratio of 1 (statsmodels' ``StratifiedTable``), beside each seed's phi (:func:`cmh_association`).
- Setting against setting (each scheme vs ``correct``, vs ``vanilla``): items paired within
  a seed (seed s of one setting against seed s of the other). The per-seed accuracy
  differences give a mean difference with its t-interval; the discordant pairs, summed over
  seeds, give McNemar's test stratified by seed (the Mantel–Haenszel test for matched pairs,
  which reduces to McNemar's on the summed discordant counts) (:func:`paired_across_seeds`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from tracekd.evaluate.stats import (
    CI_LEVEL,
    CONFUSION_KEYS,
    MCNEMAR_CHI2,
    MCNEMAR_EXACT,
    MCNEMAR_EXACT_BELOW,
    confusion_counts,
    mcnemar_between,
)

#: how the tables state the interval of a metric over seeds
INTERVAL_METHOD = "t-interval over seeds"


def pool_seeds(frames: Sequence[pl.DataFrame], seeds: Sequence[int]) -> pl.DataFrame:
    """One setting's per-seed score tables as one, a ``seed`` column first, in ``seeds`` order."""
    if len(frames) != len(seeds):
        raise ValueError(f"{len(frames)} score tables for {len(seeds)} seeds")
    if not frames:
        raise ValueError("no score tables to pool")
    columns = frames[0].columns
    for seed, frame in zip(seeds, frames, strict=True):
        if frame.columns != columns:
            raise ValueError(
                f"scores of seed {seed} have columns {frame.columns}, seed {seeds[0]} {columns}"
            )
        if "seed" in frame.columns:
            raise ValueError(f"scores of seed {seed} already have a 'seed' column")
    return pl.concat(
        [f.select(pl.lit(s, dtype=pl.Int64).alias("seed"), pl.all()) for s, f in zip(seeds, frames, strict=True)]
    )


#: the range of a share in percent, and of a difference of two shares in percentage points
PERCENT = (0.0, 100.0)
PERCENT_DIFF = (-100.0, 100.0)


def t_interval(
    values: Sequence[float | None], *, bounds: tuple[float, float] | None = None
) -> tuple[float | None, float | None, float | None]:
    """``(mean, low, high)`` of per-seed values: a 95% Student t-interval over the seeds.

    Missing values (None, NaN) are left out; with no value all three are None, and with one
    value the interval is ``(None, None)``: one seed says nothing about the seed-to-seed spread.
    ``bounds`` clips the interval to the metric's range (:data:`PERCENT`, :data:`PERCENT_DIFF`):
    with two seeds t(0.975, 1) is 12.7, and an accuracy's interval would reach below 0.
    """
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not kept:
        return None, None, None
    mean = float(np.mean(kept))
    if len(kept) < 2:
        return mean, None, None
    if max(kept) - min(kept) <= 1e-9 * max(1.0, abs(mean)):  # equal values: no spread at all
        return mean, mean, mean  # (exactly: std's rounding would give a sliver of width)
    from scipy.stats import t as student_t  # here: scipy.stats takes ~0.8 s to import

    half = float(student_t.ppf(0.5 + CI_LEVEL / 2, len(kept) - 1)) * float(np.std(kept, ddof=1))
    half /= math.sqrt(len(kept))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, float(bounds[0])), min(high, float(bounds[1]))
    return mean, low, high


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _mh_excess(tables: Sequence[np.ndarray]) -> float:
    """The Mantel-Haenszel numerator: the summed count of each 2x2 stratum's top-left cell less
    its expectation under independence (strata of one item or none carry no information)."""
    excess = 0.0
    for table in tables:
        n = float(table.sum())
        if n > 1:
            excess += float(table[0, 0]) - float(table[0].sum()) * float(table[:, 0].sum()) / n
    return excess


def cmh_association(per_seed: Sequence[pl.DataFrame]) -> dict[str, Any]:
    """The trace-answer association over seeds: CMH common odds ratio and test.

    ``per_seed`` are one setting's score tables, one per seed, each a 2x2 stratum of
    ``trace_correct`` x ``answer_correct`` (null counts as False). Returns ``{"strata",
    "cmh_odds_ratio", "cmh_or_ci_low", "cmh_or_ci_high", "cmh_statistic", "cmh_p"}``; a value
    that is not finite (a stratum set with no discordant information: every trace wrong, say)
    is None. statsmodels adds no continuity correction to the odds ratio; the test uses one
    where the summed count is at least 1/2 from its expectation.
    """
    tables = []
    for scores in per_seed:
        counts = confusion_counts(scores)["counts"]
        tables.append(np.array([counts[k] for k in CONFUSION_KEYS], dtype=np.float64).reshape(2, 2))
    out: dict[str, Any] = dict.fromkeys(
        ("cmh_odds_ratio", "cmh_or_ci_low", "cmh_or_ci_high", "cmh_statistic", "cmh_p")
    )
    out["strata"] = len(tables)
    if not tables:
        return out
    from statsmodels.stats.contingency_tables import StratifiedTable  # here: a heavy import

    table = StratifiedTable(np.stack(tables, axis=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = _finite(table.oddsratio_pooled)
        if ratio is not None and ratio > 0:
            low, high = table.oddsratio_pooled_confint(alpha=1 - CI_LEVEL)
            out.update(cmh_or_ci_low=_finite(low), cmh_or_ci_high=_finite(high))
        # the continuity correction only where the count is at least 1/2 from its expectation
        # (as R's mantelhaen.test): statsmodels always subtracts it, so a table at the null
        # would get a statistic above 0 and a p below 1
        test = table.test_null_odds(correction=abs(_mh_excess(tables)) >= 0.5)
    statistic = _finite(test.statistic)
    # no variance under the null (every trace wrong, say): statsmodels gives an infinite
    # statistic and p = 0, which would read as a strong association where none is measurable
    p = _finite(test.pvalue) if statistic is not None else None
    out.update(cmh_odds_ratio=ratio, cmh_statistic=statistic, cmh_p=p)
    return out


def paired_across_seeds(
    a: Mapping[int, pl.DataFrame], b: Mapping[int, pl.DataFrame], *, column: str = "answer_correct"
) -> dict[str, Any]:
    """``column``'s accuracy of setting ``a`` against ``b``, items paired within each seed.

    ``a``/``b`` map a seed to that replicate's scores (the seeds both have are used; the ids
    of a seed must match, as :func:`tracekd.evaluate.stats.mcnemar_between` checks). Returns
    ``{"seeds", "diff", "diff_ci_low", "diff_ci_high", "b01", "b10", "method", "p"}``: the mean
    of the per-seed differences a − b in percentage points with its t-interval (none for one
    seed), and McNemar's test on the discordant pairs summed over seeds (b01: b right, a wrong).
    """
    seeds = sorted(set(a) & set(b))
    diffs, b01, b10 = [], 0, 0
    for seed in seeds:
        test = mcnemar_between(a[seed], b[seed], column=column)
        diffs.append(test["a_accuracy"] - test["b_accuracy"] if test["n"] else None)
        b01, b10 = b01 + test["b01"], b10 + test["b10"]
    mean, low, high = t_interval(diffs, bounds=PERCENT_DIFF)
    out: dict[str, Any] = {
        "seeds": len(seeds), "diff": mean, "diff_ci_low": low, "diff_ci_high": high,
        "b01": b01, "b10": b10, "method": None, "p": None,
    }  # fmt: skip
    if seeds:
        from statsmodels.stats.contingency_tables import mcnemar

        exact = b01 + b10 < MCNEMAR_EXACT_BELOW
        result = mcnemar(np.array([[0, b10], [b01, 0]]), exact=exact, correction=True)
        out.update(method=MCNEMAR_EXACT if exact else MCNEMAR_CHI2, p=float(result.pvalue))
    return out


def beyond_seed_spread(comparison: Mapping[str, Any]) -> bool | None:
    """Whether a difference's t-interval over seeds excludes 0.

    None with under two seeds, and where the interval has no width: every seed gave the same
    difference, so there is no spread to measure the difference against.
    """
    low, high = comparison.get("diff_ci_low"), comparison.get("diff_ci_high")
    if low is None or high is None or low == high:
        return None
    return low > 0 or high < 0
