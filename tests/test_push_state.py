"""State observations of the image tasks (``observation: state``): the environment option, the run-config
field and its refusals, a tiny SAC run on push with state observations."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import rlmu.envs.metaworld_tasks as mwt
from rlmu.errors import UserError
from rlmu.train.config import load_config, memory_estimate


def _forbid_rendering(monkeypatch):
    """Any renderer made from here on fails the test (ours and MuJoCo's own)."""
    import mujoco

    def refuse(*args, **kwargs):
        raise AssertionError("state observations must not create a renderer")

    monkeypatch.setattr(mwt, "FastRenderer", refuse)
    monkeypatch.setattr(mujoco, "Renderer", refuse)


@pytest.mark.parametrize("cls", [mwt.VisualPushEnv, mwt.VisualDrawerOpenEnv])
def test_state_observation_is_info_state_of_the_pixel_env(cls, monkeypatch):
    pixel_env = cls(image_size=16)  # rendered frames (built before rendering is forbidden)
    pixel_env.reset(seed=0)
    _forbid_rendering(monkeypatch)
    env = cls(observation="state")
    space = env.observation_space
    assert space.shape == (len(mwt.STATE_FIELDS),) and space.dtype == np.float32
    assert (
        np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)) and np.all(space.low < space.high)
    )
    rng = np.random.default_rng(1)
    for seed in (3, 4):
        obs, info = env.reset(seed=seed)
        _, pixel_info = pixel_env.reset(seed=seed)
        np.testing.assert_array_equal(obs, pixel_info["state"])
        np.testing.assert_array_equal(obs, info["state"])
        for _ in range(env.episode_steps):
            action = rng.uniform(-1.0, 1.0, env.action_space.shape)
            obs, reward, terminated, truncated, info = env.step(action)
            _, p_reward, p_terminated, p_truncated, p_info = pixel_env.step(action)
            assert obs.dtype == np.float32 and space.contains(obs)
            np.testing.assert_array_equal(obs, p_info["state"])
            assert (reward, terminated, truncated, info["success"]) == (
                p_reward,
                p_terminated,
                p_truncated,
                p_info["success"],
            )
        assert truncated
    assert env.unwrapped._renderer is None
    env.close()
    pixel_env.close()


def test_unknown_observation_is_refused():
    with pytest.raises(ValueError, match="observation must be one of"):
        mwt.VisualPushEnv(observation="depth")


def test_config_observation_refusals():
    with pytest.raises(UserError, match=r"^config: observation: task 'acrobot' has state observations only"):
        load_config(None, ["task=acrobot", "variant=sac", "observation=pixels"])
    for variant, extra in (
        ("rlv_nopair", ["data.observations=x.npz"]),
        ("rlmu", ["data.observations=x.npz"]),
        ("virl_both", []),
    ):
        with pytest.raises(UserError, match=r"^config: observation: .*variant sac only") as info:
            load_config(None, ["task=push", f"variant={variant}", "observation=state", *extra])
        assert "\n" not in str(info.value)
    with pytest.raises(UserError, match=r"config: observation: "):
        load_config(None, ["task=push", "variant=sac", "observation=depth"])
    # Accepted: the task's own observations, explicitly or by default, and SAC on push's state.
    assert load_config(None, ["task=acrobot", "variant=sac", "observation=state"]).observation == "state"
    assert load_config(None, ["task=push", "variant=sac"]).observation is None
    cfg = load_config(None, ["task=push", "variant=sac", "observation=state", "replay_size=1000"])
    pixels = load_config(None, ["task=push", "variant=sac", "replay_size=1000"])
    assert sum(memory_estimate(cfg).values()) < sum(memory_estimate(pixels).values()) / 5


def test_tiny_sac_run_on_push_state(tmp_path, monkeypatch, one_torch_thread):
    from rlmu.cli import main

    _forbid_rendering(monkeypatch)
    run_dir = tmp_path / "run"
    args = [
        "train",
        "--run-dir",
        str(run_dir),
        "--no-progress",
        "task=push",
        "variant=sac",
        "observation=state",
        "epochs=1",
        "steps_per_epoch=200",
        "random_steps=100",
        "eval_episodes=1",
        "agent.sac.batch_size=32",
        "agent.sac.hidden=[32,32]",
    ]
    assert main(args) == 0
    with open(run_dir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and int(rows[0]["env_steps"]) == 200 and int(rows[0]["updates"]) > 0
    assert np.isfinite(float(rows[0]["loss_critic"]))
    assert "observation: state" in (run_dir / "config.yaml").read_text()
