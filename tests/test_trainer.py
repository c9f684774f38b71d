"""The training loop in-process: determinism, exact resume after preemption, divergence, failures,
and a pixel smoke run of every variant."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_resume import preempt_at, progress_rows, tiny_overrides, write_acrobot_videos

from rlmu.errors import UserError
from rlmu.schema import PROGRESS_COLUMNS, TIMING_COLUMNS
from rlmu.train import DIVERGED_EXIT_CODE, PREEMPTED_EXIT_CODE
from rlmu.train.config import load_config
from rlmu.train.trainer import Trainer


def _cfg(variant="sac", data=None, epochs=3, extra=()):
    return load_config(None, [*tiny_overrides(variant, data, epochs=epochs), *extra])


def _train(cfg, run_dir, **kw):
    return Trainer(cfg, run_dir, progress=False, log=lambda m: None, **kw).run()


@pytest.fixture(scope="module")
def acrobot_data(tmp_path_factory):
    return write_acrobot_videos(tmp_path_factory.mktemp("data") / "acrobot_obs.npz")


def test_same_seed_gives_identical_csv_and_record(tmp_path):
    cfg = _cfg()
    assert _train(cfg, tmp_path / "a") == 0
    assert _train(cfg, tmp_path / "b") == 0
    a, b = (
        progress_rows(tmp_path / "a" / "progress.csv"),
        progress_rows(tmp_path / "b" / "progress.csv"),
    )
    assert a == b
    assert (tmp_path / "a" / "progress.csv").read_bytes() == (tmp_path / "b" / "progress.csv").read_bytes()
    rows = a
    assert rows[0] == list(PROGRESS_COLUMNS)
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    row = dict(zip(rows[0], rows[-1], strict=True))
    timing = progress_rows(tmp_path / "a" / "timing.csv")
    assert timing[0] == list(TIMING_COLUMNS) and [r[0] for r in timing[1:]] == ["1", "2", "3"]
    assert all(float(r[1]) > 0 and float(r[2]) > 0 for r in timing[1:])
    assert row["env_steps"] == "300" and row["loss_inverse"] == "" and row["loss_critic"] != ""
    rec = json.loads((tmp_path / "a" / "run.json").read_text())
    assert rec["status"] == "completed" and rec["seed"] == 1 and rec["versions"]["torch"]
    assert (tmp_path / "a" / "config.yaml").read_text() == cfg.to_yaml()
    # Another seed gives another run.
    assert _train(_cfg(extra=["seed=2"]), tmp_path / "c") == 0
    assert progress_rows(tmp_path / "c" / "progress.csv") != a


@pytest.mark.parametrize("variant, step", [("sac", 137), ("rlmu", 251)])
def test_preempt_mid_episode_then_resume_is_exact(tmp_path, acrobot_data, variant, step):
    data = None if variant == "sac" else acrobot_data
    cfg = _cfg(variant, data)
    assert _train(cfg, tmp_path / "ref") == 0
    expected = progress_rows(tmp_path / "ref" / "progress.csv")

    t = Trainer(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    preempt_at(t, step)
    assert t.run() == PREEMPTED_EXIT_CODE
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["status"] == "preempted" and rec["env_steps"] == step
    assert t.members[0].state.episode_step > 0  # the checkpoint is mid-episode: resume replays its actions
    assert _train(cfg, tmp_path / "run") == 0
    assert progress_rows(tmp_path / "run" / "progress.csv") == expected


def test_rows_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    cfg = _cfg(extra=["checkpoint_every=2"])
    assert _train(cfg, tmp_path / "ref") == 0
    expected = progress_rows(tmp_path / "ref" / "progress.csv")
    t = Trainer(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    original = t._end_epoch

    def end_epoch():  # simulate kill -9 right after epoch 3's row was written (checkpoint is epoch 2)
        original()
        if t.state.epoch == 3:
            raise KeyboardInterrupt

    t._end_epoch = end_epoch
    with pytest.raises(KeyboardInterrupt):
        t.run()
    assert len(progress_rows(tmp_path / "run" / "progress.csv")) == 4
    assert _train(cfg, tmp_path / "run") == 0
    assert progress_rows(tmp_path / "run" / "progress.csv") == expected


def test_nan_gives_diverged_with_step_and_loss(tmp_path, monkeypatch):
    import torch

    from rlmu.agent import Agent

    original = Agent.update

    def update(self, batch, **kw):
        if self.update_step == 30:
            with torch.no_grad():
                next(self.critic.parameters()).fill_(float("nan"))
        return original(self, batch, **kw)

    monkeypatch.setattr(Agent, "update", update)
    assert _train(_cfg(), tmp_path / "run") == DIVERGED_EXIT_CODE
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["status"] == "diverged"
    assert "loss_critic" in rec["error"] and "update 30" in rec["error"]


def test_other_errors_mark_failed_and_raise(tmp_path, monkeypatch):
    def boom(self, epoch):
        raise RuntimeError("evaluation exploded")

    monkeypatch.setattr(Trainer, "evaluate", boom)
    with pytest.raises(RuntimeError, match="exploded"):
        _train(_cfg(), tmp_path / "run")
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["status"] == "failed" and "evaluation exploded" in rec["error"]


def test_resume_with_another_config_is_refused(tmp_path):
    t = Trainer(_cfg(), tmp_path / "run", progress=False, log=lambda m: None)
    preempt_at(t, 120)
    assert t.run() == PREEMPTED_EXIT_CODE
    with pytest.raises(UserError, match="agent.sac.lr"):
        _train(_cfg(extra=["agent.sac.lr=1e-3"]), tmp_path / "run")


def test_foreign_dataset_is_refused_naming_the_file(tmp_path, acrobot_data):
    from rlmu.data.format import VideoDataset, save_video_dataset

    frames = [np.zeros((30, 48, 48, 3), np.uint8)]
    push = save_video_dataset(
        tmp_path / "push.npz", VideoDataset.from_episodes(frames, meta={"task": "push"}, reached_goal=[False])
    )
    with pytest.raises(UserError, match="push.npz"):
        Trainer(_cfg("rlv_nopair", push), tmp_path / "run")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a dataset")
    with pytest.raises(UserError, match="junk.npz"):
        Trainer(_cfg("rlv_nopair", junk), tmp_path / "run")


def test_cli_completed_rerun_is_a_noop_and_restart(tmp_path, capsys):
    from rlmu.cli import main

    args = [
        "train",
        "--no-progress",
        "--run-dir",
        str(tmp_path / "run"),
        *tiny_overrides("sac", None, epochs=1),
    ]
    assert main(args) == 0
    first = (tmp_path / "run" / "progress.csv").read_bytes()
    capsys.readouterr()
    assert main(args) == 0
    assert "run is complete" in capsys.readouterr().err
    assert (tmp_path / "run" / "progress.csv").read_bytes() == first
    assert main([*args, "--restart"]) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "completed"
    assert main(["train", "--run-dir", str(tmp_path / "x"), "task=acrobot", "variant=sac", "epochs=-1"]) == 2
    assert "epochs" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# Pixel smoke runs on VisualPush (synthetic observation and paired data: shapes matter here, not content)


@pytest.fixture(scope="module")
def push_data(tmp_path_factory):
    from rlmu.data.format import PairedDataset, VideoDataset, save_paired_dataset, save_video_dataset

    d = tmp_path_factory.mktemp("push")
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (41, 48, 48, 3), dtype=np.uint8) for _ in range(4)]
    obs = save_video_dataset(
        d / "obs.npz",
        VideoDataset.from_episodes(
            videos,
            meta={"task": "push", "domain": "human", "image_size": 48},
            reached_goal=[True, False, True, True],
        ),
    )
    pairs = rng.integers(0, 256, (2, 8, 48, 48, 3), dtype=np.uint8)
    paired = save_paired_dataset(
        d / "paired.npz",
        PairedDataset.from_arrays(
            pairs[0], pairs[1], np.zeros((8, 4), np.float32), meta={"task": "push", "domain": "human"}
        ),
    )
    return obs, paired


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant", ["sac", "rlv", "rlv_nopair", "rlmu", "rlv_jitter5_half", "rlv_reverse", "rlv_negreward"]
)
def test_pixel_smoke_every_variant(tmp_path, push_data, variant):
    obs, paired = push_data
    cfg = load_config(
        None,
        [
            "task=push",
            f"variant={variant}",
            "epochs=2",
            "steps_per_epoch=100",
            "random_steps=100",
            "eval_episodes=1",
            f"data.observations={obs}",
            f"data.paired={paired}",
            "agent.sac.batch_size=4",
            "agent.sac.hidden=[32]",
            "agent.rlv.obs_batch_size=4",
            "agent.mem.batch_size=2",
            "agent.mem.subseq_len=3",
            "agent.mem.lstm_layers=1",
            "agent.mem.lstm_hidden=8",
            "agent.mem.pretrain_steps=5",
        ],
    )
    assert _train(cfg, tmp_path / "run") == 0
    rows = progress_rows(tmp_path / "run" / "progress.csv")
    row = dict(zip(rows[0], rows[-1], strict=True))
    assert row["env_steps"] == "200" and row["updates"] == "101"
    assert (row["loss_inverse"] != "") == (variant != "sac")
    assert (row["loss_paired"] != "") == (
        variant in ("rlv", "rlv_jitter5_half", "rlv_reverse", "rlv_negreward")
    )
    assert (row["loss_mem"] != "") == (variant == "rlmu")


@pytest.mark.slow
def test_pixel_preempt_mid_episode_then_resume_is_exact(tmp_path, push_data):
    """MuJoCo state is rebuilt by replaying the episode's actions: the resumed pixel run is exact."""
    obs, paired = push_data
    cfg = load_config(
        None,
        [
            "task=push", "variant=rlv", "epochs=2", "steps_per_epoch=100", "random_steps=60",
            "eval_episodes=1", f"data.observations={obs}", f"data.paired={paired}",
            "agent.sac.batch_size=4", "agent.sac.hidden=[32]", "agent.rlv.obs_batch_size=4",
        ],
    )  # fmt: skip
    assert _train(cfg, tmp_path / "ref") == 0
    t = Trainer(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    preempt_at(t, 150)
    assert t.run() == PREEMPTED_EXIT_CODE and t.members[0].state.episode_step == 50
    assert _train(cfg, tmp_path / "run") == 0
    assert progress_rows(tmp_path / "run" / "progress.csv") == progress_rows(
        tmp_path / "ref" / "progress.csv"
    )
