"""GPU check of the seed-pack agent: one command, a few minutes on one GPU.

1. **Losses agree across devices.** A pixel RLV pack (48 px, seeds 0 and 1) is built on the CPU and copied to
   the GPU (same parameters); both compute every loss of the same batch with the same policy noise and no
   augmentation (random draws differ between CPU and CUDA generators). The relative error of each loss and
   member must be under ``--tol`` (1e-4, float32). The GPU runs the encoder as one grouped convolution over
   the pack, the CPU member by member, so this also checks the grouped path.
2. **A short pixel RLV pack trains** on the GPU (``rlmu train`` code path: ``Trainer``), every member
   completing with finite losses.
3. **Throughput**: per-seed environment steps/s (updates included) of pixel RLV packs of 1 and of
   ``--pack`` (10) on the GPU, side by side in rotating rounds (target: the pack of 10 >= 5x per seed).

``--device cpu`` runs the same checks without a GPU (part 1 then compares the CPU's grouped-convolution path
with its member-by-member path); the test suite runs it that way, with tiny sizes.

Usage: python benchmarks/gpu_check.py [--device cuda] [--pack 10] [--steps 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import rlmu  # noqa: F401  (registers the tasks, sets MUJOCO_GL)
from rlmu.agent import Agent, AgentConfig


def make_data(directory: Path, transitions: int, pairs: int) -> tuple[Path, Path]:
    """Small push observation videos (human domain) and paired robot/human frames."""
    from rlmu.data.format import save_paired_dataset, save_video_dataset
    from rlmu.data.generate import generate_paired, generate_videos

    obs, paired = directory / "push_obs.npz", directory / "push_paired.npz"
    save_video_dataset(obs, generate_videos("push", domain="human", n_transitions=transitions, seed=0))
    save_paired_dataset(paired, generate_paired("push", n=pairs, domain="human", seed=0))
    return obs, paired


def _batch(rng: np.random.Generator, k: int, b: int, obs_shape, action_dim: int, actions: bool) -> dict:
    out = {
        "obs": rng.integers(0, 256, (k, b, *obs_shape), dtype=np.uint8),
        "next_obs": rng.integers(0, 256, (k, b, *obs_shape), dtype=np.uint8),
        "reward": rng.normal(size=(k, b)).astype(np.float32),
        "terminal": (rng.uniform(size=(k, b)) < 0.1).astype(np.float32),
    }
    if actions:
        out["action"] = rng.uniform(-1, 1, (k, b, action_dim)).astype(np.float32)
    return out


def loss_agreement(device: str, batch_size: int = 32, image_size: int = 48) -> dict[str, float]:
    """Largest relative error per loss between a pixel RLV pack on the CPU and a copy on ``device`` (on the
    CPU: the copy runs the grouped-convolution encoder)."""
    cfg = AgentConfig.model_validate(
        {
            "rlv": {"enabled": True, "paired": True},
            "encoder": {"augment": False},
            "sac": {"batch_size": batch_size},
        }
    )
    obs_shape, action_dim, seeds = (3, image_size, image_size), 4, (0, 1)
    ref = Agent(cfg, obs_shape, action_dim, "cpu", seeds=seeds)
    other = Agent(cfg, obs_shape, action_dim, device, seeds=seeds)
    other.load_state_dict(ref.state_dict())
    if torch.device(device).type == "cpu":
        other.encoder.grouped = True
    rng = np.random.default_rng(0)
    batch = _batch(rng, len(seeds), batch_size, obs_shape, action_dim, actions=True)
    obs_batch = _batch(rng, len(seeds), batch_size, obs_shape, action_dim, actions=False)
    paired = {
        "robot": rng.integers(0, 256, (len(seeds), 16, *obs_shape), dtype=np.uint8),
        "human": rng.integers(0, 256, (len(seeds), 16, *obs_shape), dtype=np.uint8),
    }
    noise = torch.randn((len(seeds), 2 * batch_size, action_dim), generator=torch.Generator().manual_seed(1))
    errors = {}
    values = {}
    for agent in (ref, other):
        # The same policy noise on both devices (their generators differ); rows as many as a batch asks.
        agent._noise = lambda shape, a=agent: noise[:, : shape[0]].to(a.device)
        losses = agent.compute_losses(batch, obs_batch, paired)
        values[agent is ref] = {k: v.detach().double().cpu() for k, v in losses.items()}
    for name, want in values[True].items():
        got = values[False][name]
        errors[name] = float(((got - want).abs() / want.abs().clamp_min(1e-12)).max())
    return errors


def throughput(
    device: str, obs: Path, paired: Path, packs: list[int], steps: int, rounds: int
) -> dict[int, float]:
    """Per-seed env steps/s of pixel RLV packs (one update per step), rotating rounds of ``steps`` steps."""
    from rlmu.train.cli import load_pack
    from rlmu.train.trainer import Trainer

    trainers = {}
    for k in packs:
        cfgs = load_pack(
            None,
            [
                "task=push",
                "variant=rlv",
                "seeds=[" + ",".join(map(str, range(k))) + "]",
                "epochs=1000",
                "random_steps=300",
                "replay_size=5000",
                f"device={device}",
                f"data.observations={obs}",
                f"data.paired={paired}",
            ],
        )
        root = Path(tempfile.mkdtemp(prefix="rlmu_gpu_check_"))
        t = Trainer(
            cfgs, [root / f"seed_{c.seed}" for c in cfgs], root / "pack", log=lambda m: None, progress=False
        )
        for _ in range(305):  # random phase, then a few updates (first-call overheads)
            t._env_step()
        trainers[k] = t
    totals = dict.fromkeys(packs, 0.0)
    for r in range(rounds):
        order = packs[r % len(packs) :] + packs[: r % len(packs)]
        for k in order:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                trainers[k]._env_step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            totals[k] += time.perf_counter() - t0
    return {k: k * steps * rounds / totals[k] for k in packs}


def short_pack_run(device: str, obs: Path, paired: Path, root: Path, seeds=(0, 1, 2)) -> dict[int, str]:
    """A short pixel RLV pack through the trainer; returns each member's run status."""
    import json

    from rlmu.train.cli import load_pack
    from rlmu.train.trainer import Trainer

    cfgs = load_pack(
        None,
        [
            "task=push", "variant=rlv", "seeds=[" + ",".join(map(str, seeds)) + "]", "epochs=2",
            "steps_per_epoch=60", "random_steps=40", "eval_episodes=1", f"device={device}",
            f"data.observations={obs}", f"data.paired={paired}", "agent.sac.batch_size=32",
            "agent.rlv.obs_batch_size=32",
        ],
    )  # fmt: skip
    code = Trainer(
        cfgs, [root / f"seed_{s}" for s in seeds], root / "pack", log=lambda m: None, progress=False
    ).run()
    if code != 0:
        raise SystemExit(f"short pixel RLV pack on {device} exited {code}")
    return {s: json.loads((root / f"seed_{s}" / "run.json").read_text())["status"] for s in seeds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--pack", type=int, default=10, help="the large pack size of the throughput part")
    ap.add_argument("--steps", type=int, default=40, help="env steps per pack per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-4, help="largest relative loss error allowed")
    ap.add_argument("--transitions", type=int, default=2000, help="observation transitions generated")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu for the CPU-side checks")
    t0 = time.perf_counter()
    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""), flush=True)  # fmt: skip

    errors = loss_agreement(args.device)
    worst = max(errors.values())
    print("1. relative loss error, CPU vs " + args.device + ": "
          + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()), flush=True)  # fmt: skip
    print(f"   largest {worst:.1e}: {'PASS' if worst < args.tol else 'FAIL'} (tolerance {args.tol:g})")

    data_dir = Path(tempfile.mkdtemp(prefix="rlmu_gpu_data_"))
    obs, paired = make_data(data_dir, args.transitions, 64)
    statuses = short_pack_run(args.device, obs, paired, data_dir / "short")
    print(f"2. short pixel RLV pack on {args.device}: {statuses}", flush=True)

    rates = throughput(args.device, obs, paired, [1, args.pack], args.steps, args.rounds)
    ratio = rates[args.pack] / rates[1]
    print(f"3. pixel RLV per-seed env steps/s on {args.device}: pack 1 {rates[1]:.1f}, pack {args.pack} "
          f"{rates[args.pack]:.1f}, ratio {ratio:.2f}x (target 5x)")  # fmt: skip
    print(f"total {time.perf_counter() - t0:.0f} s")
    if worst >= args.tol or any(s != "completed" for s in statuses.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
