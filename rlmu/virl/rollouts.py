"""Episodes as frame sequences for the VIRL distance: demonstrations, agent rollouts, reversed demos.

A "frame" is whatever the environment observes: ``(H, W, 3)`` uint8 images for the visual tasks, ``(D,)``
float32 states for Acrobot. An episode of ``T`` steps yields ``T + 1`` frames ``o_0 .. o_T`` (the reset
observation, then one per step), its true return (sum of the environment's rewards) and whether it
succeeded (``info["success"]`` on any step). The episode loop itself (``rollout``, ``Episode``) lives in
``rlmu.envs.rollout``, shared with data generation; it is re-exported here.

Policies follow the experts' interface (``rlmu.experts``): ``reset()`` at the start of an episode, then
``act(obs, info) -> action``.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from rlmu.envs.rollout import Episode, Policy, rollout

__all__ = ["Episode", "Policy", "RandomPolicy", "collect", "reversed_frames", "rollout"]


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


def reversed_frames(frames: np.ndarray) -> np.ndarray:
    """The frames in reverse order (a contiguous copy): a negative for the distance, "undoing" the task."""
    return np.ascontiguousarray(frames[::-1])


def collect(
    env: gymnasium.Env, policy: Policy, seeds: list[int] | range, max_steps: int | None = None
) -> list[Episode]:
    """One episode per reset seed."""
    return [rollout(env, policy, s, max_steps) for s in seeds]
