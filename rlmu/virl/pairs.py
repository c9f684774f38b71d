"""Positive and negative training pairs for the recurrent Siamese distance (METHODS section 3, VIRL).

Sequences are numpy arrays ``(T, *frame_shape)``: images ``(T, H, W, 3)`` uint8 or states ``(T, D)``.
Every pair is brought to the demonstration's length ``T`` (shorter sequences hold their last frame), and
images are returned as float32 in [0, 1] so that noise can be added.

Positives (label 1): (demo, demo + Gaussian noise), (demo, time-warped demo, speed in
[``warp_speed_min``, ``warp_speed_max``]), (agent, agent): two different agent rollouts of the same policy
round. Negatives (label 0): (demo, reversed demo), (demo, shuffled demo), (demo, cropped demo),
(demo, agent rollout), (demo, another task's video). Half of a batch is positive.

A crop negative must not look like a time-warp positive. A warp at speed ``s`` shows frame
``round(t * s)`` at step ``t`` (held at the end), so it leaves out some of the demo's ``T`` frames: the tail
beyond ``(T - 1) * s`` when ``s < 1``, every skipped frame when ``s > 1``. :func:`warp_max_dropped` is the
most frames any admissible warp leaves out (about half: ``T // 2``, one less when 4 divides ``T``, at the
default speeds [0.5, 2]; 50 of push's 101 demo frames); a crop leaves out
at least one frame more (:func:`crop_max_kept`), so it always holds fewer distinct demo frames than any
positive time warp.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

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


def warp_index(n: int, speed: float, length: int | None = None) -> np.ndarray:
    """Frame indices of a time warp of an ``n``-frame sequence: ``min(round(t * speed), n - 1)``."""
    length = n if length is None else length
    return np.minimum(np.round(np.arange(length) * speed).astype(np.int64), n - 1)


def time_warp(seq: np.ndarray, speed: float, length: int | None = None) -> np.ndarray:
    """Play ``seq`` at ``speed`` (2 = twice as fast): frame t of the output is frame round(t * speed)."""
    return seq[warp_index(len(seq), speed, length)]


# Speeds checked between the ends of the warp range (the count of left-out frames is monotone in the
# speed on each side of 1 up to rounding; the grid covers the rounding).
_WARP_GRID = 1025


@lru_cache(maxsize=64)
def warp_max_dropped(n: int, speed_min: float, speed_max: float) -> int:
    """The most of an ``n``-frame demo's frames a time-warp positive leaves out, over its speed range."""
    speeds = np.unique(
        np.concatenate([[speed_min, speed_max], np.linspace(speed_min, speed_max, _WARP_GRID)])
    )
    return max(n - len(np.unique(warp_index(n, float(s)))) for s in speeds)


def crop_max_kept(n: int, cfg: VirlConfig) -> int:
    """The most frames a crop of an ``n``-frame demo keeps: it leaves out ``warp_max_dropped + 1`` or more."""
    return n - warp_max_dropped(n, cfg.warp_speed_min, cfg.warp_speed_max) - 1


def reverse(seq: np.ndarray) -> np.ndarray:
    return seq[::-1]


def shuffle(seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return seq[rng.permutation(len(seq))]


def crop(seq: np.ndarray, rng: np.random.Generator, cfg: VirlConfig) -> np.ndarray:
    """A contiguous window that starts after frame 0 (so it is out of step with the original) and keeps
    between ``crop_min_fraction`` of the frames and :func:`crop_max_kept` (fewer than any time warp shows).
    """
    n = len(seq)
    hi = crop_max_kept(n, cfg)
    if n < 3 or hi < 1:
        return reverse(seq)
    lo = min(max(1, int(np.ceil(cfg.crop_min_fraction * n))), hi)
    size = int(rng.integers(lo, hi + 1))
    start = int(rng.integers(1, n - size + 1))
    return seq[start : start + size]


def same_round_pairs(rounds: Sequence[int]) -> list[tuple[int, int]]:
    """Every ordered pair ``(i, j)``, ``i != j``, of rollouts of the same round (indices into ``rounds``)."""
    return [(i, j) for i, ri in enumerate(rounds) for j, rj in enumerate(rounds) if i != j and ri == rj]


def make_pairs(
    demo: np.ndarray,
    agent_rollouts: list[np.ndarray],
    other_videos: list[np.ndarray],
    n: int,
    rng: np.random.Generator,
    cfg: VirlConfig,
    agent_rounds: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build ``n`` pairs: ``a, b`` float32 ``(n, T, *frame_shape)`` and labels ``y`` ``(n,)`` in {0, 1}.

    ``agent_rounds`` gives the policy round of each agent rollout (None: all of one round); the (agent,
    agent) positive pairs two different rollouts of one round. Kinds whose source is missing (no agent
    rollouts, no round with two of them, no other-task videos) are not drawn. Every draw is from ``rng``.
    """
    length = len(demo)
    if agent_rounds is None:
        agent_rounds = [0] * len(agent_rollouts)
    if len(agent_rounds) != len(agent_rollouts):
        raise ValueError(f"{len(agent_rounds)} agent_rounds for {len(agent_rollouts)} agent rollouts")
    same_round = same_round_pairs(agent_rounds)
    pos = [k for k in POSITIVE_KINDS if k != "agent_self" or same_round]
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
            i_first, i_second = same_round[rng.integers(len(same_round))]
            first, second = agent_rollouts[i_first], agent_rollouts[i_second]
        elif kind == "reverse":
            second = reverse(demo)
        elif kind == "shuffle":
            second = shuffle(demo, rng)
        elif kind == "crop":
            second = crop(demo, rng, cfg)
        elif kind == "agent":
            second = agent_rollouts[rng.integers(len(agent_rollouts))]
        else:  # other_task
            second = other_videos[rng.integers(len(other_videos))]
        a_list.append(fit_length(as_float(first), length))
        b_list.append(fit_length(as_float(second), length))
        y[i] = 1.0 if positive else 0.0
    order = rng.permutation(n)  # mix positives and negatives within the batch
    return np.stack(a_list)[order], np.stack(b_list)[order], y[order]
