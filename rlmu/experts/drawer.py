"""A drawer opener for ``rlmu/VisualDrawerOpen-v0`` with (dy, dz, gripper) actions.

Follows the waypoints of Meta-World's ``SawyerDrawerOpenV3Policy`` restricted to the y-z plane (the task
holds x at 0): rise above the handle, drop to handle height with the gripper open so the far finger sits
behind the handle, then pull towards the robot. State layout: ``rlmu.envs.metaworld_tasks.STATE_FIELDS``.
"""

from __future__ import annotations

import numpy as np

from rlmu.experts import NoisyExpert


class DrawerOpenExpert(NoisyExpert):
    """Args:
    approach_height: height above the handle at which the hand travels to it (m).
    align_tol: y error below which the hand starts dropping (m).
    height_tol: z error below which the hand starts pulling (m).
    gain, pull_gain: action per metre of error while approaching / pulling.
    """

    def __init__(
        self,
        noise: float = 0.0,
        seed: int | None = None,
        approach_height: float = 0.15,
        align_tol: float = 0.03,
        height_tol: float = 0.04,
        gain: float = 10.0,
        pull_gain: float = 50.0,
    ) -> None:
        super().__init__(noise, seed)
        self.approach_height, self.align_tol, self.height_tol = approach_height, align_tol, height_tol
        self.gain, self.pull_gain = gain, pull_gain

    def clean_action(self, state: np.ndarray) -> np.ndarray:
        hand = state[1:3]  # (y, z)
        handle = state[5:7] + np.array([0.0, -0.02])  # grip point just below the handle's centre
        goal_y = state[8]
        if abs(hand[0] - handle[0]) > self.align_tol and hand[1] < handle[1] + self.approach_height - 0.05:
            target, gain = np.array([hand[0], handle[1] + self.approach_height]), self.gain  # rise first
        elif abs(hand[0] - handle[0]) > self.align_tol:
            target, gain = (
                handle + np.array([0.0, self.approach_height]),
                self.gain,
            )  # travel above the handle
        elif abs(hand[1] - handle[1]) > self.height_tol:
            target, gain = handle, self.gain  # drop down around the handle
        else:
            # Pull towards the robot, past the open position.
            target, gain = np.array([min(goal_y, handle[0]) - 0.06, handle[1]]), self.pull_gain
        dy, dz = np.clip(gain * (target - hand), -1.0, 1.0)
        return np.array([dy, dz, -1.0])  # gripper kept open, as in Meta-World's policy
