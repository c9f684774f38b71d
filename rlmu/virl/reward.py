"""Per-step VIRL rewards of an agent sequence against the demonstration, aligned by time index."""

from __future__ import annotations

import numpy as np
import torch

from rlmu.virl.config import VirlConfig
from rlmu.virl.model import RecurrentSiamese
from rlmu.virl.pairs import as_float


def align_demo(demo: np.ndarray, length: int) -> np.ndarray:
    """Demo frame for each agent time index, clamped at the demo's end."""
    return demo[np.minimum(np.arange(length), len(demo) - 1)]


@torch.no_grad()
def sequence_rewards(
    model: RecurrentSiamese,
    demo: np.ndarray,
    agent_frames: np.ndarray,
    cfg: VirlConfig | None = None,
) -> np.ndarray:
    """Reward of each agent frame ``(T,)`` float32.

    ``agent_frames`` are the agent's observations ``o_0 .. o_{T-1}`` of one episode; frame t is compared
    with demo frame ``min(t, len(demo) - 1)``. A transition ``o_t -> o_{t+1}`` earns the reward of frame
    ``t + 1``. Modes: ``both`` r = -(w_seq d_seq + w_frame d_frame); ``spatial_only`` r = -d_frame;
    ``temporal_only`` r = -d_seq. ``exp`` shaping returns exp(-distance) instead of -distance, so rewards
    lie in (0, 1].
    """
    cfg = cfg or model.cfg
    device = next(model.parameters()).device
    length = len(agent_frames)
    a = torch.as_tensor(as_float(agent_frames)[None], device=device)
    e = torch.as_tensor(as_float(align_demo(demo, length))[None], device=device)
    was_training = model.training
    model.eval()
    d_seq, d_frame = (d[0].cpu().numpy() for d in model.distances(a, e))
    model.train(was_training)
    if cfg.reward_mode == "both":
        distance = cfg.reward_weight_sequence * d_seq + cfg.reward_weight_frame * d_frame
    elif cfg.reward_mode == "spatial_only":
        distance = d_frame
    else:
        distance = d_seq
    reward = np.exp(-distance) if cfg.reward_shaping == "exp" else -distance
    return reward.astype(np.float32)
