"""VIRL's training pairs as METHODS describes them: (agent, agent) positives of one policy round, crops
that cannot pass for a time warp, and the other tasks' videos wired into the studies."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_resume import tiny_overrides, write_acrobot_videos

from rlmu.data.format import VideoDataset, save_video_dataset
from rlmu.errors import UserError
from rlmu.tasks import get_task
from rlmu.train.config import load_config
from rlmu.train.trainer import Trainer
from rlmu.train.virl import load_other_videos, other_tasks
from rlmu.virl import VirlConfig
from rlmu.virl.pairs import crop, crop_max_kept, make_pairs, time_warp, warp_max_dropped

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("rlmu_study", ROOT / "workflow/scripts/study.py")
study = importlib.util.module_from_spec(_spec)
sys.modules["rlmu_study"] = study
_spec.loader.exec_module(study)


def _constant(value: float, t: int = 12, d: int = 3) -> np.ndarray:
    return np.full((t, d), value, dtype=np.float32)


# ------------------------------------------------------------------------------- (agent, agent) positives


def test_agent_positives_pair_two_different_rollouts_of_one_round():
    demo = _constant(-1.0)
    rollouts = [_constant(float(i)) for i in range(6)]  # rollout i is the constant sequence i
    rounds = [0, 0, 1, 1, 1, 2]  # round 2 has a single rollout: it can only be an (demo, agent) negative
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        a, b, y = make_pairs(demo, rollouts, [], 16, rng, VirlConfig(), agent_rounds=rounds)
        for first, second, label in zip(a, b, y, strict=True):
            if first[0, 0] == -1.0:  # the demo is the first element of every other kind
                continue
            assert label == 1.0
            i, j = int(first[0, 0]), int(second[0, 0])
            np.testing.assert_array_equal(second, rollouts[j])  # a rollout as it is, no noise
            assert i != j and rounds[i] == rounds[j], (i, j)
            seen.add((i, j))
    assert seen == {(0, 1), (1, 0), (2, 3), (3, 2), (2, 4), (4, 2), (3, 4), (4, 3)}


def test_no_agent_positive_without_two_rollouts_in_one_round():
    demo = _constant(-1.0)
    rollouts = [_constant(float(i)) for i in range(3)]
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, _, y = make_pairs(demo, rollouts, [], 16, rng, VirlConfig(), agent_rounds=[0, 1, 2])
        assert np.all(a[:, 0, 0] == -1.0) and y.sum() == 8
    with pytest.raises(ValueError, match="agent_rounds"):
        make_pairs(demo, rollouts, [], 4, rng, VirlConfig(), agent_rounds=[0, 1])


def test_rounds_of_the_rollouts_a_run_trains_on(tmp_path):
    """Each retrain labels an agent episode with the round in which it completed (trainer episode ids)."""
    cfg = load_config(
        None,
        [*tiny_overrides("virl_both", None, epochs=5), "virl.retrain_every=200", "virl.rollouts_kept=10"],
    )
    t = Trainer(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    virl = t.members[0].virl
    calls = []
    retrain, train = virl.retrain, virl.learner.train

    def spy_retrain(current_episode, in_progress):
        calls.append({"current": current_episode})
        return retrain(current_episode, in_progress)

    def spy_train(demo, rollouts, others, rng, steps=None, agent_rounds=None):
        if calls and "rounds" not in calls[-1]:
            calls[-1].update(n=len(rollouts), rounds=list(agent_rounds))
        return train(demo, rollouts, others, rng, steps, agent_rounds)

    virl.retrain, virl.learner.train = spy_retrain, spy_train
    assert t.run() == 0
    assert len(calls) == 2
    for r, call in enumerate(calls):
        episodes = range(call["current"] - call["n"], call["current"])  # the newest complete episodes
        expected = [sum(calls[q]["current"] <= e for q in range(r)) for e in episodes]
        assert call["rounds"] == expected
    assert calls[1]["rounds"].count(1) >= 2  # the second round has (agent, agent) positives to draw
    assert virl.round_starts == [0, calls[0]["current"], calls[1]["current"]]


# ------------------------------------------------------------------------------------------ crops


def _distinct_frames_of_warps(n: int, lo: float, hi: float) -> int:
    """Fewest distinct frames of an n-frame demo that a time warp at a speed in [lo, hi] shows (brute force)."""
    seq = np.arange(n)
    return min(len(np.unique(time_warp(seq, float(s)))) for s in np.linspace(lo, hi, 301))


def test_warp_max_dropped_at_the_default_speeds_is_about_half_the_demo():
    cfg = VirlConfig()
    for n in range(3, 260):
        dropped = warp_max_dropped(n, cfg.warp_speed_min, cfg.warp_speed_max)
        assert dropped == (n // 2 - 1 if n % 4 == 0 else n // 2)  # numpy rounds half to even
        assert crop_max_kept(n, cfg) == n - dropped - 1
    for n in (12, 63, 101, 201):  # against a brute-force search over the speeds
        assert warp_max_dropped(n, 0.5, 2.0) == n - _distinct_frames_of_warps(n, 0.5, 2.0)
    assert [crop_max_kept(n, cfg) for n in (101, 201)] == [50, 100]  # push and drawer demos


@pytest.mark.parametrize("speeds", [(0.5, 2.0), (0.8, 1.25), (1.0, 3.0), (0.25, 1.0)])
def test_a_crop_shows_fewer_demo_frames_than_any_time_warp(speeds):
    cfg = VirlConfig(warp_speed_min=speeds[0], warp_speed_max=speeds[1], crop_min_fraction=0.2)
    rng = np.random.default_rng(0)
    for n in (5, 12, 31, 101, 201):
        fewest = _distinct_frames_of_warps(n, *speeds)
        seq = np.arange(n)
        for _ in range(30):
            c = crop(seq, rng, cfg)
            assert c[0] >= 1 and np.all(np.diff(c) == 1)  # a window out of step with the demo
            assert len(np.unique(c)) < fewest, (n, len(c), fewest)
            assert n - len(c) >= warp_max_dropped(n, *speeds) + 1
            assert len(c) >= min(int(np.ceil(0.2 * n)), crop_max_kept(n, cfg))


def test_crop_min_fraction_must_leave_room_below_the_warps():
    with pytest.raises(ValueError, match=r"crop_min_fraction must be below 0\.5"):
        VirlConfig(crop_min_fraction=0.5)
    with pytest.raises(ValueError, match=r"crop_min_fraction must be below 0\.8"):
        VirlConfig(warp_speed_min=0.8, warp_speed_max=1.25, crop_min_fraction=0.85)
    assert VirlConfig(warp_speed_min=0.8, warp_speed_max=1.25, crop_min_fraction=0.7).crop_max_fraction == 0.8


# ---------------------------------------------------------------------------------- other-task videos


def _pixel_videos(path: Path, task: str, n: int, t: int = 5, size: int = 8) -> Path:
    rng = np.random.default_rng(len(task))
    episodes = [rng.integers(0, 256, (t + 1, size, size, 3), dtype=np.uint8) for _ in range(n)]
    ds = VideoDataset.from_episodes(
        episodes, meta={"task": task, "domain": "robot"}, reached_goal=[False] * n
    )
    save_video_dataset(path, ds)
    return path


def test_other_videos_config_and_loading(tmp_path):
    base = tiny_overrides("virl_both", None)
    assert load_config(None, base).virl.other_videos == ()
    assert load_config(None, [*base, "virl.other_videos=a.npz"]).virl.other_videos == ("a.npz",)
    assert load_config(None, [*base, "virl.other_videos=[a.npz,b.npz]"]).virl.other_videos == (
        "a.npz",
        "b.npz",
    )
    drawer = _pixel_videos(tmp_path / "drawer.npz", "drawer", 2)
    drawer2 = _pixel_videos(tmp_path / "drawer2.npz", "drawer", 3)
    push = _pixel_videos(tmp_path / "push.npz", "push", 1)
    cfg = load_config(None, [*base, f"virl.other_videos=[{drawer},{drawer2}]"])
    videos = load_other_videos(cfg, get_task("push"), (8, 8, 3))
    assert len(videos) == 5 and all(v.shape == (6, 8, 8, 3) for v in videos)
    with pytest.raises(
        UserError, match=r"virl\.other_videos: .*push\.npz: holds videos of this run's own task"
    ):
        load_other_videos(
            load_config(None, [*base, f"virl.other_videos={push}"]), get_task("push"), (8, 8, 3)
        )
    with pytest.raises(UserError, match=r"virl\.other_videos: .*drawer\.npz: frames have shape \(8, 8, 3\)"):
        load_other_videos(
            load_config(None, [*base, f"virl.other_videos={drawer}"]), get_task("push"), (16, 16, 3)
        )
    acro = write_acrobot_videos(tmp_path / "acro.npz", n_episodes=1)
    with pytest.raises(UserError, match=r"own task 'acrobot'"):
        load_other_videos(load_config(None, [*base, f"virl.other_videos={acro}"]), get_task("acrobot"), (6,))


def test_other_tasks_of_each_task():
    assert other_tasks("push") == ["drawer"]
    assert other_tasks("drawer") == ["push"]
    assert other_tasks("acrobot") == []  # the only state task: no other task's video of its kind


def _paper():
    cfg = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    return study.check_study(cfg, "config/paper.yaml")


def test_studies_pass_the_other_tasks_videos_to_virl_runs():
    paper = _paper()
    drawer_videos = "results/paper/data/drawer_robot_videos.npz"
    for variant in ("virl_both", "virl_spatial", "virl_temporal"):
        assert study.run_data(paper, "push", variant) == {"virl.other_videos": [drawer_videos]}
        cfg = study.run_config(paper, "push", variant, 0, "paper")
        assert cfg.virl.other_videos == (drawer_videos,)
    assert "virl.other_videos" not in study.run_data(paper, "push", "sac")
    assert "virl.other_videos" not in study.run_data(paper, "push", "rlv")
    assert "virl.other_videos" in study.pack_args(paper, study.Pack("push", "virl_both", (0, 1)))
    # The videos are generated in the agent's domain, with the drawer's data block.
    assert study.robot_video_args(paper, "drawer") == (
        "--transitions 20000 --noise 0.1 --seed 0 --image-size 48 --domain robot"
    )
    # A study's own virl.other_videos wins (and is no input the workflow adds).
    own = copy.deepcopy(paper)
    own["tasks"]["push"]["train"]["overrides"] = {"virl.other_videos": []}
    assert study.run_data(own, "push", "virl_both") == {}
    # Acrobot: no other task's videos.
    acro = yaml.safe_load((ROOT / "config/acrobot.yaml").read_text())
    acro["tasks"]["acrobot"]["variants"].append("virl_both")
    acro = study.check_study(acro, "acrobot.yaml")
    assert study.run_data(acro, "acrobot", "virl_both") == {}
    assert study.run_config(acro, "acrobot", "virl_both", 0, "acrobot.yaml").virl.other_videos == ()


# ------------------------------------------------------------------------------------------ packs


def test_a_virl_seed_gives_the_same_csv_alone_and_in_a_pack(tmp_path):
    """Every pair draw (the (agent, agent) positives among them) comes from the member's own generator."""
    from rlmu.train.cli import load_pack

    ov = [
        *(o for o in tiny_overrides("virl_both", None, epochs=3) if not o.startswith("seed=")),
        "virl.retrain_every=200",
        "agent.sac.batch_size=64",  # whole CPU vectors per member (tests/test_packs.py)
    ]
    csvs = {}
    for seeds in ([3], [1, 3]):
        root = tmp_path / "-".join(map(str, seeds))
        cfgs = load_pack(None, [*ov, f"seeds={list(seeds)}".replace(" ", "")])
        t = Trainer(
            cfgs, [root / f"seed_{c.seed}" for c in cfgs], root / "pack", progress=False, log=lambda m: None
        )
        assert t.run() == 0
        csvs[tuple(seeds)] = (root / "seed_3" / "progress.csv").read_bytes()
    assert csvs[(3,)] == csvs[(1, 3)]
    assert (tmp_path / "1-3" / "seed_1" / "progress.csv").read_bytes() != csvs[(3,)]
