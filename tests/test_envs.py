"""The image tasks: registration, spaces, seeding, truncation, rendering safety, gymnasium's env checker."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import rlmu  # noqa: F401  (registers the tasks)
from rlmu.envs.rendering import BlankFrameError, FastRenderer

IMAGE_TASKS = {"push": "rlmu/VisualPush-v0", "drawer": "rlmu/VisualDrawerOpen-v0"}
SIZE = 16  # small frames keep the suite fast; sizes are exercised in benchmarks/env_throughput.py


def _run_python(code: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


def test_all_tasks_registered():
    for env_id in (*IMAGE_TASKS.values(), "rlmu/AcrobotContinuous-v0"):
        assert env_id in gym.registry


def test_import_rlmu_does_not_import_metaworld():
    proc = _run_python("import sys, rlmu; print('metaworld' in sys.modules, 'mujoco' in sys.modules)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("task,action_dim,steps", [("push", 2, 100), ("drawer", 3, 200)])
def test_spaces_and_step_contract(task, action_dim, steps):
    env = gym.make(IMAGE_TASKS[task], image_size=SIZE)
    try:
        assert env.observation_space == gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
        assert env.action_space.shape == (action_dim,)
        assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
        assert env.unwrapped.episode_steps == steps
        obs, info = env.reset(seed=0)
        assert obs.shape == (SIZE, SIZE, 3) and obs.dtype == np.uint8 and obs.any()
        assert info["state"].dtype == np.float32 and info["state"].shape == (10,)
        assert isinstance(info["success"], bool)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == float(info["success"]) and not terminated and not truncated
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros(action_dim + 1, np.float32))
    finally:
        env.close()


def test_truncation_at_episode_steps():
    env = gym.make(IMAGE_TASKS["push"], image_size=8, episode_steps=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(2, np.float32))[3] for _ in range(3)]
    assert flags == [False, False, True]
    env.close()


def test_push_seeding_reproducible_and_puck_range():
    env = gym.make(IMAGE_TASKS["push"], image_size=SIZE, puck_x_range=0.1)
    obs_a, info_a = env.reset(seed=7)
    for _ in range(5):  # a different history must not leak into the next episode
        env.step(np.ones(2, np.float32))
    obs_b, info_b = env.reset(seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(info_a["state"], info_b["state"])
    puck_x = [env.reset(seed=s)[1]["state"][4] for s in range(8)]
    goals = np.array([env.reset(seed=s)[1]["state"][7:9] for s in range(3)])
    env.close()
    assert len(set(np.round(puck_x, 6))) == 8  # seeds give different starts
    assert all(-0.101 <= x <= 0.101 for x in puck_x)
    np.testing.assert_allclose(goals, [[0.0, 0.8]] * 3, atol=1e-6)  # goal fixed
    # Gripper lowered to pushing height and closed at reset.
    assert info_a["state"][2] < 0.06 and info_a["state"][3] < 0.5


def test_push_configurable_ranges():
    env = gym.make(IMAGE_TASKS["push"], image_size=8, puck_x_range=0.0, goal=(0.05, 0.85))
    xs = {float(env.reset(seed=s)[1]["state"][4]) for s in range(3)}
    goal = env.reset(seed=0)[1]["state"][7:9]
    env.close()
    assert max(xs) - min(xs) < 1e-3
    np.testing.assert_allclose(goal, [0.05, 0.85], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"image_size": 0}, "image_size"),
        ({"camera": "nope"}, "camera"),
        ({"domain": "nope"}, "domain style"),
        ({"render_mode": "bogus"}, "render_mode"),
        ({"goal": (0.0, 0.65)}, "goal"),
        ({"puck_x_range": -1}, "puck_x_range"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        gym.make(IMAGE_TASKS["push"], **kwargs)


def test_render_rgb_array_matches_observation():
    env = gym.make(IMAGE_TASKS["drawer"], image_size=SIZE, render_mode="rgb_array")
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(env.render(), obs)
    env.close()


def test_flip_rotates_by_180_degrees():
    env = gym.make(IMAGE_TASKS["push"], image_size=SIZE).unwrapped
    env.reset(seed=0)
    upright = FastRenderer(env.model, SIZE, SIZE, "corner4", flip=True)
    raw = FastRenderer(env.model, SIZE, SIZE, "corner4", flip=False)
    try:
        np.testing.assert_array_equal(upright.render(env.data), raw.render(env.data)[::-1, ::-1])
        np.testing.assert_array_equal(upright.render(env.data), env._render_obs())
    finally:
        upright.close()
        raw.close()
        env.close()


def test_all_black_frame_raises():
    env = gym.make(IMAGE_TASKS["push"], image_size=8).unwrapped
    env.reset(seed=0)

    class BlackRenderer:  # stands in for a GL context that silently draws nothing
        scene = mujoco.MjvScene(env.model, maxgeom=100)

        def update_scene(self, data, camera):
            pass

        def render(self):
            return np.zeros((8, 8, 3), np.uint8)

        def close(self):
            pass

    env._renderer._renderer = BlackRenderer()
    with pytest.raises(BlankFrameError, match="all-black"):
        env.step(np.zeros(2, np.float32))
    env.close()


def test_async_vector_env_two_workers_non_black():
    # Fresh interpreter: no GL context may exist before the fork (the parent only builds spaces).
    proc = _run_python(
        """
        import numpy as np, gymnasium as gym, rlmu
        envs = gym.vector.AsyncVectorEnv(
            [lambda: gym.make("rlmu/VisualPush-v0", image_size=16) for _ in range(2)], context="fork")
        obs, info = envs.reset(seed=[0, 1])
        obs2, *_ = envs.step(np.zeros((2, 2), np.float32))
        envs.close()
        assert obs.shape == (2, 16, 16, 3) and obs2.shape == (2, 16, 16, 3)
        assert all(o.any() for o in obs) and all(o.any() for o in obs2)
        assert info["state"][0, 4] != info["state"][1, 4]  # different seeds, different puck positions
        print("ok")
        """
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_exit_without_close_prints_no_egl_errors():
    proc = _run_python(
        """
        import gymnasium as gym, rlmu
        env = gym.make("rlmu/VisualDrawerOpen-v0", image_size=8)
        env.reset(seed=0)
        env.unwrapped.render_domain("human")
        print("done")
        """
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]
    assert "Exception ignored" not in proc.stderr and "EGLError" not in proc.stderr, proc.stderr[-2000:]


def _checkable_ids():
    ids = list(IMAGE_TASKS.values())
    ids.append(
        pytest.param(
            "rlmu/AcrobotContinuous-v0",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("rlmu.envs.acrobot") is None, reason="rlmu.envs.acrobot not built"
            ),
        )
    )
    return ids


@pytest.mark.parametrize("env_id", _checkable_ids())
def test_gymnasium_env_checker(env_id):
    from gymnasium.utils.env_checker import check_env

    kwargs = {"image_size": SIZE} if env_id in IMAGE_TASKS.values() else {}
    env = gym.make(env_id, **kwargs)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_render_cli_writes_pngs(tmp_path, capsys):
    import imageio.v3 as iio

    from rlmu.cli import main

    code = main(["render", "--task", "push", "--style", "human", "--size", "16", "--out", str(tmp_path),
                 "--frames", "2", "--scale", "2", "--paired"])  # fmt: skip
    assert code == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == [
        "push_human_step000.png", "push_human_step100.png", "push_robot_step000.png", "push_robot_step100.png",
    ]  # fmt: skip
    image = iio.imread(tmp_path / "push_human_step100.png")
    assert image.shape == (32, 32, 3) and image.any()
    assert main(["render", "--task", "acrobot", "--out", str(tmp_path)]) == 2
    assert "--task must be one of push, drawer" in capsys.readouterr().err
