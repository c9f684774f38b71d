"""Positive and negative training pairs for the recurrent Siamese distance (METHODS section 3, VIRL).

Sequences are numpy arrays ``(T, *frame_shape)``: images ``(T, H, W, 3)`` uint8 or states ``(T, D)``.
Every pair is brought to the demonstration's length ``T`` (shorter sequences hold their last frame), and
images are returned as float32 in [0, 1] so that noise can be added.

Positives (label 1): (demo, demo + Gaussian noise), (demo, time-warped demo, speed in [0.5, 2]),
(agent, agent + noise). Negatives (label 0): (demo, reversed demo), (demo, shuffled demo),
(demo, cropped demo), (demo, agent rollout), (demo, another task's video). Half of a batch is positive.
"""

from __future__ import annotations

import numpy as np

from rlmu.virl.config import VirlConfig

POSITIVE_KINDS = ("noise", "warp", "agent_self")
NEGATIVE_KINDS = ("reverse", "shuffle", "crop", "agent", "other_task")


def as_float(seq: np.ndarray) -> np.ndarray:
    """Images (uint8) -> float32 in [0, 1]; state frames -> float32."""
    return seq.astype(np.float32) / 255.0 if seq.dtype == np.uint8 else seq.astype(np.float32)


def fit_length(seq: np.ndarray, length: int) -> np.ndarray:
    """Truncate, or pad by repeating the last frame, to ``length`` frames."""
    if len(seq) >= length:
        return seq[:length]
    pad = np.repeat(seq[-1:], length - len(seq), axis=0)
    return np.concatenate([seq, pad], axis=0)


def add_noise(seq: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of std ``sigma`` (images: in [0, 1] units, clipped; states: raw units)."""
    x = as_float(seq)
    noisy = x + rng.normal(0.0, sigma, size=x.shape).astype(np.float32)
    return np.clip(noisy, 0.0, 1.0) if seq.dtype == np.uint8 else noisy


def time_warp(seq: np.ndarray, speed: float, length: int | None = None) -> np.ndarray:
    """Play ``seq`` at ``speed`` (2 = twice as fast): frame t of the output is frame round(t * speed)."""
    length = len(seq) if length is None else length
    idx = np.minimum(np.round(np.arange(length) * speed).astype(np.int64), len(seq) - 1)
    return seq[idx]


def reverse(seq: np.ndarray) -> np.ndarray:
    return seq[::-1]


def shuffle(seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return seq[rng.permutation(len(seq))]


def crop(seq: np.ndarray, rng: np.random.Generator, min_fraction: float) -> np.ndarray:
    """A contiguous window that starts after frame 0 (so it is out of step with the original)."""
    n = len(seq)
    if n < 3:
        return reverse(seq)
    size = int(rng.integers(max(2, int(np.ceil(min_fraction * n))), n))  # < n frames
    start = int(rng.integers(1, n - size + 1))
    return seq[start : start + size]


def make_pairs(
    demo: np.ndarray,
    agent_rollouts: list[np.ndarray],
    other_videos: list[np.ndarray],
    n: int,
    rng: np.random.Generator,
    cfg: VirlConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build ``n`` pairs: ``a, b`` float32 ``(n, T, *frame_shape)`` and labels ``y`` ``(n,)`` in {0, 1}.

    Kinds whose source is missing (no agent rollouts or other-task videos yet) are not drawn.
    """
    length = len(demo)
    pos = [k for k in POSITIVE_KINDS if k != "agent_self" or agent_rollouts]
    neg = [
        k for k in NEGATIVE_KINDS if (k != "agent" or agent_rollouts) and (k != "other_task" or other_videos)
    ]
    a_list, b_list, y = [], [], np.zeros(n, dtype=np.float32)
    for i in range(n):
        positive = i < (n + 1) // 2
        kind = pos[rng.integers(len(pos))] if positive else neg[rng.integers(len(neg))]
        first, second = demo, None
        if kind == "noise":
            second = add_noise(demo, cfg.noise_sigma, rng)
        elif kind == "warp":
            second = time_warp(demo, float(rng.uniform(cfg.warp_speed_min, cfg.warp_speed_max)), length)
        elif kind == "agent_self":
            first = agent_rollouts[rng.integers(len(agent_rollouts))]
            second = add_noise(first, cfg.noise_sigma, rng)
        elif kind == "reverse":
            second = reverse(demo)
        elif kind == "shuffle":
            second = shuffle(demo, rng)
        elif kind == "crop":
            second = crop(demo, rng, cfg.crop_min_fraction)
        elif kind == "agent":
            second = agent_rollouts[rng.integers(len(agent_rollouts))]
        else:  # other_task
            second = other_videos[rng.integers(len(other_videos))]
        a_list.append(fit_length(as_float(first), length))
        b_list.append(fit_length(as_float(second), length))
        y[i] = 1.0 if positive else 0.0
    order = rng.permutation(n)  # mix positives and negatives within the batch
    return np.stack(a_list)[order], np.stack(b_list)[order], y[order]
