"""Data- and task-side fidelity choices: Acrobot's observation domain, MEM classes, Acrobot convergence,
the success rule of relabelling, the negative-reward preset, the two jitter readings, negative reward."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rlmu.data.format import VideoDataset, load_video_dataset, save_video_dataset
from rlmu.data.generate import generate_videos
from rlmu.data.vdg import augment_videos, jitter_indices
from rlmu.envs.state_domains import get_state_domain
from rlmu.stats.convergence import converged
from rlmu.tasks import DEFAULT_OBSERVATION_DOMAIN, get_task
from rlmu.train.config import DataConfig, load_config
from rlmu.train.data import build_observation_buffer
from rlmu.train.replay import ObservationBuffer

REPO = Path(__file__).resolve().parents[1]


# ---- Acrobot's observation domain ------------------------------------------------------------------


def test_acrobot_videos_are_generated_in_the_human_state_domain_by_default():
    human = generate_videos("acrobot", n_episodes=2, quality="high", seed=3)
    robot = generate_videos("acrobot", n_episodes=2, quality="high", seed=3, domain="robot")
    assert DEFAULT_OBSERVATION_DOMAIN == "human" and human.meta["domain"] == "human"
    assert robot.meta["domain"] == "robot"
    # The domain changes the sensor, not the trajectories: same episodes, same outcomes.
    np.testing.assert_array_equal(human.episode_lengths, robot.episode_lengths)
    np.testing.assert_array_equal(human.reached_goal, robot.reached_goal)
    # A human frame is the robot frame through the domain's fixed transform, plus small noise.
    matrix, offset = get_state_domain("human").transform(6)
    recovered = np.linalg.solve(matrix, (human.frames.astype(np.float64) - offset).T).T
    assert np.abs(recovered - robot.frames).max() < 0.2
    assert np.abs(human.frames - robot.frames).mean() > 0.3  # a real gap, not a relabelled copy
    # Seeded: the same command gives the same frames (noise included).
    again = generate_videos("acrobot", n_episodes=2, quality="high", seed=3)
    np.testing.assert_array_equal(again.frames, human.frames)


def test_state_domains_are_named_seeded_and_robot_is_the_identity():
    x = np.random.default_rng(0).uniform(-1, 1, (5, 6)).astype(np.float32)
    np.testing.assert_array_equal(get_state_domain("robot").apply(x), x)
    a0, b0 = get_state_domain("human").transform(6)
    a0_again, _ = get_state_domain("human", seed=0).transform(6)
    a3, b3 = get_state_domain("human", seed=3).transform(6)
    np.testing.assert_array_equal(a0, a0_again)
    assert not np.allclose(a0, a3) and not np.allclose(b0, b3)
    # A rotation times per-dimension scales in [0.5, 2]: invertible, every dimension mixed.
    singular = np.linalg.svd(a0, compute_uv=False)
    assert singular.min() >= 0.5 - 1e-9 and singular.max() <= 2.0 + 1e-9
    assert (np.abs(a0) > 1e-3).sum() > 30
    with pytest.raises(ValueError, match="unknown state domain 'human_dark'"):
        get_state_domain("human_dark")


def test_acrobot_env_observes_in_its_domain_and_keeps_the_state_in_info():
    import gymnasium as gym

    import rlmu  # noqa: F401

    robot, human = (
        gym.make("rlmu/AcrobotContinuous-v0"),
        gym.make("rlmu/AcrobotContinuous-v0", domain="human"),
    )
    o_r, i_r = robot.reset(seed=5)
    o_h, i_h = human.reset(seed=5)
    np.testing.assert_array_equal(i_r["state"], i_h["state"])
    np.testing.assert_array_equal(o_r, i_r["state"])
    assert not np.allclose(o_h, o_r)
    for _ in range(5):
        o_r, _, _, _, i_r = robot.step(np.array([1.0], np.float32))
        o_h, _, _, _, i_h = human.step(np.array([1.0], np.float32))
    np.testing.assert_array_equal(i_r["state"], i_h["state"])
    assert human.observation_space.contains(o_h)


def test_human_state_frames_outside_the_domains_range_are_refused(tmp_path):
    ds = generate_videos("acrobot", n_episodes=1, quality="high", seed=0)
    load_video_dataset(save_video_dataset(tmp_path / "ok.npz", ds))
    frames = ds.frames.copy()
    frames[3, 2] = 1e6
    bad = VideoDataset(**{**ds.__dict__, "frames": frames, "path": None})
    with pytest.raises(ValueError, match=r"row 3 .*outside the task's observation range in domain 'human'"):
        save_video_dataset(tmp_path / "bad.npz", bad)


def test_workflow_and_studies_take_the_domain_from_the_generator():
    import sys

    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    import study

    config = {"tasks": {"acrobot": {"data": {"transitions": 100, "quality": "medium"}}}}
    assert "--domain" not in study.generate_args(config, "acrobot")  # rlmu data generate's default: human
    config["tasks"]["acrobot"]["data"]["domain"] = "robot"
    assert "--domain robot" in study.generate_args(config, "acrobot")  # a study can ask for robot


# ---- MEM classes --------------------------------------------------------------------------------------


def _mem_buffer(lengths, seed=0):
    vids = [np.stack([np.full(n + 1, v), np.arange(n + 1)], axis=1) for v, n in enumerate(lengths)]
    frames = np.concatenate(vids).astype(np.float32)
    lengths = np.asarray(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    o = np.concatenate([s + np.arange(n) for s, n in zip(starts, lengths, strict=True)])
    return ObservationBuffer(
        frames,
        o,
        o + 1,
        np.zeros(len(o)),
        np.zeros(len(o)),
        episode_starts=starts,
        episode_lengths=lengths,
        seed=seed,
    )


def test_mem_classes_are_balanced():
    # 101-frame videos (Acrobot / push episodes of 100 steps), k = 8, K = 8: 94 valid starts.
    buf = _mem_buffer([100, 100, 60])
    batch = buf.sample_mem(20_000, 8, 8)
    counts = np.bincount(batch["label"], minlength=8)
    assert counts.min() > 2300 and counts.max() < 2700, counts  # 2500 each (binomial sd 47)
    # The label is the bin of m in the video's valid-start range.
    m = batch["frames"][:, 0, 1].astype(np.int64)
    n = np.where(batch["frames"][:, 0, 0] == 2, 61, 101)
    np.testing.assert_array_equal(batch["label"], m * 8 // (n - 8 + 1))
    assert m.min() == 0 and np.all(m <= n - 8) and (m == n - 8).any()


def test_mem_needs_a_start_in_every_class():
    buf = _mem_buffer([10])  # 11 frames, k = 8: 4 valid starts for 8 classes
    with pytest.raises(ValueError, match="15 frames"):
        buf.sample_mem(4, 8, 8)


# ---- Acrobot convergence ------------------------------------------------------------------------------


def test_acrobot_reaching_the_goal_on_the_last_step_converges():
    import gymnasium as gym

    import rlmu  # noqa: F401
    from rlmu.experts import make_expert

    # A real episode: the return of one that reaches the goal on step t is -(t - 1).
    env, expert = gym.make("rlmu/AcrobotContinuous-v0"), make_expert("acrobot", seed=0)
    obs, info = env.reset(seed=0)
    expert.reset()
    ret, t, term, trunc = 0.0, 0, False, False
    while not (term or trunc):
        obs, r, term, trunc, info = env.step(expert.act(obs, info))
        ret, t = ret + r, t + 1
    assert term and ret == -(t - 1)
    threshold = get_task("acrobot").converge_threshold
    # Goal on step 100: -99 converges; never: -100 does not; one of five evaluation episodes on step 100.
    assert converged([-99.0, -100.0, -99.8, -62.0], threshold).tolist() == [True, False, True, True]


# ---- success rule of relabelling ----------------------------------------------------------------------


def _push_like_dataset():
    # Three push-sized videos: success held on some step and at the end / on some step only / never.
    eps = [np.zeros((5, 8, 8, 3), np.uint8) for _ in range(3)]
    return VideoDataset.from_episodes(
        eps,
        meta={"task": "push", "domain": "human", "image_size": 8},
        reached_goal=[True, False, False],
        success_any_step=[True, True, False],
    )


def test_relabelling_counts_success_on_any_step_by_default():
    ds = _push_like_dataset()
    assert DataConfig().success == "any_step"
    any_step = ds.relabelled()
    final = ds.relabelled(success="final_frame")
    np.testing.assert_array_equal(any_step.reward.reshape(3, 4)[:, -1], [10.0, 10.0, 0.0])
    np.testing.assert_array_equal(any_step.terminal.reshape(3, 4)[:, -1], [True, True, False])
    np.testing.assert_array_equal(final.reward.reshape(3, 4)[:, -1], [10.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="success must be one of"):
        ds.relabelled(success="sometimes")


def test_generated_videos_record_success_on_any_step(tmp_path, monkeypatch):
    # A video whose task success held on a step but not at its end (a puck pushed past the goal).
    from rlmu.data import generate as gen
    from rlmu.envs.rollout import Episode

    fake = Episode(np.zeros((4, 6), np.float32), -3.0, success=True, final_success=False)
    monkeypatch.setattr(gen, "rollout", lambda env, expert, seed: fake)
    ds = generate_videos("acrobot", n_episodes=1, quality="high", domain="robot")
    assert ds.success_any_step.tolist() == [True] and ds.reached_goal.tolist() == [False]
    back = load_video_dataset(save_video_dataset(tmp_path / "v.npz", ds))
    assert back.success_any_step.tolist() == [True]


# ---- observation buffer of a run: success rule and negative reward ------------------------------------


def _acrobot_file(tmp_path):
    rng = np.random.default_rng(0)
    eps = []
    for t in (40, 30):
        th = rng.uniform(-np.pi, np.pi, (t + 1, 2))
        eps.append(
            np.column_stack(
                [
                    np.cos(th[:, 0]),
                    np.sin(th[:, 0]),
                    np.cos(th[:, 1]),
                    np.sin(th[:, 1]),
                    rng.uniform(-1, 1, (t + 1, 2)),
                ]
            ).astype(np.float32)
        )
    ds = VideoDataset.from_episodes(
        eps, meta={"task": "acrobot"}, reached_goal=[False, False], success_any_step=[False, False]
    )
    return save_video_dataset(tmp_path / "acrobot.npz", ds)


def test_negative_reward_is_added_to_the_step_reward(tmp_path):
    path = _acrobot_file(tmp_path)
    cfg = load_config(
        None,
        [
            "task=acrobot",
            "variant=rlv_negreward",
            f"data.observations={path}",
            "agent.rlv.paired=false",
            "data.jitter_start=[5,10]",
        ],
    )
    buf = build_observation_buffer(cfg, get_task("acrobot"))
    n_orig = 70
    aug_reward = buf.reward[n_orig:]
    # Acrobot's step reward is -1: reversed jitter transitions get -1 + -0.1, the others -1.
    assert set(np.round(aug_reward.astype(np.float64), 6).tolist()) == {-1.0, -1.1}
    assert np.all(buf.reward[:n_orig] == -1.0)
    # The docs say the same: the value is added to the step reward.
    doc = (REPO / "docs" / "training.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `data.negative_reward`"))
    assert "added to the step reward" in row and "-1.1" in row


def test_negreward_preset_jitters_at_ratio_half():
    cfg = load_config(None, ["task=push", "variant=rlv_negreward", "data.observations=o", "data.paired=p"])
    assert cfg.data.augment_ratio == 0.5 and cfg.data.negative_reward == -0.1 and cfg.data.jitter == 5
    doc = (REPO / "docs" / "training.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `rlv_negreward`"))
    assert re.search(r"ratio 0\.5", row)


# ---- the two jitter readings --------------------------------------------------------------------------


def test_fixed_and_advancing_jitter_on_hand_made_sequences():
    # 20 frames, j = 3, s = 4.
    fixed, fmask = jitter_indices(20, 3, 4, "fixed")
    adv, amask = jitter_indices(20, 3, 4, "advancing")
    assert fixed.tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 5, 4, 4, 5, 6, 6, 5, 4, 4, 5, 6, 6]
    assert adv.tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 5, 4, 7, 8, 9, 9, 8, 7, 10, 11, 12, 12]
    # Reversed transitions: the backward steps inside a reversed copy (6->5, 5->4 / 9->8, 8->7).
    assert np.flatnonzero(fmask).tolist() == [7, 8, 13, 14]
    assert np.flatnonzero(amask).tolist() == [7, 8, 13, 14]
    # Near the end of a short video the advancing chunk is clipped and never holds the last frame.
    short, _ = jitter_indices(10, 3, 4, "advancing")
    assert short.tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 5, 4] and short.max() < 9
    end, _ = jitter_indices(12, 4, 4, "advancing")
    assert end.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 4] and end.max() <= 10
    late, _ = jitter_indices(14, 3, 7, "advancing")
    assert late.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 8, 7, 10] and late.max() <= 12
    with pytest.raises(ValueError, match="jitter mode"):
        jitter_indices(20, 3, 4, "sideways")


def test_jitter_mode_reaches_the_generator_and_the_config():
    frames = np.arange(30, dtype=np.float32)[:, None]
    fixed = augment_videos([frames], "jitter", j=3, start_range=(4, 4), rng=0)[0]
    adv = augment_videos([frames], "jitter", j=3, start_range=(4, 4), jitter_mode="advancing", rng=0)[0]
    assert fixed.frames[:, 0].max() == 6 and adv.frames[:, 0].max() > 6
    assert DataConfig().jitter_mode == "fixed"
    assert DataConfig(jitter_mode="advancing").jitter_mode == "advancing"
    with pytest.raises(ValueError, match="jitter_mode"):
        DataConfig(jitter_mode="sideways")
