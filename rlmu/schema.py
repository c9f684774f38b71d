"""On-disk schema of a training run (METHODS section 4), shared by the trainer and the aggregation.

A run directory ``results/{study}/runs/{task}/{variant}/seed_{n}/`` holds:

- ``progress.csv``: one row per epoch, columns ``PROGRESS_COLUMNS`` in this order. Loss columns of parts
  a variant does not use are empty (read as NaN). Everything in it is a function of the config and the
  seed: the same run on the same CPU build gives a byte-identical file, resumed or not.
- ``timing.csv``: one row per epoch, columns ``TIMING_COLUMNS``: throughput and wall time, which measure
  the machine and so are kept apart from the reproducible rows.
- ``run.json``: the run record (``RUN_RECORD_KEYS``): seed, status, versions, git revision, device, ...
- ``config.yaml``: the fully resolved configuration the run used.
- ``first_update.csv``: columns ``FIRST_UPDATE_COLUMNS``, one row per loss that trains the encoder: its
  scale and the L2 norm of its scaled gradient on the encoder at the run's first update (no rows for an
  agent without a learned encoder). Like ``progress.csv``, a function of the config and the seed.
- ``checkpoints/``: resumable state (trainer-owned, not part of the result).
"""

from __future__ import annotations

PROGRESS_SCHEMA_VERSION = 1

PROGRESS_FILE = "progress.csv"
TIMING_FILE = "timing.csv"
RUN_RECORD_FILE = "run.json"
CONFIG_FILE = "config.yaml"
FIRST_UPDATE_FILE = "first_update.csv"
FIRST_UPDATE_COLUMNS: tuple[str, ...] = ("loss", "scale", "encoder_grad_norm")

# Column order is part of the schema.
PROGRESS_COLUMNS: tuple[str, ...] = (
    "epoch",  # 1-based epoch index
    "env_steps",  # environment steps taken so far (interaction only)
    "eval_return_mean",  # mean return of the deterministic evaluation episodes
    "eval_return_std",
    "eval_success_rate",  # fraction of evaluation episodes with success
    "train_return_mean",  # mean return of training episodes finished in this epoch (NaN if none)
    "loss_critic",
    "loss_actor",
    "loss_alpha",
    "alpha",
    "loss_inverse",
    "loss_discriminator",
    "loss_generator",
    "loss_paired",
    "loss_mem",
    "loss_distance",  # VIRL distance model
    "updates",  # gradient updates so far
)

TIMING_COLUMNS: tuple[str, ...] = (
    "epoch",
    "steps_per_second",  # environment steps per wall-clock second in this epoch, updates included
    "wall_time_s",  # wall time since the run started (summed over resumes)
)

LOSS_COLUMNS: tuple[str, ...] = tuple(c for c in PROGRESS_COLUMNS if c.startswith("loss_") or c == "alpha")

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "diverged", "preempted")
# The statuses of a run that has finished: its result stands (a diverged run is a failure of the method).
FINISHED_STATUSES: tuple[str, ...] = ("completed", "diverged")

RUN_RECORD_KEYS: tuple[str, ...] = (
    "schema_version",
    "study",
    "task",
    "variant",
    "seed",
    "status",
    "epochs_done",
    "epochs_total",
    "env_steps",
    "started_at",
    "finished_at",
    "wall_time_s",
    "device",
    "git_revision",
    "versions",
    "hostname",
    "error",  # message for failed/diverged runs, else null
    "pack",  # the seeds trained together with this one in one process (a seed pack), ascending
)
