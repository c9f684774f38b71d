"""Gymnasium tasks of the harness (METHODS section 1), registered under the ``rlmu/`` namespace.

Registration uses entry-point strings, so importing this package stays cheap: Meta-World and MuJoCo are
imported only when an environment is made.

- ``rlmu/VisualPush-v0``: :class:`rlmu.envs.metaworld_tasks.VisualPushEnv` (100 steps)
- ``rlmu/VisualDrawerOpen-v0``: :class:`rlmu.envs.metaworld_tasks.VisualDrawerOpenEnv` (200 steps)
- ``rlmu/AcrobotContinuous-v0``: :class:`rlmu.envs.acrobot.AcrobotContinuousEnv` (100 steps)

Every environment enforces its own episode length by truncation (no ``TimeLimit`` wrapper).
"""

from __future__ import annotations

import gymnasium as gym

_ENTRY_POINTS = {
    "rlmu/VisualPush-v0": "rlmu.envs.metaworld_tasks:VisualPushEnv",
    "rlmu/VisualDrawerOpen-v0": "rlmu.envs.metaworld_tasks:VisualDrawerOpenEnv",
    "rlmu/AcrobotContinuous-v0": "rlmu.envs.acrobot:AcrobotContinuousEnv",
}

for _env_id, _entry_point in _ENTRY_POINTS.items():
    if _env_id not in gym.registry:  # re-importing (e.g. in a reloaded module) must not warn
        gym.register(id=_env_id, entry_point=_entry_point, disable_env_checker=True)
