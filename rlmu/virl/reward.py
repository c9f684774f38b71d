"""Per-step VIRL rewards of an agent sequence against the demonstration, aligned by time index.

- ``sequence_rewards``: the rewards of one agent episode (one pass over its frames).
- ``recompute_rewards``: the rewards of every stored transition of a replay buffer after the distance
  model was retrained; each episode is scored with one pass over its frame sequence.
"""

from __future__ import annotations

import numpy as np
import torch

from rlmu.virl.config import VirlConfig
from rlmu.virl.model import RecurrentSiamese
from rlmu.virl.pairs import as_float


def align_demo(demo: np.ndarray, length: int) -> np.ndarray:
    """Demo frame for each agent time index, clamped at the demo's end."""
    return demo[np.minimum(np.arange(length), len(demo) - 1)]


def distance_to_reward(d_seq: np.ndarray, d_frame: np.ndarray, cfg: VirlConfig) -> np.ndarray:
    """Per-step reward from the sequence and frame distances (see ``sequence_rewards``), float32."""
    if cfg.reward_mode == "both":
        distance = cfg.reward_weight_sequence * d_seq + cfg.reward_weight_frame * d_frame
    elif cfg.reward_mode == "spatial_only":
        distance = d_frame
    else:
        distance = d_seq
    reward = np.exp(-distance) if cfg.reward_shaping == "exp" else -distance
    return reward.astype(np.float32)


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
    return distance_to_reward(d_seq, d_frame, cfg)


def _check_index_array(name: str, a: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1 or len(a) != n:
        raise ValueError(
            f"{name} must be a 1-D array with one entry per transition ({n}), got shape {a.shape}"
        )
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64)


@torch.no_grad()
def recompute_rewards(
    model: RecurrentSiamese,
    demo: np.ndarray,
    frames: np.ndarray,
    obs_index: np.ndarray,
    episode_ids: np.ndarray,
    time_index: np.ndarray,
    cfg: VirlConfig | None = None,
    *,
    channels_first: bool = False,
    max_batch_frames: int = 2048,
) -> np.ndarray:
    """VIRL reward ``(N,)`` float32 of each of ``N`` stored transitions, under the current ``model``.

    The layout is the replay buffer's (``rlmu.train.replay.ReplayBuffer``): every frame stored once in
    ``frames`` ``(F, *frame_shape)``, used as a ring; transition ``i`` is ``o_t -> o_{t+1}`` with ``o_t`` at
    ``frames[obs_index[i]]`` and ``o_{t+1}`` at ``frames[(obs_index[i] + 1) % F]``; it belongs to episode
    ``episode_ids[i]`` (any integer label) at time ``t = time_index[i]`` (0 for the step after reset).
    The frames of one episode are contiguous modulo ``F``.

    Each episode is scored by one pass of the recurrent model over its frames ``o_{t0} .. o_{t1+1}``, where
    ``t0``/``t1`` are its smallest/largest stored time index, and transition ``t`` earns the reward of frame
    ``t + 1`` (as in ``sequence_rewards``). For a complete episode (``t0 = 0``) this equals
    ``sequence_rewards(model, demo, episode_frames)[t + 1]``; the current, unfinished episode is just a
    shorter one. An episode whose first frames were already overwritten (``t0 > 0``, the oldest episode of
    a full ring) cannot be replayed from its reset: it is scored from ``o_{t0}`` against the demo frames
    from index ``t0`` on (same time alignment; both recurrent states start at ``t0``).

    ``channels_first``: frames are stored ``(C, H, W)`` (as the replay buffer stores pixels) and are
    transposed to the model's ``(H, W, C)``. Episodes are batched, ``max_batch_frames`` frames at most per
    forward pass. Nothing in the inputs is modified.
    """
    cfg = cfg or model.cfg
    n = len(np.asarray(obs_index))
    obs_index = _check_index_array("obs_index", obs_index, n)
    episode_ids = _check_index_array("episode_ids", episode_ids, n)
    time_index = _check_index_array("time_index", time_index, n)
    n_frames = len(frames)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    if np.any(time_index < 0):
        raise ValueError("time_index must be >= 0")
    if np.any(obs_index < 0) or np.any(obs_index >= n_frames):
        raise ValueError(f"obs_index must lie in [0, {n_frames}) (the number of stored frames)")
    if len(demo) == 0:
        raise ValueError("the demonstration has no frames")
    if max_batch_frames < 1:
        raise ValueError(f"max_batch_frames must be >= 1, got {max_batch_frames}")

    # One record per episode: the frame index of o_{t0}, t0, and the number of frames to score.
    order = np.lexsort((time_index, episode_ids))
    ep_sorted = episode_ids[order]
    starts = np.flatnonzero(np.r_[True, ep_sorted[1:] != ep_sorted[:-1]])
    ends = np.r_[starts[1:], n]
    episodes = []  # (transition positions, t0, first frame index, number of frames)
    for s, e in zip(starts, ends, strict=True):
        pos = order[s:e]
        t = time_index[pos]
        base = (obs_index[pos] - t) % n_frames  # frame index where o_0 is (or would be)
        if np.any(base != base[0]):
            raise ValueError(
                f"episode {int(ep_sorted[s])}: obs_index - time_index is not constant, so its frames are not "
                "contiguous in the ring (wrong episode_ids or time_index?)"
            )
        if np.any(t[1:] == t[:-1]):
            raise ValueError(f"episode {int(ep_sorted[s])} has two transitions with the same time_index")
        t0, t1 = int(t[0]), int(t[-1])
        if t1 + 2 - t0 > n_frames:
            raise ValueError(f"episode {int(ep_sorted[s])} spans more frames than the ring holds")
        episodes.append((pos, t0, int(obs_index[pos[0]]), t1 + 2 - t0))

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    demo_cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def demo_embedding(t0: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        # The demo's (e, h) for agent times t0 .. t0+length-1; shared by every episode with the same key.
        key = (t0, length)
        if key not in demo_cache:
            d = align_demo(demo, t0 + length)[t0:]
            demo_cache[key] = model(torch.as_tensor(as_float(d)[None], device=device))
        return demo_cache[key]

    rewards = np.empty(n, dtype=np.float32)
    try:
        # Episodes of equal (t0, length) share one batched forward pass (usually all full episodes).
        groups: dict[tuple[int, int], list] = {}
        for ep in episodes:
            groups.setdefault((ep[1], ep[3]), []).append(ep)
        for (t0, length), eps in groups.items():
            chunk = max(1, max_batch_frames // length)
            e_demo, h_demo = demo_embedding(t0, length)
            for c in range(0, len(eps), chunk):
                part = eps[c : c + chunk]
                idx = np.stack([(first + np.arange(length)) % n_frames for _, _, first, _ in part])
                seqs = frames[idx]  # fancy indexing copies: ``frames`` is never touched
                if channels_first:
                    seqs = np.moveaxis(seqs, 2, -1)
                x = torch.as_tensor(as_float(seqs), device=device)
                e_agent, h_agent = model(x)
                d_frame = torch.linalg.vector_norm(e_agent - e_demo, dim=-1).cpu().numpy()
                d_seq = torch.linalg.vector_norm(h_agent - h_demo, dim=-1).cpu().numpy()
                r = distance_to_reward(d_seq, d_frame, cfg)  # (B, length): frame k is o_{t0 + k}
                for row, (pos, ep_t0, _, _) in enumerate(part):
                    rewards[pos] = r[row, time_index[pos] - ep_t0 + 1]
    finally:
        model.train(was_training)
    return rewards
