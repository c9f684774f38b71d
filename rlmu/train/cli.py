"""``rlmu train --config FILE [--run-dir DIR] [--restart] [key=value ...]``: run or resume one training run.

Exit codes: 0 completed (also: already complete), 1 failed, 2 bad input, 3 diverged, 75 preempted
(rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rlmu.train import COMPLETED_EXIT_CODE, DIVERGED_EXIT_CODE


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train one run (variant, task, seed); resumes from its checkpoint if there is one",
        description=(
            "Train one run. Settings come from --config and key=value overrides (dotted keys, YAML values, "
            "e.g. agent.sac.lr=1e-3 seed=3); the variant preset sits under both. Rerunning the same command "
            "resumes an interrupted run and does nothing for a completed one."
        ),
    )
    p.add_argument("--config", type=Path, default=None, help="run config (YAML)")
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="run directory (default results/{study}/runs/{task}/{variant}/seed_{seed})",
    )
    p.add_argument("--restart", action="store_true", help="discard the run directory's previous state first")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from rlmu.schema import CONFIG_FILE, PROGRESS_FILE, RUN_RECORD_FILE, TIMING_FILE
    from rlmu.train import CHECKPOINT_DIR
    from rlmu.train.config import load_config
    from rlmu.train.record import read_record

    cfg = load_config(args.config, args.overrides)
    run_dir = args.run_dir if args.run_dir is not None else cfg.default_run_dir()
    if args.restart:
        for name in (PROGRESS_FILE, TIMING_FILE, RUN_RECORD_FILE, CONFIG_FILE):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
        shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)
    record = read_record(run_dir)
    if record is not None and record.get("status") == "completed":
        print(
            f"{run_dir}: run is complete ({record.get('epochs_done')} epochs); nothing to do", file=sys.stderr
        )
        return COMPLETED_EXIT_CODE
    if record is not None and record.get("status") == "diverged":
        print(
            f"{run_dir}: run diverged earlier ({record.get('error')}); use --restart to run it again",
            file=sys.stderr,
        )
        return DIVERGED_EXIT_CODE

    from rlmu.train.trainer import Trainer

    trainer = Trainer(cfg, run_dir, progress=False if args.no_progress else None)
    return trainer.run()
