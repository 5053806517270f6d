"""The study's tables from its score files: Tables 2 and 3, statistics, and a tidy summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from tracekd.report import stats_latex, summarize, table2_latex, table3_latex
from tracekd.stats import run_stats, stats_table

Run = tuple[str, str, str]  # (dataset, model, setting)


@dataclass(frozen=True)
class StudyTables:
    """Everything the ``tables`` rule writes."""

    summary: pl.DataFrame  # one row per run: summarize() metrics joined with the statistics
    table2: str
    table3: str
    stats: str


def study_tables(
    scores: Mapping[Run, pl.DataFrame],
    *,
    targets: Mapping[str, str],
    table2_dataset: str,
    table3_datasets: Sequence[str],
    seed: int,
    n_boot: int = 2000,
) -> StudyTables:
    """Summaries, statistics and the LaTeX tables of every (dataset, model, setting) run.

    ``targets`` maps each setting to what it trains on (``none``/``answer``/``trace``); runs
    whose setting trains no trace show "--" in the trace columns, as in the paper. Strict and
    lenient (the paper's released code) trace accuracies stand side by side, labelled.
    """
    runs = list(scores)
    rows = [
        summarize(frame, dataset=d, model=m, setting=s, has_trace_target=targets[s] == "trace")
        for (d, m, s), frame in scores.items()
    ]
    stat_rows = run_stats(
        scores, trace_settings=[s for s, t in targets.items() if t == "trace"], seed=seed, n_boot=n_boot
    )
    stats = stats_table(stat_rows)
    keys = ["dataset", "model", "setting"]
    summary = pl.DataFrame(rows).join(
        stats.drop([c for c in stats.columns if c in rows[0] and c not in keys]),
        on=keys,
        how="left",
        maintain_order="left",
    )
    # an undefined phi (trace or answer correctness constant) is no number: empty in
    # summary.csv, as stats.tex shows "--", never "0.0 [0.0, 0.0]"
    undefined = pl.col("phi_defined").fill_null(True).not_()
    summary = summary.with_columns(
        pl.when(undefined).then(None).otherwise(pl.col(name)).alias(name)
        for name in ("phi", "phi_ci_low", "phi_ci_high")
    )
    models = list(dict.fromkeys(m for _, m, _ in runs))
    settings = list(targets)
    table2 = table2_latex(
        rows,
        dataset=table2_dataset,
        models=models,
        settings=settings,
        lenient=True,
        caption=f"{table2_dataset}: final solution and intermediate trace evaluations "
        "(the paper's Table 2 layout; strict and lenient trace accuracy side by side).",
        label="tab:table2",
    )
    table3 = table3_latex(
        rows,
        datasets=table3_datasets,
        models=models,
        settings=settings,
        lenient=True,
        caption="Final solution and intermediate trace evaluations (the paper's Table 3 layout; "
        "strict and lenient trace accuracy side by side).",
        label="tab:table3",
    )
    stats_tex = stats_latex(
        stats,
        caption="Association between trace and answer correctness: phi with a seeded bootstrap "
        f"95\\% CI ({n_boot} resamples), Fisher's exact test, and McNemar's test of answer "
        "accuracy against the vanilla and correct-trace settings on the same test items.",
        label="tab:stats",
    )
    return StudyTables(summary=summary, table2=table2, table3=table3, stats=stats_tex)
