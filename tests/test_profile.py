"""The SLURM profile and the rules' conda environments: GPU requests, known keys, one env per rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
#: resources Snakemake itself understands (the rest must be the SLURM plugin's)
SNAKEMAKE_RESOURCES = {"runtime", "mem_mb", "mem", "disk_mb", "tmpdir", "threads"}
#: the rules whose scripts import torch (every other rule runs in the light environment)
MODEL_RULES = {"build_model", "train", "predict", "probe"}


def rules_with_directive(directive: str) -> dict[str, str]:
    """{rule: the rule's text} for rules whose body has ``directive``."""
    found = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        for match in re.finditer(r"^rule (\w+):\n((?:    .*\n|\n)+)", smk.read_text(), re.M):
            if directive in match.group(2):
                found[match.group(1)] = match.group(2)
    return found


def test_every_gpu_rule_asks_for_one_a100() -> None:
    gpu_rules = set(rules_with_directive("gpu="))
    assert gpu_rules == {"train", "predict", "probe"}
    for rule in gpu_rules:
        resources = PROFILE["set-resources"][rule]
        assert resources["gpu"] == 1 and resources["gpu_model"] == "a100"
        assert resources["cpus_per_task"] > 0
        assert PROFILE["set-threads"][rule] == resources["cpus_per_task"]
        # memory and time are the config's, per model: a profile value would override them
        assert "runtime" not in resources and "mem_mb" not in resources


@pytest.mark.parametrize("name", ["config.yaml", "extended.yaml"])
def test_gpu_jobs_memory_and_time_come_from_the_cluster_configs(name: str) -> None:
    from tracekd.config import load_config, model_resources

    config = load_config(ROOT / "config" / name)
    for model in config["models"]:
        for stage in ("train", "predict"):
            resources = model_resources(config, model, stage)
            assert resources["mem_mb"] >= 32000 and resources["runtime"] >= 60
            assert resources["threads"] == PROFILE["set-threads"][stage]


def test_light_rules_ask_for_no_gpu() -> None:
    assert set(PROFILE["set-resources"]) == {"train", "predict", "probe"}
    assert "gpu" not in PROFILE["default-resources"]


def test_resource_keys_are_ones_the_plugin_reads() -> None:
    plugin = pytest.importorskip("snakemake_executor_plugin_slurm")
    source = "".join(p.read_text() for p in Path(plugin.__file__).parent.glob("*.py"))
    keys = set(PROFILE["default-resources"])
    for resources in PROFILE["set-resources"].values():
        keys |= set(resources)
    for key in sorted(keys - SNAKEMAKE_RESOURCES):
        assert f'"{key}"' in source, f"the SLURM plugin does not read resource {key!r}"


def test_profile_keys_are_snakemake_options() -> None:
    from snakemake.cli import get_argument_parser

    options = {opt for action in get_argument_parser()._actions for opt in action.option_strings}
    for key in PROFILE:
        assert f"--{key}" in options, f"profile key {key!r} is not a Snakemake option"
    assert PROFILE["executor"] == "slurm"
    assert PROFILE["retries"] >= 1 and PROFILE["rerun-incomplete"] is True


def test_every_profile_entry_says_what_to_edit_or_why() -> None:
    text = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    entries = [line for line in text.splitlines() if re.match(r"^\s*[\w-]+:\s*\S", line)]
    assert entries and all("#" in line for line in entries), [e for e in entries if "#" not in e]
    assert "EDIT" in PROFILE["default-resources"]["slurm_account"]


def test_every_rule_names_a_conda_env_that_exists() -> None:
    scripted = rules_with_directive("script:")
    for name, body in scripted.items():
        match = re.search(r'conda:\n\s+"\.\./(envs/[\w.]+)"', body)
        assert match, f"rule {name} has no conda environment"
        assert (ROOT / match.group(1)).exists()
        # rules that import torch use the model environment; the rest the light one
        expected = "envs/gpu.yaml" if name in MODEL_RULES else "envs/tracekd.yaml"
        assert match.group(1) == expected
