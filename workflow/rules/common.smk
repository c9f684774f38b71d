# Names shared by the rules. No decisions live here: the study config says what runs, checked and
# planned by workflow/scripts/study.py (schema, the trainer's config model, seed packs); `rlmu` does the work.

import importlib.util
import shlex
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("rlmu_study", f"{workflow.basedir}/workflow/scripts/study.py")
study = sys.modules["rlmu_study"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)

# The study is chosen on the command line (--configfile config/quick.yaml); a default config file here
# would be merged key by key into the chosen one and add its tasks to every study.
if not config:
    sys.exit("no study configuration: add --configfile config/quick.yaml (or acrobot.yaml, paper.yaml)")
_SOURCE = " + ".join(str(f) for f in workflow.configfiles) or "the study config"
# A study the jobs would reject stops here, with one line naming the file and the key (no traceback).
try:
    study.check_study(config, _SOURCE)
    PACKS = study.packs(config)
except study.PlanError as exc:
    sys.exit(f"study config error: {exc}")

STUDY_DIR = study.study_dir(config)
LOGS = f"{STUDY_DIR}/logs"

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


def res(step, key):
    return config["resources"][step][key]


def slurm_resources(step):
    """The step's `resources.{step}.slurm` of the study: Slurm executor resources, passed as they are."""
    return dict(config["resources"][step].get("slurm", {}))
