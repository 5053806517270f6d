"""The catalog conventions: config/README.md generated from the schema (and current), every key
described, training.report_to, snakefmt-clean workflow files and the catalog's usage file."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracekd.config import (
    SCHEMA_PATH,
    ConfigError,
    config_reference,
    load_schema,
    merged_training,
    validate_config,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema()
DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())

#: every keyword the schema may use: anything else is a slip (e.g. a comma in a flow mapping's
#: unquoted description, which YAML reads as one more key)
KEYWORDS = {
    "$schema", "$defs", "$ref", "description", "type", "properties", "additionalProperties",
    "required", "default", "items", "enum", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "minItems", "uniqueItems", "minProperties", "propertyNames",
    "oneOf", "x-same-keys-as",
    # the dataset plug-ins' own keys, composed in by loader (tracekd.config.config_schema)
    "allOf", "if", "then", "const", "unevaluatedProperties",
}  # fmt: skip


def test_config_readme_is_the_generated_reference() -> None:
    assert (ROOT / "config" / "README.md").read_text() == config_reference(SCHEMA), (
        "config/README.md is out of date: run make config-docs"
    )


def test_the_package_ships_the_workflows_schema() -> None:
    assert SCHEMA == load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    assert SCHEMA_PATH.resolve() == (ROOT / "workflow" / "schemas" / "config.schema.yaml").resolve()


def _rows() -> list[list[str]]:
    rows = []
    for line in config_reference(SCHEMA).splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows.append(cells)
    return rows


def test_every_key_has_a_type_default_and_description() -> None:
    rows = _rows()
    keys = [r[0].strip("`") for r in rows]
    undescribed = [r[0] for r in rows if not r[3]]
    assert not undescribed, f"schema properties without a description: {undescribed}"
    # a few keys of each kind, where they belong
    for key in ("results", "datasets.<name>.source.hub.revision", "models.<name>.lora.r",
                "settings[].corruption", "training.report_to", "reference[].variant",
                "paper_release.releases[].files", "resources.train.runtime"):  # fmt: skip
        assert key in keys, key
    # a key two dataset plug-ins both define is one row per plug-in, each naming its loader
    documented = [(r[0], r[3].split(")")[0] if r[3].startswith("(loader") else "") for r in rows]
    assert len(documented) == len(set(documented)), "a key documented twice"
    assert "datasets.<name>.tasks" in keys and "datasets.<name>.relations" in keys
    row = {r[0].strip("`"): r for r in rows if not r[3].startswith("(loader")}
    assert row["training.epochs"][1:3] == ["number (> 0, ≤ 1000)", "`3`"]
    assert row["datasets.<name>.loader"][2] == "**required**"
    assert row["models.<name>.training"][1] == "the keys of `training`"


def test_the_schema_uses_only_known_keywords() -> None:
    odd = []

    def walk(node: Any, path: str, keys_are_names: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not keys_are_names and key not in KEYWORDS:
                    odd.append(f"{path}/{key}")
                # names follow "properties" and "$defs"; so do they in $defs/training_fields,
                # the anchor of the override keys
                if keys_are_names:
                    names = path == "/$defs" and key == "training_fields"
                else:
                    names = key in ("properties", "$defs")
                walk(value, f"{path}/{key}", names)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}", False)

    walk(SCHEMA, "", False)
    assert not odd, odd


def _strip(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in ("default", "description")}


def test_a_models_training_block_takes_exactly_the_keys_of_training() -> None:
    overrides = SCHEMA["$defs"]["training_overrides"]
    training = SCHEMA["$defs"]["training"]
    assert overrides["x-same-keys-as"] == "training"
    assert list(overrides["properties"]) == list(training["properties"])
    for key, node in training["properties"].items():
        assert _strip(overrides["properties"][key]) == _strip(node), key
        assert "default" not in overrides["properties"][key]  # unset keys follow training


# ---------------------------------------------------------------- training.report_to


def _validated(change: Any = None) -> dict[str, Any]:
    config = copy.deepcopy(DEMO)
    if change:
        change(config)
    validate_config(config)
    return config


def test_report_to_defaults_to_none() -> None:
    assert _validated()["training"]["report_to"] == "none"
    assert "report_to" not in (_validated()["models"]["tiny"]["training"])


@pytest.mark.parametrize("value", ["tensorboard", ["tensorboard"], ["wandb", "mlflow"], "none"])
def test_report_to_takes_a_name_or_a_list(value: str | list[str]) -> None:
    config = _validated(lambda c: c["training"].update(report_to=value))
    assert merged_training(config, "tiny")["report_to"] == value


def test_a_model_may_report_elsewhere() -> None:
    config = _validated(lambda c: c["models"]["tiny"]["training"].update(report_to="tensorboard"))
    assert config["training"]["report_to"] == "none"
    assert merged_training(config, "tiny")["report_to"] == "tensorboard"


@pytest.mark.parametrize("value", ["tensorbaord", ["tensorboard", "tensorboard"], 3, ["all"]])
def test_report_to_refuses_a_typo_repeats_and_all(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"training\.report_to"):
        _validated(lambda c: c["training"].update(report_to=value))


def test_every_tracker_is_one_transformers_knows() -> None:
    integrations = pytest.importorskip("transformers.integrations.integration_utils")
    trackers = set(SCHEMA["$defs"]["tracker"]["enum"]) - {"none"}
    assert trackers <= set(integrations.INTEGRATION_TO_CALLBACK)
    assert {"tensorboard", "wandb", "mlflow"} <= trackers


# ---------------------------------------------------------------- the workflow catalog


def test_snakefmt_leaves_the_workflow_files_unchanged() -> None:
    snakefmt = shutil.which("snakefmt") or str(Path(sys.executable).with_name("snakefmt"))
    if not Path(snakefmt).exists():
        pytest.skip("snakefmt is not installed (the test extra has it)")
    files = ["Snakefile", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "rules").glob("*.smk"))]
    proc = subprocess.run(
        [snakefmt, "--check", "--compact-diff", *files],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_the_catalog_file_says_how_to_run_the_workflow() -> None:
    usage = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["report"] is True
    assert set(usage["software-stack-deployment"]) == {"conda", "apptainer", "apptainer+conda"}
    assert usage["software-stack-deployment"]["conda"] is True
    flags = usage["mandatory-flags"]
    assert set(flags) == {"desc", "flags"} and flags["desc"].strip()


def test_lint_is_clean_on_every_shipped_config() -> None:
    for config in sorted((ROOT / "config").glob("*.yaml")):
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
             "--configfile", str(config), "--lint"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, f"{config.name}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
