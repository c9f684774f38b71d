"""The task table of METHODS section 1: short names, gymnasium ids, return ranges, convergence rule.

Short names are used in paths and configs (``results/{study}/runs/{task}/{variant}/seed_{n}``); the
gymnasium id is what ``gymnasium.make`` takes. Normalised score maps a return to [0, 1] by the task's
min/max return.
"""

from __future__ import annotations

from dataclasses import dataclass

# The observation domain of observation videos when none is asked for, on every task (``rlmu data
# generate``, the studies): the image tasks' ``human`` style (rlmu.envs.domains) and the state task's
# ``human`` sensor (rlmu.envs.state_domains). The agent's own domain is ``robot`` (the identity) everywhere.
DEFAULT_OBSERVATION_DOMAIN = "human"


@dataclass(frozen=True)
class TaskSpec:
    name: str  # short name used in paths and configs
    env_id: str  # gymnasium id
    pixels: bool  # observations are images (else a state vector)
    episode_steps: int
    min_return: float
    max_return: float
    # A run converges when its final evaluation return is strictly above this value. For push and drawer
    # this is the report's "non-zero final return" criterion; for Acrobot a per-task choice of ours in the
    # same spirit: above -100, the return of an episode that never reaches the goal (reaching it on the
    # last of the 100 steps returns exactly -99, which counts). Studies may override it.
    converge_threshold: float

    def normalise(self, ret):
        """Map a return (scalar or array) to [0, 1]."""
        return (ret - self.min_return) / (self.max_return - self.min_return)


TASKS: dict[str, TaskSpec] = {
    "push": TaskSpec("push", "rlmu/VisualPush-v0", True, 100, 0.0, 100.0, 0.0),
    "drawer": TaskSpec("drawer", "rlmu/VisualDrawerOpen-v0", True, 200, 0.0, 200.0, 0.0),
    "acrobot": TaskSpec("acrobot", "rlmu/AcrobotContinuous-v0", False, 100, -100.0, 0.0, -100.0),
}


def get_task(name: str) -> TaskSpec:
    """Look a task up by short name or gymnasium id; unknown names raise a ValueError listing the choices."""
    for spec in TASKS.values():
        if name in (spec.name, spec.env_id):
            return spec
    choices = ", ".join(f"{s.name} ({s.env_id})" for s in TASKS.values())
    raise ValueError(f"unknown task {name!r}; choose one of: {choices}")
