"""Training throughput: environment steps per second, gradient updates included, ours vs Stable-Baselines3.

Both learners run SAC in this one process, on the same task, with the same networks, batch and schedule:

- networks: pixels: encoder 3 x [conv 5x5 'same', ReLU, max-pool 2] with 16/16/32 channels -> 1152
  features at 48 px (SB3: the custom ``features_extractor_class`` below, one extractor shared by actor and
  critic, ``share_features_extractor=True``, the closest match to our single shared encoder; SB3's target
  critic has its own extractor copy, ours reads the online encoder's features of s'); state: the identity.
  Actor and twin critics: MLP (512, 256, 256), the [released] RLV size and our default; on Acrobot also
  (256, 256), SB3's default for SAC and the size of the project's state-task studies
  (``--acrobot-hidden``).
- batch 256, one gradient update per environment step (SB3 ``train_freq=1, gradient_steps=1``), Polyak
  target update every step, automatic temperature, Adam 3e-4, replay capacity ``--replay`` on both sides.
- torch on the CPU with 1 thread (``torch.set_num_threads(1)``, shared by both learners).
- the same ``--warmup`` uniform-random steps before learning (ours: ``random_steps``; SB3:
  ``learning_starts``), run once before any timing: every timed step acts with the policy and updates.

What is timed, per environment step:

- ours: ``Trainer._env_step`` of ``rlmu.train.trainer.Trainer`` built from a ``TrainConfig`` (the loop body
  that ``rlmu train`` runs): policy action (``Agent.act``), ``env.step`` (rendering included for pixels),
  replay insertion, replay sampling and one ``Agent.update`` (random-shift augmentation included: ours does
  extra work that SB3 does not). Not timed: per-epoch evaluation, CSV and checkpoint writing.
- SB3: ``SAC.learn(K, reset_num_timesteps=False)`` for a chunk of K steps (what an SB3 user runs):
  ``collect_rollouts`` (policy action, ``env.step`` through SB3's DummyVecEnv, Monitor and, for pixels,
  VecTransposeImage wrappers, replay insertion) and ``train`` (replay sampling, one update).

Measurements alternate: R rounds of [K steps ours, K steps SB3] (the order flips every round), so load
changes on a shared machine hit both sides alike. Reported: steps/s from wall time and from process CPU
time over all rounds, the ratio ours/SB3 of both, and the median of the per-round wall ratios.
Also printed: replay bytes per transition (allocated bytes / capacity) for both buffers.

Usage: python benchmarks/train_throughput.py [push acrobot] [--rounds 4] [--chunk-pixels 10]
       [--chunk-state 50] [--warmup 300] [--replay 10000] [--acrobot-hidden 512,256,256 256,256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import gymnasium as gym
import torch
from torch import nn

import rlmu  # noqa: F401  (registers the rlmu/ environments, sets MUJOCO_GL)
from rlmu.tasks import get_task
from rlmu.train.config import load_config
from rlmu.train.trainer import Trainer

TASKS = ("push", "acrobot")


def parse_hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--acrobot-hidden: {text!r} is not comma-separated integers"
        ) from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"--acrobot-hidden: {text!r} needs positive widths")
    return widths


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -------------------------------------------------------------------------------------------------- SB3
def make_sb3(task: str, hidden: tuple[int, ...], args):
    """SB3 SAC with the networks, batch and schedule of our defaults (module docstring)."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class RLVEncoder(BaseFeaturesExtractor):
        """3 x [conv 5x5 'same', ReLU, max-pool 2], 16/16/32 channels, flattened (1152 at 48 px).
        SB3 scales uint8 images to [0, 1] before calling it (``normalize_images``)."""

        def __init__(self, observation_space, channels=(16, 16, 32)):
            c, h, w = observation_space.shape
            layers, in_ch = [], c
            for out_ch in channels:
                layers += [nn.Conv2d(in_ch, out_ch, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
                in_ch, h, w = out_ch, h // 2, w // 2
            super().__init__(observation_space, features_dim=in_ch * h * w)
            self.net = nn.Sequential(*layers, nn.Flatten())

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.net(obs)

    spec = get_task(task)
    kwargs = {"image_size": 48} if spec.pixels else {}
    env = gym.make(spec.env_id, **kwargs)
    policy_kwargs = {"net_arch": {"pi": list(hidden), "qf": list(hidden)}, "n_critics": 2}
    if spec.pixels:
        policy_kwargs.update(features_extractor_class=RLVEncoder, share_features_extractor=True)
    model = SAC(
        "CnnPolicy" if spec.pixels else "MlpPolicy",
        env,
        learning_rate=3e-4,
        buffer_size=args.replay,
        learning_starts=args.warmup,
        batch_size=256,
        tau=5e-3,
        gamma=0.99,
        train_freq=1,
        gradient_steps=1,
        ent_coef="auto",
        target_update_interval=1,
        policy_kwargs=policy_kwargs,
        device="cpu",
        seed=0,
        verbose=0,
    )
    if spec.pixels:
        assert model.critic.features_extractor.features_dim == 1152, model.critic.features_extractor
    return model


def sb3_bytes_per_transition(model) -> float:
    rb = model.replay_buffer
    arrays = [rb.observations, rb.actions, rb.rewards, rb.dones, rb.timeouts]
    if rb.next_observations is not None:  # None only with optimize_memory_usage=True
        arrays.append(rb.next_observations)
    return sum(a.nbytes for a in arrays) / (rb.buffer_size * rb.n_envs)


class SB3Side:
    def __init__(self, task: str, hidden: tuple[int, ...], args):
        self.model = make_sb3(task, hidden, args)
        self.model.learn(args.warmup + 10)  # random warm-up, then 10 updates (first-call overheads)

    def steps(self, n: int) -> None:
        before = self.model.num_timesteps
        self.model.learn(n, reset_num_timesteps=False)
        assert self.model.num_timesteps == before + n


# -------------------------------------------------------------------------------------------------- ours
class OurSide:
    def __init__(self, task: str, hidden: tuple[int, ...], args):
        cfg = load_config(
            None,
            [
                f"task={task}",
                "variant=sac",
                "seed=0",
                "epochs=1000",
                f"random_steps={args.warmup}",
                f"replay_size={args.replay}",
                "torch_threads=1",
                "device=cpu",
                "image_size=48",
                f"agent.sac.hidden=[{','.join(map(str, hidden))}]",
            ],
        )
        assert cfg.agent.sac.batch_size == 256 and cfg.agent.sac.hidden == tuple(hidden)
        assert cfg.updates_per_step == 1
        self.trainer = Trainer(cfg, tempfile.mkdtemp(prefix="rlmu_throughput_"), log=lambda msg: None)
        self.obs = None
        self.steps(args.warmup + 10)  # random warm-up, then 10 updates
        assert self.trainer.state["updates"] >= 10

    def steps(self, n: int) -> None:
        for _ in range(n):
            self.obs = self.trainer._env_step(self.obs)


# ------------------------------------------------------------------------------------------------- main
def bench_task(task: str, hidden: tuple[int, ...], args) -> dict:
    chunk = args.chunk_pixels if get_task(task).pixels else args.chunk_state
    ours, sb3 = OurSide(task, hidden, args), SB3Side(task, hidden, args)
    label = f"{task} {'x'.join(map(str, hidden))}"
    sides = {"ours": ours, "sb3": sb3}
    wall = {"ours": 0.0, "sb3": 0.0}
    cpu = {"ours": 0.0, "sb3": 0.0}
    round_ratios = []
    for r in range(args.rounds):
        order = ("ours", "sb3") if r % 2 == 0 else ("sb3", "ours")
        this = {}
        for name in order:
            w0, c0 = time.perf_counter(), time.process_time()
            sides[name].steps(chunk)
            this[name] = time.perf_counter() - w0
            wall[name] += this[name]
            cpu[name] += time.process_time() - c0
        round_ratios.append(this["sb3"] / this["ours"])
        print(
            f"  {label} round {r + 1}/{args.rounds}: ours {chunk / this['ours']:6.1f} steps/s, "
            f"sb3 {chunk / this['sb3']:6.1f} steps/s (load {load()})",
            flush=True,
        )
    n = chunk * args.rounds
    return {
        "task": label,
        "steps": n,
        "ours_wall": n / wall["ours"],
        "sb3_wall": n / wall["sb3"],
        "ours_cpu": n / cpu["ours"],
        "sb3_cpu": n / cpu["sb3"],
        "median_ratio": statistics.median(round_ratios),
        "ours_bpt": ours.trainer.replay.bytes_per_transition,
        "sb3_bpt": sb3_bytes_per_transition(sb3.model),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tasks", nargs="*", help=f"any of {' '.join(TASKS)} (default: both)")
    ap.add_argument("--rounds", type=int, default=4, help="alternating [ours, SB3] measurement rounds")
    ap.add_argument("--chunk-pixels", type=int, default=10, help="env steps per side per round, push")
    ap.add_argument("--chunk-state", type=int, default=50, help="env steps per side per round, acrobot")
    ap.add_argument("--warmup", type=int, default=300, help="random steps before learning (>= 256)")
    ap.add_argument("--replay", type=int, default=10_000, help="replay capacity, both sides")
    ap.add_argument(
        "--acrobot-hidden",
        nargs="+",
        type=parse_hidden,
        default=[(512, 256, 256), (256, 256)],
        help="actor/critic MLP widths for acrobot, one case each (default: 512,256,256 256,256)",
    )
    args = ap.parse_args()
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        ap.error(f"unknown task(s) {unknown}; choose from {' '.join(TASKS)}")
    if args.warmup < 256:
        ap.error("--warmup must be >= 256 (the batch size) so that both sides sample full batches")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread; load average {load()}", flush=True)
    cases = [
        (t, h)
        for t in (args.tasks or TASKS)
        for h in (args.acrobot_hidden if t == "acrobot" else [(512, 256, 256)])
    ]
    results = [bench_task(t, h, args) for t, h in cases]
    print(
        f"\nSAC env steps/s incl. one update per step (batch 256, 1 torch thread), {args.rounds} "
        f"alternating rounds; load average at the end {load()}"
    )
    print(
        " task (MLP)          | steps | ours wall | SB3 wall | ratio | median round | ours cpu | SB3 cpu | ratio "
        "| replay B/transition ours | SB3"
    )
    print(
        "---------------------+-------+-----------+----------+-------+--------------+----------+---------+-------"
        "+--------------------------+-------"
    )
    for r in results:
        print(
            f" {r['task']:19s} | {r['steps']:5d} | {r['ours_wall']:9.1f} | {r['sb3_wall']:8.1f} | "
            f"{r['ours_wall'] / r['sb3_wall']:4.2f}x | {r['median_ratio']:11.2f}x | {r['ours_cpu']:8.1f} | "
            f"{r['sb3_cpu']:7.1f} | {r['ours_cpu'] / r['sb3_cpu']:4.2f}x | {r['ours_bpt']:24.0f} | "
            f"{r['sb3_bpt']:.0f}"
        )


if __name__ == "__main__":
    main()
