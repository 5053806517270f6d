"""Config lookups shared by the Snakefile, the scripts and the command line.

The JSON schema (workflow/schemas/config.schema.yaml) checks shapes and fills defaults; the
checks here are the cross-field ones a schema cannot express.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tracekd.traces import Setting, TraceFormat, TraceTemplate

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config mistake, with the dotted path of the offending key."""


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read, validate (defaults filled) and check a config file outside Snakemake."""
    with open(path, encoding="utf-8") as fh:
        try:
            config = yaml.safe_load(fh)
        except (yaml.YAMLError, UnicodeDecodeError) as err:  # YAML's text gives line, column
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping")
    validate_config(config, schema_path)
    return config


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> None:
    """Validate against the JSON schema, naming the offending key's dotted path; fill defaults.

    Errors are reported first in our words (``training.epochz: unknown key``); then Snakemake's
    validator fills the schema's defaults into ``config`` in place.
    """
    import jsonschema
    from snakemake.utils import validate

    with open(schema_path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise ConfigError("invalid config:\n" + "\n".join(_describe(e) for e in errors[:10]))
    validate(config, str(schema_path), set_default=True)
    check_config(config)


def _describe(error: Any) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        keys = ", ".join(f"{path}.{k}" if error.absolute_path else k for k in extra)
        return f"  {keys}: unknown key (misspelt?); allowed here: {sorted(error.schema.get('properties', {}))}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        # the branch of the value's own type says what is wrong inside it (e.g. a misspelt
        # key in a lora block): skip branches that merely reject the type, report the deepest
        inner = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
        if inner:
            return _describe(max(inner, key=lambda e: len(e.absolute_path)))
        first = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return f"  {path}: {first.message}"
    return f"  {path}: {error.message}"


def check_config(config: Mapping[str, Any]) -> None:
    """Cross-field checks: unique setting names, valid templates, GPU-only options on GPU models."""
    names = [s["name"] for s in config["settings"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"settings: duplicate setting name(s) {dupes}")
    for i, s in enumerate(config["settings"]):
        if s.get("corruption") and s["target"] != "trace":
            raise ConfigError(f"settings.{i}.corruption: only a 'trace' setting can be corrupted")
    for name, ds in config["datasets"].items():
        try:
            TraceTemplate(ds["trace_template"])
        except ValueError as err:
            raise ConfigError(f"datasets.{name}.trace_template: {err}") from None
        try:
            TraceFormat.from_config(ds)
        except ValueError as err:
            raise ConfigError(f"datasets.{name}.format: {err}") from None
        source = ds["source"]
        if not source.get("synthetic") and not (
            source.get("url") or source.get("hub") or source.get("local_path")
        ):
            raise ConfigError(
                f"datasets.{name}.source: give url (+ sha256), hub (+ revision), local_path, "
                "or synthetic: true"
            )
        size_key = "stories" if ds["loader"] == "babi" else "rows"
        if source.get("synthetic") and size_key not in source:
            raise ConfigError(f"datasets.{name}.source.{size_key}: a synthetic source needs its size")
        if ds["loader"] == "babi" and not ds.get("tasks"):
            raise ConfigError(f"datasets.{name}.tasks: a bAbI dataset needs its task list")
    for i, entry in enumerate(config.get("reference") or []):
        allowed = {"CoTemp": ("paper", "cotempqa"), "bAbI": ("paper", "babi")}[entry["dataset"]]
        if entry.get("variant", "paper") not in allowed:
            raise ConfigError(
                f"reference.{i}.variant: {entry['variant']!r} does not apply to {entry['dataset']}; "
                f"use one of {list(allowed)}"
            )
    release = config.get("paper_release")
    if release and release.get("decomposition") is not None:
        name = release["decomposition"]
        if config["datasets"].get(name, {}).get("loader") != "cotemp":
            raise ConfigError(
                f"paper_release.decomposition: {name!r} is not a configured CoTemp dataset "
                f"(datasets with loader cotemp: "
                f"{sorted(n for n, d in config['datasets'].items() if d['loader'] == 'cotemp')})"
            )
    for name, model in config["models"].items():
        if model.get("quantization") == "4bit" and model.get("lora") is None:
            raise ConfigError(f"models.{name}.lora: 4-bit quantization needs a LoRA adapter (QLoRA)")


def setting_by_name(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The config entry of setting ``name``."""
    for s in config["settings"]:
        if s["name"] == name:
            return dict(s)
    raise ConfigError(f"settings: no setting named {name!r}")


def to_setting(entry: Mapping[str, Any]) -> Setting:
    """A config setting entry as a :class:`~tracekd.traces.Setting`."""
    return Setting(entry["name"], entry["target"], entry.get("corruption"), int(entry.get("seed", 0)))


def chat_options(config: Mapping[str, Any], dataset: str, model: str, setting: str) -> dict[str, Any]:
    """How one (dataset, model, setting) talks to its model, for :class:`tracekd.chat.ChatFormat`.

    The model's ``system`` message and ``chat_template_kwargs``; the dataset's own
    ``chat_template_kwargs`` on top (the date line of the run being reproduced); ``chat: false``
    from a setting that prompts the bare text (the paper's prompted baseline).
    """
    model_cfg = config["models"][model]
    entry = setting_by_name(config, setting)
    kwargs = {
        **(model_cfg.get("chat_template_kwargs") or {}),
        **(config["datasets"][dataset].get("chat_template_kwargs") or {}),
    }
    return {
        "system": model_cfg.get("system"),
        "chat_template_kwargs": kwargs,
        "chat": bool(entry.get("chat", True)),
    }


def merged_training(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The global ``training`` block with the model's own overrides on top."""
    return {**config["training"], **(config["models"][model].get("training") or {})}
