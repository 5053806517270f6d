"""Tests of config validation: schema errors named by dotted path, cross-field checks, lookups."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracekd.config import (
    ConfigError,
    load_config,
    merged_training,
    setting_by_name,
    to_setting,
    validate_config,
)
from tracekd.traces import Setting

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
DEMO = CONFIG_DIR / "demo.yaml"
PAPER = CONFIG_DIR / "config.yaml"


@pytest.fixture(scope="module")
def demo_raw() -> dict[str, Any]:
    return yaml.safe_load(DEMO.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def paper_raw() -> dict[str, Any]:
    return yaml.safe_load(PAPER.read_text(encoding="utf-8"))


def _invalid(raw: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> str:
    config = copy.deepcopy(raw)
    change(config)
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


@pytest.mark.parametrize("path", [DEMO, PAPER])
def test_shipped_configs_validate_and_fill_defaults(path: Path) -> None:
    config = load_config(path)
    assert config["inference"]["engine"] in ("transformers", "vllm")
    assert config["inference"]["gpu_memory_utilization"] == 0.85
    assert config["report"]["table3_datasets"] == ["MARCO", "bAbI"]
    assert config["training"]["keep_checkpoints"] is False
    assert config["training"]["max_steps"] == -1
    assert [s["name"] for s in config["settings"]] == ["prompt", "vanilla", "correct", "incorrect"]
    for setting in config["settings"]:
        assert "corruption" in setting and "seed" in setting
    babi = config["datasets"]["bAbI"]
    assert babi["sample"]["per_story"] == 1
    assert babi["sample"]["flagged"] == "drop"
    assert set(config["resources"]) == {"train", "predict"}


def test_demo_specifics() -> None:
    config = load_config(DEMO)
    assert config["inference"]["engine"] == "transformers"
    assert config["results"] == "results/demo"
    assert config["datasets"]["bAbI"]["source"]["synthetic"] is True
    assert config["training"]["max_length"] == 512


def test_paper_specifics() -> None:
    config = load_config(PAPER)
    assert config["inference"]["engine"] == "vllm"
    assert config["datasets"]["bAbI"]["sample"]["max"] == {"train": None, "test": 376}
    assert config["datasets"]["bAbI"]["source"]["synthetic"] is False
    assert len(config["datasets"]["bAbI"]["tasks"]) == 11
    for model in config["models"].values():
        assert model["quantization"] == "4bit" and model["lora"]["r"] == 16


@pytest.mark.parametrize(
    ("change", "dotted"),
    [
        (lambda c: c["training"].update(epochz=3), "training.epochz"),
        (lambda c: c["datasets"]["bAbI"].update(sampel={}), "datasets.bAbI.sampel"),
        (
            lambda c: c["datasets"]["bAbI"]["sample"].update(per_stroy=1),
            "datasets.bAbI.sample.per_stroy",
        ),
        (lambda c: c["models"]["tiny"].update(lora={"rank": 4}), "models.tiny.lora.rank"),
        (lambda c: c["models"]["tiny"]["training"].update(epochz=1), "models.tiny.training.epochz"),
        (
            lambda c: c["models"]["tiny"]["build"].update(hiden_size=8),
            "models.tiny.build.hiden_size",
        ),
        (lambda c: c["inference"].update(engin="vllm"), "inference.engin"),
        (lambda c: c.update(sed=1), "sed"),
    ],
)
def test_misspelt_key_names_its_dotted_path(demo_raw: dict, change: Callable, dotted: str) -> None:
    message = _invalid(demo_raw, change)
    assert f"{dotted}: unknown key" in message


@pytest.mark.parametrize(
    ("change", "dotted"),
    [
        (lambda c: c["training"].update(epochs="three"), "training.epochs"),
        (lambda c: c["models"]["tiny"].update(lora={"r": "x"}), "models.tiny.lora.r"),
        (lambda c: c["inference"].update(batch_size=0), "inference.batch_size"),
        (
            lambda c: c["datasets"]["bAbI"]["sample"].update(question="middle"),
            "datasets.bAbI.sample.question",
        ),
        (lambda c: c["datasets"]["bAbI"].update(tasks=["qa21"]), "datasets.bAbI.tasks.0"),
        (lambda c: c["settings"][3].update(corruption="shuffle"), "settings.3.corruption"),
        (lambda c: c.update(seed="42"), "seed"),
    ],
)
def test_wrong_type_names_its_path(demo_raw: dict, change: Callable, dotted: str) -> None:
    message = _invalid(demo_raw, change)
    # the dotted path heads an error line (the first one, or an indented further one)
    assert any(line.strip().startswith(f"{dotted}: ") for line in message.splitlines())


def test_paper_config_lora_typo(paper_raw: dict) -> None:
    message = _invalid(paper_raw, lambda c: c["models"]["llama"]["lora"].update(alhpa=32))
    assert "models.llama.lora.alhpa: unknown key" in message


def test_several_errors_are_listed(demo_raw: dict) -> None:
    def change(c: dict) -> None:
        c["training"]["epochz"] = 1
        c["inference"]["engin"] = "x"

    message = _invalid(demo_raw, change)
    assert "training.epochz" in message and "inference.engin" in message


def test_model_needs_exactly_one_source(demo_raw: dict) -> None:
    assert "models.tiny" in _invalid(demo_raw, lambda c: c["models"]["tiny"].pop("build"))
    both = _invalid(demo_raw, lambda c: c["models"]["tiny"].update(name_or_path="x"))
    assert "models.tiny" in both


def test_missing_required_section(demo_raw: dict) -> None:
    assert "settings" in _invalid(demo_raw, lambda c: c.pop("settings"))


def test_duplicate_setting_names(demo_raw: dict) -> None:
    message = _invalid(
        demo_raw, lambda c: c["settings"].append({"name": "correct", "target": "trace"})
    )
    assert "duplicate" in message and "correct" in message


def test_corruption_on_a_non_trace_setting(demo_raw: dict) -> None:
    message = _invalid(
        demo_raw,
        lambda c: c["settings"].append({"name": "x", "target": "answer", "corruption": "random"}),
    )
    assert "settings.4.corruption" in message


def test_4bit_needs_lora(demo_raw: dict) -> None:
    message = _invalid(demo_raw, lambda c: c["models"]["tiny"].update(quantization="4bit"))
    assert "models.tiny.lora" in message and "4-bit" in message


def test_synthetic_source_needs_stories(demo_raw: dict) -> None:
    message = _invalid(demo_raw, lambda c: c["datasets"]["bAbI"]["source"].pop("stories"))
    assert "datasets.bAbI.source.stories" in message


def test_synthetic_world_shape_is_checked(demo_raw: dict) -> None:
    source = lambda c: c["datasets"]["CoTemp"]["source"]  # noqa: E731
    message = _invalid(demo_raw, lambda c: source(c).update(facts_per_row={"min": 5, "max": 3}))
    assert "datasets.CoTemp" in message and "facts_per_row" in message
    message = _invalid(demo_raw, lambda c: source(c).update(precision="decade"))
    assert "datasets.CoTemp.source.precision" in message
    message = _invalid(demo_raw, lambda c: source(c).update(distractors="decoys"))
    assert "datasets.CoTemp.source.distractors" in message
    message = _invalid(demo_raw, lambda c: source(c).update(questions=0))
    assert "datasets.CoTemp.source.questions" in message
    message = _invalid(demo_raw, lambda c: c["datasets"]["MARCO"]["source"].update(passages=11))
    assert "datasets.MARCO.source.passages" in message


def test_source_needs_url_path_or_synthetic(demo_raw: dict) -> None:
    message = _invalid(demo_raw, lambda c: c["datasets"]["bAbI"]["source"].update(synthetic=False))
    assert "datasets.bAbI.source" in message


def test_trace_template_placeholders(demo_raw: dict) -> None:
    message = _invalid(
        demo_raw,
        lambda c: c["datasets"]["bAbI"].update(trace_template="{category} {facts} {facts}"),
    )
    assert "datasets.bAbI.trace_template" in message
    missing = _invalid(demo_raw, lambda c: c["datasets"]["bAbI"].update(trace_template="{facts}"))
    assert "datasets.bAbI.trace_template" in missing


def test_load_config_rejects_a_non_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(path)


def test_load_config_on_a_typo_file(tmp_path: Path, demo_raw: dict) -> None:
    config = copy.deepcopy(demo_raw)
    config["training"]["epochz"] = 2
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"training\.epochz"):
        load_config(path)


def test_merged_training_lets_a_model_override() -> None:
    config = load_config(DEMO)
    merged = merged_training(config, "tiny")
    assert merged["epochs"] == config["models"]["tiny"]["training"]["epochs"] != 3  # the model's
    assert merged["learning_rate"] == 0.003
    assert merged["max_length"] == 512  # the global block's value
    assert merged["keep_checkpoints"] is False  # a schema default of the global block
    assert config["training"]["epochs"] == 3  # the global block is not changed


def test_merged_training_without_overrides() -> None:
    config = load_config(PAPER)
    assert merged_training(config, "llama") == config["training"]
    config["models"]["llama"]["training"] = None
    assert merged_training(config, "llama") == config["training"]


def test_setting_lookup() -> None:
    config = load_config(PAPER)
    entry = setting_by_name(config, "incorrect")
    assert entry["corruption"] == "random" and entry["seed"] == 42
    entry["seed"] = 0  # a copy: the config is not changed
    assert setting_by_name(config, "incorrect")["seed"] == 42
    assert to_setting(setting_by_name(config, "incorrect")) == Setting(
        "incorrect", "trace", "random", 42
    )
    assert to_setting(setting_by_name(config, "prompt")) == Setting("prompt", "none", None, 0)
    with pytest.raises(ConfigError, match="no setting named 'nope'"):
        setting_by_name(config, "nope")
