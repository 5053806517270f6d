"""Rule probe_tables: every probe's measures against its run's free generation, as tables (in
a replicated study, per seed and pooled over the seeds)."""

import polars as pl

from tracekd.evaluate.probes import replicate_probe_measures, run_probe_measures
from tracekd.io import write_parquet, write_text
from tracekd.report.probes import probes_latex
from tracekd.runlog import logged

CAPTION = (
    "Answers under forced traces (probes), against the same run's free "
    "generation on the same test items: accuracy, the share of answers that changed "
    "(normalized), for gold the accuracy gain among items whose free trace was wrong "
    "(percentage points), for wrong-facts and swapped the share misled (a wrong answer "
    "naming a value of the forced facts; -- where the dataset makes it undecidable); "
)

with logged(snakemake.log[0]):
    probes = snakemake.params.probes
    runs = {}
    for i, run in enumerate(snakemake.params.runs):
        own = slice(i * len(probes), (i + 1) * len(probes))
        pairs = zip(snakemake.input.predictions[own], snakemake.input.scores[own], strict=True)
        key = (run["dataset"], run["model"], run["setting"])
        runs[(*key, run["seed"]) if snakemake.params.replicated else key] = {
            "free_predictions": pl.read_parquet(snakemake.input.free_predictions[i]),
            "free_scores": pl.read_parquet(snakemake.input.free_scores[i]),
            "probes": {
                probe: (pl.read_parquet(p), pl.read_parquet(s))
                for probe, (p, s) in zip(probes, pairs, strict=True)
            },
        }
    if snakemake.params.replicated:
        table = replicate_probe_measures(
            runs, answer_rules=snakemake.params.answer_rules, n_boot=snakemake.params.n_boot
        )
        seeds = len({key[3] for key in runs})
        caption = (
            f"{CAPTION}each the mean over {seeds} seeds (each seed's run probed with its own "
            "adapter and free generation) with its 95\\% t-interval over the seeds (none where "
            "only one seed has a value)."
        )
    else:
        table = run_probe_measures(
            runs,
            answer_rules=snakemake.params.answer_rules,
            seed=snakemake.params.seed,
            n_boot=snakemake.params.n_boot,
        )
        caption = (
            f"{CAPTION}seeded bootstrap 95\\% intervals over items "
            f"({snakemake.params.n_boot} resamples)."
        )
    write_parquet(table, snakemake.output.parquet)
    write_text(table.write_csv(), snakemake.output.csv)
    write_text(
        probes_latex(
            table,
            display_names=snakemake.params.display,
            caption=caption,
            label="tab:probes",
        ),
        snakemake.output.tex,
    )
