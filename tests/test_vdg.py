"""Video Data Generator: reverse and negative jitter against hand-written frame sequences."""

import dataclasses

import numpy as np
import pytest

from rlmu.data.vdg import (
    AugmentedVideo,
    augment_videos,
    draw_start,
    jitter_indices,
    negative_jitter,
    reverse_video,
)

N = 41  # frames per test video (T = 40 transitions)


def labelled_video(n=N, size=4):
    """Image episode whose frame i is filled with the value i, so frames can be read back as labels."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, size, size, 3)).copy()


def labels(frames):
    return frames[:, 0, 0, 0].astype(int).tolist()


# Written out by hand: prefix [0, s), then chunk forward + chunk reversed, repeated, cut at 41 frames.
HAND = {
    (2, 10): list(range(10)) + [10, 11, 11, 10] * 7 + [10, 11, 11],
    (5, 10): list(range(10)) + [10, 11, 12, 13, 14, 14, 13, 12, 11, 10] * 3 + [10],
    (7, 10): list(range(10)) + [10, 11, 12, 13, 14, 15, 16, 16, 15, 14, 13, 12, 11, 10] * 2 + [10, 11, 12],
    (10, 10): list(range(10))
    + [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10]
    + [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 19],
    (2, 25): list(range(25)) + [25, 26, 26, 25] * 4,
    (5, 25): list(range(25)) + [25, 26, 27, 28, 29, 29, 28, 27, 26, 25] + [25, 26, 27, 28, 29, 29],
    (7, 25): list(range(25)) + [25, 26, 27, 28, 29, 30, 31, 31, 30, 29, 28, 27, 26, 25] + [25, 26],
    (10, 25): list(range(25)) + [25, 26, 27, 28, 29, 30, 31, 32, 33, 34] + [34, 33, 32, 31, 30, 29],
}


@pytest.mark.parametrize("j,start", sorted(HAND))
def test_negative_jitter_matches_hand_made_sequence(j, start):
    frames = labelled_video()
    out, mask = negative_jitter(frames, j, start)
    expected = HAND[(j, start)]
    assert len(expected) == N  # the hand-written sequence itself has the original length
    assert out.shape == frames.shape and out.dtype == frames.dtype
    assert labels(out) == expected
    # reversed transitions: exactly the one-frame backward steps of the hand-written sequence
    assert mask.shape == (N - 1,) and mask.dtype == bool
    assert mask.tolist() == [b == a - 1 for a, b in zip(expected[:-1], expected[1:], strict=True)]
    assert not mask[:start].any()  # the copied prefix is never reversed
    assert max(expected) < N - 1 and labels(out).count(N - 1) == 0  # never reaches the last (goal) frame


def test_jitter_mask_written_out():
    index, mask = jitter_indices(12, 3, 4)
    assert index.tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 5, 4, 4, 5]
    assert mask.tolist() == [False] * 7 + [True, True] + [False] * 2


def test_jitter_on_state_episode_and_short_chunk():
    states = np.arange(8, dtype=np.float64)[:, None] * np.ones((1, 6))
    out, mask = negative_jitter(states, 10, 4)
    # the chunk is clipped before the last frame (7): frames 4..6
    assert out[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 6]
    assert not mask.any()


def test_jitter_j1_pauses():
    out, mask = negative_jitter(labelled_video(12), 1, 3)
    assert labels(out) == [0, 1, 2] + [3] * 9
    assert not mask.any()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"j": 0, "start": 10}, "j"),
        ({"j": -2, "start": 10}, "j"),
        ({"j": 2.5, "start": 10}, "j"),
        ({"j": 2, "start": -1}, "start"),
        ({"j": 2, "start": N - 1}, "start"),
        ({"j": 2, "start": N}, "start"),
    ],
)
def test_jitter_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        negative_jitter(labelled_video(), **kwargs)


def test_reverse_video():
    frames = labelled_video()
    rev = reverse_video(frames)
    assert labels(rev) == list(range(N - 1, -1, -1))
    assert rev.shape == frames.shape and rev.dtype == np.uint8
    states = np.random.default_rng(0).normal(size=(7, 6)).astype(np.float32)
    np.testing.assert_array_equal(reverse_video(states), states[[6, 5, 4, 3, 2, 1, 0]])
    with pytest.raises(ValueError, match="at least 2 frames"):
        reverse_video(states[:1])


def _videos(n_videos, n_frames=N):
    return [labelled_video(n_frames) + np.uint8(0) for _ in range(n_videos)]


@pytest.mark.parametrize("ratio,n_videos,expected", [(1.0, 10, 10), (0.5, 10, 5), (0.5, 5, 3), (2.5, 4, 10)])
def test_augment_counts(ratio, n_videos, expected):
    out = augment_videos(_videos(n_videos), "jitter", j=5, ratio=ratio, rng=np.random.default_rng(3))
    assert len(out) == expected
    sources = [v.source_index for v in out]
    assert sources == sorted(sources)
    counts = np.bincount(sources, minlength=n_videos)
    # every original is used floor(ratio) or ceil(ratio) times
    assert counts.min() >= int(np.floor(ratio)) and counts.max() <= int(np.ceil(ratio))
    if ratio == 1.0:
        assert counts.tolist() == [1] * n_videos


def test_augment_jitter_videos_are_consistent():
    eps = _videos(200)
    out = augment_videos(eps, "jitter", j=7, ratio=1.0, start_range=(10, 25), rng=np.random.default_rng(0))
    starts = [v.start for v in out]
    assert min(starts) == 10 and max(starts) == 25  # inclusive range
    for v in out:
        assert isinstance(v, AugmentedVideo) and v.kind == "jitter" and v.j == 7
        expected, mask = negative_jitter(eps[v.source_index], 7, v.start)
        np.testing.assert_array_equal(v.frames, expected)
        np.testing.assert_array_equal(v.reversed_mask, mask)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out[0].kind = "reverse"  # frozen


def test_augment_reverse():
    eps = [np.arange(n * 2, dtype=np.float32).reshape(n, 2) for n in (5, 9, 12)]
    out = augment_videos(eps, "reverse", ratio=1.0, rng=1)
    assert [v.source_index for v in out] == [0, 1, 2]
    for v in out:
        np.testing.assert_array_equal(v.frames, eps[v.source_index][::-1])
        assert v.kind == "reverse" and v.j is None and v.start is None
        assert v.reversed_mask.all() and v.reversed_mask.shape == (len(v.frames) - 1,)


def test_augment_deterministic_under_seed():
    eps = _videos(12)
    a = augment_videos(eps, "jitter", j=5, ratio=0.5, rng=np.random.default_rng(7))
    b = augment_videos(eps, "jitter", j=5, ratio=0.5, rng=np.random.default_rng(7))
    c = augment_videos(eps, "jitter", j=5, ratio=0.5, rng=np.random.default_rng(8))
    key = lambda vs: [(v.source_index, v.start) for v in vs]  # noqa: E731
    assert key(a) == key(b)
    assert all(np.array_equal(x.frames, y.frames) for x, y in zip(a, b, strict=True))
    assert key(a) != key(c)
    assert len(set(v.source_index for v in a)) == 6  # half of the originals, no repeats


def test_start_clamped_to_short_videos():
    rng = np.random.default_rng(0)
    starts = {draw_start(15, (10, 25), rng) for _ in range(300)}
    assert starts == {10, 11, 12, 13}
    assert {draw_start(8, (10, 25), rng) for _ in range(20)} == {6}
    out = augment_videos(_videos(3, 8), "jitter", j=2, rng=0)
    assert all(v.start == 6 for v in out)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"mode": "shuffle"}, "mode"),
        ({"mode": "jitter", "ratio": -0.5}, "ratio"),
        ({"mode": "jitter", "j": 0}, "j"),
        ({"mode": "jitter", "start_range": (25, 10)}, "start_range"),
    ],
)
def test_augment_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        augment_videos(_videos(2), rng=0, **kwargs)
