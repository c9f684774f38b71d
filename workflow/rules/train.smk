# One training run per (task, variant, seed). The Video Data Generator's augmentations and RLMU's MEM
# pre-training happen inside `rlmu train` (seeded by the run's seed), so they are not separate jobs.
#
# Only run.json is declared as output: Snakemake deletes the outputs of failed or interrupted jobs, and
# the run's progress.csv and checkpoints/ must survive for `rlmu train` to resume. Exit codes: 0 completed,
# 3 diverged (a result: the run counts as not converged, so the job succeeds), 75 preempted (checkpointed;
# the job fails and Snakemake's `retries` resubmit it, which resumes), anything else a failure.


rule train:
    input:
        IMAGE,
        observations=observations,
        paired=paired,
    output:
        f"{STUDY_DIR}/runs/{{task}}/{{variant}}/seed_{{seed}}/run.json",
    params:
        rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
        run_dir=lambda w, output: Path(output[0]).parent,
        args=train_args,
    log:
        f"{LOGS}/train/{{task}}/{{variant}}/seed_{{seed}}.log",
    wildcard_constraints:
        seed=r"\d+",
    container: CONTAINER
    threads: res("train", "threads", 1)
    resources:
        mem_mb=res("train", "mem_mb", 8000),
        runtime=res("train", "runtime", 1440),
        gpu=res("train", "gpu", 0),
    shell:
        "{params.rlmu} train --run-dir {params.run_dir} --no-progress {params.args} >> {log} 2>&1"
        " || {{ status=$?; [ $status -eq 3 ] || exit $status; }}"
