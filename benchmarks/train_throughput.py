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
from pathlib import Path

import gymnasium as gym
import torch
from torch import nn

import rlmu  # noqa: F401  (registers the rlmu/ environments, sets MUJOCO_GL)
from rlmu.tasks import get_task
from rlmu.train.cli import load_pack
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
    """A seed pack of ``pack`` members of ``variant`` (``Trainer._env_step``: every member acts, steps its
    environment, stores the transition, and the pack takes one update)."""

    seeds_per_step: int

    def __init__(self, task: str, hidden: tuple[int, ...], args, *, variant="sac", pack=1, data=None):
        overrides = [
            f"task={task}",
            f"variant={variant}",
            "seeds=[" + ",".join(str(s) for s in range(pack)) + "]",
            "epochs=1000",
            f"random_steps={args.warmup}",
            f"replay_size={args.replay}",
            "torch_threads=1",
            "device=cpu",
            "image_size=48",
            f"agent.sac.hidden=[{','.join(map(str, hidden))}]",
        ]
        if data is not None:
            overrides += [f"data.observations={data}", "agent.rlv.paired=false"]
        cfgs = load_pack(None, overrides)
        assert cfgs[0].agent.sac.batch_size == 256 and cfgs[0].agent.sac.hidden == tuple(hidden)
        assert cfgs[0].updates_per_step == 1
        root = Path(tempfile.mkdtemp(prefix="rlmu_throughput_"))
        self.trainer = Trainer(
            cfgs, [root / f"seed_{c.seed}" for c in cfgs], root / "pack", log=lambda msg: None, progress=False
        )
        self.seeds_per_step = pack
        for m in self.trainer.members:
            m.run_dir.mkdir(parents=True)
        self.steps(args.warmup + 10)  # random warm-up, then 10 updates
        assert self.trainer.state.updates >= 10

    def steps(self, n: int) -> None:
        for _ in range(n):
            self.trainer._env_step()


def acrobot_videos(directory: Path) -> Path:
    """A small observation-video file of Acrobot's medium-quality demonstrator (the RLV cases)."""
    from rlmu.data.format import save_video_dataset
    from rlmu.data.generate import generate_videos

    path = directory / "acrobot_obs.npz"
    save_video_dataset(path, generate_videos("acrobot", n_transitions=2000, quality="medium", seed=0))
    return path


# ------------------------------------------------------------------------------------------------- main
def bench(label: str, sides: dict, chunk: int, args) -> dict:
    """Alternating rounds over ``sides`` (the order rotates every round); per-seed env steps/s of each."""
    names = list(sides)
    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    rounds: list[dict[str, float]] = []
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        this = {}
        for name in order:
            w0, c0 = time.perf_counter(), time.process_time()
            sides[name].steps(chunk)
            this[name] = time.perf_counter() - w0
            wall[name] += this[name]
            cpu[name] += time.process_time() - c0
        rounds.append({k: chunk * getattr(sides[k], "seeds_per_step", 1) / v for k, v in this.items()})
        print(
            f"  {label} round {r + 1}/{args.rounds}: "
            + ", ".join(f"{k} {rounds[-1][k]:6.1f}" for k in names)
            + f" per-seed steps/s (load {load()})",
            flush=True,
        )
    n = chunk * args.rounds
    out = {"label": label, "steps": n, "sides": {}}
    for k in names:
        per = getattr(sides[k], "seeds_per_step", 1)
        out["sides"][k] = {"wall": per * n / wall[k], "cpu": per * n / cpu[k]}
    out["rounds"] = rounds
    return out


def ratio_line(result: dict, a: str, b: str) -> str:
    ra = result["sides"][a]["wall"] / result["sides"][b]["wall"]
    rc = result["sides"][a]["cpu"] / result["sides"][b]["cpu"]
    med = statistics.median(r[a] / r[b] for r in result["rounds"])
    return f" {result['label']:26s} | {a:>9s} / {b:<9s} | {ra:5.2f}x | {med:5.2f}x | {rc:5.2f}x"


def study_hours(config: Path, rates: dict[str, float], parallel: int) -> float:
    """Wall hours of a study config at per-seed rates {"sac": steps/s, "rlv": steps/s} with ``parallel``
    processes (one per core); VIRL variants count at the SAC rate, every RLV-family variant at the RLV rate."""
    import yaml

    study = yaml.safe_load(config.read_text())
    seed_steps = {"sac": 0, "rlv": 0}
    for spec in study["tasks"].values():
        seeds = len(spec.get("seeds", study["seeds"]))
        steps = spec["train"]["epochs"] * spec["train"]["steps_per_epoch"] * seeds
        for v in spec["variants"]:
            seed_steps["sac" if v == "sac" or v.startswith("virl") else "rlv"] += steps
    return sum(seed_steps[k] / rates[k] for k in seed_steps) / parallel / 3600


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tasks", nargs="*", help=f"any of {' '.join(TASKS)} (default: both)")
    ap.add_argument("--rounds", type=int, default=4, help="alternating measurement rounds")
    ap.add_argument("--chunk-pixels", type=int, default=6, help="env steps per side per round, push")
    ap.add_argument("--chunk-state", type=int, default=30, help="env steps per side per round, acrobot")
    ap.add_argument("--warmup", type=int, default=300, help="random steps before learning (>= 256)")
    ap.add_argument("--replay", type=int, default=10_000, help="replay capacity, both sides")
    ap.add_argument("--pack", type=int, default=10, help="pack size of the Acrobot packs")
    ap.add_argument("--pixel-pack", type=int, default=4, help="pack size of the pixel pack")
    args = ap.parse_args()
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        ap.error(f"unknown task(s) {unknown}; choose from {' '.join(TASKS)}")
    if args.warmup < 256:
        ap.error("--warmup must be >= 256 (the batch size) so that both sides sample full batches")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread; load average {load()}", flush=True)
    tasks = args.tasks or TASKS
    results, lines = [], []
    k = args.pack
    if "acrobot" in tasks:
        h = (256, 256)
        r = bench(
            "acrobot sac 256x256",
            {"pack1": OurSide("acrobot", h, args), f"pack{k}": OurSide("acrobot", h, args, pack=k),
             "sb3": SB3Side("acrobot", h, args)},
            args.chunk_state,
            args,
        )  # fmt: skip
        results.append(r)
        lines += [
            ratio_line(r, f"pack{k}", "sb3"),
            ratio_line(r, "pack1", "sb3"),
            ratio_line(r, f"pack{k}", "pack1"),
        ]
        data = acrobot_videos(Path(tempfile.mkdtemp(prefix="rlmu_throughput_data_")))
        r2 = bench(
            "acrobot rlv_nopair 256x256",
            {"pack1": OurSide("acrobot", h, args, variant="rlv_nopair", data=data),
             f"pack{k}": OurSide("acrobot", h, args, variant="rlv_nopair", pack=k, data=data)},
            max(1, args.chunk_state // 2),
            args,
        )  # fmt: skip
        results.append(r2)
        lines.append(ratio_line(r2, f"pack{k}", "pack1"))
    if "push" in tasks:
        h = (512, 256, 256)
        kp = args.pixel_pack
        r3 = bench(
            "push 48px sac 512x256x256",
            {"pack1": OurSide("push", h, args), f"pack{kp}": OurSide("push", h, args, pack=kp),
             "sb3": SB3Side("push", h, args)},
            args.chunk_pixels,
            args,
        )  # fmt: skip
        results.append(r3)
        lines += [ratio_line(r3, "pack1", "sb3"), ratio_line(r3, f"pack{kp}", "pack1")]
    print(f"\nPer-seed env steps/s incl. one update per step (batch 256, 1 torch thread), {args.rounds} "
          f"rotating rounds; load average at the end {load()}")  # fmt: skip
    for r in results:
        print(f" {r['label']:26s} | " + " | ".join(
            f"{name} {v['wall']:6.1f} wall, {v['cpu']:6.1f} cpu" for name, v in r["sides"].items()))  # fmt: skip
    print("\n case                       | ratio                 | wall  | median round | cpu")
    for line in lines:
        print(line)
    if "acrobot" in tasks:
        cfg = Path(__file__).resolve().parents[1] / "config" / "acrobot.yaml"
        before = {"sac": results[0]["sides"]["pack1"]["wall"], "rlv": results[1]["sides"]["pack1"]["wall"]}
        after = {
            "sac": results[0]["sides"][f"pack{k}"]["wall"],
            "rlv": results[1]["sides"][f"pack{k}"]["wall"],
        }
        print("\nconfig/acrobot.yaml on this machine (2 cores, two jobs at a time), at the measured rates:")
        print(f"  one seed per process: {study_hours(cfg, before, 2):5.1f} h")
        print(f"  packs of {k}:          {study_hours(cfg, after, 2):5.1f} h")


if __name__ == "__main__":
    main()
