"""VIRL in the trainer: config, the reward SAC learns from, rescoring after a retrain, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
from test_resume import preempt_at, progress_rows, tiny_overrides

from rlmu.errors import UserError
from rlmu.train import PREEMPTED_EXIT_CODE
from rlmu.train.config import load_config
from rlmu.train.trainer import Trainer
from rlmu.virl import sequence_rewards


def _cfg(variant="virl_both", epochs=3, extra=()):
    return load_config(None, [*tiny_overrides(variant, None, epochs=epochs), *extra])


def _trainer(cfg, run_dir):
    return Trainer(cfg, run_dir, progress=False, log=lambda m: None)


def test_virl_variants_and_config_validation(tmp_path):
    for variant, mode in (
        ("virl_both", "both"),
        ("virl_spatial", "spatial_only"),
        ("virl_temporal", "temporal_only"),
    ):
        cfg = _cfg(variant)
        assert cfg.virl.enabled and cfg.virl.reward_mode == mode and not cfg.agent.rlv.enabled
        assert cfg.virl.distance_config().reward_mode == mode
    assert not _cfg("sac").virl.enabled
    with pytest.raises(UserError, match=r"virl\.reward_mode"):
        _cfg(extra=["virl.reward_mode=spatial"])
    with pytest.raises(UserError, match=r"virl\.retrain_every"):
        _cfg(extra=["virl.retrain_every=0"])
    with pytest.raises(UserError, match=r"virl\.nonsense: unknown key"):
        _cfg(extra=["virl.nonsense=1"])
    with pytest.raises(UserError, match=r"agent\.rlv\.enabled"):
        _cfg(extra=["agent.rlv.enabled=true", "data.observations=x.npz"])
    # Data files: a broken demo names the file; an episode index out of range names the field.
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a dataset")
    with pytest.raises(UserError, match=r"virl\.demo: .*junk\.npz"):
        _trainer(_cfg(extra=[f"virl.demo={junk}"]), tmp_path / "run")
    from test_resume import write_acrobot_videos

    videos = write_acrobot_videos(tmp_path / "acro.npz", n_episodes=2)
    with pytest.raises(UserError, match=r"virl\.demo_episode: 5 is out of range"):
        _trainer(_cfg(extra=[f"virl.demo={videos}", "virl.demo_episode=5"]), tmp_path / "run")
    t = _trainer(_cfg(extra=[f"virl.demo={videos}", "virl.demo_episode=1"]), tmp_path / "run")
    from rlmu.data.format import load_video_dataset

    np.testing.assert_array_equal(t.members[0].virl.demo, load_video_dataset(videos).episode(1))
    assert not (tmp_path / "run").exists()  # construction writes nothing


def test_short_virl_run_reports_true_returns_and_learns_from_virl_rewards(tmp_path):
    cfg = _cfg(epochs=3)
    t = _trainer(cfg, tmp_path / "run")
    assert t.run() == 0
    rows = progress_rows(tmp_path / "run" / "progress.csv")
    table = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [r["env_steps"] for r in table] == ["100", "200", "300"]
    # Rounds at steps 100 and 200 (none at the last step): loss_distance in epochs 1 and 2.
    assert [r["loss_distance"] != "" for r in table] == [True, True, False]
    assert t.state.virl_rounds == 2 and t.members[0].virl.learner.updates == 20 + 2 * 10
    # The CSV reports the TRUE task return of the evaluation episodes: Acrobot pays -1 per step, so
    # returns are integers in [-100, 0]; re-evaluating the final policy reproduces the last row.
    for r in table:
        assert -100.0 <= float(r["eval_return_mean"]) <= 0.0
        assert float(r["train_return_mean"]) == round(float(r["train_return_mean"]))
    assert t.evaluate(3)[0][0] == float(table[-1]["eval_return_mean"])
    # SAC's replay holds VIRL rewards (negative distances), not the task's -1/0.
    stored = t.members[0].replay.reward[t.members[0].replay.valid_slots()]
    assert len(stored) == 300 and np.all(stored < 0) and not np.isin(stored, [-1.0, 0.0]).any()
    # Rewards stored online (scored prefix by prefix, carrying the recurrent state) equal a rescoring of
    # every stored episode with the same model (the last retrain was at step 200).
    online = t.members[0].replay.reward.copy()
    t.members[0].virl.rescore_replay()
    np.testing.assert_allclose(t.members[0].replay.reward, online, rtol=1e-5, atol=1e-5)


def _buffer_arrays(replay):
    return {
        k: getattr(replay, k).copy()
        for k in ("frames", "obs_index", "action", "terminal", "episode_id", "time_index")
    }


def test_retrain_recomputes_rewards_and_nothing_else(tmp_path):
    # No round during the run (retrain_every > run length); stop mid-episode at step 130.
    cfg = _cfg(epochs=2, extra=["virl.retrain_every=1000"])
    t = _trainer(cfg, tmp_path / "run")
    preempt_at(t, 130)
    assert t.run() == PREEMPTED_EXIT_CODE
    replay, st = t.members[0].replay, t.members[0].state
    assert st.episode_step > 0  # an unfinished episode is in the buffer
    before = _buffer_arrays(replay)
    rewards_before = replay.reward.copy()
    sampler_state = replay.rng.bit_generator.state
    slots = replay.valid_slots()
    t._virl_round()
    after = _buffer_arrays(replay)
    for k in before:
        assert before[k].tobytes() == after[k].tobytes(), k
    assert replay.rng.bit_generator.state == sampler_state and len(replay) == 130
    changed = np.abs(replay.reward[slots] - rewards_before[slots])
    assert changed.min() > 0 and changed.mean() > 1e-3  # every stored reward was rescored
    # The new rewards are the retrained model's scores: transition t of an episode earns frame t + 1's.
    model, demo = t.members[0].virl.model, t.members[0].virl.demo
    for ep in np.unique(replay.episode_id[slots]):
        mine = slots[replay.episode_id[slots] == ep]
        frames = replay.episode_frames(int(ep))
        expected = sequence_rewards(model, demo, frames, t.members[0].virl.dcfg)[1:]
        np.testing.assert_allclose(
            replay.reward[mine], expected[replay.time_index[mine]], rtol=1e-5, atol=1e-5
        )
    # The unfinished episode goes on from the rebuilt recurrent state: its next online reward equals the
    # rescoring of the prefix one step longer.
    t._env_step()
    ep = st.episode if st.episode_step > 0 else st.episode - 1
    frames = replay.episode_frames(int(ep))
    last = replay.valid_slots()[-1]
    expected = sequence_rewards(model, demo, frames, t.members[0].virl.dcfg)[-1]
    assert replay.reward[last] == pytest.approx(float(expected), rel=1e-5, abs=1e-5)


def test_preempt_mid_episode_after_a_round_then_resume_is_exact(tmp_path):
    cfg = _cfg(epochs=3)
    assert _trainer(cfg, tmp_path / "ref").run() == 0
    expected = (tmp_path / "ref" / "progress.csv").read_bytes()
    t = _trainer(cfg, tmp_path / "run")
    preempt_at(t, 163)
    assert t.run() == PREEMPTED_EXIT_CODE
    assert t.members[0].state.episode_step > 0 and t.state.virl_rounds == 1
    assert _trainer(cfg, tmp_path / "run").run() == 0
    assert (tmp_path / "run" / "progress.csv").read_bytes() == expected


def test_preempt_during_distance_pretraining_then_resume_is_exact(tmp_path):
    cfg = _cfg(epochs=1)
    assert _trainer(cfg, tmp_path / "ref").run() == 0
    t = _trainer(cfg, tmp_path / "run")
    original = t.members[0].virl.pretrain_step

    def pretrain_step():
        out = original()
        if t.members[0].virl.pretrain_steps_done == 7:
            t.preempt.signal = "SIGTERM"
        return out

    t.members[0].virl.pretrain_step = pretrain_step
    assert t.run() == PREEMPTED_EXIT_CODE and t.state.env_steps == 0
    assert _trainer(cfg, tmp_path / "run").run() == 0
    assert progress_rows(tmp_path / "run" / "progress.csv") == progress_rows(
        tmp_path / "ref" / "progress.csv"
    )


@pytest.mark.slow
def test_pixel_visual_push_virl_smoke(tmp_path):
    cfg = load_config(
        None,
        [
            "task=push", "variant=virl_both", "epochs=2", "steps_per_epoch=100", "random_steps=100",
            "eval_episodes=1", "agent.sac.batch_size=4", "agent.sac.hidden=[32]",
            "virl.retrain_every=100", "virl.pretrain_steps=3", "virl.train_steps=2", "virl.batch_size=2",
            "virl.conv_channels=[4,8]", "virl.frame_embedding=8", "virl.rnn_hidden=8",
        ],
    )  # fmt: skip
    t = _trainer(cfg, tmp_path / "run")
    assert t.members[0].virl.demo.shape[1:] == (48, 48, 3) and t.members[0].virl.demo.dtype == np.uint8
    assert t.run() == 0
    rows = progress_rows(tmp_path / "run" / "progress.csv")
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["env_steps"] == "100" and row["loss_distance"] != ""
    assert 0.0 <= float(row["eval_return_mean"]) <= 100.0  # VisualPush's true return
    online = t.members[0].replay.reward.copy()
    t.members[0].virl.rescore_replay()  # channels-first frames are turned into the model's HWC
    np.testing.assert_allclose(t.members[0].replay.reward, online, rtol=1e-4, atol=1e-4)
