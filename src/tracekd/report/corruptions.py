"""The corruption study across seeds: per-seed and pooled summary rows, the corruptions table.

Every (dataset, model, setting) has one score table per seed. :func:`replicate_rows` gives a
row per seed (the metrics of ``summarize`` and the statistics of ``stats_row``, its bootstrap
seeded by the replicate's seed) and a pooled row per setting (``seed`` empty): each metric's
mean over seeds with its 95% t-interval (none with one seed), the CMH common odds ratio of the
trace-answer association over the seeds, and each trace setting against ``correct`` and every
trained setting against ``vanilla``, items paired within a seed
(:mod:`tracekd.evaluate.seeds`). :func:`corruptions_latex` typesets the pooled rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from tracekd.evaluate.seeds import (
    INTERVAL_METHOD,
    PERCENT,
    beyond_seed_spread,
    cmh_association,
    paired_across_seeds,
    t_interval,
)
from tracekd.evaluate.stats import CONFUSION_KEYS, STATS_SCHEMA, stats_row
from tracekd.report.names import DISPLAY_NAMES
from tracekd.report.tables import (
    StudyTables,
    latex_escape,
    stats_latex,
    summarize,
    table2_latex,
    table3_latex,
)
from tracekd.traces.build import dose

#: (dataset, model, setting) -> seed -> that replicate's scores
Replicates = Mapping[tuple[str, str, str], Mapping[int, pl.DataFrame]]

#: metrics given as a mean with a t-interval over seeds in the pooled rows
INTERVAL_METRICS = ("answer_accuracy", "answer_f1", "category_accuracy", "ir_accuracy", "trace_accuracy")

#: the summary metrics a pooled row gives as their mean over seeds (the per-seed association
#: numbers, phi and Fisher's test, stay on the per-seed rows: the CMH test pools them)
SUMMARY_METRICS = (
    "answer_accuracy", "answer_f1", "answer_precision", "answer_recall", "category_accuracy",
    "ir_accuracy", "trace_accuracy", "category_lenient_accuracy", "ir_lenient_accuracy",
    "avg_trace_words", "avg_trace_tokens", "trace_rate",
)  # fmt: skip

#: the references each setting is compared with, paired within seeds
REFERENCES = ("vanilla", "correct")

#: the pooled rows' columns beyond a per-seed row's
POOLED_SCHEMA: dict[str, Any] = {
    "n_seeds": pl.Int64,
    **{
        f"{metric}_{end}": pl.Float64
        for metric in INTERVAL_METRICS
        for end in ("ci_low", "ci_high")
    },
    "cmh_odds_ratio": pl.Float64,
    "cmh_or_ci_low": pl.Float64,
    "cmh_or_ci_high": pl.Float64,
    "cmh_statistic": pl.Float64,
    "cmh_p": pl.Float64,
    **{
        f"vs_{ref}_{field}": dtype
        for ref in REFERENCES
        for field, dtype in (
            ("diff", pl.Float64),
            ("diff_ci_low", pl.Float64),
            ("diff_ci_high", pl.Float64),
            ("beyond_seed_spread", pl.Boolean),
        )
    },
}


def _compared_with(setting: str, targets: Mapping[str, str]) -> list[str]:
    """The references a setting is compared with: vanilla for every other setting that trains,
    correct for every other trace setting (each when the study has it)."""
    wanted = []
    if setting != "vanilla" and "vanilla" in targets and targets[setting] != "none":
        wanted.append("vanilla")
    if setting != "correct" and "correct" in targets and targets[setting] == "trace":
        wanted.append("correct")
    return wanted


def replicate_rows(
    runs: Replicates, *, targets: Mapping[str, str], n_boot: int = 2000
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-seed rows and pooled rows of every (dataset, model, setting) in ``runs``.

    ``targets`` maps each setting to what it trains on; trace metrics and the association are
    given for trace settings only, as in ``summarize``. Per-seed rows carry ``seed`` (the
    replicate, which also seeds its bootstrap); pooled rows have ``seed`` None, ``n`` the test
    items of one seed, each metric the mean over seeds and ``POOLED_SCHEMA``'s columns.
    """
    per_seed: list[dict[str, Any]] = []
    pooled: list[dict[str, Any]] = []
    for (dataset, model, setting), by_seed in runs.items():
        trace = targets[setting] == "trace"
        rows = []
        for seed, scores in sorted(by_seed.items()):
            row = summarize(scores, dataset=dataset, model=model, setting=setting, has_trace_target=trace)
            stats = stats_row(
                scores, dataset=dataset, model=model, setting=setting, has_trace_target=trace,
                seed=seed, n_boot=n_boot,
                references={
                    ref: runs[(dataset, model, ref)][seed]
                    for ref in _compared_with(setting, targets)
                    if seed in runs.get((dataset, model, ref), {})
                },
            )  # fmt: skip
            row.update({k: v for k, v in stats.items() if k not in row})
            row["seed"] = seed
            rows.append(row)
        per_seed += rows
        mean_row: dict[str, Any] = dict.fromkeys(rows[0])
        mean_row.update(dataset=dataset, model=model, setting=setting, n=rows[0]["n"], seed=None)
        for key in SUMMARY_METRICS:
            mean = t_interval([r[key] for r in rows])[0]
            mean_row[key] = None if mean is None else round(mean, 2)
        for key in CONFUSION_KEYS:  # the 2x2 counts, summed over seeds
            mean_row[key] = sum(r[key] for r in rows)
        mean_row["n_seeds"] = len(rows)
        for metric in INTERVAL_METRICS:
            mean, low, high = t_interval([r.get(metric) for r in rows], bounds=PERCENT)
            mean_row[metric] = None if mean is None else round(mean, 2)
            mean_row[f"{metric}_ci_low"] = None if low is None else round(low, 2)
            mean_row[f"{metric}_ci_high"] = None if high is None else round(high, 2)
        if trace:
            mean_row.update(
                {k: v for k, v in cmh_association([by_seed[s] for s in sorted(by_seed)]).items() if k != "strata"}
            )
        for ref in _compared_with(setting, targets):
            if (dataset, model, ref) not in runs:
                continue
            test = paired_across_seeds(by_seed, runs[(dataset, model, ref)])
            mean_row[f"vs_{ref}_setting"] = ref
            for field in ("diff", "diff_ci_low", "diff_ci_high"):
                mean_row[f"vs_{ref}_{field}"] = None if test[field] is None else round(test[field], 2)
            mean_row.update({f"vs_{ref}_{k}": test[k] for k in ("b01", "b10", "method", "p")})
            mean_row[f"vs_{ref}_beyond_seed_spread"] = beyond_seed_spread(test)
        pooled.append(mean_row)
    return per_seed, pooled


def replicate_frame(per_seed: Sequence[Mapping[str, Any]], pooled: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Per-seed rows then, for each setting, its pooled row, in one frame (the tidy summary).

    Rows keep the order of their runs (each run's seeds, then its pooled row); the columns are
    a per-seed row's, then ``POOLED_SCHEMA``'s (with no rows, ``STATS_SCHEMA``'s then
    ``POOLED_SCHEMA``'s: the empty frame of an empty study).
    """
    first = per_seed[0] if per_seed else STATS_SCHEMA
    columns = list(dict.fromkeys([*first, *POOLED_SCHEMA]))
    rows = []
    for mean_row in pooled:
        key = (mean_row["dataset"], mean_row["model"], mean_row["setting"])
        rows += [r for r in per_seed if (r["dataset"], r["model"], r["setting"]) == key]
        rows.append(mean_row)
    schema = {c: POOLED_SCHEMA.get(c, STATS_SCHEMA.get(c)) for c in columns}
    if not rows:
        return pl.DataFrame(schema={c: t or pl.Null for c, t in schema.items()})
    frame = pl.DataFrame([{c: r.get(c) for c in columns} for r in rows], infer_schema_length=None)
    return frame.with_columns(pl.col(c).cast(t) for c, t in schema.items() if t is not None)


def format_interval(mean: Any, low: Any, high: Any) -> str:
    """``52.3 [48.1, 56.5]``; the mean alone with no interval (one seed); ``--`` with no mean."""
    if mean is None:
        return "--"
    if low is None or high is None:
        return f"{mean:.1f}"
    return f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def _signed_interval(mean: Any, low: Any, high: Any) -> str:
    text = format_interval(mean, low, high)
    return text.replace("-", "$-$") if text != "--" else text


def _p(value: Any) -> str:
    if value is None:
        return "--"
    return "$<$0.001" if value < 0.001 else f"{value:.3f}"


def corruptions_latex(
    pooled: Sequence[Mapping[str, Any]], *, display_names: Mapping[str, str] | None = None
) -> str:
    """The corruption study as a booktabs table, one row per (dataset, model, setting).

    Answer and trace accuracy (%) as mean [95% t-interval over seeds]; the answer accuracy
    difference from ``correct`` (percentage points, items paired within seeds) with its
    interval and McNemar's p over the summed discordant pairs (a dagger where the interval
    excludes 0: a difference beyond the seed-to-seed spread); the CMH common odds ratio of the
    trace-answer association over seeds and its p. One seed shows the means without intervals.
    """
    names = {**DISPLAY_NAMES, **(display_names or {})}
    seeds = sorted({int(r["n_seeds"]) for r in pooled if r.get("n_seeds") is not None}) or [1]
    how = (
        f"mean [95\\% {INTERVAL_METHOD}, {'/'.join(map(str, seeds))} seeds]"
        if max(seeds) > 1
        else "one seed: no interval"
    )
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\caption{Which part of a trace matters: answer and trace accuracy (\%) per setting, "
        f"{how}; $\\Delta$ answer accuracy against the correct trace (points; items paired within "
        r"a seed; McNemar's $p$ on the discordant pairs summed over seeds; $\dagger$: beyond the "
        r"seed spread), and the Cochran--Mantel--Haenszel common odds ratio of trace and answer "
        r"correctness over seeds.}",
        r"\label{tab:corruptions}",
        r"\begin{tabular}{lllrrrrrr}",
        r"\toprule",
        r"Dataset & Model & Setting & Answer & Trace & $\Delta$ vs correct & $p$ & CMH OR & CMH $p$ \\",
    ]
    previous: tuple[str, str] | None = None
    for row in pooled:
        dataset, model = row["dataset"], row["model"]
        if previous is None or previous[0] != dataset:
            lines.append(r"\midrule")
        elif previous[1] != model:
            lines.append(r"\cmidrule(lr){2-9}")
        delta = _signed_interval(
            row.get("vs_correct_diff"), row.get("vs_correct_diff_ci_low"), row.get("vs_correct_diff_ci_high")
        )
        if row.get("vs_correct_beyond_seed_spread"):
            delta += r"$^\dagger$"
        odds = row.get("cmh_odds_ratio")
        cells = [
            latex_escape(names.get(dataset, dataset)) if previous is None or previous[0] != dataset else "",
            latex_escape(names.get(model, model)) if previous != (dataset, model) else "",
            latex_escape(names.get(row["setting"], row["setting"])),
            format_interval(row.get("answer_accuracy"), row.get("answer_accuracy_ci_low"),
                            row.get("answer_accuracy_ci_high")),
            format_interval(row.get("trace_accuracy"), row.get("trace_accuracy_ci_low"),
                            row.get("trace_accuracy_ci_high")),
            delta if row.get("vs_correct_setting") else "--",
            _p(row.get("vs_correct_p")) if row.get("vs_correct_setting") else "--",
            "--" if odds is None else f"{odds:.2f}",
            _p(row.get("cmh_p")),
        ]  # fmt: skip
        lines.append(" & ".join(cells) + r" \\")
        previous = (dataset, model)
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def read_replicates(runs: Sequence[Mapping[str, Any]], paths: Sequence[str]) -> dict:
    """Score files as :data:`Replicates`: ``runs`` name each file's dataset, model, setting and
    seed (``seed`` absent: the one run of a setting, keyed None)."""
    if len(runs) != len(paths):
        raise ValueError(f"{len(runs)} runs for {len(paths)} score files")
    out: dict[tuple[str, str, str], dict[Any, pl.DataFrame]] = {}
    for run, path in zip(runs, paths, strict=True):
        key = (run["dataset"], run["model"], run["setting"])
        out.setdefault(key, {})[run.get("seed")] = pl.read_parquet(path)
    return out


def corruptions_table(
    runs: Replicates,
    *,
    targets: Mapping[str, str],
    n_boot: int = 2000,
    display_names: Mapping[str, str] | None = None,
) -> str:
    """``results/tables/corruptions.tex``: :func:`corruptions_latex` of the pooled rows."""
    _, pooled = replicate_rows(runs, targets=targets, n_boot=n_boot)
    return corruptions_latex(pooled, display_names=display_names)


def corruption_figure(
    runs: Replicates,
    path: str,
    *,
    kind: str,
    dataset: str,
    settings: Sequence[Mapping[str, Any]],
    models: Sequence[str],
    n_boot: int = 2000,
    display_names: Mapping[str, str] | None = None,
) -> None:
    """One dataset's figure over seeds: ``kind`` ``corruptions`` (accuracy per setting and
    model) or ``dose_response`` (accuracy against the share of gold facts corrupted)."""
    from tracekd.report.figures import plot_corruptions, plot_dose_response

    targets = {s["name"]: s["target"] for s in settings}
    mine = {key: by_seed for key, by_seed in runs.items() if key[0] == dataset}
    _, pooled = replicate_rows(mine, targets=targets, n_boot=n_boot)
    present = {key[2] for key in mine}
    if kind == "corruptions":
        plot_corruptions(
            pooled, path, dataset=dataset, models=models,
            settings=[s["name"] for s in settings if s["name"] in present],
            # a filler trace is dots: nothing to check
            trace_settings=[s["name"] for s in settings
                            if s["target"] == "trace" and s.get("corruption") != "filler"],
            display_names=display_names,
        )  # fmt: skip
    elif kind == "dose_response":
        doses = {s["name"]: dose(s) for s in settings if s["name"] in present}
        plot_dose_response(
            pooled, path, dataset=dataset, models=models,
            doses={name: d for name, d in doses.items() if d is not None},
            display_names=display_names,
        )  # fmt: skip
    else:
        raise ValueError(f"unknown figure kind {kind!r}; expected corruptions or dose_response")


def replicated_study_tables(
    runs: Replicates,
    *,
    targets: Mapping[str, str],
    table2_dataset: str,
    table3_datasets: Sequence[str],
    n_boot: int = 2000,
    display_names: Mapping[str, str] | None = None,
) -> StudyTables:
    """The ``tables`` rule's outputs when every setting runs over several seeds.

    The summary holds a row per seed (``seed`` set) and a pooled row per setting (``seed``
    empty; means, t-intervals over seeds, the CMH odds ratio, paired comparisons); Tables 2
    and 3 show the means over seeds; the statistics table gives each seed's phi, Fisher and
    McNemar tests, a row per seed.
    """
    per_seed, pooled = replicate_rows(runs, targets=targets, n_boot=n_boot)
    models = list(dict.fromkeys(m for _, m, _ in runs))
    settings = list(targets)
    seeds = sorted({r["seed"] for r in per_seed})
    note = f"means over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
    table2 = table2_latex(
        pooled, display_names=display_names, dataset=table2_dataset, models=models,
        settings=settings, lenient=True, label="tab:table2",
        caption=f"{table2_dataset}: final solution and intermediate trace evaluations, {note} "
        "(the paper's Table 2 layout; strict and lenient trace accuracy side by side).",
    )  # fmt: skip
    table3 = table3_latex(
        pooled, display_names=display_names, datasets=table3_datasets, models=models,
        settings=settings, lenient=True, label="tab:table3",
        caption=f"Final solution and intermediate trace evaluations, {note} (the paper's "
        "Table 3 layout; strict and lenient trace accuracy side by side).",
    )  # fmt: skip
    labelled = [
        {**row, "setting": f"{row['setting']} (seed {row['seed']})"}
        for row in sorted(per_seed, key=lambda r: r["seed"])
    ]
    order = {key: i for i, key in enumerate(runs)}
    labelled.sort(key=lambda r: order[(r["dataset"], r["model"], r["setting"].rsplit(" (seed ", 1)[0])])
    stats = stats_latex(
        labelled, display_names=display_names, label="tab:stats",
        caption="Association between trace and answer correctness per seed: phi with a seeded "
        f"bootstrap 95\\% CI ({n_boot} resamples, seeded by the replicate), Fisher's exact test, "
        "and McNemar's test of answer accuracy against the vanilla and correct-trace settings of "
        "the same seed on the same test items (pooled over seeds: results/tables/corruptions.tex).",
    )  # fmt: skip
    return StudyTables(summary=replicate_frame(per_seed, pooled), table2=table2, table3=table3, stats=stats)
