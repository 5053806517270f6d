# Shared helpers: paths, wildcard constraints and config lookups used by every rule file.
import os
import re

from tracekd.traces.build import dose
from tracekd.config import (
    chat_options,
    display_names,
    enabled_models,
    merged_training,
    model_entry,
    probed_runs,
    model_resources,
    probe_draw_seed,
    release_decomposition,
    replicate_setting,
    replicated,
    setting_by_name,
    study_seeds,
)

R = config["results"]
DATASETS = list(config["datasets"])
MODELS = enabled_models(config)  # a model marked enabled: false is planned nowhere
SETTINGS = [s["name"] for s in config["settings"]]
PROBES = list(config["probes"])
PROBED = probed_runs(config)  # the (dataset, model, setting) runs the probes run on
SEEDS = study_seeds(config)
# with two seeds or more each setting runs once per seed, below its folder; with one, the
# paper's flat paths
REPLICATED = replicated(config)
REPLICATE = ["seeds/{seed}"] if REPLICATED else []
# one run's folder, and the same below logs/ and benchmarks/
RUN_ID = os.path.join("{dataset}", "{model}", "{setting}", *REPLICATE)
RUN = f"{R}/{RUN_ID}"
TRACES = f"{R}/{{dataset}}/traces/{{setting}}.parquet"
# every run of the grid, its seed named in a replicated study (the tables' parameters)
RUNS = [
    {"dataset": d, "model": m, "setting": s, **({"seed": seed} if REPLICATED else {})}
    for d in DATASETS
    for m in MODELS
    for s in SETTINGS
    for seed in SEEDS
]
# the same with the seed always named (the corruption study's table and figures)
SEEDED_RUNS = [
    {**run, "seed": seed} for run in RUNS for seed in [run.get("seed", SEEDS[0])]
]
# the paper's grid has its four settings and one seed; beyond it, the corruption study's
# table and figures are planned, and a dose-response where facts are corrupted by shares
CORRUPTION_STUDY = REPLICATED or bool(
    set(SETTINGS) - {"prompt", "vanilla", "correct", "incorrect"}
)
DOSES = [s["name"] for s in config["settings"] if dose(s) is not None]
DOSE_RESPONSE = any(dose(s) for s in config["settings"]) and len(DOSES) > 1
SEED_TRACES = f"{R}/{{dataset}}/traces/seeds/{{seed}}/{{setting}}.parquet"
# every probed run, its seed named in a replicated study (each seed's run is probed)
PROBED_RUNS = [r for r in RUNS if (r["dataset"], r["model"], r["setting"]) in PROBED]


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    name=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    dataset=_alternatives(DATASETS),
    model=_alternatives(MODELS),
    setting=_alternatives(SETTINGS),
    seed=_alternatives(str(s) for s in SEEDS),


def setting_cfg(wildcards):
    return setting_by_name(config, wildcards.setting)


def model_cfg(wildcards):
    return model_entry(config, wildcards.model)


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


def run_folder(wildcards):
    """This run's folder: the setting's, or its seed's below it in a replicated study."""
    return RUN.format(**dict(wildcards.items()))


def run_seed(wildcards):
    """The training and inference seed of this run: its replicate's, or the study's."""
    return int(wildcards.seed) if REPLICATED else config["seed"]


def run_probe_seed(wildcards):
    """The seed of this run's probe draws: its replicate's, or probing.seed."""
    return probe_draw_seed(config, run_seed(wildcards))


def run_setting(wildcards):
    """This run's setting entry, its corruption seed that of its replicate."""
    return replicate_setting(config, wildcards.setting, run_seed(wildcards))


def run_traces(wildcards):
    """Input: the SFT examples of this run; a corrupted setting's are drawn per replicate."""
    corrupted = setting_by_name(config, wildcards.setting).get("corruption")
    path = SEED_TRACES if REPLICATED and corrupted else TRACES
    return path.format(**dict(wildcards.items()))


def fills_trace(wildcards):
    """Whether this setting trains on filler in place of its trace (made in the model's tokens)."""
    return setting_by_name(config, wildcards.setting).get("corruption") == "filler"


def adapter(wildcards):
    """Input: the fine-tuned adapter, except for the prompt baseline."""
    if setting_by_name(config, wildcards.setting)["target"] == "none":
        return []
    return f"{run_folder(wildcards)}/adapter"


def reference_entry(name):
    """The config entry of a predictions file to score (config ``reference``)."""
    return next(r for r in config["reference"] if r["name"] == name)


def release_decomposed(wildcards):
    """Input: the CoTemp decomposition whose gold facts judge the released traces' strict IR."""
    name = (config.get("paper_release") or {}).get("decomposition")
    return f"{R}/{name}/decomposed.parquet" if name else []


def run_scores(runs):
    """The score files of ``runs`` (entries of RUNS): each run's, or its seed's."""
    return [f"{RUN}/scores.parquet".format(**run) for run in runs]


def dataset_runs(settings):
    """SEEDED_RUNS of one dataset's ``settings``, as a function of the wildcards."""
    return lambda wc: [
        r
        for r in SEEDED_RUNS
        if r["dataset"] == wc.dataset and r["setting"] in settings
    ]


def job_resource(stage, key):
    """A train or predict job's ``key`` (threads, mem_mb, runtime), the model's own on top."""
    return lambda wildcards: model_resources(config, wildcards.model, stage)[key]


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
    if CORRUPTION_STUDY:
        tables.append(f"{R}/tables/corruptions.tex")
        grids += expand(f"{R}/figures/corruptions_{{dataset}}.png", dataset=DATASETS)
    if DOSE_RESPONSE:
        grids += expand(f"{R}/figures/dose_response_{{dataset}}.png", dataset=DATASETS)
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
    """``pattern`` (a run's, with {seed} in a replicated study) for every probed run."""
    return [pattern.format(**run) for run in PROBED_RUNS]


def probe_files(name):
    """One file of every probe of every probed run, run by run (seed by seed), probes in
    config order."""
    return [
        p
        for run in PROBED_RUNS
        for p in expand(probe_paths(name), **{k: str(v) for k, v in run.items()})
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
