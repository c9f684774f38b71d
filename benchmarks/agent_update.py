"""Milliseconds per agent update on pixel batches: SAC, RLV (per-loss optimizers and summed losses), RLMU.

48 px frames, default config (METHODS section 3): 256 interaction transitions, and for RLV/RLMU 256
observation transitions; RLV's paired loss on min(256, --pairs) robot/human pairs, which is what the trainer
draws from a paired dataset of ``--pairs`` states (``rlmu data paired`` makes 200 by default); RLMU's MEM
loss on 32 sub-sequences of 8 frames at every update (``mem.period = 1``). Batches are random uint8 frames
(speed does not depend on the content). Only ``Agent.update`` is timed: no environment, no replay sampling
(``train_throughput.py`` times the whole loop). ``--pack K`` trains a pack of K seeds (every batch gets a
leading pack axis of K members); the default is a pack of one, a seed trained alone.

Per variant: ``--warmup`` untimed updates, then ``--repeats`` timed ones; printed: median and mean wall
time per update and the mean process CPU time per update, and the CPU time per member (CPU time is less
sensitive to other work on a shared machine; with more than one torch thread it exceeds wall time).

``--state`` instead times SAC on Acrobot-shaped state batches (6-D observations, 1-D action, batch 256,
actor/critic MLP ``--hidden``, default 256,256, a pack of ``--pack``): the whole update, and split into its
forward part (``Agent.compute_losses``: target critics, critics, critics for the actor loss, actor twice)
and its gradient and optimizer part (``Agent._step``: one ``torch.autograd.grad`` per loss w.r.t. its own
groups, then every Adam step), next to one 256x256x256 matrix product for scale.

Usage: python benchmarks/agent_update.py [sac rlv rlv_summed rlmu] [--pack 1] [--threads 1]
       [--channels-first] [--device cpu] [--repeats 10] [--warmup 2] [--pairs 200]
       python benchmarks/agent_update.py --state [--hidden 256,256] [--pack 1] [--repeats 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from rlmu.agent import Agent, AgentConfig

VARIANTS = {
    "sac": {},
    "rlv": {"rlv": {"enabled": True, "paired": True}},
    "rlv_summed": {"rlv": {"enabled": True, "paired": True, "per_loss_optimizers": False}},
    "rlmu": {"rlv": {"enabled": True}, "mem": {"enabled": True}},
}


def frames(k: int, n: int, device: str) -> torch.Tensor:
    return torch.randint(0, 256, (k, n, 3, 48, 48), dtype=torch.uint8, device=device)


def batches(cfg: AgentConfig, k: int, pairs: int, device: str) -> tuple[dict, dict, dict, dict]:
    """Interaction, observation, paired and MEM batches of a pack of ``k`` with the sizes the trainer draws
    for ``cfg``."""
    b, bo = cfg.sac.batch_size, cfg.rlv.obs_batch_size
    inter = {
        "obs": frames(k, b, device),
        "next_obs": frames(k, b, device),
        "action": torch.rand(k, b, 2, device=device) * 2 - 1,
        "reward": torch.rand(k, b, device=device),
        "terminal": torch.zeros(k, b, device=device),
    }
    obs = {
        "obs": frames(k, bo, device),
        "next_obs": frames(k, bo, device),
        "reward": torch.rand(k, bo, device=device),
        "terminal": torch.zeros(k, bo, device=device),
    }
    n_pairs = min(bo, pairs)
    paired = {"robot": frames(k, n_pairs, device), "human": frames(k, n_pairs, device)}
    m, s = cfg.mem.batch_size, cfg.mem.subseq_len
    mem = {
        "frames": frames(k, m * s, device).view(k, m, s, 3, 48, 48),
        "label": torch.randint(0, cfg.mem.n_classes, (k, m), device=device),
    }
    return inter, obs, paired, mem


def state_breakdown(args: argparse.Namespace) -> None:
    """SAC on state batches: CPU ms per whole update, and split into its forward and its gradient +
    optimizer part."""
    hidden = [int(x) for x in args.hidden.split(",")]
    cfg = AgentConfig.model_validate({"sac": {"hidden": hidden}})
    k, b = args.pack, 256
    agent = Agent(cfg, (6,), 1, args.device, seeds=range(k))
    dev = args.device
    batch = {
        "obs": torch.randn(k, b, 6, device=dev),
        "next_obs": torch.randn(k, b, 6, device=dev),
        "action": torch.rand(k, b, 1, device=dev) * 2 - 1,
        "reward": -torch.ones(k, b, device=dev),
        "terminal": torch.zeros(k, b, device=dev),
    }

    def timed(fn, n: int) -> float:
        for _ in range(args.warmup + 10):
            fn()
        sync(dev)
        t0 = time.process_time()
        for _ in range(n):
            fn()
        sync(dev)
        return (time.process_time() - t0) / n * 1e3

    def timed_step(n: int, chunk: int = 10) -> float:
        """``_step`` alone, on losses computed untimed a chunk at a time (each holds its graph)."""
        total, done = 0.0, 0
        while done < n:
            losses = [agent.compute_losses(batch) for _ in range(min(chunk, n - done))]
            sync(dev)
            t0 = time.process_time()
            for loss in losses:
                agent._step(loss)
            sync(dev)
            total += time.process_time() - t0
            done += len(losses)
        return total / n * 1e3

    n = args.repeats
    whole = timed(lambda: agent.update(batch), n)
    forward = timed(lambda: agent.compute_losses(batch), n)
    timed_step(args.warmup + 10)
    backward = timed_step(n)
    x, w, bias = torch.randn(256, 256), torch.randn(256, 256), torch.randn(256)
    gemm = timed(lambda: torch.addmm(bias, x, w.t()), n)
    print(f"SAC state update, MLP {hidden}, batch {b}, pack of {k}: CPU ms per call, mean of {n}")
    rows = [
        ("whole update", whole, f"{whole / k:.2f} per member"),
        ("forward (compute_losses)", forward, ""),
        ("gradients + optimizers (_step)", backward, ""),
        ("one 256x256x256 product (for scale)", gemm, f"{2 * 256**3 / gemm / 1e6:.0f} GFLOP/s"),
    ]
    for label, ms, note in rows:
        print(f"  {label:38s}{ms:7.2f}" + (f"  ({note})" if note else ""))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()  # optimizer steps are asynchronous on a GPU


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="*", help=f"any of {' '.join(VARIANTS)} (default: all)")
    ap.add_argument("--pack", type=int, default=1, help="seeds trained together (K)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels-first", action="store_true", help="encoder.channels_last = false")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=200, help="paired states in the dataset (RLV)")
    ap.add_argument("--state", action="store_true", help="SAC on Acrobot-shaped state batches, split")
    ap.add_argument("--hidden", default="256,256", help="actor/critic MLP widths for --state")
    args = ap.parse_args()
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {' '.join(VARIANTS)}")
    if args.repeats < 1 or args.pairs < 1 or args.pack < 1:
        ap.error("--repeats, --pairs and --pack must be >= 1")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    if args.state:
        state_breakdown(args)
        return
    dev, k = args.device, args.pack
    print(
        f"torch {torch.__version__}, device {dev}, {args.threads} thread(s), channels_last "
        f"{not args.channels_first}, pack of {k}, {args.repeats} timed updates each; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    for name in args.variants or list(VARIANTS):
        cfg = AgentConfig.model_validate(
            dict(VARIANTS[name], encoder={"channels_last": not args.channels_first})
        )
        agent = Agent(cfg, (3, 48, 48), 2, dev, seeds=range(k))
        inter, obs, paired, mem = batches(cfg, k, args.pairs, dev)
        for _ in range(args.warmup):
            agent.update(inter, obs, paired, mem)
        sync(dev)
        walls = []
        cpu0 = time.process_time()
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            agent.update(inter, obs, paired, mem)
            sync(dev)
            walls.append((time.perf_counter() - t0) * 1e3)
        cpu = (time.process_time() - cpu0) / args.repeats * 1e3
        sizes = f"{cfg.sac.batch_size}"
        if cfg.rlv.enabled:
            sizes += f"+{cfg.rlv.obs_batch_size}"
            if cfg.rlv.paired:
                sizes += f", {min(cfg.rlv.obs_batch_size, args.pairs)} pairs"
        if cfg.mem.enabled:
            sizes += f", MEM {cfg.mem.batch_size}x{cfg.mem.subseq_len}"
        print(
            f"{name:11s} wall median {statistics.median(walls):6.0f} ms  mean {statistics.mean(walls):6.0f} ms"
            f"  cpu {cpu:6.0f} ms/update, {cpu / k:6.0f} per member  ({sizes}; load "
            f"{os.getloadavg()[0]:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
