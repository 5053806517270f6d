"""End-to-end: the smallest demo, the corruption study at its smallest, and a repeat of the demo
compared byte for byte (tests/conftest.py runs them); plus dry-run plans of the paper's config."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from tracekd.evaluate.score import score_predictions

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("prompt", "vanilla", "correct", "incorrect")
DATASETS = ("CoTemp", "MARCO", "bAbI")
#: the probes of the smallest demo, on bAbI's correct and incorrect runs
PROBES = ("gold", "filler")
RULES = {
    "CoTemp": {"answer_rule": "cotemp", "options": {"answer_variant": "cotempqa"}},
    "MARCO": {"answer_rule": "marco"},
    "bAbI": {"answer_rule": "babi"},
}


def snakemake(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run Snakemake on the project's Snakefile; fail the test with its output on error."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *args]
    proc = subprocess.run(cmd, cwd=cwd or ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def job_counts(stdout: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    counts = {}
    block = stdout.split("Job stats:", 1)[1]
    for line in block.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


def smallest_demo_config(results: Path) -> dict:
    """config/demo.yaml shrunk to a few dozen problems and a model of a few thousand weights."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["results"] = str(results)
    datasets = config["datasets"]
    datasets["bAbI"]["source"]["stories"] = {"train": 4, "test": 2}
    datasets["CoTemp"]["source"]["rows"] = 5  # per relation: 4 train, 1 test
    datasets["MARCO"]["source"]["rows"] = {"train": 12, "test": 6}
    config["models"]["tiny"]["build"].update(
        vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1,
    )
    config["models"]["tiny"]["training"].update(epochs=1, save_steps=1000, logging_steps=1)
    config["inference"]["max_new_tokens"] = 48
    config["probes"] = list(PROBES)  # two probes on bAbI's trace runs (probing.datasets)
    config["probing"]["max_new_tokens"] = 8
    return config


#: the corruption schemes the study run adds to the paper's settings
SCHEMES = (
    {"name": "wrong-category", "target": "trace", "corruption": "category"},
    {"name": "filler", "target": "trace", "corruption": "filler"},
)
#: the study run's seeds: every setting runs once per seed, under {setting}/seeds/{seed}/
SEEDS = (1, 2)
#: the study's settings whose traces are drawn per seed
CORRUPTED = ("wrong-category", "filler")
#: the study's settings (each trains on a trace, so each is probed): the schemes and correct,
#: their reference (the comparison with vanilla is the same code: tests/test_replicates.py)
STUDY_SETTINGS = TRACE_SETTINGS = ("correct", *CORRUPTED)


def study_config(results: Path) -> dict:
    """The corruption study at its smallest: the smallest demo's bAbI, correct (the schemes'
    reference) and two schemes, each over two seeds, probed with the demo's two probes."""
    config = smallest_demo_config(results)
    config["datasets"] = {"bAbI": config["datasets"]["bAbI"]}
    config["settings"] = [s for s in config["settings"] if s["name"] in STUDY_SETTINGS]
    config["settings"] += [dict(s) for s in SCHEMES]
    config["seeds"] = list(SEEDS)
    return config


#: the runs a repeat of the first run builds: bAbI's correct-trace run, probed (the SLURM run,
#: tests/test_slurm.py, or the local run ``second``); it has a job of every GPU rule
REPEAT_SETTINGS = ("correct",)


def repeat_targets(results: Path) -> list[str]:
    """What a repeat of the first run builds, in its config: bAbI's :data:`REPEAT_SETTINGS` runs
    scored and the correct run probed; so every dataset's data and traces too, since the tiny
    model learns its tokenizer from them all (26 jobs)."""
    runs = [results / "bAbI" / "tiny" / setting for setting in REPEAT_SETTINGS]
    return [str(run / "confusion.json") for run in runs] + [
        str(runs[-1] / "probes" / PROBES[0] / "scores.parquet")
    ]


def run_files(results: Path) -> list[Path]:
    """Every data, trace, model and score file under ``results`` (parquet, JSON, safetensors),
    relative to it; not training_metrics.json, which records the run's wall time and tokens/s."""
    return sorted(p.relative_to(results) for p in results.rglob("*")
                  if p.suffix in {".parquet", ".json", ".safetensors"}
                  and p.name != "training_metrics.json")  # fmt: skip


def e2e_command(name: str, work: Path) -> tuple[list[str], dict[str, str]]:
    """The command and environment of end-to-end run ``name`` in folder ``work`` (tests/conftest.py
    starts them; each writes ``work/config.yaml`` and its results under ``work/results``):

    - ``first``, the smallest demo, target ``all``, with a released predictions file to score and
      every light rule's job run with the model stack unimportable (tests/test_stack.py);
    - ``second``, the same config again, building :func:`repeat_targets` (where the SLURM test
      cluster cannot start; elsewhere the SLURM run is the repeat: tests/conftest.py);
    - ``study``, :func:`study_config`.
    """
    from test_stack import light_rules_blocked, released_outputs  # tests/ is on sys.path

    results = work / "results"
    env = dict(os.environ)
    if name == "study":
        config, targets = study_config(results), ["all"]
    elif name == "first":
        config, targets = smallest_demo_config(results), ["all"]
        reference = released_outputs(work / "outputs_overlap_Model.json")
        config["reference"] = [{"name": "elsewhere", "path": str(reference), "dataset": "CoTemp"}]
        env.update(light_rules_blocked(work / "site", log=work / "light-jobs.txt"))
    elif name == "second":
        config, targets = smallest_demo_config(results), repeat_targets(results)
    else:
        raise ValueError(f"no end-to-end run {name!r}")
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    # the greedy scheduler: the ILP one's solver costs a run of this size ~10% more CPU, and the
    # order jobs run in changes no output (the determinism checks show it)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *targets,
           "--configfile", "config.yaml", "--cores", "2", "--scheduler", "greedy",
           "--directory", str(work)]
    return cmd, env


@pytest.mark.slow
def test_every_output_has_its_schema(demo_run: Path) -> None:
    results = demo_run
    for dataset in DATASETS:
        decomposed = pl.read_parquet(results / dataset / "decomposed.parquet")
        assert decomposed.schema["context"] == pl.List(pl.String)
        assert decomposed.schema["relevant"] == pl.List(pl.Int64)
        assert decomposed.schema["answers"] == pl.List(pl.String)
        assert {"id", "split", "category", "question"} <= set(decomposed.columns)
        assert decomposed["id"].is_unique().all()
        report = json.loads((results / dataset / "decomposition_report.json").read_text())
        assert sum(c["kept"] for c in report["per_category"].values()) == decomposed.height
        assert (results / dataset / "decomposition_report.md").read_text().startswith("# ")
        n_train = decomposed.filter(pl.col("split") == "train").height
        n_test = decomposed.height - n_train
        assert n_train > 0 and n_test > 0
        for setting in SETTINGS:
            traces = pl.read_parquet(results / dataset / "traces" / f"{setting}.parquet")
            assert traces.columns == [
                "id", "split", "setting", "prompt", "completion",
                "trace_category", "trace_facts", "trace_relevant", "corruption",
            ]
            assert traces.height == decomposed.height
            run = results / dataset / "tiny" / setting
            predictions = pl.read_parquet(run / "predictions.parquet")
            assert predictions.height == n_test
            assert {"output", "pred_category", "pred_facts", "pred_answer", "parse_status",
                    "trace_tokens"} <= set(predictions.columns)
            scores = pl.read_parquet(run / "scores.parquet")
            assert scores["id"].to_list() == predictions["id"].to_list()
            assert scores.schema["answer_correct"] == pl.Boolean
            assert scores.schema["trace_correct"] == pl.Boolean
            confusion = json.loads((run / "confusion.json").read_text())
            assert confusion["n"] == n_test == sum(confusion["counts"].values())
            assert (run / "confusion.png").read_bytes()[:4] == b"\x89PNG"
            if setting != "prompt":
                metrics = json.loads((run / "adapter" / "training_metrics.json").read_text())
                assert metrics["examples"] == n_train and metrics["loss_curve"]
                assert not list((run / "adapter").glob("tokenizer*"))

    summary = pl.read_csv(results / "tables" / "summary.csv")
    assert summary.height == len(DATASETS) * len(SETTINGS)
    table = (results / "tables" / "table3.tex").read_text()
    assert table.count("\\\\") >= 4 + 2 and "\\toprule" in table and "\\bottomrule" in table


@pytest.mark.slow
def test_scores_agree_with_predictions(demo_run: Path) -> None:
    for dataset in DATASETS:
        for setting in SETTINGS:
            run = demo_run / dataset / "tiny" / setting
            predictions = pl.read_parquet(run / "predictions.parquet")
            assert_frame_equal(
                pl.read_parquet(run / "scores.parquet"),
                score_predictions(predictions, **RULES[dataset]),
            )
            confusion = json.loads((run / "confusion.json").read_text())
            scores = pl.read_parquet(run / "scores.parquet")
            both = scores.filter(pl.col("answer_correct") & pl.col("trace_correct")).height
            assert confusion["counts"]["trace_correct_answer_correct"] == both


@pytest.mark.slow
def test_same_config_and_seed_give_identical_files(demo_run: Path, repeat_run: Path) -> None:
    first = demo_run
    files = run_files(repeat_run)
    # every dataset's data and traces and CoTemp's four raw files; the tiny model (five files);
    # bAbI's correct run (weights: three files; predictions, scores, confusion) and its probes
    # (predictions, scores)
    assert len(files) == len(DATASETS) * (1 + 4 + 1) + 4 + 5 + len(REPEAT_SETTINGS) * (3 + 3) \
        + len(PROBES) * 2, files
    different = [str(p) for p in files if (first / p).read_bytes() != (repeat_run / p).read_bytes()]
    assert not different, different


@pytest.mark.slow
def test_probes_end_to_end(demo_run: Path) -> None:
    first = demo_run
    for setting in ("correct", "incorrect"):
        run = first / "bAbI" / "tiny" / setting
        free = pl.read_parquet(run / "predictions.parquet")
        traces = pl.read_parquet(first / "bAbI" / "traces" / f"{setting}.parquet")
        completions = dict(pl.read_parquet(first / "bAbI" / "traces" / "correct.parquet")
                           .select("id", "completion").iter_rows())  # fmt: skip
        assert traces.height > 0
        for probe in PROBES:
            predictions = pl.read_parquet(run / "probes" / probe / "predictions.parquet")
            scores = pl.read_parquet(run / "probes" / probe / "scores.parquet")
            assert predictions["id"].to_list() == scores["id"].to_list() == free["id"].to_list()
            assert set(free.columns) < set(predictions.columns)
            assert set(predictions["probe"]) == {probe} == set(scores["probe"])
            assert (predictions["output_tokens"] <= 8).all()
            if probe == "gold":  # the forced turn is the correct setting's completion up to the answer
                for row in predictions.iter_rows(named=True):
                    assert completions[row["id"]].startswith(row["forced_text"])
                    assert row["forced_text"].endswith("<answer>")
                # its trace scores correct (unless the model wrote a think block of its own)
                own = predictions["generated"].str.contains("<think>|</think>")
                assert scores.filter(~own)["trace_correct"].all()
    table = pl.read_csv(first / "tables" / "probes.csv")
    assert table.height == 2 * len(PROBES) and set(table["probe"]) == set(PROBES)
    assert table["gain"].is_null().to_list() == [p != "gold" for p in table["probe"]]
    assert "\\toprule" in (first / "tables" / "probes.tex").read_text()
    assert (first / "figures" / "probes_bAbI.png").read_bytes()[:4] == b"\x89PNG"
    assert not (first / "figures" / "probes_CoTemp.png").exists()


def test_paper_grid_dry_run_plans_three_datasets_two_models_four_settings() -> None:
    out = snakemake("-n", "all").stdout
    counts = job_counts(out)
    assert counts["train"] == 3 * 2 * 3 and counts["predict"] == 3 * 2 * 4
    # every probe of every trace-trained run, in one job per run
    assert counts["probe"] == counts["probe_scores"] == 3 * 2 * 2
    assert counts["probe_tables"] == 1 and counts["probe_figure"] == 3
    assert counts["score"] == 24 and counts["confusion"] == 24
    assert counts["traces"] == 3 * 4 and counts["raw_data"] == 3 and counts["decompose"] == 3
    assert "build_model" not in counts  # real models are downloaded, not built


def test_one_figure_plans_only_what_it_needs() -> None:
    out = snakemake("-n", "results/bAbI/llama/incorrect/confusion.png").stdout
    assert job_counts(out) == {
        "raw_data": 1, "decompose": 1, "traces": 1, "train": 1, "predict": 1, "score": 1,
        "confusion": 1, "total": 7,
    }
    assert "wildcards: dataset=bAbI, model=llama, setting=incorrect" in out


def test_gpu_rules_carry_gpu_resources_on_the_paper_config() -> None:
    out = snakemake("-n", "-p", "all").stdout
    jobs = out.split("\nrule ")
    gpu_jobs = [j for j in jobs if j.startswith(("train:", "predict:"))]
    assert gpu_jobs and all(re.search(r"\bgpu=1\b", j) for j in gpu_jobs)


def test_a_misspelt_config_key_fails_before_any_job(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["training"]["epochz"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--configfile", str(path), "-n", "--directory", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "training.epochz" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


# ---------------------------------------------------------------- seeds and corruption schemes


def seed_runs(results: Path, setting: str, dataset: str = "bAbI") -> list[Path]:
    """The run folders of one (dataset, setting) of the study run, one per seed."""
    return [results / dataset / "tiny" / setting / "seeds" / str(seed) for seed in SEEDS]


@pytest.mark.slow
def test_every_setting_runs_once_per_seed(study_run: Path) -> None:
    results = study_run
    n_test = pl.read_parquet(results / "bAbI" / "decomposed.parquet").filter(
        pl.col("split") == "test").height  # fmt: skip
    for setting in STUDY_SETTINGS:
        folder = results / "bAbI" / "tiny" / setting
        assert sorted(p.name for p in (folder / "seeds").iterdir()) == [str(s) for s in SEEDS]
        assert not (folder / "predictions.parquet").exists()  # only the seeds' runs predict
        assert not (folder / "adapter").exists()
        for seed, run in zip(SEEDS, seed_runs(results, setting), strict=True):
            predictions = pl.read_parquet(run / "predictions.parquet")
            assert predictions.height == n_test
            scores = pl.read_parquet(run / "scores.parquet")
            assert scores["id"].to_list() == predictions["id"].to_list()
            assert "seed" not in scores.columns
            metrics = json.loads((run / "adapter" / "training_metrics.json").read_text())
            assert metrics["loss_curve"]
            log = results / "logs" / "train" / "bAbI" / "tiny" / setting / "seeds" / f"{seed}.log"
            assert log.exists()
        confusion = json.loads((folder / "confusion.json").read_text())  # the seeds pooled
        assert confusion["n"] == n_test * len(SEEDS) == sum(confusion["counts"].values())
    for setting in CORRUPTED:  # a corrupted setting's traces are drawn per seed
        drawn = [pl.read_parquet(results / "bAbI" / "traces" / "seeds" / str(s) / f"{setting}.parquet")
                 for s in SEEDS]  # fmt: skip
        assert all(t.columns == drawn[0].columns and t.height == drawn[0].height for t in drawn)
        assert drawn[0]["corruption"].is_not_null().all()
        assert drawn[0]["id"].to_list() == drawn[1]["id"].to_list()
        if setting != "filler":  # filler draws nothing: dots of the gold trace's length
            assert drawn[0]["completion"].to_list() != drawn[1]["completion"].to_list()
    assert "\\toprule" in (results / "tables" / "corruptions.tex").read_text()
    assert (results / "figures" / "corruptions_bAbI.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_pooled_scores_are_the_seeds_scores_with_a_seed_column(study_run: Path) -> None:
    from tracekd.evaluate.seeds import pool_seeds

    for setting in STUDY_SETTINGS:
        per_seed = [pl.read_parquet(run / "scores.parquet") for run in seed_runs(study_run, setting)]
        pooled = pl.read_parquet(study_run / "bAbI" / "tiny" / setting / "scores.parquet")
        assert pooled.columns == ["seed", *per_seed[0].columns]
        assert pooled.schema["seed"] == pl.Int64
        assert pooled["seed"].to_list() == [
            s for s, f in zip(SEEDS, per_seed, strict=True) for _ in range(f.height)
        ]
        assert_frame_equal(pooled, pool_seeds(per_seed, list(SEEDS)))
    summary = pl.read_csv(study_run / "tables" / "summary.csv")
    pooled_rows = summary.filter(pl.col("seed").is_null())
    assert pooled_rows.height == len(STUDY_SETTINGS)  # a row per seed and a pooled row each
    assert summary.height == len(STUDY_SETTINGS) * (len(SEEDS) + 1)
    assert (pooled_rows["n_seeds"] == len(SEEDS)).all()
    assert sorted(summary["seed"].drop_nulls().unique().to_list()) == list(SEEDS)
    # each scheme against correct, items paired within a seed; nothing against an absent vanilla
    schemes = pooled_rows.filter(pl.col("setting").is_in(CORRUPTED))
    assert schemes["vs_correct_diff"].is_not_null().all()
    assert schemes["vs_correct_b01"].is_not_null().all()
    assert pooled_rows["vs_vanilla_diff"].is_null().all()
    reference = pooled_rows.filter(pl.col("setting") == "correct")
    assert reference["vs_correct_diff"].is_null().all()


@pytest.mark.slow
def test_probes_run_on_every_seeds_run(study_run: Path) -> None:
    from tracekd.evaluate.probes import PROBES_SEEDS_SCHEMA
    from tracekd.evaluate.seeds import PERCENT, t_interval
    from tracekd.traces.probes import PROBE_COLUMNS

    for setting in TRACE_SETTINGS:
        assert not (study_run / "bAbI" / "tiny" / setting / "probes").exists()  # per seed only
        for run in seed_runs(study_run, setting):
            free = pl.read_parquet(run / "predictions.parquet")
            free_scores = pl.read_parquet(run / "scores.parquet")
            for probe in PROBES:
                predictions = pl.read_parquet(run / "probes" / probe / "predictions.parquet")
                scores = pl.read_parquet(run / "probes" / probe / "scores.parquet")
                assert predictions["id"].to_list() == scores["id"].to_list() == free["id"].to_list()
                assert set(free.columns) < set(predictions.columns)
                assert set(PROBE_COLUMNS) <= set(predictions.columns)
                assert scores.columns == [*free_scores.columns, *PROBE_COLUMNS]
                assert set(scores["probe"]) == {probe}
    table = pl.read_parquet(study_run / "tables" / "probes.parquet")
    assert table.schema == pl.Schema(PROBES_SEEDS_SCHEMA)
    per_seed = table.filter(pl.col("seed").is_not_null())
    pooled = table.filter(pl.col("seed").is_null())
    assert per_seed.height == len(TRACE_SETTINGS) * len(PROBES) * len(SEEDS)
    assert set(per_seed["seed"]) == set(SEEDS)
    assert set(per_seed["interval"]) == {"bootstrap over items"}
    assert pooled.height == len(TRACE_SETTINGS) * len(PROBES)
    assert set(pooled["n_seeds"]) == {len(SEEDS)}
    assert set(pooled["interval"]) == {"t-interval over seeds"}
    for row in pooled.iter_rows(named=True):
        seeds = per_seed.filter((pl.col("setting") == row["setting"]) & (pl.col("probe") == row["probe"]))
        mean, low, high = t_interval(seeds["accuracy"].to_list(), bounds=PERCENT)
        assert (row["accuracy"], row["accuracy_ci_low"], row["accuracy_ci_high"]) == (
            round(mean, 2), round(low, 2), round(high, 2))  # fmt: skip
    body = [line for line in (study_run / "tables" / "probes.tex").read_text().splitlines()
            if line.endswith("\\\\")]  # fmt: skip
    assert len(body) == 1 + pooled.height  # the head, then the pooled rows only
    assert (study_run / "figures" / "probes_bAbI.png").read_bytes()[:4] == b"\x89PNG"
