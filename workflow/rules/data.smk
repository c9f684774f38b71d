# Observation videos (the "human" domain) and paired robot/human states, one set per task and study.
# Only the options the study's data block gives are passed; `rlmu data` has the defaults.


rule observation_data:
    input:
        IMAGE,
    output:
        f"{STUDY_DIR}/data/{{task}}_observations.npz",
    params:
        rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
        args=lambda wildcards: study.generate_args(config, wildcards.task),
    log:
        f"{LOGS}/data/{{task}}_observations.log",
    container: CONTAINER
    threads: res("data", "threads")
    resources:
        mem_mb=res("data", "mem_mb"),
        runtime=res("data", "runtime"),
        **slurm_resources("data"),
    shell:
        "{params.rlmu} data generate --task {wildcards.task} {params.args} --out {output} > {log} 2>&1"


rule paired_data:
    input:
        IMAGE,
    output:
        f"{STUDY_DIR}/data/{{task}}_paired.npz",
    params:
        rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
        args=lambda wildcards: study.paired_args(config, wildcards.task),
    log:
        f"{LOGS}/data/{{task}}_paired.log",
    container: CONTAINER
    threads: res("data", "threads")
    resources:
        mem_mb=res("data", "mem_mb"),
        runtime=res("data", "runtime"),
        **slurm_resources("data"),
    shell:
        "{params.rlmu} data paired --task {wildcards.task} {params.args} --out {output} > {log} 2>&1"
