# tracekd: trace-based knowledge distillation with verifiable traces (arXiv 2505.13792).
#   snakemake all --profile profiles/slurm            the paper's study (config/config.yaml)
#   snakemake all --configfile config/demo.yaml -c2   the same study at toy scale on a CPU
# (targets first: --configfile takes every word after it as one more config file)
import sys

from snakemake.utils import min_version

min_version("9.0")

# the workflow's library, importable without installing it (jobs in conda environments find it
# through the link workflow/scripts/tracekd, as Snakemake puts the scripts' folder on sys.path)
sys.path.insert(0, f"{workflow.basedir}/src")

from tracekd.config import check_config_files, validate_config  # noqa: E402

# the paper's study unless another config file is given (Snakemake would merge the two)
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Before anything walks the config: Snakemake read the files itself, keeping the last of two
# equal keys and leaving YAML aliases unexpanded (it would expand them when it prints the
# config). Re-read them strictly, then validate the merged config, alias expansion counted first.
check_config_files(workflow.configfiles)
validate_config(
    config,
    f"{workflow.basedir}/workflow/schemas/config.schema.yaml",
    source=", ".join(str(f) for f in workflow.configfiles) or "config",
)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/traces.smk"
include: "rules/train.smk"
include: "rules/predict.smk"
include: "rules/score.smk"
include: "rules/report.smk"
include: "rules/probes.smk"


# light or network-bound steps stay on the submit host (compute nodes are often offline)
localrules:
    all,
    raw_data,
    release_raw,
    tables,


rule all:
    default_target: True
    input:
        all_targets(),
        probe_targets(),
