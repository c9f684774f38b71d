"""Observation-domain styles: a clear visual shift, exact undo, and no effect on physics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rlmu  # noqa: F401
from rlmu.envs.domains import STYLES, ModelStyler, get_style

SIZE = 24


@pytest.fixture(scope="module")
def push_env():
    env = gym.make("rlmu/VisualPush-v0", image_size=SIZE).unwrapped
    env.reset(seed=3)
    for _ in range(3):
        env.step(np.array([0.3, 0.5], np.float32))
    yield env
    env.close()


def test_registry_has_identity_and_two_shifted_styles():
    assert {"robot", "human", "human_dark"} <= set(STYLES)
    for name, style in STYLES.items():
        assert style.name == name and style.description
    with pytest.raises(ValueError, match="unknown domain style 'martian'"):
        get_style("martian")
    assert get_style("human", seed=5).seed == 5 and get_style("human").seed == 0


def test_robot_and_human_renders_differ_clearly(push_env):
    robot = push_env.render_domain("robot").astype(float)
    human = push_env.render_domain("human").astype(float)
    dark = push_env.render_domain("human_dark").astype(float)
    # Per-pixel colour change over the whole image, in 0..255 units.
    assert np.abs(robot - human).mean() > 20
    assert np.abs(robot - dark).mean() > 20
    assert np.abs(human - dark).mean() > 20
    # The robot arm is red (R >> G): its pixels vanish in the human style.
    red = lambda im: ((im[..., 0] > 100) & (im[..., 0] > 2 * im[..., 1])).mean()  # noqa: E731
    assert red(robot) > 0.05 and red(human) < red(robot) / 3


def test_robot_frame_is_byte_identical_after_other_styles(push_env):
    before = push_env.render_domain("robot")
    obs_before = push_env._render_obs()
    push_env.render_domain("human")
    push_env.render_domain("human_dark", seed=2)
    np.testing.assert_array_equal(push_env.render_domain("robot"), before)
    np.testing.assert_array_equal(push_env._render_obs(), obs_before)


def test_styler_restores_every_field_exactly(push_env):
    model = push_env.model
    fields = lambda: [  # noqa: E731
        model.geom_rgba.copy(),
        model.geom_matid.copy(),
        model.light_diffuse.copy(),
        model.light_specular.copy(),
        model.cam_pos.copy(),
        model.vis.headlight.ambient.copy(),
    ]
    original = fields()
    styler = ModelStyler(model)
    styler.apply(get_style("human"), push_env._camera_id)
    changed = fields()
    assert any(not np.array_equal(a, b) for a, b in zip(original, changed, strict=True))
    styler.restore()
    for a, b in zip(original, fields(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_style_seed_changes_colours_reproducibly(push_env):
    a0 = push_env.render_domain("human", seed=0)
    a1 = push_env.render_domain("human", seed=1)
    assert not np.array_equal(a0, a1)
    np.testing.assert_array_equal(push_env.render_domain("human", seed=1), a1)


def test_env_domain_kwarg_matches_render_domain():
    robot_env = gym.make("rlmu/VisualDrawerOpen-v0", image_size=SIZE)
    human_env = gym.make("rlmu/VisualDrawerOpen-v0", image_size=SIZE, domain="human")
    try:
        _, info_r = robot_env.reset(seed=4)
        obs_h, info_h = human_env.reset(seed=4)
        np.testing.assert_array_equal(info_r["state"], info_h["state"])
        np.testing.assert_array_equal(robot_env.unwrapped.render_domain("human"), obs_h)
        # ...and the human-domain env renders its robot view on demand, then returns to its own style.
        np.testing.assert_array_equal(
            human_env.unwrapped.render_domain("robot"), robot_env.unwrapped._render_obs()
        )
        np.testing.assert_array_equal(human_env.unwrapped._render_obs(), obs_h)
    finally:
        robot_env.close()
        human_env.close()


def test_rendering_other_styles_never_changes_physics():
    actions = np.random.default_rng(0).uniform(-1, 1, (6, 2)).astype(np.float32)
    states = []
    for interleave in (False, True):
        env = gym.make("rlmu/VisualPush-v0", image_size=8)
        _, info = env.reset(seed=1)
        trajectory = [info["state"]]
        for a in actions:
            if interleave:
                env.unwrapped.render_domain("human")
                env.unwrapped.render_domain("human_dark")
            trajectory.append(env.step(a)[4]["state"])
        env.close()
        states.append(np.array(trajectory))
    np.testing.assert_array_equal(states[0], states[1])
