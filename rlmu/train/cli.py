"""``rlmu train [--config FILE] [--runs-dir DIR] [--pack-dir DIR] [--restart] [key=value ...]``: run or resume
a seed pack, ``seeds=[0,1,2,3]`` (``seed=N``: a pack of one).

Each member writes its own run directory ``{runs_dir}/seed_{s}`` (default ``--runs-dir``:
``results/{study}/runs/{task}/{variant}``); the pack's checkpoint lives in the pack directory (default
``results/{study}/packs/{task}/{variant}/seeds_{s1}-{s2}-...``). ``--run-dir DIR`` names the run directory
of a single seed, which then also holds its checkpoint.

Exit codes: 0 every member completed (also: already complete), 1 failed, 2 bad input, 3 every member
finished and at least one diverged, 75 preempted (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rlmu.errors import UserError
from rlmu.train import COMPLETED_EXIT_CODE, DIVERGED_EXIT_CODE, PREEMPTED_EXIT_CODE


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a seed pack of one (task, variant); resumes from its checkpoint if there is one",
        description=(
            "Train the seeds `seeds=[0,1,2]` (or one `seed=N`) of one task and variant in one process. "
            "Settings come from --config and key=value overrides (dotted keys, YAML values, e.g. "
            "agent.sac.lr=1e-3); the variant preset sits under both. Rerunning the same command resumes an "
            "interrupted pack and does nothing for a finished one."
        ),
    )
    p.add_argument("--config", type=Path, default=None, help="run config (YAML)")
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="run directory of a single seed (it then also holds the checkpoint)",
    )
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="folder of the members' run directories seed_{s} (default results/{study}/runs/{task}/{variant})",
    )
    p.add_argument(
        "--pack-dir",
        type=Path,
        default=None,
        help="folder of the pack's checkpoint (default results/{study}/packs/{task}/{variant}/seeds_...)",
    )
    p.add_argument(
        "--restart", action="store_true", help="discard the runs' and the pack's previous state first"
    )
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=cmd_train)


def pack_seeds(user: dict) -> list[int]:
    """The pack's seeds from a user mapping (``seeds`` list or one ``seed``), ascending; removes ``seeds``."""
    if "seeds" not in user:
        seed = user.get("seed", 0)
        return [seed] if isinstance(seed, int) and not isinstance(seed, bool) else [seed]
    if "seed" in user:
        raise UserError("seeds: give either seed=N or seeds=[...], not both")
    seeds = user.pop("seeds")
    if (
        not isinstance(seeds, list)
        or not seeds
        or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds)
    ):
        raise UserError(f"seeds: must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"seeds: {seeds} lists a seed twice")
    return sorted(seeds)


def pack_dir_name(seeds: list[int]) -> str:
    return "seeds_" + "-".join(str(s) for s in seeds)


def load_pack(config: Path | None, overrides: list[str]):
    """One validated ``TrainConfig`` per member seed."""
    from rlmu.train.config import deep_merge, parse_overrides, read_yaml_file, resolve_config

    user = read_yaml_file(config) if config is not None else {}
    user = deep_merge(user, parse_overrides(overrides))
    seeds = pack_seeds(user)
    return [resolve_config({**user, "seed": s}) for s in seeds]


def cmd_train(args: argparse.Namespace) -> int:
    from rlmu.train.trainer import PreemptFlag

    # Before anything slow (configs, data, checkpoints): a signal from here on checkpoints or exits 75.
    preempt = PreemptFlag().install()
    try:
        return _train(args, preempt)
    finally:
        preempt.restore()


def _train(args: argparse.Namespace, preempt) -> int:
    from rlmu.schema import CONFIG_FILE, FINISHED_STATUSES, PROGRESS_FILE, RUN_RECORD_FILE, TIMING_FILE
    from rlmu.train import CHECKPOINT_DIR
    from rlmu.train.config import check_machine
    from rlmu.train.record import read_record

    cfgs = load_pack(args.config, args.overrides)
    check_machine(cfgs)  # the device exists and the pack fits in memory, before any data loads
    seeds = [c.seed for c in cfgs]
    first = cfgs[0]
    if args.run_dir is not None:
        if len(cfgs) > 1:
            raise UserError("--run-dir names one run: use --runs-dir for a pack of several seeds")
        if args.runs_dir is not None:
            raise UserError("give --run-dir or --runs-dir, not both")
        run_dirs = [args.run_dir]
        pack_dir = args.pack_dir if args.pack_dir is not None else args.run_dir
    else:
        default_runs = Path("results") / first.study / "runs" / first.task / first.variant
        runs_dir = args.runs_dir if args.runs_dir is not None else default_runs
        run_dirs = [runs_dir / f"seed_{s}" for s in seeds]
        default_pack = (
            Path("results") / first.study / "packs" / first.task / first.variant / pack_dir_name(seeds)
        )
        pack_dir = args.pack_dir if args.pack_dir is not None else default_pack
    if args.restart:
        for run_dir in run_dirs:
            for name in (PROGRESS_FILE, TIMING_FILE, RUN_RECORD_FILE, CONFIG_FILE):
                (run_dir / name).unlink(missing_ok=True)
            shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)
            shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
        shutil.rmtree(pack_dir / CHECKPOINT_DIR, ignore_errors=True)

    records = {s: read_record(d) for s, d in zip(seeds, run_dirs, strict=True)}
    finished = {s: r for s, r in records.items() if r is not None and r.get("status") in FINISHED_STATUSES}
    if len(finished) == len(seeds):
        for s, r in finished.items():
            what = (
                f"complete ({r.get('epochs_done')} epochs)"
                if r["status"] == "completed"
                else f"diverged earlier ({r.get('error')})"
            )
            print(f"seed {s}: run is {what}; nothing to do (--restart runs it again)", file=sys.stderr)
        diverged = any(r["status"] == "diverged" for r in finished.values())
        return DIVERGED_EXIT_CODE if diverged else COMPLETED_EXIT_CODE
    from rlmu.train import CHECKPOINT_FILE
    from rlmu.train.checkpoint import checkpoint_exists

    if finished and not checkpoint_exists(pack_dir / CHECKPOINT_DIR / CHECKPOINT_FILE):
        dirs = ", ".join(str(d) for s, d in zip(seeds, run_dirs, strict=True) if s in finished)
        raise UserError(
            f"seeds {sorted(finished)} of this pack have finished runs ({dirs}) and {pack_dir} holds no checkpoint "
            "of this pack: train the other seeds as their own pack, or use --restart"
        )
    if preempt.signal is not None:
        print(f"rlmu train: {preempt.signal} before training started; nothing was written", file=sys.stderr)
        return PREEMPTED_EXIT_CODE

    from rlmu.train.trainer import Trainer

    trainer = Trainer(cfgs, run_dirs, pack_dir, progress=False if args.no_progress else None, preempt=preempt)
    if preempt.signal is not None:
        print(f"rlmu train: {preempt.signal} before training started; nothing was written", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    return trainer.run()
