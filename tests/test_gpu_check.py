"""The CPU-side part of benchmarks/gpu_check.py (the GPU check itself needs a CUDA device)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402


def test_grouped_encoder_losses_agree_with_the_member_by_member_path():
    errors = gpu_check.loss_agreement("cpu", batch_size=16)
    assert set(errors) >= {"loss_critic", "loss_actor", "loss_inverse", "loss_paired", "loss_discriminator"}
    assert max(errors.values()) < 1e-4


def test_loss_agreement_detects_a_different_agent(monkeypatch):
    # The comparison must be able to fail: perturb the copy's critic and the critic loss disagrees.
    import torch

    from rlmu.agent import Agent

    original = Agent.load_state_dict

    def load_and_perturb(self, state):
        original(self, state)
        with torch.no_grad():
            self.critic.q.layers[-1].members[0].bias.add_(0.5)

    monkeypatch.setattr(Agent, "load_state_dict", load_and_perturb)
    assert gpu_check.loss_agreement("cpu", batch_size=16)["loss_critic"] > 1e-4


@pytest.mark.slow
def test_short_pixel_rlv_pack_trains(tmp_path):
    obs, paired = gpu_check.make_data(tmp_path, 300, 32)
    assert gpu_check.short_pack_run("cpu", obs, paired, tmp_path / "short", seeds=(0, 1)) == {
        0: "completed",
        1: "completed",
    }
