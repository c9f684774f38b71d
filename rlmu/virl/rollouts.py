"""Episodes as frame sequences for the VIRL distance: demonstrations, agent rollouts, reversed demos.

A "frame" is whatever the environment observes: ``(H, W, 3)`` uint8 images for the visual tasks, ``(D,)``
float32 states for Acrobot. An episode of ``T`` steps yields ``T + 1`` frames ``o_0 .. o_T`` (the reset
observation, then one per step), its true return (sum of the environment's rewards) and whether it
succeeded (``info["success"]`` on any step).

Policies follow the experts' interface (``rlmu.experts``): ``reset()`` at the start of an episode, then
``act(obs, info) -> action``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium
import numpy as np


class Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray: ...


@dataclass(frozen=True)
class Episode:
    """One episode: ``frames`` ``(T + 1, *frame_shape)``, true ``ret`` (env reward sum), ``success``."""

    frames: np.ndarray
    ret: float
    success: bool

    @property
    def steps(self) -> int:
        return len(self.frames) - 1


class RandomPolicy:
    """Uniform actions in a Box action space, from its own generator seeded by ``seed``."""

    def __init__(self, action_space: gymnasium.spaces.Box, seed: int | None = None):
        if not isinstance(action_space, gymnasium.spaces.Box):
            raise TypeError(f"RandomPolicy needs a Box action space, got {type(action_space).__name__}")
        self.low = np.asarray(action_space.low, dtype=np.float64)
        self.high = np.asarray(action_space.high, dtype=np.float64)
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Episodes differ because the generator keeps running."""

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


def rollout(env: gymnasium.Env, policy: Policy, seed: int, max_steps: int | None = None) -> Episode:
    """Run one episode of ``policy`` in ``env`` reset with ``seed``; stops at termination or truncation
    (or after ``max_steps`` steps). Frames are copied, so the env may reuse its buffers."""
    obs, info = env.reset(seed=int(seed))
    policy.reset()
    frames = [np.array(obs, copy=True)]
    ret, success, t = 0.0, bool(info.get("success", False)), 0
    while max_steps is None or t < max_steps:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        frames.append(np.array(obs, copy=True))
        ret += float(reward)
        success |= bool(info.get("success", False))
        t += 1
        if terminated or truncated:
            break
    return Episode(np.stack(frames), ret, success)


def reversed_frames(frames: np.ndarray) -> np.ndarray:
    """The frames in reverse order (a contiguous copy): a negative for the distance, "undoing" the task."""
    return np.ascontiguousarray(frames[::-1])


def collect(
    env: gymnasium.Env, policy: Policy, seeds: list[int] | range, max_steps: int | None = None
) -> list[Episode]:
    """One episode per reset seed."""
    return [rollout(env, policy, s, max_steps) for s in seeds]
