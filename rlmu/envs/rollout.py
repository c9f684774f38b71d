"""One episode of a policy as a frame sequence: the loop shared by data generation and VIRL.

A "frame" is whatever the environment observes: ``(H, W, 3)`` uint8 images for the visual tasks, ``(D,)``
float32 states for Acrobot. An episode of ``T`` steps yields ``T + 1`` frames ``o_0 .. o_T`` (the reset
observation, then one per step).

Policies follow the experts' interface (``rlmu.experts``): ``reset()`` at the start of an episode, then
``act(obs, info) -> action``. This module imports only numpy and gymnasium.
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
    """One episode.

    - ``frames``: ``(T + 1, *frame_shape)``, copies of the observations;
    - ``ret``: the true return (sum of the environment's rewards);
    - ``success``: ``info["success"]`` on any step (the tasks' success criterion);
    - ``final_success``: ``info["success"]`` at the final frame (the video ends in a goal state, which is
      what reward relabelling of observation videos rewards).
    """

    frames: np.ndarray
    ret: float
    success: bool
    final_success: bool

    @property
    def steps(self) -> int:
        return len(self.frames) - 1


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
    return Episode(np.stack(frames), ret, success, bool(info.get("success", False)))
