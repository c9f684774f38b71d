"""A 2-D pusher for ``rlmu/VisualPush-v0``: get behind the puck on the puck-goal line, push it to the goal, hold.

State layout: ``rlmu.envs.metaworld_tasks.STATE_FIELDS`` (hand 0:3, puck 4:7, goal 7:10). Actions are
(dx, dy) end-effector motion, 1 unit = 1 cm per step.
"""

from __future__ import annotations

import numpy as np

from rlmu.experts import NoisyExpert


class PushExpert(NoisyExpert):
    """Proportional controller on waypoints, with a hold phase once the puck is on the goal.

    Args:
        gain: action per metre of waypoint error (10 -> full speed at 10 cm).
        standoff: distance behind the puck centre at which the hand lines up before pushing (m).
        lateral_tol: largest sideways offset from the puck-goal line that still counts as lined up (m).
        stop_radius: puck-goal distance at which pushing stops and the hand backs off the puck (m); the
            hand lags its commanded position, so stopping dead would keep nudging the puck past the goal.
        resume_radius: puck-goal distance above which pushing resumes (m; Meta-World's success radius is
            5 cm, so the puck stays in success while held).
        retreat: distance from the puck centre the hand backs off to while holding (m).
    """

    def __init__(
        self,
        noise: float = 0.0,
        seed: int | None = None,
        gain: float = 10.0,
        standoff: float = 0.06,
        lateral_tol: float = 0.012,
        stop_radius: float = 0.015,
        resume_radius: float = 0.035,
        retreat: float = 0.08,
    ) -> None:
        super().__init__(noise, seed)
        if not 0 < stop_radius < resume_radius:
            raise ValueError(f"need 0 < stop_radius < resume_radius, got {stop_radius}, {resume_radius}")
        self.gain, self.standoff, self.lateral_tol = gain, standoff, lateral_tol
        self.stop_radius, self.resume_radius, self.retreat = stop_radius, resume_radius, retreat
        self._holding = False

    def reset(self) -> None:
        self._holding = False

    def clean_action(self, state: np.ndarray) -> np.ndarray:
        hand, puck, goal = state[0:2], state[4:6], state[7:9]
        to_goal = goal - puck
        dist = float(np.linalg.norm(to_goal))
        if dist < self.stop_radius:
            self._holding = True
        elif dist > self.resume_radius:
            self._holding = False
        if self._holding:
            away = hand - puck
            norm = float(np.linalg.norm(away))
            away = away / norm if norm > 1e-6 else -to_goal / max(dist, 1e-6)
            return np.clip(self.gain * (puck + self.retreat * away - hand), -1.0, 1.0)
        u = to_goal / dist  # push direction
        rel = hand - puck
        along = float(rel @ u)  # negative: hand is behind the puck
        lateral = rel - along * u
        behind = puck - self.standoff * u
        if along > -0.025:
            # Beside or in front of the puck: first step sideways at the same depth until clear of it, then
            # move to a point beside and behind it; the next branch then lines up on the push axis.
            norm = float(np.linalg.norm(lateral))
            side = lateral / norm if norm > 1e-6 else np.array([-u[1], u[0]])
            if norm < 0.05:
                target = puck + along * u + 0.07 * side
            else:
                target = puck + 0.07 * side - self.standoff * u
        elif np.linalg.norm(lateral) > self.lateral_tol:
            target = behind  # off the push axis: back off and line up again
        else:
            # On the axis: push along it, slowing down as the puck nears the goal so it does not slide past.
            return np.clip(self.gain * (dist + 0.005) * u - self.gain * lateral, -1.0, 1.0)
        return np.clip(self.gain * (target - hand), -1.0, 1.0)
