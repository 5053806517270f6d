# Shared helpers: paths, wildcard constraints and config lookups used by every rule file.
import os
import re

from tracekd.config import (
    chat_options,
    display_names,
    merged_training,
    probed_runs,
    release_decomposition,
    setting_by_name,
)

R = config["results"]
DATASETS = list(config["datasets"])
MODELS = list(config["models"])
SETTINGS = [s["name"] for s in config["settings"]]
PROBES = list(config["probes"])
PROBED = probed_runs(config)  # the (dataset, model, setting) runs the probes run on


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    name=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    dataset=_alternatives(DATASETS),
    model=_alternatives(MODELS),
    setting=_alternatives(SETTINGS),


def setting_cfg(wildcards):
    return setting_by_name(config, wildcards.setting)


def model_cfg(wildcards):
    return config["models"][wildcards.model]


def chat_cfg(wildcards):
    """How this run's prompts meet the model (system message, template keywords, chat or not)."""
    return chat_options(config, wildcards.dataset, wildcards.model, wildcards.setting)


def base_model(wildcards):
    """Input: the locally built model folder, for models the workflow builds (the demo)."""
    if "build" in config["models"][wildcards.model]:
        return f"{R}/models/{wildcards.model}"
    return []


def base_path(wildcards):
    cfg = config["models"][wildcards.model]
    return f"{R}/models/{wildcards.model}" if "build" in cfg else cfg["name_or_path"]


def adapter(wildcards):
    """Input: the fine-tuned adapter, except for the prompt baseline."""
    if setting_by_name(config, wildcards.setting)["target"] == "none":
        return []
    return f"{R}/{wildcards.dataset}/{wildcards.model}/{wildcards.setting}/adapter"


def reference_entry(name):
    """The config entry of a predictions file to score (config ``reference``)."""
    return next(r for r in config["reference"] if r["name"] == name)


def release_decomposed(wildcards):
    """Input: the CoTemp decomposition whose gold facts judge the released traces' strict IR."""
    name = (config.get("paper_release") or {}).get("decomposition")
    return f"{R}/{name}/decomposed.parquet" if name else []


def job_resources(stage):
    return config["resources"][stage]


def all_targets():
    run = expand(
        f"{R}/{{dataset}}/{{model}}/{{setting}}/confusion.png",
        dataset=DATASETS,
        model=MODELS,
        setting=SETTINGS,
    )
    reports = expand(f"{R}/{{dataset}}/decomposition_report.json", dataset=DATASETS)
    grids = expand(f"{R}/figures/confusion_grid_{{setting}}.png", setting=SETTINGS)
    tables = [
        f"{R}/tables/{name}"
        for name in ("table2.tex", "table3.tex", "stats.tex", "summary.csv")
    ]
    references = [f"{R}/reference/{r['name']}.json" for r in config["reference"]]
    if config.get("paper_release"):
        references += [f"{R}/reference/summary.csv", f"{R}/reference/summary.tex"]
    return run + reports + grids + tables + references


def probe_dir():
    """A run's probes folder: beside its free predictions, wherever the predict rule puts them."""
    return os.path.join(os.path.dirname(rules.predict.output[0]), "probes")


def probe_paths(name):
    """One file of every probe of a run (wildcards kept)."""
    return expand(f"{probe_dir()}/{{probe}}/{name}", probe=PROBES, allow_missing=True)


def probed(pattern):
    """``pattern`` (with {dataset}, {model}, {setting}) for every probed run."""
    return [pattern.format(dataset=d, model=m, setting=s) for d, m, s in PROBED]


def probe_files(name):
    """One file of every probe of every probed run, run by run, probes in config order."""
    return [
        p
        for d, m, s in PROBED
        for p in expand(probe_paths(name), dataset=d, model=m, setting=s)
    ]


def probe_targets():
    """What ``all`` builds of the probes: every probe's scores, the table, a figure per dataset."""
    if not PROBED:
        return []
    figures = [
        f"{R}/figures/probes_{d}.png" for d in dict.fromkeys(d for d, _, _ in PROBED)
    ]
    tables = [f"{R}/tables/probes.tex", f"{R}/tables/probes.csv"]
    return probe_files("scores.parquet") + tables + figures
