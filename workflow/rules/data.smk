# Observation videos (the "human" domain) and paired robot/human states, one set per task and study.


rule observation_data:
    input:
        IMAGE,
    output:
        f"{STUDY_DIR}/data/{{task}}_observations.npz",
    params:
        rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
        args=generate_args,
    log:
        f"{LOGS}/data/{{task}}_observations.log",
    container: CONTAINER
    threads: res("data", "threads", 1)
    resources:
        mem_mb=res("data", "mem_mb", 4000),
        runtime=res("data", "runtime", 120),
    shell:
        "{params.rlmu} data generate --task {wildcards.task} {params.args} --out {output} > {log} 2>&1"


rule paired_data:
    input:
        IMAGE,
    output:
        f"{STUDY_DIR}/data/{{task}}_paired.npz",
    params:
        rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
        n=lambda w: config["tasks"][w.task]["data"].get("paired", 200),
        seed=lambda w: config["tasks"][w.task]["data"].get("seed", 0),
        size=config.get("image_size", 48),
    log:
        f"{LOGS}/data/{{task}}_paired.log",
    container: CONTAINER
    threads: res("data", "threads", 1)
    resources:
        mem_mb=res("data", "mem_mb", 4000),
        runtime=res("data", "runtime", 120),
    shell:
        "{params.rlmu} data paired --task {wildcards.task} --n {params.n} --seed {params.seed} --image-size {params.size}"
        " --out {output} > {log} 2>&1"
