"""Scripted demonstrators for the harness's tasks (METHODS section 2).

``make_expert(task, noise, seed)`` returns an object with ``reset()`` and ``act(obs, info) -> action``.
Experts read the low-dimensional state in ``info["state"]`` (image tasks) or the observation (Acrobot).
``noise`` is the std of Gaussian noise added to every action before clipping to [-1, 1], drawn from the
expert's own generator seeded by ``seed``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Expert(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray: ...


def make_expert(task: str, noise: float = 0.0, seed: int | None = None, **kw: Any) -> Expert:
    """Build the scripted expert for a task short name: ``push``, ``drawer`` or ``acrobot``."""
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite std >= 0, got {noise!r}")
    if task == "push":
        from rlmu.experts.push import PushExpert

        return PushExpert(noise=noise, seed=seed, **kw)
    if task == "drawer":
        from rlmu.experts.drawer import DrawerOpenExpert

        return DrawerOpenExpert(noise=noise, seed=seed, **kw)
    if task == "acrobot":
        from rlmu.experts.acrobot import make_acrobot_expert

        return make_acrobot_expert(noise=noise, seed=seed, **kw)
    raise ValueError(f"unknown task {task!r} for make_expert; choose one of: push, drawer, acrobot")


class NoisyExpert:
    """Base for experts with seeded Gaussian action noise; subclasses implement ``clean_action``."""

    def __init__(self, noise: float = 0.0, seed: int | None = None) -> None:
        self.noise = float(noise)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Start a new episode (the noise generator keeps running, so episodes differ)."""

    def clean_action(self, state: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        if "state" not in info:
            raise KeyError("the expert needs info['state'] (pass the info dict from reset()/step())")
        action = np.asarray(self.clean_action(np.asarray(info["state"], dtype=np.float64)), dtype=np.float64)
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)
