"""Learning benchmark on rlmu/AcrobotContinuous-v0: SAC vs RLV without paired data (``rlv_nopair``).

Everything goes through the command line a user runs: ``rlmu data generate`` makes the medium-quality
observation data (about -79 mean return; random policy about -100, best expert about -63), then one
``rlmu train`` process per (variant, seed) writes its run directory under ``--out`` (a temporary directory
by default). Agent settings are the defaults of METHODS section 3 (batch 256 + 256, lr 3e-4, 1000 random
steps, one update per step) except two CPU-budget choices, both printed: the actor and critic MLPs
``--hidden`` (default (256, 256), the SAC paper's and SB3's size for state tasks, as in
``config/acrobot.yaml``; the (512, 256, 256) default is the [released] pixel size) and ``--batch-size``
(default 128 interaction + 128 observation transitions per update instead of 256 + 256). The run length
(``--epochs`` x ``--steps-per-epoch``) is chosen here; the defaults (40 x 1000) fit in about 30 minutes on
an idle 2-core machine with two runs at a time.

Prints, per seed, the final deterministic evaluation return, the evaluation curve (mean over seeds and per
seed), the first evaluation point at which RLV's seed-mean curve reaches SAC's final seed-mean return,
and a value diagnostic of the final checkpoints (``value_diagnostic``).

Usage:
    python benchmarks/learning_acrobot.py [--epochs 40] [--steps-per-epoch 1000] [--seeds 0 1 2] [--jobs 2]
        [--transitions 20000] [--hidden [256,256]] [--batch-size 128] [--data FILE] [--out DIR]
        [--set key=value ...]
        [--report-only]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rlmu.tasks import get_task

VARIANTS = ("sac", "rlv_nopair")


def rlmu_command() -> list[str]:
    """The ``rlmu`` console script of this interpreter's environment (what a user types), else ``-m rlmu``."""
    script = Path(sys.executable).parent / "rlmu"
    if script.exists():
        return [str(script)]
    found = shutil.which("rlmu")
    return [found] if found else [sys.executable, "-m", "rlmu"]


def generate_data(out: Path, transitions: int) -> Path:
    path = out / "acrobot_medium.npz"
    cmd = [
        *rlmu_command(),
        "data",
        "generate",
        "--task",
        "acrobot",
        "--quality",
        "medium",
        "--transitions",
        str(transitions),
        "--seed",
        "0",
        "--out",
        str(path),
    ]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def data_summary(path: Path) -> str:
    """Episodes, transitions and the demonstrator's mean return implied by the stored episodes
    (-1 per step, 0 on the step that reaches the goal)."""
    with np.load(path, allow_pickle=False) as d:
        lengths, reached = d["episode_lengths"], d["reached_goal"]
    returns = -(lengths - reached.astype(np.int64))
    return (
        f"{len(lengths)} episodes, {int(lengths.sum())} transitions, demonstrator mean return "
        f"{returns.mean():.1f}, success {reached.mean():.2f}"
    )


def train_one(variant: str, seed: int, args, data: Path, out: Path) -> tuple[str, int, int, float]:
    run_dir = out / "runs" / variant / f"seed_{seed}"
    cmd = [
        *rlmu_command(),
        "train",
        "task=acrobot",
        f"variant={variant}",
        f"seed={seed}",
        f"epochs={args.epochs}",
        f"steps_per_epoch={args.steps_per_epoch}",
        f"agent.sac.hidden={args.hidden}",
        f"agent.sac.batch_size={args.batch_size}",
        f"agent.rlv.obs_batch_size={args.batch_size}",
        "study=learning_acrobot",
        *args.set,
    ]
    if variant != "sac":
        cmd.append(f"data.observations={data}")
    cmd += ["--run-dir", str(run_dir), "--no-progress"]
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(run_dir.parent / f"seed_{seed}.log", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    return variant, seed, rc, time.perf_counter() - t0


def read_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(env_steps, eval_return_mean) per epoch from a run's progress.csv."""
    with open(run_dir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise RuntimeError(f"{run_dir / 'progress.csv'} has no rows")
    return (
        np.array([int(r["env_steps"]) for r in rows]),
        np.array([float(r["eval_return_mean"]) for r in rows]),
    )


def first_reaching(steps: np.ndarray, curve: np.ndarray, level: float) -> int | None:
    hit = np.flatnonzero(curve >= level)
    return int(steps[hit[0]]) if len(hit) else None


def report(out: Path, seeds: list[int]) -> None:
    curves: dict[str, dict[int, np.ndarray]] = {v: {} for v in VARIANTS}
    steps = None
    for v in VARIANTS:
        for s in seeds:
            st, ret = read_curve(out / "runs" / v / f"seed_{s}")
            if steps is not None and not np.array_equal(st, steps):
                raise RuntimeError(f"{v} seed {s}: evaluation points {st} differ from the other runs")
            steps, curves[v][s] = st, ret

    print("\nfinal deterministic evaluation return (5 episodes) per seed")
    print(f"{'variant':11s} " + " ".join(f"{'seed ' + str(s):>8s}" for s in seeds) + f" {'mean':>8s}")
    for v in VARIANTS:
        finals = [curves[v][s][-1] for s in seeds]
        print(f"{v:11s} " + " ".join(f"{x:8.1f}" for x in finals) + f" {np.mean(finals):8.1f}")

    print("\nevaluation return per epoch (columns: variant/seed; mean = mean over seeds)")
    cols = [(v, s) for v in VARIANTS for s in seeds]
    header = f"{'env_steps':>9s} | " + " ".join(f"{v[:3]}/s{s}".rjust(8) for v, s in cols)
    header += " | " + " ".join(f"{v[:3]} mean".rjust(9) for v in VARIANTS)
    print(header)
    means = {v: np.mean([curves[v][s] for s in seeds], axis=0) for v in VARIANTS}
    for i, n in enumerate(steps):
        line = f"{n:9d} | " + " ".join(f"{curves[v][s][i]:8.1f}" for v, s in cols)
        line += " | " + " ".join(f"{means[v][i]:9.1f}" for v in VARIANTS)
        print(line)

    sac_final = means["sac"][-1]
    hit = first_reaching(steps, means["rlv_nopair"], sac_final)
    print(f"\nSAC final seed-mean return: {sac_final:.1f} at {steps[-1]} env steps")
    threshold = get_task("acrobot").converge_threshold
    if sac_final <= threshold:
        print(
            f"  (SAC's final return is not above {threshold:.0f}, the never-reaches-the-goal level: "
            "the comparison below says nothing about learning speed)"
        )
    if hit is None:
        print("RLV (rlv_nopair) seed-mean curve never reaches it within the budget")
    else:
        print(
            f"RLV (rlv_nopair) seed-mean curve first reaches it at {hit} env steps "
            f"({hit / steps[-1]:.2f} of SAC's budget)"
        )
    for s in seeds:
        h = first_reaching(steps, curves["rlv_nopair"][s], curves["sac"][s][-1])
        where = "never" if h is None else f"at {h} env steps"
        print(f"  seed {s}: SAC final {curves['sac'][s][-1]:.1f}; RLV reaches it {where}")
    value_diagnostic(out, seeds)


def value_diagnostic(out: Path, seeds: list[int]) -> None:
    """What the final checkpoints learned, on the states of the successful observation videos bucketed by steps
    to the goal: mean min-Q(s, a) at the deterministic action a = tanh(mu(s)) and the fraction of states
    where |a| > 0.5 (the task applies a non-zero torque only there). Shows how far back from the goal the
    value has propagated, which decides whether the policy moves at the start state (about 80 steps from
    the goal in medium-quality videos)."""
    import torch
    import yaml

    from rlmu.agent import Agent
    from rlmu.train.checkpoint import load_checkpoint
    from rlmu.train.config import resolve_config

    data = Path(
        yaml.safe_load((out / "runs" / "rlv_nopair" / f"seed_{seeds[0]}" / "config.yaml").read_text())[
            "data"
        ]["observations"]
    )
    with np.load(data, allow_pickle=False) as d:
        frames = torch.as_tensor(d["frames"], dtype=torch.float32)
        starts, lengths, reached = d["episode_starts"], d["episode_lengths"], d["reached_goal"]
    buckets: dict[int, list[int]] = {}
    for s0, n, ok in zip(starts, lengths, reached, strict=True):
        if ok:
            for t in range(n):
                buckets.setdefault(min((n - t) // 10, 8), []).append(s0 + t)
    keys = sorted(buckets)
    print(
        "\nvalue diagnostic on observation-video states (final checkpoints): min-Q(s, tanh(mu(s))) / "
        "fraction of states with |tanh(mu(s))| > 0.5, by steps to the goal"
    )
    print(
        f"{'run':13s} "
        + " ".join(f"{f'{10 * k}-{10 * k + 9}' if k < 8 else '80+':>11s}" for k in keys)
        + "   alpha"
    )
    torch.set_num_threads(1)
    for v in VARIANTS:
        for seed in seeds:
            run = out / "runs" / v / f"seed_{seed}"
            cfg = resolve_config(yaml.safe_load((run / "config.yaml").read_text()))
            checkpoint = load_checkpoint(run / "checkpoints" / "latest.pt")
            agent = Agent(cfg.agent, (frames.shape[1],), 1, "cpu", seeds=checkpoint["seeds"], task="acrobot")
            agent.load_state_dict(checkpoint["agent"])
            cells = []
            with torch.no_grad():
                for k in keys:
                    h = agent.encoder(frames[buckets[k]].unsqueeze(0))  # a pack of one: (1, B, D)
                    a = agent.actor.mode(h)
                    q = torch.min(*agent.critic(h, a))
                    cells.append(f"{q.mean():6.1f}/{(a.abs() > 0.5).float().mean():.2f}")
            print(
                f"{v[:3]} seed {seed:<4d} "
                + " ".join(f"{c:>11s}" for c in cells)
                + f"   {float(agent.alpha):.3f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--steps-per-epoch", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="training processes at a time (1 torch thread each)")
    ap.add_argument("--transitions", type=int, default=20000, help="observation transitions to generate")
    ap.add_argument("--hidden", default="[256,256]", help="actor and critic MLP widths (agent.sac.hidden)")
    ap.add_argument(
        "--batch-size", type=int, default=128, help="interaction (and, for RLV, observation) batch per update"
    )
    ap.add_argument("--data", type=Path, default=None, help="existing observation data (skip generation)")
    ap.add_argument("--out", type=Path, default=None, help="results directory (default: a new temp dir)")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="key=value",
        help="extra `rlmu train` overrides for every run (e.g. random_steps=500); printed",
    )
    ap.add_argument("--report-only", action="store_true", help="print the tables of an existing --out")
    args = ap.parse_args()
    if args.epochs < 1 or args.steps_per_epoch < 1 or args.jobs < 1:
        ap.error("--epochs, --steps-per-epoch and --jobs must be >= 1")
    if args.report_only:
        if args.out is None:
            ap.error("--report-only needs --out")
        report(args.out, args.seeds)
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="rlmu_learning_acrobot_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"results in {out}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    data = args.data or generate_data(out, args.transitions)
    print(f"observation data {data}: {data_summary(data)}", flush=True)
    print(
        f"budget: {args.epochs} epochs x {args.steps_per_epoch} env steps, seeds {args.seeds}, "
        f"{args.jobs} processes at a time, actor/critic MLP {args.hidden}, batch {args.batch_size} "
        f"(+ {args.batch_size} observation transitions for RLV), overrides {args.set or 'none'}",
        flush=True,
    )
    t0 = time.perf_counter()
    jobs = [(v, s) for s in args.seeds for v in VARIANTS]
    failed = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for v, s, rc, wall in pool.map(lambda vs: train_one(*vs, args, data, out), jobs):
            print(
                f"  {v:11s} seed {s}: exit {rc}, {wall:6.0f} s wall, load average "
                f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
                flush=True,
            )
            if rc != 0:
                failed.append(f"{v} seed {s} (log: {out / 'runs' / v / f'seed_{s}.log'})")
    print(f"all runs: {time.perf_counter() - t0:.0f} s wall", flush=True)
    if failed:
        sys.exit("failed runs: " + "; ".join(failed))
    report(out, args.seeds)


if __name__ == "__main__":
    main()
