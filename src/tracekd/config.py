"""Config lookups shared by the Snakefile, the scripts and the command line.

The JSON schema (workflow/schemas/config.schema.yaml, shipped with the package as
``tracekd/config.schema.yaml``) checks shapes, bounds and names and fills defaults; the checks
here are those a schema cannot express: the file itself (duplicate keys, alias expansion,
depth), numbers that are not finite, and cross-field rules.
"""

from __future__ import annotations

import copy
import io
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tracekd.datasets import get_dataset, registered, released_dataset
from tracekd.errors import RawFormatError
from tracekd.readers import decode_utf8
from tracekd.traces import Setting, TraceFormat, TraceTemplate

#: the schema shipped inside the package (a copy of workflow/schemas/config.schema.yaml, which
#: the Snakefile validates with; a test keeps the two identical), so an installed package finds it
SCHEMA_PATH = Path(__file__).resolve().with_name("config.schema.yaml")

#: most values a config may expand to: a YAML alias bomb is refused before anything walks it
MAX_CONFIG_NODES = 100_000

#: the one pattern of every name that becomes part of a path (datasets, models, settings,
#: reference entries): the schema's ``$defs/name``
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

#: deepest nesting of a config (the shipped ones are 6 deep)
MAX_CONFIG_DEPTH = 32

#: names that would collide with the workflow's own folders and files under ``results``
RESERVED_NAMES: Mapping[str, frozenset[str]] = {
    "datasets": frozenset({"benchmarks", "figures", "logs", "models", "reference", "tables"}),
    "models": frozenset({"raw", "traces"}),
}


class ConfigError(ValueError):
    """A config mistake, with the dotted path of the offending key."""


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"{key!r} given twice")
        self.key, self.line, self.first = key, line, first


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last,
    so a second ``datasets:`` block would silently replace the first)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *base" then overriding keys is what merge keys are for
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: the base class reports it
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise _DuplicateKeyError(key, line, first)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A config file's mapping, strictly read (no schema yet); every problem is a :class:`ConfigError`.

    Refused: a folder or a missing file, text that is not UTF-8 or YAML, a key given twice, a
    document that is not a mapping, nesting deeper than :data:`MAX_CONFIG_DEPTH`, and aliases
    expanding beyond :data:`MAX_CONFIG_NODES` values.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a config file")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: not a regular file")  # a pipe would be read forever
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    try:
        text = decode_utf8(data, str(path))
    except RawFormatError as err:
        raise ConfigError(f"{err.file}:{err.row}: not valid YAML: {err.message}") from None
    try:
        stream = io.StringIO(text)
        stream.name = str(path)  # YAML's messages then name the file
        config = yaml.load(stream, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except _DuplicateKeyError as err:
        raise ConfigError(
            f"{path}:{err.line}: {err.key}: key given twice in one mapping (first at line "
            f"{err.first}); the second would silently replace the first"
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {err.problem or err.context}\n{err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping")
    check_tree(config, source=str(path))
    return config


def check_config_files(paths: Iterable[str | Path]) -> None:
    """:func:`read_config_file` on each file: for the Snakefile, whose config Snakemake read
    itself (keeping the last of two equal keys, and sharing aliases unexpanded)."""
    for path in paths:
        read_config_file(path)


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read, validate (defaults filled) and check a config file outside Snakemake."""
    config = read_config_file(path)
    validate_config(config, schema_path, source=str(path))
    return config


def _located(source: str | None, text: str) -> str:
    return f"{source}: {text}" if source else text


def check_tree(config: Any, *, source: str | None = None) -> None:
    """Refuse what no schema keyword catches, wherever it is in ``config``, by dotted path.

    Counts every value as if YAML aliases were expanded, and stops at :data:`MAX_CONFIG_NODES`
    (4 KB of nested aliases can stand for billions of values: whatever walks them later, the
    schema validator or Snakemake, would take hours and all memory). Also refused: nesting
    deeper than :data:`MAX_CONFIG_DEPTH`, keys that are not strings, NaN and infinities (they
    pass every ``minimum``/``maximum``), and integers beyond 64 bits.
    """
    stack: list[tuple[Any, str, int]] = [(config, "", 0)]
    count = 1
    while stack:
        node, path, depth = stack.pop()
        where = path or "(top level)"
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(_located(source, f"{where}: nested deeper than {MAX_CONFIG_DEPTH} levels"))
        children: list[tuple[Any, str, int]] = []
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise ConfigError(_located(source, f"{where}: key {key!r} is not a string"))
                children.append((value, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(node, list):
            children = [(v, f"{path}.{i}" if path else str(i), depth + 1) for i, v in enumerate(node)]
        elif isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(_located(source, f"{where}: {node} is not a finite number"))
        elif isinstance(node, int) and not isinstance(node, bool) and not -(2**63) <= node < 2**63:
            raise ConfigError(_located(source, f"{where}: {node} does not fit in 64 bits"))
        count += len(children)
        if count > MAX_CONFIG_NODES:
            raise ConfigError(_located(
                source,
                f"{where}: the config expands to more than {MAX_CONFIG_NODES:,} values "
                "(YAML aliases repeated inside aliases?); refused",
            ))
        stack.extend(children)


def config_schema(schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """The workflow's config schema: the shared one (``schema_path``) with every registered
    dataset plug-in's own keys composed in.

    A dataset block is the shared keys plus, by its ``loader``, that plug-in's
    ``config_schema`` (``properties`` of the block, ``source`` of its source block): an
    ``if loader == ... then`` branch per plug-in, and ``unevaluatedProperties: false`` so a key
    no branch knows is still refused by name.
    """

    with open(schema_path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    dataset = schema["$defs"]["dataset"]
    dataset["properties"]["loader"]["enum"] = list(registered())
    dataset["properties"]["answer_rule"]["enum"] = list(registered())
    branches = []
    for loader in registered():
        fragment = get_dataset(loader).config_schema
        source = {
            "allOf": [{"$ref": "#/$defs/source"}],
            "properties": copy.deepcopy(dict(fragment.get("source", {}))),
            "unevaluatedProperties": False,
        }
        then: dict[str, Any] = {
            "properties": {**copy.deepcopy(dict(fragment.get("properties", {}))), "source": source}
        }
        if fragment.get("required"):
            then["required"] = list(fragment["required"])
        branches.append({"if": {"properties": {"loader": {"const": loader}}, "required": ["loader"]}, "then": then})
    dataset["allOf"] = branches
    dataset["unevaluatedProperties"] = False
    released = [get_dataset(n).released.name for n in registered() if get_dataset(n).released]
    schema["properties"]["reference"]["items"]["properties"]["dataset"]["enum"] = released
    release = schema["properties"]["paper_release"]["properties"]["releases"]["items"]
    release["properties"]["dataset"]["enum"] = released
    return schema


def _default_filling_validator(schema: Mapping[str, Any]) -> Any:
    """A validator that fills each ``default`` into the config as it validates (what
    ``snakemake.utils.validate(..., set_default=True)`` does, here on the composed schema; a
    default is copied, so no two blocks share one mutable value)."""
    import jsonschema
    from jsonschema import validators

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: Any, instance: Any, subschema: Any) -> Any:
        if isinstance(instance, dict):
            for name, value in properties.items():
                if "default" in value:
                    instance.setdefault(name, copy.deepcopy(value["default"]))
        yield from check_properties(validator, properties, instance, subschema)

    return validators.extend(base, {"properties": set_defaults})(schema)


def validate_config(
    config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH, *, source: str | None = None
) -> None:
    """Validate against the JSON schema, naming the offending key's dotted path; fill defaults.

    The schema is :func:`config_schema` (the shared keys and every dataset plug-in's). Errors
    are reported first in our words (``training.epochz: unknown key``), the first line naming
    ``source`` (the config file) and the key; then the schema's defaults are filled into
    ``config`` in place, and the cross-field checks run.
    """
    import jsonschema

    check_tree(config, source=source)  # first: nothing below may walk an alias bomb
    schema = config_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        (e for e in validator.iter_errors(config) if not _echo_of_a_branch_error(e)),
        key=lambda e: (len(e.absolute_path), str(e.absolute_path)),
    )
    if errors:
        lines = [_describe(e) for e in errors[:10]]
        more = f"\n  ({len(errors) - 10} more)" if len(errors) > 10 else ""
        raise ConfigError(_located(source, lines[0]) + "".join(f"\n  {line}" for line in lines[1:]) + more)
    try:
        _check_report(config)  # before defaults: only the datasets a user named
        _default_filling_validator(schema).validate(config)
        check_config(config)
    except ConfigError as err:
        raise ConfigError(_located(source, str(err))) from None


def _check_report(config: Mapping[str, Any]) -> None:
    report = config.get("report") or {}
    datasets = sorted(config["datasets"])
    if "table2_dataset" in report and report["table2_dataset"] not in datasets:
        raise ConfigError(
            f"report.table2_dataset: {report['table2_dataset']!r} is no configured dataset "
            f"(have {datasets}); the table would be empty"
        )
    for i, name in enumerate(report.get("table3_datasets", [])):
        if name not in datasets:
            raise ConfigError(
                f"report.table3_datasets.{i}: {name!r} is no configured dataset (have {datasets})"
            )


def _echo_of_a_branch_error(error: Any) -> bool:
    """An ``unevaluatedProperties`` error about keys a plug-in's branch knows: the branch
    failed on one of them (reported on its own), so its keys count as unevaluated too."""
    if error.validator != "unevaluatedProperties":
        return False
    return not set(error.instance) - _allowed_keys(error.schema, error.instance)


def _allowed_keys(schema: Mapping[str, Any], instance: Any) -> set[str]:
    """The keys an object schema knows: its ``properties``, those of the ``then`` branch whose
    ``if`` names this instance's loader, and a shared ``$ref``'s (a dataset's ``source``)."""
    allowed = set(schema.get("properties", {}))
    for branch in schema.get("allOf", []):
        loader = branch.get("if", {}).get("properties", {}).get("loader", {}).get("const")
        if "then" in branch and isinstance(instance, dict) and instance.get("loader") == loader:
            allowed |= set(branch["then"].get("properties", {}))
        if "$ref" in branch:  # the shared source keys, see config_schema
            allowed |= set(_shared_source_keys())
    return allowed


def _shared_source_keys() -> set[str]:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return set(yaml.safe_load(fh)["$defs"]["source"]["properties"])


def _describe(error: Any) -> str:
    """One schema error as ``dotted.path: what is wrong``."""
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        allowed = _allowed_keys(error.schema, error.instance)
        extra = sorted(set(error.instance) - allowed)
        keys = ", ".join(f"{path}.{k}" if error.absolute_path else k for k in extra)
        return f"{keys}: unknown key (misspelt?); allowed here: {sorted(allowed)}"
    if error.validator == "pattern" and error.validator_value == NAME_PATTERN:
        # a name that becomes a folder or file name (dataset, model, setting, reference); a
        # mapping key is named in the message only ("datasets...: " would read oddly)
        return (
            f"{path}: {error.instance!r} is not a plain name (letters, digits, '_' and '-', "
            "starting with a letter or digit, at most 64): it becomes a folder name"
        )
    if error.validator in ("oneOf", "anyOf") and error.context:
        # the branch of the value's own type says what is wrong inside it (e.g. a misspelt
        # key in a lora block): skip branches that merely reject the type, report the deepest
        inner = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
        if inner:
            return _describe(max(inner, key=lambda e: len(e.absolute_path)))
        first = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return f"{path}: {first.message}"
    return f"{path}: {error.message}"


def check_config(config: Mapping[str, Any]) -> None:
    """Cross-field checks: the results folder, unique and unreserved names, valid templates,
    each dataset plug-in's own checks, GPU-only options on GPU models."""

    _check_results(config.get("results", "results"))
    for key in ("settings", "reference"):
        names = [s["name"] for s in config.get(key, [])]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            what = "setting" if key == "settings" else "reference"
            raise ConfigError(f"{key}: duplicate {what} name(s) {dupes}")
    for key in ("datasets", "models", "settings", "reference"):
        entries = config.get(key) or []
        names = list(entries) if isinstance(entries, Mapping) else [e["name"] for e in entries]
        folded: dict[str, str] = {}
        for name in names:
            if name.lower() in folded:
                # one folder on a case-insensitive filesystem (macOS, Windows shares)
                raise ConfigError(
                    f"{key}: {folded[name.lower()]!r} and {name!r} differ only in case; they "
                    "would share a folder on a case-insensitive filesystem"
                )
            folded[name.lower()] = name
    for key, reserved in RESERVED_NAMES.items():
        for name in config[key]:
            if name.lower() in reserved:
                raise ConfigError(
                    f"{key}.{name}: reserved name (the workflow's own folders and files are "
                    f"{sorted(reserved)}); choose another"
                )
    for i, s in enumerate(config["settings"]):
        if s.get("corruption") and s["target"] != "trace":
            raise ConfigError(f"settings.{i}.corruption: only a 'trace' setting can be corrupted")
        if (s.get("corruption") == "facts") != (s.get("share") is not None):
            raise ConfigError(
                f"settings.{i}.share: setting {s['name']!r}: the facts scheme needs a share of the "
                "gold facts to replace, and no other scheme takes one"
            )
        if s.get("corruption") in NEEDS_ANOTHER_CATEGORY:
            for name, ds in config["datasets"].items():
                labels = get_dataset(ds["loader"]).categories
                if labels is not None and len(set(labels(ds))) < 2:
                    raise ConfigError(
                        f"settings.{i}.corruption: setting {s['name']!r} draws another category, "
                        f"but dataset {name!r} has only one ({list(labels(ds))})"
                    )
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
        plugin = get_dataset(ds["loader"])
        if plugin.check_config is not None:
            try:
                plugin.check_config(ds)
            except ValueError as err:
                raise ConfigError(f"datasets.{name}.{err}") from None
    for i, entry in enumerate(config.get("reference") or []):
        allowed = released_dataset(entry["dataset"]).released.variants
        if entry.get("variant", "paper") not in allowed:
            raise ConfigError(
                f"reference.{i}.variant: {entry['variant']!r} does not apply to {entry['dataset']}; "
                f"use one of {list(allowed)}"
            )
    release = config.get("paper_release")
    if release and release.get("decomposition") is not None:
        name = release["decomposition"]
        usable = sorted(
            n for n, d in config["datasets"].items() if get_dataset(d["loader"]).released is not None
        )
        if name not in usable:
            raise ConfigError(
                f"paper_release.decomposition: {name!r} is not a configured dataset whose outputs "
                f"the paper released (have {usable})"
            )
    for i, name in enumerate((config.get("probing") or {}).get("datasets") or []):
        if name not in config["datasets"]:
            raise ConfigError(
                f"probing.datasets.{i}: {name!r} is no configured dataset (have {sorted(config['datasets'])})"
            )
    if not enabled_models(config):
        raise ConfigError(
            f"models: every model is disabled (enabled: false: {sorted(config['models'])}); "
            "enable one, the study has nothing to run"
        )
    for name, model in config["models"].items():
        if model.get("quantization") == "4bit" and model.get("lora") is None:
            raise ConfigError(f"models.{name}.lora: 4-bit quantization needs a LoRA adapter (QLoRA)")


def _check_results(results: str) -> None:
    """The output folder: any folder but none (``""``) and the filesystem root."""
    if not results.strip():
        raise ConfigError("results: empty; give the folder that receives every output")
    if any(ord(c) < 32 or ord(c) == 127 for c in results):
        raise ConfigError(f"results: {results!r} holds a control character")
    if os.path.normpath(os.path.abspath(results)) in ("/", "//"):
        raise ConfigError(
            f"results: {results!r} is the filesystem root; give a folder such as 'results'"
        )


#: corruption schemes that put another category in the trace
NEEDS_ANOTHER_CATEGORY = frozenset({"random", "category"})


def study_seeds(config: Mapping[str, Any]) -> list[int]:
    """The study's replicate seeds: ``seeds``, or the one ``seed`` when none are listed."""
    return list(config.get("seeds") or [config["seed"]])


def replicated(config: Mapping[str, Any]) -> bool:
    """Whether each setting runs once per seed (``{setting}/seeds/{seed}/``): two seeds or more."""
    return len(study_seeds(config)) > 1


def corruption_seed(config: Mapping[str, Any], entry: Mapping[str, Any], seed: int) -> int:
    """The seed that draws a setting's corruption in the replicate of ``seed``: the replicate's
    own when the study replicates, else the setting's ``seed`` (today's single runs)."""
    return int(seed) if replicated(config) else int(entry.get("seed", 0))


def probe_draw_seed(config: Mapping[str, Any], seed: int) -> int:
    """The seed of the probes' per-row draws (a wrong category, non-gold facts, a swapped
    problem) in the run of ``seed``: the run's own when the study replicates (as a corrupted
    setting's corruption seed), else ``probing.seed``."""
    return int(seed) if replicated(config) else int((config.get("probing") or {}).get("seed", 0))


def replicate_setting(config: Mapping[str, Any], name: str, seed: int) -> dict[str, Any]:
    """Setting ``name``'s entry with the corruption seed of the replicate of ``seed``."""
    entry = setting_by_name(config, name)
    entry["seed"] = corruption_seed(config, entry, seed)
    return entry


def model_resources(config: Mapping[str, Any], model: str, stage: str) -> dict[str, Any]:
    """A train or predict job's threads, memory and time: ``resources.<stage>``, with the
    model's own ``resources.<stage>`` on top."""
    own = (config["models"][model].get("resources") or {}).get(stage) or {}
    return {**config["resources"][stage], **own}


def setting_by_name(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The config entry of setting ``name``."""
    for s in config["settings"]:
        if s["name"] == name:
            return dict(s)
    raise ConfigError(f"settings: no setting named {name!r}")


def to_setting(entry: Mapping[str, Any]) -> Setting:
    """A config setting entry as a :class:`~tracekd.traces.Setting`."""
    share = entry.get("share")
    return Setting(
        entry["name"],
        entry["target"],
        entry.get("corruption"),
        int(entry.get("seed", 0)),
        None if share is None else float(share),
    )


def chat_options(config: Mapping[str, Any], dataset: str, model: str, setting: str) -> dict[str, Any]:
    """How one (dataset, model, setting) talks to its model, for :class:`tracekd.model.chat.ChatFormat`.

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


def release_decomposition(config: Mapping[str, Any]) -> str | None:
    """The released name (e.g. ``CoTemp``) of the dataset whose decomposition judges the
    paper's released traces (``paper_release.decomposition``), or ``None``."""

    name = (config.get("paper_release") or {}).get("decomposition")
    if name is None:
        return None
    released = get_dataset(config["datasets"][name]["loader"]).released
    return released.name if released is not None else None


def display_names(config: Mapping[str, Any]) -> dict[str, str]:
    """The paper's name of each configured dataset (its plug-in's), for tables and figures."""

    return {name: get_dataset(ds["loader"]).display_name for name, ds in config["datasets"].items()}


def enabled_models(config: Mapping[str, Any]) -> list[str]:
    """The models of the study's grid, in config order: every model but those marked
    ``enabled: false`` (kept in the config, planned nowhere)."""
    return [name for name, model in config["models"].items() if model.get("enabled", True)]


def model_entry(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Model ``model``'s config entry as its jobs see it: without ``enabled``, which only
    decides whether the model is in the grid (so switching it changes no job's parameters)."""
    return {k: v for k, v in config["models"][model].items() if k != "enabled"}


def probed_runs(config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The (dataset, model, setting) runs the probes run on: every trained run whose target is
    a trace, of the datasets ``probing.datasets`` names (all when null) and the enabled models;
    none without probes."""
    if not config.get("probes"):
        return []
    wanted = (config.get("probing") or {}).get("datasets")
    datasets = [d for d in config["datasets"] if wanted is None or d in wanted]
    settings = [s["name"] for s in config["settings"] if s["target"] == "trace"]
    return [(d, m, s) for d in datasets for m in enabled_models(config) for s in settings]


def merged_training(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The global ``training`` block with the model's own overrides on top."""
    return {**config["training"], **(config["models"][model].get("training") or {})}


# ---------------------------------------------------------------- the config's reference page


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """The config's JSON schema with every dataset plug-in's keys (:func:`config_schema`), as
    the mapping :func:`config_reference` documents."""
    return config_schema(path)


def config_reference(schema: Mapping[str, Any]) -> str:
    """``config/README.md``: every config key with its type, default and description.

    Generated from the schema alone (``make config-docs``; a test compares the file with this
    text), so the page cannot drift from what validation accepts. A key's path is dotted;
    ``<name>`` stands for a key of the user's choosing (a dataset, a model) and ``[]`` for each
    item of a list. An object marked ``x-same-keys-as: KEY`` takes the keys of that top-level
    block and is one row, not a copy of its table.
    """
    rows = list(_reference_rows(schema, schema, "", set(schema.get("required", []))))
    top = [r for r in rows if "." not in r[0] and "[" not in r[0]]
    out = [
        "# Configuration",
        "",
        "<!-- generated by `make config-docs` from workflow/schemas/config.schema.yaml:"
        " edit the schema's descriptions, not this file -->",
        "",
        _one_line(schema.get("description", "")),
        "",
        *_reference_table(top),
    ]
    for key, _, _, description in top:
        below = [r for r in rows if r[0].startswith((f"{key}.", f"{key}["))]
        if below:
            out += ["", f"## `{key}`", "", _one_line(description), "", *_reference_table(below)]
    return "\n".join(out) + "\n"


def _reference_rows(
    schema: Mapping[str, Any], root: Mapping[str, Any], path: str, required: set[str]
) -> Iterable[tuple[str, str, str, str]]:
    """(path, type, default, description) of each property of ``schema``, then of its keys."""
    for key, sub in schema.get("properties", {}).items():
        node = _resolved(sub, root)
        where = f"{path}.{key}" if path else key
        if "default" in node:
            default = f"`{_json_text(node['default'])}`"
        else:
            default = "**required**" if key in required else "—"
        yield where, _type_text(node, root), default, _one_line(node.get("description", ""))
        if "x-same-keys-as" not in node:
            yield from _reference_children(node, root, where)


def _reference_children(
    node: Mapping[str, Any], root: Mapping[str, Any], path: str
) -> Iterable[tuple[str, str, str, str]]:
    """The rows below one key: its properties, its list items', its mapping values', and those
    of each object it may be instead (``oneOf``)."""
    if "properties" in node:
        yield from _reference_rows(node, root, path, set(node.get("required", [])))
    items = node.get("items")
    if isinstance(items, Mapping):
        yield from _reference_children(_resolved(items, root), root, f"{path}[]")
    values = node.get("additionalProperties")
    if isinstance(values, Mapping):
        yield from _reference_children(_resolved(values, root), root, f"{path}.<name>")
    for branch in node.get("oneOf", []):
        yield from _reference_children(_resolved(branch, root), root, path)
    for branch in node.get("allOf", []):  # a dataset plug-in's own keys (config_schema)
        loader = branch.get("if", {}).get("properties", {}).get("loader", {}).get("const")
        then = branch.get("then", {}).get("properties", {})
        if loader is None:
            continue
        own = {key: sub for key, sub in then.items() if key != "source"}
        source = then.get("source", {}).get("properties", {})
        for where, sub_path in ((own, path), (source, f"{path}.source")):
            for row in _reference_rows({"properties": where}, root, sub_path, set()):
                yield (row[0], row[1], row[2], f"(loader `{loader}`) {row[3]}")


def _resolved(node: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """``node`` with a local ``$ref`` replaced by its target, the node's own keys on top."""
    if "$ref" not in node:
        return dict(node)
    target: Any = root
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolved(target, root), **{k: v for k, v in node.items() if k != "$ref"}}


def _type_text(node: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """A key's type in words, with its allowed values (enum, range, pattern)."""
    if "x-same-keys-as" in node:
        return f"the keys of `{node['x-same-keys-as']}`"
    if "oneOf" in node and "type" not in node:
        texts = [_type_text(_resolved(b, root), root) for b in node["oneOf"]]
        if len(texts) == 2 and texts[1] == f"list of {texts[0]}":
            return f"{texts[0]}, or a list of them"
        return " or ".join(texts)
    kinds = node.get("type", "any")
    text = " or ".join(kinds) if isinstance(kinds, list) else kinds
    if text == "object" and isinstance(node.get("additionalProperties"), Mapping):
        value = _resolved(node["additionalProperties"], root)
        text = f"mapping of name → {_type_text(value, root)}"
    elif text == "array" and isinstance(node.get("items"), Mapping):
        text = f"list of {_type_text(_resolved(node['items'], root), root)}"
    limits = []
    if "enum" in node:
        limits.append("one of " + ", ".join(f"`{_json_text(v)}`" for v in node["enum"]))
    for word, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                       ("exclusiveMaximum", "<")):  # fmt: skip
        if word in node:
            limits.append(f"{sign} {node[word]}")
    if "pattern" in node:
        limits.append(f"matching `{node['pattern']}`")
    return f"{text} ({', '.join(limits)})" if limits else text


def _reference_table(rows: Iterable[tuple[str, str, str, str]]) -> list[str]:
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for path, kind, default, description in rows:
        cells = (f"`{path}`", kind, default, description)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
