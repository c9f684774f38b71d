"""Shapes and properties of the networks and of the random-shift augmentation."""

import pytest
import torch
from torch.nn import functional as F

from rlmu.agent.augment import random_shift
from rlmu.agent.networks import Actor, Critic, Discriminator, Encoder, InverseModel, MotionExtractor


@pytest.mark.parametrize(("size", "repr_dim"), [(48, 1152), (64, 2048), (84, 3200)])
def test_encoder_feature_size(size, repr_dim):
    enc = Encoder((3, size, size))
    assert enc.repr_dim == repr_dim
    out = enc(torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8))
    assert out.shape == (2, repr_dim)
    convs = [m for m in enc.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 32] and all(c.kernel_size == (5, 5) for c in convs)


def test_encoder_channels_last_same_math():
    torch.manual_seed(0)
    a = Encoder((3, 16, 16), (4, 8), 5, 2, channels_last=False)
    b = Encoder((3, 16, 16), (4, 8), 5, 2, channels_last=True)
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    assert torch.allclose(a(x), b(x), atol=1e-5)


def test_state_encoder_is_identity_and_bad_shapes_rejected():
    enc = Encoder((6,))
    x = torch.randn(4, 6)
    assert enc.repr_dim == 6 and torch.equal(enc(x), x) and not list(enc.parameters())
    with pytest.raises(ValueError, match="obs_shape"):
        Encoder((3, 4))
    with pytest.raises(ValueError, match="too small"):
        Encoder((3, 4, 4))


def test_actor_bounds_and_log_std_clip():
    torch.manual_seed(0)
    actor = Actor(5, 3, (8,), log_std_min=-1.0, log_std_max=0.5)
    with torch.no_grad():
        actor.net[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 100.0, -100.0, 0.0]))
    feats = torch.randn(7, 5)
    _, log_std = actor(feats)
    assert log_std[:, 0].eq(0.5).all() and log_std[:, 1].eq(-1.0).all()
    g = torch.Generator().manual_seed(1)
    action, log_prob = actor.sample(feats, g)
    assert action.shape == (7, 3) and log_prob.shape == (7,)
    assert action.abs().max() < 1 and torch.isfinite(log_prob).all()
    assert torch.equal(actor.mode(feats), torch.tanh(actor(feats)[0]))
    # the generator fixes the noise
    a2, _ = actor.sample(feats, torch.Generator().manual_seed(1))
    assert torch.equal(action, a2)


def test_critic_inverse_discriminator_shapes():
    q1, q2 = Critic(5, 2, (8, 8))(torch.randn(4, 5), torch.randn(4, 2))
    assert q1.shape == q2.shape == (4,) and not torch.equal(q1, q2)
    inv = InverseModel(5, 2, (8,))
    pred = inv(torch.randn(4, 5) * 100, torch.randn(4, 5) * 100)
    assert pred.shape == (4, 2) and pred.abs().max() <= 1
    assert Discriminator(5, (8,))(torch.randn(4, 5)).shape == (4,)


def test_motion_extractor_gradient_reaches_encoder():
    enc = Encoder((3, 16, 16), (4, 4), 3, 2)
    mem = MotionExtractor(enc.repr_dim, n_classes=5, hidden=8, layers=3)
    assert mem.lstm.num_layers == 3
    frames = torch.randint(0, 256, (2, 4, 3, 16, 16), dtype=torch.uint8)
    logits = mem(enc(frames.flatten(0, 1)).view(2, 4, -1))
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_random_shift_matches_replicate_pad_and_crop_per_sample():
    frames = torch.randint(0, 256, (16, 3, 12, 10), dtype=torch.uint8)
    pad = 3
    out = random_shift(frames, pad, torch.Generator().manual_seed(5))
    shifts = torch.randint(0, 2 * pad + 1, (16, 2), generator=torch.Generator().manual_seed(5))
    padded = F.pad(frames.float(), (pad, pad, pad, pad), mode="replicate")
    for i, (dy, dx) in enumerate(shifts.tolist()):
        assert torch.equal(out[i].float(), padded[i, :, dy : dy + 12, dx : dx + 10])
    assert out.dtype == torch.uint8 and len({tuple(s) for s in shifts.tolist()}) > 1  # one shift per sample
    assert random_shift(frames, 0) is frames
    with pytest.raises(ValueError, match="B, C, H, W"):
        random_shift(frames[0], 4)


def test_narrow_linear_matches_nn_linear():
    """The narrow-input layer (first layer of the state-task MLPs) computes nn.Linear's values and gradients."""
    from rlmu.agent.networks import NARROW_INPUT, NarrowLinear, _NarrowLinearFunction, mlp

    torch.manual_seed(0)
    narrow, ref = NarrowLinear(7, 64), torch.nn.Linear(7, 64)
    ref.load_state_dict(narrow.state_dict())
    x = torch.randn(32, 7, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    g = torch.randn(32, 64)
    narrow(x).backward(g)
    ref(x_ref).backward(g)
    assert torch.allclose(narrow(x), ref(x_ref), atol=1e-6)
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-5)
    assert torch.allclose(narrow.weight.grad, ref.weight.grad, atol=1e-5)
    assert torch.allclose(narrow.bias.grad, ref.bias.grad, atol=1e-6)
    args = (
        torch.randn(5, 3, dtype=torch.double, requires_grad=True),
        torch.randn(4, 3, dtype=torch.double, requires_grad=True),
        torch.randn(4, dtype=torch.double, requires_grad=True),
    )
    assert torch.autograd.gradcheck(_NarrowLinearFunction.apply, args)
    # Only narrow inputs get it; state-dict keys are nn.Linear's.
    net = mlp(6, (32, 32), 2)
    assert isinstance(net[0], NarrowLinear) and type(net[2]) is torch.nn.Linear
    assert type(mlp(NARROW_INPUT, (8,), 1)[0]) is torch.nn.Linear
    assert list(net.state_dict()) == list(
        torch.nn.Sequential(
            *[
                torch.nn.Linear(6, 32),
                torch.nn.ReLU(),
                torch.nn.Linear(32, 32),
                torch.nn.ReLU(),
                torch.nn.Linear(32, 2),
            ]
        ).state_dict()
    )
