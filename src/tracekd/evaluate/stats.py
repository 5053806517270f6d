"""Statistics on per-sample scores: does a correct trace go with a correct answer?

``association`` measures, within one run, how trace correctness and answer correctness go
together: the phi coefficient (Pearson's r of two booleans, which equals the Matthews
correlation of the 2x2) with a seeded percentile-bootstrap 95% interval, and Fisher's exact
test. ``mcnemar_between`` compares answer correctness between two settings on the same test
items. ``stats_row`` / ``run_stats`` / ``stats_table`` gather both into one tidy row per run.
The tests themselves come from scipy and statsmodels; only phi (a closed formula that has to
be evaluated on thousands of bootstrap tables at once) is computed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from tracekd.traces import SETTING_ORDER

#: the four cells of the 2x2, keyed as in ``confusion_counts``
CONFUSION_KEYS = (
    "trace_correct_answer_correct",
    "trace_correct_answer_wrong",
    "trace_wrong_answer_correct",
    "trace_wrong_answer_wrong",
)

#: the share of the bootstrap distribution outside the interval, split between both tails
CI_LEVEL = 0.95

#: below this many discordant pairs McNemar's test uses the exact binomial distribution (the
#: chi-square approximation is poor for small counts; 25 is the usual textbook threshold)
MCNEMAR_EXACT_BELOW = 25

MCNEMAR_EXACT = "exact binomial"
MCNEMAR_CHI2 = "chi-square with continuity correction"

#: the column order and types of ``stats_table``
STATS_SCHEMA: dict[str, Any] = {
    "dataset": pl.String,
    "model": pl.String,
    "setting": pl.String,
    "n": pl.Int64,
    **dict.fromkeys(CONFUSION_KEYS, pl.Int64),
    "answer_accuracy": pl.Float64,
    "trace_accuracy": pl.Float64,
    "phi": pl.Float64,
    "phi_defined": pl.Boolean,
    "phi_ci_low": pl.Float64,
    "phi_ci_high": pl.Float64,
    "n_boot": pl.Int64,
    "seed": pl.Int64,
    "fisher_odds_ratio": pl.Float64,
    "fisher_p": pl.Float64,
    **{
        f"vs_{ref}_{field}": dtype
        for ref in ("vanilla", "correct")
        for field, dtype in (
            ("setting", pl.String),
            ("b01", pl.Int64),
            ("b10", pl.Int64),
            ("method", pl.String),
            ("p", pl.Float64),
        )
    },
}


def _percent(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole``, 2 decimals; 0 when ``whole`` is 0."""
    return round(100.0 * part / whole, 2) if whole else 0.0


def confusion_counts(scores: pl.DataFrame) -> dict[str, Any]:
    """The 2x2 of trace correctness against answer correctness, in counts and percent of n.

    Returns ``{"n", "counts": {CONFUSION_KEYS...}, "percent": {same keys},
    "answer_accuracy", "trace_accuracy"}``; percentages have 2 decimals (all 0 when n is 0).
    """
    trace = scores["trace_correct"].fill_null(False)
    answer = scores["answer_correct"].fill_null(False)
    counts = {
        "trace_correct_answer_correct": int((trace & answer).sum()),
        "trace_correct_answer_wrong": int((trace & ~answer).sum()),
        "trace_wrong_answer_correct": int((~trace & answer).sum()),
        "trace_wrong_answer_wrong": int((~trace & ~answer).sum()),
    }
    n = scores.height
    return {
        "n": n,
        "counts": counts,
        "percent": {key: _percent(value, n) for key, value in counts.items()},
        "answer_accuracy": _percent(int(answer.sum()), n),
        "trace_accuracy": _percent(int(trace.sum()), n),
    }



def _require(scores: pl.DataFrame, column: str) -> None:
    """Raise ``ValueError`` naming ``column`` when ``scores`` lack it."""
    if column not in scores.columns:
        raise ValueError(f"scores have no column {column!r} (columns: {scores.columns})")


def _booleans(scores: pl.DataFrame, column: str) -> np.ndarray:
    """A boolean score column as a numpy array; null (unparsed) counts as False, as in scoring."""
    _require(scores, column)
    return scores[column].cast(pl.Boolean).fill_null(False).to_numpy().astype(bool)


def _phi(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Phi of 2x2 tables ``[[a, b], [c, d]]`` (arrays of counts) and whether each is defined.

    Undefined (a zero margin: one variable is constant) gives 0, the usual convention for the
    Matthews correlation. The product is taken as (row margins) x (column margins) so that
    transposing a table (swapping the variables) gives bit-identical results.
    """
    a, b, c, d = (np.asarray(x, dtype=np.float64) for x in (a, b, c, d))
    rows = (a + b) * (c + d)
    cols = (a + c) * (b + d)
    denominator = np.sqrt(rows * cols)
    defined = denominator > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(defined, (a * d - b * c) / np.where(defined, denominator, 1.0), 0.0)
    # float rounding can push a perfect association a hair past 1
    return np.clip(phi, -1.0, 1.0), defined


def _finite_or_none(value: float) -> float | None:
    """``value`` as a float, or None when infinite or NaN (JSON and parquet friendly)."""
    value = float(value)
    return value if math.isfinite(value) else None


def association(scores: pl.DataFrame, *, n_boot: int = 2000, seed: int) -> dict[str, Any]:
    """How trace correctness and answer correctness go together in one run's scores.

    Returns ``{"n", "counts" (CONFUSION_KEYS), "phi", "phi_defined", "phi_ci_low",
    "phi_ci_high", "ci_level", "n_boot", "seed", "boot_undefined", "fisher_odds_ratio",
    "fisher_p"}``:

    - ``phi``: the phi coefficient of ``trace_correct`` vs ``answer_correct`` (= their MCC),
      in [-1, 1]; 0 with ``phi_defined`` False when either is constant (e.g. no correct trace).
    - ``phi_ci_low/high``: the 95% percentile bootstrap interval from ``n_boot`` (>= 1000)
      resamples of the rows, drawn with ``numpy.random.Generator(PCG64(seed))``; resamples
      whose phi is undefined count as 0 (``boot_undefined`` says how many).
    - ``fisher_p``: two-sided p-value of Fisher's exact test (scipy); ``fisher_odds_ratio``:
      the sample odds ratio (TC.AC x TW.AW) / (TC.AW x TW.AC), None when infinite or 0/0.

    Null scores count as False. Raises ``ValueError`` with no rows or ``n_boot < 1000``.
    """
    if n_boot < 1000:
        raise ValueError(f"n_boot must be at least 1000 for a 95% interval, got {n_boot}")
    for column in ("trace_correct", "answer_correct"):
        _require(scores, column)
    n = scores.height
    if n == 0:
        raise ValueError("association needs at least one scored row, got none")
    counts = confusion_counts(scores)["counts"]
    table = np.array([counts[key] for key in CONFUSION_KEYS], dtype=np.int64)  # a, b, c, d

    phi, defined = _phi(*table)

    # The statistic depends on the rows only through the 2x2 counts, and resampling n rows
    # with replacement gives multinomial(n, observed shares) counts: drawing those directly
    # is the same bootstrap, vectorised, at a cost independent of n.
    rng = np.random.Generator(np.random.PCG64(seed))
    boot_tables = rng.multinomial(n, table / n, size=n_boot)
    boot_phi, boot_defined = _phi(*boot_tables.T)
    tail = (1.0 - CI_LEVEL) / 2.0
    low, high = np.quantile(boot_phi, [tail, 1.0 - tail])

    from scipy.stats import fisher_exact  # here: scipy.stats alone takes ~0.8 s to import

    odds_ratio, fisher_p = fisher_exact(table.reshape(2, 2), alternative="two-sided")
    return {
        "n": n,
        "counts": counts,
        "phi": float(phi),
        "phi_defined": bool(defined),
        "phi_ci_low": float(low),
        "phi_ci_high": float(high),
        "ci_level": CI_LEVEL,
        "n_boot": n_boot,
        "seed": seed,
        "boot_undefined": int((~boot_defined).sum()),
        "fisher_odds_ratio": _finite_or_none(odds_ratio),
        "fisher_p": float(fisher_p),
    }


def bootstrap_mean(values: np.ndarray, *, n_boot: int = 2000, seed: int) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the mean of per-item ``values``, resampling
    items with replacement (``numpy.random.Generator(PCG64(seed))``, as :func:`association`).

    The mean depends on a resample only through how often each distinct value is drawn, so,
    as for phi, the resamples are drawn as multinomial counts of the distinct values: the same
    bootstrap, at a cost independent of the number of items. Raises ``ValueError`` with no
    values or ``n_boot < 1000``.
    """
    if n_boot < 1000:
        raise ValueError(f"n_boot must be at least 1000 for a 95% interval, got {n_boot}")
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("a bootstrap interval needs at least one value, got none")
    distinct, counts = np.unique(values, return_counts=True)
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = rng.multinomial(values.size, counts / values.size, size=n_boot)
    means = draws @ distinct / values.size
    tail = (1.0 - CI_LEVEL) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def _ids(frame: pl.DataFrame, name: str) -> pl.Series:
    """The ``id`` column of ``frame``; raises on a missing column or a repeated id."""
    if "id" not in frame.columns:
        raise ValueError(f"scores {name} have no 'id' column")
    ids = frame["id"]
    if ids.is_duplicated().any():
        repeated = ids.filter(ids.is_duplicated()).unique().sort().head(5).to_list()
        raise ValueError(f"scores {name} repeat ids, e.g. {repeated}")
    return ids


def mcnemar_between(
    a: pl.DataFrame, b: pl.DataFrame, *, column: str = "answer_correct"
) -> dict[str, Any]:
    """McNemar's test of ``column`` between two settings scored on the same test items.

    Rows are paired on ``id``; a ``ValueError`` is raised when the id sets differ (or repeat),
    naming a few ids on either side. statsmodels' ``mcnemar`` runs the exact binomial test
    when there are fewer than ``MCNEMAR_EXACT_BELOW`` discordant pairs, else the chi-square
    test with continuity correction; ``method`` says which.

    Returns ``{"n", "column", "b01" (a wrong, b right), "b10" (a right, b wrong),
    "discordant", "a_accuracy", "b_accuracy" (%), "method", "statistic", "p"}``.
    """
    ids_a, ids_b = _ids(a, "a"), _ids(b, "b")
    only_a = sorted(set(ids_a.to_list()) - set(ids_b.to_list()))
    only_b = sorted(set(ids_b.to_list()) - set(ids_a.to_list()))
    if only_a or only_b:
        raise ValueError(
            f"McNemar needs the same test items: {len(only_a)} ids only in a "
            f"(e.g. {only_a[:5]}), {len(only_b)} only in b (e.g. {only_b[:5]})"
        )
    for frame, name in ((a, "a"), (b, "b")):
        if column not in frame.columns:
            raise ValueError(f"scores {name} have no column {column!r}")
    pairs = a.select("id", pl.col(column).alias("a")).join(
        b.select("id", pl.col(column).alias("b")), on="id", how="inner"
    )
    right_a = _booleans(pairs, "a")
    right_b = _booleans(pairs, "b")
    b01 = int((~right_a & right_b).sum())
    b10 = int((right_a & ~right_b).sum())
    table = np.array(
        [[int((right_a & right_b).sum()), b10], [b01, int((~right_a & ~right_b).sum())]]
    )
    exact = b01 + b10 < MCNEMAR_EXACT_BELOW
    from statsmodels.stats.contingency_tables import mcnemar  # here: a heavy import

    result = mcnemar(table, exact=exact, correction=True)
    n = pairs.height
    return {
        "n": n,
        "column": column,
        "b01": b01,
        "b10": b10,
        "discordant": b01 + b10,
        "a_accuracy": round(100.0 * right_a.sum() / n, 2) if n else None,
        "b_accuracy": round(100.0 * right_b.sum() / n, 2) if n else None,
        "method": MCNEMAR_EXACT if exact else MCNEMAR_CHI2,
        "statistic": float(result.statistic),
        "p": float(result.pvalue),
    }


def stats_row(
    scores: pl.DataFrame,
    *,
    dataset: str,
    model: str,
    setting: str,
    has_trace_target: bool,
    seed: int,
    n_boot: int = 2000,
    references: Mapping[str, pl.DataFrame] | None = None,
) -> dict[str, Any]:
    """One run's row of ``stats_table``: n, 2x2 counts, phi with CI, Fisher, McNemar.

    The association fields are None when the setting trains no trace (``prompt``,
    ``vanilla``: the tables' "--"), as in ``report.summarize``. ``references`` maps a
    reference setting name (``"vanilla"``, ``"correct"``) to its scores on the same items;
    each gives ``vs_{name}_{setting,b01,b10,method,p}`` with this run as ``a`` and the
    reference as ``b`` (b01: the reference right where this run is wrong).
    """
    counts = confusion_counts(scores)
    row: dict[str, Any] = dict.fromkeys(STATS_SCHEMA)
    row.update(
        dataset=dataset,
        model=model,
        setting=setting,
        n=scores.height,
        answer_accuracy=counts["answer_accuracy"],
        **counts["counts"],
    )
    if has_trace_target and scores.height:
        result = association(scores, n_boot=n_boot, seed=seed)
        row["trace_accuracy"] = counts["trace_accuracy"]
        row.update({key: result[key] for key in STATS_SCHEMA if key in result})
    for name, reference in (references or {}).items():
        if f"vs_{name}_p" not in STATS_SCHEMA:
            raise ValueError(f"no stats columns for reference setting {name!r}")
        test = mcnemar_between(scores, reference)
        row.update({f"vs_{name}_{key}": test[key] for key in ("b01", "b10", "method", "p")})
        row[f"vs_{name}_setting"] = name
    return row


def run_stats(
    runs: Mapping[tuple[str, str, str], pl.DataFrame],
    *,
    trace_settings: Sequence[str],
    seed: int,
    n_boot: int = 2000,
    baseline: str = "vanilla",
    contrasts: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """``stats_row`` for every (dataset, model, setting) run in ``runs``.

    Each run other than ``baseline`` is compared with the ``baseline`` run of the same
    dataset and model (when there is one); a setting in ``contrasts`` (default
    ``{"incorrect": "correct"}``) is also compared with the run it maps to. Settings in
    ``trace_settings`` get the association statistics. Every run uses the same ``seed``.
    """
    contrasts = {"incorrect": "correct"} if contrasts is None else dict(contrasts)
    rows = []
    for (dataset, model, setting), scores in runs.items():
        wanted = [baseline] if setting != baseline else []
        wanted += [contrasts[setting]] if setting in contrasts else []
        references = {
            name: runs[(dataset, model, name)] for name in wanted if (dataset, model, name) in runs
        }
        rows.append(
            stats_row(
                scores,
                dataset=dataset,
                model=model,
                setting=setting,
                has_trace_target=setting in trace_settings,
                seed=seed,
                n_boot=n_boot,
                references=references,
            )
        )
    return rows


def stats_table(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """``stats_row`` outputs as a frame with ``STATS_SCHEMA``, in a deterministic order.

    Sorted by dataset and by model, each in the order first met in ``rows``, then by setting
    (``SETTING_ORDER`` first, then the others as met): a stable sort, so the same rows give
    the same frame (and parquet bytes), and settings come out in the paper's order.
    """

    def first_seen(key: str) -> dict[str, int]:
        return {name: i for i, name in enumerate(dict.fromkeys(row[key] for row in rows))}

    datasets, models = first_seen("dataset"), first_seen("model")
    settings = {name: i for i, name in enumerate(SETTING_ORDER)}
    extra = first_seen("setting")
    ordered = sorted(
        rows,
        key=lambda row: (
            datasets[row["dataset"]],
            models[row["model"]],
            settings.get(row["setting"], len(settings) + extra[row["setting"]]),
        ),
    )
    return pl.DataFrame(
        [{key: row.get(key) for key in STATS_SCHEMA} for row in ordered], schema=STATS_SCHEMA
    )
