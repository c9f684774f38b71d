"""AcrobotContinuous task and its swing-up demonstrator (METHODS sections 1 and 2)."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlmu.envs.acrobot import AcrobotContinuousEnv, action_to_torque
from rlmu.experts.acrobot import (
    ACROBOT_QUALITIES,
    ACROBOT_QUALITY_TARGETS,
    make_acrobot_expert,
    mechanical_energy,
)


def test_check_env():
    check_env(AcrobotContinuousEnv(max_episode_steps=100), skip_render_check=True)


def test_torque_mapping():
    actions = (-1.0, -0.51, -0.5, 0.0, 0.5, 0.51, 1.0)
    assert [action_to_torque([a]) for a in actions] == [-1, -1, 0, 0, 0, 1, 1]


def test_episode_contract_and_seeding():
    env = AcrobotContinuousEnv(max_episode_steps=100)
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.float32 and obs.shape == (6,)
    np.testing.assert_array_equal(info["state"], obs) and info["success"] is False
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(100, 1)).astype(np.float32)
    traj, ret, steps = [obs], 0.0, 0
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        traj.append(obs)
        ret += r
        steps += 1
        assert info["state"].dtype == np.float32 and info["success"] == term
        assert r == (0.0 if term else -1.0)
        if term or trunc:
            break
    assert -100 <= ret <= 0
    assert (steps == 100 and trunc and not term) or term
    # same seed and actions -> same trajectory
    obs2, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs2, traj[0])
    for a, o in zip(actions[: len(traj) - 1], traj[1:], strict=True):
        np.testing.assert_array_equal(env.step(a)[0], o)


def test_dynamics_match_gymnasium_acrobot():
    import gymnasium as gym

    ours = AcrobotContinuousEnv()
    ref = gym.make("Acrobot-v1").unwrapped
    ours.reset(seed=5)
    ref.reset(seed=0)
    ref.state = ours.physical_state
    rng = np.random.default_rng(1)
    for a in rng.integers(0, 3, size=50):
        o1, r1, t1, _, _ = ours.step(np.array([a - 1.0], np.float32))
        o2, r2, t2, _, _ = ref.step(int(a))
        np.testing.assert_allclose(o1, o2, atol=1e-5)
        assert (r1, t1) == (r2, t2)
        if t1:
            break


def test_reaching_the_goal_terminates_with_zero_reward():
    env = AcrobotContinuousEnv(max_episode_steps=100)
    env.reset(seed=0)
    env._state = np.array([np.pi, 0.0, 0.0, 0.0])  # pointing straight up: the next state is above the goal
    _, r, term, trunc, info = env.step(np.zeros(1, np.float32))
    assert term and not trunc and r == 0.0 and info["success"]


def test_constructor_validation():
    with pytest.raises(ValueError, match="max_episode_steps"):
        AcrobotContinuousEnv(max_episode_steps=0)
    with pytest.raises(ValueError, match="noise"):
        make_acrobot_expert(noise=1.5)
    with pytest.raises(ValueError, match="quality"):
        make_acrobot_expert(quality="perfect")


def test_energy_is_conserved_without_torque():
    from rlmu.experts.acrobot import AcrobotDynamics

    dyn = AcrobotDynamics()
    s = np.array([[0.5], [-0.3], [0.2], [0.1]])
    e0 = mechanical_energy(s)
    for _ in range(20):
        s = dyn.step(s, np.zeros(1))
    np.testing.assert_allclose(mechanical_energy(s), e0, rtol=0, atol=0.05)


def mean_return(quality, n_episodes, seed=0):
    env = AcrobotContinuousEnv(max_episode_steps=100)
    expert = make_acrobot_expert(quality=quality, seed=seed)
    returns = []
    for ep in range(n_episodes):
        obs, info = env.reset(seed=10_000 * (seed + 1) + ep)
        expert.reset()
        ret, done = 0.0, False
        while not done:
            action = expert.act(obs, info)
            assert action.shape == (1,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
            obs, r, term, trunc, info = env.step(action)
            ret += r
            done = term or trunc
        returns.append(ret)
    return float(np.mean(returns))


def test_quality_high():
    assert ACROBOT_QUALITIES["high"] == 0.0
    assert abs(mean_return("high", 50) - ACROBOT_QUALITY_TARGETS["high"]) <= 5


@pytest.mark.slow
@pytest.mark.parametrize("quality", ["medium", "low"])
def test_quality_noisy_levels(quality):
    assert abs(mean_return(quality, 50) - ACROBOT_QUALITY_TARGETS[quality]) <= 5
