# The GPU image (Apptainerfile). A dependency of every job only when the study enables containers;
# building needs apptainer (and usually --fakeroot or a remote builder: containers/README.md).


rule container:
    input:
        recipe="Apptainerfile",
        lock="requirements.lock",
    output:
        config["container"]["image"],
    log:
        f"{LOGS}/container.log",
    container: None
    threads: res("container", "threads", 4)
    resources:
        mem_mb=res("container", "mem_mb", 16000),
        runtime=res("container", "runtime", 120),
    shell:
        "apptainer build --force {output} {input.recipe} > {log} 2>&1"
