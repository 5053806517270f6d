"""The extended study (config/extended.yaml): the paper's grid with every corruption scheme and
three seeds; models switched off with ``enabled: false`` are planned nowhere."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracekd.config import (
    ConfigError,
    enabled_models,
    load_config,
    model_entry,
    model_resources,
    probed_runs,
    validate_config,
)

ROOT = Path(__file__).resolve().parents[1]
EXTENDED = ROOT / "config" / "extended.yaml"
SCHEMES = ["wrong-category", "wrong-facts", "facts-25", "facts-50", "facts-75", "swapped",
           "wrong-answer", "filler"]  # fmt: skip


def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_extended_study_is_the_paper_grid_with_every_scheme_and_three_seeds() -> None:
    config = load_config(EXTENDED)
    paper = load_config(ROOT / "config" / "config.yaml")
    assert config["datasets"] == paper["datasets"]
    assert {k: model_entry(config, k) for k in ("llama", "qwen")} == {
        k: model_entry(paper, k) for k in ("llama", "qwen")
    }
    names = [s["name"] for s in config["settings"]]
    assert names == ["prompt", "vanilla", "correct", "incorrect", *SCHEMES]
    assert config["settings"][:4] == paper["settings"]
    assert config["seeds"] == [1, 2, 3] and config["results"] == "results/extended"
    for key in ("training", "inference", "probes", "probing", "resources"):
        assert config[key] == paper[key], key
    # the 8B models are there, switched off
    assert enabled_models(config) == ["llama", "qwen"]
    assert config["models"]["llama8b"]["name_or_path"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert config["models"]["qwen8b"]["name_or_path"] == "Qwen/Qwen3-8B"
    assert len(probed_runs(config)) == 3 * 2 * 10


def test_an_8b_model_is_one_line_away_with_its_own_resources() -> None:
    text = EXTENDED.read_text(encoding="utf-8")
    assert text.count("    enabled: false\n") == 2
    config = yaml.safe_load(text.replace("    enabled: false\n", "    enabled: true\n", 1))
    validate_config(config)
    assert enabled_models(config) == ["llama", "qwen", "llama8b"]
    train = model_resources(config, "llama8b", "train")
    assert train["mem_mb"] >= 64000 and train["runtime"] > model_resources(config, "llama", "train")["runtime"]
    assert model_resources(config, "qwen8b", "predict")["mem_mb"] >= 64000


def test_enabled_defaults_to_true_and_stays_out_of_the_jobs_parameters() -> None:
    config = _read(ROOT / "config" / "demo.yaml")
    validate_config(config)
    assert config["models"]["tiny"]["enabled"] is True and enabled_models(config) == ["tiny"]
    assert "enabled" not in model_entry(config, "tiny")
    assert model_entry(config, "tiny") == {k: v for k, v in config["models"]["tiny"].items() if k != "enabled"}


def test_every_model_disabled_is_refused() -> None:
    config = _read(ROOT / "config" / "demo.yaml")
    config["models"]["tiny"]["enabled"] = False
    with pytest.raises(ConfigError, match="every model is disabled"):
        validate_config(config)
    config = _read(ROOT / "config" / "demo.yaml")
    config["models"]["tiny"]["enabled"] = "no"
    with pytest.raises(ConfigError, match=r"models\.tiny\.enabled"):
        validate_config(config)


def _job_counts(config_path: Path, tmp_path: Path) -> tuple[dict[str, int], str]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "all", "-n",
           "--configfile", str(config_path), "--directory", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    block = proc.stdout.split("Job stats:", 1)[1]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}
    return counts, proc.stdout


def test_the_extended_plan_with_the_8b_models_off_and_on(tmp_path: Path) -> None:
    off, out = _job_counts(EXTENDED, tmp_path)
    # 3 datasets x 2 models x 12 settings x 3 seeds; 11 trained, 10 of them trace settings
    assert off["predict"] == off["score"] == 3 * 2 * 12 * 3
    assert off["train"] == 3 * 2 * 11 * 3 and off["probe"] == off["probe_scores"] == 3 * 2 * 10 * 3
    assert off["pool_seeds"] == off["confusion"] == 3 * 2 * 12
    assert off["traces_seed"] == 3 * 9 * 3 and off["traces"] == 3 * 3
    assert off["corruptions"] == off["tables"] == off["probe_tables"] == 1
    assert off["dose_response"] == off["corruption_figure"] == off["probe_figure"] == 3
    assert "llama8b" not in out and "qwen8b" not in out
    config = _read(EXTENDED)
    for name in ("llama8b", "qwen8b"):
        config["models"][name]["enabled"] = True
    on_path = tmp_path / "extended-8b.yaml"
    on_path.write_text(yaml.safe_dump(config))
    on, out = _job_counts(on_path, tmp_path)
    for rule in ("predict", "score", "train", "probe", "probe_scores", "pool_seeds", "confusion"):
        assert on[rule] == 2 * off[rule], rule
    for rule in ("traces", "traces_seed", "tables", "corruptions", "confusion_grid", "probe_figure"):
        assert on[rule] == off[rule], rule
    jobs = [j for j in out.split("\nrule ") if j.startswith("train:") and "model=llama8b" in j]
    assert jobs and all("runtime=720" in j and "mem_mb=64000" in j for j in jobs)


def test_a_disabled_model_is_planned_nowhere(tmp_path: Path) -> None:
    config = _read(ROOT / "config" / "demo.yaml")
    config["results"] = str(tmp_path / "results")
    config["models"]["spare"] = copy.deepcopy(config["models"]["tiny"]) | {"enabled": False}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    counts, out = _job_counts(path, tmp_path)
    assert "spare" not in out and counts["build_model"] == 1 and counts["train"] == 3 * 3


def test_the_demo_extended_study_is_the_demos_babi_with_every_scheme_and_two_seeds() -> None:
    config = load_config(ROOT / "config" / "demo-extended.yaml")
    demo = load_config(ROOT / "config" / "demo.yaml")
    extended = load_config(EXTENDED)
    assert list(config["datasets"]) == ["bAbI"] and config["datasets"]["bAbI"] == demo["datasets"]["bAbI"]
    assert config["models"] == demo["models"] and config["seeds"] == [1, 2]
    assert config["settings"] == extended["settings"]
    assert config["results"] == "results/demo-extended"
    assert config["report"]["table2_dataset"] == "bAbI" and config["report"]["table3_datasets"] == ["bAbI"]
    assert len(probed_runs(config)) == 10
