"""``rlmu/AcrobotContinuous-v0``: gymnasium's Acrobot dynamics with a continuous action (METHODS sec. 1).

The physics, integrator (RK4, dt = 0.2 s), angle wrapping, velocity bounds and goal test are gymnasium's
``AcrobotEnv`` (book dynamics); this class only changes the interface:

- action: ``Box(-1, 1, (1,))``, mapped to the torque on the second joint as in the released code:
  ``a < -0.5 -> -1``, ``a > 0.5 -> +1``, else ``0`` (N m);
- observation: the 6-D state ``[cos th1, sin th1, cos th2, sin th2, dth1, dth2]`` (float32, rad and rad/s);
- episode: at most ``max_episode_steps`` (default 100) steps, then truncation;
- reward: -1 per step, 0 on the step that reaches the goal height (``-cos th1 - cos(th1 + th2) > 1``),
  which terminates the episode, so a return lies in ``[-max_episode_steps, 0]``;
- ``info["state"]``: the state vector (float32), ``info["success"]``: the goal was reached this step;
- ``domain`` (default ``"robot"``, the identity) and ``domain_seed``: the observation domain of
  ``rlmu.envs.state_domains``. In another domain the observation is the state seen through that domain's
  fixed transform plus noise (observation videos in the ``human`` domain), while ``info["state"]`` stays
  the state vector (demonstrators read it), as the image tasks' ``info["state"]`` does. The domain never
  changes the dynamics: the same seeds give the same trajectory in every domain. The noise generator is
  reseeded from each ``reset(seed=...)``.
"""

from __future__ import annotations

import numpy as np
from gymnasium import Env, spaces
from gymnasium.envs.classic_control import acrobot as _gym_acrobot

from rlmu.envs.state_domains import get_state_domain

_NOISE_TAG = 0x5E115  # separates the domain's noise stream from the seeds of its transform


def action_to_torque(action) -> float:
    """Map a continuous action in [-1, 1] to the discrete torque {-1, 0, +1} (thresholds at +-0.5)."""
    a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
    if a < -0.5:
        return -1.0
    if a > 0.5:
        return 1.0
    return 0.0


class AcrobotContinuousEnv(Env):
    """Acrobot swing-up with a 1-D continuous action; see the module docstring for the interface."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        *,
        max_episode_steps: int = 100,
        render_mode: str | None = None,
        domain: str = "robot",
        domain_seed: int | None = None,
    ):
        if int(max_episode_steps) != max_episode_steps or max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be a positive integer, got {max_episode_steps!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.max_episode_steps = int(max_episode_steps)
        self.render_mode = render_mode
        # The gymnasium env supplies the dynamics (_dsdt), constants and the drawing code; its own
        # random generator and step() are not used.
        self._sim = _gym_acrobot.AcrobotEnv(render_mode=render_mode)
        self.domain = get_state_domain(domain, seed=domain_seed)  # raises a ValueError naming the choices
        self._domain_rng = np.random.default_rng([self.domain.seed, _NOISE_TAG])
        if self.domain.identity:
            self.observation_space = self._sim.observation_space
        else:
            shape = self._sim.observation_space.shape
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=shape, dtype=np.float32)
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
        self._state: np.ndarray | None = None  # [th1, th2, dth1, dth2], float64
        self._steps = 0

    # -- helpers -------------------------------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        s = self._state
        return np.array(
            [np.cos(s[0]), np.sin(s[0]), np.cos(s[1]), np.sin(s[1]), s[2], s[3]], dtype=np.float32
        )

    def _observe(self, state: np.ndarray) -> np.ndarray:
        if self.domain.identity:
            return state.copy()
        return self.domain.apply(state, self._domain_rng)

    def _reached_goal(self) -> bool:
        s = self._state
        return bool(-np.cos(s[0]) - np.cos(s[1] + s[0]) > 1.0)

    @property
    def physical_state(self) -> np.ndarray:
        """The raw state ``[th1, th2, dth1, dth2]`` (rad, rad/s), a copy; for controllers and tests."""
        if self._state is None:
            raise RuntimeError("call reset() before reading the state")
        return self._state.copy()

    # -- gymnasium API -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._domain_rng = np.random.default_rng([self.domain.seed, _NOISE_TAG, int(seed)])
        # Same start distribution as gymnasium: every state component uniform in [-0.1, 0.1].
        low, high = _gym_acrobot.utils.maybe_parse_reset_bounds(options, -0.1, 0.1)
        self._state = self.np_random.uniform(low=low, high=high, size=(4,)).astype(np.float64)
        self._steps = 0
        state = self._obs()
        return self._observe(state), {"state": state, "success": False}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        torque = action_to_torque(action)
        sim = self._sim
        s_aug = np.append(self._state, torque)
        ns = _gym_acrobot.rk4(sim._dsdt, s_aug, [0, sim.dt])
        ns[0] = _gym_acrobot.wrap(ns[0], -np.pi, np.pi)
        ns[1] = _gym_acrobot.wrap(ns[1], -np.pi, np.pi)
        ns[2] = _gym_acrobot.bound(ns[2], -sim.MAX_VEL_1, sim.MAX_VEL_1)
        ns[3] = _gym_acrobot.bound(ns[3], -sim.MAX_VEL_2, sim.MAX_VEL_2)
        self._state = np.asarray(ns, dtype=np.float64)
        self._steps += 1

        terminated = self._reached_goal()
        truncated = (not terminated) and self._steps >= self.max_episode_steps
        reward = 0.0 if terminated else -1.0
        state = self._obs()
        return self._observe(state), reward, terminated, truncated, {"state": state, "success": terminated}

    def render(self):
        if self.render_mode is None:
            return None
        # gymnasium's pygame drawing (needs the classic-control extra, i.e. pygame).
        self._sim.state = self._state
        return self._sim.render()

    def close(self):
        self._sim.close()
