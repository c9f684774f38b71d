# Names and small formatting helpers shared by the rules. No decisions live here: the study config
# (validated against workflow/schemas/config.schema.yaml) says what runs; `rlmu` does the work.

import os
import shlex
import sys
from pathlib import Path

STUDY = config["study"]
STUDY_DIR = f"results/{STUDY}"
LOGS = f"{STUDY_DIR}/logs"
IMAGE_TASKS = ("push", "drawer")  # tasks with pixel observations: observation domain + paired data

# Container: with `container.enabled` every job runs inside the Apptainer image (GPU passed through by the
# profile's apptainer-args), and the image is an input of every job, so it is built first. ancient():
# a rebuilt image (new lock file) does not make finished runs stale.
CONTAINER = config["container"]["image"] if config["container"]["enabled"] else None
IMAGE = [ancient(config["container"]["image"])] if config["container"]["enabled"] else []


# The `rlmu` command of the jobs: the image's own inside the container; otherwise the one installed next
# to the Python that runs Snakemake, so `.venv/bin/snakemake ...` works without activating the venv.
# `rlmu_command` in the study config overrides it.
_VENV_RLMU = Path(sys.executable).with_name("rlmu")
if CONTAINER is not None:
    RLMU = "rlmu"
elif "rlmu_command" in config:
    RLMU = config["rlmu_command"]
else:
    RLMU = shlex.quote(str(_VENV_RLMU)) if _VENV_RLMU.exists() else "rlmu"


def task_seeds(task):
    return config["tasks"][task].get("seeds", config["seeds"])


def run_dirs():
    """Every run directory of the study: runs/{task}/{variant}/seed_{n}."""
    return [
        f"{STUDY_DIR}/runs/{task}/{variant}/seed_{seed}"
        for task, spec in config["tasks"].items()
        for variant in spec["variants"]
        for seed in task_seeds(task)
    ]


def observations(wildcards):
    return f"{STUDY_DIR}/data/{wildcards.task}_observations.npz"


def paired(wildcards):
    return [f"{STUDY_DIR}/data/{wildcards.task}_paired.npz"] if wildcards.task in IMAGE_TASKS else []


def generate_args(wildcards):
    """`rlmu data generate` options of a task's data block (only the ones given)."""
    d = config["tasks"][wildcards.task]["data"]
    args = [f"--transitions {d.get('transitions', 20000)}", f"--noise {d.get('noise', 0.0)}",
            f"--seed {d.get('seed', 0)}"]
    if wildcards.task in IMAGE_TASKS:
        args += [f"--domain {shlex.quote(d.get('domain', 'human'))}", f"--image-size {config.get('image_size', 48)}"]
    if "quality" in d:
        args.append(f"--quality {d['quality']}")
    return " ".join(args)


def train_args(wildcards, input):
    """`rlmu train` key=value overrides of one run: identity, budget, data paths, study overrides."""
    t = config["tasks"][wildcards.task]["train"]
    items = {
        "study": STUDY, "task": wildcards.task, "variant": wildcards.variant, "seed": wildcards.seed,
        "epochs": t.get("epochs", 300), "steps_per_epoch": t.get("steps_per_epoch", 1000),
        "eval_episodes": t.get("eval_episodes", 5), "device": config.get("device", "auto"),
        "image_size": config.get("image_size", 48), "data.observations": input.observations,
        **({"data.paired": input.paired[0]} if input.paired else {}),
        **t.get("overrides", {}),
    }
    return " ".join(shlex.quote(f"{k}={_yaml_scalar(v)}") for k, v in items.items())


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):  # e.g. agent.sac.hidden: [256, 256] -> "[256,256]" (YAML flow list)
        return "[" + ",".join(_yaml_scalar(x) for x in v) + "]"
    return str(v)


def res(step, key, default):
    return config["resources"][step].get(key, default)
