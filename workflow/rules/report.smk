# Aggregation, statistics, figures and the HTML report. Inputs are the runs' run.json files, so adding
# seeds reruns only the new training jobs and these steps.


rule aggregate:
    input:
        IMAGE,
        # the study's run list (rewritten when seeds or variants change: study.write_run_list)
        study.write_run_list(config),
        runs=[study.run_record(config, *run) for run in study.study_runs(config)],
    output:
        f"{STUDY_DIR}/aggregate/runs.parquet",
        f"{STUDY_DIR}/aggregate/manifest.json",
    params:
        rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
        study_dir=lambda w, output: Path(output[0]).parent.parent,
        config=workflow.configfiles[-1],
    log:
        f"{LOGS}/aggregate.log",
    container: CONTAINER
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
        **slurm_resources("report"),
    shell:
        "{params.rlmu} aggregate {params.study_dir} --config {params.config} > {log} 2>&1"


rule stats:
    input:
        IMAGE,
        rules.aggregate.output,
    output:
        f"{STUDY_DIR}/stats/meta.json",
    params:
        rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
        study_dir=lambda w, output: Path(output[0]).parent.parent,
        config=rules.aggregate.params.config,
        stats=study.stats_args(config),
    log:
        f"{LOGS}/stats.log",
    container: CONTAINER
    threads: res("report", "threads")
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
        **slurm_resources("report"),
    shell:
        "{params.rlmu} stats {params.study_dir} --config {params.config} {params.stats} > {log} 2>&1"


# `rlmu report` draws the figures (figures/, both "all seeds" and "converged seeds" versions) and writes
# report.html + report.md; it reuses the aggregate and statistics made above (their fingerprints match).
rule report:
    input:
        IMAGE,
        rules.stats.output,
    output:
        f"{STUDY_DIR}/report.html",
        f"{STUDY_DIR}/report.md",
    params:
        rlmu=lambda wildcards: RLMU,  # the rlmu command (common.smk)
        study_dir=lambda w, output: Path(output[0]).parent,
        config=rules.aggregate.params.config,
        stats=study.stats_args(config),
    log:
        f"{LOGS}/report.log",
    container: CONTAINER
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
        **slurm_resources("report"),
    shell:
        "{params.rlmu} report {params.study_dir} --config {params.config} {params.stats} > {log} 2>&1"
