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


# Videos of a task in the agent's own (robot) domain: the negatives "another task's video" of the VIRL
# runs of the other image tasks (workflow/scripts/study.py run_data; rlmu.train.virl.other_tasks).
rule robot_videos:
    input:
        IMAGE,
    output:
        study.robot_videos_path(config, "{task}"),
    params:
        rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
        args=lambda wildcards: study.robot_video_args(config, wildcards.task),
    log:
        f"{LOGS}/data/{{task}}_robot_videos.log",
    container: CONTAINER
    threads: res("data", "threads")
    resources:
        mem_mb=res("data", "mem_mb"),
        runtime=res("data", "runtime"),
        **slurm_resources("data"),
    shell:
        "{params.rlmu} data generate --task {wildcards.task} {params.args} --out {output} > {log} 2>&1"
