"""The learning benchmark end to end at a tiny budget: its runs train through ``rlmu train`` and its report,
the value diagnostic of the final checkpoints included, reads them back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_learning_benchmark_runs_and_reports_at_a_tiny_budget(tmp_path):
    out = tmp_path / "bench"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "learning_acrobot.py"),
        "--epochs",
        "1",
        "--steps-per-epoch",
        "300",
        "--seeds",
        "0",
        "--jobs",
        "1",
        "--transitions",
        "300",
        "--hidden",
        "[16,16]",
        "--batch-size",
        "16",
        "--out",
        str(out),
        "--set",
        "random_steps=100",
        "eval_episodes=1",
    ]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "final deterministic evaluation return" in done.stdout
    assert "value diagnostic" in done.stdout
    for run in ("sac seed 0", "rlv seed 0"):
        assert run in done.stdout
