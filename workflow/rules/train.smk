# One training job per seed pack: `rlmu train seeds=[...]` trains the pack's seeds of one (task, variant)
# together; each member writes its own run directory runs/{task}/{variant}/seed_{n}/, the pack's
# checkpoint lives in packs/{task}/{variant}/seeds_{a-b-...}/. The packs (workflow/scripts/study.py) are
# fixed by the study's seed lists and pack sizes and by the packs recorded in finished runs, so each pack
# is a rule of its own whose outputs are its members' run.json files. The Video Data Generator's
# augmentations and RLMU's MEM pre-training happen inside `rlmu train`, so they are not separate jobs.
#
# Only run.json is declared as output: Snakemake deletes the outputs of failed or interrupted jobs, and
# the runs' progress.csv and the pack's checkpoints must survive for `rlmu train` to resume. Exit codes:
# 0 every member completed, 3 every member finished and one or more diverged (a result: such a run
# counts as not converged, so the job succeeds), 75 preempted (checkpointed; the job fails and
# Snakemake's `retries` resubmit it, which resumes), anything else a failure.

#
# A finished pack (every member's run.json completed or diverged, study.pack_finished) gets no rule: its
# run records are results, like any file the workflow reads, so regenerated datasets or a rebuilt image
# never retrain it (a fresh clone of committed results resumes the study where it stopped). To retrain a
# finished pack, delete its members' run directories.

for _pack in PACKS:
    if study.pack_finished(config, _pack):
        continue

    rule:
        name:
            _pack.rule
        input:
            IMAGE,
            # only the datasets the variant's run config uses (SAC none; VIRL the other tasks' videos)
            **{k.rsplit(".", 1)[-1]: v for k, v in study.run_data(config, _pack.task, _pack.variant).items()},
        output:
            study.pack_outputs(config, _pack),
        params:
            rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
            runs_dir=lambda wildcards, output: Path(output[0]).parent.parent,  # runs/{task}/{variant}
            pack_dir=study.pack_dir(config, _pack),
            args=study.pack_args(config, _pack),
        log:
            f"{LOGS}/train/{_pack.task}/{_pack.variant}/{_pack.label}.log",
        container: CONTAINER
        # threads: the pack's CPUs (its environments' renderer processes); gpu: per pack job (Slurm --gpus)
        threads: res("train", "threads")
        resources:
            mem_mb=res("train", "mem_mb"),
            runtime=res("train", "runtime"),
            gpu=res("train", "gpu"),
            **slurm_resources("train"),
        shell:
            "{params.rlmu} train --runs-dir {params.runs_dir} --pack-dir {params.pack_dir} --no-progress"
            " {params.args} >> {log} 2>&1 || {{ status=$?; [ $status -eq 3 ] || exit $status; }}"
