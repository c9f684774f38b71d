"""Exact resume: kill -9 and SIGTERM mid-run, rerun the same command, get the uninterrupted run's CSV."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rlmu.train import PREEMPTED_EXIT_CODE

REPO = Path(__file__).resolve().parents[1]


def write_acrobot_videos(path: Path, n_episodes: int = 6, seed: int = 0) -> Path:
    """A small observation dataset for Acrobot: a noisy energy-pumping controller, states as frames."""
    import gymnasium as gym

    import rlmu  # noqa: F401
    from rlmu.data.format import VideoDataset, save_video_dataset

    env = gym.make("rlmu/AcrobotContinuous-v0")
    rng = np.random.default_rng(seed)
    episodes, reached = [], []
    for ep in range(n_episodes):
        obs, _ = env.reset(seed=seed * 1000 + ep)
        frames, success = [obs], False
        while True:
            a = np.array([np.sign(obs[4]) if rng.random() > 0.2 else rng.uniform(-1, 1)], np.float32)
            obs, _, term, trunc, info = env.step(a)
            frames.append(obs)
            success = success or info["success"]
            if term or trunc:
                break
        episodes.append(np.asarray(frames, np.float32))
        reached.append(success)
    ds = VideoDataset.from_episodes(
        episodes, meta={"task": "acrobot", "domain": "state"}, reached_goal=reached
    )
    save_video_dataset(path, ds)
    return path


def tiny_overrides(variant: str, data: Path | None, *, epochs: int = 4) -> list[str]:
    out = [
        "task=acrobot",
        f"variant={variant}",
        "seed=1",
        f"epochs={epochs}",
        "steps_per_epoch=100",
        "random_steps=50",
        "eval_episodes=2",
        "checkpoint_every=1",
        "agent.sac.batch_size=16",
        "agent.sac.hidden=[32,32]",
        "agent.rlv.obs_batch_size=16",
        "agent.mem.batch_size=4",
        "agent.mem.subseq_len=4",
        "agent.mem.lstm_layers=1",
        "agent.mem.lstm_hidden=16",
        "agent.mem.pretrain_steps=20",
    ]
    if variant.startswith("virl"):  # small distance model; a round every epoch (so resume crosses rounds)
        out += [
            "virl.retrain_every=100",
            "virl.pretrain_steps=20",
            "virl.train_steps=10",
            "virl.batch_size=4",
            "virl.frame_embedding=16",
            "virl.rnn_hidden=16",
        ]
    if data is not None:
        out.append(f"data.observations={data}")
    return out


def train_cmd(run_dir: Path, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "rlmu", "train", "--no-progress", "--run-dir", str(run_dir), *overrides]


def run_train(run_dir: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_cmd(run_dir, overrides), cwd=REPO, capture_output=True, text=True, timeout=600
    )


def preempt_at(trainer, step: int) -> None:
    """Make the trainer see a preemption signal right after environment step ``step``."""
    original = trainer._env_step

    def env_step():
        out = original()
        if trainer.state.env_steps == step:
            trainer.preempt.signal = "SIGTERM"
        return out

    trainer._env_step = env_step


def progress_rows(csv_path: Path) -> list[list[str]]:
    """All rows of a progress CSV, header first. Every column is reproducible (timing is in timing.csv),
    so comparing these rows compares the files' contents; the identity tests also compare bytes."""
    with open(csv_path, newline="") as f:
        return list(csv.reader(f))


def n_rows(csv_path: Path) -> int:
    try:
        return max(0, len(csv_path.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def start_and_wait(run_dir: Path, overrides: list[str], rows: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        train_cmd(run_dir, overrides), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 300
    while n_rows(run_dir / "progress.csv") < rows:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


@pytest.fixture(scope="module")
def acrobot_data(tmp_path_factory):
    return write_acrobot_videos(tmp_path_factory.mktemp("data") / "acrobot_obs.npz")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["sac", "rlv_nopair", "rlmu", "virl_both"])
def test_kill9_and_sigterm_resume_exactly(tmp_path, variant, acrobot_data):
    overrides = tiny_overrides(variant, None if variant in ("sac", "virl_both") else acrobot_data)
    ref = run_train(tmp_path / "ref", overrides)
    assert ref.returncode == 0, ref.stderr
    assert len(progress_rows(tmp_path / "ref" / "progress.csv")) == 5
    expected = (tmp_path / "ref" / "progress.csv").read_bytes()

    # kill -9 at a random point after the first epoch, then rerun the same command.
    rng = np.random.default_rng(abs(hash(variant)) % 2**32)
    killed = tmp_path / "killed"
    proc = start_and_wait(killed, overrides, rows=1)
    time.sleep(float(rng.uniform(0.0, 0.5)))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run_train(killed, overrides)
    assert resumed.returncode == 0, resumed.stderr
    assert (killed / "progress.csv").read_bytes() == expected

    # SIGTERM mid-run: checkpoint, status preempted, exit 75; rerunning resumes.
    termed = tmp_path / "termed"
    proc = start_and_wait(termed, overrides, rows=2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    if proc.returncode == 0:  # the run finished before the signal landed: nothing to resume
        pytest.skip("run completed before SIGTERM arrived")
    assert proc.returncode == PREEMPTED_EXIT_CODE, out
    import json

    assert json.loads((termed / "run.json").read_text())["status"] == "preempted"
    again = run_train(termed, overrides)
    assert again.returncode == 0, again.stderr
    assert (termed / "progress.csv").read_bytes() == expected
    record = json.loads((termed / "run.json").read_text())
    assert record["status"] == "completed" and record["epochs_done"] == 4 and record["env_steps"] == 400

    # A completed run rerun is a no-op.
    noop = run_train(termed, overrides)
    assert noop.returncode == 0 and "complete" in noop.stderr
    assert (termed / "progress.csv").read_bytes() == expected
