"""VIRL on Acrobot: does the spatial + temporal reward beat either alone (METHODS claim C8)?

For each reward mode (``virl_both``, ``virl_spatial``, ``virl_temporal``) and seed, one full training run
of the project's trainer (``rlmu.train.trainer.Trainer``): SAC on Acrobot's 6-D states, learning ONLY from
the VIRL reward of the distance to ONE demonstration (the noise-free scripted expert, quality "high",
reset seed ``--demo-seed``: about 62 steps, states as frames). The distance model is pre-trained on the
demo, then retrained every ``--retrain-every`` steps on the demo and the newest agent episodes, and every
stored reward is recomputed after each retrain. What is printed is the TRUE task return of the
deterministic evaluation episodes (Acrobot: -1 per step until the goal height, range [-100, 0]), the final
epoch's and the mean over the last three epochs, per seed and averaged, next to a uniform random
policy's return over the same number of episodes. ``--with-sac`` adds SAC on the true task reward at the
same budget (an upper reference).

The budget (epochs x steps per epoch, network sizes) is printed first; the defaults fit in about 30
minutes with two runs in parallel on a 2-core machine. Runs go to a temporary directory (``--out`` keeps
them).

    .venv/bin/python benchmarks/virl_acrobot.py [--seeds 3] [--epochs 20] [--jobs 2] [--with-sac]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

MODES = ("virl_both", "virl_spatial", "virl_temporal")


def overrides(args: argparse.Namespace, variant: str, seed: int) -> list[str]:
    out = [
        "task=acrobot",
        f"variant={variant}",
        f"seed={seed}",
        f"epochs={args.epochs}",
        f"steps_per_epoch={args.steps_per_epoch}",
        f"random_steps={args.random_steps}",
        f"eval_episodes={args.eval_episodes}",
        f"checkpoint_every={args.epochs}",
        f"agent.sac.hidden={args.hidden}",
        f"agent.sac.batch_size={args.batch_size}",
        "torch_threads=1",
        "device=cpu",
    ]
    if variant.startswith("virl"):
        out += [
            f"virl.demo_seed={args.demo_seed}",
            f"virl.retrain_every={args.retrain_every}",
            f"virl.train_steps={args.train_steps}",
            f"virl.pretrain_steps={args.pretrain_steps}",
            f"virl.rollouts_kept={args.rollouts_kept}",
        ]
    return out


def train_one(job: tuple[list[str], str]) -> tuple[list[float], float]:
    """One run in a worker process: eval_return_mean per epoch and wall seconds."""
    items, run_dir = job
    from rlmu.train.config import load_config
    from rlmu.train.trainer import Trainer

    t0 = time.perf_counter()
    code = Trainer(load_config(None, items), run_dir, progress=False, log=lambda m: None).run()
    if code != 0:
        raise RuntimeError(f"run {run_dir} exited with code {code}")
    with open(Path(run_dir) / "progress.csv", newline="") as f:
        returns = [float(r["eval_return_mean"]) for r in csv.DictReader(f)]
    return returns, time.perf_counter() - t0


def random_policy_return(n: int) -> tuple[float, float]:
    import gymnasium

    import rlmu  # noqa: F401
    from rlmu.virl.rollouts import RandomPolicy, rollout

    env = gymnasium.make("rlmu/AcrobotContinuous-v0")
    rets = [
        rollout(env, RandomPolicy(env.action_space, seed=10_000 + i), seed=10_000 + i).ret for i in range(n)
    ]
    return float(np.mean(rets)), float(np.std(rets))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps-per-epoch", type=int, default=1000)
    p.add_argument("--random-steps", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--hidden", default="[256,256]", help="SAC actor/critic MLP widths")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--demo-seed", type=int, default=0)
    p.add_argument("--retrain-every", type=int, default=1000)
    p.add_argument("--train-steps", type=int, default=100, help="distance updates per round")
    p.add_argument("--pretrain-steps", type=int, default=300)
    p.add_argument("--rollouts-kept", type=int, default=20)
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    p.add_argument("--with-sac", action="store_true", help="also SAC on the true reward")
    p.add_argument("--out", type=Path, default=None, help="keep the run directories here")
    args = p.parse_args()

    variants = [*MODES, *(["sac"] if args.with_sac else [])]
    steps = args.epochs * args.steps_per_epoch
    print(
        f"budget per run: {args.epochs} epochs x {args.steps_per_epoch} env steps = {steps} steps "
        f"({args.random_steps} random first), 1 SAC update per step, SAC hidden {args.hidden}, batch "
        f"{args.batch_size}; VIRL: {args.pretrain_steps} pre-training + {args.train_steps} distance updates "
        f"every {args.retrain_every} steps on demo + {args.rollouts_kept} newest episodes; "
        f"{len(variants)} variants x {args.seeds} seeds, {args.jobs} in parallel, CPU, 1 torch thread each"
    )
    print(f"evaluation: {args.eval_episodes} deterministic episodes per epoch, TRUE task return")
    out = args.out or Path(tempfile.mkdtemp(prefix="virl_acrobot_"))
    jobs, keys = [], []
    for variant in variants:
        for seed in range(args.seeds):
            jobs.append((overrides(args, variant, seed), str(out / variant / f"seed_{seed}")))
            keys.append((variant, seed))
    t0 = time.perf_counter()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(zip(keys, pool.map(train_one, jobs), strict=True))
    total = time.perf_counter() - t0

    rand_mean, rand_std = random_policy_return(50)
    print()
    print(f"{'variant':<14} {'seed':>4} {'final':>8} {'last3':>8} {'best':>8} {'wall s':>7}")
    summary = {}
    for variant in variants:
        finals, last3 = [], []
        for seed in range(args.seeds):
            rets, wall = results[(variant, seed)]
            finals.append(rets[-1])
            last3.append(float(np.mean(rets[-3:])))
            print(
                f"{variant:<14} {seed:>4} {rets[-1]:>8.1f} {last3[-1]:>8.1f} {max(rets):>8.1f} {wall:>7.0f}"
            )
        summary[variant] = (float(np.mean(finals)), float(np.mean(last3)))
    print()
    print(f"{'variant':<14} {'mean final':>10} {'mean last3':>10}   (over {args.seeds} seeds)")
    for variant, (f, l3) in summary.items():
        print(f"{variant:<14} {f:>10.1f} {l3:>10.1f}")
    print(f"{'random policy':<14} {rand_mean:>10.1f} {'':>10}   (50 episodes, std {rand_std:.1f})")
    print("\nmean evaluation return per epoch (over seeds)")
    for variant in variants:
        curve = np.mean([results[(variant, s)][0] for s in range(args.seeds)], axis=0)
        print(f"{variant:<14} " + " ".join(f"{x:6.1f}" for x in curve))
    print("\nabove random: seeds whose mean last-3 return exceeds the random policy's")
    for variant in variants:
        above = [s for s in range(args.seeds) if np.mean(results[(variant, s)][0][-3:]) > rand_mean]
        print(f"{variant:<14} {len(above)}/{args.seeds} seeds {above}")
    both = summary["virl_both"][1]
    others = max(summary["virl_spatial"][1], summary["virl_temporal"][1])
    verdict = "higher than" if both > others else "not higher than"
    print(
        f"\nC8 at this budget: virl_both's mean last-3 return ({both:.1f}) is {verdict} the better single "
        f"mode's ({others:.1f}); {args.seeds} seeds, no interval: a measurement, not a test."
    )
    print(f"total wall time {total:.0f} s; runs in {out}")


if __name__ == "__main__":
    main()
