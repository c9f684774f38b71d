"""The two Meta-World image tasks of METHODS section 1: ``rlmu/VisualPush-v0`` and ``rlmu/VisualDrawerOpen-v0``.

Both wrap a Meta-World v3 Sawyer environment (built directly from its class, so no Meta-World benchmark or
task sampling is involved), render observations with :class:`~rlmu.envs.rendering.FastRenderer` and expose
the low-dimensional state for scripted demonstrators in ``info["state"]``:

=====  ==========================================================================================
index  ``info["state"]`` (float32, metres; world frame)
=====  ==========================================================================================
0:3    end-effector (gripper body) position
3      gripper opening (Meta-World's normalised finger distance; 1 open, ~0 closed)
4:7    object position: the puck (push) or the drawer handle (drawer)
7:10   goal position: puck target (push) or open-handle target (drawer)
=====  ==========================================================================================

With ``observation="state"`` the observation is this state vector itself (``Box`` of
:data:`STATE_LOW` / :data:`STATE_HIGH`, float32) and nothing is rendered: the renderer is created only when
something asks for a frame (``render()``, :meth:`~MetaWorldImageEnv.render_domain`).

Reward is 1 for every step on which the task's success test holds, else 0; episodes end by truncation only.
Metaworld is imported when an environment is built, never at ``import rlmu``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from rlmu.envs.domains import DomainStyle, ModelStyler, get_style
from rlmu.envs.rendering import FastRenderer, add_scene_geom, prepare_model_for_fast_rendering

STATE_FIELDS: tuple[str, ...] = (
    "hand_x",
    "hand_y",
    "hand_z",
    "gripper",
    "obj_x",
    "obj_y",
    "obj_z",
    "goal_x",
    "goal_y",
    "goal_z",
)

# Bounds of the state vector: positions inside Meta-World's Sawyer workspace (its ``_HAND_SPACE``, to which it
# clips the hand; the hand's own mocap limits, and so everything it can push or pull, lie inside it), the
# gripper opening in [0, 1] (Meta-World clips it there). A state observation is clipped to these bounds.
_WORKSPACE_LOW = (-0.525, 0.348, -0.0525)
_WORKSPACE_HIGH = (0.525, 1.025, 0.7)
STATE_LOW = np.array([*_WORKSPACE_LOW, 0.0, *_WORKSPACE_LOW, *_WORKSPACE_LOW], dtype=np.float32)
STATE_HIGH = np.array([*_WORKSPACE_HIGH, 1.0, *_WORKSPACE_HIGH, *_WORKSPACE_HIGH], dtype=np.float32)
OBSERVATIONS: tuple[str, ...] = ("pixels", "state")

_MW_MAX_PATH = 10**9  # Meta-World refuses to step past max_path_length; episode length is ours to enforce


class MetaWorldImageEnv(gym.Env):
    """Shared machinery: a Meta-World env, a lazily created renderer and an observation-domain style.

    Subclasses define the action mapping, the reset distribution and the task-specific defaults.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 16}
    default_camera: str = "corner4"
    default_episode_steps: int = 100
    # Meta-World's marker sites are all hidden (its goal sphere is 1-2 px at 48 px and its fingertip dots would
    # leak the robot into other domains); a task may instead draw a flat goal disc on the table.
    goal_marker_rgba: tuple[float, float, float, float] | None = None
    goal_marker_radius: float = 0.04

    def __init__(
        self,
        *,
        image_size: int = 48,
        camera: str | None = None,
        domain: str | DomainStyle = "robot",
        domain_seed: int | None = None,
        render_mode: str | None = None,
        episode_steps: int | None = None,
        observation: str = "pixels",
    ) -> None:
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
        self.observation = observation
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not isinstance(image_size, (int, np.integer)) or not 8 <= image_size <= 480:
            raise ValueError(f"image_size must be an integer in [8, 480], got {image_size!r}")
        self.image_size = int(image_size)
        self.camera = camera or self.default_camera
        self.render_mode = render_mode
        self.episode_steps = self.default_episode_steps if episode_steps is None else int(episode_steps)
        if self.episode_steps <= 0:
            raise ValueError(f"episode_steps must be positive, got {episode_steps!r}")

        self._mw = self._make_metaworld_env()
        self._mw._set_task_called = True  # we supply the reset vector ourselves instead of set_task()
        self._mw._freeze_rand_vec = True
        self._mw.max_path_length = _MW_MAX_PATH
        self.model: mujoco.MjModel = self._mw.model
        self.data: mujoco.MjData = self._mw.data
        self._camera_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, self.camera)
        self.model.site_rgba[:, 3] = 0.0
        if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, self.camera) < 0:
            names = [self.model.camera(i).name for i in range(self.model.ncam)]
            raise ValueError(f"camera {self.camera!r} is not in the model; choose one of {names}")
        self._renderer: FastRenderer | None = None  # created on the first frame (never in state mode)
        prepare_model_for_fast_rendering(self.model)  # model fields only, before the styler's snapshot
        self._styler = ModelStyler(self.model)
        self._render_data: mujoco.MjData | None = None  # private copy of the state used for rendering
        self.domain = get_style(domain, domain_seed)
        self._styler.apply(self.domain, self._camera_id)

        if observation == "state":
            self.observation_space = spaces.Box(STATE_LOW, STATE_HIGH, dtype=np.float32)
        else:
            self.observation_space = spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
        self._t = 0
        self._mw_obs: np.ndarray | None = None

    # --- task-specific parts -------------------------------------------------------------------------
    def _make_metaworld_env(self) -> Any:
        raise NotImplementedError

    def _reset_vector(self) -> np.ndarray:
        """Meta-World's reset vector (object/goal positions) drawn from ``self.np_random``."""
        raise NotImplementedError

    def _hand_init(self) -> np.ndarray:
        raise NotImplementedError

    def _to_metaworld_action(self, action: np.ndarray) -> np.ndarray:
        """Map our action to Meta-World's (dx, dy, dz, grip) in [-1, 1]."""
        raise NotImplementedError

    def _after_reset(self, mw_obs: np.ndarray) -> np.ndarray:
        return mw_obs

    # --- gymnasium API ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._mw._last_rand_vec = self._reset_vector()
        self._mw.hand_init_pos = self._hand_init()
        mw_obs, _ = self._mw.reset()
        self._mw_obs = self._after_reset(mw_obs)
        self._t = 0
        success = bool(self._mw.evaluate_state(self._mw_obs, np.zeros(4))[1]["success"])
        state = self._state()
        return self._observe(state), {"state": state, "success": success}

    def step(self, action):
        if self._mw_obs is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        mw_action = self._to_metaworld_action(np.clip(action, -1.0, 1.0))
        self._mw_obs, _, _, _, mw_info = self._mw.step(mw_action)
        self._t += 1
        success = bool(mw_info["success"])
        state = self._state()
        info = {"state": state, "success": success}
        return self._observe(state), float(success), False, self._t >= self.episode_steps, info

    def render(self):
        """``rgb_array``: the current frame in the environment's own domain, at the observation size."""
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None; pass render_mode='rgb_array'")
            return None
        return self._render_obs()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
        self._mw.close()

    # --- rendering ---------------------------------------------------------------------------------------
    def _observe(self, state: np.ndarray) -> np.ndarray:
        if self.observation == "state":
            return np.clip(state, STATE_LOW, STATE_HIGH)
        return self._render_obs()

    def _render_obs(self) -> np.ndarray:
        return self._render_current()

    def _render_current(self) -> np.ndarray:
        # Render from a private copy of the state with freshly computed poses: styles move the camera (a
        # model field), and the physics data must neither see that offset nor be touched by rendering.
        if self._render_data is None:
            self._render_data = mujoco.MjData(self.model)
        data = self._render_data
        data.qpos[:] = self.data.qpos
        data.mocap_pos[:] = self.data.mocap_pos
        data.mocap_quat[:] = self.data.mocap_quat
        mujoco.mj_kinematics(self.model, data)
        mujoco.mj_comPos(self.model, data)
        mujoco.mj_camlight(self.model, data)
        if self._renderer is None:
            self._renderer = FastRenderer(self.model, self.image_size, self.image_size, self.camera)
        return self._renderer.render(data, decorate=lambda scene: self._decorate(scene, data))

    def _decorate(self, scene: mujoco.MjvScene, data: mujoco.MjData) -> None:
        self._styler.decorate(scene, data)
        if self.goal_marker_rgba is not None and self._mw._target_pos is not None:
            # A thin disc lying on the table top (z = 0), under the puck: the puck stays visible on it.
            r = self.goal_marker_radius
            pos = np.array([self._mw._target_pos[0], self._mw._target_pos[1], 0.001])
            add_scene_geom(
                scene,
                mujoco.mjtGeom.mjGEOM_CYLINDER,
                np.array([r, r, 0.001]),
                pos,
                np.eye(3),
                np.asarray(self.goal_marker_rgba),
            )

    def render_domain(self, style: str | DomainStyle, seed: int | None = None) -> np.ndarray:
        """Render the CURRENT state in another style, then restore this environment's own style.

        Returns ``(image_size, image_size, 3)`` uint8. Used to build paired (robot, human) data.
        """
        target = get_style(style, seed)
        try:
            self._styler.apply(target, self._camera_id)
            return self._render_current()
        finally:
            self._styler.apply(self.domain, self._camera_id)

    def _state(self) -> np.ndarray:
        # The goal comes from the task itself: Meta-World zeroes it in (partially observable) observations.
        o = self._mw_obs
        return np.concatenate([o[0:3], o[3:4], o[4:7], self._mw._target_pos]).astype(np.float32)


class VisualPushEnv(MetaWorldImageEnv):
    """``rlmu/VisualPush-v0``: push a puck to a fixed goal with 2-D (x, y) end-effector motion.

    At reset the closed gripper is lowered to pushing height (fingertips just above the table) behind the
    puck; z and the gripper are then held. Puck start: ``puck_init`` + (U(-puck_x_range, puck_x_range), 0);
    goal fixed at ``goal``. Success (Meta-World's test): puck within 5 cm of the goal.

    Actions: ``Box(-1, 1, (2,))``, each unit is 1 cm of end-effector motion per step.
    """

    default_camera = "corner4"
    default_episode_steps = 100
    goal_marker_rgba = (0.1, 0.8, 0.1, 1.0)
    PUSH_HEIGHT = 0.05  # mocap z at which the closed fingertips skim the table (puck top is at 0.04)
    MIN_GOAL_DISTANCE = 0.15  # Meta-World's push reset resamples below this; a fixed goal would loop forever

    def __init__(
        self,
        *,
        puck_x_range: float = 0.1,
        puck_init: tuple[float, float] = (0.0, 0.6),
        goal: tuple[float, float] = (0.0, 0.8),
        hand_init: tuple[float, float] = (0.0, 0.5),
        **kwargs: Any,
    ) -> None:
        self.puck_x_range = float(puck_x_range)
        self.puck_init = np.asarray(puck_init, dtype=np.float64)
        self.goal = np.asarray(goal, dtype=np.float64)
        self.hand_init = np.asarray(hand_init, dtype=np.float64)
        for name, value in (
            ("puck_init", self.puck_init),
            ("goal", self.goal),
            ("hand_init", self.hand_init),
        ):
            if value.shape != (2,) or not np.all(np.isfinite(value)):
                raise ValueError(f"{name} must be two finite numbers (x, y), got {value!r}")
        if not 0.0 <= self.puck_x_range <= 0.2:
            raise ValueError(f"puck_x_range must be in [0, 0.2] metres, got {puck_x_range!r}")
        # Closest puck start to the goal over the x range: Meta-World needs >= 15 cm.
        dx = max(0.0, abs(self.goal[0] - self.puck_init[0]) - self.puck_x_range)
        if np.hypot(dx, self.goal[1] - self.puck_init[1]) < self.MIN_GOAL_DISTANCE:
            raise ValueError(
                f"goal {tuple(self.goal)} is closer than {self.MIN_GOAL_DISTANCE} m to some puck start "
                f"(puck_init={tuple(self.puck_init)}, puck_x_range={self.puck_x_range})"
            )
        super().__init__(**kwargs)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _make_metaworld_env(self):
        from metaworld.envs.sawyer_push_v3 import SawyerPushEnvV3

        return SawyerPushEnvV3(render_mode=None)

    def _reset_vector(self) -> np.ndarray:
        x = self.puck_init[0] + self.np_random.uniform(-self.puck_x_range, self.puck_x_range)
        return np.array([x, self.puck_init[1], 0.02, self.goal[0], self.goal[1], 0.02])

    def _hand_init(self) -> np.ndarray:
        return np.array([self.hand_init[0], self.hand_init[1], self.PUSH_HEIGHT])

    def _after_reset(self, mw_obs: np.ndarray) -> np.ndarray:
        # Close the gripper in place so the fingers form a single pushing surface.
        for _ in range(15):
            mw_obs, *_ = self._mw.step(np.array([0.0, 0.0, 0.0, 1.0]))
        return mw_obs

    def _to_metaworld_action(self, action: np.ndarray) -> np.ndarray:
        return np.array([action[0], action[1], 0.0, 1.0])


class VisualDrawerOpenEnv(MetaWorldImageEnv):
    """``rlmu/VisualDrawerOpen-v0``: pull a drawer open with (y, z, gripper) control; x is held at 0.

    The drawer sits at ``(drawer_x, 0.9)`` with ``drawer_x`` ~ U(-drawer_x_range, drawer_x_range) (default 0:
    the hand cannot move in x, so the handle must stay within reach). The hand starts at ``hand_init``
    (y, z) plus U(-hand_init_range, hand_init_range) on each axis. Success (Meta-World's test): handle
    within 3 cm of the fully-open position (about 17 of 20 cm open).

    Actions: ``Box(-1, 1, (3,))`` = (dy, dz) in cm per step, gripper effort (+1 closes).
    """

    default_camera = "corner3"
    default_episode_steps = 200

    def __init__(
        self,
        *,
        drawer_x_range: float = 0.0,
        hand_init: tuple[float, float] = (0.6, 0.2),
        hand_init_range: float = 0.05,
        **kwargs: Any,
    ) -> None:
        self.drawer_x_range = float(drawer_x_range)
        self.hand_init = np.asarray(hand_init, dtype=np.float64)
        self.hand_init_range = float(hand_init_range)
        if not 0.0 <= self.drawer_x_range <= 0.1:
            raise ValueError(f"drawer_x_range must be in [0, 0.1] metres, got {drawer_x_range!r}")
        if self.hand_init.shape != (2,) or not np.all(np.isfinite(self.hand_init)):
            raise ValueError(f"hand_init must be two finite numbers (y, z), got {hand_init!r}")
        if not 0.0 <= self.hand_init_range <= 0.1:
            raise ValueError(f"hand_init_range must be in [0, 0.1] metres, got {hand_init_range!r}")
        super().__init__(**kwargs)
        self.action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)

    def _make_metaworld_env(self):
        from metaworld.envs.sawyer_drawer_open_v3 import SawyerDrawerOpenEnvV3

        return SawyerDrawerOpenEnvV3(render_mode=None)

    def _reset_vector(self) -> np.ndarray:
        x = self.np_random.uniform(-self.drawer_x_range, self.drawer_x_range)
        return np.array([x, 0.9, 0.0])

    def _hand_init(self) -> np.ndarray:
        dy, dz = self.np_random.uniform(-self.hand_init_range, self.hand_init_range, 2)
        return np.array([0.0, self.hand_init[0] + dy, self.hand_init[1] + dz])

    def _to_metaworld_action(self, action: np.ndarray) -> np.ndarray:
        return np.array([0.0, action[0], action[1], action[2]])
