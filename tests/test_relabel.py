"""Reward relabelling of observation transitions (METHODS section 2) for every kind of video."""

import numpy as np
import pytest

from rlmu.data.relabel import Relabelled, observation_transitions, relabel, relabel_video
from rlmu.data.vdg import augment_videos, negative_jitter


def test_push_success_and_failure():
    out = relabel(5, task="push", reached_goal=True)
    assert out.reward.dtype == np.float32 and out.terminal.dtype == bool
    assert out.reward.tolist() == [0, 0, 0, 0, 10]
    assert out.terminal.tolist() == [False, False, False, False, True]
    out = relabel(5, task="push", reached_goal=False)
    assert out.reward.tolist() == [0] * 5 and not out.terminal.any()  # time-out: bootstrapped


def test_drawer_uses_push_scheme_and_gym_ids_work():
    out = relabel(3, task="rlmu/VisualDrawerOpen-v0", reached_goal=True)
    assert out.reward.tolist() == [0, 0, 10] and out.terminal.tolist() == [False, False, True]


def test_acrobot_success_and_failure():
    out = relabel(4, task="acrobot", reached_goal=True)
    assert out.reward.tolist() == [-1, -1, -1, 10]
    assert out.terminal.tolist() == [False, False, False, True]
    out = relabel(4, task="acrobot", reached_goal=False)
    assert out.reward.tolist() == [-1, -1, -1, -1] and not out.terminal.any()


@pytest.mark.parametrize("task,step", [("push", 0.0), ("acrobot", -1.0)])
def test_reverse_never_reaches_goal(task, step):
    out = relabel(4, task=task, reached_goal=False, kind="reverse")
    assert out.reward.tolist() == [step] * 4 and not out.terminal.any()
    with pytest.raises(ValueError, match="reached_goal"):
        relabel(4, task=task, reached_goal=True, kind="reverse")


@pytest.mark.parametrize("task,step", [("push", 0.0), ("drawer", 0.0), ("acrobot", -1.0)])
def test_jitter_never_reaches_goal(task, step):
    _, mask = negative_jitter(np.arange(30)[:, None], 5, 10)
    out = relabel(29, task=task, reached_goal=False, kind="jitter", reversed_mask=mask)
    assert np.all(out.reward == np.float32(step)) and not out.terminal.any()


def test_negative_reward_on_jitter_reversed_segments():
    # frames 0 1 2 3 | 4 5 6 | 6 5 4 | 4 5 : reversed transitions 6->5 and 5->4 (indices 7, 8)
    _, mask = negative_jitter(np.arange(12)[:, None], 3, 4)
    out = relabel(
        11, task="push", reached_goal=False, kind="jitter", reversed_mask=mask, negative_reward=-0.1
    )
    np.testing.assert_allclose(out.reward, [0] * 7 + [-0.1, -0.1] + [0, 0], rtol=0, atol=1e-7)
    assert not out.terminal.any()
    out = relabel(
        11, task="acrobot", reached_goal=False, kind="jitter", reversed_mask=mask, negative_reward=-0.1
    )
    np.testing.assert_allclose(out.reward, [-1] * 7 + [-1.1, -1.1] + [-1, -1], rtol=0, atol=1e-6)


def test_negative_reward_on_reverse_and_original():
    out = relabel(3, task="push", reached_goal=False, kind="reverse", negative_reward=-0.25)
    assert out.reward.tolist() == [-0.25] * 3
    out = relabel(3, task="acrobot", reached_goal=False, kind="reverse", negative_reward=-0.5)
    assert out.reward.tolist() == [-1.5] * 3
    # an original video has no reversed segment: the variant leaves it unchanged
    out = relabel(3, task="push", reached_goal=True, negative_reward=-0.1)
    assert out.reward.tolist() == [0, 0, 10] and out.terminal.tolist() == [False, False, True]


def test_relabel_video_from_generator():
    eps = [np.arange(41)[:, None].astype(np.float32)] * 2
    for video in augment_videos(eps, "jitter", j=5, rng=0) + augment_videos(eps, "reverse", rng=0):
        out = relabel_video(video, task="acrobot", negative_reward=-0.1)
        expected = np.where(video.reversed_mask, -1.1, -1.0)
        np.testing.assert_allclose(out.reward, expected, atol=1e-6)
        assert not out.terminal.any()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"n_transitions": 0, "task": "push", "reached_goal": False}, "n_transitions"),
        ({"n_transitions": 3, "task": "pong", "reached_goal": False}, "task"),
        ({"n_transitions": 3, "task": "push", "reached_goal": False, "kind": "mirror"}, "kind"),
        ({"n_transitions": 3, "task": "push", "reached_goal": True, "kind": "jitter"}, "reached_goal"),
        (
            {
                "n_transitions": 3,
                "task": "push",
                "reached_goal": False,
                "kind": "jitter",
                "negative_reward": -0.1,
            },
            "reversed_mask",
        ),
        (
            {
                "n_transitions": 3,
                "task": "push",
                "reached_goal": False,
                "kind": "jitter",
                "reversed_mask": [1, 0, 0],
            },
            "reversed_mask",
        ),
        (
            {"n_transitions": 3, "task": "push", "reached_goal": False, "reversed_mask": np.ones(3, bool)},
            "reversed_mask",
        ),
        (
            {"n_transitions": 3, "task": "push", "reached_goal": False, "negative_reward": float("nan")},
            "negative_reward",
        ),
    ],
)
def test_relabel_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        relabel(**kwargs)


def test_observation_transitions_index_frames_stored_once():
    a = relabel(3, task="push", reached_goal=True)
    b = relabel(2, task="push", reached_goal=False)
    flat = observation_transitions([a, b])
    # episode a: frames 0..3, episode b: frames 4..6 in the concatenated frame array
    assert flat["obs_index"].tolist() == [0, 1, 2, 4, 5]
    assert flat["next_index"].tolist() == [1, 2, 3, 5, 6]
    assert flat["reward"].tolist() == [0, 0, 10, 0, 0]
    assert flat["terminal"].tolist() == [False, False, True, False, False]
    assert flat["episode"].tolist() == [0, 0, 0, 1, 1]
    frames = np.concatenate([np.arange(4), np.arange(10, 13)])
    assert frames[flat["next_index"]].tolist() == [1, 2, 3, 11, 12]
    empty = observation_transitions([])
    assert all(len(v) == 0 for v in empty.values())
    with pytest.raises(ValueError, match="labels\\[0\\]"):
        observation_transitions([Relabelled(reward=np.zeros(2, np.float32), terminal=np.zeros(3, bool))])
