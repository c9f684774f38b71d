"""Scripted push and drawer demonstrators: success rates, seeded noise, argument checks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rlmu  # noqa: F401
from rlmu.experts import make_expert

ENV_IDS = {"push": "rlmu/VisualPush-v0", "drawer": "rlmu/VisualDrawerOpen-v0"}


def success_rate(task: str, seeds, noise: float = 0.0) -> tuple[float, float, list[float]]:
    """Fractions of seeded episodes with any successful step and with success on the last step; returns."""
    env = gym.make(ENV_IDS[task], image_size=8)  # images are not used by the experts
    expert = make_expert(task, noise=noise, seed=0)
    successes, finals, returns = [], [], []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        expert.reset()
        done, ret, ever = False, 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(expert.act(obs, info))
            ret += reward
            ever |= info["success"]
            done = terminated or truncated
        successes.append(ever)
        finals.append(info["success"])
        returns.append(ret)
    env.close()
    return float(np.mean(successes)), float(np.mean(finals)), returns


@pytest.mark.parametrize("task,seeds", [("push", range(100, 103)), ("drawer", range(100, 102))])
def test_expert_succeeds_on_a_few_episodes(task, seeds):
    rate, final, returns = success_rate(task, seeds)
    assert rate == 1.0 and final == 1.0  # videos must end in the goal state (reward relabelling)
    assert min(returns) > 10  # success is held for many steps, not touched once


@pytest.mark.slow
@pytest.mark.parametrize("task", ["push", "drawer"])
def test_expert_success_rate_over_50_episodes(task):
    rate, final, _ = success_rate(task, range(50))
    assert rate >= 0.9 and final >= 0.9


def test_noise_is_seeded_and_clipped():
    state = np.array([0.0, 0.5, 0.05, 0.3, 0.05, 0.6, 0.02, 0.0, 0.8, 0.02], np.float32)
    info = {"state": state}
    clean = make_expert("push", noise=0.0, seed=0).act(None, info)
    a = [make_expert("push", noise=0.5, seed=3).act(None, info) for _ in range(2)]
    b = make_expert("push", noise=0.5, seed=4).act(None, info)
    np.testing.assert_array_equal(a[0], a[1])
    assert not np.array_equal(a[0], b) and not np.array_equal(a[0], clean)
    big = make_expert("drawer", noise=100.0, seed=0)
    acts = np.array([big.act(None, {"state": state}) for _ in range(20)])
    assert acts.shape == (20, 3) and acts.dtype == np.float32 and np.all(np.abs(acts) <= 1.0)


def test_push_expert_heads_behind_the_puck_first():
    # Hand in front of the puck (on the goal side): side-step first, never drive towards the goal through it.
    state = np.array([0.0, 0.62, 0.05, 0.3, 0.0, 0.6, 0.02, 0.0, 0.8, 0.02], np.float32)
    action = make_expert("push").act(None, {"state": state})
    assert abs(action[0]) > 0.5 and action[1] <= 0
    # Hand clear to the side of the puck: move back (-y) to get behind it.
    state[0:2] = [0.07, 0.62]
    action = make_expert("push").act(None, {"state": state})
    assert action[1] < -0.5


def test_make_expert_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown task 'fly'"):
        make_expert("fly")
    with pytest.raises(ValueError, match="noise"):
        make_expert("push", noise=-0.1)
    with pytest.raises(KeyError, match="state"):
        make_expert("drawer").act(np.zeros((8, 8, 3)), {})
