"""Milliseconds per agent update on pixel batches: SAC, RLV (per-loss optimizers and summed losses), RLMU.

48 px frames, default config (METHODS section 3): 256 interaction transitions, and for RLV/RLMU 256
observation transitions; RLV's paired loss on min(256, --pairs) robot/human pairs, which is what the trainer
draws from a paired dataset of ``--pairs`` states (``rlmu data paired`` makes 200 by default); RLMU's MEM
loss on 32 sub-sequences of 8 frames at every update (``mem.period = 1``). Batches are random uint8 frames
(speed does not depend on the content). Only ``Agent.update`` is timed: no environment, no replay sampling
(``train_throughput.py`` times the whole loop).

Per variant: ``--warmup`` untimed updates, then ``--repeats`` timed ones; printed: median and mean wall
time per update and the mean process CPU time per update (CPU time is less sensitive to other work on a
shared machine; with more than one torch thread it exceeds wall time).

``--state`` instead times SAC on Acrobot-shaped state batches (6-D observations, 1-D action, batch 256,
actor/critic MLP ``--hidden``, default 256,256): the whole update on the hand-differentiated path that state
SAC runs (``rlmu/agent/fused_sac.py``) and on the general autograd path, in alternating chunks of updates,
and the autograd path split into its forward part (``Agent.compute_losses``: target critics, critics,
critics for the actor loss, actor twice) and its backward part with the optimizer steps (``Agent._apply``),
next to one 256x256x256 matrix product for scale.

Usage: python benchmarks/agent_update.py [sac rlv rlv_summed rlmu] [--threads 1] [--channels-first]
       [--device cpu] [--repeats 10] [--warmup 2] [--pairs 200]
       python benchmarks/agent_update.py --state [--hidden 256,256] [--repeats 300]
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


def frames(n: int, device: str) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 48, 48), dtype=torch.uint8, device=device)


def batches(cfg: AgentConfig, pairs: int, device: str) -> tuple[dict, dict, dict, dict]:
    """Interaction, observation, paired and MEM batches with the sizes the trainer draws for ``cfg``."""
    b, bo = cfg.sac.batch_size, cfg.rlv.obs_batch_size
    inter = {
        "obs": frames(b, device),
        "next_obs": frames(b, device),
        "action": torch.rand(b, 2, device=device) * 2 - 1,
        "reward": torch.rand(b, device=device),
        "terminal": torch.zeros(b, device=device),
    }
    obs = {
        "obs": frames(bo, device),
        "next_obs": frames(bo, device),
        "reward": torch.rand(bo, device=device),
        "terminal": torch.zeros(bo, device=device),
    }
    n_pairs = min(bo, pairs)
    paired = {"robot": frames(n_pairs, device), "human": frames(n_pairs, device)}
    m, k = cfg.mem.batch_size, cfg.mem.subseq_len
    mem = {
        "frames": frames(m * k, device).view(m, k, 3, 48, 48),
        "label": torch.randint(0, cfg.mem.n_classes, (m,), device=device),
    }
    return inter, obs, paired, mem


def state_breakdown(args: argparse.Namespace) -> None:
    """SAC on state batches: ms per whole update, on the hand-differentiated path and on the autograd path
    (alternating chunks), and the autograd path split into its forward and its backward + optimizer part."""
    hidden = [int(x) for x in args.hidden.split(",")]
    cfg = AgentConfig.model_validate({"sac": {"hidden": hidden}})
    torch.manual_seed(0)
    agent = Agent(cfg, (6,), 1, args.device)
    torch.manual_seed(0)
    plain = Agent(cfg, (6,), 1, args.device)
    plain.fused_sac = False
    b = 256
    batch = {
        "obs": torch.randn(b, 6),
        "next_obs": torch.randn(b, 6),
        "action": torch.rand(b, 1) * 2 - 1,
        "reward": -torch.ones(b),
        "terminal": torch.zeros(b),
    }

    def timed(fn, n: int, warmup: bool = True) -> float:
        for _ in range(args.warmup + 10 if warmup else 0):
            fn()
        sync(args.device)
        t0 = time.process_time()
        for _ in range(n):
            fn()
        sync(args.device)
        return (time.process_time() - t0) / n * 1e3

    n = args.repeats
    chunk = max(n // 10, 1)
    whole = {True: [], False: []}
    for a in (agent, plain):
        timed(lambda a=a: a.update(batch), 1)
    for i in range(max(n // chunk, 1)):
        for a in (agent, plain) if i % 2 == 0 else (plain, agent):
            whole[a.fused_sac].append(timed(lambda a=a: a.update(batch), chunk, warmup=False))
    fused_ms, plain_ms = statistics.mean(whole[True]), statistics.mean(whole[False])
    forward = timed(lambda: plain.compute_losses(batch), n)
    losses = [plain.compute_losses(batch) for _ in range(n + args.warmup + 10)]
    it = iter(losses)
    backward = timed(lambda: plain._apply(next(it)), n)
    x, w, bias = torch.randn(256, 256), torch.randn(256, 256), torch.randn(256)
    gemm = timed(lambda: torch.addmm(bias, x, w.t()), n)
    print(f"SAC state update, MLP {hidden}, batch {b}: CPU ms per call, mean of {n}")
    rows = [
        ("whole update, by hand (fused_sac.py)", fused_ms, f"by hand / autograd {fused_ms / plain_ms:.3f}"),
        ("whole update, autograd", plain_ms, ""),
        ("autograd: forward (compute_losses)", forward, ""),
        ("autograd: backward + optimizers (_apply)", backward, ""),
        ("one 256x256x256 product (for scale)", gemm, f"{2 * 256**3 / gemm / 1e6:.0f} GFLOP/s"),
    ]
    for label, ms, note in rows:
        print(f"  {label:42s}{ms:7.2f}" + (f"  ({note})" if note else ""))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()  # optimizer steps are asynchronous on a GPU


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="*", help=f"any of {' '.join(VARIANTS)} (default: all)")
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
    if args.repeats < 1 or args.pairs < 1:
        ap.error("--repeats and --pairs must be >= 1")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    if args.state:
        state_breakdown(args)
        return
    dev = args.device
    print(
        f"torch {torch.__version__}, device {dev}, {args.threads} thread(s), channels_last "
        f"{not args.channels_first}, {args.repeats} timed updates each; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    for name in args.variants or list(VARIANTS):
        cfg = AgentConfig.model_validate(
            dict(VARIANTS[name], encoder={"channels_last": not args.channels_first})
        )
        agent = Agent(cfg, (3, 48, 48), 2, dev)
        inter, obs, paired, mem = batches(cfg, args.pairs, dev)
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
            f"  cpu {cpu:6.0f} ms/update  ({sizes}; load {os.getloadavg()[0]:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
