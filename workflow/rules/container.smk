# The GPU image (Apptainerfile). A dependency of every job only when the study enables containers;
# building needs apptainer (and usually --fakeroot or a remote builder: containers/README.md).


rule container:
    input:
        recipe=f"{workflow.basedir}/Apptainerfile",
        lock=f"{workflow.basedir}/requirements.lock",
    output:
        config["container"]["image"],
    params:
        # %files paths in the recipe are relative to the repository root: the recipe's directory.
        root=lambda wildcards, input: os.path.dirname(os.path.abspath(input.recipe)),
    log:
        f"{LOGS}/container.log",
    container: None  # the image cannot be built inside itself
    conda:
        "../envs/apptainer.yaml"
    threads: res("container", "threads")
    resources:
        mem_mb=res("container", "mem_mb"),
        runtime=res("container", "runtime"),
        **slurm_resources("container"),
    shell:
        "log=$(realpath -m {log}); image=$(realpath -m {output}); cd {params.root} && "
        "apptainer build --force $image Apptainerfile > $log 2>&1"
