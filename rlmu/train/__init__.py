"""Training of one run (variant, task, seed): config, replay buffers, the loop, checkpoints, signals.

The agent (``rlmu.agent``) holds the math; this package is the workspace around it: it owns the
environment, the replay buffers, evaluation, the progress CSV, the run record, checkpoints and signals.
See ``docs/training.md``.
"""

from __future__ import annotations

# Exit codes of ``rlmu train``. 2 is taken by bad user input (``rlmu.cli.UserError``).
COMPLETED_EXIT_CODE = 0
FAILED_EXIT_CODE = 1
DIVERGED_EXIT_CODE = 3
# EX_TEMPFAIL from sysexits.h: the workflow requeues a run that exits with it; rerunning the same
# command resumes from the last checkpoint.
PREEMPTED_EXIT_CODE = 75

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = "latest.pt"
