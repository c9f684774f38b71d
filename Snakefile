# The reproduction workflow: data -> training runs -> aggregate -> statistics -> report.
#   snakemake --profile profiles/local --configfile config/quick.yaml      (this machine)
#   snakemake --profile profiles/slurm --configfile config/paper.yaml      (a Slurm cluster; docs/workflow.md)
# Every step is a call of the `rlmu` command line; rules only name files.

from snakemake.utils import min_version, validate

min_version("9.0")


# The study is chosen on the command line (--configfile config/quick.yaml); a default config file here
# would be merged key by key into the chosen one and add its tasks to every study.
if not config:
    raise ValueError("no study configuration: add --configfile config/quick.yaml (or acrobot.yaml, paper.yaml)")


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/container.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{STUDY_DIR}/report.html",
