"""VIRL reward recomputation over a replay buffer's transitions, and episode collection for the distance."""

import gymnasium
import numpy as np
import pytest
import torch

import rlmu  # noqa: F401  (registers the tasks)
from rlmu.train.replay import ReplayBuffer
from rlmu.virl import DistanceLearner, RecurrentSiamese, VirlConfig, recompute_rewards, sequence_rewards
from rlmu.virl.reward import align_demo
from rlmu.virl.rollouts import RandomPolicy, reversed_frames, rollout

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trajectory(rng, t, d=6, drift=0.1):
    return np.cumsum(rng.normal(drift, 0.3, size=(t, d)), axis=0).astype(np.float32)


def _ring(episodes, rotate=0):
    """Store episodes (each ``(T+1, ...)`` frames) as the replay buffer does: every frame once, contiguous
    per episode, in a ring rotated by ``rotate`` slots. Returns the ring and, per transition, its
    observation's frame index, episode id and time index."""
    frames = np.concatenate(episodes)
    n = len(frames)
    ring = np.empty_like(frames)
    ring[(np.arange(n) + rotate) % n] = frames
    obs_index, ep_ids, t_index = [], [], []
    start = 0
    for k, ep in enumerate(episodes):
        steps = len(ep) - 1
        obs_index.append((start + np.arange(steps) + rotate) % n)
        ep_ids.append(np.full(steps, 10 * k + 3))  # arbitrary labels
        t_index.append(np.arange(steps))
        start += len(ep)
    return ring, np.concatenate(obs_index), np.concatenate(ep_ids), np.concatenate(t_index)


def _expected(model, demo, episodes, cfg):
    # Transition t of an episode earns the reward of its frame t + 1.
    return np.concatenate([sequence_rewards(model, demo, ep, cfg)[1:] for ep in episodes])


def test_recompute_matches_sequence_rewards_and_follows_retraining():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = VirlConfig(batch_size=8, lr=3e-3)
    demo = _trajectory(rng, 25)
    # Complete episodes of different lengths, longer and shorter than the demo, then the current,
    # unfinished episode (a partial one: 7 steps so far).
    episodes = [_trajectory(rng, n) for n in (31, 21, 26)] + [_trajectory(rng, 8)]
    ring, obs_index, ep_ids, t_index = _ring(episodes, rotate=13)  # the first episode wraps the ring
    inputs = [demo, ring, obs_index, ep_ids, t_index]
    copies = [a.copy() for a in inputs]

    learner = DistanceLearner((6,), cfg)
    before = recompute_rewards(learner.model, demo, ring, obs_index, ep_ids, t_index, cfg)
    assert before.shape == (len(obs_index),) and before.dtype == np.float32
    np.testing.assert_allclose(before, _expected(learner.model, demo, episodes, cfg), rtol=1e-5, atol=1e-6)

    learner.train(demo, episodes[:3], [], rng, steps=5)  # a retrain: a few updates
    after = recompute_rewards(learner.model, demo, ring, obs_index, ep_ids, t_index, cfg)
    assert np.max(np.abs(after - before)) > 1e-3  # the rewards follow the new model
    np.testing.assert_allclose(after, _expected(learner.model, demo, episodes, cfg), rtol=1e-5, atol=1e-6)

    for a, c in zip(inputs, copies, strict=True):  # nothing in the inputs was modified
        np.testing.assert_array_equal(a, c)
    assert not learner.model.training  # the model's mode is restored (train() leaves it in eval)

    # The order of the transitions does not matter.
    perm = rng.permutation(len(obs_index))
    shuffled = recompute_rewards(learner.model, demo, ring, obs_index[perm], ep_ids[perm], t_index[perm], cfg)
    np.testing.assert_allclose(shuffled, after[perm], rtol=1e-5, atol=1e-6)


def test_partial_episode_rewards_equal_the_prefix_of_the_finished_episode():
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    cfg = VirlConfig()
    model = RecurrentSiamese((6,), cfg).eval()
    demo = _trajectory(rng, 20)
    full = _trajectory(rng, 31)
    finished = recompute_rewards(model, demo, full, np.arange(30), np.zeros(30, np.int64), np.arange(30), cfg)
    for steps in (1, 9, 22):  # the unfinished episode after ``steps`` steps: frames o_0 .. o_steps
        partial = recompute_rewards(
            model, demo, full[: steps + 1], np.arange(steps), np.zeros(steps, np.int64), np.arange(steps), cfg
        )
        # The recurrent distance is causal: later frames cannot change earlier rewards.
        np.testing.assert_allclose(partial, finished[:steps], rtol=1e-5, atol=1e-6)


def test_episode_with_overwritten_start_is_scored_from_its_first_stored_frame():
    torch.manual_seed(2)
    rng = np.random.default_rng(2)
    cfg = VirlConfig(reward_mode="temporal_only")
    model = RecurrentSiamese((6,), cfg).eval()
    demo = _trajectory(rng, 15)
    ep = _trajectory(rng, 21)
    t0 = 4  # the ring overwrote o_0 .. o_3: transitions 4 .. 19 remain
    stored = ep[t0:]
    r = recompute_rewards(model, demo, stored, np.arange(16), np.ones(16, np.int64), np.arange(t0, 20), cfg)
    expected = sequence_rewards(model, align_demo(demo, 21)[t0:], stored, cfg)[1:]
    np.testing.assert_allclose(r, expected, rtol=1e-5, atol=1e-6)
    # It differs from the score of the whole episode: the recurrent state starts later.
    whole = sequence_rewards(model, demo, ep, cfg)[t0 + 1 :]
    assert np.max(np.abs(r - whole)) > 1e-4


@pytest.mark.parametrize("mode", ["both", "spatial_only", "temporal_only"])
def test_recompute_on_a_pixel_replay_buffer(mode):
    """Channels-first pixel frames as ``ReplayBuffer`` stores them; the last episode is unfinished."""
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    cfg = VirlConfig(reward_mode=mode, conv_channels=(4, 8), frame_embedding=16, rnn_hidden=16)
    model = RecurrentSiamese((16, 16, 3), cfg).eval()
    demo = rng.integers(0, 256, size=(12, 16, 16, 3), dtype=np.uint8)
    episodes = [rng.integers(0, 256, size=(n + 1, 16, 16, 3), dtype=np.uint8) for n in (10, 14, 6)]
    buf = ReplayBuffer(60, (3, 16, 16), np.uint8, 2, episode_steps=14, seed=0)
    ep_ids, t_index = [], []
    for k, ep in enumerate(episodes):
        buf.start_episode(ep[0].transpose(2, 0, 1))
        for t in range(1, len(ep)):
            buf.add(np.zeros(2, np.float32), 0.0, ep[t].transpose(2, 0, 1), False)
            ep_ids.append(k)
            t_index.append(t - 1)
    n = len(buf)
    assert n == sum(len(ep) - 1 for ep in episodes)  # nothing evicted: transitions are slots 0 .. n-1
    frames_before = buf.frames.copy()
    r = recompute_rewards(
        model,
        demo,
        buf.frames,
        buf.obs_index[:n],
        np.array(ep_ids),
        np.array(t_index),
        cfg,
        channels_first=True,
        max_batch_frames=8,  # forces several forward passes
    )
    np.testing.assert_allclose(r, _expected(model, demo, episodes, cfg), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(buf.frames, frames_before)


def test_recompute_rejects_inconsistent_inputs():
    model = RecurrentSiamese((6,)).eval()
    frames = np.zeros((10, 6), np.float32)
    demo = np.zeros((5, 6), np.float32)
    idx = np.arange(4)
    with pytest.raises(ValueError, match="episode_ids"):
        recompute_rewards(model, demo, frames, idx, np.zeros(3, np.int64), idx)
    with pytest.raises(ValueError, match="time_index"):
        recompute_rewards(model, demo, frames, idx, np.zeros(4, np.int64), idx.astype(np.float32))
    with pytest.raises(ValueError, match="not contiguous"):
        recompute_rewards(model, demo, frames, np.array([0, 1, 5, 6]), np.zeros(4, np.int64), idx)
    with pytest.raises(ValueError, match="obs_index"):
        recompute_rewards(model, demo, frames, idx + 20, np.zeros(4, np.int64), idx)
    with pytest.raises(ValueError, match="same time_index"):
        recompute_rewards(model, demo, frames, np.array([0, 0]), np.zeros(2, np.int64), np.array([0, 0]))
    assert recompute_rewards(model, demo, frames, idx[:0], idx[:0], idx[:0]).shape == (0,)


def test_rollout_frames_return_and_reversal():
    env = gymnasium.make("rlmu/AcrobotContinuous-v0")
    ep = rollout(env, RandomPolicy(env.action_space, seed=0), seed=5)
    first_obs, _ = env.reset(seed=5)
    assert ep.frames.shape == (ep.steps + 1, 6) and 1 <= ep.steps <= 100
    np.testing.assert_array_equal(ep.frames[0], first_obs)
    # Acrobot pays -1 per step and 0 on the step that reaches the goal (which ends the episode).
    assert ep.ret == -(ep.steps - 1 if ep.success else ep.steps)
    again = rollout(env, RandomPolicy(env.action_space, seed=0), seed=5)
    np.testing.assert_array_equal(again.frames, ep.frames)  # seeded policy and reset: reproducible
    other = rollout(env, RandomPolicy(env.action_space, seed=1), seed=5)
    assert not np.array_equal(other.frames, ep.frames)
    short = rollout(env, RandomPolicy(env.action_space, seed=0), seed=5, max_steps=7)
    np.testing.assert_array_equal(short.frames, ep.frames[:8])
    rev = reversed_frames(ep.frames)
    np.testing.assert_array_equal(rev[0], ep.frames[-1])
    assert rev.flags["C_CONTIGUOUS"]
    env.close()
