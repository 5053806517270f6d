"""Probes in a study replicated over seeds: each seed's run probed, the measures pooled over the
seeds (mean with a t-interval over seeds; one seed keeps its bootstrap over items), the table,
the figure, the draw seeds, and the plan of a two-seed study."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from test_probe_runs import measured_frames

from tracekd.config import probe_draw_seed, validate_config
from tracekd.datasets import get_dataset
from tracekd.evaluate.probes import (
    BOOTSTRAP_METHOD,
    PROBES_SCHEMA,
    PROBES_SEEDS_SCHEMA,
    pool_probe_seeds,
    pooled_probe_rows,
    probe_measures,
    probe_seed_count,
    replicate_probe_measures,
    run_probe_measures,
)
from tracekd.evaluate.seeds import INTERVAL_METHOD, PERCENT, PERCENT_DIFF, t_interval
from tracekd.report.probes import format_share, plot_probes, probes_latex

ROOT = Path(__file__).resolve().parents[1]

#: free answers, probe answers and golds of three seeds' runs (the same four test items)
SEED_ANSWERS = {
    1: (["a", "b", "x", "d"], ["a", "b", "c", "y"]),
    2: (["a", "x", "x", "d"], ["a", "b", "c", "d"]),
    3: (["x", "b", "c", "d"], ["a", "y", "y", "d"]),
}
GOLDS = ["a", "b", "c", "d"]


def replicated_runs(seeds: tuple[int, ...] = (1, 2, 3), probes: tuple[str, ...] = ("gold", "swapped")) -> dict:
    runs = {}
    for setting in ("correct", "incorrect"):
        for seed in seeds:
            free_answers, probe_answers = SEED_ANSWERS[seed]
            frames = {
                probe: measured_frames(free_answers, probe_answers, GOLDS, probe=probe,
                                       facts=[["the y"]] * 4, free_trace_ok=[seed == 1, False, True, False])
                for probe in probes
            }  # fmt: skip
            first = next(iter(frames.values()))
            runs[("bAbI", "tiny", setting, seed)] = {
                "free_predictions": first["free_predictions"],
                "free_scores": first["free_scores"],
                "probes": {p: (f["predictions"], f["scores"]) for p, f in frames.items()},
            }
    return runs


def test_per_seed_rows_are_each_runs_measures_bootstrapped_by_its_seed() -> None:
    runs = replicated_runs()
    table = replicate_probe_measures(runs, answer_rules={"bAbI": "babi"}, n_boot=1000)
    assert table.columns == list(PROBES_SEEDS_SCHEMA)
    assert list(PROBES_SEEDS_SCHEMA)[: len(PROBES_SCHEMA)] == list(PROBES_SCHEMA)
    # runs in order, probes in PROBES order, each probe's seeds then its pooled row
    assert table["setting"].to_list() == ["correct"] * 8 + ["incorrect"] * 8
    assert table["probe"].to_list() == (["gold"] * 4 + ["swapped"] * 4) * 2
    assert table["seed"].to_list() == [1, 2, 3, None] * 4
    assert table["n_seeds"].to_list() == [None, None, None, 3] * 4
    assert table["interval"].to_list() == ([BOOTSTRAP_METHOD] * 3 + [INTERVAL_METHOD]) * 4
    for row in table.filter(pl.col("seed").is_not_null()).iter_rows(named=True):
        run = runs[(row["dataset"], row["model"], row["setting"], row["seed"])]
        predictions, scores = run["probes"][row["probe"]]
        expected = probe_measures(
            free_predictions=run["free_predictions"], free_scores=run["free_scores"],
            predictions=predictions, scores=scores, fact_values=get_dataset("babi").fact_values,
            seed=row["seed"], n_boot=1000,
        )  # fmt: skip
        assert {k: row[k] for k in expected if k not in ("dataset", "model", "setting")} == {
            k: v for k, v in expected.items() if k not in ("dataset", "model", "setting")
        }


def test_pooled_rows_are_means_with_a_t_interval_over_seeds() -> None:
    table = replicate_probe_measures(replicated_runs(), answer_rules={"bAbI": "babi"}, n_boot=1000)
    seeds = table.filter((pl.col("setting") == "correct") & (pl.col("probe") == "gold") & pl.col("seed").is_not_null())
    pooled = table.filter((pl.col("setting") == "correct") & (pl.col("probe") == "gold") & pl.col("seed").is_null())
    row = pooled.row(0, named=True)
    for key, low, high, bounds in (("accuracy", "accuracy_ci_low", "accuracy_ci_high", PERCENT),
                                   ("change_rate", "change_ci_low", "change_ci_high", PERCENT),
                                   ("gain", "gain_ci_low", "gain_ci_high", PERCENT_DIFF)):  # fmt: skip
        mean, lo, hi = t_interval(seeds[key].to_list(), bounds=bounds)
        assert (row[key], row[low], row[high]) == (round(mean, 2), round(lo, 2), round(hi, 2))
        assert row[low] <= row[key] <= row[high]
    # accuracies of the three seeds: 75, 100, 50 -> mean 75, t(0.975, 2) * 25 / sqrt(3)
    assert seeds["accuracy"].to_list() == [75.0, 100.0, 50.0] and row["accuracy"] == 75.0
    assert row["accuracy"] - row["accuracy_ci_low"] == pytest.approx(4.302653 * 25 / 3**0.5, abs=0.01)
    assert row["accuracy_ci_high"] == 100.0  # 75 + 62.1, cut to the share's range
    assert row["free_accuracy"] == round(sum(seeds["free_accuracy"]) / 3, 2)
    assert row["n"] == 4 and row["n_free_trace_wrong"] == sum(seeds["n_free_trace_wrong"])
    assert row["n_boot"] is None and row["seed"] is None  # no bootstrap made these intervals
    swapped = table.filter((pl.col("probe") == "swapped") & pl.col("seed").is_null()).row(0, named=True)
    assert swapped["gain"] is None and swapped["misled_decidable"]
    assert swapped["misled_ci_low"] <= swapped["misled"] <= swapped["misled_ci_high"]


def test_a_share_only_one_seed_has_gets_no_interval() -> None:
    rows = [
        {"dataset": "d", "model": "m", "setting": "s", "probe": "gold", "n": 4, "misled_decidable": False,
         "accuracy": 50.0, "gain": 25.0, "n_free_trace_wrong": 2, "free_accuracy": 25.0},
        {"dataset": "d", "model": "m", "setting": "s", "probe": "gold", "n": 4, "misled_decidable": False,
         "accuracy": 70.0, "gain": None, "n_free_trace_wrong": 0, "free_accuracy": 35.0},
    ]  # fmt: skip
    pooled = pool_probe_seeds(rows)
    assert pooled["accuracy"] == 60.0 and pooled["accuracy_ci_low"] < 60.0 < pooled["accuracy_ci_high"]
    assert (pooled["gain"], pooled["gain_ci_low"], pooled["gain_ci_high"]) == (25.0, None, None)
    assert pooled["misled"] is pooled["misled_ci_low"] is None
    assert pooled["n_seeds"] == 2 and pooled["n_free_trace_wrong"] == 2 and pooled["free_accuracy"] == 30.0
    assert format_share(pooled, "gain", "gain_ci_low", "gain_ci_high") == "25.0"
    assert format_share(pooled, "accuracy", "accuracy_ci_low", "accuracy_ci_high").startswith("60.0 [")
    with pytest.raises(ValueError, match="no per-seed"):
        pool_probe_seeds([])
    with pytest.raises(ValueError, match="more than one run"):
        pool_probe_seeds([rows[0], {**rows[1], "probe": "filler"}])


def test_one_seed_of_a_replicated_table_keeps_no_made_up_interval() -> None:
    table = replicate_probe_measures(replicated_runs(seeds=(1,)), answer_rules={"bAbI": "babi"}, n_boot=1000)
    pooled = pooled_probe_rows(table)
    assert pooled.height == 4 and pooled["n_seeds"].to_list() == [1] * 4
    assert pooled["accuracy_ci_low"].is_null().all() and pooled["accuracy"].is_not_null().all()


def test_tables_and_figure_show_the_pooled_rows(tmp_path: Path) -> None:
    table = replicate_probe_measures(replicated_runs(), answer_rules={"bAbI": "babi"}, n_boot=1000)
    assert pooled_probe_rows(table).height == 4 and probe_seed_count(table) == 3
    tex = probes_latex(table, caption="C", label="tab:probes")
    body = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert len(body) == 1 + 4  # the head, then one row per (run, probe): the pooled rows
    assert probes_latex(table.to_dicts(), caption="C", label="tab:probes") == tex
    pooled_acc = pooled_probe_rows(table)["accuracy"][0]
    assert f"{pooled_acc:.1f} [" in body[1]
    plot_probes(table, tmp_path / "a.png", dataset="bAbI")
    plot_probes(table, tmp_path / "b.png", dataset="bAbI")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    one = run_probe_measures(
        {k[:3]: v for k, v in replicated_runs(seeds=(1,)).items()}, answer_rules={"bAbI": "babi"},
        seed=0, n_boot=1000,
    )  # fmt: skip
    assert pooled_probe_rows(one) is one and probe_seed_count(one) == 1  # one seed: as it is
    plot_probes(one, tmp_path / "c.png", dataset="bAbI")
    assert (tmp_path / "c.png").read_bytes() != (tmp_path / "a.png").read_bytes()


def _demo() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))


def test_probe_draw_seed_is_the_runs_in_a_replicated_study() -> None:
    config = _demo()
    config["probing"]["seed"] = 5
    validate_config(config)
    assert probe_draw_seed(config, 42) == 5  # one seed: probing.seed, as before
    config = copy.deepcopy(config)
    config["seeds"] = [1, 2]
    assert [probe_draw_seed(config, s) for s in (1, 2)] == [1, 2]


# ---------------------------------------------------------------- the plan


def _dry_run(config: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "config.yaml"
    config["results"] = str(tmp_path / "results")
    path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "all", "-n",
           "--configfile", str(path), "--directory", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def _counts(stdout: str) -> dict[str, int]:
    block = stdout.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def _probe_wildcards(stdout: str) -> list[str]:
    jobs = [j for j in stdout.split("\nrule ") if j.startswith("probe:")]
    return sorted(re.search(r"wildcards: (.*)", j).group(1) for j in jobs)


def test_a_two_seed_study_probes_every_seeds_run(tmp_path: Path) -> None:
    config = _demo()
    config["seeds"] = [1, 2]
    out = _dry_run(config, tmp_path)
    counts = _counts(out)
    # bAbI (probing.datasets) x tiny x the two trace settings x two seeds
    assert counts["probe"] == counts["probe_scores"] == 1 * 1 * 2 * 2
    assert counts["probe_tables"] == 1 and counts["probe_figure"] == 1
    assert _probe_wildcards(out) == [
        f"dataset=bAbI, model=tiny, setting={s}, seed={seed}" for s in ("correct", "incorrect") for seed in (1, 2)
    ]
    results = tmp_path / "results"
    for setting in ("correct", "incorrect"):
        for seed in (1, 2):
            run = results / "bAbI" / "tiny" / setting / "seeds" / str(seed)
            for probe in config["probes"]:
                assert f"{run}/probes/{probe}/scores.parquet" in out
            assert f"{run}/adapter, {run}/predictions.parquet" in out  # its own adapter and free run
            assert f"logs/probe/bAbI/tiny/{setting}/seeds/{seed}.log" in out
    assert f"{results}/bAbI/tiny/correct/probes/" not in out


def test_one_seed_keeps_the_flat_probe_paths(tmp_path: Path) -> None:
    out = _dry_run(_demo(), tmp_path)
    assert _counts(out)["probe"] == 2
    assert _probe_wildcards(out) == [f"dataset=bAbI, model=tiny, setting={s}" for s in ("correct", "incorrect")]
    assert f"{tmp_path}/results/bAbI/tiny/correct/probes/gold/predictions.parquet" in out
    assert "/seeds/" not in out
