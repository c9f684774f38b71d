"""VIRL distance model: pairs, contrastive loss, training ranks sequences, per-step rewards."""

import numpy as np
import pytest
import torch

from rlmu.virl import DistanceLearner, RecurrentSiamese, VirlConfig, contrastive_loss, sequence_rewards
from rlmu.virl.pairs import crop, fit_length, make_pairs, time_warp

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _demo(t=30, d=6):
    # A smooth state trajectory, like an Acrobot swing: features are sines of a rising phase.
    phase = np.linspace(0, 3.0, t)[:, None] * np.arange(1, d + 1)[None, :] / d
    return np.sin(phase * np.pi).astype(np.float32)


def _random_rollout(rng, t=30, d=6):
    return np.cumsum(rng.normal(0, 0.3, size=(t, d)), axis=0).astype(np.float32)


def test_contrastive_loss_hand_computed():
    d = torch.tensor([0.2, 0.3, 1.5])
    y = torch.tensor([1.0, 0.0, 0.0])
    # positive: 0.2; negative inside margin: 1 - 0.3 = 0.7; negative beyond margin: 0.
    assert contrastive_loss(d, y, 1.0).item() == pytest.approx((0.2 + 0.7 + 0.0) / 3)


def test_identical_sequences_have_zero_distance():
    torch.manual_seed(0)
    model = RecurrentSiamese((6,))
    x = torch.as_tensor(_demo()[None])
    d_seq, d_frame = model.distances(x, x.clone())
    assert torch.all(d_seq.abs() < 1e-6) and torch.all(d_frame.abs() < 1e-6)
    img = torch.randint(0, 256, (2, 5, 48, 48, 3), dtype=torch.uint8)
    with torch.no_grad():
        d_seq, d_frame = RecurrentSiamese((48, 48, 3)).distances(img, img.clone())
    assert float(d_seq.max()) < 1e-6 and float(d_frame.max()) < 1e-6


def test_time_warp_crop_and_length():
    seq = np.arange(10)[:, None].astype(np.float32)
    assert time_warp(seq, 2.0)[:, 0].tolist() == [0, 2, 4, 6, 8, 9, 9, 9, 9, 9]
    assert time_warp(seq, 0.5)[:, 0].tolist() == [0, 0, 1, 2, 2, 2, 3, 4, 4, 4]  # numpy rounds half to even
    c = crop(seq, np.random.default_rng(0), VirlConfig(crop_min_fraction=0.3))
    assert 3 <= len(c) <= 4 and c[0, 0] >= 1 and np.all(np.diff(c[:, 0]) == 1)  # a warp leaves out <= 5
    assert fit_length(seq[:3], 5)[:, 0].tolist() == [0, 1, 2, 2, 2]


def test_pairs_are_half_positive_and_shaped():
    rng = np.random.default_rng(0)
    demo = _demo()
    a, b, y = make_pairs(demo, [_random_rollout(rng)], [_random_rollout(rng)], 10, rng, VirlConfig())
    assert a.shape == b.shape == (10, 30, 6) and y.sum() == 5


def _mean_distance(model, x, y, cfg):
    return -float(np.mean(sequence_rewards(model, x, y, cfg)))


def test_training_ranks_noisy_demo_closer_than_reversed_and_random():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = VirlConfig(batch_size=16, lr=3e-3)
    demo = _demo()
    rollouts = [_random_rollout(rng) for _ in range(8)]
    others = [np.cos(np.linspace(0, 2, 30)[:, None] * np.arange(1, 7)).astype(np.float32) for _ in range(2)]
    learner = DistanceLearner((6,), cfg)
    losses = learner.train(demo, rollouts, others, rng, steps=150)
    assert np.isfinite(losses["loss_distance"])
    # Held-out sequences: fresh noise, fresh random rollouts, never seen in training.
    held = np.random.default_rng(123)
    noisy = demo + held.normal(0, 0.05, size=demo.shape).astype(np.float32)
    d_noisy = _mean_distance(learner.model, demo, noisy, cfg)
    d_reversed = _mean_distance(learner.model, demo, demo[::-1].copy(), cfg)
    d_random = np.mean([_mean_distance(learner.model, demo, _random_rollout(held), cfg) for _ in range(5)])
    assert d_noisy < d_reversed and d_noisy < d_random, (d_noisy, d_reversed, d_random)


@pytest.mark.parametrize("mode", ["both", "spatial_only", "temporal_only"])
@pytest.mark.parametrize("shaping", ["linear", "exp"])
def test_reward_modes(mode, shaping):
    torch.manual_seed(0)
    cfg = VirlConfig(reward_mode=mode, reward_shaping=shaping)
    model = RecurrentSiamese((6,), cfg)
    demo = _demo(20)
    r_self = sequence_rewards(model, demo, demo, cfg)
    assert r_self.shape == (20,)
    # The demo against itself is the best possible sequence: distance 0 everywhere.
    assert np.allclose(r_self, 1.0 if shaping == "exp" else 0.0, atol=1e-6)
    r_other = sequence_rewards(model, demo, demo[::-1].copy(), cfg)
    assert np.all(r_other <= r_self + 1e-6) and np.any(r_other < r_self - 1e-4)
    # Agent episodes longer than the demo are compared with its last frame (clamped alignment).
    assert sequence_rewards(model, demo, np.concatenate([demo, demo[-1:].repeat(5, 0)]), cfg).shape == (25,)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="reward_mode"):
        VirlConfig(reward_mode="spatial")
    with pytest.raises(ValueError, match="warp_speed_min"):
        VirlConfig(warp_speed_min=3.0)
    with pytest.raises(ValueError, match="not_a_field"):
        VirlConfig(not_a_field=1)


def test_shared_demo_encoding_gives_same_loss_and_gradients():
    torch.manual_seed(0)
    rng = np.random.default_rng(2)  # a batch with (agent, agent) positives
    cfg = VirlConfig(batch_size=12)
    demo = _demo()
    rollouts = [_random_rollout(rng), _random_rollout(rng)]  # one round: (agent, agent) positives exist
    a, b, y = make_pairs(demo, rollouts, [_random_rollout(rng)], 12, rng, cfg)
    is_demo = np.array([np.array_equal(row, demo) for row in a])
    assert 2 <= is_demo.sum() < 12  # most first elements are the demo, agent_self pairs are not
    learner = DistanceLearner((6,), cfg)
    results = []
    for shared in (None, is_demo):
        learner.optimizer.zero_grad(set_to_none=True)
        total, _ = learner.loss(*(torch.as_tensor(v) for v in (a, b, y)), shared_first=shared)
        total.backward()
        results.append((total.item(), [p.grad.clone() for p in learner.model.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    for g0, g1 in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(g0, g1, rtol=1e-4, atol=1e-6)
