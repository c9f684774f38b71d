# The reproduction workflow: data -> training runs -> aggregate -> statistics -> report.
#   snakemake --profile profiles/local --configfile config/quick.yaml      (this machine)
#   snakemake --profile profiles/slurm --configfile config/paper.yaml      (a Slurm cluster; docs/workflow.md)
# Every step is a call of the `rlmu` command line; rules only name files.

from snakemake.utils import min_version

min_version("9.0")


# The study config is checked and its seed packs are planned in common.smk (workflow/scripts/study.py).
include: "workflow/rules/common.smk"
include: "workflow/rules/container.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{STUDY_DIR}/report.html",
