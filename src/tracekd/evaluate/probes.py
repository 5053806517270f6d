"""Probe measures: how much a run's answers depend on its trace.

Each probe's answers are set against the same run's free generation on the same test items:

- ``accuracy``: the answer accuracy under the probe (the dataset's answer rule, as scored);
- ``change_rate``: the share of items whose normalized answer differs from the free one
  (normalized items as a set: case, punctuation, articles and list order do not count);
- ``gain`` (``gold`` only): among items whose free trace was wrong, the probe's accuracy minus
  the free accuracy (does the right trace fix the answer?);
- ``misled`` (``wrong-facts``, ``swapped``): the share of items whose answer is wrong and names
  a value the forced facts state and no gold answer does (the trace misled the answer), where
  the dataset plug-in can list the values facts state (``Dataset.fact_values``); ``misled_free``
  is the same check of the free answer against the same facts (what chance gives).

Every share is in percent, with a 95% percentile bootstrap interval over items
(:func:`tracekd.evaluate.stats.bootstrap_mean`, seeded).

A study replicated over seeds probes each seed's run (its own adapter and free generation):
:func:`replicate_probe_measures` gives a row per seed (its bootstrap seeded by the run's seed)
and a pooled row per (run, probe), each share the mean over seeds with its 95% t-interval over
the seeds (:func:`tracekd.evaluate.seeds.t_interval`); a share that only one seed has keeps its
mean and no interval.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from tracekd.datasets import get_dataset
from tracekd.evaluate.score import score_predictions
from tracekd.evaluate.seeds import INTERVAL_METHOD, PERCENT, PERCENT_DIFF, t_interval
from tracekd.evaluate.stats import bootstrap_mean
from tracekd.text import answer_items, contains_tokens, normalize
from tracekd.traces.probes import MISLEADING, PROBE_COLUMNS, PROBES


def score_probe(
    predictions: pl.DataFrame, *, answer_rule: str, options: Mapping[str, Any] | None = None
) -> pl.DataFrame:
    """A probe's scores: :func:`score_predictions` (the free run's columns) plus the probe's
    columns (:data:`tracekd.traces.probes.PROBE_COLUMNS`), in the predictions' order."""
    scores = score_predictions(predictions, answer_rule=answer_rule, options=options)
    return pl.concat([scores, predictions.select(PROBE_COLUMNS)], how="horizontal")


def answer_key(answer: str | None) -> tuple[str, ...]:
    """A final answer's normalized items, sorted and de-duplicated: two answers that differ only
    in case, punctuation, articles, list style or item order have the same key."""
    return tuple(sorted({normalize(item) for item in answer_items(answer, split_commas=True)} - {""}))


def names_forced_value(
    answer: str | None, values: Sequence[str], golds: Sequence[str]
) -> bool:
    """Whether ``answer`` names (on token boundaries, normalized) one of ``values`` that no gold
    answer is."""
    text = normalize(" ".join(answer_items(answer)))
    gold = {normalize(item) for g in golds for item in answer_items(g, split_commas=True)}
    return any(
        (key := normalize(value)) and key not in gold and contains_tokens(key, text) for value in values
    )


#: the column order and types of :func:`probes_table`
PROBES_SCHEMA: dict[str, Any] = {
    "dataset": pl.String,
    "model": pl.String,
    "setting": pl.String,
    "probe": pl.String,
    "n": pl.Int64,
    "free_accuracy": pl.Float64,
    "accuracy": pl.Float64,
    "accuracy_ci_low": pl.Float64,
    "accuracy_ci_high": pl.Float64,
    "change_rate": pl.Float64,
    "change_ci_low": pl.Float64,
    "change_ci_high": pl.Float64,
    "n_free_trace_wrong": pl.Int64,
    "gain": pl.Float64,
    "gain_ci_low": pl.Float64,
    "gain_ci_high": pl.Float64,
    "misled_decidable": pl.Boolean,
    "misled": pl.Float64,
    "misled_ci_low": pl.Float64,
    "misled_ci_high": pl.Float64,
    "misled_free": pl.Float64,
    "n_boot": pl.Int64,
    "seed": pl.Int64,
}


def _percent(value: float) -> float:
    return round(100.0 * value, 2)


def _share(values: np.ndarray, *, n_boot: int, seed: int) -> tuple[float | None, float | None, float | None]:
    """Mean of per-item values in percent with its bootstrap interval; ``None`` with no items."""
    if values.size == 0:
        return None, None, None
    low, high = bootstrap_mean(values, n_boot=n_boot, seed=seed)
    return _percent(float(values.mean())), _percent(low), _percent(high)


def _paired(free: pl.DataFrame, probe: pl.DataFrame, what: str) -> None:
    if free["id"].to_list() != probe["id"].to_list():
        raise ValueError(f"the probe's {what} are not the free run's items in its order")


def probe_measures(
    *,
    free_predictions: pl.DataFrame,
    free_scores: pl.DataFrame,
    predictions: pl.DataFrame,
    scores: pl.DataFrame,
    fact_values: Callable[[Sequence[str], Mapping[str, Any]], list[str]] | None,
    seed: int,
    n_boot: int = 2000,
) -> dict[str, Any]:
    """One probe's measures on one run (the keys of :data:`PROBES_SCHEMA` but the run's names).

    The four frames are the run's free predictions and scores and the probe's, on the same
    items in the same order (``ValueError`` otherwise). ``fact_values`` is the dataset
    plug-in's (``None``: the misled share is not decidable and stays null).
    """
    for frame, what in ((free_scores, "free scores"), (predictions, "predictions"), (scores, "scores")):
        _paired(free_predictions, frame, what)
    probe = predictions["probe"][0] if predictions.height else None
    free_ok = free_scores["answer_correct"].fill_null(False).to_numpy().astype(bool)
    ok = scores["answer_correct"].fill_null(False).to_numpy().astype(bool)
    free_keys = [answer_key(a) for a in free_predictions["pred_answer"].to_list()]
    keys = [answer_key(a) for a in predictions["pred_answer"].to_list()]
    changed = np.array([a != b for a, b in zip(free_keys, keys, strict=True)], dtype=np.float64)
    row: dict[str, Any] = dict.fromkeys(PROBES_SCHEMA)
    acc, acc_low, acc_high = _share(ok.astype(np.float64), n_boot=n_boot, seed=seed)
    change, change_low, change_high = _share(changed, n_boot=n_boot, seed=seed)
    row.update(
        probe=probe, n=predictions.height,
        free_accuracy=_percent(float(free_ok.mean())) if free_ok.size else None,
        accuracy=acc, accuracy_ci_low=acc_low, accuracy_ci_high=acc_high,
        change_rate=change, change_ci_low=change_low, change_ci_high=change_high,
        misled_decidable=fact_values is not None, n_boot=n_boot, seed=seed,
    )  # fmt: skip
    if probe == "gold":
        wrong = ~free_scores["trace_correct"].fill_null(False).to_numpy().astype(bool)
        diff = ok[wrong].astype(np.float64) - free_ok[wrong].astype(np.float64)
        row["n_free_trace_wrong"] = int(wrong.sum())
        row["gain"], row["gain_ci_low"], row["gain_ci_high"] = _share(diff, n_boot=n_boot, seed=seed)
    if probe in MISLEADING and fact_values is not None:
        misled, misled_free = [], []
        for i, item in enumerate(predictions.iter_rows(named=True)):
            values = fact_values(item["probe_facts"] or [], item)
            golds = item["answers"] or []
            misled.append(not ok[i] and names_forced_value(item["pred_answer"], values, golds))
            free_answer = free_predictions["pred_answer"][i]
            misled_free.append(not free_ok[i] and names_forced_value(free_answer, values, golds))
        share = np.array(misled, dtype=np.float64)
        row["misled"], row["misled_ci_low"], row["misled_ci_high"] = _share(share, n_boot=n_boot, seed=seed)
        row["misled_free"] = _percent(float(np.mean(misled_free))) if misled_free else None
    return row


def run_probe_measures(
    runs: Mapping[tuple[str, str, str], Mapping[str, Any]],
    *,
    answer_rules: Mapping[str, str],
    seed: int,
    n_boot: int = 2000,
) -> pl.DataFrame:
    """:func:`probe_measures` of every probe of every run, as :func:`probes_table`.

    ``runs`` maps (dataset, model, setting) to ``{"free_predictions", "free_scores", "probes":
    {probe: (predictions, scores)}}``; ``answer_rules`` maps a dataset to its plug-in's name
    (whose ``fact_values`` decides the misled share).
    """
    rows = []
    for (dataset, model, setting), run in runs.items():
        values = get_dataset(answer_rules[dataset]).fact_values
        for predictions, scores in run["probes"].values():
            row = probe_measures(
                free_predictions=run["free_predictions"], free_scores=run["free_scores"],
                predictions=predictions, scores=scores, fact_values=values, seed=seed,
                n_boot=n_boot,
            )  # fmt: skip
            rows.append({**row, "dataset": dataset, "model": model, "setting": setting})
    return probes_table(rows)


def probes_table(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Measure rows as a frame with :data:`PROBES_SCHEMA`: runs in the order first met, probes
    in :data:`tracekd.traces.probes.PROBES` order (a stable sort: the same rows, the same bytes)."""
    runs = {key: i for i, key in enumerate(dict.fromkeys((r["dataset"], r["model"], r["setting"]) for r in rows))}
    order = {name: i for i, name in enumerate(PROBES)}
    ordered = sorted(
        rows, key=lambda r: (runs[(r["dataset"], r["model"], r["setting"])], order.get(r["probe"], len(order)))
    )
    return pl.DataFrame([{k: r.get(k) for k in PROBES_SCHEMA} for r in ordered], schema=PROBES_SCHEMA)


#: how the per-seed rows of :func:`replicate_probe_measures` state their interval
BOOTSTRAP_METHOD = "bootstrap over items"

#: the columns of :func:`replicate_probe_measures`: :data:`PROBES_SCHEMA` (``seed`` the run's
#: seed on a per-seed row, null on a pooled row), then the seeds a row pools (null on a
#: per-seed row) and how its intervals were made
PROBES_SEEDS_SCHEMA: dict[str, Any] = {
    **PROBES_SCHEMA,
    "n_seeds": pl.Int64,
    "interval": pl.String,
}

#: the shares a pooled row gives as their mean with a t-interval over seeds (value, low, high,
#: the range the interval is cut to: gain is a difference of two shares)
POOLED_SHARES = (
    ("accuracy", "accuracy_ci_low", "accuracy_ci_high", PERCENT),
    ("change_rate", "change_ci_low", "change_ci_high", PERCENT),
    ("gain", "gain_ci_low", "gain_ci_high", PERCENT_DIFF),
    ("misled", "misled_ci_low", "misled_ci_high", PERCENT),
)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def pool_probe_seeds(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One (run, probe)'s per-seed measure rows (:func:`probe_measures`, named) as one pooled row.

    Each share of :data:`POOLED_SHARES` is the mean of the per-seed values with its 95%
    t-interval over the seeds (:func:`tracekd.evaluate.seeds.t_interval`: seeds without a value
    are left out, and a share only one seed has gets no interval); ``free_accuracy`` and
    ``misled_free`` are means; ``n`` is the test items of one seed and ``n_free_trace_wrong``
    the sum over seeds; ``seed`` and ``n_boot`` are null (no bootstrap made the intervals).
    Raises ``ValueError`` with no rows or rows of different runs or probes.
    """
    if not rows:
        raise ValueError("no per-seed probe measures to pool")
    keys = {(r["dataset"], r["model"], r["setting"], r["probe"]) for r in rows}
    if len(keys) != 1:
        raise ValueError(f"per-seed probe measures of more than one run and probe: {sorted(keys)}")
    first = rows[0]
    pooled: dict[str, Any] = dict.fromkeys(PROBES_SEEDS_SCHEMA)
    pooled.update(
        dataset=first["dataset"], model=first["model"], setting=first["setting"],
        probe=first["probe"], n=first["n"], misled_decidable=first["misled_decidable"],
        n_seeds=len(rows), interval=INTERVAL_METHOD,
    )  # fmt: skip
    for key, low, high, bounds in POOLED_SHARES:
        mean, lo, hi = t_interval([r.get(key) for r in rows], bounds=bounds)
        pooled.update({key: _rounded(mean), low: _rounded(lo), high: _rounded(hi)})
    for key in ("free_accuracy", "misled_free"):
        pooled[key] = _rounded(t_interval([r.get(key) for r in rows])[0])
    wrong = [r["n_free_trace_wrong"] for r in rows if r.get("n_free_trace_wrong") is not None]
    pooled["n_free_trace_wrong"] = sum(wrong) if wrong else None
    return pooled


def replicate_probe_measures(
    runs: Mapping[tuple[str, str, str, int], Mapping[str, Any]],
    *,
    answer_rules: Mapping[str, str],
    n_boot: int = 2000,
) -> pl.DataFrame:
    """The probes of a study replicated over seeds: per-seed rows and pooled rows.

    ``runs`` maps (dataset, model, setting, seed) to one seed's run, as
    :func:`run_probe_measures` takes it. Each seed's probe gives a row of
    :func:`probe_measures`, its bootstrap seeded by the run's seed (``seed``); each (run,
    probe) a pooled row (:func:`pool_probe_seeds`). Rows: runs in the order first met, probes
    in :data:`tracekd.traces.probes.PROBES` order, each probe's seeds in the order given then
    its pooled row; the columns :data:`PROBES_SEEDS_SCHEMA`.
    """
    grouped: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for (dataset, model, setting, seed), run in runs.items():
        values = get_dataset(answer_rules[dataset]).fact_values
        for predictions, scores in run["probes"].values():
            row = probe_measures(
                free_predictions=run["free_predictions"], free_scores=run["free_scores"],
                predictions=predictions, scores=scores, fact_values=values, seed=int(seed),
                n_boot=n_boot,
            )  # fmt: skip
            row.update(dataset=dataset, model=model, setting=setting, interval=BOOTSTRAP_METHOD)
            grouped.setdefault((dataset, model, setting, row["probe"]), []).append(row)
    order = {name: i for i, name in enumerate(PROBES)}
    run_order = {key: i for i, key in enumerate(dict.fromkeys(k[:3] for k in grouped))}
    rows: list[dict[str, Any]] = []
    for key in sorted(grouped, key=lambda k: (run_order[k[:3]], order.get(k[3], len(order)))):
        rows += grouped[key]
        rows.append(pool_probe_seeds(grouped[key]))
    return pl.DataFrame(
        [{k: r.get(k) for k in PROBES_SEEDS_SCHEMA} for r in rows], schema=PROBES_SEEDS_SCHEMA
    )


def pooled_probe_rows(table: pl.DataFrame) -> pl.DataFrame:
    """The rows a table or figure shows: a replicated study's pooled rows (``n_seeds`` set),
    else every row (one seed: the table of :func:`run_probe_measures` as it is)."""
    if "n_seeds" not in table.columns:
        return table
    return table.filter(pl.col("n_seeds").is_not_null())


def probe_seed_count(table: pl.DataFrame) -> int:
    """The seeds a probes table pools (1 for a table of one seed)."""
    if "n_seeds" not in table.columns:
        return 1
    counts = pooled_probe_rows(table)["n_seeds"].drop_nulls()
    return int(counts.max()) if counts.len() else 1
