# tracekd: trace-based knowledge distillation with verifiable traces (arXiv 2505.13792).
#   snakemake --profile profiles/slurm all            the paper's study (config/config.yaml)
#   snakemake --configfile config/demo.yaml -c2 all   the same study at toy scale on a CPU
from snakemake.utils import min_version

from tracekd.config import validate_config

min_version("9.0")


# the paper's study unless another config file is given (Snakemake would merge the two)
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/traces.smk"
include: "rules/train.smk"
include: "rules/predict.smk"
include: "rules/score.smk"
include: "rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
