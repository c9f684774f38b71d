"""Replay buffers: frames stored once, correct next observations across episode ends and ring wraps."""

from __future__ import annotations

import numpy as np
import pytest

from rlmu.train.replay import ObservationBuffer, ReplayBuffer


def _obs(ep: int, t: int) -> np.ndarray:
    return np.array([ep, t], dtype=np.float32)


def _fill(buf: ReplayBuffer, lengths: list[int], terminate_last: bool) -> list[tuple]:
    """Write episodes whose observations encode (episode, t); return every transition written."""
    written = []
    for ep, n in enumerate(lengths):
        buf.start_episode(_obs(ep, 0))
        for t in range(n):
            term = terminate_last and t == n - 1
            buf.add(np.array([ep * 1000 + t], dtype=np.float32), float(t), _obs(ep, t + 1), term)
            written.append((ep, t, term))
    return written


def _check_sample(batch):
    ep, t = batch["obs"][:, 0], batch["obs"][:, 1]
    np.testing.assert_array_equal(batch["next_obs"][:, 0], ep)  # never a frame of another episode
    np.testing.assert_array_equal(batch["next_obs"][:, 1], t + 1)
    np.testing.assert_array_equal(batch["action"][:, 0], ep * 1000 + t)
    np.testing.assert_array_equal(batch["reward"], t)


@pytest.mark.parametrize("lengths", [[5] * 30, [1, 2, 7, 3, 1, 1, 9, 4, 2, 6] * 4])
def test_next_obs_across_episode_ends_and_wraps(lengths):
    buf = ReplayBuffer(17, (2,), np.float32, 1, episode_steps=5, seed=0)
    written = _fill(buf, lengths, terminate_last=True)
    assert 0 < len(buf) <= 17
    _check_sample(buf.sample(500))
    # The buffer holds exactly the newest len(buf) transitions, in order.
    idx = (buf._head - len(buf) + np.arange(len(buf))) % buf.capacity
    kept = [(int(a) // 1000, int(a) % 1000) for a in buf.action[idx, 0]]
    assert kept == [(e, t) for e, t, _ in written[-len(buf) :]]
    terminal = {(e, t): term for e, t, term in written}
    assert [bool(x) for x in buf.terminal[idx]] == [terminal[k] for k in kept]


def test_full_length_episodes_keep_capacity_transitions():
    buf = ReplayBuffer(20, (2,), np.float32, 1, episode_steps=5, seed=0)
    _fill(buf, [5] * 12, terminate_last=False)
    assert len(buf) == 20  # the frame ring has room for one start frame per episode


def test_sampling_is_seeded_and_survives_state_dict_roundtrip():
    a = ReplayBuffer(30, (2,), np.float32, 1, episode_steps=4, seed=7)
    _fill(a, [4, 3, 4, 2, 4, 4, 4, 4, 4, 4], terminate_last=False)
    a.sample(5)
    state = a.state_dict()
    b = ReplayBuffer(30, (2,), np.float32, 1, episode_steps=4, seed=123)
    b.load_state_dict(state)
    for _ in range(3):
        x, y = a.sample(8), b.sample(8)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    # Both keep writing identically after the restore.
    for buf in (a, b):
        buf.start_episode(_obs(99, 0))
        buf.add(np.array([99000.0], np.float32), 0.0, _obs(99, 1), True)
    np.testing.assert_array_equal(a.sample(50)["obs"], b.sample(50)["obs"])


def test_partial_buffer_state_is_small():
    buf = ReplayBuffer(1000, (2,), np.float32, 1, episode_steps=10, seed=0)
    _fill(buf, [10], terminate_last=False)
    assert len(buf.state_dict()["frames"]) == 11


def test_pixel_frames_are_stored_once():
    buf = ReplayBuffer(1000, (3, 48, 48), np.uint8, 2, episode_steps=100, seed=0)
    frame = 3 * 48 * 48
    # One frame per transition plus one start frame per 100-step episode, plus small per-step fields.
    assert frame < buf.bytes_per_transition < 1.02 * frame + 32
    assert buf.bytes_per_transition < 1.5 * frame  # not (obs, next_obs) twice


def test_observation_buffer_mem_batches():
    # Two videos of 21 and 41 frames; a frame is (video, index within the video).
    vids = [np.stack([np.full(n, v), np.arange(n)], axis=1).astype(np.float32) for v, n in ((0, 21), (1, 41))]
    frames = np.concatenate(vids)
    starts, lengths = np.array([0, 21]), np.array([20, 40])
    o = np.concatenate([s + np.arange(n) for s, n in zip(starts, lengths, strict=True)])
    buf = ObservationBuffer(
        frames,
        o,
        o + 1,
        np.zeros(len(o)),
        np.zeros(len(o)),
        episode_starts=starts,
        episode_lengths=lengths,
        seed=0,
    )
    batch = buf.sample_mem(400, 8, 4)
    video, index = batch["frames"][..., 0], batch["frames"][..., 1]
    assert index.shape == (400, 8)
    assert np.all(video == video[:, :1])  # one video per sub-sequence
    np.testing.assert_array_equal(np.diff(index, axis=1), 1)  # consecutive frames
    n_frames = np.where(video[:, 0] == 0, 21, 41)
    m = index[:, 0].astype(np.int64)
    assert np.all(m + 8 <= n_frames)
    # Label: the bin of the start frame m when the video's n - k + 1 valid starts are cut into K = 4 equal
    # parts (the bins of all n frames left the last class short of starts).
    np.testing.assert_array_equal(batch["label"], (m * 4) // (n_frames - 8 + 1))
    assert batch["label"].dtype == np.int64 and set(np.unique(batch["label"])) == {0, 1, 2, 3}
    s = buf.sample(64)
    np.testing.assert_array_equal(s["next_obs"][:, 1], s["obs"][:, 1] + 1)
