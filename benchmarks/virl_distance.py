"""Does the learned VIRL distance rank a demonstrator's re-run above a random policy and a reversed demo?

For each task (VisualPush at 48 px from pixels, Acrobot from states):

1. Record ONE scripted demonstration (the expert without noise, reset seed ``--demo-seed``).
2. Collect agent data: random-policy rollouts and noisy-expert rollouts (never the clean expert), plus
   "other task" videos (VisualPush: DrawerOpen expert videos at the same size; Acrobot: none).
3. Train the recurrent Siamese distance for ``--steps`` updates on the pairs of ``rlmu.virl.pairs``.
4. Score three held-out sequences against the demonstration, under each reward mode (``both``,
   ``spatial_only``, ``temporal_only``; linear shaping): (i) the demonstrator re-run from DIFFERENT reset
   seeds (new puck positions / start states, not the demo itself), (ii) a random policy's rollouts from
   those seeds, (iii) the demo reversed in time. The demo scored against itself is printed as a reference (0).

A sequence's return is the sum of its per-transition rewards (transition t earns the reward of frame
t + 1). Push episodes all last 100 steps; Acrobot episodes end at the goal, so its table also gives the
mean reward per transition, which is what its acceptance uses (a shorter episode sums fewer negative terms).
Two acceptance checks, per task and mode, both printed: "same start": from each held-out reset seed the re-run
(i) beats the random rollout (ii) of the same seed (same scene), and every re-run beats the reversed demo
(iii); "strict": the worst re-run beats the best random rollout of any seed and the reversed demo. The exit
status is 0 only when the strict check passes for every task and mode.

    .venv/bin/python benchmarks/virl_distance.py [--task push|acrobot|all] [--steps N] [--threads K] [--rgb]
        [--n-random 12] [--n-noisy 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch

import rlmu  # noqa: F401  (registers the tasks, sets MUJOCO_GL)
from rlmu.experts import make_expert
from rlmu.virl import DistanceLearner, VirlConfig, sequence_rewards
from rlmu.virl.rollouts import RandomPolicy, reversed_frames, rollout

MODES = ("both", "spatial_only", "temporal_only")


@dataclass
class TaskData:
    name: str
    demo: np.ndarray
    agent: list[np.ndarray]
    other: list[np.ndarray]
    held_out: dict[str, np.ndarray]  # label -> frames to score
    notes: list[str]


def push_data(args: argparse.Namespace) -> TaskData:
    env = gymnasium.make("rlmu/VisualPush-v0", image_size=48)
    demo_ep = rollout(env, make_expert("push", noise=0.0, seed=args.demo_seed), args.demo_seed)
    agent, notes = (
        [],
        [f"demo: reset seed {args.demo_seed}, env return {demo_ep.ret:.0f}, success {demo_ep.success}"],
    )
    for i in range(args.n_random):
        agent.append(rollout(env, RandomPolicy(env.action_space, 1000 + i), 1000 + i).frames)
    noisy_ret = []
    for i in range(args.n_noisy):
        ep = rollout(env, make_expert("push", noise=args.push_noise, seed=2000 + i), 2000 + i)
        agent.append(ep.frames)
        noisy_ret.append(ep.ret)
    notes.append(
        f"agent data: {args.n_random} random + {args.n_noisy} noisy-expert (noise {args.push_noise}, env returns "
        f"{', '.join(f'{r:.0f}' for r in noisy_ret)}) rollouts"
    )
    held = {"demo itself (reference)": demo_ep.frames}
    puck_x = {s: float(env.reset(seed=s)[1]["state"][4]) for s in [args.demo_seed, *args.eval_seeds]}
    for s in args.eval_seeds:
        ep = rollout(env, make_expert("push", noise=0.0, seed=s), s)
        held[f"(i) demonstrator re-run, seed {s}"] = ep.frames
        notes.append(
            f"held out seed {s}: puck x {puck_x[s]:+.3f} m (demo {puck_x[args.demo_seed]:+.3f}); "
            f"re-run env return {ep.ret:.0f}"
        )
    for s in args.eval_seeds:
        held[f"(ii) random policy, seed {s}"] = rollout(env, RandomPolicy(env.action_space, s), s).frames
    held["(iii) reversed demo"] = reversed_frames(demo_ep.frames)
    env.close()
    other = []
    if args.n_other:
        denv = gymnasium.make("rlmu/VisualDrawerOpen-v0", image_size=48)
        for i in range(args.n_other):
            other.append(rollout(denv, make_expert("drawer", noise=0.0, seed=3000 + i), 3000 + i).frames)
        denv.close()
        notes.append(f"other-task videos: {args.n_other} DrawerOpen expert episodes")
    return TaskData("VisualPush-v0 (48 px pixels)", demo_ep.frames, agent, other, held, notes)


def acrobot_data(args: argparse.Namespace) -> TaskData:
    env = gymnasium.make("rlmu/AcrobotContinuous-v0")
    demo_ep = rollout(env, make_expert("acrobot", quality="high", seed=args.demo_seed), args.demo_seed)
    notes = [f"demo: reset seed {args.demo_seed}, {demo_ep.steps} steps, env return {demo_ep.ret:.0f}"]
    agent = [
        rollout(env, RandomPolicy(env.action_space, 1000 + i), 1000 + i).frames for i in range(args.n_random)
    ]
    noisy = [
        rollout(env, make_expert("acrobot", quality=("low", "medium")[i % 2], seed=2000 + i), 2000 + i)
        for i in range(args.n_noisy)
    ]
    agent += [ep.frames for ep in noisy]
    notes.append(
        f"agent data: {args.n_random} random + {args.n_noisy} low/medium-quality expert rollouts "
        f"(env returns {', '.join(f'{ep.ret:.0f}' for ep in noisy)})"
    )
    held = {"demo itself (reference)": demo_ep.frames}
    for s in args.eval_seeds:
        ep = rollout(env, make_expert("acrobot", quality="high", seed=s), s)
        held[f"(i) demonstrator re-run, seed {s}"] = ep.frames
        notes.append(f"held out seed {s}: re-run {ep.steps} steps (env return {ep.ret:.0f})")
    for s in args.eval_seeds:
        ep = rollout(env, RandomPolicy(env.action_space, s), s)
        held[f"(ii) random policy, seed {s}"] = ep.frames
        notes.append(f"held out seed {s}: random {ep.steps} steps (env return {ep.ret:.0f})")
    held["(iii) reversed demo"] = reversed_frames(demo_ep.frames)
    env.close()
    return TaskData("AcrobotContinuous-v0 (6-D states)", demo_ep.frames, agent, [], held, notes)


def score(
    learner: DistanceLearner, data: TaskData, cfg: VirlConfig
) -> dict[tuple[str, str], tuple[float, float]]:
    """(label, mode) -> (return, mean reward per transition)."""
    out = {}
    for mode in MODES:
        mcfg = cfg.model_copy(update={"reward_mode": mode})
        for label, frames in data.held_out.items():
            r = sequence_rewards(learner.model, data.demo, frames, mcfg)[1:]  # transition t earns frame t+1
            out[(label, mode)] = (float(r.sum()), float(r.mean()))
    return out


def run_task(data: TaskData, args: argparse.Namespace, per_step: bool) -> bool:
    frame_shape = data.demo.shape[1:]
    cfg = VirlConfig(
        lr=args.lr, batch_size=args.batch_size, grayscale=args.grayscale, rnn=args.rnn, train_steps=args.steps
    )
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    learner = DistanceLearner(frame_shape, cfg)
    print(f"\n== {data.name}")
    for note in data.notes:
        print(f"   {note}")
    t0 = time.perf_counter()
    chunk = max(1, args.steps // 5)
    done = 0
    while done < args.steps:
        n = min(chunk, args.steps - done)
        losses = learner.train(data.demo, data.agent, data.other, rng, steps=n)
        done += n
        print(
            f"   update {done:5d}: loss_distance {losses['loss_distance']:.3f} (sequence {losses['loss_sequence']:.3f}, "
            f"frame {losses['loss_frame']:.3f}), {time.perf_counter() - t0:.0f} s"
        )
    result = score(learner, data, cfg)
    width = max(len(k) for k in data.held_out)
    cw = 17 if per_step else 13
    header = f"   {'sequence':<{width}} | " + " | ".join(f"{m:>{cw}}" for m in MODES)
    print(
        f"   returns (sum of per-transition rewards){'; mean per transition in brackets' if per_step else ''}:"
    )
    print(header)
    print("   " + "-" * (len(header) - 3))
    for label in data.held_out:
        cells = []
        for m in MODES:
            total, mean = result[(label, m)]
            cells.append(f"{total:8.2f} [{mean:6.3f}]" if per_step else f"{total:13.2f}")
        print(f"   {label:<{width}} | " + " | ".join(f"{c:>{cw}}" for c in cells))
    ok, same_ok = True, True
    k = 1 if per_step else 0
    what = "mean per transition" if per_step else "return"
    for m in MODES:
        rerun = min(v[k] for (label, mode), v in result.items() if mode == m and label.startswith("(i) "))
        rand = max(v[k] for (label, mode), v in result.items() if mode == m and label.startswith("(ii) "))
        rev = result[("(iii) reversed demo", m)][k]
        passed = rerun > rand and rerun > rev
        ok &= passed
        print(
            f"   acceptance {m:>13}: worst re-run {what} > best random and > reversed: {'PASS' if passed else 'FAIL'}"
        )
    for m in MODES:
        # Same start state: the re-run and the random rollout from one reset seed see the same scene.
        wins = [
            result[(f"(i) demonstrator re-run, seed {s}", m)][k]
            > result[(f"(ii) random policy, seed {s}", m)][k]
            for s in args.eval_seeds
        ]
        rev = result[("(iii) reversed demo", m)][k]
        above_rev = all(result[(f"(i) demonstrator re-run, seed {s}", m)][k] > rev for s in args.eval_seeds)
        passed = all(wins) and above_rev
        same_ok &= passed
        print(
            f"   same start {m:>13}: re-run > random from the same seed in {sum(wins)}/{len(wins)}, every re-run "
            f"> reversed: {above_rev}: {'PASS' if passed else 'FAIL'}"
        )
    return ok, same_ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=["push", "acrobot", "all"], default="all")
    p.add_argument("--steps", type=int, default=600, help="distance-model updates (default 600)")
    p.add_argument("--acrobot-steps", type=int, default=None, help="updates for Acrobot (default: --steps)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--rnn", choices=["gru", "lstm"], default="gru")
    p.add_argument(
        "--rgb",
        dest="grayscale",
        action="store_false",
        help="encode RGB pixels (default: luminance only, which METHODS allows for VIRL)",
    )
    p.add_argument("--n-random", type=int, default=12, help="random-policy rollouts in the agent data")
    p.add_argument("--n-noisy", type=int, default=4, help="noisy-expert rollouts in the agent data")
    p.add_argument("--n-other", type=int, default=2, help="DrawerOpen videos as other-task negatives (push)")
    p.add_argument("--push-noise", type=float, default=0.5, help="action-noise std of the noisy push expert")
    p.add_argument("--demo-seed", type=int, default=0)
    p.add_argument(
        "--eval-seeds",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[2, 3, 4],
        help="comma-separated reset seeds of the held-out rollouts, all != --demo-seed (default 2,3,4: "
        "push starts 7.5, 11 and 6 cm from the demo's puck)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the model and the pair sampler")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the default keeps CPU use low)")
    args = p.parse_args(argv)
    if args.demo_seed in args.eval_seeds:
        p.error("--eval-seeds must not contain --demo-seed (a re-run must not be the demo itself)")
    if args.steps < 1:
        p.error("--steps must be >= 1")
    torch.set_num_threads(args.threads)
    print(
        f"VIRL distance benchmark: {args.steps} updates, batch {args.batch_size}, lr {args.lr}, {args.rnn}, "
        f"grayscale {args.grayscale}, torch threads {args.threads}"
    )
    ok, same_ok = True, True
    if args.task in ("push", "all"):
        strict, same = run_task(push_data(args), args, per_step=False)
        ok, same_ok = ok and strict, same_ok and same
    if args.task in ("acrobot", "all"):
        acro_args = argparse.Namespace(**vars(args))
        if args.acrobot_steps is not None:
            acro_args.steps = args.acrobot_steps
        strict, same = run_task(acrobot_data(acro_args), acro_args, per_step=True)
        ok, same_ok = ok and strict, same_ok and same
    print(
        f"\noverall, same start (re-run vs random from each seed, and vs reversed): {'PASS' if same_ok else 'FAIL'}"
    )
    print(f"overall, strict (worst re-run vs best random of any seed): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
